/* ha/check: herd check's results from the nodes' probes, the fence
 * devices' answers, the storages' reach and N+1; their alerts; the parsers
 * of ping's, /proc/cpuinfo's and virsh's output. */
#include "common/json.h"
#include "ha/check.h"
#include "store/fence_device.h"
#include "store/node.h"
#include "teststore.h"

#include <string.h>

#define CLUSTER "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
#define N1 "a1111111-1111-4111-8111-111111111111"
#define N2 "a2222222-2222-4222-8222-222222222222"
#define N3 "a3333333-3333-4333-8333-333333333333"
#define DEV "d1111111-1111-4111-8111-111111111111"
#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct {
	test_store *t;
	json_t *probes;
	json_t *fence;
	json_t *reach;
	herd_check_input in;
} fixture;

static void apply(fixture *x, json_t *cmd)
{
	test_store_apply_new(x->t, cmd);
}

/* A probe of a healthy node @self of three on two links. */
static json_t *probe(const char *self, int64_t offset_ms)
{
	json_t *pings = json_array();
	static const char *const nodes[] = { "n1", "n2", "n3" };
	for (int n = 0; n < 3; n++) {
		if (strcmp(nodes[n], self) == 0)
			continue;
		for (int l = 0; l < 2; l++) {
			g_autofree char *addr = g_strdup_printf("10.99.%d.%d", l, n + 1);
			json_array_append_new(pings, json_pack("{s:s,s:i,s:s,s:i,s:i,s:i,s:i,s:i}", "peer", nodes[n],
							       "link", l, "address", addr, "size", 1472, "sent", 3,
							       "received", 3, "df_sent", 3, "df_received", 3));
		}
	}
	return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:o}", "offset_ms", (json_int_t)offset_ms, "corosync_conf",
			 SHA, "libvirt", "9.0.0", "qemu", "7.2.0", "cpu_model", "Some CPU", "cpu_flags", SHA,
			 "pings", pings);
}

static void setup(fixture *x, gconstpointer data)
{
	x->t = test_store_new();
	test_store_apply_text(x->t, "{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"" CLUSTER
				    "\",\"name\":\"c\",\"data\":{}}");
	const char *l1[] = { "10.99.0.1", "10.99.1.1" }, *l2[] = { "10.99.0.2", "10.99.1.2" },
		   *l3[] = { "10.99.0.3", "10.99.1.3" };
	apply(x, store_node_cmd_create(N1, "n1", 1, l1, 2));
	apply(x, store_node_cmd_create(N2, "n2", 2, l2, 2));
	apply(x, store_node_cmd_create(N3, "n3", 3, l3, 2));
	g_autoptr(json_t) params = json_pack("{s:s}", "ip", "10.99.9.1");
	g_autoptr(json_t) plugs = json_pack("{s:s,s:s,s:s}", "n1", "1", "n2", "2", "n3", "3");
	apply(x, store_fence_device_cmd_create(DEV, "pdu", "fence_apc_snmp", params, plugs, 1));
	x->probes = json_pack("{s:o,s:o,s:o}", "n1", probe("n1", 0), "n2", probe("n2", 12), "n3",
			      probe("n3", -30));
	x->fence = json_pack("[{s:s,s:s,s:s,s:b,s:s},{s:s,s:s,s:s,s:b,s:s},{s:s,s:s,s:s,s:b,s:s}]", "device",
			     "pdu", "node", "n1", "plug", "1", "ok", 1, "detail", "on", "device", "pdu", "node",
			     "n2", "plug", "2", "ok", 1, "detail", "on", "device", "pdu", "node", "n3", "plug", "3",
			     "ok", 1, "detail", "on");
	x->reach = json_pack("{s:{s:{s:b},s:{s:b},s:{s:b}}}", "data", "n1", "ok", 1, "n2", "ok", 1, "n3", "ok",
			     1);
	x->in = (herd_check_input){ .st = x->t->st, .asker = "n1", .probes = x->probes, .fence = x->fence,
				    .reach = x->reach, .corosync_conf = SHA, .n_plus_1_known = true,
				    .n_plus_1 = true, .mtu = 1500, .answer_s = 30 };
}

static void teardown(fixture *x, gconstpointer data)
{
	json_decref(x->probes);
	json_decref(x->fence);
	json_decref(x->reach);
	test_store_free(x->t);
}

