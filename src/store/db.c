#include "store/db.h"

#include "common/error.h"
#include "common/json.h"
#include "common/json_writer.h"
#include "common/log.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/statvfs.h>

enum {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_PUT_OBJECT,
	STMT_DELETE_OBJECT,
	STMT_SET_META,
	STMT_ADD_HISTORY,
	STMT_PRUNE_HISTORY,
	STMT_MAX_VERSION,
	STMT_GET_HISTORY,
	STMT_ADD_AUDIT,
	STMT_PRUNE_AUDIT,
	STMT_GET_OBJECT,
	STMT__COUNT
};

/* Prepared once: they run for every change (the hot path). */
static const char *const stmt_sql[STMT__COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_SAVEPOINT] = "SAVEPOINT cmd",
	[STMT_RELEASE] = "RELEASE cmd",
	/* An upsert changes the row in place; INSERT OR REPLACE deleted it and
	 * appended a new one, which dirtied twice the pages. */
	[STMT_PUT_OBJECT] = "INSERT INTO objects(kind,uuid,name,version,created_ms,modified_ms,data) "
			    "VALUES (?,?,?,?,?,?,?) ON CONFLICT(kind,uuid) DO UPDATE SET "
			    "name=excluded.name,version=excluded.version,created_ms=excluded.created_ms,"
			    "modified_ms=excluded.modified_ms,data=excluded.data",
	[STMT_DELETE_OBJECT] = "DELETE FROM objects WHERE kind=? AND uuid=?",
	[STMT_SET_META] = "INSERT OR REPLACE INTO meta(key,value) VALUES (?,?)",
	[STMT_ADD_HISTORY] = "INSERT OR REPLACE INTO history(kind,uuid,version,name,time_ms,origin,"
			     "user,change,data) VALUES (?,?,?,?,?,?,?,?,?)",
	[STMT_PRUNE_HISTORY] = "DELETE FROM history WHERE kind=?1 AND uuid=?2 AND version <= ?3",
	[STMT_MAX_VERSION] = "SELECT MAX(version) FROM history WHERE kind=? AND uuid=?",
	[STMT_GET_HISTORY] = "SELECT kind,uuid,version,name,time_ms,origin,user,change,data "
			     "FROM history WHERE kind=? AND uuid=? AND version=?",
	[STMT_ADD_AUDIT] = "INSERT INTO audit(time_ms,origin,user,change,kind,name,uuid) "
			   "VALUES (?,?,?,?,?,?,?)",
	[STMT_PRUNE_AUDIT] = "DELETE FROM audit WHERE seq <= ?",
	/* A VM's text that herdd does not keep in memory (store/state.h, "Cold texts"). */
	[STMT_GET_OBJECT] = "SELECT version,data FROM objects WHERE kind=? AND uuid=?",
};

/* Room a state transfer needs beyond the database's own size. */
#define WRITABLE_MARGIN_BYTES (256u * 1024u)

struct store_db {
	char *path;
	sqlite3 *sql;
	sqlite3_stmt *stmt[STMT__COUNT];
	bool in_txn;
	unsigned savepoints;
	unsigned fail_after;   /* fault injection: fail the Nth write from now */
	bool fail_reads;       /* fault injection: reads of objects' rows fail */
	uint64_t rollbacks;    /* transactions rolled back (store_db_rollbacks()) */
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS objects ("
	"  kind TEXT NOT NULL, uuid TEXT NOT NULL, name TEXT NOT NULL,"
	"  version INTEGER NOT NULL, created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL,"
	"  data TEXT NOT NULL, PRIMARY KEY (kind, uuid));"
	"CREATE TABLE IF NOT EXISTS history ("
	"  kind TEXT NOT NULL, uuid TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
	"  time_ms INTEGER NOT NULL, origin TEXT NOT NULL, user TEXT NOT NULL, change TEXT NOT NULL,"
	"  data TEXT, PRIMARY KEY (kind, uuid, version));"
	"CREATE INDEX IF NOT EXISTS history_name ON history(kind, name);"
	"CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time_ms INTEGER NOT NULL, origin TEXT NOT NULL, user TEXT NOT NULL, change TEXT NOT NULL,"
	"  kind TEXT NOT NULL, name TEXT NOT NULL, uuid TEXT NOT NULL);";

static bool sql_fail(store_db *db, GError **error, const char *what)
{
	g_set_error(error, HERD_ERROR, HERD_ERR_IO, "The configuration database failed to %s: %s.",
		    what, sqlite3_errmsg(db->sql));
	return false;
}

static bool exec(store_db *db, const char *sql, GError **error)
{
	char *msg = NULL;
	if (sqlite3_exec(db->sql, sql, NULL, NULL, &msg) != SQLITE_OK) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "The configuration database failed (%s): %s.",
			    sql, msg ? msg : "?");
		sqlite3_free(msg);
		return false;
	}
	return true;
}

