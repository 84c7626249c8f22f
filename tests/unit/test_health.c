/* ha/health: alerts for a libvirtd that does not answer, a storage filling
 * up, and N+1 that no longer holds. */
#include "common/json.h"
#include "ha/health.h"
#include "store/node.h"
#include "store/storage.h"
#include "teststore.h"

#include <string.h>

#define CLUSTER "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
#define N1 "a1111111-1111-4111-8111-111111111111"
#define N2 "a2222222-2222-4222-8222-222222222222"
#define ST1 "51111111-1111-4111-8111-111111111111"
#define ST2 "52222222-2222-4222-8222-222222222222"

typedef struct {
	test_store *t;
	herd_facts *facts;
	GHashTable *ping_cut;      /* the nodes the coordinator takes for cut off */
	GHashTable *virt_since;    /* the coordinator's watch on libvirtds not answering */
	int64_t now_ms;
} fixture;

static void apply(fixture *x, json_t *cmd)
{
	test_store_apply_new(x->t, cmd);
}

static void setup(fixture *x, gconstpointer data)
{
	x->t = test_store_new();
	test_store_apply_text(x->t, "{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"" CLUSTER
				    "\",\"name\":\"c\",\"data\":{}}");
	const char *l1[] = { "10.0.0.1" }, *l2[] = { "10.0.0.2" };
	apply(x, store_node_cmd_create(N1, "n1", 1, l1, 1));
	apply(x, store_node_cmd_create(N2, "n2", 2, l2, 1));
	g_autoptr(json_t) a = json_pack("{s:s,s:s}", "type", "dir", "path", "/srv/a");
	g_autoptr(json_t) b = json_pack("{s:s,s:s}", "type", "dir", "path", "/srv/b");
	apply(x, store_storage_cmd_create(ST1, "share", a));
	apply(x, store_storage_cmd_create(ST2, "data", b));
	x->facts = herd_facts_new();
	x->ping_cut = g_hash_table_new(g_str_hash, g_str_equal);
	x->virt_since = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	x->now_ms = 1000000;
}

static void teardown(fixture *x, gconstpointer data)
{
	herd_facts_free(x->facts);
	g_hash_table_destroy(x->ping_cut);
	g_hash_table_destroy(x->virt_since);
	test_store_free(x->t);
}

/* Node @id says: its hypervisor answers or not, and what it sees of the storages. */
static void report(fixture *x, uint32_t id, const char *name, bool virt_ok, const char *usage_json)
{
	g_autoptr(json_t) usage = json_loads(usage_json, 0, NULL);
	herd_node_report r = { .name = name, .resources = { 1024, 512, 1 }, .virt_ok = virt_ok,
			       .usage = usage };
	size_t len;
	g_autofree char *p = herd_facts_encode(&r, &len);
	g_assert_true(herd_facts_update(x->facts, id, p, len, 0, NULL));
}

/* Node @id says what it makes of the ping nodes. */
static void report_ping(fixture *x, uint32_t id, const char *name, const char *ping_json)
{
	g_autoptr(json_t) ping = json_loads(ping_json, 0, NULL);
	herd_node_report r = { .name = name, .resources = { 1024, 512, 1 }, .virt_ok = true, .ping = ping };
	size_t len;
	g_autofree char *p = herd_facts_encode(&r, &len);
	g_assert_true(herd_facts_update(x->facts, id, p, len, 0, NULL));
}

static json_t *alerts(fixture *x, bool n_plus_1, const char *at_risk)
{
	json_t *out = json_array();
	g_autoptr(json_t) risk = json_loads(at_risk, 0, NULL);
	herd_health_alerts(out, x->t->st, x->facts, x->virt_since, x->now_ms, x->ping_cut, n_plus_1, risk);
	return out;
}

static const char *field(json_t *a, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(a, i), key));
}

static void test_healthy(fixture *x, gconstpointer data)
{
	report(x, 1, "n1", true, "{\"" ST1 "\":{\"size\":1000,\"free\":500}}");
	report(x, 2, "n2", true, "{\"" ST1 "\":{\"size\":1000,\"free\":500}}");
	g_autoptr(json_t) a = alerts(x, true, "{}");
	g_assert_cmpuint(json_array_size(a), ==, 0);
}

