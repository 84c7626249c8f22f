/*
 * Durable storage of the replicated configuration in SQLite.
 *
 * The in-memory state (state.h) answers every read; this file keeps what
 * must survive a power cut: the current objects, the VM history, and the
 * store's position (generation, index, hash).  Changes collect in one open
 * transaction per delivery burst and become durable at store_db_commit()
 * (WAL, synchronous=FULL: the commit fsyncs).  Each command runs inside a
 * savepoint so a failing command leaves no trace.
 *
 * The simulator uses the same code on ":memory:" databases: a simulated crash
 * rolls the open transaction back, which is exactly what a power cut does.
 */
#pragma once

#include "store/object.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct store_db store_db;

/* The store's position in the cluster's history of changes. */
typedef struct store_position {
	uint64_t gen;          /* generation in which the last change was applied */
	uint64_t index;        /* number of changes applied */
	uint8_t hash[32];      /* chained SHA-256 of every change applied */
	uint64_t current_gen;  /* highest generation this node has entered */
} store_position;

/* One entry of an object's history (VMs only). */
typedef struct store_history_entry {
	store_kind kind;
	const char *uuid;
	uint64_t version;
	const char *name;
	int64_t time_ms;
	const char *origin;    /* node that made the change */
	const char *user;      /* who asked for it */
	const char *change;    /* "defined", "updated", "undefined", "restored from version N" */
	json_t *data;          /* the object's data at that version; NULL for "undefined" */
	const char *data_text; /* @data as store_db_encode() gives it, or NULL: encoded here */
} store_history_entry;

/* Open (creating if needed) the database at @path, or ":memory:". */
store_db *store_db_open(const char *path, GError **error);
void store_db_close(store_db *db);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(store_db, store_db_close)

/*
 * After a failure: drop what is open and connect to the file again, so that
 * nothing of the failed connection's state is kept; then only what was
 * durable is read.  The old connection stays if a new one cannot be made.
 * ":memory:" keeps its connection (a new one would be a new database).
 */
bool store_db_reopen(store_db *db, GError **error);
/*
 * Give back the page cache's unused pages (sqlite3_db_release_memory()):
 * after a burst of writes it is full (up to its 1 MiB) and herd reads it
 * little; the next write reads the pages it needs from the kernel's cache.
 * Nothing for ":memory:" (its pages are the database) or a closed
 * connection.
 */
void store_db_release_memory(store_db *db);
/*
 * Can the database be written again?  Its file system has room for another
 * copy of it (a state transfer from the other nodes rewrites all of it),
 * and a durable write that changes nothing (the position, as it is) goes
 * through.  False with an IO error that says what is missing.
 */
bool store_db_check_writable(store_db *db, GError **error);

/* Start the burst's transaction unless one is open. */
bool store_db_begin(store_db *db, GError **error);
/* Make the open transaction durable (no-op without one). */
bool store_db_commit(store_db *db, GError **error);
/* Drop the open transaction (a simulated crash, or a failed burst). */
void store_db_rollback(store_db *db);
bool store_db_in_transaction(store_db *db);
/* How many open transactions were rolled back so far (a savepoint's
 * rollback is not counted). */
uint64_t store_db_rollbacks(store_db *db);

/* Savepoints around one command inside the burst's transaction. */
bool store_db_savepoint(store_db *db, GError **error);
bool store_db_release(store_db *db, GError **error);
void store_db_rollback_savepoint(store_db *db);

/* @data as stored: compact JSON with sorted keys, as json_dumps(JSON_COMPACT |
 * JSON_SORT_KEYS) writes it; g_free() it.  NULL if it cannot be encoded. */
char *store_db_encode(json_t *data);
/* Store @o; @data_text is store_object_encode(o), or NULL: encoded here. */
bool store_db_put_object(store_db *db, const store_object *o, const char *data_text,
			 GError **error);
bool store_db_delete_object(store_db *db, store_kind kind, const char *uuid, GError **error);
/*
 * The row of object @uuid as the connection sees it (inside an open
 * transaction, what it has applied): its version in *@version (0 if there is
 * no such row) and, if @with_text, its data text (g_free it; NULL without
 * @with_text, without a row, or on an error, which sets @error).
 */
char *store_db_get_object_text(store_db *db, store_kind kind, const char *uuid, bool with_text,
			       uint64_t *version, GError **error);
bool store_db_set_position(store_db *db, const store_position *pos, GError **error);

bool store_db_add_history(store_db *db, const store_history_entry *e, GError **error);

/*
 * The audit log: who (user) changed what (kind, name, change) from which
 * node (origin), for every change of every kind this node applied, the
 * newest STORE_AUDIT_KEEP or so kept.  A state transfer carries it
 * (store_db_dump()), so a node that joined, or was sent the whole store,
 * lists the changes made before too; one caught up with the changes it
 * missed records them as it applies them.
 */
#define STORE_AUDIT_KEEP 10000
bool store_db_add_audit(store_db *db, const store_history_entry *e, GError **error);
/* The newest @limit entries, newest first: [{seq,time_ms,node,user,change,kind,name,uuid}]. */
json_t *store_db_audit_list(store_db *db, unsigned limit, GError **error);
/*
 * Keep only the newest @keep versions of one object's history, @newest being
 * the version just recorded.  An object's versions are consecutive (every
 * change of a VM records one, and a VM defined again continues after its
 * highest), so these are the versions above @newest - @keep.
 */
bool store_db_prune_history(store_db *db, store_kind kind, const char *uuid, uint64_t newest,
			    unsigned keep, GError **error);
/* Highest version ever recorded for @uuid (0 if none). */
uint64_t store_db_history_max_version(store_db *db, store_kind kind, const char *uuid);
/* One version's entry as JSON (with "data"), or NULL. */
json_t *store_db_history_get(store_db *db, store_kind kind, const char *uuid, uint64_t version);
/*
 * History entries, newest first, as a JSON array: of @uuid if given, else
 * of every object whose name at that version matches the glob @pattern (or
 * all if NULL).  @with_data includes each version's data.
 */
json_t *store_db_history_list(store_db *db, store_kind kind, const char *uuid,
			      const char *pattern, bool with_data, GError **error);

/* Callback for every stored object while loading. */
typedef void (*store_db_object_fn)(store_object *o, gpointer user_data);
/* Read the position and call @fn for every object. */
bool store_db_load(store_db *db, store_position *pos, store_db_object_fn fn,
		   gpointer user_data, GError **error);

/* Everything (objects, history, audit log, position) as one JSON value for a
 * transfer. */
json_t *store_db_dump(store_db *db, GError **error);
/* Replace everything with a dump, inside the open transaction. */
bool store_db_restore_dump(store_db *db, json_t *dump, GError **error);

/*
 * Fault injection for tests: make the @nth next write fail (0 disables).
 * Proves that a failing disk is handled, as SQLite's own FAULTSIM does.
 */
void store_db_fail_after(store_db *db, unsigned nth);
/* ...and make every read of an object's row (store_db_get_object_text())
 * fail while @fail is set, as a disk that no longer reads would; kept
 * across store_db_reopen(). */
void store_db_fail_reads(store_db *db, bool fail);
