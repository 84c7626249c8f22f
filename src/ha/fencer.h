/*
 * Fencing one node: the walk over its fencing levels, as a state machine
 * with no I/O.  The caller runs the fence agent actions it asks for (in
 * herdd: ha/fence.c, the agent runner; in the simulator: a simulated PDU)
 * and hands the results back.
 *
 * The levels are tried in order.  A level succeeds when every device in it
 * switched the node off and reports it off: power state verified by the
 * agent's own read-back (herd_fence_off_verified()), else by a "status"
 * after the "off" — and only for a plug the device lists, when its agent
 * can list (over SNMP a plug the device does not have switches "off" with
 * success and reads "off").  Else the next level is tried.
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <stdbool.h>

/* One device's part in fencing a node. */
typedef struct herd_fence_target {
	char *device;          /* the fence device's name */
	char *agent;           /* fence_apc_snmp */
	char **params;         /* "key=value" lines for the agent (its parameters) */
	char *plug;            /* the node's outlet / port on it, or NULL */
	unsigned level;        /* 1 first */
} herd_fence_target;

/* The part of fence device @dev (a store object) that cuts @plug (NULL: the device only). */
herd_fence_target *herd_fence_target_new(const store_object *dev, const char *plug);
herd_fence_target *herd_fence_target_copy(const herd_fence_target *t);
void herd_fence_target_free(herd_fence_target *t);
/* Every device's part in fencing @node (herd_fence_target*, by level then device; maybe empty). */
GPtrArray *herd_fence_targets(store_state *st, const char *node);

/* Does the output of a successful "off" say the agent read the plug back
 * as off ("Success: Powered OFF" / "Success: Already OFF", fencing.py)? */
bool herd_fence_off_verified(const char *out);
/* The plugs in an agent's "list" output (a set of strings), or NULL if it
 * lists none (the agent cannot list, or the device has no plugs: "N/A"). */
GHashTable *herd_fence_parse_list(const char *out);

typedef struct herd_fencer herd_fencer;

typedef struct herd_fencer_io {
	/* Run @action ("off", "list", "status") of @t; herd_fencer_result()
	 * with @step follows (possibly before this returns). */
	void (*run)(gpointer user, unsigned step, const herd_fence_target *t, const char *action);
	/* Finished: @ok, the device(s) that did it, a sentence saying what
	 * happened, and how long the agents took in all.  Must not free the
	 * fencer (free it once this returned). */
	void (*done)(gpointer user, bool ok, const char *devices, const char *detail,
		     double agent_seconds);
} herd_fencer_io;

/* A fencer for @node with @targets (stolen; any order). */
herd_fencer *herd_fencer_new(const char *node, GPtrArray *targets, const herd_fencer_io *io,
			     gpointer user);
/* Start: the first runs are asked for; results, and done(), may come
 * before this returns. */
void herd_fencer_begin(herd_fencer *f);
/*
 * The outcome of run @step: for "off", @ok and the agent's last line; for
 * "status", @ok (it answered) and "on" or "off"; for "list", @ok and its
 * whole output.  @secs: how long the agent ran.
 */
void herd_fencer_result(herd_fencer *f, unsigned step, bool ok, const char *detail, double secs);
/* Free a fencer that finished (done() called) or is abandoned. */
void herd_fencer_free(herd_fencer *f);
bool herd_fencer_finished(const herd_fencer *f);
const char *herd_fencer_node(const herd_fencer *f);
