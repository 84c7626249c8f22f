/*
 * Deterministic simulation of the HA engine.
 *
 * N nodes, each running the node engine that herdd runs (src/ha/engine.c:
 * node agent, coordinator, scheduler, fencing walk and delay, start gating,
 * survivor check) over the real replica (store), on a simulated CPG
 * (virtual synchrony, simbus.c), a fake hypervisor per node (VMs start and
 * stop after simulated delays; it lives on when herdd dies, as libvirtd's
 * guests do) and a fake switched PDU driven through the engine's fence
 * agent runs (an "off" cuts a node's power: its VMs, its herd, its pending
 * work all die), on a simulated clock.  One seed drives everything:
 * operators starting, stopping and moving VMs (one of them sticky to a
 * node) and nodes, and switching nodes over; power cuts and
 * returns; herdd crashing while corosync stays up, and coming back;
 * partitions and merges; fence devices that fail, are slow, or cannot
 * verify; guests that crash or shut themselves down; two-node clusters with
 * the configured fence delay; fence_action off or reboot (the PDU switches
 * the node on again a while after the agent's reboot, or not at all); clean
 * shutdowns of a host (its herdd asked to leave, as at SIGTERM while the
 * system stops: with shutdown_policy migrate its VMs move away first, with
 * failover it exits at once; then corosync stops and the power goes off,
 * and it is switched on again later); HA paused and resumed (herd cluster
 * ha pause: nothing fenced or moved meanwhile); VMs with node sets of two
 * tiers; nodes that lose the cluster's storage
 * (their reach checker reports it unreachable, VM starts on it fail) and
 * get it back; nodes that lose the ping node and get it back (their
 * pinger's verdict, ha/ping.h).
 *
 * After every step: no VM is active (starting, running, paused, stopping) on
 * two powered nodes at once.  When the faults stop: every VM that should run
 * and fits runs, once, on its assigned node — also when one node (of three
 * or more) still lacks the storage; and then no VM that needs it is placed
 * there (those assigned there already may stay).  One other node (of three
 * or more) is left without the ping node: no HA VM runs there at the end
 * unless it is sticky to it or an alert says why it stays.  (It may be
 * placed there for a moment: just after a membership change, before the
 * others have reported, it may be the only node that can take VMs, and
 * then the ping nodes decide nothing.)
 *
 *   sim-ha [--seeds N [--first S] | --seed S] [--steps N] [--verbose]
 */
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "ha/coordinator.h"
#include "ha/engine.h"
#include "ha/facts.h"
#include "ha/ping.h"
#include "ha/reach.h"
#include "ha/sched_json.h"
#include "store/cluster.h"
#include "store/command.h"
#include "store/fence_device.h"
#include "store/node.h"
#include "store/replica.h"
#include "store/rule.h"
#include "store/vm.h"
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
/* The cluster's one storage; VM v needs it when v % 4 == 1 (its XML's disk
 * lies under its path). */
#define STORAGE_UUID "d0000000-0000-4000-8000-000000000001"
#define STORAGE_PATH "/srv/sim"
#define NEEDS_STORAGE(v) ((v) % 4 == 1)

typedef struct simnode simnode;

/* ------------------------------------------------------------------ */
/* Events on the simulated clock                                       */

typedef enum {
	EV_VIRT_DONE, EV_AGENT_DONE, EV_WAKEUP, EV_HERD_START, EV_POWER_ON,
	EV_SHUTDOWN_LEAVE,  /* the engine said its host's shutdown may go on: herdd exits */
	EV_SHUTDOWN_OFF,    /* herdd is gone: corosync and libvirtd stop, the power goes off */
	EV_SHUTDOWN_LATE,   /* the engine's shutdown_timeout_s is well over */
} event_kind;

typedef struct {
	int64_t at_ms;
	uint64_t seq;           /* ties: first scheduled, first run */
	event_kind kind;
	simnode *node;
	unsigned power_cycle;   /* the node's power cycle it belongs to */
	unsigned herd_cycle;    /* and its herdd's life */
	/* EV_VIRT_DONE */
	char uuid[37];
	int op;                 /* 0 start, 1 stop, 2 migrate (to @target, in its
				 * power cycle @run; it converges unless @stuck) */
	bool stuck;
	herd_virt_done done;
	gpointer user;
	/* EV_AGENT_DONE; EV_POWER_ON: the reboot's number */
	uint64_t run;
	char action[8];
	unsigned target;
} event;

/* ------------------------------------------------------------------ */

typedef struct {
	herd_virt base;
	simnode *node;
	GHashTable *vms;        /* uuid -> herd_vm_fact* */
	GHashTable *incoming;   /* uuid -> the source node's id (GUINT) of a migration arriving */
} fakevirt;

/* Starts of VM v fail on node i while broken[i][v] (its disk is missing there). */

struct simnode {
	unsigned id;
	char name[8];
	bool powered;           /* corosync and libvirtd run */
	bool herd_up;           /* herdd runs too */
	unsigned power_cycle;
	unsigned herd_cycle;
	simbus_member bus;      /* herdd's place on the bus: partition and configuration */
	store_db *db;
	replica *r;
	herd_engine *engine;
	fakevirt *virt;
	GHashTable *engine_reqs; /* req ids of the engine's store changes -> herd_engine_submitter + 1 */
	uint32_t ring[MAX_NODES], group[MAX_NODES];
	int64_t wake_due;        /* the earliest wakeup asked for; 0: none */
	bool seen_all;           /* its corosync has seen every node since it started */
	uint64_t reboot_on;      /* the PDU switches it on again (EV_POWER_ON of this number); 0: no */
	bool dirty;
	bool shutting_down;      /* its host shuts down cleanly (until its power is off) */
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
	bool fence_unverified;  /* the PDU's agent does not read the plug back */
	bool fence_reboot;      /* fence_action reboot (else off) */
	bool shutdown_failover; /* shutdown_policy failover (else migrate) */
	uint64_t reboots;       /* numbers EV_POWER_ON */
	unsigned fence_delay_ms;
	char vm_uuids[N_VMS][37];
	bool broken[MAX_NODES + 1][N_VMS];
	bool no_storage[MAX_NODES + 1]; /* node i does not reach the storage */
	bool storage_honest;    /* ... and starts there of VMs that need it fail */
	int apart[2];           /* a strict anti-affinity rule's two VMs, or -1 (no such rule) */
	simnode *lacking;       /* after the faults: the node that still lacks it, or NULL */
	int64_t lacking_since_ms; /* ... since then (its report takes a moment to arrive) */
	bool no_ping[MAX_NODES + 1]; /* node i reaches no ping node */
	simnode *cut_off;       /* after the faults: the node that still reaches none, or NULL */
	unsigned stats_fences, stats_crashes, stats_herd_crashes, stats_partitions, stats_vm_starts;
	unsigned stats_shutdowns, stats_shutdowns_left; /* clean shutdowns; of them left after moving VMs */
} sim;

static sim *S;

static void dump_views(void);
static void recompute_groups(void);
static void node_power_off(simnode *node);
/* What its pinger tells the engine: the verdict on the one ping node (at
 * once, in the simulation: the dampening is the pinger's own). */
static void report_ping(simnode *node)
{
	if (!node->herd_up)
		return;
	g_autoptr(herd_ping) p = herd_ping_new();
	const char *const target[] = { "192.0.2.1" };
	herd_ping_configure(p, target, 1, S->now_ms);
	bool answered = !S->no_ping[node->id];
	herd_ping_round(p, &answered, S->now_ms, 0);
	g_autoptr(json_t) verdict = herd_ping_json(p);
	herd_engine_set_ping(node->engine, verdict);
	node->dirty = true;
}

static void herd_start(simnode *node);
static void herd_stop(simnode *node);
static const herd_vm_fact *active_on(simnode *node, const char *uuid);

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
	e->herd_cycle = node->herd_cycle;
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
	/* Whichever herdd is connected hears of it. */
	if (v->node->herd_up)
		herd_engine_virt_fact(v->node->engine, f, S->now_ms);
}

