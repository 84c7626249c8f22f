/*
 * VM configuration: define, change herd's attributes, undefine, dumpxml,
 * list, and the configuration history with restore (UVMM's workflow).
 * Running VMs belongs to the HA engine.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "ha/ha.h"
#include "store/vm.h"
#include "virt/domxml.h"

#include <string.h>

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *api_vm_json(herdd *d, store_object *vm, bool with_xml)
{
	const store_vm *v = store_vm_of(vm);
	json_t *j = json_pack("{s:s,s:s,s:I,s:b,s:o,s:b,s:i,s:I,s:i,s:s,s:s,s:n,s:I}",
			      "name", vm->name, "uuid", vm->uuid, "version", (json_int_t)vm->version,
			      "ha", v->ha,
			      "preferred", string_or_null(v->preferred),
			      "failback", v->failback,
			      "shutdown_timeout_s", (int)v->shutdown_timeout_s,
			      "memory_mib", (json_int_t)v->memory_mib,
			      "vcpus", (int)v->vcpus,
			      "type", v->type,
			      "state", "shut off",
			      "node",
			      "modified_ms", (json_int_t)vm->modified_ms);
	json_object_set_new(j, "target", json_string(v->target_running ? "running" : "stopped"));
	json_object_set_new(j, "sticky", string_or_null(v->sticky));
	json_object_set_new(j, "group", string_or_null(v->group));
	json_object_set_new(j, "assigned", string_or_null(v->node));
	if (d->ha) {
		herd_vm_runtime rt;
		herd_ha_vm_runtime(d->ha, vm, &rt);
		json_object_set_new(j, "state", json_string(rt.state));
		json_object_set_new(j, "node", string_or_null(rt.node));
		json_object_set_new(j, "since_ms", json_integer(rt.since_ms));
		if (rt.error)
			json_object_set_new(j, "error", json_string(rt.error));
		if (rt.alert)
			json_object_set_new(j, "alert", json_string(rt.alert));
		if (rt.node && rt.since_ms > 0)
			json_object_set_new(j, "uptime_s",
					    json_integer((g_get_real_time() / 1000 - rt.since_ms) / 1000));
	}
	if (with_xml)
		json_object_set_new(j, "xml", json_string(v->xml));
	return j;
}

/* Herd's VM attributes in @body, checked against the store. */
static bool vm_attributes_parse(herdd *d, json_t *body, store_vm_attrs *a, GError **error)
{
	static const struct {
		const char *key;
		unsigned bit;
		const char *what;
	} strings[] = {
		{ "preferred", STORE_VM_SET_PREFERRED, "a node name" },
		{ "sticky", STORE_VM_SET_STICKY, "a node of this cluster" },
		{ "group", STORE_VM_SET_GROUP, "a group name" },
	};
	long long n;
	*a = (store_vm_attrs){ 0 };
	if (json_object_get(body, "ha")) {
		if (!api_get_bool(body, "ha", &a->ha, error))
			return false;
		a->set |= STORE_VM_SET_HA;
	}
	if (json_object_get(body, "failback")) {
		if (!api_get_bool(body, "failback", &a->failback, error))
			return false;
		a->set |= STORE_VM_SET_FAILBACK;
	}
	if (json_object_get(body, "shutdown_timeout_s")) {
		if (!api_get_int(body, "shutdown_timeout_s", 1, STORE_VM_SHUTDOWN_TIMEOUT_MAX_S, &n, error))
			return false;
		a->shutdown_timeout_s = (unsigned)n;
		a->set |= STORE_VM_SET_SHUTDOWN_TIMEOUT;
	}
	for (unsigned i = 0; i < G_N_ELEMENTS(strings); i++) {
		json_t *v = json_object_get(body, strings[i].key);
		if (!v)
			continue;
		if (!json_is_null(v) && !json_is_string(v)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Field '%s' must be %s or null.",
				    strings[i].key, strings[i].what);
			return false;
		}
		const char *value = json_string_value(v);
		if (strings[i].bit == STORE_VM_SET_PREFERRED)
			a->preferred = value;
		else if (strings[i].bit == STORE_VM_SET_STICKY)
			a->sticky = value;
		else
			a->group = value;
		a->set |= strings[i].bit;
	}
	return store_vm_attrs_check(herd_cluster_state(d->cluster), a, error);
}