/* The alerts after the coordinator's watch looked at @now_ms. */
static json_t *alerts_at(fixture *x, int64_t now_ms, int64_t *due_in_ms)
{
	x->now_ms = now_ms;
	*due_in_ms = herd_health_virt_watch(x->virt_since, x->t->st, x->facts, now_ms);
	return alerts(x, true, "{}");
}

static void test_virt_down(fixture *x, gconstpointer data)
{
	const int64_t t0 = 1000000;
	int64_t due;
	report(x, 1, "n1", true, "{}");
	report(x, 2, "n2", false, "{}");
	/* Not at once (a libvirtd restarting), and the coordinator is told
	 * when to look again. */
	g_autoptr(json_t) a0 = alerts_at(x, t0, &due);
	g_assert_cmpuint(json_array_size(a0), ==, 0);
	g_assert_cmpint(due, ==, HEALTH_VIRT_DOWN_ALERT_MS);
	g_autoptr(json_t) a1 = alerts_at(x, t0 + HEALTH_VIRT_DOWN_ALERT_MS - 1, &due);
	g_assert_cmpuint(json_array_size(a1), ==, 0);
	g_assert_cmpint(due, ==, 1);
	g_autoptr(json_t) a = alerts_at(x, t0 + HEALTH_VIRT_DOWN_ALERT_MS, &due);
	g_assert_cmpint(due, ==, 0);
	g_assert_cmpuint(json_array_size(a), ==, 1);
	g_assert_cmpstr(field(a, 0, "kind"), ==, "virt_down");
	g_assert_cmpstr(field(a, 0, "node"), ==, "n2");
	g_assert_cmpstr(field(a, 0, "severity"), ==, "critical");
	/* Stale facts (a membership change since): nothing said, and the
	 * time it has not answered is kept. */
	herd_facts_new_round(x->facts);
	g_autoptr(json_t) b = alerts_at(x, t0 + 20000, &due);
	g_assert_cmpuint(json_array_size(b), ==, 0);
	report(x, 2, "n2", false, "{}");
	g_autoptr(json_t) c = alerts_at(x, t0 + 20001, &due);
	g_assert_cmpuint(json_array_size(c), ==, 1);
	/* It answers again: forgotten, and a new failure waits anew. */
	report(x, 2, "n2", true, "{}");
	g_autoptr(json_t) d = alerts_at(x, t0 + 30000, &due);
	g_assert_cmpuint(json_array_size(d), ==, 0);
	g_assert_cmpuint(g_hash_table_size(x->virt_since), ==, 0);
	report(x, 2, "n2", false, "{}");
	g_autoptr(json_t) e = alerts_at(x, t0 + 31000, &due);
	g_assert_cmpuint(json_array_size(e), ==, 0);
	g_assert_cmpint(due, ==, HEALTH_VIRT_DOWN_ALERT_MS);
}

/* 80 % warns, 90 % is critical; the fullest view counts; unknown storages
 * and nonsense are ignored. */
