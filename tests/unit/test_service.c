/*
 * The cluster service when this node's store fails: over a fake bus (one
 * node, CPG played on the main loop) and a real SQLite file whose writes a
 * VFS shim makes fail with SQLITE_FULL, the error SQLite gives for a full
 * disk.  Why a shim: it fails SQLite's own writes deterministically, with
 * no root and no tmpfs, through the same code path as a full disk (the
 * cluster test fills a real one: tests/cluster/test_store_failure.py).
 *
 * It checks what the node's clients hear (the change may have been applied;
 * reads and changes refused, saying why and what happens next), that the
 * others are told before the node leaves, and that it recovers by itself
 * once it can write again: reload from disk, rejoin, sync, answer.
 */
#include "cluster/service.h"
#include "common/error.h"
#include "common/json.h"
#include "store/wire.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* A disk that can be full                                             */

static sqlite3_vfs *real_vfs;
static sqlite3_vfs full_vfs;
static bool disk_full;
static unsigned full_writes; /* writes refused so far */

typedef struct {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct */
} full_file;

#define REAL(f) (((full_file *)(f))->real)

static int ff_close(sqlite3_file *f) { return REAL(f)->pMethods->xClose(REAL(f)); }
static int ff_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}
static int ff_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (disk_full) {
		full_writes++;
		return SQLITE_FULL;
	}
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags) { return REAL(f)->pMethods->xSync(REAL(f), flags); }
static int ff_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int ff_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int ff_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int ff_check(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_chars(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int ff_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, p);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods full_io = {
	.iVersion = 2,
	.xClose = ff_close,
	.xRead = ff_read,
	.xWrite = ff_write,
	.xTruncate = ff_truncate,
	.xSync = ff_sync,
	.xFileSize = ff_size,
	.xLock = ff_lock,
	.xUnlock = ff_unlock,
	.xCheckReservedLock = ff_check,
	.xFileControl = ff_control,
	.xSectorSize = ff_sector,
	.xDeviceCharacteristics = ff_chars,
	.xShmMap = ff_shm_map,
	.xShmLock = ff_shm_lock,
	.xShmBarrier = ff_shm_barrier,
	.xShmUnmap = ff_shm_unmap,
};

static int full_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	full_file *ff = (full_file *)f;
	ff->real = (sqlite3_file *)(ff + 1);
	int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
	/* On failure SQLite calls no method; on success it calls ours. */
	f->pMethods = rc == SQLITE_OK ? &full_io : NULL;
	return rc;
}

static void full_vfs_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	g_assert_nonnull(real_vfs);
	full_vfs = *real_vfs;
	full_vfs.zName = "herd-test-full";
	full_vfs.szOsFile = (int)sizeof(full_file) + real_vfs->szOsFile;
	full_vfs.xOpen = full_open;
	g_assert_cmpint(sqlite3_vfs_register(&full_vfs, 1), ==, SQLITE_OK);
}

/* ------------------------------------------------------------------ */
/* A bus of one node                                                   */

typedef struct {
	herd_bus bus;
	bool running, connected;
	GQueue *queue;       /* GBytes*: sent, to be delivered to ourselves */
	GString *log;        /* "start", "stop", "send:<type>" in order */
	char *leaving;       /* payload of the last LEAVING sent */
	guint idle;
} fake_bus;

#define FAKE(b) ((fake_bus *)(b))

static gboolean fake_dispatch(gpointer data)
{
	fake_bus *f = data;
	f->idle = 0;
	if (!f->running)
		return G_SOURCE_REMOVE;
	if (!f->connected) {
		f->connected = true;
		f->bus.cb.connected(f->bus.user, 1);
		const uint32_t me = 1;
		f->bus.cb.confchg(f->bus.user, &me, 1);
	}
	GBytes *b;
	while (f->connected && (b = g_queue_pop_head(f->queue))) {
		gsize len;
		const void *p = g_bytes_get_data(b, &len);
		f->bus.cb.deliver(f->bus.user, 1, p, len);
		g_bytes_unref(b);
	}
	f->bus.cb.burst_end(f->bus.user);
	return G_SOURCE_REMOVE;
}

static void fake_kick(fake_bus *f)
{
	if (!f->idle)
		f->idle = g_idle_add(fake_dispatch, f);
}

