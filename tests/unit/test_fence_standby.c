/*
 * Fence agents started before they are needed (src/ha/fence_standby.c):
 * which node keeps them, for which devices and how many, what to start
 * and kill, when to start again, and what an agent is handed.
 */
#include "ha/fence_standby.h"

#include <string.h>

static char *ids_text(const uint32_t *ids, size_t n)
{
	GString *s = g_string_new(NULL);
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%s%u", i ? " " : "", ids[i]);
	return g_string_free(s, FALSE);
}

static char *would_fence(const uint32_t *group, size_t n, uint32_t self)
{
	uint32_t out[16];
	return ids_text(out, herd_standby_would_fence(group, n, self, out));
}

static void test_who_keeps_agents(void)
{
	const uint32_t three[] = { 3, 1, 2 };
	g_autofree char *lowest = would_fence(three, 3, 1);
	g_autofree char *second = would_fence(three, 3, 2);
	g_autofree char *third = would_fence(three, 3, 3);
	g_autofree char *outside = would_fence(three, 3, 4);
	g_assert_cmpstr(lowest, ==, "3 2");   /* the coordinator: any other */
	g_assert_cmpstr(second, ==, "1");     /* the coordinator's successor: the coordinator */
	g_assert_cmpstr(third, ==, "");
	g_assert_cmpstr(outside, ==, "");     /* not in the group */
	const uint32_t two[] = { 7, 5 };
	g_autofree char *a = would_fence(two, 2, 5);
	g_autofree char *b = would_fence(two, 2, 7);
	g_assert_cmpstr(a, ==, "7");
	g_assert_cmpstr(b, ==, "5");
	const uint32_t one[] = { 5 };
	g_autofree char *alone = would_fence(one, 1, 5);
	g_assert_cmpstr(alone, ==, "");
	g_autofree char *none = would_fence(NULL, 0, 5);
	g_assert_cmpstr(none, ==, "");
}

static char *wants_text(GPtrArray *wants)
{
	GString *s = g_string_new(NULL);
	for (guint i = 0; i < wants->len; i++) {
		const herd_standby_want *w = wants->pdata[i];
		g_string_append_printf(s, "%s%s=%u", i ? " " : "", w->device, w->count);
	}
	return g_string_free(s, FALSE);
}

static const char *const N1[] = { "n1" }, *const N12[] = { "n1", "n2" }, *const N23[] = { "n2", "n3" };

static void test_choose(void)
{
	const herd_standby_device devs[] = {
		{ "pdu-b", "fence_apc_snmp", "b:1", 1, N23, 2 },
		{ "ipmi", "fence_ipmilan", "i:1", 2, N12, 2 },
		{ "pdu-a", "fence_apc_snmp", "a:1", 1, N1, 1 },
	};
	const char *const fence_n2[] = { "n2" }, *const fence_n1[] = { "n1" }, *const fence_n9[] = { "n9" };
	g_autoptr(GPtrArray) all = herd_standby_choose(devs, 3, fence_n2, 1, HERD_STANDBY_MAX);
	g_autofree char *t_all = wants_text(all);
	/* Level 1 first; pdu-a has no plug for n2. */
	g_assert_cmpstr(t_all, ==, "pdu-b=2 ipmi=2");
	g_assert_cmpstr(((herd_standby_want *)all->pdata[1])->agent, ==, "fence_ipmilan");
	g_assert_cmpstr(((herd_standby_want *)all->pdata[1])->key, ==, "i:1");
	g_autoptr(GPtrArray) n1 = herd_standby_choose(devs, 3, fence_n1, 1, HERD_STANDBY_MAX);
	g_autofree char *t_n1 = wants_text(n1);
	g_assert_cmpstr(t_n1, ==, "pdu-a=2 ipmi=2");
	/* The bound: every device's first agent before any second. */
	const char *const both[] = { "n1", "n2" };
	g_autoptr(GPtrArray) three = herd_standby_choose(devs, 3, both, 2, 3);
	g_autofree char *t_three = wants_text(three);
	g_assert_cmpstr(t_three, ==, "pdu-a=1 pdu-b=1 ipmi=1");
	g_autoptr(GPtrArray) two = herd_standby_choose(devs, 3, both, 2, 2);
	g_autofree char *t_two = wants_text(two);
	g_assert_cmpstr(t_two, ==, "pdu-a=1 pdu-b=1");
	g_autoptr(GPtrArray) four = herd_standby_choose(devs, 3, both, 2, 4);
	g_autofree char *t_four = wants_text(four);
	g_assert_cmpstr(t_four, ==, "pdu-a=2 pdu-b=1 ipmi=1");
	g_autoptr(GPtrArray) nobody = herd_standby_choose(devs, 3, fence_n9, 1, HERD_STANDBY_MAX);
	g_assert_cmpuint(nobody->len, ==, 0);
	g_autoptr(GPtrArray) nothing = herd_standby_choose(devs, 3, NULL, 0, HERD_STANDBY_MAX);
	g_assert_cmpuint(nothing->len, ==, 0);
	g_autoptr(GPtrArray) no_devices = herd_standby_choose(NULL, 0, fence_n2, 1, HERD_STANDBY_MAX);
	g_assert_cmpuint(no_devices->len, ==, 0);
}

