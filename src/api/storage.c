/*
 * Storages as a resource: list them and show one, each with what every
 * node found of it (reachable, or the problem; a dir storage's size and
 * free space), add one (a dir storage's directory made ready on this node
 * first: storage_dir.h), remove one (apply refuses it while disks or ISOs
 * are on it).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"
#include "api/storage_dir.h"

#include "common/error.h"
#include "common/json.h"
#include "store/node.h"
#include "store/storage.h"

#include <string.h>

json_t *api_reach_json(api_ctx *a, const char *uuid)
{
	g_autoptr(json_t) found = herd_ha_reach(a->ha, uuid);
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(api_state(a));
	json_t *out = json_object();
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		json_t *r = json_object_get(found, n->name);
		json_object_set_new(out, n->name,
				    r ? json_incref(r) :
					json_pack("{s:b,s:s}", "ok", 0, "problem",
						  "its herd does not report (the node or herd is down)"));
	}
	return out;
}

static json_t *storage_json(api_ctx *a, store_object *o)
{
	const store_storage *s = store_storage_of(o);
	json_t *out = json_pack("{s:s,s:s,s:s,s:b}", "name", o->name, "uuid", o->uuid, "type",
				store_storage_type_name(s->type), "cluster_share", s->cluster_share);
	if (s->path)
		json_object_set_new(out, "path", json_string(s->path));
	if (s->portal)
		json_object_set_new(out, "portal", json_string(s->portal));
	if (s->target)
		json_object_set_new(out, "target", json_string(s->target));
	json_object_set_new(out, "nodes", api_reach_json(a, o->uuid));
	return out;
}

static json_t *render_storage(api_ctx *a, json_t *result)
{
	store_object *o = store_state_get(api_state(a), STORE_KIND_STORAGE,
					  json_string_value(json_object_get(result, "uuid")));
	return o ? storage_json(a, o) : json_incref(result);
}

void api_storages_list(http_request *req, gpointer user_data)
{
	api_respond_list(req, user_data, STORE_KIND_STORAGE, storage_json);
}

void api_storage_show(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_STORAGE, "storage");
	if (o)
		http_respond_json(req, 200, storage_json(a, o));
}

typedef struct {
	http_request *req;
	api_ctx *a;
	json_t *fields;
	json_t *cmd;
} add_ctx;

static void add_ctx_free(add_ctx *c)
{
	json_decref(c->fields);
	json_decref(c->cmd);
	g_free(c);
}

/* The directory is ready: the store may have changed meanwhile (another
 * storage at the same path): checked again, then committed. */
static void on_dir_ready(const GError *error, gpointer user)
{
	add_ctx *c = user;
	g_autoptr(GError) err = NULL;
	if (error)
		http_respond_error(c->req, error);
	else if (!api_require_store(c->req, c->a))
		;
	else if (!store_storage_check(api_state(c->a), c->fields, &err))
		http_respond_error(c->req, err);
	else
		api_commit(c->req, c->a, c->cmd, 201, render_storage);
	add_ctx_free(c);
}

void api_storage_add(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const allowed[] = { "name", "type", "path", "portal", "target",
					       "cluster_share", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, allowed, &err);
	const char *name = json_string_value(json_object_get(body, "name"));
	if (!body || !store_name_validate(STORE_KIND_STORAGE, name, &err) || !api_require_store(req, a)) {
		if (err)
			http_respond_error(req, err);
		return;
	}
	store_state *st = api_state(a);
	if (store_state_get_by_name(st, STORE_KIND_STORAGE, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Storage %s exists already.", name);
		return;
	}
	json_t *fields = json_deep_copy(body);
	json_object_del(fields, "name");
	if (!store_storage_check(st, fields, &err)) {
		json_decref(fields);
		http_respond_error(req, err);
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	add_ctx *c = g_new0(add_ctx, 1);
	c->req = req;
	c->a = a;
	c->fields = fields;
	c->cmd = store_storage_cmd_create(uuid, name, fields);
	g_autoptr(store_object) storage = store_object_new(STORE_KIND_STORAGE, uuid, name, 1, 0, 0,
							   json_object_get(c->cmd, "data"));
	if (store_storage_of(storage)->type != STORE_STORAGE_DIR) {
		api_commit(req, a, c->cmd, 201, render_storage);
		add_ctx_free(c);
		return;
	}
	http_request_suspend(req);
	api_storage_dir_prepare(a->node->name, st, storage, on_dir_ready, c);
}

void api_storage_remove(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_STORAGE, "storage");
	if (!o)
		return;
	g_autoptr(json_t) cmd = store_storage_cmd_remove(o);
	api_commit(req, a, cmd, 200, NULL);
}
