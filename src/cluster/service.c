#define G_LOG_DOMAIN "cluster"
#include "cluster/service.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/node.h"
#include "store/wire.h"

#include <string.h>
#include <unistd.h>

typedef struct {
	uint64_t req_id;
	herd_cluster_done_fn done;
	gpointer data;
} inflight;

typedef struct {
	json_t *cmd;
	char *user;
	herd_cluster_done_fn done;
	gpointer data;
	gint64 deadline_us;
} deferred;

typedef struct {
	void (*fn)(void); /* of the type its array is for */
	gpointer user;
} listener;

struct herd_cluster {
	herd_cluster_message_fn message_fn;
	gpointer message_user;
	GArray *membership_fns;   /* listener (fn as herd_cluster_membership_fn) */
	GArray *durable_fns;      /* listener (fn as herd_cluster_membership_fn) */
	GArray *ring;             /* uint32_t, sorted */
	herd_cluster_survivor_fn survivor_fn;
	gpointer survivor_user;
	herd_cluster_lost_fn lost_fn;
	gpointer lost_user;
	char *db_path;
	char *node_name;
	store_db *db;
	replica *replica;
	herd_bus *bus;              /* corosync, or a test's */
	uint32_t nodeid;
	bool started;
	GHashTable *inflight;  /* req_id -> inflight* */
	GQueue *deferred;      /* deferred*: waiting for a sync */
	guint deferred_timer;
	GArray *listeners;
};

static void deferred_free(deferred *d)
{
	json_decref(d->cmd);
	g_free(d->user);
	g_free(d);
}

/* ------------------------------------------------------------------ */
/* Replica callbacks                                                   */

static bool on_replica_send(gpointer user, const void *msg, size_t len)
{
	herd_cluster *c = user;
	return c->bus->ops->send(c->bus, msg, len);
}

static void on_replica_done(gpointer user, uint64_t req_id, json_t *result, const GError *error)
{
	herd_cluster *c = user;
	inflight *f = g_hash_table_lookup(c->inflight, &req_id);
	if (!f)
		return;
	g_hash_table_steal(c->inflight, &req_id);
	f->done(result, error, f->data);
	g_free(f);
}

static void notify(herd_cluster *c, GPtrArray *changes)
{
	for (guint i = 0; i < c->listeners->len; i++) {
		listener *l = &g_array_index(c->listeners, listener, i);
		((herd_cluster_change_fn)l->fn)(l->user, changes);
	}
}

static void on_replica_changed(gpointer user, GPtrArray *changes)
{
	notify(user, changes);
}

static void on_replica_failed(gpointer user, const GError *error)
{
	herd_cluster *c = user;
	log_err("leaving the cluster: the configuration database failed (%s). Fix the disk and restart herdd.",
		error->message);
	c->bus->ops->stop(c->bus);
}

static bool on_survivor_check(gpointer user, uint32_t missing)
{
	herd_cluster *c = user;
	return c->survivor_fn && c->survivor_fn(c->survivor_user, missing);
}

static GHashTable *on_unfenced_lost(gpointer user)
{
	herd_cluster *c = user;
	return c->lost_fn ? c->lost_fn(c->lost_user) : NULL;
}

/* Everything applied is durable everywhere: the HA engine may start VMs
 * it was waiting to start. */
static void on_replica_durable(gpointer user)
{
	herd_cluster *c = user;
	for (guint i = 0; i < c->durable_fns->len; i++) {
		listener *l = &g_array_index(c->durable_fns, listener, i);
		((herd_cluster_notify_fn)l->fn)(l->user);
	}
}

static const replica_callbacks replica_cb = {
	.send = on_replica_send,
	.done = on_replica_done,
	.changed = on_replica_changed,
	.failed = on_replica_failed,
	.two_node_survivor_ok = on_survivor_check,
	.durable = on_replica_durable,
	.unfenced_lost = on_unfenced_lost,
};

