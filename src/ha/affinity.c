/*
 * Affinity rules for the scheduler (see affinity.h).  Rules are few and
 * small beside the VMs: everything is per VM index of the input, and a
 * cluster without rules pays one test per call.
 */
#include "ha/affinity.h"

#include <string.h>

typedef struct {
	const sched_rule *rule;
	int *vms;                /* VM indices of the input */
	size_t n_vms;
} rule_members;

struct affinity {
	const sched_input *in;
	const bool *open;
	GHashTable *member;      /* uuid -> VM index + 1, for VMs some rule names */
	rule_members *rules;     /* per rule of the input */
	GArray **rules_of;       /* per VM index: guint rule indices, or NULL */
	int *at;                 /* per VM index: the node it is counted on, or -1 */
	int *leaving;            /* per VM index: the node it still runs on while it
				  * moves to @at, or -1 */
	const char *refusal;
	int refusal_node;
};

affinity *affinity_new(const sched_input *in, const bool *open)
{
	affinity *a = g_new0(affinity, 1);
	a->in = in;
	a->open = open;
	if (!in->n_rules || !in->n_vms)
		return a;
	a->member = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t r = 0; r < in->n_rules; r++)
		for (size_t k = 0; k < in->rules[r].n_vms; k++)
			g_hash_table_insert(a->member, (gpointer)in->rules[r].vms[k], GINT_TO_POINTER(0));
	for (size_t v = 0; v < in->n_vms; v++)
		if (g_hash_table_contains(a->member, in->vms[v].uuid))
			g_hash_table_insert(a->member, (gpointer)in->vms[v].uuid, GINT_TO_POINTER((int)v + 1));
	a->rules = g_new0(rule_members, in->n_rules);
	a->rules_of = g_new0(GArray *, in->n_vms);
	for (size_t r = 0; r < in->n_rules; r++) {
		const sched_rule *rule = &in->rules[r];
		a->rules[r].rule = rule;
		a->rules[r].vms = g_new(int, rule->n_vms ? rule->n_vms : 1);
		for (size_t k = 0; k < rule->n_vms; k++) {
			int v = GPOINTER_TO_INT(g_hash_table_lookup(a->member, rule->vms[k])) - 1;
			if (v < 0)
				continue; /* not in the input */
			a->rules[r].vms[a->rules[r].n_vms++] = v;
			if (!a->rules_of[v])
				a->rules_of[v] = g_array_new(FALSE, FALSE, sizeof(guint));
			guint ri = (guint)r;
			g_array_append_val(a->rules_of[v], ri);
		}
	}
	a->at = g_new(int, 2 * in->n_vms);
	a->leaving = a->at + in->n_vms;
	for (size_t v = 0; v < 2 * in->n_vms; v++)
		a->at[v] = -1;
	return a;
}

void affinity_free(affinity *a)
{
	if (!a)
		return;
	if (a->member)
		g_hash_table_destroy(a->member);
	for (size_t r = 0; a->rules && r < a->in->n_rules; r++)
		g_free(a->rules[r].vms);
	g_free(a->rules);
	for (size_t v = 0; a->rules_of && v < a->in->n_vms; v++)
		if (a->rules_of[v])
			g_array_free(a->rules_of[v], TRUE);
	g_free(a->rules_of);
	g_free(a->at);
	g_free(a);
}

bool affinity_any(const affinity *a)
{
	return a->at != NULL;
}

/* @vm's index in the input if some rule names it, else -1.  A VM judged
 * from outside (a copy) is found by its UUID. */
static int index_of(const affinity *a, const sched_vm *vm)
{
	if (!a->at)
		return -1;
	uintptr_t off = (uintptr_t)vm - (uintptr_t)a->in->vms;
	if (off < a->in->n_vms * sizeof(sched_vm)) {
		size_t v = off / sizeof(sched_vm);
		return a->rules_of[v] ? (int)v : -1;
	}
	return GPOINTER_TO_INT(g_hash_table_lookup(a->member, vm->uuid)) - 1;
}

void affinity_put(affinity *a, const sched_vm *vm, int node, int from)
{
	int v = index_of(a, vm);
	if (v < 0)
		return;
	if (from < 0 && a->at[v] >= 0 && a->at[v] != node)
		from = a->at[v]; /* a move planned now: it runs there until it is over */
	a->at[v] = node;
	a->leaving[v] = from != node ? from : -1;
}

void affinity_take(affinity *a, const sched_vm *vm, int node)
{
	int v = index_of(a, vm);
	if (v < 0)
		return;
	/* Off its node, or off the node a move of it leaves: placed anew. */
	if (a->at[v] == node || a->leaving[v] == node)
		a->at[v] = a->leaving[v] = -1;
}

int affinity_at(const affinity *a, const sched_vm *vm)
{
	int v = index_of(a, vm);
	return v >= 0 ? a->at[v] : -1;
}

void affinity_reset(affinity *a)
{
	for (size_t v = 0; a->at && v < 2 * a->in->n_vms; v++)
		a->at[v] = -1;
}

int *affinity_save(const affinity *a)
{
	return a->at ? g_memdup2(a->at, 2 * a->in->n_vms * sizeof(int)) : NULL;
}

