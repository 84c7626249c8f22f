/*
 * Groups of users: the roles they give their members and the VM pools
 * their operators are limited to.  Members are named by user name in the
 * API and kept by UUID in the store.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "store/command.h"
#include "store/group.h"
#include "store/user.h"

#include <string.h>

static json_t *strings_json(const char *const *v)
{
	json_t *a = json_array();
	for (; *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

json_t *api_group_json(api_ctx *a, store_object *o)
{
	const store_group *g = store_group_of(o);
	json_t *members = json_array();
	for (const char *const *m = g->members; *m; m++) {
		store_object *u = store_state_get(api_state(a), STORE_KIND_USER, *m);
		if (u)
			json_array_append_new(members, json_string(u->name));
	}
	return json_pack("{s:s,s:s,s:o,s:o,s:o}", "name", o->name, "uuid", o->uuid, "roles",
			 strings_json(g->roles), "pools", strings_json(g->pools), "members", members);
}

void api_groups_list(http_request *req, gpointer user_data)
{
	api_respond_list(req, user_data, STORE_KIND_GROUP, api_group_json);
}

void api_group_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *g = api_lookup_param(req, a, STORE_KIND_GROUP, "group");
	if (g)
		http_respond_json(req, 200, api_group_json(a, g));
}

static json_t *render_group(api_ctx *a, json_t *result)
{
	store_object *g = store_state_get(api_state(a), STORE_KIND_GROUP,
					  json_string_value(json_object_get(result, "uuid")));
	return g ? api_group_json(a, g) : json_incref(result);
}

/* @body's list @key of strings each of which @ok accepts, or NULL with an
 * error naming the field (absent: an empty list, *@present false). */
static json_t *string_list(json_t *body, const char *key, bool (*ok)(const char *),
			   const char *what, bool *present, GError **error)
{
	json_t *v = json_object_get(body, key);
	*present = v != NULL;
	if (!v)
		return json_array();
	size_t i;
	json_t *e;
	bool good = json_is_array(v);
	json_array_foreach(v, i, e)
		good = good && json_is_string(e) && ok(json_string_value(e));
	if (!good) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Field '%s' must be a list of %s.", key,
			    what);
		return NULL;
	}
	return json_deep_copy(v);
}

static bool pool_ok(const char *name)
{
	return store_name_validate(STORE_KIND_GROUP, name, NULL);
}

static bool any_name(const char *name)
{
	return *name != '\0';
}

/* User names -> UUIDs (array), or NULL with a NOT_FOUND error naming the first unknown. */
static json_t *member_uuids(api_ctx *a, json_t *names, GError **error)
{
	json_t *uuids = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(names, i, e) {
		store_object *u = store_state_lookup(api_state(a), STORE_KIND_USER, json_string_value(e));
		if (!u) {
			json_decref(uuids);
			g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND, "User '%s' is not defined.",
				    json_string_value(e));
			return NULL;
		}
		json_array_append_new(uuids, json_string(u->uuid));
	}
	return uuids;
}

static bool role_ok(const char *role)
{
	return store_role_valid(role);
}

