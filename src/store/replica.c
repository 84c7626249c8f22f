#include "store/replica.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/memory.h"
#include "store/guard.h"
#include "store/node.h"
#include "store/replica_private.h"
#include "store/wire.h"

#include <string.h>

/* Bounds: requests of this node in flight, commands waiting for a sync. */
#define MAX_PENDING 20000
#define MAX_QUEUED 100000
/* After so many bytes of commands applied, freed memory goes back to the
 * system (herd_malloc_release(): about a millisecond): parsing and applying
 * them leaves the heaps with free holes that malloc keeps otherwise. */
#define TRIM_AFTER_BYTES (1u << 20)
/* Snapshot chunk payload size (CPG carries larger messages, but flow
 * control and the IPC buffer like them small). */
#define SNAPSHOT_CHUNK (256u * 1024u)
/* The changes kept to catch up a member that missed them (the log): at
 * most this many, taking at most this many bytes of memory in all.  The
 * bytes are held by every herdd: a define with a domain XML is some 1.8
 * kB, so 8 MiB was a fifth of the 40 MB a herdd may take with 10,000 VMs
 * (issue 14), while a node back after a power cut misses a few kB; one
 * further behind than the log is sent the whole store, as before the log.
 * Packed, such a define takes ~0.44 kB of the log's ring with its
 * record's header (the test guest's define command: 1,584 -> 375 bytes):
 * 1 MiB holds some 2,400 of them, where 2 MiB of plain commands held
 * ~1,150. */
#define LOG_MAX_ENTRIES 20000u
#define LOG_MAX_BYTES (1u * 1024u * 1024u)
/* Largest batch of commands in one COMMAND message. */
#define BATCH_MAX_BYTES (256u * 1024u)

static void awaiting_free(awaiting_ack *a)
{
	json_decref(a->result);
	g_free(a);
}

static void queued_free(queued_command *q)
{
	g_bytes_unref(q->payload);
	g_free(q);
}

static void sent_message_free(sent_message *m)
{
	g_array_unref(m->req_ids);
	g_free(m);
}

/*
 * A COMMAND payload is a batch: [u64 req_id][u32 length][command JSON]…,
 * little-endian.  Calls @fn for each command; false if the framing is broken
 * (every member sees the same bytes and drops the whole batch alike).
 */
typedef void (*command_fn)(replica *r, uint32_t sender, uint64_t req_id, const uint8_t *cmd,
			   size_t len);
static bool for_each_command(replica *r, uint32_t sender, const uint8_t *p, size_t len,
			     command_fn fn)
{
	size_t off = 0;
	/* Check the whole batch first: all of it is applied, or none. */
	while (off < len) {
		if (len - off < 12)
			return false;
		uint32_t n = herd_get_le32(p + off + 8);
		if (n > len - off - 12)
			return false;
		off += 12 + n;
	}
	for (off = 0; off < len;) {
		uint32_t n = herd_get_le32(p + off + 8);
		if (fn)
			fn(r, sender, herd_get_le64(p + off), p + off + 12, n);
		off += 12 + n;
	}
	return len > 0;
}

static gint member_cmp(gconstpointer a, gconstpointer b)
{
	uint32_t x = ((const member *)a)->nodeid, y = ((const member *)b)->nodeid;
	return x < y ? -1 : x > y;
}

static member *find_member(replica *r, uint32_t nodeid)
{
	for (guint i = 0; i < r->members->len; i++) {
		member *m = &g_array_index(r->members, member, i);
		if (m->nodeid == nodeid)
			return m;
	}
	return NULL;
}

static void fail_request(replica *r, uint64_t req_id, herd_error_code code, const char *msg)
{
	g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, (gint)code, msg);
	r->cb.done(r->user, req_id, NULL, err);
}

/* Answer every applied-but-unconfirmed request with @msg. */
static void fail_awaiting(replica *r, herd_error_code code, const char *msg)
{
	awaiting_ack *a;
	while ((a = g_queue_pop_head(r->awaiting))) {
		fail_request(r, a->req_id, code, msg);
		awaiting_free(a);
	}
}

/* Answer the requests still in the outbox (never sent) with @msg. */
static void fail_outbox(replica *r, herd_error_code code, const char *msg)
{
	for (guint i = 0; i < r->outbox_ids->len; i++) {
		uint64_t id = g_array_index(r->outbox_ids, uint64_t, i);
		if (g_hash_table_remove(r->sent, &id))
			fail_request(r, id, code, msg);
	}
	g_byte_array_set_size(r->outbox, 0);
	g_array_set_size(r->outbox_ids, 0);
}

/* Answer every submitted request not yet delivered with @msg. */
static void fail_sent(replica *r, herd_error_code code, const char *msg)
{
	GList *ids = g_hash_table_get_keys(r->sent);
	for (GList *l = ids; l; l = l->next)
		fail_request(r, *(uint64_t *)l->data, code, msg);
	g_list_free(ids);
	g_hash_table_remove_all(r->sent);
	g_queue_free_full(r->in_flight, (GDestroyNotify)sent_message_free);
	r->in_flight = g_queue_new();
	g_byte_array_set_size(r->outbox, 0);
	g_array_set_size(r->outbox_ids, 0);
}

/* Make what was applied durable, with the position it reached. */
static bool commit(replica *r, GError **error)
{
	if (!store_state_write_position(r->state, error) || !store_db_commit(r->db, error))
		return false;
	/* What was applied is durable: its VMs' texts may go cold. */
	store_state_settle(r->state);
	r->counters.commits++;
	return true;
}