/* Fault injection point for every write. */
static bool injected_fault(store_db *db, GError **error)
{
	if (db->fail_after == 0)
		return false;
	if (--db->fail_after > 0)
		return false;
	g_set_error(error, HERD_ERROR, HERD_ERR_IO,
		    "The configuration database failed to write: injected I/O error.");
	return true;
}

static bool step_done(store_db *db, sqlite3_stmt *st, GError **error, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return sql_fail(db, error, what);
	return true;
}

store_db *store_db_open(const char *path, GError **error)
{
	store_db *db = g_new0(store_db, 1);
	db->path = g_strdup(path);
	if (sqlite3_open_v2(path, &db->sql,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot open the configuration database %s: %s.",
			    path, db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
		store_db_close(db);
		return NULL;
	}
	bool memory = strcmp(path, ":memory:") == 0;
	/* temp_store: the journals of the per-command savepoints stay in memory
	 * instead of spilling to a file in /var/tmp.  cache_size: at most 1 MiB
	 * of pages (SQLite's default is 2 MB); herd reads the objects into its
	 * state once at start and then mostly writes: the B-trees' inner pages
	 * fit, and a leaf read again comes from the kernel's cache. */
	if ((!memory && !exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", error)) ||
	    !exec(db, "PRAGMA temp_store=MEMORY; PRAGMA cache_size=-1024;", error) ||
	    !exec(db, schema, error)) {
		store_db_close(db);
		return NULL;
	}
	for (int i = 0; i < STMT__COUNT; i++) {
		if (sqlite3_prepare_v3(db->sql, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &db->stmt[i], NULL) != SQLITE_OK) {
			sql_fail(db, error, "prepare a statement");
			store_db_close(db);
			return NULL;
		}
	}
	return db;
}

void store_db_release_memory(store_db *db)
{
	if (db->sql && strcmp(db->path, ":memory:") != 0)
		sqlite3_db_release_memory(db->sql);
}

/* Close the connection (rolling back what is open), keep the struct. */
static void disconnect(store_db *db)
{
	for (int i = 0; i < STMT__COUNT; i++) {
		sqlite3_finalize(db->stmt[i]);
		db->stmt[i] = NULL;
	}
	if (db->in_txn)
		store_db_rollback(db);
	sqlite3_close(db->sql);
	db->sql = NULL;
}

void store_db_close(store_db *db)
{
	if (!db)
		return;
	disconnect(db);
	g_free(db->path);
	g_free(db);
}

bool store_db_reopen(store_db *db, GError **error)
{
	store_db_rollback(db);
	/* A new connection to ":memory:" would be a new, empty database. */
	if (strcmp(db->path, ":memory:") == 0)
		return true;
	/* The new connection first: if it cannot be made, the old one stays. */
	store_db *fresh = store_db_open(db->path, error);
	if (!fresh)
		return false;
	disconnect(db);
	db->sql = g_steal_pointer(&fresh->sql);
	memcpy(db->stmt, fresh->stmt, sizeof(db->stmt));
	memset(fresh->stmt, 0, sizeof(fresh->stmt));
	db->savepoints = 0;
	store_db_close(fresh);
	return true;
}

bool store_db_begin(store_db *db, GError **error)
{
	if (db->in_txn)
		return true;
	if (!step_done(db, db->stmt[STMT_BEGIN], error, "begin a transaction"))
		return false;
	db->in_txn = true;
	return true;
}

bool store_db_commit(store_db *db, GError **error)
{
	if (!db->in_txn)
		return true;
	if (injected_fault(db, error)) {
		store_db_rollback(db);
		return false;
	}
	if (!step_done(db, db->stmt[STMT_COMMIT], error, "commit")) {
		store_db_rollback(db);
		return false;
	}
	db->in_txn = false;
	return true;
}

void store_db_rollback(store_db *db)
{
	if (!db->in_txn)
		return;
	sqlite3_exec(db->sql, "ROLLBACK", NULL, NULL, NULL);
	db->in_txn = false;
	db->savepoints = 0;
	db->rollbacks++;
}

uint64_t store_db_rollbacks(store_db *db)
{
	return db->rollbacks;
}

bool store_db_in_transaction(store_db *db)
{
	return db->in_txn;
}

bool store_db_savepoint(store_db *db, GError **error)
{
	if (!step_done(db, db->stmt[STMT_SAVEPOINT], error, "open a savepoint"))
		return false;
	db->savepoints++;
	return true;
}

bool store_db_release(store_db *db, GError **error)
{
	if (!step_done(db, db->stmt[STMT_RELEASE], error, "release a savepoint"))
		return false;
	db->savepoints--;
	return true;
}

void store_db_rollback_savepoint(store_db *db)
{
	sqlite3_exec(db->sql, "ROLLBACK TO cmd; RELEASE cmd", NULL, NULL, NULL);
	db->savepoints--;
}

/*
 * What json_dumps(JSON_COMPACT | JSON_SORT_KEYS) gives, byte for byte, but
 * several times faster on long strings (jansson decodes every character of
 * a string to see whether it needs escaping; a VM's domain XML made its dump
 * a fifth of a follower's CPU per change).  jansson's strings are valid
 * UTF-8, so a byte-wise scan finds what needs escaping: '"', '\\' and the
 * control characters (json_text_append_string of common/json_writer.h).
 * Reals, rare in the store, are left to jansson.
 */
typedef struct {
	const char *key;
	size_t len;
	json_t *value;
} encode_member;

static int encode_member_cmp(const void *a, const void *b)
{
	const encode_member *x = a, *y = b;
	int c = memcmp(x->key, y->key, MIN(x->len, y->len));
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool encode_value(GString *out, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		g_autofree encode_member *m = g_new(encode_member, n ? n : 1);
		for (void *it = json_object_iter(v); it; it = json_object_iter_next(v, it), i++)
			m[i] = (encode_member){ json_object_iter_key(it), json_object_iter_key_len(it),
						json_object_iter_value(it) };
		qsort(m, n, sizeof(*m), encode_member_cmp);
		g_string_append_c(out, '{');
		for (i = 0; i < n; i++) {
			if (i)
				g_string_append_c(out, ',');
			json_text_append_string(out, m[i].key, m[i].len);
			g_string_append_c(out, ':');
			if (!encode_value(out, m[i].value))
				return false;
		}
		g_string_append_c(out, '}');
		return true;
	}
	case JSON_ARRAY:
		g_string_append_c(out, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				g_string_append_c(out, ',');
			if (!encode_value(out, json_array_get(v, i)))
				return false;
		}
		g_string_append_c(out, ']');
		return true;
	case JSON_STRING:
		json_text_append_string(out, json_string_value(v), json_string_length(v));
		return true;
	case JSON_INTEGER:
		g_string_append_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return true;
	case JSON_TRUE:
		g_string_append(out, "true");
		return true;
	case JSON_FALSE:
		g_string_append(out, "false");
		return true;
	case JSON_NULL:
		g_string_append(out, "null");
		return true;
	case JSON_REAL: {
		char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!text)
			return false;
		g_string_append(out, text);
		free(text);
		return true;
	}
	}
	return false;
}

