/*
 * Rebalancing (see rebalance.h).  The node sums are kept per node, so a
 * candidate move costs two updates, not a pass over the VMs; the
 * scheduler is asked only about the best candidates: may it go there, and
 * would the plan leave it there.
 */
#include "ha/rebalance.h"

#include <string.h>

typedef struct {
	const sched_input *in;
	uint64_t *mem;           /* per node: memory of the VMs counted there */
	unsigned *vcpus;
} sums;

/* The spread of fullness over the nodes that take VMs, in points; the
 * fullest and emptiest nodes' indices (-1 if fewer than two). */
static double spread(const sums *s, int *fullest, int *emptiest)
{
	double hi = 0, lo = 0;
	*fullest = *emptiest = -1;
	for (size_t i = 0; i < s->in->n_nodes; i++) {
		if (!sched_node_takes_vms(s->in, i))
			continue;
		double f = sched_fullness(s->in, i, s->mem[i], s->vcpus[i]);
		/* ties: the first by the input's (the store's) order */
		if (*fullest < 0 || f > hi) {
			hi = f;
			*fullest = (int)i;
		}
		if (*emptiest < 0 || f < lo) {
			lo = f;
			*emptiest = (int)i;
		}
	}
	if (*fullest < 0 || *fullest == *emptiest) {
		*fullest = *emptiest = -1;
		return 0;
	}
	return (hi - lo) * 100.0;
}

