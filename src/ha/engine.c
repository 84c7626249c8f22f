#include "ha/engine.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "ha/coordinator.h"
#include "ha/facts.h"
#include "ha/rebalance.h"
#include "ha/sched_json.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/vm.h"

#include <string.h>

/* Facts are re-sent at least this often, changes or not. */
#define STATUS_REFRESH_MS 30000
/* How often a node tells how far its live migrations are. */
#define PROGRESS_MS 1000
/* A VM request to another node gives up after this long. */
#define VM_REQUEST_TIMEOUT_MS 60000
/* The host's shutdown: how many times the node's maintenance is asked for
 * when the change is not committed (a membership change caught it). */
#define SHUTDOWN_MARK_ATTEMPTS 3

/* An operator's request on a VM of another node, waiting for its answer. */
typedef struct {
	uint64_t id;
	int64_t deadline_ms;
	herd_virt_done done;
	gpointer user;
} vm_request;

/* Fencing one node from here: after its delay, the walk over its levels. */
typedef struct {
	herd_engine *e;
	char *node;
	int64_t start_at_ms;          /* the two-node tie-break delay ends */
	int64_t started_ms;
	herd_fencer *fencer;          /* NULL until it starts */
	herd_engine_fence_done done;  /* an operator's (herd node fence), or NULL */
	gpointer user;
	unsigned returns_at_off;      /* the node's returns when its last "off" or "reboot" was asked for */
	bool finished;
} fence_walk;

/* What the engine looked at in its last full run (herd_engine_run). */
typedef struct {
	store_state *st;
	store_position pos;
	uint32_t *ring;               /* n_ring ids */
	size_t n_ring;
	uint32_t *group;              /* n_group ids */
	size_t n_group;
	uint32_t self;
	bool synced, primary, durable, quorate;
	GHashTable *departures;       /* a copy of the view's (NULL: none) */
} seen_view;

/* A fence agent run under way: whose, and which of its steps. */
typedef struct {
	fence_walk *walk;
	unsigned step;
} agent_run;

struct herd_engine {
	char *node;
	herd_virt *virt;
	herd_engine_io io;
	gpointer user;
	herd_facts *facts;
	herd_agent *agent;
	herd_coord *coord;
	int64_t now_ms;               /* of the event being handled */
	bool status_due;
	int64_t status_sent_ms;       /* 0: never */
	herd_node_resources resources_sent;
	GHashTable *requests;         /* id -> vm_request* */
	uint64_t next_request;
	GPtrArray *walks;             /* fence_walk* */
	GHashTable *runs;             /* run id -> agent_run* */
	uint64_t next_run;
	herd_engine_view view;        /* of the event being handled */
	GHashTable *in_ring;          /* node ids in the ring at the last look */
	GHashTable *returns;          /* node id -> times it came (back) into the ring */
	GHashTable *synced_with;      /* node ids whose herd had the same store as this one since it started */
	char *refused;                /* why the coordinator's last change was refused */
	json_t *migration;            /* this node's readiness for live migration, or NULL */
	json_t *reach;                /* what this node found of the storages and switches, or NULL */
	json_t *usage;                /* its dir storages' size and free space, or NULL */
	json_t *esan;                 /* its herd-san's state of each eSAN volume, or NULL */
	json_t *fence_standby;        /* its waiting fence agents (ha/fence_pool.h), or NULL */
	/* A run reconciles and coordinates only if something happened since
	 * the last that did (an event, a wakeup asked for by the agent or the
	 * coordinator, another view): with 10,000 VMs each costs milliseconds,
	 * and the 30 s refresh of the facts changes nothing. */
	bool happened;                /* an event since the last full run */
	int64_t due_ms;               /* the agent's or coordinator's earliest wakeup; 0: none */
	seen_view seen;
	/* Live migrations: every member's last PROGRESS (node id -> its
	 * {uuid: progress} object), and when this node last sent its own. */
	GHashTable *progress;
	int64_t progress_sent_ms;     /* 0: its last said that none runs */
	/* The host's shutdown (herd_engine_shutdown()). */
	struct {
		int64_t since_ms;     /* 0: it does not shut down */
		int64_t deadline_ms;  /* shutdown_timeout_s from then */
		bool marked;          /* the node is in maintenance for it */
		unsigned attempts;    /* of the change that marks it */
		bool over;            /* io.leave() was called */
		GHashTable *here;     /* uuids of the VMs here when it was marked */
		char *waiting;        /* what was logged last as still leaving */
	} shutdown;
	/* This node's own changes under way (HERD_SUBMIT_NODE), in the order
	 * submitted, which is the order their answers come in: node_change. */
	GQueue *node_changes;
	int64_t return_retry_ms;      /* ending the shutdown mark failed: again then */
};

/* What a change of this node's own was for. */
typedef enum { NODE_CHANGE_SHUTDOWN = 1, NODE_CHANGE_RETURN } node_change;

/* Something happened that the next run must act on: run soon. */
static void run_soon(herd_engine *e)
{
	e->happened = true;
	e->io.wakeup(e->user, 0);
}

static void status_soon(herd_engine *e)
{
	e->status_due = true;
	run_soon(e);
}

static store_state *state(herd_engine *e)
{
	return e->view.st;
}

/*
 * Look at the cluster (at every event; the agent and coordinator read it),
 * and count each node's returns into corosync's ring: a fence counts only
 * if its node has not come back since its power was cut (it may have been
 * switched on again while the walk waited for another agent).  Every ring
 * change is an event, so no return goes unseen.
 */
static void look(herd_engine *e)
{
	e->io.view(e->user, &e->view);
	for (size_t i = 0; e->view.synced && i < e->view.n_group; i++)
		g_hash_table_add(e->synced_with, GUINT_TO_POINTER(e->view.group[i]));
	/* Asked once per VM by the API's lists: the ring rarely changed. */
	bool same = e->view.n_ring == g_hash_table_size(e->in_ring);
	for (size_t i = 0; same && i < e->view.n_ring; i++)
		same = g_hash_table_contains(e->in_ring, GUINT_TO_POINTER(e->view.ring[i]));
	if (same)
		return;
	g_autoptr(GHashTable) now = g_hash_table_new(g_direct_hash, g_direct_equal);
	for (size_t i = 0; i < e->view.n_ring; i++) {
		gpointer id = GUINT_TO_POINTER(e->view.ring[i]);
		g_hash_table_add(now, id);
		if (!g_hash_table_contains(e->in_ring, id))
			g_hash_table_insert(e->returns, id,
					    GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(e->returns, id)) + 1));
	}
	g_hash_table_steal_all(e->in_ring);
	g_hash_table_unref(e->in_ring);
	e->in_ring = g_steal_pointer(&now);
}

static unsigned returns_of(herd_engine *e, const char *node)
{
	uint32_t id = store_node_id(state(e), node);
	return GPOINTER_TO_UINT(g_hash_table_lookup(e->returns, GUINT_TO_POINTER(id)));
}

static const char *name_of(herd_engine *e, uint32_t nodeid)
{
	store_object *n = store_node_by_id(state(e), nodeid);
	return n ? n->name : NULL;
}

/* ------------------------------------------------------------------ */
/* STATUS: this node's facts                                           */

static void send_status(herd_engine *e)
{
	e->status_due = false;
	e->status_sent_ms = e->now_ms;
	herd_node_resources res = { 0 };
	e->virt->ops->resources(e->virt, &res);
	e->resources_sent = res;
	g_autoptr(GArray) facts = herd_agent_facts(e->agent);
	g_autoptr(json_t) coord = herd_coord_status(e->coord);
	g_autoptr(json_t) failures = herd_agent_start_failures(e->agent);
	g_autoptr(json_t) handed = herd_agent_handed(e->agent);
	g_autoptr(json_t) pending = herd_agent_pending(e->agent);
	/* eSAN states (sync progress moves every second) go with the usage:
	 * shown, never decided on. */
	g_autoptr(json_t) usage = e->usage ? json_copy(e->usage) : json_object();
	if (e->esan && json_object_size(e->esan))
		json_object_set(usage, "esan", e->esan);
	herd_node_report report = {
		.name = e->node,
		.index = state(e)->pos.index,
		.vm_facts = facts,
		.resources = res,
		.virt_ok = herd_agent_virt_ok(e->agent),
		.errors = herd_agent_errors(e->agent),
		.start_failures = failures,
		.handed = handed,
		.pending = pending,
		.coordinator = coord,
		.migration = e->migration,
		.seen = herd_coord_seen(e->coord),
		.reach = e->reach,
		.fence_standby = e->fence_standby,
		.usage = usage,
	};
	size_t len;
	g_autofree char *payload = herd_facts_encode(&report, &len);
	e->io.send(e->user, HERD_MSG_STATUS, payload, len);
}