/*
 * What a request of this node hears when the database fails once it has
 * gone to the group: the other members apply what CPG delivers whatever
 * becomes of this node, so it may well have been applied.
 */
static char *maybe_applied(const char *cause)
{
	return g_strdup_printf("The change may have been applied: the other nodes got it, but this "
			       "node's configuration store failed before it was durable here. %s",
			       cause);
}

/*
 * The database failed: stop before this replica diverges from the others.
 * The group goes on without it; replica_recover() brings it back.
 */
void replica_fail(replica *r, const GError *error)
{
	if (r->phase == REPLICA_FAILED)
		return;
	log_err("configuration store stopped: %s", error->message);
	store_db_rollback(r->db);
	/* The state goes on answering reads until replica_recover(): its
	 * texts back in memory while the database still reads (best effort;
	 * what cannot be read stays cold, and fails what asks for it). */
	if (!store_state_warm_all(r->state, false, NULL))
		log_err("configuration store: some VMs' texts could not be read back");
	r->phase = REPLICA_FAILED;
	r->primary = false;
	r->transfer = r->confirming = false;
	r->round = 0;
	g_array_set_size(r->members, 0);
	change_log_clear(r->log); /* what it holds may be rolled back */
	fail_outbox(r, HERD_ERR_UNAVAILABLE,
		    "This node's configuration store failed before the change was sent to the cluster; it was not applied.");
	/* Ours among the commands queued for a sync are in r->sent: the others
	 * got them too. */
	g_autofree char *maybe = maybe_applied(error->message);
	fail_awaiting(r, HERD_ERR_IO, maybe);
	fail_sent(r, HERD_ERR_IO, maybe);
	g_queue_clear_full(r->queued, (GDestroyNotify)queued_free);
	r->cb.failed(r->user, error);
}

/*
 * Send with the next sequence number, which is also a command's request id.
 * CPG delivers one sender's messages in the order sent, so when one of ours
 * comes back, every earlier one either came back before it or was lost in a
 * membership change (see forget_lost).
 */
static uint64_t send_msg(replica *r, herd_msg_type type, uint64_t epoch, const void *payload,
			 size_t len)
{
	size_t n;
	uint64_t seq = r->next_seq++;
	g_autofree void *m = herd_wire_encode(type, r->nodeid, epoch, seq, payload, len, &n);
	return r->cb.send(r->user, m, n) ? seq : 0;
}

static bool send_json(replica *r, herd_msg_type type, uint64_t epoch, json_t *j)
{
	g_autofree char *s = json_dumps(j, JSON_COMPACT);
	return send_msg(r, type, epoch, s, strlen(s)) != 0;
}

/* Answer the requests of @m that were not delivered with it. */
static void fail_undelivered(replica *r, sent_message *m, const char *why)
{
	for (guint i = 0; i < m->req_ids->len; i++) {
		uint64_t id = g_array_index(m->req_ids, uint64_t, i);
		if (g_hash_table_remove(r->sent, &id))
			fail_request(r, id, HERD_ERR_UNAVAILABLE, why);
	}
}

/* Send the commands waiting in the outbox as one COMMAND message. */
static void send_outbox(replica *r)
{
	if (r->outbox_ids->len == 0)
		return;
	sent_message *m = g_new0(sent_message, 1);
	m->req_ids = g_array_copy(r->outbox_ids);
	m->seq = send_msg(r, HERD_MSG_COMMAND, r->round, r->outbox->data, r->outbox->len);
	r->counters.commands_sent += m->seq != 0;
	g_byte_array_set_size(r->outbox, 0);
	g_array_set_size(r->outbox_ids, 0);
	if (!m->seq) {
		fail_undelivered(r, m, "The change could not be sent to the cluster (corosync refused it).");
		sent_message_free(m);
		return;
	}
	g_queue_push_tail(r->in_flight, m);
}

/*
 * Our message @seq came back.  COMMAND messages we sent before it that have
 * not come back never will (lost in a membership change): answer their
 * requests.  Then, with nothing of ours in flight, send what waits: so
 * commands go out at once when the cluster is idle and in batches under load.
 */
static void forget_lost(replica *r, uint64_t seq)
{
	sent_message *m;
	while ((m = g_queue_peek_head(r->in_flight)) && m->seq < seq) {
		g_queue_pop_head(r->in_flight);
		fail_undelivered(r, m, "The change was caught in a cluster membership change; it may not have been applied. Check and retry.");
		sent_message_free(m);
	}
	if (g_queue_is_empty(r->in_flight))
		send_outbox(r);
}

/* ------------------------------------------------------------------ */
/* Primary configuration                                               */

/*
 * A configuration is primary when its members are a majority of the
 * cluster's nodes as the replicated node list has them.  Every member
 * computes this from the same delivered membership and the same state, so
 * they all agree, unlike a look at votequorum's view, which may lag.
 */
static bool compute_primary(replica *r)
{
	GHashTableIter it;
	gpointer v;
	guint total = 0, present = 0;
	uint32_t missing = 0;
	g_hash_table_iter_init(&it, r->state->by_uuid[STORE_KIND_NODE]);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		uint32_t id = store_node_of(v)->nodeid;
		total++;
		if (id > 0 && find_member(r, id))
			present++;
		else
			missing = id;
	}
	if (total == 0)
		return false;
	if (2 * present > total)
		return true;
	return total == 2 && present == 1 && r->cb.two_node_survivor_ok &&
	       r->cb.two_node_survivor_ok(r->user, missing);
}

/* ------------------------------------------------------------------ */
/* Applying commands                                                   */

bool replica_ensure_txn(replica *r)
{
	g_autoptr(GError) err = NULL;
	if (store_db_begin(r->db, &err))
		return true;
	replica_fail(r, err);
	return false;
}

