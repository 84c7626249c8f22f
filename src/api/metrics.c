/*
 * GET /metrics: what this node knows of the cluster, for Prometheus (text
 * format 0.0.4, docs/metrics.md).  Every node serves the whole cluster as
 * it sees it — nodes, links, VMs, storages, eSAN, alerts, jobs — plus its own
 * process and the fence agents it ran; scrape every node (a lost node's
 * series then go stale only on its own target).  Authenticated as every
 * API route (basic auth or a session).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/json.h"
#include "common/metrics_text.h"
#include "herd-config.h"
#include "store/disk.h"
#include "store/job.h"
#include "store/node.h"
#include "store/storage.h"
#include "store/vm.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static double bool_of(json_t *j)
{
	return json_is_true(j) ? 1 : 0;
}

static void process_metrics(metrics_text *m, api_ctx *a)
{
	const char *node = a->node->name;
	metrics_family(m, "herd_build_info", "gauge", "herd's version on this node (always 1)");
	metrics_sample(m, 1, "node", node, "version", HERD_VERSION, NULL);
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	metrics_family(m, "herd_process_resident_memory_bytes", "gauge", "herdd's resident memory");
	metrics_sample(m, (double)resident * (double)sysconf(_SC_PAGESIZE), "node", node, NULL);
	metrics_family(m, "herd_process_cpu_seconds_total", "counter", "herdd's CPU time, user and system");
	metrics_sample(m, (double)loop_monitor_process_cpu_us() / 1e6, "node", node, NULL);
	metrics_family(m, "herd_process_start_time_seconds", "gauge", "when herdd started (Unix time)");
	metrics_sample(m, (double)a->node->started_wall_s, "node", node, NULL);
	if (a->node->loop) {
		const loop_stalls *s = loop_monitor_stalls(a->node->loop);
		metrics_family(m, "herd_main_loop_max_stall_seconds", "gauge",
			       "the longest stall of herdd's main loop in the last 10 s");
		metrics_sample(m, (double)loop_stalls_max_us(s, g_get_monotonic_time(), 10) / 1e6, "node",
			       node, NULL);
	}
}

static void cluster_metrics(metrics_text *m, api_ctx *a)
{
	const char *node = a->node->name;
	g_autoptr(json_t) c = herd_cluster_status_json(a->cluster);
	metrics_family(m, "herd_cluster_quorate", "gauge", "1 if this node's partition has quorum");
	metrics_sample(m, bool_of(json_object_get(json_object_get(c, "quorum"), "quorate")), "node", node,
		       NULL);
	metrics_family(m, "herd_cluster_members", "gauge", "herds in this node's group (corosync CPG)");
	metrics_sample(m, (double)json_array_size(json_object_get(c, "members")), "node", node, NULL);
	metrics_family(m, "herd_store_primary", "gauge",
		       "1 if this node's store takes changes (in sync with a quorate partition)");
	metrics_sample(m, bool_of(json_object_get(c, "primary")), "node", node, NULL);
	metrics_family(m, "herd_store_changes_total", "counter",
		       "changes applied to the configuration in this store generation");
	metrics_sample(m, (double)json_integer_value(json_object_get(json_object_get(c, "position"), "index")),
		       "node", node, NULL);
}

/* One family over every node of @nodes: @get gives the value, or NAN to
 * leave the node out. */
typedef double (*node_value_fn)(json_t *n);

static void per_node(metrics_text *m, json_t *nodes, const char *name, const char *type,
		     const char *help, node_value_fn get)
{
	metrics_family(m, name, type, help);
	size_t i;
	json_t *n;
	json_array_foreach(nodes, i, n) {
		double v = get(n);
		if (v == v) /* not NaN */
			metrics_sample(m, v, "node", json_string_value(json_object_get(n, "name")), NULL);
	}
}

static json_t *herd_of(json_t *n)
{
	return json_object_get(n, "herd");
}

static json_t *resource(json_t *n, const char *key)
{
	return json_object_get(json_object_get(herd_of(n), "resources"), key);
}