char *store_db_encode(json_t *data)
{
	GString *out = g_string_sized_new(512);
	if (!data || !encode_value(out, data)) {
		g_string_free(out, TRUE);
		return NULL;
	}
	return g_string_free(out, FALSE);
}

bool store_db_put_object(store_db *db, const store_object *o, const char *data_text,
			 GError **error)
{
	if (injected_fault(db, error))
		return false;
	g_autofree char *text = data_text ? NULL : store_object_encode(o, error);
	if (!data_text && !text)
		return false;
	sqlite3_stmt *st = db->stmt[STMT_PUT_OBJECT];
	sqlite3_bind_text(st, 1, store_kind_name(o->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, o->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, o->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)o->version);
	sqlite3_bind_int64(st, 5, o->created_ms);
	sqlite3_bind_int64(st, 6, o->modified_ms);
	sqlite3_bind_text(st, 7, data_text ? data_text : text, -1, SQLITE_STATIC);
	return step_done(db, st, error, "store an object");
}

char *store_db_get_object_text(store_db *db, store_kind kind, const char *uuid, bool with_text,
				uint64_t *version, GError **error)
{
	*version = 0;
	sqlite3_stmt *st = db->stmt[STMT_GET_OBJECT];
	if (!st || db->fail_reads) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "%s",
			    st ? "The configuration database failed to read: injected I/O error."
			       : "The configuration database is closed.");
		return NULL;
	}
	sqlite3_bind_text(st, 1, store_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	char *text = NULL;
	if (rc == SQLITE_ROW) {
		*version = (uint64_t)sqlite3_column_int64(st, 0);
		/* The data column is read only when asked for: the version alone
		 * does not load the text's pages. */
		if (with_text) {
			const char *t = (const char *)sqlite3_column_text(st, 1);
			text = g_strndup(t ? t : "", (gsize)sqlite3_column_bytes(st, 1));
		}
	} else if (rc != SQLITE_DONE) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot read object %s: %s.", uuid,
			    sqlite3_errmsg(db->sql));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return text;
}

