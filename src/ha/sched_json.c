#include "ha/sched_json.h"

#include "common/error.h"

#include <string.h>

static bool get_bool(json_t *o, const char *key, bool dflt);

struct sched_json_input {
	json_t *root;              /* owns every string the input borrows */
	sched_input in;
	GArray *nodes;
	GArray *vms;
	GPtrArray *seen;           /* const char** and store_vm_failure* arrays */
	GPtrArray *reach;          /* the nodes' reach tables */
	json_t *sets;              /* node sets parsed from text (their strings) */
	GArray *rules;             /* sched_rule */
};

/* A VM's "nodes": the operator's text ("n2:2,n3:2,n1") or the stored form
 * ([{"node","priority"}…]); its "restricted". */
static bool parse_nodeset(sched_json_input *ji, json_t *o, size_t i, sched_vm *v, GError **error)
{
	json_t *set = json_object_get(o, "nodes");
	if (!set)
		return true;
	g_autoptr(GError) err = NULL;
	json_t *parsed = store_vm_nodeset_parse(set, &err);
	if (!parsed) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "VM %zu: %s", i, err->message);
		return false;
	}
	json_array_append_new(ji->sets, parsed);
	store_vm_node_priority *arr = g_new0(store_vm_node_priority, json_array_size(parsed) + 1);
	g_ptr_array_add(ji->seen, arr);
	size_t k;
	json_t *e;
	json_array_foreach(parsed, k, e)
		arr[k] = (store_vm_node_priority){ json_string_value(json_object_get(e, "node")),
						   (unsigned)json_integer_value(json_object_get(e, "priority")) };
	v->nodeset = arr;
	v->n_nodeset = json_array_size(parsed);
	v->restricted = v->n_nodeset && get_bool(o, "restricted", false);
	return true;
}

static bool get_bool(json_t *o, const char *key, bool dflt)
{
	json_t *v = json_object_get(o, key);
	return v ? json_is_true(v) : dflt;
}

static const char *get_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* "rules": [{"name","kind":"together|apart","strict":…,"vms":[VM name or uuid…]}…] */
static bool parse_rules(sched_json_input *ji, json_t *rules, GError **error)
{
	ji->rules = g_array_new(FALSE, TRUE, sizeof(sched_rule));
	size_t i;
	json_t *o;
	json_array_foreach(rules, i, o) {
		sched_rule r = { 0 };
		r.name = get_str(o, "name");
		const char *kind = get_str(o, "kind");
		json_t *vms = json_object_get(o, "vms");
		if (!r.name || !kind || (strcmp(kind, "together") && strcmp(kind, "apart")) || !json_is_array(vms)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Rule %zu needs a name, a kind of together or apart, and a list of VMs.", i);
			return false;
		}
		r.apart = strcmp(kind, "apart") == 0;
		r.strict = get_bool(o, "strict", true);
		const char **arr = g_new0(const char *, json_array_size(vms) + 1);
		g_ptr_array_add(ji->seen, arr);
		for (size_t k = 0; k < json_array_size(vms); k++) {
			const char *name = json_string_value(json_array_get(vms, k));
			if (!name) {
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Rule %s: its VMs are names.", r.name);
				return false;
			}
			arr[k] = name;
			for (guint v = 0; v < ji->vms->len; v++)
				if (strcmp(g_array_index(ji->vms, sched_vm, v).name, name) == 0)
					arr[k] = g_array_index(ji->vms, sched_vm, v).uuid;
		}
		r.vms = arr;
		r.n_vms = json_array_size(vms);
		g_array_append_val(ji->rules, r);
	}
	ji->in.rules = (const sched_rule *)ji->rules->data;
	ji->in.n_rules = ji->rules->len;
	return true;
}

