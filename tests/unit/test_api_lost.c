/*
 * Invariant 2 at every entry point (src/store/guard.c, asked by
 * replica_submit()): node n3 runs VMs, then is cut off from n1 and n2 —
 * lost, and the one fence device that covers it does not answer, so it
 * stays lost and unfenced.  Every change that concerns n3 or its VMs is
 * refused by the API on the nodes that have quorum (VM define, set, start,
 * undefine, restore, release; node mode, switchover, remove; a node
 * joining), and the HA engine restarts none of n3's VMs elsewhere.  What
 * resolves the loss or does not concern n3 goes on: stopping its VMs,
 * other VMs, fence devices, settings, confirm-down; after confirm-down the
 * refusals lift.  (Lab mode takes a lost node for dead: nothing is held
 * back there, see test_api_vm.c.)
 */
#include "test_api.h"

#include "store/node.h"
#include "store/wire.h"

#include <string.h>

/* The VMs of the lost node n3, and one of n1. */
typedef struct {
	char *bound;     /* lost1: HA, sticky to n3 */
	char *moving;    /* lost2: HA, prefers n3: the engine would restart it elsewhere */
	char *other;     /* other: on n1 */
} lost_vms;

static void lost_vms_clear(lost_vms *v)
{
	g_free(v->bound);
	g_free(v->moving);
	g_free(v->other);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(lost_vms, lost_vms_clear)

/* n3 runs lost1 and lost2, n1 runs other; then n3 is cut off, and n1 and
 * n2 take it for lost and not fenced: its fence device does not answer. */
static void lose_n3(fixture *f, lost_vms *v)
{
	json_t *params = testcluster_fence_params(f->tc);
	json_object_set_new(params, "mode", json_string("broken"));
	g_autoptr(json_t) device = json_pack("{s:s,s:s,s:o,s:{s:s,s:s,s:s}}", "name", "dead-pdu", "agent",
					     "fence_test", "params", params, "plugs", "n1", "1", "n2", "2", "n3", "3");
	g_autoptr(test_answer) added = test_request(f->n[1], "POST", "/api/v1/fence-devices", device);
	test_expect(added, 201);
	v->bound = vm_define(f, 1, "lost1", "{s:b,s:s}", "ha", 1, "sticky", "n3");
	v->moving = vm_define(f, 1, "lost2", "{s:b,s:s,s:b}", "ha", 1, "preferred", "n3", "failback", 0);
	v->other = vm_define(f, 1, "other", "{s:s}", "preferred", "n1");
	g_autoptr(test_answer) set = test_requestf(f->n[1], "PUT", "/api/v1/vms/lost1", "{s:i}",
						   "shutdown_timeout_s", 60); /* a version to restore */
	test_expect(set, 200);
	vm_start(f, 2, "lost1", "n3");
	vm_start(f, 2, "lost2", "n3");
	vm_start(f, 2, "other", "n1");
	test_log_clear();

	testcluster_cut(f->tc, 3);
	TEST_WAIT(lost_nodes_are(f, 1, "n3") && lost_nodes_are(f, 2, "n3") && testnode_synced(f->n[1]) &&
		  testnode_synced(f->n[2]));
	g_autoptr(test_answer) status = test_request(f->n[2], "GET", "/api/v1/status", NULL);
	json_t *lost = json_object_get(test_expect(status, 200), "unfenced_lost_nodes");
	g_assert_cmpuint(json_array_size(lost), ==, 1);
	g_assert_cmpstr(json_string_value(json_array_get(lost, 0)), ==, "n3");
}

#define REFUSED_VM(vm) "Node n3 is lost and not fenced yet: VM " vm ", which it may still run, does not change"
#define REFUSED_NODE "Node n3 is lost and not fenced yet: nothing about it changes"
#define REFUSED_MEMBERSHIP "Node n3 is lost and not fenced yet: no node joins or leaves the cluster"

/* How many fence attempts on node @name n1's store records (each failed
 * one is a change of its own). */
static size_t fence_attempts(fixture *f, const char *name)
{
	store_object *node = store_state_get_by_name(herd_cluster_state(f->n[1]->cluster), STORE_KIND_NODE, name);
	return store_node_of(node)->n_fence_history;
}

/* "kind uuid" -> version of every object in n1's store but the alerts
 * (their history follows what the coordinator sees: a fence failing, a VM
 * waiting; ha/alert_journal.h). */
static GHashTable *versions(fixture *f)
{
	GHashTable *out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	store_state *st = herd_cluster_state(f->n[1]->cluster);
	for (int k = 0; k < STORE_KIND__COUNT; k++) {
		if (k == STORE_KIND_ALERT)
			continue;
		g_autoptr(GPtrArray) all = store_state_list(st, (store_kind)k);
		for (guint i = 0; i < all->len; i++) {
			store_object *o = all->pdata[i];
			g_hash_table_insert(out, g_strdup_printf("%s %s", store_kind_name(o->kind), o->uuid),
					    GSIZE_TO_POINTER((gsize)o->version));
		}
	}
	return out;
}

static gint by_text(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What changed between @before and @after: "kind uuid +N" sorted, joined by ", ". */
static char *changed(GHashTable *before, GHashTable *after)
{
	g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, after);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		gsize was = GPOINTER_TO_SIZE(g_hash_table_lookup(before, k));
		if (was != GPOINTER_TO_SIZE(v))
			g_ptr_array_add(lines, g_strdup_printf("%s +%zu", (char *)k, GPOINTER_TO_SIZE(v) - was));
	}
	g_ptr_array_sort(lines, by_text);
	g_ptr_array_add(lines, NULL);
	return g_strjoinv(", ", (char **)lines->pdata);
}

