/*
 * The scheduler's input and output as JSON: for golden tests
 * (tests/sched/) and for `herd-sched FILE`, which shows what the scheduler
 * decides for a state an operator or a test wrote down.
 *
 * Input:  {"settings":{"lab_mode":…,"admission":"off|warn|refuse",
 *          "vcpu_overcommit":…,"memory_reserve_mib":…},
 *          "nodes":[{"name","mode","in_ring","herd_up","down","fence_covered",
 *                    "memory_mib","cpus","reach":[need id…]}…],
 *          "vms":[{"uuid","name","target":"running|stopped","node","move_to",
 *                  "ha","preferred","failback","sticky","group","memory_mib",
 *                  "vcpus","seen_on":[…],"steady",
 *                  "needs":[{"id","unreached"}…]}…]}
 * Output: {"actions":[{"action","vm","node","move_to","reason"}…],
 *          "alerts":[{"severity","vm","node","message"}…],"n_plus_1":…}
 * VMs are named by "name" in the output, for readable golden files.
 *
 * Per node risk (opt-in, so that golden files written before it stay as
 * they are):  {"n1":0,"n2":3}, sched_plan's unsafe_if_lost.
 *
 * Rebalance (tests/sched/rebalance/, `herd simulate --rebalance`):
 * Settings: {"threshold_pct","hold_s","min_gain_pct","max_moves",
 *            "above_since_ms" (absent: judged as if held long enough),"now_ms"}
 * Result:  {"imbalance_pct","fullest","emptiest","due","due_in_ms",
 *           "moves":[{"vm","uuid","from","to","before_pct","after_pct"}…]}
 *
 * What-if (tests/sched/whatif/, `herd simulate`):
 * Hypothesis: {"node_down":["n2",…],"standby":["n1",…],"max_rounds":…}
 * Result:  {"vms":[{"vm","uuid","from","to","reason"}…],"fenced":[…],
 *           "node_alerts":[…],"n_plus_1":…,"n_plus_1_detail":… (when false),
 *           "unsafe_if_lost":{…},"rounds":…,"settled":…,"unsettled":… (when not)}
 *          "from"/"to" are null for no node; "reason" is null when the
 *          scheduler gave none.
 */
#pragma once

#include "ha/sched.h"
#include "ha/rebalance.h"
#include "ha/whatif.h"

#include <glib.h>
#include <jansson.h>

typedef struct sched_json_input sched_json_input;

/* Parse @j; NULL with an error naming the bad field. */
sched_json_input *sched_json_parse(json_t *j, GError **error);
const sched_input *sched_json_input_get(sched_json_input *ji);
void sched_json_input_free(sched_json_input *ji);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sched_json_input, sched_json_input_free)

/* The input as JSON (the format above), e.g. to replay a live state. */
json_t *sched_json_input_dump(const sched_input *in);

/* The plan as JSON. */
json_t *sched_json_plan(const sched_input *in, const sched_plan *plan);

/* The plan's unsafe_if_lost by node name. */
json_t *sched_json_plan_unsafe_if_lost(const sched_input *in, const sched_plan *plan);

typedef struct sched_json_hypothesis sched_json_hypothesis;

/* Parse a hypothesis; NULL with an error naming the bad field.  The names
 * stay @j's: the result holds a reference to it. */
sched_json_hypothesis *sched_json_hypothesis_parse(json_t *j, GError **error);
const sched_hypothesis *sched_json_hypothesis_get(sched_json_hypothesis *jh);
void sched_json_hypothesis_free(sched_json_hypothesis *jh);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sched_json_hypothesis, sched_json_hypothesis_free)

/* A what-if's result as JSON (the format above). */
json_t *sched_json_whatif(const sched_whatif_result *r);

/* Rebalance settings and state from @j (the format above); false with an
 * error naming the bad field.  *@has_state: "above_since_ms" was given. */
bool sched_json_rebalance_parse(json_t *j, rebalance_settings *s, rebalance_state *st, bool *has_state,
				int64_t *now_ms, GError **error);
/* A rebalance plan as JSON. */
json_t *sched_json_rebalance(const rebalance_plan *p);
