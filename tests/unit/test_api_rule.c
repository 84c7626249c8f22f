/*
 * Affinity rules through the API (src/api/rule.c) in a cluster of three
 * nodes in this process (tests/lib): add, list, show, delete, and every
 * refusal, which changes nothing; a VM in a rule cannot be undefined; the
 * scheduler honours a strict rule when it places a VM, and a rule added
 * while two VMs run on one node makes one of them move there live; what a
 * rebalance would do (herd simulate --rebalance), and that it does it,
 * live, once turned on.
 */
#include "test_api.h"

#include "store/rule.h"

#include <string.h>

static json_t *rule_add(fixture *f, unsigned node, const char *name, const char *kind, bool strict,
			const char *vm1, const char *vm2, long status)
{
	g_autoptr(test_answer) a = test_requestf(f->n[node], "POST", "/api/v1/rules", "{s:s,s:s,s:b,s:[s,s]}", "name",
						 name, "kind", kind, "strict", strict, "vms", vm1, vm2);
	json_t *j = test_expect(a, status);
	return json_incref(j);
}

typedef struct {
	bool answered;
	GError *error;
} submitted;

static void on_done(json_t *result, const GError *error, gpointer data)
{
	submitted *s = data;
	s->answered = true;
	s->error = error ? g_error_copy(error) : NULL;
}

static void test_rules(fixture *f, gconstpointer data)
{
	g_autofree char *a = vm_define(f, 1, "a", NULL);
	g_autofree char *b = vm_define(f, 1, "b", NULL);
	g_autofree char *c = vm_define(f, 1, "c", NULL);
	g_autoptr(json_t) made = rule_add(f, 2, "a-b", "apart", true, "a", b, 201);
	g_autoptr(json_t) soft = rule_add(f, 1, "b-c", "together", false, "b", "c", 201);

	g_autoptr(test_answer) list = test_request(f->n[3], "GET", "/api/v1/rules", NULL);
	json_t *rules = test_expect(list, 200);
	g_assert_cmpuint(json_array_size(rules), ==, 2);
	json_t *r = json_array_get(rules, 0);
	g_assert_cmpstr(str(r, "name"), ==, "a-b");
	g_assert_cmpstr(str(r, "kind"), ==, "apart");
	g_assert_true(json_is_true(json_object_get(r, "strict")));
	g_assert_true(json_is_true(json_object_get(r, "holds")));
	json_t *vms = json_object_get(r, "vms");
	g_assert_cmpstr(str(json_array_get(vms, 0), "name"), ==, "a");
	g_assert_cmpstr(str(json_array_get(vms, 1), "uuid"), ==, b);
	g_assert_true(json_is_null(json_object_get(json_array_get(vms, 1), "node")));
	g_autoptr(test_answer) show = test_request(f->n[2], "GET", "/api/v1/rules/b-c", NULL);
	json_t *s = test_expect(show, 200);
	g_assert_cmpstr(str(s, "kind"), ==, "together");
	g_assert_false(json_is_true(json_object_get(s, "strict")));

	const refusal bad[] = {
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"near\",\"vms\":[\"a\",\"b\"]}", 400, "Field 'kind' must be together" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"vms\":[\"a\",\"b\"]}", 400, "Field 'kind'" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"apart\",\"vms\":[\"a\"]}", 400, "2 to 64 VMs" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"apart\",\"vms\":\"a,b\"}", 400, "2 to 64 VMs" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"apart\",\"vms\":[\"a\",\"nope\"]}", 404, "VM 'nope' is not defined" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"apart\",\"vms\":[\"a\",1]}", 400, "by name or UUID" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"apart\",\"vms\":[\"a\",\"a\"]}", 400, "VM a is named twice" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"a b\",\"kind\":\"apart\",\"vms\":[\"a\",\"b\"]}", 400, "rule name" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"a-b\",\"kind\":\"apart\",\"vms\":[\"a\",\"c\"]}", 409, "Rule a-b exists already" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"together\",\"vms\":[\"b\",\"a\"]}", 409, "Strict rule a-b keeps two of these VMs apart" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"apart\",\"strict\":\"yes\",\"vms\":[\"a\",\"c\"]}", 400, "strict" },
		{ 1, "POST", "/api/v1/rules", "{\"name\":\"x\",\"kind\":\"apart\",\"vms\":[\"a\",\"c\"],\"weight\":2}", 400, "weight" },
		{ 1, "GET", "/api/v1/rules/nope", NULL, 404, "Rule 'nope' is not defined" },
		{ 1, "DELETE", "/api/v1/rules/nope", NULL, 404, "Rule 'nope' is not defined" },
		{ 2, "DELETE", "/api/v1/vms/a", NULL, 409, "VM a is in rule a-b: delete the rule first ('herd rule delete a-b')" },
	};
	EXPECT_REFUSALS(f, bad);
	g_autoptr(test_answer) after = test_request(f->n[1], "GET", "/api/v1/rules", NULL);
	g_assert_cmpuint(json_array_size(test_expect(after, 200)), ==, 2);

	/* The store itself refuses a rule over a VM that does not exist. */
	char uuid[STORE_UUID_LEN + 1], ghost[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	store_uuid_generate(ghost);
	const char *members[] = { a, ghost };
	g_autoptr(json_t) cmd = store_rule_cmd_create(uuid, "ghost", true, true, members, 2);
	submitted done = { false, NULL };
	g_autoptr(GError) err = NULL;
	g_assert_true(herd_cluster_submit(f->n[3]->cluster, cmd, "test", on_done, &done, &err));
	TEST_WAIT(done.answered);
	g_assert_error(done.error, HERD_ERROR, HERD_ERR_NOT_FOUND);
	g_assert_nonnull(strstr(done.error->message, "does not exist"));
	g_clear_error(&done.error);

	/* Deleted, the rule no longer holds its VMs. */
	g_autoptr(test_answer) del = test_request(f->n[3], "DELETE", "/api/v1/rules/a-b", NULL);
	test_expect(del, 200);
	g_autoptr(test_answer) undef = test_request(f->n[2], "DELETE", "/api/v1/vms/a", NULL);
	test_expect(undef, 200);
}