sched_json_input *sched_json_parse(json_t *j, GError **error)
{
	g_autoptr(sched_json_input) ji = g_new0(sched_json_input, 1);
	ji->root = json_incref(j);
	ji->nodes = g_array_new(FALSE, TRUE, sizeof(sched_node));
	ji->vms = g_array_new(FALSE, TRUE, sizeof(sched_vm));
	ji->seen = g_ptr_array_new_with_free_func(g_free);
	ji->reach = g_ptr_array_new_with_free_func((GDestroyNotify)g_hash_table_unref);
	ji->sets = json_array();
	json_t *settings = json_object_get(j, "settings");
	ji->in.lab_mode = get_bool(settings, "lab_mode", false);
	const char *adm = get_str(settings, "admission");
	ji->in.admission = !adm || !strcmp(adm, "warn") ? SCHED_ADMISSION_WARN
			   : !strcmp(adm, "refuse")   ? SCHED_ADMISSION_REFUSE
						      : SCHED_ADMISSION_OFF;
	json_t *oc = json_object_get(settings, "vcpu_overcommit");
	ji->in.vcpu_overcommit = oc ? json_number_value(oc) : 4.0;
	ji->in.memory_reserve_mib = (uint64_t)json_integer_value(json_object_get(settings, "memory_reserve_mib"));
	json_t *jt = json_object_get(settings, "join_timeout_s");
	ji->in.join_timeout_s = jt ? (unsigned)json_integer_value(jt) : 120;
	json_t *sf = json_object_get(settings, "start_failures_max");
	ji->in.start_failures_max = sf ? (unsigned)json_integer_value(sf) : 3;
	ji->in.return_after_maintenance = get_bool(settings, "return_after_maintenance", true);
	ji->in.ha_paused = get_bool(settings, "ha_paused", false);
	ji->in.spare_idle_nodes = !get_bool(settings, "fence_idle_nodes", true);

	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(j, "nodes"), i, o) {
		sched_node n = { 0 };
		n.name = get_str(o, "name");
		const char *mode = get_str(o, "mode");
		if (!n.name || (mode && !store_node_mode_parse(mode, &n.mode))) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Node %zu needs a name and a mode of online, standby or maintenance.", i);
			return NULL;
		}
		n.in_ring = get_bool(o, "in_ring", true);
		n.herd_up = get_bool(o, "herd_up", n.in_ring);
		n.down = get_bool(o, "down", false);
		n.awaited = get_bool(o, "awaited", false);
		n.added = n.awaited && get_bool(o, "added", false);
		/* Cases without it: added long ago, said so at once. */
		json_t *af = json_object_get(o, "added_for_s");
		n.added_for_s = !n.added ? 0 : af ? (unsigned)json_integer_value(af) : 3600;
		n.fence_covered = get_bool(o, "fence_covered", true);
		n.allow_cold = get_bool(o, "allow_cold", false);
		n.ping_lost = get_bool(o, "ping_lost", false);
		n.ping_avoid = get_bool(o, "ping_avoid", false);
		n.memory_mib = (uint64_t)json_integer_value(json_object_get(o, "memory_mib"));
		n.cpus = (unsigned)json_integer_value(json_object_get(o, "cpus"));
		json_t *reach = json_object_get(o, "reach"), *r;
		size_t k;
		if (json_array_size(reach)) {
			n.reach = g_hash_table_new(g_str_hash, g_str_equal);
			json_array_foreach(reach, k, r)
				if (json_is_string(r))
					g_hash_table_add(n.reach, (gpointer)json_string_value(r));
			g_ptr_array_add(ji->reach, n.reach);
		}
		g_array_append_val(ji->nodes, n);
	}
	json_array_foreach(json_object_get(j, "vms"), i, o) {
		sched_vm v = { 0 };
		v.name = get_str(o, "name");
		v.uuid = get_str(o, "uuid") ? get_str(o, "uuid") : v.name;
		const char *target = get_str(o, "target");
		if (!v.name || (target && strcmp(target, "running") && strcmp(target, "stopped"))) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "VM %zu needs a name and a target of running or stopped.", i);
			return NULL;
		}
		v.target_running = !target || !strcmp(target, "running");
		v.node = get_str(o, "node");
		v.move_to = get_str(o, "move_to");
		v.move_live = get_bool(o, "move_live", false);
		v.move_cold_ok = get_bool(o, "move_cold_ok", false);
		v.live_failed = get_str(o, "live_failed");
		v.incoming_on = get_str(o, "incoming_on");
		v.migrate_error = get_str(o, "migrate_error");
		v.migrating = get_bool(o, "migrating", false);
		v.handed_to = get_str(o, "handed_to");
		v.ha = get_bool(o, "ha", false);
		v.priority = STORE_VM_PRIORITY_MEDIUM;
		if (get_str(o, "restart_priority") &&
		    !store_vm_priority_parse(get_str(o, "restart_priority"), &v.priority)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "VM %zu: restart_priority must be high, medium, low or disabled.", i);
			return NULL;
		}
		v.preferred = get_str(o, "preferred");
		v.failback = get_bool(o, "failback", true);
		v.sticky = get_str(o, "sticky");
		v.group = get_str(o, "group");
		if (!parse_nodeset(ji, o, i, &v, error))
			return NULL;
		v.return_to = get_str(o, "return_to");
		v.memory_mib = (uint64_t)json_integer_value(json_object_get(o, "memory_mib"));
		v.vcpus = (unsigned)json_integer_value(json_object_get(o, "vcpus"));
		v.steady = get_bool(o, "steady", true);
		json_t *seen = json_object_get(o, "seen_on");
		if (json_array_size(seen)) {
			const char **arr = g_new0(const char *, json_array_size(seen) + 1);
			size_t k;
			json_t *s;
			json_array_foreach(seen, k, s) arr[k] = json_string_value(s);
			v.seen_on = arr;
			v.n_seen = (unsigned)json_array_size(seen);
			g_ptr_array_add(ji->seen, arr);
		}
		v.start_failures = (unsigned)json_integer_value(json_object_get(o, "start_failures"));
		v.start_error = get_str(o, "start_error");
		json_t *failed = json_object_get(o, "failed");
		if (json_array_size(failed)) {
			store_vm_failure *arr = g_new0(store_vm_failure, json_array_size(failed));
			size_t k;
			json_t *f;
			json_array_foreach(failed, k, f) {
				arr[k].node = get_str(f, "node");
				arr[k].count = (unsigned)json_integer_value(json_object_get(f, "count"));
				arr[k].error = get_str(f, "error") ? get_str(f, "error") : "";
				if (!arr[k].node) {
					g_free(arr);
					g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
						    "VM %zu: each 'failed' entry needs a node.", i);
					return NULL;
				}
			}
			v.failed = arr;
			v.n_failed = json_array_size(failed);
			g_ptr_array_add(ji->seen, arr);
		}
		json_t *needs = json_object_get(o, "needs");
		if (json_array_size(needs)) {
			sched_need *arr = g_new0(sched_need, json_array_size(needs));
			size_t k;
			json_t *nd;
			g_ptr_array_add(ji->seen, arr);
			json_array_foreach(needs, k, nd) {
				arr[k].id = get_str(nd, "id");
				arr[k].unreached = get_str(nd, "unreached");
				if (!arr[k].id || !arr[k].unreached) {
					g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
						    "VM %zu: each 'needs' entry needs an id and an 'unreached' reason.", i);
					return NULL;
				}
				json_t *only = json_object_get(nd, "only");
				if (only) {
					if (!json_is_array(only)) {
						g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
							    "VM %zu: a need's 'only' is a list of node names.", i);
						return NULL;
					}
					const char **names = g_new0(const char *, json_array_size(only) + 1);
					g_ptr_array_add(ji->seen, names);
					for (size_t m = 0; m < json_array_size(only); m++)
						if (!(names[m] = json_string_value(json_array_get(only, m)))) {
							g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
								    "VM %zu: a need's 'only' is a list of node names.", i);
							return NULL;
						}
					arr[k].only = names;
				}
			}
			v.needs = arr;
			v.n_needs = json_array_size(needs);
		}
		g_array_append_val(ji->vms, v);
	}
	ji->in.nodes = (const sched_node *)ji->nodes->data;
	ji->in.n_nodes = ji->nodes->len;
	ji->in.vms = (const sched_vm *)ji->vms->data;
	ji->in.n_vms = ji->vms->len;
	if (!parse_rules(ji, json_object_get(j, "rules"), error))
		return NULL;
	return g_steal_pointer(&ji);
}

