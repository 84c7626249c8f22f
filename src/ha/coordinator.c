#include "ha/coordinator.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "ha/alert_journal.h"
#include "ha/esan.h"
#include "ha/health.h"
#include "ha/links.h"
#include "ha/needs.h"
#include "ha/rebalance.h"
#include "store/cluster.h"
#include "store/fence_device.h"
#include "store/node.h"
#include "store/rule.h"
#include "store/vm.h"

#include <string.h>

/* Fencing retries: 2 s, 4 s… up to 30 s between attempts. */
#define FENCE_RETRY_FIRST_MS 2000
#define FENCE_RETRY_MAX_MS 30000

typedef struct {
	char *node;
	bool running;
	unsigned failures;
	int64_t retry_at_ms;
	char *last_error;
} fence_job;

struct herd_coord {
	herd_coord_io io;
	gpointer user;
	bool active;
	unsigned commits;          /* store commands in flight */
	bool rerun;                /* something changed while they were */
	GHashTable *fences;        /* node -> fence_job* */
	GHashTable *local_down;    /* node -> membership round of the fence: fenced, not yet in the store */
	GHashTable *unwanted;      /* "uuid@node#version" -> store index (see herd_sched_input_build()) */
	GPtrArray *records;        /* fence_result*: to write into the store */
	uint64_t round;            /* the membership round of the last run */
	GHashTable *seen;          /* node ids seen in the ring since this herd started */
	int64_t quorate_since_ms;  /* when this herd first saw a quorate partition; 0: never */
	json_t *alerts;
	json_t *events;            /* what happened since the last alert records were written
				    * (ha/alert_journal.h): fences, failovers, nodes back */
	json_t *at_risk;           /* {node: HA VMs that could not be restarted if it died now} */
	bool n_plus_1;
	char *self_name;
	rebalance_state rebalance; /* since when the load has been uneven (ha/rebalance.h) */
	/* Nodes that reach no ping node, as decided on (see hold_ping()). */
	GHashTable *ping_cut;      /* names: the set acted on */
	GHashTable *ping_next;     /* names: the set the nodes say now, if it differs */
	int64_t ping_next_since_ms;
	GHashTable *virt_since;    /* node id -> when its libvirtd was first seen not
				    * answering, ms (ha/health.h); while active */
	GHashTable *evacuating;    /* node name, or "switchover:" and its name -> VMs it held
				    * when its evacuation or switchover began (evacuations()) */
};

/* A fence attempt to record in the node's history. */
typedef struct {
	char *node;
	bool ok;
	char *device;
	char *detail;
	int64_t time_ms;
	uint64_t round;        /* membership round it happened in */
} fence_result;

static void fence_result_free(fence_result *r)
{
	g_free(r->node);
	g_free(r->device);
	g_free(r->detail);
	g_free(r);
}

static void fence_job_free(fence_job *j)
{
	g_free(j->node);
	g_free(j->last_error);
	g_free(j);
}

herd_coord *herd_coord_new(const herd_coord_io *io, gpointer user)
{
	herd_coord *c = g_new0(herd_coord, 1);
	c->io = *io;
	c->user = user;
	c->fences = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)fence_job_free);
	c->local_down = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	c->unwanted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	c->records = g_ptr_array_new_with_free_func((GDestroyNotify)fence_result_free);
	c->seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	c->alerts = json_array();
	c->events = json_array();
	c->n_plus_1 = true;
	c->at_risk = json_object();
	c->ping_cut = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	c->virt_since = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	c->evacuating = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return c;
}

void herd_coord_free(herd_coord *c)
{
	if (!c)
		return;
	g_hash_table_destroy(c->fences);
	g_hash_table_destroy(c->local_down);
	g_hash_table_destroy(c->unwanted);
	g_ptr_array_free(c->records, TRUE);
	g_hash_table_destroy(c->seen);
	json_decref(c->alerts);
	json_decref(c->events);
	json_decref(c->at_risk);
	g_hash_table_destroy(c->ping_cut);
	g_hash_table_destroy(c->virt_since);
	g_hash_table_destroy(c->evacuating);
	if (c->ping_next)
		g_hash_table_destroy(c->ping_next);
	g_free(c->self_name);
	g_free(c);
}

/* ------------------------------------------------------------------ */
/* The scheduler's input                                               */

struct herd_sched_input {
	sched_input in;
	GArray *nodes;        /* sched_node */
	GArray *vms;          /* sched_vm */
	GArray *rules;        /* sched_rule */
	GPtrArray *strings;   /* owned arrays */
	GHashTable *by_uuid;  /* uuid -> index + 1, or NULL until asked */
	int64_t steady_in_ms; /* until the next VM may fail back (not steady yet); 0: none */
	int64_t awaited_in_ms; /* until the first awaited node counts as lost, or
				* its join's alert is due; 0: none */
};

