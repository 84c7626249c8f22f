/*
 * The scheduler's decisions (see sched.h for what it decides and the rules
 * that keep a VM from running twice).  Where a VM goes, when it may go to
 * more than one node, is sched_choose()'s answer:
 *
 *   - a sticky VM goes to its sticky node only; no VM goes where a strict
 *     affinity rule forbids (ha/affinity.h: then it waits, and the alert
 *     names the rule); among the nodes it fits, the one that breaks the
 *     fewest of its rules (strict, then soft) first — so a VM with a
 *     preferred node goes there when it fits and breaks no more rules
 *     than elsewhere;
 *   - else to the node that, with the VM on it, is the least full relative
 *     to its size.  How full a node is: the share of its memory that VMs
 *     hold (of what it may give them: its RAM less memory_reserve_mib) and
 *     the share of its vCPUs (of cpus x vcpu_overcommit); the larger of the
 *     two ranks it — the resource that runs out first — and the smaller
 *     breaks a tie; then the node with more memory left, then the name.
 *     Shares within 1e-9 of each other count as equal, so that 8/100 and
 *     16/200 tie on every machine and the name decides the same way.
 *
 * So nine 8 GiB VMs leaving a node go six to a 200 GiB node and three to a
 * 100 GiB one (of proportional CPUs), where "most free memory", the rule
 * before, sent all nine to the bigger node until it was as empty as the
 * smaller in absolute terms.  Each VM is placed after the ones before it
 * are counted (in vm_order()), so a batch spreads as it goes.
 *
 * Proxmox VE's static-load scheduler weighs the same two resources per
 * node (memory more than CPU) and ranks the candidates with TOPSIS over the
 * cluster's average and highest load that each choice would give.  The
 * dominant share here is simpler to state and to check by hand ("n3 would
 * be 40 % full, n2 60 %") and needs no weights; where memory and CPU pull
 * different ways it follows the resource that would run out first rather
 * than a weighted compromise.  It looks at what VMs are given (configured
 * memory and vCPUs),
 * not at what they use now: placement stays a function of the store and
 * the nodes' sizes, the same on every coordinator.
 */
#include "ha/sched_private.h"

static const char *const action_names[] = { "assign", "move", "release", "fence", "clear-down" };

const char *sched_action_name(sched_action_type t)
{
	return (unsigned)t < G_N_ELEMENTS(action_names) ? action_names[t] : "?";
}


/* sched_choose()'s reason when a sticky VM's node cannot take it (explain()
 * adds the node's own reason). */
static const char sticky_busy[] = "its sticky node cannot take it now";

/*
 * The best node for @vm other than node @avoid (an index, or -1): its sticky
 * node only; else its preferred node; else the one that would be the least
 * full relative to its size (sched_load_with(), sched_better_home()).
 */
int sched_choose(ctx *c, const sched_vm *vm, int avoid, const char **why)
{
	const sched_input *in = c->in;
	*why = "no node is online";
	if (vm->sticky) {
		/* explain() names the sticky node's own reason */
		int i = node_idx(c, vm->sticky);
		if (i < 0) {
			*why = "its sticky node is not a node of the cluster";
			return -1;
		}
		affinity_forget(c->aff);
		if (i != avoid && sched_fits(c, vm, i, why))
			return i;
		/* A rule is named: the operator's two wishes conflict. */
		int on;
		const char *rule = affinity_last_refusal(c->aff, &on);
		*why = rule && on == i ? rule : sticky_busy;
		return -1;
	}
	if (vm->n_nodeset) {
		int s = sched_choose_in_set(c, vm, avoid, why);
		if (s >= 0 || vm->restricted)
			return s;
	}
	int pref = vm_preferred_idx(c, vm);
	const char *pref_why = NULL;
	bool rules = affinity_any(c->aff);
	affinity_cost none = { 0, 0 };
	if (pref >= 0 && pref != avoid && sched_fits(c, vm, pref, &pref_why) &&
	    (!rules || !affinity_cost_cmp(affinity_cost_at(c->aff, vm, pref), none)))
		return pref;
	/* Rules first: the node that leaves the fewest of its rule partners
	 * on the wrong side (strict, then soft rules); then its preferred
	 * node; then the load. */
	int best = -1;
	sched_load best_load = { 0, 0, 0 };
	affinity_cost best_cost = none;
	for (size_t i = 0; i < in->n_nodes; i++) {
		const char *w = NULL;
		if ((int)i == avoid)
			continue;
		if (!sched_fits(c, vm, (int)i, &w)) {
			*why = w;
			continue;
		}
		sched_load l = sched_load_with(c, vm, (int)i);
		affinity_cost cost = rules ? affinity_cost_at(c->aff, vm, (int)i) : none;
		int r = best < 0 ? -1 : affinity_cost_cmp(cost, best_cost);
		if (!r && pref >= 0 && ((int)i == pref || best == pref))
			r = (int)i == pref ? -1 : 1;
		if (!r)
			r = sched_better_home(c, (int)i, l, best, best_load) ? -1 : 1;
		if (r < 0) {
			best = (int)i;
			best_load = l;
			best_cost = cost;
		}
	}
	if (best < 0 && pref_why)
		*why = pref_why;
	return best;
}