const sched_input *sched_json_input_get(sched_json_input *ji)
{
	return &ji->in;
}

void sched_json_input_free(sched_json_input *ji)
{
	if (!ji)
		return;
	json_decref(ji->root);
	json_decref(ji->sets);
	if (ji->nodes)
		g_array_free(ji->nodes, TRUE);
	if (ji->vms)
		g_array_free(ji->vms, TRUE);
	if (ji->seen)
		g_ptr_array_free(ji->seen, TRUE);
	if (ji->reach)
		g_ptr_array_free(ji->reach, TRUE);
	if (ji->rules)
		g_array_free(ji->rules, TRUE);
	g_free(ji);
}

json_t *sched_json_input_dump(const sched_input *in)
{
	static const char *const adm[] = { "off", "warn", "refuse" };
	json_t *nodes = json_array(), *vms = json_array();
	for (size_t i = 0; i < in->n_nodes; i++) {
		const sched_node *n = &in->nodes[i];
		json_array_append_new(nodes, json_pack("{s:s,s:s,s:b,s:b,s:b,s:b,s:b,s:I,s:i}", "name", n->name,
						       "mode", store_node_mode_name(n->mode), "in_ring", n->in_ring,
						       "herd_up", n->herd_up, "down", n->down, "awaited", n->awaited,
						       "fence_covered",
						       n->fence_covered, "memory_mib", (json_int_t)n->memory_mib,
						       "cpus", (int)n->cpus));
		json_t *node = json_array_get(nodes, json_array_size(nodes) - 1);
		if (n->added) {
			json_object_set_new(node, "added", json_true());
			json_object_set_new(node, "added_for_s", json_integer(n->added_for_s));
		}
		if (n->allow_cold)
			json_object_set_new(node, "allow_cold", json_true());
		if (n->ping_lost)
			json_object_set_new(node, "ping_lost", json_true());
		if (n->ping_avoid)
			json_object_set_new(node, "ping_avoid", json_true());
		if (n->reach && g_hash_table_size(n->reach)) {
			/* Sorted: the same reach dumps the same. */
			g_autoptr(GList) ids = g_list_sort(g_hash_table_get_keys(n->reach), (GCompareFunc)strcmp);
			json_t *reach = json_array();
			for (GList *l = ids; l; l = l->next)
				json_array_append_new(reach, json_string(l->data));
			json_object_set_new(node, "reach", reach);
		}
	}
	for (size_t i = 0; i < in->n_vms; i++) {
		const sched_vm *v = &in->vms[i];
		json_t *seen = json_array();
		for (unsigned k = 0; k < v->n_seen; k++)
			json_array_append_new(seen, json_string(v->seen_on[k]));
		json_t *vm = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:b,s:s?,s:b,s:s?,s:s?,s:I,s:i,s:o,s:b}",
				       "uuid", v->uuid, "name", v->name, "target",
				       v->target_running ? "running" : "stopped", "node", v->node,
				       "move_to", v->move_to, "ha", v->ha, "preferred", v->preferred,
				       "failback", v->failback, "sticky", v->sticky, "group", v->group,
				       "memory_mib", (json_int_t)v->memory_mib, "vcpus", (int)v->vcpus,
				       "seen_on", seen, "steady", v->steady);
		if (v->n_nodeset) {
			json_t *set = json_array();
			for (size_t k = 0; k < v->n_nodeset; k++)
				json_array_append_new(set, json_pack("{s:s,s:i}", "node", v->nodeset[k].node,
								     "priority", (int)v->nodeset[k].priority));
			json_object_set_new(vm, "nodes", set);
			if (v->restricted)
				json_object_set_new(vm, "restricted", json_true());
		}
		if (v->priority != STORE_VM_PRIORITY_MEDIUM)
			json_object_set_new(vm, "restart_priority",
					    json_string(store_vm_priority_name(v->priority)));
		if (v->move_live)
			json_object_set_new(vm, "move_live", json_true());
		if (v->move_cold_ok)
			json_object_set_new(vm, "move_cold_ok", json_true());
		if (v->live_failed)
			json_object_set_new(vm, "live_failed", json_string(v->live_failed));
		if (v->return_to)
			json_object_set_new(vm, "return_to", json_string(v->return_to));
		if (v->incoming_on)
			json_object_set_new(vm, "incoming_on", json_string(v->incoming_on));
		if (v->migrate_error)
			json_object_set_new(vm, "migrate_error", json_string(v->migrate_error));
		if (v->migrating)
			json_object_set_new(vm, "migrating", json_true());
		if (v->handed_to)
			json_object_set_new(vm, "handed_to", json_string(v->handed_to));
		if (v->start_failures)
			json_object_set_new(vm, "start_failures", json_integer(v->start_failures));
		if (v->start_error)
			json_object_set_new(vm, "start_error", json_string(v->start_error));
		if (v->n_failed) {
			json_t *failed = json_array();
			for (size_t k = 0; k < v->n_failed; k++)
				json_array_append_new(failed, json_pack("{s:s,s:i,s:s}", "node", v->failed[k].node,
									"count", (int)v->failed[k].count,
									"error", v->failed[k].error));
			json_object_set_new(vm, "failed", failed);
		}
		if (v->n_needs) {
			json_t *needs = json_array();
			for (size_t k = 0; k < v->n_needs; k++) {
				json_t *nd = json_pack("{s:s,s:s}", "id", v->needs[k].id, "unreached",
						       v->needs[k].unreached);
				if (v->needs[k].only) {
					json_t *only = json_array();
					for (const char *const *o = v->needs[k].only; *o; o++)
						json_array_append_new(only, json_string(*o));
					json_object_set_new(nd, "only", only);
				}
				json_array_append_new(needs, nd);
			}
			json_object_set_new(vm, "needs", needs);
		}
		json_array_append_new(vms, vm);
	}
	json_t *out = json_pack("{s:{s:b,s:s,s:f,s:I,s:i,s:i,s:b},s:o,s:o}", "settings", "lab_mode", in->lab_mode,
				"admission", adm[in->admission], "vcpu_overcommit", in->vcpu_overcommit,
				"memory_reserve_mib", (json_int_t)in->memory_reserve_mib, "join_timeout_s",
				(int)in->join_timeout_s, "start_failures_max", (int)in->start_failures_max,
				"return_after_maintenance", in->return_after_maintenance, "nodes", nodes, "vms", vms);
	/* Only when not the default: dumps made before them stay as they were. */
	json_t *settings = json_object_get(out, "settings");
	if (in->ha_paused)
		json_object_set_new(settings, "ha_paused", json_true());
	if (in->spare_idle_nodes)
		json_object_set_new(settings, "fence_idle_nodes", json_false());
	if (in->n_rules) {
		json_t *rules = json_array();
		for (size_t r = 0; r < in->n_rules; r++) {
			const sched_rule *rule = &in->rules[r];
			json_t *members = json_array();
			for (size_t k = 0; k < rule->n_vms; k++)
				json_array_append_new(members, json_string(rule->vms[k]));
			json_array_append_new(rules, json_pack("{s:s,s:s,s:b,s:o}", "name", rule->name, "kind",
							       rule->apart ? "apart" : "together", "strict",
							       rule->strict, "vms", members));
		}
		json_object_set_new(out, "rules", rules);
	}
	return out;
}

