/*
 * The scheduler's working state (ha/sched_private.h): names looked up once,
 * the room the VMs hold on each node, whether a VM fits on a node and how
 * full that node would be with it.
 */
#include "ha/sched_private.h"

void sched_add_action(ctx *c, sched_action_type type, const char *vm, const char *node,
		       const char *move_to, const char *reason)
{
	sched_action a = { type, vm, node, move_to, reason, NULL, false, false, NULL };
	g_array_append_val(c->plan->actions, a);
}


void sched_add_alert(ctx *c, sched_severity sev, const char *vm, const char *node,
		      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sched_alert a = { sev, vm, node, g_strdup_vprintf(fmt, ap) };
	va_end(ap);
	g_array_append_val(c->plan->alerts, a);
}

void sched_account(ctx *c, const sched_vm *vm, int i)
{
	c->mem_used[i] += vm->memory_mib;
	c->vcpu_used[i] += vm->vcpus;
	int g = vm_group_id(c, vm);
	if (g >= 0)
		c->group_used[(size_t)g * c->in->n_nodes + (size_t)i]++;
	affinity_put(c->aff, vm, i, -1);
}

/* sched_account() of a VM where it is assigned (@i), as the input has it: one
 * on its way elsewhere (move_to) binds its rule partners at its
 * destination already — and at @i until it has left. */
void sched_account_assigned(ctx *c, const sched_vm *vm, int i)
{
	sched_account(c, vm, i);
	if (vm->move_to && affinity_any(c->aff) && !(vm->sticky && strcmp(vm->move_to, vm->sticky) != 0)) {
		int m = node_idx(c, vm->move_to);
		if (m >= 0)
			affinity_put(c->aff, vm, m, i);
	}
}

/* Take back sched_account(): the VM no longer holds its room on node @i. */
void sched_unaccount(ctx *c, const sched_vm *vm, int i)
{
	c->mem_used[i] -= MIN(c->mem_used[i], vm->memory_mib);
	c->vcpu_used[i] -= MIN(c->vcpu_used[i], vm->vcpus);
	int g = vm_group_id(c, vm);
	size_t k = (size_t)g * c->in->n_nodes + (size_t)i;
	if (g >= 0 && c->group_used[k] > 0)
		c->group_used[k]--;
	affinity_take(c->aff, vm, i);
}

/* Was @vm given up on at node @node (its starts failed there)? */
static bool failed_on(const sched_vm *vm, const char *node)
{
	for (size_t k = 0; k < vm->n_failed; k++)
		if (strcmp(vm->failed[k].node, node) == 0)
			return true;
	return false;
}

/* Does node @n reach everything @vm needs?  *@why: the first it lacks. */
static bool reaches(const sched_node *n, const sched_vm *vm, const char **why)
{
	for (size_t k = 0; k < vm->n_needs; k++) {
		const sched_need *need = &vm->needs[k];
		bool ok = false;
		if (need->only) {
			for (const char *const *o = need->only; *o && !ok; o++)
				ok = strcmp(*o, n->name) == 0;
		} else {
			ok = n->reach && g_hash_table_contains(n->reach, need->id);
		}
		if (!ok) {
			*why = need->unreached;
			return false;
		}
	}
	return true;
}

/* Could @vm run on node @i now?  *@why: a static reason (or one borrowed
 * from the input) when not. */
bool sched_fits(ctx *c, const sched_vm *vm, int i, const char **why)
{
	const sched_node *n = &c->in->nodes[i];
	if (!usable(n)) {
		*why = "not online";
		return false;
	}
	if (!reaches(n, vm, why))
		return false;
	if (vm->ha && (n->ping_lost || n->ping_avoid) && c->ping_somewhere) {
		*why = "it reaches none of the ping nodes";
		return false;
	}
	if (vm->ha && !c->in->lab_mode && !n->fence_covered) {
		*why = "no fence device covers it";
		return false;
	}
	uint64_t room = n->memory_mib > c->in->memory_reserve_mib ? n->memory_mib - c->in->memory_reserve_mib : 0;
	if (c->mem_used[i] + vm->memory_mib > room) {
		*why = "not enough free memory";
		return false;
	}
	double vcpu_room = (double)n->cpus * (c->in->vcpu_overcommit > 0 ? c->in->vcpu_overcommit : 1.0);
	if ((double)(c->vcpu_used[i] + vm->vcpus) > vcpu_room) {
		*why = "not enough vCPUs";
		return false;
	}
	int g = vm_group_id(c, vm);
	if (g >= 0 && c->group_used[(size_t)g * c->in->n_nodes + (size_t)i] > 0) {
		*why = "a VM of its anti-affinity group is there";
		return false;
	}
	if (!affinity_allows(c->aff, vm, i, why))
		return false;
	if (failed_on(vm, n->name)) {
		*why = "it failed to start there";
		return false;
	}
	return true;
}


