#define G_LOG_DOMAIN "san"
#include "daemon/san_link.h"

#include "common/json.h"
#include "common/log.h"
#include "daemon/storage_cert.h"
#include "ha/esan.h"
#include "ha/job_watch.h"
#include "store/command.h"
#include "store/disk.h"
#include "store/cluster.h"
#include "store/job.h"
#include "store/node.h"
#include "store/replica.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <string.h>

#define RETRY_MS 1000
#define OUTDATE_RETRY_MS 300
/* The longest line herd-san may send (a state event is a few hundred bytes). */
#define LINE_MAX_BYTES 65536

struct herd_san_link {
	herd_cluster *cluster;
	herd_ha *ha;
	char *node;
	char *socket_path;
	char *tls_dir;
	GSocketClient *client;
	GSocketConnection *conn;
	GDataInputStream *in;
	GOutputStream *out;
	GCancellable *cancel;
	guint retry;
	guint broken;               /* a send failed: reconnect (idle) */
	guint again;                /* send what herd-san refused again */
	GQueue *asked;              /* the ops sent, not answered yet (json_t*) */
	bool said_missing;          /* "herd-san not answering" logged once */
	json_t *sent;               /* {uuid: the volume op last sent} */
	json_t *states;             /* {uuid: herd-san's last state of it} */
	json_t *waiting;            /* {uuid: the "seq" of its peer-lost}: writes wait for "outdated" */
	GHashTable *submitting;     /* uuid -> its outdate command's context, under way */
	guint outdate_timer;
	json_t *detaching;          /* {uuid: true}: a failed local disk waits for the store */
	GHashTable *peer_down;      /* uuids told "peer-down" since the peer was last seen */
	json_t *verifying;          /* {uuid: the verification id herd-san was asked} */
	json_t *results;            /* {uuid: herd-san's verify event}: not recorded yet */
	GHashTable *recording;      /* uuid -> its verification result's context, under way */
	guint results_timer;
	json_t *reported;           /* {uuid: true}: the volumes herd-san named since connected */
	json_t *config_sent;        /* the last "config" op, or NULL */
	json_t *chosen;             /* {uuid: "discard@VERSION" or "promote@VERSION"} sent */
	bool config_refused;        /* the last answer to a config was a refusal (logged) */
	json_t *attached;           /* {uuid: the attach id herd-san was asked} */
	GHashTable *job_changes;    /* uuid -> its sync job's change under way */
	guint job_tick;
};

static void connect_soon(herd_san_link *l, unsigned ms);
static void publish_states(herd_san_link *l);

static store_state *state(herd_san_link *l)
{
	return herd_cluster_state(l->cluster);
}

static void lost(herd_san_link *l, const char *why);

static gboolean on_broken(gpointer user)
{
	herd_san_link *l = user;
	l->broken = 0;
	lost(l, "herd-san does not take what herdd sends");
	return G_SOURCE_REMOVE;
}

/* Small lines on a local socket that herd-san reads at once; one that does
 * not fit at once means herd-san hangs: herdd's loop never waits for it,
 * it drops the connection and sends everything again on the next. */
static void send_op(herd_san_link *l, json_t *op)
{
	if (!l->out)
		return;
	g_autofree char *text = json_dumps(op, JSON_COMPACT);
	g_autofree char *line = g_strconcat(text, "\n", NULL);
	g_autoptr(GError) err = NULL;
	gssize n = g_pollable_output_stream_write_nonblocking(G_POLLABLE_OUTPUT_STREAM(l->out), line,
							      strlen(line), NULL, &err);
	if (n == (gssize)strlen(line)) {
		/* herd-san answers every op, in order. */
		g_queue_push_tail(l->asked, json_incref(op));
		return;
	}
	log_warn("herd-san: cannot send: %s", err ? err->message : "its socket is full");
	l->out = NULL;
	if (!l->broken)
		l->broken = g_idle_add(on_broken, l);
}

static void send_simple(herd_san_link *l, const char *op, const char *uuid)
{
	g_autoptr(json_t) j = json_pack("{s:s,s:s}", "op", op, "uuid", uuid);
	send_op(l, j);
}

/* The cluster's eSAN settings and this node's certificate files; sent
 * again when a setting or its storage address changes.  Not before the
 * node is in a cluster and has the cluster's certificate: herd-san would
 * refuse it, and a blank host's would be refused again and again (each a
 * line in herd-san's log) until it joins.  (A join installs the
 * certificate before the store comes; a create after it: its first
 * membership sends it.) */
