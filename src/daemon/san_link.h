/*
 * herdd's link to this node's herd-san (the eSAN data path, src/san;
 * docs/esan.md): a unix stream socket of JSON lines.  herdd tells herd-san
 * which volumes this node holds a replica of and what the store says of
 * both replicas (ha/esan.h makes the ops), again after every change of a
 * disk or node, and passes the membership's loss of a peer node on.  It
 * takes herd-san's reports: volume states (sent in this node's STATUS, so
 * that every node shows them), "peer-lost" (herdd commits the peer's
 * replica outdated, retrying until the store accepts it — quorum, and the
 * peer fenced if its node is lost — and only then lets herd-san write
 * alone), "disk-failed" (this node's local disk failed under a replica:
 * herdd commits that replica outdated and discarded, retrying, and only
 * then lets herd-san serve the disk from the peer, "detached"), and
 * "synced" (the peer is up to date again).  It carries out
 * what operators decided through the store: a replica discarded or promoted
 * (promote --force, resolve --keep) and a verification asked of this node,
 * whose result it records (made again against the disk as it is when a
 * change of the disk overtook it).  A resync source's peer is recorded
 * outdated.  Volumes herd-san serves whose disk the store no longer holds
 * (deleted while the node was down) are removed, once the store is
 * current.  A node with a storage address of its own gets herd-san a
 * certificate that names it (daemon/storage_cert.h).
 *
 * herd-san is a separate service: when it is not there herdd tries again
 * every second; a restart of either side loses nothing (herd-san keeps
 * serving; herdd sends everything again when it connects).
 */
#pragma once

#include "cluster/service.h"
#include "ha/ha.h"

typedef struct herd_san_link herd_san_link;

/* Connect to herd-san at @socket_path (and keep connecting) for node
 * @node_name; its TLS files are in @tls_dir (ca.crt, node.crt, node.key). */
herd_san_link *herd_san_link_new(herd_cluster *cluster, herd_ha *ha, const char *node_name,
				 const char *socket_path, const char *tls_dir);
void herd_san_link_free(herd_san_link *l);