/* PROGRESS: this node's live migrations, every PROGRESS_MS while any
 * runs, and once more when the last one has ended.  Soft state apart from
 * STATUS: it changes every second, and STATUS carries every VM.  Returns
 * when it is due again (0: not). */
static int64_t send_progress(herd_engine *e, int64_t now_ms)
{
	g_autoptr(json_t) vms = herd_agent_migrations(e->agent);
	bool any = json_object_size(vms) > 0;
	if (!any && !e->progress_sent_ms)
		return 0;
	if (any && e->progress_sent_ms && now_ms - e->progress_sent_ms < PROGRESS_MS &&
	    now_ms >= e->progress_sent_ms)
		return PROGRESS_MS - (now_ms - e->progress_sent_ms);
	g_autoptr(json_t) msg = json_pack("{s:O}", "vms", vms);
	g_autofree char *payload = json_dumps(msg, JSON_COMPACT);
	e->io.send(e->user, HERD_MSG_PROGRESS, payload, strlen(payload));
	e->progress_sent_ms = any ? now_ms : 0;
	return any ? PROGRESS_MS : 0;
}

static void on_progress(herd_engine *e, uint32_t sender, const void *payload, size_t len)
{
	json_t *j = json_loadb(payload, len, 0, NULL);
	json_t *vms = json_object_get(j, "vms");
	if (!json_is_object(vms)) {
		log_warn("dropped a malformed PROGRESS message from node %u", sender);
		json_decref(j);
		return;
	}
	if (json_object_size(vms))
		g_hash_table_insert(e->progress, GUINT_TO_POINTER(sender), json_incref(vms));
	else
		g_hash_table_remove(e->progress, GUINT_TO_POINTER(sender));
	json_decref(j);
}

/* ------------------------------------------------------------------ */
/* The agent's and the coordinator's callbacks                         */

static void on_changed(gpointer user)
{
	status_soon(user);
}

static void on_wakeup(gpointer user, int64_t delay_ms)
{
	herd_engine *e = user;
	if (delay_ms <= 0) {
		run_soon(e);
		return;
	}
	int64_t due = e->now_ms + delay_ms;
	e->due_ms = e->due_ms ? MIN(e->due_ms, due) : due;
	e->io.wakeup(e->user, delay_ms);
}

static const herd_agent_io agent_io = {
	.changed = on_changed,
	.wakeup = on_wakeup,
};

static bool coord_submit(gpointer user, json_t *cmd)
{
	herd_engine *e = user;
	g_autoptr(GError) err = NULL;
	if (!e->io.submit(e->user, cmd, HERD_SUBMIT_COORDINATOR, &err)) {
		/* It asks again at every run while the reason lasts: say it once. */
		const char *why = err ? err->message : "?";
		if (g_strcmp0(why, e->refused) != 0) {
			log_warn("the coordinator's change was refused: %s", why);
			g_free(e->refused);
			e->refused = g_strdup(why);
		}
		return false;
	}
	g_clear_pointer(&e->refused, g_free);
	return true;
}

static void start_fence(herd_engine *e, const char *node, herd_engine_fence_done done,
			gpointer user);

static void coord_fence(gpointer user, const char *node)
{
	start_fence(user, node, NULL, NULL);
}

static const herd_coord_io coord_io = {
	.submit = coord_submit,
	.fence = coord_fence,
	.wakeup = on_wakeup,
	.changed = on_changed,
};

/* ------------------------------------------------------------------ */
/* Fencing                                                             */

/* In a two-node cluster every node but the lowest waits a little before
 * fencing, so that of two nodes fencing each other the first one wins. */
static int64_t fence_delay_ms(herd_engine *e)
{
	store_state *st = state(e);
	if (store_state_count(st, STORE_KIND_NODE) != 2)
		return 0;
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++)
		if (store_node_of(nodes->pdata[i])->nodeid < e->view.self)
			return store_settings_of(st)->fence_delay_ms;
	return 0;
}

static void walk_run(gpointer user, unsigned step, const herd_fence_target *t, const char *action)
{
	fence_walk *w = user;
	herd_engine *e = w->e;
	uint64_t id = e->next_run++;
	agent_run *r = g_new0(agent_run, 1);
	r->walk = w;
	r->step = step;
	g_hash_table_insert(e->runs, g_memdup2(&id, sizeof(id)), r);
	/* A reboot cuts the power too.  The node it switches on again may
	 * be back in the ring before the walk ends: that fails the walk, as
	 * a return after an "off" does (back before its fence is in the
	 * store, it may start its VMs while they start elsewhere). */
	if (strcmp(action, "off") == 0 || strcmp(action, "reboot") == 0)
		w->returns_at_off = returns_of(e, w->node);
	e->io.fence_agent(e->user, id, t, action);
}

static void walk_done(gpointer user, bool ok, const char *devices, const char *detail,
		      double agent_seconds)
{
	fence_walk *w = user;
	herd_engine *e = w->e;
	w->finished = true;
	g_autofree char *stale = NULL;
	if (ok && returns_of(e, w->node) != w->returns_at_off) {
		ok = false;
		detail = stale = g_strdup_printf("node %s came back while it was being fenced (%s)", w->node,
						 detail);
	}
	log_info("fencing node %s %s after %.3f s (fence agents %.3f s): %s", w->node,
		 ok ? "succeeded" : "FAILED", (double)(e->now_ms - w->started_ms) / 1000, agent_seconds,
		 detail);
	herd_coord_fenced(e->coord, w->node, ok, devices, detail, e->now_ms);
	/* A lone node of two that fenced its peer may change the store. */
	e->io.fenced(e->user);
	if (w->done)
		w->done(ok, devices, detail, agent_seconds, w->user);
	run_soon(e);
}

static const herd_fencer_io fencer_io = {
	.run = walk_run,
	.done = walk_done,
};

static void walk_begin(fence_walk *w)
{
	herd_engine *e = w->e;
	GPtrArray *targets = herd_fence_targets(state(e), w->node);
	if (targets->len == 0) {
		g_ptr_array_free(targets, TRUE);
		g_autofree char *detail = g_strdup_printf("no fence device has a plug for node %s", w->node);
		walk_done(w, false, "", detail, 0);
		return;
	}
	w->fencer = herd_fencer_new(w->node, targets, store_settings_of(state(e))->fence_action,
				    &fencer_io, w);
	herd_fencer_begin(w->fencer);
}

static void walk_free(fence_walk *w)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, w->e->runs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (((agent_run *)v)->walk == w)
			g_hash_table_iter_remove(&it);
	herd_fencer_free(w->fencer);
	g_free(w->node);
	g_free(w);
}

/* Start the walks whose delay is over; forget the finished ones; the next
 * delay to wake up for, or 0. */
static int64_t walks_step(herd_engine *e)
{
	int64_t next = 0;
	for (guint i = 0; i < e->walks->len;) {
		fence_walk *w = e->walks->pdata[i];
		if (!w->fencer && !w->finished && w->start_at_ms <= e->now_ms)
			walk_begin(w);
		if (w->finished) {
			g_ptr_array_remove_index(e->walks, i);
			continue;
		}
		if (!w->fencer) {
			int64_t left = w->start_at_ms - e->now_ms;
			next = next ? MIN(next, left) : left;
		}
		i++;
	}
	return next;
}

static void start_fence(herd_engine *e, const char *node, herd_engine_fence_done done, gpointer user)
{
	/* One walk per node at a time: an operator's fence and the
	 * coordinator's would switch it twice and report each other's end. */
	for (guint i = 0; i < e->walks->len; i++) {
		fence_walk *under_way = e->walks->pdata[i];
		if (!under_way->finished && strcmp(under_way->node, node) == 0) {
			if (done && !under_way->done) {
				under_way->done = done;
				under_way->user = user;
			} else if (done) {
				done(false, "", "A fence of this node is under way already.", 0, user);
			}
			return;
		}
	}
	fence_walk *w = g_new0(fence_walk, 1);
	w->e = e;
	w->node = g_strdup(node);
	w->started_ms = e->now_ms;
	w->done = done;
	w->user = user;
	int64_t delay = done ? 0 : fence_delay_ms(e);
	w->start_at_ms = e->now_ms + delay;
	if (delay > 0)
		log_info("fencing %s after a delay of %" G_GINT64_FORMAT " ms (two-node tie-break)", node,
			 delay);
	g_ptr_array_add(e->walks, w);
	walks_step(e);
	if (!w->finished && !w->fencer)
		e->io.wakeup(e->user, delay);
}

