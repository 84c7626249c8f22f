#define G_LOG_DOMAIN "corosync"
#include "cluster/corosync_conf.h"

#include "common/error.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/object.h"
#include "store/replica.h"

#include <string.h>
#include <unistd.h>

char *herd_corosync_conf_render(store_state *st, GError **error)
{
	store_object *cluster = store_state_cluster(st);
	if (!cluster) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "There is no cluster configuration.");
		return NULL;
	}
	const store_settings *settings = &store_cluster_of(cluster)->settings;
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(st);
	size_t n_links = 0;
	for (guint i = 0; i < nodes->len; i++)
		n_links = MAX(n_links, store_node_of(nodes->pdata[i])->n_links);

	GString *s = g_string_new(NULL);
	g_string_append(s, "# Written by herd from the cluster configuration: edits are overwritten.\n"
			   "# Change it with 'herd cluster set' and 'herd cluster join/leave'.\n"
			   "totem {\n\tversion: 2\n");
	g_string_append_printf(s, "\tcluster_name: %s\n", cluster->name);
	/* OpenSSL (AES-NI) costs corosync about half the CPU of the default NSS
	 * per packet; both plugins ship with Debian's libknet1. */
	g_string_append(s, "\ttransport: knet\n\tcrypto_model: openssl\n\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n");
	g_string_append_printf(s, "\ttoken: %lld\n", settings->token_ms);
	g_string_append_printf(s, "\ttoken_coefficient: %lld\n",
			       settings->token_coefficient_ms);
	/* After a message the token keeps circling at full speed for this many
	 * rotations before the ring representative holds it (corosync's default
	 * is 30).  herd's changes come as a message and the members' answers a
	 * few milliseconds later, so with 30 the ring never rested and corosync
	 * crowded out herdd.  With 1 it rests after a single idle rotation, but a
	 * lost node was noticed later.  On the 3 test nodes (token 300; changes
	 * from 64 connections per node; power cut of one node, median of 10):
	 *   30: 2,500 changes/s, detection 0.68-0.71 s
	 *    3: 4,100 changes/s, detection 0.68 s
	 *    1: 4,500 changes/s, detection 0.72 s
	 * with commit latency (one client) 2.9-3.2 ms and idle CPU alike. */
	g_string_append(s, "\tseqno_unchanged_const: 3\n");
	/* Every packet on every link: losing one link loses nothing, so it is an
	 * alert, not a membership change (C2).  In passive mode knet moves to
	 * another link only after its ping timeout, longer than herd's token. */
	if (n_links > 1)
		g_string_append(s, "\tlink_mode: active\n");
	long long ping_interval = settings->knet_ping_interval_ms;
	long long ping_timeout = settings->knet_ping_timeout_ms;
	for (size_t l = 0; l < n_links; l++) {
		g_string_append_printf(s, "\tinterface {\n\t\tlinknumber: %zu\n", l);
		if (ping_interval > 0)
			g_string_append_printf(s, "\t\tknet_ping_interval: %lld\n", ping_interval);
		if (ping_timeout > 0)
			g_string_append_printf(s, "\t\tknet_ping_timeout: %lld\n", ping_timeout);
		g_string_append(s, "\t}\n");
	}
	g_string_append(s, "}\n\nnodelist {\n");
	for (guint i = 0; i < nodes->len; i++) {
		store_object *o = nodes->pdata[i];
		const store_node *n = store_node_of(o);
		g_string_append_printf(s, "\tnode {\n\t\tname: %s\n\t\tnodeid: %u\n", o->name,
				       n->nodeid);
		for (size_t l = 0; l < n->n_links; l++)
			g_string_append_printf(s, "\t\tring%zu_addr: %s\n", l, n->links[l]);
		g_string_append(s, "\t}\n");
	}
	g_string_append(s, "}\n\nquorum {\n\tprovider: corosync_votequorum\n");
	const char *algorithm = store_cluster_qdevice_algorithm(st);
	if (algorithm) {
		/* No two_node beside a device: the device's vote is what lets
		 * one of two nodes go on, and only the one qnetd chose.
		 * ffsplit gives it to the partition with more nodes, of two
		 * equal ones to the one with the lowest node id that reaches
		 * qnetd; with
		 * keep_active_partition_tie_breaker the partition that has the
		 * vote keeps it (a fenced node that boots cut off from its peer
		 * does not take it over).  sync_timeout bounds how long
		 * corosync holds a membership change for the device's vote
		 * (30 s by default). */
		const store_cluster *c = store_cluster_of(cluster);
		g_string_append_printf(s, "\tdevice {\n\t\tmodel: net\n\t\tvotes: 1\n\t\ttimeout: %d\n"
					  "\t\tsync_timeout: %d\n"
					  "\t\tnet {\n\t\t\ttls: on\n\t\t\thost: %s\n"
					  "\t\t\tport: %" G_GUINT64_FORMAT "\n"
					  "\t\t\talgorithm: %s\n\t\t\ttie_breaker: lowest\n"
					  "\t\t\tkeep_active_partition_tie_breaker: on\n"
					  "\t\t}\n\t}\n",
				       STORE_QDEVICE_TIMEOUT_MS, STORE_QDEVICE_TIMEOUT_MS, c->qdevice.host,
				       c->qdevice.port, algorithm);
	} else if (nodes->len == 2) {
		g_string_append(s, "\ttwo_node: 1\n");
	}
	g_string_append(s, "}\n\nlogging {\n\tto_stderr: yes\n\tto_syslog: no\n\ttimestamp: on\n}\n");
	return g_string_free(s, FALSE);
}

