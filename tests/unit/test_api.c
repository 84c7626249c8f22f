/*
 * The REST API's handlers (src/api), every route, in a cluster of three
 * nodes in this process (tests/lib: the real cluster services, HA engines
 * and HTTP servers, on an in-process bus with fake hypervisors): what a
 * user sees for good input, and the error for bad input.
 *
 * Nodes, the cluster and fencing here; VMs in test_api_vm.c; invariant 2
 * for every entry point in test_api_lost.c.
 */
#include "test_api.h"

#include "api/events.h"
#include "cluster/corosync_conf.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/wire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* This node, the cluster at a glance                                  */

static void test_node(fixture *f, gconstpointer data)
{
	/* Public: no credentials needed. */
	g_autoptr(test_answer) a = test_call_finish(test_call_start_raw(f->n[2], "GET", "/api/v1/node",
									 NULL, NULL, NULL));
	json_t *j = test_expect(a, 200);
	g_assert_cmpstr(json_string_value(json_object_get(j, "name")), ==, "n2");
	g_assert_cmpint(json_integer_value(json_object_get(j, "pid")), ==, getpid());
	json_t *versions = json_object_get(j, "versions");
	g_assert_cmpstr(json_string_value(json_object_get(versions, "herd")), ==, HERD_VERSION);
	g_assert_cmpstr(json_string_value(json_object_get(versions, "corosync")), ==, "testbus");
	g_assert_cmpint(json_integer_value(json_object_get(versions, "protocol")), ==, HERD_WIRE_VERSION);

	g_autoptr(test_answer) wrong_method = test_request(f->n[2], "DELETE", "/api/v1/node", NULL);
	test_expect_error(wrong_method, 405, "DELETE is not allowed on /api/v1/node (allowed: GET)");
	g_autoptr(test_answer) nowhere = test_request(f->n[2], "GET", "/api/v1/nodes/n1/nothing", NULL);
	test_expect_error(nowhere, 404, "There is no API resource at /api/v1/nodes/n1/nothing");
}

static void test_status(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	/* Defined, not running: counted as defined only (an HA VM). */
	g_autofree char *other = vm_define(f, 1, "web2", "{s:s,s:b}", "preferred", "n3", "ha", 1);

	g_autoptr(test_answer) a = test_request(f->n[3], "GET", "/api/v1/status", NULL);
	json_t *j = test_expect(a, 200);
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(j, "node"), "name")), ==, "n3");
	/* The engine ran (the start): what its runs cost is shown (bench/scale). */
	json_t *runs = json_object_get(json_object_get(j, "node"), "engine_runs");
	g_assert_cmpint(json_integer_value(json_object_get(runs, "runs")), >, 0);
	g_assert_cmpint(json_integer_value(json_object_get(runs, "max_us")), >=,
			json_integer_value(json_object_get(runs, "last_us")));
	g_assert_cmpint(json_integer_value(json_object_get(runs, "last_cpu_us")), >=, 0);
	json_t *cluster = json_object_get(j, "cluster");
	g_assert_cmpstr(json_string_value(json_object_get(cluster, "name")), ==, "test");
	g_assert_cmpstr(json_string_value(json_object_get(cluster, "phase")), ==, "synced");
	g_assert_true(json_is_true(json_object_get(json_object_get(cluster, "quorum"), "quorate")));
	g_assert_cmpuint(json_array_size(json_object_get(cluster, "members")), ==, 3);
	g_assert_cmpuint(json_array_size(json_object_get(cluster, "nodes")), ==, 3);
	/* what this node sent to the group, by type: its STATUS at least */
	json_t *status_sent = json_object_get(json_object_get(json_object_get(cluster, "counters"), "sent"),
					      "STATUS");
	g_assert_cmpint(json_integer_value(json_object_get(status_sent, "messages")), >, 0);
	g_assert_cmpint(json_integer_value(json_object_get(status_sent, "bytes")), >,
			json_integer_value(json_object_get(status_sent, "messages")) * HERD_WIRE_HEADER_SIZE);
	json_t *vms = json_object_get(j, "vms");
	g_assert_cmpint(json_integer_value(json_object_get(vms, "defined")), ==, 2);
	g_assert_cmpint(json_integer_value(json_object_get(vms, "running")), ==, 1);
	g_assert_cmpint(json_integer_value(json_object_get(vms, "paused")), ==, 0);
	g_assert_cmpint(json_integer_value(json_object_get(vms, "ha")), ==, 1);
	g_assert_cmpint(json_integer_value(json_object_get(vms, "ha_running")), ==, 0);
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(j, "ha"), "coordinator")), ==, "n1");
	g_assert_true(json_is_false(json_object_get(j, "lab_mode")));
	g_assert_cmpuint(json_array_size(json_object_get(j, "unfenced_lost_nodes")), ==, 0);
}

/* Where in @log (testbus_delivery) from @from on the first message of
 * @type from @sender is; -1: none. */
static int delivered_at(GArray *log, guint from, uint32_t sender, unsigned type)
{
	for (guint i = from; i < log->len; i++) {
		const testbus_delivery *d = &g_array_index(log, testbus_delivery, i);
		if (d->sender == sender && d->type == type)
			return (int)i;
	}
	return -1;
}

/* Where in @log the last configuration change is. */
static guint last_confchg(GArray *log)
{
	guint at = 0;
	for (guint i = 0; i < log->len; i++)
		if (g_array_index(log, testbus_delivery, i).sender == 0)
			at = i;
	return at;
}

/*
 * A change of the group asks every member for its STATUS.  When a node
 * left, it goes at once: before the store's sync is over (a failover needs
 * it).  When nodes only joined, it waits for the sync: no STATUS between the
 * sync's start and every member's PERSISTED of it, each member's after
 * them (ha/engine.c, STATUS_SYNC_WAIT_MS).  (A STATUS sent before a member
 * saw the change may come before the sync's start.)
 */
static void test_status_after_sync(fixture *f, gconstpointer data)
{
	g_autoptr(GArray) log = g_array_new(FALSE, FALSE, sizeof(testbus_delivery));
	testbus *bus = testcluster_bus(f->tc);
	testbus_watch(bus, 1, log);

	testcluster_cut(f->tc, 3);
	TEST_WAIT(testnode_synced(f->n[1]) && testnode_synced(f->n[2]) &&
		  delivered_at(log, last_confchg(log), 1, HERD_MSG_PERSISTED) >= 0 &&
		  delivered_at(log, last_confchg(log), 2, HERD_MSG_PERSISTED) >= 0);
	guint cut = last_confchg(log);
	int start = delivered_at(log, cut, 1, HERD_MSG_SYNC_START);
	g_assert_cmpint(start, >=, 0);
	for (uint32_t member = 1; member <= 2; member++) {
		int status = delivered_at(log, start, member, HERD_MSG_STATUS);
		g_assert_cmpint(status, >=, 0);
		g_assert_cmpint(status, <, delivered_at(log, start, member, HERD_MSG_PERSISTED));
	}

	testcluster_heal(f->tc, 3);
	TEST_WAIT(testcluster_settled(f->tc));
	start = delivered_at(log, last_confchg(log), 1, HERD_MSG_SYNC_START);
	g_assert_cmpint(start, >=, 0);
	int end = start;
	for (uint32_t member = 1; member <= 3; member++) {
		int state = delivered_at(log, start, member, HERD_MSG_STATE);
		g_assert_cmpint(state, >=, 0);
		int persisted = delivered_at(log, state, member, HERD_MSG_PERSISTED);
		g_assert_cmpint(persisted, >=, 0);
		end = MAX(end, persisted);
	}
	for (int i = start; i < end; i++)
		g_assert_cmpuint(g_array_index(log, testbus_delivery, i).type, !=, HERD_MSG_STATUS);
	for (uint32_t member = 1; member <= 3; member++)
		g_assert_cmpint(delivered_at(log, end, member, HERD_MSG_STATUS), >, end);
	testbus_watch(bus, 1, NULL);
}

