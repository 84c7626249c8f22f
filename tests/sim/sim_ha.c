/*
 * Deterministic simulation of the HA engine.
 *
 * N nodes, each with the real replica (store), node agent, coordinator and
 * scheduler, on a simulated CPG (virtual synchrony, as in sim_store.c), a
 * fake hypervisor per node (VMs start and stop after simulated delays) and a
 * fake switched PDU (fencing cuts a node's power: its VMs, its herd, its
 * pending work all die), on a simulated clock.  One seed drives everything:
 * operators starting, stopping and moving VMs and nodes; power cuts and
 * returns; partitions and merges; fence devices that fail or are slow;
 * guests that crash or shut themselves down.
 *
 * After every step: no VM is active (starting, running, paused, stopping) on
 * two powered nodes at once.  When the faults stop: every VM that should run
 * and fits runs, once, on its assigned node.
 *
 *   sim-ha [--seeds N | --seed S] [--steps N] [--verbose]
 */
#include "common/json.h"
#include "common/log.h"
#include "ha/agent.h"
#include "ha/coordinator.h"
#include "ha/facts.h"
#include "ha/sched_json.h"
#include "store/replica.h"
#include "store/wire.h"
#include "simbus.h"

#include <stddef.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NODES 5
#define N_VMS 12
#define NODE_MEMORY_MIB 4096
#define VM_MEMORY_MIB 512

typedef struct simnode simnode;

/* ------------------------------------------------------------------ */
/* Events on the simulated clock                                       */

typedef struct simnode simnode_fwd;

typedef enum { EV_VIRT_DONE, EV_FENCE_DONE, EV_WAKEUP } event_kind;

typedef struct {
	int64_t at_ms;
	uint64_t seq;           /* ties: first scheduled, first run */
	event_kind kind;
	simnode *node;
	unsigned power_cycle;   /* the node's power cycle it belongs to */
	/* EV_VIRT_DONE */
	char uuid[37];
	int op;                 /* 0 start, 1 stop */
	herd_virt_done done;
	gpointer user;
	/* EV_FENCE_DONE */
	unsigned target;
} event;

/* ------------------------------------------------------------------ */

typedef struct {
	herd_virt base;
	simnode *node;
	GHashTable *vms;        /* uuid -> herd_vm_fact* */
} fakevirt;

struct simnode {
	unsigned id;
	char name[8];
	bool powered;
	unsigned power_cycle;
	simbus_member bus;      /* its partition and configuration */
	store_db *db;
	replica *r;
	herd_facts *facts;
	herd_agent *agent;
	herd_coord *coord;
	fakevirt *virt;
	unsigned cfg_id;
	uint32_t members[SIMBUS_MAX_MEMBERS];
	size_t n_members;
	bool dirty;
	bool status_due;        /* store changes concerning its VMs: tell (as ha.c) */
	GHashTable *coord_reqs;  /* req ids of coordinator commands */
};

typedef struct {
	guint64 seed;
	GRand *rng;
	unsigned n;
	simnode nodes[MAX_NODES + 1];
	simbus bus;
	GQueue *events;         /* event*, sorted by (at_ms, seq) */
	uint64_t event_seq;
	int64_t now_ms;
	unsigned step;
	bool verbose;
	bool fence_broken;
	bool fence_slow;
	char vm_uuids[N_VMS][37];
	unsigned stats_fences, stats_failovers, stats_crashes, stats_partitions, stats_vm_starts;
} sim;

static sim *S;

static void dump_views(void);

static void fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void fail(const char *fmt, ...)
{
	va_list ap;
	if (S->verbose)
		dump_views();
	va_start(ap, fmt);
	fprintf(stderr, "\nINVARIANT VIOLATED at step %u (t=%" G_GINT64_FORMAT " ms): ", S->step, S->now_ms);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nreplay: sim-ha --seed %" G_GUINT64_FORMAT " --steps %u --verbose\n", S->seed, S->step);
	exit(1);
}

#define TRACE(...)                                                             \
	do {                                                                   \
		if (S->verbose) {                                              \
			printf("[%5u %7" G_GINT64_FORMAT "] ", S->step, S->now_ms); \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
		}                                                              \
	} while (0)

static unsigned rnd(unsigned n)
{
	return n ? (unsigned)g_rand_int_range(S->rng, 0, (gint32)n) : 0;
}

static bool chance(double p)
{
	return g_rand_double(S->rng) < p;
}

static gint event_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
	const event *x = a, *y = b;
	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static event *schedule(simnode *node, event_kind kind, int64_t delay_ms)
{
	event *e = g_new0(event, 1);
	e->at_ms = S->now_ms + MAX(delay_ms, 0);
	e->seq = S->event_seq++;
	e->kind = kind;
	e->node = node;
	e->power_cycle = node->power_cycle;
	g_queue_insert_sorted(S->events, e, event_cmp, NULL);
	return e;
}