/* Does @cmd (or an op of its batch) add, remove or renumber a node? */
static bool changes_node_list(json_t *cmd)
{
	json_t *ops = json_object_get(cmd, "ops");
	if (json_is_array(ops)) {
		size_t i;
		json_t *op;
		json_array_foreach(ops, i, op)
			if (changes_node_list(op))
				return true;
		return false;
	}
	const char *verb = json_string_value(json_object_get(cmd, "op"));
	return g_strcmp0(json_string_value(json_object_get(cmd, "kind")), "node") == 0 &&
	       (g_strcmp0(verb, "create") == 0 || g_strcmp0(verb, "delete") == 0 ||
		g_strcmp0(verb, "update") == 0);
}

static uint64_t durable_index(replica *r);

/*
 * One change of the node list at a time (as Raft's single-server changes):
 * the next one only once the last one is durable on every member.  Then
 * a partition that holds a majority of an older list always holds a node
 * that has the newer one, and two partitions never both count as primary,
 * also after crashes that lose what was applied but not yet durable.
 * Every member decides alike: durability comes from PERSISTED messages, in
 * the same order as the commands.
 */
static bool node_list_change_ok(replica *r, json_t *cmd, GError **error)
{
	if (!changes_node_list(cmd) || durable_index(r) >= r->node_list_index)
		return true;
	g_set_error_literal(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "The previous change of the cluster's nodes is not on every node's disk yet; "
			    "retry in a moment.");
	return false;
}

/* @cmd was applied with @changes: the node list may have changed, and
 * the daemon hears of what did. */
void replica_applied(replica *r, json_t *cmd, GPtrArray *changes)
{
	if (!changes->len)
		return;
	for (guint i = 0; i < changes->len; i++) {
		store_change *c = changes->pdata[i];
		if (c->kind == STORE_KIND_NODE) {
			r->primary = compute_primary(r);
			if (changes_node_list(cmd))
				r->node_list_index = r->state->pos.index;
			break;
		}
	}
	r->cb.changed(r->user, changes);
}

static void apply_command(replica *r, uint32_t sender, uint64_t msg_id, const uint8_t *payload,
			  size_t len)
{
	if (r->phase == REPLICA_FAILED)
		return; /* an earlier command of the batch broke the database */
	bool mine = sender == r->nodeid && g_hash_table_contains(r->sent, &msg_id);
	if (!r->primary) {
		if (mine) {
			g_hash_table_remove(r->sent, &msg_id);
			fail_request(r, msg_id, HERD_ERR_NO_QUORUM,
				     "The cluster lost quorum before the change could be applied; it was not applied.");
		}
		return;
	}
	/* If the database fails, replica_fail() answers ours with the others
	 * still in flight: the other members apply it all the same. */
	if (!replica_ensure_txn(r))
		return;
	g_autoptr(GError) err = NULL;
	json_error_t jerr;
	g_autoptr(json_t) cmd = json_loadb((const char *)payload, len, 0, &jerr);
	g_autoptr(GPtrArray) changes =
		g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	json_t *result = NULL;
	uint8_t prev[32];
	memcpy(prev, r->state->pos.hash, sizeof(prev));
	if (!cmd)
		g_set_error(&err, HERD_ERROR, HERD_ERR_INVALID, "The command is not valid JSON: %s.",
			    jerr.text);
	else if (node_list_change_ok(r, cmd, &err))
		result = store_state_apply(r->state, cmd, payload, len, changes, &err);
	if (!result && err->code == HERD_ERR_IO && err->domain == HERD_ERROR) {
		replica_fail(r, err);
		return;
	}
	if (mine)
		g_hash_table_remove(r->sent, &msg_id);
	if (result) {
		r->dirty = true;
		r->counters.applied++;
		change_log_add(r->log, r->state->pos.gen, r->state->pos.index, prev, payload, len);
		replica_applied(r, cmd, changes);
	}
	if (!mine) {
		json_decref(result);
		return;
	}
	if (!result) {
		r->cb.done(r->user, msg_id, NULL, err);
		return;
	}
	awaiting_ack *a = g_new0(awaiting_ack, 1);
	a->req_id = msg_id;
	a->gen = r->state->pos.current_gen;
	a->index = r->state->pos.index;
	a->result = result;
	g_queue_push_tail(r->awaiting, a);
}

/*
 * Confirm requests every member has made durable.  Not only in a primary
 * configuration: a change applied while primary may itself end that (adding
 * the second node of a two-node cluster does), and is durable all the same.
 * A membership change into a minority fails what waits (replica_complete_sync()).
 */
/* The index every member of the configuration has persisted (current generation). */
static uint64_t durable_index(replica *r)
{
	uint64_t min_index = UINT64_MAX;
	for (guint i = 0; i < r->members->len; i++) {
		member *m = &g_array_index(r->members, member, i);
		uint64_t idx = m->persisted_gen == r->state->pos.current_gen ? m->persisted_index : 0;
		min_index = MIN(min_index, idx);
	}
	return r->members->len ? min_index : 0;
}

bool replica_is_durable(replica *r)
{
	return r->phase == REPLICA_SYNCED && !r->confirming && !r->dirty &&
	       durable_index(r) >= r->state->pos.index;
}

uint64_t replica_durable_index(replica *r)
{
	return r->phase == REPLICA_SYNCED ? durable_index(r) : 0;
}

