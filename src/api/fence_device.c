/*
 * Fence devices as a resource: list them (secrets masked), add one (its
 * plugs checked against what the device lists), remove one, and test one
 * (every plug's power state, read through its agent).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "ha/fence.h"
#include "store/fence_device.h"

#include <string.h>


static json_t *fence_device_json(api_ctx *a, store_object *dev)
{
	const store_fence_device *d = store_fence_device_of(dev);
	json_t *params = json_object();
	for (size_t i = 0; i < d->n_params; i++) {
		const store_fence_param *p = &d->params[i];
		json_object_set_new(params, p->key,
				    json_string(store_fence_param_is_secret(p->key) ? "********" : p->value));
	}
	json_t *plugs = json_object();
	for (size_t i = 0; i < d->n_plugs; i++)
		json_object_set_new(plugs, d->plugs[i].node, json_string(d->plugs[i].plug));
	/* Its agents waiting for a fence (ha/fence_standby.h), per node. */
	json_t *waiting = json_object();
	g_autoptr(json_t) standby = a->ha ? herd_ha_fence_standby(a->ha) : NULL;
	const char *node;
	json_t *devices;
	json_object_foreach(standby, node, devices) {
		json_t *pids = json_object_get(json_object_get(devices, dev->name), "pids");
		if (json_array_size(pids))
			json_object_set(waiting, node, pids);
	}
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:i,s:o}", "name", dev->name, "uuid", dev->uuid, "agent",
			 d->agent, "params", params, "plugs", plugs, "level", (int)d->level, "waiting", waiting);
}

void api_fence_devices_list(http_request *req, gpointer user_data)
{
	api_respond_list(req, user_data, STORE_KIND_FENCE_DEVICE, fence_device_json);
}

typedef struct {
	http_request *req;
	api_ctx *a;
	json_t *cmd;
	json_t *plugs;
	herd_fence_target *lister;
} add_ctx;

/* Plugs the device does not list are refused: over SNMP such a plug
 * switches "off" with success, and fencing through it would cut nothing.
 * A device that cannot be reached (or cannot list) is taken as given. */
static void on_add_listed(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	add_ctx *c = user;
	g_autoptr(GHashTable) listed = ok ? herd_fence_parse_list(detail) : NULL;
	const char *node;
	json_t *plug;
	if (!ok)
		log_warn("fence device %s: its plugs could not be checked: %s", device, detail);
	json_object_foreach(c->plugs, node, plug) {
		if (listed && !g_hash_table_contains(listed, json_string_value(plug))) {
			http_respond_errorf(c->req, HERD_ERR_INVALID,
					    "Plug %s (node %s) is not an outlet of %s: the device lists %u, and a plug it does not have would report 'off' without cutting any power.",
					    json_string_value(plug), node, device, g_hash_table_size(listed));
			goto out;
		}
	}
	api_commit(c->req, c->a, c->cmd, 201, NULL);
out:
	json_decref(c->cmd);
	json_decref(c->plugs);
	herd_fence_target_free(c->lister);
	g_free(c);
}

