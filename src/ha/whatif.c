#include "ha/whatif.h"

#include "common/error.h"

#include <string.h>

/*
 * The hypothetical world: a copy of the input's nodes and VMs that the
 * rounds change.  Strings are borrowed from the input (the scheduler's
 * actions name nodes by the input's own pointers); only the seen_on lists
 * are ours, because the agents' starts and stops change them.
 */
typedef struct {
	sched_input in;          /* points to nodes and vms below */
	sched_node *nodes;
	sched_vm *vms;
	const char **seen_buf;   /* every VM's seen_on list, one slice each */
	GHashTable *vm_index;    /* uuid -> index + 1 */
	GHashTable *node_index;  /* name -> index + 1 */
	const char **moved_why;  /* per VM: the reason of its first action, or NULL */
	GPtrArray *fenced;       /* node names (borrowed), in the order fenced */
} world;

static int world_node(const world *w, const char *name)
{
	return name ? GPOINTER_TO_INT(g_hash_table_lookup(w->node_index, name)) - 1 : -1;
}

static void world_init(world *w, const sched_input *in)
{
	w->in = *in;
	w->nodes = g_memdup2(in->nodes, in->n_nodes * sizeof(sched_node));
	w->vms = g_memdup2(in->vms, in->n_vms * sizeof(sched_vm));
	w->in.nodes = w->nodes;
	w->in.vms = w->vms;
	w->node_index = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t i = 0; i < in->n_nodes; i++)
		g_hash_table_insert(w->node_index, (gpointer)in->nodes[i].name, GINT_TO_POINTER((int)i + 1));
	w->vm_index = g_hash_table_new(g_str_hash, g_str_equal);
	/* A VM's list keeps some of its names and may gain its own node:
	 * room for n_seen + 1 names each. */
	size_t total = 1;
	for (size_t k = 0; k < in->n_vms; k++)
		total += in->vms[k].n_seen + 1;
	w->seen_buf = g_new0(const char *, total);
	w->moved_why = g_new0(const char *, MAX(in->n_vms, 1));
	size_t off = 0;
	for (size_t k = 0; k < in->n_vms; k++) {
		sched_vm *v = &w->vms[k];
		g_hash_table_insert(w->vm_index, (gpointer)v->uuid, GSIZE_TO_POINTER(k + 1));
		const char **slice = &w->seen_buf[off];
		for (unsigned s = 0; s < v->n_seen; s++)
			slice[s] = v->seen_on[s];
		v->seen_on = slice;
		off += v->n_seen + 1;
	}
	w->fenced = g_ptr_array_new();
}

static void world_clear(world *w)
{
	g_free(w->nodes);
	g_free(w->vms);
	g_free(w->seen_buf);
	g_free(w->moved_why);
	g_hash_table_destroy(w->vm_index);
	g_hash_table_destroy(w->node_index);
	g_ptr_array_free(w->fenced, TRUE);
}

/* The writable view of VM @k's seen_on list. */
static const char **seen_of(world *w, size_t k)
{
	return (const char **)w->vms[k].seen_on;
}

/* Forget that VM @k is seen on node @name. */
static void unsee(world *w, size_t k, const char *name)
{
	sched_vm *v = &w->vms[k];
	const char **s = seen_of(w, k);
	unsigned kept = 0;
	for (unsigned i = 0; i < v->n_seen; i++)
		if (strcmp(s[i], name) != 0)
			s[kept++] = s[i];
	v->n_seen = kept;
}

/* A node whose herd runs and reports: its agent starts and stops VMs. */
static bool agent_acts(const sched_node *n)
{
	return n->in_ring && n->herd_up;
}

/* The node VM @v runs on when its node's agent has done its part, or NULL. */
static const sched_node *runs_on(const world *w, const sched_vm *v)
{
	int i = world_node(w, v->node);
	if (!v->target_running || i < 0 || !w->nodes[i].in_ring)
		return NULL;
	if (v->move_to && strcmp(v->move_to, v->node) != 0) {
		/* Migrated live when both ends' agents act; else stopped for
		 * the move. */
		int m = world_node(w, v->move_to);
		if (v->move_live && m >= 0 && agent_acts(&w->nodes[i]) && agent_acts(&w->nodes[m]))
			return &w->nodes[m];
		return NULL;
	}
	return &w->nodes[i];
}