static void send_config(herd_san_link *l)
{
	g_autofree char *ca = g_build_filename(l->tls_dir, "ca.crt", NULL);
	if (!store_state_cluster(state(l)) || !g_file_test(ca, G_FILE_TEST_EXISTS)) {
		g_clear_pointer(&l->config_sent, json_decref);
		return;
	}
	const store_settings *s = store_settings_of(state(l));
	/* A storage address of its own needs a certificate that names it. */
	g_autoptr(GError) err = NULL;
	g_autofree char *tls_dir = herd_storage_cert_dir(state(l), l->node, l->tls_dir, &err);
	if (!tls_dir) {
		log_warn("eSAN: %s Its peers cannot verify this node's storage address until it has one.",
			 err->message);
		tls_dir = g_strdup(l->tls_dir);
	}
	g_autoptr(json_t) config = json_pack("{s:s,s:s,s:I,s:I}", "op", "config", "tls_dir", tls_dir,
					     "resync_rate", (json_int_t)s->esan_resync_mibs << 20, "timeout_ms",
					     (json_int_t)s->esan_timeout_ms);
	if (json_equal(config, l->config_sent))
		return;
	send_op(l, config);
	json_decref(l->config_sent);
	l->config_sent = json_incref(config);
}

/* ------------------------------------------------------------------ */
/* Volumes: what the store says this node holds                        */

/* An operator's choice between the replicas (promote --force, resolve
 * --keep: the store marks the other replica discarded), carried out once
 * per version of the disk: the discarded side's plugin throws its replica
 * away and becomes a full-sync target; the kept side, if it is alone,
 * starts a new generation, so that the two never look like a split brain. */
static void send_choices(herd_san_link *l)
{
	store_object *me = store_state_get_by_name(state(l), STORE_KIND_NODE, l->node);
	const char *uuid;
	json_t *op;
	json_object_foreach(l->sent, uuid, op) {
		store_object *o = me ? store_state_get(state(l), STORE_KIND_DISK, uuid) : NULL;
		const store_replica *mine = o ? store_disk_replica(store_disk_of(o), me->uuid) : NULL;
		const store_replica *peer = o ? store_disk_peer(store_disk_of(o), me->uuid) : NULL;
		const char *what = !mine ? NULL : mine->discard ? "discard" :
				   mine->state == STORE_REPLICA_UPTODATE && peer->discard ? "promote" : NULL;
		if (!what)
			continue;
		g_autofree char *key = g_strdup_printf("%s@%" G_GUINT64_FORMAT, what, o->version);
		if (g_strcmp0(json_string_value(json_object_get(l->chosen, uuid)), key) == 0)
			continue;
		json_object_set_new(l->chosen, uuid, json_string(key));
		log_info("eSAN disk %s: telling herd-san to %s this node's replica (an operator's choice)", o->name,
			 what);
		send_simple(l, what, uuid);
	}
}

static void sync_volumes(herd_san_link *l)
{
	if (!l->out)
		return;
	g_autoptr(json_t) now = herd_esan_volumes(state(l), l->node);
	const char *uuid;
	json_t *op, *tmp;
	json_object_foreach(now, uuid, op)
		if (!json_equal(op, json_object_get(l->sent, uuid)))
			send_op(l, op);
	/* Deleted from the store while this herdd ran, or moved away from this
	 * node: herd-san removes it.  (A volume the store never showed this
	 * herdd is left alone: a store not yet synced must not delete data.) */
	json_object_foreach_safe(l->sent, tmp, uuid, op)
		if (!json_object_get(now, uuid)) {
			store_object *disk = store_state_get(state(l), STORE_KIND_DISK, uuid);
			if (!disk || !store_disk_of(disk)->esan)
				send_simple(l, "remove", uuid);
			json_object_del(l->sent, uuid);
		}
	json_object_update(l->sent, now);
	send_choices(l);
}

/* This node's store is the cluster's current word: in sync with every
 * member of a quorate partition. */
static bool store_current(herd_san_link *l)
{
	replica *r = herd_cluster_replica(l->cluster);
	return r && replica_get_phase(r) == REPLICA_SYNCED && replica_is_primary(r) &&
	       herd_cluster_quorate(l->cluster);
}

/* Volumes herd-san serves whose disk the store no longer holds (deleted
 * while the node was down or herdd was not running): removed, with
 * their files in herd-san's directories, once the store is current — never
 * on the word of a store that may not have seen a disk's creation yet. */
static void remove_orphans(herd_san_link *l)
{
	if (!l->out || !json_object_size(l->reported) || !store_current(l))
		return;
	g_autoptr(json_t) gone = herd_esan_orphans(state(l), l->node, l->reported);
	size_t i;
	json_t *u;
	json_array_foreach(gone, i, u) {
		const char *uuid = json_string_value(u);
		log_info("eSAN volume %s: herd-san serves it, but the store has no such disk (deleted while "
			 "the node was away): removing it and its replica", uuid);
		send_simple(l, "remove", uuid);
		json_object_del(l->reported, uuid);
		json_object_del(l->states, uuid);
	}
	if (json_array_size(gone))
		publish_states(l);
}

/* Has herd-san been asked request @id (a verification, an attach) of disk
 * @uuid since connected?  Else it is noted as asked. */
static bool asked_already(json_t *asked, const char *uuid, int64_t id)
{
	if (json_integer_value(json_object_get(asked, uuid)) == id)
		return true;
	json_object_set_new(asked, uuid, json_integer(id));
	return false;
}

