/*
 * The scheduler's decisions (see sched.h for what it decides and the rules
 * that keep a VM from running twice).  Where a VM goes, when it may go to
 * more than one node, is choose()'s answer:
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
#include "ha/sched.h"

#include "ha/affinity.h"

#include <string.h>

/*
 * One decision's working state.  Names are looked up once, in ctx_init():
 * the VMs' nodes and anti-affinity groups become indices, so that placing a
 * VM (and the N+1 check, which places every node's VMs once more) does no
 * string work.  32 nodes x 10,000 VMs: bench/sched_plan.c.
 */
typedef struct {
	const sched_input *in;
	GHashTable *index;      /* node name -> index + 1 */
	GHashTable *group_ids;  /* anti-affinity group name -> id + 1 */
	size_t n_groups;
	int *vm_node;           /* per VM of in->vms: its node's index, or -1 */
	int *vm_preferred;      /* per VM: its preferred node's index, or -1 */
	int *vm_group;          /* per VM: its group's id, or -1 */
	uint64_t *mem_used;
	unsigned *vcpu_used;
	unsigned *group_used;   /* [group id * n_nodes + node]: its VMs counted there */
	GHashTable *fencing;    /* node names with a FENCE action */
	GHashTable *uncovered;  /* lost nodes already reported as unfenceable */
	bool *open;             /* per node: may a VM there bind its rule partners
				 * (see ctx_init; not the node an N+1 check fails) */
	affinity *aff;          /* the affinity rules (ha/affinity.h) */
	bool ping_somewhere;    /* a node that may take VMs reaches a ping node: the
				 * HA VMs of nodes that reach none go there */
	sched_plan *plan;
} ctx;

static const char *const action_names[] = { "assign", "move", "release", "fence", "clear-down" };

const char *sched_action_name(sched_action_type t)
{
	return (unsigned)t < G_N_ELEMENTS(action_names) ? action_names[t] : "?";
}


static int node_idx(ctx *c, const char *name)
{
	return name ? GPOINTER_TO_INT(g_hash_table_lookup(c->index, name)) - 1 : -1;
}

/* @vm's position in c->in->vms, or -1 (a VM judged from outside). */
static ssize_t vm_pos(ctx *c, const sched_vm *vm)
{
	uintptr_t off = (uintptr_t)vm - (uintptr_t)c->in->vms;
	return c->in->vms && off < c->in->n_vms * sizeof(sched_vm) ? (ssize_t)(off / sizeof(sched_vm)) : -1;
}

static int vm_node_idx(ctx *c, const sched_vm *vm)
{
	ssize_t k = vm_pos(c, vm);
	return k >= 0 ? c->vm_node[k] : node_idx(c, vm->node);
}

static int vm_preferred_idx(ctx *c, const sched_vm *vm)
{
	ssize_t k = vm_pos(c, vm);
	return k >= 0 ? c->vm_preferred[k] : node_idx(c, vm->preferred);
}

/* Its group's id, or -1: no group, or one no VM of the input has. */
static int vm_group_id(ctx *c, const sched_vm *vm)
{
	ssize_t k = vm_pos(c, vm);
	if (k >= 0)
		return c->vm_group[k];
	return vm->group ? GPOINTER_TO_INT(g_hash_table_lookup(c->group_ids, vm->group)) - 1 : -1;
}

/*
 * The node cannot be running anything: it was fenced or confirmed down and
 * has not come back.  A node that is back in corosync's ring may run its
 * VMs again, whatever its down mark says (it is cleared once its herd
 * reports in).
 */
static bool effectively_down(ctx *c, const sched_node *n)
{
	return !n->in_ring && (n->down || c->in->lab_mode);
}

/* Out of the ring but possibly alive, and herd's to look after (not in
 * maintenance). */
static bool away(ctx *c, const sched_node *n)
{
	return !n->in_ring && !effectively_down(c, n) && n->mode != STORE_NODE_MAINTENANCE;
}

