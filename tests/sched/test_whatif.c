/*
 * The what-if's contract beyond the golden files in whatif/: its result
 * owns its strings (it outlives the input; ASan proves it), the input is not
 * changed, bad hypotheses are refused with a sentence, and the per-node risk
 * of a plan (unsafe_if_lost) says what a what-if with that one node down
 * would show — checked on every golden input and on seeded random clusters.
 */
#include "common/error.h"
#include "common/json.h"
#include "ha/sched_json.h"

#include <string.h>

static json_t *load_case(const char *dir, const char *name)
{
	g_autofree char *path = g_build_filename(SCHED_TESTS_DIR, dir, name, NULL);
	json_error_t jerr;
	json_t *c = json_load_file(path, 0, &jerr);
	if (!c)
		g_error("%s: %s", path, jerr.text);
	return c;
}

static void test_result_outlives_input(void)
{
	json_t *c = load_case("whatif", "05-no-capacity.json");
	sched_json_input *ji = sched_json_parse(json_object_get(c, "input"), NULL);
	sched_json_hypothesis *jh = sched_json_hypothesis_parse(json_object_get(c, "whatif"), NULL);
	g_assert_nonnull(ji);
	g_assert_nonnull(jh);
	g_autoptr(sched_whatif_result) r = sched_whatif(sched_json_input_get(ji), sched_json_hypothesis_get(jh), NULL);
	g_assert_nonnull(r);
	/* Every string of the input goes away before the result is read. */
	sched_json_hypothesis_free(jh);
	sched_json_input_free(ji);
	json_decref(c);

	g_assert_cmpuint(r->vms->len, ==, 2);
	const sched_whatif_vm *big2 = r->vms->pdata[1];
	g_assert_cmpstr(big2->name, ==, "big2");
	g_assert_cmpstr(big2->node_before, ==, "n2");
	g_assert_null(big2->node_after);
	g_assert_true(g_str_has_prefix(big2->reason, "VM big2 cannot be started: no node can take it (n1: "));
	g_assert_cmpuint(r->fenced->len, ==, 1);
	g_assert_cmpstr(r->fenced->pdata[0], ==, "n2");
	g_assert_cmpuint(r->n_nodes, ==, 3);
	g_assert_cmpstr(r->node_names[2], ==, "n3");
	g_assert_false(r->n_plus_1);
	g_assert_nonnull(r->n_plus_1_detail);
	/* The JSON form reads every string once more. */
	g_autoptr(json_t) j = sched_json_whatif(r);
	g_assert_cmpuint(json_array_size(json_object_get(j, "vms")), ==, 2);
}

static void test_input_unchanged(void)
{
	const char *const cases[] = { "08-standby-moves-vms.json", "09-node-down-and-standby.json" };
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(json_t) c = load_case("whatif", cases[i]);
		g_autoptr(sched_json_input) ji = sched_json_parse(json_object_get(c, "input"), NULL);
		g_autoptr(sched_json_hypothesis) jh = sched_json_hypothesis_parse(json_object_get(c, "whatif"), NULL);
		const sched_input *in = sched_json_input_get(ji);
		g_autoptr(json_t) before = sched_json_input_dump(in);
		g_autoptr(sched_whatif_result) r = sched_whatif(in, sched_json_hypothesis_get(jh), NULL);
		g_assert_nonnull(r);
		g_autoptr(json_t) after = sched_json_input_dump(in);
		g_assert_true(json_equal(before, after));
	}
}

