#define G_LOG_DOMAIN "cluster"
#include "cluster/service.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/node.h"
#include "store/wire.h"

#include <string.h>
#include <unistd.h>

/* The longest reason a node gives when it leaves (HERD_MSG_LEAVING). */
#define LEAVING_REASON_MAX 1024

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
	uint64_t reloads;         /* corosync reloads this node asked for */
	store_db *db;
	replica *replica;
	herd_bus *bus;              /* corosync, or a test's */
	uint32_t nodeid;
	bool started;
	GHashTable *inflight;  /* req_id -> inflight* */
	GQueue *deferred;      /* deferred*: waiting for a sync */
	guint deferred_timer;
	GArray *listeners;
	GHashTable *departures;   /* node id -> why its herd left the group */

	/* The store failed (see herd_cluster_store_check()). */
	GError *store_failure;      /* the latest failure, NULL: sound */
	gint64 store_failed_us;     /* wall clock time of the first one */
	bool store_rejoining;       /* reloaded, not in sync with the group yet */
	unsigned store_retries;     /* attempts to recover so far */
	unsigned retry_first_ms, retry_max_ms;
	guint store_retry_timer;
	gint64 store_retry_at_us;   /* monotonic time of the next attempt */
	char *store_retry_error;    /* why the last attempt did not recover, or NULL */
	guint leave_idle;           /* leaving the group (after the callback) */
	/* What this herd handed to the group, by message type (its status). */
	uint64_t sent_messages[HERD_MSG__MAX], sent_bytes[HERD_MSG__MAX];
};

static void deferred_free(deferred *d)
{
	json_decref(d->cmd);
	g_free(d->user);
	g_free(d);
}

/* ------------------------------------------------------------------ */
/* Replica callbacks                                                   */

/* Every message to the group goes here: counted by its type. */
static bool bus_send(herd_cluster *c, const void *msg, size_t len)
{
	if (!c->bus->ops->send(c->bus, msg, len))
		return false;
	unsigned type = herd_wire_type_of(msg, len);
	if (type < HERD_MSG__MAX) {
		c->sent_messages[type]++;
		c->sent_bytes[type] += len;
	}
	return true;
}

