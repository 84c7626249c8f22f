/* The engine's queries: where VMs are and how, the cluster's and nodes'
 * status, storages' reach, eSAN states, waiting fence agents, migrations,
 * admission and herd simulate; and the facts this node adds to its STATUS. */
#include "ha/engine_private.h"

#include "common/json.h"
#include "ha/check.h"
#include "ha/rebalance.h"
#include "ha/sched_json.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/vm.h"

#include <stddef.h>
#include <string.h>


bool herd_engine_vm_active(herd_engine *e, const char *uuid, const char **node)
{
	uint32_t on = 0;
	const herd_vm_fact *f = herd_facts_vm(e->facts, uuid, &on);
	if (!f || !herd_vm_state_runs(f->state))
		return false;
	if (node) {
		engine_look(e);
		*node = engine_name_of(e, on);
	}
	return true;
}

unsigned herd_engine_vms_active(herd_engine *e)
{
	/* Not herd_engine_vm_active() for each of 10,000 VMs: a lookup in
	 * every node's facts each.  A VM reported active on two nodes (a
	 * guest started twice behind herd's back) counts once. */
	g_autoptr(GHashTable) active = herd_facts_active(e->facts);
	unsigned n = 0;
	GHashTableIter it;
	gpointer uuid, value;
	g_hash_table_iter_init(&it, active);
	while (g_hash_table_iter_next(&it, &uuid, &value))
		n += ((herd_active_vm *)value)->fact && store_state_get(state(e), STORE_KIND_VM, uuid);
	return n;
}

/* Where VMs are, gathered from the facts once for any number of them.  It
 * holds the node facts and the store's node objects it borrows from: it
 * stays as it was taken while the engine goes on (an API list written over
 * several main-loop iterations), and may outlive the engine. */
struct herd_runtime_view {
	GPtrArray *facts;      /* herd_node_facts* borrowed from (held) */
	GPtrArray *nodes;      /* the store's node objects (held) */
	GHashTable *names;     /* node id -> its name (borrowed from @nodes) */
	GHashTable *active;    /* herd_facts_active() of @facts */
	GHashTable *silent;    /* names of the nodes whose VMs nobody knows about (borrowed from @nodes) */
	GHashTable *errors;    /* uuid -> an agent's last error about it */
	GHashTable *alerts;    /* uuid -> the coordinator's alert about it */
};

herd_runtime_view *herd_engine_runtime_view(herd_engine *e)
{
	engine_look(e);
	herd_runtime_view *v = g_new0(herd_runtime_view, 1);
	v->facts = g_ptr_array_new_with_free_func((GDestroyNotify)herd_node_facts_unref);
	v->names = g_hash_table_new(g_direct_hash, g_direct_equal);
	/* Borrowed from the facts, which @v holds. */
	v->active = herd_facts_active(e->facts);
	v->silent = g_hash_table_new(g_str_hash, g_str_equal);
	v->errors = g_hash_table_new(g_str_hash, g_str_equal);
	v->alerts = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter it;
	gpointer value, key;
	g_hash_table_iter_init(&it, e->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		herd_node_facts *n = value;
		g_ptr_array_add(v->facts, herd_node_facts_ref(n));
		const char *uuid;
		json_t *err;
		json_object_foreach(n->errors, uuid, err)
			g_hash_table_insert(v->errors, (gpointer)uuid, (gpointer)json_string_value(err));
		if (n->alerts_by_vm) {
			GHashTableIter a;
			g_hash_table_iter_init(&a, n->alerts_by_vm);
			while (g_hash_table_iter_next(&a, &key, &value))
				g_hash_table_insert(v->alerts, key, value);
		}
	}
	/* A VM assigned to a node that does not report (lost, not yet fenced)
	 * or whose herd does not reach its hypervisor: nobody knows whether it
	 * still runs there. */
	v->nodes = store_state_list(state(e), STORE_KIND_NODE);
	g_ptr_array_set_free_func(v->nodes, (GDestroyNotify)store_object_unref);
	for (guint i = 0; i < v->nodes->len; i++) {
		store_object *n = store_object_ref(v->nodes->pdata[i]);
		uint32_t id = store_node_of(n)->nodeid;
		g_hash_table_insert(v->names, GUINT_TO_POINTER(id), n->name);
		herd_node_facts *there = herd_facts_fresh(e->facts, id);
		if (!there || !there->virt_ok)
			g_hash_table_add(v->silent, n->name);
	}
	return v;
}