static bool contains(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* A VM not wanted on @node (its assignment): may @node still run it
 * although its report does not show it? */
static bool maybe_still_there(const herd_coord_view *v, GHashTable *unwanted, GHashTable *kept,
			      store_object *vm, const char *node, uint32_t nodeid)
{
	/* Per version: a VM wanted again and then not, between two runs, is
	 * known unwanted only from its newest change on. */
	g_autofree char *key = g_strdup_printf("%s@%s#%" G_GUINT64_FORMAT, vm->uuid, node, vm->version);
	uint64_t *since = g_hash_table_lookup(unwanted, key);
	if (!since) {
		/* The change that made this version, if known: the node sent its
		 * report soon after applying it.  Else now, which may be later
		 * than its last report (it then counts from its next one). */
		uint64_t at = store_state_changed_at(v->st, vm->uuid);
		since = g_new(uint64_t, 1);
		*since = at ? at : v->st->pos.index;
		g_hash_table_insert(unwanted, g_strdup(key), since);
	}
	g_hash_table_add(kept, g_steal_pointer(&key));
	herd_node_facts *f = herd_facts_fresh(v->facts, nodeid);
	return f && f->index < *since;
}

/* What the scheduler takes from @o's configuration, and its node's id:
 * read afresh in every run, a copy of the typed view's fields.  (A cache of
 * what the last run read, by object, held 2.4 MB on the coordinator at
 * 10,000 VMs and no longer saved CPU once the typed view was one block:
 * bench/README.md, issue 14.) */
static void read_vm(store_object *o, GHashTable *id_of, sched_vm *vm, uint32_t *node_id)
{
	const store_vm *d = store_vm_of(o);
	*vm = (sched_vm){
		.uuid = o->uuid,
		.name = o->name,
		.target_running = d->target_running,
		.node = d->node,
		.move_to = d->move_to,
		.move_live = d->move_live,
		.move_cold_ok = d->move_cold_ok,
		.live_failed = d->live_failed,
		.ha = d->ha,
		.priority = d->restart_priority,
		.preferred = d->preferred,
		.failback = d->failback,
		.sticky = d->sticky,
		.group = d->group,
		.nodeset = d->nodeset,
		.n_nodeset = d->n_nodeset,
		.restricted = d->restricted,
		.return_to = d->return_to,
		.memory_mib = d->memory_mib,
		.vcpus = d->vcpus,
		.failed = d->failures,
		.n_failed = d->n_failures,
	};
	*node_id = vm->node ? GPOINTER_TO_UINT(g_hash_table_lookup(id_of, vm->node)) : 0;
}

herd_sched_input *herd_sched_input_build(const herd_coord_view *v, GHashTable *local_down,
					 GHashTable *unwanted, const herd_coord_joins *joins)
{
	herd_sched_input *hi = g_new0(herd_sched_input, 1);
	hi->nodes = g_array_new(FALSE, TRUE, sizeof(sched_node));
	hi->vms = g_array_new(FALSE, TRUE, sizeof(sched_vm));
	hi->strings = g_ptr_array_new_with_free_func(g_free);
	store_state *st = v->st;
	const store_settings *settings = store_settings_of(st);
	hi->in.lab_mode = settings->lab_mode;
	hi->in.admission = settings->admission_control == STORE_ADMISSION_REFUSE ? SCHED_ADMISSION_REFUSE
			   : settings->admission_control == STORE_ADMISSION_OFF ? SCHED_ADMISSION_OFF
									      : SCHED_ADMISSION_WARN;
	hi->in.vcpu_overcommit = (double)settings->vcpu_overcommit;
	hi->in.memory_reserve_mib = (uint64_t)settings->memory_reserve_mib;
	hi->in.join_timeout_s = (unsigned)settings->join_timeout_s;
	hi->in.start_failures_max = (unsigned)settings->start_failures_max;
	hi->in.return_after_maintenance = settings->return_after_maintenance;
	hi->in.ha_paused = settings->ha_paused;
	hi->in.spare_idle_nodes = !settings->fence_idle_nodes;
	int64_t join_until_ms = joins && joins->quorate_since_ms
				? joins->quorate_since_ms + (int64_t)hi->in.join_timeout_s * 1000 : 0;

	/* Which nodes some fence device has a plug for. */
	g_autoptr(GHashTable) covered = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_FENCE_DEVICE]);
	while (g_hash_table_iter_next(&it, NULL, &val)) {
		const store_fence_device *dev = store_fence_device_of(val);
		for (size_t i = 0; i < dev->n_plugs; i++)
			g_hash_table_add(covered, (gpointer)dev->plugs[i].node);
	}

	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	g_autoptr(GHashTable) name_of = g_hash_table_new(g_direct_hash, g_direct_equal);
	g_autoptr(GHashTable) id_of = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GHashTable) kept = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *o = nodes->pdata[i];
		const store_node *sn = store_node_of(o);
		uint32_t id = sn->nodeid;
		sched_node n = { .name = o->name, .mode = sn->mode, .allow_cold = sn->allow_cold };
		n.in_ring = contains(v->ring, v->n_ring, id);
		herd_node_facts *f = herd_facts_fresh(v->facts, id);
		/* A herd that does not reach its hypervisor (just restarted, libvirtd
		 * hung) reports no VMs without knowing: its report is no fact. */
		n.herd_up = contains(v->group, v->n_group, id) && f && f->virt_ok;
		n.down = sn->down ||
			 (local_down && g_hash_table_contains(local_down, o->name));
		n.fence_covered = g_hash_table_contains(covered, o->name);
		if (!n.in_ring && joins && !g_hash_table_contains(joins->seen, GUINT_TO_POINTER(id))) {
			/* Not seen since the cluster started (a cold start:
			 * nodes boot at their pace), or added lately and not
			 * up yet (its join under way): join_timeout_s from
			 * then before it counts as lost. */
			int64_t added_until = o->created_ms + (int64_t)hi->in.join_timeout_s * 1000;
			int64_t until = MAX(join_until_ms, added_until);
			if (v->now_ms < until) {
				n.awaited = true;
				n.added = added_until > join_until_ms;
				int64_t for_ms = MAX(v->now_ms - o->created_ms, 0);
				n.added_for_s = n.added ? (unsigned)(for_ms / 1000) : 0;
				/* Look again when it counts as lost, and when
				 * its join's alert is due. */
				int64_t in_ms = until - v->now_ms;
				int64_t quiet_ms = (int64_t)sched_join_quiet_s(&hi->in) * 1000;
				if (n.added && for_ms < quiet_ms)
					in_ms = MIN(in_ms, quiet_ms - for_ms);
				if (!hi->awaited_in_ms || in_ms < hi->awaited_in_ms)
					hi->awaited_in_ms = in_ms;
			}
		}
		if (f) {
			n.memory_mib = f->resources.memory_mib;
			n.cpus = f->resources.cpus;
			n.reach = f->reached;
			n.ping_lost = f->ping_lost;
		}
		g_array_append_val(hi->nodes, n);
		g_hash_table_insert(name_of, GUINT_TO_POINTER(id), (gpointer)o->name);
		g_hash_table_insert(id_of, (gpointer)o->name, GUINT_TO_POINTER(id));
	}

	/* Affinity rules: few, read afresh each time.  Their VMs
	 * may move to mend one once steady (as a failback). */
	hi->rules = g_array_new(FALSE, TRUE, sizeof(sched_rule));
	g_autoptr(GHashTable) in_rule = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) rules = store_state_list(st, STORE_KIND_RULE);
	for (guint i = 0; i < rules->len; i++) {
		store_object *o = rules->pdata[i];
		const store_rule *r = store_rule_of(o);
		sched_rule sr = { o->name, r->apart, r->strict, r->vms, r->n_vms };
		g_array_append_val(hi->rules, sr);
		for (size_t k = 0; k < r->n_vms; k++)
			g_hash_table_add(in_rule, (gpointer)r->vms[k]);
	}
	hi->in.rules = (const sched_rule *)hi->rules->data;
	hi->in.n_rules = hi->rules->len;

	/* Every VM is looked at in every run: where the VMs are is gathered
	 * once, not asked of every node's facts for each of 10,000 VMs. */
	g_autoptr(GHashTable) active = herd_facts_active(v->facts);
	/* A node that reports may be gone from the store. */
	g_autofree uint32_t *where = g_new(uint32_t, MAX(nodes->len, g_hash_table_size(v->facts->nodes)) + 1);
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	g_autoptr(herd_needs) needs = herd_needs_new(st);
	for (guint i = 0; i < vms->len; i++) {
		store_object *o = vms->pdata[i];
		sched_vm vm;
		uint32_t node_id;
		read_vm(o, id_of, &vm, &node_id);
		vm.needs = herd_needs_of(needs, store_vm_of(o), &vm.n_needs);
		if (vm.needs)
			g_ptr_array_add(hi->strings, (gpointer)vm.needs);
		const herd_active_vm *act = g_hash_table_size(active) ? g_hash_table_lookup(active, o->uuid) : NULL;
		size_t n_where = act ? act->n_where : 0;
		if (n_where)
			memcpy(where, act->where, n_where * sizeof(*where));
		/* Its node's report of starts that failed in a row. */
		herd_node_facts *assigned = node_id ? herd_facts_fresh(v->facts, node_id) : NULL;
		if (assigned && json_object_size(assigned->start_failures))
			vm.start_failures = (unsigned)json_integer_value(
				json_object_get(assigned->start_failures, o->uuid));
		if (assigned && json_object_size(assigned->errors)) {
			/* The agent's "start failed: <the hypervisor's error>",
			 * or "migrate failed: …". */
			const char *err = json_string_value(json_object_get(assigned->errors, o->uuid));
			if (err && g_str_has_prefix(err, "migrate failed: ")) {
				/* Only a report from after the VM's current version
				 * is about this migration, not an earlier one. */
				if (assigned->index >= store_state_changed_at(st, o->uuid))
					vm.migrate_error = err + strlen("migrate failed: ");
			} else {
				vm.start_error = err && g_str_has_prefix(err, "start failed: ")
							 ? err + strlen("start failed: ") : err;
			}
		}
		vm.migrating = act && act->fact && act->on == node_id && act->fact->state == HERD_VM_MIGRATING;
		/* As for migrate_error: a report from before the VM's current
		 * version may be about an earlier migration. */
		if (assigned && json_object_size(assigned->handed) &&
		    assigned->index >= store_state_changed_at(st, o->uuid))
			vm.handed_to = json_string_value(json_object_get(assigned->handed, o->uuid));
		if (act && act->incoming_on) {
			const char *n = g_hash_table_lookup(name_of, GUINT_TO_POINTER(act->incoming_on));
			vm.incoming_on = n ? n : "?";
		}
		bool unwanted_there = node_id && (!vm.target_running || (vm.move_to && strcmp(vm.move_to, vm.node) != 0));
		if (unwanted_there && unwanted &&
		    maybe_still_there(v, unwanted, kept, o, vm.node, node_id) &&
		    !contains(where, n_where, node_id))
			where[n_where++] = node_id;
		if (n_where) {
			const char **seen = g_new0(const char *, n_where + 1);
			for (size_t k = 0; k < n_where; k++) {
				const char *n = g_hash_table_lookup(name_of, GUINT_TO_POINTER(where[k]));
				seen[vm.n_seen] = n ? n : "?";
				vm.n_seen++;
			}
			vm.seen_on = seen;
			g_ptr_array_add(hi->strings, seen);
		}
		const herd_vm_fact *fact = act ? act->fact : NULL;
		const char *on_name = act ? g_hash_table_lookup(name_of, GUINT_TO_POINTER(act->on)) : NULL;
		long long settle_ms = settings->failback_after_s * 1000;
		vm.steady = fact && fact->state == HERD_VM_RUNNING && on_name && vm.node &&
			    strcmp(on_name, vm.node) == 0 && v->now_ms - fact->since_ms >= settle_ms;
		/* A VM away from its preferred node, its sticky node or the
		 * node it left for maintenance may move back once it is
		 * steady: the coordinator must run again then. */
		bool away_from_home = (vm.preferred && vm.failback && !vm.sticky && strcmp(vm.preferred, vm.node ? vm.node : "") != 0) ||
				      (vm.sticky && strcmp(vm.sticky, vm.node ? vm.node : "") != 0) ||
				      (vm.n_nodeset && (vm.failback || vm.restricted) && !vm.sticky) ||
				      (vm.return_to && hi->in.return_after_maintenance && !vm.sticky &&
				       strcmp(vm.return_to, vm.node ? vm.node : "") != 0) ||
				      g_hash_table_contains(in_rule, vm.uuid);
		if (!vm.steady && fact && fact->state == HERD_VM_RUNNING && on_name && vm.node &&
		    strcmp(on_name, vm.node) == 0 && away_from_home) {
			int64_t left = settle_ms - (v->now_ms - fact->since_ms);
			if (hi->steady_in_ms == 0 || left < hi->steady_in_ms)
				hi->steady_in_ms = MAX(left, 1);
		}
		g_array_append_val(hi->vms, vm);
	}
	/* Forget what no longer applies (the VM is wanted there again, gone,
	 * or no longer assigned there). */
	if (unwanted) {
		g_hash_table_iter_init(&it, unwanted);
		while (g_hash_table_iter_next(&it, &val, NULL))
			if (!g_hash_table_contains(kept, val))
				g_hash_table_iter_remove(&it);
	}
	hi->in.nodes = (const sched_node *)hi->nodes->data;
	hi->in.n_nodes = hi->nodes->len;
	hi->in.vms = (const sched_vm *)hi->vms->data;
	hi->in.n_vms = hi->vms->len;
	hi->in.vms_by_name = true; /* the store's list (names are unique) */
	return hi;
}