static void fake_start(herd_bus *b)
{
	fake_bus *f = FAKE(b);
	g_string_append(f->log, "start ");
	f->running = true;
	fake_kick(f);
}

static void fake_stop(herd_bus *b)
{
	fake_bus *f = FAKE(b);
	if (!f->running)
		return;
	g_string_append(f->log, "stop ");
	f->running = false;
	g_queue_clear_full(f->queue, (GDestroyNotify)g_bytes_unref);
	if (f->connected) {
		f->connected = false;
		f->bus.cb.disconnected(f->bus.user);
	}
}

static void fake_free(herd_bus *b)
{
	fake_bus *f = FAKE(b);
	f->running = false;
	if (f->idle)
		g_source_remove(f->idle);
	g_queue_free_full(f->queue, (GDestroyNotify)g_bytes_unref);
	g_string_free(f->log, TRUE);
	g_free(f->leaving);
	g_free(f);
}

static bool fake_connected(herd_bus *b) { return FAKE(b)->connected; }

static bool fake_send(herd_bus *b, const void *msg, size_t len)
{
	fake_bus *f = FAKE(b);
	if (!f->connected)
		return false;
	herd_wire_header h;
	const void *payload;
	g_assert_true(herd_wire_decode(msg, len, 1, &h, &payload, NULL));
	g_string_append_printf(f->log, "send:%u ", h.type);
	if (h.type == HERD_MSG_LEAVING) {
		g_free(f->leaving);
		f->leaving = g_strndup(payload, h.payload_len);
	}
	g_queue_push_tail(f->queue, g_bytes_new(msg, len));
	fake_kick(f);
	return true;
}

static bool fake_quorate(herd_bus *b) { return FAKE(b)->connected; }
static json_t *fake_quorum_info(herd_bus *b)
{
	return json_pack("{s:b}", "quorate", FAKE(b)->connected);
}
static json_t *fake_links(herd_bus *b, uint32_t nodeid) { return json_array(); }
typedef struct {
	herd_bus_reload_done done;
	gpointer user;
} fake_reload_answer;
static gboolean fake_reloaded(gpointer data)
{
	fake_reload_answer *r = data;
	r->done(NULL, r->user);
	g_free(r);
	return G_SOURCE_REMOVE;
}
static void fake_reload(herd_bus *b, herd_bus_reload_done done, gpointer user)
{
	fake_reload_answer *r = g_new0(fake_reload_answer, 1);
	r->done = done;
	r->user = user;
	g_idle_add(fake_reloaded, r);
}

static const herd_bus_ops fake_ops = {
	.start = fake_start,
	.stop = fake_stop,
	.free = fake_free,
	.connected = fake_connected,
	.send = fake_send,
	.quorate = fake_quorate,
	.quorum_info = fake_quorum_info,
	.links = fake_links,
	.reload = fake_reload,
};

static fake_bus *fake_bus_new(void)
{
	fake_bus *f = g_new0(fake_bus, 1);
	f->bus.ops = &fake_ops;
	f->queue = g_queue_new();
	f->log = g_string_new(NULL);
	return f;
}

/* ------------------------------------------------------------------ */

typedef struct {
	bool done;
	json_t *result;
	GError *error;
} outcome;

static void on_done(json_t *result, const GError *error, gpointer user)
{
	outcome *o = user;
	g_assert_false(o->done);
	o->done = true;
	o->result = result ? json_incref(result) : NULL;
	o->error = error ? g_error_copy(error) : NULL;
}

static void outcome_clear(outcome *o)
{
	json_decref(o->result);
	g_clear_error(&o->error);
	memset(o, 0, sizeof(*o));
}

typedef bool (*cond_fn)(gpointer);

static void run_until(cond_fn cond, gpointer data, const char *what)
{
	gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while (!cond(data)) {
		if (g_get_monotonic_time() > deadline)
			g_error("timed out waiting for %s", what);
		g_main_context_iteration(NULL, TRUE);
	}
}

static bool is_done(gpointer o) { return ((outcome *)o)->done; }

static bool is_ready(gpointer c)
{
	replica *r = herd_cluster_replica(c);
	return replica_get_phase(r) == REPLICA_SYNCED && replica_is_primary(r) &&
	       herd_cluster_store_check(c, NULL);
}

static bool survivor_ok(gpointer user, uint32_t missing) { return true; }

static json_t *create_vm(const char *uuid, const char *name)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:{}}", "op", "create", "kind", "vm", "uuid", uuid,
			 "name", name, "data");
}

