#define G_LOG_DOMAIN "api"
#include "api/vm_json.h"

#include "api/common.h"
#include "api/routes.h"
#include "api/vm_hardware.h"
#include "common/json.h"
#include "store/vm.h"

void api_vm_config_keys_init(json_keys *k)
{
	/* Those every VM has, in the order api_vm_config_write() writes
	 * them, then those of a node set's entries; the rarer ones (a move,
	 * a failure) are written as JSON. */
	static const char *const names[] = {
		"name", "uuid", "version", "ha", "preferred", "failback", "shutdown_timeout_s",
		"memory_mib", "vcpus", "type", "modified_ms", "target", "sticky", "group", "pool",
		"nodes", "restricted", "restart_priority", "start_after", "start_wait_s", "assigned",
		"failed", "node", "priority",
	};
	G_STATIC_ASSERT(G_N_ELEMENTS(names) <= JSON_KEYS_MAX);
	json_keys_init(k, names, G_N_ELEMENTS(names));
}

void api_vm_config_write(json_writer *w, store_object *vm)
{
	const store_vm *v = store_vm_of(vm);
	json_writer_member_string(w, "name", vm->name);
	json_writer_member_string(w, "uuid", vm->uuid);
	json_writer_member_int(w, "version", (int64_t)vm->version);
	json_writer_member_bool(w, "ha", v->ha);
	json_writer_member_string(w, "preferred", v->preferred);
	json_writer_member_bool(w, "failback", v->failback);
	json_writer_member_int(w, "shutdown_timeout_s", v->shutdown_timeout_s);
	json_writer_member_int(w, "memory_mib", (int64_t)v->memory_mib);
	json_writer_member_int(w, "vcpus", v->vcpus);
	json_writer_member_string(w, "type", v->type);
	json_writer_member_int(w, "modified_ms", vm->modified_ms);
	json_writer_member_string(w, "target", v->target_running ? "running" : "stopped");
	json_writer_member_string(w, "sticky", v->sticky);
	json_writer_member_string(w, "group", v->group);
	json_writer_member_string(w, "pool", v->pool);
	/* The node set, highest priority first (empty: none). */
	json_writer_key(w, "nodes");
	json_writer_array_begin(w);
	for (size_t i = 0; i < v->n_nodeset; i++) {
		json_writer_object_begin(w);
		json_writer_member_string(w, "node", v->nodeset[i].node);
		json_writer_member_int(w, "priority", v->nodeset[i].priority);
		json_writer_object_end(w);
	}
	json_writer_array_end(w);
	json_writer_member_bool(w, "restricted", v->restricted);
	json_writer_member_string(w, "restart_priority", store_vm_priority_name(v->restart_priority));
	json_writer_member_string(w, "start_after", v->start_after);
	json_writer_member_int(w, "start_wait_s", v->start_wait_s);
	json_writer_member_string(w, "assigned", v->node);
	if (v->return_to)
		json_writer_member_string(w, "return_to", v->return_to);
	if (v->move_to) {
		json_writer_member_string(w, "move_to", v->move_to);
		json_writer_member_string(w, "move", v->move_live ? "live" : "cold");
	}
	json_writer_key(w, "failed");
	json_writer_array_begin(w);
	for (size_t i = 0; i < v->n_failures; i++) {
		json_writer_object_begin(w);
		json_writer_member_string(w, "node", v->failures[i].node);
		json_writer_member_int(w, "count", v->failures[i].count);
		json_writer_member_string(w, "error", v->failures[i].error);
		json_writer_object_end(w);
	}
	json_writer_array_end(w);
}

void api_vm_runtime_write(json_writer *w, const herd_runtime_view *view, store_object *vm,
			  int64_t now_ms)
{
	herd_vm_runtime rt = { .state = "shut off" };
	if (view)
		herd_runtime_view_get(view, vm, &rt);
	json_writer_member_string(w, "state", rt.state);
	json_writer_member_string(w, "node", rt.node);
	if (!view)
		return;
	json_writer_member_int(w, "since_ms", rt.since_ms);
	if (rt.error)
		json_writer_member_string(w, "error", rt.error);
	if (rt.alert)
		json_writer_member_string(w, "alert", rt.alert);
	if (rt.node && rt.since_ms > 0)
		json_writer_member_int(w, "uptime_s", (now_ms - rt.since_ms) / 1000);
}

json_t *api_vm_json(api_ctx *a, store_object *vm, const char *xml)
{
	g_autoptr(GString) text = g_string_sized_new(xml ? 4096 : 512);
	g_autoptr(herd_runtime_view) view = a->ha ? herd_ha_runtime_view(a->ha) : NULL;
	json_writer w;
	json_writer_init(&w, text);
	json_writer_object_begin(&w);
	api_vm_config_write(&w, vm);
	api_vm_runtime_write(&w, view, vm, g_get_real_time() / 1000);
	if (xml)
		json_writer_member_string(&w, "xml", xml);
	json_writer_object_end(&w);
	json_t *out = json_loads(text->str, 0, NULL);
	/* A live migration under way: how far it is, as its source said
	 * within the last second. */
	json_t *migration = a->ha ? herd_ha_vm_migration(a->ha, vm->uuid) : NULL;
	if (migration)
		json_object_set_new(out, "migration", migration);
	api_vm_hardware_json(a, vm, out);
	/* The VM it starts after, by name as well (it is stored by UUID). */
	const char *after = store_vm_of(vm)->start_after;
	store_object *after_vm = after ? store_state_get(api_state(a), STORE_KIND_VM, after) : NULL;
	if (after_vm)
		json_object_set_new(out, "start_after_name", json_string(after_vm->name));
	/* What a change made since it started waits for: its next start. */
	json_object_set_new(out, "pending", a->ha ? herd_ha_vm_pending(a->ha, vm->uuid) : json_array());
	return out;
}
