/*
 * This node's API certificate: loaded from <state_dir>/tls, self-signed on
 * first start, replaced by one signed by the cluster's CA when the node
 * becomes a member (and back when it leaves).  A change restarts the API's
 * TLS listener.
 */
#pragma once

#include "daemon/herdd.h"

#include <stdbool.h>

/* Load (or make) the node's API certificate into @d. */
bool herdd_tls_load(herdd *d, GError **error);
/* Install the cluster CA and this node's certificate and key; restart TLS. */
bool herdd_install_tls(herdd *d, const char *ca_pem, const char *cert_pem, const char *key_pem,
		       GError **error);
/* Back to a self-signed certificate (after leaving the cluster). */
bool herdd_reset_tls(herdd *d, GError **error);
/* The cluster CA this node trusts, or NULL. */
char *herdd_ca_pem(herdd *d);