/* The alert record about @kind on node n@node's list (?all=true), or NULL. */
static json_t *alert_record(fixture *f, unsigned node, const char *kind, const char *about_node)
{
	g_autoptr(test_answer) a = test_request(f->n[node], "GET", "/api/v1/alerts?all=true", NULL);
	if (a->status != 200)
		return NULL;
	size_t i;
	json_t *r;
	json_array_foreach(a->json, i, r)
		if (g_strcmp0(json_string_value(json_object_get(r, "kind")), kind) == 0 &&
		    g_strcmp0(json_string_value(json_object_get(r, "node")), about_node) == 0)
			return json_incref(r);
	return NULL;
}

static bool alert_active(fixture *f, unsigned node, const char *kind, const char *about_node)
{
	g_autoptr(json_t) r = alert_record(f, node, kind, about_node);
	return r && json_is_true(json_object_get(r, "active"));
}

static bool alert_cleared(fixture *f, unsigned node, const char *kind, const char *about_node)
{
	g_autoptr(json_t) r = alert_record(f, node, kind, about_node);
	return r && json_is_integer(json_object_get(r, "cleared_ms"));
}

static test_answer *raw(fixture *f, unsigned node, const char *method, const char *path, const char *body)
{
	return test_call_finish(test_call_start_raw(f->n[node], method, path, body, "admin", TESTNODE_PASSWORD));
}

/* Every entry point that would change n3 or its VMs is refused, on either
 * node of the quorate side; nothing changed. */
