#include "store/guard.h"

#include "common/error.h"
#include "store/group.h"
#include "store/node.h"
#include "store/user.h"
#include "store/vm.h"

#include <string.h>

static bool refuse(const char *node, const char *what, GError **error)
{
	g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
		    "Node %s is lost and not fenced yet: %s until it is fenced or confirmed down "
		    "('herd node confirm-down %s' once you know it is off).",
		    node, what, node);
	return false;
}

/* Does @patch set only fields among @keys (NULL-terminated)? */
static bool only_keys(json_t *patch, const char *const *keys)
{
	const char *key;
	json_t *v;
	json_object_foreach(patch, key, v)
		if (!g_strv_contains(keys, key))
			return false;
	return true;
}

static const char *lost_one(GHashTable *lost, const char *node)
{
	return node && g_hash_table_contains(lost, node) ? node : NULL;
}

static bool check_node(store_state *st, json_t *op, const char *name, GHashTable *lost,
		       GError **error)
{
	static const char *const resolving[] = { "down", "fence_history", NULL };
	const char *verb = json_string_value(json_object_get(op, "op"));
	if (g_strcmp0(verb, "create") == 0 || g_strcmp0(verb, "delete") == 0) {
		GHashTableIter it;
		gpointer first;
		g_hash_table_iter_init(&it, lost);
		g_hash_table_iter_next(&it, &first, NULL);
		return refuse(first, "no node joins or leaves the cluster", error);
	}
	if (!lost_one(lost, name))
		return true;
	if (g_strcmp0(verb, "patch") == 0 && only_keys(json_object_get(op, "data"), resolving))
		return true;
	return refuse(name, "nothing about it changes", error);
}

static bool check_vm(store_state *st, json_t *op, GHashTable *lost, GError **error)
{
	static const char *const stopping[] = { "target", "stop", "failed", "live_failed", NULL };
	const char *uuid = json_string_value(json_object_get(op, "uuid"));
	json_t *data = json_object_get(op, "data");
	store_object *vm = uuid ? store_state_get(st, STORE_KIND_VM, uuid) : NULL;
	const store_vm *v = vm ? store_vm_of(vm) : NULL;
	const char *places[] = {
		v ? v->node : NULL,
		v ? v->move_to : NULL,
		json_string_value(json_object_get(data, "node")),
		json_string_value(json_object_get(data, "move_to")),
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(places); i++) {
		const char *node = lost_one(lost, places[i]);
		if (!node)
			continue;
		/* Stopping it goes on: its node stops it if it comes back. */
		if (g_strcmp0(json_string_value(json_object_get(op, "op")), "patch") == 0 &&
		    only_keys(data, stopping) &&
		    g_strcmp0(json_string_value(json_object_get(data, "target")), "stopped") == 0)
			return true;
		g_autofree char *what = g_strdup_printf("VM %s, which it may still run, does not change",
							vm ? vm->name : json_string_value(json_object_get(op, "name")));
		return refuse(node, what, error);
	}
	return true;
}

/* Invariant 1 while a VM migrates live: its source migrates it to one
 * destination, which a change may not swap for another (the source might
 * start a second migration while the first one still runs).  Giving the
 * move up (move_to null) and placing the VM (node set with it: the
 * coordinator's assign, which ends any move) go on. */
static bool check_live_move(store_state *st, json_t *op, GError **error)
{
	const char *uuid = json_string_value(json_object_get(op, "uuid"));
	store_object *vm = uuid ? store_state_get(st, STORE_KIND_VM, uuid) : NULL;
	const store_vm *v = vm ? store_vm_of(vm) : NULL;
	if (!v || !v->move_live || g_strcmp0(json_string_value(json_object_get(op, "op")), "patch") != 0)
		return true;
	json_t *data = json_object_get(op, "data");
	const char *to = json_string_value(json_object_get(data, "move_to"));
	const char *move = json_string_value(json_object_get(data, "move"));
	if (json_object_get(data, "node") || (!to && !move) ||
	    (g_strcmp0(to ? to : v->move_to, v->move_to) == 0 && g_strcmp0(move, "cold") != 0))
		return true;
	g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
		    "VM %s is being migrated live to node %s: it gets no other destination until that "
		    "migration has ended.",
		    vm->name, v->move_to);
	return false;
}

/* A VM bound to a node (sticky) does not move elsewhere: no change gives
 * it another destination than that node (a switchover leaves it out; the
 * scheduler never asks it).  Its binding changed in the same patch counts. */
