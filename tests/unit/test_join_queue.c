/*
 * cluster/join_queue.h: when a member may add a joining node, and the queue
 * of joins waiting their turn -- the admission rule on its own, the queue's
 * order, bound and deadlines, and formations played tick by tick (joiners
 * that come up, and joiners that never come) checking that the partition
 * never depends on an absent new node for its majority but in the one join
 * every cluster must risk to grow.
 */
#include "cluster/join_queue.h"

#include <string.h>

static void test_admission(void)
{
#define UP(n, p, na) { .store_ready = true, .nodes = n, .present = p, .new_absent = na }
	static const struct {
		join_facts f;
		join_verdict v;
	} cases[] = {
		/* every listed node up: one join, whatever the count (1 -> 2 too) */
		{ UP(1, 1, 0), JOIN_ADMIT },
		{ UP(3, 3, 0), JOIN_ADMIT },
		/* the store first, then this member's own join under way */
		{ { .nodes = 3, .present = 3 }, JOIN_WAIT_STORE },
		{ { .nodes = 3, .present = 3, .busy = true }, JOIN_WAIT_STORE },
		{ { .store_ready = true, .nodes = 3, .present = 3, .busy = true }, JOIN_WAIT_BUSY },
		/* some absent: one more only if the present stay a majority */
		{ UP(2, 1, 1), JOIN_WAIT_MAJORITY },   /* 1 of 3 */
		{ UP(3, 2, 1), JOIN_WAIT_MAJORITY },   /* 2 of 4 */
		{ UP(4, 3, 1), JOIN_ADMIT },           /* 3 of 5 */
		{ UP(4, 3, 0), JOIN_ADMIT },           /* 3 of 5, one of them off */
		{ UP(5, 3, 2), JOIN_WAIT_MAJORITY },   /* 3 of 6 */
		{ UP(10, 8, 2), JOIN_ADMIT },          /* 8 of 11 */
		{ UP(15, 8, 7), JOIN_WAIT_MAJORITY },  /* 8 of 16 */
		{ UP(14, 8, 6), JOIN_ADMIT },          /* 8 of 15 */
		/* short of a majority with no new node on its way (the absent
		 * are nodes that were up): waiting would not help */
		{ UP(2, 1, 0), JOIN_REFUSE_MAJORITY }, /* 1 of 3 */
		{ UP(5, 3, 0), JOIN_REFUSE_MAJORITY }, /* 3 of 6 */
		{ UP(5, 3, 1), JOIN_WAIT_MAJORITY },
	};
#undef UP
	for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_test_message("case %u: %u of %u present", i, cases[i].f.present, cases[i].f.nodes);
		g_assert_cmpint(join_admission(&cases[i].f), ==, cases[i].v);
	}
}

static void test_reasons(void)
{
	join_facts f = { .store_ready = true, .nodes = 5, .present = 3, .new_absent = 2 };
	g_autofree char *majority = join_wait_reason(JOIN_WAIT_MAJORITY, &f);
	g_assert_cmpstr(majority, ==,
			"3 of the cluster's 5 nodes are up; one more node added now would leave this "
			"partition without a majority if it did not come up");
	g_autofree char *busy = join_wait_reason(JOIN_WAIT_BUSY, &f);
	g_assert_nonnull(strstr(busy, "join before it"));
}

static void test_queue(void)
{
	join_queue *q = join_queue_new();
	int items[JOIN_QUEUE_MAX + 1];
	join_facts go = { .store_ready = true, .nodes = 3, .present = 3 };
	join_facts wait = { .store_ready = true, .nodes = 3, .present = 3, .busy = true };
	for (int i = 0; i < JOIN_QUEUE_MAX; i++)
		g_assert_true(join_queue_push(q, &items[i], 1000 + i));
	/* bounded */
	g_assert_false(join_queue_push(q, &items[JOIN_QUEUE_MAX], 5000));
	g_assert_cmpuint(join_queue_length(q), ==, JOIN_QUEUE_MAX);
	/* nothing while the facts say wait */
	int64_t deadline = 0;
	join_verdict why;
	g_assert_null(join_queue_next(q, &wait, &deadline, &why));
	g_assert_cmpint(why, ==, JOIN_WAIT_BUSY);
	/* first come, first served; a refused one goes back to the head with
	 * its deadline */
	g_assert_true(join_queue_next(q, &go, &deadline, &why) == &items[0]);
	g_assert_cmpint(why, ==, JOIN_ADMIT);
	g_assert_cmpint(deadline, ==, 1000);
	join_queue_push_front(q, &items[0], deadline);
	g_assert_true(join_queue_next(q, &go, &deadline, &why) == &items[0]);
	g_assert_cmpint(deadline, ==, 1000);
	g_assert_true(join_queue_next(q, &go, &deadline, &why) == &items[1]);
	/* deadlines: those due by now go, oldest first, the rest stay */
	g_autoptr(GPtrArray) expired = g_ptr_array_new();
	join_queue_expire(q, 1004, expired);
	g_assert_cmpuint(expired->len, ==, 3);
	g_assert_true(expired->pdata[0] == &items[2]);
	g_assert_true(expired->pdata[2] == &items[4]);
	g_assert_true(join_queue_next(q, &go, &deadline, &why) == &items[5]);
	g_assert_cmpuint(join_queue_length(q), ==, JOIN_QUEUE_MAX - 6);
	/* short of a majority with nothing on its way: the head is taken, to
	 * be refused */
	join_facts short_of = { .store_ready = true, .nodes = 5, .present = 3 };
	g_assert_true(join_queue_next(q, &short_of, &deadline, &why) == &items[6]);
	g_assert_cmpint(why, ==, JOIN_REFUSE_MAJORITY);
	join_queue_free(q);
	join_queue_free(NULL);
}