/*
 * Every live node's agent does what the store asks: it runs the VMs
 * assigned to it that are to be running and not moving away, and stops
 * every other VM it has.  Time is skipped: what it runs is steady.  What a
 * node with no herd reports is left as it is.  True if a fact changed.
 */
static bool agents_act(world *w)
{
	bool changed = false;
	for (size_t k = 0; k < w->in.n_vms; k++) {
		sched_vm *v = &w->vms[k];
		const sched_node *want = runs_on(w, v);
		if (want && !agent_acts(want))
			want = NULL;
		const char **s = seen_of(w, k);
		unsigned kept = 0;
		bool there = false;
		for (unsigned i = 0; i < v->n_seen; i++) {
			int ni = world_node(w, s[i]);
			if (want && strcmp(s[i], want->name) == 0)
				there = true;
			else if (ni >= 0 && agent_acts(&w->nodes[ni]))
				continue; /* that agent stops it */
			s[kept++] = s[i];
		}
		if (kept != v->n_seen)
			changed = true;
		v->n_seen = kept;
		if (want && !there) {
			s[v->n_seen++] = want->name;
			changed = true;
		}
		if (want && !v->steady) {
			v->steady = true;
			changed = true;
		}
	}
	return changed;
}

/* The power of node @i is cut: it leaves the ring, its herd is gone, and
 * what ran there is gone with it. */
static void cut_power(world *w, int i)
{
	sched_node *n = &w->nodes[i];
	n->in_ring = n->herd_up = false;
	n->awaited = n->added = false;
	for (size_t k = 0; k < w->in.n_vms; k++) {
		unsee(w, k, n->name);
		/* A live migration from or to it fails: its destination
		 * destroys the arriving copy. */
		sched_vm *v = &w->vms[k];
		if (v->incoming_on && (strcmp(v->incoming_on, n->name) == 0 ||
				       g_strcmp0(v->node, n->name) == 0))
			v->incoming_on = NULL;
	}
}

static sched_vm *action_vm(world *w, const sched_action *a, size_t *k)
{
	gpointer p = a->vm ? g_hash_table_lookup(w->vm_index, a->vm) : NULL;
	if (!p)
		return NULL;
	*k = GPOINTER_TO_SIZE(p) - 1;
	return &w->vms[*k];
}

/* Carry out @a in the store, as the coordinator would; true if it changed
 * something. */
static bool apply_action(world *w, const sched_action *a)
{
	size_t k = 0;
	sched_vm *v = action_vm(w, a, &k);
	switch (a->type) {
	case SCHED_ASSIGN:
		if (!v || (g_strcmp0(v->node, a->node) == 0 && !v->move_to))
			return false;
		v->node = a->node;
		v->move_to = NULL;
		v->move_live = false;
		if (g_strcmp0(v->return_to, a->node) == 0)
			v->return_to = NULL; /* it is back */
		break;
	case SCHED_MOVE:
		if (!v || (g_strcmp0(v->move_to, a->move_to) == 0 && v->move_live == a->live))
			return false;
		v->move_to = a->move_to;
		v->move_live = a->live;
		v->return_to = a->return_to;
		break;
	case SCHED_RELEASE:
		if (!v || (!v->node && !v->move_to))
			return false;
		v->node = v->move_to = NULL;
		v->move_live = false;
		break;
	case SCHED_FENCE: {
		int i = world_node(w, a->node);
		if (i < 0 || w->nodes[i].down || !(w->in.lab_mode || w->nodes[i].fence_covered))
			return false;
		w->nodes[i].down = true;
		g_ptr_array_add(w->fenced, (gpointer)w->nodes[i].name);
		return true;
	}
	case SCHED_CLEAR_DOWN:
		/* No node comes back in a what-if. */
		return false;
	}
	if (!w->moved_why[k])
		w->moved_why[k] = a->reason;
	return true;
}

