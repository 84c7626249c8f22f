/*
 * The node agent: keeps this node's VMs as the cluster's configuration says.
 *
 * Level-triggered, like a kubelet: every time something may have changed (a
 * store change, a fact from the hypervisor, an operation done, a timer), it
 * compares the VMs assigned to this node with the facts and acts:
 *   - assigned here, to be running, not running (also after the guest shut
 *     itself down): start it — again with a growing pause after failures;
 *   - running here but not assigned here, to be stopped, or moving to
 *     another node: shut it down (its shutdown timeout, then forced), or
 *     power it off when forced;
 *   - VMs the cluster does not know: left alone.
 * It acts only while the caller says it may: the store is in sync with a
 * quorate partition (so stale local state never starts a VM that runs
 * elsewhere now) and the node is not in maintenance; and only once its node
 * carries no down mark (a fenced node that returns waits until the cluster
 * has seen it back).  Otherwise it freezes.
 * No I/O of its own: the hypervisor is a herd_virt, the clock an argument.
 */
#pragma once

#include "ha/facts.h"
#include "store/state.h"
#include "virt/driver.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct herd_agent herd_agent;

typedef struct herd_agent_io {
	/* The facts or errors this node reports changed: send STATUS soon. */
	void (*changed)(gpointer user);
	/* Call herd_agent_reconcile() again in @delay_ms (a retry pause). */
	void (*wakeup)(gpointer user, int64_t delay_ms);
} herd_agent_io;

/* The agent of node @node_name, acting through @virt (not owned). */
herd_agent *herd_agent_new(const char *node_name, herd_virt *virt, const herd_agent_io *io,
			   gpointer user);
/* Do @changes (store_change*, NULL: everything) concern VMs assigned to
 * this node, before or after?  Then its STATUS should say soon that it has
 * seen them (the coordinator waits for that; see herd_sched_input_build()). */
bool herd_agent_concerned(herd_agent *a, GPtrArray *changes);

/* Free after closing the driver: requests under way are answered "shutting
 * down", the agent's own operations dropped. */
void herd_agent_free(herd_agent *a);

/* What the agent may do now. */
typedef struct herd_agent_gate {
	/* The store is in sync with a quorate partition: else it freezes. */
	bool may_act;
	/* Starting a VM also needs every assignment to be durable on every
	 * member (replica_is_durable()), or a VM started on a change that is
	 * then lost would run twice; and the node not in maintenance.
	 * Stopping never needs it. */
	bool may_start;
	/* The VMs that the other members of the group report anywhere but
	 * stopped (uuid -> node name), by facts every one of them sent since
	 * the last membership change; NULL while some are missing.  A VM
	 * reported elsewhere is not started here, whatever the store says: a
	 * store that lost a partition's history (two nodes that took over in
	 * turn) must not start it twice.  NULL: no VM is started. */
	GHashTable *elsewhere;
	/* The names of the group's members (this node too), whose facts
	 * @elsewhere is made of; NULL with it. */
	GHashTable *members;
	/* The VMs those other members report running (uuids), by the same
	 * facts; NULL with them, or when not known (then starts are not
	 * ordered: ha/start_order.h). */
	GHashTable *running;
} herd_agent_gate;

/* Compare and act (see above), as far as @gate lets it. */
void herd_agent_reconcile(herd_agent *a, store_state *st, const herd_agent_gate *gate,
			  int64_t now_ms);

/* Feed a fact from the hypervisor (the driver's fact callback). */
void herd_agent_fact(herd_agent *a, const herd_vm_fact *fact, int64_t now_ms);
/* The hypervisor connection was lost or is back. */
void herd_agent_connection(herd_agent *a, bool lost);

/* This node's facts (array of herd_vm_fact; free it) and errors ({uuid: msg}). */
GArray *herd_agent_facts(herd_agent *a);
json_t *herd_agent_errors(herd_agent *a);
/* Failed starts in a row of the VMs assigned here ({uuid: count}; a new
 * reference): the coordinator places a VM elsewhere after a few. */
json_t *herd_agent_start_failures(herd_agent *a);
/* VMs migrated away from here that their destination has not reported
 * since ({uuid: node}; a new reference): the coordinator assigns them
 * there (the destination may have been lost right after). */
json_t *herd_agent_handed(herd_agent *a);
/* The changes of the configuration of VMs running here that they do not
 * run with yet ({uuid: ["memory", "disks"…]}, names of
 * store_vm_hw_change_name(); a new reference): made at their next start.
 * A CD-ROM change is made live, and is pending only until it is.  A VM
 * that this agent found running (started by an earlier herdd, or migrated
 * in) is taken as running its configuration as it was then. */
json_t *herd_agent_pending(herd_agent *a);
/* The live migrations away from here under way, with their progress as
 * the hypervisor last told it ({uuid: {to, timeout_s, started_ms, elapsed_ms,
 * memory_total, memory_processed, memory_remaining, dirty_rate, page_size,
 * bandwidth, iteration, expected_downtime_ms, autoconverge_throttle}}; a
 * new reference, empty when none). */
json_t *herd_agent_migrations(herd_agent *a);
/* Cancel the live migration of @uuid away from here (herd job cancel);
 * false with *@why (static) if there is none that can be. */
bool herd_agent_migrate_cancel(herd_agent *a, const char *uuid, const char **why);
bool herd_agent_virt_ok(herd_agent *a);

/* An operator's request on a VM running here. */
typedef enum { HERD_VM_OP_REBOOT, HERD_VM_OP_RESET, HERD_VM_OP_SUSPEND, HERD_VM_OP_RESUME } herd_vm_op;
const char *herd_vm_op_name(herd_vm_op op);
bool herd_vm_op_parse(const char *name, herd_vm_op *out);
void herd_agent_request(herd_agent *a, const char *uuid, herd_vm_op op, herd_virt_done done,
			gpointer user);
/* Grow disk @path of VM @uuid, running here, to @size bytes, live. */
void herd_agent_block_resize(herd_agent *a, const char *uuid, const char *path, uint64_t size,
			     herd_virt_done done, gpointer user);
