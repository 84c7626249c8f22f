/*
 * The VMs' configuration history (UVMM's workflow): every stored version
 * of a VM, also of one that was undefined, listed by VM or by name
 * pattern, and restore of a version.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "store/vm.h"

#include <string.h>


/*
 * The UUID a NAME|UUID refers to, also for a VM that was undefined: a
 * current VM of that name, else the one VM whose history has that name.
 */
static char *resolve_vm_ref(api_ctx *a, const char *ref, GError **error)
{
	store_state *st = api_state(a);
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
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	g_autoptr(GError) err = NULL;
	g_autofree char *uuid = resolve_vm_ref(a, http_request_param(req, "vm"), &err);
	json_t *list = uuid ? store_db_history_list(api_state(a)->db, STORE_KIND_VM,
						    uuid, NULL, false, &err)
			    : NULL;
	if (!list)
		http_respond_error(req, err);
	else
		http_respond_json(req, 200, list);
}

void api_history_vms(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	g_autoptr(GError) err = NULL;
	const char *pattern = http_request_query(req, "pattern");
	json_t *list = store_db_history_list(api_state(a)->db, STORE_KIND_VM, NULL,
					     pattern && *pattern ? pattern : NULL, false, &err);
	if (!list)
		http_respond_error(req, err);
	else
		http_respond_json(req, 200, list);
}

void api_vm_restore(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "version", "force", NULL };
	g_autoptr(GError) err = NULL;
	size_t body_len;
	http_request_body(req, &body_len);
	g_autoptr(json_t) body = body_len ? api_body(req, fields, &err) : json_object();
	g_autofree char *uuid = body ? resolve_vm_ref(a, http_request_param(req, "vm"), &err) : NULL;
	long long version = 0;
	bool force = false;
	if (!uuid || !api_get_int(body, "version", 1, G_MAXINT64, &version, &err) ||
	    !api_get_bool(body, "force", &force, &err)) {
		http_respond_error(req, err);
		return;
	}
	store_state *st = api_state(a);
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
	api_commit(req, a, cmd, 200, api_render_vm);
}