bool store_db_delete_object(store_db *db, store_kind kind, const char *uuid, GError **error)
{
	if (injected_fault(db, error))
		return false;
	sqlite3_stmt *st = db->stmt[STMT_DELETE_OBJECT];
	sqlite3_bind_text(st, 1, store_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
	return step_done(db, st, error, "delete an object");
}

static bool set_meta(store_db *db, const char *key, const char *value, GError **error)
{
	sqlite3_stmt *st = db->stmt[STMT_SET_META];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
	return step_done(db, st, error, "store the position");
}

bool store_db_set_position(store_db *db, const store_position *pos, GError **error)
{
	if (injected_fault(db, error))
		return false;
	char num[32];
	g_autofree char *hash = g_malloc(65);
	for (int i = 0; i < 32; i++)
		g_snprintf(hash + 2 * i, 3, "%02x", pos->hash[i]);
	g_snprintf(num, sizeof(num), "%" G_GUINT64_FORMAT, pos->gen);
	if (!set_meta(db, "gen", num, error))
		return false;
	g_snprintf(num, sizeof(num), "%" G_GUINT64_FORMAT, pos->index);
	if (!set_meta(db, "index", num, error) || !set_meta(db, "hash", hash, error))
		return false;
	g_snprintf(num, sizeof(num), "%" G_GUINT64_FORMAT, pos->current_gen);
	return set_meta(db, "current_gen", num, error);
}

bool store_db_add_history(store_db *db, const store_history_entry *e, GError **error)
{
	if (injected_fault(db, error))
		return false;
	sqlite3_stmt *st = db->stmt[STMT_ADD_HISTORY];
	sqlite3_bind_text(st, 1, store_kind_name(e->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, e->uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)e->version);
	sqlite3_bind_text(st, 4, e->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, e->time_ms);
	sqlite3_bind_text(st, 6, e->origin ? e->origin : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, e->user ? e->user : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, e->change, -1, SQLITE_STATIC);
	if (e->data_text)
		sqlite3_bind_text(st, 9, e->data_text, -1, SQLITE_STATIC);
	else if (e->data)
		sqlite3_bind_text(st, 9, store_db_encode(e->data), -1, g_free);
	else
		sqlite3_bind_null(st, 9);
	return step_done(db, st, error, "record history");
}

bool store_db_add_audit(store_db *db, const store_history_entry *e, GError **error)
{
	if (injected_fault(db, error))
		return false;
	sqlite3_stmt *st = db->stmt[STMT_ADD_AUDIT];
	sqlite3_bind_int64(st, 1, e->time_ms);
	sqlite3_bind_text(st, 2, e->origin ? e->origin : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, e->user ? e->user : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, e->change, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, store_kind_name(e->kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, e->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, e->uuid, -1, SQLITE_STATIC);
	if (!step_done(db, st, error, "record the audit log"))
		return false;
	/* Pruned in steps of a hundred, not at every change. */
	sqlite3_int64 seq = sqlite3_last_insert_rowid(db->sql);
	if (seq % 100 != 0 || seq <= STORE_AUDIT_KEEP)
		return true;
	st = db->stmt[STMT_PRUNE_AUDIT];
	sqlite3_bind_int64(st, 1, seq - STORE_AUDIT_KEEP);
	return step_done(db, st, error, "prune the audit log");
}

json_t *store_db_audit_list(store_db *db, unsigned limit, GError **error)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT seq,time_ms,origin,user,change,kind,name,uuid FROM audit "
			       "ORDER BY seq DESC LIMIT ?", -1, &st, NULL) != SQLITE_OK) {
		sql_fail(db, error, "read the audit log");
		return NULL;
	}
	sqlite3_bind_int64(st, 1, limit);
	json_t *list = json_array();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(list, json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s}",
			"seq", (json_int_t)sqlite3_column_int64(st, 0),
			"time_ms", (json_int_t)sqlite3_column_int64(st, 1),
			"node", (const char *)sqlite3_column_text(st, 2),
			"user", (const char *)sqlite3_column_text(st, 3),
			"change", (const char *)sqlite3_column_text(st, 4),
			"kind", (const char *)sqlite3_column_text(st, 5),
			"name", (const char *)sqlite3_column_text(st, 6),
			"uuid", (const char *)sqlite3_column_text(st, 7)));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		sql_fail(db, error, "read the audit log");
		return NULL;
	}
	return list;
}

