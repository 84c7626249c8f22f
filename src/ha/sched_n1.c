/*
 * N+1: if any one node failed now, with everything else where it is,
 * would its HA VMs find room on the others?  The plan's admission check
 * and `herd status`'s risk per node (sched.h).
 */
#include "ha/sched_private.h"

/*
 * Could herd restart the VMs of node @f elsewhere if it failed now?  Only
 * once it is fenced: not when no fence device covers it, nor when it is in
 * maintenance mode (herd leaves such a node alone) — unless it counts as
 * down the moment it leaves the ring (lab_mode, or a down mark not cleared
 * yet: effectively_down()).  Never while HA is paused.
 */
static bool restartable_if_lost(ctx *c, const sched_node *f)
{
	/* While HA is paused nothing is restarted anywhere. */
	if (c->in->ha_paused)
		return false;
	return c->in->lab_mode || f->down || (f->fence_covered && f->mode != STORE_NODE_MAINTENANCE);
}

/*
 * For each node that could fail, with everything else staying where it is:
 * do its HA VMs find room elsewhere?  @c is fresh (nothing accounted);
 * @order is in->vms and @extra in vm_order().  @extra, a VM that is not
 * running yet, counts on the node that fails (the worst case).
 *
 * The answer (and *@detail) is about room on the online nodes only, as it
 * always was.  @unsafe (per node of @in, or NULL) also gets, for every node
 * in the ring, how many of its HA VMs could not be restarted elsewhere: all
 * that find no room (not only the first), or all of them when the node could
 * not be fenced.  VMs sticky to the failed node are never counted: they wait
 * for it by the operator's choice.  Without @unsafe it stops at the first VM
 * that finds no room.
 */
bool sched_n1_check(ctx *c, GPtrArray *order, const sched_vm *extra, char **detail, unsigned *unsafe)
{
	const sched_input *in = c->in;
	/* What runs on every node; then, per failed node, the same once more. */
	for (guint k = 0; k < order->len; k++) {
		const sched_vm *vm = order->pdata[k];
		int i = vm_node_idx(c, vm);
		if (vm->target_running && i >= 0 && !effectively_down(c, &in->nodes[i]))
			sched_account_assigned(c, vm, i);
	}
	size_t n = in->n_nodes, groups = (c->n_groups ? c->n_groups : 1) * n;
	g_autofree uint64_t *mem = g_memdup2(c->mem_used, n * sizeof(uint64_t));
	g_autofree unsigned *vcpu = g_memdup2(c->vcpu_used, n * sizeof(unsigned));
	g_autofree unsigned *grp = g_memdup2(c->group_used, groups * sizeof(unsigned));
	g_autofree int *at = affinity_save(c->aff);
	const char *rule_refusal = NULL; /* a rule, not room, kept first_stuck out */
	int refused_on = -1;
	if (unsafe)
		memset(unsafe, 0, n * sizeof(unsigned));
	const sched_vm *first_stuck = NULL;
	const sched_node *first_failed = NULL;
	for (size_t f = 0; f < n; f++) {
		const sched_node *failed = &in->nodes[f];
		/* The answer weighs online nodes; the counts every live one. */
		bool judged = usable(failed) && !first_stuck;
		if (!judged && !(unsafe && failed->in_ring))
			continue;
		bool restartable = restartable_if_lost(c, failed);
		/* The failed node is never chosen: what it held does not matter. */
		memcpy(c->mem_used, mem, n * sizeof(uint64_t));
		memcpy(c->vcpu_used, vcpu, n * sizeof(unsigned));
		memcpy(c->group_used, grp, groups * sizeof(unsigned));
		affinity_restore(c->aff, at);
		/* Its VMs bind no rule partners there: they leave it too. */
		bool was_open = c->open[f];
		c->open[f] = false;
		for (guint k = 0; k < order->len; k++) {
			const sched_vm *vm = order->pdata[k];
			int i = vm_node_idx(c, vm);
			if (vm == extra && i < 0)
				i = (int)f;
			if (i != (int)f || !vm->ha || vm->priority == STORE_VM_PRIORITY_DISABLED ||
			    !vm->target_running)
				continue;
			/* A VM sticky to the failed node waits for it: the
			 * operator's choice, not a lack of room. */
			if (vm->sticky && node_idx(c, vm->sticky) == (int)f)
				continue;
			bool placed = false;
			if (judged || restartable) {
				const char *why;
				affinity_forget(c->aff);
				int to = sched_choose(c, vm, (int)f, &why);
				placed = to >= 0;
				if (placed)
					sched_account(c, vm, to);
				else if (judged && !first_stuck) {
					first_stuck = vm;
					first_failed = failed;
					rule_refusal = affinity_last_refusal(c->aff, &refused_on);
				}
			}
			if (unsafe && (!placed || !restartable))
				unsafe[f]++;
			if (!unsafe && first_stuck)
				break;
		}
		c->open[f] = was_open;
		if (!unsafe && first_stuck)
			break;
	}
	if (first_stuck && detail && rule_refusal)
		*detail = g_strdup_printf(
			"If node %s failed, HA VM %s (and maybe others) could not be restarted: node %s has room, but %s.",
			first_failed->name, first_stuck->name, in->nodes[refused_on].name, rule_refusal);
	else if (first_stuck && detail)
		*detail = g_strdup_printf(
			"If node %s failed, HA VM %s (and maybe others) would find no room on the other nodes.",
			first_failed->name, first_stuck->name);
	return !first_stuck;
}

bool sched_n_plus_1_risk(const sched_input *in, const sched_vm *extra, char **detail,
			 unsigned *unsafe_if_lost)
{
	sched_plan scratch = { g_array_new(FALSE, FALSE, sizeof(sched_action)),
			       g_array_new(FALSE, FALSE, sizeof(sched_alert)), true, NULL };
	ctx c;
	sched_ctx_init(&c, in, &scratch);
	GPtrArray *order = sched_vms_in_order(in, extra);
	bool ok = sched_n1_check(&c, order, extra, detail, unsafe_if_lost);
	g_ptr_array_free(order, TRUE);
	sched_ctx_clear(&c);
	g_array_free(scratch.actions, TRUE);
	g_array_free(scratch.alerts, TRUE);
	return ok;
}

bool sched_n_plus_1(const sched_input *in, const sched_vm *extra, char **detail)
{
	return sched_n_plus_1_risk(in, extra, detail, NULL);
}
