#define G_LOG_DOMAIN "ha"
#include "ha/ha.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/loop_monitor.h"
#include "ha/fence.h"
#include "ha/coordinator.h"
#include "ha/fence_standby.h"
#include "store/wire.h"

#include <string.h>

#define MAX_NODES 256

struct herd_ha {
	herd_cluster *cluster;
	herd_virt *virt;
	herd_engine *engine;
	guint run_idle;
	guint run_timer;
	gint64 run_timer_due_us;
	uint32_t ring[MAX_NODES];
	uint32_t group[MAX_NODES];
	GHashTable *runs;          /* fence agent runs under way: agent_ctx* set */
	herd_fence_pool *pool;     /* this node's waiting fence agents (fence_pool.h) */
	GHashTable *fence_runs;    /* "device\naction\nresult" -> count (herd_ha_fence_runs) */
	herd_cluster_message_fn check_fn; /* HERD_MSG_CHECK's handler (herd_ha_set_check_handler) */
	gpointer check_user;
	herd_ha_facts_fn facts_fn; /* a node's facts changed (herd_ha_on_facts) */
	gpointer facts_user;
	herd_ha_leave_fn leave;    /* the host's shutdown is over (herd_ha_shutdown) */
	gpointer leave_user;
	/* What the engine's runs cost (herd_ha_run_stats) */
	uint64_t engine_runs;
	gint64 run_last_us, run_last_cpu_us, run_max_us;
};

static int64_t now_ms(void)
{
	return g_get_real_time() / 1000;
}

/* ------------------------------------------------------------------ */
/* The engine's I/O                                                    */

static void io_view(gpointer user, herd_engine_view *out)
{
	herd_ha *h = user;
	replica *r = herd_cluster_replica(h->cluster);
	*out = (herd_engine_view){
		.st = herd_cluster_state(h->cluster),
		.ring = h->ring,
		.n_ring = MIN(herd_cluster_ring(h->cluster, h->ring, MAX_NODES), MAX_NODES),
		.group = h->group,
		.n_group = MIN(herd_cluster_group(h->cluster, h->group, MAX_NODES), MAX_NODES),
		.self = herd_cluster_nodeid(h->cluster),
		.synced = replica_get_phase(r) == REPLICA_SYNCED,
		.primary = replica_is_primary(r),
		.durable = replica_is_durable(r),
		.quorate = herd_cluster_quorate(h->cluster),
		.departures = herd_cluster_departures(h->cluster),
	};
}

static bool io_send(gpointer user, herd_msg_type type, const void *payload, size_t len)
{
	herd_ha *h = user;
	return herd_cluster_send(h->cluster, type, payload, len);
}

/* One callback per submitter, all with the herd_ha as their data: what
 * herd_cluster_forget() drops when the engine goes away. */
static void on_coordinator_committed(json_t *result, const GError *error, gpointer user)
{
	herd_ha *h = user;
	herd_engine_committed(h->engine, HERD_SUBMIT_COORDINATOR, error);
}

static void on_node_committed(json_t *result, const GError *error, gpointer user)
{
	herd_ha *h = user;
	herd_engine_committed(h->engine, HERD_SUBMIT_NODE, error);
}

static bool io_submit(gpointer user, json_t *cmd, herd_engine_submitter by, GError **error)
{
	herd_ha *h = user;
	return herd_cluster_submit(h->cluster, cmd, "herd",
				   by == HERD_SUBMIT_NODE ? on_node_committed : on_coordinator_committed,
				   h, error);
}

typedef struct {
	herd_ha *h;
	uint64_t run;
	herd_fence_target *target;
	char *action;
} agent_ctx;

static void on_agent_done(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	agent_ctx *a = user;
	herd_ha *h = a->h;
	herd_fence_target_free(a->target);
	/* The engine went away meanwhile (shutdown): nobody waits. */
	bool wanted = h && g_hash_table_remove(h->runs, a);
	if (wanted) {
		char *key = g_strdup_printf("%s\n%s\n%s", device ? device : "", a->action,
					    ok ? "ok" : "failed");
		gpointer was = g_hash_table_lookup(h->fence_runs, key);
		g_hash_table_replace(h->fence_runs, key, GUINT_TO_POINTER(GPOINTER_TO_UINT(was) + 1));
		herd_engine_agent_done(h->engine, a->run, ok, detail, secs, now_ms());
	}
	g_free(a->action);
	g_free(a);
}

static void io_fence_agent(gpointer user, uint64_t run, const herd_fence_target *t, const char *action)
{
	herd_ha *h = user;
	agent_ctx *a = g_new0(agent_ctx, 1);
	a->h = h;
	a->run = run;
	/* The agent may outlive the engine's target (shutdown). */
	a->target = herd_fence_target_copy(t);
	a->action = g_strdup(action);
	g_hash_table_add(h->runs, a);
	herd_fence_agent_run(h->pool, a->target, action, on_agent_done, a);
}