/* "assign VM web1 to node n3" and the like, for a what-if that does not settle. */
static char *describe_action(world *w, const sched_action *a)
{
	size_t k = 0;
	const sched_vm *v = action_vm(w, a, &k);
	const char *vm = v ? v->name : a->vm;
	switch (a->type) {
	case SCHED_ASSIGN:
		return g_strdup_printf("assign VM %s to node %s", vm, a->node);
	case SCHED_MOVE:
		return g_strdup_printf("move VM %s from node %s to %s", vm, a->node, a->move_to);
	case SCHED_RELEASE:
		return g_strdup_printf("release VM %s from node %s", vm, a->node);
	default:
		return g_strdup_printf("%s node %s", sched_action_name(a->type), a->node);
	}
}

/* The last plan's word on VM @uuid, or on its node @node when it has none
 * of its own (a lost node no fence device covers speaks for its VMs). */
static const char *alert_for(const sched_plan *plan, const char *uuid, const char *node)
{
	const char *about_node = NULL;
	for (guint i = 0; i < plan->alerts->len; i++) {
		const sched_alert *a = &g_array_index(plan->alerts, sched_alert, i);
		if (a->vm && strcmp(a->vm, uuid) == 0)
			return a->message;
		if (!a->vm && a->node && node && !about_node && strcmp(a->node, node) == 0)
			about_node = a->message;
	}
	return about_node;
}

/* The reason of the last plan's action for VM @uuid, or NULL. */
static const char *pending_for(const sched_plan *plan, const char *uuid)
{
	for (guint i = 0; i < plan->actions->len; i++) {
		const sched_action *a = &g_array_index(plan->actions, sched_action, i);
		if (a->vm && strcmp(a->vm, uuid) == 0)
			return a->reason;
	}
	return NULL;
}

static void whatif_vm_free(gpointer p)
{
	sched_whatif_vm *v = p;
	g_free(v->uuid);
	g_free(v->name);
	g_free(v->node_before);
	g_free(v->node_after);
	g_free(v->reason);
	g_free(v);
}

static gint whatif_vm_order(gconstpointer a, gconstpointer b)
{
	const sched_whatif_vm *x = *(sched_whatif_vm *const *)a, *y = *(sched_whatif_vm *const *)b;
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->uuid, y->uuid);
}

/* The VMs the hypothetical touches, with the scheduler's reasons. */
static void list_vms(sched_whatif_result *r, world *w, const sched_input *in, const sched_plan *last,
		     GHashTable *named)
{
	for (size_t k = 0; k < in->n_vms; k++) {
		const sched_vm *before = &in->vms[k], *v = &w->vms[k];
		if (!before->target_running)
			continue;
		const sched_node *at = runs_on(w, v);
		const char *after = at ? at->name : NULL;
		bool moved = g_strcmp0(before->node, after) != 0;
		if (!moved && after && !(before->node && g_hash_table_contains(named, before->node)))
			continue;
		const char *reason = NULL;
		if (moved && after)
			reason = w->moved_why[k];
		if (!reason)
			reason = alert_for(last, v->uuid, v->node);
		if (!reason)
			reason = w->moved_why[k];
		if (!reason)
			reason = pending_for(last, v->uuid);
		sched_whatif_vm *o = g_new0(sched_whatif_vm, 1);
		o->uuid = g_strdup(v->uuid);
		o->name = g_strdup(v->name);
		o->node_before = g_strdup(before->node);
		o->node_after = g_strdup(after);
		o->priority = before->priority;
		o->reason = g_strdup(reason);
		g_ptr_array_add(r->vms, o);
	}
	g_ptr_array_sort(r->vms, whatif_vm_order);
}

/* Apply @h to @w (the first step); false when it names a node @w does not have. */
static bool apply_hypothesis(world *w, const sched_hypothesis *h, GHashTable *named, GError **error)
{
	for (size_t i = 0; i < h->n_node_down + h->n_standby; i++) {
		bool down = i < h->n_node_down;
		const char *name = down ? h->node_down[i] : h->standby[i - h->n_node_down];
		int ni = world_node(w, name);
		if (ni < 0) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Node '%s' is not a node of the cluster.",
				    name ? name : "");
			return false;
		}
		g_hash_table_add(named, (gpointer)w->nodes[ni].name);
		if (down)
			cut_power(w, ni);
		else
			w->nodes[ni].mode = STORE_NODE_STANDBY;
	}
	return true;
}