static const char *vm_name(const sched_input *in, const char *uuid)
{
	for (size_t i = 0; uuid && i < in->n_vms; i++)
		if (strcmp(in->vms[i].uuid, uuid) == 0)
			return in->vms[i].name;
	return uuid;
}

json_t *sched_json_plan(const sched_input *in, const sched_plan *plan)
{
	static const char *const sev[] = { "info", "warning", "critical" };
	json_t *actions = json_array();
	for (guint i = 0; i < plan->actions->len; i++) {
		const sched_action *a = &g_array_index(plan->actions, sched_action, i);
		json_t *o = json_pack("{s:s,s:s}", "action", sched_action_name(a->type), "reason", a->reason);
		if (a->vm)
			json_object_set_new(o, "vm", json_string(vm_name(in, a->vm)));
		if (a->node)
			json_object_set_new(o, "node", json_string(a->node));
		if (a->move_to)
			json_object_set_new(o, "move_to", json_string(a->move_to));
		if (a->given_up)
			json_object_set_new(o, "given_up", json_string(a->given_up));
		if (a->live)
			json_object_set_new(o, "live", json_true());
		if (a->cold_ok)
			json_object_set_new(o, "cold_ok", json_true());
		if (a->live_failed)
			json_object_set_new(o, "live_failed", json_string(a->live_failed));
		if (a->return_to)
			json_object_set_new(o, "return_to", json_string(a->return_to));
		json_array_append_new(actions, o);
	}
	json_t *alerts = json_array();
	for (guint i = 0; i < plan->alerts->len; i++) {
		const sched_alert *a = &g_array_index(plan->alerts, sched_alert, i);
		json_t *o = json_pack("{s:s,s:s}", "severity", sev[a->severity], "message", a->message);
		if (a->vm)
			json_object_set_new(o, "vm", json_string(vm_name(in, a->vm)));
		if (a->node)
			json_object_set_new(o, "node", json_string(a->node));
		json_array_append_new(alerts, o);
	}
	return json_pack("{s:o,s:o,s:b}", "actions", actions, "alerts", alerts, "n_plus_1", plan->n_plus_1);
}