/* GET /metrics: Prometheus's text, the whole cluster as this node sees it. */
static void test_metrics(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	g_autofree char *other = vm_define(f, 1, "web2", "{s:s}", "preferred", "n3");
	g_autoptr(test_answer) a = test_request(f->n[3], "GET", "/metrics", NULL);
	g_assert_cmpint(a->status, ==, 200);
	const char *t = a->text;
	static const char *const lines[] = {
		"# TYPE herd_build_info gauge\nherd_build_info{node=\"n3\",version=\"",
		"herd_cluster_quorate{node=\"n3\"} 1\n",
		"herd_cluster_members{node=\"n3\"} 3\n",
		"herd_node_online{node=\"n1\"} 1\n",
		"herd_node_mode{node=\"n2\",mode=\"online\"} 1\n",
		"herd_node_mode{node=\"n2\",mode=\"standby\"} 0\n",
		"herd_node_down{node=\"n3\"} 0\n",
		"herd_vm_running{vm=\"web1\"} 1\n",
		"herd_vm_running{vm=\"web2\"} 0\n",
		"herd_vm_node{vm=\"web1\",node=\"n2\"} 1\n# HELP",
		"herd_vm_ha{vm=\"web1\"} 0\n",
		"herd_alerts{severity=\"critical\"} 0\n",
		"herd_jobs{state=\"running\"} 0\n",
		"# TYPE herd_process_cpu_seconds_total counter\n",
		"# TYPE herd_fence_agent_runs_total counter\n",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(lines); i++)
		if (!strstr(t, lines[i]))
			g_error("GET /metrics lacks %s:\n%s", lines[i], t);
	/* Each family once, its samples together. */
	g_autoptr(GHashTable) families = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_auto(GStrv) all = g_strsplit(t, "\n", -1);
	g_autofree char *current = NULL;
	for (char **l = all; *l; l++) {
		if (g_str_has_prefix(*l, "# TYPE ")) {
			g_auto(GStrv) w = g_strsplit(*l, " ", 4);
			g_assert_false(g_hash_table_contains(families, w[2]));
			g_hash_table_add(families, g_strdup(w[2]));
			g_free(current);
			current = g_strdup(w[2]);
		} else if (**l && **l != '#') {
			size_t n = strcspn(*l, "{ ");
			g_assert_nonnull(current);
			g_assert_cmpint(n, ==, strlen(current));
			g_assert_true(strncmp(*l, current, n) == 0);
		}
	}
}

/* Credentials: wrong ones are refused (root on the socket needs none). */
static void test_auth(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) a = test_call_finish(test_call_start_raw(f->n[1], "GET", "/api/v1/status",
									 NULL, "admin", "wrong-password"));
	if (geteuid() == 0) {
		test_expect(a, 200);
		g_test_message("running as root: the socket lets root in whatever the password");
		return;
	}
	test_expect_error(a, 401, "");
	g_autoptr(test_answer) right = test_request(f->n[1], "GET", "/api/v1/status", NULL);
	test_expect(right, 200);
}

/* ------------------------------------------------------------------ */
/* The cluster                                                         */

static void test_cluster_get(fixture *f, gconstpointer data)
{
	g_autofree char *fp = herd_tls_fingerprint(testcluster_ca(f->tc), NULL);
	g_autoptr(test_answer) a = test_request(f->n[2], "GET", "/api/v1/cluster", NULL);
	json_t *j = test_expect(a, 200);
	g_assert_cmpstr(json_string_value(json_object_get(j, "name")), ==, "test");
	g_assert_cmpstr(json_string_value(json_object_get(j, "fingerprint")), ==, fp);
	g_assert_cmpstr(json_string_value(json_object_get(j, "local_node")), ==, "n2");
	g_assert_cmpuint(json_array_size(json_object_get(j, "nodes")), ==, 3);
	g_assert_true(json_is_false(json_object_get(json_object_get(j, "settings"), "lab_mode")));

	/* The CA is public: a joining node fetches it before it has an account. */
	g_autoptr(test_answer) ca = test_call_finish(test_call_start_raw(f->n[3], "GET", "/api/v1/cluster/ca",
									  NULL, NULL, NULL));
	j = test_expect(ca, 200);
	g_assert_cmpstr(json_string_value(json_object_get(j, "ca_cert")), ==, testcluster_ca(f->tc));
	g_assert_cmpstr(json_string_value(json_object_get(j, "fingerprint")), ==, fp);
	g_assert_cmpstr(json_string_value(json_object_get(j, "cluster")), ==, "test");
}

static json_t *setting(json_t *list, const char *key)
{
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s)
		if (strcmp(json_string_value(json_object_get(s, "key")), key) == 0)
			return s;
	g_error("no setting %s", key);
	return NULL;
}

static void test_cluster_settings(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) a = test_request(f->n[1], "GET", "/api/v1/cluster/settings", NULL);
	json_t *s = setting(test_expect(a, 200), "vm_history_limit");
	g_assert_cmpint(json_integer_value(json_object_get(s, "value")), ==, 100);
	g_assert_cmpstr(json_string_value(json_object_get(s, "default")), ==, "100");
	g_assert_true(json_is_false(json_object_get(s, "changed")));
	g_assert_nonnull(json_string_value(json_object_get(s, "help")));

	g_autoptr(test_answer) put = test_requestf(f->n[1], "PUT", "/api/v1/cluster/settings",
						   "{s:i,s:s}", "vm_history_limit", 50, "admission_control",
						   "refuse");
	s = setting(test_expect(put, 200), "vm_history_limit");
	g_assert_cmpint(json_integer_value(json_object_get(s, "value")), ==, 50);
	g_assert_true(json_is_true(json_object_get(s, "changed")));
	/* Every node has it once it is answered. */
	g_autoptr(test_answer) other = test_request(f->n[3], "GET", "/api/v1/cluster/settings", NULL);
	s = setting(test_expect(other, 200), "admission_control");
	g_assert_cmpstr(json_string_value(json_object_get(s, "value")), ==, "refuse");
	/* null: back to the default */
	g_autoptr(test_answer) reset = test_requestf(f->n[2], "PUT", "/api/v1/cluster/settings", "{s:n}",
						     "vm_history_limit");
	s = setting(test_expect(reset, 200), "vm_history_limit");
	g_assert_cmpint(json_integer_value(json_object_get(s, "value")), ==, 100);
	g_assert_true(json_is_false(json_object_get(s, "changed")));

