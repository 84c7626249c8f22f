/*
 * Deterministic simulation of the replicated store.
 *
 * N replicas (the real replica/state/db code, on in-memory SQLite) talk over
 * a simulated CPG with virtual synchrony: a configuration delivers its
 * messages in one total order to all its members; on a membership change the
 * members that move on together deliver the same prefix of what was in
 * flight, then the new configuration.  One seed drives everything: client
 * commands, delivery interleaving, lazy fsyncs, crashes, restarts,
 * partitions, merges, disk failures and garbage on the wire.  A node whose
 * disk fails either crashes (and restarts later) or, as herdd does, leaves
 * the group and later recovers in place (replica_recover()) and rejoins.
 *
 * After every step it checks:
 *   - members of a configuration that are in sync hold the same position;
 *   - a replica applies commands only in a configuration with a majority;
 *   - every acknowledged change is in every in-sync primary replica;
 * and at the end, with the faults stopped, that everyone converges and
 * accepts changes again.
 *
 * A failure prints its seed; `sim-store --seed S` replays it exactly.
 */
#include "common/json.h"
#include "common/log.h"
#include "store/replica.h"
#include "store/wire.h"
#include "simbus.h"

#include <stddef.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 7

typedef struct simnode {
	unsigned id;
	store_db *db;       /* survives crashes, as a disk does */
	replica *r;         /* NULL while down */
	simbus_member bus;  /* its partition and configuration */
	bool failed;        /* the replica reported a disk failure: crash it or leave */
	bool away;          /* failed and out of the group, to recover in place */
	bool applied_cmd;   /* a command was applied in this step */
	char seen[96];      /* last traced phase/position, for --verbose */
	unsigned cfg_id;    /* the configuration change it processed last */
} simnode;

typedef struct {
	char uuid[STORE_UUID_LEN + 1];
	uint64_t version;
	int64_t time_ms;
} acked_change;

typedef struct sim {
	guint64 seed;
	GRand *rng;
	unsigned n;
	simnode nodes[MAX_NODES + 1];
	simbus bus;
	GArray *acked;      /* acked_change */
	GHashTable *not_applied; /* UUIDs of VMs whose create was answered "not applied" */
	int64_t clock_ms;
	unsigned step;
	bool verbose;
	bool node_changes;  /* the run adds and removes cluster nodes */
	unsigned stats_submitted, stats_acked, stats_refused, stats_failed_req, stats_crashes,
		stats_partitions, stats_syncs, stats_recoveries;
} sim;

static sim *S; /* for callbacks' context checks */

static void fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "\nINVARIANT VIOLATED at step %u: ", S->step);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nreplay: sim-store --seed %" G_GUINT64_FORMAT " --steps %u --verbose\n",
		S->seed, S->step);
	exit(1);
}

#define TRACE(...)                                                 \
	do {                                                       \
		if (S->verbose) {                                  \
			printf("[%5u] ", S->step);                 \
			printf(__VA_ARGS__);                       \
			printf("\n");                              \
		}                                                  \
	} while (0)

static unsigned rnd(unsigned n)
{
	return n ? (unsigned)g_rand_int_range(S->rng, 0, (gint32)n) : 0;
}

static bool chance(double p)
{
	return g_rand_double(S->rng) < p;
}

static void fake_uuid(char out[STORE_UUID_LEN + 1])
{
	guint32 w[4];
	for (int i = 0; i < 4; i++)
		w[i] = g_rand_int(S->rng);
	g_snprintf(out, STORE_UUID_LEN + 1, "%08x-%04x-4%03x-8%03x-%04x%08x", w[0], w[1] >> 16,
		   w[1] & 0xfff, w[2] >> 20, w[2] & 0xffff, w[3]);
}

/* ------------------------------------------------------------------ */
/* Replica callbacks                                                   */

static bool cb_send(gpointer user, const void *msg, size_t len)
{
	simnode *node = user;
	return simbus_send(&node->bus, msg, len);
}

static void record_ack(json_t *r, int64_t time_ms)
{
	json_t *results = json_object_get(r, "results");
	if (results) {
		size_t i;
		json_t *v;
		json_array_foreach(results, i, v) record_ack(v, time_ms);
		return;
	}
	if (g_strcmp0(json_string_value(json_object_get(r, "kind")), "vm") != 0)
		return; /* only VM changes leave history to check against */
	acked_change a = { .version = (uint64_t)json_integer_value(json_object_get(r, "version")),
			   .time_ms = time_ms };
	g_strlcpy(a.uuid, json_string_value(json_object_get(r, "uuid")), sizeof(a.uuid));
	g_array_append_val(S->acked, a);
}

