/*
 * The HA scheduler: one pure function from the cluster's state to decisions.
 *
 * Input: the nodes (mode, alive, herd running, fenced, capacity, covered by a
 * fence device) and the VMs (desired state, assignment, attributes, and where
 * the nodes' facts show them).  Output: actions — assign a VM to a node,
 * unassign it (its node then stops it), fence a node, clear a node's "down"
 * mark — and alerts that say why something waits.  It reads no clock, does
 * no I/O and keeps no state between calls: a new coordinator that calls it
 * with the same facts decides the same.  tests/sched/ holds golden files.
 *
 * The rules that keep a VM from ever running twice live here.  A VM's
 * assigned node is the one node that may run it, and stays assigned until
 * it is known not to run it: its facts show the VM stopped, or it is fenced
 * or confirmed down.  So:
 *   - a planned move is two steps: MOVE names the destination (the assigned
 *     node stops the VM), then, once it is seen stopped, ASSIGN the new node;
 *   - a stopped VM is RELEASEd from its node only once the node reports it
 *     stopped;
 *   - a VM whose node is lost waits until that node is fenced; a node not
 *     seen since the cluster started is given join_timeout_s to join
 *     before it counts as lost;
 *   - only HA VMs are then restarted elsewhere: a VM without "ha" waits for
 *     its node to come back (and starts there again).
 *
 * A VM bound to a node (sticky) goes nowhere else: a requested move away
 * from that node (move_to, as a switchover once set it) is refused before
 * its node starts it, and a sticky VM that runs elsewhere returns, live.
 * A VM moved off a node that left service (standby, maintenance) records
 * it (return_to) and returns, live, once that node is online again
 * (return_after_maintenance), unless its preferred node draws it.  Where a
 * VM goes when it may go to several nodes: see sched.c.
 *
 * A VM also needs things of its node: the storages its disks are on and the
 * virtual switches its NICs are on (its needs), and for an eSAN disk an
 * up-to-date replica on the node (only its two replica nodes can have one).  It is placed — started,
 * failed over, failed back, moved — only on a node whose own report says it
 * reaches every one of them.  A running VM is not moved because its node
 * lost one: a live migration cannot help a guest whose disk is gone (the
 * destination would need the same storage, and the source's QEMU has the
 * disk open through the dead mount), a cold move would kill a guest that
 * may still run from its page cache or is only cut off from a switch, and
 * a storage that flaps would make VMs hop; the node's report shows it.
 *
 * Ping nodes (requirement C3): a node that reaches none of the cluster's
 * ping nodes while a node that may take VMs (online, herd running) reaches
 * one is cut off from the world its HA VMs serve.  No HA VM is placed
 * there, and those it runs move to nodes that reach a ping node: live, or
 * with a restart when they cannot migrate (they serve nobody where they
 * are).  When no node reaches any, nothing moves for it: the ping node
 * itself, not every node, is then the likelier fault.  Non-HA VMs and VMs
 * sticky to the node stay.  The nodes dampen their verdicts (ha/ping.h).
 */
#pragma once

#include "store/node.h"
#include "store/vm.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* A node added to the node list and not joined yet is said so in an alert
 * only once its join took this long (at most half its join_timeout_s): a
 * join takes a second or two, and its alert, raised and cleared in each,
 * was two changes of the store for every node joining. */
#define SCHED_JOIN_QUIET_S 30

typedef struct sched_node {
	const char *name;
	store_node_mode mode;    /* online, standby (its VMs move away), maintenance
				  * (likewise, and herd leaves it alone: no fencing) */
	bool in_ring;            /* corosync sees the node (it is alive) */
	bool herd_up;            /* its herdd is in the group and reported its facts,
	                            its hypervisor's included */
	bool down;               /* fenced or confirmed down since it was last lost */
	bool awaited;            /* not seen since the coordinator's herd started, and
				  * still within join_timeout_s: not fenced yet (a
				  * cold start of the cluster; nodes boot at their pace),
				  * or added to the node list lately, within
				  * join_timeout_s of that (its join under way) */
	bool added;              /* awaited for the second reason */
	unsigned added_for_s;    /* …since this long (SCHED_JOIN_QUIET_S) */
	bool fence_covered;      /* a fence device has a plug for it */
	bool allow_cold;         /* leaving service: a VM that cannot migrate live
				  * moves with a restart */
	uint64_t memory_mib;     /* capacity from its facts; 0: unknown */
	unsigned cpus;
	GHashTable *reach;       /* the needs (ids, as sched_need's) its fresh facts say
				  * it reaches; NULL: none */
	bool ping_lost;          /* it reaches none of the ping nodes (ha/ping.h; see
				  * "Ping nodes" above): its HA VMs leave */
	bool ping_avoid;         /* it says so, but the coordinator does not act on
				  * it yet (coordinator.c, hold_ping()): it gets no
				  * HA VM, and its own stay */
} sched_node;