const sched_input *herd_sched_input_get(herd_sched_input *hi)
{
	return &hi->in;
}

const sched_vm *herd_sched_input_vm(herd_sched_input *hi, const char *uuid)
{
	/* Made when first asked (the coordinator's own runs never ask). */
	if (!hi->by_uuid) {
		hi->by_uuid = g_hash_table_new(g_str_hash, g_str_equal);
		for (guint i = 0; i < hi->vms->len; i++)
			g_hash_table_insert(hi->by_uuid, (gpointer)g_array_index(hi->vms, sched_vm, i).uuid,
					    GUINT_TO_POINTER(i + 1));
	}
	guint i = GPOINTER_TO_UINT(g_hash_table_lookup(hi->by_uuid, uuid));
	return i ? &g_array_index(hi->vms, sched_vm, i - 1) : NULL;
}

void herd_sched_input_free(herd_sched_input *hi)
{
	if (!hi)
		return;
	g_array_free(hi->nodes, TRUE);
	g_array_free(hi->vms, TRUE);
	if (hi->rules)
		g_array_free(hi->rules, TRUE);
	g_ptr_array_free(hi->strings, TRUE);
	if (hi->by_uuid)
		g_hash_table_destroy(hi->by_uuid);
	g_free(hi);
}

/* ------------------------------------------------------------------ */
/* Acting                                                              */