static bool fv_open(herd_virt *base, GError **error)
{
	/* Connected at once: a fact for every domain, then the connection,
	 * as the libvirt driver reports them. */
	fakevirt *v = (fakevirt *)base;
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val))
		herd_engine_virt_fact(v->node->engine, val, S->now_ms);
	herd_engine_virt_connection(v->node->engine, false);
	return true;
}

static void fv_close(herd_virt *v) {}

static void fv_start(herd_virt *base, const char *uuid, const char *xml, herd_virt_done done, gpointer user)
{
	fakevirt *v = (fakevirt *)base;
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	if (f && f->state != HERD_VM_STOPPED && f->state != HERD_VM_CRASHED) {
		done(NULL, user); /* idempotent */
		return;
	}
	if (S->broken[v->node->id][atoi(uuid + 24)] ||
	    (NEEDS_STORAGE(atoi(uuid + 24)) && S->no_storage[v->node->id] && S->storage_honest)) {
		TRACE("%s: start of vm%d fails (its disk is missing here)", v->node->name, atoi(uuid + 24));
		g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, HERD_ERR_IO,
							   "Cannot access storage file: No such file");
		done(err, user);
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
	if (f->state == HERD_VM_CRASHED || f->state == HERD_VM_INCOMING) {
		/* Nothing runs in a crashed guest, nor in an arriving copy
		 * (its migration then fails at its source): powering it off
		 * only cleans up. */
		bool arriving = f->state == HERD_VM_INCOMING;
		g_hash_table_remove(v->incoming, uuid);
		virt_set(v, uuid, HERD_VM_STOPPED, arriving ? "arriving copy destroyed" : "destroyed after a crash");
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

/* A live migration, as libvirt's peer to peer: the destination holds a
 * paused arriving copy until the source hands the guest over, at once; if
 * either end loses power, or the migration does not converge before its
 * timeout, the arriving copy is destroyed and the guest runs on at its
 * source. */
static void fv_migrate(herd_virt *base, const char *uuid, const herd_migrate_params *p,
		       herd_virt_done done, gpointer user)
{
	fakevirt *v = (fakevirt *)base;
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	simnode *to = NULL;
	for (unsigned i = 1; i <= S->n; i++)
		if (strcmp(S->nodes[i].name, p->to) == 0)
			to = &S->nodes[i];
	const char *why = !f || (f->state != HERD_VM_RUNNING && f->state != HERD_VM_PAUSED) ? "it is not running"
			  : !to || to == v->node || !to->powered || to->bus.partition != v->node->bus.partition
				? "cannot connect to the destination"
								  : NULL;
	if (why) {
		g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_IO, "migration of vm%d: %s",
						    atoi(uuid + 24), why);
		done(err, user);
		return;
	}
	virt_set(v, uuid, HERD_VM_MIGRATING, "migrating");
	g_hash_table_insert(to->virt->incoming, g_strdup(uuid), GUINT_TO_POINTER(v->node->id));
	virt_set(to->virt, uuid, HERD_VM_INCOMING, "migration arriving");
	bool stuck = chance(0.2);
	event *e = schedule(v->node, EV_VIRT_DONE, stuck ? (int64_t)p->timeout_s * 1000 : 100 + rnd(2000));
	g_strlcpy(e->uuid, uuid, sizeof(e->uuid));
	e->op = 2;
	e->target = to->id;
	e->run = to->power_cycle;
	e->stuck = stuck;
	e->done = done;
	e->user = user;
}

/* The arriving copies of migrations from @source die with it (libvirt's
 * destination destroys a migration whose source went away). */
static void incoming_abandoned(simnode *source)
{
	for (unsigned i = 1; i <= S->n; i++) {
		simnode *n = &S->nodes[i];
		if (!n->powered || n == source)
			continue;
		GHashTableIter it;
		gpointer uuid, from;
		g_hash_table_iter_init(&it, n->virt->incoming);
		while (g_hash_table_iter_next(&it, &uuid, &from)) {
			if (GPOINTER_TO_UINT(from) != source->id)
				continue;
			virt_set(n->virt, uuid, HERD_VM_STOPPED, "migration failed: its source is gone");
			g_hash_table_iter_remove(&it);
		}
	}
}

/* EV_VIRT_DONE of a migration from @node. */
static void migration_ends(simnode *node, event *e, bool same_herd)
{
	simnode *to = &S->nodes[e->target];
	/* Over the cluster network: a partition between them ends it too. */
	bool there = to->powered && to->power_cycle == e->run && to->bus.partition == node->bus.partition &&
		     g_hash_table_contains(to->virt->incoming, e->uuid);
	herd_vm_fact *f = g_hash_table_lookup(node->virt->vms, e->uuid);
	g_autoptr(GError) err = NULL;
	if (!f || f->state != HERD_VM_MIGRATING) {
		err = g_error_new_literal(HERD_ERROR, HERD_ERR_IO, "the domain went away while migrating");
	} else if (!there || e->stuck) {
		err = g_error_new_literal(HERD_ERROR, HERD_ERR_IO,
					  !there ? "the destination went away" : "cancelled at its timeout");
		virt_set(node->virt, e->uuid, HERD_VM_RUNNING, "migration failed");
	} else {
		/* Handed over: stopped here and running there in one step. */
		virt_set(node->virt, e->uuid, HERD_VM_STOPPED, "migrated");
		virt_set(to->virt, e->uuid, HERD_VM_RUNNING, "migrated in");
	}
	/* The destination ends its side too (the connection is gone). */
	bool same_target = to->powered && to->power_cycle == e->run;
	if (same_target && g_hash_table_remove(to->virt->incoming, e->uuid) && err)
		virt_set(to->virt, e->uuid, HERD_VM_STOPPED, "migration failed");
	TRACE("%s: migration of vm%d to %s %s", node->name, atoi(e->uuid + 24), to->name,
	      err ? err->message : "done");
	if (same_herd)
		e->done(err, e->user);
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

/* A CD-ROM changed live: no state comes of it; only a guest that runs
 * here has a drive to change. */
static void fv_change_media(herd_virt *base, const char *uuid, const char *device_xml, herd_virt_done done,
			    gpointer user)
{
	fakevirt *v = (fakevirt *)base;
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	if (!f || !herd_vm_state_runs(f->state) || f->state == HERD_VM_STARTING) {
		g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, HERD_ERR_NOT_FOUND,
							   "it is not running on this node");
		done(err, user);
		return;
	}
	done(NULL, user);
}

static GArray *fv_facts(herd_virt *base)
{
	return herd_vm_facts_of_table(((fakevirt *)base)->vms);
}

static bool fv_resources(herd_virt *v, herd_node_resources *out)
{
	/* Two nodes: each can hold every VM, as after a failover it must. */
	uint64_t mib = S->n == 2 ? 2 * NODE_MEMORY_MIB : NODE_MEMORY_MIB;
	out->memory_mib = mib;
	out->free_mib = mib;
	out->cpus = 4;
	return true;
}

static const herd_virt_ops fake_ops = {
	.open = fv_open, .close = fv_close, .start = fv_start, .shutdown = fv_shutdown,
	.destroy = fv_destroy, .reboot = fv_noop, .reset = fv_noop, .suspend = fv_noop,
	.resume = fv_noop, .facts = fv_facts, .resources = fv_resources, .migrate = fv_migrate,
	.change_media = fv_change_media,
};

/* ------------------------------------------------------------------ */
/* Bus (simbus.c): herdd's CPG group                                   */

#define NODE_OF(m) ((simnode *)((char *)(m) - offsetof(simnode, bus)))

static bool bus_send(simnode *node, const void *msg, size_t len)
{
	return node->herd_up && simbus_send(&node->bus, msg, len);
}

static void deliver_to(simnode *node, const simbus_msg *m)
{
	if (!node->herd_up)
		return;
	node->dirty = true;
	if (!m->bytes) {
		replica_confchg(node->r, m->members, m->n_members);
		herd_engine_membership(node->engine, true);
		return;
	}
	gsize len;
	const void *p = g_bytes_get_data(m->bytes, &len);
	herd_wire_header h;
	const void *payload;
	if (herd_wire_decode(p, len, m->sender, &h, &payload, NULL) && !herd_msg_is_store(h.type)) {
		herd_engine_message(node->engine, m->sender, h.type, payload, h.payload_len, S->now_ms);
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

/* Form herdd's configurations anew; corosync's ring (every powered node of
 * a partition) changes at once, and every herdd hears of it. */
static void recompute_groups(void)
{
	simbus_member *up[MAX_NODES];
	unsigned n = 0;
	for (unsigned i = 1; i <= S->n; i++)
		if (S->nodes[i].herd_up)
			up[n++] = &S->nodes[i].bus;
	simbus_recompute(&S->bus, up, n);
	for (unsigned i = 1; i <= S->n; i++) {
		if (S->nodes[i].herd_up) {
			herd_engine_membership(S->nodes[i].engine, false);
			S->nodes[i].dirty = true;
		}
	}
}

/* ------------------------------------------------------------------ */
/* The replica's callbacks                                             */

static bool rep_send(gpointer user, const void *msg, size_t len) { return bus_send(user, msg, len); }

static void rep_done(gpointer user, uint64_t req_id, json_t *result, const GError *error)
{
	simnode *node = user;
	gpointer by = node->engine ? g_hash_table_lookup(node->engine_reqs, &req_id) : NULL;
	if (by) {
		g_hash_table_remove(node->engine_reqs, &req_id);
		herd_engine_committed(node->engine, (herd_engine_submitter)(GPOINTER_TO_INT(by) - 1), error);
	}
	node->dirty = true;
}

static void rep_changed(gpointer user, GPtrArray *changes)
{
	simnode *node = user;
	node->dirty = true;
	if (node->engine)
		herd_engine_store_changed(node->engine, changes);
}

static void rep_failed(gpointer user, const GError *error)
{
	fail("%s: the store failed: %s", ((simnode *)user)->name, error->message);
}

static bool rep_survivor_ok(gpointer user, uint32_t missing)
{
	simnode *node = user;
	return node->engine && herd_engine_survivor_ok(node->engine, missing);
}

static void rep_durable(gpointer user)
{
	simnode *node = user;
	node->dirty = true;
	if (node->engine)
		herd_engine_durable(node->engine);
}

static GHashTable *rep_unfenced_lost(gpointer user)
{
	simnode *node = user;
	return node->engine ? herd_engine_unfenced_lost(node->engine) : NULL;
}

static const replica_callbacks rep_cb = {
	.send = rep_send, .done = rep_done, .changed = rep_changed, .failed = rep_failed,
	.two_node_survivor_ok = rep_survivor_ok, .durable = rep_durable,
	.unfenced_lost = rep_unfenced_lost,
};

/* ------------------------------------------------------------------ */
/* The engine's I/O (herdd's is ha/ha.c)                               */

static void io_view(gpointer user, herd_engine_view *out)
{
	simnode *node = user;
	/* corosync's ring: the powered nodes of its partition. */
	size_t n_ring = 0;
	for (unsigned i = 1; i <= S->n; i++)
		if (S->nodes[i].powered && S->nodes[i].bus.partition == node->bus.partition)
			node->ring[n_ring++] = i;
	store_state *st = replica_state(node->r);
	/* votequorum: a majority of the configured votes; with two nodes
	 * (two_node, which holds wait_for_all) one, once it has seen both. */
	unsigned total = store_state_count(st, STORE_KIND_NODE);
	node->seen_all |= n_ring >= total;
	*out = (herd_engine_view){
		.st = st,
		.ring = node->ring,
		.n_ring = n_ring,
		.group = node->group,
		.n_group = MIN(replica_members(node->r, node->group, MAX_NODES), MAX_NODES),
		.self = node->id,
		.synced = replica_get_phase(node->r) == REPLICA_SYNCED,
		.primary = replica_is_primary(node->r),
		.durable = replica_is_durable(node->r),
		.quorate = 2 * n_ring > total || (total == 2 && n_ring == 1 && node->seen_all),
	};
}

static bool io_send(gpointer user, herd_msg_type type, const void *payload, size_t len)
{
	simnode *node = user;
	size_t n;
	g_autofree void *m = herd_wire_encode(type, node->id, 0, 0, payload, len, &n);
	return bus_send(node, m, n);
}

/*
 * After the faults, a change that places a VM that needs the storage on the
 * node that lacks it (assigns it there or moves it there, anew) is a bug of
 * the scheduler, once the node's report had time to arrive (REPORT_LAG_MS;
 * a coordinator decides on what it was told).  Not a placement: an
 * assignment where it runs already, or where a live migration to that node
 * may have taken it.
 */
#define REPORT_LAG_MS 2000
static void check_placement(simnode *node, json_t *cmd)
{
	size_t i;
	json_t *op;
	json_array_foreach(json_object_get(cmd, "ops"), i, op)
		check_placement(node, op);
	const char *to_node = json_string_value(json_object_get(json_object_get(cmd, "data"), "node"));
	const char *to_move = json_string_value(json_object_get(json_object_get(cmd, "data"), "move_to"));
	const char *uuid = json_string_value(json_object_get(cmd, "uuid"));
	if (!S->lacking || S->now_ms < S->lacking_since_ms + REPORT_LAG_MS ||
	    g_strcmp0(json_string_value(json_object_get(cmd, "kind")), "vm") != 0 || !uuid ||
	    strlen(uuid) != 36 || !NEEDS_STORAGE(atoi(uuid + 24)))
		return;
	const char *there = S->lacking->name;
	store_object *o = store_state_get(replica_state(node->r), STORE_KIND_VM, uuid);
	const store_vm *was = o ? store_vm_of(o) : NULL;
	bool anew = was && g_strcmp0(was->node, there) != 0 && g_strcmp0(was->move_to, there) != 0;
	if (anew && (g_strcmp0(to_node, there) == 0 || g_strcmp0(to_move, there) == 0) &&
	    !active_on(S->lacking, uuid))
		fail("%s places vm%d, which needs the storage, on %s, which does not reach it", node->name,
		     atoi(uuid + 24), there);
}

/*
 * A strict anti-affinity rule is never broken by a placement the engine
 * chose: a change that places one of its VMs (assigns or moves it there,
 * anew) on the node its partner runs on or goes to is a bug.  The rule is
 * there from the start, so no two of them ever ran together before it.
 */
static void check_rules(simnode *node, json_t *cmd)
{
	size_t i;
	json_t *op;
	json_array_foreach(json_object_get(cmd, "ops"), i, op)
		check_rules(node, op);
	const char *uuid = json_string_value(json_object_get(cmd, "uuid"));
	if (S->apart[0] < 0 || g_strcmp0(json_string_value(json_object_get(cmd, "kind")), "vm") != 0 || !uuid)
		return;
	int self = -1;
	for (int k = 0; k < 2; k++)
		if (strcmp(uuid, S->vm_uuids[S->apart[k]]) == 0)
			self = k;
	if (self < 0)
		return;
	json_t *data = json_object_get(cmd, "data");
	const char *to = json_string_value(json_object_get(data, "move_to"));
	if (!to)
		to = json_string_value(json_object_get(data, "node"));
	store_state *st = replica_state(node->r);
	store_object *o = store_state_get(st, STORE_KIND_VM, uuid);
	store_object *p = store_state_get(st, STORE_KIND_VM, S->vm_uuids[S->apart[1 - self]]);
	if (!to || !o || !p)
		return;
	const store_vm *was = store_vm_of(o), *partner = store_vm_of(p);
	bool anew = g_strcmp0(was->node, to) != 0 && g_strcmp0(was->move_to, to) != 0;
	/* The partner is where it runs, or goes to; where its node is off
	 * (a move that cannot end: it is placed anew), nowhere. */
	const char *partner_at = partner->move_to ? partner->move_to : partner->node;
	bool partner_on = false;
	for (unsigned n = 1; n <= S->n; n++) {
		if (strcmp(S->nodes[n].name, to) == 0 && active_on(&S->nodes[n], uuid))
			anew = false; /* it runs there already: not a placement */
		if (g_strcmp0(S->nodes[n].name, partner->node) == 0 && S->nodes[n].powered)
			partner_on = true;
		if (active_on(&S->nodes[n], S->vm_uuids[S->apart[1 - self]]))
			partner_on = true;
	}
	if (anew && partner_on && partner->target_running && g_strcmp0(partner_at, to) == 0)
		fail("%s places vm%d on %s beside vm%d, against strict rule apart", node->name,
		     S->apart[self], to, S->apart[1 - self]);
}

static bool io_submit(gpointer user, json_t *cmd, herd_engine_submitter by, GError **error)
{
	simnode *node = user;
	check_placement(node, cmd);
	check_rules(node, cmd);
	uint64_t id = replica_submit(node->r, cmd, S->now_ms, "herd", error);
	if (!id)
		return false;
	if (S->verbose) {
		g_autofree char *text = json_dumps(cmd, JSON_COMPACT);
		TRACE("%s: engine submits %.160s", node->name, text);
	}
	g_hash_table_insert(node->engine_reqs, g_memdup2(&id, sizeof(id)), GINT_TO_POINTER((int)by + 1));
	return true;
}

/* The simulated PDU's agent: plug I switches node nI. */
static void io_fence_agent(gpointer user, uint64_t run, const herd_fence_target *t, const char *action)
{
	simnode *node = user;
	int64_t took = S->fence_slow ? 1000 + rnd(5000) : 150 + rnd(400);
	event *e = schedule(node, EV_AGENT_DONE, took);
	e->run = run;
	g_strlcpy(e->action, action, sizeof(e->action));
	e->target = t->plug ? (unsigned)atoi(t->plug) : 0;
	if (strcmp(action, "off") == 0 || strcmp(action, "reboot") == 0)
		S->stats_fences++;
	TRACE("%s: fence agent %s of plug %s (done in %" G_GINT64_FORMAT " ms)", node->name, action,
	      t->plug ? t->plug : "-", took);
}

static void io_wakeup(gpointer user, int64_t delay_ms)
{
	simnode *node = user;
	if (delay_ms <= 0) {
		node->dirty = true;
		return;
	}
	int64_t due = S->now_ms + delay_ms;
	if (node->wake_due && node->wake_due <= due)
		return;
	node->wake_due = due;
	schedule(node, EV_WAKEUP, delay_ms);
}

static void io_fenced(gpointer user)
{
	simnode *node = user;
	replica_recheck_primary(node->r);
}

/* The engine is done with its host's shutdown: herdd exits, after this
 * event (the engine is still running). */
static void io_leave(gpointer user, const char *summary)
{
	simnode *node = user;
	if (!node->shutting_down)
		fail("%s: the engine leaves (%s) though its host does not shut down", node->name, summary);
	TRACE("%s: host's shutdown: %s", node->name, summary);
	S->stats_shutdowns_left++;
	schedule(node, EV_SHUTDOWN_LEAVE, 0);
}

static const herd_engine_io engine_io = {
	.view = io_view, .send = io_send, .submit = io_submit, .fence_agent = io_fence_agent,
	.wakeup = io_wakeup, .fenced = io_fenced, .leave = io_leave,
};

/* ------------------------------------------------------------------ */
/* Node life                                                           */

/* herdd starts (boot, or a restart after a crash): its store from disk,
 * a new engine, the hypervisor's VMs as they are. */
/* What its reach checker tells the engine (at once, in the simulation). */
static void report_reach(simnode *node)
{
	if (!node->herd_up)
		return;
	g_autoptr(json_t) reach = S->no_storage[node->id] ?
		json_pack("{s:{s:b,s:s}}", STORAGE_UUID, "ok", 0, "problem", STORAGE_PATH " has no marker file") :
		json_pack("{s:{s:b}}", STORAGE_UUID, "ok", 1);
	g_autoptr(json_t) usage = json_object();
	herd_engine_set_reach(node->engine, reach, usage);
	node->dirty = true;
}

static void herd_start(simnode *node)
{
	g_autoptr(GError) err = NULL;
	node->herd_up = true;
	node->herd_cycle++;
	node->bus.grp = NULL;
	node->wake_due = 0;
	node->r = replica_new(node->id, node->name, node->db, &rep_cb, node, &err);
	if (!node->r)
		fail("%s cannot start: %s", node->name, err->message);
	node->engine_reqs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
	node->engine = herd_engine_new(node->name, &node->virt->base, &engine_io, node);
	node->virt->base.ops->open(&node->virt->base, NULL);
	node->dirty = true;
	report_reach(node);
	report_ping(node);
}

/* herdd dies (crash, or with the power): what it had under way dies with
 * it; the VMs do not (that is libvirtd's). */
static void herd_stop(simnode *node)
{
	node->herd_up = false;
	store_db_rollback(node->db);
	herd_engine_free(node->engine);
	node->engine = NULL;
	replica *r = node->r;
	node->r = NULL;
	replica_free(r);
	g_hash_table_destroy(node->engine_reqs);
	node->engine_reqs = NULL;
	node->bus.grp = NULL;
}

static void node_power_on(simnode *node)
{
	node->powered = true;
	node->reboot_on = 0;
	node->shutting_down = false;
	node->power_cycle++;
	node->seen_all = false;
	node->virt = g_new0(fakevirt, 1);
	node->virt->base.ops = &fake_ops;
	node->virt->node = node;
	node->virt->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	node->virt->incoming = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	herd_start(node);
}

/* A power cut: the node, its VMs and everything it had under way are gone. */
static void node_power_off(simnode *node)
{
	TRACE("%s: POWER OFF", node->name);
	if (node->herd_up)
		herd_stop(node);
	node->powered = false;
	node->shutting_down = false;
	incoming_abandoned(node);
	g_hash_table_destroy(node->virt->incoming);
	g_hash_table_destroy(node->virt->vms);
	g_free(node->virt);
	node->virt = NULL;
}

static void node_run(simnode *node)
{
	if (!node->herd_up)
		return;
	node->dirty = false;
	replica_flush(node->r);
	herd_engine_run(node->engine, S->now_ms);
	replica_flush(node->r);
}

static void run_dirty(void)
{
	for (int rounds = 0; rounds < 20; rounds++) {
		bool any = false;
		for (unsigned i = 1; i <= S->n; i++) {
			if (S->nodes[i].herd_up && S->nodes[i].dirty) {
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

/* What the simulated PDU's agent reports, and does, for @e. */
static void agent_done(event *e)
{
	simnode *node = e->node;
	simnode *target = e->target >= 1 && e->target <= S->n ? &S->nodes[e->target] : NULL;
	bool ok = !S->fence_broken;
	const char *detail = "the PDU does not answer";
	g_autofree char *list = NULL;
	if (ok && strcmp(e->action, "off") == 0) {
		/* The agent dies with its herdd, but what the PDU did is done. */
		if (target && target->powered) {
			node_power_off(target);
			recompute_groups();
		}
		if (target)
			target->reboot_on = 0;
		detail = S->fence_unverified ? "Success: done" : "Success: Powered OFF";
	} else if (ok && strcmp(e->action, "reboot") == 0) {
		/* Off (fencing.py verifies it), then on; the node's corosync
		 * and herd come up after a boot of 0-3 s: maybe before this
		 * result is handled.  Now and then the power-on fails, which
		 * fencing.py only logs. */
		bool on = chance(0.9);
		if (target && target->powered) {
			node_power_off(target);
			recompute_groups();
		}
		if (target && on) {
			target->reboot_on = ++S->reboots;
			event *p = schedule(target, EV_POWER_ON, rnd(3000));
			p->run = target->reboot_on;
		}
		detail = S->fence_unverified ? "Success: done"
		       : on		     ? "Success: Rebooted"
					     : "Success: Rebooted\nERROR: Timed out waiting to power ON";
	} else if (ok && strcmp(e->action, "on") == 0) {
		if (target && !target->powered) {
			TRACE("%s: power on by the PDU", target->name);
			node_power_on(target);
			recompute_groups();
		}
		detail = "Success: Powered ON";
	} else if (ok && strcmp(e->action, "status") == 0) {
		detail = target && target->powered ? "on" : "off";
	} else if (ok && strcmp(e->action, "list") == 0) {
		GString *s = g_string_new(NULL);
		for (unsigned i = 1; i <= MAX_NODES + 3; i++)
			g_string_append_printf(s, "%u,outlet %u\n", i, i);
		list = g_string_free(s, FALSE);
		detail = list;
	}
	if (!node->herd_up || e->herd_cycle != node->herd_cycle)
		return;
	TRACE("%s: fence agent %s of n%u: %s %.40s", node->name, e->action, e->target, ok ? "ok" : "FAILED", detail);
	herd_engine_agent_done(node->engine, e->run, ok, detail, 0.2, S->now_ms);
	node->dirty = true;
}

/* The rest of a host's clean shutdown, once herdd is gone: corosync and
 * libvirtd stop, the power goes off (the VMs still there die with it), and
 * a while later the host is switched on again. */
static void shutdown_power_off(simnode *node)
{
	TRACE("%s: corosync and libvirtd stop; the host powers off", node->name);
	node_power_off(node);
	recompute_groups();
	node->reboot_on = ++S->reboots;
	event *p = schedule(node, EV_POWER_ON, 1000 + rnd(10000));
	p->run = node->reboot_on;
}

/* A clean shutdown of @node's host: its herdd is told (SIGTERM while the
 * system stops) and does what the shutdown policy says. */
static void host_shutdown(simnode *node)
{
	if (!node->powered || node->shutting_down)
		return;
	S->stats_shutdowns++;
	node->shutting_down = true;
	if (!node->herd_up) {
		TRACE("%s: HOST SHUTS DOWN (its herdd is not running)", node->name);
		schedule(node, EV_SHUTDOWN_OFF, 50 + rnd(500));
		return;
	}
	g_autofree char *why = NULL;
	if (!herd_engine_shutdown(node->engine, &why, S->now_ms)) {
		TRACE("%s: HOST SHUTS DOWN; herdd exits at once: %s", node->name, why);
		herd_stop(node);
		recompute_groups();
		schedule(node, EV_SHUTDOWN_OFF, 50 + rnd(500));
		return;
	}
	TRACE("%s: HOST SHUTS DOWN; its VMs move away first", node->name);
	node->dirty = true;
	/* Its engine's deadline, and a little more for the last run. */
	store_state *st = replica_state(node->r);
	int64_t late = store_settings_of(st)->shutdown_timeout_s * 1000 + 1000;
	event *e = schedule(node, EV_SHUTDOWN_LATE, late);
	e->run = (uint64_t)late;
}

static void run_event(event *e)
{
	simnode *node = e->node;
	if (e->kind == EV_POWER_ON) {
		/* The PDU's, for a node that is off: unless something switched
		 * it (off or on) since. */
		if (!node->powered && node->reboot_on == e->run) {
			TRACE("%s: power on again after the PDU's reboot", node->name);
			node_power_on(node);
			recompute_groups();
		}
		return;
	}
	if (!node->powered || e->power_cycle != node->power_cycle) {
		TRACE("%s: event %d dropped (power cycle %u, now %u)", node->name, e->kind, e->power_cycle,
		      node->power_cycle);
		return; /* what a dead node had under way died with it */
	}
	bool same_herd = node->herd_up && e->herd_cycle == node->herd_cycle;
	switch (e->kind) {
	case EV_WAKEUP:
		if (same_herd && e->at_ms == node->wake_due) {
			node->wake_due = 0;
			node->dirty = true;
		}
		break;
	case EV_VIRT_DONE: {
		if (e->op == 2) {
			migration_ends(node, e, same_herd);
			break;
		}
		TRACE("%s: %s of vm%d done", node->name, e->op ? "stop" : "start", atoi(e->uuid + 24));
		herd_vm_fact *f = g_hash_table_lookup(node->virt->vms, e->uuid);
		if (e->op == 0 && f && f->state == HERD_VM_STARTING)
			virt_set(node->virt, e->uuid, HERD_VM_RUNNING, "started");
		else if (e->op == 1 && f && f->state == HERD_VM_STOPPING)
			virt_set(node->virt, e->uuid, HERD_VM_STOPPED, "stopped");
		/* The herdd that asked hears of it; a new one only sees the fact. */
		if (same_herd)
			e->done(NULL, e->user);
		break;
	}
	case EV_AGENT_DONE:
		agent_done(e);
		break;
	case EV_POWER_ON: /* above */
		break;
	case EV_HERD_START:
		/* Not while its host shuts down: the service manager starts
		 * nothing then. */
		if (!node->herd_up && !node->shutting_down) {
			TRACE("%s: herdd starts again", node->name);
			herd_start(node);
			recompute_groups();
		}
		break;
	case EV_SHUTDOWN_LEAVE:
		if (same_herd && node->shutting_down) {
			TRACE("%s: herdd exits for the host's shutdown", node->name);
			herd_stop(node);
			recompute_groups();
			schedule(node, EV_SHUTDOWN_OFF, 50 + rnd(500));
		}
		break;
	case EV_SHUTDOWN_OFF:
		if (node->shutting_down)
			shutdown_power_off(node);
		break;
	case EV_SHUTDOWN_LATE:
		/* The engine leaves by its deadline; systemd would kill it now. */
		if (same_herd && node->shutting_down)
			fail("%s: herdd has not left %" G_GINT64_FORMAT " ms after its host's shutdown began "
			     "(shutdown_timeout_s is over)", node->name, S->now_ms - (e->at_ms - e->run));
		break;
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

/* --verbose: each running herd's view of nodes and VMs, on failure. */
static void dump_views(void)
{
	for (unsigned i = 1; i <= S->n; i++) {
		simnode *node = &S->nodes[i];
		if (!node->herd_up)
			continue;
		store_state *st = replica_state(node->r);
		herd_coord *coord = herd_engine_coordinator(node->engine);
		herd_facts *facts = herd_engine_facts(node->engine);
		GString *s = g_string_new(NULL);
		g_string_append_printf(s, "view of %s (index %" G_GUINT64_FORMAT "%s):", node->name, st->pos.index,
				       replica_is_primary(node->r) ? ", primary" : "");
		g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
		for (guint k = 0; k < nodes->len; k++) {
			store_object *n = nodes->pdata[k];
			g_string_append_printf(s, " %s%s%s", n->name, store_node_of(n)->down ? "(down)" : "",
					       herd_coord_has_fenced(coord, n->name) ? "(fenced here)" : "");
		}
		g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
		for (guint k = 0; k < vms->len; k++) {
			store_object *v = vms->pdata[k];
			const store_vm *sv = store_vm_of(v);
			g_string_append_printf(s, " %s@%s%s%s%s", v->name, sv->node ? sv->node : "-",
					       sv->move_to ? ">" : "", sv->move_to ? sv->move_to : "",
					       sv->target_running ? "" : "(stop)");
		}
		g_string_append_printf(s, "\n   facts (round %" G_GUINT64_FORMAT "):", facts->round);
		GHashTableIter it;
		gpointer val;
		g_hash_table_iter_init(&it, facts->nodes);
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

static const herd_vm_fact *active_on(simnode *node, const char *uuid)
{
	const herd_vm_fact *f = node->powered ? g_hash_table_lookup(node->virt->vms, uuid) : NULL;
	/* An arriving migration is paused without the guest's state: not a copy. */
	return f && herd_vm_state_runs(f->state) && f->state != HERD_VM_CRASHED ? f : NULL;
}

static void check_no_double_run(void)
{
	for (unsigned v = 0; v < N_VMS; v++) {
		unsigned where = 0;
		for (unsigned i = 1; i <= S->n; i++)
			where += active_on(&S->nodes[i], S->vm_uuids[v]) != NULL;
		if (where <= 1)
			continue;
		GString *names = g_string_new(NULL);
		for (unsigned i = 1; i <= S->n; i++) {
			const herd_vm_fact *f = active_on(&S->nodes[i], S->vm_uuids[v]);
			if (f)
				g_string_append_printf(names, " %s(%s)", S->nodes[i].name, herd_vm_state_name(f->state));
		}
		fail("VM vm%u is active on %u nodes at once:%s", v, where, names->str);
	}
}

/* What `herd status` counts as running (herd_engine_vms_active, taken from
 * the reports) is what asking for every VM gives, on every herd, whatever
 * the faults: a VM reported on two nodes, by a node being fenced, or
 * after its node's facts went stale. */
static void check_running_count(void)
{
	for (unsigned i = 1; i <= S->n; i++) {
		simnode *node = &S->nodes[i];
		if (!node->herd_up)
			continue;
		unsigned asked = 0;
		g_autoptr(GPtrArray) vms = store_state_list(replica_state(node->r), STORE_KIND_VM);
		for (guint k = 0; k < vms->len; k++)
			asked += herd_engine_vm_active(node->engine, ((store_object *)vms->pdata[k])->uuid, NULL);
		unsigned counted = herd_engine_vms_active(node->engine);
		if (counted != asked)
			fail("%s counts %u VMs running, but %u are when asked one by one", node->name,
			     counted, asked);
	}
}

/* ------------------------------------------------------------------ */
/* Operators and faults                                                */

static simnode *some_herd(void)
{
	for (int tries = 0; tries < 20; tries++) {
		simnode *n = &S->nodes[1 + rnd(S->n)];
		if (n->herd_up)
			return n;
	}
	return NULL;
}

/* An operator's change, through the one way every change takes. */
static void operator_submit(simnode *node, json_t *cmd)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *text = S->verbose ? json_dumps(cmd, JSON_COMPACT) : NULL;
	if (replica_submit(node->r, cmd, S->now_ms, "operator", &err))
		TRACE("%s: operator: %s", node->name, text);
	else
		TRACE("%s: operator refused: %s", node->name, err->message);
}

static void operator_action(void)
{
	simnode *node = some_herd();
	if (!node || replica_get_phase(node->r) != REPLICA_SYNCED || !replica_is_primary(node->r))
		return;
	store_state *st = replica_state(node->r);
	unsigned what = rnd(11);
	store_object *vm = store_state_get(st, STORE_KIND_VM, S->vm_uuids[rnd(N_VMS)]);
	g_autoptr(json_t) cmd = NULL;
	if (what < 5) {
		cmd = vm ? store_vm_cmd_start(vm) : NULL;
	} else if (what < 7) {
		bool force = chance(0.5);
		cmd = vm ? store_vm_cmd_stop(vm, force) : NULL;
	} else if (what < 9 && vm && store_vm_of(vm)->node && !store_vm_of(vm)->move_to) {
		/* (herd vm migrate refuses a VM that is moving already: a
		 * migration under way keeps its destination) */
		/* herd vm migrate: mostly to a node online in the store (as
		 * herd vm migrate checks), sometimes to any */
		simnode *to = &S->nodes[1 + rnd(S->n)];
		for (int tries = 0; tries < 5 && chance(0.8); tries++) {
			store_object *n = store_state_get_by_name(st, STORE_KIND_NODE, to->name);
			if (n && store_node_of(n)->mode == STORE_NODE_ONLINE && !store_node_of(n)->down &&
			    strcmp(to->name, store_vm_of(vm)->node) != 0)
				break;
			to = &S->nodes[1 + rnd(S->n)];
		}
		/* Sometimes herd node switchover of the VM's node instead: every
		 * VM of it moves but those sticky to it. */
		bool cold_ok = chance(0.3);
		bool switchover = chance(0.25);
		if (strcmp(to->name, store_vm_of(vm)->node) != 0)
			cmd = switchover ? store_vm_cmd_switchover(st, store_vm_of(vm)->node, to->name, cold_ok, NULL)
					 : store_vm_cmd_migrate(vm->uuid, to->name, cold_ok);
	} else if (what == 10 && chance(0.5)) {
		/* herd cluster ha pause|resume */
		store_object *cluster = store_state_cluster(st);
		bool paused = store_settings_of(st)->ha_paused;
		g_autoptr(json_t) change = json_pack("{s:b}", "ha_paused", !paused);
		cmd = cluster ? store_cluster_cmd_settings(cluster, change) : NULL;
		TRACE("%s: operator: HA %s", node->name, paused ? "resume" : "pause");
	} else {
		static const store_node_mode modes[] = { STORE_NODE_ONLINE, STORE_NODE_ONLINE,
							 STORE_NODE_STANDBY, STORE_NODE_MAINTENANCE };
		store_object *n = store_state_get_by_name(st, STORE_KIND_NODE, S->nodes[1 + rnd(S->n)].name);
		unsigned mode = rnd(4);
		cmd = n ? store_node_cmd_mode(st, n, modes[mode], modes[mode] != STORE_NODE_ONLINE && chance(0.5))
			: NULL;
	}
	if (cmd)
		operator_submit(node, cmd);
}

static void guest_trouble(void)
{
	simnode *node = &S->nodes[1 + rnd(S->n)];
	const char *vm = S->vm_uuids[rnd(N_VMS)];
	/* One draw per statement: the order in which a call's arguments are
	 * evaluated is unspecified, and a seed must replay under any compiler. */
	bool crash = chance(0.5);
	herd_vm_fact *f = node->powered ? g_hash_table_lookup(node->virt->vms, vm) : NULL;
	if (f && f->state == HERD_VM_RUNNING)
		virt_set(node->virt, vm, crash ? HERD_VM_CRASHED : HERD_VM_STOPPED,
			 crash ? "crashed" : "shutdown by guest");
}

/* herdd crashes while corosync and the VMs go on; its supervisor starts it
 * again a little later. */
static void herd_crash(simnode *node)
{
	if (!node->herd_up)
		return;
	S->stats_herd_crashes++;
	TRACE("%s: HERDD CRASHES (corosync and its VMs go on)", node->name);
	herd_stop(node);
	recompute_groups();
	/* While its host shuts down nothing starts it again: the shutdown
	 * goes on without it. */
	if (node->shutting_down)
		schedule(node, EV_SHUTDOWN_OFF, 50 + rnd(500));
	else
		schedule(node, EV_HERD_START, 300 + rnd(3000));
}

/* ------------------------------------------------------------------ */

static void bootstrap(void)
{
	json_t *ops = json_array();
	char uuid[37];
	g_autofree char *u = g_strdup_printf("c0000000-0000-4000-8000-%012u", 1);
	/* join_timeout_s short against the simulated time, so that nodes not
	 * seen since a coordinator's power-on are both awaited and fenced. */
	json_t *cluster =
		json_pack("{s:{s:i,s:s,s:i,s:i,s:i,s:s,s:i,s:i,s:s,s:i}}", "settings", "failback_after_s", 2,
			  "admission_control", "warn", "vcpu_overcommit", 4, "join_timeout_s", 5,
			  "fence_delay_ms", (int)S->fence_delay_ms, "fence_action",
			  S->fence_reboot ? "reboot" : "off",
			  /* a migration that does not converge is cancelled within the run */
			  "migration_timeout_min_s", 10, "migration_timeout_per_gib_s", 0,
			  /* a host's shutdown waits for its VMs within the run */
			  "shutdown_policy", S->shutdown_failover ? "failover" : "migrate",
			  "shutdown_timeout_s", 20);
	/* Rebalancing in some runs, eager (short hold, low threshold): its
	 * moves go on while nodes fail and come back. */
	if (rnd(3) == 0) {
		json_t *eager = json_pack("{s:b,s:i,s:i,s:i}", "rebalance", 1, "rebalance_hold_s", 1,
					  "rebalance_threshold_pct", 5, "rebalance_min_gain_pct", 1);
		json_object_update(json_object_get(cluster, "settings"), eager);
		json_decref(eager);
	}
	json_array_append_new(ops, store_cmd_create(STORE_KIND_CLUSTER, u, "sim", cluster));
	json_t *plugs = json_object();
	for (unsigned i = 1; i <= S->n; i++) {
		g_snprintf(uuid, sizeof(uuid), "a0000000-0000-4000-8000-%012u", i);
		/* An address: a live migration goes there. */
		char address[16];
		g_snprintf(address, sizeof(address), "10.0.0.%u", i);
		const char *links[] = { address };
		json_array_append_new(ops, store_node_cmd_create(uuid, S->nodes[i].name, i, links, 1));
		json_object_set_new(plugs, S->nodes[i].name, json_sprintf("%u", i));
	}
	json_array_append_new(ops, store_fence_device_cmd_create("f0000000-0000-4000-8000-000000000001",
								 "pdu", "fence_sim", NULL, plugs, 1));
	json_array_append_new(ops, store_cmd_create(STORE_KIND_STORAGE, STORAGE_UUID, "data",
						    json_pack("{s:s,s:s}", "type", "dir", "path", STORAGE_PATH)));
	json_decref(plugs);
	for (unsigned v = 0; v < N_VMS; v++) {
		g_snprintf(S->vm_uuids[v], 37, "b0000000-0000-4000-8000-%012u", v);
		g_autofree char *name = g_strdup_printf("vm%u", v);
		json_t *data = json_pack("{s:s,s:b,s:i,s:i,s:s,s:i}", "xml", "<domain/>", "ha", v % 3 != 2,
					 "memory_mib", VM_MEMORY_MIB, "vcpus", 1, "target",
					 v < N_VMS / 2 ? "running" : "stopped", "shutdown_timeout_s", 2);
		if (v % 4 == 0)
			json_object_set_new(data, "preferred", json_sprintf("n%u", 1 + v % S->n));
		if (v == 5 || v == 6)
			json_object_set_new(data, "group", json_string("dns"));
		/* Bound to a node: switchovers and modes leave it there (and
		 * the operator's migrations of it are refused).  Not a VM of the
		 * rules below: sticky and strictly apart from a VM that runs
		 * on its node, it could not run at all. */
		if (v == 2)
			json_object_set_new(data, "sticky", json_sprintf("n%u", 1 + v % S->n));
		/* A node set of two tiers (not restricted: a VM that fits runs
		 * once the faults stop, wherever its set's nodes are). */
		if (v % 4 == 3)
			json_object_set_new(data, "nodes",
					    json_pack("[{s:s%,s:i},{s:s%,s:i}]", "node", S->nodes[1 + v % S->n].name,
						      strlen(S->nodes[1 + v % S->n].name), "priority", 2, "node",
						      S->nodes[1 + (v + 1) % S->n].name,
						      strlen(S->nodes[1 + (v + 1) % S->n].name), "priority", 1));
		if (NEEDS_STORAGE(v))
			json_object_set_new(data, "xml_files", json_pack("[s]", STORAGE_PATH "/disk.img"));
		json_array_append_new(ops, store_cmd_create(STORE_KIND_VM, S->vm_uuids[v], name, data));
	}
	/* Affinity rules, in most runs: a strict anti-affinity pair of
	 * running HA VMs (checked: check_rules()), and a together rule,
	 * strict or soft, of two others. */
	S->apart[0] = S->apart[1] = -1;
	if (rnd(4) > 0) {
		S->apart[0] = 0;
		S->apart[1] = 3;
		const char *pair[] = { S->vm_uuids[0], S->vm_uuids[3] };
		json_array_append_new(ops, store_rule_cmd_create("d0000000-0000-4000-8000-000000000001", "apart", true,
								 true, pair, 2));
	}
	if (rnd(2) > 0) {
		const char *pair[] = { S->vm_uuids[1], S->vm_uuids[4] };
		json_array_append_new(ops, store_rule_cmd_create("d0000000-0000-4000-8000-000000000002", "together",
								 false, rnd(2) > 0, pair, 2));
	}
	g_autoptr(json_t) cmd = store_cmd_batch(ops);
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) r = replica_bootstrap(S->nodes[1].r, cmd, ++S->now_ms, "sim", &err);
	if (!r)
		fail("bootstrap failed: %s", err->message);
}

/* The faults have stopped: is every VM that should run running, once, where assigned? */
/* Does an alert of @node's engine about VM @uuid say @words? */
static bool alert_about(simnode *node, const char *uuid, const char *words)
{
	g_autoptr(json_t) status = herd_engine_cluster_status(node->engine);
	size_t k;
	json_t *a;
	json_array_foreach(json_object_get(status, "alerts"), k, a)
		if (g_strcmp0(json_string_value(json_object_get(a, "vm")), uuid) == 0 &&
		    strstr(json_string_value(json_object_get(a, "message")) ?: "", words))
			return true;
	return false;
}

static void check_converged(void)
{
	simnode *any = NULL;
	for (unsigned i = 1; i <= S->n && !any; i++)
		if (S->nodes[i].herd_up)
			any = &S->nodes[i];
	if (!any)
		fail("after the faults stopped, no herd runs");
	store_state *st = replica_state(any->r);
	for (unsigned v = 0; v < N_VMS; v++) {
		store_object *vm = store_state_get(st, STORE_KIND_VM, S->vm_uuids[v]);
		if (!vm)
			fail("VM %s is missing from the configuration", S->vm_uuids[v]);
		const store_vm *sv = store_vm_of(vm);
		unsigned running = 0;
		const char *where = NULL;
		for (unsigned i = 1; i <= S->n; i++) {
			simnode *node = &S->nodes[i];
			herd_vm_fact *f = node->powered ? g_hash_table_lookup(node->virt->vms, vm->uuid) : NULL;
			if (f && (f->state == HERD_VM_RUNNING || f->state == HERD_VM_MIGRATING)) {
				running++;
				where = node->name;
			}
		}
		if (running > 1)
			fail("after the faults stopped, VM %s runs %u times", vm->name, running);
		if (sv->target_running && running == 0) {
			/* Not running is right only when it cannot fit anywhere
			 * — or a strict rule or its anti-affinity group keeps
			 * it off every node that has room (its partner went
			 * where it cannot follow: a strict together rule does
			 * not move the partner), or
			 * it is sticky to a node that others filled (herd
			 * moves no VM to make room: with the node that lost the
			 * ping node closed to HA VMs, they may fill the rest). */
			if (alert_about(any, vm->uuid, "strict rule") ||
			    alert_about(any, vm->uuid, "a VM of its anti-affinity group is there") ||
			    alert_about(any, vm->uuid, "cannot take it now (not enough"))
				continue;
			g_autoptr(json_t) status = herd_engine_cluster_status(any->engine);
			g_autofree char *why = json_dumps(json_object_get(status, "alerts"), JSON_COMPACT);
			fail("after the faults stopped, VM %s should run but does not (assigned to %s; alerts %s)",
			     vm->name, sv->node ? sv->node : "nothing", why ? why : "none");
		}
		if (!sv->target_running && running)
			fail("after the faults stopped, VM %s should be stopped but runs on %s", vm->name, where);
		if (running && S->cut_off && sv->ha && strcmp(where, S->cut_off->name) == 0 &&
		    g_strcmp0(sv->sticky, where) != 0 && !alert_about(any, vm->uuid, "stays on node"))
			fail("after the faults stopped, HA VM %s runs on %s, which reaches no ping node, with no alert that says why",
			     vm->name, where);
		if (sv->target_running && running && (!sv->node || strcmp(sv->node, where) != 0))
			fail("after the faults stopped, VM %s runs on %s but is assigned to %s", vm->name, where,
			     sv->node ? sv->node : "nothing");
	}
}

/* Every node's herd runs, and none is in its host's shutdown. */
static bool all_herds_on(const sim *s)
{
	for (unsigned i = 1; i <= s->n; i++)
		if (!s->nodes[i].herd_up || s->nodes[i].shutting_down)
			return false;
	return true;
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
	/* Two nodes now and then: the fence delay decides who survives a split. */
	s.n = chance(0.2) ? 2 : 3 + rnd(3);
	s.fence_delay_ms = rnd(4) * 1000;
	s.fence_reboot = chance(0.5);
	s.shutdown_failover = chance(0.2);
	simbus_init(&s.bus, s.rng, NULL);
	s.bus.deliver = bus_deliver;
	s.bus.formed = bus_formed;
	s.events = g_queue_new();
	s.storage_honest = true;
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
		} else if (a < 935) {
			s.fence_unverified = !s.fence_unverified;
		} else if (a < 945) {
			herd_crash(node);
		} else if (a < 950) {
			unsigned v = rnd(N_VMS);
			s.broken[node->id][v] = !s.broken[node->id][v];
			TRACE("%s: the disk of vm%u is %s there", node->name, v,
			      s.broken[node->id][v] ? "MISSING" : "back");
		} else if (a < 958) {
			/* Mostly a host whose herd may change the store (it then
			 * moves its VMs); now and then any. */
			simnode *down = node;
			for (int tries = 0; tries < 5 && chance(0.8); tries++) {
				if (down->herd_up && replica_get_phase(down->r) == REPLICA_SYNCED &&
				    replica_is_primary(down->r))
					break;
				down = &s.nodes[1 + rnd(s.n)];
			}
			host_shutdown(down);
		} else if (a < 966) {
			s.no_storage[node->id] = !s.no_storage[node->id];
			TRACE("%s: the storage is %s there", node->name, s.no_storage[node->id] ? "LOST" : "back");
			report_reach(node);
		} else if (a < 972) {
			s.no_ping[node->id] = !s.no_ping[node->id];
			TRACE("%s: the ping node is %s", node->name, s.no_ping[node->id] ? "LOST" : "back");
			report_ping(node);
		}
		run_dirty();
		check_no_double_run();
		check_running_count();
	}

	/* The faults stop: fencing works, every node is on, herdd runs
	 * everywhere, one partition.  A fence already under way may still
	 * switch a node off: switch it on again until everyone stays on. */
	s.fence_broken = false;
	s.fence_slow = false;
	memset(s.broken, 0, sizeof(s.broken));
	for (unsigned i = 1; i <= s.n; i++)
		s.nodes[i].bus.partition = 0;
	/* The storage is back, except on the last node of three or more, which
	 * reports it lost while its hypervisor could start the VMs (so that a
	 * wrong placement would show): no VM that needs it is placed there
	 * (check_placement()); those assigned there already may stay. */
	s.lacking = s.n >= 3 ? &s.nodes[s.n] : NULL;
	s.lacking_since_ms = s.now_ms;
	s.storage_honest = false;
	s.cut_off = s.n >= 3 ? &s.nodes[s.n - 1] : NULL;
	for (unsigned i = 1; i <= s.n; i++) {
		s.no_storage[i] = &s.nodes[i] == s.lacking;
		report_reach(&s.nodes[i]);
		s.no_ping[i] = &s.nodes[i] == s.cut_off;
		report_ping(&s.nodes[i]);
	}
	/* A host's clean shutdown under way goes on to its power-off. */
	for (int round = 0; round < 10; round++) {
		for (unsigned i = 1; i <= s.n; i++) {
			if (!s.nodes[i].powered)
				node_power_on(&s.nodes[i]);
			else if (!s.nodes[i].herd_up && !s.nodes[i].shutting_down)
				herd_start(&s.nodes[i]);
		}
		recompute_groups();
		/* Done once every herd ran through a whole settle: one that
		 * came up at its end (a PDU's reboot) gets its own. */
		bool were_on = all_herds_on(&s);
		settle(10000);
		if (were_on && all_herds_on(&s))
			break;
	}
	/* A node whose host was shut down cleanly got its mode back from its
	 * next herd (an operator's mode ends the mark too). */
	if (s.nodes[1].herd_up) {
		store_state *now = replica_state(s.nodes[1].r);
		for (unsigned i = 1; i <= s.n; i++) {
			store_object *n = store_state_get_by_name(now, STORE_KIND_NODE, s.nodes[i].name);
			if (n && store_node_of(n)->shutdown && s.nodes[i].herd_up)
				fail("node %s still has its shutdown mark with its herd running again",
				     s.nodes[i].name);
		}
	}
	/* Nodes left in standby or maintenance by the operators come back. */
	simnode *first = &s.nodes[1];
	if (!first->herd_up)
		fail("n1 stays off after the faults stopped");
	store_state *st = replica_state(first->r);
	/* HA left paused by the operators is resumed. */
	if (store_settings_of(st)->ha_paused) {
		g_autoptr(json_t) change = json_pack("{s:b}", "ha_paused", false);
		g_autoptr(json_t) cmd = store_cluster_cmd_settings(store_state_cluster(st), change);
		g_autoptr(GError) err = NULL;
		if (!replica_submit(first->r, cmd, s.now_ms, "operator", &err))
			fail("after healing, n1 refuses to resume HA: %s", err->message);
		first->dirty = true;
	}
	for (unsigned i = 1; i <= s.n; i++) {
		store_object *n = store_state_get_by_name(st, STORE_KIND_NODE, s.nodes[i].name);
		if (!n)
			fail("node %s is missing from the configuration", s.nodes[i].name);
		g_autoptr(json_t) cmd = store_node_cmd_mode(st, n, STORE_NODE_ONLINE, false);
		g_autoptr(GError) err = NULL;
		if (!replica_submit(first->r, cmd, s.now_ms, "operator", &err))
			fail("after healing, n1 refuses a change: %s", err->message);
		first->dirty = true;
	}
	/* VMs given up on at a node whose disk was missing: the operator,
	 * having fixed it, starts them again (that clears the record). */
	for (unsigned v = 0; v < N_VMS; v++) {
		store_object *vm = store_state_get(st, STORE_KIND_VM, s.vm_uuids[v]);
		if (!vm || !store_vm_of(vm)->n_failures || !store_vm_of(vm)->target_running)
			continue;
		g_autoptr(json_t) cmd = store_vm_cmd_start(vm);
		g_autoptr(GError) err = NULL;
		if (!replica_submit(first->r, cmd, s.now_ms, "operator", &err))
			fail("after healing, n1 refuses a change: %s", err->message);
	}
	settle(60000);
	if (S->verbose)
		for (GList *l = s.events->head; l; l = l->next) {
			event *e = l->data;
			TRACE("left in queue: %s kind %d at %" G_GINT64_FORMAT " vm%d", e->node->name, e->kind, e->at_ms,
			      atoi(e->uuid + 24));
		}
	check_no_double_run();
	check_running_count();
	check_converged();

	if (sim_print_each)
		printf("seed %" G_GUINT64_FORMAT ": %u nodes, %u steps, %.1f s simulated, %u power cuts, %u herdd crashes, %u partitions, %u fences (%s), %u VM starts, %u clean shutdowns (%s: %u left after their VMs)\n",
		       seed, s.n, steps, (double)s.now_ms / 1000, s.stats_crashes, s.stats_herd_crashes,
		       s.stats_partitions, s.stats_fences, s.fence_reboot ? "reboot" : "off", s.stats_vm_starts,
		       s.stats_shutdowns, s.shutdown_failover ? "failover" : "migrate", s.stats_shutdowns_left);
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