static bool check_sticky_move(store_state *st, json_t *op, GError **error)
{
	const char *uuid = json_string_value(json_object_get(op, "uuid"));
	store_object *vm = uuid ? store_state_get(st, STORE_KIND_VM, uuid) : NULL;
	json_t *data = json_object_get(op, "data");
	const char *to = json_string_value(json_object_get(data, "move_to"));
	if (!vm || !to || g_strcmp0(json_string_value(json_object_get(op, "op")), "patch") != 0)
		return true;
	json_t *s = json_object_get(data, "sticky");
	const char *sticky = s ? json_string_value(s) : store_vm_of(vm)->sticky;
	if (!sticky || strcmp(sticky, to) == 0)
		return true;
	g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
		    "VM %s is sticky to node %s: it does not move to node %s ('herd vm release %s' lets it move).",
		    vm->name, sticky, to, vm->name);
	return false;
}

static bool check_op(store_state *st, json_t *op, GHashTable *lost, GError **error)
{
	const char *verb = json_string_value(json_object_get(op, "op"));
	if (g_strcmp0(verb, "batch") == 0) {
		size_t i;
		json_t *sub;
		json_array_foreach(json_object_get(op, "ops"), i, sub)
			if (!check_op(st, sub, lost, error))
				return false;
		return true;
	}
	store_kind kind;
	if (!store_kind_parse(json_string_value(json_object_get(op, "kind")), &kind))
		return true; /* apply refuses it */
	if (kind == STORE_KIND_VM)
		return check_live_move(st, op, error) && check_sticky_move(st, op, error) &&
		       (!lost || g_hash_table_size(lost) == 0 || check_vm(st, op, lost, error));
	if (!lost || g_hash_table_size(lost) == 0)
		return true;
	if (kind == STORE_KIND_NODE) {
		const char *uuid = json_string_value(json_object_get(op, "uuid"));
		store_object *n = uuid ? store_state_get(st, STORE_KIND_NODE, uuid) : NULL;
		return check_node(st, op, n ? n->name : NULL, lost, error);
	}
	return true;
}

bool store_guard_apply(store_state *st, json_t *op, GError **error)
{
	store_kind kind;
	if (!store_kind_parse(json_string_value(json_object_get(op, "kind")), &kind) || kind != STORE_KIND_VM)
		return true;
	return check_live_move(st, op, error) && check_sticky_move(st, op, error);
}

bool store_guard_check(store_state *st, json_t *cmd, GHashTable *lost, GError **error)
{
	return check_op(st, cmd, lost, error);
}

/* Is @user an administrator when @changed (a user or group; NULL: none)
 * has the typed data @typed instead (NULL: it is deleted)? */
static bool admin_with(store_state *st, const store_object *user, const store_object *changed,
		       const void *typed)
{
	const store_user *u = store_user_of(user);
	if (changed && changed == user) {
		if (!typed)
			return false;
		u = typed;
	}
	if (strcmp(u->role, "admin") == 0)
		return true;
	g_autoptr(GPtrArray) groups = store_state_list(st, STORE_KIND_GROUP);
	for (guint i = 0; i < groups->len; i++) {
		const store_object *go = groups->pdata[i];
		const store_group *g = store_group_of(go);
		if (changed && changed == go) {
			if (!typed)
				continue;
			g = typed;
		}
		if (store_group_has_member(g, user->uuid) && store_group_has_role(g, "admin"))
			return true;
	}
	return false;
}

bool store_guard_admins(store_state *st, const store_object *old, json_t *data, GError **error)
{
	if (old->kind != STORE_KIND_USER && old->kind != STORE_KIND_GROUP)
		return true;
	void *typed = NULL;
	if (data)
		typed = old->kind == STORE_KIND_USER ? store_user_parse(data) : store_group_parse(data);
	g_autoptr(GPtrArray) users = store_state_list(st, STORE_KIND_USER);
	const store_object *last = NULL;
	unsigned before = 0, after = 0;
	for (guint i = 0; i < users->len; i++) {
		const store_object *u = users->pdata[i];
		if (admin_with(st, u, NULL, NULL)) {
			before++;
			last = u;
		}
		after += admin_with(st, u, old, typed);
	}
	if (typed)
		old->kind == STORE_KIND_USER ? store_user_free(typed) : store_group_free(typed);
	if (before == 0 || after > 0)
		return true;
	g_autofree char *what = old->kind == STORE_KIND_USER
					? g_strdup(data ? "taking the admin role from it" : "removing it")
					: data ? g_strdup_printf("this change of group '%s'", old->name)
					       : g_strdup_printf("removing group '%s'", old->name);
	if (before > 1)
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The cluster's %u administrators have the admin role only through group '%s': "
			    "%s would leave no administrator; give a user the admin role of its own first.",
			    before, old->name, what);
	else
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "User '%s' is the cluster's last administrator: %s would leave none; give "
			    "another user the admin role first.", last->name, what);
	return false;
}
