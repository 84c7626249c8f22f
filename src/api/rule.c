/*
 * Affinity rules as a resource (herd rule): list, show, add, delete.  A
 * rule keeps its VMs on one node (together) or on different nodes (apart),
 * strictly or as a preference (store/rule.h; how the scheduler weighs
 * them: ha/affinity.h).  A rule is shown with where its VMs run and
 * whether it holds there now.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "store/rule.h"
#include "store/vm.h"

#include <string.h>

/* Does @r hold where its running VMs are now (assigned nodes)? */
static bool rule_holds(store_state *st, const store_rule *r)
{
	const char *first = NULL;
	for (size_t i = 0; i < r->n_vms; i++) {
		store_object *o = store_state_get(st, STORE_KIND_VM, r->vms[i]);
		const store_vm *vm = o ? store_vm_of(o) : NULL;
		if (!vm || !vm->target_running || !vm->node)
			continue;
		for (size_t j = 0; r->apart && j < i; j++) {
			store_object *p = store_state_get(st, STORE_KIND_VM, r->vms[j]);
			const store_vm *other = p ? store_vm_of(p) : NULL;
			if (other && other->target_running && g_strcmp0(other->node, vm->node) == 0)
				return false;
		}
		if (!r->apart && first && strcmp(first, vm->node) != 0)
			return false;
		first = first ? first : vm->node;
	}
	return true;
}

static json_t *rule_json(api_ctx *a, store_object *o)
{
	store_state *st = api_state(a);
	const store_rule *r = store_rule_of(o);
	json_t *vms = json_array();
	for (size_t i = 0; i < r->n_vms; i++) {
		store_object *vm = store_state_get(st, STORE_KIND_VM, r->vms[i]);
		const store_vm *d = vm ? store_vm_of(vm) : NULL;
		json_t *e = json_pack("{s:s,s:s}", "uuid", r->vms[i], "name", vm ? vm->name : "?");
		json_object_set_new(e, "node", d && d->target_running && d->node ? json_string(d->node) : json_null());
		json_array_append_new(vms, e);
	}
	return json_pack("{s:s,s:s,s:s,s:b,s:o,s:b}", "name", o->name, "uuid", o->uuid, "kind",
			 r->apart ? "apart" : "together", "strict", r->strict, "vms", vms, "holds",
			 rule_holds(st, r));
}

void api_rules_list(http_request *req, gpointer user_data)
{
	api_respond_list(req, user_data, STORE_KIND_RULE, rule_json);
}

void api_rule_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_RULE, "rule");
	if (o)
		http_respond_json(req, 200, rule_json(a, o));
}

/* A strict rule of the other kind that names two of @uuids: the two rules
 * could never both hold. */
static store_object *contradiction(store_state *st, bool apart, const char *const *uuids, size_t n)
{
	g_autoptr(GPtrArray) rules = store_state_list(st, STORE_KIND_RULE);
	for (guint i = 0; i < rules->len; i++) {
		const store_rule *r = store_rule_of(rules->pdata[i]);
		if (!r->strict || r->apart == apart)
			continue;
		size_t shared = 0;
		for (size_t k = 0; k < n; k++)
			shared += store_rule_has(r, uuids[k]);
		if (shared >= 2)
			return rules->pdata[i];
	}
	return NULL;
}

void api_rule_add(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "kind", "strict", "vms", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = NULL, *kind = NULL;
	bool strict = true;
	if (!body || !api_get_string(body, "name", &name, &err) ||
	    !store_name_validate(STORE_KIND_RULE, name, &err) || !api_get_string(body, "kind", &kind, &err) ||
	    !api_get_bool(body, "strict", &strict, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!kind || (strcmp(kind, "together") != 0 && strcmp(kind, "apart") != 0)) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Field 'kind' must be together (the VMs run on one node) or apart (on different nodes).");
		return;
	}
	json_t *vms = json_object_get(body, "vms");
	if (!json_is_array(vms) || json_array_size(vms) < 2 || json_array_size(vms) > STORE_RULE_VMS_MAX) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Field 'vms' must list 2 to %d VMs (names or UUIDs).",
				    STORE_RULE_VMS_MAX);
		return;
	}
	if (!api_require_store(req, a))
		return;
	store_state *st = api_state(a);
	if (store_state_get_by_name(st, STORE_KIND_RULE, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Rule %s exists already.", name);
		return;
	}
	size_t n = json_array_size(vms);
	g_autofree const char **uuids = g_new0(const char *, n + 1);
	for (size_t i = 0; i < n; i++) {
		const char *ref = json_string_value(json_array_get(vms, i));
		if (!ref) {
			http_respond_errorf(req, HERD_ERR_INVALID, "Field 'vms' must list VMs by name or UUID.");
			return;
		}
		store_object *vm = api_lookup(a, STORE_KIND_VM, ref, &err);
		if (!vm) {
			http_respond_error(req, err);
			return;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(uuids[j], vm->uuid) == 0) {
				http_respond_errorf(req, HERD_ERR_INVALID, "VM %s is named twice.", vm->name);
				return;
			}
		uuids[i] = vm->uuid;
	}
	bool apart = strcmp(kind, "apart") == 0;
	store_object *other = strict ? contradiction(st, apart, uuids, n) : NULL;
	if (other) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "Strict rule %s keeps two of these VMs %s: both rules could never hold.",
				    other->name, apart ? "together" : "apart");
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	g_autoptr(json_t) cmd = store_rule_cmd_create(uuid, name, apart, strict, uuids, n);
	api_commit(req, a, cmd, 201, NULL);
}

void api_rule_delete(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_RULE, "rule");
	if (!o)
		return;
	g_autoptr(json_t) cmd = store_rule_cmd_delete(o);
	api_commit(req, a, cmd, 200, NULL);
}