/* Submit @cmd and wait for its answer into @o; false if refused at once (@error). */
static bool change(herd_cluster *c, json_t *cmd, outcome *o, GError **error)
{
	outcome_clear(o);
	if (!herd_cluster_submit(c, cmd, "alice", on_done, o, error))
		return false;
	run_until(is_done, o, "the change's answer");
	return true;
}

static bool has_vm(herd_cluster *c, const char *name)
{
	return store_state_get_by_name(herd_cluster_state(c), STORE_KIND_VM, name) != NULL;
}

static void expect_in(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		g_error("'%s' does not say '%s'", text, needle);
}

typedef struct {
	herd_cluster *c;
	bool saw_rejoining;
} recovery_watch;

static bool recovered(gpointer data)
{
	recovery_watch *w = data;
	g_autoptr(GError) err = NULL;
	if (herd_cluster_store_check(w->c, &err))
		return true;
	if (strstr(err->message, "is rejoining the cluster")) {
		w->saw_rejoining = true;
		/* never answers from a store not in sync again */
		g_assert_cmpint(replica_get_phase(herd_cluster_replica(w->c)), !=, REPLICA_SYNCED);
	}
	return false;
}

static bool retried(gpointer c)
{
	return full_writes >= 3; /* a write refused at each of three attempts */
}

static bool bus_stopped(gpointer bus)
{
	return !((fake_bus *)bus)->running;
}