static void test_bad_hypothesis(void)
{
	g_autoptr(json_t) c = load_case("whatif", "01-failover-preferred-then-free-memory.json");
	g_autoptr(sched_json_input) ji = sched_json_parse(json_object_get(c, "input"), NULL);
	const sched_input *in = sched_json_input_get(ji);

	const char *down[] = { "n2", "n9" };
	sched_hypothesis h = { .node_down = down, .n_node_down = 2 };
	g_autoptr(GError) err = NULL;
	g_assert_null(sched_whatif(in, &h, &err));
	g_assert_error(err, HERD_ERROR, HERD_ERR_INVALID);
	g_assert_cmpstr(err->message, ==, "Node 'n9' is not a node of the cluster.");
	g_clear_error(&err);

	const char *standby[] = { "" };
	sched_hypothesis s = { .standby = standby, .n_standby = 1 };
	g_assert_null(sched_whatif(in, &s, &err));
	g_assert_cmpstr(err->message, ==, "Node '' is not a node of the cluster.");
	g_clear_error(&err);

	/* Nothing hypothetical: a what-if of the live state, which is settled. */
	sched_hypothesis none = { 0 };
	g_autoptr(sched_whatif_result) r = sched_whatif(in, &none, &err);
	g_assert_no_error(err);
	g_assert_true(r->settled);
	g_assert_cmpuint(r->vms->len, ==, 0);

	const char *const bad[] = { "[]", "{\"node_down\":\"n2\"}", "{\"standby\":[1]}",
				    "{\"node_down\":[\"\"]}", "{\"max_rounds\":0}" };
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(json_t) j = json_loads(bad[i], 0, NULL);
		g_assert_null(sched_json_hypothesis_parse(j, &err));
		g_assert_error(err, HERD_ERROR, HERD_ERR_INVALID);
		g_clear_error(&err);
	}
}

static void test_free_null(void)
{
	sched_whatif_result_free(NULL);
	sched_json_hypothesis_free(NULL);
	sched_plan_free(NULL);
}

/*
 * For every node in the ring: its HA VMs that a what-if with it down leaves
 * not running (VMs sticky to it aside) are as many as the plan's
 * unsafe_if_lost says.  Only for a settled input (its plan has no action):
 * else the what-if also carries out what the live plan would do anyway.
 * Returns false if the input is not settled.
 */
static bool risk_matches_node_down(const sched_input *in, const char *label)
{
	g_autoptr(sched_plan) plan = sched_plan_compute(in);
	if (plan->actions->len > 0)
		return false;
	for (size_t f = 0; f < in->n_nodes; f++) {
		const sched_node *n = &in->nodes[f];
		if (!n->in_ring)
			continue;
		const char *down[] = { n->name };
		sched_hypothesis h = { .node_down = down, .n_node_down = 1 };
		g_autoptr(sched_whatif_result) r = sched_whatif(in, &h, NULL);
		g_assert_nonnull(r);
		unsigned stranded = 0;
		for (guint i = 0; i < r->vms->len; i++) {
			const sched_whatif_vm *w = r->vms->pdata[i];
			const sched_vm *vm = NULL;
			for (size_t k = 0; k < in->n_vms && !vm; k++)
				if (strcmp(in->vms[k].uuid, w->uuid) == 0)
					vm = &in->vms[k];
			g_assert_nonnull(vm);
			/* Sticky to it, or restart priority disabled: it waits
			 * for its node by the operator's choice. */
			if (vm && vm->ha && vm->priority != STORE_VM_PRIORITY_DISABLED && !w->node_after &&
			    g_strcmp0(w->node_before, n->name) == 0 && g_strcmp0(vm->sticky, n->name) != 0)
				stranded++;
		}
		if (stranded != plan->unsafe_if_lost[f]) {
			g_autoptr(json_t) j = sched_json_input_dump(in);
			g_autofree char *s = json_dumps(j, JSON_COMPACT);
			g_error("%s: node %s down strands %u HA VMs, the plan's unsafe_if_lost says %u; input: %s",
				label, n->name, stranded, plan->unsafe_if_lost[f], s);
		}
	}
	return true;
}

static void test_risk_on_golden_inputs(void)
{
	const char *const dirs[] = { "cases", "whatif" };
	unsigned checked = 0;
	for (size_t d = 0; d < G_N_ELEMENTS(dirs); d++) {
		g_autofree char *path = g_build_filename(SCHED_TESTS_DIR, dirs[d], NULL);
		g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
		g_assert_nonnull(dir);
		const char *name;
		while ((name = g_dir_read_name(dir))) {
			if (!g_str_has_suffix(name, ".json"))
				continue;
			g_autoptr(json_t) c = load_case(dirs[d], name);
			g_autoptr(sched_json_input) ji = sched_json_parse(json_object_get(c, "input"), NULL);
			g_assert_nonnull(ji);
			checked += risk_matches_node_down(sched_json_input_get(ji), name);
		}
	}
	g_test_message("%u settled golden inputs checked", checked);
	g_assert_cmpuint(checked, >=, 10);
}

/* A random cluster of a few nodes and VMs, from @rand. */
typedef struct {
	sched_input in;
	sched_node nodes[6];
	sched_vm vms[14];
	char names[20][8];
	const char *seen[14];
} random_cluster;