static double online_of(json_t *n) { return bool_of(json_object_get(n, "online")); }
static double alive_of(json_t *n) { return bool_of(json_object_get(n, "alive")); }
static double virt_ok_of(json_t *n)
{
	return herd_of(n) ? bool_of(json_object_get(herd_of(n), "virt_ok")) : NAN;
}
static double memory_of(json_t *n)
{
	return herd_of(n) ? (double)json_integer_value(resource(n, "memory_mib")) * 1048576 : NAN;
}
static double free_of(json_t *n)
{
	return herd_of(n) ? (double)json_integer_value(resource(n, "free_mib")) * 1048576 : NAN;
}
static double cpus_of(json_t *n)
{
	return herd_of(n) ? (double)json_integer_value(resource(n, "cpus")) : NAN;
}
static double load_of(json_t *n)
{
	json_t *load = resource(n, "load_x100");
	return json_is_integer(load) ? (double)json_integer_value(load) / 100 : NAN;
}
static double vms_of(json_t *n)
{
	return herd_of(n) ? (double)json_array_size(json_object_get(herd_of(n), "vms")) : NAN;
}

static void node_metrics(metrics_text *m, api_ctx *a, json_t *nodes)
{
	per_node(m, nodes, "herd_node_online", "gauge", "1 if the node's herd is in the cluster",
		 online_of);
	per_node(m, nodes, "herd_node_alive", "gauge", "1 if corosync sees the node", alive_of);
	per_node(m, nodes, "herd_node_virt_ok", "gauge", "1 if the node's libvirt answers", virt_ok_of);
	per_node(m, nodes, "herd_node_memory_bytes", "gauge", "the node's memory", memory_of);
	per_node(m, nodes, "herd_node_memory_free_bytes", "gauge", "the node's free memory", free_of);
	per_node(m, nodes, "herd_node_cpus", "gauge", "the node's CPUs", cpus_of);
	per_node(m, nodes, "herd_node_load1", "gauge", "the node's 1-minute load average", load_of);
	per_node(m, nodes, "herd_node_vms_running", "gauge", "VMs active on the node", vms_of);
	static const char *const modes[] = { "online", "standby", "maintenance" };
	metrics_family(m, "herd_node_mode", "gauge", "1 for the node's mode");
	size_t i;
	json_t *n;
	json_array_foreach(nodes, i, n)
		for (size_t k = 0; k < G_N_ELEMENTS(modes); k++)
			metrics_sample(m, g_strcmp0(json_string_value(json_object_get(n, "mode")), modes[k]) == 0,
				       "node", json_string_value(json_object_get(n, "name")), "mode", modes[k],
				       NULL);
	metrics_family(m, "herd_node_down", "gauge",
		       "1 if the node is recorded down (fenced, or confirmed down by an operator)");
	json_array_foreach(nodes, i, n) {
		json_t *down = json_object_get(n, "down");
		metrics_sample(m, json_is_object(down), "node", json_string_value(json_object_get(n, "name")),
			       "how", json_string_value(json_object_get(down, "how")), NULL);
	}
	metrics_family(m, "herd_node_last_fence_timestamp_seconds", "gauge",
		       "when the node was last fenced (result ok or failed; Unix time)");
	json_array_foreach(nodes, i, n) {
		json_t *history = json_object_get(n, "fence_history");
		json_t *last[2] = { NULL, NULL };
		size_t k;
		json_t *r;
		json_array_foreach(history, k, r)
			last[json_is_true(json_object_get(r, "ok"))] = r;
		for (int ok = 0; ok < 2; ok++)
			if (last[ok])
				metrics_sample(m, (double)json_integer_value(json_object_get(last[ok], "time_ms")) / 1000,
					       "node", json_string_value(json_object_get(n, "name")), "result",
					       ok ? "ok" : "failed", NULL);
	}
}

static void link_metrics(metrics_text *m, api_ctx *a)
{
	g_autoptr(json_t) views = herd_ha_links(a->ha);
	metrics_family(m, "herd_link_connected", "gauge",
		       "1 if the heartbeat (knet) link to the peer is connected, as the node sees it");
	const char *node, *peer;
	json_t *view, *links;
	json_object_foreach(views, node, view) {
		json_object_foreach(view, peer, links) {
			size_t i;
			json_t *l;
			json_array_foreach(links, i, l) {
				g_autofree char *id = g_strdup_printf(
					"%lld", (long long)json_integer_value(json_object_get(l, "link")));
				metrics_sample(m, bool_of(json_object_get(l, "connected")), "node", node, "peer",
					       peer, "link", id, NULL);
			}
		}
	}
}

static void ping_metrics(metrics_text *m, api_ctx *a)
{
	g_autoptr(json_t) views = herd_ha_ping(a->ha);
	metrics_family(m, "herd_ping_reached", "gauge",
		       "1 if the node reaches the ping node (its dampened verdict)");
	const char *node, *target;
	json_t *view, *ok;
	json_object_foreach(views, node, view)
		json_object_foreach(json_object_get(view, "targets"), target, ok)
			metrics_sample(m, bool_of(ok), "node", node, "target", target, NULL);
}

