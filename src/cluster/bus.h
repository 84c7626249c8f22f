/*
 * The bus under the cluster service (cluster/service.h): the group of
 * herdd processes with multicast in agreed order and virtual synchrony
 * (corosync's CPG), the ring of nodes alive (herdd or not), quorum and link
 * state.  herdd's bus is corosync (cluster/corosync.c); a test brings its
 * own to run several nodes' cluster services, HA engines and API handlers in
 * one process, without corosync and without root.
 *
 * Every callback runs on the main thread.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct herd_bus herd_bus;

/* A reload's outcome: @error NULL once every node was asked to read its
 * configuration again. */
typedef void (*herd_bus_reload_done)(const GError *error, gpointer user);

typedef struct herd_bus_callbacks {
	/* Connected and joined the group, as node @nodeid. */
	void (*connected)(gpointer user, uint32_t nodeid);
	/* The connection was lost (it is retried). */
	void (*disconnected)(gpointer user);
	void (*deliver)(gpointer user, uint32_t sender, const void *msg, size_t len);
	/* The group's membership changed (in the agreed order of its messages). */
	void (*confchg)(gpointer user, const uint32_t *members, size_t n_members);
	/* A burst of callbacks was dispatched. */
	void (*burst_end)(gpointer user);
	/* The quorum changed. */
	void (*quorum_changed)(gpointer user, bool quorate);
	/* The ring (the nodes alive, herdd or not) changed. */
	void (*ring_changed)(gpointer user, const uint32_t *members, size_t n_members);
} herd_bus_callbacks;

typedef struct herd_bus_ops {
	/* Connect now and keep reconnecting until stopped. */
	void (*start)(herd_bus *b);
	/* Leave the group and disconnect; no more callbacks. */
	void (*stop)(herd_bus *b);
	void (*free)(herd_bus *b);
	bool (*connected)(herd_bus *b);
	/* Multicast @msg in agreed order; false if not connected or full. */
	bool (*send)(herd_bus *b, const void *msg, size_t len);
	/* Is this partition quorate? */
	bool (*quorate)(herd_bus *b);
	/* {"quorate","votes","expected_votes","total_votes","quorum","two_node","wait_for_all"} */
	json_t *(*quorum_info)(herd_bus *b);
	/* Link state towards @nodeid: [{"link":0,"enabled":…,"connected":…,…}],
	 * or NULL while it is not known (not read from corosync yet). */
	json_t *(*links)(herd_bus *b, uint32_t nodeid);
	/* Every node of the cluster reads its configuration again.  @done runs
	 * later on the main thread, never inside this call (corosync may take
	 * seconds to answer: herdd asks on its worker thread); not at all if
	 * the bus is freed first. */
	void (*reload)(herd_bus *b, herd_bus_reload_done done, gpointer user);
} herd_bus_ops;

struct herd_bus {
	const herd_bus_ops *ops;
	herd_bus_callbacks cb;    /* set by the bus's owner (the cluster service) */
	gpointer user;
};

/* herdd's bus: corosync, CPG group @group (cluster/corosync.c). */
herd_bus *herd_corosync_bus_new(const char *group);
