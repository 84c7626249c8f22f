/*
 * herdd's part in live migration on its own host: it keeps libvirt's and
 * QEMU's certificate files (the cluster's CA, the node's certificate and
 * key), qemu.conf's migration keys (the cluster's port range, QEMU's
 * certificate directory) and the kernel's reserved ports as the cluster
 * wants them — virt/host_config.h decides what, this does it — and makes
 * libvirtd take them: its TLS listener enabled through the service manager
 * (once), its certificates reloaded with virt-admin, a restart when
 * qemu.conf changed, never while a migration runs on the node.
 *
 * It looks when herdd starts, when the node's certificate changes (cluster
 * create, join, leave) and when the cluster's settings or this node change
 * in the store; after a failure it tries again by itself, later and later
 * (VIRT_SETUP_RETRY_FIRST_S to VIRT_SETUP_RETRY_MAX_S).  Each distinct
 * reason it cannot is logged once, as a warning, and reported: the node
 * is then not ready for live migration (herd node list: migration_ready,
 * migration_problem).
 */
#pragma once

#include "cluster/service.h"
#include "virt/host_config.h"

#include <glib.h>
#include <stdbool.h>

#define VIRT_SETUP_RETRY_FIRST_S 5
#define VIRT_SETUP_RETRY_MAX_S 300
/* While migrations run on the node, a restart of libvirtd waits this long
 * before it looks again. */
#define VIRT_SETUP_BUSY_RETRY_S 5

typedef struct herd_virt_setup herd_virt_setup;

/* The answer to a command (NULL: it succeeded). */
typedef void (*herd_virt_setup_done)(const GError *error, gpointer data);

/* What it needs from herdd. */
typedef struct herd_virt_setup_io {
	/* "<service_command> ACTION SERVICE" (systemctl restart libvirtd). */
	void (*service)(gpointer user, const char *action, const char *service,
			herd_virt_setup_done done, gpointer data);
	/* A program and its arguments (virt-admin). */
	void (*run)(gpointer user, const char *const *argv, herd_virt_setup_done done,
		    gpointer data);
	/* Live migrations under way on this node, out or in. */
	unsigned (*migrations)(gpointer user);
	/* The node is ready for live migration, or @problem says why not. */
	void (*status)(gpointer user, bool ready, const char *problem);
} herd_virt_setup_io;

/* herd.conf's [libvirt] settings for it. */
typedef struct herd_virt_setup_config {
	herd_host_paths paths;     /* reserved_ports: NULL for the kernel's */
	const char *qemu_group;    /* "" or NULL: QEMU's keys root's only */
	const char *tls_socket;    /* the unit that makes libvirtd listen for TLS; "" or NULL:
				    * not herd's job */
	const char *libvirtd;      /* the service to restart: "libvirtd" */
	const char *state_dir;     /* herdd's, where a restart owed is remembered */
	const char *tls_dir;       /* herdd's certificates: ca.crt, node.crt, node.key */
} herd_virt_setup_config;

/* Start looking after node @node_name's host (a first look soon); the
 * configuration is copied. */
herd_virt_setup *herd_virt_setup_new(const herd_virt_setup_config *cfg, herd_cluster *cluster,
				     const char *node_name, const herd_virt_setup_io *io,
				     gpointer user);
/* Commands still running answer to nobody. */
void herd_virt_setup_free(herd_virt_setup *vs);
/* Look again soon: the node's certificate changed. */
void herd_virt_setup_kick(herd_virt_setup *vs);