static gboolean on_run(gpointer data)
{
	herd_ha *h = data;
	h->run_idle = 0;
	gint64 t0 = g_get_monotonic_time(), cpu0 = loop_monitor_thread_cpu_us();
	herd_engine_run(h->engine, now_ms());
	h->run_last_us = g_get_monotonic_time() - t0;
	h->run_last_cpu_us = loop_monitor_thread_cpu_us() - cpu0;
	h->run_max_us = MAX(h->run_max_us, h->run_last_us);
	h->engine_runs++;
	return G_SOURCE_REMOVE;
}

json_t *herd_ha_run_stats(herd_ha *h)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I}", "runs", (json_int_t)h->engine_runs, "full_runs",
			 (json_int_t)herd_engine_full_runs(h->engine), "last_us",
			 (json_int_t)h->run_last_us, "last_cpu_us", (json_int_t)h->run_last_cpu_us,
			 "max_us", (json_int_t)h->run_max_us);
}

static gboolean on_run_timer(gpointer data)
{
	herd_ha *h = data;
	h->run_timer = 0;
	if (!h->run_idle)
		h->run_idle = g_idle_add(on_run, h);
	return G_SOURCE_REMOVE;
}

/* Run again in @delay_ms (the earliest of the wakeups asked for wins). */
static void io_wakeup(gpointer user, int64_t delay_ms)
{
	herd_ha *h = user;
	if (delay_ms <= 0) {
		if (!h->run_idle)
			h->run_idle = g_idle_add(on_run, h);
		return;
	}
	gint64 due = g_get_monotonic_time() + delay_ms * 1000;
	if (h->run_timer && h->run_timer_due_us <= due)
		return;
	if (h->run_timer)
		g_source_remove(h->run_timer);
	h->run_timer_due_us = due;
	h->run_timer = g_timeout_add((guint)MIN(delay_ms, G_MAXUINT), on_run_timer, h);
}

static void io_fenced(gpointer user)
{
	herd_ha *h = user;
	replica_recheck_primary(herd_cluster_replica(h->cluster));
}

static void io_leave(gpointer user, const char *summary)
{
	herd_ha *h = user;
	if (h->leave)
		h->leave(summary, h->leave_user);
}

static void io_facts_changed(gpointer user, const char *node, GPtrArray *vms)
{
	herd_ha *h = user;
	if (h->facts_fn)
		h->facts_fn(node, vms, h->facts_user);
}

static const herd_engine_io engine_io = {
	.view = io_view,
	.send = io_send,
	.submit = io_submit,
	.fence_agent = io_fence_agent,
	.wakeup = io_wakeup,
	.fenced = io_fenced,
	.leave = io_leave,
	.facts_changed = io_facts_changed,
};

/* ------------------------------------------------------------------ */
/* Events of the cluster and the hypervisor                            */

static void on_message(gpointer user, uint32_t sender, unsigned type, const void *payload, size_t len)
{
	herd_ha *h = user;
	if (type == HERD_MSG_CHECK) {
		if (h->check_fn)
			h->check_fn(h->check_user, sender, type, payload, len);
		return;
	}
	herd_engine_message(h->engine, sender, type, payload, len, now_ms());
}

void herd_ha_on_facts(herd_ha *h, herd_ha_facts_fn fn, gpointer user)
{
	h->facts_fn = fn;
	h->facts_user = user;
}

void herd_ha_set_check_handler(herd_ha *h, herd_cluster_message_fn fn, gpointer user)
{
	h->check_fn = fn;
	h->check_user = user;
}

void herd_ha_set_check(herd_ha *h, json_t *report)
{
	herd_engine_set_check(h->engine, report);
}

json_t *herd_ha_check(herd_ha *h)
{
	return herd_engine_check(h->engine);
}

/* The waiting fence agents this node keeps (fence_standby.h): after every
 * membership change and store change (fence devices, nodes). */
static void want_fence_agents(herd_ha *h)
{
	size_t n = MIN(herd_cluster_group(h->cluster, h->group, MAX_NODES), MAX_NODES);
	herd_fence_pool_set_wants(h->pool, herd_standby_wants(herd_cluster_state(h->cluster), h->group, n,
							       herd_cluster_nodeid(h->cluster)));
}

static void on_pool_changed(gpointer user)
{
	herd_ha *h = user;
	g_autoptr(json_t) agents = herd_fence_pool_json(h->pool);
	herd_engine_set_fence_standby(h->engine, agents);
}

static void on_membership(gpointer user, bool group)
{
	herd_ha *h = user;
	herd_engine_membership(h->engine, group);
	want_fence_agents(h);
}

