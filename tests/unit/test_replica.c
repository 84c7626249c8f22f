/*
 * The replica protocol in targeted scenarios that the random simulator
 * (tests/sim) may rarely hit.  Two or three replicas over in-memory
 * databases, one queue as the bus: a message sent is delivered to every
 * member of the current configuration in one order, as CPG does; each test
 * decides when members flush (make durable) and so when PERSISTED goes out.
 */
#include "common/error.h"
#include "common/json.h"
#include "store/replica.h"
#include "store/vm.h"
#include "store/wire.h"

#include <string.h>

#define MAX_NODES 3

typedef struct {
	uint64_t req_id;
	json_t *result;   /* a reference, or NULL */
	GError *error;    /* a copy, or NULL */
} answer;

typedef struct {
	uint32_t id;
	store_db *db;
	replica *r;
	bool member;              /* in the current configuration */
	GArray *answers;          /* answer */
	unsigned changed, replaced;
	GError *failed;
	bool survivor_ok;         /* two_node_survivor_ok's answer */
} node;

typedef struct {
	uint32_t sender;
	GBytes *bytes;
} message;

typedef struct {
	node nodes[MAX_NODES + 1];   /* by node id, 1… */
	unsigned n;
	GQueue *bus;                 /* message* */
	bool refuse_sends;
	uint64_t clock_ms;
} harness;

static harness H;

static bool cb_send(gpointer user, const void *msg, size_t len)
{
	node *nd = user;
	if (H.refuse_sends || !nd->member)
		return false;
	message *m = g_new0(message, 1);
	m->sender = nd->id;
	m->bytes = g_bytes_new(msg, len);
	g_queue_push_tail(H.bus, m);
	return true;
}

static void cb_done(gpointer user, uint64_t req_id, json_t *result, const GError *error)
{
	node *nd = user;
	g_assert_true((result == NULL) != (error == NULL));
	for (guint i = 0; i < nd->answers->len; i++)
		if (g_array_index(nd->answers, answer, i).req_id == req_id)
			g_error("n%u: request %" G_GUINT64_FORMAT " answered twice", nd->id, req_id);
	answer a = { req_id, result ? json_incref(result) : NULL, error ? g_error_copy(error) : NULL };
	g_array_append_val(nd->answers, a);
}

static void cb_changed(gpointer user, GPtrArray *changes)
{
	node *nd = user;
	if (changes)
		nd->changed++;
	else
		nd->replaced++;
}

static void cb_failed(gpointer user, const GError *error)
{
	node *nd = user;
	g_assert_null(nd->failed);
	nd->failed = g_error_copy(error);
}

static bool cb_survivor(gpointer user, uint32_t missing)
{
	return ((node *)user)->survivor_ok;
}

static const replica_callbacks callbacks = {
	.send = cb_send,
	.done = cb_done,
	.changed = cb_changed,
	.failed = cb_failed,
	.two_node_survivor_ok = cb_survivor,
};

static void message_free(message *m)
{
	g_bytes_unref(m->bytes);
	g_free(m);
}

static void answer_clear(answer *a)
{
	json_decref(a->result);
	g_clear_error(&a->error);
}

static void node_start(node *nd)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *name = g_strdup_printf("n%u", nd->id);
	nd->r = replica_new(nd->id, name, nd->db, &callbacks, nd, &error);
	g_assert_no_error(error);
	g_assert_nonnull(nd->r);
}

static void h_setup(unsigned n)
{
	memset(&H, 0, sizeof(H));
	H.n = n;
	H.bus = g_queue_new();
	H.clock_ms = 1000;
	for (unsigned i = 1; i <= n; i++) {
		node *nd = &H.nodes[i];
		g_autoptr(GError) error = NULL;
		nd->id = i;
		nd->db = store_db_open(":memory:", &error);
		g_assert_no_error(error);
		nd->answers = g_array_new(FALSE, TRUE, sizeof(answer));
		g_array_set_clear_func(nd->answers, (GDestroyNotify)answer_clear);
		node_start(nd);
	}
}

static void h_teardown(void)
{
	for (unsigned i = 1; i <= H.n; i++) {
		node *nd = &H.nodes[i];
		replica_free(nd->r);
		store_db_close(nd->db);
		g_array_unref(nd->answers);
		g_clear_error(&nd->failed);
	}
	g_queue_free_full(H.bus, (GDestroyNotify)message_free);
}

/* Make @id create the cluster with nodes 1..@n_nodes in its node list. */
static void bootstrap(uint32_t id, unsigned n_nodes)
{
	json_t *ops = json_array();
	json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:s,s:{}}", "op", "create", "kind", "cluster",
					     "uuid", "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "name", "c", "data"));
	for (unsigned i = 1; i <= n_nodes; i++) {
		g_autofree char *uuid = g_strdup_printf("aaaaaaaa-aaaa-4aaa-8aaa-%012u", i);
		g_autofree char *name = g_strdup_printf("n%u", i);
		json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:s,s:{s:i}}", "op", "create", "kind",
						     "node", "uuid", uuid, "name", name, "data", "nodeid", i));
	}
	g_autoptr(json_t) cmd = json_pack("{s:s,s:o}", "op", "batch", "ops", ops);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = replica_bootstrap(H.nodes[id].r, cmd, (int64_t)++H.clock_ms, "admin", &error);
	g_assert_no_error(error);
	g_assert_nonnull(r);
}

/* A new configuration of the nodes in @ids (0-terminated); nodes left out
 * stop receiving. */
static void confchg(const uint32_t *ids)
{
	size_t n = 0;
	while (ids[n])
		n++;
	for (unsigned i = 1; i <= H.n; i++)
		H.nodes[i].member = false;
	for (size_t k = 0; k < n; k++)
		H.nodes[ids[k]].member = true;
	for (size_t k = 0; k < n; k++)
		replica_confchg(H.nodes[ids[k]].r, ids, n);
}

/* Deliver the next message to every member; false if the bus is empty. */
static bool deliver_one(void)
{
	message *m = g_queue_pop_head(H.bus);
	if (!m)
		return false;
	gsize len;
	const void *p = g_bytes_get_data(m->bytes, &len);
	for (unsigned i = 1; i <= H.n; i++)
		if (H.nodes[i].member)
			replica_deliver(H.nodes[i].r, m->sender, p, len);
	message_free(m);
	return true;
}

static void flush(uint32_t id)
{
	replica_flush(H.nodes[id].r);
}