static void membership_changed(herd_cluster *c, bool group)
{
	for (guint i = 0; i < c->membership_fns->len; i++) {
		listener *l = &g_array_index(c->membership_fns, listener, i);
		((herd_cluster_membership_fn)l->fn)(l->user, group);
	}
}

/* ------------------------------------------------------------------ */
/* Deferred submissions                                                */

static bool submit_now(herd_cluster *c, json_t *cmd, const char *user, herd_cluster_done_fn done,
		       gpointer data, GError **error);

static bool waits_for_sync(herd_cluster *c)
{
	replica_phase p = replica_get_phase(c->replica);
	return c->started && (p == REPLICA_SYNCING || p == REPLICA_DETACHED);
}

static void run_deferred(herd_cluster *c)
{
	if (waits_for_sync(c) || g_queue_is_empty(c->deferred))
		return;
	GQueue *q = c->deferred;
	c->deferred = g_queue_new();
	deferred *d;
	while ((d = g_queue_pop_head(q))) {
		g_autoptr(GError) err = NULL;
		if (!submit_now(c, d->cmd, d->user, d->done, d->data, &err))
			d->done(NULL, err, d->data);
		deferred_free(d);
	}
	g_queue_free(q);
}

static gboolean on_deferred_timer(gpointer data)
{
	herd_cluster *c = data;
	gint64 now = g_get_monotonic_time();
	run_deferred(c);
	for (GList *l = c->deferred->head; l;) {
		GList *next = l->next;
		deferred *d = l->data;
		if (d->deadline_us <= now) {
			herd_error_code code;
			const char *why = replica_refusal(c->replica, &code);
			g_autoptr(GError) err = g_error_new(HERD_ERROR, (gint)(why ? code : HERD_ERR_TIMEOUT), "%s",
							    why ? why : "The cluster did not become ready in time.");
			g_queue_delete_link(c->deferred, l);
			d->done(NULL, err, d->data);
			deferred_free(d);
		}
		l = next;
	}
	if (g_queue_is_empty(c->deferred)) {
		c->deferred_timer = 0;
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* corosync callbacks                                                  */

static void on_connected(gpointer user, uint32_t nodeid)
{
	herd_cluster *c = user;
	c->nodeid = nodeid;
	replica_set_nodeid(c->replica, nodeid);
	store_object *me = herd_cluster_node_by_id(c, nodeid);
	if (me && strcmp(me->name, c->node_name) != 0)
		log_warn("corosync calls this node %u, which the cluster knows as '%s', but herdd is configured as '%s'",
			 nodeid, me->name, c->node_name);
}

static void on_disconnected(gpointer user)
{
	herd_cluster *c = user;
	replica_detach(c->replica);
	g_array_set_size(c->ring, 0);
	membership_changed(c, true);
}

static void on_deliver(gpointer user, uint32_t sender, const void *msg, size_t len)
{
	herd_cluster *c = user;
	herd_wire_header hdr;
	const void *payload;
	/* The HA engine's messages bypass the store (they are soft state). */
	if (herd_wire_decode(msg, len, sender, &hdr, &payload, NULL) && hdr.type >= HERD_MSG_STATUS) {
		if (c->message_fn)
			c->message_fn(c->message_user, sender, hdr.type, payload, hdr.payload_len);
		return;
	}
	replica_deliver(c->replica, sender, msg, len);
}

static void on_confchg(gpointer user, const uint32_t *members, size_t n)
{
	herd_cluster *c = user;
	replica_confchg(c->replica, members, n);
	membership_changed(c, true);
}

static gint cmp_u32(gconstpointer a, gconstpointer b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void on_ring_changed(gpointer user, const uint32_t *members, size_t n)
{
	herd_cluster *c = user;
	g_array_set_size(c->ring, 0);
	g_array_append_vals(c->ring, members, (guint)n);
	g_array_sort(c->ring, cmp_u32);
	membership_changed(c, false);
}

static void on_quorum_changed(gpointer user, bool quorate)
{
	membership_changed(user, false);
}

static void on_burst_end(gpointer user)
{
	herd_cluster *c = user;
	replica_flush(c->replica);
	run_deferred(c);
}

static const herd_bus_callbacks bus_cb = {
	.connected = on_connected,
	.disconnected = on_disconnected,
	.deliver = on_deliver,
	.confchg = on_confchg,
	.burst_end = on_burst_end,
	.quorum_changed = on_quorum_changed,
	.ring_changed = on_ring_changed,
};

/* ------------------------------------------------------------------ */

herd_cluster *herd_cluster_new(const char *state_dir, const char *node_name, herd_bus *bus,
			       GError **error)
{
	herd_cluster *c = g_new0(herd_cluster, 1);
	c->bus = bus;
	bus->cb = bus_cb;
	bus->user = c;
	c->db_path = strcmp(state_dir, ":memory:") == 0 ? g_strdup(state_dir)
							 : g_build_filename(state_dir, "config.db", NULL);
	c->node_name = g_strdup(node_name);
	c->inflight = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
	c->deferred = g_queue_new();
	c->listeners = g_array_new(FALSE, FALSE, sizeof(listener));
	c->membership_fns = g_array_new(FALSE, FALSE, sizeof(listener));
	c->durable_fns = g_array_new(FALSE, FALSE, sizeof(listener));
	c->ring = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	c->db = store_db_open(c->db_path, error);
	if (!c->db)
		goto fail;
	c->replica = replica_new(0, node_name, c->db, &replica_cb, c, error);
	if (!c->replica)
		goto fail;
	return c;
fail:
	herd_cluster_free(c);
	return NULL;
}

void herd_cluster_free(herd_cluster *c)
{
	if (!c)
		return;
	c->bus->ops->free(c->bus);
	if (c->deferred_timer)
		g_source_remove(c->deferred_timer);
	deferred *d;
	while ((d = g_queue_pop_head(c->deferred))) {
		g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, HERD_ERR_UNAVAILABLE,
							    "The daemon is shutting down.");
		d->done(NULL, err, d->data);
		deferred_free(d);
	}
	g_queue_free(c->deferred);
	replica_free(c->replica); /* answers what is in flight */
	g_hash_table_destroy(c->inflight);
	store_db_close(c->db);
	g_array_free(c->listeners, TRUE);
	g_array_free(c->membership_fns, TRUE);
	g_array_free(c->durable_fns, TRUE);
	g_array_free(c->ring, TRUE);
	g_free(c->node_name);
	g_free(c->db_path);
	g_free(c);
}

const char *herd_cluster_node_name(herd_cluster *c)
{
	return c->node_name;
}

bool herd_cluster_exists(herd_cluster *c)
{
	return store_state_cluster(replica_state(c->replica)) != NULL;
}

bool herd_cluster_started(herd_cluster *c)
{
	return c->started;
}

void herd_cluster_start(herd_cluster *c, bool joining)
{
	if (c->started || (!joining && !herd_cluster_exists(c)))
		return;
	c->started = true;
	c->bus->ops->start(c->bus);
}

void herd_cluster_stop(herd_cluster *c)
{
	if (!c->started)
		return;
	c->started = false;
	c->bus->ops->stop(c->bus);
	replica_detach(c->replica);
}

static bool submit_now(herd_cluster *c, json_t *cmd, const char *user, herd_cluster_done_fn done,
		       gpointer data, GError **error)
{
	if (!herd_cluster_exists(c)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "This node is not part of a cluster; create one with 'herd cluster create' or join one with 'herd cluster join'.");
		return false;
	}
	if (replica_get_phase(c->replica) == REPLICA_SYNCED && !herd_cluster_quorate(c)) {
		g_autoptr(json_t) q = c->bus->ops->quorum_info(c->bus);
		g_set_error(error, HERD_ERROR, HERD_ERR_NO_QUORUM,
			    "This node has lost quorum (%lld of %lld expected votes present, %lld needed); configuration changes are refused until it is back in the quorate part of the cluster.",
			    (long long)json_integer_value(json_object_get(q, "total_votes")),
			    (long long)json_integer_value(json_object_get(q, "expected_votes")),
			    (long long)json_integer_value(json_object_get(q, "quorum")));
		return false;
	}
	uint64_t id = replica_submit(c->replica, cmd, g_get_real_time() / 1000, user, error);
	if (!id)
		return false;
	inflight *f = g_new0(inflight, 1);
	f->req_id = id;
	f->done = done;
	f->data = data;
	g_hash_table_insert(c->inflight, &f->req_id, f);
	return true;
}

bool herd_cluster_submit(herd_cluster *c, json_t *cmd, const char *user,
			 herd_cluster_done_fn done, gpointer done_data, GError **error)
{
	if (herd_cluster_exists(c) && waits_for_sync(c)) {
		deferred *d = g_new0(deferred, 1);
		d->cmd = json_incref(cmd);
		d->user = g_strdup(user);
		d->done = done;
		d->data = done_data;
		d->deadline_us = g_get_monotonic_time() + HERD_SUBMIT_WAIT_MS * 1000;
		g_queue_push_tail(c->deferred, d);
		if (!c->deferred_timer)
			c->deferred_timer = g_timeout_add(100, on_deferred_timer, c);
		return true;
	}
	return submit_now(c, cmd, user, done, done_data, error);
}

static void answer_nobody(json_t *result, const GError *error, gpointer user)
{
}

void herd_cluster_forget(herd_cluster *c, gpointer done_data)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, c->inflight);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		inflight *f = v;
		if (f->data == done_data)
			f->done = answer_nobody;
	}
	for (GList *l = c->deferred->head; l; l = l->next) {
		deferred *d = l->data;
		if (d->data == done_data)
			d->done = answer_nobody;
	}
}