/* What the store asks of this node's herd-san that it was not asked yet
 * (again after a reconnect: an answer may have been lost): verifications,
 * and attaches (herd-san does nothing for a replica that is not detached,
 * so an attach done already is not done twice). */
static void send_requests(herd_san_link *l)
{
	store_object *me = store_state_get_by_name(state(l), STORE_KIND_NODE, l->node);
	if (!me || !l->out)
		return;
	g_autoptr(GPtrArray) disks = store_state_list(state(l), STORE_KIND_DISK);
	for (guint i = 0; i < disks->len; i++) {
		store_object *o = disks->pdata[i];
		const store_disk *d = store_disk_of(o);
		if (!d->esan)
			continue;
		const store_esan_verify *v = &d->verify;
		if (v->id && !v->done && g_strcmp0(v->node, me->uuid) == 0 &&
		    !asked_already(l->verifying, o->uuid, v->id)) {
			g_autoptr(json_t) op = json_pack("{s:s,s:s,s:I}", "op", "verify", "uuid", o->uuid, "id",
							 (json_int_t)v->id);
			send_op(l, op);
		}
		const store_esan_attach *at = &d->attach;
		if (at->id && g_strcmp0(at->node, me->uuid) == 0 && !asked_already(l->attached, o->uuid, at->id)) {
			log_info("eSAN disk %s: asking herd-san to attach this node's detached replica again (herd "
				 "disk attach)", o->name);
			send_simple(l, "attach", o->uuid);
		}
	}
}

/* A change under way for disk @uuid, answered to @l (a verification's
 * result, an outdate, a sync's job). */
typedef struct {
	herd_san_link *l;
	char *uuid;
} disk_change;

static disk_change *disk_change_new(herd_san_link *l, GHashTable *table, const char *uuid)
{
	disk_change *c = g_new0(disk_change, 1);
	c->l = l;
	c->uuid = g_strdup(uuid);
	g_hash_table_insert(table, g_strdup(uuid), c);
	return c;
}

static void disk_change_free(disk_change *c)
{
	g_free(c->uuid);
	g_free(c);
}

/* ------------------------------------------------------------------ */
/* Sync jobs: this node's replica is the source of a sync (docs/jobs.md) */

static void follow_sync(herd_san_link *l, const char *uuid);

static void on_job_committed(json_t *result, const GError *error, gpointer user)
{
	disk_change *c = user;
	herd_san_link *l = c->l;
	g_hash_table_remove(l->job_changes, c->uuid);
	if (error)
		log_debug("eSAN disk %s: its sync job was not written (%s); again at the next tick", c->uuid,
			  error->message);
	else
		follow_sync(l, c->uuid); /* a state that came meanwhile */
	disk_change_free(c);
}

static void submit_job_change(herd_san_link *l, const char *uuid, json_t *cmd)
{
	disk_change *c = disk_change_new(l, l->job_changes, uuid);
	g_autoptr(GError) err = NULL;
	if (herd_cluster_submit(l->cluster, cmd, "herd", on_job_committed, c, &err))
		return;
	log_debug("eSAN disk %s: its sync job not written: %s", uuid, err->message);
	g_hash_table_remove(l->job_changes, uuid);
	disk_change_free(c);
}

/* Begin, advance or end the job of the sync of disk @uuid from here, as
 * herd-san's last state of it says.  One change under way per disk; the
 * tick makes what could not be made now. */
static void follow_sync(herd_san_link *l, const char *uuid)
{
	store_state *st = state(l);
	if (!st || g_hash_table_contains(l->job_changes, uuid))
		return;
	store_object *job = store_job_running(st, "esan-sync", uuid);
	if (job && strcmp(store_job_of(job)->node, l->node) != 0)
		return; /* another node's: it ends it, or the coordinator does */
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, l->node);
	store_object *disk = store_state_get(st, STORE_KIND_DISK, uuid);
	const store_disk *d = disk && store_disk_of(disk)->esan ? store_disk_of(disk) : NULL;
	const store_replica *peer = d && me ? store_disk_peer(d, me->uuid) : NULL;
	if (!peer && !job)
		return;
	store_object *peer_node = peer ? store_state_get(st, STORE_KIND_NODE, peer->node) : NULL;
	herd_job_sync_facts f = {
		.disk = peer ? disk->name : NULL,
		.peer = peer_node ? peer_node->name : job ? store_job_of(job)->to : "?",
		.peer_discarded = peer && peer->discard,
		.sync_by = d ? d->sync_by : NULL,
		.san = json_object_get(l->states, uuid),
	};
	int64_t now_ms = g_get_real_time() / 1000;
	g_autoptr(json_t) cmd = NULL;
	if (!job) {
		const char *owner = NULL;
		g_autofree char *line = herd_job_sync_begins(&f, l->node, &owner);
		if (!line)
			return;
		char job_uuid[STORE_UUID_LEN + 1];
		cmd = store_job_cmd_create("esan-sync", disk->name, uuid, f.peer, 0, owner, l->node, line, now_ms,
					   job_uuid);
		log_info("job %.8s: %s", job_uuid, line);
	} else {
		herd_job_step s;
		herd_job_sync_step(job, &f, now_ms, &s);
		if (s.end != STORE_JOB_RUNNING) {
			log_info("job %s (sync of disk %s to %s) %s: %s", job->name, store_job_of(job)->target, f.peer,
				 store_job_state_name(s.end), s.error ? s.error : s.line);
			cmd = store_job_cmd_finish(job, s.end, s.error ? s.error : s.line, now_ms);
		} else if (s.progress >= 0 || s.line) {
			cmd = store_job_cmd_update(job, s.progress, s.line, now_ms);
		}
		herd_job_step_clear(&s);
	}
	if (cmd)
		submit_job_change(l, uuid, cmd);
}

