/*
 * The certificate a node's herd-san presents on its storage address (herd
 * node set --storage-address, docs/esan.md).  The peer's replication link
 * (libnbd) verifies the address it connects to against the certificate's
 * alternative names, and a node's certificate from its join names only its
 * links: a node with a storage address gets a certificate of its own for
 * herd-san, signed by the cluster's CA (which the store holds) for its name,
 * its links and its storage address, in <tls dir>/esan (ca.crt, node.crt,
 * node.key, the names herd-san takes).  herdd's own certificate (its API,
 * libvirt's and QEMU's copies) stays as it is.
 */
#pragma once

#include "store/state.h"

#include <glib.h>

/* The TLS directory node @node_name's herd-san takes (its "config"): @tls_dir
 * while the node has no storage address, else @tls_dir/esan, whose
 * certificate is made anew when it does not name that address or was not
 * signed by the cluster's current CA.  NULL with @error when it cannot be
 * made (no CA in the store yet: a node not in a cluster). */
char *herd_storage_cert_dir(store_state *st, const char *node_name, const char *tls_dir, GError **error);