#define BAD_SETTINGS(body, error) { 2, "PUT", "/api/v1/cluster/settings", body, 400, error }
	static const refusal bad[] = {
		BAD_SETTINGS("{\"nope\":1}", "Unknown cluster setting 'nope'"),
		BAD_SETTINGS("{\"lab_mode\":\"maybe\"}", "Setting lab_mode must be yes or no, not \"maybe\""),
		BAD_SETTINGS("{\"vm_history_limit\":0}", "Setting vm_history_limit must be from 1 to 100000, not 0"),
		BAD_SETTINGS("{\"vm_history_limit\":\"many\"}", "Setting vm_history_limit must be a whole number"),
		BAD_SETTINGS("{\"admission_control\":\"sometimes\"}",
			     "Setting admission_control must be one of off|warn|refuse, not 'sometimes'"),
		BAD_SETTINGS("{}", "No settings to change were given"),
		/* The effective range after the change: 50000 > 49215. */
		BAD_SETTINGS("{\"migration_port_min\":50000}",
			     "Setting migration_port_min (50000) is above migration_port_max (49215)"),
		BAD_SETTINGS("{\"migration_port_min\":50000,\"migration_port_max\":49999}",
			     "Setting migration_port_min (50000) is above migration_port_max (49999)"),
		BAD_SETTINGS("{\"migration_port_max\":60000}",
			     "The migration port range 49152-60000 holds 10849 ports; at most 1024"),
		BAD_SETTINGS("[1]", ""),
		BAD_SETTINGS("not json", ""),
	};
#undef BAD_SETTINGS
	EXPECT_REFUSALS(f, bad);
	/* Nothing of that changed anything. */
	g_autoptr(test_answer) after = test_request(f->n[1], "GET", "/api/v1/cluster/settings", NULL);
	s = setting(test_expect(after, 200), "lab_mode");
	g_assert_true(json_is_false(json_object_get(s, "value")));
	s = setting(after->json, "migration_port_min");
	g_assert_true(json_is_false(json_object_get(s, "changed")));
	s = setting(after->json, "migration_port_max");
	g_assert_true(json_is_false(json_object_get(s, "changed")));
	/* Both ends moved in one change: a range again. */
	g_autoptr(test_answer) moved = test_requestf(f->n[2], "PUT", "/api/v1/cluster/settings",
						     "{s:i,s:s}", "migration_port_min", 50000,
						     "migration_port_max", "50063");
	s = setting(test_expect(moved, 200), "migration_port_min");
	g_assert_cmpint(json_integer_value(json_object_get(s, "value")), ==, 50000);
}

/* The notification settings: the password is never shown back, only that
 * it is set; bad values are refused naming the setting.  POST
 * /api/v1/notify/test needs herdd's notifier (tests/cluster/test_notify.py
 * sends for real). */
static void test_notify_settings(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) put = test_requestf(f->n[1], "PUT", "/api/v1/cluster/settings",
						   "{s:s,s:s,s:s}", "notify_smtp_password", "hunter2-secret",
						   "notify_to", "ops@example.com", "notify_smtp_host",
						   "mail.example.com");
	json_t *s = setting(test_expect(put, 200), "notify_smtp_password");
	g_assert_cmpstr(json_string_value(json_object_get(s, "value")), ==, "(set)");
	g_assert_true(json_is_true(json_object_get(s, "secret")));
	g_autofree char *text = json_dumps(put->json, 0);
	g_assert_null(strstr(text, "hunter2"));
	for (int i = 1; i <= 3; i++) {
		g_autoptr(test_answer) get = test_request(f->n[i], "GET", "/api/v1/cluster/settings", NULL);
		g_autofree char *t = json_dumps(test_expect(get, 200), 0);
		g_assert_null(strstr(t, "hunter2"));
		g_assert_nonnull(strstr(t, "ops@example.com"));
		g_autoptr(test_answer) cluster = test_request(f->n[i], "GET", "/api/v1/cluster", NULL);
		g_autofree char *c = json_dumps(test_expect(cluster, 200), 0);
		g_assert_null(strstr(c, "hunter2"));
	}
#define BAD(body, error) { 2, "PUT", "/api/v1/cluster/settings", body, 400, error }
	static const refusal bad[] = {
		BAD("{\"notify_to\":\"ops\"}", "Setting notify_to must be a mail address"),
		BAD("{\"notify_smtp_tls\":\"ssl\"}", "Setting notify_smtp_tls must be one of none|starttls|tls"),
		BAD("{\"notify_webhook\":\"gopher://x\"}", "Setting notify_webhook must be an http:// or https:// URL"),
		BAD("{\"notify_smtp_host\":\"a b\"}", "Setting notify_smtp_host must be a host name"),
		BAD("{\"notify_smtp_password\":\"a\\nb\"}", "Setting notify_smtp_password must be one line"),
	};
#undef BAD
	EXPECT_REFUSALS(f, bad);
	g_autoptr(test_answer) test = test_request(f->n[1], "POST", "/api/v1/notify/test", NULL);
	test_expect_error(test, 503, "sends no notifications");
}

/* Create, join and leave: only for root on the node's socket, and not for
 * a node that is a member already (formation's success paths need
 * corosync: tests/cluster). */
static void test_cluster_formation_refused(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) create = test_requestf(f->n[1], "POST", "/api/v1/cluster",
						      "{s:s,s:[s],s:s}", "name", "other", "links",
						      "10.98.0.1", "password", "long-enough-pw");
	g_autoptr(test_answer) join = test_requestf(f->n[2], "POST", "/api/v1/cluster/join",
						    "{s:s,s:s,s:s,s:[s]}", "address", "10.99.0.1",
						    "fingerprint", "00", "password", "long-enough-pw",
						    "links", "10.99.0.2");
	g_autoptr(test_answer) leave = test_requestf(f->n[3], "POST", "/api/v1/cluster/leave", "{s:s}",
						     "force", "yes");
	if (geteuid() != 0) {
		test_expect_error(create, 403, "Only root on this node's own socket may do this");
		test_expect_error(join, 403, "Only root on this node's own socket may do this");
		test_expect_error(leave, 403, "Only root on this node's own socket may do this");
		return;
	}
	test_expect_error(create, 409, "This node is already a member of cluster 'test'");
	test_expect_error(join, 409, "This node is already a member of cluster 'test'");
	test_expect_error(leave, 400, "Field 'force' must be true or false.");
	g_autoptr(test_answer) unknown = test_requestf(f->n[3], "POST", "/api/v1/cluster/leave", "{s:b}",
						       "quietly", 1);
	test_expect_error(unknown, 400, "Unknown field 'quietly' (known: force)");
}

/* A node half-way through a join (corosync runs, the store never came: a
 * partition, a member gone): a second join says so and how to get out of
 * it, and leave gives the join up locally, leaving the node blank. */
static void test_cluster_joining_stuck(fixture *f, gconstpointer data)
{
	if (geteuid() != 0) {
		g_test_skip("create, join and leave are root's");
		return;
	}
	testnode *n3 = f->n[3];
	testcluster_cut(f->tc, 3);
	herd_cluster_stop(n3->cluster);
	g_autoptr(GError) err = NULL;
	g_assert_true(herd_cluster_reset(n3->cluster, &err));
	g_autofree char *dir = g_build_filename(n3->dir, "corosync", NULL);
	g_autofree char *conf = g_build_filename(dir, "corosync.conf", NULL);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_true(g_file_set_contents(conf, "totem {\n\tversion: 2\n\tcluster_name: test\n}\n", -1,
					  NULL));
	herd_cluster_start(n3->cluster, true);
	g_assert_true(herd_formation_member(n3->formation));
	g_autoptr(test_answer) join = test_requestf(n3, "POST", "/api/v1/cluster/join",
						    "{s:s,s:s,s:s,s:[s]}", "address", "10.99.0.1",
						    "fingerprint", "00", "password", "long-enough-pw",
						    "links", "10.99.0.3");
	test_expect_error(join, 409,
			  "This node is joining cluster 'test' and is not in sync with it yet (corosync runs; 'herd status' says what it waits for). Wait for it, or give the join up with 'herd cluster leave' and join again.");
	g_autoptr(test_answer) leave = test_request(n3, "POST", "/api/v1/cluster/leave", NULL);
	json_t *left = test_expect(leave, 200);
	g_assert_cmpstr(json_string_value(json_object_get(left, "cluster")), ==, "test");
	g_assert_false(herd_formation_member(n3->formation));
	g_assert_false(g_file_test(conf, G_FILE_TEST_EXISTS));
	/* Blank again: a join is no longer refused as a member's. */
	g_autoptr(test_answer) again = test_requestf(n3, "POST", "/api/v1/cluster/join",
						     "{s:s,s:s,s:[s]}", "address", "10.99.0.1",
						     "password", "long-enough-pw", "links", "10.99.0.3");
	test_expect_error(again, 400, "A join needs the member's address, the confirmed certificate fingerprint");
}

