/*
 * What changes on this node when it becomes a cluster member or stops being
 * one: its API certificate (signed by the cluster's CA, or self-signed), and
 * waiting for the first sync after corosync started.
 */
#pragma once

#include "daemon/herdd.h"

#include <stdbool.h>

/* Install the cluster CA and this node's certificate and key; restart TLS. */
bool herdd_install_tls(herdd *d, const char *ca_pem, const char *cert_pem, const char *key_pem,
		       GError **error);
/* Back to a self-signed certificate (after leaving the cluster). */
bool herdd_reset_tls(herdd *d, GError **error);
/* The cluster CA this node trusts, or NULL. */
char *herdd_ca_pem(herdd *d);

/* Called when the store is in sync and quorate (@error NULL) or not in time. */
typedef void (*herdd_synced_fn)(herdd *d, const GError *error, gpointer user);
/* Wait up to @timeout_ms for this node to be in sync with a quorate cluster. */
void herdd_wait_synced(herdd *d, unsigned timeout_ms, herdd_synced_fn fn, gpointer user);