void herd_engine_agent_done(herd_engine *e, uint64_t run, bool ok, const char *detail, double secs,
			    int64_t now_ms)
{
	e->now_ms = now_ms;
	e->happened = true;
	look(e);
	agent_run *r = g_hash_table_lookup(e->runs, &run);
	if (!r)
		return; /* its walk was abandoned */
	fence_walk *w = r->walk;
	unsigned step = r->step;
	g_hash_table_remove(e->runs, &run);
	herd_fencer_result(w->fencer, step, ok, detail, secs);
	walks_step(e);
}

void herd_engine_fence_now(herd_engine *e, const char *node, herd_engine_fence_done done,
			   gpointer user, int64_t now_ms)
{
	e->now_ms = now_ms;
	e->happened = true;
	look(e);
	start_fence(e, node, done, user);
}

/* ------------------------------------------------------------------ */
/* The run                                                             */

static herd_coord_view coord_view(herd_engine *e)
{
	const herd_engine_view *v = &e->view;
	return (herd_coord_view){
		.st = v->st,
		.facts = e->facts,
		.ring = v->ring,
		.n_ring = v->n_ring,
		.group = v->group,
		.n_group = v->n_group,
		.self = v->self,
		.quorate = v->synced && v->quorate,
		.store_writable = v->synced && v->primary,
		.departures = v->departures,
		.now_ms = e->now_ms,
	};
}

static bool node_in_maintenance(herd_engine *e)
{
	store_object *me = store_state_get_by_name(state(e), STORE_KIND_NODE, e->node);
	return me && store_node_of(me)->mode == STORE_NODE_MAINTENANCE;
}

/* Answer the requests to other nodes that timed out; the next deadline, or 0. */
static int64_t expire_requests(herd_engine *e)
{
	int64_t next = 0;
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, e->requests);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		vm_request *q = v;
		if (q->deadline_ms > e->now_ms) {
			int64_t left = q->deadline_ms - e->now_ms;
			next = next ? MIN(next, left) : left;
			continue;
		}
		g_hash_table_iter_steal(&it);
		g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
						    "The node running the VM did not answer within %d s.",
						    VM_REQUEST_TIMEOUT_MS / 1000);
		q->done(err, q->user);
		g_free(q);
	}
	return next;
}

/* What the other members of the group report active (see herd_agent_gate:
 * starting, running, paused or stopping),
 * or NULL while one of them has not reported since the last change. */
static GHashTable *active_elsewhere(herd_engine *e)
{
	for (size_t i = 0; i < e->view.n_group; i++)
		if (e->view.group[i] != e->view.self && !herd_facts_fresh(e->facts, e->view.group[i]))
			return NULL;
	GHashTable *out = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t i = 0; i < e->view.n_group; i++) {
		if (e->view.group[i] == e->view.self)
			continue;
		herd_node_facts *n = herd_facts_fresh(e->facts, e->view.group[i]);
		GHashTableIter it;
		gpointer v;
		g_hash_table_iter_init(&it, n->vms);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			herd_vm_fact *f = v;
			/* A crashed guest's QEMU is gone: it is not active there.
			 * A migration arriving there is: until it has ended
			 * (running there, or destroyed), nothing starts it here. */
			if (f->state != HERD_VM_STOPPED && f->state != HERD_VM_CRASHED)
				g_hash_table_insert(out, f->uuid, n->name);
		}
	}
	return out;
}

/* Why herds left, as node id -> reason: NULL and empty alike. */
static bool departures_equal(GHashTable *a, GHashTable *b)
{
	guint n = a ? g_hash_table_size(a) : 0;
	if (n != (b ? g_hash_table_size(b) : 0))
		return false;
	if (n == 0)
		return true;
	GHashTableIter it;
	gpointer id, why;
	g_hash_table_iter_init(&it, a);
	while (g_hash_table_iter_next(&it, &id, &why)) {
		const char *other = g_hash_table_lookup(b, id);
		if (!other || strcmp(other, why) != 0)
			return false;
	}
	return true;
}

static GHashTable *departures_copy(GHashTable *d)
{
	if (!d || g_hash_table_size(d) == 0)
		return NULL;
	GHashTable *copy = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	GHashTableIter it;
	gpointer id, why;
	g_hash_table_iter_init(&it, d);
	while (g_hash_table_iter_next(&it, &id, &why))
		g_hash_table_insert(copy, id, g_strdup(why));
	return copy;
}

/* Does the view differ from the one of the last full run? */
static bool view_changed(herd_engine *e)
{
	const herd_engine_view *v = &e->view;
	const seen_view *s = &e->seen;
	return v->st != s->st || memcmp(&v->st->pos, &s->pos, sizeof(s->pos)) != 0 ||
	       v->n_ring != s->n_ring || memcmp(v->ring, s->ring, v->n_ring * sizeof(*v->ring)) != 0 ||
	       v->n_group != s->n_group ||
	       memcmp(v->group, s->group, v->n_group * sizeof(*v->group)) != 0 || v->self != s->self ||
	       v->synced != s->synced || v->primary != s->primary || v->durable != s->durable ||
	       v->quorate != s->quorate || !departures_equal(v->departures, s->departures);
}

static void view_remember(herd_engine *e)
{
	const herd_engine_view *v = &e->view;
	seen_view *s = &e->seen;
	g_free(s->ring);
	g_free(s->group);
	if (s->departures)
		g_hash_table_destroy(s->departures);
	*s = (seen_view){
		.st = v->st,
		.pos = v->st->pos,
		.ring = g_memdup2(v->ring, v->n_ring * sizeof(*v->ring)),
		.n_ring = v->n_ring,
		.group = g_memdup2(v->group, v->n_group * sizeof(*v->group)),
		.n_group = v->n_group,
		.self = v->self,
		.synced = v->synced,
		.primary = v->primary,
		.durable = v->durable,
		.quorate = v->quorate,
		.departures = departures_copy(v->departures),
	};
}

/* Reconcile and coordinate: level-triggered, a function of what the
 * engine sees and of now. */
static void reconcile_and_coordinate(herd_engine *e, int64_t now_ms)
{
	e->happened = false;
	e->due_ms = 0;
	view_remember(e);
	herd_coord_view v = coord_view(e);
	/* The agent acts only on a store in sync with a quorate partition:
	 * stale local state must never start a VM that runs elsewhere.  It
	 * starts a VM only on an assignment that is durable on every member,
	 * or a VM started on a change that is then lost would run twice, and
	 * only when no other member reports it.  In maintenance it starts
	 * nothing, but still stops what moves away: that is how the node's
	 * VMs leave it. */
	g_autoptr(GHashTable) elsewhere = active_elsewhere(e);
	g_autoptr(GHashTable) members = elsewhere ? g_hash_table_new(g_str_hash, g_str_equal) : NULL;
	for (size_t i = 0; members && i < e->view.n_group; i++) {
		const char *name = name_of(e, e->view.group[i]);
		if (name)
			g_hash_table_add(members, (gpointer)name);
	}
	herd_agent_gate gate = {
		.may_act = v.store_writable,
		.may_start = e->view.durable && !node_in_maintenance(e),
		.elsewhere = elsewhere,
		.members = members,
	};
	herd_agent_reconcile(e->agent, v.st, &gate, now_ms);
	herd_coord_run(e->coord, &v);
}

/* ------------------------------------------------------------------ */
/* The host's shutdown, and the node's return                          */

/* Changes to the store made here now would be committed (in sync with a
 * quorate partition that may change it). */
static bool store_writable(herd_engine *e)
{
	return e->view.synced && e->view.primary && e->view.quorate;
}

static store_object *own_node(herd_engine *e)
{
	return store_state_get_by_name(state(e), STORE_KIND_NODE, e->node);
}

static bool submit_node_change(herd_engine *e, json_t *cmd, node_change what, GError **error)
{
	if (!e->io.submit(e->user, cmd, HERD_SUBMIT_NODE, error))
		return false;
	g_queue_push_tail(e->node_changes, GINT_TO_POINTER(what));
	return true;
}

static void shutdown_leave(herd_engine *e, const char *summary)
{
	e->shutdown.over = true;
	log_info("the host's shutdown: %s", summary);
	e->io.leave(e->user, summary);
}