/* ------------------------------------------------------------------ */
/* A node joins (the member's side) and is removed                     */

/* Does an open alert on node n@node's list say @message? */
static bool alert_says(fixture *f, unsigned node, const char *message)
{
	g_autoptr(test_answer) a = test_request(f->n[node], "GET", "/api/v1/alerts", NULL);
	size_t i;
	json_t *r;
	json_array_foreach(a->status == 200 ? a->json : NULL, i, r)
		if (g_str_has_prefix(json_string_value(json_object_get(r, "message")), message))
			return true;
	return false;
}

static void test_cluster_add_node(fixture *f, gconstpointer data)
{
	static const struct {
		const char *name;
		const char *link;
		long long protocol;
		long status;
		const char *error;
	} bad[] = {
		{ "n2", "10.99.0.9", HERD_WIRE_VERSION, 409, "The cluster already has a node named 'n2'" },
		/* its own address, but n2 is in the ring: not a lost answer */
		{ "n2", "10.99.0.2", HERD_WIRE_VERSION, 409, "The cluster already has a node named 'n2'" },
		{ "n4", "10.99.0.1", HERD_WIRE_VERSION, 409, "Address 10.99.0.1 is already used by node n1" },
		{ "n4", "10.99.0.300", HERD_WIRE_VERSION, 400, "Link 0 address '10.99.0.300' is not an IPv4 or IPv6 address" },
		{ "n4", "10.99.0.4", 99, 409, "The new node speaks protocol 99" },
		{ "bad name", "10.99.0.4", HERD_WIRE_VERSION, 400, "" },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(json_t) body = join_request(bad[i].name, bad[i].link, bad[i].protocol);
		g_autoptr(test_answer) a = test_request(f->n[1], "POST", "/api/v1/cluster/nodes", body);
		test_expect_error(a, bad[i].status, bad[i].error);
	}
	g_autoptr(test_answer) two_links = test_requestf(f->n[1], "POST", "/api/v1/cluster/nodes",
							 "{s:s,s:[s,s],s:s,s:i}", "name", "n4", "links",
							 "10.99.0.4", "10.98.0.4", "csr", "x", "protocol",
							 HERD_WIRE_VERSION);
	test_expect_error(two_links, 400, "The cluster uses 1 link(s); give the new node exactly 1");
	g_autoptr(test_answer) bad_csr = test_requestf(f->n[1], "POST", "/api/v1/cluster/nodes",
						       "{s:s,s:[s],s:s,s:i}", "name", "n4", "links",
						       "10.99.0.4", "csr", "not a CSR", "protocol",
						       HERD_WIRE_VERSION);
	g_assert_cmpint(bad_csr->status, >=, 400);
	g_autoptr(test_answer) extra = test_requestf(f->n[1], "POST", "/api/v1/cluster/nodes", "{s:s,s:b}",
						     "name", "n4", "admin", 1);
	test_expect_error(extra, 400, "Unknown field 'admin'");

	/* A node joins (join_timeout_s is 4 here, and the cluster has been
	 * quorate longer than that: a node not seen since is no longer
	 * awaited for the cold start): the member adds it, signs its
	 * certificate and tells corosync (every node reloads its
	 * configuration). */
	g_assert_false(test_loop_until(false, 4500));
	unsigned reloads = testbus_reloads(testcluster_bus(f->tc));
	g_autoptr(json_t) body = join_request("n4", "10.99.0.4", HERD_WIRE_VERSION);
	g_autoptr(test_answer) a = test_request(f->n[2], "POST", "/api/v1/cluster/nodes", body);
	json_t *j = test_expect(a, 201);
	g_assert_cmpstr(json_string_value(json_object_get(j, "cluster")), ==, "test");
	g_assert_cmpint(json_integer_value(json_object_get(j, "nodeid")), ==, 4);
	g_assert_cmpstr(json_string_value(json_object_get(j, "ca_cert")), ==, testcluster_ca(f->tc));
	g_autoptr(GError) err = NULL;
	g_assert_true(herd_tls_verify(json_string_value(json_object_get(j, "node_cert")),
				      testcluster_ca(f->tc), &err));
	g_assert_nonnull(strstr(json_string_value(json_object_get(j, "corosync_conf")), "10.99.0.4"));
	g_assert_nonnull(json_string_value(json_object_get(j, "authkey")));
	g_assert_cmpuint(testbus_reloads(testcluster_bus(f->tc)), ==, reloads + 1);
	g_autoptr(test_answer) shown = test_request(f->n[3], "GET", "/api/v1/nodes/n4", NULL);
	j = test_expect(shown, 200);
	g_assert_true(json_is_false(json_object_get(j, "online")));
	g_assert_true(json_is_false(json_object_get(j, "alive")));
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(json_object_get(j, "links"), 0),
							  "state")), ==, "down");
	/* Its join under way, the coordinator gives it join_timeout_s from
	 * when it was added before it counts as lost: no fence, no "no
	 * fence device covers it" (fence_idle_nodes is on), and once the
	 * join took half of that (SCHED_JOIN_QUIET_S, at most), a warning
	 * that it has not joined yet.  Then it is lost. */
	TEST_WAIT(alert_says(f, 1, "Node n4 was added to the cluster and has not joined yet; herd fences it if it has not joined 4 s after it was added (join_timeout_s)."));
	store_object *n4 = store_state_get_by_name(herd_cluster_state(f->n[1]->cluster), STORE_KIND_NODE, "n4");
	g_assert_cmpint(g_get_real_time() / 1000 - n4->created_ms, >=, 2000);
	g_assert_false(alert_says(f, 1, "Node n4 is lost"));
	TEST_WAIT(alert_says(f, 1, "Node n4 is lost and no fence device covers it"));

	/* n4's answer was lost: it asks again and is answered again (the
	 * same node id, a certificate for its new key, nothing added); the
	 * same name from another address is still refused. */
	g_autoptr(json_t) again_body = join_request("n4", "10.99.0.4", HERD_WIRE_VERSION);
	g_autoptr(test_answer) again = test_request(f->n[1], "POST", "/api/v1/cluster/nodes", again_body);
	j = test_expect(again, 201);
	g_assert_cmpint(json_integer_value(json_object_get(j, "nodeid")), ==, 4);
	g_assert_true(herd_tls_verify(json_string_value(json_object_get(j, "node_cert")),
				      testcluster_ca(f->tc), &err));
	g_assert_cmpuint(store_state_count(herd_cluster_state(f->n[2]->cluster), STORE_KIND_NODE), ==, 4);
	g_autoptr(json_t) other_body = join_request("n4", "10.99.0.5", HERD_WIRE_VERSION);
	g_autoptr(test_answer) other = test_request(f->n[1], "POST", "/api/v1/cluster/nodes", other_body);
	test_expect_error(other, 409, "The cluster already has a node named 'n4'");

	/* n4 never came: it is lost, and while it is, no node leaves... */
	TEST_WAIT(lost_nodes_are(f, 1, "n4"));
	g_autoptr(test_answer) early = test_request(f->n[1], "DELETE", "/api/v1/nodes/n4", NULL);
	test_expect_error(early, 503, "Node n4 is lost and not fenced yet: no node joins or leaves the cluster");
	/* ...until an operator confirms it is off. */
	g_autoptr(test_answer) confirmed = test_request(f->n[1], "POST", "/api/v1/nodes/n4/confirm-down", NULL);
	test_expect(confirmed, 200);
	g_autoptr(test_answer) removed = test_request(f->n[1], "DELETE", "/api/v1/nodes/n4", NULL);
	test_expect(removed, 200);
	g_autoptr(test_answer) gone = test_request(f->n[2], "GET", "/api/v1/nodes/n4", NULL);
	test_expect_error(gone, 404, "Node 'n4' is not defined.");
}