void herd_runtime_view_get(const herd_runtime_view *v, const store_object *vm, herd_vm_runtime *out)
{
	const herd_active_vm *a = g_hash_table_size(v->active) ? g_hash_table_lookup(v->active, vm->uuid) : NULL;
	const herd_vm_fact *f = a ? a->fact : NULL;
	*out = (herd_vm_runtime){
		.state = f ? herd_vm_state_name(f->state) : "shut off",
		.node = f ? g_hash_table_lookup(v->names, GUINT_TO_POINTER(a->on)) : NULL,
		.since_ms = f ? f->since_ms : 0,
	};
	const char *assigned = store_vm_of(vm)->node;
	if (!f && assigned && g_hash_table_size(v->silent)) {
		/* The name as the view has it: it outlives the VM's object. */
		gpointer name;
		if (g_hash_table_lookup_extended(v->silent, assigned, &name, NULL)) {
			out->state = "unknown";
			out->node = name;
		}
	}
	/* Why it is not where it should be: an agent's error or an alert. */
	if (g_hash_table_size(v->errors))
		out->error = g_hash_table_lookup(v->errors, vm->uuid);
	if (g_hash_table_size(v->alerts))
		out->alert = g_hash_table_lookup(v->alerts, vm->uuid);
}

void herd_runtime_view_free(herd_runtime_view *v)
{
	if (!v)
		return;
	g_hash_table_destroy(v->active);
	g_hash_table_destroy(v->silent);
	g_hash_table_destroy(v->errors);
	g_hash_table_destroy(v->alerts);
	g_hash_table_destroy(v->names);
	g_ptr_array_free(v->nodes, TRUE);
	g_ptr_array_free(v->facts, TRUE);
	g_free(v);
}

void herd_engine_vm_runtime(herd_engine *e, const store_object *vm, herd_vm_runtime *out)
{
	g_autoptr(herd_runtime_view) v = herd_engine_runtime_view(e);
	herd_runtime_view_get(v, vm, out);
}

json_t *herd_engine_cluster_status(herd_engine *e)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, e->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		if (n->coordinator && n->round == e->facts->round) {
			json_t *out = json_deep_copy(n->coordinator);
			json_object_set_new(out, "coordinator", json_string(n->name));
			return out;
		}
	}
	return json_null();
}

/* What node @n said of storage or switch @uuid: {"ok","problem"?,"size"?,"free"?};
 * not reported: not ok. */
static json_t *reach_entry(herd_node_facts *n, const char *uuid)
{
	json_t *r = json_object_get(n->reach, uuid);
	json_t *out = json_is_object(r) ? json_deep_copy(r) :
		      json_pack("{s:b,s:s}", "ok", 0, "problem", "not reported by this node (yet)");
	json_t *u = json_object_get(n->usage, uuid);
	if (json_is_object(u))
		json_object_update(out, u);
	return out;
}

json_t *herd_engine_node_status(herd_engine *e, uint32_t nodeid)
{
	herd_node_facts *n = herd_facts_fresh(e->facts, nodeid);
	if (!n)
		return NULL;
	json_t *vms = json_array();
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, n->vms);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_vm_fact *f = v;
		if (herd_vm_state_runs(f->state))
			json_array_append_new(vms, json_string(f->uuid));
	}
	json_t *ready = json_object_get(n->migration, "ready");
	json_t *problem = json_object_get(n->migration, "problem");
	json_t *reach = json_object();
	const char *uuid;
	json_t *r;
	json_object_foreach(n->reach, uuid, r)
		json_object_set_new(reach, uuid, reach_entry(n, uuid));
	/* The 1-minute load average × 100 (null: unknown), an integer: a
	 * real would print as 0.52000000000000002. */
	json_t *load = n->resources.load_known ? json_integer(n->resources.load_x100) : json_null();
	return json_pack("{s:b,s:O,s:O,s:{s:I,s:I,s:i,s:o},s:o,s:o}", "virt_ok", n->virt_ok,
			 "migration_ready", ready ? ready : json_null(), "migration_problem",
			 json_is_string(problem) ? problem : json_null(), "resources", "memory_mib",
			 (json_int_t)n->resources.memory_mib, "free_mib",
			 (json_int_t)n->resources.free_mib, "cpus", (int)n->resources.cpus, "load_x100", load,
			 "vms", vms, "reach", reach);
}

/* A node's facts of this round, with its name. */
typedef struct {
	const char *name;
	herd_node_facts *facts;
} named_facts;

static gint by_node_name(gconstpointer a, gconstpointer b)
{
	return strcmp(((const named_facts *)a)->name, ((const named_facts *)b)->name);
}

/* Every node with facts of this round, by name (named_facts). */
static GArray *fresh_facts(herd_engine *e)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(named_facts));
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, e->facts->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		named_facts nf = { engine_name_of(e, n->nodeid), n };
		if (n->round == e->facts->round && nf.name)
			g_array_append_val(out, nf);
	}
	g_array_sort(out, by_node_name);
	return out;
}