/* ------------------------------------------------------------------ */
/* The fake hypervisor                                                 */

static void virt_set(fakevirt *v, const char *uuid, herd_vm_state st, const char *reason)
{
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	if (!f) {
		f = g_new0(herd_vm_fact, 1);
		g_strlcpy(f->uuid, uuid, sizeof(f->uuid));
		g_hash_table_insert(v->vms, f->uuid, f);
	}
	f->state = st;
	f->since_ms = S->now_ms;
	g_strlcpy(f->reason, reason, sizeof(f->reason));
	TRACE("%s: VM vm%d %s (%s)", v->node->name, atoi(uuid + 24), herd_vm_state_name(st), reason);
	v->base.cb.fact(v->base.user, f);
}

static bool fv_open(herd_virt *v, GError **error) { return true; }
static void fv_close(herd_virt *v) {}

static void fv_start(herd_virt *base, const char *uuid, const char *xml, herd_virt_done done, gpointer user)
{
	fakevirt *v = (fakevirt *)base;
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	if (f && f->state != HERD_VM_STOPPED && f->state != HERD_VM_CRASHED) {
		done(NULL, user); /* idempotent */
		return;
	}
	virt_set(v, uuid, HERD_VM_STARTING, "starting");
	S->stats_vm_starts++;
	event *e = schedule(v->node, EV_VIRT_DONE, 50 + rnd(300));
	g_strlcpy(e->uuid, uuid, sizeof(e->uuid));
	e->op = 0;
	e->done = done;
	e->user = user;
}

static void fv_stop(herd_virt *base, const char *uuid, bool force, herd_virt_done done, gpointer user)
{
	fakevirt *v = (fakevirt *)base;
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	if (!f || f->state == HERD_VM_STOPPED) {
		done(NULL, user);
		return;
	}
	virt_set(v, uuid, HERD_VM_STOPPING, force ? "destroying" : "shutting down");
	event *e = schedule(v->node, EV_VIRT_DONE, force ? 20 + rnd(50) : 100 + rnd(1500));
	TRACE("%s: stop of vm%d due at %" G_GINT64_FORMAT, v->node->name, atoi(uuid + 24), e->at_ms);
	g_strlcpy(e->uuid, uuid, sizeof(e->uuid));
	e->op = 1;
	e->done = done;
	e->user = user;
}

static void fv_shutdown(herd_virt *v, const char *uuid, unsigned timeout_s, herd_virt_done done, gpointer user)
{
	fv_stop(v, uuid, false, done, user);
}

static void fv_destroy(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	fv_stop(v, uuid, true, done, user);
}

static void fv_noop(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	done(NULL, user);
}

static GArray *fv_facts(herd_virt *base)
{
	fakevirt *v = (fakevirt *)base;
	GArray *out = g_array_new(FALSE, FALSE, sizeof(herd_vm_fact));
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val))
		g_array_append_vals(out, val, 1);
	return out;
}

static bool fv_resources(herd_virt *v, herd_node_resources *out)
{
	out->memory_mib = NODE_MEMORY_MIB;
	out->free_mib = NODE_MEMORY_MIB;
	out->cpus = 4;
	return true;
}

static const herd_virt_ops fake_ops = {
	.open = fv_open, .close = fv_close, .start = fv_start, .shutdown = fv_shutdown,
	.destroy = fv_destroy, .reboot = fv_noop, .reset = fv_noop, .suspend = fv_noop,
	.resume = fv_noop, .facts = fv_facts, .resources = fv_resources,
};

/* ------------------------------------------------------------------ */
/* Bus (simbus.c)                                                     */

#define NODE_OF(m) ((simnode *)((char *)(m) - offsetof(simnode, bus)))

static bool bus_send(simnode *node, const void *msg, size_t len)
{
	return node->powered && simbus_send(&node->bus, msg, len);
}

static void send_status(simnode *node)
{
	herd_node_resources res;
	fv_resources(&node->virt->base, &res);
	g_autoptr(GArray) facts = herd_agent_facts(node->agent);
	g_autoptr(json_t) coord = herd_coord_status(node->coord);
	size_t len, n;
	g_autofree char *payload = herd_facts_encode(node->name, replica_state(node->r)->pos.index,
						     facts, &res, true,
						     herd_agent_errors(node->agent), coord,
						     herd_coord_seen(node->coord), &len);
	g_autofree void *m = herd_wire_encode(HERD_MSG_STATUS, node->id, 0, 0, payload, len, &n);
	bus_send(node, m, n);
}