static void test_refused(fixture *f, gconstpointer data)
{
	g_auto(lost_vms) v = { 0 };
	lose_n3(f, &v);
	bool ha_before = vm_stored(f, 1, v.bound)->ha;
	g_autoptr(GHashTable) before = versions(f);
	size_t fences = fence_attempts(f, "n3");

	/* While lost1 is to run. */
	g_autofree char *xml = vm_xml("lost1", v.bound, 256);
	g_autoptr(json_t) define = json_pack("{s:s}", "xml", xml);
	g_autoptr(test_answer) redefined = test_request(f->n[2], "POST", "/api/v1/vms", define);
	test_expect_error(redefined, 503, REFUSED_VM("lost1"));
	static const refusal while_running[] = {
		{ 1, "PUT", "/api/v1/vms/lost1", "{\"ha\":false}", 503, REFUSED_VM("lost1") },
		{ 2, "POST", "/api/v1/vms/lost1/release", NULL, 503, REFUSED_VM("lost1") },
		{ 1, "POST", "/api/v1/vms/lost1/restore", "{\"force\":true}", 503, REFUSED_VM("lost1") },
		{ 1, "POST", "/api/v1/nodes/n3/mode", "{\"mode\":\"standby\"}", 503, REFUSED_NODE },
		{ 2, "POST", "/api/v1/nodes/n3/switchover", "{\"to\":\"n1\"}", 503,
		  "Node n3 is lost and not fenced yet: VM lost" },
		{ 1, "DELETE", "/api/v1/nodes/n3", NULL, 503, REFUSED_MEMBERSHIP },
		/* Moving lost2 away is as much a change of it as anything. */
		{ 1, "PUT", "/api/v1/vms/lost2", "{\"preferred\":\"n1\"}", 503, REFUSED_VM("lost2") },
	};
	EXPECT_REFUSALS(f, while_running);
	g_autoptr(json_t) join = join_request("n4", "10.99.0.4", HERD_WIRE_VERSION);
	g_autoptr(test_answer) joined = test_request(f->n[2], "POST", "/api/v1/cluster/nodes", join);
	test_expect_error(joined, 503, REFUSED_MEMBERSHIP);

	/* Stopping it goes on (n3 stops it if it comes back)... */
	g_autoptr(test_answer) stopped = raw(f, 2, "POST", "/api/v1/vms/lost1/shutdown", NULL);
	g_assert_cmpstr(json_string_value(json_object_get(test_expect(stopped, 200), "target")), ==, "stopped");
	/* ...but once stopped, it neither starts nor goes. */
	static const refusal once_stopped[] = {
		{ 1, "POST", "/api/v1/vms/lost1/start", NULL, 503, REFUSED_VM("lost1") },
		{ 2, "DELETE", "/api/v1/vms/lost1", NULL, 503, REFUSED_VM("lost1") },
	};
	EXPECT_REFUSALS(f, once_stopped);

	/* Only the stop was applied (and the failed fence attempts); n1 and n2 agree. */
	const store_vm *after = vm_stored(f, 2, v.bound);
	g_assert_false(after->target_running);
	g_assert_true(after->ha == ha_before);
	g_assert_cmpstr(after->sticky, ==, "n3");
	g_assert_cmpstr(after->node, ==, "n3");
	g_assert_cmpuint(after->memory_mib, ==, 64);
	g_assert_cmpstr(vm_stored(f, 1, v.moving)->preferred, ==, "n3");
	g_autoptr(GHashTable) now = versions(f);
	g_autofree char *diff = changed(before, now);
	size_t new_fences = fence_attempts(f, "n3") - fences;
	const char *n3 = store_state_get_by_name(herd_cluster_state(f->n[1]->cluster), STORE_KIND_NODE, "n3")->uuid;
	g_autofree char *node_part = new_fences ? g_strdup_printf("node %s +%zu, ", n3, new_fences) : g_strdup("");
	g_autofree char *want = g_strdup_printf("%svm %s +1", node_part, v.bound);
	g_assert_cmpstr(diff, ==, want);
	g_autoptr(test_answer) nodes = test_request(f->n[1], "GET", "/api/v1/nodes", NULL);
	json_t *list = test_expect(nodes, 200);
	g_assert_cmpuint(json_array_size(list), ==, 3);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(list, 2), "mode")), ==, "online");

	/* n3 itself has no quorum: it refuses everything, with its own reason. */
	g_autoptr(test_answer) alone = raw(f, 3, "PUT", "/api/v1/vms/other", "{\"group\":\"g\"}");
	test_expect_error(alone, 503, "This node has lost quorum (1 of 3 expected votes present, 2 needed)");
}

/* What does not concern n3, or resolves its loss, goes on; after
 * confirm-down nothing is refused because of it. */
