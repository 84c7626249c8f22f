/*
 * A host shut down without maintenance (the shutdown policy), in a cluster
 * of three nodes in this process (tests/lib): the HA engine of the node
 * whose host stops (herd_ha_shutdown(), what herdd calls on SIGTERM while
 * the system stops) puts its node in maintenance with the shutdown mark,
 * its VMs migrate away, and it says when it may leave; the node, powered
 * off, is not fenced; the next herd of that node gives it its mode back
 * and its VMs come back live.  And what makes herdd exit at once instead:
 * the failover policy, a store it cannot change; what ends the wait early:
 * an operator's mode; and the timeout.  The sync gate holds it as it holds
 * standby and maintenance: not while the node has the only up-to-date
 * replica of an eSAN disk whose other replica is not in sync.
 */
#include "test_api.h"

#include "store/node.h"

#include <string.h>

/* Fail over fast, fail back at once: the tests wait for no clock. */
#define SETTINGS "{\"failback_after_s\": 0}"

typedef struct {
	char *summary;   /* what io.leave() said, once it did */
	unsigned calls;
} left;

static void on_leave(const char *summary, gpointer user)
{
	left *l = user;
	l->calls++;
	g_free(l->summary);
	l->summary = g_strdup(summary);
}

static void left_clear(left *l)
{
	g_clear_pointer(&l->summary, g_free);
}

/* The HA fence device over every node's power (the VMs are HA). */
static void add_pdu(fixture *f)
{
	g_autoptr(test_answer) a = fence_device_add(f, 1, "pdu", "{s:s,s:s,s:s}", "n1", "1", "n2", "2",
						    "n3", "3");
	test_expect(a, 201);
}

static unsigned fences(fixture *f)
{
	return testcluster_fence_count(f->tc, "off") + testcluster_fence_count(f->tc, "reboot");
}

/* Node @name as n@node's store has it. */
static const store_node *node_stored(fixture *f, unsigned node, const char *name)
{
	store_object *n = store_state_get_by_name(herd_cluster_state(f->n[node]->cluster),
						  STORE_KIND_NODE, name);
	g_assert_nonnull(n);
	return store_node_of(n);
}

static unsigned ops_anywhere(fixture *f, const char *op, const char *uuid)
{
	unsigned n = 0;
	for (unsigned i = 1; i <= 3; i++)
		n += testvirt_count(f->n[i]->virt, op, uuid);
	return n;
}

static bool runs_away_from_n2(fixture *f, const char *uuid)
{
	const char *where = vm_runs_where(f, uuid);
	return where && strcmp(where, "n2") != 0 && !vm_stored(f, 1, uuid)->move_to &&
	       g_strcmp0(vm_stored(f, 1, uuid)->node, where) == 0;
}

/* The host of n2 shuts down: its VMs migrate away (none is shut down or
 * started again), a VM sticky to it stays; the engine then says it may
 * leave, and what stays.  Powered off, n2 is not fenced, and nothing waits
 * for a fence.  Its next herd gives it its mode back (online); failback
 * brings its VMs back live and the sticky one starts there again. */