/* The results of @check with @status, as "node: message" lines. */
static GPtrArray *find(json_t *results, const char *check, const char *status)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r)
		if (strcmp(json_string_value(json_object_get(r, "check")), check) == 0 &&
		    strcmp(json_string_value(json_object_get(r, "status")), status) == 0) {
			const char *node = json_string_value(json_object_get(r, "node"));
			g_ptr_array_add(out, g_strdup_printf("%s: %s", node ? node : "-",
							     json_string_value(json_object_get(r, "message"))));
		}
	return out;
}

static void assert_one(json_t *results, const char *check, const char *status, const char *node,
		       const char *contains)
{
	g_autoptr(GPtrArray) f = find(results, check, status);
	g_assert_cmpuint(f->len, ==, 1);
	g_autofree char *prefix = g_strdup_printf("%s: ", node ? node : "-");
	g_assert_true(g_str_has_prefix(f->pdata[0], prefix));
	if (!strstr(f->pdata[0], contains))
		g_error("'%s' does not contain '%s'", (char *)f->pdata[0], contains);
}

static void test_clean(fixture *x, gconstpointer data)
{
	g_autoptr(json_t) r = herd_check_evaluate(&x->in);
	g_assert_false(herd_check_failed(r));
	size_t i;
	json_t *res;
	json_array_foreach(r, i, res)
		g_assert_cmpstr(json_string_value(json_object_get(res, "status")), ==, "pass");
	assert_one(r, "clock", "pass", NULL, "agree within 1.0 s (42 ms apart at most)");
	assert_one(r, "mtu", "pass", NULL, "for an MTU of 1500 (12 paths)");
	assert_one(r, "fence", "pass", NULL, "(3 plugs)");
	assert_one(r, "links", "pass", NULL, "2 heartbeat links");
	g_autoptr(json_t) alerts = json_array();
	herd_check_alerts(alerts, r);
	g_assert_cmpuint(json_array_size(alerts), ==, 0);
	/* The same facts give the same results. */
	g_autoptr(json_t) again = herd_check_evaluate(&x->in);
	g_assert_true(json_equal(r, again));
}

/* One clock of three far from the others: that node; of two: both named. */
static void test_clock(fixture *x, gconstpointer data)
{
	json_object_set_new(json_object_get(x->probes, "n3"), "offset_ms", json_integer(90021));
	g_autoptr(json_t) r = herd_check_evaluate(&x->in);
	g_assert_true(herd_check_failed(r));
	assert_one(r, "clock", "fail", "n3",
		   "The clock of node n3 is 90.0 s ahead of the other nodes' (more than 1.0 s off): have every "
		   "node keep time with NTP");
	g_autoptr(json_t) alerts = json_array();
	herd_check_alerts(alerts, r);
	g_assert_cmpuint(json_array_size(alerts), ==, 1);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(alerts, 0), "kind")), ==, "clock_skew");
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(alerts, 0), "node")), ==, "n3");

	/* The asker's own clock off: the others are the majority. */
	json_object_set_new(json_object_get(x->probes, "n2"), "offset_ms", json_integer(-5000));
	json_object_set_new(json_object_get(x->probes, "n3"), "offset_ms", json_integer(-5100));
	g_autoptr(json_t) r2 = herd_check_evaluate(&x->in);
	assert_one(r2, "clock", "fail", "n1", "node n1 is 5.0 s ahead of");

	/* Two nodes: which one is wrong cannot be told. */
	json_object_del(x->probes, "n3");
	g_autoptr(json_t) r3 = herd_check_evaluate(&x->in);
	assert_one(r3, "clock", "fail", NULL, "The clocks of nodes n1 and n2 are 5.0 s apart");
	assert_one(r3, "answer", "fail", "n3", "Node n3 did not answer the check within 30 s");
}

/* Big pings fail where small ones pass: the MTU, both ways, naming the
 * link and what to set; nothing passes at all: the link; some lost: a
 * warning. */