/* {"n1": 0, …} for @n nodes named @names. */
static json_t *counts_by_node(const char *const *names, const unsigned *counts, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, names[i], json_integer(counts ? counts[i] : 0));
	return o;
}

json_t *sched_json_plan_unsafe_if_lost(const sched_input *in, const sched_plan *plan)
{
	g_autofree const char **names = g_new0(const char *, in->n_nodes + 1);
	for (size_t i = 0; i < in->n_nodes; i++)
		names[i] = in->nodes[i].name;
	return counts_by_node(names, plan->unsafe_if_lost, in->n_nodes);
}

struct sched_json_hypothesis {
	json_t *root;              /* owns the names */
	GPtrArray *node_down;      /* const char * */
	GPtrArray *standby;
	sched_hypothesis h;
};

/* The strings of the array @key of @j into @out; false (and @error) if it is
 * not an array of strings. */
static bool get_names(json_t *j, const char *key, GPtrArray *out, GError **error)
{
	json_t *a = json_object_get(j, key);
	if (!a)
		return true;
	if (!json_is_array(a)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "\"%s\" must be a list of node names.", key);
		return false;
	}
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || !*json_string_value(v)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "\"%s\" item %zu must be a node name.", key, i);
			return false;
		}
		g_ptr_array_add(out, (gpointer)json_string_value(v));
	}
	return true;
}

