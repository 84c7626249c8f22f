/*
 * How a VM looks in the API: its configuration (a function of its store
 * object, which never changes: a change makes a new object) and its
 * runtime (where it runs, from the HA engine's facts).  Written as text
 * (common/json_writer.h), for one VM or for GET /api/v1/vms (vm_list.h).
 */
#pragma once

#include "common/json_writer.h"
#include "ha/engine.h"
#include "store/object.h"

#include <stdint.h>

/* The members of @vm's JSON that its object alone decides. */
void api_vm_config_write(json_writer *w, store_object *vm);
/* The keys of api_vm_config_write()'s text kept with keys of one byte
 * (json_writer_init_keyed()). */
void api_vm_config_keys_init(json_keys *k);
/* The members that @view decides (only state and node without one);
 * uptimes as of @now_ms (wall clock). */
void api_vm_runtime_write(json_writer *w, const herd_runtime_view *view, store_object *vm,
			  int64_t now_ms);
