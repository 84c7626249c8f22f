#define G_LOG_DOMAIN "ha"
#include "ha/ha.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "ha/coordinator.h"
#include "ha/facts.h"
#include "store/settings.h"
#include "store/wire.h"

#include <string.h>

/* Facts are re-sent at least this often, changes or not. */
#define STATUS_REFRESH_S 30
/* A VM request to another node gives up after this long. */
#define VM_REQUEST_TIMEOUT_S 60
#define MAX_NODES 256

typedef struct {
	uint64_t id;
	herd_virt_done done;
	gpointer user;
	guint timer;
	herd_ha *h;
} vm_request;

struct herd_ha {
	herd_cluster *cluster;
	char *node;
	herd_virt *virt;
	herd_facts *facts;
	herd_agent *agent;
	herd_coord *coord;
	guint run_idle;
	guint run_timer;
	gint64 run_timer_due_us;
	guint status_idle;
	guint status_timer;
	GHashTable *requests;      /* id -> vm_request* */
	uint64_t next_request;
};

static void run_soon(herd_ha *h);

static int64_t now_ms(void)
{
	return g_get_real_time() / 1000;
}

static uint32_t nodeid_of(herd_ha *h, const char *name)
{
	store_object *n = store_state_get_by_name(herd_cluster_state(h->cluster), STORE_KIND_NODE, name);
	return n ? (uint32_t)json_integer_value(json_object_get(n->data, "nodeid")) : 0;
}

static const char *name_of(herd_ha *h, uint32_t nodeid)
{
	store_object *n = herd_cluster_node_by_id(h->cluster, nodeid);
	return n ? n->name : NULL;
}

/* ------------------------------------------------------------------ */
/* STATUS: this node's facts                                           */

static gboolean on_send_status(gpointer data)
{
	herd_ha *h = data;
	h->status_idle = 0;
	herd_node_resources res = { 0 };
	h->virt->ops->resources(h->virt, &res);
	g_autoptr(GArray) facts = herd_agent_facts(h->agent);
	g_autoptr(json_t) coord = herd_coord_status(h->coord);
	size_t len;
	g_autofree char *payload = herd_facts_encode(h->node, herd_cluster_state(h->cluster)->pos.index,
						     facts, &res, herd_agent_virt_ok(h->agent),
						     herd_agent_errors(h->agent), coord,
						     herd_coord_seen(h->coord), &len);
	herd_cluster_send(h->cluster, HERD_MSG_STATUS, payload, len);
	return G_SOURCE_REMOVE;
}

static void status_soon(herd_ha *h)
{
	if (!h->status_idle)
		h->status_idle = g_idle_add(on_send_status, h);
}