/* Every volume herd-san reported, and this node's running sync jobs (a
 * disk deleted meanwhile). */
static gboolean on_job_tick(gpointer user)
{
	herd_san_link *l = user;
	store_state *st = state(l);
	if (!st)
		return G_SOURCE_CONTINUE;
	g_autoptr(GPtrArray) jobs = store_state_list(st, STORE_KIND_JOB);
	for (guint i = 0; i < jobs->len; i++) {
		const store_job *j = store_job_of(jobs->pdata[i]);
		if (j->state == STORE_JOB_RUNNING && strcmp(j->kind, "esan-sync") == 0 &&
		    strcmp(j->node, l->node) == 0 && j->target_uuid)
			follow_sync(l, j->target_uuid);
	}
	g_autoptr(json_t) keys = json_copy(l->states);
	const char *uuid;
	json_t *v;
	json_object_foreach(keys, uuid, v)
		follow_sync(l, uuid);
	return G_SOURCE_CONTINUE;
}

static void record_results(herd_san_link *l);

static gboolean on_results_timer(gpointer user)
{
	herd_san_link *l = user;
	l->results_timer = 0;
	record_results(l);
	return G_SOURCE_REMOVE;
}

static void on_verified(json_t *result, const GError *error, gpointer user)
{
	disk_change *c = user;
	herd_san_link *l = c->l;
	g_hash_table_remove(l->recording, c->uuid);
	if (error) {
		/* The disk changed in between (a replica's state, say), or no
		 * quorum: made again from the disk as it is then. */
		log_info("eSAN disk %s: recording its verification failed (%s); trying again", c->uuid,
			 error->message);
		if (!l->results_timer)
			l->results_timer = g_timeout_add(OUTDATE_RETRY_MS, on_results_timer, l);
	} else {
		json_object_del(l->results, c->uuid);
	}
	disk_change_free(c);
}

/* Record every verification result not recorded yet, each against the
 * disk's current version; a result the disk asks no more is dropped. */
static void record_results(herd_san_link *l)
{
	g_autoptr(json_t) keys = json_copy(l->results);
	const char *uuid;
	json_t *ev;
	json_object_foreach(keys, uuid, ev) {
		if (g_hash_table_contains(l->recording, uuid))
			continue;
		g_autoptr(json_t) cmd = herd_esan_verified_cmd(state(l), uuid, ev, g_get_real_time() / 1000);
		if (!cmd) {
			json_object_del(l->results, uuid);
			continue;
		}
		disk_change *c = disk_change_new(l, l->recording, uuid);
		g_autoptr(GError) err = NULL;
		if (herd_cluster_submit(l->cluster, cmd, "eSAN", on_verified, c, &err))
			continue;
		g_hash_table_remove(l->recording, uuid);
		disk_change_free(c);
		log_warn("eSAN disk %s: cannot record its verification yet: %s", uuid, err->message);
		if (!l->results_timer)
			l->results_timer = g_timeout_add(OUTDATE_RETRY_MS, on_results_timer, l);
	}
}

static void verified(herd_san_link *l, const char *uuid, json_t *j)
{
	json_object_set_new(l->results, uuid, json_deep_copy(j));
	record_results(l);
}

/* Tell herd-san of each volume whose peer node corosync no longer sees, so
 * that its writes do not wait for TCP to notice.  Only on a ring that shows
 * this node: a herdd that has just started connects to herd-san before
 * corosync has told it the ring, and an empty ring then said "every peer
 * is down" — which dropped every replication link, and ended a sync under
 * way as failed at each restart of herdd that lost that race. */
static void check_peers(herd_san_link *l)
{
	uint32_t ring[256];
	size_t n = MIN(herd_cluster_ring(l->cluster, ring, G_N_ELEMENTS(ring)), G_N_ELEMENTS(ring));
	uint32_t me = herd_cluster_nodeid(l->cluster);
	store_state *st = state(l);
	const char *uuid;
	json_t *op;
	if (!st)
		return;
	json_object_foreach(l->sent, uuid, op) {
		const char *peer = json_string_value(json_object_get(json_object_get(op, "peer"), "node"));
		int gone = herd_esan_peer_gone(ring, n, me, store_node_id(st, peer));
		if (gone < 0)
			continue;
		if (!gone) {
			g_hash_table_remove(l->peer_down, uuid);
		} else if (!g_hash_table_contains(l->peer_down, uuid)) {
			g_hash_table_add(l->peer_down, g_strdup(uuid));
			send_simple(l, "peer-down", uuid);
		}
	}
}

