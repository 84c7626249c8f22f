#include "store/rule.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"

#include <string.h>

void *store_rule_parse(json_t *d)
{
	store_rule *r = g_new0(store_rule, 1);
	r->apart = g_strcmp0(field_str(d, "kind"), "apart") == 0;
	r->strict = field_bool(d, "strict", true);
	json_t *vms = json_object_get(d, "vms");
	r->vms = g_new0(const char *, json_array_size(vms) + 1);
	for (size_t i = 0; i < json_array_size(vms); i++) {
		const char *v = json_string_value(json_array_get(vms, i));
		if (v)
			r->vms[r->n_vms++] = v;
	}
	return r;
}

void store_rule_free(void *typed)
{
	store_rule *r = typed;
	if (!r)
		return;
	g_free(r->vms);
	g_free(r);
}

const store_rule *store_rule_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_RULE);
	return o->typed;
}

bool store_rule_has(const store_rule *r, const char *vm)
{
	for (size_t i = 0; i < r->n_vms; i++)
		if (strcmp(r->vms[i], vm) == 0)
			return true;
	return false;
}

bool store_rule_validate(json_t *d, GError **error)
{
	if (!field_str(d, "kind")) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A rule needs a kind: together or apart.");
		return false;
	}
	if (!check_choice(d, "rule", "kind", "together|apart", error) || !check_bool(d, "rule", "strict", error))
		return false;
	json_t *vms = json_object_get(d, "vms");
	if (!json_is_array(vms) || json_array_size(vms) < 2 || json_array_size(vms) > STORE_RULE_VMS_MAX) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A rule names 2 to %d VMs.", STORE_RULE_VMS_MAX);
		return false;
	}
	for (size_t i = 0; i < json_array_size(vms); i++) {
		const char *v = json_string_value(json_array_get(vms, i));
		if (!v || !store_uuid_is_valid(v)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "A rule's VMs are VM UUIDs.");
			return false;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(json_string_value(json_array_get(vms, j)), v) == 0) {
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "A rule names VM %s twice.", v);
				return false;
			}
	}
	return true;
}

json_t *store_rule_cmd_create(const char *uuid, const char *name, bool apart, bool strict,
			      const char *const *vms, size_t n)
{
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_string(vms[i]));
	return store_cmd_create(STORE_KIND_RULE, uuid, name,
				json_pack("{s:s,s:b,s:o}", "kind", apart ? "apart" : "together", "strict",
					  strict, "vms", list));
}

json_t *store_rule_cmd_delete(const store_object *rule)
{
	return store_cmd_delete(STORE_KIND_RULE, rule->uuid, rule->version);
}