bool store_db_prune_history(store_db *db, store_kind kind, const char *uuid, uint64_t newest,
			    unsigned keep, GError **error)
{
	if (newest <= keep)
		return true;
	sqlite3_stmt *st = db->stmt[STMT_PRUNE_HISTORY];
	sqlite3_bind_text(st, 1, store_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(newest - keep));
	return step_done(db, st, error, "prune history");
}

uint64_t store_db_history_max_version(store_db *db, store_kind kind, const char *uuid)
{
	sqlite3_stmt *st = db->stmt[STMT_MAX_VERSION];
	uint64_t v = 0;
	sqlite3_bind_text(st, 1, store_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return v;
}

static json_t *parse_column(sqlite3_stmt *st, int col)
{
	const char *text = (const char *)sqlite3_column_text(st, col);
	return text ? json_loads(text, 0, NULL) : json_null();
}

/* A history row (kind,uuid,version,name,time_ms,origin,user,change,data) as JSON. */
static json_t *history_row(sqlite3_stmt *st, bool with_data)
{
	json_t *e = json_pack("{s:s,s:s,s:I,s:s,s:I,s:s,s:s,s:s}",
			      "kind", (const char *)sqlite3_column_text(st, 0),
			      "uuid", (const char *)sqlite3_column_text(st, 1),
			      "version", (json_int_t)sqlite3_column_int64(st, 2),
			      "name", (const char *)sqlite3_column_text(st, 3),
			      "time_ms", (json_int_t)sqlite3_column_int64(st, 4),
			      "origin", (const char *)sqlite3_column_text(st, 5),
			      "user", (const char *)sqlite3_column_text(st, 6),
			      "change", (const char *)sqlite3_column_text(st, 7));
	if (with_data)
		json_object_set_new(e, "data", parse_column(st, 8));
	return e;
}

json_t *store_db_history_get(store_db *db, store_kind kind, const char *uuid, uint64_t version)
{
	sqlite3_stmt *st = db->stmt[STMT_GET_HISTORY];
	json_t *e = NULL;
	sqlite3_bind_text(st, 1, store_kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)version);
	if (sqlite3_step(st) == SQLITE_ROW)
		e = history_row(st, true);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return e;
}

