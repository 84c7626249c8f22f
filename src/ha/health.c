#include "ha/health.h"

#include "common/json.h"
#include "store/node.h"

#include <string.h>

int64_t herd_health_virt_watch(GHashTable *since, store_state *st, herd_facts *facts, int64_t now_ms)
{
	g_autoptr(GHashTable) listed = g_hash_table_new(g_direct_hash, g_direct_equal);
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(st);
	for (guint i = 0; i < nodes->len; i++) {
		gpointer id = GUINT_TO_POINTER(store_node_of(nodes->pdata[i])->nodeid);
		g_hash_table_add(listed, id);
		herd_node_facts *f = herd_facts_fresh(facts, GPOINTER_TO_UINT(id));
		if (f && f->virt_ok)
			g_hash_table_remove(since, id);
		else if (f && !g_hash_table_contains(since, id))
			g_hash_table_insert(since, id, g_memdup2(&now_ms, sizeof(now_ms)));
	}
	int64_t next = 0;
	GHashTableIter it;
	gpointer id, first;
	g_hash_table_iter_init(&it, since);
	while (g_hash_table_iter_next(&it, &id, &first)) {
		if (!g_hash_table_contains(listed, id)) {
			g_hash_table_iter_remove(&it);
			continue;
		}
		int64_t in = *(int64_t *)first + HEALTH_VIRT_DOWN_ALERT_MS - now_ms;
		if (in > 0 && (!next || in < next))
			next = in;
	}
	return next;
}

static void virt_alerts(json_t *alerts, store_state *st, herd_facts *facts, GHashTable *since,
			int64_t now_ms)
{
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(st);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		herd_node_facts *f = herd_facts_fresh(facts, store_node_of(n)->nodeid);
		const int64_t *first = g_hash_table_lookup(since, GUINT_TO_POINTER(store_node_of(n)->nodeid));
		if (!f || f->virt_ok || !first || now_ms - *first < HEALTH_VIRT_DOWN_ALERT_MS)
			continue;
		g_autofree char *msg = g_strdup_printf(
			"libvirtd on node %s does not answer: herd can neither start, stop nor see VMs there, "
			"and places none there until it does.", n->name);
		json_array_append_new(alerts, json_pack("{s:s,s:s,s:s,s:s}", "kind", "virt_down", "severity",
							"critical", "node", n->name, "message", msg));
	}
}

/* "9.1 GiB" */
static char *size_text(double bytes)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	unsigned u = 0;
	while (bytes >= 1024 && u + 1 < G_N_ELEMENTS(units)) {
		bytes /= 1024;
		u++;
	}
	return g_strdup_printf(u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static void storage_alerts(json_t *alerts, store_state *st, herd_facts *facts)
{
	/* Per storage, the fullest view: {uuid: {"pct","node","free","size"}}. */
	g_autoptr(json_t) worst = json_object();
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(st);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		herd_node_facts *f = herd_facts_fresh(facts, store_node_of(n)->nodeid);
		const char *uuid;
		json_t *u;
		json_object_foreach(f ? f->usage : NULL, uuid, u) {
			json_t *size = json_object_get(u, "size"), *free_ = json_object_get(u, "free");
			if (!json_is_integer(size) || !json_is_integer(free_) || json_integer_value(size) <= 0 ||
			    json_integer_value(free_) < 0 || !store_state_get(st, STORE_KIND_STORAGE, uuid))
				continue;
			double pct = 100.0 * (double)(json_integer_value(size) - json_integer_value(free_)) /
				     (double)json_integer_value(size);
			json_t *was = json_object_get(worst, uuid);
			if (!was || pct > json_real_value(json_object_get(was, "pct")))
				json_object_set_new(worst, uuid,
						    json_pack("{s:f,s:s,s:O,s:O}", "pct", pct, "node", n->name,
							      "free", free_, "size", size));
		}
	}
	g_autoptr(GPtrArray) storages = store_state_list(st, STORE_KIND_STORAGE);
	for (guint i = 0; i < storages->len; i++) {
		store_object *s = storages->pdata[i];
		json_t *w = json_object_get(worst, s->uuid);
		double pct = json_real_value(json_object_get(w, "pct"));
		if (!w || pct < HEALTH_STORAGE_WARNING_PCT)
			continue;
		g_autofree char *free_text = size_text((double)json_integer_value(json_object_get(w, "free")));
		g_autofree char *size = size_text((double)json_integer_value(json_object_get(w, "size")));
		g_autofree char *msg = g_strdup_printf(
			"Storage %s is %d %% full (node %s sees %s free of %s)%s", s->name, (int)pct,
			json_string_value(json_object_get(w, "node")), free_text, size,
			pct >= HEALTH_STORAGE_CRITICAL_PCT ? ": guests writing to it may stop when it is full."
							   : ".");
		json_array_append_new(alerts,
				      json_pack("{s:s,s:s,s:s,s:s}", "kind", "storage_full", "severity",
						pct >= HEALTH_STORAGE_CRITICAL_PCT ? "critical" : "warning",
						"storage", s->name, "message", msg));
	}
}