static json_t *render_vm(herdd *d, json_t *result)
{
	store_object *vm = store_state_get(herd_cluster_state(d->cluster), STORE_KIND_VM,
					   json_string_value(json_object_get(result, "uuid")));
	return vm ? api_vm_json(d, vm, false) : json_incref(result);
}

void api_vms_list(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	store_state *st = herd_cluster_state(d->cluster);
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	json_t *list = json_array();
	for (guint i = 0; i < vms->len; i++)
		json_array_append_new(list, api_vm_json(d, vms->pdata[i], false));
	http_respond_json(req, 200, list);
}

void api_vm_define(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "xml", "ha", "preferred", "failback",
					      "shutdown_timeout_s", "sticky", "group", NULL };
	store_vm_attrs attrs;
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *xml = NULL;
	if (!body || !api_get_string(body, "xml", &xml, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!xml) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Field 'xml' (the libvirt domain XML) is missing.");
		return;
	}
	g_autoptr(herd_domxml) dom = herd_domxml_parse(xml, &err);
	if (!dom || !store_name_validate(STORE_KIND_VM, dom->name, &err)) {
		http_respond_error(req, err);
		return;
	}
	store_state *st = herd_cluster_state(d->cluster);
	store_object *same = store_state_get(st, STORE_KIND_VM, dom->uuid);
	store_object *named = store_state_get_by_name(st, STORE_KIND_VM, dom->name);
	if (named && named != same) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM '%s' already exists with UUID %s; the XML has UUID %s.",
				    dom->name, named->uuid, dom->uuid);
		return;
	}
	if (!vm_attributes_parse(d, body, &attrs, &err)) {
		http_respond_error(req, err);
		return;
	}
	/* virsh semantics: define on an existing VM replaces its XML. */
	store_vm_domain sd = { dom->uuid, dom->name, dom->xml, dom->type, dom->memory_mib, dom->vcpus };
	g_autoptr(json_t) cmd = store_vm_cmd_define(same, &sd, &attrs);
	api_commit(req, d, cmd, same ? 200 : 201, render_vm);
}

void api_vm_get(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	if (!vm)
		http_respond_error(req, err);
	else
		http_respond_json(req, 200, api_vm_json(d, vm, true));
}

void api_vm_xml(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	if (!vm)
		http_respond_error(req, err);
	else
		http_respond_json(req, 200, json_pack("{s:s,s:s}", "name", vm->name, "xml",
						      store_vm_of(vm)->xml));
}