/* Something that happened, for the alert records: kept until a store that
 * takes changes writes it (at most ALERT_EVENTS_MAX; the oldest go). */
static void add_event(herd_coord *c, const char *kind, const char *severity, const char *vm,
		      const char *node, char *message)
{
	json_t *e = json_pack("{s:s,s:s,s:s}", "kind", kind, "severity", severity, "message", message);
	if (vm)
		json_object_set_new(e, "vm", json_string(vm));
	if (node)
		json_object_set_new(e, "node", json_string(node));
	if (json_array_size(c->events) >= ALERT_EVENTS_MAX)
		json_array_remove(c->events, 0);
	json_array_append_new(c->events, e);
	g_free(message);
}

static bool submit(herd_coord *c, json_t *cmd)
{
	if (!c->io.submit(c->user, cmd))
		return false;
	c->commits++;
	return true;
}

static void act(herd_coord *c, const herd_coord_view *v, herd_sched_input *hi, const sched_plan *plan)
{
	for (guint i = 0; i < plan->actions->len; i++) {
		const sched_action *a = &g_array_index(plan->actions, sched_action, i);
		g_autoptr(json_t) cmd = NULL;
		switch (a->type) {
		case SCHED_FENCE: {
			fence_job *j = g_hash_table_lookup(c->fences, a->node);
			if (!j) {
				j = g_new0(fence_job, 1);
				j->node = g_strdup(a->node);
				g_hash_table_insert(c->fences, j->node, j);
			}
			if (j->running)
				continue;
			if (j->retry_at_ms > v->now_ms) {
				c->io.wakeup(c->user, j->retry_at_ms - v->now_ms);
				continue;
			}
			j->running = true;
			log_warn("node %s is lost: fencing it", a->node);
			c->io.fence(c->user, a->node);
			continue;
		}
		case SCHED_ASSIGN: {
			store_object *vm = store_state_get(v->st, STORE_KIND_VM, a->vm);
			log_info("VM %s -> node %s (%s)", vm ? vm->name : a->vm, a->node, a->reason);
			/* Given up on its node: the store remembers it, with why. */
			const sched_vm *in = a->given_up ? herd_sched_input_vm(hi, a->vm) : NULL;
			store_vm_failure failed = { a->given_up, in ? in->start_failures : 0,
						    in ? in->start_error : NULL };
			cmd = a->live_failed ? store_vm_cmd_live_given_up(a->vm, a->node, a->live_failed)
					     : store_vm_cmd_assign(a->vm, a->node, in ? &failed : NULL);
			/* Its node was fenced or confirmed down: a failover. */
			const char *was = vm ? store_vm_of(vm)->node : NULL;
			store_object *was_node = was ? store_state_get_by_name(v->st, STORE_KIND_NODE, was) : NULL;
			bool was_down = was_node && (store_node_of(was_node)->down ||
						     g_hash_table_contains(c->local_down, was));
			if (was_down && strcmp(was, a->node) != 0 && v->store_writable)
				add_event(c, "failover", "warning", vm->name, a->node,
					  g_strdup_printf("VM %s goes to node %s: its node %s failed and is %s.",
							  vm->name, a->node, was,
							  store_node_of(was_node)->down ? store_node_of(was_node)->down_how
											: "fenced"));
			/* Back on the node it left for maintenance: no return is due. */
			if (vm && g_strcmp0(store_vm_of(vm)->return_to, a->node) == 0)
				store_vm_cmd_set_return_to(cmd, NULL);
			break;
		}
		case SCHED_MOVE: {
			store_object *vm = store_state_get(v->st, STORE_KIND_VM, a->vm);
			log_info("VM %s moves from node %s to %s%s (%s)", vm ? vm->name : a->vm, a->node,
				 a->move_to, a->live ? ", live" : "", a->reason);
			cmd = a->live ? store_vm_cmd_migrate(a->vm, a->move_to, a->cold_ok)
				      : store_vm_cmd_move(a->vm, a->move_to);
			if (a->return_to)
				store_vm_cmd_set_return_to(cmd, a->return_to);
			break;
		}
		case SCHED_RELEASE: {
			store_object *vm = store_state_get(v->st, STORE_KIND_VM, a->vm);
			log_info("VM %s is released from node %s (%s)", vm ? vm->name : a->vm, a->node, a->reason);
			cmd = store_vm_cmd_release(a->vm);
			break;
		}
		case SCHED_CLEAR_DOWN: {
			store_object *node = store_state_get_by_name(v->st, STORE_KIND_NODE, a->node);
			if (!node)
				continue;
			log_info("node %s is back", a->node);
			cmd = store_node_cmd_clear_down(node);
			if (v->store_writable)
				add_event(c, "node_back", "info", NULL, a->node,
					  g_strdup_printf("Node %s is back in the cluster after it was %s.", a->node,
							  store_node_of(node)->down_how));
			break;
		}
		}
		if (cmd && v->store_writable)
			submit(c, cmd);
	}
}

