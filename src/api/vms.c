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
#include "virt/domxml.h"

#include <string.h>

#define SHUTDOWN_TIMEOUT_DEFAULT_S 360
#define SHUTDOWN_TIMEOUT_MAX_S 86400

static const char *const vm_attributes[] = { "ha", "preferred", "failback",
					     "shutdown_timeout_s", "sticky", "group", NULL };

/* @data's @key (a new reference), or @fallback (stolen) if absent. */
static json_t *field_or(json_t *data, const char *key, json_t *fallback)
{
	json_t *v = json_object_get(data, key);
	if (!v)
		return fallback;
	json_decref(fallback);
	return json_incref(v);
}

json_t *api_vm_json(herdd *d, store_object *vm, bool with_xml)
{
	json_t *data = vm->data;
	json_t *j = json_pack("{s:s,s:s,s:I,s:b,s:o,s:b,s:o,s:o,s:o,s:o,s:s,s:n,s:I}",
			      "name", vm->name, "uuid", vm->uuid, "version", (json_int_t)vm->version,
			      "ha", json_is_true(json_object_get(data, "ha")),
			      "preferred", field_or(data, "preferred", json_null()),
			      "failback", !json_is_false(json_object_get(data, "failback")),
			      "shutdown_timeout_s",
			      field_or(data, "shutdown_timeout_s", json_integer(SHUTDOWN_TIMEOUT_DEFAULT_S)),
			      "memory_mib", field_or(data, "memory_mib", json_integer(0)),
			      "vcpus", field_or(data, "vcpus", json_integer(0)),
			      "type", field_or(data, "type", json_string("")),
			      "state", "shut off",
			      "node",
			      "modified_ms", (json_int_t)vm->modified_ms);
	json_object_set_new(j, "target", field_or(data, "target", json_string("stopped")));
	json_object_set_new(j, "sticky", field_or(data, "sticky", json_null()));
	json_object_set_new(j, "group", field_or(data, "group", json_null()));
	json_object_set_new(j, "assigned", field_or(data, "node", json_null()));
	if (d->ha) {
		g_autoptr(json_t) rt = herd_ha_vm_runtime(d->ha, vm);
		json_object_update(j, rt);
		json_int_t since = json_integer_value(json_object_get(rt, "since_ms"));
		if (json_string_value(json_object_get(rt, "node")) && since > 0)
			json_object_set_new(j, "uptime_s",
					    json_integer((g_get_real_time() / 1000 - since) / 1000));
	}
	if (with_xml)
		json_object_set(j, "xml", json_object_get(data, "xml"));
	return j;
}

