/*
 * herd-san's state: where it keeps things, what herdd configured, its
 * volumes and herdd's connections.  The parts (control.c, volume.c) share
 * it; herd-san.c makes it.
 */
#pragma once

#include "san/request.h"

#include <glib.h>
#include <jansson.h>

typedef struct san_volume san_volume;

typedef struct {
	char *data_dir;		/* replicas, their metadata, the saved messages */
	char *run_dir;		/* sockets, pid files, nbdkit's TLS directory */
	char *socket_path;	/* the control socket herdd connects to */
	char *nbdkit;		/* absolute path of nbdkit */
	char *plugin;		/* nbdkit-herd-plugin.so */
	int qemu_gid;		/* the group of QEMU's sockets (0660), or -1: root's only (0600) */
	json_t *config_msg;	/* the last config op (NULL before the first) */
	san_request *config;	/* the same, parsed */
	GHashTable *volumes;	/* uuid → san_volume* */
	GList *clients;		/* san_client* (control.c) */
	char *tls_fingerprint;	/* SHA-256 of the TLS files the nbdkits were started with */
} san_daemon;

/* Send @ev to every connected herdd. */
void san_daemon_event(san_daemon *d, json_t *ev);

/* An "error" event for volume @uuid, logged too. */
void san_daemon_error_event(san_daemon *d, const char *uuid, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* "DIR/UUID.SUFFIX" in the data or run directory. */
char *san_data_path(const san_daemon *d, const char *uuid, const char *suffix);
char *san_run_path(const san_daemon *d, const char *uuid, const char *suffix);

/* nbdkit's TLS directory (RUN/tls). */
char *san_tls_path(const san_daemon *d);

/* The node's TLS files (ca.crt, node.crt, node.key in the config's
 * tls_dir) changed since the nbdkits started (renewed certificates): each
 * volume's nbdkit starts again with them — at once, or, under a local
 * writer, once it closes (control.c; herd-san checks every few seconds and
 * at every config op). */
void san_control_check_certs(san_daemon *d);