static GPtrArray *wants_of(const char *spec)
{
	/* "device:key=count …" */
	GPtrArray *wants = g_ptr_array_new_with_free_func((GDestroyNotify)herd_standby_want_free);
	g_auto(GStrv) items = g_strsplit(spec, " ", -1);
	for (char **it = items; *it && **it; it++) {
		g_auto(GStrv) a = g_strsplit_set(*it, ":=", 3);
		herd_standby_want *w = g_new0(herd_standby_want, 1);
		*w = (herd_standby_want){ g_strdup(a[0]), g_strdup("fence_x"), g_strdup(a[1]),
					  (unsigned)atoi(a[2]) };
		g_ptr_array_add(wants, w);
	}
	return wants;
}

static char *plan_text(const herd_standby_plan *p)
{
	GString *s = g_string_new("kill");
	for (guint i = 0; i < p->kill->len; i++)
		g_string_append_printf(s, " %u", g_array_index(p->kill, guint, i));
	g_string_append(s, "; spawn");
	for (guint i = 0; i < p->spawn->len; i++)
		g_string_append_printf(s, " %s", ((herd_standby_want *)p->spawn->pdata[i])->device);
	g_string_append_printf(s, "; next %" G_GINT64_FORMAT, p->next_ms);
	return g_string_free(s, FALSE);
}

static char *plan(const char *wants_spec, const herd_standby_have *have, size_t n_have,
		  GHashTable *not_before, int64_t now_ms)
{
	g_autoptr(GPtrArray) wants = wants_of(wants_spec);
	herd_standby_plan p;
	herd_standby_plan_make(&p, wants, have, n_have, not_before, now_ms);
	char *text = plan_text(&p);
	herd_standby_plan_clear(&p);
	return text;
}

static void test_plan(void)
{
	/* From nothing: start what is wanted. */
	g_autofree char *fresh = plan("pdu:u1=2 ipmi:u2=1", NULL, 0, NULL, 0);
	g_assert_cmpstr(fresh, ==, "kill; spawn pdu pdu ipmi; next 0");
	/* All there: nothing to do. */
	const herd_standby_have full[] = { { "pdu", "u1" }, { "ipmi", "u2" }, { "pdu", "u1" } };
	g_autofree char *steady = plan("pdu:u1=2 ipmi:u2=1", full, 3, NULL, 0);
	g_assert_cmpstr(steady, ==, "kill; spawn; next 0");
	/* A device changed (new key): its old agents go, new ones start. */
	g_autofree char *changed = plan("pdu:u1v2=2 ipmi:u2=1", full, 3, NULL, 0);
	g_assert_cmpstr(changed, ==, "kill 0 2; spawn pdu pdu; next 0");
	/* Removed, or fewer wanted (another node coordinates now). */
	g_autofree char *removed = plan("ipmi:u2=1", full, 3, NULL, 0);
	g_assert_cmpstr(removed, ==, "kill 0 2; spawn; next 0");
	g_autofree char *fewer = plan("pdu:u1=1 ipmi:u2=1", full, 3, NULL, 0);
	g_assert_cmpstr(fewer, ==, "kill 2; spawn; next 0");
	g_autofree char *none = plan("", full, 3, NULL, 0);
	g_assert_cmpstr(none, ==, "kill 0 1 2; spawn; next 0");
	/* Held back (after a use, after a death): started once the time comes. */
	g_autoptr(GHashTable) nb = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	int64_t *at = g_new(int64_t, 1);
	*at = 5000;
	g_hash_table_insert(nb, (gpointer) "pdu", at);
	const herd_standby_have one[] = { { "ipmi", "u2" } };
	g_autofree char *held = plan("pdu:u1=2 ipmi:u2=1", one, 1, nb, 3000);
	g_assert_cmpstr(held, ==, "kill; spawn; next 5000");
	g_autofree char *due = plan("pdu:u1=2 ipmi:u2=1", one, 1, nb, 5000);
	g_assert_cmpstr(due, ==, "kill; spawn pdu pdu; next 0");
	/* One of two left after a use: the other waits for its time too. */
	const herd_standby_have half[] = { { "pdu", "u1" }, { "ipmi", "u2" } };
	g_autofree char *half_held = plan("pdu:u1=2 ipmi:u2=1", half, 2, nb, 4000);
	g_assert_cmpstr(half_held, ==, "kill; spawn; next 5000");
}

static void test_backoff(void)
{
	g_assert_cmpint(herd_standby_backoff_ms(0), ==, 0);
	g_assert_cmpint(herd_standby_backoff_ms(1), ==, 1000);
	g_assert_cmpint(herd_standby_backoff_ms(2), ==, 2000);
	g_assert_cmpint(herd_standby_backoff_ms(3), ==, 4000);
	g_assert_cmpint(herd_standby_backoff_ms(7), ==, 60000);
	g_assert_cmpint(herd_standby_backoff_ms(1000), ==, HERD_STANDBY_BACKOFF_MAX_MS);
}

static void test_input(void)
{
	char *params[] = { "ip=10.0.0.9", "community=private", NULL };
	herd_fence_target t = { "pdu", "fence_apc_snmp", params, "2", 1 };
	g_autofree char *off = herd_fence_agent_input(&t, "off");
	g_assert_cmpstr(off, ==, "action=off\nplug=2\nip=10.0.0.9\ncommunity=private\n");
	t.plug = NULL;
	g_autofree char *list = herd_fence_agent_input(&t, "list");
	g_assert_cmpstr(list, ==, "action=list\nip=10.0.0.9\ncommunity=private\n");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/fence-standby/who-keeps-agents", test_who_keeps_agents);
	g_test_add_func("/fence-standby/choose", test_choose);
	g_test_add_func("/fence-standby/plan", test_plan);
	g_test_add_func("/fence-standby/backoff", test_backoff);
	g_test_add_func("/fence-standby/input", test_input);
	return g_test_run();
}