/* Why no node can take @vm, node by node (only called when none can). */
static char *explain(ctx *c, const sched_vm *vm, int avoid, const char *why)
{
	if (vm->sticky && why == sticky_busy) {
		int i = node_idx(c, vm->sticky);
		const char *w = NULL;
		if (i >= 0 && i != avoid && !sched_fits(c, vm, i, &w))
			return g_strdup_printf("its sticky node %s cannot take it now (%s)", vm->sticky, w);
	}
	if (vm->sticky || c->in->n_nodes == 0)
		return g_strdup(why ? why : "no node is online");
	if (vm->restricted)
		return sched_explain_set(c, vm, avoid);
	GString *s = g_string_new("no node can take it (");
	bool first = true;
	for (size_t i = 0; i < c->in->n_nodes; i++) {
		const char *w = NULL;
		if ((int)i == avoid)
			continue;
		if (sched_fits(c, vm, (int)i, &w))
			continue;
		g_string_append_printf(s, "%s%s: %s", first ? "" : "; ", c->in->nodes[i].name, w);
		first = false;
	}
	g_string_append(s, ")");
	return g_string_free(s, FALSE);
}

static void need_fence(ctx *c, const sched_node *n, const sched_vm *vm)
{
	if (!c->in->lab_mode && !n->fence_covered) {
		if (g_hash_table_add(c->uncovered, (gpointer)n->name))
			sched_add_alert(c, SCHED_CRITICAL, NULL, n->name,
				  "Node %s is lost and no fence device covers it: its VMs stay down until it is fenced or 'herd node confirm-down %s'.",
				  n->name, n->name);
		return;
	}
	if (vm)
		sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
			  "VM %s waits for node %s to be fenced.",
			  vm->name, n->name);
	if (g_hash_table_contains(c->fencing, n->name))
		return;
	g_hash_table_add(c->fencing, (gpointer)n->name);
	sched_add_action(c, SCHED_FENCE, NULL, n->name, NULL, "the node was lost");
}

/* Move @vm from node @n to node @to: live if it runs there (@here) and
 * may, else cold; to come back to @return_to (or NULL) once that node is
 * online again. */
void sched_add_move(ctx *c, const sched_vm *vm, const sched_node *n, int to, bool here,
		     bool cold_ok, const char *reason, const char *return_to)
{
	sched_account(c, vm, to);
	bool live = here && !vm->live_failed;
	sched_action a = { SCHED_MOVE, vm->uuid, n->name, c->in->nodes[to].name, reason, NULL,
			   live, live && cold_ok, NULL, return_to };
	g_array_append_val(c->plan->actions, a);
}

static void assign(ctx *c, const sched_vm *vm, int i, const char *reason)
{
	sched_account(c, vm, i);
	sched_add_action(c, SCHED_ASSIGN, vm->uuid, c->in->nodes[i].name, NULL, reason);
}

/* Would its requested move take @vm away from the node it is bound to
 * (sticky)?  Such a move is refused (a switchover asked it of every VM of
 * a node, sticky ones included). */
static bool move_unbinds(const sched_vm *vm)
{
	return vm->move_to && vm->sticky && strcmp(vm->move_to, vm->sticky) != 0;
}

static void place_new(ctx *c, const sched_vm *vm, const char *reason)
{
	const char *why = NULL;
	int i = -1;
	/* Where it already runs (a live migration that ended): assigned
	 * there first, whatever that node's mode — a move off it then goes
	 * the usual way, its node stopping or migrating it before it is
	 * started anywhere else.  Not a second copy. */
	if (vm->n_seen == 1) {
		int r = node_idx(c, vm->seen_on[0]);
		if (r >= 0) {
			assign(c, vm, r, reason);
			return;
		}
	}
	/* A requested destination is honoured when it can take the VM — and
	 * the VM is not bound to another node (sticky): then sched_choose() takes
	 * it to its sticky node. */
	if (vm->move_to && !move_unbinds(vm)) {
		int m = node_idx(c, vm->move_to);
		if (m >= 0 && sched_fits(c, vm, m, &why))
			i = m;
	}
	if (i < 0)
		i = sched_choose(c, vm, -1, &why);
	if (i >= 0) {
		assign(c, vm, i, reason);
		return;
	}
	g_autofree char *all = explain(c, vm, -1, why);
	sched_add_alert(c, vm->ha ? SCHED_CRITICAL : SCHED_WARNING, vm->uuid, NULL,
		  "VM %s cannot be started: %s.", vm->name, all);
}

