#include "ha/sched.h"

#include <string.h>

typedef struct {
	const sched_input *in;
	GHashTable *index;      /* node name -> index + 1 */
	uint64_t *mem_used;
	unsigned *vcpu_used;
	GHashTable *groups;     /* "group\nnode" present */
	GHashTable *fencing;    /* node names with a FENCE action */
	GHashTable *uncovered;  /* lost nodes already reported as unfenceable */
	sched_plan *plan;
} ctx;

static const char *const action_names[] = { "assign", "move", "release", "fence", "clear-down" };
static const char *const mode_names[] = { "online", "standby", "maintenance" };

const char *sched_action_name(sched_action_type t)
{
	return (unsigned)t < G_N_ELEMENTS(action_names) ? action_names[t] : "?";
}

const char *sched_node_mode_name(sched_node_mode m)
{
	return (unsigned)m < G_N_ELEMENTS(mode_names) ? mode_names[m] : "?";
}

bool sched_node_mode_parse(const char *s, sched_node_mode *out)
{
	for (unsigned i = 0; s && i < G_N_ELEMENTS(mode_names); i++) {
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (sched_node_mode)i;
			return true;
		}
	}
	return false;
}

static int node_idx(ctx *c, const char *name)
{
	return name ? GPOINTER_TO_INT(g_hash_table_lookup(c->index, name)) - 1 : -1;
}