/* req ids are per node; keep the command's time with it to check acks. */
static GHashTable *req_time[MAX_NODES + 1];
/* ...and for a VM create, the VM's UUID (to check "not applied" answers). */
static GHashTable *req_create[MAX_NODES + 1];

static void cb_done(gpointer user, uint64_t req_id, json_t *result, const GError *error)
{
	simnode *node = user;
	int64_t *t = g_hash_table_lookup(req_time[node->id], &req_id);
	if (!t)
		fail("node %u: done() for unknown request %" G_GUINT64_FORMAT, node->id, req_id);
	if (result) {
		S->stats_acked++;
		TRACE("n%u: request %" G_GUINT64_FORMAT " acknowledged", node->id, req_id);
		record_ack(result, *t);
	} else {
		S->stats_failed_req++;
		TRACE("n%u: request %" G_GUINT64_FORMAT " failed: %s", node->id, req_id, error->message);
		/* An answer that says so must be true: the change never applies. */
		const char *uuid = g_hash_table_lookup(req_create[node->id], &req_id);
		if (uuid && strstr(error->message, "not applied") && !strstr(error->message, "may not"))
			g_hash_table_insert(S->not_applied, g_strdup(uuid),
					    g_strdup_printf("n%u request %" G_GUINT64_FORMAT ": %s", node->id,
							    req_id, error->message));
	}
	g_hash_table_remove(req_create[node->id], &req_id);
	g_hash_table_remove(req_time[node->id], &req_id);
}

/* Is @nodeid a node of the cluster by @st, as it was before @changes? */
static bool was_cluster_node(store_state *st, GPtrArray *changes, uint32_t nodeid)
{
	for (guint i = 0; i < changes->len; i++) {
		store_change *c = changes->pdata[i];
		store_object *o = c->before ? c->before : c->after;
		if (c->kind == STORE_KIND_NODE &&
		    json_integer_value(json_object_get(o->data, "nodeid")) == nodeid)
			return c->before != NULL;
	}
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_NODE]);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (json_integer_value(json_object_get(((store_object *)v)->data, "nodeid")) == nodeid)
			return true;
	return false;
}

static void cb_changed(gpointer user, GPtrArray *changes)
{
	simnode *node = user;
	/* Changes applied during a sync are a catch-up: changes the leader
	 * applied earlier, in a configuration it checked, replayed here to its
	 * position (which the hash invariants check). */
	if (changes && replica_get_phase(node->r) != REPLICA_SYNCING) {
		/* Recount, independently of the replica, whether the configuration
		 * held a majority of the node list as it was before this change. */
		store_state *st = replica_state(node->r);
		uint32_t ids[MAX_NODES];
		size_t n = replica_members(node->r, ids, MAX_NODES);
		unsigned total = 0, present = 0;
		for (unsigned id = 1; id <= S->n; id++) {
			if (!was_cluster_node(st, changes, id))
				continue;
			total++;
			for (size_t k = 0; k < n; k++)
				present += ids[k] == id;
		}
		if (2 * present <= total)
			fail("node %u applied a command in a configuration holding %u of the %u cluster nodes",
			     node->id, present, total);
	}
	if (changes)
		node->applied_cmd = true;
}

static void cb_failed(gpointer user, const GError *error)
{
	simnode *node = user;
	TRACE("n%u: replica failed: %s", node->id, error->message);
	node->failed = true;
}

static const replica_callbacks callbacks = {
	.send = cb_send,
	.done = cb_done,
	.changed = cb_changed,
	.failed = cb_failed,
};

/* ------------------------------------------------------------------ */
/* Membership                                                          */

static const char *const phase_names[] = { "detached", "syncing", "synced", "FAILED" };

/* --verbose: print a node's phase and position whenever they change. */
static void observe(simnode *node)
{
	if (!S->verbose || !node->r)
		return;
	store_position *p = &replica_state(node->r)->pos;
	char now[96];
	g_snprintf(now, sizeof(now), "%s%s gen %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " index %" G_GUINT64_FORMAT " %02x%02x",
		   phase_names[replica_get_phase(node->r)],
		   replica_is_primary(node->r) ? " primary" : "", p->gen, p->current_gen, p->index, p->hash[0],
		   p->hash[1]);
	if (strcmp(now, node->seen) != 0) {
		TRACE("n%u: %s", node->id, now);
		g_strlcpy(node->seen, now, sizeof(node->seen));
	}
}