/* Does GET /api/v1/rules/@name say the rule holds now? */
static bool rule_holds(fixture *f, const char *name)
{
	g_autofree char *path = g_strdup_printf("/api/v1/rules/%s", name);
	g_autoptr(test_answer) a = test_request(f->n[1], "GET", path, NULL);
	return json_is_true(json_object_get(test_expect(a, 200), "holds"));
}

/* A strict anti-affinity rule: b never starts beside a. */
static void test_rule_placement(fixture *f, gconstpointer data)
{
	g_autofree char *a = vm_define(f, 1, "a", "{s:s}", "preferred", "n2");
	g_autofree char *b = vm_define(f, 1, "b", "{s:s}", "preferred", "n2");
	g_autoptr(json_t) r = rule_add(f, 1, "a-b", "apart", true, "a", "b", 201);
	vm_start(f, 1, "a", "n2");
	g_autoptr(test_answer) started = vm_action(f, 3, "b", "start", NULL);
	json_t *j = test_expect(started, 200);
	g_assert_cmpstr(str(j, "node"), !=, "n2");
	g_assert_cmpstr(vm_runs_where(f, b), ==, str(j, "node"));
}

/* Added while both run on n2: one of them moves live, the other stays. */
static void test_rule_added_while_together(fixture *f, gconstpointer data)
{
	g_autofree char *a = vm_define(f, 1, "a", "{s:s,s:b}", "preferred", "n2", "failback", 0);
	g_autofree char *b = vm_define(f, 1, "b", "{s:s,s:b}", "preferred", "n2", "failback", 0);
	vm_start(f, 1, "a", "n2");
	vm_start(f, 1, "b", "n2");
	g_autoptr(json_t) r = rule_add(f, 3, "a-b", "apart", true, "a", "b", 201);
	TEST_WAIT(vm_runs_where(f, a) && vm_runs_where(f, b) && strcmp(vm_runs_where(f, a), vm_runs_where(f, b)) != 0 &&
		  vm_shows(f, 1, "a", "state", "running") && vm_shows(f, 1, "b", "state", "running"));
	/* a (first by name) moved, live: never started anew, b never moved. */
	g_assert_cmpstr(vm_runs_where(f, b), ==, "n2");
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", a), ==, 1);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", b), ==, 0);
	g_assert_cmpuint(testvirt_count(f->n[1]->virt, "start", a) + testvirt_count(f->n[3]->virt, "start", a), ==, 0);
	TEST_WAIT(rule_holds(f, "a-b"));
}