void api_fence_device_add(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "agent", "params", "plugs", "level", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *agent = json_string_value(json_object_get(body, "agent"));
	json_t *params = json_object_get(body, "params");
	json_t *plugs = json_object_get(body, "plugs");
	long long level = 1;
	if (!body || !store_name_validate(STORE_KIND_FENCE_DEVICE, name, &err) ||
	    !herd_fence_agent_valid(agent, &err) || !api_get_int(body, "level", 1, 9, &level, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!store_fence_device_check(api_state(a), params, plugs, &err)) {
		http_respond_error(req, err);
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	add_ctx *c = g_new0(add_ctx, 1);
	c->req = req;
	c->a = a;
	c->cmd = store_fence_device_cmd_create(uuid, name, agent, params, plugs, (unsigned)level);
	c->plugs = json_incref(plugs);
	/* The device as it will be stored, to ask its agent for its plugs. */
	g_autoptr(store_object) dev = store_object_new(STORE_KIND_FENCE_DEVICE, uuid, name, 1, 0, 0,
						       json_object_get(c->cmd, "data"));
	c->lister = herd_fence_target_new(dev, NULL);
	http_request_suspend(req);
	herd_fence_agent_action(c->lister, "list", on_add_listed, c);
}

void api_fence_device_remove(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *dev = api_lookup_param(req, a, STORE_KIND_FENCE_DEVICE, "dev");
	if (!dev)
		return;
	g_autoptr(json_t) cmd = store_fence_device_cmd_remove(dev);
	api_commit(req, a, cmd, 200, NULL);
}

typedef struct {
	http_request *req;
	GPtrArray *targets;   /* herd_fence_target* */
	GPtrArray *nodes;     /* node name of each target */
	herd_fence_target *lister;
	GHashTable *listed;   /* plugs the device lists, or NULL if it cannot list */
	json_t *results;
	guint pending;
} test_ctx;

typedef struct {
	test_ctx *c;
	herd_fence_target *t;
	char *node;
} test_one;

static void test_ctx_free(test_ctx *c)
{
	g_ptr_array_free(c->targets, TRUE);
	g_ptr_array_free(c->nodes, TRUE);
	herd_fence_target_free(c->lister);
	if (c->listed)
		g_hash_table_destroy(c->listed);
	json_decref(c->results);
	g_free(c);
}

static void on_test_one(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	test_one *o = user;
	test_ctx *c = o->c;
	/* Over SNMP a plug the device does not have can read "off": a power
	 * state counts only for a plug the device lists. */
	if (ok && c->listed && !g_hash_table_contains(c->listed, o->t->plug)) {
		g_autofree char *why = g_strdup_printf("plug %s is not an outlet of %s (its list has %u)",
						       o->t->plug, device, g_hash_table_size(c->listed));
		json_array_append_new(c->results, json_pack("{s:s,s:s,s:b,s:s,s:f}", "node", o->node, "plug",
							    o->t->plug, "ok", 0, "error", why, "seconds", secs));
	} else {
		json_array_append_new(c->results, json_pack("{s:s,s:s,s:b,s:s,s:f}", "node", o->node, "plug",
							    o->t->plug, "ok", ok, ok ? "power" : "error", detail,
							    "seconds", secs));
	}
	g_free(o->node);
	g_free(o);
	if (--c->pending == 0) {
		http_respond_json(c->req, 200, json_incref(c->results));
		test_ctx_free(c);
	}
}

/* The device's outlets first (if its agent can list them), then the power
 * state of every plug. */
static void on_test_list(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	test_ctx *c = user;
	c->listed = ok ? herd_fence_parse_list(detail) : NULL;
	c->pending = c->targets->len;
	for (guint i = 0; i < c->targets->len; i++) {
		test_one *o = g_new0(test_one, 1);
		o->c = c;
		o->t = c->targets->pdata[i];
		o->node = g_strdup(c->nodes->pdata[i]);
		herd_fence_agent_action(o->t, "status", on_test_one, o);
	}
}

void api_fence_device_test(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *dev = api_lookup_param(req, a, STORE_KIND_FENCE_DEVICE, "dev");
	if (!dev)
		return;
	const store_fence_device *fd = store_fence_device_of(dev);
	if (fd->n_plugs == 0) {
		http_respond_json(req, 200, json_array());
		return;
	}
	test_ctx *c = g_new0(test_ctx, 1);
	c->req = req;
	c->results = json_array();
	c->targets = g_ptr_array_new_with_free_func((GDestroyNotify)herd_fence_target_free);
	c->nodes = g_ptr_array_new_with_free_func(g_free);
	for (size_t i = 0; i < fd->n_plugs; i++) {
		g_ptr_array_add(c->targets, herd_fence_target_new(dev, fd->plugs[i].plug));
		g_ptr_array_add(c->nodes, g_strdup(fd->plugs[i].node));
	}
	c->lister = herd_fence_target_new(dev, NULL);
	http_request_suspend(req);
	herd_fence_agent_action(c->lister, "list", on_test_list, c);
}

