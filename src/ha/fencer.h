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
 *
 * With fence_action reboot the node is switched on again once it was
 * verified off: a level of one device runs the agent's own "reboot", which
 * verifies off before it switches on (herd_fence_reboot_verified()); a
 * level of several devices (two PDUs feeding two power supplies) runs
 * "off" on every device, and only once all of them are verified off, "on"
 * on every device, as Pacemaker remaps a multi-device reboot — a reboot
 * per device would leave the node powered through the other supply all
 * along.  A failed "on" still leaves the node fenced (it is off); the
 * result's detail carries a warning.
 */
#pragma once

#include "store/object.h"
#include "store/settings.h"
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
/* Does the detail of a successful "reboot" of @t (its last line, then what
 * it logged on stderr: ha/fence.h) say the agent read the plug back as off
 * before it switched it on ("Success: Rebooted", fencing.py, not its
 * "cycle" method)?  If so, *@not_on is what it logged when switching on
 * again failed, else NULL. */
bool herd_fence_reboot_verified(const herd_fence_target *t, const char *out, char **not_on);
/* The plugs in an agent's "list" output (a set of strings), or NULL if it
 * lists none (the agent cannot list, or the device has no plugs: "N/A"). */
GHashTable *herd_fence_parse_list(const char *out);

typedef struct herd_fencer herd_fencer;

typedef struct herd_fencer_io {
	/* Run @action ("off", "list", "status", "reboot", "on") of @t;
	 * herd_fencer_result() with @step follows (possibly before this
	 * returns). */
	void (*run)(gpointer user, unsigned step, const herd_fence_target *t, const char *action);
	/* Finished: @ok, the device(s) that did it, a sentence saying what
	 * happened, and how long the agents took in all.  Must not free the
	 * fencer (free it once this returned). */
	void (*done)(gpointer user, bool ok, const char *devices, const char *detail,
		     double agent_seconds);
} herd_fencer_io;

/* A fencer for @node with @targets (stolen; any order) that switches the
 * node off, or off and on again (@action: the fence_action setting). */
herd_fencer *herd_fencer_new(const char *node, GPtrArray *targets, store_fence_action action,
			     const herd_fencer_io *io, gpointer user);
/* Start: the first runs are asked for; results, and done(), may come
 * before this returns. */
void herd_fencer_begin(herd_fencer *f);
/*
 * The outcome of run @step: for "off" and "on", @ok and the agent's last
 * line; for "reboot", @ok and that line, then what it logged on stderr;
 * for "status", @ok (it answered) and "on" or "off"; for "list", @ok and
 * its whole output.  @secs: how long the agent ran.
 */
void herd_fencer_result(herd_fencer *f, unsigned step, bool ok, const char *detail, double secs);
/* Free a fencer that finished (done() called) or is abandoned. */
void herd_fencer_free(herd_fencer *f);
bool herd_fencer_finished(const herd_fencer *f);
const char *herd_fencer_node(const herd_fencer *f);