static void deliver_to(simnode *node, const simbus_msg *m)
{
	if (!node->powered)
		return;
	node->dirty = true;
	if (!m->bytes) {
		node->cfg_id = m->cfg_id;
		memcpy(node->members, m->members, sizeof(m->members));
		node->n_members = m->n_members;
		replica_confchg(node->r, m->members, m->n_members);
		herd_facts_new_round(node->facts);
		send_status(node);
		return;
	}
	gsize len;
	const void *p = g_bytes_get_data(m->bytes, &len);
	herd_wire_header h;
	const void *payload;
	if (herd_wire_decode(p, len, m->sender, &h, &payload, NULL) && h.type >= HERD_MSG_STATUS) {
		if (h.type == HERD_MSG_STATUS)
			herd_facts_update(node->facts, m->sender, payload, h.payload_len, S->now_ms);
		return;
	}
	replica_deliver(node->r, m->sender, p, len);
}

static void bus_deliver(simbus_member *m, const simbus_msg *msg, gpointer user)
{
	deliver_to(NODE_OF(m), msg);
}

static void bus_formed(simbus_group *g, gpointer user)
{
	GString *desc = g_string_new(NULL);
	for (guint i = 0; i < g->members->len; i++)
		g_string_append_printf(desc, " %s", NODE_OF(g->members->pdata[i])->name);
	TRACE("configuration:%s", desc->str);
	g_string_free(desc, TRUE);
}

static void recompute_groups(void)
{
	simbus_member *up[MAX_NODES];
	unsigned n = 0;
	for (unsigned i = 1; i <= S->n; i++)
		if (S->nodes[i].powered)
			up[n++] = &S->nodes[i].bus;
	simbus_recompute(&S->bus, up, n);
}

/* ------------------------------------------------------------------ */
/* Node life                                                           */

static bool rep_send(gpointer user, const void *msg, size_t len) { return bus_send(user, msg, len); }

static void rep_done(gpointer user, uint64_t req_id, json_t *result, const GError *error)
{
	simnode *node = user;
	if (g_hash_table_remove(node->coord_reqs, &req_id))
		herd_coord_committed(node->coord, error);
	node->dirty = true;
}

static void rep_changed(gpointer user, GPtrArray *changes)
{
	simnode *node = user;
	node->dirty = true;
	if (node->agent && herd_agent_concerned(node->agent, changes))
		node->status_due = true;
}

static void rep_failed(gpointer user, const GError *error)
{
	fail("%s: the store failed: %s", ((simnode *)user)->name, error->message);
}

static bool survivor_ok(gpointer user, uint32_t missing)
{
	simnode *node = user;
	g_autofree char *name = g_strdup_printf("n%u", missing);
	store_object *n = store_state_get_by_name(replica_state(node->r), STORE_KIND_NODE, name);
	return herd_coord_has_fenced(node->coord, name) || (n && json_object_get(n->data, "down"));
}

static void rep_durable(gpointer user)
{
	((simnode *)user)->dirty = true;
}

static const replica_callbacks rep_cb = {
	.send = rep_send, .done = rep_done, .changed = rep_changed, .failed = rep_failed,
	.two_node_survivor_ok = survivor_ok, .durable = rep_durable,
};

static void agent_changed(gpointer user)
{
	simnode *node = user;
	if (node->powered)
		send_status(node);
}

static void wakeup(gpointer user, int64_t delay_ms)
{
	simnode *node = user;
	if (delay_ms <= 0)
		node->dirty = true;
	else
		schedule(node, EV_WAKEUP, delay_ms);
}

static const herd_agent_io agent_io = { .changed = agent_changed, .wakeup = wakeup };

static bool coord_submit(gpointer user, json_t *cmd)
{
	simnode *node = user;
	g_autoptr(GError) err = NULL;
	uint64_t id = replica_submit(node->r, cmd, S->now_ms, "herd", &err);
	if (!id)
		return false;
	if (S->verbose) {
		g_autofree char *text = json_dumps(cmd, JSON_COMPACT);
		TRACE("%s: coordinator submits %.160s", node->name, text);
	}
	g_hash_table_add(node->coord_reqs, g_memdup2(&id, sizeof(id)));
	return true;
}

static void coord_fence(gpointer user, const char *target)
{
	simnode *node = user;
	unsigned t = (unsigned)atoi(target + 1);
	S->stats_fences++;
	/* Two nodes: all but the lowest wait, so one wins a mutual fence. */
	int64_t delay = 0;
	if (store_state_count(replica_state(node->r), STORE_KIND_NODE) == 2 && node->id != 1)
		delay = 3000;
	int64_t agent = S->fence_slow ? 1000 + rnd(5000) : 150 + rnd(400);
	event *e = schedule(node, EV_FENCE_DONE, delay + agent);
	e->target = t;
	TRACE("%s: fencing %s (done in %" G_GINT64_FORMAT " ms)", node->name, target, delay + agent);
}