/*
 * Joins sent at the same time, two through n1 and one through n2: one is
 * added; the others wait their turn instead of being refused (the node
 * added is not up, so it counts as lost, and no node joins while one is).
 * Once it is confirmed off the next is added (3 of 5 nodes up); the last
 * one would leave 3 of 6, so it waits until its bound and is refused
 * saying why, with nothing changed.  With no node on its way, such a join
 * is refused at once.
 */
static unsigned answered(test_call *const *calls, unsigned n)
{
	unsigned k = 0;
	for (unsigned i = 0; i < n; i++)
		k += calls[i] && test_call_answered(calls[i]);
	return k;
}

/* The first of @calls answered (taken out of @calls). */
static test_answer *first_answer(test_call **calls, unsigned n, unsigned *which)
{
	for (unsigned i = 0; i < n; i++)
		if (calls[i] && test_call_answered(calls[i])) {
			test_answer *a = test_call_finish(calls[i]);
			calls[i] = NULL;
			*which = i;
			return a;
		}
	g_assert_not_reached();
}

static void test_cluster_joins_at_once(fixture *f, gconstpointer data)
{
	static const struct {
		unsigned via;
		const char *name, *link;
	} joins[] = { { 1, "n5", "10.99.0.5" }, { 1, "n6", "10.99.0.6" }, { 2, "n7", "10.99.0.7" } };
	test_call *calls[G_N_ELEMENTS(joins)];
	herd_formation_set_join_wait(f->n[1]->formation, 3000);
	herd_formation_set_join_wait(f->n[2]->formation, 3000);
	for (unsigned i = 0; i < G_N_ELEMENTS(joins); i++) {
		g_autoptr(json_t) body = join_request(joins[i].name, joins[i].link, HERD_WIRE_VERSION);
		calls[i] = test_call_start(f->n[joins[i].via], "POST", "/api/v1/cluster/nodes", body);
	}
	TEST_WAIT(answered(calls, 3) == 1);
	unsigned first;
	g_autoptr(test_answer) a1 = first_answer(calls, 3, &first);
	json_t *j = test_expect(a1, 201);
	g_assert_cmpint(json_integer_value(json_object_get(j, "nodeid")), ==, 4);
	/* the others wait (n1 and n2 each picked node id 4: the store took one) */
	g_assert_false(test_loop_until(answered(calls, 3) > 0, 500));
	g_assert_cmpuint(store_state_count(herd_cluster_state(f->n[3]->cluster), STORE_KIND_NODE), ==, 4);

	g_autofree char *confirm = g_strdup_printf("/api/v1/nodes/%s/confirm-down", joins[first].name);
	g_autoptr(test_answer) confirmed = test_request(f->n[1], "POST", confirm, NULL);
	test_expect(confirmed, 200);
	TEST_WAIT(answered(calls, 3) == 1);
	unsigned second;
	g_autoptr(test_answer) a2 = first_answer(calls, 3, &second);
	j = test_expect(a2, 201);
	g_assert_cmpint(json_integer_value(json_object_get(j, "nodeid")), ==, 5);
	g_assert_cmpuint(store_state_count(herd_cluster_state(f->n[3]->cluster), STORE_KIND_NODE), ==, 5);

	unsigned third;
	TEST_WAIT(answered(calls, 3) == 1);
	g_autoptr(test_answer) a3 = first_answer(calls, 3, &third);
	g_autofree char *refused = g_strdup_printf("Node '%s' was not added: it waited 3 s for its turn to join through this node (3 of the cluster's 5 nodes are up; one more node added now would leave this partition without a majority if it did not come up). Nothing was changed",
						   joins[third].name);
	test_expect_error(a3, 504, refused);
	g_assert_cmpuint(store_state_count(herd_cluster_state(f->n[2]->cluster), STORE_KIND_NODE), ==, 5);
	g_assert_null(store_state_get_by_name(herd_cluster_state(f->n[1]->cluster), STORE_KIND_NODE,
					      joins[third].name));

	/* With the second confirmed off too, no node is on its way: a join
	 * that would leave 3 of 6 is refused at once, saying what to do. */
	g_autofree char *confirm2 = g_strdup_printf("/api/v1/nodes/%s/confirm-down", joins[second].name);
	g_autoptr(test_answer) confirmed2 = test_request(f->n[1], "POST", confirm2, NULL);
	test_expect(confirmed2, 200);
	g_autoptr(json_t) late = join_request("n8", "10.99.0.8", HERD_WIRE_VERSION);
	g_autoptr(test_answer) a4 = test_request(f->n[2], "POST", "/api/v1/cluster/nodes", late);
	test_expect_error(a4, 503, "Node 'n8' was not added: 3 of the cluster's 5 nodes are up; one more node added now would leave this partition without a majority if it did not come up. Start the nodes that are down, or remove those gone for good ('herd node remove NAME'), then join again.");
	g_assert_cmpuint(store_state_count(herd_cluster_state(f->n[1]->cluster), STORE_KIND_NODE), ==, 5);
}

/* ------------------------------------------------------------------ */
/* The quorum device (the qnetd side: tests/cluster/test_qdevice.py)   */

static char *conf_of(fixture *f, unsigned node)
{
	g_autoptr(GError) err = NULL;
	char *conf = herd_corosync_conf_render(herd_cluster_state(f->n[node]->cluster), &err);
	g_assert_no_error(err);
	return conf;
}

