/*
 * This node (GET /api/v1/node: versions, uptime, certificate) and the
 * cluster at a glance (GET /api/v1/status), for `herd status`.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "herd-config.h"
#include "store/cluster.h"
#include "store/vm.h"
#include "store/wire.h"

#include <sqlite3.h>
#include <unistd.h>

static json_t *node_json(api_ctx *a)
{
	g_autofree char *gv = g_strdup_printf("%u.%u.%u", glib_major_version, glib_minor_version,
					      glib_micro_version);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	const api_node_info *node = a->node;
	gint64 uptime_s = (g_get_monotonic_time() - node->started_us) / G_USEC_PER_SEC;
	json_t *versions = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s}",
				     "herd", HERD_VERSION,
				     "protocol", HERD_WIRE_VERSION,
				     "corosync", node->corosync_version ? node->corosync_version : "unknown",
				     "libvirt", node->libvirt_version ? node->libvirt_version : "unknown",
				     "glib", gv,
				     "sqlite", sqlite3_libversion());
	json_t *loop = json_null();
	if (node->loop) {
		const loop_stalls *s = loop_monitor_stalls(node->loop);
		gint64 now_us = g_get_monotonic_time();
		/* Beside each, the CPU time herdd's main thread got in it
		 * (-1: unknown): the rest it waited, for a CPU or in a call. */
		loop = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
				 "max_stall_10s_us", (json_int_t)loop_stalls_max_us(s, now_us, 10),
				 "max_stall_10s_cpu_us", (json_int_t)loop_stalls_max_cpu_us(s, now_us, 10),
				 "max_stall_60s_us", (json_int_t)loop_stalls_max_us(s, now_us, 60),
				 "max_stall_60s_cpu_us", (json_int_t)loop_stalls_max_cpu_us(s, now_us, 60),
				 "max_stall_us", (json_int_t)s->max_ever_us,
				 "max_stall_cpu_us", (json_int_t)s->max_ever_cpu_us);
	}
	json_t *engine = a->ha ? herd_ha_run_stats(a->ha) : json_null();
	return json_pack("{s:s,s:s,s:i,s:I,s:I,s:s,s:o,s:o,s:o}",
			 "name", node->name,
			 "hostname", host,
			 "pid", (int)getpid(),
			 "started", (json_int_t)node->started_wall_s,
			 "uptime_s", (json_int_t)uptime_s,
			 "tls_fingerprint", node->tls_fingerprint ? node->tls_fingerprint : "",
			 "versions", versions,
			 "main_loop", loop,
			 "engine_runs", engine);
}

/* The VMs at a glance: defined, running (active anywhere), paused, and of
 * the HA ones how many run. */
static json_t *vms_json(api_ctx *a)
{
	store_state *st = api_state(a);
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	g_autoptr(herd_runtime_view) view = herd_ha_runtime_view(a->ha);
	int paused = 0, ha = 0, ha_running = 0;
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		herd_vm_runtime rt = { .state = "shut off" };
		herd_runtime_view_get(view, vm, &rt);
		paused += strcmp(rt.state, "paused") == 0;
		if (store_vm_of(vm)->ha) {
			ha++;
			ha_running += strcmp(rt.state, "running") == 0;
		}
	}
	return json_pack("{s:i,s:i,s:i,s:i,s:i}", "defined", (int)store_state_count(st, STORE_KIND_VM),
			 "running", (int)herd_ha_vms_active(a->ha), "paused", paused, "ha", ha,
			 "ha_running", ha_running);
}

void api_node_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	json_t *out = node_json(a);
	/* In a cluster (or joining one): a blank node's page offers to form one. */
	json_object_set_new(out, "member",
			    json_boolean(!a->formation || herd_formation_member(a->formation)));
	http_respond_json(req, 200, out);
}

void api_status_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	json_t *body = json_object();
	json_t *node = node_json(a);
	/* the websockets and relays this node's console proxy serves now */
	unsigned consoles = a->console_ops ? a->console_ops->count(a->console_proxy) : 0;
	json_object_set_new(node, "consoles", json_integer(consoles));
	json_object_set_new(body, "node", node);
	store_state *st = api_state(a);
	store_object *c = store_state_cluster(st);
	if (c) {
		json_t *cluster = herd_cluster_status_json(a->cluster);
		json_object_set_new(cluster, "name", json_string(c->name));
		json_object_set_new(cluster, "nodes", api_nodes_json(a));
		json_object_set_new(body, "cluster", cluster);
		json_object_set_new(body, "vms", vms_json(a));
		json_object_set_new(body, "ha", herd_ha_cluster_status(a->ha));
		json_object_set_new(body, "lab_mode", json_boolean(store_cluster_of(c)->settings.lab_mode));
		json_object_set_new(body, "ha_paused", json_boolean(store_cluster_of(c)->settings.ha_paused));
		json_t *lost = json_array();
		g_autoptr(GPtrArray) names = herd_ha_unfenced_lost(a->ha);
		for (guint i = 0; i < names->len; i++)
			json_array_append_new(lost, json_string(names->pdata[i]));
		json_object_set_new(body, "unfenced_lost_nodes", lost);
	} else {
		json_object_set_new(body, "cluster", json_null());
	}
	http_respond_json(req, 200, body);
}