static bool write_if_changed(const char *path, const void *data, size_t len, mode_t mode,
			     bool *changed, GError **error)
{
	g_autofree char *old = NULL;
	gsize old_len = 0;
	*changed = false;
	if (g_file_get_contents(path, &old, &old_len, NULL) && old_len == len &&
	    memcmp(old, data, len) == 0)
		return true;
	*changed = true;
	return herd_file_write_atomic(path, data, len, mode, error);
}

bool herd_corosync_conf_write(store_state *st, const char *dir, bool *changed, GError **error)
{
	store_object *cluster = store_state_cluster(st);
	const char *key_b64 = cluster ? store_cluster_of(cluster)->authkey : NULL;
	g_autofree char *conf = herd_corosync_conf_render(st, error);
	if (!conf)
		return false;
	if (!key_b64) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL, "The cluster has no corosync key.");
		return false;
	}
	gsize key_len;
	g_autofree guchar *key = g_base64_decode(key_b64, &key_len);
	g_autofree char *conf_path = g_build_filename(dir, "corosync.conf", NULL);
	g_autofree char *key_path = g_build_filename(dir, "authkey", NULL);
	bool key_changed;
	return herd_mkdir_p(dir, 0755, error) &&
	       write_if_changed(key_path, key, key_len, 0400, &key_changed, error) &&
	       write_if_changed(conf_path, conf, strlen(conf), 0644, changed, error);
}

void herd_corosync_conf_remove(const char *dir)
{
	g_autofree char *conf_path = g_build_filename(dir, "corosync.conf", NULL);
	g_autofree char *key_path = g_build_filename(dir, "authkey", NULL);
	unlink(conf_path);
	unlink(key_path);
}

/*
 * corosync reads its file again only when asked, and then on every node at
 * once (corosync_cfg_reload_config() is cluster-wide; there is no reload of
 * one node).  So every node writes its file at the change itself, before its
 * replica makes the change durable, and once every member has made it
 * durable -- every member's file is written -- ONE node asks for the reload:
 * the member with the lowest node id.  (When each node asked after writing
 * its own file, the k-th join cost k cluster-wide reloads, k*k reloads in
 * all, and from some 20 members on corosync alone filled both cores of the
 * test machine and 32 nodes never formed.)  The member that admits a new
 * node asks too, after the same wait, before it answers the new node
 * (admission.c); the lowest member does not ask again if that was its
 * own, and its reload changes nothing if it was another's.  A herdd
 * that starts and finds its file out of date asks itself: its corosync may
 * have missed changes made while herdd was down.
 */
typedef struct {
	herd_cluster *cluster;
	char *dir;
	guint idle;
	guint timer;
	bool pending;        /* written, not yet reloaded */
	bool own;            /* this node asks whatever its rank (at start) */
	uint64_t index;      /* ...once every member made this index durable */
	uint64_t gen;        /* (or synced since: they hold it then) */
	uint64_t reloads;    /* herd_cluster_reloads() when written */
	gint64 since_us;
} follower;

/* Wait at most this long for the other members' files: a member that
 * does not make the change durable (hung, or on its way out) must not
 * keep the others' corosync from reading theirs. */
#define RELOAD_WAIT_US (10 * G_USEC_PER_SEC)
#define RELOAD_POLL_MS 50

static void on_reloaded(const GError *error, gpointer data)
{
	if (error)
		log_warn("%s", error->message);
}