json_t *herd_cluster_bootstrap(herd_cluster *c, json_t *cmd, const char *user, GError **error)
{
	return replica_bootstrap(c->replica, cmd, g_get_real_time() / 1000, user, error);
}

bool herd_cluster_reset(herd_cluster *c, GError **error)
{
	herd_cluster_stop(c);
	replica_free(c->replica);
	c->replica = NULL;
	store_db_close(c->db);
	c->db = NULL;
	const char *suffixes[] = { "", "-wal", "-shm" };
	for (unsigned i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *p = g_strconcat(c->db_path, suffixes[i], NULL);
		unlink(p);
	}
	c->db = store_db_open(c->db_path, error);
	if (!c->db)
		return false;
	c->replica = replica_new(0, c->node_name, c->db, &replica_cb, c, error);
	if (!c->replica)
		return false;
	notify(c, NULL);
	return true;
}

void herd_cluster_listen(herd_cluster *c, herd_cluster_change_fn fn, gpointer user)
{
	listener l = { (void (*)(void))fn, user };
	g_array_append_val(c->listeners, l);
}

void herd_cluster_set_message_handler(herd_cluster *c, herd_cluster_message_fn fn, gpointer user)
{
	c->message_fn = fn;
	c->message_user = user;
}

bool herd_cluster_send(herd_cluster *c, unsigned type, const void *payload, size_t len)
{
	if (!c->nodeid || !c->bus->ops->connected(c->bus))
		return false;
	size_t n;
	g_autofree void *m = herd_wire_encode((herd_msg_type)type, c->nodeid, 0, 0, payload, len, &n);
	return c->bus->ops->send(c->bus, m, n);
}