static void test_shutdown_migrates(fixture *f, gconstpointer data)
{
	add_pdu(f);
	g_autofree char *web1 = vm_define(f, 1, "web1", "{s:b,s:s}", "ha", 1, "preferred", "n2");
	g_autofree char *web2 = vm_define(f, 1, "web2", "{s:b,s:s}", "ha", 1, "preferred", "n2");
	g_autofree char *pin = vm_define(f, 1, "pin", "{s:b,s:s}", "ha", 1, "sticky", "n2");
	vm_start(f, 1, "web1", "n2");
	vm_start(f, 1, "web2", "n2");
	vm_start(f, 1, "pin", "n2");

	left l = { 0 };
	g_autofree char *why = NULL;
	g_assert_true(herd_ha_shutdown(f->n[2]->ha, on_leave, &l, &why));
	g_assert_null(why);
	TEST_WAIT(l.summary != NULL);
	g_assert_cmpuint(l.calls, ==, 1);
	g_assert_nonnull(strstr(l.summary, "2 VMs left node n2"));
	g_assert_nonnull(strstr(l.summary, "1 stays, down until the host is back: pin (sticky to this node)"));
	g_assert_true(runs_away_from_n2(f, web1));
	g_assert_true(runs_away_from_n2(f, web2));
	g_assert_cmpstr(vm_runs_where(f, pin), ==, "n2");
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", web1), ==, 1);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", web2), ==, 1);
	g_assert_cmpuint(ops_anywhere(f, "shutdown", web1) + ops_anywhere(f, "destroy", web1) +
			 ops_anywhere(f, "shutdown", web2) + ops_anywhere(f, "destroy", web2), ==, 0);
	const store_node *n2 = node_stored(f, 3, "n2");
	g_assert_cmpint(n2->mode, ==, STORE_NODE_MAINTENANCE);
	g_assert_true(n2->allow_cold);
	g_assert_true(n2->shutdown);
	g_assert_cmpint(n2->shutdown_mode, ==, STORE_NODE_ONLINE);
	/* The API shows the mark. */
	g_autoptr(test_answer) shown = test_request(f->n[1], "GET", "/api/v1/nodes/n2", NULL);
	json_t *j = test_expect(shown, 200);
	g_assert_cmpstr(str(j, "mode"), ==, "maintenance");
	g_assert_cmpstr(str(json_object_get(j, "shutdown"), "mode"), ==, "online");
	g_assert_cmpint(json_integer_value(json_object_get(json_object_get(j, "shutdown"), "time_ms")), >, 0);

	/* The host goes off: the others leave it alone. */
	testcluster_power(f->tc, 2, false);
	TEST_WAIT(testcluster_settled(f->tc));
	g_assert_true(lost_nodes_are(f, 1, NULL));
	g_assert_cmpuint(fences(f), ==, 0);
	g_assert_cmpstr(vm_stored(f, 1, pin)->node, ==, "n2");
	g_assert_null(vm_runs_where(f, pin));

	/* Back, with a new herd: online again, its VMs come back live. */
	testnode_restart_ha(f->n[2]);
	testcluster_power(f->tc, 2, true);
	TEST_WAIT(testcluster_settled(f->tc) && !node_stored(f, 1, "n2")->shutdown &&
		  vm_runs_on(f, web1, 2) && vm_runs_on(f, web2, 2) && vm_runs_on(f, pin, 2) &&
		  !vm_stored(f, 1, web1)->move_to && !vm_stored(f, 1, web2)->move_to);
	n2 = node_stored(f, 1, "n2");
	g_assert_cmpint(n2->mode, ==, STORE_NODE_ONLINE);
	g_assert_false(n2->allow_cold);
	g_assert_cmpuint(ops_anywhere(f, "migrate", web1), ==, 2);
	g_assert_cmpuint(ops_anywhere(f, "start", web1), ==, 1);
	g_assert_cmpuint(ops_anywhere(f, "start", pin), ==, 2);
	g_assert_cmpuint(fences(f), ==, 0);
	g_autoptr(test_answer) back = test_request(f->n[1], "GET", "/api/v1/nodes/n2", NULL);
	g_assert_true(json_is_null(json_object_get(test_expect(back, 200), "shutdown")));
	left_clear(&l);
}

/* An operator's maintenance is the operator's: kept through the shutdown
 * and after the host is back. */
static void test_shutdown_operator_maintenance(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) m = test_requestf(f->n[1], "POST", "/api/v1/nodes/n2/mode", "{s:s}",
						 "mode", "maintenance");
	test_expect(m, 200);
	TEST_WAIT(node_stored(f, 2, "n2")->mode == STORE_NODE_MAINTENANCE);
	left l = { 0 };
	g_autofree char *why = NULL;
	g_assert_true(herd_ha_shutdown(f->n[2]->ha, on_leave, &l, &why));
	TEST_WAIT(l.summary != NULL);
	g_assert_nonnull(strstr(l.summary, "0 VMs left node n2"));
	g_assert_false(node_stored(f, 1, "n2")->shutdown);
	testnode_restart_ha(f->n[2]);
	TEST_WAIT(testcluster_settled(f->tc));
	g_assert_cmpint(node_stored(f, 1, "n2")->mode, ==, STORE_NODE_MAINTENANCE);
	left_clear(&l);
}

/* shutdown_policy failover: herdd exits at once, as it always did; the
 * node stays as it is. */
static void test_shutdown_failover_policy(fixture *f, gconstpointer data)
{
	g_autofree char *web1 = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	left l = { 0 };
	g_autofree char *why = NULL;
	g_assert_false(herd_ha_shutdown(f->n[2]->ha, on_leave, &l, &why));
	g_assert_cmpstr(why, ==, "the cluster's shutdown_policy is failover: the others fence this node "
				 "and restart its HA VMs");
	TEST_WAIT(testcluster_settled(f->tc));
	g_assert_cmpint(node_stored(f, 1, "n2")->mode, ==, STORE_NODE_ONLINE);
	g_assert_cmpstr(vm_runs_where(f, web1), ==, "n2");
	g_assert_null(l.summary);
}

/* A node cut off from the others cannot go into maintenance: exit at once. */
static void test_shutdown_not_writable(fixture *f, gconstpointer data)
{
	testcluster_cut(f->tc, 2);
	TEST_WAIT(!testnode_synced(f->n[2]));
	left l = { 0 };
	g_autofree char *why = NULL;
	g_assert_false(herd_ha_shutdown(f->n[2]->ha, on_leave, &l, &why));
	g_assert_nonnull(strstr(why, "its store is not in sync with a quorate partition"));
	testcluster_heal(f->tc, 2);
	TEST_WAIT(testcluster_settled(f->tc));
	g_assert_cmpint(node_stored(f, 1, "n2")->mode, ==, STORE_NODE_ONLINE);
	g_assert_false(node_stored(f, 1, "n2")->shutdown);
	g_assert_null(l.summary);
}

/* Migrations that do not end: at shutdown_timeout_s herd leaves anyway,
 * naming what is still leaving. */