/* It must be fenced before its VMs go elsewhere. */
static bool lost(ctx *c, const sched_node *n)
{
	return away(c, n) && !n->awaited;
}

/* Not seen since the cluster started, and given time to join. */
static bool awaited(ctx *c, const sched_node *n)
{
	return away(c, n) && n->awaited;
}

static bool usable(const sched_node *n)
{
	return n->in_ring && n->herd_up && !n->down && n->mode == STORE_NODE_ONLINE;
}

static void add_action(ctx *c, sched_action_type type, const char *vm, const char *node,
		       const char *move_to, const char *reason)
{
	sched_action a = { type, vm, node, move_to, reason, NULL, false, false, NULL };
	g_array_append_val(c->plan->actions, a);
}


static void add_alert(ctx *c, sched_severity sev, const char *vm, const char *node,
		      const char *fmt, ...) G_GNUC_PRINTF(5, 6);
static void add_alert(ctx *c, sched_severity sev, const char *vm, const char *node,
		      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sched_alert a = { sev, vm, node, g_strdup_vprintf(fmt, ap) };
	va_end(ap);
	g_array_append_val(c->plan->alerts, a);
}

static void account(ctx *c, const sched_vm *vm, int i)
{
	c->mem_used[i] += vm->memory_mib;
	c->vcpu_used[i] += vm->vcpus;
	int g = vm_group_id(c, vm);
	if (g >= 0)
		c->group_used[(size_t)g * c->in->n_nodes + (size_t)i]++;
	affinity_put(c->aff, vm, i, -1);
}

/* account() of a VM where it is assigned (@i), as the input has it: one
 * on its way elsewhere (move_to) binds its rule partners at its
 * destination already — and at @i until it has left. */
static void account_assigned(ctx *c, const sched_vm *vm, int i)
{
	account(c, vm, i);
	if (vm->move_to && affinity_any(c->aff) && !(vm->sticky && strcmp(vm->move_to, vm->sticky) != 0)) {
		int m = node_idx(c, vm->move_to);
		if (m >= 0)
			affinity_put(c->aff, vm, m, i);
	}
}

/* Take back account(): the VM no longer holds its room on node @i. */
static void unaccount(ctx *c, const sched_vm *vm, int i)
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
static bool fits(ctx *c, const sched_vm *vm, int i, const char **why)
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

/*
 * How full node @i would be with @vm on it, relative to its size: the
 * share of its memory (what VMs hold over what it may give them, after
 * memory_reserve_mib) and of its vCPUs (over cpus x vcpu_overcommit).
 * Only called for a node that fits(): the sums are within its room.
 */
typedef struct {
	double fuller;           /* the larger share: what fills the node first */
	double other;            /* the smaller one */
	int64_t free_mib;        /* memory left, MiB */
} node_load;

static double share(double used, double room)
{
	return room > 0 ? used / room : 0;
}

static node_load load_of(const sched_input *in, const sched_node *n, uint64_t mem, unsigned vcpus)
{
	uint64_t room = n->memory_mib > in->memory_reserve_mib ? n->memory_mib - in->memory_reserve_mib : 0;
	double vcpu_room = (double)n->cpus * (in->vcpu_overcommit > 0 ? in->vcpu_overcommit : 1.0);
	double m = share((double)mem, (double)room), v = share((double)vcpus, vcpu_room);
	return (node_load){ MAX(m, v), MIN(m, v), (int64_t)room - (int64_t)mem };
}

static node_load load_with(ctx *c, const sched_vm *vm, int i)
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
static bool better_home(ctx *c, int i, node_load a, int j, node_load b)
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

/* ------------------------------------------------------------------ */
/* Node sets (Proxmox HA groups): tiers of nodes by priority            */