json_t *herd_engine_reach(herd_engine *e, const char *uuid)
{
	json_t *out = json_object();
	g_autoptr(GArray) nodes = fresh_facts(e);
	for (guint i = 0; i < nodes->len; i++) {
		const named_facts *n = &g_array_index(nodes, named_facts, i);
		json_object_set_new(out, n->name, reach_entry(n->facts, uuid));
	}
	return out;
}

/* Keep @value (referenced) in *@slot, a part of this node's STATUS, unless
 * it says what *@slot says already; did it change? */
static bool keep_reported(json_t **slot, json_t *value)
{
	if (*slot == value || (*slot && value && json_equal(*slot, value)))
		return false;
	json_decref(*slot);
	*slot = json_incref(value);
	return true;
}

/* keep_reported(), and send it soon if it changed. */
static void set_reported(herd_engine *e, json_t **slot, json_t *value)
{
	if (keep_reported(slot, value))
		status_soon(e);
}

/* {node: the member at @offset of its fresh facts (a json_t *)}, nodes
 * whose member is NULL or empty left out. */
static json_t *per_node(herd_engine *e, size_t offset)
{
	json_t *out = json_object();
	g_autoptr(GArray) nodes = fresh_facts(e);
	for (guint i = 0; i < nodes->len; i++) {
		const named_facts *n = &g_array_index(nodes, named_facts, i);
		json_t *member = *(json_t **)((char *)n->facts + offset);
		if (json_object_size(member))
			json_object_set(out, n->name, member);
	}
	return out;
}

void herd_engine_set_reach(herd_engine *e, json_t *reach, json_t *usage)
{
	json_t *was = e->usage;
	e->usage = json_incref(usage);
	json_decref(was);
	/* Unless the reach changed, the usage goes with the next STATUS. */
	set_reported(e, &e->reach, reach);
}

void herd_engine_set_esan(herd_engine *e, json_t *esan)
{
	set_reported(e, &e->esan, esan);
}

json_t *herd_engine_esan_all(herd_engine *e)
{
	return herd_facts_esan(e->facts, state(e));
}

json_t *herd_engine_esan(herd_engine *e, const char *uuid)
{
	g_autoptr(json_t) reports = herd_engine_esan_all(e);
	json_t *out = json_object_get(reports, uuid);
	return out ? json_incref(out) : json_object();
}

void herd_engine_set_fence_standby(herd_engine *e, json_t *agents)
{
	set_reported(e, &e->fence_standby, agents);
}

json_t *herd_engine_fence_standby(herd_engine *e)
{
	return per_node(e, offsetof(herd_node_facts, fence_standby));
}

void herd_engine_set_links(herd_engine *e, json_t *links, int64_t now_ms)
{
	if (!keep_reported(&e->links, links) || e->links_due_ms)
		return;
	e->links_due_ms = now_ms + LINKS_REPORT_DELAY_MS;
	e->io.wakeup(e->user, LINKS_REPORT_DELAY_MS);
}

void herd_engine_set_check(herd_engine *e, json_t *report)
{
	json_t *alerts = json_array();
	herd_check_alerts(alerts, json_object_get(report, "results"));
	json_decref(e->check_results);
	e->check_results = json_incref(report);
	bool same = e->check_alerts && json_equal(e->check_alerts, alerts);
	json_decref(e->check_alerts);
	e->check_alerts = alerts;
	if (!same)
		run_soon(e);
}

json_t *herd_engine_check(herd_engine *e)
{
	return json_incref(e->check_results);
}

json_t *herd_engine_links(herd_engine *e)
{
	return herd_facts_links(e->facts);
}

void herd_engine_set_ping(herd_engine *e, json_t *ping)
{
	set_reported(e, &e->ping, ping);
}

json_t *herd_engine_ping(herd_engine *e)
{
	return per_node(e, offsetof(herd_node_facts, ping));
}

json_t *herd_engine_vm_migration(herd_engine *e, const char *uuid)
{
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, e->progress);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		json_t *p = json_object_get(v, uuid);
		const char *from = engine_name_of(e, GPOINTER_TO_UINT(k));
		if (!json_is_object(p) || !from)
			continue;
		json_t *out = json_deep_copy(p);
		json_object_set_new(out, "from", json_string(from));
		return out;
	}
	return NULL;
}