static void check_acks(replica *r)
{
	if (r->phase != REPLICA_SYNCED)
		return;
	uint64_t min_index = durable_index(r);
	/* Tell once per advance, not at every check. */
	bool durable = min_index >= r->state->pos.index && !r->dirty;
	if (durable && r->cb.durable &&
	    (r->state->pos.index != r->durable_told_index || r->state->pos.current_gen != r->durable_told_gen)) {
		r->durable_told_index = r->state->pos.index;
		r->durable_told_gen = r->state->pos.current_gen;
		r->cb.durable(r->user);
	}
	awaiting_ack *a;
	while ((a = g_queue_peek_head(r->awaiting)) && a->gen == r->state->pos.current_gen &&
	       a->index <= min_index) {
		g_queue_pop_head(r->awaiting);
		r->cb.done(r->user, a->req_id, a->result, NULL);
		awaiting_free(a);
	}
}

/* ------------------------------------------------------------------ */
/* Sync                                                                */

/* Apply (or, outside a primary configuration, refuse) what waited for the sync. */
static void run_queued(replica *r)
{
	queued_command *q;
	while ((q = g_queue_pop_head(r->queued))) {
		gsize len;
		const uint8_t *p = g_bytes_get_data(q->payload, &len);
		for_each_command(r, q->sender, p, len, apply_command);
		queued_free(q);
		if (r->phase == REPLICA_FAILED)
			return;
	}
}

static void log_sync_done(replica *r, bool replaced)
{
	char hash[65];
	store_position_hash_hex(&r->state->pos, hash);
	log_info("sync done: %u members, %s, at generation %" G_GUINT64_FORMAT ", index %" G_GUINT64_FORMAT
		 ", hash %.12s%s",
		 r->members->len, r->primary ? "quorate" : "NOT quorate", r->state->pos.gen,
		 r->state->pos.index, hash, replaced ? " (state received)" : "");
}

/*
 * Every member holds the leader's state.  In a primary configuration, start
 * a new generation; it is used only once every member has made it durable
 * (confirm_generation()), so that no later partition can start the same
 * generation with a different history.
 */
void replica_complete_sync(replica *r, bool replaced)
{
	r->transfer = false;
	/* Every member holds the state now, and makes it durable before the
	 * configuration goes on (confirm_generation()). */
	r->node_list_index = 0;
	if (r->snapshot) {
		g_byte_array_unref(r->snapshot);
		r->snapshot = NULL;
	}
	r->primary = compute_primary(r);
	if (r->primary && !replaced) {
		/* Our state is the leader's, which every member now holds: our
		 * unconfirmed changes are confirmed once all have persisted the
		 * new generation. */
		for (GList *l = r->awaiting->head; l; l = l->next)
			((awaiting_ack *)l->data)->gen = r->next_gen;
	}
	if (replaced || !r->primary)
		fail_awaiting(r, r->primary ? HERD_ERR_UNAVAILABLE : HERD_ERR_NO_QUORUM,
			      r->primary ? "The cluster membership changed before the change was confirmed on every node; it may not have been applied. Check and retry."
					 : "The cluster lost quorum before the change was confirmed on every node; it may not have been applied. Check and retry.");
	log_sync_done(r, replaced);
	if (!r->primary) {
		r->phase = REPLICA_SYNCED;
		run_queued(r);
		return;
	}
	/* The new generation is written with the next commit (flush). */
	if (!replica_ensure_txn(r))
		return;
	r->state->pos.current_gen = r->next_gen;
	r->dirty = true;
	r->confirming = true;
}

/* Every member persisted the new generation: the sync is over. */
static void confirm_generation(replica *r)
{
	for (guint i = 0; i < r->members->len; i++) {
		member *m = &g_array_index(r->members, member, i);
		if (m->persisted_gen != r->state->pos.current_gen)
			return;
	}
	r->confirming = false;
	r->phase = REPLICA_SYNCED;
	run_queued(r);
	check_acks(r);
}

/* Send @len bytes of @data as messages of @type: [u32 chunk][u32 count]…. */
static void send_chunks(replica *r, herd_msg_type type, const uint8_t *data, size_t len)
{
	uint32_t count = (uint32_t)((len + SNAPSHOT_CHUNK - 1) / SNAPSHOT_CHUNK);
	if (count == 0)
		count = 1;
	g_autofree uint8_t *chunk = g_malloc(8 + SNAPSHOT_CHUNK);
	for (uint32_t i = 0; i < count; i++) {
		size_t off = (size_t)i * SNAPSHOT_CHUNK;
		size_t n = MIN(SNAPSHOT_CHUNK, len - off);
		herd_put_le32(chunk, i);
		herd_put_le32(chunk + 4, count);
		if (n)
			memcpy(chunk + 8, data + off, n);
		if (!send_msg(r, type, r->round, chunk, 8 + n))
			log_warn("could not send sync chunk %u of %u", i + 1, count);
	}
}

static void send_snapshot(replica *r)
{
	g_autoptr(GError) err = NULL;
	json_t *dump = store_db_dump(r->db, &err);
	if (!dump) {
		replica_fail(r, err);
		return;
	}
	char *text = json_dumps(dump, JSON_COMPACT);
	json_decref(dump);
	size_t len = strlen(text);
	log_info("sending the configuration (%zu bytes) to sync the others", len);
	send_chunks(r, HERD_MSG_SNAPSHOT, (const uint8_t *)text, len);
	g_free(text);
	/* The whole store's tree and text were here a moment ago. */
	herd_malloc_release();
}

/*
 * Send the changes from @from on (the log's), which every member that
 * differs lacks: [u64 gen][u64 index][u32 length][command]…, little-endian,
 * in chunks.  Only what they miss goes over the network, not the whole
 * store: a member back after a power cut misses a few changes, while the
 * store of 10,000 VMs is some 50 MB.
 */