/* ------------------------------------------------------------------ */
/* peer-lost: the peer's replica is recorded outdated, then alone       */

static void try_outdate(herd_san_link *l, const char *uuid);

static void on_outdated(json_t *result, const GError *error, gpointer user)
{
	disk_change *c = user;
	herd_san_link *l = c->l;
	bool waits = json_object_get(l->waiting, c->uuid) != NULL;
	g_hash_table_remove(l->submitting, c->uuid);
	if (error)
		log_warn("eSAN disk %s: recording its peer replica outdated failed (%s)%s", c->uuid,
			 error->message, waits ? "; trying again" : "");
	else
		log_info("eSAN disk %s: its peer replica is recorded outdated%s", c->uuid,
			 waits ? "; writing alone" : " (a resync overwrites it)");
	/* Either way the store decides: already outdated, try again, or not allowed. */
	if (waits)
		try_outdate(l, c->uuid);
	disk_change_free(c);
}

/* Submit the command that records the peer of this node's replica of
 * @uuid outdated; true if it is under way (or was already).  False with
 * *@already when the store records it so, else with @error (not now). */
static bool submit_outdate(herd_san_link *l, const char *uuid, bool *already, GError **error)
{
	*already = false;
	if (g_hash_table_contains(l->submitting, uuid))
		return true;
	g_autoptr(json_t) cmd = herd_esan_outdate_cmd(state(l), uuid, l->node, already, error);
	if (!cmd)
		return false;
	disk_change *c = disk_change_new(l, l->submitting, uuid);
	if (herd_cluster_submit(l->cluster, cmd, "eSAN", on_outdated, c, error))
		return true;
	g_hash_table_remove(l->submitting, uuid);
	disk_change_free(c);
	return false;
}

/* @try for every disk named in @set (a copy of the keys: @try changes
 * the object). */
static void try_each(herd_san_link *l, json_t *set, void (*try)(herd_san_link *, const char *))
{
	g_autoptr(json_t) keys = json_copy(set);
	const char *uuid;
	json_t *v;
	json_object_foreach(keys, uuid, v)
		try(l, uuid);
}

/* Every disk whose writes wait. */
static void try_all_outdates(herd_san_link *l)
{
	try_each(l, l->waiting, try_outdate);
}

static void try_detach(herd_san_link *l, const char *uuid);

static gboolean on_outdate_timer(gpointer user)
{
	herd_san_link *l = user;
	l->outdate_timer = 0;
	try_all_outdates(l);
	try_each(l, l->detaching, try_detach);
	return G_SOURCE_REMOVE;
}

static void try_outdate(herd_san_link *l, const char *uuid)
{
	bool already = false;
	g_autoptr(GError) err = NULL;
	if (submit_outdate(l, uuid, &already, &err))
		return;
	if (already) {
		/* It answers that very peer-lost (its "seq"): a later outage is not taken for over. */
		g_autoptr(json_t) op = json_pack("{s:s,s:s}", "op", "outdated", "uuid", uuid);
		json_t *seq = json_object_get(l->waiting, uuid);
		if (json_is_integer(seq))
			json_object_set(op, "seq", seq);
		json_object_del(l->waiting, uuid);
		send_op(l, op);
		return;
	}
	/* Not now (no quorum, the peer not fenced yet, this replica itself
	 * not up to date): the writes keep waiting; try again. */
	log_debug("eSAN disk %s: cannot record its peer outdated yet: %s", uuid, err ? err->message : "?");
	if (!l->outdate_timer)
		l->outdate_timer = g_timeout_add(OUTDATE_RETRY_MS, on_outdate_timer, l);
}

/* ------------------------------------------------------------------ */
/* disk-failed: this node's replica is recorded outdated, then detached */

static void on_detach_committed(json_t *result, const GError *error, gpointer user)
{
	disk_change *c = user;
	herd_san_link *l = c->l;
	g_hash_table_remove(l->submitting, c->uuid);
	if (error)
		log_warn("eSAN disk %s: recording its failed replica outdated failed (%s); trying again",
			 c->uuid, error->message);
	if (json_object_get(l->detaching, c->uuid))
		try_detach(l, c->uuid);
	disk_change_free(c);
}

/* The store has this node's replica outdated and discarded: herd-san's
 * held I/O goes to the peer.  Else submit that (again, until it holds). */
static void try_detach(herd_san_link *l, const char *uuid)
{
	if (g_hash_table_contains(l->submitting, uuid))
		return;
	bool already = false;
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) cmd = herd_esan_detach_cmd(state(l), uuid, l->node, &already, &err);
	if (already) {
		log_info("eSAN disk %s: its replica here is recorded outdated; the peer serves it", uuid);
		json_object_del(l->detaching, uuid);
		send_simple(l, "detached", uuid);
		return;
	}
	if (cmd) {
		disk_change *c = disk_change_new(l, l->submitting, uuid);
		if (herd_cluster_submit(l->cluster, cmd, "eSAN", on_detach_committed, c, &err))
			return;
		g_hash_table_remove(l->submitting, uuid);
		disk_change_free(c);
	}
	log_debug("eSAN disk %s: cannot record its failed replica outdated yet: %s", uuid,
		  err ? err->message : "?");
	if (!l->outdate_timer)
		l->outdate_timer = g_timeout_add(OUTDATE_RETRY_MS, on_outdate_timer, l);
}