/* Something a VM needs of the node it runs on (see above). */
typedef struct sched_need {
	const char *id;          /* the storage's or virtual switch's UUID, or the eSAN disk's */
	const char *unreached;   /* why a node without it cannot take the VM, e.g.
				  * "storage data1 is not reachable there" */
	const char *const *only; /* NULL: the nodes whose facts say they reach @id;
				  * else exactly these nodes (names, NULL-terminated):
				  * an eSAN disk's nodes with an up-to-date replica */
} sched_need;

typedef struct sched_vm {
	const char *uuid;
	const char *name;
	bool target_running;     /* desired state */
	const char *node;        /* assigned node, or NULL */
	const char *move_to;     /* a requested destination (switchover), or NULL */
	bool move_live;          /* ... reached by live migration from its node */
	bool move_cold_ok;       /* ... or, if that fails, with a restart */
	const char *live_failed; /* why its last live move was given up, or NULL:
				  * not tried live again (the store's record) */
	bool ha;
	store_vm_priority priority; /* restart priority: the order VMs are placed in
				  * (after those that hold their room, HA first);
				  * disabled: not restarted elsewhere (as without ha) */
	const char *preferred;
	bool failback;
	const char *sticky;      /* bound to this node, or NULL */
	const char *group;       /* anti-affinity group, or NULL */
	/* Its node set (store_vm's): highest priority first; n_nodeset 0:
	 * none.  It goes to the highest tier that can take it (the least full
	 * node of it), else — unless restricted — anywhere; with failback it
	 * moves back, live, to a higher tier that can take it.  preferred is
	 * unset when a set is (the API refuses both); sticky wins over it. */
	const store_vm_node_priority *nodeset;
	size_t n_nodeset;
	bool restricted;
	const char *return_to;   /* moved away when this node left service: it goes
				  * back once the node is online (the store's record) */
	uint64_t memory_mib;
	unsigned vcpus;
	/* Facts: the nodes whose herdd reports the VM anywhere but stopped
	 * (starting, running, paused, stopping, crashed). */
	const char *const *seen_on;
	unsigned n_seen;
	/* A node where a live migration of it is arriving (paused, not a copy
	 * that runs: destroyed if the migration fails), or NULL. */
	const char *incoming_on;
	/* Its node's report of its last failed live migration, or NULL. */
	const char *migrate_error;
	bool migrating;          /* its node reports a live migration of it under way */
	const char *handed_to;   /* its node reports having migrated it there, and that
				  * node has not reported since: it runs there */
	bool steady;             /* running on its node long enough to be moved */
	/* Starts that failed: in a row on its assigned node (that node's
	 * report), with the hypervisor's last error; and the nodes given up
	 * on before (the store's record, until an operator starts, stops or
	 * defines it again), where it is not placed. */
	unsigned start_failures;
	const char *start_error;
	const store_vm_failure *failed;
	size_t n_failed;
	const sched_need *needs; /* what it needs of its node, or NULL */
	size_t n_needs;
} sched_vm;

/*
 * An affinity rule (store/rule.h): its VMs are kept on one node (together)
 * or on different nodes (apart).  A strict rule is never broken by a
 * placement herd chooses: a VM that no node can take without breaking it
 * waits, with an alert naming the rule.  A soft rule is a preference that
 * yields to capacity.  Running VMs that break a rule (a rule added while
 * they ran, a failover that had no better choice) are moved, live, to mend
 * it.  See ha/affinity.h.
 */
typedef struct sched_rule {
	const char *name;
	bool apart;              /* on different nodes; else on one node */
	bool strict;
	const char *const *vms;  /* its VMs' UUIDs (those not in the input are ignored) */
	size_t n_vms;
} sched_rule;

typedef enum {
	SCHED_ADMISSION_OFF = 0,
	SCHED_ADMISSION_WARN,
	SCHED_ADMISSION_REFUSE,
} sched_admission;

typedef struct sched_input {
	const sched_node *nodes;
	size_t n_nodes;
	const sched_vm *vms;
	size_t n_vms;
	bool vms_by_name;        /* @vms are in name order (uuid for equal names): the
				  * plan need not sort them (herd's store lists them so) */
	bool lab_mode;           /* no fencing: a lost node counts as down (unsafe) */
	sched_admission admission;
	double vcpu_overcommit;  /* vCPUs per CPU a node may carry */
	uint64_t memory_reserve_mib; /* RAM kept free on every node for itself */
	unsigned join_timeout_s; /* how long an awaited node has (for the alert) */
	unsigned start_failures_max; /* failed starts on a node before it is given up on; 0: never */
	bool return_after_maintenance; /* VMs go back to the node they left for standby or
					* maintenance once it is online (their return_to) */
	bool ha_paused;          /* herd cluster ha pause: the plan fences nothing and
				  * starts, moves or fails over nothing (each held
				  * action is an alert); it only records what runs where */
	bool spare_idle_nodes;   /* fence_idle_nodes=no: a lost node that no HA VM is
				  * assigned, moving or migrating to (nor has an HA
				  * VM's eSAN replica) is not fenced */
	const sched_rule *rules; /* affinity rules, or NULL */
	size_t n_rules;
} sched_input;

