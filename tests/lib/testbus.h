/*
 * An in-process bus (cluster/bus.h) for unit tests: the cluster services of
 * several nodes in one process, on the GLib main loop, without corosync.
 *
 * It keeps corosync's promises that herd relies on.  Messages are
 * delivered in agreed order: one queue per configuration, delivered from
 * an idle callback to every member of the sender's configuration in the
 * same order, followed by burst_end.  Configuration changes are virtually
 * synchronous: a member joining or leaving (start, stop, cut, heal, power)
 * first lets what is in flight reach the configuration it was sent in,
 * then the new configuration opens with a confchg at the same point of
 * every remaining member's order (tests/sim/simbus.c forms the
 * configurations).  A member is told its node id (connected) when it
 * starts, and the ring and quorum when they change: the ring is every
 * powered node of its partition; quorate is a strict majority of the
 * expected votes (by default: every member created on this bus).
 *
 * Test controls: cut a node off (alone in a partition of its own: a lost
 * node, alive but unreachable), heal it, power it off (it leaves the ring
 * and the group; its own service loses the connection) and on.
 *
 * Every callback runs on the main thread, from the main loop or from a
 * control or start called outside the bus's callbacks.
 */
#pragma once

#include "cluster/bus.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct testbus testbus;

/* A bus with room for up to 8 members; @expected_votes 0: as many as are
 * created (the nodes the test made). */
testbus *testbus_new(unsigned expected_votes);
/* Free the bus once every member was freed by its owner. */
void testbus_free(testbus *net);

/* A member, node @nodeid, for herd_cluster_new() (which owns it: the
 * cluster service frees it). */
herd_bus *testbus_member_new(testbus *net, uint32_t nodeid);

/* Node @nodeid alone in a partition of its own, or back with the others. */
void testbus_cut(testbus *net, uint32_t nodeid);
void testbus_heal(testbus *net, uint32_t nodeid);
/* Node @nodeid's power: off, its corosync is gone (the service hears
 * "disconnected"); on, it connects and joins again. */
void testbus_power(testbus *net, uint32_t nodeid, bool on);

/* Nothing in flight and no ring change to tell. */
bool testbus_quiet(testbus *net);
/* Node @nodeid's corosync has not read its links yet (its bus answers
 * NULL for every peer), or has again. */
void testbus_links_unread(testbus *net, uint32_t nodeid, bool unread);
/* How many times a member asked every node to reload its configuration. */
unsigned testbus_reloads(testbus *net);

/* What node @nodeid was delivered, in its order: a message's sender and
 * type (herd_wire_type_of()), or a configuration change (sender 0). */
typedef struct {
	uint32_t sender;
	unsigned type;
} testbus_delivery;
/* Append each delivery to node @nodeid to @log (testbus_delivery; NULL:
 * stop), until the bus is freed. */
void testbus_watch(testbus *net, uint32_t nodeid, GArray *log);
