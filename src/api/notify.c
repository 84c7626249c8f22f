/*
 * Notifications as a resource (herd notify test): POST /api/v1/notify/test
 * sends a test message now, by mail and to the webhook as the notify_*
 * settings say, from this node, and answers what happened on each
 * channel: {"mail":{"sent","to","error"?}|null,"webhook":{"sent","error"?}|null}.
 * Alerts' own notifications go out from the coordinator's node
 * (daemon/notify_send.h).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"

static void on_tested(json_t *result, gpointer user)
{
	http_request *req = user;
	json_t *code = json_object_get(result, "code");
	if (json_is_integer(code)) {
		http_respond_errorf(req, (herd_error_code)json_integer_value(code), "%s",
				    json_string_value(json_object_get(result, "error")));
		return;
	}
	http_respond_json(req, 200, json_incref(result));
}

void api_notify_test(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	if (!a->notify_test) {
		http_respond_errorf(req, HERD_ERR_UNAVAILABLE, "This node's herd sends no notifications.");
		return;
	}
	/* Answered when both channels are done (each bounded in time). */
	http_request_suspend(req);
	a->notify_test(a->notifier, on_tested, req);
}
