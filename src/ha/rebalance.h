/*
 * Automatic rebalancing (pure: no I/O, time passed in).
 *
 * The imbalance of a cluster is the spread of its online nodes' fullness,
 * by the scheduler's own measure (sched_fullness(): the larger of a node's
 * memory and vCPU shares): the fullest node's less the emptiest's, in
 * percentage points.  When it has stayed at or above threshold_pct for
 * hold_ms, rebalance_compute() picks up to max_moves live moves, one after
 * the other, each the one that lowers the imbalance most — and each by at
 * least min_gain_pct points, or it stops.  A move is only one the
 * scheduler itself would allow (sched_place_away(): room, needs, fencing,
 * strict rules) and that it would not undo: with the move made, the plan
 * moves nothing back (a preferred node's failback, a rule it would mend).
 *
 * Only VMs that run steadily where they are assigned move (not sticky, no
 * move under way, no live migration given up).  The caller keeps
 * rebalance_state between calls; a new coordinator starts it afresh (the
 * hold begins again).
 */
#pragma once

#include "ha/sched.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
	unsigned threshold_pct;  /* imbalance (points) that starts the hold */
	int64_t hold_ms;         /* how long it must last */
	unsigned min_gain_pct;   /* the least a move must lower it by (points) */
	unsigned max_moves;      /* moves at a time */
} rebalance_settings;

typedef struct {
	int64_t above_since_ms;  /* when the imbalance reached the threshold; 0: it is below */
} rebalance_state;

typedef struct {
	const char *vm;          /* uuid (borrowed from the input) */
	const char *name;
	const char *from, *to;   /* borrowed from the input */
	double before_pct;       /* the imbalance before and after this move */
	double after_pct;
} rebalance_move;

typedef struct {
	double imbalance_pct;    /* now */
	const char *fullest;     /* nodes, or NULL (fewer than two online) */
	const char *emptiest;
	bool due;                /* above the threshold for the hold time */
	int64_t due_in_ms;       /* not due yet but above: how long until it is; else 0 */
	GArray *moves;           /* rebalance_move, in order; empty if not due */
} rebalance_plan;

/*
 * Judge @in at @now_ms.  @st (updated) holds since when the imbalance has
 * been above the threshold; NULL: judged as if it had been long enough
 * (herd simulate --rebalance).  @may_move false (the cluster is not
 * settled: the plan has actions), or a VM moving (move_to: moves are made
 * a few at a time, the next once they are over): only @st is updated, no
 * move.  A moving VM counts at its destination.
 */
rebalance_plan *rebalance_compute(const sched_input *in, const rebalance_settings *s, rebalance_state *st,
				  int64_t now_ms, bool may_move);
void rebalance_plan_free(rebalance_plan *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(rebalance_plan, rebalance_plan_free)
