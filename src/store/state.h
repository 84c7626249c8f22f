/*
 * The replicated configuration in memory, and the one function that changes
 * it: store_state_apply().
 *
 * apply is deterministic: given the same state and the same command it gives
 * the same result and the same error message on every node, because it reads
 * nothing but its arguments (times, node and user names travel inside the
 * command).  It changes the in-memory maps and, inside the caller's open
 * transaction, the database; a command that fails changes neither.
 */
#pragma once

#include "store/db.h"
#include "store/object.h"

#include <glib.h>
#include <jansson.h>

typedef struct store_state {
	GHashTable *by_uuid[STORE_KIND__COUNT]; /* uuid -> store_object* (a reference) */
	GHashTable *by_name[STORE_KIND__COUNT]; /* name -> store_object* (borrowed) */
	store_position pos;
	store_db *db;                           /* not owned */
	/* Each kind's objects sorted by name, or NULL until store_state_list()
	 * needs them again after a change (borrowed pointers). */
	GPtrArray *sorted[STORE_KIND__COUNT];
	/* The VMs by the node they are assigned to: node name -> (uuid ->
	 * store_object*), borrowed; see store_vms_assigned_to(). */
	GHashTable *vms_by_node;
	/* The UUIDs of VMs published since the last store_state_settle()
	 * (uuid -> NULL, owned keys): those whose texts may go cold once
	 * they are durable. */
	GHashTable *unsettled;
	uint64_t rollbacks_seen; /* store_db_rollbacks() at the last settle or load */
	char *read_error;        /* the last cold text's read error logged */
} store_state;

/* One object changed by a command: before/after are NULL for create/delete. */
typedef struct store_change {
	store_kind kind;
	char uuid[STORE_UUID_LEN + 1];
	store_object *before;
	store_object *after;
} store_change;

/* Default number of versions kept per VM (cluster setting vm_history_limit). */
#define STORE_HISTORY_LIMIT_DEFAULT 100

/* An empty state over @db. */
store_state *store_state_new(store_db *db);
void store_state_free(store_state *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_state, store_state_free)

/* Replace the in-memory state with what @s->db holds. */
bool store_state_load(store_state *s, GError **error);

/*
 * Apply @cmd.  On success returns the result (a new reference), appends a
 * store_change* to @changes (if not NULL) for every object changed, and
 * advances the position in memory (index + 1, hash chained over
 * @cmd_bytes; store_state_write_position() puts it in the transaction).  On
 * failure returns NULL with a deterministic error and changes nothing.
 * Needs an open database transaction.  A database failure returns NULL with
 * HERD_ERR_IO: the caller must treat the replica as broken.
 */
json_t *store_state_apply(store_state *s, json_t *cmd, const void *cmd_bytes, size_t cmd_len,
			  GPtrArray *changes, GError **error);

/* Write the in-memory position into the open transaction (once before each
 * commit rather than with every change: it is the hot path). */
bool store_state_write_position(store_state *s, GError **error);

/*
 * Cold texts.  A VM object keeps its data as packed text (store/object.h),
 * ~330 bytes a VM with the test guest's XML; SQLite holds the same bytes in
 * the objects table.  The current object of a VM whose row in @s->db is its
 * own and durable drops its packed text ("cold": o->cold is @s) and reads
 * it back from that row when asked (store_object_encode(): a GET of the
 * VM, its XML for a start, a patch's merge...), checking the row's version
 * and the text's digest.  The rules that keep the row its own:
 *  - only after a commit: store_state_settle() makes cold the VMs
 *    published since, if each is still current (an applied change not yet
 *    durable stays warm: a rollback would take its row away).  Without a
 *    rollback of the transaction since the last settle, the current
 *    object's row is its own (commit_object() wrote it, a savepoint's
 *    rollback restored both); after one, only those whose row has their
 *    version go cold.  A load outside a transaction makes every VM cold
 *    at once (the rows just read);
 *  - before its row changes (a new version, an undefine: commit_object())
 *    a cold object is warmed (its text read and packed again), as old
 *    objects stay referenced (the engine's views, the API's kept lists,
 *    the agent's started-with object, the change records);
 *  - before the state lets go of its objects (store_state_load(),
 *    store_state_free()) those referenced elsewhere are warmed, and
 *    before a whole-store transfer rewrites the rows the caller warms
 *    them all (store_state_warm_all());
 *  - a failed replica warms them all (best effort), so that a database
 *    that fails to read later is not asked.
 * A text that cannot be read back (a disk's read error; or a row that is
 * not the object's, which would be a bug here) is never replaced by
 * another: what asked fails with HERD_ERR_IO and herdd goes on.  A command
 * that changes the VM fails on this node, which stops its store
 * (replica_fail()) until it recovers; an API request answers 500; the
 * agent's start counts as a failed start; a check whether a disk, an ISO
 * or a MAC address is in use takes the VM as a user; a comparison of XMLs
 * as different.  The log says it once per error.
 * A rollback of the open transaction leaves the rows of cold objects as
 * they are: they were durable before it began, and any change of them in
 * it warmed them first.
 */
/* The durable rows are now what was applied: make cold what can be (if
 * a transaction was rolled back since the last settle, only those whose
 * row has their version). */
void store_state_settle(store_state *s);
/* Warm the cold objects (only those referenced elsewhere too if
 * @shared_only); false with @error if one could not be read (it stays
 * cold; each is logged). */
bool store_state_warm_all(store_state *s, bool shared_only, GError **error);
/* @o's text from @s's database (g_free it), or NULL with @error if the
 * row is missing, another version, not its text, or unreadable. */
char *store_state_cold_text(store_state *s, const store_object *o, GError **error);
/* How many VMs are cold (tests, benchmarks). */
guint store_state_cold_count(store_state *s);

/* Free a store_change (for GPtrArray free funcs). */
void store_change_free(store_change *c);

/* Look up by UUID or name; NULL if absent.  Borrowed references. */
store_object *store_state_get(store_state *s, store_kind kind, const char *uuid);
/* The store index at which the object @uuid got its current version, or 0
 * if that is not known here (it dates from before the state was loaded). */
uint64_t store_state_changed_at(store_state *s, const char *uuid);
store_object *store_state_get_by_name(store_state *s, store_kind kind, const char *name);
/* By UUID if @ref looks like one, else by name. */
store_object *store_state_lookup(store_state *s, store_kind kind, const char *ref);
/* The cluster settings object, or NULL before the cluster exists. */
store_object *store_state_cluster(store_state *s);
guint store_state_count(store_state *s, store_kind kind);
/* The objects of @kind sorted by name (borrowed references; free the array). */
GPtrArray *store_state_list(store_state *s, store_kind kind);

/* Hex form of the position's hash (65 bytes incl. NUL). */
void store_position_hash_hex(const store_position *pos, char out[65]);
/* Compare positions: generation of the last change first, then index
 * (as Raft compares logs by their last entry's term). */
int store_position_compare(const store_position *a, const store_position *b);
