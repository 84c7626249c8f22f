/*
 * What cluster/formation.c (create, join, leave) and cluster/admission.c
 * (the member's side of a join) share.  Private to src/cluster.
 */
#pragma once

#include "cluster/formation.h"
#include "cluster/join_queue.h"
#include "common/error.h"
#include "store/object.h"

#define CERT_DAYS 3650

struct herd_formation {
	herd_cluster *cluster;
	char *node_name;
	char *corosync_dir;
	herd_formation_io io;
	gpointer user;
	bool creating;           /* a create's keys are being made (worker thread) */
	/* The member's side of joins (admission.c) */
	join_queue *joins;       /* add_request*, waiting their turn */
	struct add_request *adding; /* the one being committed and answered */
	unsigned join_wait_ms;   /* how long one may wait for its turn */
	char *joins_waiting_for; /* why the head of the queue waited, last look */
	guint joins_timer, joins_idle;
	GHashTable *new_nodes;   /* uuids of nodes added (through any member) since
				  * this herd started, not yet in the group */
};

/* Refuse a request before anything is under way: @done gets the error. */
G_GNUC_PRINTF(4, 5)
void formation_refuse(herd_formation_done done, gpointer data, herd_error_code code,
		      const char *format, ...);
/* The cluster this node is a member of; NULL after refusing the request
 * (adding a node, leaving) that needs one. */
store_object *formation_member_cluster(herd_formation *f, herd_formation_done done, gpointer data);
/* The names a node's certificate is for: its name and its links (g_free the
 * array, not the strings). */
const char **formation_sans_for(const char *name, const char *const *links, size_t n_links);

/* admission.c: the member's side of joins, set up with the formation and
 * dropped with it. */
void admission_start(herd_formation *f);
void admission_stop(herd_formation *f);