static void send_catchup(replica *r, uint64_t from)
{
	unsigned n;
	g_autoptr(GByteArray) out = change_log_encode(r->log, from, &n);
	log_info("sending the %u changes the others missed (%u bytes) to sync them", n, out->len);
	send_chunks(r, HERD_MSG_CATCHUP, out->data, out->len);
}

/* Every member's state is in: pick the leader, transfer if needed. */
static void decide(replica *r)
{
	/* on_state only calls this with every member's state in, so >= 1 member */
	member *lead = &g_array_index(r->members, member, 0);
	unsigned proto = HERD_WIRE_VERSION;
	uint64_t max_gen = 0;
	for (guint i = 0; i < r->members->len; i++) {
		member *m = &g_array_index(r->members, member, i);
		proto = MIN(proto, m->proto_max);
		max_gen = MAX(max_gen, MAX(m->pos.current_gen, m->pos.gen));
		if (store_position_compare(&m->pos, &lead->pos) > 0)
			lead = m; /* ties: the lower node id, met first */
	}
	r->cluster_proto = proto;
	/* Above every generation any member entered: no two configurations
	 * that apply changes ever share a generation. */
	r->next_gen = max_gen + 1;
	r->leader = lead->nodeid;
	r->leader_pos = lead->pos;
	bool differ = false;
	for (guint i = 0; i < r->members->len; i++) {
		member *m = &g_array_index(r->members, member, i);
		if (store_position_compare(&m->pos, &lead->pos) != 0 ||
		    memcmp(m->pos.hash, lead->pos.hash, sizeof(lead->pos.hash)) != 0) {
			differ = true;
			if (store_position_compare(&m->pos, &lead->pos) == 0)
				log_err("node %u diverged from node %u at the same position; node %u's state wins",
					m->nodeid, lead->nodeid, lead->nodeid);
		}
	}
	if (!differ) {
		replica_complete_sync(r, false);
		return;
	}
	r->transfer = true;
	r->snap_next = 0;
	r->snap_count = 0;
	r->snap_type = 0;
	if (r->snapshot)
		g_byte_array_unref(r->snapshot);
	r->snapshot = g_byte_array_new();
	if (r->leader != r->nodeid)
		return;
	/* The changes since the position of the member furthest behind, if
	 * every member that differs takes them and is on this history within
	 * the log; else the whole store. */
	uint64_t from = 0;
	for (guint i = 0; i < r->members->len; i++) {
		member *m = &g_array_index(r->members, member, i);
		if (m->nodeid == r->nodeid || (store_position_compare(&m->pos, &lead->pos) == 0 &&
					       memcmp(m->pos.hash, lead->pos.hash, 32) == 0))
			continue;
		uint64_t next = m->catchup ? change_log_after(r->log, m->pos.index, m->pos.hash) : 0;
		if (!next) {
			from = 0;
			break;
		}
		if (!from || next < from)
			from = next;
	}
	if (from)
		send_catchup(r, from);
	else
		send_snapshot(r);
}

static void on_sync_start(replica *r, uint32_t sender, uint64_t epoch)
{
	if (r->members->len == 0 || sender != g_array_index(r->members, member, 0).nodeid)
		return; /* only the lowest member of this configuration opens rounds */
	r->round = epoch;
	r->phase = REPLICA_SYNCING;
	r->transfer = false;
	r->confirming = false;
	for (guint i = 0; i < r->members->len; i++)
		g_array_index(r->members, member, i).have_state = false;
	char hash[65];
	store_position_hash_hex(&r->state->pos, hash);
	g_autoptr(json_t) st = json_pack("{s:I,s:I,s:s,s:I,s:i,s:i,s:s,s:b}", "gen",
					 (json_int_t)r->state->pos.gen, "index",
					 (json_int_t)r->state->pos.index, "hash", hash, "current_gen",
					 (json_int_t)r->state->pos.current_gen, "proto_min",
					 HERD_WIRE_VERSION_MIN, "proto_max", HERD_WIRE_VERSION, "name",
					 r->node_name, "catchup", 1);
	send_json(r, HERD_MSG_STATE, epoch, st);
}

static bool parse_state(const void *payload, size_t len, store_position *pos, unsigned *proto,
			bool *catchup)
{
	g_autoptr(json_t) j = json_loadb(payload, len, 0, NULL);
	/* Absent (an older herd): it is sent the whole store. */
	*catchup = json_is_true(json_object_get(j, "catchup"));
	const char *hash = json_string_value(json_object_get(j, "hash"));
	json_int_t gen = json_integer_value(json_object_get(j, "gen"));
	json_int_t index = json_integer_value(json_object_get(j, "index"));
	json_int_t pmax = json_integer_value(json_object_get(j, "proto_max"));
	json_int_t cur = json_integer_value(json_object_get(j, "current_gen"));
	if (!hash || strlen(hash) != 64 || gen < 0 || index < 0 || pmax < 1 || cur < 0)
		return false;
	for (int i = 0; i < 32; i++) {
		if (!g_ascii_isxdigit(hash[2 * i]) || !g_ascii_isxdigit(hash[2 * i + 1]))
			return false;
		pos->hash[i] = (uint8_t)(g_ascii_xdigit_value(hash[2 * i]) * 16 +
					 g_ascii_xdigit_value(hash[2 * i + 1]));
	}
	pos->gen = (uint64_t)gen;
	pos->index = (uint64_t)index;
	pos->current_gen = (uint64_t)cur;
	*proto = (unsigned)pmax;
	return true;
}