/* This node's replica is the source of a resync: the peer's is being
 * overwritten, so the store must not call it up to date (a peer that came
 * back before this side wrote alone: the replica of a crashed primary).
 * Its plugin refuses a local writer meanwhile anyway (it knows itself
 * inconsistent); the store says so to the scheduler and operators.  As
 * try_outdate(), without writes that wait for it. */
static void peer_behind(herd_san_link *l, const char *uuid)
{
	bool already = false;
	g_autoptr(GError) err = NULL;
	if (!submit_outdate(l, uuid, &already, &err) && !already)
		log_debug("eSAN disk %s: cannot record its peer outdated yet: %s", uuid, err ? err->message : "?");
}

static void on_synced_committed(json_t *result, const GError *error, gpointer user)
{
	g_autofree char *uuid = user;
	if (error)
		log_warn("eSAN disk %s: recording its peer up to date failed: %s", uuid, error->message);
	else
		log_info("eSAN disk %s: both replicas are up to date", uuid);
}

/* ------------------------------------------------------------------ */
/* Reading herd-san                                                     */

static void read_next(herd_san_link *l);

static void publish_states(herd_san_link *l)
{
	/* A copy: the engine keeps what it is given and compares the next
	 * with it (l->states changes in place). */
	g_autoptr(json_t) copy = json_deep_copy(l->states);
	herd_ha_set_esan(l->ha, copy);
}

static gboolean on_again(gpointer user)
{
	herd_san_link *l = user;
	l->again = 0;
	if (l->out) {
		send_config(l);
		sync_volumes(l);
		send_requests(l);
	}
	return G_SOURCE_REMOVE;
}

/* herd-san refused @op (NULL: an answer to nothing herdd asked): forget
 * that it was sent, so that it goes again in a second (a config before
 * this node had its certificate from the cluster, a volume herd-san could
 * not make yet). */
static void refused(herd_san_link *l, json_t *op, const char *why)
{
	const char *name = json_string_value(json_object_get(op, "op"));
	const char *uuid = json_string_value(json_object_get(op, "uuid"));
	/* A config refused until the node has the cluster's certificate: once. */
	bool quiet = g_strcmp0(name, "config") == 0 && l->config_refused;
	l->config_refused = g_strcmp0(name, "config") == 0;
	if (!quiet)
		log_warn("herd-san refused %s%s%s: %s", name ? name : "an answer to nothing asked",
			 uuid ? " of " : "", uuid ? uuid : "", why ? why : "?");
	if (g_strcmp0(name, "config") == 0)
		g_clear_pointer(&l->config_sent, json_decref);
	else if (g_strcmp0(name, "volume") == 0 && uuid)
		json_object_del(l->sent, uuid);
	else if (g_strcmp0(name, "discard") == 0 && uuid)
		json_object_del(l->chosen, uuid); /* a writer has it open still: again */
	else if (g_strcmp0(name, "promote") == 0)
		return; /* connected to its peer: nothing to do */
	else if (g_strcmp0(name, "verify") == 0 && uuid) {
		/* Recorded as its result: whoever waits for it hears why. */
		g_autoptr(json_t) result = json_pack("{s:O,s:s}", "id", json_object_get(op, "id"), "error",
						     why ? why : "herd-san refused it");
		verified(l, uuid, result);
		return;
	} else
		return;
	if (!l->again)
		l->again = g_timeout_add(RETRY_MS, on_again, l);
}