bool herd_engine_shutdown(herd_engine *e, char **why, int64_t now_ms)
{
	e->now_ms = now_ms;
	look(e);
	if (e->shutdown.since_ms)
		return true;
	store_object *me = own_node(e);
	const store_settings *s = store_settings_of(state(e));
	if (!me) {
		*why = g_strdup("this node is not a node of a cluster (its store has no node of its name)");
		return false;
	}
	if (s->shutdown_policy == STORE_SHUTDOWN_FAILOVER) {
		*why = g_strdup("the cluster's shutdown_policy is failover: the others fence this node and "
				"restart its HA VMs");
		return false;
	}
	if (!store_writable(e)) {
		*why = g_strdup("this node cannot go into maintenance: its store is not in sync with a "
				"quorate partition; the others fence it and restart its HA VMs");
		return false;
	}
	const store_node *sn = store_node_of(me);
	e->shutdown.since_ms = now_ms;
	e->shutdown.deadline_ms = now_ms + s->shutdown_timeout_s * 1000;
	if (sn->mode == STORE_NODE_MAINTENANCE && !sn->shutdown) {
		/* An operator's maintenance: kept as it is (and after the host
		 * is back); its VMs are leaving or gone already. */
		log_info("the host shuts down: node %s is in maintenance already; herd leaves once its VMs "
			 "have left, or in %lld s (shutdown_timeout_s)", e->node, s->shutdown_timeout_s);
		e->shutdown.marked = true;
	} else {
		g_autoptr(json_t) cmd = store_node_cmd_shutdown(state(e), me, now_ms);
		g_autoptr(GError) err = NULL;
		e->shutdown.attempts = 1;
		if (!submit_node_change(e, cmd, NODE_CHANGE_SHUTDOWN, &err)) {
			e->shutdown.since_ms = 0;
			*why = g_strdup_printf("this node could not go into maintenance (%s); the others fence "
					       "it and restart its HA VMs", err ? err->message : "?");
			return false;
		}
		log_info("the host shuts down: node %s goes into maintenance (shutdown_policy migrate) and its "
			 "VMs move away; herd leaves once they have, or in %lld s (shutdown_timeout_s)",
			 e->node, s->shutdown_timeout_s);
	}
	run_soon(e);
	return true;
}

/* This node's action in @plan for the VM @uuid that takes it elsewhere:
 * where to, or NULL. */
static const char *planned_away(herd_engine *e, const sched_plan *plan, const char *uuid)
{
	for (guint i = 0; i < plan->actions->len; i++) {
		const sched_action *a = &g_array_index(plan->actions, sched_action, i);
		if (!a->vm || strcmp(a->vm, uuid) != 0)
			continue;
		if (a->type == SCHED_MOVE && a->move_to && strcmp(a->move_to, e->node) != 0)
			return a->move_to;
		if (a->type == SCHED_ASSIGN && a->node && strcmp(a->node, e->node) != 0)
			return a->node;
	}
	return NULL;
}

/* The plan's word on why the VM @uuid stays, or NULL. */
static const char *planned_alert(const sched_plan *plan, const char *uuid)
{
	for (guint i = 0; i < plan->alerts->len; i++) {
		const sched_alert *a = &g_array_index(plan->alerts, sched_alert, i);
		if (a->vm && strcmp(a->vm, uuid) == 0)
			return a->message;
	}
	return NULL;
}

static gint by_object_name(gconstpointer a, gconstpointer b)
{
	const store_object *x = *(store_object *const *)a, *y = *(store_object *const *)b;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->uuid, y->uuid);
}

/* The VMs to run that run here or are assigned here, by name. */
static GPtrArray *vms_here(herd_engine *e)
{
	store_state *st = state(e);
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *out = g_ptr_array_new();
	GHashTable *mine = store_vms_assigned_to(st, e->node);
	GHashTableIter it;
	gpointer v;
	if (mine)
		g_hash_table_iter_init(&it, mine);
	while (mine && g_hash_table_iter_next(&it, NULL, &v))
		if (store_vm_of(v)->target_running && g_hash_table_add(seen, ((store_object *)v)->uuid))
			g_ptr_array_add(out, v);
	g_autoptr(GArray) facts = herd_agent_facts(e->agent);
	for (guint i = 0; i < facts->len; i++) {
		const herd_vm_fact *f = &g_array_index(facts, herd_vm_fact, i);
		if (f->state == HERD_VM_STOPPED || f->state == HERD_VM_CRASHED)
			continue;
		store_object *vm = store_state_get(st, STORE_KIND_VM, f->uuid);
		if (vm && store_vm_of(vm)->target_running && g_hash_table_add(seen, vm->uuid))
			g_ptr_array_add(out, vm);
	}
	g_ptr_array_sort(out, by_object_name);
	return out;
}

/*
 * While the host shuts down: is any VM still leaving?  Leaving: migrating
 * from here, moving to another node, running here though assigned
 * elsewhere (its move is ending), or one that the scheduler moves away
 * (this node's own plan on the facts it has: the coordinator's is on the
 * same).  Staying: sticky to this node, or one the scheduler does not move
 * (no node can take it; its alert says why).  Leave once nothing leaves,
 * or at the deadline, whatever is left.
 */
static void shutdown_check(herd_engine *e)
{
	if (!e->shutdown.since_ms || e->shutdown.over)
		return;
	bool late = e->now_ms >= e->shutdown.deadline_ms;
	long long timeout_s = (e->shutdown.deadline_ms - e->shutdown.since_ms) / 1000;
	if (!e->shutdown.marked && !late)
		return;
	store_object *me = own_node(e);
	if (!me || (e->shutdown.marked && store_node_of(me)->mode != STORE_NODE_MAINTENANCE)) {
		g_autofree char *summary = g_strdup_printf(
			"node %s was set %s meanwhile (an operator's mode wins): herd leaves now, and the "
			"others fence the node if it is lost",
			e->node, me ? store_node_mode_name(store_node_of(me)->mode) : "out of the cluster");
		shutdown_leave(e, summary);
		return;
	}
	g_autoptr(GPtrArray) here = vms_here(e);
	g_autoptr(json_t) migrating = herd_agent_migrations(e->agent);
	g_autoptr(herd_sched_input) hi = NULL;
	g_autoptr(sched_plan) plan = NULL;
	g_autoptr(GString) leaving = g_string_new(NULL);
	g_autoptr(GString) staying = g_string_new(NULL);
	unsigned n_leaving = 0, n_staying = 0;
	for (guint i = 0; i < here->len; i++) {
		store_object *vm = here->pdata[i];
		const store_vm *v = store_vm_of(vm);
		bool assigned = g_strcmp0(v->node, e->node) == 0;
		json_t *m = json_object_get(migrating, vm->uuid);
		const char *to = NULL, *why = NULL;
		if (m)
			to = json_string_value(json_object_get(m, "to"));
		else if (!assigned)
			to = v->node ? v->node : "(nowhere yet)";
		else if (v->move_to && strcmp(v->move_to, e->node) != 0)
			to = v->move_to;
		else if (v->sticky && strcmp(v->sticky, e->node) == 0)
			why = "sticky to this node";
		else {
			if (!plan) {
				herd_coord_view cv = coord_view(e);
				hi = herd_sched_input_build(&cv, NULL, NULL, NULL, NULL);
				plan = sched_plan_compute(herd_sched_input_get(hi));
			}
			to = planned_away(e, plan, vm->uuid);
			why = to ? NULL : planned_alert(plan, vm->uuid);
			if (!to && !why)
				why = "the scheduler does not move it";
		}
		if (to) {
			g_string_append_printf(leaving, "%s%s (to %s)", n_leaving ? ", " : "", vm->name, to);
			n_leaving++;
		} else {
			g_string_append_printf(staying, "%s%s (%s)", n_staying ? ", " : "", vm->name, why);
			n_staying++;
		}
	}
	if (!e->shutdown.here) {
		e->shutdown.here = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		for (guint i = 0; i < here->len; i++)
			g_hash_table_add(e->shutdown.here, g_strdup(((store_object *)here->pdata[i])->uuid));
	}
	unsigned left = 0;
	GHashTableIter it;
	gpointer uuid;
	g_hash_table_iter_init(&it, e->shutdown.here);
	while (g_hash_table_iter_next(&it, &uuid, NULL)) {
		bool still = false;
		for (guint i = 0; !still && i < here->len; i++)
			still = strcmp(((store_object *)here->pdata[i])->uuid, uuid) == 0;
		left += !still;
	}
	double took_s = (double)(e->now_ms - e->shutdown.since_ms) / 1000;
	if (n_leaving == 0 && json_object_size(migrating) == 0) {
		g_autofree char *summary =
			n_staying ? g_strdup_printf("%u VM%s left node %s in %.1f s; %u stay%s, down until "
						    "the host is back: %s",
						    left, left == 1 ? "" : "s", e->node, took_s, n_staying,
						    n_staying == 1 ? "s" : "", staying->str)
				  : g_strdup_printf("%u VM%s left node %s in %.1f s; none stays", left,
						    left == 1 ? "" : "s", e->node, took_s);
		shutdown_leave(e, summary);
		return;
	}
	if (late) {
		g_autofree char *summary = g_strdup_printf(
			"shutdown_timeout_s (%lld s) is over: %u VM%s left node %s; still leaving: %s%s%s; "
			"what is still here is down until the host is back",
			timeout_s, left, left == 1 ? "" : "s", e->node,
			n_leaving ? leaving->str : "(migrations ending)", n_staying ? "; staying: " : "",
			staying->str);
		shutdown_leave(e, summary);
		return;
	}
	if (g_strcmp0(leaving->str, e->shutdown.waiting) != 0) {
		log_info("the host's shutdown waits for %u VMs to leave: %s", n_leaving, leaving->str);
		g_free(e->shutdown.waiting);
		e->shutdown.waiting = g_strdup(leaving->str);
	}
}