/* The priority of node @i in @vm's node set, or -1: not in it. */
static int set_priority(ctx *c, const sched_vm *vm, int i)
{
	return i >= 0 ? store_vm_nodeset_priority(vm->nodeset, vm->n_nodeset, c->in->nodes[i].name) : -1;
}

/*
 * The best node of @vm's node set other than node @avoid: of the highest
 * priority that has a node that fits, the least full (better_home()).  -1
 * when no node of the set can take it (*@why: a node's reason).  The set's
 * order is not relied on: an API client may store it in any.
 */
static int choose_in_set(ctx *c, const sched_vm *vm, int avoid, const char **why)
{
	int best = -1;
	unsigned best_pri = 0;
	node_load best_load = { 0, 0, 0 };
	for (size_t k = 0; k < vm->n_nodeset; k++) {
		const store_vm_node_priority *e = &vm->nodeset[k];
		int i = node_idx(c, e->node);
		const char *w = "not a node of the cluster";
		if (i == avoid && i >= 0)
			continue;
		if (i < 0 || !fits(c, vm, i, &w)) {
			*why = w;
			continue;
		}
		if (best >= 0 && e->priority < best_pri)
			continue;
		node_load l = load_with(c, vm, i);
		if (best < 0 || e->priority > best_pri || better_home(c, i, l, best, best_load)) {
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
static char *explain_set(ctx *c, const sched_vm *vm, int avoid)
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
		else if (i >= 0 && fits(c, vm, i, &w))
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
static void add_move(ctx *c, const sched_vm *vm, const sched_node *n, int to, bool here,
		     bool cold_ok, const char *reason, const char *return_to);

static bool set_failback(ctx *c, const sched_vm *vm, const sched_node *n, int ni, bool here)
{
	int pri_here = set_priority(c, vm, ni);
	bool outside = vm->restricted && pri_here < 0;
	if (!outside && !vm->failback)
		return false;
	if (!vm->steady || (here && vm->live_failed))
		return outside;
	const char *why = NULL;
	int s = choose_in_set(c, vm, ni, &why);
	if (s >= 0 && (outside || set_priority(c, vm, s) > pri_here)) {
		add_move(c, vm, n, s, here, false,
			 outside ? "it runs outside its restricted node set"
				 : "a node of a higher priority in its node set can take it",
			 NULL);
		return true;
	}
	if (outside) {
		g_autofree char *all = explain_set(c, vm, ni);
		add_alert(c, SCHED_WARNING, vm->uuid, n->name,
			  "VM %s runs on node %s, outside its restricted node set; it moves when it can: %s.",
			  vm->name, n->name, all);
	}
	return outside;
}

/* May @vm, on node @here, go back to the node it left for maintenance
 * (its return_to)?  Not out of a restricted set, nor to a lower priority
 * of its set than where it runs. */
static bool set_allows_return(ctx *c, const sched_vm *vm, int here)
{
	if (!vm->n_nodeset)
		return true;
	int back = set_priority(c, vm, node_idx(c, vm->return_to));
	return !(vm->restricted && back < 0) && back >= set_priority(c, vm, here);
}

/* choose()'s reason when a sticky VM's node cannot take it (explain()
 * adds the node's own reason). */
static const char sticky_busy[] = "its sticky node cannot take it now";

/*
 * The best node for @vm other than node @avoid (an index, or -1): its sticky
 * node only; else its preferred node; else the one that would be the least
 * full relative to its size (load_with(), better_home()).
 */
static int choose(ctx *c, const sched_vm *vm, int avoid, const char **why)
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
		if (i != avoid && fits(c, vm, i, why))
			return i;
		/* A rule is named: the operator's two wishes conflict. */
		int on;
		const char *rule = affinity_last_refusal(c->aff, &on);
		*why = rule && on == i ? rule : sticky_busy;
		return -1;
	}
	if (vm->n_nodeset) {
		int s = choose_in_set(c, vm, avoid, why);
		if (s >= 0 || vm->restricted)
			return s;
	}
	int pref = vm_preferred_idx(c, vm);
	const char *pref_why = NULL;
	bool rules = affinity_any(c->aff);
	affinity_cost none = { 0, 0 };
	if (pref >= 0 && pref != avoid && fits(c, vm, pref, &pref_why) &&
	    (!rules || !affinity_cost_cmp(affinity_cost_at(c->aff, vm, pref), none)))
		return pref;
	/* Rules first: the node that leaves the fewest of its rule partners
	 * on the wrong side (strict, then soft rules); then its preferred
	 * node; then the load. */
	int best = -1;
	node_load best_load = { 0, 0, 0 };
	affinity_cost best_cost = none;
	for (size_t i = 0; i < in->n_nodes; i++) {
		const char *w = NULL;
		if ((int)i == avoid)
			continue;
		if (!fits(c, vm, (int)i, &w)) {
			*why = w;
			continue;
		}
		node_load l = load_with(c, vm, (int)i);
		affinity_cost cost = rules ? affinity_cost_at(c->aff, vm, (int)i) : none;
		int r = best < 0 ? -1 : affinity_cost_cmp(cost, best_cost);
		if (!r && pref >= 0 && ((int)i == pref || best == pref))
			r = (int)i == pref ? -1 : 1;
		if (!r)
			r = better_home(c, (int)i, l, best, best_load) ? -1 : 1;
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
		if (i >= 0 && i != avoid && !fits(c, vm, i, &w))
			return g_strdup_printf("its sticky node %s cannot take it now (%s)", vm->sticky, w);
	}
	if (vm->sticky || c->in->n_nodes == 0)
		return g_strdup(why ? why : "no node is online");
	if (vm->restricted)
		return explain_set(c, vm, avoid);
	GString *s = g_string_new("no node can take it (");
	bool first = true;
	for (size_t i = 0; i < c->in->n_nodes; i++) {
		const char *w = NULL;
		if ((int)i == avoid)
			continue;
		if (fits(c, vm, (int)i, &w))
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
			add_alert(c, SCHED_CRITICAL, NULL, n->name,
				  "Node %s is lost and no fence device covers it: its VMs stay down until it is fenced or 'herd node confirm-down %s'.",
				  n->name, n->name);
		return;
	}
	if (vm)
		add_alert(c, SCHED_WARNING, vm->uuid, n->name,
			  "VM %s waits for node %s to be fenced.",
			  vm->name, n->name);
	if (g_hash_table_contains(c->fencing, n->name))
		return;
	g_hash_table_add(c->fencing, (gpointer)n->name);
	add_action(c, SCHED_FENCE, NULL, n->name, NULL, "the node was lost");
}

/* Move @vm from node @n to node @to: live if it runs there (@here) and
 * may, else cold; to come back to @return_to (or NULL) once that node is
 * online again. */
static void add_move(ctx *c, const sched_vm *vm, const sched_node *n, int to, bool here,
		     bool cold_ok, const char *reason, const char *return_to)
{
	account(c, vm, to);
	bool live = here && !vm->live_failed;
	sched_action a = { SCHED_MOVE, vm->uuid, n->name, c->in->nodes[to].name, reason, NULL,
			   live, live && cold_ok, NULL, return_to };
	g_array_append_val(c->plan->actions, a);
}

static void assign(ctx *c, const sched_vm *vm, int i, const char *reason)
{
	account(c, vm, i);
	add_action(c, SCHED_ASSIGN, vm->uuid, c->in->nodes[i].name, NULL, reason);
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
	 * the VM is not bound to another node (sticky): then choose() takes
	 * it to its sticky node. */
	if (vm->move_to && !move_unbinds(vm)) {
		int m = node_idx(c, vm->move_to);
		if (m >= 0 && fits(c, vm, m, &why))
			i = m;
	}
	if (i < 0)
		i = choose(c, vm, -1, &why);
	if (i >= 0) {
		assign(c, vm, i, reason);
		return;
	}
	g_autofree char *all = explain(c, vm, -1, why);
	add_alert(c, vm->ha ? SCHED_CRITICAL : SCHED_WARNING, vm->uuid, NULL,
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
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is sticky to node %s, which is in %s mode; it stays until 'herd vm release %s'.",
				  vm->name, n->name, store_node_mode_name(n->mode), vm->name);
			return;
		}
		/* A VM whose live migration failed leaves with a restart only
		 * when the operator said so (--allow-cold). */
		if (here && vm->live_failed && !n->allow_cold) {
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s cannot leave node %s (%s mode) live: %s. 'herd node %s %s --allow-cold' moves it with a restart.",
				  vm->name, n->name, store_node_mode_name(n->mode), vm->live_failed,
				  store_node_mode_name(n->mode), n->name);
			return;
		}
		int i = choose(c, vm, ni, &why);
		if (i < 0) {
			g_autofree char *all = explain(c, vm, ni, why);
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s cannot leave node %s (%s mode): %s.", vm->name, n->name,
				  store_node_mode_name(n->mode), all);
			return;
		}
		add_move(c, vm, n, i, here, n->allow_cold, "its node is leaving service",
			 vm->sticky ? NULL : n->name);
		return;
	}
	/* Its node is cut off from the ping nodes that others reach: away
	 * (see sched.h), once it runs steadily (not in the middle of its
	 * start).  A VM bound to a node goes where that binding says. */
	if (vm->ha && n->ping_lost && c->ping_somewhere && !vm->sticky) {
		if (here && !vm->steady)
			return;
		int i = choose(c, vm, ni, &why);
		if (i < 0) {
			g_autofree char *all = explain(c, vm, ni, why);
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s stays on node %s, which reaches none of the ping nodes: %s.", vm->name,
				  n->name, all);
			return;
		}
		add_move(c, vm, n, i, here, true, "its node reaches none of the ping nodes", NULL);
		return;
	}
	/* Bound to another node (a move took it away, or it was made sticky
	 * where it does not run): back there, live, as a failback. */
	if (vm->sticky && strcmp(vm->sticky, n->name) != 0) {
		int s = node_idx(c, vm->sticky);
		if (!vm->steady || (here && vm->live_failed))
			return;
		if (s >= 0 && fits(c, vm, s, &why)) {
			add_move(c, vm, n, s, here, false, "it returns to its sticky node", NULL);
			return;
		}
		add_alert(c, SCHED_WARNING, vm->uuid, n->name,
			  "VM %s is sticky to node %s but runs on node %s; it returns when node %s can take it (%s).",
			  vm->name, vm->sticky, n->name, vm->sticky, s >= 0 ? why : "not a node of the cluster");
		return;
	}
	/* Its node set: a higher tier, or into its restricted set. */
	if (vm->n_nodeset && !vm->sticky && set_failback(c, vm, n, ni, here))
		return;
	/* Back to its preferred node: live, never with a restart of a guest
	 * that runs (a VM that could not migrate there stays). */
	if (vm->preferred && vm->failback && !vm->sticky && vm->steady &&
	    strcmp(vm->preferred, n->name) != 0 && !(here && vm->live_failed)) {
		int p = vm_preferred_idx(c, vm);
		if (p >= 0 && fits(c, vm, p, &why) && !rules_worse(c, vm, p, ni)) {
			add_move(c, vm, n, p, here, false, "its preferred node is back", NULL);
			return;
		}
	}
	/* Back to the node it left for standby or maintenance, online again:
	 * live, as a failback — after its preferred node, which wins (on it,
	 * it stays). */
	if (vm->return_to && c->in->return_after_maintenance && !vm->sticky && vm->steady &&
	    strcmp(vm->return_to, n->name) != 0 && !(here && vm->live_failed) &&
	    !(vm->preferred && vm->failback && strcmp(vm->preferred, n->name) == 0) &&
	    set_allows_return(c, vm, ni)) {
		int r = node_idx(c, vm->return_to);
		if (r >= 0 && fits(c, vm, r, &why) && !rules_worse(c, vm, r, ni)) {
			add_move(c, vm, n, r, here, false, "the node it left for maintenance is back", NULL);
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
	unaccount(c, vm, ni);
	int i = choose(c, vm, ni, &why);
	if (i < 0) {
		account(c, vm, ni);
		g_autofree char *all = explain(c, vm, ni, why);
		add_alert(c, vm->ha ? SCHED_CRITICAL : SCHED_WARNING, vm->uuid, n->name,
			  "VM %s failed to start on node %s %u times (%s), and no other node can take it: %s.",
			  vm->name, n->name, vm->start_failures, vm->start_error ? vm->start_error : "?", all);
		return;
	}
	account(c, vm, i);
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
		add_alert(c, SCHED_WARNING, vm->uuid, f->node,
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
			add_alert(c, SCHED_CRITICAL, NULL, a.node,
				  "HA is paused: node %s is lost, and herd does not fence it until 'herd cluster ha resume'.",
				  a.node);
		else if (a.type == SCHED_MOVE)
			add_alert(c, SCHED_WARNING, a.vm, a.node,
				  "HA is paused: VM %s stays on node %s (it would move to node %s: %s).",
				  vm ? vm->name : a.vm, a.node, a.move_to, a.reason);
		else
			add_alert(c, SCHED_WARNING, a.vm, vm ? vm->node : NULL,
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
		add_alert(c, SCHED_CRITICAL, vm->uuid, NULL,
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
			unaccount(c, vm, ni);
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
			unaccount(c, vm, ni);
			assign(c, vm, m, "it may have been migrated there, which does not report");
			return;
		}
	}
	if (vm->node && !n) {
		/* Its node was removed from the cluster (it was off for good). */
		if (vm->target_running)
			place_new(c, vm, "its node is no longer in the cluster");
		else
			add_action(c, SCHED_RELEASE, vm->uuid, vm->node, NULL, "its node is no longer in the cluster");
		return;
	}
	if (n) {
		if (effectively_down(c, n)) {
			if (!vm->target_running) {
				add_action(c, SCHED_RELEASE, vm->uuid, n->name, NULL, "its node is down");
			} else if (vm->sticky && strcmp(vm->sticky, n->name) == 0) {
				add_alert(c, SCHED_WARNING, vm->uuid, n->name,
					  "VM %s is sticky to node %s, which is down; 'herd vm release %s' lets it start elsewhere.",
					  vm->name, n->name, vm->name);
			} else if (!vm->ha) {
				/* Only HA VMs are restarted elsewhere; this one
				 * starts again when its node is back. */
				add_alert(c, SCHED_WARNING, vm->uuid, n->name,
					  "VM %s is not an HA VM: it waits for node %s to come back.",
					  vm->name, n->name);
			} else if (vm->priority == STORE_VM_PRIORITY_DISABLED) {
				add_alert(c, SCHED_WARNING, vm->uuid, n->name,
					  "VM %s has restart priority disabled: it waits for node %s to come back.",
					  vm->name, n->name);
			} else if (vm->incoming_on) {
				/* Its migration's destination destroys the
				 * arriving copy now that the source is gone,
				 * or runs it if the migration had ended. */
				add_alert(c, SCHED_INFO, vm->uuid, vm->incoming_on,
					  "VM %s waits for its live migration to node %s to end.", vm->name,
					  vm->incoming_on);
			} else {
				place_new(c, vm, "its node is down");
			}
			return;
		}
		if (lost(c, n) && spared(c, n)) {
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is not an HA VM: it waits for node %s to come back.", vm->name, n->name);
			return;
		}
		if (lost(c, n)) {
			need_fence(c, n, vm);
			return;
		}
		if (awaited(c, n)) {
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s waits for node %s to join the cluster.", vm->name, n->name);
			return;
		}
		if (!n->in_ring) {
			/* in maintenance and gone: herd does not fence it */
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is assigned to node %s, which is away in maintenance mode.",
				  vm->name, n->name);
			return;
		}
		if (!n->herd_up) {
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
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
					add_action(c, SCHED_ASSIGN, vm->uuid, vm->seen_on[0], NULL, "it runs there");
			} else if (!here && vm->n_seen == 0 && !vm->incoming_on) {
				add_action(c, SCHED_RELEASE, vm->uuid, n->name, NULL, "it has stopped");
			}
			return;
		}
		if (move_unbinds(vm) && strcmp(vm->move_to, n->name) != 0 && here && !vm->migrating &&
		    !vm->migrate_error && !vm->incoming_on) {
			/* Not started (a node's agent does not start it, see
			 * agent.c): the move is over, the VM stays.  One under
			 * way is left to end; the VM then returns. */
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is sticky to node %s: it does not move to node %s ('herd vm release %s' lets it move).",
				  vm->name, vm->sticky, vm->move_to, vm->name);
			add_action(c, SCHED_ASSIGN, vm->uuid, n->name, NULL,
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
			if (vm->migrate_error && !vm->migrating) {
				if (vm->move_cold_ok) {
					/* Allowed: it goes with a restart. */
					sched_action a = { SCHED_MOVE, vm->uuid, n->name, vm->move_to,
							   "its live migration failed; it moves with a restart",
							   NULL, false, false, NULL, vm->return_to };
					g_array_append_val(c->plan->actions, a);
					return;
				}
				add_alert(c, SCHED_WARNING, vm->uuid, n->name,
					  "The live migration of VM %s to node %s was given up (%s); it keeps running on node %s.",
					  vm->name, vm->move_to, vm->migrate_error, n->name);
				sched_action a = { SCHED_ASSIGN, vm->uuid, n->name, NULL,
						   "its live migration was given up", NULL, false, false,
						   vm->migrate_error };
				g_array_append_val(c->plan->actions, a);
			}
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
				unaccount(c, vm, ni);
				place_new(c, vm, "it moves");
			}
			return;
		}
		if (vm->move_to && strcmp(vm->move_to, n->name) == 0 && here && !vm->migrating) {
			/* Sent where it runs already (a switchover decided on a
			 * view from before it got there): the move is over.  Left
			 * as it is, the destination would bar every other move. */
			add_action(c, SCHED_ASSIGN, vm->uuid, n->name, NULL, "it runs at its destination");
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
		int to = choose(c, vm, ni, &why);
		if (to >= 0 && affinity_cost_cmp(affinity_cost_at(c->aff, vm, to), affinity_cost_at(c->aff, vm, ni)) < 0) {
			add_move(c, vm, &c->in->nodes[ni], to, true, false, "it mends an affinity rule", NULL);
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
			add_alert(c, SCHED_WARNING, vm->uuid, c->in->nodes[ni].name,
				  "VM %s on node %s breaks strict rule %s, and no other node can take it without breaking it; it stays until one can.",
				  vm->name, c->in->nodes[ni].name, r->name);
	}
}

static void ctx_init(ctx *c, const sched_input *in, sched_plan *plan)
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

static void ctx_clear(ctx *c)
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
static void account_settled(ctx *c)
{
	for (size_t v = 0; v < c->in->n_vms; v++) {
		const sched_vm *vm = &c->in->vms[v];
		int i = c->vm_node[v];
		if (vm->target_running && i >= 0 && !effectively_down(c, &c->in->nodes[i]))
			account_assigned(c, vm, i);
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
static GPtrArray *vms_in_order(const sched_input *in, const sched_vm *extra)
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
static bool n_plus_1(ctx *c, GPtrArray *order, const sched_vm *extra, char **detail, unsigned *unsafe)
{
	const sched_input *in = c->in;
	/* What runs on every node; then, per failed node, the same once more. */
	for (guint k = 0; k < order->len; k++) {
		const sched_vm *vm = order->pdata[k];
		int i = vm_node_idx(c, vm);
		if (vm->target_running && i >= 0 && !effectively_down(c, &in->nodes[i]))
			account_assigned(c, vm, i);
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
				int to = choose(c, vm, (int)f, &why);
				placed = to >= 0;
				if (placed)
					account(c, vm, to);
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
	ctx_init(&c, in, &scratch);
	GPtrArray *order = vms_in_order(in, extra);
	bool ok = n_plus_1(&c, order, extra, detail, unsafe_if_lost);
	g_ptr_array_free(order, TRUE);
	ctx_clear(&c);
	g_array_free(scratch.actions, TRUE);
	g_array_free(scratch.alerts, TRUE);
	return ok;
}

bool sched_n_plus_1(const sched_input *in, const sched_vm *extra, char **detail)
{
	return sched_n_plus_1_risk(in, extra, detail, NULL);
}

sched_plan *sched_plan_compute(const sched_input *in)
{
	sched_plan *plan = g_new0(sched_plan, 1);
	plan->actions = g_array_new(FALSE, FALSE, sizeof(sched_action));
	plan->alerts = g_array_new(FALSE, FALSE, sizeof(sched_alert));
	ctx c;
	ctx_init(&c, in, plan);

	for (size_t i = 0; i < in->n_nodes; i++) {
		const sched_node *n = &in->nodes[i];
		if (n->down && n->in_ring && n->herd_up)
			add_action(&c, SCHED_CLEAR_DOWN, NULL, n->name, NULL, "the node is back");
		else if (lost(&c, n) && spared(&c, n))
			add_alert(&c, SCHED_WARNING, NULL, n->name,
				  "Node %s is lost; no HA VM depends on it, so herd does not fence it (fence_idle_nodes=no).",
				  n->name);
		else if (lost(&c, n))
			need_fence(&c, n, NULL); /* every lost node, VMs or not */
		else if (awaited(&c, n))
			add_alert(&c, SCHED_WARNING, NULL, n->name,
				  "Node %s has not joined since the cluster started; herd fences it if it has not joined %u s after the start (join_timeout_s).",
				  n->name, in->join_timeout_s);
	}
	account_settled(&c);
	GPtrArray *order = vms_in_order(in, NULL);
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
	bool ok = n_plus_1(&c, order, NULL, &detail, plan->unsafe_if_lost);
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
	ctx_clear(&c);
	return plan;
}

/* Where @vm goes: anywhere (sched_place), away from its node, or to @to. */
static const char *place(const sched_input *in, const sched_vm *vm, bool away, const char *to,
			 const char **why)
{
	sched_plan scratch = { g_array_new(FALSE, FALSE, sizeof(sched_action)),
			       g_array_new(FALSE, FALSE, sizeof(sched_alert)), true, NULL };
	ctx c;
	ctx_init(&c, in, &scratch);
	account_settled(&c);
	int i = -1;
	if (!to) {
		i = choose(&c, vm, away && vm->node ? node_idx(&c, vm->node) : -1, why);
	} else if ((i = node_idx(&c, to)) < 0) {
		*why = "it is not a node of the cluster";
	} else if (vm->node && strcmp(vm->node, to) == 0) {
		*why = "the VM is there already";
		i = -1;
	} else if (vm->sticky && strcmp(vm->sticky, to) != 0) {
		*why = "the VM is bound to another node (sticky)";
		i = -1;
	} else if (vm->restricted && set_priority(&c, vm, i) < 0) {
		*why = "the VM is restricted to its node set, which does not name it";
		i = -1;
	} else if (!fits(&c, vm, i, why)) {
		i = -1;
	}
	ctx_clear(&c);
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
