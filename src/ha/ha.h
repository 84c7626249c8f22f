/*
 * herdd's HA shell: the node engine (ha/engine.h) wired to the GLib main
 * loop, the cluster service (corosync, the replicated store), the node's
 * hypervisor and the fence agent runner.  Everything the engine asks for
 * (send, submit, run an agent, be called again) is done here; every event
 * (a message, a membership change, a store change, a fact, an agent's
 * result) goes to the engine with the time it happened.
 */
#pragma once

#include "cluster/service.h"
#include "ha/engine.h"
#include "virt/driver.h"

#include <glib.h>
#include <jansson.h>

typedef struct herd_ha herd_ha;

/* The engine of node @node_name over @cluster, running VMs with @virt (the
 * caller's; it must outlive the engine). */
herd_ha *herd_ha_new(herd_cluster *cluster, const char *node_name, herd_virt *virt);
void herd_ha_free(herd_ha *h);

/* This node coordinates the cluster now (ha/coordinator.h). */
bool herd_ha_coordinates(herd_ha *h);

/* Run the engine soon (after a change the API made). */
void herd_ha_kick(herd_ha *h);

/* What the engine's runs on this node cost (on the coordinator: building
 * the scheduler's input, the plan, the actions): {"runs", "full_runs",
 * "last_us", "last_cpu_us", "max_us"} (full_runs: those that looked at
 * every VM, herd_engine_full_runs()), wall and main-thread CPU time (bench/scale). */
json_t *herd_ha_run_stats(herd_ha *h);

/* The host's shutdown is over (herd_engine_shutdown()): leave and exit. */
typedef void (*herd_ha_leave_fn)(const char *summary, gpointer user);
/* What node @node says of itself changed, and which VMs' runtime that may
 * change (NULL: not known VM by VM; herd_engine_io.facts_changed). */
typedef void (*herd_ha_facts_fn)(const char *node, GPtrArray *vms, gpointer user);
/* The host shuts down: herd_engine_shutdown(); with true, @leave follows,
 * once.  False with *@why (g_free): exit at once. */
bool herd_ha_shutdown(herd_ha *h, herd_ha_leave_fn leave, gpointer user, char **why);

/* The engine's queries and operator actions (engine.h), with the clock. */
void herd_ha_vm_runtime(herd_ha *h, const store_object *vm, herd_vm_runtime *out);
/* The runtime of many VMs at once (engine.h): free with herd_runtime_view_free(). */
herd_runtime_view *herd_ha_runtime_view(herd_ha *h);
bool herd_ha_vm_active(herd_ha *h, const char *uuid, const char **node);
unsigned herd_ha_vms_active(herd_ha *h);
json_t *herd_ha_cluster_status(herd_ha *h);
json_t *herd_ha_node_status(herd_ha *h, uint32_t nodeid);
void herd_ha_set_migration_ready(herd_ha *h, bool ready, const char *problem);
json_t *herd_ha_reach(herd_ha *h, const char *uuid);
void herd_ha_set_reach(herd_ha *h, json_t *reach, json_t *usage);
/* herd_engine_set_esan(), herd_engine_esan(). */
void herd_ha_set_esan(herd_ha *h, json_t *esan);
json_t *herd_ha_esan(herd_ha *h, const char *uuid);
json_t *herd_ha_esan_all(herd_ha *h);
unsigned herd_ha_migrations_here(herd_ha *h);
/* Cancel the live migration of VM @uuid away from this node (herd job
 * cancel); false with *@why (static) if none runs here. */
bool herd_ha_migrate_cancel(herd_ha *h, const char *uuid, const char **why);
void herd_ha_vm_request(herd_ha *h, const char *uuid, herd_vm_op op, herd_virt_done done,
			gpointer user);
/* Grow disk @path of running VM @uuid to @size bytes, live, on its node. */
void herd_ha_disk_grow(herd_ha *h, const char *uuid, const char *path, uint64_t size,
		       herd_virt_done done, gpointer user);
/* Tell @fn whenever a node's facts change (the API's live updates, one
 * listener; NULL: none). */
void herd_ha_on_facts(herd_ha *h, herd_ha_facts_fn fn, gpointer user);
/* HERD_MSG_CHECK messages (herd check's requests, probes and results) go
 * to @fn (daemon/checker.h) instead of the engine; NULL: dropped. */
void herd_ha_set_check_handler(herd_ha *h, herd_cluster_message_fn fn, gpointer user);
/* herd_engine_set_check(), herd_engine_check(). */
void herd_ha_set_check(herd_ha *h, json_t *report);
json_t *herd_ha_check(herd_ha *h);
/* herd_engine_set_links(), herd_engine_links(). */
void herd_ha_set_links(herd_ha *h, json_t *links);
json_t *herd_ha_links(herd_ha *h);
/* herd_engine_set_ping(), herd_engine_ping(). */
void herd_ha_set_ping(herd_ha *h, json_t *ping);
json_t *herd_ha_ping(herd_ha *h);
/* The fence agent runs this node's herd made since it started:
 * [{"device","action","result":"ok"|"failed","count"}…]. */
json_t *herd_ha_fence_runs(herd_ha *h);
/* Every node's waiting fence agents (herd_engine_fence_standby()). */
json_t *herd_ha_fence_standby(herd_ha *h);
void herd_ha_fence_now(herd_ha *h, const char *node, herd_engine_fence_done done, gpointer user);
/* Lost nodes not yet fenced or confirmed down (names, sorted; free the array). */
GPtrArray *herd_ha_unfenced_lost(herd_ha *h);
bool herd_ha_admission(herd_ha *h, const char *uuid, char **detail);
json_t *herd_ha_vm_migration(herd_ha *h, const char *uuid);
json_t *herd_ha_vm_pending(herd_ha *h, const char *uuid);
const char *herd_ha_migrate_target(herd_ha *h, const char *uuid, const char *to, const char **why);
sched_whatif_result *herd_ha_simulate(herd_ha *h, const sched_hypothesis *hyp, GError **error);
/* What a rebalance would do now (herd_engine_simulate_rebalance()). */
json_t *herd_ha_simulate_rebalance(herd_ha *h);