/* Would @vm break more of its affinity rules on node @to than on node
 * @from?  A failback does not undo what mending a rule did. */
static bool rules_worse(ctx *c, const sched_vm *vm, int to, int from)
{
	return affinity_any(c->aff) &&
	       affinity_cost_cmp(affinity_cost_at(c->aff, vm, to), affinity_cost_at(c->aff, vm, from)) > 0;
}

/* The VM runs on @n (node @ni), a live node; should it move? */
static void consider_move(ctx *c, const sched_vm *vm, const sched_node *n, int ni, bool here)
{
	const char *why = NULL;
	if (n->mode != STORE_NODE_ONLINE) {
		if (vm->sticky && strcmp(vm->sticky, n->name) == 0) {
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is sticky to node %s, which is in %s mode; it stays until 'herd vm release %s'.",
				  vm->name, n->name, store_node_mode_name(n->mode), vm->name);
			return;
		}
		/* A VM whose live migration failed leaves with a restart only
		 * when the operator said so (--allow-cold). */
		if (here && vm->live_failed && !n->allow_cold) {
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s cannot leave node %s (%s mode) live: %s. 'herd node %s %s --allow-cold' moves it with a restart.",
				  vm->name, n->name, store_node_mode_name(n->mode), vm->live_failed,
				  store_node_mode_name(n->mode), n->name);
			return;
		}
		int i = sched_choose(c, vm, ni, &why);
		if (i < 0) {
			g_autofree char *all = explain(c, vm, ni, why);
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s cannot leave node %s (%s mode): %s.", vm->name, n->name,
				  store_node_mode_name(n->mode), all);
			return;
		}
		sched_add_move(c, vm, n, i, here, n->allow_cold, "its node is leaving service",
			 vm->sticky ? NULL : n->name);
		return;
	}
	/* Its node is cut off from the ping nodes that others reach: away
	 * (see sched.h), once it runs steadily (not in the middle of its
	 * start).  A VM bound to a node goes where that binding says. */
	if (vm->ha && n->ping_lost && c->ping_somewhere && !vm->sticky) {
		if (here && !vm->steady)
			return;
		int i = sched_choose(c, vm, ni, &why);
		if (i < 0) {
			g_autofree char *all = explain(c, vm, ni, why);
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s stays on node %s, which reaches none of the ping nodes: %s.", vm->name,
				  n->name, all);
			return;
		}
		sched_add_move(c, vm, n, i, here, true, "its node reaches none of the ping nodes", NULL);
		return;
	}
	/* Bound to another node (a move took it away, or it was made sticky
	 * where it does not run): back there, live, as a failback. */
	if (vm->sticky && strcmp(vm->sticky, n->name) != 0) {
		int s = node_idx(c, vm->sticky);
		if (!vm->steady || (here && vm->live_failed))
			return;
		if (s >= 0 && sched_fits(c, vm, s, &why)) {
			sched_add_move(c, vm, n, s, here, false, "it returns to its sticky node", NULL);
			return;
		}
		sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
			  "VM %s is sticky to node %s but runs on node %s; it returns when node %s can take it (%s).",
			  vm->name, vm->sticky, n->name, vm->sticky, s >= 0 ? why : "not a node of the cluster");
		return;
	}
	/* Its node set: a higher tier, or into its restricted set. */
	if (vm->n_nodeset && !vm->sticky && sched_set_failback(c, vm, n, ni, here))
		return;
	/* Back to its preferred node: live, never with a restart of a guest
	 * that runs (a VM that could not migrate there stays). */
	if (vm->preferred && vm->failback && !vm->sticky && vm->steady &&
	    strcmp(vm->preferred, n->name) != 0 && !(here && vm->live_failed)) {
		int p = vm_preferred_idx(c, vm);
		if (p >= 0 && sched_fits(c, vm, p, &why) && !rules_worse(c, vm, p, ni)) {
			sched_add_move(c, vm, n, p, here, false, "its preferred node is back", NULL);
			return;
		}
	}
	/* Back to the node it left for standby or maintenance, online again:
	 * live, as a failback — after its preferred node, which wins (on it,
	 * it stays). */
	if (vm->return_to && c->in->return_after_maintenance && !vm->sticky && vm->steady &&
	    strcmp(vm->return_to, n->name) != 0 && !(here && vm->live_failed) &&
	    !(vm->preferred && vm->failback && strcmp(vm->preferred, n->name) == 0) &&
	    sched_set_allows_return(c, vm, ni)) {
		int r = node_idx(c, vm->return_to);
		if (r >= 0 && sched_fits(c, vm, r, &why) && !rules_worse(c, vm, r, ni)) {
			sched_add_move(c, vm, n, r, here, false, "the node it left for maintenance is back", NULL);
			return;
		}
	}
	/* stays: it already counts against its node */
}