static bool on_replica_send(gpointer user, const void *msg, size_t len)
{
	return bus_send(user, msg, len);
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

/* ------------------------------------------------------------------ */
/* A failed store                                                      */

static void schedule_store_retry(herd_cluster *c);

/* Leave the group outside the replica's (and maybe CPG's) callback. */
static gboolean on_leave_idle(gpointer data)
{
	herd_cluster *c = data;
	c->leave_idle = 0;
	if (c->store_failure && !c->store_rejoining)
		c->bus->ops->stop(c->bus);
	return G_SOURCE_REMOVE;
}

static void on_replica_failed(gpointer user, const GError *error)
{
	herd_cluster *c = user;
	if (!c->store_failure)
		c->store_failed_us = g_get_real_time();
	g_clear_error(&c->store_failure);
	c->store_failure = g_error_copy(error);
	c->store_rejoining = false;
	g_autofree char *dir = g_path_get_dirname(c->db_path);
	log_err("this node's configuration store failed (%s): leaving the cluster; herdd retries by "
		"itself and rejoins once it can write to %s again",
		error->message, dir);
	/* The others alert (their coordinator names the cause); CPG delivers
	 * this before our leaving. */
	g_autofree char *why = g_strdup_printf("its configuration store failed (%s)", error->message);
	herd_cluster_say_leaving(c, why);
	if (!c->leave_idle)
		c->leave_idle = g_idle_add(on_leave_idle, c);
	schedule_store_retry(c);
}

/* The store is sound (again): nothing to retry, nothing to refuse. */
static void store_failure_clear(herd_cluster *c)
{
	g_clear_error(&c->store_failure);
	c->store_rejoining = false;
	c->store_retries = 0;
	g_clear_pointer(&c->store_retry_error, g_free);
	g_clear_handle_id(&c->store_retry_timer, g_source_remove);
	g_clear_handle_id(&c->leave_idle, g_source_remove);
}

/* In sync again after a failure: answer again. */
static void check_store_recovered(herd_cluster *c)
{
	if (!c->store_rejoining || replica_get_phase(c->replica) != REPLICA_SYNCED)
		return;
	char hash[65];
	store_position *pos = &replica_state(c->replica)->pos;
	store_position_hash_hex(pos, hash);
	log_info("the configuration store has recovered: in sync with the cluster again at index %"
		 G_GUINT64_FORMAT ", hash %.12s, after %u attempt(s)",
		 pos->index, hash, c->store_retries);
	store_failure_clear(c);
}

static gboolean on_store_retry(gpointer data)
{
	herd_cluster *c = data;
	c->store_retry_timer = 0;
	g_autoptr(GError) err = NULL;
	/* A fresh connection, a write that proves the disk takes it, then only
	 * what was durable: as a restart of herdd would. */
	if (!store_db_reopen(c->db, &err) || !store_db_check_writable(c->db, &err) ||
	    !replica_recover(c->replica, &err)) {
		if (g_strcmp0(c->store_retry_error, err->message) != 0)
			log_warn("the configuration store cannot recover yet: %s", err->message);
		g_free(c->store_retry_error);
		c->store_retry_error = g_strdup(err->message);
		schedule_store_retry(c);
		return G_SOURCE_REMOVE;
	}
	log_info("the configuration store can be written again; rejoining the cluster to catch up");
	g_clear_pointer(&c->store_retry_error, g_free);
	c->store_rejoining = true;
	if (c->started)
		c->bus->ops->start(c->bus);
	return G_SOURCE_REMOVE;
}

static void schedule_store_retry(herd_cluster *c)
{
	if (c->store_retry_timer)
		return;
	unsigned delay_ms = c->retry_first_ms << MIN(c->store_retries, 16u);
	delay_ms = MIN(delay_ms, c->retry_max_ms);
	c->store_retries++;
	c->store_retry_at_us = g_get_monotonic_time() + (gint64)delay_ms * 1000;
	c->store_retry_timer = g_timeout_add(delay_ms, on_store_retry, c);
}

bool herd_cluster_store_check(herd_cluster *c, GError **error)
{
	if (!c->store_failure)
		return true;
	g_autoptr(GDateTime) at = g_date_time_new_from_unix_local(c->store_failed_us / G_USEC_PER_SEC);
	g_autofree char *when = g_date_time_format(at, "%Y-%m-%d %H:%M:%S");
	if (c->store_rejoining) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "This node's configuration store failed at %s (%s); it can write again and is "
			    "rejoining the cluster: it answers once it has caught up with the other nodes. "
			    "Retry in a moment.",
			    when, c->store_failure->message);
		return false;
	}
	g_autofree char *dir = g_path_get_dirname(c->db_path);
	gint64 left_s = MAX(0, (c->store_retry_at_us - g_get_monotonic_time() + 999999) / G_USEC_PER_SEC);
	g_autofree char *last = c->store_retry_error
		? g_strdup_printf(" The last try found: %s", c->store_retry_error) : g_strdup("");
	const char *peer = herd_cluster_peer_address(c);
	g_autofree char *elsewhere = peer ? g_strdup_printf("another node, e.g. 'herd --host %s …'", peer)
					  : g_strdup("another node");
	g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
		    "This node's configuration store failed at %s (%s), so the node left the cluster: its "
		    "copy of the configuration may be out of date, it answers nothing from it and takes "
		    "no changes, and it leaves its VMs running as they are. herd retries by itself (next "
		    "try in %" G_GINT64_FORMAT " s) and rejoins the cluster once it can write to %s "
		    "again.%s Free space there; meanwhile use %s.",
		    when, c->store_failure->message, left_s, dir, last, elsewhere);
	return false;
}

GHashTable *herd_cluster_departures(herd_cluster *c)
{
	return c->departures;
}

const char *herd_cluster_peer_address(herd_cluster *c)
{
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(herd_cluster_state(c));
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		const store_node *sn = store_node_of(n);
		if (strcmp(n->name, c->node_name) != 0 && sn->n_links > 0)
			return sn->links[0];
	}
	return NULL;
}

void herd_cluster_set_store_retry(herd_cluster *c, unsigned first_ms, unsigned max_ms)
{
	c->retry_first_ms = MAX(first_ms, 1u);
	c->retry_max_ms = MAX(max_ms, c->retry_first_ms);
}

void herd_cluster_say_leaving(herd_cluster *c, const char *reason)
{
	/* Cut to what the others take (on whole UTF-8 characters). */
	g_autofree char *text = g_utf8_make_valid(reason, -1);
	if (strlen(text) > LEAVING_REASON_MAX) {
		const char *end = g_utf8_find_prev_char(text, text + LEAVING_REASON_MAX - 2);
		g_autofree char *cut = g_strndup(text, (gsize)(end - text));
		g_free(text);
		text = g_strconcat(cut, "…", NULL);
	}
	g_autoptr(json_t) why = json_pack("{s:s}", "reason", text);
	g_autofree char *payload = json_dumps(why, JSON_COMPACT);
	herd_cluster_send(c, HERD_MSG_LEAVING, payload, strlen(payload));
}