static void test_shutdown_timeout(fixture *f, gconstpointer data)
{
	g_autofree char *web1 = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	testvirt_hold(f->n[2]->virt, true);
	left l = { 0 };
	g_autofree char *why = NULL;
	g_assert_true(herd_ha_shutdown(f->n[2]->ha, on_leave, &l, &why));
	TEST_WAIT(l.summary != NULL);
	g_assert_nonnull(strstr(l.summary, "shutdown_timeout_s (1 s) is over: 0 VMs left node n2; still "
					   "leaving: web1 (to n"));
	testvirt_hold(f->n[2]->virt, false);
	left_clear(&l);
}

/* An operator sets the node online while its host shuts down: herd stops
 * waiting (the operator's mode wins; the node will be lost). */
static void test_shutdown_operator_online(fixture *f, gconstpointer data)
{
	g_autofree char *web1 = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	testvirt_hold(f->n[2]->virt, true);
	left l = { 0 };
	g_autofree char *why = NULL;
	g_assert_true(herd_ha_shutdown(f->n[2]->ha, on_leave, &l, &why));
	TEST_WAIT(node_stored(f, 1, "n2")->shutdown);
	g_autoptr(test_answer) m = test_requestf(f->n[1], "POST", "/api/v1/nodes/n2/mode", "{s:s}",
						 "mode", "online");
	test_expect(m, 200);
	TEST_WAIT(l.summary != NULL);
	g_assert_cmpstr(l.summary, ==, "node n2 was set online meanwhile (an operator's mode wins): herd "
				       "leaves now, and the others fence the node if it is lost");
	g_assert_false(node_stored(f, 1, "n2")->shutdown);
	testvirt_hold(f->n[2]->virt, false);
	left_clear(&l);
}

/* eSAN disk db0 on n2 and n3, n3's replica outdated (n2 wrote alone). */
static void esan_behind_on_n3(fixture *f)
{
	g_autoptr(test_answer) made = test_requestf(f->n[1], "POST", "/api/v1/disks", "{s:s,s:s,s:s}", "name",
						    "db0", "size", "64M", "esan", "n2,n3");
	test_expect(made, 201);
	esan_set_states(f, "db0", STORE_REPLICA_UPTODATE, STORE_REPLICA_OUTDATED);
}

/* The host of n2, which holds the only up-to-date replica of db0, shuts
 * down: herd waits while n3's replica is behind, and leaves once it is in
 * sync. */
static void test_shutdown_sync_gate(fixture *f, gconstpointer data)
{
	esan_behind_on_n3(f);
	left l = { 0 };
	g_autofree char *why = NULL;
	g_assert_true(herd_ha_shutdown(f->n[2]->ha, on_leave, &l, &why));
	TEST_WAIT(node_stored(f, 1, "n2")->shutdown && testcluster_settled(f->tc));
	/* Nothing leaves, yet it stays: the gate. */
	g_assert_false(test_loop_until(l.summary != NULL, 1500));
	esan_set_states(f, "db0", STORE_REPLICA_UPTODATE, STORE_REPLICA_UPTODATE);
	TEST_WAIT(l.summary != NULL);
	g_assert_true(g_str_has_prefix(l.summary, "0 VMs left node n2 in "));
	g_assert_true(g_str_has_suffix(l.summary, "; none stays"));
	left_clear(&l);
}

/* The gate is bounded by shutdown_timeout_s as the moves are, and the
 * summary says what it waited for. */
static void test_shutdown_sync_gate_timeout(fixture *f, gconstpointer data)
{
	esan_behind_on_n3(f);
	left l = { 0 };
	g_autofree char *why = NULL;
	g_assert_true(herd_ha_shutdown(f->n[2]->ha, on_leave, &l, &why));
	TEST_WAIT(l.summary != NULL);
	g_assert_cmpstr(l.summary, ==, "shutdown_timeout_s (1 s) is over: 0 VMs left node n2; waited for eSAN "
				       "disk(s) db0 not in sync (this node holds the only up-to-date replica); what "
				       "is still here is down until the host is back");
	left_clear(&l);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/nodes/shutdown/migrates", test_shutdown_migrates, SETTINGS);
	api_test_add("/api/nodes/shutdown/operator-maintenance", test_shutdown_operator_maintenance, NULL);
	api_test_add("/api/nodes/shutdown/failover-policy", test_shutdown_failover_policy,
		     "{\"shutdown_policy\": \"failover\"}");
	api_test_add("/api/nodes/shutdown/not-writable", test_shutdown_not_writable, NULL);
	api_test_add("/api/nodes/shutdown/timeout", test_shutdown_timeout, "{\"shutdown_timeout_s\": 1}");
	api_test_add("/api/nodes/shutdown/operator-online", test_shutdown_operator_online, NULL);
	api_test_add("/api/nodes/shutdown/sync-gate", test_shutdown_sync_gate, NULL);
	api_test_add("/api/nodes/shutdown/sync-gate-timeout", test_shutdown_sync_gate_timeout,
		     "{\"shutdown_timeout_s\": 1}");
	return g_test_run();
}