static void collect_end_state(sched_whatif_result *r, world *w, const sched_plan *last)
{
	for (guint i = 0; i < w->fenced->len; i++)
		g_ptr_array_add(r->fenced, g_strdup(w->fenced->pdata[i]));
	for (guint i = 0; i < last->alerts->len; i++) {
		const sched_alert *a = &g_array_index(last->alerts, sched_alert, i);
		if (!a->vm && a->node)
			g_ptr_array_add(r->node_alerts, g_strdup(a->message));
	}
	r->n_nodes = w->in.n_nodes;
	r->node_names = g_new0(char *, r->n_nodes + 1);
	for (size_t i = 0; i < r->n_nodes; i++)
		r->node_names[i] = g_strdup(w->nodes[i].name);
	r->unsafe_if_lost = g_new0(unsigned, MAX(r->n_nodes, 1));
	r->n_plus_1 = sched_n_plus_1_risk(&w->in, NULL, &r->n_plus_1_detail, r->unsafe_if_lost);
}

sched_whatif_result *sched_whatif(const sched_input *in, const sched_hypothesis *h, GError **error)
{
	static const sched_hypothesis nothing;
	if (!h)
		h = &nothing;
	world w = { 0 };
	world_init(&w, in);
	g_autoptr(GHashTable) named = g_hash_table_new(g_str_hash, g_str_equal);
	if (!apply_hypothesis(&w, h, named, error)) {
		world_clear(&w);
		return NULL;
	}
	sched_whatif_result *r = g_new0(sched_whatif_result, 1);
	r->vms = g_ptr_array_new_with_free_func(whatif_vm_free);
	r->fenced = g_ptr_array_new_with_free_func(g_free);
	r->node_alerts = g_ptr_array_new_with_free_func(g_free);

	/* The facts catch up with the store first (a VM being started or
	 * stopped in the live state); then plan, act, and plan again. */
	agents_act(&w);
	g_autoptr(sched_plan) plan = NULL;
	g_autofree char *last_change = NULL;
	unsigned max_rounds = h->max_rounds ? h->max_rounds : SCHED_WHATIF_MAX_ROUNDS;
	while (r->rounds < max_rounds) {
		g_clear_pointer(&plan, sched_plan_free);
		plan = sched_plan_compute(&w.in);
		r->rounds++;
		g_clear_pointer(&last_change, g_free);
		for (guint i = 0; i < plan->actions->len; i++) {
			const sched_action *a = &g_array_index(plan->actions, sched_action, i);
			if (apply_action(&w, a) && !last_change)
				last_change = describe_action(&w, a);
		}
		bool facts_changed = agents_act(&w);
		if (!last_change && !facts_changed) {
			r->settled = true;
			break;
		}
	}
	if (!r->settled) {
		r->unsettled = g_strdup_printf(
			"The what-if still changed something after %u round%s (%s); the result shows where it stopped.",
			r->rounds, r->rounds == 1 ? "" : "s",
			last_change ? last_change : "VMs were started or stopped");
		/* Reasons come from a plan of the state the result shows. */
		g_clear_pointer(&plan, sched_plan_free);
		plan = sched_plan_compute(&w.in);
	}
	list_vms(r, &w, in, plan, named);
	collect_end_state(r, &w, plan);
	world_clear(&w);
	return r;
}

void sched_whatif_result_free(sched_whatif_result *r)
{
	if (!r)
		return;
	g_ptr_array_free(r->vms, TRUE);
	g_ptr_array_free(r->fenced, TRUE);
	g_ptr_array_free(r->node_alerts, TRUE);
	g_free(r->unsettled);
	g_free(r->n_plus_1_detail);
	g_strfreev(r->node_names);
	g_free(r->unsafe_if_lost);
	g_free(r);
}
