/* ha/links: every node's view of its heartbeat links in its STATUS, and
 * the alerts the coordinator makes of them. */
#include "common/json.h"
#include "ha/facts.h"
#include "ha/links.h"

#include <string.h>

/* {"link":L,"connected":c} for each of @n links: @states "ud" = 0 up, 1 down. */
static json_t *links(const char *states)
{
	json_t *out = json_array();
	for (int i = 0; states[i]; i++)
		json_array_append_new(out, json_pack("{s:i,s:b}", "link", i, "connected", states[i] == 'u'));
	return out;
}

static json_t *alerts_of(const char *views_json)
{
	g_autoptr(json_t) views = json_loads(views_json, 0, NULL);
	g_assert_nonnull(views);
	return herd_link_alerts(views);
}

/* A view: node -> {peer: "ud"} written compactly, expanded here. */
static json_t *views3(const char *n1n2, const char *n1n3, const char *n2n1, const char *n2n3,
		      const char *n3n1, const char *n3n2)
{
	return json_pack("{s:{s:o,s:o},s:{s:o,s:o},s:{s:o,s:o}}", "n1", "n2", links(n1n2), "n3",
			 links(n1n3), "n2", "n1", links(n2n1), "n3", links(n2n3), "n3", "n1",
			 links(n3n1), "n2", links(n3n2));
}

static void test_all_up(void)
{
	g_autoptr(json_t) v = views3("uu", "uu", "uu", "uu", "uu", "uu");
	g_autoptr(json_t) a = herd_link_alerts(v);
	g_assert_cmpuint(json_array_size(a), ==, 0);
	/* No views, or a single link each, all up: nothing either. */
	g_autoptr(json_t) none = alerts_of("{}");
	g_assert_cmpuint(json_array_size(none), ==, 0);
	g_autoptr(json_t) single = views3("u", "u", "u", "u", "u", "u");
	g_autoptr(json_t) b = herd_link_alerts(single);
	g_assert_cmpuint(json_array_size(b), ==, 0);
}

/* Two links, one down between n2 and n3 as both see it: one alert for the
 * pair, no spare left. */
static void test_last_link(void)
{
	g_autoptr(json_t) v = views3("uu", "uu", "uu", "du", "uu", "du");
	g_autoptr(json_t) a = herd_link_alerts(v);
	g_assert_cmpuint(json_array_size(a), ==, 1);
	json_t *x = json_array_get(a, 0);
	g_assert_cmpstr(json_string_value(json_object_get(x, "kind")), ==, "link_last");
	g_assert_cmpstr(json_string_value(json_object_get(x, "severity")), ==, "warning");
	g_assert_cmpstr(json_string_value(json_object_get(x, "node")), ==, "n2");
	g_autofree char *nodes = json_dumps(json_object_get(x, "nodes"), JSON_COMPACT);
	g_assert_cmpstr(nodes, ==, "[\"n2\",\"n3\"]");
	g_autofree char *down = json_dumps(json_object_get(x, "links"), JSON_COMPACT);
	g_assert_cmpstr(down, ==, "[0]");
	const char *m = json_string_value(json_object_get(x, "message"));
	g_assert_nonnull(strstr(m, "Only link 1 is left between nodes n2 and n3"));
	g_assert_nonnull(strstr(m, "link 0 down, as n2 and n3 see it"));
}

/* Three links, one seen down by one side only: still down; the others go on. */
static void test_one_of_three(void)
{
	g_autoptr(json_t) v = views3("uuu", "uuu", "uuu", "uuu", "uuu", "udu");
	g_autoptr(json_t) a = herd_link_alerts(v);
	g_assert_cmpuint(json_array_size(a), ==, 1);
	json_t *x = json_array_get(a, 0);
	g_assert_cmpstr(json_string_value(json_object_get(x, "kind")), ==, "link_down");
	const char *m = json_string_value(json_object_get(x, "message"));
	g_assert_cmpstr(m, ==, "Heartbeat link 1 between nodes n2 and n3 is down, as n3 sees it; "
			       "the heartbeat goes on over links 0 and 2.");
}