void api_vm_set(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	g_autoptr(json_t) body = vm ? api_body(req, store_vm_attr_names, &err) : NULL;
	store_vm_attrs attrs;
	if (!body || !vm_attributes_parse(d, body, &attrs, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (attrs.set == 0) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Nothing to change: give ha, preferred, failback, shutdown_timeout_s, sticky or group.");
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_set(vm, &attrs);
	api_commit(req, d, cmd, 200, render_vm);
}

void api_vm_undefine(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	if (!vm) {
		http_respond_error(req, err);
		return;
	}
	const char *where = NULL;
	if (store_vm_of(vm)->target_running || (d->ha && herd_ha_vm_active(d->ha, vm->uuid, &where))) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s is running%s%s; shut it down (or destroy it) before undefining it.",
				    vm->name, where ? " on node " : "", where ? where : "");
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_undefine(vm);
	api_commit(req, d, cmd, 200, NULL);
}

/* ------------------------------------------------------------------ */
/* History and restore                                                 */

/*
 * The UUID a NAME|UUID refers to, also for a VM that was undefined: a
 * current VM of that name, else the one VM whose history has that name.
 */
static char *resolve_vm_ref(herdd *d, const char *ref, GError **error)
{
	store_state *st = herd_cluster_state(d->cluster);
	if (store_uuid_is_valid(ref)) {
		if (store_state_get(st, STORE_KIND_VM, ref) ||
		    store_db_history_max_version(st->db, STORE_KIND_VM, ref) > 0)
			return g_strdup(ref);
		g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND,
			    "No VM with UUID %s exists or is in the history.", ref);
		return NULL;
	}
	store_object *vm = store_state_get_by_name(st, STORE_KIND_VM, ref);
	if (vm)
		return g_strdup(vm->uuid);
	g_autoptr(json_t) list = store_db_history_list(st->db, STORE_KIND_VM, NULL, NULL, false, error);
	if (!list)
		return NULL;
	g_autoptr(GPtrArray) uuids = g_ptr_array_new();
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		const char *u = json_string_value(json_object_get(e, "uuid"));
		if (strcmp(json_string_value(json_object_get(e, "name")), ref) == 0 &&
		    !g_ptr_array_find_with_equal_func(uuids, u, g_str_equal, NULL))
			g_ptr_array_add(uuids, (gpointer)u);
	}
	if (uuids->len == 1)
		return g_strdup(uuids->pdata[0]);
	if (uuids->len == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND,
			    "No VM named '%s' exists or is in the history.", ref);
		return NULL;
	}
	g_ptr_array_add(uuids, NULL);
	g_autofree char *all = g_strjoinv(", ", (char **)uuids->pdata);
	g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
		    "Several VMs were named '%s' (%s); give the UUID.", ref, all);
	return NULL;
}

void api_vm_history(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	g_autofree char *uuid = resolve_vm_ref(d, http_request_param(req, "vm"), &err);
	json_t *list = uuid ? store_db_history_list(herd_cluster_state(d->cluster)->db, STORE_KIND_VM,
						    uuid, NULL, false, &err)
			    : NULL;
	if (!list)
		http_respond_error(req, err);
	else
		http_respond_json(req, 200, list);
}

void api_history_vms(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	const char *pattern = http_request_query(req, "pattern");
	json_t *list = store_db_history_list(herd_cluster_state(d->cluster)->db, STORE_KIND_VM, NULL,
					     pattern && *pattern ? pattern : NULL, false, &err);
	if (!list)
		http_respond_error(req, err);
	else
		http_respond_json(req, 200, list);
}

void api_vm_restore(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "version", "force", NULL };
	g_autoptr(GError) err = NULL;
	size_t body_len;
	http_request_body(req, &body_len);
	g_autoptr(json_t) body = body_len ? api_body(req, fields, &err) : json_object();
	g_autofree char *uuid = body ? resolve_vm_ref(d, http_request_param(req, "vm"), &err) : NULL;
	long long version = 0;
	bool force = false;
	if (!uuid || !api_get_int(body, "version", 1, G_MAXINT64, &version, &err) ||
	    !api_get_bool(body, "force", &force, &err)) {
		http_respond_error(req, err);
		return;
	}
	store_state *st = herd_cluster_state(d->cluster);
	if (version == 0) {
		/* Default: the newest stored configuration that is not the
		 * current one.  The history holds every configuration, newest
		 * first: of a defined VM the first is its current one. */
		bool skip_current = store_state_get(st, STORE_KIND_VM, uuid) != NULL;
		g_autoptr(json_t) list = store_db_history_list(st->db, STORE_KIND_VM, uuid, NULL, true, &err);
		size_t i;
		json_t *e;
		json_array_foreach(list, i, e) {
			if (!json_is_object(json_object_get(e, "data")))
				continue;
			if (skip_current) {
				skip_current = false;
				continue;
			}
			version = json_integer_value(json_object_get(e, "version"));
			break;
		}
		if (version == 0) {
			http_respond_errorf(req, HERD_ERR_NOT_FOUND,
					    "VM %s has no earlier configuration to restore.", uuid);
			return;
		}
	}
	g_autoptr(json_t) cmd = store_vm_cmd_restore(uuid, (uint64_t)version, force);
	api_commit(req, d, cmd, 200, render_vm);
}