static void test_mtu(fixture *x, gconstpointer data)
{
	json_t *p3 = json_object_get(json_object_get(x->probes, "n3"), "pings");
	size_t i;
	json_t *p;
	json_array_foreach(p3, i, p)
		if (json_integer_value(json_object_get(p, "link")) == 1 &&
		    strcmp(json_string_value(json_object_get(p, "peer")), "n1") == 0) {
			json_object_set_new(p, "df_received", json_integer(0));
			json_object_set_new(p, "error", json_string("local error: message too long, mtu=1400"));
		}
	json_t *p1 = json_object_get(json_object_get(x->probes, "n1"), "pings");
	json_array_foreach(p1, i, p)
		if (strcmp(json_string_value(json_object_get(p, "peer")), "n2") == 0 &&
		    json_integer_value(json_object_get(p, "link")) == 0)
			json_object_set_new(p, "received", json_integer(2));
		else if (strcmp(json_string_value(json_object_get(p, "peer")), "n2") == 0)
			json_object_set_new(p, "received", json_integer(0));
	g_autoptr(json_t) r = herd_check_evaluate(&x->in);
	assert_one(r, "mtu", "fail", "n3",
		   "Don't-fragment pings of 1472 bytes (for an MTU of 1500) from node n3 to node n1 on link 1 "
		   "(10.99.1.1) do not pass, though small ones do (ping: local error: message too long, "
		   "mtu=1400): set the MTU of link 1's interfaces (and their switch ports) to at least 1500 on "
		   "both nodes, or lower the cluster's check_mtu");
	assert_one(r, "link", "fail", "n1", "Node n1 gets no answer from node n2 on link 1 (10.99.1.2) to 3 pings");
	assert_one(r, "loss", "warn", "n1", "Node n1 lost 1 of 6 pings to node n2 on link 0");
	g_autoptr(GPtrArray) passes = find(r, "mtu", "pass");
	g_assert_cmpuint(passes->len, ==, 0);
	g_autoptr(json_t) alerts = json_array();
	herd_check_alerts(alerts, r);
	/* One check_failed per node with failures. */
	g_assert_cmpuint(json_array_size(alerts), ==, 2);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(alerts, 0), "kind")), ==, "check_failed");
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(alerts, 0), "node")), ==, "n1");
	g_assert_true(g_str_has_prefix(json_string_value(json_object_get(json_array_get(alerts, 1), "message")),
				       "Pre-flight check failed for node n3: Don't-fragment pings"));
}

static void test_fence(fixture *x, gconstpointer data)
{
	json_t *f = json_array_get(x->fence, 1);
	json_object_set_new(f, "ok", json_false());
	json_object_set_new(f, "detail", json_string("Unable to connect/login to fencing device"));
	const char *l4[] = { "10.99.0.4", "10.99.1.4" };
	apply(x, store_node_cmd_create("a4444444-4444-4444-8444-444444444444", "n4", 4, l4, 2));
	g_autoptr(json_t) r = herd_check_evaluate(&x->in);
	g_autoptr(GPtrArray) fails = find(r, "fence", "fail");
	g_assert_cmpuint(fails->len, ==, 2);
	g_assert_cmpstr(fails->pdata[0], ==,
			"n4: Node n4 has no fence device: if it is lost, herd cannot fence it, and its HA VMs do "
			"not restart elsewhere. Add one with a plug for it (herd fence-device add NAME --agent "
			"AGENT --param … --plug n4=PLUG).");
	g_assert_cmpstr(fails->pdata[1], ==,
			"n2: Fence device pdu does not answer 'status' for node n2 (plug 2) from node n1: Unable "
			"to connect/login to fencing device. Check its address, login and password: remove it and "
			"add it again with the right ones (herd fence-device remove pdu; herd fence-device add pdu "
			"…), then run herd fence-device test pdu.");
}

static void test_other(fixture *x, gconstpointer data)
{
	json_object_set_new(json_object_get(x->probes, "n2"), "corosync_conf", json_string("ffff"));
	json_object_set_new(json_object_get(x->probes, "n3"), "qemu", json_string("8.0.0"));
	json_object_set_new(json_object_get(x->probes, "n3"), "cpu_model", json_string("Other CPU"));
	json_object_set_new(json_object_get(x->reach, "data"), "n2",
			    json_pack("{s:b,s:s}", "ok", 0, "problem", "/srv/data does not exist"));
	x->in.n_plus_1 = false;
	g_autoptr(json_t) risk = json_pack("{s:i,s:i}", "n1", 2, "n2", 0);
	x->in.at_risk = risk;
	g_autoptr(json_t) r = herd_check_evaluate(&x->in);
	assert_one(r, "corosync", "fail", "n2", "Node n2's corosync.conf is not the one the cluster's");
	assert_one(r, "storage", "fail", "n2", "Node n2 does not reach storage data: /srv/data does not exist.");
	assert_one(r, "versions", "warn", NULL,
		   "The nodes run different versions of QEMU (7.2.0 on n1, n2; 8.0.0 on n3): a VM moves live");
	assert_one(r, "cpu", "warn", NULL, "The nodes' CPUs differ (Some CPU on n1, n2; Other CPU on n3)");
	assert_one(r, "n_plus_1", "warn", NULL, "elsewhere: n1 (2).");
}

