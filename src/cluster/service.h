/*
 * The cluster service of herdd: the replicated store (database + replica)
 * wired to corosync, with what the rest of the daemon needs from it:
 * submit a change and hear when it is committed, read the state, and be told
 * when objects change.
 *
 * A change submitted while the cluster is still syncing (right after a
 * membership change, or while corosync is being reached) waits up to
 * HERD_SUBMIT_WAIT_MS for the sync instead of failing at once; one
 * submitted without quorum fails at once with an error that says so.
 *
 * When the store's database fails (a full disk, an I/O error), the node
 * tells the others why (HERD_MSG_LEAVING: their coordinator alerts) and
 * leaves the group; its copy of the configuration may now lack changes, or
 * hold one that never became durable, so every read and change is answered
 * with herd_cluster_store_check()'s error instead, and the HA engine, which
 * acts only on a synced store, leaves its VMs as they are.  It retries by
 * itself, HERD_STORE_RETRY_FIRST_MS after the failure and then twice as
 * long each time up to HERD_STORE_RETRY_MAX_MS: reopen the database, check
 * that it can be written, reload what is durable, rejoin the group and
 * sync from the others.  Only once it is in sync again does it answer.
 */
#pragma once

#include "cluster/bus.h"
#include "store/replica.h"

#include <glib.h>
#include <jansson.h>

#define HERD_SUBMIT_WAIT_MS 5000
#define HERD_STORE_RETRY_FIRST_MS 1000
#define HERD_STORE_RETRY_MAX_MS 30000

typedef struct herd_cluster herd_cluster;

/* Called once with the committed change's result (borrowed), or an error. */
typedef void (*herd_cluster_done_fn)(json_t *result, const GError *error, gpointer user);
/* Objects changed (@changes of store_change*), or everything (@changes NULL). */
typedef void (*herd_cluster_change_fn)(gpointer user, GPtrArray *changes);

/* Open the store in @state_dir (config.db, or ":memory:" for a test) for
 * node @node_name, on @bus (taken over; freed with the service). */
herd_cluster *herd_cluster_new(const char *state_dir, const char *node_name, herd_bus *bus,
			       GError **error);
/* This node's name. */
const char *herd_cluster_node_name(herd_cluster *c);
void herd_cluster_free(herd_cluster *c);

/*
 * Connect to corosync (and keep reconnecting) if this node holds a cluster
 * configuration, or if @joining (it has corosync's files and an empty
 * store that the first sync will fill).
 */
void herd_cluster_start(herd_cluster *c, bool joining);
/* True once started. */
bool herd_cluster_started(herd_cluster *c);
/* Leave the CPG group and disconnect. */
void herd_cluster_stop(herd_cluster *c);
/* Tell the others why this node's herd leaves the group (HERD_MSG_LEAVING:
 * they log it and show it while the node is in corosync's ring), before it
 * stops or is freed. */
void herd_cluster_say_leaving(herd_cluster *c, const char *reason);

/* True once this node holds a cluster configuration. */
bool herd_cluster_exists(herd_cluster *c);

/*
 * Submit @cmd (a store command; "time_ms"/"origin"/"user" are added) as
 * @user.  @done runs exactly once, later, unless this returns false with
 * @error (refused at once: no quorum, not in a cluster…).
 */
bool herd_cluster_submit(herd_cluster *c, json_t *cmd, const char *user,
			 herd_cluster_done_fn done, gpointer done_data, GError **error);

/* Changes submitted with @done_data that are still under way will be
 * answered to nobody (their owner goes away). */
void herd_cluster_forget(herd_cluster *c, gpointer done_data);

/* Seed the store of a new cluster with @cmd, durably (cluster create). */
json_t *herd_cluster_bootstrap(herd_cluster *c, json_t *cmd, const char *user, GError **error);

/* Forget the cluster: disconnect and empty the store (cluster leave). */
bool herd_cluster_reset(herd_cluster *c, GError **error);

/* Messages that are not the store's (STATUS, VM requests…) go to @fn. */
typedef void (*herd_cluster_message_fn)(gpointer user, uint32_t sender, unsigned type,
					const void *payload, size_t len);
void herd_cluster_set_message_handler(herd_cluster *c, herd_cluster_message_fn fn, gpointer user);
/* Multicast such a message to the group; false if not connected. */
bool herd_cluster_send(herd_cluster *c, unsigned type, const void *payload, size_t len);