static void deliver_to(simnode *node, const simbus_msg *m)
{
	if (!node->r)
		return;
	if (!m->bytes) {
		node->cfg_id = m->cfg_id;
		TRACE("n%u: configuration change (%u members)", node->id, m->n_members);
		replica_confchg(node->r, m->members, m->n_members);
		observe(node);
		return;
	}
	gsize len;
	const void *p = g_bytes_get_data(m->bytes, &len);
	herd_wire_header h;
	const void *pl;
	if (S->verbose && herd_wire_decode(p, len, m->sender, &h, &pl, NULL))
		TRACE("n%u: deliver type %u from n%u (msg %" G_GUINT64_FORMAT ")", node->id, h.type,
		      m->sender, h.msg_id);
	replica_deliver(node->r, m->sender, p, len);
	observe(node);
}

#define NODE_OF(m) ((simnode *)((char *)(m) - offsetof(simnode, bus)))

static void bus_deliver(simbus_member *m, const simbus_msg *msg, gpointer user)
{
	deliver_to(NODE_OF(m), msg);
}

static void bus_formed(simbus_group *g, gpointer user)
{
	GString *desc = g_string_new(NULL);
	for (guint i = 0; i < g->members->len; i++)
		g_string_append_printf(desc, " n%u", ((simbus_member *)g->members->pdata[i])->id);
	TRACE("configuration:%s", desc->str);
	g_string_free(desc, TRUE);
	S->stats_syncs++;
}

/* Recompute configurations from who is up and which partition they are in. */
static void recompute_groups(void)
{
	simbus_member *up[MAX_NODES];
	unsigned n = 0;
	for (unsigned i = 1; i <= S->n; i++)
		if (S->nodes[i].r && !S->nodes[i].away)
			up[n++] = &S->nodes[i].bus;
	simbus_recompute(&S->bus, up, n);
}

/* ------------------------------------------------------------------ */
/* Node life                                                           */

static void node_start(simnode *node)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *name = g_strdup_printf("n%u", node->id);
	if (!req_time[node->id])
		req_time[node->id] = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	if (!req_create[node->id])
		req_create[node->id] = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	node->r = replica_new(node->id, name, node->db, &callbacks, node, &err);
	if (!node->r)
		fail("node %u cannot start: %s", node->id, err->message);
	node->failed = false;
	node->away = false;
	node->bus.grp = NULL;
}

static void node_crash(simnode *node)
{
	TRACE("n%u: crash", node->id);
	S->stats_crashes++;
	node->failed = false;
	node->away = false;
	/* The process dies: open transactions are lost, requests go unanswered
	 * (replica_free answers them with errors, as a dropped connection). */
	store_db_rollback(node->db);
	replica *r = node->r;
	node->r = NULL;
	node->bus.grp = NULL;
	replica_free(r);
	store_db_fail_after(node->db, 0);
	g_hash_table_remove_all(req_time[node->id]);
	g_hash_table_remove_all(req_create[node->id]);
}

/* Its disk failed: it crashes, or (as herdd) leaves the group to recover. */
static void node_failed(simnode *node)
{
	if (chance(0.5)) {
		node_crash(node);
	} else {
		TRACE("n%u: leaves the group, its store failed", node->id);
		node->failed = false;
		node->away = true;
	}
	recompute_groups();
}

/* herdd's retry: a fresh connection, a write that proves the disk, then
 * the replica reloads what is durable and joins again. */
static void node_recover(simnode *node)
{
	g_autoptr(GError) err = NULL;
	if (!store_db_reopen(node->db, &err) || !store_db_check_writable(node->db, &err) ||
	    !replica_recover(node->r, &err)) {
		TRACE("n%u: cannot recover yet: %s", node->id, err->message);
		return;
	}
	TRACE("n%u: recovered in place, rejoins", node->id);
	S->stats_recoveries++;
	node->away = false;
	recompute_groups();
}

/* ------------------------------------------------------------------ */
/* Clients                                                             */

static store_object *random_vm(simnode *node)
{
	store_state *st = replica_state(node->r);
	guint n = store_state_count(st, STORE_KIND_VM);
	if (n == 0)
		return NULL;
	guint pick = rnd(n);
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_VM]);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (pick-- == 0)
			return v;
	return NULL;
}