static void on_state(replica *r, uint32_t sender, uint64_t epoch, const void *payload, size_t len)
{
	member *m = find_member(r, sender);
	if (!m || epoch != r->round || r->phase != REPLICA_SYNCING || r->transfer || m->have_state)
		return;
	if (!parse_state(payload, len, &m->pos, &m->proto_max, &m->catchup)) {
		/* Every receiver sees the same bytes, so all treat the sender as
		 * empty: it will be sent the leader's state. */
		log_err("malformed STATE from node %u; treating its store as empty", sender);
		memset(&m->pos, 0, sizeof(m->pos));
		m->proto_max = HERD_WIRE_VERSION_MIN;
		m->catchup = false;
		r->rejected++;
	}
	m->have_state = true;
	for (guint i = 0; i < r->members->len; i++)
		if (!g_array_index(r->members, member, i).have_state)
			return;
	decide(r);
}

static void on_persisted(replica *r, uint32_t sender, const void *payload, size_t len)
{
	member *m = find_member(r, sender);
	if (!m || len != 16) {
		if (len != 16)
			r->rejected++;
		return;
	}
	m->persisted_gen = herd_get_le64(payload);
	m->persisted_index = herd_get_le64((const uint8_t *)payload + 8);
	if (r->confirming)
		confirm_generation(r);
	else
		check_acks(r);
}

/* ------------------------------------------------------------------ */
/* Public entry points                                                 */

replica *replica_new(uint32_t nodeid, const char *node_name, store_db *db,
		     const replica_callbacks *cb, gpointer user, GError **error)
{
	replica *r = g_new0(replica, 1);
	r->nodeid = nodeid;
	r->node_name = g_strdup(node_name);
	r->db = db;
	r->cb = *cb;
	r->user = user;
	r->members = g_array_new(FALSE, TRUE, sizeof(member));
	r->sent = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	r->in_flight = g_queue_new();
	r->outbox = g_byte_array_new();
	r->outbox_ids = g_array_new(FALSE, FALSE, sizeof(uint64_t));
	r->awaiting = g_queue_new();
	r->queued = g_queue_new();
	r->log = change_log_new(LOG_MAX_ENTRIES, LOG_MAX_BYTES);
	r->cluster_proto = HERD_WIRE_VERSION;
	r->state = store_state_new(db);
	r->next_seq = 1;
	r->next_req_id = 1;
	if (!store_state_load(r->state, error)) {
		replica_free(r);
		return NULL;
	}
	return r;
}

void replica_free(replica *r)
{
	if (!r)
		return;
	if (r->phase != REPLICA_FAILED) {
		fail_awaiting(r, HERD_ERR_UNAVAILABLE, "The daemon stopped before the change was confirmed.");
		fail_sent(r, HERD_ERR_UNAVAILABLE, "The daemon stopped before the change was applied here; the cluster may still apply it.");
	}
	g_queue_free_full(r->awaiting, (GDestroyNotify)awaiting_free);
	g_queue_free_full(r->queued, (GDestroyNotify)queued_free);
	g_hash_table_destroy(r->sent);
	g_queue_free_full(r->in_flight, (GDestroyNotify)sent_message_free);
	g_byte_array_unref(r->outbox);
	g_array_unref(r->outbox_ids);
	g_array_free(r->members, TRUE);
	if (r->snapshot)
		g_byte_array_unref(r->snapshot);
	change_log_free(r->log);
	store_state_free(r->state);
	g_free(r->node_name);
	g_free(r);
}

void replica_set_nodeid(replica *r, uint32_t nodeid)
{
	r->nodeid = nodeid;
}

static void drop_own_command(replica *r, uint32_t sender, uint64_t req_id, const uint8_t *cmd,
			     size_t len)
{
	if (sender == r->nodeid && g_hash_table_remove(r->sent, &req_id))
		fail_request(r, req_id, HERD_ERR_UNAVAILABLE,
			     "The cluster membership changed while the change waited for a sync; it may not have been applied. Check and retry.");
}

static void drop_queued(replica *r)
{
	queued_command *q;
	while ((q = g_queue_pop_head(r->queued))) {
		gsize len;
		const uint8_t *p = g_bytes_get_data(q->payload, &len);
		for_each_command(r, q->sender, p, len, drop_own_command);
		queued_free(q);
	}
}

void replica_confchg(replica *r, const uint32_t *members, size_t n_members)
{
	if (r->phase == REPLICA_FAILED)
		return;
	/* What was applied before the change must be durable before we report
	 * our position. */
	g_autoptr(GError) err = NULL;
	if (r->dirty && !commit(r, &err)) {
		replica_fail(r, err);
		return;
	}
	r->dirty = false;
	g_array_set_size(r->members, 0);
	bool me = false;
	for (size_t i = 0; i < n_members; i++) {
		member m = { .nodeid = members[i], .proto_max = HERD_WIRE_VERSION };
		g_array_append_val(r->members, m);
		me |= members[i] == r->nodeid;
	}
	g_array_sort(r->members, member_cmp);
	drop_queued(r);
	r->transfer = false;
	r->confirming = false;
	r->round = 0;
	r->primary = false;
	if (!me) {
		replica_detach(r);
		return;
	}
	r->phase = REPLICA_SYNCING;
	if (g_array_index(r->members, member, 0).nodeid == r->nodeid) {
		uint64_t epoch = ((uint64_t)r->nodeid << 32) | ++r->round_counter;
		send_msg(r, HERD_MSG_SYNC_START, epoch, NULL, 0);
	}
}

