#include "store/group.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"
#include "store/state.h"
#include "store/user.h"

#include <string.h>

typedef struct {
	store_group pub;
	GPtrArray *roles, *pools, *members; /* borrowed strings, NULL-terminated */
} group_typed;

static GPtrArray *strings_of(json_t *d, const char *key)
{
	GPtrArray *a = g_ptr_array_new();
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(d, key), i, v)
		if (json_is_string(v))
			g_ptr_array_add(a, (gpointer)json_string_value(v));
	g_ptr_array_add(a, NULL);
	return a;
}

void *store_group_parse(json_t *d)
{
	group_typed *g = g_new0(group_typed, 1);
	g->roles = strings_of(d, "roles");
	g->pools = strings_of(d, "pools");
	g->members = strings_of(d, "members");
	g->pub.roles = (const char *const *)g->roles->pdata;
	g->pub.pools = (const char *const *)g->pools->pdata;
	g->pub.members = (const char *const *)g->members->pdata;
	return g;
}

void store_group_free(void *typed)
{
	group_typed *g = typed;
	if (!g)
		return;
	g_ptr_array_free(g->roles, TRUE);
	g_ptr_array_free(g->pools, TRUE);
	g_ptr_array_free(g->members, TRUE);
	g_free(g);
}

const store_group *store_group_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_GROUP);
	return o->typed;
}

bool store_group_has_role(const store_group *g, const char *role)
{
	return g_strv_contains((const char *const *)g->roles, role);
}

bool store_group_has_member(const store_group *g, const char *user_uuid)
{
	return g_strv_contains((const char *const *)g->members, user_uuid);
}

bool store_user_has_role(store_state *st, const store_object *user, const char *role)
{
	if (strcmp(store_user_of(user)->role, role) == 0)
		return true;
	g_autoptr(GPtrArray) groups = store_state_list(st, STORE_KIND_GROUP);
	for (guint i = 0; i < groups->len; i++) {
		const store_group *g = store_group_of(groups->pdata[i]);
		if (store_group_has_member(g, user->uuid) && store_group_has_role(g, role))
			return true;
	}
	return false;
}

/* @key, if present, is an array of strings each of which @ok accepts. */
static bool check_list(json_t *d, const char *key, bool (*ok)(const char *), const char *what,
		       GError **error)
{
	json_t *list = json_object_get(d, key);
	if (!list)
		return true;
	if (!json_is_array(list)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "A group's '%s' must be a list.", key);
		return false;
	}
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		if (!json_is_string(v) || !ok(json_string_value(v))) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "A group's '%s' must hold %s; entry %zu does not.", key, what, i + 1);
			return false;
		}
	}
	return true;
}

static bool pool_name_ok(const char *name)
{
	return store_name_validate(STORE_KIND_GROUP, name, NULL);
}

bool store_group_validate(json_t *d, GError **error)
{
	return check_list(d, "roles", store_role_valid, "roles (" STORE_ROLES ")", error) &&
	       check_list(d, "pools", pool_name_ok, "VM pool names", error) &&
	       check_list(d, "members", store_uuid_is_valid, "user UUIDs", error);
}

json_t *store_group_cmd_create(const char *uuid, const char *name, json_t *roles, json_t *pools,
			       json_t *members)
{
	return store_cmd_create(STORE_KIND_GROUP, uuid, name,
				json_pack("{s:o,s:o,s:o}", "roles", roles, "pools", pools, "members",
					  members));
}

json_t *store_group_cmd_patch(const store_object *group, json_t *fields)
{
	return store_cmd_patch(STORE_KIND_GROUP, group->uuid, fields);
}
