/*
 * herdd's part of the cluster's quorum device on its own host: while
 * corosync.conf has a device (herd_corosync_qdevice_algorithm()), the
 * node's NSS database for corosync-qdevice holds qnetd's CA and the
 * cluster's certificate from the store, and corosync-qdevice runs; without
 * one, it is stopped and the database removed.  It looks when herdd starts
 * and when the cluster or its nodes change, after corosync.conf was
 * written; a failed step is logged and tried again QDEVICE_SETUP_RETRY_S
 * later.
 */
#pragma once

#include "daemon/herdd.h"

#define QDEVICE_SETUP_RETRY_S 10

typedef struct herd_qdevice_setup herd_qdevice_setup;

/* Follow @d's cluster for @corosync_dir (/etc/corosync); lives as long as
 * the daemon. */
herd_qdevice_setup *herd_qdevice_setup_new(herdd *d, const char *corosync_dir);