static const sched_node *node_of(ctx *c, const char *name)
{
	int i = node_idx(c, name);
	return i >= 0 ? &c->in->nodes[i] : NULL;
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

/* Alive as far as corosync knows, or possibly alive: it must be fenced before
 * its VMs go elsewhere. */
static bool lost(ctx *c, const sched_node *n)
{
	return !n->in_ring && !effectively_down(c, n) && n->mode != SCHED_NODE_MAINTENANCE;
}

static bool usable(const sched_node *n)
{
	return n->in_ring && n->herd_up && !n->down && n->mode == SCHED_NODE_ONLINE;
}

static void add_action(ctx *c, sched_action_type type, const char *vm, const char *node,
		       const char *move_to, const char *reason)
{
	sched_action a = { type, vm, node, move_to, reason };
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

static char *group_key(const char *group, const char *node)
{
	return g_strconcat(group, "\n", node, NULL);
}

static void account(ctx *c, const sched_vm *vm, int i)
{
	c->mem_used[i] += vm->memory_mib;
	c->vcpu_used[i] += vm->vcpus;
	if (vm->group)
		g_hash_table_add(c->groups, group_key(vm->group, c->in->nodes[i].name));
}

/* Could @vm run on node @i now?  *@why: a static reason when not. */
static bool fits(ctx *c, const sched_vm *vm, int i, const char **why)
{
	const sched_node *n = &c->in->nodes[i];
	if (!usable(n)) {
		*why = "not online";
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
	if (vm->group) {
		g_autofree char *key = group_key(vm->group, n->name);
		if (g_hash_table_contains(c->groups, key)) {
			*why = "a VM of its anti-affinity group is there";
			return false;
		}
	}
	return true;
}

/*
 * The best node for @vm other than @avoid: its sticky node only; else its
 * preferred node; else the one with the most memory left; ties by name.
 */
static int choose(ctx *c, const sched_vm *vm, const char *avoid, const char **why)
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
		if (fits(c, vm, i, why))
			return i;
		*why = "its sticky node cannot take it now";
		return -1;
	}
	int pref = node_idx(c, vm->preferred);
	const char *pref_why = NULL;
	if (pref >= 0 && (!avoid || strcmp(in->nodes[pref].name, avoid) != 0) &&
	    fits(c, vm, pref, &pref_why))
		return pref;
	int best = -1;
	int64_t best_free = 0;
	for (size_t i = 0; i < in->n_nodes; i++) {
		const char *w = NULL;
		if (avoid && strcmp(in->nodes[i].name, avoid) == 0)
			continue;
		if (!fits(c, vm, (int)i, &w)) {
			*why = w;
			continue;
		}
		int64_t free = (int64_t)in->nodes[i].memory_mib - (int64_t)c->mem_used[i] -
			       (int64_t)vm->memory_mib;
		if (best < 0 || free > best_free ||
		    (free == best_free && strcmp(in->nodes[i].name, in->nodes[best].name) < 0)) {
			best = (int)i;
			best_free = free;
		}
	}
	if (best < 0 && pref_why)
		*why = pref_why;
	return best;
}

/* Why no node can take @vm, node by node (only called when none can). */
static char *explain(ctx *c, const sched_vm *vm, const char *avoid, const char *why)
{
	if (vm->sticky || c->in->n_nodes == 0)
		return g_strdup(why ? why : "no node is online");
	GString *s = g_string_new("no node can take it (");
	bool first = true;
	for (size_t i = 0; i < c->in->n_nodes; i++) {
		const char *w = NULL;
		if (avoid && strcmp(c->in->nodes[i].name, avoid) == 0)
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

static void assign(ctx *c, const sched_vm *vm, int i, const char *reason)
{
	account(c, vm, i);
	add_action(c, SCHED_ASSIGN, vm->uuid, c->in->nodes[i].name, NULL, reason);
}

static void place_new(ctx *c, const sched_vm *vm, const char *reason)
{
	const char *why = NULL;
	int i = -1;
	/* A requested destination is honoured when it can take the VM. */
	if (vm->move_to) {
		int m = node_idx(c, vm->move_to);
		if (m >= 0 && fits(c, vm, m, &why))
			i = m;
	}
	if (i < 0)
		i = choose(c, vm, NULL, &why);
	if (i >= 0) {
		assign(c, vm, i, reason);
		return;
	}
	g_autofree char *all = explain(c, vm, NULL, why);
	add_alert(c, vm->ha ? SCHED_CRITICAL : SCHED_WARNING, vm->uuid, NULL,
		  "VM %s cannot be started: %s.", vm->name, all);
}

/* The VM runs on @n, a live node; should it move? */
static void consider_move(ctx *c, const sched_vm *vm, const sched_node *n)
{
	const char *why = NULL;
	if (n->mode != SCHED_NODE_ONLINE) {
		if (vm->sticky) {
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s is sticky to node %s, which is in %s mode; it stays until 'herd vm release %s'.",
				  vm->name, n->name, sched_node_mode_name(n->mode), vm->name);
			return;
		}
		int i = choose(c, vm, n->name, &why);
		if (i < 0) {
			g_autofree char *all = explain(c, vm, n->name, why);
			add_alert(c, SCHED_WARNING, vm->uuid, n->name,
				  "VM %s cannot leave node %s (%s mode): %s.", vm->name, n->name,
				  sched_node_mode_name(n->mode), all);
			return;
		}
		account(c, vm, i);
		add_action(c, SCHED_MOVE, vm->uuid, n->name, c->in->nodes[i].name,
			   "its node is leaving service");
		return;
	}
	if (vm->preferred && vm->failback && !vm->sticky && vm->steady &&
	    strcmp(vm->preferred, n->name) != 0) {
		int p = node_idx(c, vm->preferred);
		if (p >= 0 && fits(c, vm, p, &why)) {
			account(c, vm, p);
			add_action(c, SCHED_MOVE, vm->uuid, n->name, c->in->nodes[p].name,
				   "its preferred node is back");
			return;
		}
	}
	/* stays: it already counts against its node */
}

static bool seen_on(const sched_vm *vm, const char *node)
{
	for (unsigned k = 0; k < vm->n_seen; k++)
		if (strcmp(vm->seen_on[k], node) == 0)
			return true;
	return false;
}

static void decide_vm(ctx *c, const sched_vm *vm)
{
	if (vm->n_seen > 1) {
		GString *where = g_string_new(NULL);
		for (unsigned k = 0; k < vm->n_seen; k++)
			g_string_append_printf(where, "%s%s", k ? ", " : "", vm->seen_on[k]);
		add_alert(c, SCHED_CRITICAL, vm->uuid, NULL,
			  "VM %s is reported on several nodes (%s); herd stops it everywhere but on its assigned node.",
			  vm->name, where->str);
		g_string_free(where, TRUE);
	}
	const sched_node *n = node_of(c, vm->node);
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
			} else {
				place_new(c, vm, "its node is down");
			}
			return;
		}
		if (lost(c, n)) {
			need_fence(c, n, vm);
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
			/* Its node stops it; once stopped it is no longer bound there. */
			if (!here)
				add_action(c, SCHED_RELEASE, vm->uuid, n->name, NULL, "it has stopped");
			return;
		}
		if (vm->move_to && strcmp(vm->move_to, n->name) != 0) {
			/* Its node stops it for the move; then it goes. */
			if (!here)
				place_new(c, vm, "it moves");
			return;
		}
		consider_move(c, vm, n);
		return;
	}
	/* Unassigned: wait until no node reports it, then place it. */
	if (!vm->target_running || vm->n_seen > 0)
		return;
	place_new(c, vm, "it is to be running");
}

static void ctx_init(ctx *c, const sched_input *in, sched_plan *plan)
{
	c->in = in;
	c->plan = plan;
	c->index = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t i = 0; i < in->n_nodes; i++)
		g_hash_table_insert(c->index, (gpointer)in->nodes[i].name, GINT_TO_POINTER((int)i + 1));
	c->mem_used = g_new0(uint64_t, in->n_nodes ? in->n_nodes : 1);
	c->vcpu_used = g_new0(unsigned, in->n_nodes ? in->n_nodes : 1);
	c->groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->fencing = g_hash_table_new(g_str_hash, g_str_equal);
	c->uncovered = g_hash_table_new(g_str_hash, g_str_equal);
}

static void ctx_clear(ctx *c)
{
	g_hash_table_destroy(c->index);
	g_hash_table_destroy(c->groups);
	g_hash_table_destroy(c->fencing);
	g_hash_table_destroy(c->uncovered);
	g_free(c->mem_used);
	g_free(c->vcpu_used);
}