static double share(double used, double room)
{
	return room > 0 ? used / room : 0;
}

static sched_load load_of(const sched_input *in, const sched_node *n, uint64_t mem, unsigned vcpus)
{
	uint64_t room = n->memory_mib > in->memory_reserve_mib ? n->memory_mib - in->memory_reserve_mib : 0;
	double vcpu_room = (double)n->cpus * (in->vcpu_overcommit > 0 ? in->vcpu_overcommit : 1.0);
	double m = share((double)mem, (double)room), v = share((double)vcpus, vcpu_room);
	return (sched_load){ MAX(m, v), MIN(m, v), (int64_t)room - (int64_t)mem };
}

sched_load sched_load_with(ctx *c, const sched_vm *vm, int i)
{
	return load_of(c->in, &c->in->nodes[i], c->mem_used[i] + vm->memory_mib, c->vcpu_used[i] + vm->vcpus);
}

double sched_fullness(const sched_input *in, size_t i, uint64_t memory_mib, unsigned vcpus)
{
	return load_of(in, &in->nodes[i], memory_mib, vcpus).fuller;
}

bool sched_node_takes_vms(const sched_input *in, size_t i)
{
	return usable(&in->nodes[i]);
}

/* Shares that differ by rounding only (8/100 and 16/200) are equal: the
 * tie is then broken by the next key, the same on every machine. */
static int share_cmp(double a, double b)
{
	double tolerance = 1e-9 * MAX(1.0, MAX(a, b));
	return a < b - tolerance ? -1 : a > b + tolerance ? 1 : 0;
}

/* Is node @i with load @a a better home than node @j with load @b?  The
 * emptier by its fuller resource; then by its other one; then the one
 * with more memory left; then by name. */
bool sched_better_home(ctx *c, int i, sched_load a, int j, sched_load b)
{
	int r = share_cmp(a.fuller, b.fuller);
	if (!r)
		r = share_cmp(a.other, b.other);
	if (!r)
		r = a.free_mib > b.free_mib ? -1 : a.free_mib < b.free_mib ? 1 : 0;
	if (!r)
		r = strcmp(c->in->nodes[i].name, c->in->nodes[j].name);
	return r < 0;
}

void sched_ctx_init(ctx *c, const sched_input *in, sched_plan *plan)
{
	size_t n = in->n_nodes ? in->n_nodes : 1, nv = in->n_vms ? in->n_vms : 1;
	/* Every field set, also those added later. */
	*c = (ctx){ .in = in, .plan = plan };
	c->index = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t i = 0; i < in->n_nodes; i++)
		g_hash_table_insert(c->index, (gpointer)in->nodes[i].name, GINT_TO_POINTER((int)i + 1));
	c->group_ids = g_hash_table_new(g_str_hash, g_str_equal);
	c->n_groups = 0;
	c->vm_node = g_new(int, nv);
	c->vm_preferred = g_new(int, nv);
	c->vm_group = g_new(int, nv);
	for (size_t v = 0; v < in->n_vms; v++) {
		const sched_vm *vm = &in->vms[v];
		c->vm_node[v] = node_idx(c, vm->node);
		c->vm_preferred[v] = node_idx(c, vm->preferred);
		c->vm_group[v] = -1;
		if (vm->group) {
			gpointer id = g_hash_table_lookup(c->group_ids, vm->group);
			if (!id) {
				id = GINT_TO_POINTER((int)++c->n_groups);
				g_hash_table_insert(c->group_ids, (gpointer)vm->group, id);
			}
			c->vm_group[v] = GPOINTER_TO_INT(id) - 1;
		}
	}
	c->mem_used = g_new0(uint64_t, n);
	c->vcpu_used = g_new0(unsigned, n);
	c->group_used = g_new0(unsigned, (c->n_groups ? c->n_groups : 1) * n);
	c->fencing = g_hash_table_new(g_str_hash, g_str_equal);
	c->uncovered = g_hash_table_new(g_str_hash, g_str_equal);
	/* VMs bind their rule partners where they stay: on an online node
	 * that is not down — also a lost one, until it is fenced (they may
	 * run there still) — not on a node they leave (standby). */
	c->open = g_new0(bool, n);
	for (size_t i = 0; i < in->n_nodes; i++)
		c->open[i] = in->nodes[i].mode == STORE_NODE_ONLINE && !effectively_down(c, &in->nodes[i]);
	c->aff = affinity_new(in, c->open);
	c->ping_somewhere = false;
	for (size_t i = 0; i < in->n_nodes; i++)
		c->ping_somewhere |= usable(&in->nodes[i]) && !in->nodes[i].ping_lost && !in->nodes[i].ping_avoid;
}

