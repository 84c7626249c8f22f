#define G_LOG_DOMAIN "jobs"
#include "daemon/job_runner.h"

#include "common/json.h"
#include "common/log.h"
#include "ha/job_watch.h"
#include "store/command.h"
#include "store/job.h"
#include "store/node.h"
#include "store/vm.h"

#include <string.h>

/* What this run of herdd remembers of a job it follows. */
typedef struct {
	int iteration;          /* the memory pass last logged */
	bool cancel_sent;       /* the hypervisor was asked to abort it */
	bool cancel_failed_logged;
} followed;

struct herd_job_runner {
	herd_cluster *cluster;
	herd_ha *ha;
	char *node;
	char boot[STORE_UUID_LEN + 1]; /* this run of herdd */
	GHashTable *followed;   /* job uuid -> followed* */
	guint tick;
	unsigned submitting;    /* changes under way */
};

static void on_committed(json_t *result, const GError *error, gpointer user)
{
	herd_job_runner *r = user;
	r->submitting--;
	/* A job changed meanwhile (its owner cancelled it): the next tick
	 * sees the new version. */
	if (error)
		log_debug("a change of jobs was not made: %s", error->message);
}

/* Add @s's changes of job @o to @ops; false if it had some but they wait
 * (a running job is written at most every STORE_JOB_UPDATE_MS, unless
 * @now: an operator's cancel is logged at once). */
static bool add_step(herd_job_runner *r, json_t *ops, store_object *o, herd_job_step *s, bool now,
		     int64_t now_ms)
{
	const store_job *j = store_job_of(o);
	if (s->end != STORE_JOB_RUNNING) {
		log_info("job %s (%s of %s) %s%s%s", o->name, j->kind, j->target, store_job_state_name(s->end),
			 s->error ? ": " : "", s->error ? s->error : "");
		json_array_append_new(ops, store_job_cmd_finish(o, s->end, s->error ? s->error : s->line, now_ms));
		return true;
	}
	bool due = s->progress >= 0 && store_job_update_due(j, s->progress, now_ms);
	if (!s->line && !due)
		return true;
	if (!now && now_ms - j->updated_ms < STORE_JOB_UPDATE_MS)
		return false;
	json_array_append_new(ops, store_job_cmd_update(o, due ? s->progress : -1, s->line, now_ms));
	return true;
}

/* @ops (stolen) as one change of @units: each job's changes are one
 * change (a batch), so that one that fails holds up no other job. */
static void add_unit(json_t *units, json_t *ops)
{
	if (json_array_size(ops) == 1)
		json_array_append(units, json_array_get(ops, 0));
	else if (json_array_size(ops) > 1)
		json_array_append_new(units, store_cmd_batch(json_incref(ops)));
	json_decref(ops);
}

/* One of this node's migration jobs. */
static void follow_migration(herd_job_runner *r, store_state *st, store_object *o, followed *fw, json_t *units,
			     int64_t now_ms)
{
	json_t *ops = json_array();
	const store_job *j = store_job_of(o);
	store_object *vm = j->target_uuid ? store_state_get(st, STORE_KIND_VM, j->target_uuid) : NULL;
	herd_vm_runtime rt = { 0 };
	if (vm)
		herd_ha_vm_runtime(r->ha, vm, &rt);
	g_autoptr(json_t) migration = vm ? herd_ha_vm_migration(r->ha, vm->uuid) : NULL;
	herd_job_migrate_facts f = {
		.vm = vm, .rt_node = rt.node, .rt_state = rt.state, .rt_error = rt.error ? rt.error : rt.alert,
		.migration = migration, .last_iteration = fw->iteration, .cancel_sent = fw->cancel_sent,
	};
	herd_job_step s;
	herd_job_migrate_step(o, &f, &s);
	bool cancelled_now = false;
	if (s.cancel_now && vm) {
		const char *why = NULL;
		if (herd_ha_migrate_cancel(r->ha, vm->uuid, &why)) {
			fw->cancel_sent = true;
			cancelled_now = true;
			log_info("job %s: cancelling the migration of VM %s, as user %s asked", o->name, vm->name,
				 j->cancel_by);
			g_free(s.line);
			s.line = g_strdup("Asked the hypervisor to abort the migration.");
		} else if (!fw->cancel_failed_logged) {
			/* Not begun yet, or over: tried again at the next tick. */
			fw->cancel_failed_logged = true;
			log_info("job %s: the migration of VM %s cannot be cancelled yet: %s", o->name, vm->name, why);
		}
	}
	/* A memory pass not logged yet is logged at the next write. */
	if (add_step(r, ops, o, &s, cancelled_now, now_ms))
		fw->iteration = s.iteration;
	if (s.end != STORE_JOB_RUNNING)
		g_hash_table_remove(r->followed, o->uuid); /* frees fw */
	herd_job_step_clear(&s);
	add_unit(units, ops);
}

/* The VMs still assigned to node @name, or running there. */
static unsigned vms_on(herd_job_runner *r, store_state *st, const char *name)
{
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	unsigned n = 0;
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		const char *runs_on = NULL;
		if (g_strcmp0(store_vm_of(vm)->node, name) == 0 ||
		    (herd_ha_vm_active(r->ha, vm->uuid, &runs_on) && g_strcmp0(runs_on, name) == 0))
			n++;
	}
	return n;
}

/* This node's evacuation job (standby, maintenance).  Its cancel puts the
 * node online again at every tick until it is (a change may fail). */
