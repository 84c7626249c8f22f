#include "store/alert.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"

#include <stdlib.h>
#include <string.h>

static const char *const severity_names[] = { "info", "warning", "critical" };

const char *store_alert_severity_name(store_alert_severity s)
{
	return (unsigned)s < G_N_ELEMENTS(severity_names) ? severity_names[s] : "?";
}

bool store_alert_severity_parse(const char *s, store_alert_severity *out)
{
	for (unsigned i = 0; s && i < G_N_ELEMENTS(severity_names); i++) {
		if (strcmp(s, severity_names[i]) == 0) {
			*out = (store_alert_severity)i;
			return true;
		}
	}
	return false;
}

static int64_t field_ms(json_t *d, const char *key)
{
	return (int64_t)field_uint(d, key, 0);
}

void *store_alert_parse(json_t *d)
{
	store_alert *a = g_new0(store_alert, 1);
	a->key = field_text(d, "key");
	a->kind = field_text(d, "kind");
	if (!store_alert_severity_parse(field_str(d, "severity"), &a->severity))
		a->severity = STORE_ALERT_WARNING;
	a->message = field_text(d, "message");
	a->vm = field_str(d, "vm");
	a->node = field_str(d, "node");
	a->disk = field_str(d, "disk");
	a->storage = field_str(d, "storage");
	a->first_ms = field_ms(d, "first_ms");
	a->last_ms = field_ms(d, "last_ms");
	a->cleared_ms = field_ms(d, "cleared_ms");
	a->acked_by = field_str(d, "acked_by");
	a->acked_ms = field_ms(d, "acked_ms");
	a->notified_ms = field_ms(d, "notified_ms");
	if (!store_alert_severity_parse(field_str(d, "notified_severity"), &a->notified_severity))
		a->notified_severity = a->severity;
	a->cleared_notified_ms = field_ms(d, "cleared_notified_ms");
	return a;
}

void store_alert_free(void *typed)
{
	g_free(typed);
}

const store_alert *store_alert_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_ALERT);
	return o->typed;
}

bool store_alert_validate(json_t *d, GError **error)
{
	static const char *const text[] = { "key", "kind", "message", "vm", "node", "disk", "storage", "acked_by" };
	static const char *const times[] = { "first_ms", "last_ms", "cleared_ms", "acked_ms", "notified_ms",
					       "cleared_notified_ms" };
	for (size_t i = 0; i < G_N_ELEMENTS(text); i++)
		if (!check_string(d, "alert", text[i], error))
			return false;
	for (size_t i = 0; i < G_N_ELEMENTS(times); i++)
		if (!check_uint(d, "alert", times[i], 0, INT64_MAX, error))
			return false;
	if (!check_choice(d, "alert", "severity", "info|warning|critical", error) ||
	    !check_choice(d, "alert", "notified_severity", "info|warning|critical", error))
		return false;
	if (!field_str(d, "key") || !*field_str(d, "key") || !field_str(d, "message") ||
	    !json_is_integer(json_object_get(d, "first_ms"))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "An alert needs a key, a message and the time it was raised (first_ms).");
		return false;
	}
	return true;
}

static gint newest_first(gconstpointer a, gconstpointer b)
{
	const store_object *x = *(store_object *const *)a, *y = *(store_object *const *)b;
	unsigned long long m = strtoull(x->name, NULL, 10), n = strtoull(y->name, NULL, 10);
	return m < n ? 1 : m > n ? -1 : 0;
}

GPtrArray *store_alert_list(store_state *st)
{
	GPtrArray *all = store_state_list(st, STORE_KIND_ALERT);
	g_ptr_array_sort(all, newest_first);
	return all;
}

/* A UUID (version 4's layout) from the cluster's and the alert's number. */
static char *alert_uuid(const char *cluster_uuid, uint64_t number)
{
	g_autofree char *seed = g_strdup_printf("herd-alert:%s:%" G_GUINT64_FORMAT, cluster_uuid, number);
	g_autofree char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, seed, -1);
	static const char variant[] = "89ab";
	return g_strdup_printf("%.8s-%.4s-4%.3s-%c%.3s-%.12s", h, h + 8, h + 13,
			       variant[g_ascii_xdigit_value(h[16]) & 3], h + 17, h + 20);
}

json_t *store_alert_cmd_raise(const char *cluster_uuid, uint64_t number, json_t *alert,
			      int64_t now_ms)
{
	json_t *d = json_object();
	static const char *const keep[] = { "key", "kind", "severity", "message", "vm", "node", "disk", "storage" };
	for (size_t i = 0; i < G_N_ELEMENTS(keep); i++) {
		json_t *v = json_object_get(alert, keep[i]);
		if (json_is_string(v))
			json_object_set(d, keep[i], v);
	}
	json_object_set_new(d, "first_ms", json_integer(now_ms));
	json_object_set_new(d, "last_ms", json_integer(now_ms));
	g_autofree char *uuid = alert_uuid(cluster_uuid, number);
	g_autofree char *name = g_strdup_printf("%" G_GUINT64_FORMAT, number);
	return store_cmd_create(STORE_KIND_ALERT, uuid, name, d);
}

json_t *store_alert_cmd_event(const char *cluster_uuid, uint64_t number, json_t *alert,
			      int64_t now_ms)
{
	json_t *cmd = store_alert_cmd_raise(cluster_uuid, number, alert, now_ms);
	json_object_set_new(json_object_get(cmd, "data"), "cleared_ms", json_integer(now_ms));
	return cmd;
}

json_t *store_alert_cmd_change(const store_object *o, const char *severity, const char *message,
			       int64_t now_ms)
{
	return store_cmd_patch(STORE_KIND_ALERT, o->uuid,
			       json_pack("{s:s,s:s,s:I}", "severity", severity, "message", message,
					 "last_ms", (json_int_t)now_ms));
}

json_t *store_alert_cmd_clear(const store_object *o, int64_t now_ms)
{
	return store_cmd_patch(STORE_KIND_ALERT, o->uuid,
			       json_pack("{s:I}", "cleared_ms", (json_int_t)now_ms));
}

json_t *store_alert_cmd_ack(const store_object *o, const char *user, int64_t now_ms)
{
	json_t *cmd = store_cmd_patch(STORE_KIND_ALERT, o->uuid,
				      json_pack("{s:s,s:I}", "acked_by", user, "acked_ms",
						(json_int_t)now_ms));
	store_cmd_if_version(cmd, o->version);
	return cmd;
}

json_t *store_alert_cmd_delete(const store_object *o)
{
	return store_cmd_delete(STORE_KIND_ALERT, o->uuid, o->version);
}

json_t *store_alert_cmd_notified(const store_object *o, bool raised, store_alert_severity severity,
				 bool cleared, int64_t now_ms)
{
	json_t *patch = json_object();
	if (raised) {
		json_object_set_new(patch, "notified_ms", json_integer(now_ms));
		json_object_set_new(patch, "notified_severity",
				    json_string(store_alert_severity_name(severity)));
	}
	if (cleared)
		json_object_set_new(patch, "cleared_notified_ms", json_integer(now_ms));
	return store_cmd_patch(STORE_KIND_ALERT, o->uuid, patch);
}