static void test_goes_on(fixture *f, gconstpointer data)
{
	g_auto(lost_vms) v = { 0 };
	lose_n3(f, &v);
	g_autoptr(test_answer) stopped = raw(f, 1, "POST", "/api/v1/vms/lost2/destroy", "{\"wait\":false}");
	test_expect(stopped, 200);
	g_autoptr(test_answer) other = raw(f, 2, "PUT", "/api/v1/vms/other", "{\"group\":\"front\"}");
	test_expect(other, 200);
	g_autoptr(test_answer) reboot = raw(f, 2, "POST", "/api/v1/vms/other/reboot", NULL);
	test_expect(reboot, 200);
	g_autofree char *fresh = vm_define(f, 2, "fresh", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "fresh", "n2");
	g_autoptr(test_answer) mode = raw(f, 1, "POST", "/api/v1/nodes/n2/mode", "{\"mode\":\"standby\"}");
	test_expect(mode, 200);
	g_autoptr(test_answer) online = raw(f, 1, "POST", "/api/v1/nodes/n2/mode", "{\"mode\":\"online\"}");
	test_expect(online, 200);
	g_autoptr(test_answer) device = fence_device_add(f, 1, "pdu1", "{s:s,s:s}", "n1", "1", "n2", "2");
	test_expect(device, 201);
	g_autoptr(test_answer) settings = raw(f, 2, "PUT", "/api/v1/cluster/settings", "{\"vm_history_limit\":20}");
	test_expect(settings, 200);
	g_assert_true(lost_nodes_are(f, 1, "n3"));

	/* The operator knows n3 is off. */
	g_autoptr(test_answer) confirmed = raw(f, 2, "POST", "/api/v1/nodes/n3/confirm-down", NULL);
	test_expect(confirmed, 200);
	TEST_WAIT(lost_nodes_are(f, 1, NULL) && lost_nodes_are(f, 2, NULL));
	g_autoptr(test_answer) shown = test_request(f->n[1], "GET", "/api/v1/nodes/n3", NULL);
	json_t *down = json_object_get(test_expect(shown, 200), "down");
	g_assert_cmpstr(json_string_value(json_object_get(down, "how")), ==, "confirmed");

	g_autoptr(test_answer) set = raw(f, 1, "PUT", "/api/v1/vms/lost1", "{\"shutdown_timeout_s\":90}");
	test_expect(set, 200);
	g_autoptr(test_answer) release = raw(f, 1, "POST", "/api/v1/vms/lost1/release", NULL);
	test_expect(release, 200);
	g_autoptr(test_answer) n3_mode = raw(f, 2, "POST", "/api/v1/nodes/n3/mode", "{\"mode\":\"maintenance\"}");
	test_expect(n3_mode, 200);
	g_autoptr(test_answer) start = raw(f, 2, "POST", "/api/v1/vms/lost2/start", NULL);
	g_assert_cmpstr(json_string_value(json_object_get(test_expect(start, 200), "node")), !=, "n3");
}

/* The HA engine tries to fence n3 and fails, again and again; it
 * restarts none of n3's VMs elsewhere until n3 is confirmed down. */