static gboolean on_status_refresh(gpointer data)
{
	status_soon(data);
	return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* The run: agent and coordinator                                      */

static bool node_in_maintenance(herd_ha *h)
{
	store_object *me = store_state_get_by_name(herd_cluster_state(h->cluster), STORE_KIND_NODE, h->node);
	return me && g_strcmp0(json_string_value(json_object_get(me->data, "mode")), "maintenance") == 0;
}

/* The coordinator's view now; @ring and @group are the caller's buffers. */
static herd_coord_view view(herd_ha *h, uint32_t ring[MAX_NODES], uint32_t group[MAX_NODES])
{
	replica *r = herd_cluster_replica(h->cluster);
	bool synced = replica_get_phase(r) == REPLICA_SYNCED;
	return (herd_coord_view){
		.st = herd_cluster_state(h->cluster),
		.facts = h->facts,
		.ring = ring,
		.n_ring = MIN(herd_cluster_ring(h->cluster, ring, MAX_NODES), MAX_NODES),
		.group = group,
		.n_group = MIN(herd_cluster_group(h->cluster, group, MAX_NODES), MAX_NODES),
		.self = herd_cluster_nodeid(h->cluster),
		.quorate = synced && herd_corosync_quorate(herd_cluster_corosync(h->cluster)),
		.store_writable = synced && replica_is_primary(r),
		.now_ms = now_ms(),
	};
}

static gboolean on_run(gpointer data)
{
	herd_ha *h = data;
	h->run_idle = 0;
	uint32_t ring[MAX_NODES], group[MAX_NODES];
	herd_coord_view v = view(h, ring, group);
	/* The agent acts only on a store in sync with a quorate partition:
	 * stale local state must never start a VM that runs elsewhere.  In
	 * maintenance it starts nothing, but still stops what moves away:
	 * that is how the node's VMs leave it. */
	herd_agent_reconcile(h->agent, v.st, v.store_writable,
			     replica_is_durable(herd_cluster_replica(h->cluster)) && !node_in_maintenance(h),
			     v.now_ms);
	herd_coord_run(h->coord, &v);
	return G_SOURCE_REMOVE;
}

bool herd_ha_admission(herd_ha *h, const char *uuid, char **detail)
{
	uint32_t ring[MAX_NODES], group[MAX_NODES];
	herd_coord_view v = view(h, ring, group);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL);
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

static void run_soon(herd_ha *h)
{
	if (!h->run_idle)
		h->run_idle = g_idle_add(on_run, h);
}

static gboolean on_run_timer(gpointer data)
{
	herd_ha *h = data;
	h->run_timer = 0;
	run_soon(h);
	return G_SOURCE_REMOVE;
}

/* Run again in @delay_ms (the earliest of the wakeups asked for wins). */
static void wakeup(gpointer user, int64_t delay_ms)
{
	herd_ha *h = user;
	if (delay_ms <= 0) {
		run_soon(h);
		return;
	}
	gint64 due = g_get_monotonic_time() + delay_ms * 1000;
	if (h->run_timer && h->run_timer_due_us <= due)
		return;
	if (h->run_timer)
		g_source_remove(h->run_timer);
	h->run_timer_due_us = due;
	h->run_timer = g_timeout_add((guint)delay_ms, on_run_timer, h);
}

/* ------------------------------------------------------------------ */
/* Agent and driver                                                    */

static void on_agent_changed(gpointer user)
{
	status_soon(user);
}

static const herd_agent_io agent_io = {
	.changed = on_agent_changed,
	.wakeup = wakeup,
};

static void on_virt_fact(gpointer user, const herd_vm_fact *fact)
{
	herd_ha *h = user;
	herd_agent_fact(h->agent, fact, now_ms());
}

static void on_virt_connection(gpointer user, bool lost)
{
	herd_ha *h = user;
	herd_agent_connection(h->agent, lost);
}

/* ------------------------------------------------------------------ */
/* Coordinator                                                         */

static void on_committed(json_t *result, const GError *error, gpointer user)
{
	herd_ha *h = user;
	herd_coord_committed(h->coord, error);
}

static bool coord_submit(gpointer user, json_t *cmd)
{
	herd_ha *h = user;
	g_autoptr(GError) err = NULL;
	if (!herd_cluster_submit(h->cluster, cmd, "herd", on_committed, h, &err)) {
		log_warn("the coordinator's change was refused: %s", err->message);
		return false;
	}
	return true;
}

GPtrArray *herd_ha_fence_targets(herd_ha *h, const char *node)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)herd_fence_target_free);
	g_autoptr(GPtrArray) devices = store_state_list(herd_cluster_state(h->cluster), STORE_KIND_FENCE_DEVICE);
	for (guint i = 0; i < devices->len; i++) {
		store_object *dev = devices->pdata[i];
		json_t *plug = json_object_get(json_object_get(dev->data, "plugs"), node);
		if (!plug)
			continue;
		herd_fence_target *t = g_new0(herd_fence_target, 1);
		t->device = g_strdup(dev->name);
		t->agent = g_strdup(json_string_value(json_object_get(dev->data, "agent")));
		json_t *params = json_object_get(dev->data, "params");
		t->params = params ? json_deep_copy(params) : json_object();
		t->plug = g_strdup(json_string_value(plug));
		json_int_t level = json_integer_value(json_object_get(dev->data, "level"));
		t->level = level > 0 ? (int)level : 1;
		g_ptr_array_add(out, t);
	}
	return out;
}

typedef struct {
	herd_ha *h;
	char *node;
	gint64 started_us;
	herd_fence_done done;   /* for herd node fence: the API's callback */
	gpointer user;
} fence_ctx;

static void on_fenced(bool ok, const char *device, const char *detail, double agent_seconds,
		      gpointer user)
{
	fence_ctx *f = user;
	herd_ha *h = f->h;
	double total = (double)(g_get_monotonic_time() - f->started_us) / 1e6;
	log_info("fencing node %s %s after %.3f s (fence agents %.3f s): %s", f->node,
		 ok ? "succeeded" : "FAILED", total, agent_seconds, detail);
	herd_coord_fenced(h->coord, f->node, ok, device, detail, now_ms());
	/* A lone node of two that fenced its peer may change the configuration. */
	replica_recheck_primary(herd_cluster_replica(h->cluster));
	if (f->done)
		f->done(ok, device, detail, agent_seconds, f->user);
	run_soon(h);
	g_free(f->node);
	g_free(f);
}

/* In a two-node cluster every node but the lowest waits a little before
 * fencing, so that of two nodes fencing each other the first one wins. */