static void follow_evacuation(herd_job_runner *r, store_state *st, store_object *o, json_t *units,
			      int64_t now_ms)
{
	json_t *ops = json_array();
	const store_job *j = store_job_of(o);
	store_object *node = j->target_uuid ? store_state_get(st, STORE_KIND_NODE, j->target_uuid) : NULL;
	herd_job_evacuate_facts f = { .node = node, .remaining = node ? vms_on(r, st, node->name) : 0 };
	herd_job_step s;
	herd_job_evacuate_step(o, &f, now_ms, &s);
	if (s.cancel_now && node) {
		/* Its VMs that have not left stay; those that left may come
		 * back by failback. */
		log_info("job %s: node %s goes back online, as user %s asked", o->name, node->name, j->cancel_by);
		store_cmd_append(ops, store_node_cmd_mode(st, node, STORE_NODE_ONLINE, false));
		s.line = g_strdup_printf("Putting node %s back online; its VMs that have not left stay.", node->name);
	}
	add_step(r, ops, o, &s, s.cancel_now, now_ms);
	herd_job_step_clear(&s);
	add_unit(units, ops);
}

/* The node that coordinates: running jobs of lost nodes end as failed. */
static void end_lost(herd_job_runner *r, store_state *st, store_object *o, json_t *ops, int64_t now_ms)
{
	const store_job *j = store_job_of(o);
	store_object *n = store_state_get_by_name(st, STORE_KIND_NODE, j->node);
	bool in_group = n && herd_cluster_is_member(r->cluster, store_node_of(n)->nodeid);
	g_autofree char *why = herd_job_lost(j, n, in_group);
	if (!why)
		return;
	log_info("job %s (%s of %s) failed: %s", o->name, j->kind, j->target, why);
	json_array_append_new(ops, store_job_cmd_finish(o, STORE_JOB_FAILED, why, now_ms));
}

static gboolean on_tick(gpointer data)
{
	herd_job_runner *r = data;
	store_state *st = herd_cluster_state(r->cluster);
	if (r->submitting || !st || !store_state_cluster(st) || !herd_cluster_store_check(r->cluster, NULL) ||
	    !herd_cluster_quorate(r->cluster))
		return G_SOURCE_CONTINUE;
	int64_t now_ms = g_get_real_time() / 1000;
	bool coordinates = herd_ha_coordinates(r->ha);
	g_autoptr(json_t) ops = json_array(); /* the changes to submit, one by one */
	g_autoptr(GPtrArray) jobs = store_state_list(st, STORE_KIND_JOB);
	for (guint i = 0; i < jobs->len; i++) {
		store_object *o = jobs->pdata[i];
		const store_job *j = store_job_of(o);
		if (j->state != STORE_JOB_RUNNING)
			continue;
		if (strcmp(j->node, r->node) != 0) {
			if (coordinates)
				end_lost(r, st, o, ops, now_ms);
			continue;
		}
		/* A sync's job is followed by daemon/san_link.c from herd-san's
		 * word, which survives a restart of herdd: not orphaned. */
		if (strcmp(j->kind, "esan-sync") == 0)
			continue;
		g_autofree char *orphan = herd_job_orphaned(j, r->boot);
		if (orphan) {
			log_info("job %s (%s of %s) failed: %s", o->name, j->kind, j->target, orphan);
			json_array_append_new(ops, store_job_cmd_finish(o, STORE_JOB_FAILED, orphan, now_ms));
			continue;
		}
		if (!j->boot) {
			/* Followed by this run from now on. */
			json_array_append_new(ops, store_job_cmd_adopt(o, r->boot, now_ms));
			continue;
		}
		followed *fw = g_hash_table_lookup(r->followed, o->uuid);
		if (!fw && strcmp(j->kind, "migrate") == 0) {
			fw = g_new0(followed, 1);
			g_hash_table_insert(r->followed, g_strdup(o->uuid), fw);
		}
		if (fw)
			follow_migration(r, st, o, fw, ops, now_ms);
		else if (strcmp(j->kind, "evacuate") == 0)
			follow_evacuation(r, st, o, ops, now_ms);
	}
	/* What it remembers of jobs that ended otherwise (the coordinator, an
	 * operator's delete) goes. */
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, r->followed);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		store_object *o = store_state_get(st, STORE_KIND_JOB, key);
		if (!o || store_job_of(o)->state != STORE_JOB_RUNNING)
			g_hash_table_iter_remove(&it);
	}
	if (coordinates) {
		json_t *prune = store_job_cmd_prune(st, now_ms);
		if (prune)
			json_array_append_new(ops, prune);
	}
	size_t i;
	json_t *cmd;
	json_array_foreach(ops, i, cmd) {
		g_autoptr(GError) err = NULL;
		if (herd_cluster_submit(r->cluster, cmd, "herd", on_committed, r, &err))
			r->submitting++;
		else
			log_debug("jobs not updated: %s", err->message);
	}
	return G_SOURCE_CONTINUE;
}

herd_job_runner *herd_job_runner_new(herd_cluster *cluster, herd_ha *ha, const char *node_name)
{
	herd_job_runner *r = g_new0(herd_job_runner, 1);
	r->cluster = cluster;
	r->ha = ha;
	r->node = g_strdup(node_name);
	store_uuid_generate(r->boot);
	r->followed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	r->tick = g_timeout_add(JOB_TICK_MS, on_tick, r);
	return r;
}

void herd_job_runner_free(herd_job_runner *r)
{
	if (!r)
		return;
	g_source_remove(r->tick);
	herd_cluster_forget(r->cluster, r);
	g_hash_table_destroy(r->followed);
	g_free(r->node);
	g_free(r);
}
