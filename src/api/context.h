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

typedef struct api_vm_cache api_vm_cache;

typedef struct api_ctx {
	herd_cluster *cluster;
	herd_ha *ha;
	herd_formation *formation;
	const api_node_info *node;
	api_vm_cache *vm_cache;        /* the API's own (vm_list.c); NULL at first */
} api_ctx;

/* Free what the API keeps in @a (the owner calls it once the API's server
 * is gone). */
void api_ctx_clear(api_ctx *a);