/* A node marked as shut down by an earlier herd of this node: its host is
 * back (this herd did not mark it), so the node gets its mode back, once
 * the store is writable (it is then the cluster's current word). */
static void shutdown_return(herd_engine *e)
{
	if (e->shutdown.since_ms || !store_writable(e) || e->now_ms < e->return_retry_ms)
		return;
	for (GList *l = e->node_changes->head; l; l = l->next)
		if (GPOINTER_TO_INT(l->data) == NODE_CHANGE_RETURN)
			return;
	store_object *me = own_node(e);
	const store_node *sn = me ? store_node_of(me) : NULL;
	if (!sn || !sn->shutdown)
		return;
	g_autoptr(json_t) cmd = store_node_cmd_shutdown_over(state(e), me);
	g_autoptr(GError) err = NULL;
	if (submit_node_change(e, cmd, NODE_CHANGE_RETURN, &err)) {
		log_info("node %s is back after its host's shutdown: %s again", e->node,
			 store_node_mode_name(sn->shutdown_mode));
		return;
	}
	log_warn("node %s is back after its host's shutdown, but cannot leave maintenance yet: %s",
		 e->node, err ? err->message : "?");
	e->return_retry_ms = e->now_ms + 1000;
}

static void node_change_done(herd_engine *e, const GError *error)
{
	node_change what = GPOINTER_TO_INT(g_queue_pop_head(e->node_changes));
	if (what == NODE_CHANGE_SHUTDOWN) {
		if (!error) {
			e->shutdown.marked = true;
		} else if (!e->shutdown.over) {
			/* Caught in a membership change, it may have been applied or
			 * not: asked again (it changes nothing more if it was), a few
			 * times, while the store takes changes. */
			look(e);
			store_object *me = own_node(e);
			g_autoptr(GError) err = NULL;
			g_autoptr(json_t) cmd = me && e->shutdown.attempts < SHUTDOWN_MARK_ATTEMPTS
							? store_node_cmd_shutdown(state(e), me, e->now_ms)
							: NULL;
			if (cmd && submit_node_change(e, cmd, NODE_CHANGE_SHUTDOWN, &err)) {
				e->shutdown.attempts++;
				log_warn("node %s did not go into maintenance yet (%s): asking again", e->node,
					 error->message);
			} else {
				g_autofree char *summary = g_strdup_printf(
					"node %s could not go into maintenance (%s); herd leaves now, and the "
					"others fence the node and restart its HA VMs",
					e->node, err ? err->message : error->message);
				shutdown_leave(e, summary);
			}
		}
	} else if (what == NODE_CHANGE_RETURN && error) {
		/* Changed meanwhile, or not committed: looked at again. */
		log_warn("node %s could not leave its shutdown's maintenance: %s", e->node, error->message);
		e->return_retry_ms = e->now_ms + 1000;
	}
	run_soon(e);
}

void herd_engine_run(herd_engine *e, int64_t now_ms)
{
	e->now_ms = now_ms;
	look(e);
	if (e->happened || (e->due_ms && now_ms >= e->due_ms) || view_changed(e))
		reconcile_and_coordinate(e, now_ms);
	shutdown_return(e);
	shutdown_check(e);
	int64_t next_walk = walks_step(e);
	int64_t next_request = expire_requests(e);
	/* The node's capacity is known once the hypervisor answers: the
	 * scheduler needs it at once, not at the next refresh.  (Free memory
	 * changes all the time; it waits for the refresh.) */
	herd_node_resources res = { 0 };
	e->virt->ops->resources(e->virt, &res);
	if (res.memory_mib != e->resources_sent.memory_mib || res.cpus != e->resources_sent.cpus)
		e->status_due = true;
	if (e->status_due || !e->status_sent_ms || now_ms - e->status_sent_ms >= STATUS_REFRESH_MS)
		send_status(e);
	int64_t next = STATUS_REFRESH_MS - (now_ms - e->status_sent_ms);
	int64_t next_progress = send_progress(e, now_ms);
	if (next_progress > 0)
		next = MIN(next, next_progress);
	if (next_walk > 0)
		next = MIN(next, next_walk);
	if (next_request > 0)
		next = MIN(next, next_request);
	if (e->shutdown.since_ms && !e->shutdown.over)
		next = MIN(next, e->shutdown.deadline_ms - now_ms);
	if (e->return_retry_ms > now_ms)
		next = MIN(next, e->return_retry_ms - now_ms);
	/* A wall clock set back: the agent's or coordinator's time is not
	 * there yet. */
	if (e->due_ms)
		next = MIN(next, e->due_ms - now_ms);
	e->io.wakeup(e->user, MAX(next, 1));
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */

typedef struct {
	herd_engine *e;
	uint64_t id;
	uint32_t to;
} remote_request;

static void on_remote_request_done(const GError *error, gpointer user)
{
	remote_request *rr = user;
	g_autoptr(json_t) reply = json_pack("{s:I,s:i,s:b,s:s?}", "id", (json_int_t)rr->id, "to",
					    (int)rr->to, "ok", error == NULL, "error",
					    error ? error->message : NULL);
	g_autofree char *text = json_dumps(reply, JSON_COMPACT);
	rr->e->io.send(rr->e->user, HERD_MSG_VM_REPLY, text, strlen(text));
	g_free(rr);
}

#define OP_BLOCK_RESIZE "block-resize"

/* Run request @j ({"uuid","op", and "path","size" to grow a disk}) on a VM
 * here. */
static void vm_request_run(herd_engine *e, json_t *j, herd_virt_done done, gpointer user)
{
	herd_vm_op op;
	const char *uuid = json_string_value(json_object_get(j, "uuid"));
	const char *name = json_string_value(json_object_get(j, "op"));
	json_t *size = json_object_get(j, "size");
	const char *path = json_string_value(json_object_get(j, "path"));
	if (uuid && g_strcmp0(name, OP_BLOCK_RESIZE) == 0 && path && json_is_integer(size) &&
	    json_integer_value(size) > 0) {
		herd_agent_block_resize(e->agent, uuid, path, (uint64_t)json_integer_value(size), done, user);
		return;
	}
	if (!uuid || !herd_vm_op_parse(name, &op)) {
		g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, HERD_ERR_INVALID,
							    "Malformed VM request.");
		done(err, user);
		return;
	}
	herd_agent_request(e->agent, uuid, op, done, user);
}

static void on_vm_request(herd_engine *e, uint32_t sender, json_t *j)
{
	remote_request *rr = g_new0(remote_request, 1);
	rr->e = e;
	rr->id = (uint64_t)json_integer_value(json_object_get(j, "id"));
	rr->to = sender;
	vm_request_run(e, j, on_remote_request_done, rr);
}

static void on_vm_reply(herd_engine *e, json_t *j)
{
	uint64_t id = (uint64_t)json_integer_value(json_object_get(j, "id"));
	vm_request *q = g_hash_table_lookup(e->requests, &id);
	if (!q)
		return;
	g_hash_table_steal(e->requests, &id);
	g_autoptr(GError) err = NULL;
	if (!json_is_true(json_object_get(j, "ok")))
		err = g_error_new(HERD_ERROR, HERD_ERR_CONFLICT, "%s",
				  json_string_value(json_object_get(j, "error")) ?: "The request failed.");
	q->done(err, q->user);
	g_free(q);
}

