/* ha/facts: which STATUS messages change what a node knows of another,
 * and so wake its engine (herd_facts_update's @changed). */
#include "common/json.h"
#include "common/loadavg.h"
#include "ha/facts.h"

#include <string.h>

typedef struct {
	herd_facts *f;
	herd_node_report r;
	GArray *vms;
} fixture;

static void setup(fixture *x, gconstpointer data)
{
	x->f = herd_facts_new();
	x->vms = g_array_new(FALSE, TRUE, sizeof(herd_vm_fact));
	herd_vm_fact fact = { .uuid = "0000000a-0000-4000-8000-00000000000a", .state = HERD_VM_RUNNING,
			      .since_ms = 1000 };
	g_array_append_val(x->vms, fact);
	x->r = (herd_node_report){ .name = "n2", .index = 7, .vm_facts = x->vms,
				   .resources = { 16384, 9000, 8 }, .virt_ok = true };
}

static void teardown(fixture *x, gconstpointer data)
{
	g_array_free(x->vms, TRUE);
	herd_facts_free(x->f);
}

/* Send n2's report as it is now; returns @changed. */
static bool send(fixture *x)
{
	size_t len;
	g_autofree char *payload = herd_facts_encode(&x->r, &len);
	bool changed = false;
	g_assert_true(herd_facts_update(x->f, 2, payload, len, 0, &changed));
	return changed;
}

static void test_changed(fixture *x, gconstpointer data)
{
	g_assert_true(send(x));                  /* news */
	g_assert_false(send(x));                 /* the refresh of the same */
	herd_facts_new_round(x->f);
	g_assert_null(herd_facts_fresh(x->f, 2));
	g_assert_true(send(x));                  /* the same, but in a new round: fresh again */
	g_assert_nonnull(herd_facts_fresh(x->f, 2));

	/* Only the free memory moved: kept, shown, but nothing to act on. */
	x->r.resources.free_mib = 8123;
	g_assert_false(send(x));
	g_assert_cmpuint(herd_facts_fresh(x->f, 2)->resources.free_mib, ==, 8123);
	/* Fewer digits, more digits: still only the free memory. */
	x->r.resources.free_mib = 0;
	g_assert_false(send(x));
	x->r.resources.free_mib = 123456789;
	g_assert_false(send(x));
	/* The free memory and something else: news. */
	x->r.resources.free_mib = 9000;
	x->r.resources.cpus = 16;
	g_assert_true(send(x));
	g_assert_cmpuint(herd_facts_fresh(x->f, 2)->resources.cpus, ==, 16);
	/* A reason that spells the key out is a reason, not the free memory. */
	g_strlcpy(g_array_index(x->vms, herd_vm_fact, 0).reason, "\"free_mib\":1",
		  sizeof(((herd_vm_fact *)NULL)->reason));
	g_assert_true(send(x));
	x->r.resources.free_mib = 8123;
	g_assert_false(send(x));
	/* ... and in a new round it counts as news, as every STATUS then. */
	x->r.resources.free_mib = 8000;
	herd_facts_new_round(x->f);
	g_assert_true(send(x));

	/* Anything else is news: a VM's state, the total memory, the index. */
	g_array_index(x->vms, herd_vm_fact, 0).state = HERD_VM_STOPPED;
	g_assert_true(send(x));
	g_assert_cmpint(herd_facts_vm(x->f, "0000000a-0000-4000-8000-00000000000a", NULL)->state, ==,
			HERD_VM_STOPPED);
	x->r.resources.memory_mib = 32768;
	g_assert_true(send(x));
	x->r.index = 8;
	g_assert_true(send(x));
	g_assert_false(send(x));
}

/* The host's load average: unknown until a node says, then as it says;
 * it moves as the free memory does, and is no news either. */