static void coord_changed(gpointer user)
{
	agent_changed(user);
}

static const herd_coord_io coord_io = {
	.submit = coord_submit, .fence = coord_fence, .wakeup = wakeup, .changed = coord_changed,
};

static void virt_fact(gpointer user, const herd_vm_fact *f)
{
	simnode *node = user;
	herd_agent_fact(node->agent, f, S->now_ms);
}

static void node_power_on(simnode *node)
{
	g_autoptr(GError) err = NULL;
	node->powered = true;
	node->power_cycle++;
	node->bus.grp = NULL;
	node->cfg_id = 0;
	node->n_members = 0;
	node->r = replica_new(node->id, node->name, node->db, &rep_cb, node, &err);
	if (!node->r)
		fail("%s cannot start: %s", node->name, err->message);
	node->facts = herd_facts_new();
	node->virt = g_new0(fakevirt, 1);
	node->virt->base.ops = &fake_ops;
	node->virt->base.cb.fact = virt_fact;
	node->virt->base.user = node;
	node->virt->node = node;
	node->virt->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	node->agent = herd_agent_new(node->name, &node->virt->base, &agent_io, node);
	node->coord = herd_coord_new(&coord_io, node);
	node->coord_reqs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	node->dirty = true;
	/* The fake hypervisor is connected at once, with no VM yet. */
	herd_agent_connection(node->agent, false);
}

/* A power cut: the node, its VMs and everything it had under way are gone. */
static void node_power_off(simnode *node)
{
	TRACE("%s: POWER OFF", node->name);
	node->powered = false;
	store_db_rollback(node->db);
	replica *r = node->r;
	node->r = NULL;
	replica_free(r);
	herd_coord_free(node->coord);
	herd_agent_free(node->agent);
	herd_facts_free(node->facts);
	g_hash_table_destroy(node->virt->vms);
	g_free(node->virt);
	g_hash_table_destroy(node->coord_reqs);
	node->coord = NULL;
	node->agent = NULL;
	node->facts = NULL;
	node->virt = NULL;
	node->bus.grp = NULL;
}

/* ------------------------------------------------------------------ */
/* The run of a node (as ha.c's on_run)                                */

static void node_run(simnode *node)
{
	if (!node->powered)
		return;
	node->dirty = false;
	replica_flush(node->r);
	bool synced = replica_get_phase(node->r) == REPLICA_SYNCED;
	bool writable = synced && replica_is_primary(node->r);
	store_state *st = replica_state(node->r);
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, node->name);
	bool maintenance = me && g_strcmp0(json_string_value(json_object_get(me->data, "mode")), "maintenance") == 0;
	herd_agent_reconcile(node->agent, st, writable, replica_is_durable(node->r) && !maintenance,
			     S->now_ms);
	/* In the simulator herd runs wherever the power is on: ring = group. */
	uint32_t members[MAX_NODES];
	size_t n = replica_members(node->r, members, MAX_NODES);
	/* votequorum's view: a majority of the configured votes, or one of two. */
	unsigned total = store_state_count(st, STORE_KIND_NODE);
	bool quorate = synced && (2 * n > total || (total == 2 && n == 1));
	herd_coord_view v = {
		.st = st, .facts = node->facts, .ring = members, .n_ring = n, .group = members,
		.n_group = n, .self = node->id, .quorate = quorate, .store_writable = writable,
		.now_ms = S->now_ms,
	};
	herd_coord_run(node->coord, &v);
	if (node->status_due) {
		node->status_due = false;
		send_status(node);
	}
	if (S->verbose && herd_coord_active(node->coord)) {
		/* The scheduler's input, replayable with sched-golden --show. */
		g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL);
		g_autoptr(json_t) dump = sched_json_input_dump(herd_sched_input_get(hi));
		g_autofree char *text = json_dumps(dump, JSON_COMPACT);
		TRACE("%s: scheduler input %s", node->name, text);
	}
	replica_flush(node->r);
}

static void run_dirty(void)
{
	for (int rounds = 0; rounds < 20; rounds++) {
		bool any = false;
		for (unsigned i = 1; i <= S->n; i++) {
			if (S->nodes[i].powered && S->nodes[i].dirty) {
				node_run(&S->nodes[i]);
				any = true;
			}
		}
		if (!any)
			return;
	}
}