void replica_detach(replica *r)
{
	if (r->phase == REPLICA_FAILED)
		return;
	r->phase = REPLICA_DETACHED;
	r->primary = false;
	r->transfer = false;
	r->confirming = false;
	r->round = 0;
	g_array_set_size(r->members, 0);
	drop_queued(r);
	fail_awaiting(r, HERD_ERR_UNAVAILABLE,
		      "The connection to the cluster was lost before the change was confirmed; it may not have been applied.");
	fail_sent(r, HERD_ERR_UNAVAILABLE,
		  "The connection to the cluster was lost; the change may not have been applied.");
}

static void on_command(replica *r, uint32_t sender, uint64_t seq, const uint8_t *payload,
		       size_t len)
{
	/* forget_lost() left our own message, if it is one, at the head. */
	sent_message *mine = sender == r->nodeid ? g_queue_peek_head(r->in_flight) : NULL;
	if (mine && mine->seq == seq)
		g_queue_pop_head(r->in_flight);
	else
		mine = NULL;
	/* Our own commands stay in r->sent until applied (now, or after the
	 * sync: run_queued(), or dropped with an answer: drop_queued()). */
	bool kept = false;
	if (!for_each_command(r, sender, payload, len, NULL)) {
		log_warn("dropped a malformed batch of commands from node %u", sender);
		r->rejected++;
	} else if (r->phase == REPLICA_SYNCED) {
		for_each_command(r, sender, payload, len, apply_command);
		kept = true;
		r->applied_since_trim += len;
		if (r->applied_since_trim >= TRIM_AFTER_BYTES) {
			r->applied_since_trim = 0;
			herd_malloc_release();
		}
	} else if (g_queue_get_length(r->queued) < MAX_QUEUED) {
		queued_command *q = g_new0(queued_command, 1);
		q->sender = sender;
		q->payload = g_bytes_new(payload, len);
		g_queue_push_tail(r->queued, q);
		kept = true;
	}
	if (mine) {
		if (!kept)
			fail_undelivered(r, mine, "Too many changes waited for a sync, or the batch was malformed; the change was not applied. Retry.");
		sent_message_free(mine);
		if (g_queue_is_empty(r->in_flight))
			send_outbox(r);
	}
}

void replica_deliver(replica *r, uint32_t sender, const void *msg, size_t len)
{
	if (r->phase == REPLICA_FAILED || r->phase == REPLICA_DETACHED)
		return;
	herd_wire_header hdr;
	const void *payload;
	g_autoptr(GError) err = NULL;
	if (!herd_wire_decode(msg, len, sender, &hdr, &payload, &err)) {
		/* Every member sees the same bytes and drops them alike. */
		log_warn("dropped a message: %s", err->message);
		r->rejected++;
		return;
	}
	if (sender == r->nodeid)
		forget_lost(r, hdr.msg_id);
	switch ((herd_msg_type)hdr.type) {
	case HERD_MSG_SYNC_START:
		on_sync_start(r, sender, hdr.epoch);
		break;
	case HERD_MSG_STATE:
		on_state(r, sender, hdr.epoch, payload, hdr.payload_len);
		break;
	case HERD_MSG_SNAPSHOT:
	case HERD_MSG_CATCHUP:
		replica_on_transfer(r, sender, (herd_msg_type)hdr.type, hdr.epoch, payload, hdr.payload_len);
		break;
	case HERD_MSG_COMMAND:
		on_command(r, sender, hdr.msg_id, payload, hdr.payload_len);
		break;
	case HERD_MSG_PERSISTED:
		on_persisted(r, sender, payload, hdr.payload_len);
		break;
	case HERD_MSG_STATUS:
	case HERD_MSG_VM_REQUEST:
	case HERD_MSG_VM_REPLY:
	case HERD_MSG_LEAVING:
	case HERD_MSG_PROGRESS:
	case HERD_MSG_CHECK:
	case HERD_MSG__MAX:
		break;
	}
}

void replica_flush(replica *r)
{
	if (r->phase == REPLICA_FAILED)
		return;
	if (r->dirty) {
		g_autoptr(GError) err = NULL;
		if (!commit(r, &err)) {
			replica_fail(r, err);
			return;
		}
		r->dirty = false;
		if (r->phase == REPLICA_SYNCED || r->confirming) {
			uint8_t p[16];
			herd_put_le64(p, r->state->pos.current_gen);
			herd_put_le64(p + 8, r->state->pos.index);
			r->counters.persisted_sent += send_msg(r, HERD_MSG_PERSISTED, r->round, p, sizeof(p)) != 0;
		}
	}
	check_acks(r);
}

const char *replica_refusal(replica *r, herd_error_code *code)
{
	switch (r->phase) {
	case REPLICA_FAILED:
		*code = HERD_ERR_UNAVAILABLE;
		return "This node's configuration store failed; the node takes no part in the cluster until it has recovered.";
	case REPLICA_DETACHED:
		*code = HERD_ERR_UNAVAILABLE;
		return "This node is not connected to the cluster (is corosync running?).";
	case REPLICA_SYNCING:
		*code = HERD_ERR_UNAVAILABLE;
		return "The cluster is synchronising its configuration after a membership change; retry in a moment.";
	case REPLICA_SYNCED:
		break;
	}
	if (!r->primary) {
		*code = HERD_ERR_NO_QUORUM;
		return "This node's partition of the cluster has no quorum; configuration changes are refused until it has.";
	}
	return NULL;
}