static void test_load(fixture *x, gconstpointer data)
{
	g_assert_true(send(x));
	g_assert_false(herd_facts_fresh(x->f, 2)->resources.load_known);
	x->r.resources.load_known = true;
	x->r.resources.load_x100 = 52;
	g_assert_false(send(x));                 /* known now: kept, shown, nothing to act on */
	g_assert_true(herd_facts_fresh(x->f, 2)->resources.load_known);
	g_assert_cmpuint(herd_facts_fresh(x->f, 2)->resources.load_x100, ==, 52);
	/* Only the load moved (more digits, fewer), also with the free memory. */
	x->r.resources.load_x100 = 12345;
	g_assert_false(send(x));
	g_assert_cmpuint(herd_facts_fresh(x->f, 2)->resources.load_x100, ==, 12345);
	x->r.resources.load_x100 = 0;
	x->r.resources.free_mib = 77;
	g_assert_false(send(x));
	g_assert_cmpuint(herd_facts_fresh(x->f, 2)->resources.load_x100, ==, 0);
	g_assert_true(herd_facts_fresh(x->f, 2)->resources.load_known);
	/* The load and something else: news. */
	x->r.resources.load_x100 = 300;
	x->r.resources.cpus = 4;
	g_assert_true(send(x));
	/* Unknown again (it could not read it): as an older node, unknown. */
	x->r.resources.load_known = false;
	g_assert_false(send(x));
	g_assert_false(herd_facts_fresh(x->f, 2)->resources.load_known);
}

/* /proc/loadavg's first number, × 100. */
static void test_loadavg_parse(void)
{
	unsigned v = 999;
	g_assert_true(herd_loadavg_parse("0.52 0.58 0.59 1/467 12345\n", &v));
	g_assert_cmpuint(v, ==, 52);
	g_assert_true(herd_loadavg_parse("12.345 1.00 1.00 3/9 1", &v));
	g_assert_cmpuint(v, ==, 1235);
	g_assert_true(herd_loadavg_parse("0.00", &v));
	g_assert_cmpuint(v, ==, 0);
	v = 7;
	g_assert_false(herd_loadavg_parse("", &v));
	g_assert_false(herd_loadavg_parse(NULL, &v));
	g_assert_false(herd_loadavg_parse("-1.0 0 0", &v));
	g_assert_false(herd_loadavg_parse("abc", &v));
	g_assert_false(herd_loadavg_parse("0.5x 0 0", &v));
	g_assert_false(herd_loadavg_parse("nan 0 0", &v));
	g_assert_false(herd_loadavg_parse("1e300 0 0", &v));
	g_assert_cmpuint(v, ==, 7);
	/* This host's own: whatever it is, it parses. */
	g_assert_true(herd_loadavg_read(&v));
}

/* A node's readiness for live migration: unknown until it says, then as
 * it says, and news when it changes. */
static void test_migration(fixture *x, gconstpointer data)
{
	g_assert_true(send(x));
	g_assert_null(herd_facts_fresh(x->f, 2)->migration);
	g_autoptr(json_t) not_ready = json_pack("{s:b,s:s}", "ready", 0, "problem",
						"Cannot write /etc/pki/qemu/server-key.pem: Permission denied.");
	x->r.migration = not_ready;
	g_assert_true(send(x));
	json_t *m = herd_facts_fresh(x->f, 2)->migration;
	g_assert_true(json_equal(m, not_ready));
	g_assert_false(send(x));
	g_autoptr(json_t) ready = json_pack("{s:b}", "ready", 1);
	x->r.migration = ready;
	g_assert_true(send(x));
	g_assert_true(json_is_true(json_object_get(herd_facts_fresh(x->f, 2)->migration, "ready")));
	/* Something else under the key (a newer release?): unknown. */
	g_autoptr(json_t) odd = json_pack("{s:s}", "ready", "maybe");
	x->r.migration = odd;
	g_assert_true(send(x));
	g_assert_null(herd_facts_fresh(x->f, 2)->migration);
	x->r.migration = NULL;
}

/* What a node reaches: news when it changes, not when only a storage's
 * usage moved (as the free memory) unless it crossed an alert level; a
 * node that does not say reaches nothing. */