/* ------------------------------------------------------------------ */
/* Events                                                              */

static void run_event(event *e)
{
	simnode *node = e->node;
	if (!node->powered || e->power_cycle != node->power_cycle) {
		TRACE("%s: event %d dropped (power cycle %u, now %u)", node->name, e->kind, e->power_cycle,
		      node->power_cycle);
		return; /* what a dead node had under way died with it */
	}
	if (e->kind == EV_VIRT_DONE)
		TRACE("%s: %s of vm%d done", node->name, e->op ? "stop" : "start", atoi(e->uuid + 24));
	switch (e->kind) {
	case EV_WAKEUP:
		node->dirty = true;
		break;
	case EV_VIRT_DONE: {
		herd_vm_fact *f = g_hash_table_lookup(node->virt->vms, e->uuid);
		if (e->op == 0 && f && f->state == HERD_VM_STARTING)
			virt_set(node->virt, e->uuid, HERD_VM_RUNNING, "started");
		else if (e->op == 1 && f && f->state == HERD_VM_STOPPING)
			virt_set(node->virt, e->uuid, HERD_VM_STOPPED, "stopped");
		e->done(NULL, e->user);
		break;
	}
	case EV_FENCE_DONE: {
		simnode *target = &S->nodes[e->target];
		g_autofree char *tname = g_strdup_printf("n%u", e->target);
		if (S->fence_broken) {
			TRACE("%s: fencing %s FAILED (device broken)", node->name, tname);
			herd_coord_fenced(node->coord, tname, false, "pdu", "the PDU does not answer", S->now_ms);
		} else {
			if (target->powered) {
				node_power_off(target);
				recompute_groups();
			}
			TRACE("%s: fenced %s", node->name, tname);
			herd_coord_fenced(node->coord, tname, true, "pdu", "off", S->now_ms);
			replica_recheck_primary(node->r);
		}
		node->dirty = true;
		break;
	}
	}
}

static void run_events_until(int64_t t)
{
	event *e;
	while ((e = g_queue_peek_head(S->events)) && e->at_ms <= t) {
		g_queue_pop_head(S->events);
		S->now_ms = MAX(S->now_ms, e->at_ms);
		run_event(e);
		g_free(e);
		run_dirty();
	}
	S->now_ms = MAX(S->now_ms, t);
}

