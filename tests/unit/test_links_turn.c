/*
 * cluster/links_turn.h: the peers of one round of link questions -- all of
 * them while they fit a round, else in turn by node id, every peer once in
 * ceil(n / max) rounds, through changes of the peers asked about and in
 * whatever order they are given.
 */
#include "cluster/links_turn.h"

#include <glib.h>

/* The rounds until every id of @ids was taken once, from a fresh start. */
static unsigned rounds_to_cover(const uint32_t *ids, size_t n, size_t max)
{
	uint32_t next = 0, out[64];
	g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	unsigned rounds = 0;
	while (g_hash_table_size(seen) < n) {
		size_t k = links_turn(ids, n, &next, max, out);
		g_assert_cmpuint(k, ==, MIN(n, max));
		for (size_t i = 0; i < k; i++)
			g_hash_table_add(seen, GUINT_TO_POINTER(out[i]));
		rounds++;
		g_assert_cmpuint(rounds, <=, n);
	}
	return rounds;
}

/* One round: exactly the ids given (in that order), and *@next after it. */
static void expect_round(const uint32_t *ids, size_t n, uint32_t *next, size_t max,
			 uint32_t want_next, const uint32_t *want, size_t n_want)
{
	uint32_t out[64];
	g_assert_cmpuint(links_turn(ids, n, next, max, out), ==, n_want);
	for (size_t i = 0; i < n_want; i++)
		g_assert_cmpuint(out[i], ==, want[i]);
	g_assert_cmpuint(*next, ==, want_next);
}
#define ROUND(ids, n, next, max, want_next, ...)                                      \
	expect_round(ids, n, next, max, want_next, (const uint32_t[]){ __VA_ARGS__ }, \
		     sizeof((const uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))

static void test_all_fit(void)
{
	const uint32_t ids[] = { 2, 3, 5 };
	uint32_t next = 0, out[8];
	for (int round = 0; round < 3; round++) {
		g_assert_cmpuint(links_turn(ids, 3, &next, 4, out), ==, 3);
		/* every round the same three, whatever *next says */
		g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
		for (int i = 0; i < 3; i++)
			g_hash_table_add(seen, GUINT_TO_POINTER(out[i]));
		g_assert_cmpuint(g_hash_table_size(seen), ==, 3);
	}
	g_assert_cmpuint(links_turn(ids, 0, &next, 4, out), ==, 0);
}

static void test_in_turn(void)
{
	/* 31 peers of node 1 in a cluster of 32, 4 a round */
	uint32_t ids[31];
	for (uint32_t i = 0; i < 31; i++)
		ids[i] = i + 2;
	uint32_t next = 0;
	ROUND(ids, 31, &next, 4, 6, 2, 3, 4, 5);
	ROUND(ids, 31, &next, 4, 10, 6, 7, 8, 9);
	/* the end wraps to the start */
	next = 31;
	ROUND(ids, 31, &next, 4, 4, 31, 32, 2, 3);
	g_assert_cmpuint(rounds_to_cover(ids, 31, 4), ==, 8);
	g_assert_cmpuint(rounds_to_cover(ids, 8, 4), ==, 2);
	g_assert_cmpuint(rounds_to_cover(ids, 5, 4), ==, 2);
}

static void test_peers_change(void)
{
	/* the next id left (a node removed): the turn goes on from the one after */
	const uint32_t before[] = { 2, 3, 4, 5, 6, 7 };
	const uint32_t after[] = { 2, 3, 4, 6, 7 };
	uint32_t next = 0;
	ROUND(before, 6, &next, 4, 6, 2, 3, 4, 5);
	next = 5;
	ROUND(after, 5, &next, 4, 4, 6, 7, 2, 3);
	/* a next beyond every id starts again at the lowest */
	next = 99;
	ROUND(after, 5, &next, 4, 7, 2, 3, 4, 6);
}

static void test_any_order(void)
{
	/* as the peers come out of a hash table */
	const uint32_t ids[] = { 7, 2, 5, 3 };
	uint32_t next = 0;
	ROUND(ids, 4, &next, 2, 4, 2, 3);
	ROUND(ids, 4, &next, 2, 8, 5, 7);
	ROUND(ids, 4, &next, 2, 4, 2, 3);
	g_assert_cmpuint(rounds_to_cover(ids, 4, 2), ==, 2);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/links_turn/all-fit", test_all_fit);
	g_test_add_func("/links_turn/in-turn", test_in_turn);
	g_test_add_func("/links_turn/peers-change", test_peers_change);
	g_test_add_func("/links_turn/any-order", test_any_order);
	return g_test_run();
}