static void on_event(herd_san_link *l, json_t *j)
{
	const char *ev = json_string_value(json_object_get(j, "ev"));
	const char *uuid = json_string_value(json_object_get(j, "uuid"));
	if (!ev) {
		g_autoptr(json_t) op = g_queue_pop_head(l->asked);
		if (json_is_false(json_object_get(j, "ok")))
			refused(l, op, json_string_value(json_object_get(j, "error")));
		else if (g_strcmp0(json_string_value(json_object_get(op, "op")), "config") == 0)
			l->config_refused = false;
		return;
	}
	if (!uuid || !store_uuid_is_valid(uuid)) {
		log_warn("herd-san sent a '%s' event without a volume's UUID", ev);
		return;
	}
	if (strcmp(ev, "state") == 0 || strcmp(ev, "error") == 0) {
		json_object_set_new(l->reported, uuid, json_true());
		remove_orphans(l);
		if (!json_object_get(l->reported, uuid))
			return; /* removed: its state is of no disk */
	}
	if (strcmp(ev, "state") == 0) {
		g_autoptr(json_t) s = json_deep_copy(j);
		json_object_del(s, "ev");
		json_object_del(s, "uuid");
		json_object_set(l->states, uuid, s);
		publish_states(l);
		const char *role = json_string_value(json_object_get(json_object_get(j, "sync"), "role"));
		if (g_strcmp0(role, "source") == 0)
			peer_behind(l, uuid);
		follow_sync(l, uuid);
		/* still waiting for "detached" (one lost with a restart of herd-san) */
		const char *disk = json_string_value(json_object_get(json_object_get(j, "disk"), "state"));
		if (g_strcmp0(disk, "detaching") == 0 && !json_object_get(l->detaching, uuid)) {
			json_object_set_new(l->detaching, uuid, json_true());
			try_detach(l, uuid);
		}
	} else if (strcmp(ev, "peer-lost") == 0) {
		log_info("eSAN disk %s: its peer replica is away; its writes wait until the peer is "
			 "recorded outdated", uuid);
		json_t *seq = json_object_get(j, "seq");
		json_object_set_new(l->waiting, uuid, json_is_integer(seq) ? json_incref(seq) : json_null());
		try_outdate(l, uuid);
	} else if (strcmp(ev, "disk-failed") == 0) {
		const char *st = json_string_value(json_object_get(j, "state"));
		const char *why = json_string_value(json_object_get(j, "why"));
		if (g_strcmp0(st, "detaching") == 0) {
			log_err("eSAN disk %s: %s; detaching the replica here (the peer serves the disk once "
				  "the store has this one outdated)", uuid, why ? why : "its local disk failed");
			json_object_set_new(l->detaching, uuid, json_true());
			try_detach(l, uuid);
		} else {
			log_err("eSAN disk %s: %s; no up-to-date peer: its I/O fails", uuid,
				  why ? why : "its local disk failed");
		}
	} else if (strcmp(ev, "synced") == 0) {
		json_t *cmd = herd_esan_synced_cmd(state(l), uuid, l->node);
		g_autoptr(GError) err = NULL;
		if (cmd && !herd_cluster_submit(l->cluster, cmd, "eSAN", on_synced_committed,
						g_strdup(uuid), &err))
			log_warn("eSAN disk %s: cannot record its peer up to date: %s", uuid, err->message);
		json_decref(cmd);
	} else if (strcmp(ev, "verify") == 0) {
		verified(l, uuid, j);
	} else if (strcmp(ev, "error") == 0) {
		log_warn("eSAN disk %s: %s", uuid, json_string_value(json_object_get(j, "message")));
	} else {
		log_debug("herd-san: event '%s' not known here", ev);
	}
}

static void lost(herd_san_link *l, const char *why)
{
	log_warn("herd-san: connection lost (%s); connecting again", why);
	g_cancellable_cancel(l->cancel);
	g_clear_object(&l->cancel);
	g_clear_object(&l->in);
	l->out = NULL;
	g_clear_object(&l->conn);
	json_object_clear(l->sent);
	json_object_clear(l->states);
	json_object_clear(l->verifying);
	json_object_clear(l->attached);
	json_object_clear(l->reported);
	json_object_clear(l->chosen);
	g_clear_pointer(&l->config_sent, json_decref);
	g_queue_clear_full(l->asked, (GDestroyNotify)json_decref);
	g_hash_table_remove_all(l->peer_down);
	publish_states(l);
	connect_soon(l, RETRY_MS);
}

static void on_line(GObject *src, GAsyncResult *res, gpointer user)
{
	herd_san_link *l = user;
	g_autoptr(GError) err = NULL;
	gsize len = 0;
	g_autofree char *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(src), res, &len, &err);
	if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
		return;
	if (!line) {
		lost(l, err ? err->message : "herd-san closed it");
		return;
	}
	if (len > LINE_MAX_BYTES) {
		lost(l, "a line longer than herd-san ever sends");
		return;
	}
	json_error_t jerr;
	g_autoptr(json_t) j = json_loads(line, 0, &jerr);
	if (!json_is_object(j))
		log_warn("herd-san sent a line that is not a JSON object: %s", jerr.text);
	else
		on_event(l, j);
	read_next(l);
}

static void read_next(herd_san_link *l)
{
	g_data_input_stream_read_line_async(l->in, G_PRIORITY_DEFAULT, l->cancel, on_line, l);
}

/* ------------------------------------------------------------------ */
/* Connecting                                                           */

static void on_connected(GObject *src, GAsyncResult *res, gpointer user)
{
	herd_san_link *l = user;
	g_autoptr(GError) err = NULL;
	GSocketConnection *conn = g_socket_client_connect_finish(G_SOCKET_CLIENT(src), res, &err);
	if (!conn) {
		if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
			return;
		if (!l->said_missing)
			log_info("herd-san is not answering at %s (%s); trying every second", l->socket_path,
				 err->message);
		l->said_missing = true;
		connect_soon(l, RETRY_MS);
		return;
	}
	l->said_missing = false;
	l->conn = conn;
	l->in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(conn)));
	l->out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
	log_info("connected to herd-san at %s", l->socket_path);
	send_config(l);
	sync_volumes(l);
	check_peers(l);
	send_requests(l);
	g_autoptr(json_t) status = json_pack("{s:s}", "op", "status");
	send_op(l, status);
	/* Writes that waited across a restart of herdd wait no longer than this. */
	try_all_outdates(l);
	read_next(l);
}