static void deliver_some(void)
{
	simbus_group *g = simbus_busy_group(&S->bus);
	if (!g)
		return;
	unsigned burst = 1 + rnd(6);
	for (unsigned b = 0; b < burst && !g_queue_is_empty(g->inflight); b++)
		simbus_deliver_next(&S->bus, g);
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */

/* --verbose: each powered node's view of nodes and VMs, on failure. */
static void dump_views(void)
{
	for (unsigned i = 1; i <= S->n; i++) {
		simnode *node = &S->nodes[i];
		if (!node->powered || !node->r)
			continue;
		store_state *st = replica_state(node->r);
		GString *s = g_string_new(NULL);
		g_string_append_printf(s, "view of %s (index %" G_GUINT64_FORMAT "%s):", node->name, st->pos.index,
				       replica_is_primary(node->r) ? ", primary" : "");
		g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
		for (guint k = 0; k < nodes->len; k++) {
			store_object *n = nodes->pdata[k];
			g_string_append_printf(s, " %s%s%s", n->name,
					       json_object_get(n->data, "down") ? "(down)" : "",
					       herd_coord_has_fenced(node->coord, n->name) ? "(fenced here)" : "");
		}
		g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
		for (guint k = 0; k < vms->len; k++) {
			store_object *v = vms->pdata[k];
			const char *on = json_string_value(json_object_get(v->data, "node"));
			const char *mv = json_string_value(json_object_get(v->data, "move_to"));
			g_string_append_printf(s, " %s@%s%s%s%s", v->name, on ? on : "-", mv ? ">" : "", mv ? mv : "",
					       g_strcmp0(json_string_value(json_object_get(v->data, "target")), "running") ? "(stop)" : "");
		}
		g_string_append_printf(s, "\n   facts (round %" G_GUINT64_FORMAT "):", node->facts->round);
		GHashTableIter it;
		gpointer val;
		g_hash_table_iter_init(&it, node->facts->nodes);
		while (g_hash_table_iter_next(&it, NULL, &val)) {
			herd_node_facts *nf = val;
			g_string_append_printf(s, " [%s r%" G_GUINT64_FORMAT ":", nf->name, nf->round);
			GHashTableIter vi;
			gpointer fv;
			g_hash_table_iter_init(&vi, nf->vms);
			while (g_hash_table_iter_next(&vi, NULL, &fv)) {
				herd_vm_fact *f = fv;
				if (f->state != HERD_VM_STOPPED)
					g_string_append_printf(s, " vm%d=%s", atoi(f->uuid + 24), herd_vm_state_name(f->state));
			}
			g_string_append(s, "]");
		}
		fprintf(stderr, "%s\n", s->str);
		g_string_free(s, TRUE);
	}
}

static void check_no_double_run(void)
{
	for (unsigned v = 0; v < N_VMS; v++) {
		unsigned where = 0;
		GString *names = g_string_new(NULL);
		for (unsigned i = 1; i <= S->n; i++) {
			simnode *node = &S->nodes[i];
			if (!node->powered)
				continue;
			herd_vm_fact *f = g_hash_table_lookup(node->virt->vms, S->vm_uuids[v]);
			if (f && f->state != HERD_VM_STOPPED && f->state != HERD_VM_CRASHED) {
				where++;
				g_string_append_printf(names, " %s(%s)", node->name, herd_vm_state_name(f->state));
			}
		}
		if (where > 1)
			fail("VM vm%u is active on %u nodes at once:%s", v, where, names->str);
		g_string_free(names, TRUE);
	}
}

/* ------------------------------------------------------------------ */
/* Operators and faults                                                */

static simnode *some_powered(void)
{
	for (int tries = 0; tries < 20; tries++) {
		simnode *n = &S->nodes[1 + rnd(S->n)];
		if (n->powered)
			return n;
	}
	return NULL;
}

static void operator_action(void)
{
	simnode *node = some_powered();
	if (!node || replica_get_phase(node->r) != REPLICA_SYNCED || !replica_is_primary(node->r))
		return;
	store_state *st = replica_state(node->r);
	g_autoptr(json_t) cmd = NULL;
	unsigned what = rnd(10);
	const char *vm = S->vm_uuids[rnd(N_VMS)];
	if (what < 5) {
		cmd = json_pack("{s:s,s:s,s:s,s:{s:s,s:n}}", "op", "patch", "kind", "vm", "uuid", vm, "data",
				"target", "running", "stop");
	} else if (what < 7) {
		cmd = json_pack("{s:s,s:s,s:s,s:{s:s,s:s}}", "op", "patch", "kind", "vm", "uuid", vm, "data",
				"target", "stopped", "stop", chance(0.5) ? "force" : "graceful");
	} else {
		static const char *const modes[] = { "online", "online", "standby", "maintenance" };
		g_autofree char *name = g_strdup_printf("n%u", 1 + rnd(S->n));
		store_object *n = store_state_get_by_name(st, STORE_KIND_NODE, name);
		if (!n)
			return;
		cmd = json_pack("{s:s,s:s,s:s,s:{s:s}}", "op", "patch", "kind", "node", "uuid", n->uuid,
				"data", "mode", modes[rnd(4)]);
	}
	g_autoptr(GError) err = NULL;
	if (replica_submit(node->r, cmd, S->now_ms, "operator", &err))
		TRACE("%s: operator: %s", node->name, json_dumps(cmd, JSON_COMPACT));
}

static void guest_trouble(void)
{
	simnode *node = some_powered();
	if (!node)
		return;
	const char *vm = S->vm_uuids[rnd(N_VMS)];
	herd_vm_fact *f = g_hash_table_lookup(node->virt->vms, vm);
	/* One draw per statement: the order in which a call's arguments are
	 * evaluated is unspecified, and a seed must replay under any compiler. */
	bool crash = chance(0.5);
	if (f && f->state == HERD_VM_RUNNING)
		virt_set(node->virt, vm, crash ? HERD_VM_CRASHED : HERD_VM_STOPPED,
			 crash ? "crashed" : "shutdown by guest");
}

/* ------------------------------------------------------------------ */

static void bootstrap(void)
{
	json_t *ops = json_array();
	char uuid[37];
	g_autofree char *u = g_strdup_printf("c0000000-0000-4000-8000-%012u", 1);
	/* join_timeout_s short against the simulated time, so that nodes not
	 * seen since a coordinator's power-on are both awaited and fenced. */
	json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:s,s:{s:{s:i,s:s,s:i,s:i}}}", "op", "create",
					     "kind", "cluster", "uuid", u, "name", "sim", "data", "settings",
					     "failback_after_s", 2, "admission_control", "warn",
					     "vcpu_overcommit", 4, "join_timeout_s", 5));
	json_t *plugs = json_object();
	for (unsigned i = 1; i <= S->n; i++) {
		g_snprintf(uuid, sizeof(uuid), "a0000000-0000-4000-8000-%012u", i);
		json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:s%,s:{s:i,s:s}}", "op", "create", "kind",
						     "node", "uuid", uuid, "name", S->nodes[i].name,
						     strlen(S->nodes[i].name), "data", "nodeid", i, "mode", "online"));
		json_object_set_new(plugs, S->nodes[i].name, json_sprintf("%u", i));
	}
	json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:o,s:i}}", "op", "create", "kind",
					     "fence_device", "uuid", "f0000000-0000-4000-8000-000000000001",
					     "name", "pdu", "data", "agent", "fence_sim", "plugs", plugs,
					     "level", 1));
	for (unsigned v = 0; v < N_VMS; v++) {
		g_snprintf(S->vm_uuids[v], 37, "b0000000-0000-4000-8000-%012u", v);
		g_autofree char *name = g_strdup_printf("vm%u", v);
		json_t *data = json_pack("{s:s,s:b,s:i,s:i,s:s,s:i}", "xml", "<domain/>", "ha", v % 3 != 2,
					 "memory_mib", VM_MEMORY_MIB, "vcpus", 1, "target",
					 v < N_VMS / 2 ? "running" : "stopped", "shutdown_timeout_s", 2);
		if (v % 4 == 0)
			json_object_set_new(data, "preferred", json_sprintf("n%u", 1 + v % S->n));
		if (v == 5)
			json_object_set_new(data, "group", json_string("dns"));
		if (v == 6)
			json_object_set_new(data, "group", json_string("dns"));
		json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:s,s:o}", "op", "create", "kind", "vm",
						     "uuid", S->vm_uuids[v], "name", name, "data", data));
	}
	g_autoptr(json_t) cmd = json_pack("{s:s,s:o}", "op", "batch", "ops", ops);
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) r = replica_bootstrap(S->nodes[1].r, cmd, ++S->now_ms, "sim", &err);
	if (!r)
		fail("bootstrap failed: %s", err->message);
}