/* "192.0.2.1, 192.0.2.2" */
static char *ping_targets_text(json_t *ping)
{
	GString *s = g_string_new(NULL);
	const char *address;
	json_t *ok;
	json_object_foreach(json_object_get(ping, "targets"), address, ok)
		g_string_append_printf(s, "%s%s", s->len ? ", " : "", address);
	return g_string_free(s, FALSE);
}

/* Nodes that reach none of the ping nodes, by what the scheduler does
 * about them (ha/sched.h): their HA VMs leave while a node that may take
 * VMs reaches one; nothing moves when none does. */
static void ping_alerts(json_t *alerts, store_state *st, herd_facts *facts, GHashTable *ping_cut)
{
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(st);
	g_autoptr(GPtrArray) cut = g_ptr_array_new();
	GString *reaching = g_string_new(NULL);
	json_t *ping = NULL;
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		herd_node_facts *f = herd_facts_fresh(facts, store_node_of(n)->nodeid);
		if (!f)
			continue;
		if (f->ping)
			ping = f->ping;
		if (g_hash_table_contains(ping_cut, n->name))
			g_ptr_array_add(cut, n);
		else if (f->virt_ok && store_node_of(n)->mode == STORE_NODE_ONLINE)
			g_string_append_printf(reaching, "%s%s", reaching->len ? ", " : "", n->name);
	}
	/* Just after ping_nodes was emptied the cut set holds for a moment,
	 * with nothing left to name. */
	g_autofree char *targets = ping ? ping_targets_text(ping) : g_strdup("no longer set");
	for (guint i = 0; i < cut->len && reaching->len; i++) {
		store_object *n = cut->pdata[i];
		g_autofree char *msg = g_strdup_printf(
			"Node %s reaches none of the ping nodes (%s), which %s reach%s: its HA VMs move there.",
			n->name, targets, reaching->str, strchr(reaching->str, ',') ? "" : "es");
		json_array_append_new(alerts, json_pack("{s:s,s:s,s:s,s:s}", "kind", "ping_lost", "severity",
							"warning", "node", n->name, "message", msg));
	}
	if (cut->len && !reaching->len) {
		g_autofree char *msg = g_strdup_printf(
			"No node that can take VMs reaches a ping node (%s): nothing moves for it. Check the ping nodes themselves and the cluster's uplink.",
			targets);
		json_array_append_new(alerts, json_pack("{s:s,s:s,s:s}", "kind", "ping_lost_all", "severity",
							"critical", "message", msg));
	}
	g_string_free(reaching, TRUE);
}

void herd_health_alerts(json_t *alerts, store_state *st, herd_facts *facts, GHashTable *virt_since,
			int64_t now_ms, GHashTable *ping_cut, bool n_plus_1, json_t *at_risk)
{
	virt_alerts(alerts, st, facts, virt_since, now_ms);
	storage_alerts(alerts, st, facts);
	ping_alerts(alerts, st, facts, ping_cut);
	if (n_plus_1)
		return;
	GString *risk = g_string_new(NULL);
	const char *node;
	json_t *count;
	json_object_foreach(at_risk, node, count)
		if (json_integer_value(count) > 0)
			g_string_append_printf(risk, "%s%s (%lld)", risk->len ? ", " : "", node,
					       (long long)json_integer_value(count));
	g_autofree char *msg = g_strdup_printf(
		"N+1 no longer holds: if one of these nodes died, that many of its HA VMs could not be "
		"restarted elsewhere: %s.", risk->len ? risk->str : "(no node named)");
	g_string_free(risk, TRUE);
	json_array_append_new(alerts, json_pack("{s:s,s:s,s:s}", "kind", "n_plus_1", "severity", "warning",
						"message", msg));
}