/* Deliver everything, every member flushing after each message, until
 * nothing moves. */
static void settle(void)
{
	for (unsigned rounds = 0; rounds < 10000; rounds++) {
		bool moved = deliver_one();
		for (unsigned i = 1; i <= H.n; i++)
			if (H.nodes[i].member)
				flush(i);
		if (!moved && g_queue_is_empty(H.bus))
			return;
	}
	g_error("the bus does not settle");
}

static replica_phase phase(uint32_t id)
{
	return replica_get_phase(H.nodes[id].r);
}

static uint64_t submit(uint32_t id, json_t *cmd, GError **error)
{
	return replica_submit(H.nodes[id].r, cmd, (int64_t)++H.clock_ms, "alice", error);
}

static json_t *create_vm(const char *uuid, const char *name)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:{}}", "op", "create", "kind", "vm", "uuid", uuid,
			 "name", name, "data");
}

/* @id's answer to @req_id, or NULL while there is none. */
static answer *find_answer(uint32_t id, uint64_t req_id)
{
	GArray *a = H.nodes[id].answers;
	for (guint i = 0; i < a->len; i++)
		if (g_array_index(a, answer, i).req_id == req_id)
			return &g_array_index(a, answer, i);
	return NULL;
}

static bool answered(uint32_t id, uint64_t req_id)
{
	return find_answer(id, req_id) != NULL;
}

/* @id's answer to @req_id, which must have come. */
static answer *answer_of(uint32_t id, uint64_t req_id)
{
	answer *a = find_answer(id, req_id);
	if (!a)
		g_error("n%u: request %" G_GUINT64_FORMAT " was not answered", id, req_id);
	return a;
}

static void expect_refused(uint32_t id, int code, const char *needle)
{
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "refused");
	g_autoptr(GError) error = NULL;
	guint sent = g_queue_get_length(H.bus);
	g_assert_cmpuint(submit(id, cmd, &error), ==, 0);
	g_assert_error(error, HERD_ERROR, code);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
	g_assert_cmpuint(g_queue_get_length(H.bus), ==, sent); /* nothing sent */
	herd_error_code why_code;
	const char *why = replica_refusal(H.nodes[id].r, &why_code);
	g_assert_cmpstr(why, ==, error->message);
	g_assert_cmpint(why_code, ==, code);
}

static char *dump_of(uint32_t id)
{
	g_autoptr(json_t) d = store_db_dump(H.nodes[id].db, NULL);
	g_assert_nonnull(d);
	return json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
}

static void same_store(uint32_t a, uint32_t b)
{
	store_position *pa = &replica_state(H.nodes[a].r)->pos, *pb = &replica_state(H.nodes[b].r)->pos;
	g_assert_cmpuint(pa->index, ==, pb->index);
	g_assert_cmpuint(pa->gen, ==, pb->gen);
	g_assert_cmpmem(pa->hash, 32, pb->hash, 32);
	g_autofree char *da = dump_of(a), *db = dump_of(b);
	g_assert_cmpstr(da, ==, db);
}

/* Start a configuration of @ids and let it sync. */
static void form(const uint32_t *ids)
{
	confchg(ids);
	settle();
	for (size_t k = 0; ids[k]; k++)
		g_assert_cmpint(phase(ids[k]), ==, REPLICA_SYNCED);
}

/* ------------------------------------------------------------------ */

