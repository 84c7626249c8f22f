/*
 * One node's replica of the configuration store, and the protocol that keeps
 * the replicas equal: state machine replication over corosync CPG.
 *
 * A change is a COMMAND multicast to the group; CPG delivers it to every
 * member in the same (agreed) order; every member applies it with
 * store_state_apply().  Commands are applied only in a primary configuration
 * (members hold a majority of the cluster's nodes), decided from the delivered
 * membership and the replicated node list, so all members decide alike.  The
 * sender answers its client once every member of the configuration has made
 * the change durable (PERSISTED messages), so an acknowledged change survives
 * any later crash of a minority, or of everyone.
 *
 * A membership change starts a sync: the lowest member opens a round with
 * SYNC_START (its epoch tags the round, so a message sent for an earlier
 * round is recognised even when CPG delivers it in a later configuration);
 * every member answers with STATE (its position: generation, index, hash);
 * the highest position wins (generation
 * first — it is bumped by every sync of a primary configuration, as Raft's
 * term); if anyone differs, the winner multicasts its whole state as SNAPSHOT
 * chunks.  Commands delivered meanwhile wait and are applied after the sync.
 *
 * When its database fails, a replica stops at once (REPLICA_FAILED) rather
 * than diverge: it answers this node's requests (those that went to the
 * group may have been applied by the others: HERD_ERR_IO, saying so; those
 * not sent yet were not: HERD_ERR_UNAVAILABLE), ignores the bus, and calls
 * failed().  Its owner leaves the group and, once the disk can be written
 * again, calls replica_recover(): the replica reloads what is durable and
 * joins as after a restart; the sync brings it up to date.
 *
 * The replica does no I/O but through its callbacks and its database: the
 * daemon wires it to CPG, the simulator to a simulated bus.  It has no clock.
 */
#pragma once

#include "common/error.h"
#include "store/db.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct replica replica;

typedef enum {
	REPLICA_DETACHED = 0,  /* not in a CPG group */
	REPLICA_SYNCING,       /* exchanging states after a membership change */
	REPLICA_SYNCED,        /* in sync with every member of the configuration */
	REPLICA_FAILED,        /* the database failed: out of the group until replica_recover() */
} replica_phase;

typedef struct replica_callbacks {
	/* Multicast @msg (@len bytes) to the group, in order.  False: cannot. */
	bool (*send)(gpointer user, const void *msg, size_t len);
	/* A request of this node finished: @result or @error is set (both
	 * borrowed: take a reference to keep the result). */
	void (*done)(gpointer user, uint64_t req_id, json_t *result, const GError *error);
	/* Objects changed (@changes of store_change*), or everything was
	 * replaced by a sync (@changes NULL). */
	void (*changed)(gpointer user, GPtrArray *changes);
	/* The database failed; the replica stopped and answered this node's
	 * requests.  The daemon must leave the group (and alert) rather than
	 * diverge, and recover (replica_recover()) once it can write again. */
	void (*failed)(gpointer user, const GError *error);
	/*
	 * Optional: may a partition of one of a two-node cluster go on without
	 * the other (@missing)?  Only once the other was fenced; absent: no.
	 */
	bool (*two_node_survivor_ok)(gpointer user, uint32_t missing);
	/* Optional: everything applied here became durable on every member
	 * (see replica_is_durable()). */
	void (*durable)(gpointer user);
	/*
	 * Optional: the nodes that are lost and neither fenced nor confirmed
	 * down, as a new set of names (NULL: none).  replica_submit() refuses
	 * what store_guard_check() refuses while they are (invariant 2).
	 */
	GHashTable *(*unfenced_lost)(gpointer user);
} replica_callbacks;

/* A replica over @db (loaded from it), for node @nodeid named @node_name. */
replica *replica_new(uint32_t nodeid, const char *node_name, store_db *db,
		     const replica_callbacks *cb, gpointer user, GError **error);
/* Free; pending requests are answered with an UNAVAILABLE error. */
void replica_free(replica *r);