json_t *store_db_history_list(store_db *db, store_kind kind, const char *uuid,
			      const char *pattern, bool with_data, GError **error)
{
	sqlite3_stmt *st = NULL;
	const char *sql = uuid ? "SELECT kind,uuid,version,name,time_ms,origin,user,change,data "
				 "FROM history WHERE kind=?1 AND uuid=?2 ORDER BY version DESC"
			       : "SELECT kind,uuid,version,name,time_ms,origin,user,change,data "
				 "FROM history WHERE kind=?1 AND (?3 IS NULL OR name GLOB ?3) "
				 "ORDER BY name, uuid, version DESC";
	if (sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL) != SQLITE_OK) {
		sql_fail(db, error, "read history");
		return NULL;
	}
	sqlite3_bind_text(st, 1, store_kind_name(kind), -1, SQLITE_STATIC);
	if (uuid)
		sqlite3_bind_text(st, 2, uuid, -1, SQLITE_STATIC);
	else if (pattern)
		sqlite3_bind_text(st, 3, pattern, -1, SQLITE_STATIC);
	json_t *list = json_array();
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(list, history_row(st, with_data));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		sql_fail(db, error, "read history");
		return NULL;
	}
	return list;
}

static bool parse_hash(const char *hex, uint8_t out[32])
{
	if (!hex || strlen(hex) != 64)
		return false;
	for (int i = 0; i < 32; i++) {
		if (!g_ascii_isxdigit(hex[2 * i]) || !g_ascii_isxdigit(hex[2 * i + 1]))
			return false;
		out[i] = (uint8_t)(g_ascii_xdigit_value(hex[2 * i]) * 16 +
				   g_ascii_xdigit_value(hex[2 * i + 1]));
	}
	return true;
}

static bool load_position(store_db *db, store_position *pos, GError **error)
{
	sqlite3_stmt *st;
	memset(pos, 0, sizeof(*pos));
	if (sqlite3_prepare_v2(db->sql, "SELECT key, value FROM meta", -1, &st, NULL) != SQLITE_OK)
		return sql_fail(db, error, "read the position");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		const char *value = (const char *)sqlite3_column_text(st, 1);
		if (strcmp(key, "gen") == 0)
			pos->gen = g_ascii_strtoull(value, NULL, 10);
		else if (strcmp(key, "index") == 0)
			pos->index = g_ascii_strtoull(value, NULL, 10);
		else if (strcmp(key, "current_gen") == 0)
			pos->current_gen = g_ascii_strtoull(value, NULL, 10);
		else if (strcmp(key, "hash") == 0 && !parse_hash(value, pos->hash)) {
			sqlite3_finalize(st);
			g_set_error(error, HERD_ERROR, HERD_ERR_IO,
				    "The configuration database has a corrupt hash.");
			return false;
		}
	}
	sqlite3_finalize(st);
	return true;
}

static store_object *object_row(sqlite3_stmt *st, GError **error)
{
	store_kind kind;
	const char *kind_name = (const char *)sqlite3_column_text(st, 0);
	g_autoptr(json_t) data = parse_column(st, 6);
	if (!store_kind_parse(kind_name, &kind) || !json_is_object(data)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO,
			    "The configuration database has a corrupt object %s.",
			    (const char *)sqlite3_column_text(st, 1));
		return NULL;
	}
	return store_object_new(kind, (const char *)sqlite3_column_text(st, 1),
				(const char *)sqlite3_column_text(st, 2),
				(uint64_t)sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4),
				sqlite3_column_int64(st, 5), data);
}

bool store_db_load(store_db *db, store_position *pos, store_db_object_fn fn,
		   gpointer user_data, GError **error)
{
	sqlite3_stmt *st;
	if (!load_position(db, pos, error))
		return false;
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT kind,uuid,name,version,created_ms,modified_ms,data FROM objects",
			       -1, &st, NULL) != SQLITE_OK)
		return sql_fail(db, error, "read objects");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		store_object *o = object_row(st, error);
		if (!o) {
			sqlite3_finalize(st);
			return false;
		}
		fn(o, user_data);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_fail(db, error, "read objects");
	return true;
}