static void test_bootstrap(void)
{
	h_setup(1);
	replica *r = H.nodes[1].r;
	g_assert_cmpint(replica_get_phase(r), ==, REPLICA_DETACHED);
	g_assert_false(replica_is_primary(r));
	g_assert_cmpuint(replica_nodeid(r), ==, 1);
	/* a failing first command leaves the store empty */
	g_autoptr(json_t) bad = json_pack("{s:s}", "op", "nonsense");
	g_autoptr(GError) error = NULL;
	g_assert_null(replica_bootstrap(r, bad, 5, "admin", &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	g_assert_cmpuint(replica_state(r)->pos.index, ==, 0);
	g_assert_false(store_db_in_transaction(H.nodes[1].db));
	g_clear_error(&error);
	/* ...as does a disk that fails to make it durable */
	store_db_fail_after(H.nodes[1].db, 1);
	g_autoptr(json_t) cmd0 = create_vm("11111111-1111-4111-8111-111111111111", "web");
	g_assert_null(replica_bootstrap(r, cmd0, 5, "admin", &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_assert_cmpuint(replica_state(r)->pos.index, ==, 0);
	g_assert_null(store_state_get(replica_state(r), STORE_KIND_VM, "11111111-1111-4111-8111-111111111111"));
	g_clear_error(&error);
	g_assert_cmpuint(H.nodes[1].replaced, ==, 0);

	bootstrap(1, 1);
	store_position *pos = &replica_state(r)->pos;
	g_assert_cmpuint(pos->index, ==, 1);
	g_assert_cmpuint(pos->gen, ==, 1);
	g_assert_cmpuint(pos->current_gen, ==, 1);
	g_assert_cmpuint(H.nodes[1].replaced, ==, 1);
	g_assert_nonnull(store_state_cluster(replica_state(r)));
	g_assert_cmpuint(store_state_count(replica_state(r), STORE_KIND_NODE), ==, 1);
	/* durable: a fresh load of the database sees it */
	g_assert_false(store_db_in_transaction(H.nodes[1].db));
	g_autoptr(store_state) fresh = store_state_new(H.nodes[1].db);
	g_assert_true(store_state_load(fresh, NULL));
	g_assert_cmpuint(fresh->pos.index, ==, 1);
	g_assert_cmpuint(fresh->pos.gen, ==, 1);
	/* only once */
	g_autoptr(json_t) again = json_pack("{s:s}", "op", "batch");
	g_assert_null(replica_bootstrap(r, again, 6, "admin", &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "already holds a cluster configuration"));
	g_assert_cmpuint(pos->index, ==, 1);
	/* nothing went on the bus: there is none yet */
	g_assert_true(g_queue_is_empty(H.bus));
	h_teardown();
}

static void test_single_node(void)
{
	h_setup(1);
	bootstrap(1, 1);
	expect_refused(1, HERD_ERR_UNAVAILABLE, "not connected to the cluster");
	const uint32_t one[] = { 1, 0 };
	confchg(one);
	g_assert_cmpint(phase(1), ==, REPLICA_SYNCING);
	expect_refused(1, HERD_ERR_UNAVAILABLE, "synchronising its configuration");
	settle();
	g_assert_cmpint(phase(1), ==, REPLICA_SYNCED);
	g_assert_true(replica_is_primary(H.nodes[1].r));
	uint32_t members[4];
	g_assert_cmpuint(replica_members(H.nodes[1].r, members, 4), ==, 1);
	g_assert_cmpuint(members[0], ==, 1);
	g_assert_cmpuint(replica_cluster_protocol(H.nodes[1].r), ==, HERD_WIRE_VERSION);
	herd_error_code code;
	g_assert_null(replica_refusal(H.nodes[1].r, &code));
	/* a sync of a primary configuration starts a new generation */
	g_assert_cmpuint(replica_state(H.nodes[1].r)->pos.current_gen, ==, 2);

	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "web1");
	g_autoptr(GError) error = NULL;
	uint64_t id = submit(1, cmd, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(id, >, 0);
	/* the envelope was added to the caller's command */
	g_assert_cmpstr(json_string_value(json_object_get(cmd, "origin")), ==, "n1");
	g_assert_cmpstr(json_string_value(json_object_get(cmd, "user")), ==, "alice");
	/* applied when delivered, answered only once durable */
	g_assert_true(deliver_one());
	g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[1].r), STORE_KIND_VM, "web1"));
	g_assert_cmpuint(H.nodes[1].changed, ==, 1);
	g_assert_false(answered(1, id));
	g_assert_true(store_db_in_transaction(H.nodes[1].db));
	flush(1);
	g_assert_false(store_db_in_transaction(H.nodes[1].db));
	g_assert_false(answered(1, id));       /* its PERSISTED has not come back */
	settle();
	answer *a = answer_of(1, id);
	g_assert_no_error(a->error);
	g_assert_cmpstr(json_string_value(json_object_get(a->result, "name")), ==, "web1");
	g_assert_cmpint(json_integer_value(json_object_get(a->result, "version")), ==, 1);

	/* a command that fails is answered with the store's error at once */
	g_autoptr(json_t) dup = create_vm("22222222-2222-4222-8222-222222222222", "web1");
	uint64_t id2 = submit(1, dup, &error);
	g_assert_cmpuint(id2, >, id);
	settle();
	a = answer_of(1, id2);
	g_assert_error(a->error, HERD_ERROR, HERD_ERR_CONFLICT);
	g_assert_nonnull(strstr(a->error->message, "A VM named 'web1' already exists."));
	h_teardown();
}

/* An empty replica joins: it is sent the whole state. */
static void test_join_empty(void)
{
	h_setup(2);
	bootstrap(1, 2);
	const uint32_t one[] = { 1, 0 };
	confchg(one);
	settle();
	/* one of two nodes: no majority, no changes */
	g_assert_cmpint(phase(1), ==, REPLICA_SYNCED);
	g_assert_false(replica_is_primary(H.nodes[1].r));
	expect_refused(1, HERD_ERR_NO_QUORUM, "has no quorum");

	const uint32_t both[] = { 1, 2, 0 };
	form(both);
	g_assert_true(replica_is_primary(H.nodes[1].r));
	g_assert_true(replica_is_primary(H.nodes[2].r));
	g_assert_cmpuint(H.nodes[2].replaced, ==, 1);   /* it got the snapshot */
	g_assert_cmpuint(H.nodes[1].replaced, ==, 1);   /* (the bootstrap) */
	g_assert_nonnull(store_state_cluster(replica_state(H.nodes[2].r)));
	same_store(1, 2);
	/* and both take changes, from either side */
	g_autoptr(json_t) c1 = create_vm("11111111-1111-4111-8111-111111111111", "a");
	g_autoptr(json_t) c2 = create_vm("22222222-2222-4222-8222-222222222222", "b");
	uint64_t id1 = submit(1, c1, NULL), id2 = submit(2, c2, NULL);
	g_assert_cmpuint(id1, >, 0);
	g_assert_cmpuint(id2, >, 0);
	settle();
	g_assert_no_error(answer_of(1, id1)->error);
	g_assert_no_error(answer_of(2, id2)->error);
	same_store(1, 2);
	g_assert_cmpuint(store_state_count(replica_state(H.nodes[1].r), STORE_KIND_VM), ==, 2);
	g_assert_cmpuint(replica_rejected_messages(H.nodes[1].r), ==, 0);
	h_teardown();
}

/* A state larger than one snapshot chunk reaches a joining node whole. */
static void test_join_big_state(void)
{
	h_setup(2);
	bootstrap(1, 2);
	H.nodes[1].survivor_ok = true;
	const uint32_t one[] = { 1, 0 };
	form(one);
	g_autofree char *xml = g_strnfill(200 * 1024, 'x');
	for (unsigned i = 0; i < 4; i++) {
		g_autofree char *uuid = g_strdup_printf("11111111-1111-4111-8111-%012u", i);
		g_autofree char *name = g_strdup_printf("big%u", i);
		g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:s,s:{s:s}}", "op", "create", "kind", "vm",
						  "uuid", uuid, "name", name, "data", "xml", xml);
		uint64_t id = submit(1, cmd, NULL);
		settle();
		g_assert_no_error(answer_of(1, id)->error);
	}
	const uint32_t both[] = { 1, 2, 0 };
	form(both);
	g_assert_cmpuint(H.nodes[2].replaced, ==, 1);
	g_assert_cmpuint(store_state_count(replica_state(H.nodes[2].r), STORE_KIND_VM), ==, 4);
	same_store(1, 2);
	h_teardown();
}

/* Create VMs @first… (@n of them) through @id, each answered. */
static void create_vms(uint32_t id, unsigned first, unsigned n)
{
	for (unsigned i = first; i < first + n; i++) {
		g_autofree char *uuid = g_strdup_printf("33333333-3333-4333-8333-%012u", i);
		g_autofree char *name = g_strdup_printf("vm%u", i);
		g_autoptr(json_t) cmd = create_vm(uuid, name);
		uint64_t req = submit(id, cmd, NULL);
		settle();
		g_assert_no_error(answer_of(id, req)->error);
	}
}

/* A member back after missing changes is sent those changes, not the whole
 * store (it applies each, as a change, and gets no replaced state); more
 * changes than the leader's log holds, and it gets the whole store. */