void herd_cluster_on_membership(herd_cluster *c, herd_cluster_membership_fn fn, gpointer user)
{
	listener l = { (void (*)(void))fn, user };
	g_array_append_val(c->membership_fns, l);
}

void herd_cluster_on_durable(herd_cluster *c, herd_cluster_notify_fn fn, gpointer user)
{
	listener l = { (void (*)(void))fn, user };
	g_array_append_val(c->durable_fns, l);
}

static void remove_user(GArray *arr, gpointer user)
{
	for (guint i = arr->len; i-- > 0;)
		if (g_array_index(arr, listener, i).user == user)
			g_array_remove_index(arr, i);
}

void herd_cluster_unlisten(herd_cluster *c, gpointer user)
{
	remove_user(c->listeners, user);
	remove_user(c->membership_fns, user);
	remove_user(c->durable_fns, user);
}

size_t herd_cluster_ring(herd_cluster *c, uint32_t *out, size_t max)
{
	for (guint i = 0; i < c->ring->len && i < max; i++)
		out[i] = g_array_index(c->ring, uint32_t, i);
	return c->ring->len;
}

size_t herd_cluster_group(herd_cluster *c, uint32_t *out, size_t max)
{
	return replica_members(c->replica, out, max);
}

void herd_cluster_set_lost_check(herd_cluster *c, herd_cluster_lost_fn fn, gpointer user)
{
	c->lost_fn = fn;
	c->lost_user = user;
}