static void test_cluster_qdevice(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) none = test_request(f->n[1], "GET", "/api/v1/cluster/qdevice", NULL);
	test_expect_error(none, 404, "The cluster has no qdevice.");
	g_autoptr(test_answer) no_remove = test_request(f->n[1], "DELETE", "/api/v1/cluster/qdevice", NULL);
	test_expect_error(no_remove, 404, "The cluster has no qdevice.");
	g_autoptr(test_answer) got = test_request(f->n[2], "GET", "/api/v1/cluster", NULL);
	g_assert_true(json_is_null(json_object_get(test_expect(got, 200), "qdevice")));

	/* Bad input, each refused before anything is asked of the cluster. */
	guchar der[80] = { 0x30 };
	g_autofree char *p12 = g_base64_encode(der, sizeof(der));
	const char *ca = testcluster_ca(f->tc);
	static const struct {
		const char *host, *ca, *p12;
		long status;
		const char *error;
	} bad[] = {
		{ "-x", NULL, NULL, 400, "The qdevice host '-x' is not a host name or an IP address" },
		{ "qnetd;rm", NULL, NULL, 400, "is not a host name" },
		{ "qnetd", "not a certificate", NULL, 400, "ca_cert is not qnetd's CA certificate" },
		{ "qnetd", NULL, "AAAA", 400, "p12 is not the cluster's certificate and key" },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(test_answer) a = test_requestf(f->n[1], "POST", "/api/v1/cluster/qdevice",
							 "{s:s,s:s,s:s}", "host", bad[i].host, "ca_cert",
							 bad[i].ca ? bad[i].ca : ca, "p12",
							 bad[i].p12 ? bad[i].p12 : p12);
		test_expect_error(a, bad[i].status, bad[i].error);
	}
	g_autoptr(test_answer) port = test_requestf(f->n[1], "POST", "/api/v1/cluster/qdevice",
						    "{s:s,s:i,s:b}", "host", "qnetd", "port", 70000,
						    "check", 1);
	g_assert_cmpint(port->status, ==, 400);

	/* Three nodes: an odd count is refused (the CLI's dry run, then the add). */
	g_autoptr(test_answer) odd = test_requestf(f->n[1], "POST", "/api/v1/cluster/qdevice",
						   "{s:s,s:b}", "host", "qnetd", "check", 1);
	test_expect_error(odd, 409, "The cluster has 3 nodes: herd sets up a qdevice for an even number of nodes only");
	g_autoptr(test_answer) odd_add = test_requestf(f->n[1], "POST", "/api/v1/cluster/qdevice",
						       "{s:s,s:s,s:s}", "host", "qnetd", "ca_cert", ca,
						       "p12", p12);
	test_expect_error(odd_add, 409, "The cluster has 3 nodes");

	/* A fourth node that never comes: every node must be up. */
	g_autoptr(json_t) join = join_request("n4", "10.99.0.4", HERD_WIRE_VERSION);
	g_autoptr(test_answer) joined = test_request(f->n[2], "POST", "/api/v1/cluster/nodes", join);
	test_expect(joined, 201);
	g_autoptr(test_answer) down = test_requestf(f->n[1], "POST", "/api/v1/cluster/qdevice",
						    "{s:s,s:s,s:s}", "host", "qnetd", "ca_cert", ca,
						    "p12", p12);
	test_expect_error(down, 409, "Node n4 is not up: every node must be up to set up the qdevice");
	g_autofree char *before = conf_of(f, 1);
	g_assert_null(strstr(before, "device"));

	/* Stored (as the add would once every node is up): corosync.conf of
	 * four nodes has the device, ffsplit. */
	store_object *c = store_state_cluster(herd_cluster_state(f->n[1]->cluster));
	g_autoptr(json_t) cmd = store_cluster_cmd_qdevice_set(c, "qnetd.example", 5403, ca, p12);
	testnode_commit(f->n[1], cmd);
	g_autofree char *conf = conf_of(f, 3);
	g_assert_nonnull(strstr(conf, "\tdevice {\n\t\tmodel: net\n\t\tvotes: 1\n\t\ttimeout: 3000\n"
				      "\t\tsync_timeout: 3000\n\t\tnet {\n\t\t\ttls: on\n\t\t\thost: qnetd.example\n"
				      "\t\t\tport: 5403\n\t\t\talgorithm: ffsplit\n"));
	g_assert_null(strstr(conf, "two_node"));
	g_autoptr(test_answer) shown = test_request(f->n[2], "GET", "/api/v1/cluster/qdevice", NULL);
	json_t *j = test_expect(shown, 200);
	g_assert_cmpstr(str(j, "host"), ==, "qnetd.example");
	g_assert_cmpstr(str(j, "algorithm"), ==, "ffsplit");
	g_assert_true(json_is_true(json_object_get(j, "active")));
	g_autoptr(test_answer) twice = test_requestf(f->n[2], "POST", "/api/v1/cluster/qdevice",
						     "{s:s,s:b}", "host", "other", "check", 1);
	test_expect_error(twice, 409, "The cluster already has a qdevice (qnetd.example); remove it first");

	/* The removal: the device leaves corosync.conf of every node. */
	g_autoptr(test_answer) removed = test_request(f->n[3], "DELETE", "/api/v1/cluster/qdevice", NULL);
	g_assert_cmpstr(str(test_expect(removed, 200), "removed"), ==, "qnetd.example");
	g_autofree char *after = conf_of(f, 2);
	g_assert_null(strstr(after, "device"));
	g_autoptr(test_answer) gone = test_request(f->n[1], "GET", "/api/v1/cluster", NULL);
	g_assert_true(json_is_null(json_object_get(test_expect(gone, 200), "qdevice")));
}

/* ------------------------------------------------------------------ */
/* Nodes                                                               */

static void test_nodes(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) a = test_request(f->n[2], "GET", "/api/v1/nodes", NULL);
	json_t *list = test_expect(a, 200);
	g_assert_cmpuint(json_array_size(list), ==, 3);
	for (unsigned i = 0; i < 3; i++) {
		json_t *n = json_array_get(list, i);
		g_assert_cmpint(json_integer_value(json_object_get(n, "nodeid")), ==, i + 1);
		g_assert_true(json_is_true(json_object_get(n, "online")));
		g_assert_true(json_is_true(json_object_get(n, "alive")));
		g_assert_cmpstr(json_string_value(json_object_get(n, "mode")), ==, "online");
		g_assert_true(json_is_null(json_object_get(n, "down")));
		g_assert_cmpint(json_is_true(json_object_get(n, "local")), ==, i == 1);
		json_t *link = json_array_get(json_object_get(n, "links"), 0);
		g_assert_cmpstr(json_string_value(json_object_get(link, "state")), ==, i == 1 ? "local" : "up");
		json_t *herd = json_object_get(n, "herd");
		g_assert_true(json_is_true(json_object_get(herd, "virt_ok")));
		g_assert_cmpint(json_integer_value(json_object_get(json_object_get(herd, "resources"), "memory_mib")),
				==, TESTNODE_MEMORY_MIB);
	}
	/* Before n2's corosync told it anything about its links (for 5 s after
	 * a change of the ring): unknown for the nodes in the group, not down. */
	testbus_links_unread(testcluster_bus(f->tc), 2, true);
	g_autoptr(test_answer) unread = test_request(f->n[2], "GET", "/api/v1/nodes/n3", NULL);
	json_t *link = json_array_get(json_object_get(test_expect(unread, 200), "links"), 0);
	g_assert_cmpstr(json_string_value(json_object_get(link, "state")), ==, "unknown");
	testbus_links_unread(testcluster_bus(f->tc), 2, false);
	g_autoptr(test_answer) read = test_request(f->n[2], "GET", "/api/v1/nodes/n3", NULL);
	link = json_array_get(json_object_get(test_expect(read, 200), "links"), 0);
	g_assert_cmpstr(json_string_value(json_object_get(link, "state")), ==, "up");
	/* By name or by UUID. */
	const char *uuid = json_string_value(json_object_get(json_array_get(list, 2), "uuid"));
	g_autofree char *path = g_strdup_printf("/api/v1/nodes/%s", uuid);
	g_autoptr(test_answer) by_uuid = test_request(f->n[1], "GET", path, NULL);
	g_assert_cmpstr(json_string_value(json_object_get(test_expect(by_uuid, 200), "name")), ==, "n3");
	g_autoptr(test_answer) unknown = test_request(f->n[1], "GET", "/api/v1/nodes/n9", NULL);
	test_expect_error(unknown, 404, "Node 'n9' is not defined.");
}

