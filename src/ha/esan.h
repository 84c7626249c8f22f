/*
 * eSAN as herdd sees it (issue 11, docs/esan.md): what this node's herd-san
 * must serve, made from the store, and the store changes that herd-san's
 * reports ask for.  Pure: reads the store, returns JSON; daemon/san_link.c
 * talks to herd-san and submits the commands.
 *
 * The rule that keeps a failover from ever picking a stale replica
 * (invariant 3): a replica writes alone only after its peer is recorded
 * outdated in the store — a committed change, so it needs quorum and no
 * unfenced lost node, as every change does.  A peer is recorded up to date
 * again only when the writer's herd-san says the resync made it identical.
 */
#pragma once

#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

/* The volumes node @node_name holds a replica of: {disk uuid: the
 * herd-san "volume" op for it} (docs/esan.md; /work design: ops). */
json_t *herd_esan_volumes(store_state *st, const char *node_name);

/* The command that records the peer of @node_name's replica of disk
 * @disk_uuid outdated, so that @node_name may write alone.  NULL with
 * *@already true when the store records that already; NULL with an error
 * when @node_name may not write alone (its own replica is not up to date,
 * or there is no such disk). */
json_t *herd_esan_outdate_cmd(store_state *st, const char *disk_uuid, const char *node_name,
			      bool *already, GError **error);

/* The command that records @node_name's own replica of disk @disk_uuid
 * outdated and discarded (its local disk failed and herd-san detached it;
 * the peer serves the disk), the peer's kept.  NULL with *@already true
 * when the store records that already; NULL with an error when the peer's
 * replica is not up to date (nothing to detach to) or there is no such disk. */
json_t *herd_esan_detach_cmd(store_state *st, const char *disk_uuid, const char *node_name,
			     bool *already, GError **error);

/* The command that records the peer of @node_name's replica up to date
 * after a resync from @node_name; NULL when there is nothing to record
 * (or no such disk, or @node_name's own replica is not up to date). */
json_t *herd_esan_synced_cmd(store_state *st, const char *disk_uuid, const char *node_name);

/* herd disk promote NAME --force [--node NODE]: the command that declares
 * @node_name's replica of @disk (NULL: the one that is outdated, when the
 * other is not up to date or its node is @lost) up to date as it is and
 * the other discarded.  Refused with a sentence while the disk's VM runs
 * (@vm_runs: its name, or NULL), when that replica is up to date already,
 * or is inconsistent (a partial sync: not a disk). */
json_t *herd_esan_promote_cmd(store_state *st, const store_object *disk, const char *node_name,
			      const char *vm_runs, GError **error);
/* herd disk resolve NAME --keep NODE after a split brain (@split: some
 * node's herd-san reports one): @keep_node's replica is kept, the other's
 * data goes.  Refused without a split brain, or while the disk's VM runs
 * on the other node (@vm_node). */
json_t *herd_esan_resolve_cmd(store_state *st, const store_object *disk, const char *keep_node,
			      bool split, const char *vm_node, GError **error);
/* The command that records the result of a verification that node
 * @node_name's herd-san sent (@event: {"id","equal","differ","first",
 * "compared","error"?}) on disk @disk_uuid as it is now, at @now_ms; NULL
 * when there is nothing to record (no such disk, another verification was
 * asked since, or this one has its result).  Made again from the current
 * disk when a change of the disk in between refused the last one. */
json_t *herd_esan_verified_cmd(store_state *st, const char *disk_uuid, json_t *event, int64_t now_ms);

/* The volumes of @reported ({disk uuid: anything}: what node @node_name's
 * herd-san serves) whose disk the store does not hold (deleted while the
 * node was away).  An array of UUIDs, sorted; empty when the store does not
 * know @node_name.  Ask only of a store that is current (synced with a
 * quorate partition): a stale one would have a new disk's volume removed. */
json_t *herd_esan_orphans(store_state *st, const char *node_name, json_t *reported);

/* The sync gate (C14): why node @node_name may not leave service now — it
 * holds the only up-to-date replica of an eSAN disk whose other replica is
 * not (yet) up to date — or NULL.  The sentence names the disks. */
char *herd_esan_sync_gate(store_state *st, const char *node_name);
/* The names of those disks ("db0, db1"), or NULL when there is none. */
char *herd_esan_unsynced(store_state *st, const char *node_name);

/* The alerts eSAN disks give now: replicas the store records outdated,
 * inconsistent or discarded, disks without an up-to-date replica, and what
 * the herd-sans report (@reports: {disk uuid: {node name: state}}): split
 * brain, unrelated replicas.  An array of {"severity","message","disk"}. */
json_t *herd_esan_alerts(store_state *st, json_t *reports);

/* The address of node @node on which its herd-san listens for peers: its
 * storage address if it has one (herd node set --storage-address), else
 * its address on link esan_link (a setting), or its first link's if it has
 * no such link. */
const char *herd_esan_address(store_state *st, store_object *node);

/* Is a replica's peer node @peer (corosync id) gone, as corosync's ring
 * @ring (@n ids) of node @me shows it: 1 gone, 0 there, -1 not known — no
 * ring yet, or one without this node (herdd just started, or it lost
 * corosync), or a peer of no known id.  Only 1 tells herd-san "peer-down"
 * (which drops the replication link at once, ending a sync under way). */
int herd_esan_peer_gone(const uint32_t *ring, size_t n, uint32_t me, uint32_t peer);