void herd_cluster_set_survivor_check(herd_cluster *c, herd_cluster_survivor_fn fn, gpointer user)
{
	c->survivor_fn = fn;
	c->survivor_user = user;
}

store_state *herd_cluster_state(herd_cluster *c) { return replica_state(c->replica); }
bool herd_cluster_quorate(herd_cluster *c) { return c->bus->ops->quorate(c->bus); }
bool herd_cluster_connected(herd_cluster *c) { return c->bus->ops->connected(c->bus); }

json_t *herd_cluster_links(herd_cluster *c, uint32_t nodeid)
{
	return c->bus->ops->links(c->bus, nodeid);
}

bool herd_cluster_reload(herd_cluster *c, GError **error)
{
	return c->bus->ops->reload(c->bus, error);
}
replica *herd_cluster_replica(herd_cluster *c) { return c->replica; }
uint32_t herd_cluster_nodeid(herd_cluster *c) { return c->nodeid; }

bool herd_cluster_is_member(herd_cluster *c, uint32_t nodeid)
{
	uint32_t ids[256];
	size_t n = replica_members(c->replica, ids, G_N_ELEMENTS(ids));
	for (size_t i = 0; i < n && i < G_N_ELEMENTS(ids); i++)
		if (ids[i] == nodeid)
			return true;
	return false;
}

store_object *herd_cluster_node_by_id(herd_cluster *c, uint32_t nodeid)
{
	return store_node_by_id(herd_cluster_state(c), nodeid);
}

json_t *herd_cluster_status_json(herd_cluster *c)
{
	static const char *const phases[] = { "detached", "syncing", "synced", "failed" };
	store_state *st = herd_cluster_state(c);
	char hash[65];
	store_position_hash_hex(&st->pos, hash);
	json_t *members = json_array();
	uint32_t ids[256];
	size_t n = replica_members(c->replica, ids, G_N_ELEMENTS(ids));
	for (size_t i = 0; i < n && i < G_N_ELEMENTS(ids); i++)
		json_array_append_new(members, json_integer(ids[i]));
	herd_error_code code;
	const char *refusal = replica_refusal(c->replica, &code);
	return json_pack("{s:s,s:b,s:o,s:o,s:{s:I,s:I,s:s},s:i,s:s?,s:I}",
			 "phase", phases[replica_get_phase(c->replica)],
			 "primary", replica_is_primary(c->replica),
			 "quorum", c->bus->ops->quorum_info(c->bus),
			 "members", members,
			 "position", "generation", (json_int_t)st->pos.gen, "index",
			 (json_int_t)st->pos.index, "hash", hash,
			 "protocol", replica_cluster_protocol(c->replica),
			 "refusal", refusal,
			 "rejected_messages", (json_int_t)replica_rejected_messages(c->replica));
}