static unsigned fence_delay_ms(herd_ha *h)
{
	store_state *st = herd_cluster_state(h->cluster);
	if (store_state_count(st, STORE_KIND_NODE) != 2)
		return 0;
	uint32_t self = herd_cluster_nodeid(h->cluster);
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		if ((uint32_t)json_integer_value(json_object_get(n->data, "nodeid")) < self) {
			store_object *c = store_state_cluster(st);
			return (unsigned)cluster_setting_int(c ? json_object_get(c->data, "settings") : NULL,
							     "fence_delay_ms");
		}
	}
	return 0;
}

static void start_fence(herd_ha *h, const char *node, herd_fence_done done, gpointer user)
{
	fence_ctx *f = g_new0(fence_ctx, 1);
	f->h = h;
	f->node = g_strdup(node);
	f->started_us = g_get_monotonic_time();
	f->done = done;
	f->user = user;
	GPtrArray *targets = herd_ha_fence_targets(h, node);
	if (targets->len == 0) {
		g_ptr_array_free(targets, TRUE);
		g_autofree char *detail = g_strdup_printf("no fence device has a plug for node %s", node);
		on_fenced(false, "", detail, 0, f);
		return;
	}
	herd_fence_node(node, targets, done ? 0 : fence_delay_ms(h), on_fenced, f);
}

static void coord_fence(gpointer user, const char *node)
{
	start_fence(user, node, NULL, NULL);
}

static void coord_changed(gpointer user)
{
	status_soon(user);
}

static const herd_coord_io coord_io = {
	.submit = coord_submit,
	.fence = coord_fence,
	.wakeup = wakeup,
	.changed = coord_changed,
};

void herd_ha_fence_now(herd_ha *h, const char *node, herd_fence_done done, gpointer user)
{
	start_fence(h, node, done, user);
}

/* ------------------------------------------------------------------ */
/* Messages, membership, store changes                                 */

static void vm_request_finish(vm_request *q, const GError *error)
{
	if (q->timer)
		g_source_remove(q->timer);
	g_hash_table_steal(q->h->requests, &q->id);
	q->done(error, q->user);
	g_free(q);
}

typedef struct {
	herd_ha *h;
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
	herd_cluster_send(rr->h->cluster, HERD_MSG_VM_REPLY, text, strlen(text));
	g_free(rr);
}

static void on_message(gpointer user, uint32_t sender, unsigned type, const void *payload, size_t len)
{
	herd_ha *h = user;
	uint32_t self = herd_cluster_nodeid(h->cluster);
	if (type == HERD_MSG_STATUS) {
		if (herd_facts_update(h->facts, sender, payload, len, now_ms()))
			run_soon(h);
		else
			log_warn("dropped malformed facts from node %u", sender);
		return;
	}
	g_autoptr(json_t) j = json_loadb(payload, len, 0, NULL);
	if ((uint32_t)json_integer_value(json_object_get(j, "to")) != self)
		return;
	uint64_t id = (uint64_t)json_integer_value(json_object_get(j, "id"));
	if (type == HERD_MSG_VM_REQUEST) {
		herd_vm_op op;
		const char *uuid = json_string_value(json_object_get(j, "uuid"));
		remote_request *rr = g_new0(remote_request, 1);
		rr->h = h;
		rr->id = id;
		rr->to = sender;
		if (!uuid || !herd_vm_op_parse(json_string_value(json_object_get(j, "op")), &op)) {
			g_autoptr(GError) e = g_error_new_literal(HERD_ERROR, HERD_ERR_INVALID,
								  "Malformed VM request.");
			on_remote_request_done(e, rr);
			return;
		}
		herd_agent_request(h->agent, uuid, op, on_remote_request_done, rr);
	} else if (type == HERD_MSG_VM_REPLY) {
		vm_request *q = g_hash_table_lookup(h->requests, &id);
		if (!q)
			return;
		g_autoptr(GError) e = NULL;
		if (!json_is_true(json_object_get(j, "ok")))
			e = g_error_new(HERD_ERROR, HERD_ERR_CONFLICT, "%s",
					json_string_value(json_object_get(j, "error")) ?: "The request failed.");
		vm_request_finish(q, e);
	}
}

static void on_membership(gpointer user, bool group)
{
	herd_ha *h = user;
	/* Facts from before a change of the group are not trusted: everyone
	 * resends.  Only the group's changes count: they come in the same
	 * order as the STATUS messages on every node, so a STATUS sent after
	 * a change is fresh everywhere.  A ring or quorum change comes at no
	 * agreed point; a round bumped by it here could make a fresh STATUS
	 * look stale until the next refresh. */
	if (group) {
		herd_facts_new_round(h->facts);
		status_soon(h);
	}
	run_soon(h);
}