static void test_node_mode(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) a = test_requestf(f->n[1], "POST", "/api/v1/nodes/n2/mode", "{s:s}", "mode",
						 "standby");
	test_expect(a, 200);
	g_autoptr(test_answer) shown = test_request(f->n[3], "GET", "/api/v1/nodes/n2", NULL);
	g_assert_cmpstr(json_string_value(json_object_get(test_expect(shown, 200), "mode")), ==, "standby");
	g_autoptr(test_answer) back = test_requestf(f->n[2], "POST", "/api/v1/nodes/n2/mode", "{s:s}",
						    "mode", "online");
	test_expect(back, 200);

	static const refusal bad[] = {
		{ 1, "POST", "/api/v1/nodes/n2/mode", "{\"mode\":\"asleep\"}", 400,
		  "Mode 'asleep' is not online, standby or maintenance." },
		{ 1, "POST", "/api/v1/nodes/n2/mode", "{\"mode\":1}", 400,
		  "Mode '' is not online, standby or maintenance." },
		{ 1, "POST", "/api/v1/nodes/n2/mode", "{\"state\":\"standby\"}", 400,
		  "Unknown field 'state' (known: mode, allow_cold)" },
		{ 1, "POST", "/api/v1/nodes/n7/mode", "{\"mode\":\"standby\"}", 404, "Node 'n7' is not defined." },
	};
	EXPECT_REFUSALS(f, bad);
	g_autoptr(test_answer) after = test_request(f->n[1], "GET", "/api/v1/nodes/n2", NULL);
	g_assert_cmpstr(json_string_value(json_object_get(test_expect(after, 200), "mode")), ==, "online");
}

/* What may only be done to a node that is gone is refused for one that is
 * alive, or for the node asked itself. */
static void test_node_refusals(fixture *f, gconstpointer data)
{
	static const refusal refused[] = {
		{ 1, "POST", "/api/v1/nodes/n2/confirm-down", NULL, 409,
		  "Node n2 is alive (corosync sees it); confirm-down is only for a node that is powered off." },
		{ 1, "POST", "/api/v1/nodes/n9/confirm-down", NULL, 404, "Node 'n9' is not defined." },
		{ 1, "DELETE", "/api/v1/nodes/n3", NULL, 409, "Node 'n3' is online; run 'herd cluster leave' on it" },
		{ 1, "DELETE", "/api/v1/nodes/n1", NULL, 409, "Node 'n1' is this node" },
		{ 1, "DELETE", "/api/v1/nodes/n9", NULL, 404, "Node 'n9' is not defined." },
		{ 2, "POST", "/api/v1/nodes/n2/fence", NULL, 409, "Node n2 is this node; fence it from another node." },
		{ 2, "POST", "/api/v1/nodes/n3/fence", NULL, 409, "No fence device has a plug for node n3" },
		{ 2, "POST", "/api/v1/nodes/n9/fence", NULL, 404, "Node 'n9' is not defined." },
	};
	EXPECT_REFUSALS(f, refused);
	/* Every node is as it was. */
	TEST_WAIT(testcluster_settled(f->tc));
	g_assert_cmpuint(testcluster_fence_count(f->tc, "off"), ==, 0);
}

/* ------------------------------------------------------------------ */
/* Fence devices, and fencing a node                                   */

static void test_fence_devices(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) empty = test_request(f->n[1], "GET", "/api/v1/fence-devices", NULL);
	g_assert_cmpuint(json_array_size(test_expect(empty, 200)), ==, 0);

	g_autoptr(test_answer) added = fence_device_add(f, 1, "pdu1", "{s:s,s:s}", "n2", "2", "n3", "3");
	json_t *j = test_expect(added, 201);
	g_assert_cmpstr(json_string_value(json_object_get(j, "name")), ==, "pdu1");
	g_autoptr(test_answer) list = test_request(f->n[3], "GET", "/api/v1/fence-devices", NULL);
	json_t *dev = json_array_get(test_expect(list, 200), 0);
	g_assert_cmpstr(json_string_value(json_object_get(dev, "agent")), ==, "fence_test");
	g_assert_cmpint(json_integer_value(json_object_get(dev, "level")), ==, 1);
	/* Secrets are not shown. */
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(dev, "params"), "password")), ==,
			"********");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(dev, "plugs"), "n3")), ==, "3");

	/* Its test reads every plug's power through the agent. */
	g_autoptr(test_answer) test = test_request(f->n[2], "POST", "/api/v1/fence-devices/pdu1/test", NULL);
	json_t *results = test_expect(test, 200);
	g_assert_cmpuint(json_array_size(results), ==, 2);
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r) {
		g_assert_true(json_is_true(json_object_get(r, "ok")));
		g_assert_cmpstr(json_string_value(json_object_get(r, "power")), ==, "on");
	}
	g_assert_cmpuint(testcluster_fence_count(f->tc, "status"), ==, 2);

	/* Bad input: nothing is added. */
	g_autoptr(test_answer) not_installed = test_requestf(f->n[1], "POST", "/api/v1/fence-devices",
							     "{s:s,s:s}", "name", "x", "agent", "fence_nope");
	test_expect_error(not_installed, 400, "Fence agent fence_nope is not installed");
	g_autoptr(test_answer) not_agent = test_requestf(f->n[1], "POST", "/api/v1/fence-devices",
							 "{s:s,s:s}", "name", "x", "agent", "../bin/sh");
	test_expect_error(not_agent, 400, "'../bin/sh' is not a fence agent name");
	g_autoptr(test_answer) no_plug = fence_device_add(f, 1, "pdu2", "{s:s}", "n2", "42");
	test_expect_error(no_plug, 400, "Plug 42 (node n2) is not an outlet of pdu2");
	g_autoptr(test_answer) no_node = fence_device_add(f, 1, "pdu2", "{s:s}", "n9", "1");
	test_expect_error(no_node, 400, "n9");
	g_autoptr(test_answer) level = test_requestf(f->n[1], "POST", "/api/v1/fence-devices",
						     "{s:s,s:s,s:i}", "name", "x", "agent", "fence_test",
						     "level", 10);
	test_expect_error(level, 400, "Field 'level' must be a whole number from 1 to 9.");
	g_autoptr(test_answer) params = test_requestf(f->n[1], "POST", "/api/v1/fence-devices",
						      "{s:s,s:s,s:[]}", "name", "x", "agent", "fence_test",
						      "params");
	test_expect_error(params, 400, "Field 'params' must be an object of KEY: VALUE.");
	g_autoptr(test_answer) unknown_field = test_requestf(f->n[1], "POST", "/api/v1/fence-devices",
							     "{s:s,s:s,s:s}", "name", "x", "agent",
							     "fence_test", "ip", "10.0.0.1");
	test_expect_error(unknown_field, 400, "Unknown field 'ip'");
	g_autoptr(test_answer) same_name = fence_device_add(f, 1, "pdu1", "{s:s}", "n1", "1");
	test_expect_error(same_name, 409, "pdu1");
	g_autoptr(test_answer) unknown_test = test_request(f->n[1], "POST", "/api/v1/fence-devices/x/test", NULL);
	test_expect_error(unknown_test, 404, "Fence device 'x' is not defined.");
	g_autoptr(test_answer) still = test_request(f->n[1], "GET", "/api/v1/fence-devices", NULL);
	g_assert_cmpuint(json_array_size(test_expect(still, 200)), ==, 1);

	g_autoptr(test_answer) removed = test_request(f->n[2], "DELETE", "/api/v1/fence-devices/pdu1", NULL);
	test_expect(removed, 200);
	g_autoptr(test_answer) again = test_request(f->n[2], "DELETE", "/api/v1/fence-devices/pdu1", NULL);
	test_expect_error(again, 404, "Fence device 'pdu1' is not defined.");
	g_assert_cmpuint(testcluster_fence_count(f->tc, "off"), ==, 0);
}

