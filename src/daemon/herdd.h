/*
 * The daemon's context: one per process, owned by main(), handed to every
 * part (API routes, cluster, store, HA) as the place to find the others.
 */
#pragma once

#include "daemon/config.h"

#include <glib.h>

typedef struct http_server http_server;
typedef struct herd_cluster herd_cluster;
typedef struct herd_ha herd_ha;
typedef struct herd_virt herd_virt;
typedef struct loop_monitor loop_monitor;

typedef struct herdd {
	herdd_config *cfg;
	GMainLoop *loop;
	http_server *api;
	herd_cluster *cluster;      /* the replicated store and corosync */
	herd_ha *ha;                /* the HA engine: agent, coordinator, fencing */
	herd_virt *virt;            /* this node's hypervisor (libvirt) */
	loop_monitor *loop_monitor; /* the main loop's stalls */
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

/* (Re)start the API's TCP listener with the node's current certificate. */
bool herdd_restart_tcp(herdd *d, GError **error);

/* Done callback of herdd_service(): @error NULL on success. */
typedef void (*herdd_service_done)(herdd *d, const GError *error, gpointer user);

/* Run "<service_command> ACTION SERVICE" (e.g. "systemctl start corosync")
 * without blocking the main loop. */
void herdd_service(herdd *d, const char *action, const char *service, herdd_service_done done,
		   gpointer user);
