/* The host's shutdown (herd_engine_shutdown()), and the node's return
 * after it: this node's own mode in the store. */
#include "ha/engine_private.h"

#include "common/json.h"
#include "common/log.h"
#include "ha/esan.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/vm.h"

#include <string.h>

/* The host's shutdown: how many times the node's maintenance is asked for
 * when the change is not committed (a membership change caught it). */
#define SHUTDOWN_MARK_ATTEMPTS 3

/* What a change of this node's own was for. */
typedef enum { NODE_CHANGE_SHUTDOWN = 1, NODE_CHANGE_RETURN } node_change;


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
	engine_look(e);
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
void engine_shutdown_check(herd_engine *e)
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
				herd_coord_view cv = engine_coord_view(e);
				hi = herd_sched_input_build(&cv, NULL, NULL, NULL);
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
	/* The sync gate (C14), as for standby and maintenance: the host does
	 * not go down with the only up-to-date replica of an eSAN disk whose
	 * other replica is being synchronised (bounded by the same timeout). */
	g_autofree char *unsynced = herd_esan_unsynced(state(e), e->node);
	g_autofree char *gate = unsynced ? g_strdup_printf("eSAN disk(s) %s not in sync (this node holds "
							   "the only up-to-date replica)", unsynced) : NULL;
	if (n_leaving == 0 && json_object_size(migrating) == 0 && !gate) {
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
	bool moving = n_leaving || json_object_size(migrating);
	if (late) {
		g_autofree char *summary = g_strdup_printf(
			"shutdown_timeout_s (%lld s) is over: %u VM%s left node %s%s%s%s%s%s%s; "
			"what is still here is down until the host is back",
			timeout_s, left, left == 1 ? "" : "s", e->node, moving ? "; still leaving: " : "",
			moving ? (n_leaving ? leaving->str : "(migrations ending)") : "", gate ? "; waited for " : "",
			gate ? gate : "", n_staying ? "; staying: " : "", staying->str);
		shutdown_leave(e, summary);
		return;
	}
	g_autofree char *waiting = g_strdup_printf("%s%s%s", leaving->str, leaving->len && gate ? "; " : "",
						   gate ? gate : "");
	if (g_strcmp0(waiting, e->shutdown.waiting) != 0) {
		if (moving)
			log_info("the host's shutdown waits for %u VMs to leave: %s", n_leaving, waiting);
		else
			log_info("the host's shutdown waits for %s", gate);
		g_free(e->shutdown.waiting);
		e->shutdown.waiting = g_steal_pointer(&waiting);
	}
}

/* A node marked as shut down by an earlier herd of this node: its host is
 * back (this herd did not mark it), so the node gets its mode back, once
 * the store is writable (it is then the cluster's current word). */
void engine_shutdown_return(herd_engine *e)
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

void engine_node_change_done(herd_engine *e, const GError *error)
{
	node_change what = GPOINTER_TO_INT(g_queue_pop_head(e->node_changes));
	if (what == NODE_CHANGE_SHUTDOWN) {
		if (!error) {
			e->shutdown.marked = true;
		} else if (!e->shutdown.over) {
			/* Caught in a membership change, it may have been applied or
			 * not: asked again (it changes nothing more if it was), a few
			 * times, while the store takes changes. */
			engine_look(e);
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