void herd_rebalance_settings(const store_settings *s, rebalance_settings *out)
{
	*out = (rebalance_settings){ (unsigned)s->rebalance_threshold_pct, s->rebalance_hold_s * 1000,
				     (unsigned)s->rebalance_min_gain_pct, (unsigned)s->rebalance_max_moves };
}

static bool same_names(GHashTable *a, GHashTable *b)
{
	if (g_hash_table_size(a) != g_hash_table_size(b))
		return false;
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, a);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (!g_hash_table_contains(b, k))
			return false;
	return true;
}

/*
 * Which nodes the scheduler takes for cut off from the ping nodes: those
 * that say so, once the set of them has stayed the same for two of their
 * rounds.  Each node dampens its own verdict, but their rounds are not in
 * step: when the ping node itself goes, the nodes say so up to a round
 * apart, and the first to say it must not be emptied into the others in
 * the meantime.  Until a new set has held, the one before stands — but a
 * node that says it is cut off gets no new HA VM meanwhile.
 */
static void hold_ping(herd_coord *c, const herd_coord_view *v, herd_sched_input *hi)
{
	g_autoptr(GHashTable) now = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; i < hi->nodes->len; i++) {
		sched_node *n = &g_array_index(hi->nodes, sched_node, i);
		if (n->ping_lost)
			g_hash_table_add(now, (gpointer)n->name);
	}
	if (same_names(now, c->ping_cut)) {
		g_clear_pointer(&c->ping_next, g_hash_table_destroy);
	} else {
		if (!c->ping_next || !same_names(now, c->ping_next)) {
			g_clear_pointer(&c->ping_next, g_hash_table_destroy);
			c->ping_next = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
			GHashTableIter it;
			gpointer k;
			g_hash_table_iter_init(&it, now);
			while (g_hash_table_iter_next(&it, &k, NULL))
				g_hash_table_add(c->ping_next, g_strdup(k));
			c->ping_next_since_ms = v->now_ms;
		}
		int64_t hold = 2 * store_settings_of(v->st)->ping_interval_ms;
		int64_t left = c->ping_next_since_ms + hold - v->now_ms;
		if (left <= 0) {
			g_hash_table_destroy(c->ping_cut);
			c->ping_cut = g_steal_pointer(&c->ping_next);
		} else {
			c->io.wakeup(c->user, left);
		}
	}
	/* Said but not held yet: no new VM there, none sent away. */
	for (guint i = 0; i < hi->nodes->len; i++) {
		sched_node *n = &g_array_index(hi->nodes, sched_node, i);
		bool said = n->ping_lost;
		n->ping_lost = g_hash_table_contains(c->ping_cut, n->name);
		n->ping_avoid = said && !n->ping_lost;
	}
}

/* A switchover (its mark in the store, set with the moves): begun, and
 * over once no VM of the node is on its way any more (moved, or its move
 * given up); then the mark goes. */
static void switchover(herd_coord *c, const herd_coord_view *v, const sched_input *in, size_t i,
		       unsigned held, unsigned moving)
{
	const sched_node *n = &in->nodes[i];
	store_object *node = store_state_get_by_name(v->st, STORE_KIND_NODE, n->name);
	const char *to = node ? store_node_of(node)->switchover_to : NULL;
	if (!to)
		return;
	g_autofree char *key = g_strconcat("switchover:", n->name, NULL);
	gpointer began;
	if (!g_hash_table_lookup_extended(c->evacuating, key, NULL, &began)) {
		g_hash_table_insert(c->evacuating, g_strdup(key), GUINT_TO_POINTER(held));
		add_event(c, "switchover", "info", NULL, n->name,
			  g_strdup_printf("Node %s: its %u VM%s move%s to node %s (switchover).", n->name, held,
					  held == 1 ? "" : "s", held == 1 ? "s" : "", to));
		return;
	}
	if (moving)
		return;
	unsigned was = GPOINTER_TO_UINT(began);
	unsigned moved = was > held ? was - held : 0;
	add_event(c, "switchover_done", held ? "warning" : "info", NULL, n->name,
		  g_strdup_printf("The switchover of node %s to node %s is over: %u of %u VM%s moved%s.", n->name,
				  to, moved, was, was == 1 ? "" : "s",
				  held ? "; the others stay where they are ('herd status' says why)" : ""));
	g_hash_table_remove(c->evacuating, key);
	g_autoptr(json_t) cmd = store_node_cmd_switchover(node, NULL);
	submit(c, cmd);
}