static void test_catchup(void)
{
	h_setup(3);
	bootstrap(1, 3);
	const uint32_t all[] = { 1, 2, 3, 0 };
	form(all);
	create_vms(1, 0, 3);
	const uint32_t two[] = { 1, 2, 0 };
	form(two);
	create_vms(2, 3, 5);
	unsigned changed = H.nodes[3].changed, replaced = H.nodes[3].replaced;
	form(all);
	g_assert_cmpuint(H.nodes[3].replaced, ==, replaced);
	g_assert_cmpuint(H.nodes[3].changed, ==, changed + 5);
	g_assert_cmpuint(replica_caught_up(H.nodes[3].r), ==, 5);
	g_assert_cmpuint(replica_caught_up(H.nodes[1].r), ==, 0);
	same_store(1, 3);
	same_store(2, 3);
	g_assert_cmpuint(store_state_count(replica_state(H.nodes[3].r), STORE_KIND_VM), ==, 8);
	/* and it goes on taking changes */
	create_vms(3, 8, 1);
	same_store(1, 3);

	/* Beyond the log: the whole store. */
	form(two);
	for (unsigned i = 1; i <= 2; i++)
		replica_set_log_max(H.nodes[i].r, 2);
	create_vms(1, 9, 3);
	replaced = H.nodes[3].replaced;
	form(all);
	g_assert_cmpuint(H.nodes[3].replaced, ==, replaced + 1);
	g_assert_cmpuint(replica_caught_up(H.nodes[3].r), ==, 5);
	same_store(1, 3);
	g_assert_cmpuint(store_state_count(replica_state(H.nodes[3].r), STORE_KIND_VM), ==, 12);
	g_assert_cmpuint(replica_rejected_messages(H.nodes[3].r), ==, 0);
	h_teardown();
}

/* The sender answers once every member has made the change durable. */
static void test_ack_after_all_persisted(void)
{
	h_setup(3);
	bootstrap(1, 3);
	const uint32_t all[] = { 1, 2, 3, 0 };
	form(all);
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "web1");
	uint64_t id = submit(1, cmd, NULL);
	g_assert_true(deliver_one()); /* the COMMAND, applied by all three */
	for (unsigned i = 1; i <= 3; i++)
		g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[i].r), STORE_KIND_VM, "web1"));
	/* n1 and n2 make it durable and say so; n3's disk is slow */
	flush(1);
	flush(2);
	while (deliver_one())
		;
	g_assert_false(answered(1, id));
	flush(1);
	flush(2);
	while (deliver_one())
		;
	g_assert_false(answered(1, id));
	/* n3 catches up */
	flush(3);
	g_assert_false(answered(1, id));  /* its PERSISTED is still on the bus */
	g_assert_true(deliver_one());
	g_assert_true(answered(1, id));
	g_assert_no_error(answer_of(1, id)->error);
	/* only the sender answers */
	g_assert_cmpuint(H.nodes[2].answers->len, ==, 0);
	g_assert_cmpuint(H.nodes[3].answers->len, ==, 0);
	settle();
	same_store(1, 2);
	same_store(1, 3);
	h_teardown();
}

/*
 * Under load the changes of many clients share the cluster's work: those
 * submitted while a COMMAND is on its way go in the next one, each member
 * makes a burst of deliveries durable with one transaction and says so
 * with one PERSISTED, and none is confirmed before every member's
 * PERSISTED covering it was delivered (the counters bench/scale reads).
 */
static void test_group_commit(void)
{
	h_setup(3);
	bootstrap(1, 3);
	const uint32_t all[] = { 1, 2, 3, 0 };
	form(all);
	replica_counters before[4];
	for (unsigned i = 1; i <= 3; i++)
		replica_get_counters(H.nodes[i].r, &before[i]);
	uint64_t ids[10];
	for (unsigned k = 0; k < 10; k++) {
		char uuid[37], name[16];
		g_snprintf(uuid, sizeof(uuid), "11111111-1111-4111-8111-1111111111%02u", k);
		g_snprintf(name, sizeof(name), "web%u", k);
		g_autoptr(json_t) cmd = create_vm(uuid, name);
		g_autoptr(GError) error = NULL;
		ids[k] = submit(1, cmd, &error);
		g_assert_no_error(error);
	}
	/* The first went alone; the other nine wait for it to come back. */
	g_assert_cmpuint(g_queue_get_length(H.bus), ==, 1);
	g_assert_true(deliver_one());
	g_assert_cmpuint(g_queue_get_length(H.bus), ==, 1);
	g_assert_true(deliver_one());
	/* Every member has all ten, in one transaction not yet durable. */
	for (unsigned i = 1; i <= 3; i++) {
		g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[i].r), STORE_KIND_VM, "web9"));
		g_assert_true(store_db_in_transaction(H.nodes[i].db));
	}
	for (unsigned i = 1; i <= 3; i++)
		flush(i);
	g_assert_cmpuint(g_queue_get_length(H.bus), ==, 3); /* one PERSISTED each */
	g_assert_true(deliver_one());
	g_assert_true(deliver_one());
	for (unsigned k = 0; k < 10; k++)
		g_assert_false(answered(1, ids[k])); /* n3's PERSISTED is still on the bus */
	g_assert_true(deliver_one());
	for (unsigned k = 0; k < 10; k++)
		g_assert_no_error(answer_of(1, ids[k])->error);
	for (unsigned i = 1; i <= 3; i++) {
		replica_counters c;
		replica_get_counters(H.nodes[i].r, &c);
		g_assert_cmpuint(c.applied - before[i].applied, ==, 10);
		g_assert_cmpuint(c.commits - before[i].commits, ==, 1);
		g_assert_cmpuint(c.persisted_sent - before[i].persisted_sent, ==, 1);
		g_assert_cmpuint(c.commands_sent - before[i].commands_sent, ==, i == 1 ? 2 : 0);
	}
	settle();
	same_store(1, 2);
	same_store(1, 3);
	h_teardown();
}

/* What was applied is made durable before a new configuration's sync
 * reports the position: a STATE never announces what a crash could lose. */
static void test_confchg_commits(void)
{
	h_setup(2);
	bootstrap(1, 2);
	const uint32_t both[] = { 1, 2, 0 };
	form(both);
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "web1");
	submit(1, cmd, NULL);
	g_assert_true(deliver_one());
	g_assert_true(store_db_in_transaction(H.nodes[2].db));
	const uint32_t again[] = { 1, 2, 0 };
	confchg(again);
	for (unsigned i = 1; i <= 2; i++) {
		g_assert_false(store_db_in_transaction(H.nodes[i].db));
		g_autoptr(store_state) fresh = store_state_new(H.nodes[i].db);
		g_assert_true(store_state_load(fresh, NULL));
		g_assert_nonnull(store_state_get_by_name(fresh, STORE_KIND_VM, "web1"));
		g_assert_cmpuint(fresh->pos.index, ==, replica_state(H.nodes[i].r)->pos.index);
	}
	settle();
	same_store(1, 2);
	h_teardown();
}