uint64_t replica_submit(replica *r, json_t *cmd, int64_t now_ms, const char *user, GError **error)
{
	herd_error_code code;
	const char *why = replica_refusal(r, &code);
	if (why) {
		g_set_error_literal(error, HERD_ERROR, (gint)code, why);
		return 0;
	}
	g_autoptr(GHashTable) lost = r->cb.unfenced_lost ? r->cb.unfenced_lost(r->user) : NULL;
	if (!store_guard_check(r->state, cmd, lost, error))
		return 0;
	if (g_hash_table_size(r->sent) + g_queue_get_length(r->awaiting) >= MAX_PENDING) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Too many changes are in flight on this node (%d); retry.", MAX_PENDING);
		return 0;
	}
	json_object_set_new(cmd, "time_ms", json_integer(now_ms));
	json_object_set_new(cmd, "origin", json_string(r->node_name));
	json_object_set_new(cmd, "user", json_string(user ? user : "root"));
	g_autofree char *text = json_dumps(cmd, JSON_COMPACT | JSON_SORT_KEYS);
	size_t len = strlen(text);
	if (len + 12 > HERD_WIRE_MAX_PAYLOAD) {
		g_set_error(error, HERD_ERROR, HERD_ERR_TOO_LARGE,
			    "The change is %zu bytes; the limit is %u.", len, HERD_WIRE_MAX_PAYLOAD - 12);
		return 0;
	}
	if (r->outbox->len + 12 + len > HERD_WIRE_MAX_PAYLOAD)
		send_outbox(r);
	uint64_t id = r->next_req_id++;
	uint8_t frame[12];
	herd_put_le64(frame, id);
	herd_put_le32(frame + 8, (uint32_t)len);
	g_byte_array_append(r->outbox, frame, sizeof(frame));
	g_byte_array_append(r->outbox, (const guint8 *)text, (guint)len);
	g_array_append_val(r->outbox_ids, id);
	g_hash_table_add(r->sent, g_memdup2(&id, sizeof(id)));
	/* Alone: go now.  Behind a batch in flight: go with the next one, when
	 * it comes back (forget_lost), or once the batch is big. */
	if (g_queue_is_empty(r->in_flight) || r->outbox->len >= BATCH_MAX_BYTES) {
		guint before = g_hash_table_size(r->sent);
		send_outbox(r);
		if (g_hash_table_size(r->sent) < before) {
			g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
				    "The change could not be sent to the cluster (corosync refused it).");
			return 0;
		}
	}
	return id;
}

json_t *replica_bootstrap(replica *r, json_t *cmd, int64_t now_ms, const char *user,
			  GError **error)
{
	if (r->state->pos.index != 0 || r->phase != REPLICA_DETACHED) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "This node already holds a cluster configuration.");
		return NULL;
	}
	json_object_set_new(cmd, "time_ms", json_integer(now_ms));
	json_object_set_new(cmd, "origin", json_string(r->node_name));
	json_object_set_new(cmd, "user", json_string(user ? user : "root"));
	g_autofree char *text = json_dumps(cmd, JSON_COMPACT | JSON_SORT_KEYS);
	if (!store_db_begin(r->db, error))
		return NULL;
	json_t *result = store_state_apply(r->state, cmd, text, strlen(text), NULL, error);
	if (result) {
		store_position pos = r->state->pos;
		pos.gen = 1;
		pos.current_gen = 1;
		r->state->pos = pos;
		if (!commit(r, error)) {
			json_decref(result);
			store_db_rollback(r->db);
			store_state_load(r->state, NULL);
			return NULL;
		}
		r->state->pos = pos;
		r->cb.changed(r->user, NULL);
		return result;
	}
	store_db_rollback(r->db);
	return NULL;
}

bool replica_recover(replica *r, GError **error)
{
	if (r->phase != REPLICA_FAILED) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "The configuration store has not failed.");
		return false;
	}
	/* Only what was durable: what the failed burst applied in memory goes. */
	store_db_rollback(r->db);
	if (!store_state_load(r->state, error))
		return false;
	r->phase = REPLICA_DETACHED;
	r->dirty = false;
	r->leader = 0;
	r->snap_next = r->snap_count = 0;
	if (r->snapshot) {
		g_byte_array_unref(r->snapshot);
		r->snapshot = NULL;
	}
	r->durable_told_index = r->durable_told_gen = 0;
	r->cluster_proto = HERD_WIRE_VERSION;
	char hash[65];
	store_position_hash_hex(&r->state->pos, hash);
	log_info("configuration store reloaded from disk at generation %" G_GUINT64_FORMAT
		 ", index %" G_GUINT64_FORMAT ", hash %.12s",
		 r->state->pos.gen, r->state->pos.index, hash);
	r->cb.changed(r->user, NULL);
	return true;
}

void replica_recheck_primary(replica *r)
{
	if (r->phase == REPLICA_SYNCED && !r->primary && compute_primary(r)) {
		log_info("this partition may change the configuration again");
		r->primary = true;
	}
}

store_state *replica_state(replica *r) { return r->state; }
replica_phase replica_get_phase(replica *r) { return r->phase; }
uint64_t replica_caught_up(replica *r) { return r->caught_up; }
void replica_get_counters(replica *r, replica_counters *out) { *out = r->counters; }

void replica_set_log_max(replica *r, unsigned entries)
{
	change_log_set_max(r->log, entries);
}
bool replica_is_primary(replica *r) { return r->primary; }
uint32_t replica_nodeid(replica *r) { return r->nodeid; }
unsigned replica_cluster_protocol(replica *r) { return r->cluster_proto; }
uint64_t replica_rejected_messages(replica *r) { return r->rejected; }

size_t replica_members(replica *r, uint32_t *out, size_t max)
{
	for (guint i = 0; i < r->members->len && i < max; i++)
		out[i] = g_array_index(r->members, member, i).nodeid;
	return r->members->len;
}
