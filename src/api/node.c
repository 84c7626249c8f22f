#define G_LOG_DOMAIN "api"
#include "api/routes.h"
#include "cluster/service.h"
#include "daemon/loop_monitor.h"
#include "ha/ha.h"
#include "store/cluster.h"

#include <libvirt/libvirt.h>
#include <sqlite3.h>
#include <unistd.h>

static char *libvirt_version(void)
{
	unsigned long v = 0;
	if (virGetVersion(&v, NULL, NULL) < 0)
		return g_strdup("unknown");
	return g_strdup_printf("%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
}

static json_t *node_json(herdd *d)
{
	g_autofree char *lv = libvirt_version();
	g_autofree char *gv = g_strdup_printf("%u.%u.%u", glib_major_version, glib_minor_version,
					      glib_micro_version);
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	gint64 uptime_s = (g_get_monotonic_time() - d->started_us) / G_USEC_PER_SEC;
	json_t *versions = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s}",
				     "herd", HERD_VERSION,
				     "protocol", HERD_PROTOCOL_VERSION,
				     "corosync", d->corosync_version ? d->corosync_version : "unknown",
				     "libvirt", lv,
				     "glib", gv,
				     "sqlite", sqlite3_libversion());
	return json_pack("{s:s,s:s,s:i,s:I,s:I,s:s,s:o,s:o}",
			 "name", d->cfg->node_name,
			 "hostname", host,
			 "pid", (int)getpid(),
			 "started", (json_int_t)d->started_wall_s,
			 "uptime_s", (json_int_t)uptime_s,
			 "tls_fingerprint", d->tls_fingerprint ? d->tls_fingerprint : "",
			 "versions", versions,
			 "main_loop", loop_monitor_json(d->loop_monitor, g_get_monotonic_time()));
}

void api_node_get(http_request *req, gpointer user_data)
{
	http_respond_json(req, 200, node_json(user_data));
}

void api_status_get(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	json_t *body = json_object();
	json_object_set_new(body, "node", node_json(d));
	store_state *st = herd_cluster_state(d->cluster);
	store_object *c = store_state_cluster(st);
	if (c) {
		json_t *cluster = herd_cluster_status_json(d->cluster);
		json_object_set_new(cluster, "name", json_string(c->name));
		json_object_set_new(cluster, "nodes", api_nodes_json(d));
		json_object_set_new(body, "cluster", cluster);
		unsigned running = 0;
		g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
		for (guint i = 0; d->ha && i < vms->len; i++)
			running += herd_ha_vm_active(d->ha, ((store_object *)vms->pdata[i])->uuid, NULL);
		json_object_set_new(body, "vms", json_pack("{s:i,s:i}", "defined", (int)vms->len,
							   "running", (int)running));
		json_object_set_new(body, "ha", d->ha ? herd_ha_cluster_status(d->ha) : json_null());
		json_object_set_new(body, "lab_mode", json_boolean(store_cluster_of(c)->settings.lab_mode));
		json_t *lost = json_array();
		if (d->ha) {
			g_autoptr(GPtrArray) names = herd_ha_unfenced_lost(d->ha);
			for (guint i = 0; i < names->len; i++)
				json_array_append_new(lost, json_string(names->pdata[i]));
		}
		json_object_set_new(body, "unfenced_lost_nodes", lost);
	} else {
		json_object_set_new(body, "cluster", json_null());
	}
	http_respond_json(req, 200, body);
}
