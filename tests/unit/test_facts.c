/* ha/facts: which STATUS messages change what a node knows of another,
 * and so wake its engine (herd_facts_update's @changed). */
#include "common/json.h"
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

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/facts/changed", fixture, NULL, setup, test_changed, teardown);
	g_test_add("/facts/migration", fixture, NULL, setup, test_migration, teardown);
	return g_test_run();
}