void api_group_add(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "roles", "pools", "members", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = NULL;
	bool present;
	g_autoptr(json_t) roles = body ? string_list(body, "roles", role_ok, "roles (" STORE_ROLES ")", &present, &err) : NULL;
	g_autoptr(json_t) pools = roles ? string_list(body, "pools", pool_ok, "VM pool names", &present, &err) : NULL;
	g_autoptr(json_t) names = pools ? string_list(body, "members", any_name, "user names", &present, &err) : NULL;
	if (!names || !api_get_string(body, "name", &name, &err) ||
	    !(name ? store_name_validate(STORE_KIND_GROUP, name, &err) : false)) {
		if (!err)
			g_set_error(&err, HERD_ERROR, HERD_ERR_INVALID, "A group needs a name.");
		http_respond_error(req, err);
		return;
	}
	if (!api_require_store(req, a))
		return;
	if (store_state_get_by_name(api_state(a), STORE_KIND_GROUP, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Group '%s' exists already.", name);
		return;
	}
	json_t *members = member_uuids(a, names, &err);
	if (!members) {
		http_respond_error(req, err);
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	g_autoptr(json_t) cmd = store_group_cmd_create(uuid, name, g_steal_pointer(&roles),
						       g_steal_pointer(&pools), members);
	api_commit(req, a, cmd, 201, render_group);
}

void api_group_set(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "roles", "pools", "members", "add_members",
					      "remove_members", NULL };
	g_autoptr(GError) err = NULL;
	store_object *g = api_lookup(a, STORE_KIND_GROUP, http_request_param(req, "group"), &err);
	g_autoptr(json_t) body = g ? api_body(req, fields, &err) : NULL;
	bool has_roles = false, has_pools = false, has_members = false, has_add = false, has_remove = false;
	g_autoptr(json_t) roles = body ? string_list(body, "roles", role_ok, "roles (" STORE_ROLES ")", &has_roles, &err) : NULL;
	g_autoptr(json_t) pools = roles ? string_list(body, "pools", pool_ok, "VM pool names", &has_pools, &err) : NULL;
	g_autoptr(json_t) names = pools ? string_list(body, "members", any_name, "user names", &has_members, &err) : NULL;
	g_autoptr(json_t) add = names ? string_list(body, "add_members", any_name, "user names", &has_add, &err) : NULL;
	g_autoptr(json_t) remove = add ? string_list(body, "remove_members", any_name, "user names", &has_remove, &err) : NULL;
	g_autoptr(json_t) members = remove ? member_uuids(a, names, &err) : NULL;
	g_autoptr(json_t) added = members ? member_uuids(a, add, &err) : NULL;
	g_autoptr(json_t) removed = added ? member_uuids(a, remove, &err) : NULL;
	if (!removed) {
		http_respond_error(req, err);
		return;
	}
	if (!has_roles && !has_pools && !has_members && !has_add && !has_remove) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Nothing to change: give roles, pools, members, add_members or remove_members.");
		return;
	}
	json_t *data = json_object();
	if (has_roles)
		json_object_set(data, "roles", roles);
	if (has_pools)
		json_object_set(data, "pools", pools);
	if (has_members || has_add || has_remove) {
		/* The members now, or as given; then those added, less those removed. */
		json_t *result = json_array();
		GPtrArray *base = g_ptr_array_new();
		if (has_members) {
			size_t i;
			json_t *e;
			json_array_foreach(members, i, e)
				g_ptr_array_add(base, (gpointer)json_string_value(e));
		} else {
			for (const char *const *m = store_group_of(g)->members; *m; m++)
				g_ptr_array_add(base, (gpointer)*m);
		}
		size_t i;
		json_t *e;
		json_array_foreach(added, i, e)
			g_ptr_array_add(base, (gpointer)json_string_value(e));
		for (guint k = 0; k < base->len; k++) {
			const char *m = base->pdata[k];
			bool dup = false, gone = false;
			for (guint j = 0; j < k && !dup; j++)
				dup = strcmp(base->pdata[j], m) == 0;
			json_array_foreach(removed, i, e)
				gone = gone || strcmp(json_string_value(e), m) == 0;
			if (!dup && !gone)
				json_array_append_new(result, json_string(m));
		}
		g_ptr_array_free(base, TRUE);
		json_object_set_new(data, "members", result);
	}
	json_t *cmd = store_group_cmd_patch(g, data);
	store_cmd_if_version(cmd, g->version);
	api_commit(req, a, cmd, 200, render_group);
	json_decref(cmd);
}

void api_group_remove(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *g = api_lookup_param(req, a, STORE_KIND_GROUP, "group");
	if (!g)
		return;
	g_autoptr(json_t) cmd = store_cmd_delete(STORE_KIND_GROUP, g->uuid, g->version);
	g_autoptr(json_t) answer = json_pack("{s:s,s:s}", "name", g->name, "uuid", g->uuid);
	api_commit_answer(req, a, cmd, 200, answer);
}