static void on_durable(gpointer user)
{
	herd_ha *h = user;
	herd_engine_durable(h->engine);
	want_fence_agents(h);
}

static void on_store_change(gpointer user, GPtrArray *changes)
{
	herd_ha *h = user;
	herd_engine_store_changed(h->engine, changes);
	/* NULL: the whole store may have changed (a bootstrap, a sync). */
	bool devices = !changes;
	for (guint i = 0; changes && i < changes->len && !devices; i++) {
		store_kind kind = ((const store_change *)changes->pdata[i])->kind;
		devices = kind == STORE_KIND_FENCE_DEVICE || kind == STORE_KIND_NODE;
	}
	if (devices)
		want_fence_agents(h);
}

static bool on_survivor_check(gpointer user, uint32_t missing)
{
	herd_ha *h = user;
	return herd_engine_survivor_ok(h->engine, missing);
}

static GHashTable *on_lost_check(gpointer user)
{
	herd_ha *h = user;
	return herd_engine_unfenced_lost(h->engine);
}

static void on_virt_fact(gpointer user, const herd_vm_fact *fact)
{
	herd_ha *h = user;
	herd_engine_virt_fact(h->engine, fact, now_ms());
}

static void on_virt_connection(gpointer user, bool lost)
{
	herd_ha *h = user;
	herd_engine_virt_connection(h->engine, lost);
}

/* ------------------------------------------------------------------ */

herd_ha *herd_ha_new(herd_cluster *cluster, const char *node_name, herd_virt *virt)
{
	herd_ha *h = g_new0(herd_ha, 1);
	h->cluster = cluster;
	h->virt = virt;
	h->runs = g_hash_table_new(g_direct_hash, g_direct_equal);
	h->fence_runs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	h->engine = herd_engine_new(node_name, virt, &engine_io, h);
	h->pool = herd_fence_pool_new(on_pool_changed, h);
	virt->cb.fact = on_virt_fact;
	virt->cb.connection = on_virt_connection;
	virt->user = h;
	herd_cluster_set_message_handler(cluster, on_message, h);
	herd_cluster_on_membership(cluster, on_membership, h);
	herd_cluster_on_durable(cluster, on_durable, h);
	herd_cluster_listen(cluster, on_store_change, h);
	herd_cluster_set_survivor_check(cluster, on_survivor_check, h);
	herd_cluster_set_lost_check(cluster, on_lost_check, h);
	g_autoptr(GError) err = NULL;
	if (!virt->ops->open(virt, &err))
		log_warn("the hypervisor is not reachable yet: %s", err->message);
	io_wakeup(h, 0);
	want_fence_agents(h);
	return h;
}

void herd_ha_free(herd_ha *h)
{
	if (!h)
		return;
	herd_cluster_set_message_handler(h->cluster, NULL, NULL);
	herd_cluster_set_survivor_check(h->cluster, NULL, NULL);
	herd_cluster_set_lost_check(h->cluster, NULL, NULL);
	herd_cluster_unlisten(h->cluster, h);
	herd_cluster_forget(h->cluster, h);
	if (h->run_idle)
		g_source_remove(h->run_idle);
	if (h->run_timer)
		g_source_remove(h->run_timer);
	h->virt->ops->close(h->virt);
	/* Agents still running finish on their own; their results go nowhere. */
	GHashTableIter it;
	gpointer a;
	g_hash_table_iter_init(&it, h->runs);
	while (g_hash_table_iter_next(&it, &a, NULL))
		((agent_ctx *)a)->h = NULL;
	g_hash_table_destroy(h->runs);
	g_hash_table_destroy(h->fence_runs);
	herd_fence_pool_free(h->pool);
	herd_engine_free(h->engine);
	g_free(h);
}

void herd_ha_kick(herd_ha *h)
{
	io_wakeup(h, 0);
}

bool herd_ha_shutdown(herd_ha *h, herd_ha_leave_fn leave, gpointer user, char **why)
{
	h->leave = leave;
	h->leave_user = user;
	if (herd_engine_shutdown(h->engine, why, now_ms()))
		return true;
	h->leave = NULL;
	h->leave_user = NULL;
	return false;
}

/* ------------------------------------------------------------------ */
/* For the API                                                         */

void herd_ha_vm_runtime(herd_ha *h, const store_object *vm, herd_vm_runtime *out)
{
	herd_engine_vm_runtime(h->engine, vm, out);
}

herd_runtime_view *herd_ha_runtime_view(herd_ha *h)
{
	return herd_engine_runtime_view(h->engine);
}

bool herd_ha_vm_active(herd_ha *h, const char *uuid, const char **node)
{
	return herd_engine_vm_active(h->engine, uuid, node);
}

unsigned herd_ha_vms_active(herd_ha *h)
{
	return herd_engine_vms_active(h->engine);
}