/* This node's id changed (e.g. learned from corosync after start). */
void replica_set_nodeid(replica *r, uint32_t nodeid);

/*
 * Submit a change; @cmd gets "time_ms", "origin", "user" added.  Returns the
 * request id whose done() callback will come, or 0 with @error (no quorum,
 * syncing, a lost node not fenced yet (store/guard.h), too large, too many
 * in flight).  Every change of the store goes through here.
 */
uint64_t replica_submit(replica *r, json_t *cmd, int64_t now_ms, const char *user,
			GError **error);

/* Inputs from the bus. */
void replica_confchg(replica *r, const uint32_t *members, size_t n_members);
void replica_deliver(replica *r, uint32_t sender, const void *msg, size_t len);
/* The bus connection was lost: leave the configuration. */
void replica_detach(replica *r);
/* End of a burst of deliveries: make changes durable, announce, acknowledge. */
void replica_flush(replica *r);

/*
 * Seed an empty store: apply @cmd locally as the first change of a new
 * cluster (cluster create), durably, before any bus exists.
 */
json_t *replica_bootstrap(replica *r, json_t *cmd, int64_t now_ms, const char *user,
			  GError **error);

/*
 * After a failure (REPLICA_FAILED), once the database can be written again
 * (store_db_reopen(), store_db_check_writable()): reload the state from
 * what is durable, forget what was applied only in memory, and become
 * DETACHED, to join the group again and sync as after a restart.  False
 * (still failed) if the state cannot be read.  changed(NULL) is called.
 */
bool replica_recover(replica *r, GError **error);

/* Evaluate again whether this configuration is primary (a two-node survivor
 * that has just fenced its peer may now change the configuration). */
void replica_recheck_primary(replica *r);

/*
 * Is everything this replica has applied durable on every member of its
 * configuration?  Only then may a node act on it in ways that outlive a
 * lost change: a VM started on an assignment that was applied here but
 * then lost (the members that had it lost power before persisting it)
 * would run twice.
 */
bool replica_is_durable(replica *r);

/* The last index every member of this configuration has made durable (0
 * while not in sync).  Each member calls its changed() callback for a change
 * before it makes the change durable, so what every member's daemon does in
 * that callback is done on all of them once this index reaches the change. */
uint64_t replica_durable_index(replica *r);

/* Read access. */
store_state *replica_state(replica *r);
replica_phase replica_get_phase(replica *r);
bool replica_is_primary(replica *r);
uint32_t replica_nodeid(replica *r);
/* Copy up to @max member node ids (sorted) to @out; returns how many members. */
size_t replica_members(replica *r, uint32_t *out, size_t max);
/* Why a change would be refused now, or NULL if it would be accepted. */
const char *replica_refusal(replica *r, herd_error_code *code);
/* The protocol version all members speak. */
unsigned replica_cluster_protocol(replica *r);
/* Messages rejected as malformed so far (wire errors). */
uint64_t replica_rejected_messages(replica *r);
/* Changes this replica got by catch-up in syncs: a member that missed
 * changes is sent them from the leader's log of the last ones it applied
 * (at most 20,000, 2 MiB), the whole store only when they are no longer
 * there (or a member's history is not the leader's). */
uint64_t replica_caught_up(replica *r);
/*
 * What this replica did since it started, to see what a change costs the
 * cluster (bench/scale): changes applied, transactions made durable (one
 * fsync of SQLite's WAL each), and the COMMAND (batches of this node's
 * changes) and PERSISTED (acknowledgements) messages it sent.  Under load
 * one transaction and one PERSISTED cover every change of a burst of
 * deliveries, and one COMMAND every change submitted while the last one
 * was on its way.
 */
typedef struct {
	uint64_t applied;
	uint64_t commits;
	uint64_t commands_sent;
	uint64_t persisted_sent;
} replica_counters;
void replica_get_counters(replica *r, replica_counters *out);
/* Keep at most @entries changes in the log (tests). */
void replica_set_log_max(replica *r, unsigned entries);