/* Membership changed: the group (herdd processes; @group true, in the
 * agreed order of the group's messages) or corosync's ring or quorum
 * (@group false, at no particular point among the messages). */
typedef void (*herd_cluster_membership_fn)(gpointer user, bool group);
void herd_cluster_on_membership(herd_cluster *c, herd_cluster_membership_fn fn, gpointer user);
/* Everything applied became durable on every member (replica_is_durable()). */
typedef void (*herd_cluster_notify_fn)(gpointer user);
void herd_cluster_on_durable(herd_cluster *c, herd_cluster_notify_fn fn, gpointer user);
/* Remove every listener (changes, membership, durable) registered with @user. */
void herd_cluster_unlisten(herd_cluster *c, gpointer user);
/* Nodes corosync sees alive (its ring), sorted. */
size_t herd_cluster_ring(herd_cluster *c, uint32_t *out, size_t max);
/* Is node @nodeid in corosync's ring? */
bool herd_cluster_in_ring(herd_cluster *c, uint32_t nodeid);
/* Members of the group (herdd processes), sorted. */
size_t herd_cluster_group(herd_cluster *c, uint32_t *out, size_t max);

/* Who decides whether a lone node of two may go on (it fenced the other). */
typedef bool (*herd_cluster_survivor_fn)(gpointer user, uint32_t missing);
void herd_cluster_set_survivor_check(herd_cluster *c, herd_cluster_survivor_fn fn, gpointer user);

/* Who knows which nodes are lost and not fenced (see store/guard.h): a new
 * set of names, or NULL for none.  Every change submitted is checked. */
typedef GHashTable *(*herd_cluster_lost_fn)(gpointer user);
void herd_cluster_set_lost_check(herd_cluster *c, herd_cluster_lost_fn fn, gpointer user);
/* The nodes lost and not fenced as that check says now (a new set of
 * names, or NULL for none). */
GHashTable *herd_cluster_lost(herd_cluster *c);

/* Register @fn for every change; called on the main thread after apply. */
void herd_cluster_listen(herd_cluster *c, herd_cluster_change_fn fn, gpointer user);

store_state *herd_cluster_state(herd_cluster *c);
/* The bus's view: quorate, connected, link state towards @nodeid (or NULL),
 * and a reload of the configuration on every node (bus.h: @done runs
 * later, on the main loop). */
bool herd_cluster_quorate(herd_cluster *c);
bool herd_cluster_connected(herd_cluster *c);
json_t *herd_cluster_links(herd_cluster *c, uint32_t nodeid);
void herd_cluster_reload(herd_cluster *c, herd_bus_reload_done done, gpointer user);
/* How many reloads this node has asked for since herdd started. */
uint64_t herd_cluster_reloads(herd_cluster *c);
replica *herd_cluster_replica(herd_cluster *c);
/*
 * Does this node answer from its store?  True, or false with an
 * UNAVAILABLE error that says that its store failed, when and why, what
 * herd does about it (retry, rejoin) and what to do: while the store is
 * failed, and after it recovered until it is in sync with the others again.
 */
bool herd_cluster_store_check(herd_cluster *c, GError **error);
/* Node ids (GUINT_TO_POINTER) of nodes whose herd left the group saying why
 * (HERD_MSG_LEAVING) -> that reason (borrowed), until they are back in the
 * group or out of corosync's ring. */
GHashTable *herd_cluster_departures(herd_cluster *c);
/* The first link address of another node (the lowest id but this one), for
 * messages that say where else to look; NULL if there is none.  Borrowed. */
const char *herd_cluster_peer_address(herd_cluster *c);
/* Tests: the store's retry backoff (default HERD_STORE_RETRY_FIRST_MS and
 * HERD_STORE_RETRY_MAX_MS). */
void herd_cluster_set_store_retry(herd_cluster *c, unsigned first_ms, unsigned max_ms);
/* This node's corosync node id (0 before the first connection). */
uint32_t herd_cluster_nodeid(herd_cluster *c);
/* Is node @nodeid a member of the current configuration? */
bool herd_cluster_is_member(herd_cluster *c, uint32_t nodeid);
/* Phase, quorum, members, store position and failure, for `herd cluster status`. */
json_t *herd_cluster_status_json(herd_cluster *c);
/* The node object with corosync id @nodeid, or NULL. */
store_object *herd_cluster_node_by_id(herd_cluster *c, uint32_t nodeid);