static void set_mode(fixture *f, const char *node, const char *mode)
{
	g_autofree char *path = g_strdup_printf("/api/v1/nodes/%s/mode", node);
	g_autoptr(test_answer) a = test_requestf(f->n[1], "POST", path, "{s:s}", "mode", mode);
	test_expect(a, 200);
}

/* How many of @uuids run on each node: every node one? */
static bool one_each(fixture *f, char **uuids)
{
	unsigned on[4] = { 0 };
	for (unsigned i = 0; i < 3; i++) {
		const char *w = vm_runs_where(f, uuids[i]);
		if (!w)
			return false;
		on[w[1] - '0']++;
	}
	return on[1] == 1 && on[2] == 1 && on[3] == 1;
}

/* Three VMs on n1 (vCPUs: 3 of its 8), none on n2 and n3: 37.5 points
 * apart.  simulate shows two moves; with rebalance on, they are made live. */
static void test_rebalance(fixture *f, gconstpointer data)
{
	set_mode(f, "n2", "standby");
	set_mode(f, "n3", "standby");
	char *uuids[3];
	const char *names[] = { "v1", "v2", "v3" };
	for (unsigned i = 0; i < 3; i++) {
		uuids[i] = vm_define(f, 1, names[i], NULL);
		vm_start(f, 1, names[i], "n1");
	}
	set_mode(f, "n2", "online");
	set_mode(f, "n3", "online");
	g_autoptr(test_answer) sim = test_requestf(f->n[2], "POST", "/api/v1/simulate", "{s:b}", "rebalance", 1);
	json_t *r = test_expect(sim, 200);
	g_assert_false(json_is_true(json_object_get(r, "enabled")));
	g_assert_cmpfloat(json_number_value(json_object_get(r, "imbalance_pct")), ==, 37.5);
	g_assert_cmpstr(str(r, "fullest"), ==, "n1");
	json_t *moves = json_object_get(r, "moves");
	g_assert_cmpuint(json_array_size(moves), ==, 2);
	g_assert_cmpstr(str(json_array_get(moves, 0), "from"), ==, "n1");
	g_assert_cmpstr(str(json_array_get(moves, 1), "from"), ==, "n1");
	g_assert_cmpstr(str(json_array_get(moves, 0), "to"), !=, str(json_array_get(moves, 1), "to"));
	/* Off: nothing moved. */
	for (unsigned i = 0; i < 3; i++)
		g_assert_cmpstr(vm_runs_where(f, uuids[i]), ==, "n1");
	const refusal bad[] = {
		{ 1, "POST", "/api/v1/simulate", "{\"rebalance\":1}", 400, "rebalance" },
		{ 1, "POST", "/api/v1/simulate", "{\"rebalance\":true,\"node_down\":[\"n2\"]}", 400, "not with node_down" },
	};
	EXPECT_REFUSALS(f, bad);

	g_autoptr(test_answer) on = test_requestf(f->n[3], "PUT", "/api/v1/cluster/settings", "{s:b,s:i}", "rebalance", 1,
						  "rebalance_hold_s", 0);
	test_expect(on, 200);
	TEST_WAIT(one_each(f, uuids));
	unsigned migrated = 0, started = 0;
	for (unsigned i = 0; i < 3; i++) {
		migrated += testvirt_count(f->n[1]->virt, "migrate", uuids[i]);
		started += testvirt_count(f->n[2]->virt, "start", uuids[i]) + testvirt_count(f->n[3]->virt, "start", uuids[i]);
	}
	g_assert_cmpuint(migrated, ==, 2);
	g_assert_cmpuint(started, ==, 0);
	for (unsigned i = 0; i < 3; i++)
		g_free(uuids[i]);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	api_test_add("/api/rules/crud", test_rules, NULL);
	api_test_add("/api/rules/placement", test_rule_placement, LAB_MODE);
	api_test_add("/api/rules/added-while-together", test_rule_added_while_together,
		     "{\"lab_mode\": true, \"failback_after_s\": 0}");
	api_test_add("/api/rules/rebalance", test_rebalance,
		     "{\"lab_mode\": true, \"failback_after_s\": 0, \"vcpu_overcommit\": 1}");
	return g_test_run();
}