/* Count what runs where it should already: it keeps its place. */
static void account_settled(ctx *c)
{
	for (size_t v = 0; v < c->in->n_vms; v++) {
		const sched_vm *vm = &c->in->vms[v];
		int i = node_idx(c, vm->node);
		if (vm->target_running && i >= 0 && !effectively_down(c, &c->in->nodes[i]))
			account(c, vm, i);
	}
}

/* VMs in the order they are decided: placed ones first (they hold their
 * room), HA before non-HA, then by name — so the result is deterministic. */
static gint vm_order(gconstpointer a, gconstpointer b)
{
	const sched_vm *x = *(const sched_vm *const *)a, *y = *(const sched_vm *const *)b;
	if ((x->node != NULL) != (y->node != NULL))
		return x->node ? -1 : 1;
	if (x->ha != y->ha)
		return x->ha ? -1 : 1;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->uuid, y->uuid);
}

bool sched_n_plus_1(const sched_input *in, const sched_vm *extra, char **detail)
{
	for (size_t f = 0; f < in->n_nodes; f++) {
		const sched_node *failed = &in->nodes[f];
		if (!usable(failed))
			continue;
		sched_plan scratch = { g_array_new(FALSE, FALSE, sizeof(sched_action)),
				       g_array_new(FALSE, FALSE, sizeof(sched_alert)), true };
		ctx c;
		ctx_init(&c, in, &scratch);
		/* Everything not on the failed node stays where it is. */
		GPtrArray *displaced = g_ptr_array_new();
		for (size_t v = 0; v <= in->n_vms; v++) {
			const sched_vm *vm = v < in->n_vms ? &in->vms[v] : extra;
			if (!vm || !vm->target_running)
				continue;
			int i = node_idx(&c, vm->node);
			if (vm == extra && i < 0)
				i = (int)f; /* count the new VM on the node that fails: worst case */
			if (i == (int)f) {
				if (vm->ha)
					g_ptr_array_add(displaced, (gpointer)vm);
			} else if (i >= 0 && !effectively_down(&c, &in->nodes[i])) {
				account(&c, vm, i);
			}
		}
		g_ptr_array_sort(displaced, vm_order);
		const char *stuck = NULL;
		for (guint k = 0; k < displaced->len && !stuck; k++) {
			const sched_vm *vm = displaced->pdata[k];
			const char *why;
			int i = choose(&c, vm, failed->name, &why);
			if (i < 0)
				stuck = vm->name;
			else
				account(&c, vm, i);
		}
		g_ptr_array_free(displaced, TRUE);
		ctx_clear(&c);
		g_array_free(scratch.actions, TRUE);
		g_array_free(scratch.alerts, TRUE);
		if (stuck) {
			if (detail)
				*detail = g_strdup_printf(
					"If node %s failed, HA VM %s (and maybe others) would find no room on the other nodes.",
					failed->name, stuck);
			return false;
		}
	}
	return true;
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
		else if (lost(&c, n))
			need_fence(&c, n, NULL); /* every lost node, VMs or not */
	}
	account_settled(&c);
	GPtrArray *order = g_ptr_array_sized_new((guint)in->n_vms);
	for (size_t v = 0; v < in->n_vms; v++)
		g_ptr_array_add(order, (gpointer)&in->vms[v]);
	g_ptr_array_sort(order, vm_order);
	for (guint k = 0; k < order->len; k++)
		decide_vm(&c, order->pdata[k]);
	g_ptr_array_free(order, TRUE);
	ctx_clear(&c);

	if (in->admission != SCHED_ADMISSION_OFF) {
		char *detail = NULL;
		plan->n_plus_1 = sched_n_plus_1(in, NULL, &detail);
		if (!plan->n_plus_1) {
			sched_alert a = { SCHED_WARNING, NULL, NULL, detail };
			g_array_append_val(plan->alerts, a);
		}
	} else {
		plan->n_plus_1 = true;
	}
	return plan;
}

const char *sched_place(const sched_input *in, const sched_vm *vm, const char **why)
{
	sched_plan scratch = { g_array_new(FALSE, FALSE, sizeof(sched_action)),
			       g_array_new(FALSE, FALSE, sizeof(sched_alert)), true };
	ctx c;
	ctx_init(&c, in, &scratch);
	account_settled(&c);
	int i = choose(&c, vm, NULL, why);
	ctx_clear(&c);
	g_array_free(scratch.actions, TRUE);
	g_array_free(scratch.alerts, TRUE);
	return i >= 0 ? in->nodes[i].name : NULL;
}

void sched_plan_free(sched_plan *p)
{
	if (!p)
		return;
	for (guint i = 0; i < p->alerts->len; i++)
		g_free(g_array_index(p->alerts, sched_alert, i).message);
	g_array_free(p->actions, TRUE);
	g_array_free(p->alerts, TRUE);
	g_free(p);
}