static gboolean on_retry(gpointer user)
{
	herd_san_link *l = user;
	l->retry = 0;
	l->cancel = g_cancellable_new();
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(l->socket_path);
	g_socket_client_connect_async(l->client, G_SOCKET_CONNECTABLE(addr), l->cancel, on_connected, l);
	return G_SOURCE_REMOVE;
}

static void connect_soon(herd_san_link *l, unsigned ms)
{
	g_clear_object(&l->cancel);
	if (!l->retry)
		l->retry = g_timeout_add(ms, on_retry, l);
}

static void on_store_change(gpointer user, GPtrArray *changes)
{
	herd_san_link *l = user;
	bool relevant = changes == NULL;
	for (guint i = 0; changes && i < changes->len && !relevant; i++) {
		store_change *c = changes->pdata[i];
		relevant = c->kind == STORE_KIND_DISK || c->kind == STORE_KIND_NODE ||
			   c->kind == STORE_KIND_CLUSTER;
	}
	remove_orphans(l);
	if (!relevant)
		return;
	if (l->out)
		send_config(l);
	sync_volumes(l);
	send_requests(l);
	/* A peer just fenced lets a waiting outdate through. */
	if ((json_object_size(l->waiting) || json_object_size(l->detaching)) && !l->outdate_timer)
		l->outdate_timer = g_timeout_add(0, on_outdate_timer, l);
}

static void on_membership(gpointer user, bool group)
{
	herd_san_link *l = user;
	if (l->out)
		send_config(l);
	check_peers(l);
	remove_orphans(l);
}

/* A store that has just become current (synced after a join) shows that
 * everything applied is durable. */
static void on_durable(gpointer user)
{
	remove_orphans(user);
}

herd_san_link *herd_san_link_new(herd_cluster *cluster, herd_ha *ha, const char *node_name,
				 const char *socket_path, const char *tls_dir)
{
	herd_san_link *l = g_new0(herd_san_link, 1);
	l->cluster = cluster;
	l->ha = ha;
	l->node = g_strdup(node_name);
	l->socket_path = g_strdup(socket_path);
	l->tls_dir = g_strdup(tls_dir);
	l->client = g_socket_client_new();
	l->sent = json_object();
	l->states = json_object();
	l->waiting = json_object();
	l->detaching = json_object();
	l->submitting = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	l->peer_down = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	l->verifying = json_object();
	l->results = json_object();
	l->recording = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	l->reported = json_object();
	l->chosen = json_object();
	l->asked = g_queue_new();
	l->attached = json_object();
	l->job_changes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	l->job_tick = g_timeout_add(STORE_JOB_UPDATE_MS, on_job_tick, l);
	herd_cluster_listen(cluster, on_store_change, l);
	herd_cluster_on_membership(cluster, on_membership, l);
	herd_cluster_on_durable(cluster, on_durable, l);
	connect_soon(l, 0);
	return l;
}

void herd_san_link_free(herd_san_link *l)
{
	if (!l)
		return;
	herd_cluster_unlisten(l->cluster, l);
	GHashTableIter it;
	gpointer v;
	GHashTable *under_way[] = { l->submitting, l->recording, l->job_changes };
	for (unsigned i = 0; i < G_N_ELEMENTS(under_way); i++) {
		g_hash_table_iter_init(&it, under_way[i]);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			herd_cluster_forget(l->cluster, v);
			disk_change_free(v);
		}
	}
	g_clear_handle_id(&l->job_tick, g_source_remove);
	g_clear_handle_id(&l->broken, g_source_remove);
	g_clear_handle_id(&l->again, g_source_remove);
	g_queue_free_full(l->asked, (GDestroyNotify)json_decref);
	if (l->cancel)
		g_cancellable_cancel(l->cancel);
	g_clear_object(&l->cancel);
	g_clear_handle_id(&l->retry, g_source_remove);
	g_clear_handle_id(&l->outdate_timer, g_source_remove);
	g_clear_handle_id(&l->results_timer, g_source_remove);
	g_clear_object(&l->in);
	g_clear_object(&l->conn);
	g_clear_object(&l->client);
	json_decref(l->sent);
	json_decref(l->states);
	json_decref(l->verifying);
	json_decref(l->config_sent);
	json_decref(l->chosen);
	json_decref(l->waiting);
	json_decref(l->detaching);
	json_decref(l->results);
	json_decref(l->reported);
	json_decref(l->attached);
	g_hash_table_destroy(l->job_changes);
	g_hash_table_destroy(l->submitting);
	g_hash_table_destroy(l->recording);
	g_hash_table_destroy(l->peer_down);
	g_free(l->node);
	g_free(l->socket_path);
	g_free(l->tls_dir);
	g_free(l);
}