static json_t *random_create(void)
{
	char uuid[STORE_UUID_LEN + 1];
	fake_uuid(uuid);
	g_autofree char *name = g_strdup_printf("vm%u", rnd(12));
	return json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:I}}", "op", "create", "kind", "vm", "uuid",
			 uuid, "name", name, "data", "xml", "<domain/>", "nonce",
			 (json_int_t)S->clock_ms);
}

/* Add a node the cluster does not have, or remove one it has. */
static json_t *random_node_change(simnode *node)
{
	store_state *st = replica_state(node->r);
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	bool have[MAX_NODES + 1] = { false };
	for (guint i = 0; i < nodes->len; i++)
		have[json_integer_value(json_object_get(((store_object *)nodes->pdata[i])->data, "nodeid"))] = true;
	unsigned missing = 0;
	for (unsigned id = 1; id <= S->n; id++)
		if (!have[id])
			missing = id;
	if (missing && (chance(0.6) || nodes->len < 2)) {
		char uuid[STORE_UUID_LEN + 1];
		fake_uuid(uuid);
		g_autofree char *name = g_strdup_printf("n%u", missing);
		return json_pack("{s:s,s:s,s:s,s:s,s:{s:i}}", "op", "create", "kind", "node", "uuid",
				 uuid, "name", name, "data", "nodeid", missing);
	}
	store_object *victim = nodes->pdata[rnd(nodes->len)];
	return json_pack("{s:s,s:s,s:s}", "op", "delete", "kind", "node", "uuid", victim->uuid);
}

static json_t *random_command(simnode *node)
{
	store_object *vm = random_vm(node);
	unsigned kind = rnd(10);
	if (S->node_changes && chance(0.08))
		return random_node_change(node);
	if (!vm || kind < 4)
		return random_create();
	if (kind < 7) {
		json_t *c = json_pack("{s:s,s:s,s:s,s:{s:I}}", "op", "update", "kind", "vm", "uuid",
				      vm->uuid, "data", "nonce", (json_int_t)S->clock_ms);
		if (chance(0.3))
			json_object_set_new(c, "name", json_sprintf("vm%u", rnd(12)));
		if (chance(0.3))
			json_object_set_new(c, "if_version", json_integer((json_int_t)vm->version));
		return c;
	}
	if (kind < 8)
		return json_pack("{s:s,s:s,s:s}", "op", "delete", "kind", "vm", "uuid", vm->uuid);
	if (kind < 9) {
		/* One draw per statement: argument evaluation order is unspecified. */
		json_int_t version = 1 + rnd((unsigned)vm->version);
		bool force = chance(0.5);
		return json_pack("{s:s,s:s,s:s,s:I,s:b}", "op", "restore", "kind", "vm", "uuid",
				 vm->uuid, "version", version, "force", force);
	}
	json_t *first = random_create();
	json_t *second = random_create();
	return json_pack("{s:s,s:[o,o]}", "op", "batch", "ops", first, second);
}

static void client_submit(simnode *node)
{
	g_autoptr(json_t) cmd = random_command(node);
	g_autoptr(GError) err = NULL;
	S->clock_ms++;
	uint64_t id = replica_submit(node->r, cmd, S->clock_ms, "sim", &err);
	if (!id) {
		S->stats_refused++;
		TRACE("n%u: submit refused: %s", node->id, err->message);
		return;
	}
	S->stats_submitted++;
	TRACE("n%u: submit %s as request %" G_GUINT64_FORMAT " at time %" G_GINT64_FORMAT,
	      node->id, json_string_value(json_object_get(cmd, "op")), id, S->clock_ms);
	int64_t *t = g_new(int64_t, 1);
	*t = S->clock_ms;
	g_hash_table_insert(req_time[node->id], g_memdup2(&id, sizeof(id)), t);
	if (g_strcmp0(json_string_value(json_object_get(cmd, "op")), "create") == 0)
		g_hash_table_insert(req_create[node->id], g_memdup2(&id, sizeof(id)),
				    g_strdup(json_string_value(json_object_get(cmd, "uuid"))));
}

