#include "ha/alert_journal.h"

#include "common/json.h"
#include "store/alert.h"
#include "store/cluster.h"
#include "store/command.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *kind_of(json_t *alert)
{
	const char *kind = json_string_value(json_object_get(alert, "kind"));
	return kind			   ? kind
	       : json_object_get(alert, "vm")   ? "vm"
	       : json_object_get(alert, "disk") ? "disk"
	       : json_object_get(alert, "node") ? "node"
						: "cluster";
}

char *herd_alert_key(json_t *alert)
{
	GString *k = g_string_new(kind_of(alert));
	static const char *const about[] = { "vm", "disk", "storage", "node" };
	for (size_t i = 0; i < G_N_ELEMENTS(about); i++) {
		const char *v = json_string_value(json_object_get(alert, about[i]));
		if (v)
			g_string_append_printf(k, " %s=%s", about[i], v);
	}
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(alert, "nodes"), i, n)
		if (json_is_string(n))
			g_string_append_printf(k, "%s%s", i == 0 ? " nodes=" : ",", json_string_value(n));
	return g_string_free(k, FALSE);
}

static gint oldest_cleared_first(gconstpointer a, gconstpointer b)
{
	/* Not cleared in the store yet: cleared now, the newest. */
	int64_t x = store_alert_of(*(store_object *const *)a)->cleared_ms;
	int64_t y = store_alert_of(*(store_object *const *)b)->cleared_ms;
	x = x ? x : INT64_MAX;
	y = y ? y : INT64_MAX;
	return x < y ? -1 : x > y;
}

json_t *herd_alert_journal(store_state *st, json_t *active, json_t *events, int64_t now_ms,
			   unsigned keep)
{
	store_object *cluster = store_state_cluster(st);
	if (!cluster)
		return NULL;
	json_t *ops = json_array();
	/* The open records by key; the next number. */
	g_autoptr(GHashTable) open = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) records = store_alert_list(st);
	g_autoptr(GPtrArray) cleared = g_ptr_array_new();
	uint64_t next = 1;
	for (guint i = 0; i < records->len; i++) {
		store_object *o = records->pdata[i];
		const store_alert *a = store_alert_of(o);
		next = MAX(next, strtoull(o->name, NULL, 10) + 1);
		if (a->cleared_ms)
			g_ptr_array_add(cleared, o);
		else if (!g_hash_table_contains(open, a->key))
			g_hash_table_insert(open, (gpointer)a->key, o);
		else /* a second open record of the same (an older herd): it ends */
			json_array_append_new(ops, store_alert_cmd_clear(o, now_ms));
	}
	g_autoptr(GHashTable) still = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	size_t i;
	json_t *alert;
	json_array_foreach(active, i, alert) {
		const char *severity = json_string_value(json_object_get(alert, "severity"));
		const char *message = json_string_value(json_object_get(alert, "message"));
		store_alert_severity sev;
		if (!message || !store_alert_severity_parse(severity, &sev))
			continue;
		char *key = herd_alert_key(alert);
		if (g_hash_table_contains(still, key)) { /* the same twice: the first counts */
			g_free(key);
			continue;
		}
		g_hash_table_add(still, key);
		store_object *o = g_hash_table_lookup(open, key);
		if (!o) {
			g_autoptr(json_t) rec = json_deep_copy(alert);
			json_object_set_new(rec, "key", json_string(key));
			json_object_set_new(rec, "kind", json_string(kind_of(alert)));
			json_array_append_new(ops, store_alert_cmd_raise(cluster->uuid, next++, rec, now_ms));
			continue;
		}
		const store_alert *a = store_alert_of(o);
		bool worse_or_better = a->severity != sev;
		bool reworded = strcmp(a->message, message) != 0 &&
				now_ms - a->last_ms >= ALERT_MESSAGE_REFRESH_MS;
		if (worse_or_better || reworded)
			json_array_append_new(ops, store_alert_cmd_change(o, severity, message, now_ms));
	}
	/* Events: an occurrence each, over as it is recorded. */
	json_array_foreach(events, i, alert) {
		store_alert_severity sev;
		if (!json_string_value(json_object_get(alert, "message")) ||
		    !store_alert_severity_parse(json_string_value(json_object_get(alert, "severity")), &sev))
			continue;
		g_autoptr(json_t) rec = json_deep_copy(alert);
		g_autofree char *key = herd_alert_key(alert);
		json_object_set_new(rec, "key", json_string(key));
		json_object_set_new(rec, "kind", json_string(kind_of(alert)));
		json_array_append_new(ops, store_alert_cmd_event(cluster->uuid, next++, rec, now_ms));
	}
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, open);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		if (g_hash_table_contains(still, k))
			continue;
		json_array_append_new(ops, store_alert_cmd_clear(v, now_ms));
		g_ptr_array_add(cleared, v);
	}
	if (cleared->len > keep) {
		/* The ones cleared just now are the newest: never among them. */
		g_ptr_array_sort(cleared, oldest_cleared_first);
		for (guint n = 0; n < cleared->len - keep; n++) {
			store_object *o = cleared->pdata[n];
			if (store_alert_of(o)->cleared_ms)
				json_array_append_new(ops, store_alert_cmd_delete(o));
		}
	}
	if (!json_array_size(ops)) {
		json_decref(ops);
		return NULL;
	}
	return store_cmd_batch(ops);
}
