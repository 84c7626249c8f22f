/*
 * Node sets (Proxmox HA groups): a VM's tiers of nodes by priority, and
 * whether its set draws it to another node.
 */
#include "ha/sched_private.h"

/* The priority of node @i in @vm's node set, or -1: not in it. */
int sched_set_priority(ctx *c, const sched_vm *vm, int i)
{
	return i >= 0 ? store_vm_nodeset_priority(vm->nodeset, vm->n_nodeset, c->in->nodes[i].name) : -1;
}

/*
 * The best node of @vm's node set other than node @avoid: of the highest
 * priority that has a node that fits, the least full (sched_better_home()).  -1
 * when no node of the set can take it (*@why: a node's reason).  The set's
 * order is not relied on: an API client may store it in any.
 */
int sched_choose_in_set(ctx *c, const sched_vm *vm, int avoid, const char **why)
{
	int best = -1;
	unsigned best_pri = 0;
	sched_load best_load = { 0, 0, 0 };
	for (size_t k = 0; k < vm->n_nodeset; k++) {
		const store_vm_node_priority *e = &vm->nodeset[k];
		int i = node_idx(c, e->node);
		const char *w = "not a node of the cluster";
		if (i == avoid && i >= 0)
			continue;
		if (i < 0 || !sched_fits(c, vm, i, &w)) {
			*why = w;
			continue;
		}
		if (best >= 0 && e->priority < best_pri)
			continue;
		sched_load l = sched_load_with(c, vm, i);
		if (best < 0 || e->priority > best_pri || sched_better_home(c, i, l, best, best_load)) {
			best = i;
			best_pri = e->priority;
			best_load = l;
		}
	}
	return best;
}

/* @vm's node set as an operator wrote it: "n2:2,n3:2,n1:1" (g_free). */
static char *set_text(const sched_vm *vm)
{
	GString *s = g_string_new(NULL);
	for (size_t k = 0; k < vm->n_nodeset; k++)
		g_string_append_printf(s, "%s%s:%u", k ? "," : "", vm->nodeset[k].node, vm->nodeset[k].priority);
	return g_string_free(s, FALSE);
}

/* Why no node of @vm's restricted set can take it, node by node. */
char *sched_explain_set(ctx *c, const sched_vm *vm, int avoid)
{
	g_autofree char *set = set_text(vm);
	GString *s = g_string_new(NULL);
	g_string_printf(s, "it is restricted to its node set %s, and none of those nodes can take it (", set);
	bool first = true;
	for (size_t k = 0; k < vm->n_nodeset; k++) {
		int i = node_idx(c, vm->nodeset[k].node);
		const char *w = "not a node of the cluster";
		if (i >= 0 && i == avoid)
			w = "its current node";
		else if (i >= 0 && sched_fits(c, vm, i, &w))
			continue;
		g_string_append_printf(s, "%s%s: %s", first ? "" : "; ", vm->nodeset[k].node, w);
		first = false;
	}
	g_string_append(s, ")");
	return g_string_free(s, FALSE);
}

/*
 * @vm runs on node @n (index @ni), which is online: does its node set take
 * it elsewhere?  Out of its restricted set it moves into it (the set is a
 * rule, not a preference: failback or not); with failback, to a node of a
 * higher priority than its own that can take it — never within a tier.
 * Live, once steady, as every failback.  True when decided (a move, or an
 * alert): nothing else draws it then.
 */
bool sched_set_failback(ctx *c, const sched_vm *vm, const sched_node *n, int ni, bool here)
{
	int pri_here = sched_set_priority(c, vm, ni);
	bool outside = vm->restricted && pri_here < 0;
	if (!outside && !vm->failback)
		return false;
	if (!vm->steady || (here && vm->live_failed))
		return outside;
	const char *why = NULL;
	int s = sched_choose_in_set(c, vm, ni, &why);
	if (s >= 0 && (outside || sched_set_priority(c, vm, s) > pri_here)) {
		sched_add_move(c, vm, n, s, here, false,
			 outside ? "it runs outside its restricted node set"
				 : "a node of a higher priority in its node set can take it",
			 NULL);
		return true;
	}
	if (outside) {
		g_autofree char *all = sched_explain_set(c, vm, ni);
		sched_add_alert(c, SCHED_WARNING, vm->uuid, n->name,
			  "VM %s runs on node %s, outside its restricted node set; it moves when it can: %s.",
			  vm->name, n->name, all);
	}
	return outside;
}

/* May @vm, on node @here, go back to the node it left for maintenance
 * (its return_to)?  Not out of a restricted set, nor to a lower priority
 * of its set than where it runs. */
bool sched_set_allows_return(ctx *c, const sched_vm *vm, int here)
{
	if (!vm->n_nodeset)
		return true;
	int back = sched_set_priority(c, vm, node_idx(c, vm->return_to));
	return !(vm->restricted && back < 0) && back >= sched_set_priority(c, vm, here);
}