/* Another node's herd leaves the group and says why. */
static void on_leaving(herd_cluster *c, uint32_t sender, const void *payload, size_t len)
{
	g_autoptr(json_t) j = json_loadb(payload, len, 0, NULL);
	const char *reason = json_string_value(json_object_get(j, "reason"));
	if (!reason || strlen(reason) > LEAVING_REASON_MAX || sender == c->nodeid) {
		if (!reason || strlen(reason) > LEAVING_REASON_MAX)
			log_warn("dropped a malformed leaving notice from node %u", sender);
		return;
	}
	store_object *n = herd_cluster_node_by_id(c, sender);
	log_warn("node %s leaves the cluster: %s", n ? n->name : "?", reason);
	g_hash_table_replace(c->departures, GUINT_TO_POINTER(sender), g_strdup(reason));
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
	if (c->store_failure)
		return false; /* refused at once, saying why */
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
	if (herd_wire_decode(msg, len, sender, &hdr, &payload, NULL) && !herd_msg_is_store(hdr.type)) {
		if (hdr.type == HERD_MSG_LEAVING)
			on_leaving(c, sender, payload, hdr.payload_len);
		else if (c->message_fn)
			c->message_fn(c->message_user, sender, hdr.type, payload, hdr.payload_len);
		return;
	}
	replica_deliver(c->replica, sender, msg, len);
}

static void on_confchg(gpointer user, const uint32_t *members, size_t n)
{
	herd_cluster *c = user;
	/* Back in the group: what it said when it left no longer holds. */
	for (size_t i = 0; i < n; i++)
		g_hash_table_remove(c->departures, GUINT_TO_POINTER(members[i]));
	replica_confchg(c->replica, members, n);
	check_store_recovered(c);
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
	/* A node that went down too may come back for another reason. */
	GHashTableIter it;
	gpointer id;
	g_hash_table_iter_init(&it, c->departures);
	while (g_hash_table_iter_next(&it, &id, NULL))
		if (!herd_cluster_in_ring(c, GPOINTER_TO_UINT(id)))
			g_hash_table_iter_remove(&it);
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
	check_store_recovered(c);
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
	c->departures = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	c->retry_first_ms = HERD_STORE_RETRY_FIRST_MS;
	c->retry_max_ms = HERD_STORE_RETRY_MAX_MS;
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
	store_failure_clear(c);
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
	g_hash_table_destroy(c->departures);
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
	/* A failed store joins once it has recovered (on_store_retry()). */
	if (!c->store_failure || c->store_rejoining)
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
	if (!herd_cluster_store_check(c, error))
		return false;
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
	store_failure_clear(c);
	g_hash_table_remove_all(c->departures);
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
	return bus_send(c, m, n);
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

bool herd_cluster_in_ring(herd_cluster *c, uint32_t nodeid)
{
	return g_array_binary_search(c->ring, &nodeid, cmp_u32, NULL);
}

size_t herd_cluster_group(herd_cluster *c, uint32_t *out, size_t max)
{
	return replica_members(c->replica, out, max);
}

GHashTable *herd_cluster_lost(herd_cluster *c)
{
	return on_unfenced_lost(c);
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

void herd_cluster_reload(herd_cluster *c, herd_bus_reload_done done, gpointer user)
{
	c->reloads++;
	c->bus->ops->reload(c->bus, done, user);
}

uint64_t herd_cluster_reloads(herd_cluster *c) { return c->reloads; }
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
	g_autoptr(GError) failure = NULL;
	if (!herd_cluster_store_check(c, &failure))
		refusal = failure->message;
	replica_counters k;
	replica_get_counters(c->replica, &k);
	json_t *sent = json_object();
	for (unsigned t = 0; t < HERD_MSG__MAX; t++)
		if (c->sent_messages[t])
			json_object_set_new(sent, herd_wire_type_name(t),
					    json_pack("{s:I,s:I}", "messages", (json_int_t)c->sent_messages[t],
						      "bytes", (json_int_t)c->sent_bytes[t]));
	return json_pack("{s:s,s:b,s:o,s:o,s:{s:I,s:I,s:s},s:i,s:s?,s:I,s:{s:I,s:I,s:I,s:I,s:o}}",
			 "phase", phases[replica_get_phase(c->replica)],
			 "primary", replica_is_primary(c->replica),
			 "quorum", c->bus->ops->quorum_info(c->bus),
			 "members", members,
			 "position", "generation", (json_int_t)st->pos.gen, "index",
			 (json_int_t)st->pos.index, "hash", hash,
			 "protocol", replica_cluster_protocol(c->replica),
			 "refusal", refusal,
			 "rejected_messages", (json_int_t)replica_rejected_messages(c->replica),
			 "counters", "applied", (json_int_t)k.applied, "commits", (json_int_t)k.commits,
			 "commands_sent", (json_int_t)k.commands_sent, "persisted_sent",
			 (json_int_t)k.persisted_sent, "sent", sent);
}