void herd_engine_message(herd_engine *e, uint32_t sender, unsigned type, const void *payload,
			 size_t len, int64_t now_ms)
{
	e->now_ms = now_ms;
	look(e);
	if (type == HERD_MSG_STATUS) {
		bool changed;
		if (!herd_facts_update(e->facts, sender, payload, len, now_ms, &changed))
			log_warn("dropped malformed facts from node %u", sender);
		else if (changed)
			run_soon(e);
		return;
	}
	if (type == HERD_MSG_PROGRESS) {
		on_progress(e, sender, payload, len);
		return;
	}
	g_autoptr(json_t) j = json_loadb(payload, len, 0, NULL);
	if (!json_is_object(j) || (uint32_t)json_integer_value(json_object_get(j, "to")) != e->view.self)
		return;
	if (type == HERD_MSG_VM_REQUEST)
		on_vm_request(e, sender, j);
	else if (type == HERD_MSG_VM_REPLY)
		on_vm_reply(e, j);
}

void herd_engine_membership(herd_engine *e, bool group)
{
	/* Facts from before a change of the group are not trusted: everyone
	 * resends.  Only the group's changes count: they come in the same
	 * order as the STATUS messages on every node, so a STATUS sent after
	 * a change is fresh everywhere.  A ring or quorum change comes at no
	 * agreed point; a round bumped by it here could make a fresh STATUS
	 * look stale until the next refresh. */
	if (group) {
		herd_facts_new_round(e->facts);
		e->status_due = true;
		/* Likewise the migrations' progress: a node that left takes
		 * its own along; the others say theirs again at once (as if
		 * their last was sent long ago: the epoch's first ms). */
		g_hash_table_remove_all(e->progress);
		if (e->progress_sent_ms)
			e->progress_sent_ms = 1;
	}
	run_soon(e);
}

void herd_engine_store_changed(herd_engine *e, GPtrArray *changes)
{
	if (herd_agent_concerned(e->agent, changes))
		e->status_due = true;
	run_soon(e);
}

void herd_engine_durable(herd_engine *e)
{
	run_soon(e);
}

/* The events below ask for a run themselves when they need one soon; the
 * next run acts on them in any case. */

void herd_engine_committed(herd_engine *e, herd_engine_submitter by, const GError *error)
{
	e->happened = true;
	if (by == HERD_SUBMIT_NODE)
		node_change_done(e, error);
	else
		herd_coord_committed(e->coord, error);
}

void herd_engine_virt_fact(herd_engine *e, const herd_vm_fact *fact, int64_t now_ms)
{
	e->happened = true;
	herd_agent_fact(e->agent, fact, now_ms);
}

void herd_engine_virt_connection(herd_engine *e, bool lost)
{
	e->happened = true;
	herd_agent_connection(e->agent, lost);
}

bool herd_engine_survivor_ok(herd_engine *e, uint32_t missing)
{
	look(e);
	store_object *n = store_node_by_id(state(e), missing);
	/* votequorum first: with two_node it holds wait_for_all, so a node
	 * that starts alone is not quorate until it has seen its peer.  Its
	 * store's down mark of the peer may be from before it went down
	 * itself: the peer may have come back (and had the mark cleared)
	 * while it was away.  And corosync's ring is not the store: a node
	 * switched on again (a reboot by the peer's fence) while the peer's
	 * herd was down has seen the peer but not the peer's store, which may
	 * have gone on without it; only a store synced with the peer's since
	 * this herd started is known to be current (sim-ha seed 5829). */
	return e->view.quorate && n && g_hash_table_contains(e->synced_with, GUINT_TO_POINTER(missing)) &&
	       (herd_coord_has_fenced(e->coord, n->name) || store_node_of(n)->down);
}

GHashTable *herd_engine_unfenced_lost(herd_engine *e)
{
	look(e);
	/* Lab mode: no fencing; a lost node counts as down at once. */
	if (store_settings_of(state(e))->lab_mode)
		return NULL;
	GHashTable *lost = NULL;
	g_autoptr(GPtrArray) nodes = store_state_list(state(e), STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		const store_node *sn = store_node_of(n);
		bool alive = false;
		for (size_t k = 0; k < e->view.n_ring; k++)
			alive |= e->view.ring[k] == sn->nodeid;
		if (alive || sn->down || sn->mode == STORE_NODE_MAINTENANCE ||
		    herd_coord_has_fenced(e->coord, n->name))
			continue;
		if (!lost)
			lost = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
		g_hash_table_add(lost, g_strdup(n->name));
	}
	return lost;
}

/* ------------------------------------------------------------------ */
/* Operators                                                           */

/* Request @j (vm_request_run()'s) of VM @uuid where it runs: here, or by a
 * message to its node. */
static void vm_request_send(herd_engine *e, const char *uuid, json_t *j, herd_virt_done done,
			    gpointer user, int64_t now_ms)
{
	e->now_ms = now_ms;
	e->happened = true;
	look(e);
	const char *node = NULL;
	if (!herd_engine_vm_active(e, uuid, &node) || !node) {
		store_object *vm = store_state_get(state(e), STORE_KIND_VM, uuid);
		g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_CONFLICT, "VM %s is not running.",
						    vm ? vm->name : uuid);
		done(err, user);
		return;
	}
	if (strcmp(node, e->node) == 0) {
		vm_request_run(e, j, done, user);
		return;
	}
	vm_request *q = g_new0(vm_request, 1);
	q->id = e->next_request++;
	q->done = done;
	q->user = user;
	q->deadline_ms = now_ms + VM_REQUEST_TIMEOUT_MS;
	json_object_set_new(j, "id", json_integer((json_int_t)q->id));
	json_object_set_new(j, "to", json_integer((int)store_node_id(state(e), node)));
	g_autofree char *text = json_dumps(j, JSON_COMPACT);
	if (!e->io.send(e->user, HERD_MSG_VM_REQUEST, text, strlen(text))) {
		g_free(q);
		g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, HERD_ERR_UNAVAILABLE,
							    "This node is not connected to the cluster.");
		done(err, user);
		return;
	}
	g_hash_table_insert(e->requests, &q->id, q);
	e->io.wakeup(e->user, VM_REQUEST_TIMEOUT_MS);
}

void herd_engine_vm_request(herd_engine *e, const char *uuid, herd_vm_op op, herd_virt_done done,
			    gpointer user, int64_t now_ms)
{
	g_autoptr(json_t) j = json_pack("{s:s,s:s}", "uuid", uuid, "op", herd_vm_op_name(op));
	vm_request_send(e, uuid, j, done, user, now_ms);
}