typedef enum {
	SCHED_ASSIGN = 0,        /* vm -> node (and the move, if any, is over) */
	SCHED_MOVE,              /* vm: it goes to move_to: migrated live, or its node
				  * stops it and it is started there */
	SCHED_RELEASE,           /* vm: its node has stopped it; no node is assigned */
	SCHED_FENCE,             /* node */
	SCHED_CLEAR_DOWN,        /* node is back: forget its down mark */
} sched_action_type;

typedef struct sched_action {
	sched_action_type type;
	const char *vm;          /* uuid (borrowed from the input) */
	const char *node;        /* borrowed from the input */
	const char *move_to;
	const char *reason;      /* static text */
	const char *given_up;    /* ASSIGN: the node its starts failed on, or NULL */
	bool live;               /* MOVE: by live migration ... */
	bool cold_ok;            /* ... or, if that fails, with a restart */
	const char *live_failed; /* ASSIGN: its live move was given up, for this
				  * reason (borrowed from the input) */
	const char *return_to;   /* MOVE: the node it goes back to once that node is
				  * online again (recorded), or NULL: none (cleared) */
} sched_action;

typedef enum { SCHED_INFO = 0, SCHED_WARNING, SCHED_CRITICAL } sched_severity;

typedef struct sched_alert {
	sched_severity severity;
	const char *vm;          /* uuid, or NULL */
	const char *node;        /* or NULL */
	char *message;           /* a sentence for the operator */
} sched_alert;

typedef struct sched_plan {
	GArray *actions;         /* sched_action */
	GArray *alerts;          /* sched_alert */
	bool n_plus_1;           /* every HA VM would find room after any one node fails */
	unsigned *unsafe_if_lost; /* per node, in the order of in->nodes: how many HA VMs
				  * assigned there could not be restarted elsewhere if it
				  * failed now (no room, or it could not be fenced: no
				  * fence device covers it, or maintenance mode — unless
				  * lab_mode or a down mark not cleared yet — or HA is
				  * paused: none is restarted then); VMs sticky
				  * to it not counted; 0 for a node out of the ring.
				  * Computed whatever the admission setting (herd status). */
} sched_plan;

/* Decide.  Borrowed strings in the result point into @in. */
sched_plan *sched_plan_compute(const sched_input *in);
/* SCHED_JOIN_QUIET_S for @in's join_timeout_s. */
unsigned sched_join_quiet_s(const sched_input *in);
void sched_plan_free(sched_plan *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sched_plan, sched_plan_free)

/*
 * Where would @vm go now?  The node name (borrowed from @in), or NULL with
 * *@why set to a static sentence (a need's "unreached": interned, see
 * coordinator.c).  Used by the API to refuse a start early.
 */
const char *sched_place(const sched_input *in, const sched_vm *vm, const char **why);

/* Where would @vm go from its node, which it leaves (a live migration)?
 * Its node is not a choice; its room there stays counted.  With @to, may
 * it go there: @to (borrowed from @in) or NULL with *@why. */
const char *sched_place_away(const sched_input *in, const sched_vm *vm, const char *to,
			     const char **why);

/* Would the HA VMs still fit after any one node fails, if @extra (may be
 * NULL) were also running?  *@detail gets a sentence when not (g_free). */
bool sched_n_plus_1(const sched_input *in, const sched_vm *extra, char **detail);

/* sched_n_plus_1(), and per node what sched_plan's unsafe_if_lost holds:
 * @unsafe_if_lost (in->n_nodes entries, or NULL) is filled in. */
bool sched_n_plus_1_risk(const sched_input *in, const sched_vm *extra, char **detail,
			 unsigned *unsafe_if_lost);

const char *sched_action_name(sched_action_type t);

/* How full node @i (of @in) is with VMs of @memory_mib and @vcpus on it,
 * by the scheduler's measure: the larger of its memory and vCPU shares
 * (see sched.c).  0 when empty, 1 when full. */
double sched_fullness(const sched_input *in, size_t i, uint64_t memory_mib, unsigned vcpus);
/* May node @i take VMs now (online, alive, herd running, not down)? */
bool sched_node_takes_vms(const sched_input *in, size_t i);