/* The faults have stopped: is every VM that should run running, once, where assigned? */
static void check_converged(void)
{
	simnode *any = NULL;
	for (unsigned i = 1; i <= S->n && !any; i++)
		if (S->nodes[i].powered)
			any = &S->nodes[i];
	if (!any)
		fail("after the faults stopped, no node is powered");
	store_state *st = replica_state(any->r);
	for (unsigned v = 0; v < N_VMS; v++) {
		store_object *vm = store_state_get(st, STORE_KIND_VM, S->vm_uuids[v]);
		if (!vm)
			fail("VM %s is missing from the configuration", S->vm_uuids[v]);
		bool want = g_strcmp0(json_string_value(json_object_get(vm->data, "target")), "running") == 0;
		const char *assigned = json_string_value(json_object_get(vm->data, "node"));
		unsigned running = 0;
		const char *where = NULL;
		for (unsigned i = 1; i <= S->n; i++) {
			simnode *node = &S->nodes[i];
			herd_vm_fact *f = node->powered ? g_hash_table_lookup(node->virt->vms, vm->uuid) : NULL;
			if (f && f->state == HERD_VM_RUNNING) {
				running++;
				where = node->name;
			}
		}
		if (running > 1)
			fail("after the faults stopped, VM %s runs %u times", vm->name, running);
		if (want && running == 0) {
			/* Not running is right only when it cannot fit anywhere. */
			g_autoptr(json_t) status = herd_coord_status(any->coord);
			g_autofree char *why = json_dumps(json_object_get(status, "alerts"), JSON_COMPACT);
			fail("after the faults stopped, VM %s should run but does not (assigned to %s; alerts %s)",
			     vm->name, assigned ? assigned : "nothing", why ? why : "none");
		}
		if (!want && running)
			fail("after the faults stopped, VM %s should be stopped but runs on %s", vm->name, where);
		if (want && running && (!assigned || strcmp(assigned, where) != 0))
			fail("after the faults stopped, VM %s runs on %s but is assigned to %s", vm->name, where,
			     assigned ? assigned : "nothing");
	}
}

static void settle(int64_t ms)
{
	int64_t end = S->now_ms + ms;
	while (S->now_ms < end) {
		for (int k = 0; k < 50; k++)
			deliver_some();
		run_dirty();
		run_events_until(S->now_ms + 10);
		run_dirty();
	}
}