void affinity_restore(affinity *a, const int *saved)
{
	if (a->at && saved)
		memcpy(a->at, saved, 2 * a->in->n_vms * sizeof(int));
}

/* Where partner @m binds, or -1: nowhere (not counted, or on a node that
 * is not open). */
static int bound_at(const affinity *a, int m)
{
	int at = a->at[m];
	return at >= 0 && a->open[at] ? at : -1;
}

/* Calls @each for every partner of VM index @v in every rule of @v;
 * stops when it returns false. */
typedef bool (*partner_fn)(const affinity *a, const sched_rule *rule, int partner, void *data);

static void each_partner(const affinity *a, int v, partner_fn each, void *data)
{
	GArray *rules = a->rules_of[v];
	for (guint k = 0; k < rules->len; k++) {
		const rule_members *rm = &a->rules[g_array_index(rules, guint, k)];
		for (size_t j = 0; j < rm->n_vms; j++)
			if (rm->vms[j] != v && !each(a, rm->rule, rm->vms[j], data))
				return;
	}
}

typedef struct {
	int node;
	affinity_cost cost;
} cost_walk;

static bool add_cost(const affinity *a, const sched_rule *rule, int m, void *data)
{
	cost_walk *w = data;
	int at = bound_at(a, m);
	if (at < 0 || (rule->apart ? at != w->node : at == w->node))
		return true;
	if (rule->strict)
		w->cost.strict++;
	else
		w->cost.soft++;
	return true;
}

affinity_cost affinity_cost_at(const affinity *a, const sched_vm *vm, int node)
{
	cost_walk w = { node, { 0, 0 } };
	int v = index_of(a, vm);
	if (v >= 0)
		each_partner(a, v, add_cost, &w);
	return w.cost;
}

int affinity_cost_cmp(affinity_cost x, affinity_cost y)
{
	if (x.strict != y.strict)
		return x.strict < y.strict ? -1 : 1;
	if (x.soft != y.soft)
		return x.soft < y.soft ? -1 : 1;
	return 0;
}

/* Why strict rule @rm keeps VM index @v off node @node, or NULL. */
static char *strict_refusal(const affinity *a, const rule_members *rm, int v, int node)
{
	const sched_rule *rule = rm->rule;
	int elsewhere = -1;
	for (size_t j = 0; j < rm->n_vms; j++) {
		int m = rm->vms[j], at = m != v ? bound_at(a, m) : -1;
		/* Apart: not even while the partner leaves the node. */
		int from = m != v && a->leaving[m] >= 0 && a->open[a->leaving[m]] ? a->leaving[m] : -1;
		if (rule->apart && from == node)
			return g_strdup_printf("strict rule %s keeps it apart from VM %s there", rule->name,
					       a->in->vms[m].name);
		if (at < 0)
			continue;
		if (rule->apart && at == node)
			return g_strdup_printf("strict rule %s keeps it apart from VM %s there", rule->name,
					       a->in->vms[m].name);
		if (!rule->apart && at == node)
			return NULL; /* beside a partner: allowed, even if others are split */
		if (!rule->apart && elsewhere < 0)
			elsewhere = m;
	}
	if (elsewhere < 0)
		return NULL;
	return g_strdup_printf("strict rule %s keeps it with VM %s on node %s", rule->name,
			       a->in->vms[elsewhere].name, a->in->nodes[bound_at(a, elsewhere)].name);
}

bool affinity_allows(affinity *a, const sched_vm *vm, int node, const char **why)
{
	int v = index_of(a, vm);
	if (v < 0)
		return true;
	GArray *rules = a->rules_of[v];
	for (guint k = 0; k < rules->len; k++) {
		const rule_members *rm = &a->rules[g_array_index(rules, guint, k)];
		if (!rm->rule->strict)
			continue;
		g_autofree char *text = strict_refusal(a, rm, v, node);
		if (!text)
			continue;
		/* Interned: the scheduler's reasons are static or outlive the
		 * plan (the API quotes them after the scheduler's state is
		 * gone).  They are as many as the rules, their VMs and nodes. */
		*why = g_intern_string(text);
		a->refusal = *why;
		a->refusal_node = node;
		return false;
	}
	return true;
}

const char *affinity_last_refusal(const affinity *a, int *node)
{
	*node = a->refusal_node;
	return a->refusal;
}

void affinity_forget(affinity *a)
{
	a->refusal = NULL;
}

typedef struct {
	int node;
	const sched_rule *strict, *soft;
} broken_walk;

static bool find_broken(const affinity *a, const sched_rule *rule, int m, void *data)
{
	broken_walk *w = data;
	int at = bound_at(a, m);
	if (at < 0 || (rule->apart ? at != w->node : at == w->node))
		return true;
	if (rule->strict) {
		w->strict = rule;
		return false;
	}
	if (!w->soft)
		w->soft = rule;
	return true;
}

const sched_rule *affinity_broken(const affinity *a, const sched_vm *vm, int node, bool *strict)
{
	broken_walk w = { node, NULL, NULL };
	int v = index_of(a, vm);
	if (v >= 0)
		each_partner(a, v, find_broken, &w);
	*strict = w.strict != NULL;
	return w.strict ? w.strict : w.soft;
}