/*
 * @vm's starts on its node @n (index @ni) failed start_failures_max times
 * in a row: place it elsewhere (the store then records the node as given
 * up on), or say that no other node can take it (its node keeps trying).
 */
static void give_up(ctx *c, const sched_vm *vm, const sched_node *n, int ni)
{
	const char *why = NULL;
	/* Not running there: it holds no room on its node. */
	sched_unaccount(c, vm, ni);
	int i = sched_choose(c, vm, ni, &why);
	if (i < 0) {
		sched_account(c, vm, ni);
		g_autofree char *all = explain(c, vm, ni, why);
		sched_add_alert(c, vm->ha ? SCHED_CRITICAL : SCHED_WARNING, vm->uuid, n->name,
			  "VM %s failed to start on node %s %u times (%s), and no other node can take it: %s.",
			  vm->name, n->name, vm->start_failures, vm->start_error ? vm->start_error : "?", all);
		return;
	}
	sched_account(c, vm, i);
	sched_action a = { SCHED_ASSIGN, vm->uuid, c->in->nodes[i].name, NULL,
			   "it failed to start on its node", n->name };
	g_array_append_val(c->plan->actions, a);
}

/* The store's record of the nodes @vm was given up on: an alert each,
 * until an operator acts on the VM. */
static void failed_alerts(ctx *c, const sched_vm *vm)
{
	for (size_t k = 0; k < vm->n_failed; k++) {
		const store_vm_failure *f = &vm->failed[k];
		sched_add_alert(c, SCHED_WARNING, vm->uuid, f->node,
			  "VM %s failed to start on node %s %u times (%s); herd does not place it there until it is started, stopped or defined again.",
			  vm->name, f->node, f->count, f->error);
	}
}

