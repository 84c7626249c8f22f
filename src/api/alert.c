/*
 * Alerts as a resource (herd alert): the store's records of what the
 * coordinator raised (store/alert.h, ha/alert_journal.h), newest first;
 * operators acknowledge them.  GET /api/v1/alerts lists those that hold
 * (?all=true: the history too); GET /api/v1/alerts/{alert} one; POST
 * /api/v1/alerts/{alert}/ack acknowledges it.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "store/alert.h"

#include <string.h>

static json_t *alert_json(api_ctx *a, store_object *o)
{
	const store_alert *al = store_alert_of(o);
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:b}", "name", o->name, "uuid", o->uuid,
			      "kind", al->kind, "severity", store_alert_severity_name(al->severity),
			      "message", al->message, "first_ms", (json_int_t)al->first_ms, "last_ms",
			      (json_int_t)al->last_ms, "cleared_ms", api_ms_or_null(al->cleared_ms), "active",
			      al->cleared_ms == 0);
	json_object_set_new(j, "vm", al->vm ? json_string(al->vm) : json_null());
	json_object_set_new(j, "node", al->node ? json_string(al->node) : json_null());
	json_object_set_new(j, "disk", al->disk ? json_string(al->disk) : json_null());
	json_object_set_new(j, "storage", al->storage ? json_string(al->storage) : json_null());
	json_object_set_new(j, "acked_by", al->acked_by ? json_string(al->acked_by) : json_null());
	json_object_set_new(j, "acked_ms", api_ms_or_null(al->acked_ms));
	json_object_set_new(j, "notified_ms", api_ms_or_null(al->notified_ms));
	json_object_set_new(j, "cleared_notified_ms", api_ms_or_null(al->cleared_notified_ms));
	return j;
}

void api_alerts_list(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	bool history;
	if (!api_query_bool(req, "all", &history) || !api_require_store(req, a))
		return;
	g_autoptr(GPtrArray) alerts = store_alert_list(api_state(a));
	json_t *out = json_array();
	for (guint i = 0; i < alerts->len; i++)
		if (history || !store_alert_of(alerts->pdata[i])->cleared_ms)
			json_array_append_new(out, alert_json(a, alerts->pdata[i]));
	http_respond_json(req, 200, out);
}

void api_alert_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_ALERT, "alert");
	if (o)
		http_respond_json(req, 200, alert_json(a, o));
}

void api_alert_ack(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_ALERT, "alert");
	if (!o)
		return;
	const store_alert *al = store_alert_of(o);
	if (al->acked_by) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Alert %s was acknowledged already, by %s.", o->name,
				    al->acked_by);
		return;
	}
	const char *user = http_request_user(req);
	g_autoptr(json_t) cmd = store_alert_cmd_ack(o, user ? user : "root", g_get_real_time() / 1000);
	api_commit(req, a, cmd, 200, NULL);
}