/*
 * Evacuations, as alert events: a node put in standby or maintenance (by an
 * operator, or by its host's shutdown) whose VMs begin to leave it, and the
 * moment the last one has left.  Worked out from the store every round: a
 * coordinator that takes over in the middle of one tells it as begun then.
 * A node that goes back online before it is empty ends it without a word.
 * VMs sticky to the node stay and are not counted.  A switchover likewise
 * (switchover()).
 */
static void evacuations(herd_coord *c, const herd_coord_view *v, const sched_input *in)
{
	if (!v->store_writable)
		return;
	g_autofree unsigned *held = g_new0(unsigned, in->n_nodes + 1);
	g_autofree unsigned *moving = g_new0(unsigned, in->n_nodes + 1);
	g_autoptr(GHashTable) index = g_hash_table_new(g_str_hash, g_str_equal);
	for (size_t i = 0; i < in->n_nodes; i++)
		g_hash_table_insert(index, (gpointer)in->nodes[i].name, GSIZE_TO_POINTER(i + 1));
	/* The VMs that are to leave: sticky ones stay. */
	for (size_t k = 0; k < in->n_vms; k++) {
		const sched_vm *vm = &in->vms[k];
		size_t i = vm->node ? GPOINTER_TO_SIZE(g_hash_table_lookup(index, vm->node)) : 0;
		if (i && g_strcmp0(vm->sticky, vm->node) != 0)
			held[i - 1]++;
		if (i && vm->move_to && strcmp(vm->move_to, vm->node) != 0)
			moving[i - 1]++;
	}
	for (size_t i = 0; i < in->n_nodes; i++) {
		const sched_node *n = &in->nodes[i];
		const char *mode = store_node_mode_name(n->mode);
		gpointer began;
		bool known = g_hash_table_lookup_extended(c->evacuating, n->name, NULL, &began);
		bool leaving = n->mode != STORE_NODE_ONLINE && n->in_ring && n->herd_up;
		switchover(c, v, in, i, held[i], moving[i]);
		if (!known && leaving && held[i]) {
			g_hash_table_insert(c->evacuating, g_strdup(n->name), GUINT_TO_POINTER(held[i]));
			add_event(c, "evacuation", "info", NULL, n->name,
				  g_strdup_printf("Node %s is in %s mode: its %u VM%s leave%s it, live where they can.",
						  n->name, mode, held[i], held[i] == 1 ? "" : "s",
						  held[i] == 1 ? "s" : ""));
		} else if (known && n->mode == STORE_NODE_ONLINE) {
			g_hash_table_remove(c->evacuating, n->name);
		} else if (known && !held[i]) {
			unsigned was = GPOINTER_TO_UINT(began);
			add_event(c, "evacuated", "info", NULL, n->name,
				  g_strdup_printf("Node %s (%s mode) is empty: the %u VM%s it held left it.", n->name,
						  mode, was, was == 1 ? "" : "s"));
			g_hash_table_remove(c->evacuating, n->name);
		}
	}
}

/* With rebalance on: once the cluster is settled (the plan does nothing)
 * and the load has been uneven long enough, a few live moves, as the
 * plan's own (ha/rebalance.h).  The hold counts while the plan acts. */
static void rebalance(herd_coord *c, const herd_coord_view *v, herd_sched_input *hi, const sched_plan *plan)
{
	const store_settings *settings = store_settings_of(v->st);
	if (!settings->rebalance) {
		c->rebalance.above_since_ms = 0;
		return;
	}
	rebalance_settings rs;
	herd_rebalance_settings(settings, &rs);
	const sched_input *in = herd_sched_input_get(hi);
	g_autoptr(rebalance_plan) rp = rebalance_compute(in, &rs, &c->rebalance, v->now_ms, plan->actions->len == 0);
	if (rp->due_in_ms > 0)
		c->io.wakeup(c->user, rp->due_in_ms);
	if (rp->moves->len == 0)
		return;
	g_autoptr(sched_plan) moves = g_new0(sched_plan, 1);
	moves->actions = g_array_new(FALSE, FALSE, sizeof(sched_action));
	moves->alerts = g_array_new(FALSE, FALSE, sizeof(sched_alert));
	for (guint i = 0; i < rp->moves->len; i++) {
		const rebalance_move *m = &g_array_index(rp->moves, rebalance_move, i);
		log_info("rebalance: the nodes' fullness spreads %.1f points (%s to %s); VM %s moves to %s (%.1f after)",
			 m->before_pct, rp->fullest, rp->emptiest, m->name, m->to, m->after_pct);
		sched_action a = { SCHED_MOVE, m->vm, m->from, m->to, "rebalance", NULL, true, false, NULL, NULL };
		g_array_append_val(moves->actions, a);
	}
	act(c, v, hi, moves);
	/* The next moves once these are done and judged afresh. */
	c->rebalance.above_since_ms = v->now_ms;
}

/*
 * A node that corosync sees but whose herd is not in the group: its VMs run
 * on unmanaged (no restart, no failover: it is alive, so it is not fenced).
 * Say so, and why if it said why when it left.  Not for a node in
 * maintenance, where herd may well be stopped.
 */
