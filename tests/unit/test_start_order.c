/* ha/start_order: restart priorities and "start after" on a node's starts. */
#include "ha/start_order.h"
#include "store/vm.h"
#include "teststore.h"

#include <string.h>

#define VM_HIGH "a1111111-1111-4111-8111-111111111111"
#define VM_MED "a2222222-2222-4222-8222-222222222222"
#define VM_LOW "a3333333-3333-4333-8333-333333333333"
#define VM_DB "a4444444-4444-4444-8444-444444444444"
#define VM_APP "a5555555-5555-4555-8555-555555555555"

static void vm(test_store *t, const char *uuid, const char *name, const char *node, const char *extra)
{
	g_autofree char *text = g_strdup_printf(
		"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"%s\",\"name\":\"%s\",\"data\":{\"target\":"
		"\"running\",\"node\":\"%s\"%s}}",
		uuid, name, node, extra);
	test_store_apply_text(t, text);
}

static GPtrArray *objs(test_store *t, const char *const *uuids)
{
	GPtrArray *a = g_ptr_array_new();
	for (; *uuids; uuids++)
		g_ptr_array_add(a, store_state_get(t->st, STORE_KIND_VM, *uuids));
	return a;
}

static GHashTable *set_of(const char *const *items)
{
	GHashTable *s = g_hash_table_new(g_str_hash, g_str_equal);
	for (; items && *items; items++)
		g_hash_table_add(s, (gpointer)*items);
	return s;
}

static void assert_names(GPtrArray *a, const char *const *names)
{
	guint i = 0;
	for (; names[i]; i++) {
		g_assert_cmpuint(i, <, a->len);
		g_assert_cmpstr(((store_object *)a->pdata[i])->name, ==, names[i]);
	}
	g_assert_cmpuint(a->len, ==, i);
}

/* Three VMs of a node that failed start on n1: high first, then (once it
 * runs) the medium one, then the low one; the wait ends at start_wait_s. */
static void test_priorities(void)
{
	g_autoptr(test_store) t = test_store_new();
	vm(t, VM_LOW, "c-low", "n1", ",\"restart_priority\":\"low\"");
	vm(t, VM_MED, "b-medium", "n1", ",\"start_wait_s\":5");
	vm(t, VM_HIGH, "z-high", "n3", ",\"restart_priority\":\"high\"");
	herd_start_order *o = herd_start_order_new();
	static const char *const members[] = { "n1", "n3", NULL };
	g_autoptr(GHashTable) m = set_of(members);
	g_autoptr(GHashTable) running = set_of(NULL);

	/* n1 may start b-medium and c-low; z-high (on n3) does not run yet. */
	static const char *const here[] = { VM_LOW, VM_MED, NULL };
	g_autoptr(GPtrArray) s = objs(t, here);
	int64_t wait = herd_start_order_pick(o, t->st, s, running, m, 1000);
	g_assert_cmpuint(s->len, ==, 0);
	g_assert_cmpint(wait, ==, 5000); /* b-medium's start_wait_s */
	g_assert_nonnull(strstr(herd_start_order_why(o, VM_MED), "restart priority high"));

	/* z-high runs: b-medium starts, c-low waits for it. */
	g_hash_table_add(running, (gpointer)VM_HIGH);
	g_ptr_array_unref(s);
	s = objs(t, here);
	wait = herd_start_order_pick(o, t->st, s, running, m, 2000);
	static const char *const medium[] = { "b-medium", NULL };
	assert_names(s, medium);
	g_assert_cmpint(wait, ==, 59000); /* c-low: held since 1000, the default 60 s */

	/* b-medium is starting (not running yet): c-low still waits, until
	 * its 60 s since it was first held are over. */
	static const char *const low_only[] = { VM_LOW, NULL };
	g_ptr_array_unref(s);
	s = objs(t, low_only);
	wait = herd_start_order_pick(o, t->st, s, running, m, 60999);
	g_assert_cmpuint(s->len, ==, 0);
	g_assert_cmpint(wait, ==, 1);
	g_ptr_array_unref(s);
	s = objs(t, low_only);
	wait = herd_start_order_pick(o, t->st, s, running, m, 61000);
	static const char *const low[] = { "c-low", NULL };
	assert_names(s, low);
	g_assert_cmpint(wait, ==, 0);

	/* A VM of a node that is not a member does not hold anyone. */
	g_hash_table_remove(running, VM_HIGH);
	g_hash_table_remove(m, "n3");
	g_ptr_array_unref(s);
	s = objs(t, here);
	wait = herd_start_order_pick(o, t->st, s, running, m, 70000);
	static const char *const both[] = { "b-medium", "c-low", NULL };
	g_assert_cmpint(s->len, ==, 1); /* c-low still waits for b-medium */
	assert_names(s, medium);
	g_assert_cmpint(wait, >, 0);

	/* Nothing known of the others: nothing waits, in priority order. */
	g_ptr_array_unref(s);
	s = objs(t, here);
	g_assert_cmpint(herd_start_order_pick(o, t->st, s, NULL, NULL, 70000), ==, 0);
	assert_names(s, both);
	herd_start_order_free(o);
}

/* app starts after db: once db runs, or db is not to run. */
static void test_start_after(void)
{
	g_autoptr(test_store) t = test_store_new();
	vm(t, VM_DB, "db", "n2", "");
	g_autofree char *after = g_strdup_printf(",\"start_after\":\"%s\",\"start_wait_s\":30", VM_DB);
	vm(t, VM_APP, "app", "n1", after);
	herd_start_order *o = herd_start_order_new();
	static const char *const members[] = { "n1", "n2", NULL };
	g_autoptr(GHashTable) m = set_of(members);
	g_autoptr(GHashTable) running = set_of(NULL);
	static const char *const app[] = { VM_APP, NULL };
	static const char *const app_name[] = { "app", NULL };

	g_autoptr(GPtrArray) s = objs(t, app);
	g_assert_cmpint(herd_start_order_pick(o, t->st, s, running, m, 0), ==, 30000);
	g_assert_cmpuint(s->len, ==, 0);
	g_assert_nonnull(strstr(herd_start_order_why(o, VM_APP), "VM db"));

	g_hash_table_add(running, (gpointer)VM_DB);
	g_ptr_array_unref(s);
	s = objs(t, app);
	g_assert_cmpint(herd_start_order_pick(o, t->st, s, running, m, 10), ==, 0);
	assert_names(s, app_name);
	g_assert_null(herd_start_order_why(o, VM_APP));

	/* db stopped by an operator: app does not wait for it. */
	g_hash_table_remove(running, VM_DB);
	g_autofree char *stop = g_strdup_printf(
		"{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"%s\",\"data\":{\"target\":\"stopped\"}}", VM_DB);
	test_store_apply_text(t, stop);
	g_ptr_array_unref(s);
	s = objs(t, app);
	g_assert_cmpint(herd_start_order_pick(o, t->st, s, running, m, 20), ==, 0);
	assert_names(s, app_name);
	herd_start_order_free(o);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/start_order/priorities", test_priorities);
	g_test_add_func("/start_order/start_after", test_start_after);
	return g_test_run();
}