static int node_index(const sched_input *in, const char *name)
{
	for (size_t i = 0; name && i < in->n_nodes; i++)
		if (strcmp(in->nodes[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* May @vm be moved by a rebalance at all? */
static bool movable(const sched_input *in, const sched_vm *vm, int at)
{
	return vm->target_running && at >= 0 && sched_node_takes_vms(in, (size_t)at) && !vm->move_to &&
	       !vm->sticky && vm->steady && !vm->live_failed && !vm->migrating && !vm->incoming_on &&
	       vm->n_seen == 1 && strcmp(vm->seen_on[0], in->nodes[at].name) == 0;
}

typedef struct {
	size_t vm;
	int to;
	double after;
} candidate;

static gint by_gain(gconstpointer a, gconstpointer b)
{
	const candidate *x = a, *y = b;
	if (x->after != y->after)
		return x->after < y->after ? -1 : 1;
	if (x->vm != y->vm)
		return x->vm < y->vm ? -1 : 1;
	return x->to - y->to;
}

/* With @vm (of @virt, the input as the moves so far leave it) on node
 * @to: does the scheduler allow it, and leave everything there? */
static bool scheduler_agrees(sched_input *virt, sched_vm *vm, int to, const char **seen)
{
	const char *why = NULL;
	const char *dest = sched_place_away(virt, vm, virt->nodes[to].name, &why);
	if (!dest)
		return false;
	sched_vm saved = *vm;
	vm->node = dest;
	*seen = dest;
	vm->seen_on = seen;
	vm->n_seen = 1;
	/* Settled before (the caller asks only then): anything the plan
	 * would do now is the move's doing — a failback, a rule to mend for
	 * this VM or a partner. */
	g_autoptr(sched_plan) plan = sched_plan_compute(virt);
	bool stays = plan->actions->len == 0;
	if (!stays)
		*vm = saved;
	return stays;
}

rebalance_plan *rebalance_compute(const sched_input *in, const rebalance_settings *s, rebalance_state *st,
				  int64_t now_ms, bool may_move)
{
	rebalance_plan *p = g_new0(rebalance_plan, 1);
	p->moves = g_array_new(FALSE, FALSE, sizeof(rebalance_move));
	size_t n = in->n_nodes ? in->n_nodes : 1;
	sums sm = { in, g_new0(uint64_t, n), g_new0(unsigned, n) };
	int *at = g_new(int, in->n_vms ? in->n_vms : 1);
	for (size_t v = 0; v < in->n_vms; v++) {
		const sched_vm *vm = &in->vms[v];
		/* A move under way (this rebalance's last, a migration asked
		 * by hand): the next moves wait for it to end. */
		if (vm->move_to && vm->target_running)
			may_move = false;
		at[v] = vm->target_running ? node_index(in, vm->move_to ? vm->move_to : vm->node) : -1;
		if (at[v] >= 0) {
			sm.mem[at[v]] += vm->memory_mib;
			sm.vcpus[at[v]] += vm->vcpus;
		}
	}
	int hi, lo;
	p->imbalance_pct = spread(&sm, &hi, &lo);
	p->fullest = hi >= 0 ? in->nodes[hi].name : NULL;
	p->emptiest = lo >= 0 ? in->nodes[lo].name : NULL;
	bool above = hi >= 0 && p->imbalance_pct >= (double)s->threshold_pct;
	if (st) {
		if (!above)
			st->above_since_ms = 0;
		else if (!st->above_since_ms)
			st->above_since_ms = now_ms ? now_ms : 1;
		p->due = above && now_ms - st->above_since_ms >= s->hold_ms;
		if (above && !p->due)
			p->due_in_ms = s->hold_ms - (now_ms - st->above_since_ms);
	} else {
		p->due = above;
	}
	if (!p->due || !may_move) {
		g_free(sm.mem);
		g_free(sm.vcpus);
		g_free(at);
		return p;
	}
	/* The input as the moves leave it: a copy of the VMs the scheduler is
	 * asked about. */
	sched_input virt = *in;
	sched_vm *vms = g_memdup2(in->vms, in->n_vms * sizeof(sched_vm));
	const char **seen = g_new0(const char *, in->n_vms ? in->n_vms : 1);
	virt.vms = vms;
	g_autoptr(GArray) cands = g_array_new(FALSE, FALSE, sizeof(candidate));
	for (unsigned m = 0; m < s->max_moves; m++) {
		double before = spread(&sm, &hi, &lo);
		if (hi < 0 || (m > 0 && before < (double)s->threshold_pct))
			break;
		/* Off the fullest node, to any node that takes VMs. */
		g_array_set_size(cands, 0);
		for (size_t v = 0; v < in->n_vms; v++) {
			if (at[v] != hi || !movable(in, &vms[v], at[v]))
				continue;
			for (size_t t = 0; t < in->n_nodes; t++) {
				if ((int)t == hi || !sched_node_takes_vms(in, t))
					continue;
				sm.mem[hi] -= vms[v].memory_mib;
				sm.vcpus[hi] -= vms[v].vcpus;
				sm.mem[t] += vms[v].memory_mib;
				sm.vcpus[t] += vms[v].vcpus;
				int h2, l2;
				double after = spread(&sm, &h2, &l2);
				sm.mem[t] -= vms[v].memory_mib;
				sm.vcpus[t] -= vms[v].vcpus;
				sm.mem[hi] += vms[v].memory_mib;
				sm.vcpus[hi] += vms[v].vcpus;
				if (before - after >= (double)s->min_gain_pct)
					g_array_append_val(cands, ((candidate){ v, (int)t, after }));
			}
		}
		g_array_sort(cands, by_gain);
		bool moved = false;
		for (guint k = 0; k < cands->len && !moved; k++) {
			candidate *c = &g_array_index(cands, candidate, k);
			if (!scheduler_agrees(&virt, &vms[c->vm], c->to, &seen[c->vm]))
				continue;
			rebalance_move mv = { in->vms[c->vm].uuid, in->vms[c->vm].name, in->nodes[hi].name,
					      in->nodes[c->to].name, before, c->after };
			g_array_append_val(p->moves, mv);
			sm.mem[hi] -= vms[c->vm].memory_mib;
			sm.vcpus[hi] -= vms[c->vm].vcpus;
			sm.mem[c->to] += vms[c->vm].memory_mib;
			sm.vcpus[c->to] += vms[c->vm].vcpus;
			at[c->vm] = c->to;
			/* Not moved twice in one round. */
			vms[c->vm].steady = false;
			moved = true;
		}
		if (!moved)
			break;
	}
	g_free(vms);
	g_free(seen);
	g_free(sm.mem);
	g_free(sm.vcpus);
	g_free(at);
	return p;
}

void rebalance_plan_free(rebalance_plan *p)
{
	if (!p)
		return;
	g_array_free(p->moves, TRUE);
	g_free(p);
}