static void add_left_alerts(json_t *alerts, const herd_coord_view *v)
{
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(v->st);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		const store_node *sn = store_node_of(n);
		if (sn->mode == STORE_NODE_MAINTENANCE || !contains(v->ring, v->n_ring, sn->nodeid) ||
		    contains(v->group, v->n_group, sn->nodeid))
			continue;
		const char *why = v->departures ? g_hash_table_lookup(v->departures,
								      GUINT_TO_POINTER(sn->nodeid))
						: NULL;
		g_autofree char *msg =
			why ? g_strdup_printf("herd on node %s left the cluster: %s. Its VMs are left as they "
					      "are, unmanaged, until it rejoins (it retries by itself).",
					      n->name, why)
			    : g_strdup_printf("herd on node %s is not in the cluster although the node is up; "
					      "its VMs are left as they are, unmanaged, until it joins.",
					      n->name);
		json_array_append_new(alerts, json_pack("{s:s,s:s,s:s,s:s}", "kind", "herd_left", "severity",
							why ? "critical" : "warning", "node", n->name,
							"message", msg));
	}
}

static void set_alerts(herd_coord *c, const sched_input *in, const sched_plan *plan,
		       const herd_coord_view *view)
{
	static const char *const sev[] = { "info", "warning", "critical" };
	json_t *alerts = json_array();
	add_left_alerts(alerts, view);
	for (guint i = 0; i < plan->alerts->len; i++) {
		const sched_alert *a = &g_array_index(plan->alerts, sched_alert, i);
		json_t *o = json_pack("{s:s,s:s,s:s}", "kind", a->vm ? "vm" : a->node ? "node" : "cluster",
				      "severity", sev[a->severity], "message", a->message);
		if (a->vm)
			json_object_set_new(o, "vm", json_string(a->vm));
		if (a->node)
			json_object_set_new(o, "node", json_string(a->node));
		json_array_append_new(alerts, o);
	}
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, c->fences);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		fence_job *j = v;
		if (j->failures)
			json_array_append_new(alerts, json_pack("{s:s,s:s,s:s,s:s+++}", "kind", "fence_failed",
								"severity", "critical", "node", j->node, "message",
								"Fencing node ", j->node, " failed: ",
								j->last_error ? j->last_error : "?"));
	}
	/* eSAN: what the store records of the replicas, what the herd-sans report. */
	g_autoptr(json_t) reports = herd_facts_esan(view->facts, view->st);
	g_autoptr(json_t) esan_alerts = herd_esan_alerts(view->st, reports);
	json_array_extend(alerts, esan_alerts);
	/* Heartbeat links down, as the nodes see them. */
	g_autoptr(json_t) link_views = herd_facts_links(view->facts);
	g_autoptr(json_t) link_alerts = herd_link_alerts(link_views);
	json_array_extend(alerts, link_alerts);
	json_t *at_risk = json_object();
	for (size_t i = 0; i < in->n_nodes; i++)
		json_object_set_new(at_risk, in->nodes[i].name, json_integer(plan->unsafe_if_lost[i]));
	herd_health_alerts(alerts, view->st, view->facts, c->virt_since, view->now_ms, c->ping_cut,
			   plan->n_plus_1, at_risk);
	if (view->check_alerts)
		json_array_extend(alerts, view->check_alerts);
	bool changed = !json_equal(alerts, c->alerts) || plan->n_plus_1 != c->n_plus_1 ||
		       !json_equal(at_risk, c->at_risk);
	json_decref(c->at_risk);
	c->at_risk = at_risk;
	json_decref(c->alerts);
	c->alerts = alerts;
	c->n_plus_1 = plan->n_plus_1;
	if (changed)
		c->io.changed(c->user);
}

static bool coordinates(const herd_coord_view *v)
{
	if (!v->quorate || v->n_group == 0)
		return false;
	uint32_t lowest = v->group[0];
	for (size_t i = 1; i < v->n_group; i++)
		lowest = MIN(lowest, v->group[i]);
	return lowest == v->self;
}

/*
 * Forget what the store (or the node's return) has made obsolete.  A fence
 * this node saw succeed counts only within the membership round it happened
 * in: after a membership change this node cannot know whether the fenced
 * node came back meanwhile where it could not see it; then only the store's
 * record of the fence (or a new fence) says it is down.
 */
static void prune(herd_coord *c, const herd_coord_view *v)
{
	GHashTableIter it;
	gpointer k, val;
	g_hash_table_iter_init(&it, c->local_down);
	while (g_hash_table_iter_next(&it, &k, &val)) {
		store_object *n = store_state_get_by_name(v->st, STORE_KIND_NODE, k);
		uint32_t id = n ? store_node_of(n)->nodeid : 0;
		if (!n || store_node_of(n)->down || contains(v->ring, v->n_ring, id) ||
		    *(uint64_t *)val != v->facts->round)
			g_hash_table_iter_remove(&it);
	}
	g_hash_table_iter_init(&it, c->fences);
	while (g_hash_table_iter_next(&it, &k, &val)) {
		fence_job *j = val;
		store_object *n = store_state_get_by_name(v->st, STORE_KIND_NODE, k);
		/* Back, or down in the store (fenced, or confirmed down by an
		 * operator after failed attempts): nothing left to fence. */
		if (!j->running && (!n || contains(v->ring, v->n_ring, store_node_of(n)->nodeid) ||
				    store_node_of(n)->down))
			g_hash_table_iter_remove(&it);
	}
}

static void union_into(GHashTable *set, GHashTable *more)
{
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, more);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_hash_table_add(set, k);
}