static json_t *position_json(const store_position *pos)
{
	char hash[65];
	for (int i = 0; i < 32; i++)
		g_snprintf(hash + 2 * i, 3, "%02x", pos->hash[i]);
	return json_pack("{s:I,s:I,s:s,s:I}", "gen", (json_int_t)pos->gen, "index",
			 (json_int_t)pos->index, "hash", hash, "current_gen",
			 (json_int_t)pos->current_gen);
}

json_t *store_db_dump(store_db *db, GError **error)
{
	store_position pos;
	sqlite3_stmt *st;
	if (!load_position(db, &pos, error))
		return NULL;
	json_t *objects = json_array();
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT kind,uuid,name,version,created_ms,modified_ms,data FROM objects "
			       "ORDER BY kind, uuid",
			       -1, &st, NULL) != SQLITE_OK) {
		json_decref(objects);
		sql_fail(db, error, "read objects");
		return NULL;
	}
	/* Each row as store_object_to_json() has an object, without making one
	 * (a VM's would encode its data as text only to parse it again). */
	while (sqlite3_step(st) == SQLITE_ROW) {
		store_kind kind;
		json_t *data = parse_column(st, 6);
		if (store_kind_parse((const char *)sqlite3_column_text(st, 0), &kind) &&
		    json_is_object(data))
			json_array_append_new(
				objects,
				json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:O}", "kind", store_kind_name(kind),
					  "uuid", (const char *)sqlite3_column_text(st, 1), "name",
					  (const char *)sqlite3_column_text(st, 2), "version",
					  (json_int_t)sqlite3_column_int64(st, 3), "created_ms",
					  (json_int_t)sqlite3_column_int64(st, 4), "modified_ms",
					  (json_int_t)sqlite3_column_int64(st, 5), "data", data));
		json_decref(data);
	}
	sqlite3_finalize(st);
	json_t *history = json_array();
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT kind,uuid,version,name,time_ms,origin,user,change,data "
			       "FROM history ORDER BY kind, uuid, version",
			       -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(history, history_row(st, true));
		sqlite3_finalize(st);
	}
	/* The audit log, oldest first: a node that joins, or comes back after
	 * more than the others' log of changes, reads who changed what before. */
	json_t *audit = json_array();
	if (sqlite3_prepare_v2(db->sql,
			       "SELECT time_ms,origin,user,change,kind,name,uuid FROM audit ORDER BY seq",
			       -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(audit, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s}",
				"time_ms", (json_int_t)sqlite3_column_int64(st, 0),
				"origin", (const char *)sqlite3_column_text(st, 1),
				"user", (const char *)sqlite3_column_text(st, 2),
				"change", (const char *)sqlite3_column_text(st, 3),
				"kind", (const char *)sqlite3_column_text(st, 4),
				"name", (const char *)sqlite3_column_text(st, 5),
				"uuid", (const char *)sqlite3_column_text(st, 6)));
		sqlite3_finalize(st);
	}
	return json_pack("{s:o,s:o,s:o,s:o}", "position", position_json(&pos), "objects", objects,
			 "history", history, "audit", audit);
}

/* The audit log of a state transfer replaces this node's; a transfer
 * without one (from a herd before it carried the log) leaves it. */
static bool restore_audit(store_db *db, json_t *audit, GError **error)
{
	if (!audit)
		return true;
	if (!json_is_array(audit)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The state transfer is malformed.");
		return false;
	}
	if (!exec(db, "DELETE FROM audit;", error))
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(audit, i, v) {
		store_kind kind;
		json_t *t = json_object_get(v, "time_ms");
		store_history_entry e = {
			.uuid = json_string_value(json_object_get(v, "uuid")),
			.name = json_string_value(json_object_get(v, "name")),
			.time_ms = json_integer_value(t),
			.origin = json_string_value(json_object_get(v, "origin")),
			.user = json_string_value(json_object_get(v, "user")),
			.change = json_string_value(json_object_get(v, "change")),
		};
		if (!json_is_integer(t) || !store_kind_parse(json_string_value(json_object_get(v, "kind")), &kind) ||
		    !e.uuid || !e.name || !e.change || !e.origin || !e.user) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The state transfer has a malformed audit entry.");
			return false;
		}
		e.kind = kind;
		if (!store_db_add_audit(db, &e, error))
			return false;
	}
	return true;
}