sched_json_hypothesis *sched_json_hypothesis_parse(json_t *j, GError **error)
{
	if (!json_is_object(j)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A what-if needs an object with \"node_down\" and/or \"standby\".");
		return NULL;
	}
	g_autoptr(sched_json_hypothesis) jh = g_new0(sched_json_hypothesis, 1);
	jh->root = json_incref(j);
	jh->node_down = g_ptr_array_new();
	jh->standby = g_ptr_array_new();
	if (!get_names(j, "node_down", jh->node_down, error) || !get_names(j, "standby", jh->standby, error))
		return NULL;
	json_t *mr = json_object_get(j, "max_rounds");
	if (mr && (!json_is_integer(mr) || json_integer_value(mr) < 1 || json_integer_value(mr) > 1000)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "\"max_rounds\" must be a number from 1 to 1000.");
		return NULL;
	}
	jh->h.max_rounds = mr ? (unsigned)json_integer_value(mr) : 0;
	jh->h.node_down = (const char *const *)jh->node_down->pdata;
	jh->h.n_node_down = jh->node_down->len;
	jh->h.standby = (const char *const *)jh->standby->pdata;
	jh->h.n_standby = jh->standby->len;
	return g_steal_pointer(&jh);
}

const sched_hypothesis *sched_json_hypothesis_get(sched_json_hypothesis *jh)
{
	return &jh->h;
}

void sched_json_hypothesis_free(sched_json_hypothesis *jh)
{
	if (!jh)
		return;
	json_decref(jh->root);
	if (jh->node_down)
		g_ptr_array_free(jh->node_down, TRUE);
	if (jh->standby)
		g_ptr_array_free(jh->standby, TRUE);
	g_free(jh);
}

