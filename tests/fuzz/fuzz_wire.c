/*
 * Messages from the wire: herd_wire_decode() on arbitrary bytes, then the
 * same bytes delivered to a synced single-node replica (as if another node,
 * or this one, had multicast them), followed by what the replica sends in
 * answer, looped back, until it is quiet.
 *
 * The first four bytes of the input name the CPG sender (so that the
 * header's sender can match it); the rest is the message.
 *
 * Invariants: decode accepts only what it promises (a header whose length
 * matches); the replica survives anything, stays synced (garbage cannot
 * fail it: its disk is fine) and keeps memory and database equal.
 */
#include "fuzz.h"

#include "common/error.h"
#include "common/json.h"
#include "store/replica.h"
#include "store/wire.h"

typedef struct {
	GQueue *bus; /* GBytes*, sent by the replica */
} ctx;

static bool cb_send(gpointer user, const void *msg, size_t len)
{
	ctx *c = user;
	if (g_queue_get_length(c->bus) > 1000)
		return false;
	g_queue_push_tail(c->bus, g_bytes_new(msg, len));
	return true;
}

static void cb_done(gpointer user, uint64_t req_id, json_t *result, const GError *error)
{
	FUZZ_CHECK((result == NULL) != (error == NULL));
	if (error)
		FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
}

static void cb_changed(gpointer user, GPtrArray *changes)
{
}

static void cb_failed(gpointer user, const GError *error)
{
	g_error("the replica failed on input from the wire: %s", error->message);
}

static const replica_callbacks callbacks = { cb_send, cb_done, cb_changed, cb_failed, NULL };

/* Deliver what the replica sent until it is quiet (bounded). */
static void loop_back(replica *r, ctx *c)
{
	for (unsigned n = 0; n < 100; n++) {
		GBytes *b = g_queue_pop_head(c->bus);
		if (!b) {
			replica_flush(r);
			if (g_queue_is_empty(c->bus))
				return;
			continue;
		}
		gsize len;
		const void *p = g_bytes_get_data(b, &len);
		replica_deliver(r, 1, p, len);
		g_bytes_unref(b);
	}
}

static replica *synced_replica(store_db *db, ctx *c)
{
	replica *r = replica_new(1, "n1", db, &callbacks, c, NULL);
	FUZZ_CHECK(r);
	json_t *cmd = json_loads(
		"{\"op\":\"batch\",\"ops\":["
		"{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"cccccccc-cccc-4ccc-8ccc-cccccccccccc\",\"name\":\"c\",\"data\":{}},"
		"{\"op\":\"create\",\"kind\":\"node\",\"uuid\":\"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\",\"name\":\"n1\",\"data\":{\"nodeid\":1}},"
		"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"11111111-1111-4111-8111-111111111111\",\"name\":\"web1\",\"data\":{}}]}",
		0, NULL);
	json_t *res = replica_bootstrap(r, cmd, 1000, "fuzz", NULL);
	FUZZ_CHECK(res);
	json_decref(res);
	json_decref(cmd);
	const uint32_t me[] = { 1 };
	replica_confchg(r, me, 1);
	loop_back(r, c);
	FUZZ_CHECK(replica_get_phase(r) == REPLICA_SYNCED && replica_is_primary(r));
	return r;
}

static void check_decode(const uint8_t *msg, size_t len, uint32_t sender)
{
	herd_wire_header h;
	const void *payload = NULL;
	GError *error = NULL;
	if (herd_wire_decode(msg, len, sender, &h, &payload, &error)) {
		FUZZ_CHECK(!error);
		FUZZ_CHECK(len >= HERD_WIRE_HEADER_SIZE);
		FUZZ_CHECK(h.magic == HERD_WIRE_MAGIC && h.sender == sender);
		FUZZ_CHECK(h.type >= 1 && h.type < HERD_MSG__MAX);
		FUZZ_CHECK(h.payload_len == len - HERD_WIRE_HEADER_SIZE);
		FUZZ_CHECK(h.payload_len <= HERD_WIRE_MAX_PAYLOAD);
		FUZZ_CHECK((const uint8_t *)payload == msg + HERD_WIRE_HEADER_SIZE);
		/* encoding what was decoded gives the same header back */
		size_t n;
		uint8_t *again = herd_wire_encode((herd_msg_type)h.type, h.sender, h.epoch, h.msg_id,
						  payload, h.payload_len, &n);
		FUZZ_CHECK(n == len);
		FUZZ_CHECK(memcmp(again + 16, msg + 16, 16) == 0); /* epoch, msg_id */
		g_free(again);
	} else {
		FUZZ_CHECK(error && error->domain == HERD_ERROR && error->code == HERD_ERR_INVALID);
		FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL));
		g_error_free(error);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	if (!quiet) {
		fuzz_quiet();
		quiet = true;
	}
	if (size < 4)
		return 0;
	uint32_t sender = herd_get_le32(data);
	const uint8_t *msg = data + 4;
	size_t len = size - 4;
	check_decode(msg, len, sender);

	ctx c = { g_queue_new() };
	store_db *db = store_db_open(":memory:", NULL);
	replica *r = synced_replica(db, &c);
	replica_deliver(r, sender, msg, len);
	loop_back(r, &c);
	FUZZ_CHECK(replica_get_phase(r) != REPLICA_FAILED);
	/* memory equals the database, once what was applied is committed */
	replica_flush(r);
	store_state *fresh = store_state_new(db);
	FUZZ_CHECK(store_state_load(fresh, NULL));
	store_state *mine = replica_state(r);
	for (int k = 0; k < STORE_KIND__COUNT; k++)
		FUZZ_CHECK(store_state_count(fresh, (store_kind)k) == store_state_count(mine, (store_kind)k));
	FUZZ_CHECK(fresh->pos.index == mine->pos.index);
	store_state_free(fresh);
	replica_free(r);
	store_db_close(db);
	g_queue_free_full(c.bus, (GDestroyNotify)g_bytes_unref);
	return 0;
}