/* Check herd's VM attributes in @body; add them, typed, to @data. */
static bool vm_attributes_check(herdd *d, json_t *body, json_t *data, GError **error)
{
	bool b;
	long long n;
	json_t *pref = json_object_get(body, "preferred");
	if (json_object_get(body, "ha")) {
		if (!api_get_bool(body, "ha", &b, error))
			return false;
		json_object_set_new(data, "ha", json_boolean(b));
	}
	if (json_object_get(body, "failback")) {
		if (!api_get_bool(body, "failback", &b, error))
			return false;
		json_object_set_new(data, "failback", json_boolean(b));
	}
	if (json_object_get(body, "shutdown_timeout_s")) {
		if (!api_get_int(body, "shutdown_timeout_s", 1, SHUTDOWN_TIMEOUT_MAX_S, &n, error))
			return false;
		json_object_set_new(data, "shutdown_timeout_s", json_integer(n));
	}
	json_t *sticky = json_object_get(body, "sticky");
	if (sticky && json_is_null(sticky)) {
		json_object_set_new(data, "sticky", json_null());
	} else if (sticky) {
		const char *name = json_string_value(sticky);
		if (!name || !store_state_get_by_name(herd_cluster_state(d->cluster), STORE_KIND_NODE, name)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Field 'sticky' must be a node of this cluster or null.");
			return false;
		}
		json_object_set_new(data, "sticky", json_string(name));
	}
	json_t *group = json_object_get(body, "group");
	if (group && json_is_null(group)) {
		json_object_set_new(data, "group", json_null());
	} else if (group) {
		const char *name = json_string_value(group);
		if (!store_name_validate(STORE_KIND_GROUP, name, error))
			return false;
		json_object_set_new(data, "group", json_string(name));
	}
	if (pref && json_is_null(pref)) {
		json_object_set_new(data, "preferred", json_null());
	} else if (pref) {
		const char *name = json_string_value(pref);
		if (!name) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Field 'preferred' must be a node name or null.");
			return false;
		}
		if (!store_state_get_by_name(herd_cluster_state(d->cluster), STORE_KIND_NODE, name)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Preferred node '%s' is not a node of this cluster.", name);
			return false;
		}
		json_object_set_new(data, "preferred", json_string(name));
	}
	return true;
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
	g_autoptr(json_t) data = json_pack("{s:s,s:I,s:i,s:s}", "xml", dom->xml, "memory_mib",
					   (json_int_t)dom->memory_mib, "vcpus", (int)dom->vcpus,
					   "type", dom->type);
	if (!vm_attributes_check(d, body, data, &err)) {
		http_respond_error(req, err);
		return;
	}
	g_autoptr(json_t) cmd = NULL;
	if (same) {
		/* virsh semantics: define on an existing VM replaces its XML. */
		cmd = json_pack("{s:s,s:s,s:s,s:s,s:O,s:I}", "op", "patch", "kind", "vm", "uuid",
				dom->uuid, "name", dom->name, "data", data, "if_version",
				(json_int_t)same->version);
		if (strcmp(same->name, dom->name) != 0) {
			/* a rename: full update with the new name */
			g_autoptr(json_t) merged = json_deep_copy(same->data);
			json_object_update(merged, data);
			json_decref(cmd);
			cmd = json_pack("{s:s,s:s,s:s,s:s,s:O,s:I}", "op", "update", "kind", "vm",
					"uuid", dom->uuid, "name", dom->name, "data", merged,
					"if_version", (json_int_t)same->version);
		}
	} else {
		cmd = json_pack("{s:s,s:s,s:s,s:s,s:O}", "op", "create", "kind", "vm", "uuid",
				dom->uuid, "name", dom->name, "data", data);
	}
	if (api_refuse_if_unfenced(req, d, NULL, same))
		return;
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
		http_respond_json(req, 200, json_pack("{s:s,s:O}", "name", vm->name, "xml",
						      json_object_get(vm->data, "xml")));
}

void api_vm_set(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	g_autoptr(json_t) body = vm ? api_body(req, vm_attributes, &err) : NULL;
	g_autoptr(json_t) data = json_object();
	if (!body || !vm_attributes_check(d, body, data, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (json_object_size(data) == 0) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Nothing to change: give ha, preferred, failback, shutdown_timeout_s, sticky or group.");
		return;
	}
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:O}", "op", "patch", "kind", "vm", "uuid",
					  vm->uuid, "data", data);
	if (api_refuse_if_unfenced(req, d, NULL, vm))
		return;
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
	if (g_strcmp0(json_string_value(json_object_get(vm->data, "target")), "running") == 0 ||
	    (d->ha && herd_ha_vm_active(d->ha, vm->uuid, &where))) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s is running%s%s; shut it down (or destroy it) before undefining it.",
				    vm->name, where ? " on node " : "", where ? where : "");
		return;
	}
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:I}", "op", "delete", "kind", "vm", "uuid",
					  vm->uuid, "if_version", (json_int_t)vm->version);
	if (api_refuse_if_unfenced(req, d, NULL, vm))
		return;
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
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:I,s:b}", "op", "restore", "kind", "vm",
					  "uuid", uuid, "version", (json_int_t)version, "force", force);
	if (api_refuse_if_unfenced(req, d, NULL, store_state_get(st, STORE_KIND_VM, uuid)))
		return;
	api_commit(req, d, cmd, 200, render_vm);
}