static bool seen_on(const sched_vm *vm, const char *node)
{
	for (unsigned k = 0; k < vm->n_seen; k++)
		if (strcmp(vm->seen_on[k], node) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------------ */
/* Lost nodes without HA VMs; the HA pause                              */

static bool names(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Does an HA VM depend on node @n: assigned, moving, migrating or handed
 * to it, reported there, or with an eSAN replica there that it needs? */
static bool holds_ha(ctx *c, const sched_node *n)
{
	for (size_t v = 0; v < c->in->n_vms; v++) {
		const sched_vm *vm = &c->in->vms[v];
		if (!vm->ha)
			continue;
		if (names(vm->node, n->name) || names(vm->move_to, n->name) || names(vm->incoming_on, n->name) ||
		    names(vm->handed_to, n->name) || seen_on(vm, n->name))
			return true;
		for (size_t k = 0; k < vm->n_needs; k++)
			for (const char *const *o = vm->needs[k].only; o && *o; o++)
				if (strcmp(*o, n->name) == 0)
					return true;
	}
	return false;
}

/* A lost node herd does not fence (fence_idle_nodes=no): no HA VM
 * depends on it.  Its other VMs wait for it, as they would anyway. */
static bool spared(ctx *c, const sched_node *n)
{
	return c->in->spare_idle_nodes && !holds_ha(c, n);
}

static const sched_vm *vm_by_uuid(ctx *c, GHashTable **by_uuid, const char *uuid)
{
	if (!*by_uuid) {
		*by_uuid = g_hash_table_new(g_str_hash, g_str_equal);
		for (size_t v = 0; v < c->in->n_vms; v++)
			g_hash_table_insert(*by_uuid, (gpointer)c->in->vms[v].uuid, (gpointer)&c->in->vms[v]);
	}
	return uuid ? g_hash_table_lookup(*by_uuid, uuid) : NULL;
}

/*
 * HA is paused (herd cluster ha pause): of the plan, keep what only records
 * the cluster as it is — a node back, a VM released where it stopped, a VM
 * assigned where it runs, already is, or may have been migrated to — and
 * hold the rest, each with an
 * alert: no fence, no start, no failover, no move.  The plan is computed
 * in full first, so that the alerts say what resuming would do.
 */
static void hold_while_paused(ctx *c)
{
	GArray *acts = c->plan->actions;
	GHashTable *by_uuid = NULL;
	guint kept = 0;
	for (guint k = 0; k < acts->len; k++) {
		sched_action a = g_array_index(acts, sched_action, k);
		const sched_vm *vm = vm_by_uuid(c, &by_uuid, a.vm);
		/* An assignment that follows the VM where it runs, or may run
		 * (a live migration's destination that stopped reporting: it is
		 * fenced before the VM starts anywhere else), starts nothing. */
		bool may_run_there = vm && (names(vm->node, a.node) || seen_on(vm, a.node) ||
					    names(vm->handed_to, a.node) ||
					    (vm->move_live && names(vm->move_to, a.node)));
		bool keep = a.type == SCHED_CLEAR_DOWN || a.type == SCHED_RELEASE ||
			    (a.type == SCHED_ASSIGN && may_run_there);
		if (keep) {
			g_array_index(acts, sched_action, kept++) = a;
			continue;
		}
		if (a.type == SCHED_FENCE)
			sched_add_alert(c, SCHED_CRITICAL, NULL, a.node,
				  "HA is paused: node %s is lost, and herd does not fence it until 'herd cluster ha resume'.",
				  a.node);
		else if (a.type == SCHED_MOVE)
			sched_add_alert(c, SCHED_WARNING, a.vm, a.node,
				  "HA is paused: VM %s stays on node %s (it would move to node %s: %s).",
				  vm ? vm->name : a.vm, a.node, a.move_to, a.reason);
		else
			sched_add_alert(c, SCHED_WARNING, a.vm, vm ? vm->node : NULL,
				  "HA is paused: VM %s is not started on node %s (%s).", vm ? vm->name : a.vm,
				  a.node, a.reason);
	}
	g_array_set_size(acts, kept);
	if (by_uuid)
		g_hash_table_destroy(by_uuid);
	sched_alert first = { SCHED_CRITICAL, NULL, NULL,
			      g_strdup("HA is paused: herd fences no node and starts, moves or fails over no VM until 'herd cluster ha resume'.") };
	g_array_prepend_val(c->plan->alerts, first);
}

static void decide_vm(ctx *c, const sched_vm *vm)
{
	failed_alerts(c, vm);
	/* The end of a live migration: the destination runs it, the source's
	 * paused copy is about to go (its hypervisor ends it once the
	 * destination has taken over).  Not two copies. */
	bool handover = vm->n_seen == 2 && vm->migrating && vm->move_live && vm->node && vm->move_to &&
			seen_on(vm, vm->node) && seen_on(vm, vm->move_to);
	if (vm->n_seen > 1 && !handover) {
		GString *where = g_string_new(NULL);
		for (unsigned k = 0; k < vm->n_seen; k++)
			g_string_append_printf(where, "%s%s", k ? ", " : "", vm->seen_on[k]);
		sched_add_alert(c, SCHED_CRITICAL, vm->uuid, NULL,
			  "VM %s is reported on several nodes (%s); herd stops it everywhere but on its assigned node.",
			  vm->name, where->str);
		g_string_free(where, TRUE);
	}
	int ni = vm_node_idx(c, vm);
	const sched_node *n = ni >= 0 ? &c->in->nodes[ni] : NULL;
	/* Its node migrated it away, and it runs there: whatever the store
	 * said meanwhile (a move given up too late), it is assigned there
	 * — and if that node was lost, it is fenced first, as for any VM. */
	if (n && vm->handed_to && strcmp(vm->handed_to, n->name) != 0) {
		int h = node_idx(c, vm->handed_to);
		/* Only while that node does not report: else its facts say. */
		if (h >= 0 && !(c->in->nodes[h].in_ring && c->in->nodes[h].herd_up)) {
			sched_unaccount(c, vm, ni);
			assign(c, vm, h, "it was migrated there");
			return;
		}
	}
	/* A live move whose source is known not to run it (it reports without
	 * it, or is down) to a destination that does not report: it may have
	 * arrived there just before the two lost each other.  It is assigned
	 * there, so that the destination is fenced before it starts anywhere. */
	if (n && vm->move_live && vm->move_to && strcmp(vm->move_to, n->name) != 0 &&
	    !seen_on(vm, n->name) && !vm->incoming_on &&
	    ((n->in_ring && n->herd_up) || effectively_down(c, n))) {
		int m = node_idx(c, vm->move_to);
		const sched_node *to = m >= 0 ? &c->in->nodes[m] : NULL;
		if (to && !(to->in_ring && to->herd_up) && !effectively_down(c, to)) {
			sched_unaccount(c, vm, ni);
			assign(c, vm, m, "it may have been migrated there, which does not report");
			return;
		}
	}
	if (vm->node && !n) {
		/* Its node was removed from the cluster (it was off for good). */
		if (vm->target_running)
			place_new(c, vm, "its node is no longer in the cluster");
		else
			sched_add_action(c, SCHED_RELEASE, vm->uuid, vm->node, NULL, "its node is no longer in the cluster");
		return;
	}
	if (n) {
		if (effectively_down(c, n)) {
			if (!vm->target_running) {
				sched_add_action(c, SCHED_RELEASE, vm->uuid, n->name, NULL, "its node is down");
			} else if (vm->sticky && strcmp(vm->sticky, n->name) == 0) {
				sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
					  "VM %s is sticky to node %s, which is down; 'herd vm release %s' lets it start elsewhere.",
					  vm->name, n->name, vm->name);
			} else if (!vm->ha) {
				/* Only HA VMs are restarted elsewhere; this one
				 * starts again when its node is back. */
				sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
					  "VM %s is not an HA VM: it waits for node %s to come back.",
					  vm->name, n->name);
			} else if (vm->priority == STORE_VM_PRIORITY_DISABLED) {
				sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
					  "VM %s has restart priority disabled: it waits for node %s to come back.",
					  vm->name, n->name);
			} else if (vm->incoming_on) {
				/* Its migration's destination destroys the
				 * arriving copy now that the source is gone,
				 * or runs it if the migration had ended. */
				sched_add_alert(c, SCHED_INFO, vm->uuid, vm->incoming_on,
					  "VM %s waits for its live migration to node %s to end.", vm->name,
					  vm->incoming_on);
			} else {
				place_new(c, vm, "its node is down");
			}
			return;
		}
		if (lost(c, n) && spared(c, n)) {
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is not an HA VM: it waits for node %s to come back.", vm->name, n->name);
			return;
		}
		if (lost(c, n)) {
			need_fence(c, n, vm);
			return;
		}
		if (awaited(c, n)) {
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s waits for node %s to join the cluster.", vm->name, n->name);
			return;
		}
		if (!n->in_ring) {
			/* in maintenance and gone: herd does not fence it */
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is assigned to node %s, which is away in maintenance mode.",
				  vm->name, n->name);
			return;
		}
		if (!n->herd_up) {
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "herd is not running on node %s; VM %s is left as it is.", n->name, vm->name);
			return;
		}
		bool here = seen_on(vm, n->name);
		if (!vm->target_running) {
			/* Its node stops it; once stopped it is no longer bound
			 * there.  Migrated elsewhere meanwhile, it is bound
			 * there, whose node stops it: released only once no
			 * copy runs anywhere (or is arriving). */
			if (!here && vm->n_seen == 1) {
				/* (A VM to be stopped holds no room: not accounted.) */
				if (node_idx(c, vm->seen_on[0]) >= 0)
					sched_add_action(c, SCHED_ASSIGN, vm->uuid, vm->seen_on[0], NULL, "it runs there");
			} else if (!here && vm->n_seen == 0 && !vm->incoming_on) {
				sched_add_action(c, SCHED_RELEASE, vm->uuid, n->name, NULL, "it has stopped");
			}
			return;
		}
		if (move_unbinds(vm) && strcmp(vm->move_to, n->name) != 0 && here && !vm->migrating &&
		    !vm->migrate_error && !vm->incoming_on) {
			/* Not started (a node's agent does not start it, see
			 * agent.c): the move is over, the VM stays.  One under
			 * way is left to end; the VM then returns. */
			sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is sticky to node %s: it does not move to node %s ('herd vm release %s' lets it move).",
				  vm->name, vm->sticky, vm->move_to, vm->name);
			sched_add_action(c, SCHED_ASSIGN, vm->uuid, n->name, NULL,
				   "the move is refused: the VM is sticky");
			return;
		}
		if (vm->move_to && vm->move_live && strcmp(vm->move_to, n->name) != 0 && here) {
			/* Its node migrates it; once it runs at its destination
			 * (and no longer here) it is assigned there below.  Only
			 * its node knows whether the migration may still succeed:
			 * when it reports it failed (or could not start: the
			 * destination not online), the move is given up and the
			 * VM stays here.  Never while it is under way: it ends by
			 * itself, there or back here. */
			int m = node_idx(c, vm->move_to);
			const char *why = NULL;
			if (vm->migrate_error && !vm->migrating) {
				/* Allowed, and its destination can still take it: it
				 * goes with a restart.  Stopped for a destination
				 * that has no room, it would run nowhere. */
				if (vm->move_cold_ok && m >= 0 && sched_fits(c, vm, m, &why)) {
					sched_account(c, vm, m);
					sched_action a = { SCHED_MOVE, vm->uuid, n->name, vm->move_to,
							   "its live migration failed; it moves with a restart",
							   NULL, false, false, NULL, vm->return_to };
					g_array_append_val(c->plan->actions, a);
					return;
				}
				if (vm->move_cold_ok && why)
					sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
						  "The live migration of VM %s to node %s was given up (%s), and node %s cannot take it with a restart either (%s); it keeps running on node %s.",
						  vm->name, vm->move_to, vm->migrate_error, vm->move_to, why, n->name);
				else
					sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
						  "The live migration of VM %s to node %s was given up (%s); it keeps running on node %s.",
						  vm->name, vm->move_to, vm->migrate_error, n->name);
				sched_action a = { SCHED_ASSIGN, vm->uuid, n->name, NULL,
						   "its live migration was given up", NULL, false, false,
						   vm->migrate_error };
				g_array_append_val(c->plan->actions, a);
				return;
			}
			/* Under way, it holds its room at its destination too
			 * (the arriving copy), which no other VM is given. */
			if (m >= 0)
				sched_account(c, vm, m);
			return;
		}
		if (vm->move_to && strcmp(vm->move_to, n->name) != 0 && !here && vm->incoming_on) {
			/* Migrated, but its destination has not said so yet (or
			 * is destroying the arriving copy): wait for its word. */
			return;
		}
		if (vm->move_to && strcmp(vm->move_to, n->name) != 0) {
			/* Its node stops it for the move; then it goes — back to
			 * its node, if its destination cannot take it any more:
			 * stopped there, it holds no room on its node. */
			if (!here) {
				sched_unaccount(c, vm, ni);
				place_new(c, vm, "it moves");
			}
			return;
		}
		if (vm->move_to && strcmp(vm->move_to, n->name) == 0 && here && !vm->migrating) {
			/* Sent where it runs already (a switchover decided on a
			 * view from before it got there): the move is over.  Left
			 * as it is, the destination would bar every other move. */
			sched_add_action(c, SCHED_ASSIGN, vm->uuid, n->name, NULL, "it runs at its destination");
			return;
		}
		if (!here && vm->n_seen == 0 && c->in->start_failures_max &&
		    vm->start_failures >= c->in->start_failures_max) {
			give_up(c, vm, n, ni);
			return;
		}
		consider_move(c, vm, n, ni, here);
		return;
	}
	/* Unassigned: wait until no node reports it, then place it. */
	if (!vm->target_running || vm->n_seen > 0 || vm->incoming_on)
		return;
	place_new(c, vm, "it is to be running");
}

