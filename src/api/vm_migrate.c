/*
 * POST /api/v1/vms/{vm}/migrate {"node": NODE?, "wait": bool?}: migrate a
 * running VM live to NODE, or where the scheduler places it.  The change
 * is the VM's move (move_to, live); its node's agent migrates it, the
 * coordinator assigns it to its destination once it runs there, or gives
 * the move up if the migration failed (the VM then runs on as before).
 * With "wait", the answer comes once it has arrived, or failed.  GET
 * /api/v1/vms/{vm} shows the move and, while it runs, its progress
 * ("migration").  The move is a job too (store/job.h): the answer shows it
 * ("job"); the source's herd keeps its progress and log.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/disk_esan.h"
#include "api/routes.h"
#include "api/vm_wait.h"

#include "common/error.h"
#include "common/json.h"
#include "store/cluster.h"
#include "store/disk.h"
#include "store/command.h"
#include "store/job.h"
#include "store/node.h"
#include "store/settings.h"
#include "store/vm.h"

#include <string.h>

/* Beyond its migration timeout: the time to start it and to assign it. */
#define MIGRATE_WAIT_EXTRA_S 60

/* Has the live move of @vm to node @to ended: there, or given up? */
static api_vm_outcome arrived(api_ctx *a, store_object *vm, const char *to, char **failure)
{
	const store_vm *v = store_vm_of(vm);
	if (g_strcmp0(v->move_to, to) == 0)
		return API_VM_WAITING;
	if (g_strcmp0(v->node, to) == 0)
		return api_vm_is_running(a, vm, NULL, failure);
	herd_vm_runtime rt;
	herd_ha_vm_runtime(a->ha, vm, &rt);
	const char *why = rt.error ? rt.error : rt.alert;
	*failure = g_strdup_printf("VM %s was not migrated to node %s%s%s; it runs on node %s.", vm->name,
				   to, why ? ": " : ".", why ? why : "", rt.node ? rt.node : "?");
	return API_VM_FAILED;
}

/* Without a destination: if the VM's eSAN disks pin it to their two
 * replica nodes and the other one's replica is not up to date, why it
 * cannot go there (g_free), else NULL (the scheduler chooses). */
static char *esan_peer_not_ready(api_ctx *a, const store_vm *v, const char *name)
{
	store_state *st = api_state(a);
	store_object *here = v->node ? store_state_get_by_name(st, STORE_KIND_NODE, v->node) : NULL;
	if (!here || !v->hw)
		return NULL;
	for (size_t i = 0; i < v->hw->n_disks; i++) {
		store_object *o = store_state_get(st, STORE_KIND_DISK, v->hw->disks[i].disk);
		const store_disk *d = o ? store_disk_of(o) : NULL;
		if (!d || !d->esan || !store_disk_replica(d, here->uuid))
			continue;
		store_object *peer = store_state_get(st, STORE_KIND_NODE, store_disk_peer(d, here->uuid)->node);
		char *why = peer ? api_disk_esan_not_on(a, v, name, peer->name, "be migrated") : NULL;
		if (why)
			return why;
	}
	return NULL;
}

void api_vm_migrate(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "node", "wait", NULL };
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(a, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	size_t len;
	http_request_body(req, &len);
	g_autoptr(json_t) body = vm && len ? api_body(req, fields, &err) : json_object();
	bool wait = false;
	const char *to = NULL;
	if (!vm || !body || !api_get_bool(body, "wait", &wait, &err) ||
	    !api_get_string(body, "node", &to, &err)) {
		http_respond_error(req, err);
		return;
	}
	const store_vm *v = store_vm_of(vm);
	store_object *to_node = to ? api_lookup(a, STORE_KIND_NODE, to, &err) : NULL;
	if (to && !to_node) {
		http_respond_error(req, err);
		return;
	}
	if (v->move_to) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s is being moved to node %s already (%s); wait until that move has ended.",
				    vm->name, v->move_to, v->move_live ? "live" : "cold");
		return;
	}
	herd_vm_runtime rt;
	herd_ha_vm_runtime(a->ha, vm, &rt);
	if (!v->target_running || !v->node || g_strcmp0(rt.node, v->node) != 0 ||
	    (strcmp(rt.state, "running") != 0 && strcmp(rt.state, "paused") != 0)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s is not running on its node (it is %s%s%s); only a running VM migrates live.",
				    vm->name, rt.state, rt.node ? " on node " : "", rt.node ? rt.node : "");
		return;
	}
	/* An eSAN disk's replica there that is not up to date (outdated, being
	 * synchronised, detached): said as such, not as the scheduler's
	 * "up to date only on", whose advice is for a VM that cannot start */
	g_autofree char *esan = to_node ? api_disk_esan_not_on(a, v, vm->name, to_node->name, "be migrated")
					: esan_peer_not_ready(a, v, vm->name);
	if (esan) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "%s", esan);
		return;
	}
	const char *why = NULL;
	const char *dest = herd_ha_migrate_target(a->ha, vm->uuid, to, &why);
	if (!dest) {
		if (to)
			http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s cannot be migrated to node %s: %s.",
					    vm->name, to, why);
		else
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "VM %s has nowhere to migrate to from node %s: %s.", vm->name,
					    v->node, why);
		return;
	}
	/* The move and its job, together: no job without a move, and the
	 * reverse.  The source's herd follows it (daemon/job_runner.h). */
	const char *owner = api_request_owner(req);
	g_autofree char *line = g_strdup_printf("User %s asked on node %s to migrate VM %s live from node %s "
						"to node %s.", owner, a->node->name, vm->name, v->node, dest);
	char job[STORE_UUID_LEN + 1];
	json_t *ops = json_array();
	store_cmd_append(ops, store_vm_cmd_migrate(vm->uuid, dest, false));
	store_cmd_append(ops, store_job_cmd_create("migrate", vm->name, vm->uuid, dest, 0, owner, v->node, line,
					   g_get_real_time() / 1000, job));
	g_autoptr(json_t) cmd = store_cmd_batch(ops);
	long long timeout_s = store_settings_migration_timeout_s(store_settings_of(api_state(a)), v->memory_mib);
	api_vm_commit_job_and_wait(req, a, vm, cmd, job, wait ? arrived : NULL, dest, "migrated",
				   (unsigned)(timeout_s + MIGRATE_WAIT_EXTRA_S));
}
