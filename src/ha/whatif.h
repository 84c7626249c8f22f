/*
 * What if: the shipped scheduler run on a hypothetical, as crm_simulate does
 * for Pacemaker.  `herd simulate --node-down n2 --standby n1` takes the live
 * state (the sched_input the coordinator builds), cuts the power of some
 * nodes and puts others in standby, and then plays the cluster forward with
 * sched_plan_compute() round after round — fencing, restarting, evacuating —
 * until nothing changes.  The answer: where each VM would go, or why it would
 * stay down, and whether N+1 would still hold.  Pure: no I/O, no clock;
 * nothing of the input is changed.
 *
 * How herd's steps are modelled (whatif.c has the details):
 *   - a node that goes down leaves the ring and its herd stops reporting: its
 *     VMs are no longer seen there; it is lost until it is fenced;
 *   - FENCE: the node is down (the agent confirmed it) if a fence device
 *     covers it or lab_mode; else it stays lost and its VMs wait;
 *   - ASSIGN: the VM gets that node and is seen running there (started);
 *   - MOVE: its node stops it (no longer seen there); the next round's
 *     ASSIGN places it;
 *   - RELEASE: no node is assigned; CLEAR_DOWN: nothing (no node comes back).
 * Time is skipped: a VM started during the what-if counts as steady at once,
 * so a failback that would follow after failback_after_s shows in the end;
 * so does whatever the live plan would still do anyway (a pending start or
 * failback).  A node awaited after a cold start stays awaited (it may join
 * yet) unless the hypothesis cuts its power.
 *
 * Cost: one plan per round, usually three rounds (fence, restart, settle),
 * and the N+1 check of the end state.
 */
#pragma once

#include "ha/sched.h"

#include <glib.h>
#include <stdbool.h>

/* At most this many plans are made by default; a what-if that still
 * changes something then says so (settled is false). */
#define SCHED_WHATIF_MAX_ROUNDS 32

/* The hypothetical.  Names are borrowed; each must name a node of the input.
 * A node may be in both lists. */
typedef struct sched_hypothesis {
	const char *const *node_down;  /* nodes whose power is cut */
	size_t n_node_down;
	const char *const *standby;    /* nodes put in standby mode */
	size_t n_standby;
	unsigned max_rounds;           /* 0: SCHED_WHATIF_MAX_ROUNDS */
} sched_hypothesis;

/* One VM the what-if reports: it is to be running and it moves, or ends up
 * not running (also one that does not run in the live state either), or its
 * node is one the hypothesis names (a VM that stays there says why). */
typedef struct sched_whatif_vm {
	char *uuid;
	char *name;
	char *node_before;       /* its assigned node in the input, or NULL */
	char *node_after;        /* where it runs at the end, or NULL: nowhere */
	store_vm_priority priority; /* its restart priority: the list is in the
				  * order VMs start in (priority, then name) */
	char *reason;            /* the scheduler's words: the action's reason when
				  * it went somewhere ("its node is down"), else its
				  * alert ("VM web1 cannot be started: …"), else the
				  * alert of its node ("Node n2 is lost and no fence
				  * device covers it: …"), else the reason of an
				  * action still pending (a what-if that did not
				  * settle); NULL if none was given */
} sched_whatif_vm;

/*
 * The outcome.  Owns every string and array in it (nothing points into the
 * input, which may be freed first); free with sched_whatif_result_free().
 */
typedef struct sched_whatif_result {
	GPtrArray *vms;          /* sched_whatif_vm *, by restart priority, name, uuid */
	GPtrArray *fenced;       /* char *: nodes fenced during the what-if, in order */
	GPtrArray *node_alerts;  /* char *: the last plan's alerts about nodes
				  * (e.g. a lost node no fence device covers) */
	unsigned rounds;         /* plans made */
	bool settled;            /* the last plan changed nothing */
	char *unsettled;         /* why not, when !settled (else NULL) */
	bool n_plus_1;           /* N+1 holds in the end state (whatever the
				  * admission setting) */
	char *n_plus_1_detail;   /* when it does not: the scheduler's sentence */
	size_t n_nodes;
	char **node_names;       /* n_nodes, in the order of the input */
	unsigned *unsafe_if_lost; /* n_nodes: sched_plan's count in the end state */
} sched_whatif_result;

/*
 * Play @h forward on @in with the real scheduler (@h NULL: nothing
 * hypothetical, only what the live plan would still do).  NULL with @error
 * set (HERD_ERR_INVALID, "Node 'n9' is not a node of the cluster.") when @h
 * names a node @in does not have.
 */
sched_whatif_result *sched_whatif(const sched_input *in, const sched_hypothesis *h, GError **error);
void sched_whatif_result_free(sched_whatif_result *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sched_whatif_result, sched_whatif_result_free)