/*
 * Running VMs that break an affinity rule (a rule added while they ran
 * together, a failover that had no better choice, a VM started by hand):
 * moved, live, to the node that leaves fewer of their partners on the
 * wrong side, once they are steady — never with a restart.  One VM of a
 * pair moves: the second sees the first at its destination.  Decided
 * after every other VM, so that a move this plan makes (a failback, a
 * standby) counts where it goes.  What cannot be mended now is said, for
 * strict rules.
 */
static void mend_rules(ctx *c, GPtrArray *order)
{
	if (!affinity_any(c->aff))
		return;
	g_autoptr(GPtrArray) stuck = g_ptr_array_new();
	for (guint k = 0; k < order->len; k++) {
		const sched_vm *vm = order->pdata[k];
		int ni = vm_node_idx(c, vm);
		if (ni < 0 || !usable(&c->in->nodes[ni]) || !vm->target_running || vm->move_to || vm->sticky ||
		    !vm->steady || vm->live_failed || vm->migrating || vm->incoming_on || vm->n_seen != 1 ||
		    !seen_on(vm, c->in->nodes[ni].name) || affinity_at(c->aff, vm) != ni)
			continue; /* not running there alone, or moved by this plan */
		bool strict;
		if (!affinity_broken(c->aff, vm, ni, &strict))
			continue;
		const char *why = NULL;
		int to = sched_choose(c, vm, ni, &why);
		if (to >= 0 && affinity_cost_cmp(affinity_cost_at(c->aff, vm, to), affinity_cost_at(c->aff, vm, ni)) < 0) {
			sched_add_move(c, vm, &c->in->nodes[ni], to, true, false, "it mends an affinity rule", NULL);
			continue;
		}
		if (strict)
			g_ptr_array_add(stuck, (gpointer)vm);
	}
	/* Still broken once the others moved: said once per VM. */
	for (guint k = 0; k < stuck->len; k++) {
		const sched_vm *vm = stuck->pdata[k];
		int ni = vm_node_idx(c, vm);
		bool strict;
		const sched_rule *r = affinity_broken(c->aff, vm, ni, &strict);
		if (r && strict)
			sched_add_alert(c, SCHED_WARNING, vm->uuid, c->in->nodes[ni].name,
				  "VM %s on node %s breaks strict rule %s, and no other node can take it without breaking it; it stays until one can.",
				  vm->name, c->in->nodes[ni].name, r->name);
	}
}

