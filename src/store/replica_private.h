/*
 * A replica's insides (store/replica.h), shared by its files: replica.c
 * (membership, commands, acknowledgements, the sync's rounds and what the
 * leader sends) and replica_transfer.c (what a member that differs
 * receives in a sync: the whole store or the changes it missed, and their
 * application).  Not for use outside src/store/replica*.c.
 */
#pragma once

#include "store/change_log.h"
#include "store/replica.h"
#include "store/wire.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
	uint32_t nodeid;
	bool have_state;
	store_position pos;
	unsigned proto_max;
	bool catchup;             /* it takes a CATCHUP instead of a SNAPSHOT */
	uint64_t persisted_gen;   /* from PERSISTED in this configuration */
	uint64_t persisted_index;
} member;

typedef struct {
	uint64_t req_id;
	uint64_t gen, index;      /* position right after the change was applied */
	json_t *result;
} awaiting_ack;

/* A COMMAND message delivered while a sync runs: applied after it. */
typedef struct {
	uint32_t sender;
	GBytes *payload;
} queued_command;

/* A COMMAND message of ours on its way: which requests it carries. */
typedef struct {
	uint64_t seq;
	GArray *req_ids;
} sent_message;

struct replica {
	uint32_t nodeid;
	char *node_name;
	store_db *db;
	store_state *state;
	replica_callbacks cb;
	gpointer user;

	replica_phase phase;
	GArray *members;            /* of member, sorted by nodeid */
	bool primary;
	unsigned cluster_proto;

	/* sync round */
	uint64_t round;             /* epoch of the round in progress or done; 0: none */
	uint32_t round_counter;     /* for rounds this node opens */
	bool transfer;              /* a snapshot is being transferred */
	bool confirming;            /* waiting for all to persist the new generation */
	uint32_t leader;
	store_position leader_pos;
	uint64_t next_gen;          /* the generation this sync starts */
	GByteArray *snapshot;       /* chunks received so far */
	uint32_t snap_next, snap_count;
	herd_msg_type snap_type;    /* SNAPSHOT or CATCHUP: what the leader sends */
	change_log *log;            /* the changes applied last, for a catch-up */
	uint64_t caught_up;         /* changes received by catch-up */

	uint64_t next_seq;          /* every message sent carries the next one */
	uint64_t next_req_id;
	GHashTable *sent;           /* req ids submitted, not yet delivered */
	GQueue *in_flight;          /* sent_message*, oldest first */
	GByteArray *outbox;         /* commands waiting for the batch in flight */
	GArray *outbox_ids;         /* their req ids */
	GQueue *awaiting;           /* awaiting_ack*, applied, in index order */
	GQueue *queued;             /* queued_command*, delivered during a sync */
	bool dirty;                 /* changes not yet committed */
	uint64_t durable_told_index, durable_told_gen; /* last durable() callback */
	uint64_t rejected;
	size_t applied_since_trim;  /* bytes of commands applied since the last herd_malloc_release() */
	replica_counters counters;
	/* Index of the last change of the node list applied in this
	 * configuration (0: none since the sync, which left all durable). */
	uint64_t node_list_index;
};

/* The database failed: stop before this replica diverges from the others. */
void replica_fail(replica *r, const GError *error);
/* Open the transaction changes are applied in (replica_fail() if it cannot). */
bool replica_ensure_txn(replica *r);
/* @cmd was applied with @changes: the node list may have changed, and
 * the daemon hears of what did. */
void replica_applied(replica *r, json_t *cmd, GPtrArray *changes);
/* Every member holds the leader's state (@replaced: received whole). */
void replica_complete_sync(replica *r, bool replaced);

/* A SNAPSHOT or CATCHUP chunk (@type) of the round @epoch from @sender. */
void replica_on_transfer(replica *r, uint32_t sender, herd_msg_type type, uint64_t epoch,
			 const void *payload, size_t len);