/* Adding the second node of a two-node cluster ends the majority of the
 * one-node configuration that made the change; the change is durable all
 * the same and must be acknowledged. */
static void test_add_second_node_acked(void)
{
	h_setup(2);
	bootstrap(1, 1);
	const uint32_t one[] = { 1, 0 };
	form(one);
	g_assert_true(replica_is_primary(H.nodes[1].r));
	g_autoptr(json_t) add = json_pack("{s:s,s:s,s:s,s:s,s:{s:i}}", "op", "create", "kind", "node",
					  "uuid", "aaaaaaaa-aaaa-4aaa-8aaa-000000000002", "name", "n2",
					  "data", "nodeid", 2);
	uint64_t id = submit(1, add, NULL);
	g_assert_cmpuint(id, >, 0);
	settle();
	g_assert_false(replica_is_primary(H.nodes[1].r)); /* 1 of 2 now */
	answer *a = answer_of(1, id);
	g_assert_no_error(a->error);
	g_assert_cmpstr(json_string_value(json_object_get(a->result, "name")), ==, "n2");
	expect_refused(1, HERD_ERR_NO_QUORUM, "no quorum");
	/* n2 joins: the two form a primary configuration */
	const uint32_t both[] = { 1, 2, 0 };
	form(both);
	g_assert_true(replica_is_primary(H.nodes[2].r));
	same_store(1, 2);
	h_teardown();
}

static json_t *create_node(uint32_t nodeid)
{
	g_autofree char *uuid = g_strdup_printf("aaaaaaaa-aaaa-4aaa-8aaa-%012u", nodeid);
	g_autofree char *name = g_strdup_printf("n%u", nodeid);
	return json_pack("{s:s,s:s,s:s,s:s,s:{s:i}}", "op", "create", "kind", "node", "uuid", uuid,
			 "name", name, "data", "nodeid", (int)nodeid);
}

/*
 * The node list changes one step at a time: a second change is refused
 * (alike on every member) while the first is not durable on every member;
 * other changes of nodes (a mode, a fence record) are not held up.
 */
static void test_node_list_one_change_at_a_time(void)
{
	h_setup(3);
	bootstrap(1, 3);
	const uint32_t all[] = { 1, 2, 3, 0 };
	form(all);
	g_autoptr(json_t) add4 = create_node(4);
	uint64_t id = submit(1, add4, NULL);
	g_assert_true(deliver_one());
	flush(1);
	flush(2); /* n3 has not made it durable yet */
	g_autoptr(json_t) add5 = create_node(5);
	uint64_t id2 = submit(1, add5, NULL);
	g_autoptr(json_t) mode = json_pack("{s:s,s:s,s:s,s:{s:s}}", "op", "patch", "kind", "node", "uuid",
					   "aaaaaaaa-aaaa-4aaa-8aaa-000000000002", "data", "mode", "standby");
	uint64_t id3 = submit(2, mode, NULL);
	while (deliver_one())
		; /* PERSISTED of n1 and n2, then both commands */
	g_assert_true(answered(1, id2));
	g_assert_error(answer_of(1, id2)->error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_nonnull(strstr(answer_of(1, id2)->error->message,
				"previous change of the cluster's nodes is not on every node's disk yet"));
	for (uint32_t i = 1; i <= 3; i++) {
		g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[i].r), STORE_KIND_NODE, "n4"));
		g_assert_null(store_state_get_by_name(replica_state(H.nodes[i].r), STORE_KIND_NODE, "n5"));
	}
	settle();
	g_assert_no_error(answer_of(1, id)->error);
	g_assert_no_error(answer_of(2, id3)->error);
	same_store(1, 3);
	/* once it is durable everywhere, the next one goes through */
	uint64_t id4 = submit(1, add5, NULL);
	settle();
	g_assert_no_error(answer_of(1, id4)->error);
	g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[3].r), STORE_KIND_NODE, "n5"));
	same_store(1, 3);
	h_teardown();
}

/* In a two-node cluster one node may go on alone only when the callback
 * says the other was fenced. */
static void test_two_node_survivor(void)
{
	h_setup(2);
	bootstrap(1, 2);
	const uint32_t both[] = { 1, 2, 0 };
	form(both);
	const uint32_t one[] = { 1, 0 };
	form(one);
	g_assert_false(replica_is_primary(H.nodes[1].r));
	H.nodes[1].survivor_ok = true;
	form(one);
	g_assert_true(replica_is_primary(H.nodes[1].r));
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "alone");
	uint64_t id = submit(1, cmd, NULL);
	settle();
	g_assert_no_error(answer_of(1, id)->error);
	h_teardown();
}

/* An answer that says the change may have been applied, and why. */
static void expect_maybe_applied(uint32_t id, uint64_t req_id)
{
	answer *a = answer_of(id, req_id);
	g_assert_error(a->error, HERD_ERROR, HERD_ERR_IO);
	if (!strstr(a->error->message, "may have been applied") ||
	    !strstr(a->error->message, "injected I/O error"))
		g_error("n%u: request %" G_GUINT64_FORMAT ": '%s' does not say that it may have been applied, and why",
			id, req_id, a->error->message);
}

/* The disk fails when a burst is made durable: the replica stops, answers
 * what waits (what went to the group may have been applied by the others;
 * what did not was not), tells the daemon, and takes part in nothing more. */
