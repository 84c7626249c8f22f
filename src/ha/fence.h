/*
 * Running fence agents (Debian's fence-agents: fence_apc_snmp,
 * fence_ipmilan…) with their standard interface: no arguments, "key=value"
 * lines on stdin (action=off, plug=…, ip=…), exit status 0 for success;
 * for action=status 0 means on and 2 off.
 *
 * Fencing a node walks its fencing levels in order: a level succeeds when
 * every device in it switched the node off and reports it off (power state
 * verified: by the agent's own read-back, else by a "status") for a plug it
 * lists (if its agent can list); else the next level is tried.
 * Asynchronous on the main loop; every agent run has a time limit.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

/* One device's part in fencing a node. */
typedef struct herd_fence_target {
	char *device;          /* the fence device's name */
	char *agent;           /* fence_apc_snmp */
	json_t *params;        /* {"ip": …, "community": …} */
	char *plug;            /* the node's outlet / port on it */
	int level;             /* 1 first */
} herd_fence_target;

void herd_fence_target_free(herd_fence_target *t);

/* The plugs in an agent's "list" output (a set of strings), or NULL if it
 * lists none (the agent cannot list, or the device has no plugs: "N/A"). */
GHashTable *herd_fence_parse_list(const char *out);

/* Done: @ok, the device(s) that did it, and a sentence saying what happened. */
typedef void (*herd_fence_done)(bool ok, const char *device, const char *detail,
				double agent_seconds, gpointer user);

/* Does the output of a successful "off" say the agent read the plug back
 * as off ("Success: Powered OFF" / "Success: Already OFF", fencing.py)? */
bool herd_fence_off_verified(const char *out);

/* Fence with @targets (herd_fence_target*, any order), after @delay_ms. */
void herd_fence_node(const char *node, GPtrArray *targets, unsigned delay_ms,
		     herd_fence_done done, gpointer user);

/* Run one agent action ("status", "monitor", "list", "on", "off") for @t.
 * @done gets ok and a detail; for "status" ok means "answered", and
 * *detail says "on" or "off"; for "list" *detail is the agent's whole
 * output (a "plug,alias" line per outlet). */
void herd_fence_agent_action(const herd_fence_target *t, const char *action,
			     herd_fence_done done, gpointer user);

/* Is @agent the name of an installed fence agent?  (fence_[a-z0-9_]+ in
 * the agents' directory, default /usr/sbin.) */
bool herd_fence_agent_valid(const char *agent, GError **error);
