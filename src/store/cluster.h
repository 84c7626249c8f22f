/*
 * The cluster object of the replicated store (there is one once the cluster
 * exists): its name, its settings, its certificate authority, corosync's
 * key and its quorum device (qdevice), if it has one.  Read through
 * store_cluster_of() and store_settings_of().
 */
#pragma once

#include "store/object.h"
#include "store/settings.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdint.h>

typedef struct store_cluster {
	store_settings settings;  /* effective: stored values over the defaults */
	const char *ca_cert;      /* PEM */
	const char *ca_key;       /* PEM */
	const char *authkey;      /* corosync's key, base64 */
	/* The quorum device (corosync-qnetd on an outside host), or host NULL. */
	struct {
		const char *host;     /* qnetd's address or name */
		uint64_t port;        /* qnetd's TCP port */
		const char *ca_cert;  /* qnetd's CA (PEM), for every node's NSS db */
		const char *p12;      /* the cluster's certificate and key (PKCS#12, base64) */
	} qdevice;
} store_cluster;

/* corosync-qnetd's port unless told otherwise. */
#define STORE_QDEVICE_PORT_DEFAULT 5403
/* corosync.conf's quorum.device.timeout: corosync-qdevice polls votequorum
 * this often, and a node cut off from qnetd keeps the device's vote for
 * about this long after a split (measured: 10 s with corosync's default). */
#define STORE_QDEVICE_TIMEOUT_MS 3000
/* How long a coordinator with a qdevice waits before it fences a lost node:
 * by then a partition that holds a stale vote of the device has lost
 * quorum and fences nothing (no race; the two-node fence_delay_ms is for
 * clusters without a qdevice). */
#define STORE_QDEVICE_FENCE_WAIT_MS (STORE_QDEVICE_TIMEOUT_MS + 2000)

/*
 * The quorum device's algorithm for @st: "ffsplit" while the cluster has a
 * qdevice and an even number of nodes; NULL otherwise, and then
 * corosync.conf has no device.  An odd count already has a majority on one
 * side of every split in two; a qdevice there would only add a vote whose
 * loss, with one node's, costs quorum that the nodes alone would keep
 * (Proxmox refuses odd counts too).  herd keeps a qdevice configured
 * while a join or a removal makes the count odd, and uses it again once it
 * is even.
 */
const char *store_cluster_qdevice_algorithm(store_state *st);

const store_cluster *store_cluster_of(const store_object *o);
/* The effective settings of @st's cluster; the defaults before there is one. */
const store_settings *store_settings_of(store_state *st);
/* The stored settings object (only what was changed), or NULL. */
json_t *store_cluster_stored_settings(const store_object *cluster);

/* The first change of a new cluster: it, its first node and its admin user. */
json_t *store_cluster_cmd_bootstrap(const char *name, json_t *settings, const char *ca_cert,
				    const char *ca_key, const char *authkey, const char *node_name,
				    const char *const *links, size_t n_links,
				    const char *admin_password_hash);
/* Change settings (@changes checked by cluster_settings_validate()). */
json_t *store_cluster_cmd_settings(const store_object *cluster, json_t *changes);

/* Set the quorum device (only while @cluster has none: conditional on its
 * version). */
json_t *store_cluster_cmd_qdevice_set(const store_object *cluster, const char *host, uint64_t port,
				      const char *ca_cert, const char *p12);
/* Remove the quorum device. */
json_t *store_cluster_cmd_qdevice_remove(const store_object *cluster);

bool store_cluster_validate(json_t *data, GError **error);
void *store_cluster_parse(json_t *data);
void store_cluster_free(void *typed);
