/*
 * What if?  POST /api/v1/simulate {"node_down":[…],"standby":[…]} runs the
 * shipped scheduler forward on the cluster as this node sees it, with those
 * nodes' power cut and those put in standby, and changes nothing: where each
 * VM would go, or why it would stay down, and whether N+1 would still hold
 * (ha/whatif.h; `herd simulate`).  {"rebalance":true}: what an automatic
 * rebalance would move now (ha/rebalance.h; `herd simulate --rebalance`).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "ha/sched_json.h"

void api_simulate(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "node_down", "standby", "rebalance", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	bool rebalance = false;
	if (body && !api_get_bool(body, "rebalance", &rebalance, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (body && rebalance) {
		if (json_object_get(body, "node_down") || json_object_get(body, "standby")) {
			http_respond_errorf(req, HERD_ERR_INVALID,
					    "A rebalance is simulated on the cluster as it is: not with node_down or standby.");
			return;
		}
		if (!store_state_cluster(api_state(a))) {
			http_respond_errorf(req, HERD_ERR_NOT_FOUND, "This node is not part of a cluster.");
			return;
		}
		http_respond_json(req, 200, herd_ha_simulate_rebalance(a->ha));
		return;
	}
	g_autoptr(sched_json_hypothesis) hyp = body ? sched_json_hypothesis_parse(body, &err) : NULL;
	if (!hyp) {
		http_respond_error(req, err);
		return;
	}
	if (!store_state_cluster(api_state(a))) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "This node is not part of a cluster.");
		return;
	}
	g_autoptr(sched_whatif_result) r = herd_ha_simulate(a->ha, sched_json_hypothesis_get(hyp), &err);
	if (!r) {
		http_respond_error(req, err);
		return;
	}
	http_respond_json(req, 200, sched_json_whatif(r));
}