static void on_durable(gpointer user)
{
	run_soon(user);
}

static void on_store_change(gpointer user, GPtrArray *changes)
{
	herd_ha *h = user;
	if (herd_agent_concerned(h->agent, changes))
		status_soon(h);
	run_soon(h);
}

static bool on_survivor_check(gpointer user, uint32_t missing)
{
	herd_ha *h = user;
	const char *name = name_of(h, missing);
	if (!name)
		return false;
	store_object *n = store_state_get_by_name(herd_cluster_state(h->cluster), STORE_KIND_NODE, name);
	return herd_coord_has_fenced(h->coord, name) ||
	       (n && json_is_object(json_object_get(n->data, "down")));
}

/* ------------------------------------------------------------------ */

herd_ha *herd_ha_new(herd_cluster *cluster, const char *node_name, herd_virt *virt)
{
	herd_ha *h = g_new0(herd_ha, 1);
	h->cluster = cluster;
	h->node = g_strdup(node_name);
	h->virt = virt;
	h->facts = herd_facts_new();
	h->requests = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, NULL);
	h->next_request = 1;
	h->agent = herd_agent_new(node_name, virt, &agent_io, h);
	h->coord = herd_coord_new(&coord_io, h);
	virt->cb.fact = on_virt_fact;
	virt->cb.connection = on_virt_connection;
	virt->user = h;
	herd_cluster_set_message_handler(cluster, on_message, h);
	herd_cluster_on_membership(cluster, on_membership, h);
	herd_cluster_on_durable(cluster, on_durable, h);
	herd_cluster_listen(cluster, on_store_change, h);
	herd_cluster_set_survivor_check(cluster, on_survivor_check, h);
	g_autoptr(GError) err = NULL;
	if (!virt->ops->open(virt, &err))
		log_warn("the hypervisor is not reachable yet: %s", err->message);
	h->status_timer = g_timeout_add_seconds(STATUS_REFRESH_S, on_status_refresh, h);
	run_soon(h);
	return h;
}

void herd_ha_free(herd_ha *h)
{
	if (!h)
		return;
	herd_cluster_set_message_handler(h->cluster, NULL, NULL);
	herd_cluster_set_survivor_check(h->cluster, NULL, NULL);
	herd_cluster_unlisten(h->cluster, h);
	GList *pending = g_hash_table_get_values(h->requests);
	for (GList *l = pending; l; l = l->next) {
		g_autoptr(GError) e = g_error_new_literal(HERD_ERROR, HERD_ERR_UNAVAILABLE,
							  "The daemon is shutting down.");
		vm_request_finish(l->data, e);
	}
	g_list_free(pending);
	g_hash_table_destroy(h->requests);
	if (h->run_idle)
		g_source_remove(h->run_idle);
	if (h->run_timer)
		g_source_remove(h->run_timer);
	if (h->status_idle)
		g_source_remove(h->status_idle);
	if (h->status_timer)
		g_source_remove(h->status_timer);
	h->virt->ops->close(h->virt);
	herd_coord_free(h->coord);
	herd_agent_free(h->agent);
	herd_facts_free(h->facts);
	g_free(h->node);
	g_free(h);
}

void herd_ha_kick(herd_ha *h)
{
	run_soon(h);
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */

bool herd_ha_vm_active(herd_ha *h, const char *uuid, const char **node)
{
	g_autoptr(GArray) where = herd_facts_where(h->facts, uuid);
	if (where->len == 0)
		return false;
	if (node)
		*node = name_of(h, g_array_index(where, uint32_t, 0));
	return true;
}

json_t *herd_ha_vm_runtime(herd_ha *h, store_object *vm)
{
	uint32_t on = 0;
	const herd_vm_fact *f = herd_facts_vm(h->facts, vm->uuid, &on);
	bool active = f && f->state != HERD_VM_STOPPED;
	const char *state = active ? herd_vm_state_name(f->state) : "shut off";
	const char *node = active ? name_of(h, on) : NULL;
	if (!active) {
		/* Assigned to a node that does not report (lost, not yet fenced)
		 * or whose herd does not reach its hypervisor: nobody knows
		 * whether it still runs there. */
		const char *assigned = json_string_value(json_object_get(vm->data, "node"));
		uint32_t id = assigned ? nodeid_of(h, assigned) : 0;
		herd_node_facts *there = id ? herd_facts_fresh(h->facts, id) : NULL;
		if (id && (!there || !there->virt_ok)) {
			state = "unknown";
			node = assigned;
		}
	}
	json_t *out = json_pack("{s:s,s:s?,s:I}", "state", state, "node", node, "since_ms",
				(json_int_t)(active ? f->since_ms : 0));
	/* Why it is not where it should be: an agent's error or an alert. */
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, h->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		json_t *e = json_object_get(n->errors, vm->uuid);
		if (e)
			json_object_set(out, "error", e);
		size_t i;
		json_t *a;
		json_array_foreach(json_object_get(n->coordinator, "alerts"), i, a)
			if (g_strcmp0(json_string_value(json_object_get(a, "vm")), vm->uuid) == 0)
				json_object_set(out, "alert", json_object_get(a, "message"));
	}
	return out;
}