json_t *herd_engine_vm_pending(herd_engine *e, const char *uuid)
{
	uint32_t nodeid = 0;
	const herd_vm_fact *f = herd_facts_vm(e->facts, uuid, &nodeid);
	herd_node_facts *n = f && herd_vm_state_runs(f->state) ? herd_facts_fresh(e->facts, nodeid) : NULL;
	json_t *p = n ? json_object_get(n->pending, uuid) : NULL;
	return json_is_array(p) ? json_deep_copy(p) : json_array();
}

const char *herd_engine_migrate_target(herd_engine *e, const char *uuid, const char *to,
				       const char **why, int64_t now_ms)
{
	e->now_ms = now_ms;
	engine_look(e);
	herd_coord_view v = engine_coord_view(e);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL);
	const sched_vm *vm = herd_sched_input_vm(hi, uuid);
	if (!vm) {
		*why = "it is not a VM of the cluster";
		return NULL;
	}
	const char *chosen = sched_place_away(herd_sched_input_get(hi), vm, to, why);
	/* The store's node objects outlive the input. */
	store_object *n = chosen ? store_state_get_by_name(state(e), STORE_KIND_NODE, chosen) : NULL;
	return n ? n->name : NULL;
}

void herd_engine_set_migration_ready(herd_engine *e, bool ready, const char *problem)
{
	json_t *now = json_pack("{s:b}", "ready", ready);
	if (problem)
		json_object_set_new(now, "problem", json_string(problem));
	if (e->migration && json_equal(e->migration, now)) {
		json_decref(now);
		return;
	}
	json_decref(e->migration);
	e->migration = now;
	status_soon(e);
}

bool herd_engine_migrate_cancel(herd_engine *e, const char *uuid, const char **why)
{
	return herd_agent_migrate_cancel(e->agent, uuid, why);
}

unsigned herd_engine_migrations_here(herd_engine *e)
{
	g_autoptr(GArray) facts = herd_agent_facts(e->agent);
	unsigned n = 0;
	for (guint i = 0; i < facts->len; i++) {
		herd_vm_state s = g_array_index(facts, herd_vm_fact, i).state;
		n += s == HERD_VM_MIGRATING || s == HERD_VM_INCOMING;
	}
	return n;
}

bool herd_engine_admission(herd_engine *e, const char *uuid, char **detail, int64_t now_ms)
{
	e->now_ms = now_ms;
	engine_look(e);
	herd_coord_view v = engine_coord_view(e);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL);
	const sched_vm *vm = herd_sched_input_vm(hi, uuid);
	if (!vm)
		return true;
	sched_vm extra = *vm;
	extra.target_running = true;
	/* Judge it as if it were to run, and nowhere yet. */
	sched_input in = *herd_sched_input_get(hi);
	GArray *others = g_array_new(FALSE, FALSE, sizeof(sched_vm));
	for (size_t i = 0; i < in.n_vms; i++)
		if (&in.vms[i] != vm)
			g_array_append_val(others, in.vms[i]);
	in.vms = (const sched_vm *)others->data;
	in.n_vms = others->len;
	extra.node = NULL;
	bool ok = sched_n_plus_1(&in, &extra, detail);
	g_array_free(others, TRUE);
	return ok;
}

sched_whatif_result *herd_engine_simulate(herd_engine *e, const sched_hypothesis *h,
					  int64_t now_ms, GError **error)
{
	e->now_ms = now_ms;
	engine_look(e);
	herd_coord_view v = engine_coord_view(e);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL);
	return sched_whatif(herd_sched_input_get(hi), h, error);
}

json_t *herd_engine_simulate_rebalance(herd_engine *e, int64_t now_ms)
{
	e->now_ms = now_ms;
	engine_look(e);
	herd_coord_view v = engine_coord_view(e);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(&v, NULL, NULL, NULL);
	const sched_input *in = herd_sched_input_get(hi);
	const store_settings *settings = store_settings_of(v.st);
	rebalance_settings rs;
	herd_rebalance_settings(settings, &rs);
	g_autoptr(sched_plan) plan = sched_plan_compute(in);
	bool settled = plan->actions->len == 0;
	g_autoptr(rebalance_plan) rp = rebalance_compute(in, &rs, NULL, now_ms, settled);
	json_t *out = sched_json_rebalance(rp);
	json_object_set_new(out, "enabled", json_boolean(settings->rebalance));
	json_object_set_new(out, "settled", json_boolean(settled));
	json_object_set_new(out, "threshold_pct", json_integer(settings->rebalance_threshold_pct));
	json_object_set_new(out, "hold_s", json_integer(settings->rebalance_hold_s));
	return out;
}

struct herd_coord *herd_engine_coordinator(herd_engine *e)
{
	return e->coord;
}

struct herd_facts *herd_engine_facts(herd_engine *e)
{
	return e->facts;
}