unsigned sched_join_quiet_s(const sched_input *in)
{
	return MIN(SCHED_JOIN_QUIET_S, in->join_timeout_s / 2);
}

sched_plan *sched_plan_compute(const sched_input *in)
{
	sched_plan *plan = g_new0(sched_plan, 1);
	plan->actions = g_array_new(FALSE, FALSE, sizeof(sched_action));
	plan->alerts = g_array_new(FALSE, FALSE, sizeof(sched_alert));
	ctx c;
	sched_ctx_init(&c, in, plan);

	for (size_t i = 0; i < in->n_nodes; i++) {
		const sched_node *n = &in->nodes[i];
		if (n->down && n->in_ring && n->herd_up)
			sched_add_action(&c, SCHED_CLEAR_DOWN, NULL, n->name, NULL, "the node is back");
		else if (lost(&c, n) && spared(&c, n))
			sched_add_alert(&c, SCHED_WARNING, NULL, n->name,
				  "Node %s is lost; no HA VM depends on it, so herd does not fence it (fence_idle_nodes=no).",
				  n->name);
		else if (lost(&c, n))
			need_fence(&c, n, NULL); /* every lost node, VMs or not */
		else if (awaited(&c, n) && n->added) {
			if (n->added_for_s >= sched_join_quiet_s(in))
				sched_add_alert(&c, SCHED_WARNING, NULL, n->name,
					  "Node %s was added to the cluster and has not joined yet; herd fences it if it has not joined %u s after it was added (join_timeout_s).",
					  n->name, in->join_timeout_s);
		}
		else if (awaited(&c, n))
			sched_add_alert(&c, SCHED_WARNING, NULL, n->name,
				  "Node %s has not joined since the cluster started; herd fences it if it has not joined %u s after the start (join_timeout_s).",
				  n->name, in->join_timeout_s);
	}
	sched_account_settled(&c);
	GPtrArray *order = sched_vms_in_order(in, NULL);
	for (guint k = 0; k < order->len; k++)
		decide_vm(&c, order->pdata[k]);
	mend_rules(&c, order);

	/* Judged on the input, not on this plan's actions: afresh.  The risk
	 * per node is wanted whatever the admission setting (herd status). */
	size_t n = in->n_nodes ? in->n_nodes : 1;
	memset(c.mem_used, 0, n * sizeof(uint64_t));
	memset(c.vcpu_used, 0, n * sizeof(unsigned));
	memset(c.group_used, 0, (c.n_groups ? c.n_groups : 1) * n * sizeof(unsigned));
	affinity_reset(c.aff);
	plan->unsafe_if_lost = g_new0(unsigned, n);
	char *detail = NULL;
	bool ok = sched_n1_check(&c, order, NULL, &detail, plan->unsafe_if_lost);
	plan->n_plus_1 = true;
	if (in->admission != SCHED_ADMISSION_OFF && !ok) {
		plan->n_plus_1 = false;
		sched_alert a = { SCHED_WARNING, NULL, NULL, g_steal_pointer(&detail) };
		g_array_append_val(plan->alerts, a);
	}
	g_free(detail);
	g_ptr_array_free(order, TRUE);
	if (in->ha_paused)
		hold_while_paused(&c);
	sched_ctx_clear(&c);
	return plan;
}