static void test_reach(fixture *x, gconstpointer data)
{
	const char *s1 = "00000001-0000-4000-8000-000000000001", *s2 = "00000002-0000-4000-8000-000000000002";
	g_assert_true(send(x));
	g_assert_cmpuint(g_hash_table_size(herd_facts_fresh(x->f, 2)->reached), ==, 0);
	g_autoptr(json_t) reach = json_pack("{s:{s:b},s:{s:b,s:s}}", s1, "ok", 1, s2, "ok", 0, "problem",
					    "/srv/b does not exist");
	g_autoptr(json_t) usage = json_pack("{s:{s:I,s:I}}", s1, "size", (json_int_t)1000000, "free",
					    (json_int_t)400000);
	x->r.reach = reach;
	x->r.usage = usage;
	g_assert_true(send(x));
	herd_node_facts *n = herd_facts_fresh(x->f, 2);
	g_assert_true(g_hash_table_contains(n->reached, s1));
	g_assert_false(g_hash_table_contains(n->reached, s2));
	g_assert_cmpint(json_integer_value(json_object_get(json_object_get(n->usage, s1), "free")), ==, 400000);
	g_assert_false(send(x));
	/* Only the usage moved, also with more digits, and with the free memory. */
	json_object_set_new(json_object_get(usage, s1), "free", json_integer(39999999));
	g_assert_false(send(x));
	g_assert_cmpint(json_integer_value(json_object_get(json_object_get(herd_facts_fresh(x->f, 2)->usage, s1), "free")),
			==, 39999999);
	x->r.resources.free_mib = 1;
	json_object_set_new(json_object_get(usage, s1), "size", json_integer(2));
	g_assert_false(send(x));
	/* No usage at all any more (the storage cannot be stat'ed): no news either. */
	x->r.usage = NULL;
	g_assert_false(send(x));
	x->r.usage = usage;
	g_assert_false(send(x));
	/* A storage crossing an alert level (80 %, 90 %, and back): news; more
	 * usage within a level: none. */
	json_object_set_new(json_object_get(usage, s1), "size", json_integer(1000000));
	const struct {
		json_int_t free;
		bool news;
	} steps[] = { { 150000, true }, { 140000, false }, { 50000, true }, { 40000, false },
		      { 500000, true }, { 400000, false } };
	for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
		json_object_set_new(json_object_get(usage, s1), "free", json_integer(steps[i].free));
		g_assert_cmpint(send(x), ==, steps[i].news);
	}
	/* Reach itself: news. */
	json_object_set_new(json_object_get(reach, s2), "ok", json_true());
	json_object_del(json_object_get(reach, s2), "problem");
	g_assert_true(send(x));
	g_assert_true(g_hash_table_contains(herd_facts_fresh(x->f, 2)->reached, s2));
	json_object_set_new(json_object_get(reach, s1), "problem", json_string("not answering"));
	json_object_set_new(json_object_get(reach, s1), "ok", json_false());
	g_assert_true(send(x));
	g_assert_false(g_hash_table_contains(herd_facts_fresh(x->f, 2)->reached, s1));
	x->r.reach = NULL;
	x->r.usage = NULL;
	g_assert_true(send(x));
	g_assert_cmpuint(g_hash_table_size(herd_facts_fresh(x->f, 2)->reached), ==, 0);
}

/* n2's facts now (held), and what changed for whom since @before: the
 * uuids' first 8 characters joined by ','; "-" for NULL.  Drops @before. */
static char *vms_changed(fixture *x, herd_node_facts *before, guint max)
{
	g_autoptr(GPtrArray) vms = herd_node_facts_vms_changed(before, herd_facts_fresh(x->f, 2), max);
	herd_node_facts_unref(before);
	if (!vms)
		return g_strdup("-");
	GString *out = g_string_new(NULL);
	for (guint i = 0; i < vms->len; i++)
		g_string_append_printf(out, "%s%.8s", i ? "," : "", (const char *)vms->pdata[i]);
	return g_string_free(out, FALSE);
}

static herd_node_facts *held(fixture *x)
{
	return herd_node_facts_ref(herd_facts_fresh(x->f, 2));
}

/* Which VMs a new STATUS concerns (the web UI's live updates fetch only
 * those): a VM's state, since, reason; one added or gone; an agent's
 * error; the coordinator's alert about it.  None for what concerns no VM;
 * not known VM by VM when the hypervisor connection came or went, across
 * rounds, or past the bound. */