/* No VM whose create was answered "not applied" exists anywhere. */
static void check_not_applied(void)
{
	GHashTableIter it;
	gpointer uuid, answer;
	g_hash_table_iter_init(&it, S->not_applied);
	while (g_hash_table_iter_next(&it, &uuid, &answer))
		for (unsigned i = 1; i <= S->n; i++)
			if (S->nodes[i].r && store_state_get(replica_state(S->nodes[i].r), STORE_KIND_VM, uuid))
				fail("VM %s exists on n%u, but its create was answered (%s)",
				     (const char *)uuid, i, (const char *)answer);
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */

static char *state_digest(replica *r)
{
	store_state *st = replica_state(r);
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	for (int k = 0; k < STORE_KIND__COUNT; k++) {
		GList *keys = g_list_sort(g_hash_table_get_keys(st->by_uuid[k]), (GCompareFunc)strcmp);
		for (GList *l = keys; l; l = l->next) {
			store_object *o = g_hash_table_lookup(st->by_uuid[k], l->data);
			g_autoptr(json_t) j = store_object_to_json(o);
			g_autofree char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
			g_checksum_update(ck, (const guchar *)s, -1);
		}
		g_list_free(keys);
	}
	char *d = g_strdup(g_checksum_get_string(ck));
	g_checksum_free(ck);
	return d;
}

static void check_invariants(bool deep)
{
	for (guint k = 0; k < S->bus.groups->len; k++) {
		simbus_group *g = S->bus.groups->pdata[k];
		simnode *first = NULL;
		g_autofree char *digest = NULL;
		for (guint i = 0; i < g->members->len; i++) {
			simnode *node = NODE_OF(g->members->pdata[i]);
			if (!node->r || replica_get_phase(node->r) != REPLICA_SYNCED ||
			    node->cfg_id != g->id)
				continue;
			if (!first) {
				first = node;
				if (deep)
					digest = state_digest(node->r);
				continue;
			}
			store_position *a = &replica_state(first->r)->pos, *b = &replica_state(node->r)->pos;
			if (store_position_compare(a, b) != 0 || memcmp(a->hash, b->hash, 32) != 0)
				fail("n%u and n%u are in sync in one configuration but at different positions "
				     "(%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " vs %" G_GUINT64_FORMAT
				     "/%" G_GUINT64_FORMAT ")",
				     first->id, node->id, a->gen, a->index, b->gen, b->index);
			if (deep) {
				g_autofree char *d = state_digest(node->r);
				if (strcmp(d, digest) != 0)
					fail("n%u and n%u hold different objects at the same position",
					     first->id, node->id);
			}
		}
	}
	if (!deep)
		return;
	for (unsigned i = 1; i <= S->n; i++) {
		simnode *node = &S->nodes[i];
		/* A node that has not processed the change into its current
		 * configuration yet is in sync with one that is gone: it applies
		 * nothing more there, and the others may have moved on. */
		if (!node->r || replica_get_phase(node->r) != REPLICA_SYNCED ||
		    !replica_is_primary(node->r) || !node->bus.grp || node->cfg_id != node->bus.grp->id)
			continue;
		for (guint a = 0; a < S->acked->len; a++) {
			acked_change *c = &g_array_index(S->acked, acked_change, a);
			g_autoptr(json_t) e = store_db_history_get(node->db, STORE_KIND_VM, c->uuid, c->version);
			if (!e || json_integer_value(json_object_get(e, "time_ms")) != c->time_ms)
				fail("acknowledged change %s version %" G_GUINT64_FORMAT
				     " (time %" G_GINT64_FORMAT ") is missing on n%u",
				     c->uuid, c->version, c->time_ms, node->id);
		}
	}
}

/* ------------------------------------------------------------------ */
/* The run                                                             */

static void deliver_some(void)
{
	simbus_group *g = simbus_busy_group(&S->bus);
	if (!g)
		return;
	unsigned burst = 1 + rnd(4);
	for (unsigned b = 0; b < burst && !g_queue_is_empty(g->inflight); b++)
		simbus_deliver_next(&S->bus, g);
	/* End of the burst: each member commits now, or later (a slow disk). */
	for (guint i = 0; i < g->members->len; i++) {
		simnode *node = NODE_OF(g->members->pdata[i]);
		if (node->r && chance(0.7)) {
			TRACE("n%u: flush", node->id);
			replica_flush(node->r);
		}
	}
}

static bool quiet(void)
{
	return simbus_quiet(&S->bus);
}

static void settle(void)
{
	for (unsigned rounds = 0; rounds < 100000 && !quiet(); rounds++) {
		deliver_some();
		for (unsigned i = 1; i <= S->n; i++)
			if (S->nodes[i].r)
				replica_flush(S->nodes[i].r);
		for (unsigned i = 1; i <= S->n; i++)
			if (S->nodes[i].failed)
				node_failed(&S->nodes[i]);
	}
	/* Flushing may send PERSISTED messages, and delivering those may apply
	 * what waited for a sync, which needs flushing again. */
	for (;;) {
		for (unsigned i = 1; i <= S->n; i++)
			if (S->nodes[i].r)
				replica_flush(S->nodes[i].r);
		if (quiet())
			break;
		while (!quiet())
			deliver_some();
	}
}

static void bootstrap(void)
{
	/* n1 creates the cluster with every node in it, as create + joins do. */
	simnode *first = &S->nodes[1];
	json_t *ops = json_array();
	char uuid[STORE_UUID_LEN + 1];
	fake_uuid(uuid);
	json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:s,s:{s:{s:i}}}", "op", "create", "kind",
					     "cluster", "uuid", uuid, "name", "sim", "data", "settings",
					     "vm_history_limit", 100000));
	/* Half the runs start like a new cluster, with fewer nodes than will
	 * join, and add and remove nodes as they go. */
	unsigned k = S->node_changes ? 1 + rnd(S->n - 1) : S->n;
	for (unsigned i = 1; i <= k; i++) {
		char name[16];
		fake_uuid(uuid);
		g_snprintf(name, sizeof(name), "n%u", i);
		json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:s,s:{s:i}}", "op", "create",
						     "kind", "node", "uuid", uuid, "name", name,
						     "data", "nodeid", i));
	}
	g_autoptr(json_t) cmd = json_pack("{s:s,s:o}", "op", "batch", "ops", ops);
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) r = replica_bootstrap(first->r, cmd, ++S->clock_ms, "sim", &err);
	if (!r)
		fail("bootstrap failed: %s", err->message);
}