static json_t *strings(const GPtrArray *a)
{
	json_t *arr = json_array();
	for (guint i = 0; i < a->len; i++)
		json_array_append_new(arr, json_string(a->pdata[i]));
	return arr;
}

json_t *sched_json_whatif(const sched_whatif_result *r)
{
	json_t *vms = json_array();
	for (guint i = 0; i < r->vms->len; i++) {
		const sched_whatif_vm *v = r->vms->pdata[i];
		json_t *o = json_pack("{s:s,s:s,s:s?,s:s?,s:s?}", "vm", v->name, "uuid", v->uuid, "from",
				      v->node_before, "to", v->node_after, "reason", v->reason);
		if (v->priority != STORE_VM_PRIORITY_MEDIUM)
			json_object_set_new(o, "restart_priority",
					    json_string(store_vm_priority_name(v->priority)));
		json_array_append_new(vms, o);
	}
	json_t *o = json_pack("{s:o,s:o,s:o,s:b}", "vms", vms, "fenced", strings(r->fenced), "node_alerts",
			      strings(r->node_alerts), "n_plus_1", r->n_plus_1);
	if (r->n_plus_1_detail)
		json_object_set_new(o, "n_plus_1_detail", json_string(r->n_plus_1_detail));
	json_object_set_new(o, "unsafe_if_lost",
			    counts_by_node((const char *const *)r->node_names, r->unsafe_if_lost, r->n_nodes));
	json_object_set_new(o, "rounds", json_integer(r->rounds));
	json_object_set_new(o, "settled", json_boolean(r->settled));
	if (r->unsettled)
		json_object_set_new(o, "unsettled", json_string(r->unsettled));
	return o;
}

bool sched_json_rebalance_parse(json_t *j, rebalance_settings *s, rebalance_state *st, bool *has_state,
				int64_t *now_ms, GError **error)
{
	static const char *const keys[] = { "threshold_pct", "hold_s", "min_gain_pct", "max_moves",
					    "above_since_ms", "now_ms" };
	if (!json_is_object(j)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The rebalance settings are an object.");
		return false;
	}
	for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
		json_t *v = json_object_get(j, keys[k]);
		if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Rebalance: '%s' must be a whole number, at least 0.",
				    keys[k]);
			return false;
		}
	}
	json_t *th = json_object_get(j, "threshold_pct"), *hold = json_object_get(j, "hold_s"),
	       *gain = json_object_get(j, "min_gain_pct"), *max = json_object_get(j, "max_moves");
	s->threshold_pct = th ? (unsigned)json_integer_value(th) : 20;
	s->hold_ms = (hold ? json_integer_value(hold) : 300) * 1000;
	s->min_gain_pct = gain ? (unsigned)json_integer_value(gain) : 5;
	s->max_moves = max ? (unsigned)json_integer_value(max) : 2;
	json_t *since = json_object_get(j, "above_since_ms");
	*has_state = since != NULL;
	st->above_since_ms = since ? json_integer_value(since) : 0;
	*now_ms = json_integer_value(json_object_get(j, "now_ms"));
	return true;
}

/* @x (at least 0) to a tenth: golden files do not hang on rounding. */
static double tenths(double x)
{
	return (double)(int64_t)(x * 10 + 0.5) / 10;
}

json_t *sched_json_rebalance(const rebalance_plan *p)
{
	json_t *moves = json_array();
	for (guint i = 0; i < p->moves->len; i++) {
		const rebalance_move *m = &g_array_index(p->moves, rebalance_move, i);
		json_array_append_new(moves, json_pack("{s:s,s:s,s:s,s:s,s:f,s:f}", "vm", m->name, "uuid", m->vm, "from",
						       m->from, "to", m->to, "before_pct", tenths(m->before_pct),
						       "after_pct", tenths(m->after_pct)));
	}
	return json_pack("{s:f,s:s?,s:s?,s:b,s:I,s:o}", "imbalance_pct", tenths(p->imbalance_pct), "fullest",
			 p->fullest, "emptiest", p->emptiest, "due", p->due, "due_in_ms", (json_int_t)p->due_in_ms,
			 "moves", moves);
}