static void vm_metrics(metrics_text *m, api_ctx *a)
{
	store_state *st = api_state(a);
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	g_autoptr(herd_runtime_view) view = herd_ha_runtime_view(a->ha);
	/* Taken once: the runtime of every VM, for two families. */
	g_autofree const char **where = g_new0(const char *, vms->len + 1);
	for (guint i = 0; i < vms->len; i++) {
		herd_vm_runtime rt = { 0 };
		herd_runtime_view_get(view, vms->pdata[i], &rt);
		bool active = rt.state && strcmp(rt.state, "shut off") != 0 && strcmp(rt.state, "unknown") != 0;
		where[i] = active ? rt.node : NULL;
	}
	metrics_family(m, "herd_vm_running", "gauge",
		       "1 if the VM is active (running, paused, migrating…) somewhere");
	for (guint i = 0; i < vms->len; i++)
		metrics_sample(m, where[i] != NULL, "vm", ((store_object *)vms->pdata[i])->name, NULL);
	metrics_family(m, "herd_vm_node", "gauge", "1 for the node an active VM is on");
	for (guint i = 0; i < vms->len; i++)
		if (where[i])
			metrics_sample(m, 1, "vm", ((store_object *)vms->pdata[i])->name, "node", where[i],
				       NULL);
	metrics_family(m, "herd_vm_ha", "gauge", "1 if the VM is restarted elsewhere when its node dies");
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		metrics_sample(m, store_vm_of(vm)->ha, "vm", vm->name, NULL);
	}
	metrics_family(m, "herd_vm_memory_bytes", "gauge", "the VM's configured memory");
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		metrics_sample(m, (double)store_vm_of(vm)->memory_mib * 1048576, "vm", vm->name, NULL);
	}
	metrics_family(m, "herd_vm_vcpus", "gauge", "the VM's configured virtual CPUs");
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		metrics_sample(m, store_vm_of(vm)->vcpus, "vm", vm->name, NULL);
	}
}

/* The storages' filesystems as each node that checks them sees them. */
static void storage_metrics(metrics_text *m, api_ctx *a, json_t *nodes)
{
	store_state *st = api_state(a);
	static const char *const keys[] = { "size", "free" };
	static const char *const names[] = { "herd_storage_size_bytes", "herd_storage_free_bytes" };
	static const char *const helps[] = { "the storage's filesystem size, as the node sees it",
					     "the storage's free space, as the node sees it" };
	for (int k = 0; k < 2; k++) {
		metrics_family(m, names[k], "gauge", helps[k]);
		size_t i;
		json_t *n;
		json_array_foreach(nodes, i, n) {
			const char *uuid;
			json_t *r;
			json_object_foreach(json_object_get(herd_of(n), "reach"), uuid, r) {
				store_object *s = store_state_get(st, STORE_KIND_STORAGE, uuid);
				json_t *v = json_object_get(r, keys[k]);
				if (s && json_is_integer(v))
					metrics_sample(m, (double)json_integer_value(v), "storage", s->name, "node",
						       json_string_value(json_object_get(n, "name")), NULL);
			}
		}
	}
}

