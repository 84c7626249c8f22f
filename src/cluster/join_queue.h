/*
 * The joins a member was asked for, waiting their turn (the pure core of
 * admission.c, the member's side of a join: no I/O, the time passed in).
 *
 * A join adds a node to the node list before that node is up, so the
 * partition's majority (the store's primary rule: more than half of the
 * listed nodes in the group) must hold without it.  A member therefore adds
 * a node only when its store is synced and primary, no other join of its
 * own is being committed, and either every listed node is up (the one join
 * every cluster must risk to grow, as one after another always did) or the
 * partition keeps its majority even if none of the nodes listed and not up
 * ever comes.  Joins that must wait queue here, first come first served,
 * each until its deadline; the member re-checks as the facts change.  When
 * the majority is short and no node added lately is on its way (the
 * absent are nodes that were up: off, or lost), waiting would not help,
 * and the join is refused at once.
 * Joins sent to other members at the same time are kept apart by the store
 * (one node-list change at a time, src/store/replica.c): a refused one
 * comes back to the head of its queue and is tried again.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* Joins one member holds waiting at most (a cluster has 32 nodes at most). */
#define JOIN_QUEUE_MAX 64

/* What a member knows when a join is to be admitted. */
typedef struct join_facts {
	bool store_ready;   /* its store is synced and its partition primary */
	unsigned nodes;     /* nodes in the node list */
	unsigned present;   /* of them, in the group (their herd is up and in it) */
	unsigned new_absent; /* of the absent, nodes added lately, on their way */
	bool busy;          /* a join through this member is being committed */
} join_facts;

typedef enum {
	JOIN_ADMIT,         /* add the next node now */
	JOIN_WAIT_BUSY,     /* the previous join through this member is not done */
	JOIN_WAIT_STORE,    /* the store is syncing, or the partition not primary */
	JOIN_WAIT_MAJORITY, /* one more absent node could cost the majority */
	JOIN_REFUSE_MAJORITY, /* …and no node added lately is on its way */
} join_verdict;

/* May a node be added now? */
join_verdict join_admission(const join_facts *f);

/* Why a join waits or is refused, as a clause for the operator (g_free),
 * for a verdict other than JOIN_ADMIT and JOIN_WAIT_STORE (the store says
 * why then). */
char *join_wait_reason(join_verdict v, const join_facts *f);

typedef struct join_queue join_queue;

join_queue *join_queue_new(void);
/* Frees the queue, not its items. */
void join_queue_free(join_queue *q);
unsigned join_queue_length(const join_queue *q);
/* Queue @item at the tail, due by @deadline_ms; false if JOIN_QUEUE_MAX wait. */
bool join_queue_push(join_queue *q, gpointer item, int64_t deadline_ms);
/* Put @item, taken by join_queue_next(), back at the head (it was refused
 * and is tried again), keeping its @deadline_ms. */
void join_queue_push_front(join_queue *q, gpointer item, int64_t deadline_ms);
/* Take out the items whose deadline is not after @now_ms, oldest first,
 * appending them to @expired. */
void join_queue_expire(join_queue *q, int64_t now_ms, GPtrArray *expired);
/* The head item if @f admits a join or refuses it (taken out; its
 * deadline in *@deadline_ms; the verdict, JOIN_ADMIT or
 * JOIN_REFUSE_MAJORITY, in *@why), else NULL with the verdict in *@why. */
gpointer join_queue_next(join_queue *q, const join_facts *f, int64_t *deadline_ms, join_verdict *why);
