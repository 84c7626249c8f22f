/*
 * One node's HA engine: everything herd's high availability does on a node
 * that is not GLib, corosync or libvirt plumbing.  It holds the cluster-wide
 * facts (every node's STATUS), the node agent (this node's VMs), the
 * coordinator (placement, fencing decisions), the walk over fencing levels
 * (with the two-node fence delay), the start gating, the survivor check of a
 * lone node of two, and operators' requests on VMs of other nodes.
 *
 * It does no I/O and reads no clock: every call brings now_ms (wall clock,
 * milliseconds), and everything it does outside itself goes through its
 * herd_engine_io table — multicast a message, submit a store change, run a
 * fence agent action, be called again later.  herdd (ha/ha.c) and the
 * deterministic simulator (tests/sim/sim_ha.c) construct this same object;
 * the simulator's seeds explore exactly the engine that ships.
 */
#pragma once

#include "ha/agent.h"
#include "ha/fencer.h"
#include "ha/whatif.h"
#include "store/state.h"
#include "store/wire.h"
#include "virt/driver.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct herd_engine herd_engine;

/* What the engine sees of the cluster when it looks (herd_engine_io.view). */
typedef struct herd_engine_view {
	store_state *st;
	const uint32_t *ring;     /* corosync's ring: the nodes alive */
	size_t n_ring;
	const uint32_t *group;    /* the nodes whose herd is in the group */
	size_t n_group;
	uint32_t self;            /* this node's id (0 before corosync told it) */
	bool synced;              /* the store is in sync with the group */
	bool primary;             /* the group may change the store */
	bool durable;             /* all applied here is durable on every member */
	bool quorate;             /* votequorum: this partition may act */
	GHashTable *departures;   /* node id -> why its herd left the group (NULL: none) */
} herd_engine_view;

/* Who in the engine submitted a store change (herd_engine_committed()). */
typedef enum {
	HERD_SUBMIT_COORDINATOR = 0, /* the coordinator's decisions */
	HERD_SUBMIT_NODE,            /* this node's own mode: its host's shutdown, and its return */
} herd_engine_submitter;

typedef struct herd_engine_io {
	/* Fill @out; the arrays stay valid until the engine returns. */
	void (*view)(gpointer user, herd_engine_view *out);
	/* Multicast an HA message (STATUS, VM request, VM reply) to the
	 * group, after the store's messages sent before it.  False: not
	 * connected (the message is lost; membership changes resend). */
	bool (*send)(gpointer user, herd_msg_type type, const void *payload, size_t len);
	/* Submit a store change as user "herd"; herd_engine_committed()
	 * with @by follows unless this returns false (then with @error). */
	bool (*submit)(gpointer user, json_t *cmd, herd_engine_submitter by, GError **error);
	/* Run @action of fence agent @t; herd_engine_agent_done(@run) follows. */
	void (*fence_agent)(gpointer user, uint64_t run, const herd_fence_target *t,
			    const char *action);
	/* Call herd_engine_run() in @delay_ms (<= 0: soon, after this event). */
	void (*wakeup)(gpointer user, int64_t delay_ms);
	/* A node was fenced from here: a lone survivor of two may now change
	 * the store (replica_recheck_primary()). */
	void (*fenced)(gpointer user);
	/* The host's shutdown (herd_engine_shutdown()) need wait no longer for
	 * this node's VMs: herdd may leave the cluster and exit.  @summary
	 * says what left and what stays.  Called once. */
	void (*leave)(gpointer user, const char *summary);
	/* What node @node says of itself (its VMs' states…) changed beyond the
	 * figures that move all the time (free memory, load, storage usage):
	 * for the web UI's live updates.  @vms: the uuids of the VMs whose
	 * runtime it may change (herd_node_facts_vms_changed(); empty: none,
	 * as when only its eSAN replicas' states changed), or NULL when that
	 * is not known VM by VM.  Optional (NULL: not told). */
	void (*facts_changed)(gpointer user, const char *node, GPtrArray *vms);
} herd_engine_io;

/* The engine of node @node_name, running VMs with @virt (not owned; its
 * callbacks are the caller's to route to herd_engine_virt_*()). */
