/*
 * A node of the cluster as the replicated store holds it: its corosync node
 * id and link addresses, its mode (online, standby, maintenance), the mark
 * that herd itself put it in maintenance because its host shuts down (the
 * shutdown policy), the mark that it is down (fenced or confirmed down by an
 * operator, until the cluster sees it back), and its fencing history.  Read through
 * store_node_of(); written through the builders below.
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Fence attempts kept per node in its history. */
#define STORE_NODE_FENCE_HISTORY_MAX 10

typedef enum {
	STORE_NODE_ONLINE = 0,
	STORE_NODE_STANDBY,      /* takes no VMs, its VMs move away */
	STORE_NODE_MAINTENANCE,  /* like standby, and herd leaves it alone (no fencing) */
} store_node_mode;

/* One fence attempt. */
typedef struct store_fence_record {
	int64_t time_ms;
	bool ok;
	const char *by;          /* the node (or user) that fenced */
	const char *device;
	const char *detail;
} store_fence_record;

typedef struct store_node {
	uint32_t nodeid;         /* corosync's node id */
	const char *const *links; /* one address per link */
	size_t n_links;
	const char *storage_address; /* its eSAN replication address (a dedicated
				  * storage link), or NULL: esan_link's address */
	store_node_mode mode;
	bool allow_cold;         /* standby/maintenance: a VM that cannot migrate
				  * live moves with a restart */
	/* Its herd put it in maintenance because its host shuts down
	 * (shutdown_policy migrate), at shutdown_time_ms; the next herd that
	 * starts there gives it back the mode it had (shutdown_mode,
	 * shutdown_allow_cold).  An operator's mode change ends it. */
	bool shutdown;
	int64_t shutdown_time_ms;
	store_node_mode shutdown_mode;
	bool shutdown_allow_cold;
	bool down;               /* fenced or confirmed down, not seen back yet */
	const char *down_how;    /* "fenced" or "confirmed" (if down) */
	int64_t down_time_ms;
	const char *down_by;
	const store_fence_record *fence_history; /* oldest first */
	size_t n_fence_history;
	const char *switchover_to; /* herd node switchover sent its VMs to this node, and
				  * the coordinator has not yet said it is over; or NULL */
} store_node;

const store_node *store_node_of(const store_object *o);

const char *store_node_mode_name(store_node_mode m);
bool store_node_mode_parse(const char *s, store_node_mode *out);

/* The node with corosync id @nodeid, or NULL. */
store_object *store_node_by_id(store_state *st, uint32_t nodeid);
/* Node @name's corosync id, 0 if there is no such node. */
uint32_t store_node_id(store_state *st, const char *name);
/* The nodes sorted by node id (free the array; borrowed references). */
GPtrArray *store_node_list_by_id(store_state *st);

/* A new node (join). */
json_t *store_node_cmd_create(const char *uuid, const char *name, uint32_t nodeid,
			      const char *const *links, size_t n_links);
/* Set its mode; @allow_cold: leaving, a VM that cannot migrate live moves
 * with a restart.  Each mode change lets its VMs try live again (their
 * live_failed marks are cleared), and ends a shutdown mark (the operator's
 * mode is the one kept). */
json_t *store_node_cmd_mode(store_state *st, const store_object *node, store_node_mode mode,
			    bool allow_cold);
/* Its host shuts down (herdd, shutdown_policy migrate): maintenance with
 * allow_cold and the shutdown mark, which keeps the mode it had (a node
 * marked already keeps its first).  Its VMs leave; it is not fenced. */
json_t *store_node_cmd_shutdown(store_state *st, const store_object *node, int64_t now_ms);
/* Its herd is back after the shutdown: the mode it had before, without the
 * mark, if the node is still at its version (an operator's change since
 * wins).  NULL if it has no mark. */
json_t *store_node_cmd_shutdown_over(store_state *st, const store_object *node);
/* Mark (@to) or unmark (NULL) a switchover of its VMs under way (the
 * coordinator tells when it began and when it is over: alert events). */
json_t *store_node_cmd_switchover(const store_object *node, const char *to);
/* An operator confirms it is off. */
json_t *store_node_cmd_confirm_down(const store_object *node, const char *by, int64_t now_ms);
/* It is back: forget the down mark. */
json_t *store_node_cmd_clear_down(const store_object *node);
/*
 * Record a fence attempt on @node in its history, done by @by; with @ok and
 * @mark_down also mark the node down ("fenced").
 */
json_t *store_node_cmd_fence_record(const store_object *node, const char *by, bool ok,
				    bool mark_down, const char *device, const char *detail,
				    int64_t now_ms);
/* Is @s an address a node's herd-san may listen on for its peers (an IPv4
 * or IPv6 literal, not unspecified, loopback or multicast)?  False with a
 * sentence that says why not. */
bool store_node_storage_address_check(const char *s, GError **error);
/* Its storage address @address (NULL: none, esan_link's address again). */
json_t *store_node_cmd_storage_address(const store_object *node, const char *address);
/* Remove it (if still at its version; 0: any). */
json_t *store_node_cmd_remove(const store_object *node, uint64_t if_version);

bool store_node_validate(json_t *data, GError **error);
void *store_node_parse(json_t *data);
void store_node_free(void *typed);