void herd_engine_disk_grow(herd_engine *e, const char *uuid, const char *path, uint64_t size,
			   herd_virt_done done, gpointer user, int64_t now_ms)
{
	g_autoptr(json_t) j = json_pack("{s:s,s:s,s:s,s:I}", "uuid", uuid, "op", OP_BLOCK_RESIZE, "path",
					path, "size", (json_int_t)size);
	vm_request_send(e, uuid, j, done, user, now_ms);
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */

bool herd_engine_vm_active(herd_engine *e, const char *uuid, const char **node)
{
	uint32_t on = 0;
	const herd_vm_fact *f = herd_facts_vm(e->facts, uuid, &on);
	if (!f || !herd_vm_state_runs(f->state))
		return false;
	if (node) {
		look(e);
		*node = name_of(e, on);
	}
	return true;
}

unsigned herd_engine_vms_active(herd_engine *e)
{
	/* Not herd_engine_vm_active() for each of 10,000 VMs: a lookup in
	 * every node's facts each.  A VM reported active on two nodes (a
	 * guest started twice behind herd's back) counts once. */
	g_autoptr(GHashTable) active = herd_facts_active(e->facts);
	unsigned n = 0;
	GHashTableIter it;
	gpointer uuid, value;
	g_hash_table_iter_init(&it, active);
	while (g_hash_table_iter_next(&it, &uuid, &value))
		n += ((herd_active_vm *)value)->fact && store_state_get(state(e), STORE_KIND_VM, uuid);
	return n;
}

/* Where VMs are, gathered from the facts once for any number of them.  It
 * holds the node facts and the store's node objects it borrows from: it
 * stays as it was taken while the engine goes on (an API list written over
 * several main-loop iterations), and may outlive the engine. */
struct herd_runtime_view {
	GPtrArray *facts;      /* herd_node_facts* borrowed from (held) */
	GPtrArray *nodes;      /* the store's node objects (held) */
	GHashTable *names;     /* node id -> its name (borrowed from @nodes) */
	GHashTable *active;    /* herd_facts_active() of @facts */
	GHashTable *silent;    /* names of the nodes whose VMs nobody knows about (borrowed from @nodes) */
	GHashTable *errors;    /* uuid -> an agent's last error about it */
	GHashTable *alerts;    /* uuid -> the coordinator's alert about it */
};

herd_runtime_view *herd_engine_runtime_view(herd_engine *e)
{
	look(e);
	herd_runtime_view *v = g_new0(herd_runtime_view, 1);
	v->facts = g_ptr_array_new_with_free_func((GDestroyNotify)herd_node_facts_unref);
	v->names = g_hash_table_new(g_direct_hash, g_direct_equal);
	/* Borrowed from the facts, which @v holds. */
	v->active = herd_facts_active(e->facts);
	v->silent = g_hash_table_new(g_str_hash, g_str_equal);
	v->errors = g_hash_table_new(g_str_hash, g_str_equal);
	v->alerts = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter it;
	gpointer value, key;
	g_hash_table_iter_init(&it, e->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		herd_node_facts *n = value;
		g_ptr_array_add(v->facts, herd_node_facts_ref(n));
		const char *uuid;
		json_t *err;
		json_object_foreach(n->errors, uuid, err)
			g_hash_table_insert(v->errors, (gpointer)uuid, (gpointer)json_string_value(err));
		if (n->alerts_by_vm) {
			GHashTableIter a;
			g_hash_table_iter_init(&a, n->alerts_by_vm);
			while (g_hash_table_iter_next(&a, &key, &value))
				g_hash_table_insert(v->alerts, key, value);
		}
	}
	/* A VM assigned to a node that does not report (lost, not yet fenced)
	 * or whose herd does not reach its hypervisor: nobody knows whether it
	 * still runs there. */
	v->nodes = store_state_list(state(e), STORE_KIND_NODE);
	g_ptr_array_set_free_func(v->nodes, (GDestroyNotify)store_object_unref);
	for (guint i = 0; i < v->nodes->len; i++) {
		store_object *n = store_object_ref(v->nodes->pdata[i]);
		uint32_t id = store_node_of(n)->nodeid;
		g_hash_table_insert(v->names, GUINT_TO_POINTER(id), n->name);
		herd_node_facts *there = herd_facts_fresh(e->facts, id);
		if (!there || !there->virt_ok)
			g_hash_table_add(v->silent, n->name);
	}
	return v;
}

void herd_runtime_view_get(const herd_runtime_view *v, const store_object *vm, herd_vm_runtime *out)
{
	const herd_active_vm *a = g_hash_table_size(v->active) ? g_hash_table_lookup(v->active, vm->uuid) : NULL;
	const herd_vm_fact *f = a ? a->fact : NULL;
	*out = (herd_vm_runtime){
		.state = f ? herd_vm_state_name(f->state) : "shut off",
		.node = f ? g_hash_table_lookup(v->names, GUINT_TO_POINTER(a->on)) : NULL,
		.since_ms = f ? f->since_ms : 0,
	};
	const char *assigned = store_vm_of(vm)->node;
	if (!f && assigned && g_hash_table_size(v->silent)) {
		/* The name as the view has it: it outlives the VM's object. */
		gpointer name;
		if (g_hash_table_lookup_extended(v->silent, assigned, &name, NULL)) {
			out->state = "unknown";
			out->node = name;
		}
	}
	/* Why it is not where it should be: an agent's error or an alert. */
	if (g_hash_table_size(v->errors))
		out->error = g_hash_table_lookup(v->errors, vm->uuid);
	if (g_hash_table_size(v->alerts))
		out->alert = g_hash_table_lookup(v->alerts, vm->uuid);
}

void herd_runtime_view_free(herd_runtime_view *v)
{
	if (!v)
		return;
	g_hash_table_destroy(v->active);
	g_hash_table_destroy(v->silent);
	g_hash_table_destroy(v->errors);
	g_hash_table_destroy(v->alerts);
	g_hash_table_destroy(v->names);
	g_ptr_array_free(v->nodes, TRUE);
	g_ptr_array_free(v->facts, TRUE);
	g_free(v);
}

void herd_engine_vm_runtime(herd_engine *e, const store_object *vm, herd_vm_runtime *out)
{
	g_autoptr(herd_runtime_view) v = herd_engine_runtime_view(e);
	herd_runtime_view_get(v, vm, out);
}

json_t *herd_engine_cluster_status(herd_engine *e)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, e->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		if (n->coordinator && n->round == e->facts->round) {
			json_t *out = json_deep_copy(n->coordinator);
			json_object_set_new(out, "coordinator", json_string(n->name));
			return out;
		}
	}
	return json_null();
}

/* What node @n said of storage or switch @uuid: {"ok","problem"?,"size"?,"free"?};
 * not reported: not ok. */
static json_t *reach_entry(herd_node_facts *n, const char *uuid)
{
	json_t *r = json_object_get(n->reach, uuid);
	json_t *out = json_is_object(r) ? json_deep_copy(r) :
		      json_pack("{s:b,s:s}", "ok", 0, "problem", "not reported by this node (yet)");
	json_t *u = json_object_get(n->usage, uuid);
	if (json_is_object(u))
		json_object_update(out, u);
	return out;
}

json_t *herd_engine_node_status(herd_engine *e, uint32_t nodeid)
{
	herd_node_facts *n = herd_facts_fresh(e->facts, nodeid);
	if (!n)
		return NULL;
	json_t *vms = json_array();
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, n->vms);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_vm_fact *f = v;
		if (herd_vm_state_runs(f->state))
			json_array_append_new(vms, json_string(f->uuid));
	}
	json_t *ready = json_object_get(n->migration, "ready");
	json_t *problem = json_object_get(n->migration, "problem");
	json_t *reach = json_object();
	const char *uuid;
	json_t *r;
	json_object_foreach(n->reach, uuid, r)
		json_object_set_new(reach, uuid, reach_entry(n, uuid));
	return json_pack("{s:b,s:O,s:O,s:{s:I,s:I,s:i},s:o,s:o}", "virt_ok", n->virt_ok,
			 "migration_ready", ready ? ready : json_null(), "migration_problem",
			 json_is_string(problem) ? problem : json_null(), "resources", "memory_mib",
			 (json_int_t)n->resources.memory_mib, "free_mib",
			 (json_int_t)n->resources.free_mib, "cpus", (int)n->resources.cpus, "vms", vms,
			 "reach", reach);
}

/* A node's facts of this round, with its name. */
typedef struct {
	const char *name;
	herd_node_facts *facts;
} named_facts;

static gint by_node_name(gconstpointer a, gconstpointer b)
{
	return strcmp(((const named_facts *)a)->name, ((const named_facts *)b)->name);
}

/* Every node with facts of this round, by name (named_facts). */
static GArray *fresh_facts(herd_engine *e)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(named_facts));
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, e->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		named_facts nf = { name_of(e, n->nodeid), n };
		if (n->round == e->facts->round && nf.name)
			g_array_append_val(out, nf);
	}
	g_array_sort(out, by_node_name);
	return out;
}

json_t *herd_engine_reach(herd_engine *e, const char *uuid)
{
	json_t *out = json_object();
	g_autoptr(GArray) nodes = fresh_facts(e);
	for (guint i = 0; i < nodes->len; i++) {
		const named_facts *n = &g_array_index(nodes, named_facts, i);
		json_object_set_new(out, n->name, reach_entry(n->facts, uuid));
	}
	return out;
}

void herd_engine_set_reach(herd_engine *e, json_t *reach, json_t *usage)
{
	json_t *was = e->usage;
	e->usage = json_incref(usage);
	json_decref(was);
	if (e->reach && json_equal(e->reach, reach))
		return; /* the usage goes with the next STATUS */
	json_decref(e->reach);
	e->reach = json_incref(reach);
	status_soon(e);
}

void herd_engine_set_esan(herd_engine *e, json_t *esan)
{
	if (e->esan && json_equal(e->esan, esan))
		return;
	json_decref(e->esan);
	e->esan = json_incref(esan);
	status_soon(e);
}

json_t *herd_engine_esan(herd_engine *e, const char *uuid)
{
	json_t *out = json_object();
	g_autoptr(GArray) nodes = fresh_facts(e);
	for (guint i = 0; i < nodes->len; i++) {
		const named_facts *n = &g_array_index(nodes, named_facts, i);
		json_t *s = json_object_get(json_object_get(n->facts->usage, "esan"), uuid);
		if (json_is_object(s))
			json_object_set(out, n->name, s);
	}
	return out;
}

