/*
 * The HA coordinator.  One node coordinates: the lowest node id among the
 * herdd processes of a quorate partition.  It builds the scheduler's input
 * from the replicated configuration, the nodes' facts and corosync's view of
 * who is alive, computes the plan, and carries it out: assignments become
 * store commands (which every node applies in the same order, so the node
 * agents act on them), lost nodes are fenced, and a successful fence is
 * recorded together with the reassignments it allows, in one round.
 *
 * It keeps no decision of its own between runs — only what is under way
 * (commits, fences, retry pauses) — so a new coordinator picks up from the
 * facts.  No I/O: commands, fences and timers go through its io callbacks.
 */
#pragma once

#include "ha/facts.h"
#include "ha/rebalance.h"
#include "ha/sched.h"
#include "store/settings.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct herd_coord herd_coord;

/* What the coordinator looks at. */
typedef struct herd_coord_view {
	store_state *st;
	herd_facts *facts;
	const uint32_t *ring;     /* nodes corosync sees (alive) */
	size_t n_ring;
	const uint32_t *group;    /* nodes whose herdd is in the group */
	size_t n_group;
	uint32_t self;
	bool quorate;             /* votequorum: this partition may act */
	bool store_writable;      /* the replica accepts changes */
	GHashTable *departures;   /* node id -> why its herd left the group, as it
				   * said when leaving (see herd_cluster_departures());
				   * may be NULL */
	json_t *check_alerts;     /* the alerts of the latest herd check (ha/check.h), or NULL */
	int64_t now_ms;
} herd_coord_view;

typedef struct herd_coord_io {
	/* Submit a store command; herd_coord_committed() follows unless false. */
	bool (*submit)(gpointer user, json_t *cmd);
	/* Fence @node; herd_coord_fenced() follows. */
	void (*fence)(gpointer user, const char *node);
	/* Run again in @delay_ms. */
	void (*wakeup)(gpointer user, int64_t delay_ms);
	/* The alerts or the coordinator role changed (send STATUS). */
	void (*changed)(gpointer user);
} herd_coord_io;

herd_coord *herd_coord_new(const herd_coord_io *io, gpointer user);
void herd_coord_free(herd_coord *c);

/* Decide and act, if this node coordinates. */
void herd_coord_run(herd_coord *c, const herd_coord_view *v);

/* Results of what it started. */
void herd_coord_committed(herd_coord *c, const GError *error);
void herd_coord_fenced(herd_coord *c, const char *node, bool ok, const char *device,
		       const char *detail, int64_t now_ms);

bool herd_coord_active(herd_coord *c);
/* {"alerts":[…],"n_plus_1":…,"at_risk":{node: HA VMs that could not be
 * restarted if it died now},"fencing":[…]} while active, else NULL. */
json_t *herd_coord_status(herd_coord *c);
/* Node ids (GUINT_TO_POINTER) this herd has seen in the ring since it
 * started, for its STATUS (borrowed). */
GHashTable *herd_coord_seen(herd_coord *c);
/* This coordinator fenced @node (successfully) and has not seen it since. */
bool herd_coord_has_fenced(herd_coord *c, const char *node);

/*
 * The scheduler input for a view (shared with the API's admission check).
 * Free with herd_sched_input_free().
 *
 * @unwanted (the coordinator's, or NULL) remembers for each VM that is not
 * wanted on its node (stopped, or moving away) the store position from
 * which on that is known here.  Until the node reports from at least that
 * position, a VM it does not report is taken as still there: its agent may
 * have started it on the assignment before it learnt otherwise, and a
 * report from before that cannot show it yet.
 */
typedef struct herd_sched_input herd_sched_input;

/*
 * Who has joined: after a cold start of the whole cluster the nodes boot at
 * their own pace, and one that has not been seen yet since this herd started
 * is most likely booting, not running VMs somewhere unseen.  It counts as
 * lost (to be fenced) only join_timeout_s after this herd first saw a
 * quorate partition; until then its VMs wait.  A node seen since then and
 * lost again is fenced at once.  NULL: every node out of the ring is lost.
 */
typedef struct herd_coord_joins {
	GHashTable *seen;          /* node ids (GUINT_TO_POINTER) seen in the ring */
	int64_t quorate_since_ms;  /* 0: no quorate partition seen yet */
} herd_coord_joins;

herd_sched_input *herd_sched_input_build(const herd_coord_view *v, GHashTable *local_down,
					 GHashTable *unwanted, const herd_coord_joins *joins);
const sched_input *herd_sched_input_get(herd_sched_input *hi);
/* The sched_vm built for @uuid, or NULL. */
const sched_vm *herd_sched_input_vm(herd_sched_input *hi, const char *uuid);
void herd_sched_input_free(herd_sched_input *hi);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_sched_input, herd_sched_input_free)

/* The rebalance settings (ha/rebalance.h) of the cluster's settings. */
void herd_rebalance_settings(const store_settings *s, rebalance_settings *out);
