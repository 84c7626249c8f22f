/*
 * A fence device as the replicated store holds it: the fence agent that
 * drives it (fence_apc_snmp, fence_ipmilan…), the agent's parameters, the
 * plug (outlet, port) that cuts each node's power, and its fencing level
 * (level 1 is tried first).  Read through store_fence_device_of().
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

#define STORE_FENCE_LEVEL_MAX 9

typedef struct store_fence_param {
	const char *key;
	const char *value;
} store_fence_param;

typedef struct store_fence_plug {
	const char *node;
	const char *plug;
} store_fence_plug;

typedef struct store_fence_device {
	const char *agent;
	const store_fence_param *params;  /* sorted by key */
	size_t n_params;
	const store_fence_plug *plugs;    /* sorted by node */
	size_t n_plugs;
	unsigned level;                   /* 1 (first) to STORE_FENCE_LEVEL_MAX */
} store_fence_device;

const store_fence_device *store_fence_device_of(const store_object *o);
/* The device's plug for @node, or NULL. */
const char *store_fence_device_plug(const store_fence_device *d, const char *node);
/* Is there a fence device with a plug for @node? */
bool store_fence_covers(store_state *st, const char *node);

/*
 * Check what an operator gives for a new device; on failure @error names
 * the parameter or plug.  @params: {key: value}, @plugs: {node: plug}.
 */
bool store_fence_device_check(store_state *st, json_t *params, json_t *plugs, GError **error);
/* A new device (checked with store_fence_device_check()). */
json_t *store_fence_device_cmd_create(const char *uuid, const char *name, const char *agent,
				      json_t *params, json_t *plugs, unsigned level);
json_t *store_fence_device_cmd_remove(const store_object *dev);

/* Parameters whose values are secrets (shown as "********"). */
bool store_fence_param_is_secret(const char *key);

bool store_fence_device_validate(json_t *data, GError **error);
void *store_fence_device_parse(json_t *data);
void store_fence_device_free(void *typed);