herd_engine *herd_engine_new(const char *node_name, herd_virt *virt, const herd_engine_io *io,
			     gpointer user);
/* Requests under way are answered "shutting down"; the caller closes the
 * driver first. */
void herd_engine_free(herd_engine *e);

/* ------------------------------------------------------------------ */
/* Events                                                              */

/* Reconcile this node's VMs, coordinate if this node does, send STATUS
 * if due.  Level-triggered: any number of calls is safe. */
void herd_engine_run(herd_engine *e, int64_t now_ms);
/* How many runs reconciled and coordinated (the others found nothing
 * new to look at): each looks at every VM on the coordinator. */
uint64_t herd_engine_full_runs(herd_engine *e);
/* An HA message from @sender (the store's messages go to the replica). */
void herd_engine_message(herd_engine *e, uint32_t sender, unsigned type, const void *payload,
			 size_t len, int64_t now_ms);
/* Membership changed: the group (@group, in the agreed order of its
 * messages), or the ring or quorum (not @group, at no agreed point).  A
 * change of the group asks for this node's STATUS: at once, or after the
 * store's sync when the group only grew (engine.c, STATUS_SYNC_WAIT_MS). */
void herd_engine_membership(herd_engine *e, bool group);
/* Store objects changed (@changes of store_change*; NULL: everything). */
void herd_engine_store_changed(herd_engine *e, GPtrArray *changes);
/* Everything applied became durable on every member. */
void herd_engine_durable(herd_engine *e);
/* A change the engine submitted was committed (or failed). */
void herd_engine_committed(herd_engine *e, herd_engine_submitter by, const GError *error);
/* A fence agent run finished: as herd_fencer_result(). */
void herd_engine_agent_done(herd_engine *e, uint64_t run, bool ok, const char *detail,
			    double secs, int64_t now_ms);
/* The hypervisor's facts (route the driver's callbacks here). */
void herd_engine_virt_fact(herd_engine *e, const herd_vm_fact *fact, int64_t now_ms);
void herd_engine_virt_connection(herd_engine *e, bool lost);

/*
 * This node's host shuts down or reboots (herdd is stopped while the
 * system stops), and does what the cluster's shutdown_policy says.  With
 * "migrate" (the default) and a store this node may change (in sync with a
 * quorate partition), the node goes into maintenance with the shutdown
 * mark and allow_cold (store_node_cmd_shutdown), and true is returned: the
 * engine goes on as before — its VMs move away, live, a few at a time —
 * and io.leave() follows once no VM that can leave runs or is assigned
 * here any more (VMs sticky to it, or that no node can take, stay: they
 * start again here when the host is back), or at shutdown_timeout_s.  The
 * others then leave the node alone (maintenance: no fence).
 * False, with *@why (g_free) saying why, when herdd should rather exit at
 * once as it always did (the others fence the node and restart its HA
 * VMs): the policy is "failover", or the store is not writable here.
 *
 * The next engine of this node (herdd started again when the host is
 * back) gives the node the mode it had before, once its store is
 * writable (store_node_cmd_shutdown_over()): failback brings its VMs back.
 */
bool herd_engine_shutdown(herd_engine *e, char **why, int64_t now_ms);

/* May a partition of one of a two-node cluster go on without @missing?
 * (replica's two_node_survivor_ok: only while votequorum says it is
 * quorate, and once this node fenced it or the store marks it down.) */
bool herd_engine_survivor_ok(herd_engine *e, uint32_t missing);
/* Lost nodes not fenced or confirmed down yet: a new set of names, or NULL
 * if none (replica's unfenced_lost; see store/guard.h). */
GHashTable *herd_engine_unfenced_lost(herd_engine *e);

/* ------------------------------------------------------------------ */
/* Operators                                                           */

/* Reboot/reset/suspend/resume a VM where it runs; @done once answered. */
void herd_engine_vm_request(herd_engine *e, const char *uuid, herd_vm_op op, herd_virt_done done,
			    gpointer user, int64_t now_ms);

/* Grow disk @path of VM @uuid to @size bytes, live, where the VM runs;
 * @done once answered. */