/* Is this node the member with the lowest id among the cluster's nodes (a
 * node on its way out, removed from the store, is not asked)? */
static bool lowest_member(herd_cluster *c)
{
	uint32_t ids[512];
	size_t n = MIN(replica_members(herd_cluster_replica(c), ids, G_N_ELEMENTS(ids)),
		       G_N_ELEMENTS(ids));
	for (size_t i = 0; i < n; i++)
		if (herd_cluster_node_by_id(c, ids[i]))
			return ids[i] == herd_cluster_nodeid(c);
	return false;
}

/* Has every member applied the change, and so written its file?  Once
 * it is durable on every member; also once a sync into a new configuration
 * (a node left or came) has ended: every member holds this node's state or
 * a newer one then, and wrote its file on the way (changed() again). */
static bool written_everywhere(follower *f)
{
	replica *rp = herd_cluster_replica(f->cluster);
	if (replica_get_phase(rp) != REPLICA_SYNCED)
		return false;
	return replica_durable_index(rp) >= f->index ||
	       herd_cluster_state(f->cluster)->pos.current_gen != f->gen;
}

static gboolean on_reload_timer(gpointer data)
{
	follower *f = data;
	if (!f->pending) {
		f->timer = 0;
		return G_SOURCE_REMOVE;
	}
	bool waited = g_get_monotonic_time() - f->since_us > RELOAD_WAIT_US;
	bool connected = herd_cluster_connected(f->cluster);
	if (!waited && (!connected || !written_everywhere(f)))
		return G_SOURCE_CONTINUE;
	f->pending = false;
	f->timer = 0;
	/* Not connected for so long: corosync is down, and reads the file
	 * when it starts.  A reload this node asked for since it wrote the
	 * file (a join it admitted, after the same wait) did the work. */
	if (connected && herd_cluster_reloads(f->cluster) == f->reloads &&
	    (f->own || lowest_member(f->cluster))) {
		log_info("corosync.conf changed on every member%s; asking corosync to reload it",
			 waited ? " (or not all made the change durable in 10 s)" : "");
		herd_cluster_reload(f->cluster, on_reloaded, NULL);
	}
	f->own = false;
	return G_SOURCE_REMOVE;
}

/* Write the files from the store now; if corosync.conf changed (true), a
 * reload follows once every member has made the change durable. */
static bool write_now(follower *f)
{
	store_state *st = herd_cluster_state(f->cluster);
	if (!store_state_cluster(st))
		return false;
	/* Removed from the cluster (leaving): the file goes with the node's
	 * membership; rewriting it without this node and reloading would only
	 * drop corosync from the ring before the leave is acknowledged. */
	if (!store_state_get_by_name(st, STORE_KIND_NODE, herd_cluster_node_name(f->cluster)))
		return false;
	g_autoptr(GError) err = NULL;
	bool changed = false;
	if (!herd_corosync_conf_write(st, f->dir, &changed, &err)) {
		log_err("cannot write corosync's configuration: %s", err->message);
		return false;
	}
	if (!changed)
		return false;
	f->pending = true;
	f->index = st->pos.index;
	f->gen = st->pos.current_gen;
	f->reloads = herd_cluster_reloads(f->cluster);
	f->since_us = g_get_monotonic_time();
	if (!f->timer)
		f->timer = g_timeout_add(RELOAD_POLL_MS, on_reload_timer, f);
	return true;
}

static gboolean on_start(gpointer data)
{
	follower *f = data;
	f->idle = 0;
	if (write_now(f))
		f->own = true;
	return G_SOURCE_REMOVE;
}

bool herd_corosync_conf_relevant(GPtrArray *changes)
{
	for (guint i = 0; changes && i < changes->len; i++) {
		store_change *c = changes->pdata[i];
		if (c->kind == STORE_KIND_NODE || c->kind == STORE_KIND_CLUSTER)
			return true;
	}
	return changes == NULL;
}

/* In the replica's callback: before this node makes the change durable. */
static void on_change(gpointer user, GPtrArray *changes)
{
	if (herd_corosync_conf_relevant(changes))
		(void)write_now(user);
}

void herd_corosync_conf_follow(herd_cluster *cluster, const char *dir)
{
	follower *f = g_new0(follower, 1); /* lives as long as the daemon */
	f->cluster = cluster;
	f->dir = g_strdup(dir);
	herd_cluster_listen(cluster, on_change, f);
	/* Also once at start: a new herd may write the file differently, and
	 * the store may have changed while herdd was down. */
	f->idle = g_idle_add(on_start, f);
}
