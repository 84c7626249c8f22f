/*
 * herdd's connection to corosync: CPG (the group "herd", agreed order),
 * votequorum (is this partition quorate, votes) and cfg (link state, config
 * reload).  The connection is made, and remade after corosync restarts,
 * from the main loop; every callback runs on the main thread.
 *
 * Sending keeps order: a message that corosync cannot take now
 * (CS_ERR_TRY_AGAIN, flow control) waits in a bounded queue, and everything
 * sent after it waits behind it.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct herd_corosync herd_corosync;

typedef struct herd_corosync_callbacks {
	/* Connected to CPG and joined the group, as node @nodeid. */
	void (*connected)(gpointer user, uint32_t nodeid);
	/* The connection to corosync was lost (it will be retried). */
	void (*disconnected)(gpointer user);
	void (*deliver)(gpointer user, uint32_t sender, const void *msg, size_t len);
	void (*confchg)(gpointer user, const uint32_t *members, size_t n_members);
	/* A burst of callbacks was dispatched. */
	void (*burst_end)(gpointer user);
	/* votequorum's view changed. */
	void (*quorum_changed)(gpointer user, bool quorate);
	/* corosync's own membership (the nodes alive, herdd or not) changed. */
	void (*ring_changed)(gpointer user, const uint32_t *members, size_t n_members);
} herd_corosync_callbacks;

herd_corosync *herd_corosync_new(const char *group, const herd_corosync_callbacks *cb,
				 gpointer user);
void herd_corosync_free(herd_corosync *c);

/* Connect now and keep reconnecting (every second) until stopped. */
void herd_corosync_start(herd_corosync *c);
/* Leave the group and disconnect; no more callbacks. */
void herd_corosync_stop(herd_corosync *c);
bool herd_corosync_is_connected(herd_corosync *c);

/* Multicast @msg in agreed order; false if not connected or the queue is full. */
bool herd_corosync_send(herd_corosync *c, const void *msg, size_t len);

/* votequorum: is this partition quorate? */
bool herd_corosync_quorate(herd_corosync *c);
/* {"quorate","votes","expected_votes","total_votes","quorum","two_node","wait_for_all"} */
json_t *herd_corosync_quorum_info(herd_corosync *c);
/* Link state towards @nodeid: [{"link":0,"enabled":true,"connected":true,"mtu":…,"address":…}] */
json_t *herd_corosync_links(herd_corosync *c, uint32_t nodeid);
/* Tell every corosync of the cluster to reload corosync.conf. */
bool herd_corosync_reload(herd_corosync *c, GError **error);