void herd_engine_set_fence_standby(herd_engine *e, json_t *agents)
{
	if (e->fence_standby && json_equal(e->fence_standby, agents))
		return;
	json_decref(e->fence_standby);
	e->fence_standby = json_incref(agents);
	status_soon(e);
}

json_t *herd_engine_fence_standby(herd_engine *e)
{
	json_t *out = json_object();
	g_autoptr(GArray) nodes = fresh_facts(e);
	for (guint i = 0; i < nodes->len; i++) {
		const named_facts *n = &g_array_index(nodes, named_facts, i);
		if (json_object_size(n->facts->fence_standby))
			json_object_set(out, n->name, n->facts->fence_standby);
	}
	return out;
}

json_t *herd_engine_vm_migration(herd_engine *e, const char *uuid)
{
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, e->progress);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		json_t *p = json_object_get(v, uuid);
		const char *from = name_of(e, GPOINTER_TO_UINT(k));
		if (!json_is_object(p) || !from)
			continue;
		json_t *out = json_deep_copy(p);
		json_object_set_new(out, "from", json_string(from));
		return out;
	}
	return NULL;
}

json_t *herd_engine_vm_pending(herd_engine *e, const char *uuid)
{
	uint32_t nodeid = 0;
	const herd_vm_fact *f = herd_facts_vm(e->facts, uuid, &nodeid);
	herd_node_facts *n = f && herd_vm_state_runs(f->state) ? herd_facts_fresh(e->facts, nodeid) : NULL;
	json_t *p = n ? json_object_get(n->pending, uuid) : NULL;
	return json_is_array(p) ? json_deep_copy(p) : json_array();
}

const char *herd_engine_migrate_target(herd_engine *e, const char *uuid, const char *to,
				       const char **why, int64_t now_ms)
{
	e->now_ms = now_ms;
	look(e);
	herd_coord_view v = coord_view(e);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL, NULL);
	const sched_vm *vm = herd_sched_input_vm(hi, uuid);
	if (!vm) {
		*why = "it is not a VM of the cluster";
		return NULL;
	}
	const char *chosen = sched_place_away(herd_sched_input_get(hi), vm, to, why);
	/* The store's node objects outlive the input. */
	store_object *n = chosen ? store_state_get_by_name(state(e), STORE_KIND_NODE, chosen) : NULL;
	return n ? n->name : NULL;
}

void herd_engine_set_migration_ready(herd_engine *e, bool ready, const char *problem)
{
	json_t *now = json_pack("{s:b}", "ready", ready);
	if (problem)
		json_object_set_new(now, "problem", json_string(problem));
	if (e->migration && json_equal(e->migration, now)) {
		json_decref(now);
		return;
	}
	json_decref(e->migration);
	e->migration = now;
	status_soon(e);
}

unsigned herd_engine_migrations_here(herd_engine *e)
{
	g_autoptr(GArray) facts = herd_agent_facts(e->agent);
	unsigned n = 0;
	for (guint i = 0; i < facts->len; i++) {
		herd_vm_state s = g_array_index(facts, herd_vm_fact, i).state;
		n += s == HERD_VM_MIGRATING || s == HERD_VM_INCOMING;
	}
	return n;
}

bool herd_engine_admission(herd_engine *e, const char *uuid, char **detail, int64_t now_ms)
{
	e->now_ms = now_ms;
	look(e);
	herd_coord_view v = coord_view(e);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL, NULL);
	const sched_vm *vm = herd_sched_input_vm(hi, uuid);
	if (!vm)
		return true;
	sched_vm extra = *vm;
	extra.target_running = true;
	/* Judge it as if it were to run, and nowhere yet. */
	sched_input in = *herd_sched_input_get(hi);
	GArray *others = g_array_new(FALSE, FALSE, sizeof(sched_vm));
	for (size_t i = 0; i < in.n_vms; i++)
		if (&in.vms[i] != vm)
			g_array_append_val(others, in.vms[i]);
	in.vms = (const sched_vm *)others->data;
	in.n_vms = others->len;
	extra.node = NULL;
	bool ok = sched_n_plus_1(&in, &extra, detail);
	g_array_free(others, TRUE);
	return ok;
}

sched_whatif_result *herd_engine_simulate(herd_engine *e, const sched_hypothesis *h,
					  int64_t now_ms, GError **error)
{
	e->now_ms = now_ms;
	look(e);
	herd_coord_view v = coord_view(e);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL, NULL);
	return sched_whatif(herd_sched_input_get(hi), h, error);
}

json_t *herd_engine_simulate_rebalance(herd_engine *e, int64_t now_ms)
{
	e->now_ms = now_ms;
	look(e);
	herd_coord_view v = coord_view(e);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL, NULL);
	const sched_input *in = herd_sched_input_get(hi);
	const store_settings *settings = store_settings_of(v.st);
	rebalance_settings rs;
	herd_rebalance_settings(settings, &rs);
	g_autoptr(sched_plan) plan = sched_plan_compute(in);
	bool settled = plan->actions->len == 0;
	g_autoptr(rebalance_plan) rp = rebalance_compute(in, &rs, NULL, now_ms, settled);
	json_t *out = sched_json_rebalance(rp);
	json_object_set_new(out, "enabled", json_boolean(settings->rebalance));
	json_object_set_new(out, "settled", json_boolean(settled));
	json_object_set_new(out, "threshold_pct", json_integer(settings->rebalance_threshold_pct));
	json_object_set_new(out, "hold_s", json_integer(settings->rebalance_hold_s));
	return out;
}

struct herd_coord *herd_engine_coordinator(herd_engine *e)
{
	return e->coord;
}

struct herd_facts *herd_engine_facts(herd_engine *e)
{
	return e->facts;
}

/* ------------------------------------------------------------------ */

herd_engine *herd_engine_new(const char *node_name, herd_virt *virt, const herd_engine_io *io,
			     gpointer user)
{
	herd_engine *e = g_new0(herd_engine, 1);
	e->node = g_strdup(node_name);
	e->virt = virt;
	e->io = *io;
	e->user = user;
	e->facts = herd_facts_new();
	e->requests = g_hash_table_new(g_int64_hash, g_int64_equal);
	e->next_request = 1;
	e->walks = g_ptr_array_new_with_free_func((GDestroyNotify)walk_free);
	e->runs = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
	e->next_run = 1;
	e->in_ring = g_hash_table_new(g_direct_hash, g_direct_equal);
	e->returns = g_hash_table_new(g_direct_hash, g_direct_equal);
	e->synced_with = g_hash_table_new(g_direct_hash, g_direct_equal);
	e->progress = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, (GDestroyNotify)json_decref);
	e->agent = herd_agent_new(node_name, virt, &agent_io, e);
	e->coord = herd_coord_new(&coord_io, e);
	e->node_changes = g_queue_new();
	return e;
}

void herd_engine_free(herd_engine *e)
{
	if (!e)
		return;
	GList *pending = g_hash_table_get_values(e->requests);
	g_hash_table_steal_all(e->requests);
	for (GList *l = pending; l; l = l->next) {
		vm_request *q = l->data;
		g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, HERD_ERR_UNAVAILABLE,
							    "The daemon is shutting down.");
		q->done(err, q->user);
		g_free(q);
	}
	g_list_free(pending);
	g_hash_table_destroy(e->requests);
	/* A walk under way is abandoned: an operator waiting for it hears so. */
	for (guint i = 0; i < e->walks->len; i++) {
		fence_walk *w = e->walks->pdata[i];
		if (!w->finished && w->done)
			w->done(false, "", "The daemon is shutting down.", 0, w->user);
	}
	g_ptr_array_free(e->walks, TRUE);
	g_hash_table_destroy(e->runs);
	g_hash_table_destroy(e->in_ring);
	g_hash_table_destroy(e->returns);
	g_hash_table_destroy(e->synced_with);
	g_hash_table_destroy(e->progress);
	json_decref(e->migration);
	json_decref(e->reach);
	json_decref(e->fence_standby);
	json_decref(e->usage);
	json_decref(e->esan);
	herd_coord_free(e->coord);
	herd_agent_free(e->agent);
	herd_facts_free(e->facts);
	g_free(e->seen.ring);
	g_free(e->seen.group);
	if (e->seen.departures)
		g_hash_table_destroy(e->seen.departures);
	g_free(e->refused);
	if (e->shutdown.here)
		g_hash_table_destroy(e->shutdown.here);
	g_free(e->shutdown.waiting);
	g_queue_free(e->node_changes);
	g_free(e->node);
	g_free(e);
}