bool store_db_restore_dump(store_db *db, json_t *dump, GError **error)
{
	json_t *pos_j = json_object_get(dump, "position");
	json_t *objects = json_object_get(dump, "objects");
	json_t *history = json_object_get(dump, "history");
	store_position pos = { 0 };
	const char *hash = json_string_value(json_object_get(pos_j, "hash"));
	if (!json_is_array(objects) || !json_is_array(history) || !parse_hash(hash, pos.hash)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The state transfer is malformed.");
		return false;
	}
	pos.gen = (uint64_t)json_integer_value(json_object_get(pos_j, "gen"));
	pos.index = (uint64_t)json_integer_value(json_object_get(pos_j, "index"));
	pos.current_gen = (uint64_t)json_integer_value(json_object_get(pos_j, "current_gen"));
	if (!exec(db, "DELETE FROM objects; DELETE FROM history; DELETE FROM meta;", error))
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(objects, i, v) {
		g_autoptr(store_object) o = store_object_from_json(v, error);
		if (!o || !store_db_put_object(db, o, NULL, error))
			return false;
	}
	json_array_foreach(history, i, v) {
		store_kind kind;
		json_t *data = json_object_get(v, "data");
		store_history_entry e = {
			.uuid = json_string_value(json_object_get(v, "uuid")),
			.version = (uint64_t)json_integer_value(json_object_get(v, "version")),
			.name = json_string_value(json_object_get(v, "name")),
			.time_ms = json_integer_value(json_object_get(v, "time_ms")),
			.origin = json_string_value(json_object_get(v, "origin")),
			.user = json_string_value(json_object_get(v, "user")),
			.change = json_string_value(json_object_get(v, "change")),
			.data = json_is_object(data) ? data : NULL,
		};
		if (!store_kind_parse(json_string_value(json_object_get(v, "kind")), &kind) ||
		    !e.uuid || !e.name || !e.change) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The state transfer has a malformed history entry.");
			return false;
		}
		e.kind = kind;
		if (!store_db_add_history(db, &e, error))
			return false;
	}
	return restore_audit(db, json_object_get(dump, "audit"), error) &&
	       store_db_set_position(db, &pos, error);
}

/* The database's size in bytes (its pages, not the file's). */
static uint64_t db_bytes(store_db *db)
{
	sqlite3_stmt *st;
	uint64_t bytes = 0;
	if (sqlite3_prepare_v2(db->sql, "SELECT page_count * page_size FROM pragma_page_count(), "
				       "pragma_page_size()", -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		bytes = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return bytes;
}

bool store_db_check_writable(store_db *db, GError **error)
{
	store_db_rollback(db);
	if (strcmp(db->path, ":memory:") != 0) {
		g_autofree char *dir = g_path_get_dirname(db->path);
		struct statvfs vfs;
		if (statvfs(dir, &vfs) != 0) {
			int e = errno;
			g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot look at the file system of %s: %s.",
				    dir, g_strerror(e));
			return false;
		}
		uint64_t free_bytes = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		uint64_t need = db_bytes(db) + WRITABLE_MARGIN_BYTES;
		if (free_bytes < need) {
			g_set_error(error, HERD_ERROR, HERD_ERR_IO,
				    "Only %" G_GUINT64_FORMAT " KiB are free on the file system of %s; catching "
				    "up with the cluster may need %" G_GUINT64_FORMAT " KiB.",
				    free_bytes / 1024, dir, (need + 1023) / 1024);
			return false;
		}
	}
	/* A durable write that changes nothing: the position as it is. */
	store_position pos;
	if (!load_position(db, &pos, error))
		return false;
	bool ok = store_db_begin(db, error) && store_db_set_position(db, &pos, error) &&
		  store_db_commit(db, error);
	if (!ok) {
		store_db_rollback(db);
		g_prefix_error(error, "A test write to %s failed: ", db->path);
	}
	return ok;
}

void store_db_fail_after(store_db *db, unsigned nth)
{
	db->fail_after = nth;
}

void store_db_fail_reads(store_db *db, bool fail)
{
	db->fail_reads = fail;
}