void herd_engine_disk_grow(herd_engine *e, const char *uuid, const char *path, uint64_t size,
			   herd_virt_done done, gpointer user, int64_t now_ms);

typedef void (*herd_engine_fence_done)(bool ok, const char *devices, const char *detail,
				       double agent_seconds, gpointer user);
/* Fence @node now, from this node, without delay (herd node fence); the
 * coordinator hears of it as of its own fences. */
void herd_engine_fence_now(herd_engine *e, const char *node, herd_engine_fence_done done,
			   gpointer user, int64_t now_ms);

/* ------------------------------------------------------------------ */
/* Queries (answers are valid until the next event)                   */

/* Where a VM is and how it is. */
typedef struct herd_vm_runtime {
	const char *state;     /* "running", "paused"…, "shut off", or "unknown" */
	const char *node;      /* where it is active, or its node that does not report; or NULL */
	int64_t since_ms;      /* in that state since (0 if not active) */
	const char *error;     /* its node agent's last error about it, or NULL */
	const char *alert;     /* the coordinator's alert about it, or NULL */
} herd_vm_runtime;
void herd_engine_vm_runtime(herd_engine *e, const store_object *vm, herd_vm_runtime *out);
/* The same for many VMs: the facts gathered once (an API list of 10,000
 * VMs).  It stays as it was taken, whatever the engine handles later, and
 * may outlive the engine; the strings it gives live as long as it does (or
 * as the store's node objects and the facts it took them from), not as
 * the VMs' objects. */
typedef struct herd_runtime_view herd_runtime_view;
herd_runtime_view *herd_engine_runtime_view(herd_engine *e);
void herd_runtime_view_get(const herd_runtime_view *v, const store_object *vm, herd_vm_runtime *out);
void herd_runtime_view_free(herd_runtime_view *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_runtime_view, herd_runtime_view_free)
/* The live migration of @uuid under way, as its source last told
 * (herd_agent_migrations() plus "from": the source's name); a new
 * reference, or NULL if none runs. */
json_t *herd_engine_vm_migration(herd_engine *e, const char *uuid);
/* What of @uuid's configuration it does not run with yet, as the node that
 * runs it last told (herd_agent_pending): a new array, empty if nothing
 * (or it does not run, or its node does not know). */
json_t *herd_engine_vm_pending(herd_engine *e, const char *uuid);
/* Where the scheduler would migrate @uuid from its node now (@to NULL), or
 * may it go to @to: a node's name (the store's), or NULL with *@why a
 * static sentence. */
const char *herd_engine_migrate_target(herd_engine *e, const char *uuid, const char *to,
				       const char **why, int64_t now_ms);

/* Is the VM reported anywhere but stopped?  *@node gets where (borrowed). */
bool herd_engine_vm_active(herd_engine *e, const char *uuid, const char **node);
/* How many of the store's VMs are reported anywhere but stopped: the
 * count of VMs for which herd_engine_vm_active() holds, taken from the
 * reports of running VMs rather than by asking for every defined one. */
unsigned herd_engine_vms_active(herd_engine *e);
/* The coordinator's alerts and N+1 state, from whichever node coordinates:
 * {"coordinator":"n1","alerts":[…],"n_plus_1":…,"fencing":[…]} or null. */
json_t *herd_engine_cluster_status(herd_engine *e);
/* A node's facts as the API shows them ({"virt_ok","migration_ready",
 * "migration_problem","resources","vms","reach"}), or NULL.  "reach" is
 * {uuid: {"ok":bool,"problem":"…"?,"size":bytes?,"free":bytes?}} for every
 * storage and virtual switch the node checked. */
json_t *herd_engine_node_status(herd_engine *e, uint32_t nodeid);
/* Storage or virtual switch @uuid on every node with fresh facts:
 * {node name: {"ok","problem"?,"size"?,"free"?}}; a node that does not
 * report it: not ok, "not reported by this node (yet)". */
json_t *herd_engine_reach(herd_engine *e, const char *uuid);
/* What this node's reach checker found (daemon/reach_check.h): @reach
 * {uuid: {"ok","problem"?}} and @usage {uuid: {"size","free"}} (held).  A
 * change of @reach is sent at once; of @usage alone, with the next STATUS. */
