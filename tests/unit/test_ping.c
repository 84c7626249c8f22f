/* ha/ping: rounds of echoes in, a dampened verdict per ping node out. */
#include "common/json.h"
#include "ha/ping.h"

#include <string.h>

static const char *const two[] = { "192.0.2.1", "192.0.2.2" };

static bool lost(herd_ping *p)
{
	g_autoptr(json_t) j = herd_ping_json(p);
	return json_is_true(json_object_get(j, "lost"));
}

/* No ping node: nothing to say, and the node is not cut off. */
static void test_none(void)
{
	g_autoptr(herd_ping) p = herd_ping_new();
	g_assert_true(herd_ping_reaches(p));
	g_assert_null(herd_ping_json(p));
	g_assert_false(herd_ping_configure(p, NULL, 0, 0));
}

/* One lost echo, or a few within the dampening time, change nothing; a
 * silence that lasts it does, and so does an answer that lasts it. */
static void test_dampening(void)
{
	g_autoptr(herd_ping) p = herd_ping_new();
	g_assert_true(herd_ping_configure(p, two, 1, 0));
	bool yes = true, no = false;
	g_assert_false(herd_ping_round(p, &yes, 1000, 5000));
	g_assert_false(herd_ping_round(p, &no, 2000, 5000));
	g_assert_false(herd_ping_round(p, &yes, 3000, 5000));
	g_assert_true(herd_ping_reaches(p));
	for (int64_t t = 4000; t < 9000; t += 1000) {
		g_assert_false(herd_ping_round(p, &no, t, 5000));
		g_assert_true(herd_ping_reaches(p));
	}
	g_assert_true(herd_ping_round(p, &no, 9000, 5000));
	g_assert_false(herd_ping_reaches(p));
	g_assert_true(lost(p));
	/* Back: one answer is not enough either. */
	g_assert_false(herd_ping_round(p, &yes, 10000, 5000));
	g_assert_false(herd_ping_round(p, &no, 11000, 5000));
	g_assert_false(herd_ping_reaches(p));
	for (int64_t t = 12000; t < 17000; t += 1000)
		g_assert_false(herd_ping_round(p, &yes, t, 5000));
	g_assert_true(herd_ping_round(p, &yes, 17000, 5000));
	g_assert_true(herd_ping_reaches(p));
	/* Without dampening, the first round decides. */
	g_assert_true(herd_ping_round(p, &no, 18000, 0));
	g_assert_false(herd_ping_reaches(p));
}

/* The node reaches the world while any ping node answers. */
static void test_any(void)
{
	g_autoptr(herd_ping) p = herd_ping_new();
	herd_ping_configure(p, two, 2, 0);
	bool first_only[] = { true, false }, none[] = { false, false };
	herd_ping_round(p, first_only, 0, 1000);
	g_assert_true(herd_ping_round(p, first_only, 1000, 1000));
	g_assert_true(herd_ping_reaches(p));
	g_autoptr(json_t) j = herd_ping_json(p);
	g_autofree char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	g_assert_cmpstr(text, ==, "{\"lost\":false,\"targets\":{\"192.0.2.1\":true,\"192.0.2.2\":false}}");
	herd_ping_round(p, none, 2000, 1000);
	g_assert_true(herd_ping_round(p, none, 3000, 1000));
	g_assert_true(lost(p));
}

/* A ping node kept in a new list keeps its verdict; a new one counts as
 * reached until its silence has lasted the dampening time. */
static void test_reconfigure(void)
{
	g_autoptr(herd_ping) p = herd_ping_new();
	herd_ping_configure(p, two, 1, 0);
	bool no = false;
	herd_ping_round(p, &no, 0, 1000);
	herd_ping_round(p, &no, 1000, 1000);
	g_assert_true(lost(p));
	const char *const swapped[] = { "192.0.2.2", "192.0.2.1" };
	g_assert_true(herd_ping_configure(p, swapped, 2, 1000));
	g_assert_false(herd_ping_configure(p, swapped, 2, 1500));
	size_t n;
	const char *const *t = herd_ping_targets(p, &n);
	g_assert_cmpuint(n, ==, 2);
	g_assert_cmpstr(t[0], ==, "192.0.2.2");
	g_assert_cmpstr(t[1], ==, "192.0.2.1");
	g_assert_true(herd_ping_reaches(p));
	g_autoptr(json_t) j = herd_ping_json(p);
	g_assert_true(json_is_false(json_object_get(json_object_get(j, "targets"), "192.0.2.1")));
	g_assert_true(json_is_true(json_object_get(json_object_get(j, "targets"), "192.0.2.2")));
	g_assert_true(herd_ping_configure(p, NULL, 0, 2000));
	g_assert_null(herd_ping_json(p));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ping/none", test_none);
	g_test_add_func("/ping/dampening", test_dampening);
	g_test_add_func("/ping/any", test_any);
	g_test_add_func("/ping/reconfigure", test_reconfigure);
	return g_test_run();
}