static void test_disk_failure_on_flush(void)
{
	h_setup(2);
	bootstrap(1, 2);
	const uint32_t both[] = { 1, 2, 0 };
	form(both);
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "web1");
	uint64_t id = submit(1, cmd, NULL);
	g_assert_true(deliver_one());
	/* a second request, sent but not yet delivered */
	g_autoptr(json_t) cmd2 = create_vm("22222222-2222-4222-8222-222222222222", "web2");
	uint64_t id2 = submit(1, cmd2, NULL);
	g_assert_cmpuint(id2, >, 0);
	/* a third, waiting behind it (not sent) */
	g_autoptr(json_t) cmd3 = create_vm("33333333-3333-4333-8333-333333333333", "web3");
	guint on_bus_before = g_queue_get_length(H.bus);
	uint64_t id3 = submit(1, cmd3, NULL);
	g_assert_cmpuint(id3, >, 0);
	g_assert_cmpuint(g_queue_get_length(H.bus), ==, on_bus_before);
	store_db_fail_after(H.nodes[1].db, 1);
	flush(1);
	g_assert_nonnull(H.nodes[1].failed);
	g_assert_error(H.nodes[1].failed, HERD_ERROR, HERD_ERR_IO);
	g_assert_cmpint(phase(1), ==, REPLICA_FAILED);
	g_assert_false(replica_is_primary(H.nodes[1].r));
	g_assert_cmpuint(replica_members(H.nodes[1].r, NULL, 0), ==, 0);
	expect_maybe_applied(1, id);
	expect_maybe_applied(1, id2);
	answer *a3 = answer_of(1, id3);
	g_assert_error(a3->error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_nonnull(strstr(a3->error->message, "it was not applied"));
	expect_refused(1, HERD_ERR_UNAVAILABLE, "configuration store failed");
	/* nothing of the failed burst is on its disk */
	g_assert_false(store_db_in_transaction(H.nodes[1].db));
	g_autoptr(store_state) fresh = store_state_new(H.nodes[1].db);
	g_assert_true(store_state_load(fresh, NULL));
	g_assert_null(store_state_get_by_name(fresh, STORE_KIND_VM, "web1"));
	/* it ignores the bus from now on, and says nothing */
	guint on_bus = g_queue_get_length(H.bus);
	flush(2);
	g_assert_cmpuint(g_queue_get_length(H.bus), ==, on_bus + 1);
	replica_flush(H.nodes[1].r);
	const uint32_t again[] = { 1, 2, 0 };
	replica_confchg(H.nodes[1].r, again, 2);
	g_assert_cmpint(phase(1), ==, REPLICA_FAILED);
	g_assert_cmpuint(g_queue_get_length(H.bus), ==, on_bus + 1);
	settle();
	g_assert_cmpint(phase(1), ==, REPLICA_FAILED);
	/* the daemon leaves: the other goes on in its own configuration (with
	 * one of two nodes it has no majority, which is right) */
	const uint32_t two[] = { 2, 0 };
	form(two);
	g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[2].r), STORE_KIND_VM, "web1"));
	h_teardown();
}

/* The disk fails at the first write of a delivered command, in the middle
 * of a batch: every request of the batch is answered once, as one that may
 * have been applied (the other members apply the batch). */
static void test_disk_failure_on_apply(void)
{
	h_setup(1);
	bootstrap(1, 1);
	const uint32_t one[] = { 1, 0 };
	form(one);
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "web1");
	g_autoptr(json_t) cmd2 = create_vm("22222222-2222-4222-8222-222222222222", "web2");
	g_autoptr(json_t) cmd3 = create_vm("33333333-3333-4333-8333-333333333333", "web3");
	uint64_t id = submit(1, cmd, NULL);
	uint64_t id2 = submit(1, cmd2, NULL); /* these two go as one batch */
	uint64_t id3 = submit(1, cmd3, NULL);
	g_assert_true(deliver_one());
	flush(1); /* durable here, not confirmed yet: its PERSISTED is behind the batch */
	unsigned changed = H.nodes[1].changed;
	store_db_fail_after(H.nodes[1].db, 1);
	g_assert_true(deliver_one());
	g_assert_nonnull(H.nodes[1].failed);
	g_assert_cmpint(phase(1), ==, REPLICA_FAILED);
	expect_maybe_applied(1, id);
	expect_maybe_applied(1, id2);
	expect_maybe_applied(1, id3);
	g_assert_null(store_state_get_by_name(replica_state(H.nodes[1].r), STORE_KIND_VM, "web2"));
	g_assert_null(store_state_get_by_name(replica_state(H.nodes[1].r), STORE_KIND_VM, "web3"));
	g_assert_cmpuint(H.nodes[1].changed, ==, changed);
	h_teardown();
}

/*
 * A node whose disk failed comes back without a restart: once the disk can
 * be written again it reloads what is durable (not what was applied only in
 * memory), joins as after a restart, and the sync brings it up to date.
 */

/* The next message on the bus goes to all; n1 and n3 make it durable, n2's
 * disk fails doing so: n2's replica stops. */
static void deliver_n2_disk_fails(void)
{
	g_assert_true(deliver_one());
	flush(1);
	flush(3);
	store_db_fail_after(H.nodes[2].db, 1);
	flush(2);
	g_assert_cmpint(phase(2), ==, REPLICA_FAILED);
}
static void test_disk_failure_recover(void)
{
	h_setup(3);
	bootstrap(1, 3);
	const uint32_t all[] = { 1, 2, 3, 0 };
	form(all);
	/* n2's change goes to everyone; n2's disk fails making it durable */
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "web1");
	uint64_t id = submit(2, cmd, NULL);
	deliver_n2_disk_fails();
	expect_maybe_applied(2, id);
	/* in its memory, not on its disk */
	g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[2].r), STORE_KIND_VM, "web1"));
	/* the others go on without it */
	const uint32_t rest[] = { 1, 3, 0 };
	form(rest);
	g_autoptr(json_t) cmd2 = create_vm("22222222-2222-4222-8222-222222222222", "web2");
	uint64_t id2 = submit(1, cmd2, NULL);
	settle();
	g_assert_no_error(answer_of(1, id2)->error);
	/* not a failed replica: nothing to recover */
	g_autoptr(GError) error = NULL;
	g_assert_false(replica_recover(H.nodes[1].r, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_CONFLICT);
	g_clear_error(&error);
	/* the disk is still full: the check fails, the replica stays failed */
	store_db_fail_after(H.nodes[2].db, 1);
	g_assert_false(store_db_check_writable(H.nodes[2].db, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_clear_error(&error);
	g_assert_cmpint(phase(2), ==, REPLICA_FAILED);
	/* space again */
	g_assert_true(store_db_reopen(H.nodes[2].db, &error));
	g_assert_true(store_db_check_writable(H.nodes[2].db, &error));
	unsigned replaced = H.nodes[2].replaced;
	g_assert_true(replica_recover(H.nodes[2].r, &error));
	g_assert_no_error(error);
	g_assert_cmpint(phase(2), ==, REPLICA_DETACHED);
	g_assert_cmpuint(H.nodes[2].replaced, ==, replaced + 1);
	/* what was durable only: web1 never made it to its disk */
	g_assert_null(store_state_get_by_name(replica_state(H.nodes[2].r), STORE_KIND_VM, "web1"));
	expect_refused(2, HERD_ERR_UNAVAILABLE, "not connected to the cluster");
	/* it joins and catches up */
	form(all);
	same_store(1, 2);
	same_store(2, 3);
	g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[2].r), STORE_KIND_VM, "web1"));
	g_assert_nonnull(store_state_get_by_name(replica_state(H.nodes[2].r), STORE_KIND_VM, "web2"));
	g_autoptr(json_t) cmd3 = create_vm("33333333-3333-4333-8333-333333333333", "web3");
	uint64_t id3 = submit(2, cmd3, NULL);
	settle();
	g_assert_no_error(answer_of(2, id3)->error);
	same_store(1, 2);
	/* and fails (and recovers) again as the first time */
	g_clear_error(&H.nodes[2].failed);
	store_db_fail_after(H.nodes[2].db, 1);
	g_autoptr(json_t) cmd4 = create_vm("44444444-4444-4444-8444-444444444444", "web4");
	submit(1, cmd4, NULL);
	g_assert_true(deliver_one());
	flush(2);
	g_assert_cmpint(phase(2), ==, REPLICA_FAILED);
	form(rest);
	g_assert_true(replica_recover(H.nodes[2].r, &error));
	form(all);
	same_store(1, 2);
	h_teardown();
}