static void test_node_fence(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) added = fence_device_add(f, 1, "pdu1", "{s:s,s:s,s:s}", "n1", "1", "n2", "2",
							"n3", "3");
	test_expect(added, 201);
	/* The PDU switches n3 off; then n3 is down, fenced. */
	g_autoptr(test_answer) a = test_request(f->n[1], "POST", "/api/v1/nodes/n3/fence", NULL);
	test_expect(a, 200);
	g_assert_false(f->n[3]->powered);
	/* At least once: n1 coordinates, and may fence n3 itself as soon as
	 * it sees it gone, before the operator's fence has finished. */
	g_assert_cmpuint(testcluster_fence_count(f->tc, "off"), >=, 1);
	g_autoptr(test_answer) shown = test_request(f->n[2], "GET", "/api/v1/nodes/n3", NULL);
	json_t *j = test_expect(shown, 200);
	g_assert_true(json_is_false(json_object_get(j, "alive")));
	g_assert_true(json_is_false(json_object_get(j, "online")));
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(j, "down"), "how")), ==, "fenced");
	json_t *record = json_array_get(json_object_get(j, "fence_history"), 0);
	g_assert_true(json_is_true(json_object_get(record, "ok")));
	g_assert_cmpstr(json_string_value(json_object_get(record, "device")), ==, "pdu1");
	/* A node that is off is not lost: nothing waits for it. */
	g_assert_true(lost_nodes_are(f, 1, NULL));

	/* Power back (once no "off" can come any more): the cluster sees it
	 * and clears the mark. */
	TEST_WAIT(testcluster_fence_running(f->tc) == 0);
	testcluster_power(f->tc, 3, true);
	TEST_WAIT(testcluster_settled(f->tc) && node_down_cleared(f, "n3"));
}

/* ------------------------------------------------------------------ */
/* GET /api/v1/events                                                  */

/* A raw connection to node @n's socket asking for @path, as admin. */
static int events_open(testnode *n, const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	g_strlcpy(sa.sun_path, n->socket_path, sizeof(sa.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_autofree char *cred = g_base64_encode((const guchar *)"admin:" TESTNODE_PASSWORD,
						strlen("admin:" TESTNODE_PASSWORD));
	g_autofree char *head = g_strdup_printf("GET %s HTTP/1.1\r\nHost: x\r\n"
						"Authorization: Basic %s\r\n\r\n", path, cred);
	g_assert_cmpint(write(fd, head, strlen(head)), ==, (ssize_t)strlen(head));
	return fd;
}

/* Read @fd into @got while the main loop runs until @needle came (true),
 * or the connection ended (false). */
static bool events_read_until(int fd, GString *got, const char *needle)
{
	gint64 give_up = g_get_monotonic_time() + TEST_WAIT_MS * 1000;
	while (!strstr(got->str, needle)) {
		char buf[4096];
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0) {
			g_string_append_len(got, buf, r);
			continue;
		}
		if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return false;
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
		if (g_get_monotonic_time() > give_up)
			g_error("'%s' did not come; the stream so far:\n%s", needle, got->str);
	}
	return true;
}

/* Server-sent events: hello, one change per object applied (also one made
 * through another node), membership; the stream's bound. */
static void test_events(fixture *f, gconstpointer data)
{
	g_autoptr(GString) got = g_string_new(NULL);
	int fd = events_open(f->n[1], "/api/v1/events");
	g_assert_true(events_read_until(fd, got, "event: hello\ndata: {\"node\":\"n1\"}\n\n"));
	g_assert_nonnull(strstr(got->str, "HTTP/1.1 200 "));
	g_assert_nonnull(strstr(got->str, "Content-Type: text/event-stream"));
	g_assert_nonnull(strstr(got->str, "retry: 3000\n"));
	g_autofree char *uuid = vm_define(f, 2, "web1", NULL);
	g_autofree char *created = g_strdup_printf("event: change\ndata: {\"kind\":\"vm\",\"id\":\"%s\","
						   "\"name\":\"web1\",\"op\":\"create\"}\n\n", uuid);
	g_assert_true(events_read_until(fd, got, created));
	g_autoptr(test_answer) del = test_request(f->n[3], "DELETE", "/api/v1/vms/web1", NULL);
	test_expect(del, 200);
	g_autofree char *deleted = g_strdup_printf("{\"kind\":\"vm\",\"id\":\"%s\",\"name\":\"web1\","
						   "\"op\":\"delete\"}", uuid);
	g_assert_true(events_read_until(fd, got, deleted));
	/* Other requests are served while it stays open. */
	g_autoptr(test_answer) st = test_request(f->n[1], "GET", "/api/v1/status", NULL);
	test_expect(st, 200);
	testcluster_power(f->tc, 3, false);
	g_assert_true(events_read_until(fd, got, "event: membership\ndata: {\"group\":"));

	/* At most EVENTS_MAX_STREAMS at once: the next one is refused. */
	int more[EVENTS_MAX_STREAMS];
	for (unsigned i = 1; i < EVENTS_MAX_STREAMS; i++) {
		g_autoptr(GString) hello = g_string_new(NULL);
		more[i] = events_open(f->n[1], "/api/v1/events");
		g_assert_true(events_read_until(more[i], hello, "event: hello"));
	}
	g_assert_cmpuint(api_events_streams(&f->n[1]->ctx), ==, EVENTS_MAX_STREAMS);
	g_autoptr(GString) refused = g_string_new(NULL);
	int fd_refused = events_open(f->n[1], "/api/v1/events");
	g_assert_true(events_read_until(fd_refused, refused, "the most it allows"));
	g_assert_nonnull(strstr(refused->str, "HTTP/1.1 503 "));
	close(fd_refused);
	for (unsigned i = 1; i < EVENTS_MAX_STREAMS; i++)
		close(more[i]);
	close(fd);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/node", test_node, NULL);
	api_test_add("/api/status", test_status, NULL);
	api_test_add("/api/status/after-sync", test_status_after_sync, NULL);
	api_test_add("/api/metrics", test_metrics, NULL);
	api_test_add("/api/events", test_events, NULL);
	api_test_add("/api/auth", test_auth, NULL);
	api_test_add("/api/cluster/get", test_cluster_get, NULL);
	api_test_add("/api/cluster/settings", test_cluster_settings, NULL);
	api_test_add("/api/cluster/notify-settings", test_notify_settings, NULL);
	api_test_add("/api/cluster/formation-refused", test_cluster_formation_refused, NULL);
	api_test_add("/api/cluster/joining-stuck", test_cluster_joining_stuck, NULL);
	api_test_add("/api/cluster/joins-at-once", test_cluster_joins_at_once, NULL);
	api_test_add("/api/cluster/add-node", test_cluster_add_node, "{\"join_timeout_s\":4}");
	api_test_add("/api/cluster/qdevice", test_cluster_qdevice, NULL);
	api_test_add("/api/nodes/list-show", test_nodes, NULL);
	api_test_add("/api/nodes/mode", test_node_mode, NULL);
	api_test_add("/api/nodes/refusals", test_node_refusals, NULL);
	api_test_add("/api/fence-devices", test_fence_devices, NULL);
	/* n3 must stay off until the test powers it on. */
	api_test_add("/api/nodes/fence", test_node_fence, "{\"fence_action\":\"off\"}");
	return g_test_run();
}
