/*
 * The daemon's context: one per process, owned by main(), handed to every
 * part (API routes, cluster, store, HA) as the place to find the others.
 */
#pragma once

#include "daemon/config.h"

#include <glib.h>

typedef struct http_server http_server;

typedef struct herdd {
	herdd_config *cfg;
	GMainLoop *loop;
	http_server *api;
	gint64 started_us;          /* monotonic time at start */
	gint64 started_wall_s;      /* wall-clock time at start, seconds */
	char *tls_dir;              /* <state_dir>/tls */
	char *tls_cert_pem;         /* the API's certificate and key */
	char *tls_key_pem;
	char *tls_fingerprint;
	char *corosync_version;     /* as reported by corosync -v, or NULL */
} herdd;

/* Protocol version of the API and of the wire messages between nodes. */
#define HERD_PROTOCOL_VERSION 1