static int run(guint64 seed, unsigned steps, bool verbose)
{
	sim s = { .seed = seed, .verbose = verbose };
	S = &s;
	s.rng = g_rand_new_with_seed_array((const guint32[]){ (guint32)seed, (guint32)(seed >> 32) }, 2);
	s.n = 3 + rnd(3);
	simbus_init(&s.bus, s.rng, NULL);
	s.bus.deliver = bus_deliver;
	s.bus.formed = bus_formed;
	s.events = g_queue_new();
	for (unsigned i = 1; i <= s.n; i++) {
		g_autoptr(GError) err = NULL;
		s.nodes[i].id = i;
		s.nodes[i].bus.id = i;
		g_snprintf(s.nodes[i].name, sizeof(s.nodes[i].name), "n%u", i);
		s.nodes[i].db = store_db_open(":memory:", &err);
		node_power_on(&s.nodes[i]);
	}
	bootstrap();
	recompute_groups();

	for (s.step = 1; s.step <= steps; s.step++) {
		unsigned a = rnd(1000);
		simnode *node = &s.nodes[1 + rnd(s.n)];
		if (a < 500) {
			deliver_some();
		} else if (a < 700) {
			run_events_until(s.now_ms + 10 + rnd(100));
		} else if (a < 800) {
			operator_action();
		} else if (a < 830) {
			guest_trouble();
		} else if (a < 845) {
			if (node->powered) {
				s.stats_crashes++;
				node_power_off(node);
				recompute_groups();
			}
		} else if (a < 870) {
			if (!node->powered) {
				TRACE("%s: power on", node->name);
				node_power_on(node);
				recompute_groups();
			}
		} else if (a < 880) {
			s.stats_partitions++;
			for (unsigned i = 1; i <= s.n; i++)
				s.nodes[i].bus.partition = (int)rnd(2);
			TRACE("partition");
			recompute_groups();
		} else if (a < 900) {
			for (unsigned i = 1; i <= s.n; i++)
				s.nodes[i].bus.partition = 0;
			TRACE("heal");
			recompute_groups();
		} else if (a < 915) {
			s.fence_broken = !s.fence_broken;
			TRACE("fence device %s", s.fence_broken ? "BROKEN" : "works again");
		} else if (a < 925) {
			s.fence_slow = !s.fence_slow;
		}
		run_dirty();
		check_no_double_run();
	}

	/* The faults stop: fencing works, every node is on, one partition.  A
	 * fence already under way may still switch a node off: switch it on
	 * again until everyone stays on. */
	s.fence_broken = false;
	s.fence_slow = false;
	for (unsigned i = 1; i <= s.n; i++)
		s.nodes[i].bus.partition = 0;
	for (int round = 0; round < 10; round++) {
		for (unsigned i = 1; i <= s.n; i++)
			if (!s.nodes[i].powered)
				node_power_on(&s.nodes[i]);
		recompute_groups();
		settle(10000);
		bool all_on = true;
		for (unsigned i = 1; i <= s.n; i++)
			all_on &= s.nodes[i].powered;
		if (all_on)
			break;
	}
	/* Nodes left in standby or maintenance by the operators come back. */
	simnode *first = &s.nodes[1];
	if (!first->powered)
		fail("n1 stays off after the faults stopped");
	store_state *st = replica_state(first->r);
	for (unsigned i = 1; i <= s.n; i++) {
		store_object *n = store_state_get_by_name(st, STORE_KIND_NODE, s.nodes[i].name);
		if (!n)
			fail("node %s is missing from the configuration", s.nodes[i].name);
		g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:{s:s}}", "op", "patch", "kind", "node",
						  "uuid", n->uuid, "data", "mode", "online");
		g_autoptr(GError) err = NULL;
		if (!replica_submit(first->r, cmd, s.now_ms, "operator", &err))
			fail("after healing, n1 refuses a change: %s", err->message);
		first->dirty = true;
	}
	settle(60000);
	if (S->verbose)
		for (GList *l = s.events->head; l; l = l->next) {
			event *e = l->data;
			TRACE("left in queue: %s kind %d at %" G_GINT64_FORMAT " vm%d", e->node->name, e->kind, e->at_ms,
			      atoi(e->uuid + 24));
		}
	check_no_double_run();
	check_converged();

	printf("seed %" G_GUINT64_FORMAT ": %u nodes, %u steps, %.1f s simulated, %u power cuts, %u partitions, %u fences, %u VM starts\n",
	       seed, s.n, steps, (double)s.now_ms / 1000, s.stats_crashes, s.stats_partitions, s.stats_fences,
	       s.stats_vm_starts);
	for (unsigned i = 1; i <= s.n; i++) {
		if (s.nodes[i].powered)
			node_power_off(&s.nodes[i]);
		store_db_close(s.nodes[i].db);
	}
	simbus_clear(&s.bus);
	g_queue_free_full(s.events, g_free);
	g_rand_free(s.rng);
	return 0;
}

int main(int argc, char **argv)
{
	return sim_main(argc, argv, "sim-ha", "simulate the HA engine", run, HERD_LOG_INFO);
}
