/*
 * Forming a cluster and leaving it, on this node: create (a certificate
 * authority, corosync's key, the store's first change, corosync.conf,
 * corosync started, the first sync), join (the member's CA checked against
 * the fingerprint the operator confirmed, this node added by the member,
 * its certificate, corosync.conf and key taken on, corosync started, the
 * first sync), the member's side of a join (the new node's object, its
 * certificate signed, corosync told), and leave (this node removed by the
 * others, corosync stopped, the cluster's files and store forgotten).  A
 * step that fails undoes what this node took on, and says so.
 *
 * The node's certificate and its service manager are the daemon's: they
 * come through herd_formation_io.  Asynchronous on the main loop.
 */
#pragma once

#include "cluster/service.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

/* How long a create or join may take to reach a synced, quorate store. */
#define HERD_FORMATION_TIMEOUT_MS 60000
/* How long a join may wait on the member for its turn (join_queue.h). */
#define HERD_JOIN_WAIT_MS 90000

typedef struct herd_formation herd_formation;

/* The outcome: @result (borrowed) or @error. */
typedef void (*herd_formation_done)(json_t *result, const GError *error, gpointer user);
typedef void (*herd_formation_service_done)(const GError *error, gpointer user);

typedef struct herd_formation_io {
	/* Take on the cluster's CA and this node's certificate and key. */
	bool (*install_tls)(gpointer user, const char *ca_pem, const char *cert_pem,
			    const char *key_pem, GError **error);
	/* Back to a self-signed certificate. */
	bool (*reset_tls)(gpointer user, GError **error);
	/* The cluster CA this node trusts (PEM; g_free), or NULL. */
	char *(*ca_pem)(gpointer user);
	/* "start" or "stop" @service (corosync) with the service manager. */
	void (*service)(gpointer user, const char *action, const char *service,
			herd_formation_service_done done, gpointer data);
} herd_formation_io;

herd_formation *herd_formation_new(herd_cluster *cluster, const char *node_name,
				   const char *corosync_dir, const herd_formation_io *io,
				   gpointer user);
void herd_formation_free(herd_formation *f);

/* Is this node half-way through a join (corosync's files and the CA, but an
 * empty store: herdd restarted meanwhile)?  Then it finishes by syncing. */
bool herd_formation_joining(herd_formation *f);
/* Is this node a member, or becoming one?  (Then create and join refuse.) */
bool herd_formation_member(herd_formation *f);
/* The name of the cluster this node is joining while corosync runs and the
 * store has not come yet (g_free), or NULL when it is not in that state. */
char *herd_formation_joining_name(herd_formation *f);

/*
 * Create cluster @name with this node as its first member, on @links (1–8
 * checked addresses), with @settings (checked by cluster_settings_validate())
 * and the admin password @password.  Done: {"cluster","uuid","node","fingerprint"}.
 */
void herd_formation_create(herd_formation *f, const char *name, const char *const *links,
			   size_t n_links, const char *password, json_t *settings,
			   const char *user, herd_formation_done done, gpointer data);
/*
 * Join the cluster of the member at @address, whose CA must have the SHA-256
 * @fingerprint (normalised), with the admin @password, on @links.
 * Done: like create's.
 */
void herd_formation_join(herd_formation *f, const char *address, const char *fingerprint,
			 const char *password, const char *const *links, size_t n_links,
			 herd_formation_done done, gpointer data);
/*
 * The member's side of a join: add node @name on @links, speaking wire
 * protocol @protocol, and sign its @csr.  Joins sent at the same time wait
 * their turn here (cluster/join_queue.h), each up to HERD_JOIN_WAIT_MS,
 * then are refused saying why; one that waiting cannot help (a node that
 * was up is lost, or the majority is short with no new node on its way)
 * is refused at once.  Done: {"cluster","nodeid","ca_cert",
 * "node_cert","corosync_conf","authkey"}.
 */
void herd_formation_add_node(herd_formation *f, const char *name, const char *const *links,
			     size_t n_links, const char *csr, long long protocol, const char *user,
			     herd_formation_done done, gpointer data);
/* Tests: how long a join may wait for its turn (default HERD_JOIN_WAIT_MS). */
void herd_formation_set_join_wait(herd_formation *f, unsigned wait_ms);
/* Leave the cluster (@force: locally, whatever the others say).
 * Done: {"cluster","left"}. */
void herd_formation_leave(herd_formation *f, bool force, const char *user,
			  herd_formation_done done, gpointer data);
/* Remove node @node, which is powered off for good (not this node). */
void herd_formation_remove_node(herd_formation *f, store_object *node, const char *user,
				herd_formation_done done, gpointer data);