/* Where @vm goes: anywhere (sched_place), away from its node, or to @to. */
static const char *place(const sched_input *in, const sched_vm *vm, bool away, const char *to,
			 const char **why)
{
	sched_plan scratch = { g_array_new(FALSE, FALSE, sizeof(sched_action)),
			       g_array_new(FALSE, FALSE, sizeof(sched_alert)), true, NULL };
	ctx c;
	sched_ctx_init(&c, in, &scratch);
	sched_account_settled(&c);
	int i = -1;
	if (!to) {
		i = sched_choose(&c, vm, away && vm->node ? node_idx(&c, vm->node) : -1, why);
	} else if ((i = node_idx(&c, to)) < 0) {
		*why = "it is not a node of the cluster";
	} else if (vm->node && strcmp(vm->node, to) == 0) {
		*why = "the VM is there already";
		i = -1;
	} else if (vm->sticky && strcmp(vm->sticky, to) != 0) {
		*why = "the VM is bound to another node (sticky)";
		i = -1;
	} else if (vm->restricted && sched_set_priority(&c, vm, i) < 0) {
		*why = "the VM is restricted to its node set, which does not name it";
		i = -1;
	} else if (!sched_fits(&c, vm, i, why)) {
		i = -1;
	}
	sched_ctx_clear(&c);
	g_array_free(scratch.actions, TRUE);
	g_array_free(scratch.alerts, TRUE);
	return i >= 0 ? in->nodes[i].name : NULL;
}

const char *sched_place(const sched_input *in, const sched_vm *vm, const char **why)
{
	return place(in, vm, false, NULL, why);
}

const char *sched_place_away(const sched_input *in, const sched_vm *vm, const char *to,
			     const char **why)
{
	return place(in, vm, true, to, why);
}

void sched_plan_free(sched_plan *p)
{
	if (!p)
		return;
	for (guint i = 0; i < p->alerts->len; i++)
		g_free(g_array_index(p->alerts, sched_alert, i).message);
	g_array_free(p->actions, TRUE);
	g_array_free(p->alerts, TRUE);
	g_free(p->unsafe_if_lost);
	g_free(p);
}