static void test_store_failure(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *dir = g_dir_make_tmp("herd-test-service-XXXXXX", &error);
	g_assert_no_error(error);
	fake_bus *bus = fake_bus_new();
	herd_cluster *c = herd_cluster_new(dir, "n1", &bus->bus, &error);
	g_assert_no_error(error);
	herd_cluster_set_store_retry(c, 20, 40);
	herd_cluster_set_survivor_check(c, survivor_ok, NULL);

	/* A cluster of n1 and n2 (which is away: n1 goes on as a survivor). */
	g_autoptr(json_t) boot = json_pack(
		"{s:s,s:[{s:s,s:s,s:s,s:s,s:{}},{s:s,s:s,s:s,s:s,s:{s:i,s:[s]}},{s:s,s:s,s:s,s:s,s:{s:i,s:[s]}}]}",
		"op", "batch", "ops",
		"op", "create", "kind", "cluster", "uuid", "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "name", "c", "data",
		"op", "create", "kind", "node", "uuid", "aaaaaaaa-aaaa-4aaa-8aaa-000000000001", "name", "n1",
		"data", "nodeid", 1, "links", "10.0.0.1",
		"op", "create", "kind", "node", "uuid", "aaaaaaaa-aaaa-4aaa-8aaa-000000000002", "name", "n2",
		"data", "nodeid", 2, "links", "10.0.0.2");
	g_autoptr(json_t) booted = herd_cluster_bootstrap(c, boot, "admin", &error);
	g_assert_no_error(error);
	herd_cluster_start(c, false);
	run_until(is_ready, c, "the store to be in sync");
	g_assert_cmpstr(herd_cluster_peer_address(c), ==, "10.0.0.2");

	outcome o = { 0 };
	g_autoptr(json_t) cmd1 = create_vm("11111111-1111-4111-8111-111111111111", "web1");
	g_assert_true(change(c, cmd1, &o, &error));
	g_assert_no_error(o.error);

	/* The disk fills up while web2 is made durable. */
	disk_full = true;
	g_autoptr(json_t) cmd2 = create_vm("22222222-2222-4222-8222-222222222222", "web2");
	g_assert_true(change(c, cmd2, &o, &error));
	g_assert_error(o.error, HERD_ERROR, HERD_ERR_IO);
	expect_in(o.error->message, "may have been applied");
	expect_in(o.error->message, "database or disk is full");
	g_assert_cmpint(replica_get_phase(herd_cluster_replica(c)), ==, REPLICA_FAILED);
	/* The others heard why before it left. */
	run_until(bus_stopped, bus, "the node to leave the group");
	g_autofree char *leave = g_strdup_printf("send:%u stop", HERD_MSG_LEAVING);
	expect_in(bus->log->str, leave);
	expect_in(bus->leaving, "its configuration store failed");
	expect_in(bus->leaving, "database or disk is full");

	/* Reads and changes say why not, and what happens next. */
	g_assert_false(herd_cluster_store_check(c, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	expect_in(error->message, "This node's configuration store failed at ");
	expect_in(error->message, "database or disk is full");
	expect_in(error->message, "herd retries by itself");
	expect_in(error->message, "herd --host 10.0.0.2");
	g_clear_error(&error);
	g_autoptr(json_t) cmd3 = create_vm("33333333-3333-4333-8333-333333333333", "web3");
	g_assert_false(change(c, cmd3, &o, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	expect_in(error->message, "configuration store failed");
	g_clear_error(&error);
	g_autoptr(json_t) st = herd_cluster_status_json(c);
	g_assert_cmpstr(json_string_value(json_object_get(st, "phase")), ==, "failed");
	expect_in(json_string_value(json_object_get(st, "refusal")), "configuration store failed");

	/* Still full: it keeps trying, and stays out. */
	full_writes = 0;
	run_until(retried, c, "three attempts to recover");
	g_assert_false(herd_cluster_store_check(c, &error));
	expect_in(error->message, "The last try found:");
	g_clear_error(&error);
	g_assert_true(g_str_has_prefix(bus->log->str, "start ")); /* not started again */
	g_assert_null(strstr(bus->log->str + 1, "start"));
	g_assert_false(bus->running);

	/* Space again: it reloads, rejoins, syncs and answers by itself. */
	disk_full = false;
	recovery_watch w = { c, false };
	run_until(recovered, &w, "the store to recover");
	g_assert_true(w.saw_rejoining);
	g_assert_true(bus->running);
	g_assert_cmpint(replica_get_phase(herd_cluster_replica(c)), ==, REPLICA_SYNCED);
	g_assert_true(has_vm(c, "web1"));
	/* web2 never became durable here (and there is no other node) */
	g_assert_false(has_vm(c, "web2"));
	g_assert_true(change(c, cmd3, &o, &error));
	g_assert_no_error(o.error);
	g_assert_true(has_vm(c, "web3"));

	/* Another node that leaves saying why is remembered until it is back. */
	g_autofree void *msg = NULL;
	size_t len;
	const char *why = "{\"reason\":\"its configuration store failed (disk full.)\"}";
	msg = herd_wire_encode(HERD_MSG_LEAVING, 2, 0, 0, why, strlen(why), &len);
	bus->bus.cb.deliver(bus->bus.user, 2, msg, len);
	g_assert_cmpstr(g_hash_table_lookup(herd_cluster_departures(c), GUINT_TO_POINTER(2)), ==,
			"its configuration store failed (disk full.)");
	const uint32_t both[] = { 1, 2 };
	bus->bus.cb.confchg(bus->bus.user, both, 2);
	g_assert_null(g_hash_table_lookup(herd_cluster_departures(c), GUINT_TO_POINTER(2)));
	/* ...or until it is out of corosync's ring (down: it may come back for
	 * another reason) */
	bus->bus.cb.deliver(bus->bus.user, 2, msg, len);
	const uint32_t ring[] = { 1, 2 };
	bus->bus.cb.ring_changed(bus->bus.user, ring, 2);
	g_assert_nonnull(g_hash_table_lookup(herd_cluster_departures(c), GUINT_TO_POINTER(2)));
	bus->bus.cb.ring_changed(bus->bus.user, ring, 1);
	g_assert_null(g_hash_table_lookup(herd_cluster_departures(c), GUINT_TO_POINTER(2)));

	outcome_clear(&o);
	herd_cluster_free(c);
	g_autofree char *db = g_build_filename(dir, "config.db", NULL);
	const char *suffixes[] = { "", "-wal", "-shm" };
	for (unsigned i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *p = g_strconcat(db, suffixes[i], NULL);
		g_unlink(p);
	}
	g_rmdir(dir);
}

static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
		      gpointer user)
{
	if (g_test_verbose())
		g_printerr("# %s: %s\n", domain, message);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* The store and the service log the failure and the retries; here
	 * that is expected: not fatal, and shown only with --verbose. */
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
	g_log_set_handler("store", G_LOG_LEVEL_MASK, quiet_log, NULL);
	g_log_set_handler("cluster", G_LOG_LEVEL_MASK, quiet_log, NULL);
	full_vfs_install();
	g_test_add_func("/service/store-failure", test_store_failure);
	return g_test_run();
}