static void test_storage(fixture *x, gconstpointer data)
{
	report(x, 1, "n1", true,
	       "{\"" ST1 "\":{\"size\":1073741824000,\"free\":214748364800},"
	       "\"" ST2 "\":{\"size\":1000,\"free\":50},"
	       "\"99999999-9999-4999-8999-999999999999\":{\"size\":10,\"free\":0}}");
	report(x, 2, "n2", true,
	       "{\"" ST1 "\":{\"size\":1073741824000,\"free\":107374182400},"
	       "\"" ST2 "\":{\"size\":0,\"free\":0}}");
	g_autoptr(json_t) a = alerts(x, true, "{}");
	g_assert_cmpuint(json_array_size(a), ==, 2);
	/* In the store's order of storages. */
	g_assert_cmpstr(field(a, 1, "storage"), ==, "share");
	g_assert_cmpstr(field(a, 1, "severity"), ==, "critical"); /* n2's view: 90 % */
	g_assert_cmpstr(field(a, 1, "message"), ==,
			"Storage share is 90 % full (node n2 sees 100.0 GiB free of 1000.0 GiB): guests "
			"writing to it may stop when it is full.");
	g_assert_cmpstr(field(a, 0, "storage"), ==, "data");
	g_assert_cmpstr(field(a, 0, "severity"), ==, "critical");
	report(x, 1, "n1", true, "{\"" ST1 "\":{\"size\":1000,\"free\":199}}");
	report(x, 2, "n2", true, "{}");
	g_autoptr(json_t) b = alerts(x, true, "{}");
	g_assert_cmpuint(json_array_size(b), ==, 1);
	g_assert_cmpstr(field(b, 0, "severity"), ==, "warning");
	g_assert_cmpstr(field(b, 0, "kind"), ==, "storage_full");
}

static void test_n_plus_1(fixture *x, gconstpointer data)
{
	g_autoptr(json_t) a = alerts(x, false, "{\"n1\":2,\"n2\":0}");
	g_assert_cmpuint(json_array_size(a), ==, 1);
	g_assert_cmpstr(field(a, 0, "kind"), ==, "n_plus_1");
	g_assert_nonnull(strstr(field(a, 0, "message"), "n1 (2)"));
	g_assert_null(strstr(field(a, 0, "message"), "n2"));
}

/* A node cut off from the ping nodes while the other reaches one: a
 * warning naming it; every node cut off: one critical alert, nothing
 * about single nodes (nothing moves).  The coordinator's set counts, not
 * what the nodes say this moment (it holds a new set for two rounds). */
static void test_ping(fixture *x, gconstpointer data)
{
	report_ping(x, 1, "n1", "{\"lost\":true,\"targets\":{\"192.0.2.1\":false}}");
	report_ping(x, 2, "n2", "{\"lost\":false,\"targets\":{\"192.0.2.1\":true}}");
	g_autoptr(json_t) held = alerts(x, true, "{}");
	g_assert_cmpuint(json_array_size(held), ==, 0);
	g_hash_table_add(x->ping_cut, "n1");
	g_autoptr(json_t) a = alerts(x, true, "{}");
	g_assert_cmpuint(json_array_size(a), ==, 1);
	g_assert_cmpstr(field(a, 0, "kind"), ==, "ping_lost");
	g_assert_cmpstr(field(a, 0, "node"), ==, "n1");
	g_assert_cmpstr(field(a, 0, "message"), ==,
			"Node n1 reaches none of the ping nodes (192.0.2.1), which n2 reaches: its HA VMs move there.");
	report_ping(x, 2, "n2", "{\"lost\":true,\"targets\":{\"192.0.2.1\":false}}");
	g_hash_table_add(x->ping_cut, "n2");
	g_autoptr(json_t) b = alerts(x, true, "{}");
	g_assert_cmpuint(json_array_size(b), ==, 1);
	g_assert_cmpstr(field(b, 0, "kind"), ==, "ping_lost_all");
	g_assert_cmpstr(field(b, 0, "severity"), ==, "critical");
	g_assert_nonnull(strstr(field(b, 0, "message"), "nothing moves"));
	/* No ping nodes set: nothing. */
	g_hash_table_remove_all(x->ping_cut);
	report(x, 1, "n1", true, "{}");
	report(x, 2, "n2", true, "{}");
	g_autoptr(json_t) c = alerts(x, true, "{}");
	g_assert_cmpuint(json_array_size(c), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/health/healthy", fixture, NULL, setup, test_healthy, teardown);
	g_test_add("/health/virt-down", fixture, NULL, setup, test_virt_down, teardown);
	g_test_add("/health/storage", fixture, NULL, setup, test_storage, teardown);
	g_test_add("/health/n-plus-1", fixture, NULL, setup, test_n_plus_1, teardown);
	g_test_add("/health/ping", fixture, NULL, setup, test_ping, teardown);
	return g_test_run();
}