/* Every link down between two members (a moment before corosync acts):
 * critical.  Sorted by pair. */
static void test_all_down_sorted(void)
{
	g_autoptr(json_t) v = views3("dd", "ud", "dd", "uu", "du", "uu");
	g_autoptr(json_t) a = herd_link_alerts(v);
	g_assert_cmpuint(json_array_size(a), ==, 2);
	json_t *x = json_array_get(a, 0), *y = json_array_get(a, 1);
	g_assert_cmpstr(json_string_value(json_object_get(x, "kind")), ==, "links_down");
	g_assert_cmpstr(json_string_value(json_object_get(x, "severity")), ==, "critical");
	g_assert_nonnull(strstr(json_string_value(json_object_get(x, "message")),
				"No heartbeat link connects nodes n1 and n2 (links 0 and 1 down"));
	/* n1 sees link 1 to n3 down, n3 sees link 0 to n1 down: none left. */
	g_assert_cmpstr(json_string_value(json_object_get(y, "kind")), ==, "links_down");
	g_autofree char *nodes = json_dumps(json_object_get(y, "nodes"), JSON_COMPACT);
	g_assert_cmpstr(nodes, ==, "[\"n1\",\"n3\"]");
}

/* A peer without a view of its own (lost, or not in the group): its pair
 * is another alert's business.  Bad input: ignored, not trusted. */
static void test_peer_without_view_and_bad_input(void)
{
	g_autoptr(json_t) a = alerts_of("{\"n1\":{\"n2\":[{\"link\":0,\"connected\":false}]}}");
	g_assert_cmpuint(json_array_size(a), ==, 0);
	g_autoptr(json_t) b = alerts_of("{\"n1\":{\"n2\":[{\"link\":99,\"connected\":false},"
					"{\"link\":\"x\"},7,{\"link\":0,\"connected\":true}]},"
					"\"n2\":{\"n1\":\"junk\",\"n1\":[]},\"n3\":[]}");
	g_assert_cmpuint(json_array_size(b), ==, 0);
}

/* A node's view goes in its STATUS, changes wake the engine, and
 * herd_facts_links() gives every fresh node's view. */
static void test_in_status(void)
{
	herd_facts *facts = herd_facts_new();
	g_autoptr(json_t) mine = json_pack("{s:o}", "n1", links("uu"));
	herd_node_report r = { .name = "n2", .resources = { 1024, 512, 1 }, .virt_ok = true,
			       .links = mine };
	size_t len;
	bool changed = false;
	g_autofree char *p1 = herd_facts_encode(&r, &len);
	g_assert_true(herd_facts_update(facts, 2, p1, len, 0, &changed));
	g_assert_true(changed);
	g_autoptr(json_t) all = herd_facts_links(facts);
	g_autofree char *text = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
	g_assert_cmpstr(text, ==, "{\"n2\":{\"n1\":[{\"connected\":true,\"link\":0},"
				  "{\"connected\":true,\"link\":1}]}}");
	/* A link goes down: news for the engine (its coordinator alerts). */
	json_object_set_new(mine, "n1", links("ud"));
	g_autofree char *p2 = herd_facts_encode(&r, &len);
	g_assert_true(herd_facts_update(facts, 2, p2, len, 0, &changed));
	g_assert_true(changed);
	/* Not fresh after a membership change: left out. */
	herd_facts_new_round(facts);
	g_autoptr(json_t) stale = herd_facts_links(facts);
	g_assert_cmpuint(json_object_size(stale), ==, 0);
	herd_facts_free(facts);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/links/all-up", test_all_up);
	g_test_add_func("/links/last-link", test_last_link);
	g_test_add_func("/links/one-of-three", test_one_of_three);
	g_test_add_func("/links/all-down-sorted", test_all_down_sorted);
	g_test_add_func("/links/peer-without-view", test_peer_without_view_and_bad_input);
	g_test_add_func("/links/in-status", test_in_status);
	return g_test_run();
}