void herd_coord_run(herd_coord *c, const herd_coord_view *v)
{
	/* Forget a fence once its node is seen alive again, or the membership
	 * changed, coordinating or not: a stale "fenced" would later let its
	 * VMs start twice. */
	c->round = v->facts->round;
	prune(c, v);
	for (size_t i = 0; i < v->n_ring; i++)
		g_hash_table_add(c->seen, GUINT_TO_POINTER(v->ring[i]));
	if (v->quorate && !c->quorate_since_ms)
		c->quorate_since_ms = v->now_ms;
	bool was = c->active;
	c->active = coordinates(v);
	if (c->active != was) {
		log_info(c->active ? "this node coordinates the cluster now" : "this node no longer coordinates");
		c->io.changed(c->user);
	}
	if (!c->active) {
		g_hash_table_remove_all(c->unwanted);
		g_hash_table_remove_all(c->virt_since);
		return;
	}
	if (!c->self_name) {
		store_object *me = store_node_by_id(v->st, v->self);
		if (me)
			c->self_name = g_strdup(me->name);
	}
	if (c->commits > 0) {
		c->rerun = true;
		return;
	}
	/* Fence attempts go into the store first, in the same round as the
	 * decisions they allow (one batch on the wire). */
	if (v->store_writable) {
		for (guint i = 0; i < c->records->len; i++) {
			fence_result *r = c->records->pdata[i];
			store_object *node = store_state_get_by_name(v->st, STORE_KIND_NODE, r->node);
			if (!node)
				continue;
			/* A fence from an earlier membership round goes into the
			 * history only: the node may have come back since. */
			bool current = r->round == c->round;
			g_autoptr(json_t) cmd = store_node_cmd_fence_record(node, c->self_name ? c->self_name : "?",
									    r->ok, current, r->device, r->detail,
									    r->time_ms);
			submit(c, cmd);
		}
		g_ptr_array_set_size(c->records, 0);
	}
	/* Decide only on facts every member has sent since the last
	 * membership change: a stale fact could start a VM twice. */
	for (size_t i = 0; i < v->n_group; i++)
		if (!herd_facts_fresh(v->facts, v->group[i]))
			return;
	/* Seen by any member since its herd started: a node the others saw
	 * is not a late boot, even when this herd has just started. */
	g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	union_into(seen, c->seen);
	for (size_t i = 0; i < v->n_group; i++)
		union_into(seen, herd_facts_fresh(v->facts, v->group[i])->seen);
	herd_coord_joins joins = { seen, c->quorate_since_ms };
	int64_t virt_alert_in = herd_health_virt_watch(c->virt_since, v->st, v->facts, v->now_ms);
	g_autoptr(herd_sched_input) hi = herd_sched_input_build(v, c->local_down, c->unwanted, &joins);
	hold_ping(c, v, hi);
	g_autoptr(sched_plan) plan = sched_plan_compute(herd_sched_input_get(hi));
	set_alerts(c, herd_sched_input_get(hi), plan, v);
	act(c, v, hi, plan);
	evacuations(c, v, herd_sched_input_get(hi));
	/* The alerts' history follows them, in the same round (one batch). */
	if (v->store_writable) {
		g_autoptr(json_t) journal = herd_alert_journal(v->st, c->alerts, c->events, v->now_ms,
							       ALERT_HISTORY_KEEP);
		if (journal && submit(c, journal))
			json_array_clear(c->events);
	}
	rebalance(c, v, hi, plan);
	if (hi->steady_in_ms > 0)
		c->io.wakeup(c->user, hi->steady_in_ms);
	if (hi->awaited_in_ms > 0)
		c->io.wakeup(c->user, hi->awaited_in_ms);
	if (virt_alert_in > 0)
		c->io.wakeup(c->user, virt_alert_in);
}

void herd_coord_committed(herd_coord *c, const GError *error)
{
	if (c->commits > 0)
		c->commits--;
	if (error)
		log_warn("a decision of the coordinator was not committed: %s", error->message);
	if (c->commits == 0) {
		c->rerun = false;
		c->io.wakeup(c->user, error ? 500 : 0);
	}
}

void herd_coord_fenced(herd_coord *c, const char *node, bool ok, const char *device,
		       const char *detail, int64_t now_ms)
{
	fence_job *j = g_hash_table_lookup(c->fences, node);
	if (j) {
		j->running = false;
		if (ok) {
			j->failures = 0;
		} else {
			j->failures++;
			int64_t pause = FENCE_RETRY_FIRST_MS << MIN(j->failures - 1, 4u);
			j->retry_at_ms = now_ms + MIN(pause, FENCE_RETRY_MAX_MS);
			g_free(j->last_error);
			j->last_error = g_strdup(detail ? detail : "unknown error");
		}
	}
	if (ok) {
		log_warn("node %s is fenced (%s)", node, device ? device : "");
		add_event(c, "fenced", "warning", NULL, node,
			  g_strdup_printf("Node %s was fenced%s%s: its HA VMs restart elsewhere.", node,
					  device ? " by fence device " : "", device ? device : ""));
		uint64_t *r = g_new(uint64_t, 1);
		*r = c->round;
		g_hash_table_replace(c->local_down, g_strdup(node), r);
	} else {
		log_err("fencing node %s failed: %s", node, detail ? detail : "?");
	}
	fence_result *r = g_new0(fence_result, 1);
	r->node = g_strdup(node);
	r->ok = ok;
	r->device = g_strdup(device);
	r->detail = g_strdup(detail);
	r->time_ms = now_ms;
	r->round = c->round;
	g_ptr_array_add(c->records, r);
	/* Run again at once: the record and the decisions it allows go out
	 * together. */
	c->io.changed(c->user);
	c->io.wakeup(c->user, 0);
}

bool herd_coord_active(herd_coord *c)
{
	return c->active;
}

json_t *herd_coord_status(herd_coord *c)
{
	if (!c->active)
		return NULL;
	json_t *fencing = json_array();
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, c->fences);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		fence_job *j = v;
		json_array_append_new(fencing, json_pack("{s:s,s:b,s:i,s:s?}", "node", j->node, "running",
							 j->running, "failures", (int)j->failures,
							 "error", j->last_error));
	}
	return json_pack("{s:O,s:b,s:O,s:o}", "alerts", c->alerts, "n_plus_1", c->n_plus_1, "at_risk",
			 c->at_risk, "fencing", fencing);
}

GHashTable *herd_coord_seen(herd_coord *c)
{
	return c->seen;
}

bool herd_coord_has_fenced(herd_coord *c, const char *node)
{
	return g_hash_table_contains(c->local_down, node);
}
