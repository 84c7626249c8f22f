/*
 * The heartbeat links as the cluster sees them (requirement C2): every
 * node says in its STATUS which of corosync's knet links to each other
 * node are connected (daemon/link_watch.c asks corosync); this turns every
 * node's view into alerts.  A lost link changes nothing else: corosync goes
 * on over the others, and only the loss of all of them is a membership
 * change (and a fence).  Pure: JSON in, JSON out.
 *
 * A view: {node: {peer: [{"link":L,"connected":bool}…]}} — what each node
 * sees of its links to each peer, its enabled links only.
 */
#pragma once

#include <jansson.h>

/* The alerts for @views (new reference, an array): one per pair of nodes
 * with a link down as either of them sees it, with "kind" link_down (others
 * left), link_last (one link left: no spare) or links_down (none that both
 * see connected), "severity", "node" (the first of the pair by name),
 * "nodes" [both], "links" [the links down] and a "message".  Peers that do
 * not give a view of their own (not in the group: lost or leaving) are
 * left out: their loss is another alert's. */
json_t *herd_link_alerts(json_t *views);