void sched_ctx_clear(ctx *c)
{
	g_hash_table_destroy(c->index);
	g_hash_table_destroy(c->group_ids);
	g_hash_table_destroy(c->fencing);
	g_hash_table_destroy(c->uncovered);
	g_free(c->vm_node);
	g_free(c->vm_preferred);
	g_free(c->vm_group);
	g_free(c->mem_used);
	g_free(c->vcpu_used);
	g_free(c->group_used);
	affinity_free(c->aff);
	g_free(c->open);
}

/* Count what runs where it should already: it keeps its place. */
void sched_account_settled(ctx *c)
{
	for (size_t v = 0; v < c->in->n_vms; v++) {
		const sched_vm *vm = &c->in->vms[v];
		int i = c->vm_node[v];
		if (vm->target_running && i >= 0 && !effectively_down(c, &c->in->nodes[i]))
			sched_account_assigned(c, vm, i);
	}
}

/* VMs in the order they are decided: placed ones first (they hold their
 * room), HA before non-HA, then by restart priority (the higher ones get
 * the room when it is short), then by name — so the result is
 * deterministic. */
static gint vm_order(gconstpointer a, gconstpointer b)
{
	const sched_vm *x = *(const sched_vm *const *)a, *y = *(const sched_vm *const *)b;
	if ((x->node != NULL) != (y->node != NULL))
		return x->node ? -1 : 1;
	if (x->ha != y->ha)
		return x->ha ? -1 : 1;
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->uuid, y->uuid);
}

/* in->vms (and @extra, if any) in vm_order(). */
GPtrArray *sched_vms_in_order(const sched_input *in, const sched_vm *extra)
{
	GPtrArray *order = g_ptr_array_sized_new((guint)in->n_vms + 1);
	if (in->vms_by_name && !extra) {
		/* Already by name and uuid: vm_order() is then their stable
		 * partition by its first three keys, with no string compared
		 * (10,000 names, at every plan).  Priorities other than
		 * medium (the default) are rare: passes over them only if any. */
		bool mixed = false;
		for (size_t v = 0; v < in->n_vms && !mixed; v++)
			mixed = in->vms[v].priority != STORE_VM_PRIORITY_MEDIUM;
		int n_prio = mixed ? STORE_VM_PRIORITY_DISABLED + 1 : 1;
		for (int pass = 0; pass < 4 * n_prio; pass++) {
			bool placed = pass / n_prio < 2, ha = (pass / n_prio) % 2 == 0;
			int prio = pass % n_prio;
			for (size_t v = 0; v < in->n_vms; v++)
				if ((in->vms[v].node != NULL) == placed && in->vms[v].ha == ha &&
				    (!mixed || (int)in->vms[v].priority == prio))
					g_ptr_array_add(order, (gpointer)&in->vms[v]);
		}
		return order;
	}
	for (size_t v = 0; v < in->n_vms; v++)
		g_ptr_array_add(order, (gpointer)&in->vms[v]);
	if (extra)
		g_ptr_array_add(order, (gpointer)extra);
	g_ptr_array_sort(order, vm_order);
	return order;
}