static void test_refusals(void)
{
	h_setup(3);
	bootstrap(1, 3);
	/* a minority after sync */
	const uint32_t one[] = { 1, 0 };
	form(one);
	expect_refused(1, HERD_ERR_NO_QUORUM,
		       "This node's partition of the cluster has no quorum; configuration changes are refused until it has.");
	/* a majority */
	const uint32_t two[] = { 1, 2, 0 };
	form(two);
	herd_error_code code;
	g_assert_null(replica_refusal(H.nodes[1].r, &code));
	/* too large */
	GString *big = g_string_new(NULL);
	while (big->len <= HERD_WIRE_MAX_PAYLOAD)
		g_string_append(big, "0123456789abcdef");
	g_autoptr(json_t) huge = json_pack("{s:s,s:s,s:s,s:s,s:{s:s}}", "op", "create", "kind", "vm",
					   "uuid", "11111111-1111-4111-8111-111111111111", "name", "big",
					   "data", "xml", big->str);
	g_string_free(big, TRUE);
	g_autoptr(GError) error = NULL;
	guint on_bus = g_queue_get_length(H.bus);
	g_assert_cmpuint(submit(1, huge, &error), ==, 0);
	g_assert_error(error, HERD_ERROR, HERD_ERR_TOO_LARGE);
	g_assert_nonnull(strstr(error->message, "the limit is"));
	g_assert_cmpuint(g_queue_get_length(H.bus), ==, on_bus);
	g_clear_error(&error);
	/* corosync refuses to send */
	H.refuse_sends = true;
	g_autoptr(json_t) cmd = create_vm("22222222-2222-4222-8222-222222222222", "x");
	g_assert_cmpuint(submit(1, cmd, &error), ==, 0);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_nonnull(strstr(error->message, "could not be sent"));
	H.refuse_sends = false;
	g_clear_error(&error);
	/* detached: lost the bus */
	replica_detach(H.nodes[1].r);
	expect_refused(1, HERD_ERR_UNAVAILABLE, "not connected to the cluster");
	h_teardown();
}