json_t *herd_ha_cluster_status(herd_ha *h)
{
	return herd_engine_cluster_status(h->engine);
}

void herd_ha_set_migration_ready(herd_ha *h, bool ready, const char *problem)
{
	herd_engine_set_migration_ready(h->engine, ready, problem);
}

bool herd_ha_migrate_cancel(herd_ha *h, const char *uuid, const char **why)
{
	return herd_engine_migrate_cancel(h->engine, uuid, why);
}

unsigned herd_ha_migrations_here(herd_ha *h)
{
	return herd_engine_migrations_here(h->engine);
}

json_t *herd_ha_node_status(herd_ha *h, uint32_t nodeid)
{
	return herd_engine_node_status(h->engine, nodeid);
}

json_t *herd_ha_reach(herd_ha *h, const char *uuid)
{
	return herd_engine_reach(h->engine, uuid);
}

void herd_ha_set_reach(herd_ha *h, json_t *reach, json_t *usage)
{
	herd_engine_set_reach(h->engine, reach, usage);
}

void herd_ha_set_esan(herd_ha *h, json_t *esan)
{
	herd_engine_set_esan(h->engine, esan);
}

json_t *herd_ha_esan(herd_ha *h, const char *uuid)
{
	return herd_engine_esan(h->engine, uuid);
}

json_t *herd_ha_esan_all(herd_ha *h)
{
	return herd_engine_esan_all(h->engine);
}

void herd_ha_vm_request(herd_ha *h, const char *uuid, herd_vm_op op, herd_virt_done done,
			gpointer user)
{
	herd_engine_vm_request(h->engine, uuid, op, done, user, now_ms());
}

void herd_ha_disk_grow(herd_ha *h, const char *uuid, const char *path, uint64_t size,
		       herd_virt_done done, gpointer user)
{
	herd_engine_disk_grow(h->engine, uuid, path, size, done, user, now_ms());
}

void herd_ha_set_links(herd_ha *h, json_t *links)
{
	herd_engine_set_links(h->engine, links, now_ms());
}

json_t *herd_ha_links(herd_ha *h)
{
	return herd_engine_links(h->engine);
}

void herd_ha_set_ping(herd_ha *h, json_t *ping)
{
	herd_engine_set_ping(h->engine, ping);
}

json_t *herd_ha_ping(herd_ha *h)
{
	return herd_engine_ping(h->engine);
}

json_t *herd_ha_fence_runs(herd_ha *h)
{
	json_t *out = json_array();
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, h->fence_runs);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		g_auto(GStrv) parts = g_strsplit(k, "\n", 3);
		json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:I}", "device", parts[0], "action",
						     parts[1], "result", parts[2], "count",
						     (json_int_t)GPOINTER_TO_UINT(v)));
	}
	return out;
}

json_t *herd_ha_fence_standby(herd_ha *h)
{
	return herd_engine_fence_standby(h->engine);
}

void herd_ha_fence_now(herd_ha *h, const char *node, herd_engine_fence_done done, gpointer user)
{
	herd_engine_fence_now(h->engine, node, done, user, now_ms());
}

static gint by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

GPtrArray *herd_ha_unfenced_lost(herd_ha *h)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GHashTable) lost = herd_engine_unfenced_lost(h->engine);
	if (lost) {
		GHashTableIter it;
		gpointer name;
		g_hash_table_iter_init(&it, lost);
		while (g_hash_table_iter_next(&it, &name, NULL))
			g_ptr_array_add(out, g_strdup(name));
		g_ptr_array_sort(out, by_name);
	}
	return out;
}

bool herd_ha_admission(herd_ha *h, const char *uuid, char **detail)
{
	return herd_engine_admission(h->engine, uuid, detail, now_ms());
}

json_t *herd_ha_vm_migration(herd_ha *h, const char *uuid)
{
	return herd_engine_vm_migration(h->engine, uuid);
}

json_t *herd_ha_vm_pending(herd_ha *h, const char *uuid)
{
	return herd_engine_vm_pending(h->engine, uuid);
}

const char *herd_ha_migrate_target(herd_ha *h, const char *uuid, const char *to, const char **why)
{
	return herd_engine_migrate_target(h->engine, uuid, to, why, now_ms());
}

json_t *herd_ha_simulate_rebalance(herd_ha *h)
{
	return herd_engine_simulate_rebalance(h->engine, now_ms());
}

sched_whatif_result *herd_ha_simulate(herd_ha *h, const sched_hypothesis *hyp, GError **error)
{
	return herd_engine_simulate(h->engine, hyp, now_ms(), error);
}

bool herd_ha_coordinates(herd_ha *h)
{
	return herd_coord_active(herd_engine_coordinator(h->engine));
}