static void random_cluster_fill(random_cluster *rc, GRand *rand)
{
	static const uint64_t node_mib[] = { 2048, 4096, 8192 };
	static const uint64_t vm_mib[] = { 512, 1024, 2048 };
	static const char *const groups[] = { "g1", "g2" };
	memset(rc, 0, sizeof(*rc));
	size_t n = (size_t)g_rand_int_range(rand, 2, 7), v = (size_t)g_rand_int_range(rand, 0, 15);
	for (size_t i = 0; i < n; i++) {
		sched_node *nd = &rc->nodes[i];
		g_snprintf(rc->names[i], sizeof(rc->names[i]), "n%zu", i + 1);
		nd->name = rc->names[i];
		int mode = g_rand_int_range(rand, 0, 10);
		nd->mode = mode < 8 ? STORE_NODE_ONLINE : mode < 9 ? STORE_NODE_STANDBY : STORE_NODE_MAINTENANCE;
		nd->in_ring = g_rand_int_range(rand, 0, 10) > 0;
		nd->herd_up = nd->in_ring && g_rand_int_range(rand, 0, 20) > 0;
		/* Out of the ring: fenced.  In it without herd: maybe not
		 * cleared of an old down mark yet. */
		nd->down = !nd->in_ring || (!nd->herd_up && g_rand_boolean(rand));
		nd->fence_covered = g_rand_int_range(rand, 0, 5) > 0;
		nd->memory_mib = node_mib[g_rand_int_range(rand, 0, 3)];
		nd->cpus = 4;
	}
	for (size_t k = 0; k < v; k++) {
		sched_vm *vm = &rc->vms[k];
		g_snprintf(rc->names[6 + k], sizeof(rc->names[6 + k]), "vm%zu", k);
		vm->uuid = vm->name = rc->names[6 + k];
		vm->target_running = g_rand_int_range(rand, 0, 10) > 0;
		vm->ha = g_rand_int_range(rand, 0, 10) < 7;
		vm->memory_mib = vm_mib[g_rand_int_range(rand, 0, 3)];
		vm->vcpus = 1;
		vm->failback = true;
		vm->steady = true;
		if (g_rand_int_range(rand, 0, 10) < 3)
			vm->preferred = rc->nodes[g_rand_int_range(rand, 0, (gint32)n)].name;
		if (g_rand_int_range(rand, 0, 10) < 1)
			vm->sticky = rc->nodes[g_rand_int_range(rand, 0, (gint32)n)].name;
		if (g_rand_int_range(rand, 0, 10) < 3)
			vm->group = groups[g_rand_int_range(rand, 0, 2)];
		const sched_node *at = &rc->nodes[g_rand_int_range(rand, 0, (gint32)n)];
		if (vm->target_running && at->in_ring) {
			vm->node = at->name;
			rc->seen[k] = at->name;
			vm->seen_on = &rc->seen[k];
			vm->n_seen = 1;
		}
	}
	rc->in = (sched_input){ .nodes = rc->nodes, .n_nodes = n, .vms = rc->vms, .n_vms = v,
				.lab_mode = g_rand_int_range(rand, 0, 10) == 0,
				.admission = SCHED_ADMISSION_WARN, .vcpu_overcommit = 4, .join_timeout_s = 120 };
}

static void test_risk_on_random_clusters(void)
{
	guint32 seed = (guint32)g_test_rand_int();
	g_test_message("seed %u", seed);
	g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
	unsigned checked = 0;
	for (unsigned i = 0; i < 3000; i++) {
		random_cluster rc;
		random_cluster_fill(&rc, rand);
		g_autofree char *label = g_strdup_printf("seed %u, cluster %u", seed, i);
		checked += risk_matches_node_down(&rc.in, label);
	}
	g_test_message("%u settled random clusters checked", checked);
	g_assert_cmpuint(checked, >=, 300);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/whatif/result-outlives-input", test_result_outlives_input);
	g_test_add_func("/whatif/input-unchanged", test_input_unchanged);
	g_test_add_func("/whatif/bad-hypothesis", test_bad_hypothesis);
	g_test_add_func("/whatif/free-null", test_free_null);
	g_test_add_func("/whatif/risk-on-golden-inputs", test_risk_on_golden_inputs);
	g_test_add_func("/whatif/risk-on-random-clusters", test_risk_on_random_clusters);
	return g_test_run();
}
