/*
 * Pre-flight checks as a resource (herd check, docs/check.md): POST
 * /api/v1/check runs them now from this node and answers
 * {"node","time_ms","results":[{"check","status","node"?,"message"}…]};
 * GET /api/v1/check answers the latest results any node multicast (a
 * periodic round of the coordinator's, or someone's herd check).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"

static void on_checked(json_t *report, gpointer user)
{
	http_request *req = user;
	json_t *code = json_object_get(report, "code");
	if (json_is_integer(code)) {
		http_respond_errorf(req, (herd_error_code)json_integer_value(code), "%s",
				    json_string_value(json_object_get(report, "error")));
		return;
	}
	http_respond_json(req, 200, json_incref(report));
}

void api_check_run(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	if (!a->check_run) {
		http_respond_errorf(req, HERD_ERR_UNAVAILABLE, "This node's herd runs no checks.");
		return;
	}
	/* Answered when every node answered, or after CHECK_ANSWER_S. */
	http_request_suspend(req);
	a->check_run(a->checker, on_checked, req);
}

void api_check_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	json_t *report = a->ha ? herd_ha_check(a->ha) : NULL;
	if (!report) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND,
				    "No check has run since this node's herd started: run herd check.");
		return;
	}
	http_respond_json(req, 200, report);
}