/* Every request has been answered, one way or the other. */
static void check_answered(const char *when)
{
	for (unsigned i = 1; i <= S->n; i++) {
		if (!S->nodes[i].r || g_hash_table_size(req_time[i]) == 0)
			continue;
		GHashTableIter it;
		gpointer k, v;
		g_hash_table_iter_init(&it, req_time[i]);
		g_hash_table_iter_next(&it, &k, &v);
		fail("%s, n%u still waits for an answer to request %" G_GUINT64_FORMAT
		     " (time %" G_GINT64_FORMAT ")",
		     when, i, *(uint64_t *)k, *(int64_t *)v);
	}
}

static int run(guint64 seed, unsigned steps, bool verbose)
{
	sim s = { .seed = seed, .verbose = verbose };
	S = &s;
	s.rng = g_rand_new_with_seed_array((const guint32[]){ (guint32)seed, (guint32)(seed >> 32) }, 2);
	s.n = 3 + rnd(3);
	s.node_changes = chance(0.5);
	simbus_init(&s.bus, s.rng, NULL);
	s.bus.deliver = bus_deliver;
	s.bus.formed = bus_formed;
	s.acked = g_array_new(FALSE, FALSE, sizeof(acked_change));
	s.not_applied = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	for (unsigned i = 1; i <= s.n; i++) {
		g_autoptr(GError) err = NULL;
		s.nodes[i].id = i;
		s.nodes[i].bus.id = i;
		s.nodes[i].db = store_db_open(":memory:", &err);
		node_start(&s.nodes[i]);
	}
	bootstrap();
	recompute_groups();

	for (s.step = 1; s.step <= steps; s.step++) {
		unsigned a = rnd(100);
		simnode *node = &s.nodes[1 + rnd(s.n)];
		if (a < 45) {
			deliver_some();
		} else if (a < 55) {
			if (node->r) {
				TRACE("n%u: flush", node->id);
				replica_flush(node->r);
			}
		} else if (a < 85) {
			if (node->r)
				client_submit(node);
		} else if (a < 88) {
			if (node->r) {
				node_crash(node);
				recompute_groups();
			}
		} else if (a < 93) {
			if (!node->r) {
				TRACE("n%u: restart", node->id);
				node_start(node);
				recompute_groups();
			} else if (node->away) {
				node_recover(node);
			}
		} else if (a < 95) {
			s.stats_partitions++;
			for (unsigned i = 1; i <= s.n; i++)
				s.nodes[i].bus.partition = (int)rnd(2);
			TRACE("partition");
			recompute_groups();
		} else if (a < 98) {
			for (unsigned i = 1; i <= s.n; i++)
				s.nodes[i].bus.partition = 0;
			TRACE("heal");
			recompute_groups();
		} else if (a < 99) {
			if (node->r) {
				unsigned nth = 1 + rnd(6);
				TRACE("n%u: disk will fail at write %u", node->id, nth);
				store_db_fail_after(node->db, nth);
			}
		} else if (node->bus.grp) {
			/* garbage on the wire: every member must drop it alike */
			uint8_t junk[64];
			for (unsigned i = 0; i < sizeof(junk); i++)
				junk[i] = (uint8_t)rnd(256);
			if (chance(0.5))
				herd_put_le32(junk, HERD_WIRE_MAGIC);
			cb_send(node, junk, rnd(sizeof(junk)));
		}
		for (unsigned i = 1; i <= s.n; i++)
			if (s.nodes[i].failed)
				node_failed(&s.nodes[i]);
		check_invariants(s.step % 64 == 0);
	}

	/* The faults stop.  First, as things are: once every configuration has
	 * settled, no request may be left waiting (a change that ended a primary
	 * configuration, say, must still be answered). */
	for (unsigned i = 1; i <= s.n; i++)
		store_db_fail_after(s.nodes[i].db, 0);
	settle();
	check_answered("in a settled configuration");

	/* Then everyone up, one partition, and it must converge. */
	for (unsigned i = 1; i <= s.n; i++) {
		s.nodes[i].bus.partition = 0;
		store_db_fail_after(s.nodes[i].db, 0);
		if (!s.nodes[i].r)
			node_start(&s.nodes[i]);
		else if (s.nodes[i].away)
			node_recover(&s.nodes[i]);
	}
	recompute_groups();
	settle();
	check_invariants(true);
	for (unsigned i = 1; i <= s.n; i++) {
		simnode *node = &s.nodes[i];
		if (replica_get_phase(node->r) != REPLICA_SYNCED || !replica_is_primary(node->r))
			fail("after healing, n%u is not in sync and quorate", i);
	}
	check_answered("after healing");
	check_not_applied();
	/* ...and accept changes again. */
	unsigned before = s.stats_acked;
	for (unsigned i = 1; i <= s.n; i++) {
		g_autoptr(json_t) cmd = random_create();
		json_object_set_new(cmd, "name", json_sprintf("final-n%u", i));
		g_autoptr(GError) err = NULL;
		s.clock_ms++;
		uint64_t id = replica_submit(s.nodes[i].r, cmd, s.clock_ms, "sim", &err);
		if (!id)
			fail("after healing, n%u refuses a change: %s", i, err->message);
		int64_t *t = g_new(int64_t, 1);
		*t = s.clock_ms;
		g_hash_table_insert(req_time[i], g_memdup2(&id, sizeof(id)), t);
	}
	settle();
	if (s.stats_acked - before != s.n)
		fail("after healing, %u of %u new changes were acknowledged", s.stats_acked - before, s.n);
	check_invariants(true);

	if (sim_print_each)
		printf("seed %" G_GUINT64_FORMAT ": %u nodes%s, %u steps, %u submitted, %u acknowledged, "
		       "%u refused, %u failed, %u crashes, %u recoveries in place, %u partitions, "
		       "%u configurations, final index %" G_GUINT64_FORMAT "\n",
		       seed, s.n, s.node_changes ? " (joining and leaving)" : "", steps, s.stats_submitted,
		       s.stats_acked, s.stats_refused, s.stats_failed_req, s.stats_crashes,
		       s.stats_recoveries, s.stats_partitions, s.stats_syncs,
		       replica_state(s.nodes[1].r)->pos.index);
	for (unsigned i = 1; i <= s.n; i++) {
		replica_free(s.nodes[i].r);
		store_db_close(s.nodes[i].db);
		g_hash_table_destroy(req_time[i]);
		req_time[i] = NULL;
		g_hash_table_destroy(req_create[i]);
		req_create[i] = NULL;
	}
	simbus_clear(&s.bus);
	g_array_unref(s.acked);
	g_hash_table_destroy(s.not_applied);
	g_rand_free(s.rng);
	return 0;
}

int main(int argc, char **argv)
{
	return sim_main(argc, argv, "sim-store", "simulate the replicated store", run, HERD_LOG_DEBUG);
}
