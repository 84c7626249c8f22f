/*
 * What the API's handlers work with: the replicated store (read it, submit
 * changes to it through the one way there is), the HA engine (where VMs
 * run, operators' requests, fencing), cluster formation, and this node's own
 * facts.  Not the daemon: handlers get this narrow context as their user
 * data, so that a test can run them in-process over a simulated bus.
 */
#pragma once

#include "cluster/formation.h"
#include "cluster/service.h"
#include "common/loop_monitor.h"
#include "ha/ha.h"

#include <glib.h>
#include <jansson.h>

/* This node, for GET /api/v1/node; its owner keeps it up to date. */
typedef struct api_node_info {
	const char *name;              /* the node's name */
	gint64 started_us;             /* monotonic time at start */
	gint64 started_wall_s;         /* wall-clock time at start */
	const char *tls_fingerprint;   /* of the API's certificate, or NULL */
	const char *corosync_version;  /* or NULL if unknown */
	const char *libvirt_version;   /* or NULL if unknown */
	const loop_monitor *loop;      /* the main loop's stalls, or NULL */
} api_node_info;

typedef struct api_vm_lists api_vm_lists;
typedef struct console_tickets console_tickets;
typedef struct http_upgraded http_upgraded;

/* Where a console's websocket goes (api/console.c to the proxy). */
typedef struct api_console_target {
	const char *vm_uuid;
	const char *vm_name;
	const char *node;              /* the node the VM runs on */
	const char *address;           /* that node's address; NULL if it is this node */
	const char *user;              /* whose ticket opened it */
} api_console_target;

/* The console proxy (daemon/console_proxy.h). */
typedef struct api_console_ops {
	/* A console for @t, to be handed its websocket once upgraded; NULL
	 * with @error if this node serves as many consoles as it may.  The
	 * handlers' loop. */
	gpointer (*prepare)(gpointer proxy, const api_console_target *t, GError **error);
	/* The websocket of @console is open (http_upgrade_fn: the server's
	 * thread), or it never will be (drop). */
	void (*upgraded)(http_upgraded *up, int fd, const void *extra, size_t extra_len,
			 gpointer console);
	void (*drop)(gpointer console);
	/* Consoles open on this node now (websockets and relays). */
	unsigned (*count)(gpointer proxy);
} api_console_ops;
typedef struct api_events api_events;

/* A test notification's outcome (daemon/notify_send.h): borrowed. */
typedef void (*api_notify_done_fn)(json_t *result, gpointer user);
/* Send a test notification now; @done follows once, on the main loop. */
typedef void (*api_notify_test_fn)(gpointer notifier, api_notify_done_fn done, gpointer user);

/* herd check's report (daemon/checker.h): borrowed. */
typedef void (*api_check_done_fn)(json_t *report, gpointer user);
/* Run herd check now; @done follows once, on the main loop. */
typedef void (*api_check_run_fn)(gpointer checker, api_check_done_fn done, gpointer user);

typedef struct api_ctx {
	herd_cluster *cluster;
	herd_ha *ha;
	herd_formation *formation;
	const api_node_info *node;
	api_vm_lists *vm_lists;        /* the API's own (vm_list.h); NULL at first */
	GHashTable *vm_waits;          /* vm.c's requests waiting for a VM to get there; or NULL */
	api_notify_test_fn notify_test; /* herd notify test, or NULL (no notifier) */
	gpointer notifier;
	api_check_run_fn check_run;    /* herd check, or NULL (no checker) */
	gpointer checker;
	const api_console_ops *console_ops; /* VM consoles, or NULL (none served) */
	gpointer console_proxy;
	console_tickets *console_tickets; /* console.c's; NULL at first */
	api_events *events;            /* GET /events' streams (events.h); NULL at first */
	char *setup_code;              /* a blank node's (cluster_setup.c); NULL until asked for */
	char *setup_code_hash;         /* ...and its hash, as auth.c hands it to the checker */
} api_ctx;

/* Free what the API keeps in @a (the owner calls it once the API's server
 * is gone; requests still under way are answered that the daemon shuts
 * down, or let go of if the server answered them). */
void api_ctx_clear(api_ctx *a);
/* Its parts: vm_list.c's lists, vm.c's waits (context.c calls them). */
void api_vm_lists_clear(api_ctx *a);
void api_vm_waits_clear(api_ctx *a);
void api_events_clear(api_ctx *a);
void api_setup_code_forget(api_ctx *a);
