#include "ha/engine_private.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/rule.h"
#include "store/vm.h"

#include <string.h>

/* Facts are re-sent at least this often, changes or not. */
#define STATUS_REFRESH_MS 30000
/*
 * When nodes join the group and none leaves it, each member's STATUS (every
 * member resends its facts at a change of the group) waits until the store's
 * sync is over, STATUS_SYNC_WAIT_MS at most.  Sent at once, the members'
 * STATUS came before the sync's own messages in corosync's order and in
 * every herdd's queue: at 17-32 test nodes the sync of a join took 0.54 s
 * (p50), 0.33 s with them after it (bench/README.md).  Meanwhile the
 * coordinator and the agents wait for fresh facts, as after any change of
 * the group.  A change with a node gone sends them at once: a failover
 * waits for them.
 */
#define STATUS_SYNC_WAIT_MS 2000
/* How often a node tells how far its live migrations are. */
#define PROGRESS_MS 1000
/* A VM request to another node gives up after this long. */
#define VM_REQUEST_TIMEOUT_MS 60000
/* More VMs than this changed by one STATUS (a node starting its whole
 * load): told as not known VM by VM, and a web page fetches its whole list,
 * cheaper then than one request a VM. */
#define FACTS_CHANGED_VMS_MAX 64

/*
 * Look at the cluster (at every event; the agent and coordinator read it),
 * and count each node's returns into corosync's ring: a fence counts only
 * if its node has not come back since its power was cut (it may have been
 * switched on again while the walk waited for another agent).  Every ring
 * change is an event, so no return goes unseen.
 */
void engine_look(herd_engine *e)
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

unsigned engine_returns_of(herd_engine *e, const char *node)
{
	uint32_t id = store_node_id(state(e), node);
	return GPOINTER_TO_UINT(g_hash_table_lookup(e->returns, GUINT_TO_POINTER(id)));
}

const char *engine_name_of(herd_engine *e, uint32_t nodeid)
{
	store_object *n = store_node_by_id(state(e), nodeid);
	return n ? n->name : NULL;
}

/* ------------------------------------------------------------------ */
/* STATUS: this node's facts                                           */