static void esan_metrics(metrics_text *m, api_ctx *a)
{
	store_state *st = api_state(a);
	g_autoptr(GPtrArray) disks = store_state_list(st, STORE_KIND_DISK);
	static const char *const states[] = { "uptodate", "outdated", "inconsistent" };
	metrics_family(m, "herd_esan_replica_state", "gauge",
		       "1 for the state the store records of the eSAN replica");
	for (guint i = 0; i < disks->len; i++) {
		const store_disk *d = store_disk_of(disks->pdata[i]);
		for (int r = 0; d->esan && r < 2; r++) {
			store_object *n = store_state_get(st, STORE_KIND_NODE, d->replicas[r].node);
			for (int s = 0; s < 3; s++)
				metrics_sample(m, d->replicas[r].state == (store_replica_state)s, "disk",
					       ((store_object *)disks->pdata[i])->name, "node",
					       n ? n->name : d->replicas[r].node, "state", states[s], NULL);
		}
	}
	/* What the herd-sans report. */
	static const char *const names[] = { "herd_esan_connected", "herd_esan_dirty_bytes",
					     "herd_esan_sync_remaining_bytes" };
	static const char *const helps[] = {
		"1 if the replica's link to its peer is connected, as its herd-san reports",
		"bytes written while the peer was away, not yet resynchronised",
		"bytes of the resync under way still to copy",
	};
	/* Every node's facts walked once, for all disks and families. */
	g_autoptr(json_t) all = herd_ha_esan_all(a->ha);
	for (int k = 0; k < 3; k++) {
		metrics_family(m, names[k], "gauge", helps[k]);
		for (guint i = 0; i < disks->len; i++) {
			store_object *o = disks->pdata[i];
			if (!store_disk_of(o)->esan)
				continue;
			json_t *reports = json_object_get(all, o->uuid);
			const char *node;
			json_t *s;
			json_object_foreach(reports, node, s) {
				json_t *sync = json_object_get(s, "sync");
				double v = k == 0 ? g_strcmp0(json_string_value(json_object_get(s, "conn")),
							      "connected") == 0
					   : k == 1 ? (double)json_integer_value(json_object_get(s, "dirty"))
						    : (double)(json_integer_value(json_object_get(sync, "total")) -
							       json_integer_value(json_object_get(sync, "done")));
				metrics_sample(m, v, "disk", o->name, "node", node, NULL);
			}
		}
	}
}

static void alert_metrics(metrics_text *m, api_ctx *a)
{
	g_autoptr(json_t) ha = herd_ha_cluster_status(a->ha);
	static const char *const severities[] = { "info", "warning", "critical" };
	unsigned count[3] = { 0 };
	size_t i;
	json_t *al;
	json_array_foreach(json_object_get(ha, "alerts"), i, al)
		for (int s = 0; s < 3; s++)
			count[s] += g_strcmp0(json_string_value(json_object_get(al, "severity")),
					      severities[s]) == 0;
	metrics_family(m, "herd_alerts", "gauge", "the coordinator's alerts now, by severity");
	for (int s = 0; s < 3; s++)
		metrics_sample(m, count[s], "severity", severities[s], NULL);
	metrics_family(m, "herd_n_plus_1", "gauge",
		       "1 if every HA VM would find room if any one node died (N+1)");
	if (json_is_boolean(json_object_get(ha, "n_plus_1")))
		metrics_sample(m, bool_of(json_object_get(ha, "n_plus_1")), NULL);
}

/* The jobs the store keeps (running, and finished ones not yet pruned). */
static void job_metrics(metrics_text *m, api_ctx *a)
{
	unsigned count[STORE_JOB__COUNT] = { 0 };
	g_autoptr(GPtrArray) jobs = store_state_list(api_state(a), STORE_KIND_JOB);
	for (guint i = 0; i < jobs->len; i++)
		count[store_job_of(jobs->pdata[i])->state]++;
	metrics_family(m, "herd_jobs", "gauge", "jobs the store keeps, by state (finished ones for a bounded time)");
	for (int s = 0; s < STORE_JOB__COUNT; s++)
		metrics_sample(m, count[s], "state", store_job_state_name((store_job_state)s), NULL);
}

static void fence_metrics(metrics_text *m, api_ctx *a)
{
	g_autoptr(json_t) runs = herd_ha_fence_runs(a->ha);
	metrics_family(m, "herd_fence_agent_runs_total", "counter",
		       "fence agent runs by this node's herd, by device, action and result");
	size_t i;
	json_t *r;
	json_array_foreach(runs, i, r)
		metrics_sample(m, (double)json_integer_value(json_object_get(r, "count")), "node",
			       a->node->name, "device", json_string_value(json_object_get(r, "device")),
			       "action", json_string_value(json_object_get(r, "action")), "result",
			       json_string_value(json_object_get(r, "result")), NULL);
}

void api_metrics_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	metrics_text *m = metrics_text_new();
	process_metrics(m, a);
	cluster_metrics(m, a);
	/* The rest from the store: only when this node answers from it. */
	if (herd_cluster_store_check(a->cluster, NULL)) {
		g_autoptr(json_t) nodes = api_nodes_json(a);
		node_metrics(m, a, nodes);
		link_metrics(m, a);
		ping_metrics(m, a);
		vm_metrics(m, a);
		storage_metrics(m, a, nodes);
		esan_metrics(m, a);
		alert_metrics(m, a);
		job_metrics(m, a);
	}
	fence_metrics(m, a);
	GString *text = metrics_text_free(m);
	http_respond_bytes(req, 200, "text/plain; version=0.0.4; charset=utf-8", text->str, text->len);
	g_string_free(text, TRUE);
}
