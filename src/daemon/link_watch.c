#include "daemon/link_watch.h"

#include "common/json.h"
#include "store/node.h"

#include <string.h>

struct herd_link_watch {
	herd_cluster *cluster;
	herd_ha *ha;
	char *node_name;
	guint timer;
};

/* {peer: [{"link","connected"}…]} of every other node of the store that
 * is in corosync's ring and that corosync knows links to (a node it has
 * none to says nothing).  A node out of the ring is a matter of the
 * membership (lost, or added and not up yet), not of its links: without
 * this, every member's view, and so its STATUS, changed at every join as
 * the new node's links went down at the reload and up as it came. */
static json_t *links_now(herd_link_watch *w)
{
	json_t *out = json_object();
	store_state *st = herd_cluster_state(w->cluster);
	if (!st)
		return out;
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(st);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		if (strcmp(n->name, w->node_name) == 0 ||
		    !herd_cluster_in_ring(w->cluster, store_node_of(n)->nodeid))
			continue;
		g_autoptr(json_t) status = herd_cluster_links(w->cluster, store_node_of(n)->nodeid);
		json_t *links = json_array();
		size_t k;
		json_t *l;
		json_array_foreach(status, k, l)
			json_array_append_new(links, json_pack("{s:O,s:b}", "link", json_object_get(l, "link"),
							       "connected",
							       json_is_true(json_object_get(l, "connected"))));
		if (json_array_size(links))
			json_object_set_new(out, n->name, links);
		else
			json_decref(links);
	}
	return out;
}

static gboolean on_timer(gpointer user)
{
	herd_link_watch *w = user;
	g_autoptr(json_t) links = links_now(w);
	herd_ha_set_links(w->ha, links);
	return G_SOURCE_CONTINUE;
}

herd_link_watch *herd_link_watch_new(herd_cluster *cluster, herd_ha *ha, const char *node_name)
{
	herd_link_watch *w = g_new0(herd_link_watch, 1);
	w->cluster = cluster;
	w->ha = ha;
	w->node_name = g_strdup(node_name);
	w->timer = g_timeout_add(LINK_WATCH_PERIOD_MS, on_timer, w);
	return w;
}

void herd_link_watch_free(herd_link_watch *w)
{
	if (!w)
		return;
	g_source_remove(w->timer);
	g_free(w->node_name);
	g_free(w);
}