static void test_engine(fixture *f, gconstpointer data)
{
	g_auto(lost_vms) v = { 0 };
	lose_n3(f, &v);
	TEST_WAIT(testcluster_fence_count(f->tc, "off") >= 2 && testcluster_fence_running(f->tc) == 0);
	g_assert_true(lost_nodes_are(f, 1, "n3"));
	g_assert_cmpstr(vm_stored(f, 1, v.moving)->node, ==, "n3");
	g_assert_cmpstr(vm_stored(f, 2, v.moving)->node, ==, "n3");
	g_assert_false(vm_runs_on(f, v.moving, 1) || vm_runs_on(f, v.moving, 2));
	g_assert_cmpuint(testvirt_count(f->n[1]->virt, "start", v.moving) +
				 testvirt_count(f->n[2]->virt, "start", v.moving), ==, 0);

	/* The failed fence is an alert record on every node, acknowledged once. */
	TEST_WAIT(alert_active(f, 1, "fence_failed", "n3") && alert_active(f, 2, "fence_failed", "n3"));
	g_autoptr(json_t) rec = alert_record(f, 2, "fence_failed", "n3");
	g_assert_cmpstr(json_string_value(json_object_get(rec, "severity")), ==, "critical");
	g_autofree char *ack_path = g_strdup_printf("/api/v1/alerts/%s/ack",
						    json_string_value(json_object_get(rec, "name")));
	g_autoptr(test_answer) acked = raw(f, 2, "POST", ack_path, NULL);
	test_expect(acked, 200);
	g_autoptr(json_t) after_ack = alert_record(f, 1, "fence_failed", "n3");
	/* Who: the user, or root on the local socket (as the tests run). */
	const char *who = json_string_value(json_object_get(after_ack, "acked_by"));
	g_assert_true(g_strcmp0(who, "admin") == 0 || g_strcmp0(who, "root") == 0);
	g_assert_true(json_is_integer(json_object_get(after_ack, "acked_ms")));
	g_autoptr(test_answer) again = raw(f, 1, "POST", ack_path, NULL);
	test_expect_error(again, 409, "acknowledged already, by");
	g_autoptr(test_answer) missing = raw(f, 1, "POST", "/api/v1/alerts/9999/ack", NULL);
	test_expect_error(missing, 404, "9999");
	g_autoptr(test_answer) bad = raw(f, 1, "GET", "/api/v1/alerts?all=maybe", NULL);
	test_expect_error(bad, 400, "'all' is true or false");

	g_autoptr(test_answer) confirmed = raw(f, 1, "POST", "/api/v1/nodes/n3/confirm-down", NULL);
	test_expect(confirmed, 200);
	/* No more fencing to do: the alert clears, its record stays in the history. */
	TEST_WAIT(alert_cleared(f, 2, "fence_failed", "n3"));
	g_autoptr(test_answer) open_now = test_request(f->n[2], "GET", "/api/v1/alerts", NULL);
	size_t i;
	json_t *r;
	json_array_foreach(test_expect(open_now, 200), i, r)
		g_assert_cmpstr(json_string_value(json_object_get(r, "kind")), !=, "fence_failed");
	/* Now it is restarted on n1 or n2; lost1, bound to n3, waits for it. */
	TEST_WAIT(vm_runs_on(f, v.moving, 1) || vm_runs_on(f, v.moving, 2));
	/* The failover is an event in the alert records: raised and over. */
	g_autoptr(json_t) moved = NULL;
	const char *target = vm_runs_on(f, v.moving, 1) ? "n1" : "n2";
	TEST_WAIT((moved = alert_record(f, 2, "failover", target)) != NULL);
	g_assert_cmpstr(json_string_value(json_object_get(moved, "vm")), ==, "lost2");
	g_assert_true(json_is_integer(json_object_get(moved, "cleared_ms")));
	g_assert_nonnull(strstr(json_string_value(json_object_get(moved, "message")), "its node n3 failed"));
	g_assert_cmpstr(vm_stored(f, 1, v.bound)->node, ==, "n3");
	g_assert_false(vm_runs_on(f, v.bound, 1) || vm_runs_on(f, v.bound, 2));

	/* n3 comes back: the cluster clears its mark, and n3 stops lost2,
	 * which runs elsewhere now. */
	testcluster_heal(f->tc, 3);
	TEST_WAIT(testcluster_settled(f->tc) && node_down_cleared(f, "n3") &&
		  testvirt_state(f->n[3]->virt, v.moving) == HERD_VM_STOPPED);
	g_assert_nonnull(vm_runs_where(f, v.moving));
	g_assert_cmpstr(vm_runs_where(f, v.bound), ==, "n3");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	test_log_allow_error("the test PDU does not answer");
	api_test_add("/api/lost-node/refused", test_refused, NULL);
	api_test_add("/api/lost-node/goes-on", test_goes_on, NULL);
	/* It counts the engine's "off" attempts. */
	api_test_add("/api/lost-node/engine", test_engine, "{\"fence_action\":\"off\"}");
	return g_test_run();
}