json_t *herd_ha_cluster_status(herd_ha *h)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, h->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		if (n->coordinator && n->round == h->facts->round) {
			json_t *out = json_deep_copy(n->coordinator);
			json_object_set_new(out, "coordinator", json_string(n->name));
			return out;
		}
	}
	return json_null();
}

json_t *herd_ha_node_status(herd_ha *h, uint32_t nodeid)
{
	herd_node_facts *n = herd_facts_fresh(h->facts, nodeid);
	if (!n)
		return NULL;
	json_t *vms = json_array();
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, n->vms);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_vm_fact *f = v;
		if (f->state != HERD_VM_STOPPED)
			json_array_append_new(vms, json_string(f->uuid));
	}
	return json_pack("{s:b,s:{s:I,s:I,s:i},s:o}", "virt_ok", n->virt_ok, "resources", "memory_mib",
			 (json_int_t)n->resources.memory_mib, "free_mib",
			 (json_int_t)n->resources.free_mib, "cpus", (int)n->resources.cpus, "vms", vms);
}

GPtrArray *herd_ha_unfenced_lost(herd_ha *h)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	uint32_t ring[MAX_NODES];
	size_t n_ring = MIN(herd_cluster_ring(h->cluster, ring, MAX_NODES), MAX_NODES);
	g_autoptr(GPtrArray) nodes = store_state_list(herd_cluster_state(h->cluster), STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		uint32_t id = (uint32_t)json_integer_value(json_object_get(n->data, "nodeid"));
		bool alive = false;
		for (size_t k = 0; k < n_ring; k++)
			alive |= ring[k] == id;
		if (!alive && !json_is_object(json_object_get(n->data, "down")) &&
		    g_strcmp0(json_string_value(json_object_get(n->data, "mode")), "maintenance") != 0 &&
		    !herd_coord_has_fenced(h->coord, n->name))
			g_ptr_array_add(out, g_strdup(n->name));
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* VM requests                                                         */

static gboolean on_request_timeout(gpointer data)
{
	vm_request *q = data;
	q->timer = 0;
	g_autoptr(GError) e = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
					  "The node running the VM did not answer within %d s.",
					  VM_REQUEST_TIMEOUT_S);
	vm_request_finish(q, e);
	return G_SOURCE_REMOVE;
}

void herd_ha_vm_request(herd_ha *h, const char *uuid, herd_vm_op op, herd_virt_done done,
			gpointer user)
{
	const char *node = NULL;
	if (!herd_ha_vm_active(h, uuid, &node) || !node) {
		store_object *vm = store_state_get(herd_cluster_state(h->cluster), STORE_KIND_VM, uuid);
		g_autoptr(GError) e = g_error_new(HERD_ERROR, HERD_ERR_CONFLICT,
						  "VM %s is not running.", vm ? vm->name : uuid);
		done(e, user);
		return;
	}
	if (strcmp(node, h->node) == 0) {
		herd_agent_request(h->agent, uuid, op, done, user);
		return;
	}
	vm_request *q = g_new0(vm_request, 1);
	q->id = h->next_request++;
	q->done = done;
	q->user = user;
	q->h = h;
	g_autoptr(json_t) msg = json_pack("{s:I,s:i,s:s,s:s}", "id", (json_int_t)q->id, "to",
					  (int)nodeid_of(h, node), "uuid", uuid, "op", herd_vm_op_name(op));
	g_autofree char *text = json_dumps(msg, JSON_COMPACT);
	if (!herd_cluster_send(h->cluster, HERD_MSG_VM_REQUEST, text, strlen(text))) {
		g_free(q);
		g_autoptr(GError) e = g_error_new_literal(HERD_ERROR, HERD_ERR_UNAVAILABLE,
							  "This node is not connected to the cluster.");
		done(e, user);
		return;
	}
	q->timer = g_timeout_add_seconds(VM_REQUEST_TIMEOUT_S, on_request_timeout, q);
	g_hash_table_insert(h->requests, &q->id, q);
}