/* One link: said, with a second one suggested (a warning, no alert). */
static void test_single_link(fixture *x, gconstpointer data)
{
	const char *l4[] = { "10.99.0.4" };
	apply(x, store_node_cmd_create("a4444444-4444-4444-8444-444444444444", "n4", 4, l4, 1));
	g_autoptr(json_t) r = herd_check_evaluate(&x->in);
	assert_one(r, "links", "warn", NULL,
		   "The cluster has a single heartbeat link: a loss of carrier of as little as 0.1 s on a "
		   "node's only link changes the membership and gets that node fenced. Add a second link");
	/* n4 (no probe, no fence device) fails other checks; the link is not an alert. */
	g_autoptr(json_t) alerts = json_array();
	herd_check_alerts(alerts, r);
	g_assert_cmpuint(json_array_size(alerts), ==, 1);
	g_assert_null(strstr(json_string_value(json_object_get(json_array_get(alerts, 0), "message")),
			     "single heartbeat link"));
}

static void test_parsers(void)
{
	unsigned sent = 9, received = 9;
	g_assert_true(herd_check_parse_ping(
		"PING 10.99.1.3 (10.99.1.3) 1472(1500) bytes of data.\n\n--- 10.99.1.3 ping statistics ---\n"
		"3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 405ms\n",
		&sent, &received));
	g_assert_cmpuint(sent, ==, 3);
	g_assert_cmpuint(received, ==, 0);
	g_assert_true(herd_check_parse_ping("12 packets transmitted, 11 received, 8% packet loss", &sent, &received));
	g_assert_cmpuint(sent, ==, 12);
	g_assert_cmpuint(received, ==, 11);
	g_assert_false(herd_check_parse_ping("ping: connect: Network is unreachable\n", &sent, &received));
	g_assert_false(herd_check_parse_ping(NULL, &sent, &received));

	g_autofree char *model = NULL, *flags = NULL;
	g_assert_true(herd_check_parse_cpuinfo("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: "
					       "Intel(R) Xeon(R) CPU\nflags\t\t: fpu vme sse2\n\nprocessor\t: 1\n"
					       "model name\t: Other\n",
					       &model, &flags));
	g_assert_cmpstr(model, ==, "Intel(R) Xeon(R) CPU");
	g_assert_cmpstr(flags, ==, "fpu vme sse2");
	g_autofree char *m2 = NULL, *f2 = NULL;
	g_assert_false(herd_check_parse_cpuinfo("processor\t: 0\n", &m2, &f2));
	g_assert_null(m2);

	g_autofree char *lv = NULL, *qemu = NULL;
	g_assert_true(herd_check_parse_virsh_version("Compiled against library: libvirt 9.0.0\nUsing library: "
						     "libvirt 9.0.0\nUsing API: QEMU 9.0.0\nRunning hypervisor: "
						     "QEMU 7.2.0\nRunning against daemon: 9.0.1\n",
						     &lv, &qemu));
	g_assert_cmpstr(lv, ==, "9.0.1");
	g_assert_cmpstr(qemu, ==, "7.2.0");
	g_autofree char *lv2 = NULL, *q2 = NULL;
	g_assert_false(herd_check_parse_virsh_version("error: failed to connect to the hypervisor\n", &lv2, &q2));

	g_assert_cmpuint(herd_check_ping_size(1500, "10.0.0.1"), ==, 1472);
	g_assert_cmpuint(herd_check_ping_size(9000, "fd00::1"), ==, 8952);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/check/clean", fixture, NULL, setup, test_clean, teardown);
	g_test_add("/check/clock", fixture, NULL, setup, test_clock, teardown);
	g_test_add("/check/mtu", fixture, NULL, setup, test_mtu, teardown);
	g_test_add("/check/fence", fixture, NULL, setup, test_fence, teardown);
	g_test_add("/check/other", fixture, NULL, setup, test_other, teardown);
	g_test_add("/check/single_link", fixture, NULL, setup, test_single_link, teardown);
	g_test_add_func("/check/parsers", test_parsers);
	return g_test_run();
}