/* Requests waiting when the bus is lost or the daemon stops are answered. */
static void test_pending_answered(void)
{
	h_setup(2);
	bootstrap(1, 2);
	const uint32_t both[] = { 1, 2, 0 };
	form(both);
	/* one applied and waiting for PERSISTED, one not yet delivered */
	g_autoptr(json_t) c1 = create_vm("11111111-1111-4111-8111-111111111111", "a");
	uint64_t applied = submit(1, c1, NULL);
	g_assert_true(deliver_one());
	g_autoptr(json_t) c2 = create_vm("22222222-2222-4222-8222-222222222222", "b");
	uint64_t sent = submit(1, c2, NULL);
	replica_detach(H.nodes[1].r);
	g_assert_cmpint(phase(1), ==, REPLICA_DETACHED);
	g_assert_error(answer_of(1, applied)->error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_error(answer_of(1, sent)->error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_nonnull(strstr(answer_of(1, sent)->error->message, "connection to the cluster was lost"));

	/* and on free */
	g_queue_clear_full(H.bus, (GDestroyNotify)message_free);
	H.nodes[2].survivor_ok = true;
	const uint32_t two[] = { 2, 0 };
	form(two);
	g_autoptr(json_t) c3 = create_vm("33333333-3333-4333-8333-333333333333", "c");
	uint64_t last = submit(2, c3, NULL);
	g_assert_cmpuint(last, >, 0);
	replica_free(H.nodes[2].r);
	H.nodes[2].r = NULL;
	g_assert_error(answer_of(2, last)->error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_nonnull(strstr(answer_of(2, last)->error->message, "daemon stopped"));
	h_teardown();
}

/* A membership change before a sent command is delivered: it is answered,
 * never silently dropped. */
static void test_command_lost_in_membership_change(void)
{
	h_setup(3);
	bootstrap(1, 3);
	const uint32_t all[] = { 1, 2, 3, 0 };
	form(all);
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "lost");
	uint64_t id = submit(1, cmd, NULL);
	/* the message is lost with the old configuration */
	g_queue_clear_full(H.bus, (GDestroyNotify)message_free);
	const uint32_t two[] = { 1, 2, 0 };
	form(two);
	settle();
	answer *a = answer_of(1, id);
	g_assert_error(a->error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_null(store_state_get_by_name(replica_state(H.nodes[1].r), STORE_KIND_VM, "lost"));
	/* and the node goes on */
	g_autoptr(json_t) next = create_vm("22222222-2222-4222-8222-222222222222", "next");
	uint64_t id2 = submit(1, next, NULL);
	settle();
	g_assert_no_error(answer_of(1, id2)->error);
	same_store(1, 2);
	h_teardown();
}

/* Garbage on the bus is dropped alike by every member and counted. */
static void test_garbage(void)
{
	h_setup(2);
	bootstrap(1, 2);
	const uint32_t both[] = { 1, 2, 0 };
	form(both);
	uint8_t junk[64];
	memset(junk, 0xab, sizeof(junk));
	cb_send(&H.nodes[2], junk, sizeof(junk));
	/* a well-formed header around a COMMAND whose batch framing lies */
	uint8_t frame[12 + 4];
	herd_put_le64(frame, 1);
	herd_put_le32(frame + 8, 1000);
	memcpy(frame + 12, "{}{}", 4);
	size_t n;
	g_autofree void *m = herd_wire_encode(HERD_MSG_COMMAND, 2, 0, 99, frame, sizeof(frame), &n);
	cb_send(&H.nodes[2], m, n);
	/* a PERSISTED of the wrong size */
	g_autofree void *p = herd_wire_encode(HERD_MSG_PERSISTED, 2, 0, 100, "xyz", 3, &n);
	cb_send(&H.nodes[2], p, n);
	settle();
	for (unsigned i = 1; i <= 2; i++) {
		g_assert_cmpuint(replica_rejected_messages(H.nodes[i].r), ==, 3);
		g_assert_cmpint(phase(i), ==, REPLICA_SYNCED);
	}
	same_store(1, 2);
	g_autoptr(json_t) cmd = create_vm("11111111-1111-4111-8111-111111111111", "after");
	uint64_t id = submit(2, cmd, NULL);
	settle();
	g_assert_no_error(answer_of(2, id)->error);
	h_teardown();
}

static void quiet_log(const char *domain, GLogLevelFlags level, const char *text, gpointer data)
{
	if (g_test_verbose())
		g_test_message("%s: %s", domain, text);
}

/* A VM's text out of memory once durable on each node (store/state.h,
 * "Cold texts"): read back alike everywhere; an object held across a disk
 * failure, its rollback, the recovery and the catch-up keeps its text. */
static void test_cold_texts(void)
{
	h_setup(3);
	bootstrap(1, 3);
	const uint32_t all[] = { 1, 2, 3, 0 };
	form(all);
	const char *uuid = "11111111-1111-4111-8111-111111111111";
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:s,s:{s:s}}", "op", "create", "kind", "vm",
					  "uuid", uuid, "name", "web1", "data", "xml", "<domain><name>web1</name></domain>");
	uint64_t id = submit(1, cmd, NULL);
	settle();
	g_assert_no_error(answer_of(1, id)->error);
	for (uint32_t n = 1; n <= 3; n++) {
		store_state *st = replica_state(H.nodes[n].r);
		store_object *o = store_state_get(st, STORE_KIND_VM, uuid);
		g_assert_true(o->cold == st);
		g_autofree char *xml = store_vm_xml(store_vm_of(o), NULL);
		g_assert_cmpstr(xml, ==, "<domain><name>web1</name></domain>");
	}
	/* n2 holds it; a patch is applied there but its disk fails making it
	 * durable: the state keeps the applied version (warm), the held one
	 * its text; nothing stays cold while it is failed. */
	store_state *st2 = replica_state(H.nodes[2].r);
	g_autoptr(store_object) held = store_object_ref(store_state_get(st2, STORE_KIND_VM, uuid));
	g_autofree char *held_text = store_object_encode(held, NULL);
	g_autoptr(json_t) patch = json_pack("{s:s,s:s,s:s,s:{s:b}}", "op", "patch", "kind", "vm", "uuid",
					    uuid, "data", "ha", 1);
	submit(1, patch, NULL);
	deliver_n2_disk_fails();
	g_assert_cmpuint(store_state_cold_count(st2), ==, 0);
	store_object *applied = store_state_get(st2, STORE_KIND_VM, uuid);
	g_assert_true(store_vm_of(applied)->ha);
	g_assert_null(held->cold);
	g_autofree char *held_again = store_object_encode(held, NULL);
	g_assert_cmpstr(held_again, ==, held_text);
	/* Recovered: what was durable, cold again; then it catches up. */
	g_autoptr(GError) error = NULL;
	g_assert_true(store_db_reopen(H.nodes[2].db, &error));
	g_assert_true(replica_recover(H.nodes[2].r, &error));
	g_assert_no_error(error);
	store_object *durable = store_state_get(st2, STORE_KIND_VM, uuid);
	g_assert_false(store_vm_of(durable)->ha);
	g_assert_true(durable->cold == st2);
	form(all);
	same_store(1, 2);
	store_object *now = store_state_get(st2, STORE_KIND_VM, uuid);
	g_assert_true(store_vm_of(now)->ha);
	g_autofree char *t1 = store_object_encode(store_state_get(replica_state(H.nodes[1].r), STORE_KIND_VM, uuid), NULL);
	g_autofree char *t2 = store_object_encode(now, NULL);
	g_assert_cmpstr(t1, ==, t2);
	g_autofree char *held_last = store_object_encode(held, NULL);
	g_assert_cmpstr(held_last, ==, held_text);
	h_teardown();
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* The replica logs what it drops and why it stops; here that is
	 * expected: not fatal, and shown only with --verbose. */
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	g_log_set_handler("store", G_LOG_LEVEL_MASK, quiet_log, NULL);
	g_test_add_func("/replica/bootstrap", test_bootstrap);
	g_test_add_func("/replica/single-node", test_single_node);
	g_test_add_func("/replica/join-empty", test_join_empty);
	g_test_add_func("/replica/join-big-state", test_join_big_state);
	g_test_add_func("/replica/catchup", test_catchup);
	g_test_add_func("/replica/ack-after-all-persisted", test_ack_after_all_persisted);
	g_test_add_func("/replica/group-commit", test_group_commit);
	g_test_add_func("/replica/confchg-commits", test_confchg_commits);
	g_test_add_func("/replica/add-second-node-acked", test_add_second_node_acked);
	g_test_add_func("/replica/two-node-survivor", test_two_node_survivor);
	g_test_add_func("/replica/node-list-one-change-at-a-time", test_node_list_one_change_at_a_time);
	g_test_add_func("/replica/disk-failure-on-flush", test_disk_failure_on_flush);
	g_test_add_func("/replica/disk-failure-on-apply", test_disk_failure_on_apply);
	g_test_add_func("/replica/disk-failure-recover", test_disk_failure_recover);
	g_test_add_func("/replica/refusals", test_refusals);
	g_test_add_func("/replica/pending-answered", test_pending_answered);
	g_test_add_func("/replica/command-lost", test_command_lost_in_membership_change);
	g_test_add_func("/replica/garbage", test_garbage);
	g_test_add_func("/replica/cold-texts", test_cold_texts);
	return g_test_run();
}