/* A joiner admitted at tick @added: up (in the group, synced) from
 * @added + @up_after on, or never. */
typedef struct {
	int64_t added;
	bool never;
} joiner;

typedef struct {
	unsigned members;        /* up before the joins (the created cluster) */
	unsigned joins;
	unsigned up_after;       /* ticks from added to up */
	unsigned never_from;     /* joiners from this one on never come (0: all come) */
	int64_t wait;            /* a join's deadline, ticks after it was queued */
} formation;

typedef struct {
	unsigned joined, expired, max_absent;
	int64_t ticks;
	join_verdict last_wait;
	join_facts last_facts;
} outcome;

/* Play @fm tick by tick: each tick the joiners due come up, those waiting
 * too long expire, and at most one is admitted (it is committed within
 * the tick).  Checks the rule's promise at every admission. */
static outcome play(const formation *fm)
{
	join_queue *q = join_queue_new();
	joiner *j = g_new0(joiner, fm->joins);
	outcome out = { 0 };
	for (unsigned i = 0; i < fm->joins; i++) {
		j[i].added = -1;
		j[i].never = fm->never_from && i + 1 >= fm->never_from;
		g_assert_true(join_queue_push(q, &j[i], fm->wait));
	}
	unsigned nodes = fm->members;
	for (int64_t now = 0; now < 100000 && join_queue_length(q) > 0; now++) {
		g_autoptr(GPtrArray) expired = g_ptr_array_new();
		join_queue_expire(q, now, expired);
		out.expired += expired->len;
		join_facts f = { .store_ready = true, .nodes = nodes, .present = fm->members };
		for (unsigned i = 0; i < fm->joins; i++) {
			bool up = j[i].added >= 0 && !j[i].never && now >= j[i].added + fm->up_after;
			f.present += up;
			f.new_absent += j[i].added >= 0 && !up;
		}
		/* The store's primary rule holds whenever no absent node is new
		 * (or there is one new node of a cluster that was all up). */
		int64_t deadline;
		join_verdict why;
		joiner *next = join_queue_next(q, &f, &deadline, &why);
		/* every absent node here is a new one, on its way */
		g_assert_cmpint(why, !=, JOIN_REFUSE_MAJORITY);
		if (!next) {
			out.last_wait = why;
			out.last_facts = f;
			continue;
		}
		bool all_up = f.present == f.nodes;
		next->added = now;
		nodes++;
		out.joined++;
		out.max_absent = MAX(out.max_absent, nodes - f.present);
		/* With any other node absent, the partition keeps a majority of
		 * the longer list even if none of the absent ever comes. */
		if (!all_up)
			g_assert_cmpuint(2 * f.present, >, nodes);
		out.ticks = now;
	}
	join_queue_free(q);
	g_free(j);
	return out;
}

static void test_formation_all_come(void)
{
	/* 15 joins at once to a cluster of one: all added, in rounds that
	 * grow as the cluster does (more than one new node absent at once
	 * once enough are up), without a deadline reached. */
	formation fm = { .members = 1, .joins = 15, .up_after = 20, .wait = 100000 };
	outcome o = play(&fm);
	g_assert_cmpuint(o.joined, ==, 15);
	g_assert_cmpuint(o.expired, ==, 0);
	g_assert_cmpuint(o.max_absent, >, 1);
	/* one after another would take 15 × 20 ticks */
	g_test_message("15 joins in %" G_GINT64_FORMAT " ticks, at most %u new nodes absent at once",
		       o.ticks, o.max_absent);
	g_assert_cmpint(o.ticks, <, 15 * 20);

	/* 30 joins to three */
	formation big = { .members = 3, .joins = 29, .up_after = 5, .wait = 100000 };
	o = play(&big);
	g_assert_cmpuint(o.joined, ==, 29);
}

static void test_formation_never_come(void)
{
	/* Three up; the joiners never come.  Two are added (3 of 4, then 3 of
	 * 5: the three still a majority), the rest wait and expire saying
	 * why; the partition never needs one of the new nodes. */
	formation fm = { .members = 3, .joins = 6, .up_after = 1, .never_from = 1, .wait = 50 };
	outcome o = play(&fm);
	g_assert_cmpuint(o.joined, ==, 2);
	g_assert_cmpuint(o.expired, ==, 4);
	g_assert_cmpint(o.last_wait, ==, JOIN_WAIT_MAJORITY);
	g_assert_cmpuint(o.last_facts.present, ==, 3);
	g_assert_cmpuint(o.last_facts.nodes, ==, 5);

	/* A cluster of one: the first joiner is the one risk (1 of 2, as a
	 * join one after another always was); while it is away nothing more
	 * is added. */
	formation one = { .members = 1, .joins = 3, .up_after = 1, .never_from = 1, .wait = 50 };
	o = play(&one);
	g_assert_cmpuint(o.joined, ==, 1);
	g_assert_cmpuint(o.expired, ==, 2);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/join_queue/admission", test_admission);
	g_test_add_func("/join_queue/reasons", test_reasons);
	g_test_add_func("/join_queue/queue", test_queue);
	g_test_add_func("/join_queue/formation-all-come", test_formation_all_come);
	g_test_add_func("/join_queue/formation-never-come", test_formation_never_come);
	return g_test_run();
}