void herd_engine_set_reach(herd_engine *e, json_t *reach, json_t *usage);
/* This node's herd-san's state of its eSAN volumes (daemon/san_link.h):
 * {disk uuid: {"conn","sync"?,"dirty"?,…}} (held), sent with its STATUS. */
void herd_engine_set_esan(herd_engine *e, json_t *esan);
/* eSAN disk @uuid as the herd-sans of nodes with fresh facts report it:
 * {node name: state}. */
json_t *herd_engine_esan(herd_engine *e, const char *uuid);
/* The same for every eSAN disk at once: {disk uuid: {node name: state}}. */
json_t *herd_engine_esan_all(herd_engine *e);
/* This node's waiting fence agents changed (ha/fence_pool.h): they go
 * into its STATUS.  @agents is referenced. */
void herd_engine_set_fence_standby(herd_engine *e, json_t *agents);
/* Every node's waiting fence agents, by fresh facts: {node: {device:
 * {"agent":…,"pids":[…]}}}, nodes without any left out. */
json_t *herd_engine_fence_standby(herd_engine *e);
/* This node's knet links to each peer, {peer: [{"link","connected"}…]}
 * (ha/links.h) at @now_ms: sent in its STATUS when they changed, at the
 * latest LINKS_REPORT_DELAY_MS later.  Only alerts follow from them, and
 * a join changes every node's links twice within a second or two (the
 * node added, then its link up) next to the membership change, whose
 * STATUS takes them along: one STATUS instead of three. */
#define LINKS_REPORT_DELAY_MS 2000
void herd_engine_set_links(herd_engine *e, json_t *links, int64_t now_ms);
/* The report of the latest herd check that any node ran, as it multicast
 * it ({"node","time_ms","results"}, ha/check.h): the coordinator alerts
 * about its failures until the next report. */
void herd_engine_set_check(herd_engine *e, json_t *report);
/* That report (a new reference), or NULL if none came since this herd
 * started. */
json_t *herd_engine_check(herd_engine *e);
/* Every node's view of its links, {node: {peer: […]}}, by fresh facts. */
json_t *herd_engine_links(herd_engine *e);
/* What this node makes of the ping nodes (herd_ping_json(), NULL: none
 * configured): sent in its STATUS when it changes. */
void herd_engine_set_ping(herd_engine *e, json_t *ping);
/* Every node's view of the ping nodes, {node: {"lost","targets"}}, by
 * fresh facts; nodes that say nothing are left out. */
json_t *herd_engine_ping(herd_engine *e);
/* Whether this node's host is set up for live migration, or why not
 * (@problem, NULL when @ready): sent in its STATUS, so every node shows it. */
void herd_engine_set_migration_ready(herd_engine *e, bool ready, const char *problem);
/* Live migrations under way on this node, out or in, as its hypervisor
 * reports them. */
unsigned herd_engine_migrations_here(herd_engine *e);
/* herd_agent_migrate_cancel() of this node's agent. */
bool herd_engine_migrate_cancel(herd_engine *e, const char *uuid, const char **why);
/* N+1: would every HA VM still find room after any one node fails, with
 * @uuid running too?  *@detail says why not (g_free). */
bool herd_engine_admission(herd_engine *e, const char *uuid, char **detail, int64_t now_ms);
/* What if @h happened now?  The shipped scheduler played forward on the
 * cluster as this node sees it (ha/whatif.h); NULL with an error naming a
 * node the cluster does not have. */
sched_whatif_result *herd_engine_simulate(herd_engine *e, const sched_hypothesis *h,
					  int64_t now_ms, GError **error);
/* What would a rebalance do now, as if the load had been uneven long
 * enough?  sched_json_rebalance()'s result with "enabled" (the setting),
 * "settled" (no move while the scheduler has something to do),
 * "threshold_pct" and "hold_s". */
json_t *herd_engine_simulate_rebalance(herd_engine *e, int64_t now_ms);
/* This node's coordinator, if it coordinates (for the simulator's checks). */
struct herd_coord *herd_engine_coordinator(herd_engine *e);
/* The cluster-wide facts as this node has them (for the simulator's traces). */
struct herd_facts *herd_engine_facts(herd_engine *e);