static void test_vms_changed(fixture *x, gconstpointer data)
{
	const char *b = "0000000b-0000-4000-8000-00000000000b";
	g_assert_true(send(x));
	herd_node_facts *was = held(x);
	g_autofree char *same = vms_changed(x, was, 64);
	g_assert_cmpstr(same, ==, "");
	/* Something that concerns no VM. */
	was = held(x);
	x->r.resources.cpus = 4;
	g_assert_true(send(x));
	g_autofree char *none = vms_changed(x, was, 64);
	g_assert_cmpstr(none, ==, "");
	/* A's state; then a VM b added. */
	was = held(x);
	g_array_index(x->vms, herd_vm_fact, 0).state = HERD_VM_PAUSED;
	g_assert_true(send(x));
	g_autofree char *state = vms_changed(x, was, 64);
	g_assert_cmpstr(state, ==, "0000000a");
	was = held(x);
	herd_vm_fact fact = { .state = HERD_VM_RUNNING, .since_ms = 5 };
	g_strlcpy(fact.uuid, b, sizeof(fact.uuid));
	g_array_append_val(x->vms, fact);
	g_assert_true(send(x));
	g_autofree char *added = vms_changed(x, was, 64);
	g_assert_cmpstr(added, ==, "0000000b");
	/* b's since and a's reason at once; then an error about b. */
	was = held(x);
	g_array_index(x->vms, herd_vm_fact, 1).since_ms = 6;
	g_strlcpy(g_array_index(x->vms, herd_vm_fact, 0).reason, "user", sizeof(fact.reason));
	g_assert_true(send(x));
	g_autofree char *both = vms_changed(x, was, 64);
	g_assert_cmpstr(both, ==, "0000000a,0000000b");
	was = held(x);
	g_autoptr(json_t) errors = json_pack("{s:s}", b, "start failed: no memory");
	x->r.errors = errors;
	g_assert_true(send(x));
	g_autofree char *error = vms_changed(x, was, 64);
	g_assert_cmpstr(error, ==, "0000000b");
	/* The coordinator's alert about a; then b gone, its error with it. */
	was = held(x);
	g_autoptr(json_t) coord = json_pack("{s:[{s:s,s:s}]}", "alerts", "vm", "0000000a-0000-4000-8000-00000000000a",
					    "message", "VM a cannot start anywhere.");
	x->r.coordinator = coord;
	g_assert_true(send(x));
	g_autofree char *alert = vms_changed(x, was, 64);
	g_assert_cmpstr(alert, ==, "0000000a");
	was = held(x);
	g_array_set_size(x->vms, 1);
	x->r.errors = NULL;
	g_assert_true(send(x));
	g_autofree char *gone = vms_changed(x, was, 64);
	g_assert_cmpstr(gone, ==, "0000000b");
	/* More than the bound: not said VM by VM. */
	was = held(x);
	g_array_append_val(x->vms, fact);
	g_array_index(x->vms, herd_vm_fact, 0).state = HERD_VM_RUNNING;
	g_assert_true(send(x));
	g_autofree char *over = vms_changed(x, was, 1);
	g_assert_cmpstr(over, ==, "-");
	/* The hypervisor connection lost: every VM of the node unknown. */
	was = held(x);
	x->r.virt_ok = false;
	g_assert_true(send(x));
	g_autofree char *virt = vms_changed(x, was, 64);
	g_assert_cmpstr(virt, ==, "-");
	/* The first facts of a new round: the earlier ones are not fresh, so
	 * there is nothing to compare with (the engine passes NULL). */
	herd_facts_new_round(x->f);
	g_assert_null(herd_facts_fresh(x->f, 2));
	g_assert_true(send(x));
	g_assert_null(herd_node_facts_vms_changed(NULL, herd_facts_fresh(x->f, 2), 64));
	x->r.coordinator = NULL;
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/facts/changed", fixture, NULL, setup, test_changed, teardown);
	g_test_add("/facts/load", fixture, NULL, setup, test_load, teardown);
	g_test_add_func("/facts/loadavg-parse", test_loadavg_parse);
	g_test_add("/facts/migration", fixture, NULL, setup, test_migration, teardown);
	g_test_add("/facts/reach", fixture, NULL, setup, test_reach, teardown);
	g_test_add("/facts/vms-changed", fixture, NULL, setup, test_vms_changed, teardown);
	return g_test_run();
}