static void send_status(herd_engine *e)
{
	e->status_due = false;
	e->links_due_ms = 0;
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
		.links = e->links,
		.ping = e->ping,
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

static void coord_fence(gpointer user, const char *node)
{
	engine_start_fence(user, node, NULL, NULL);
}

static const herd_coord_io coord_io = {
	.submit = coord_submit,
	.fence = coord_fence,
	.wakeup = on_wakeup,
	.changed = on_changed,
};

/* ------------------------------------------------------------------ */
/* The run                                                             */

herd_coord_view engine_coord_view(herd_engine *e)
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
		.check_alerts = e->check_alerts,
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
static GHashTable *active_elsewhere(herd_engine *e, GHashTable **running)
{
	for (size_t i = 0; i < e->view.n_group; i++)
		if (e->view.group[i] != e->view.self && !herd_facts_fresh(e->facts, e->view.group[i]))
			return NULL;
	GHashTable *out = g_hash_table_new(g_str_hash, g_str_equal);
	*running = g_hash_table_new(g_str_hash, g_str_equal);
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
			if (f->state == HERD_VM_RUNNING)
				g_hash_table_add(*running, f->uuid);
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
	       v->synced != s->synced || v->primary != s->primary ||
	       (v->durable != s->durable && !e->absorbing) ||
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
	e->absorbing = false;
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
	e->full_runs++;
	view_remember(e);
	herd_coord_view v = engine_coord_view(e);
	/* The agent acts only on a store in sync with a quorate partition:
	 * stale local state must never start a VM that runs elsewhere.  It
	 * starts a VM only on an assignment that is durable on every member,
	 * or a VM started on a change that is then lost would run twice, and
	 * only when no other member reports it.  In maintenance it starts
	 * nothing, but still stops what moves away: that is how the node's
	 * VMs leave it. */
	g_autoptr(GHashTable) running = NULL;
	g_autoptr(GHashTable) elsewhere = active_elsewhere(e, &running);
	g_autoptr(GHashTable) members = elsewhere ? g_hash_table_new(g_str_hash, g_str_equal) : NULL;
	for (size_t i = 0; members && i < e->view.n_group; i++) {
		const char *name = engine_name_of(e, e->view.group[i]);
		if (name)
			g_hash_table_add(members, (gpointer)name);
	}
	herd_agent_gate gate = {
		.may_act = v.store_writable,
		.may_start = e->view.durable && !node_in_maintenance(e),
		.elsewhere = elsewhere,
		.members = members,
		.running = running,
	};
	herd_agent_reconcile(e->agent, v.st, &gate, now_ms);
	herd_coord_run(e->coord, &v);
}

void herd_engine_run(herd_engine *e, int64_t now_ms)
{
	e->now_ms = now_ms;
	engine_look(e);
	if (e->happened || (e->due_ms && now_ms >= e->due_ms) || view_changed(e))
		reconcile_and_coordinate(e, now_ms);
	engine_shutdown_return(e);
	engine_shutdown_check(e);
	int64_t next_walk = engine_walks_step(e);
	int64_t next_request = expire_requests(e);
	/* The node's capacity is known once the hypervisor answers: the
	 * scheduler needs it at once, not at the next refresh.  (Free memory
	 * changes all the time; it waits for the refresh.) */
	herd_node_resources res = { 0 };
	e->virt->ops->resources(e->virt, &res);
	if (res.memory_mib != e->resources_sent.memory_mib || res.cpus != e->resources_sent.cpus)
		e->status_due = true;
	if (e->links_due_ms && now_ms >= e->links_due_ms)
		e->status_due = true;
	bool hold = false;
	if (e->status_after_sync && !e->view.synced) {
		if (!e->status_hold_ms)
			e->status_hold_ms = now_ms + STATUS_SYNC_WAIT_MS;
		hold = now_ms < e->status_hold_ms;
	}
	if (!hold)
		e->status_after_sync = false;
	if (!hold && (e->status_due || !e->status_sent_ms || now_ms - e->status_sent_ms >= STATUS_REFRESH_MS))
		send_status(e);
	int64_t next = STATUS_REFRESH_MS - (now_ms - e->status_sent_ms);
	if (hold)
		next = MIN(next, e->status_hold_ms - now_ms);
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
	if (e->links_due_ms)
		next = MIN(next, e->links_due_ms - now_ms);
	/* A wall clock set back: the agent's or coordinator's time is not
	 * there yet. */
	if (e->due_ms)
		next = MIN(next, e->due_ms - now_ms);
	e->io.wakeup(e->user, MAX(next, 1));
}

uint64_t herd_engine_full_runs(herd_engine *e)
{
	return e->full_runs;
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

/* Do @before and @after differ in what the node's herd-san reports of its
 * eSAN replicas (the "esan" member of the usage)? */
static bool esan_changed(const herd_node_facts *before, const herd_node_facts *after)
{
	json_t *a = before ? json_object_get(before->usage, "esan") : NULL;
	json_t *b = after ? json_object_get(after->usage, "esan") : NULL;
	if (!a || !b)
		return a != b;
	return !json_equal(a, b);
}

void herd_engine_message(herd_engine *e, uint32_t sender, unsigned type, const void *payload,
			 size_t len, int64_t now_ms)
{
	e->now_ms = now_ms;
	engine_look(e);
	if (type == HERD_MSG_STATUS) {
		bool changed;
		/* What it said before, to tell which VMs the new facts concern. */
		herd_node_facts *was = e->io.facts_changed ? herd_facts_fresh(e->facts, sender) : NULL;
		if (was)
			herd_node_facts_ref(was);
		if (!herd_facts_update(e->facts, sender, payload, len, now_ms, &changed))
			log_warn("dropped malformed facts from node %u", sender);
		else if (changed) {
			run_soon(e);
			const char *name = e->io.facts_changed ? engine_name_of(e, sender) : NULL;
			if (name) {
				g_autoptr(GPtrArray) vms = was ? herd_node_facts_vms_changed(
						was, herd_facts_fresh(e->facts, sender), FACTS_CHANGED_VMS_MAX) : NULL;
				e->io.facts_changed(e->user, name, vms);
			}
		} else if (was && esan_changed(was, herd_facts_fresh(e->facts, sender))) {
			/* Its replicas' states (connected, syncing N %) live in the
			 * usage, which wakes no engine run; those who show them
			 * are told, of no VM. */
			const char *name = engine_name_of(e, sender);
			if (name) {
				g_autoptr(GPtrArray) none = g_ptr_array_new();
				e->io.facts_changed(e->user, name, none);
			}
		}
		if (was)
			herd_node_facts_unref(was);
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

/* Is every node of the group at its last change still in it (and the
 * group not the first this engine sees)? */
static bool group_grew(herd_engine *e)
{
	if (!e->n_last_group)
		return false;
	for (size_t i = 0; i < e->n_last_group; i++) {
		bool in = false;
		for (size_t k = 0; !in && k < e->view.n_group; k++)
			in = e->view.group[k] == e->last_group[i];
		if (!in)
			return false;
	}
	return true;
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
		engine_look(e);
		e->status_after_sync = group_grew(e) && !e->view.synced;
		e->status_hold_ms = 0;
		g_free(e->last_group);
		e->last_group = g_memdup2(e->view.group, e->view.n_group * sizeof(*e->view.group));
		e->n_last_group = e->view.n_group;
		/* Likewise the migrations' progress: a node that left takes
		 * its own along; the others say theirs again at once (as if
		 * their last was sent long ago: the epoch's first ms). */
		g_hash_table_remove_all(e->progress);
		if (e->progress_sent_ms)
			e->progress_sent_ms = 1;
	}
	run_soon(e);
}

/* Is @o (a VM, or NULL) nothing the engine acts on: stopped, assigned
 * nowhere, moving nowhere, named in no affinity rule, reported by no node? */
static bool vm_inert(herd_engine *e, store_state *st, store_object *o)
{
	if (!o)
		return true;
	const store_vm *d = store_vm_of(o);
	if (d->target_running || d->node || d->move_to)
		return false;
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_RULE]);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (store_rule_has(store_rule_of(v), o->uuid))
			return false;
	g_hash_table_iter_init(&it, e->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (g_hash_table_contains(((herd_node_facts *)v)->vms, o->uuid))
			return false;
	return true;
}

/*
 * May the engine's run skip @changes?  Only if each is a VM inert before
 * and after (a define, a delete or a setting of a stopped, unassigned VM):
 * the scheduler plans nothing for such a VM, no agent runs it, and no
 * alert is about it.  With 10,000 VMs a full run costs every node
 * milliseconds (the coordinator's plan looks at every VM), so without this
 * defining V VMs would cost each node O(V) per define, O(V²) in all.
 */
static bool changes_inert(herd_engine *e, GPtrArray *changes)
{
	if (!changes || !e->view.st || herd_agent_concerned(e->agent, changes))
		return false;
	for (guint i = 0; i < changes->len; i++) {
		store_change *c = changes->pdata[i];
		if (c->kind != STORE_KIND_VM || !vm_inert(e, e->view.st, c->before) ||
		    !vm_inert(e, e->view.st, c->after))
			return false;
	}
	return true;
}

void herd_engine_store_changed(herd_engine *e, GPtrArray *changes)
{
	if (herd_agent_concerned(e->agent, changes))
		e->status_due = true;
	engine_look(e);
	/* Nothing else happened since the last full run and the store is the
	 * same: that run's view holds, at the new position. */
	if (!e->happened && e->seen.st == e->view.st && changes_inert(e, changes)) {
		e->seen.pos = e->view.st->pos;
		e->absorbing = e->absorbing || e->seen.durable;
		return;
	}
	run_soon(e);
}

void herd_engine_durable(herd_engine *e)
{
	if (e->absorbing && !e->happened)
		return;
	run_soon(e);
}

/* The events below ask for a run themselves when they need one soon; the
 * next run acts on them in any case. */

void herd_engine_committed(herd_engine *e, herd_engine_submitter by, const GError *error)
{
	e->happened = true;
	if (by == HERD_SUBMIT_NODE)
		engine_node_change_done(e, error);
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
	engine_look(e);
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
	engine_look(e);
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
	engine_look(e);
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
	e->walks = g_ptr_array_new_with_free_func((GDestroyNotify)engine_walk_free);
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
	json_decref(e->links);
	json_decref(e->ping);
	json_decref(e->check_alerts);
	json_decref(e->check_results);
	json_decref(e->usage);
	json_decref(e->esan);
	herd_coord_free(e->coord);
	herd_agent_free(e->agent);
	herd_facts_free(e->facts);
	g_free(e->seen.ring);
	g_free(e->seen.group);
	g_free(e->last_group);
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
