/*
 * The daemon: one per process, owned by main().  It wires the parts — the
 * cluster service on corosync, the node's hypervisor, the HA engine's
 * shell, cluster formation, the API — and owns what only a daemon has: its
 * configuration, its certificate, its service manager.  Nothing outside
 * src/daemon includes this header.
 */
#pragma once

#include "api/context.h"
#include "daemon/config.h"

#include <glib.h>

typedef struct http_server http_server;
typedef struct herd_virt herd_virt;
typedef struct herd_virt_setup herd_virt_setup;

typedef struct herdd {
	herdd_config *cfg;
	GMainLoop *loop;
	http_server *api;
	herd_cluster *cluster;      /* the replicated store and corosync */
	herd_ha *ha;                /* the HA engine: agent, coordinator, fencing */
	herd_virt *virt;            /* this node's hypervisor (libvirt) */
	herd_virt_setup *virt_setup; /* its libvirt and QEMU set up for live migration */
	herd_formation *formation;  /* cluster create, join, leave */
	api_node_info node_info;    /* this node, for the API */
	api_ctx api_ctx;            /* what the API's handlers get */
	loop_monitor *loop_monitor; /* the main loop's stalls */
	char *tls_dir;              /* <state_dir>/tls */
	char *tls_cert_pem;         /* the API's certificate and key */
	char *tls_key_pem;
	char *tls_fingerprint;
	char *corosync_version;     /* as reported by corosync -v, or NULL */
	char *libvirt_version;
} herdd;

/* (Re)start the API's TCP listener with the node's current certificate. */
bool herdd_restart_tcp(herdd *d, GError **error);

/* Done callback of herdd_service(): @error NULL on success. */
typedef void (*herdd_service_done)(const GError *error, gpointer user);

/* Run "<service_command> ACTION SERVICE" (e.g. "systemctl start corosync")
 * without blocking the main loop. */
void herdd_service(herdd *d, const char *action, const char *service, herdd_service_done done,
		   gpointer user);
/* Run @argv (a program and its arguments, found on $PATH) the same way. */
void herdd_run(herdd *d, const char *const *argv, herdd_service_done done, gpointer user);
