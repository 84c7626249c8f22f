/*
 * Store commands: the changes that store_state_apply() takes, as JSON
 * ({"op":"create|update|patch|delete|restore|batch",…}).  The kind files
 * (vm.h, node.h…) build their commands with these; nothing outside
 * src/store packs a command by hand.
 *
 * Every builder returns a new reference; @data and @ops are stolen.
 */
#pragma once

#include "store/object.h"

#include <jansson.h>
#include <stdint.h>

json_t *store_cmd_create(store_kind kind, const char *uuid, const char *name, json_t *data);
/* Merge @data into the object (null removes a field; see store_state_apply()). */
json_t *store_cmd_patch(store_kind kind, const char *uuid, json_t *data);
/* Replace the data (and with @name, the name), if the object is at @version. */
json_t *store_cmd_update(store_kind kind, const char *uuid, const char *name, json_t *data,
			 uint64_t if_version);
/* Delete; @if_version 0: whatever its version. */
json_t *store_cmd_delete(store_kind kind, const char *uuid, uint64_t if_version);
/* Several commands applied all or none; @ops an array of commands. */
json_t *store_cmd_batch(json_t *ops);
/* Append @cmd (stolen) to @ops, the operations of a batch to be: a batch's
 * own operations one by one (batches do not nest). */
void store_cmd_append(json_t *ops, json_t *cmd);
/* Make a patch/update/delete conditional on the object's @version. */
void store_cmd_if_version(json_t *cmd, uint64_t version);
