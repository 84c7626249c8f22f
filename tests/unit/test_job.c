/* store/job.h and ha/job_watch.h: a job's fields are checked when applied,
 * its log stays bounded, its progress is written at most once a second,
 * finished jobs are pruned; a migration's job follows its VM; the
 * coordinator ends the jobs of lost nodes, a restarted herd its own; an
 * evacuation's job counts the VMs that left. */
#include "common/json.h"
#include "ha/job_watch.h"
#include "store/command.h"
#include "store/job.h"
#include "teststore.h"

#include <string.h>

#define VM_UUID "11111111-1111-4111-8111-111111111111"

/* A new migration job of web1 from n1 to n2, created at 1000 ms. */
static store_object *new_job(test_store *t)
{
	char uuid[STORE_UUID_LEN + 1];
	test_store_apply_new(t, store_job_cmd_create("migrate", "web1", VM_UUID, "n2", 0, "alice", "n1",
						     "Migrating web1.", 1000, uuid));
	store_object *o = store_state_get(t->st, STORE_KIND_JOB, uuid);
	g_assert_nonnull(o);
	return o;
}

static void apply_new_ok(test_store *t, json_t *cmd)
{
	test_store_apply_new(t, cmd);
}

/* Apply @cmd (stolen); it must fail with a message containing @part. */
static void apply_fails(test_store *t, json_t *cmd, const char *part)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) r = test_store_apply(t, cmd, &err);
	json_decref(cmd);
	g_assert_null(r);
	g_assert_nonnull(err);
	if (!strstr(err->message, part))
		g_error("'%s' lacks '%s'", err->message, part);
}

static void test_create(void)
{
	g_autoptr(test_store) t = test_store_new();
	store_object *o = new_job(t);
	const store_job *j = store_job_of(o);
	g_assert_cmpuint(strlen(o->name), ==, 8);
	g_assert_true(strncmp(o->name, o->uuid, 8) == 0);
	g_assert_true(store_state_lookup(t->st, STORE_KIND_JOB, o->name) == o);
	g_assert_cmpstr(j->kind, ==, "migrate");
	g_assert_cmpstr(j->target, ==, "web1");
	g_assert_cmpstr(j->target_uuid, ==, VM_UUID);
	g_assert_cmpstr(j->to, ==, "n2");
	g_assert_cmpstr(j->owner, ==, "alice");
	g_assert_cmpstr(j->node, ==, "n1");
	g_assert_cmpint(j->state, ==, STORE_JOB_RUNNING);
	g_assert_cmpint(j->progress, ==, 0);
	g_assert_cmpuint(json_array_size(j->log), ==, 1);
	g_assert_true(store_job_kind_cancellable("migrate"));
	g_assert_false(store_job_kind_cancellable("disk-create"));
	g_assert_false(store_job_kind_cancellable("disk-resize"));
	g_assert_true(store_job_kind_cancellable("iso-upload"));
}

/* Bad fields are refused with a sentence naming them; nothing changes. */
static void test_validate(void)
{
	g_autoptr(test_store) t = test_store_new();
	store_object *o = new_job(t);
	char uuid[37];
	g_strlcpy(uuid, o->uuid, sizeof(uuid));
	uint64_t version = o->version;
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid, json_pack("{s:i}", "progress", 101)), "progress");
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid, json_pack("{s:s}", "state", "paused")), "state");
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid, json_pack("{s:s}", "kind", "bake")), "kind");
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid, json_pack("{s:n}", "owner")), "owner");
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid, json_pack("{s:s}", "state", "done")),
		    "finishing time");
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid, json_pack("{s:I}", "finished_ms", (json_int_t)5)),
		    "finishing time");
	json_t *log = json_array();
	for (int i = 0; i < 101; i++)
		json_array_append_new(log, json_pack("{s:i,s:s}", "ms", i, "text", "x"));
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid, json_pack("{s:o}", "log", log)), "at most 100");
	g_autofree char *long_line = g_strnfill(201, 'y');
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid,
				       json_pack("{s:[{s:i,s:s}]}", "log", "ms", 1, "text", long_line)),
		    "200 characters");
	apply_fails(t, store_cmd_patch(STORE_KIND_JOB, uuid, json_pack("{s:[s]}", "log", "bare")), "log line");
	g_assert_cmpuint(store_state_get(t->st, STORE_KIND_JOB, uuid)->version, ==, version);
}

/* The log keeps its newest 100 lines, each at most 200 characters. */
static void test_log_bounded(void)
{
	g_autoptr(test_store) t = test_store_new();
	store_object *o = new_job(t);
	char uuid[37];
	g_strlcpy(uuid, o->uuid, sizeof(uuid));
	for (int i = 0; i < 150; i++) {
		g_autofree char *line = g_strdup_printf("line %d", i);
		apply_new_ok(t, store_job_cmd_update(store_state_get(t->st, STORE_KIND_JOB, uuid), -1, line,
						     2000 + i));
	}
	const store_job *j = store_job_of(store_state_get(t->st, STORE_KIND_JOB, uuid));
	g_assert_cmpuint(json_array_size(j->log), ==, STORE_JOB_LOG_LINES);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(j->log, 99), "text")), ==, "line 149");
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(j->log, 0), "text")), ==, "line 50");
	/* A long line (multi-byte characters) is cut to 200 characters. */
	GString *big = g_string_new(NULL);
	for (int i = 0; i < 300; i++)
		g_string_append(big, "é");
	apply_new_ok(t, store_job_cmd_update(store_state_get(t->st, STORE_KIND_JOB, uuid), 10, big->str, 5000));
	g_string_free(big, TRUE);
	j = store_job_of(store_state_get(t->st, STORE_KIND_JOB, uuid));
	const char *last = json_string_value(json_object_get(json_array_get(j->log, 99), "text"));
	g_assert_cmpint(g_utf8_strlen(last, -1), ==, STORE_JOB_LINE_CHARS);
	g_assert_true(g_str_has_suffix(last, "…"));
	g_assert_cmpint(j->progress, ==, 10);
}

/* Progress is worth a write once it changed and a second has passed. */
static void test_throttle(void)
{
	g_autoptr(test_store) t = test_store_new();
	store_object *o = new_job(t);
	const store_job *j = store_job_of(o); /* updated at 1000 ms, progress 0 */
	g_assert_false(store_job_update_due(j, 0, 9000));
	g_assert_false(store_job_update_due(j, 5, 1999));
	g_assert_true(store_job_update_due(j, 5, 2000));
	/* A stale version is refused: a concurrent change is never overwritten. */
	g_autoptr(json_t) stale = store_job_cmd_update(o, 5, NULL, 2000);
	apply_new_ok(t, store_job_cmd_cancel(o, "bob", 1500));
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) r = test_store_apply(t, stale, &err);
	g_assert_null(r);
	g_assert_nonnull(err);
}

static void test_finish(void)
{
	g_autoptr(test_store) t = test_store_new();
	store_object *o = new_job(t);
	char uuid[37];
	g_strlcpy(uuid, o->uuid, sizeof(uuid));
	apply_new_ok(t, store_job_cmd_finish(o, STORE_JOB_DONE, "VM web1 runs on node n2 now.", 3000));
	const store_job *j = store_job_of(store_state_get(t->st, STORE_KIND_JOB, uuid));
	g_assert_cmpint(j->state, ==, STORE_JOB_DONE);
	g_assert_cmpint(j->progress, ==, 100);
	g_assert_cmpint(j->finished_ms, ==, 3000);
	g_assert_null(j->error);
	g_assert_false(store_job_update_due(j, 50, 9000));
	o = new_job(t);
	g_strlcpy(uuid, o->uuid, sizeof(uuid));
	apply_new_ok(t, store_job_cmd_finish(o, STORE_JOB_FAILED, "Node n1 went down.", 3000));
	j = store_job_of(store_state_get(t->st, STORE_KIND_JOB, uuid));
	g_assert_cmpint(j->state, ==, STORE_JOB_FAILED);
	g_assert_cmpstr(j->error, ==, "Node n1 went down.");
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(j->log, 1), "text")), ==,
			"Failed: Node n1 went down.");
}

/* Finished jobs beyond STORE_JOB_KEEP, or older than a week, go; running
 * ones stay. */
static void test_prune(void)
{
	g_autoptr(test_store) t = test_store_new();
	int64_t now = STORE_JOB_KEEP_MS + 100000;
	new_job(t); /* running */
	for (int i = 0; i < STORE_JOB_KEEP + 3; i++)
		apply_new_ok(t, store_job_cmd_finish(new_job(t), STORE_JOB_DONE, NULL, now - 10));
	g_autoptr(test_store) empty = test_store_new();
	g_assert_null(store_job_cmd_prune(empty->st, now));
	json_t *prune = store_job_cmd_prune(t->st, now);
	g_assert_nonnull(prune);
	g_assert_cmpuint(json_array_size(json_object_get(prune, "ops")), ==, 3);
	apply_new_ok(t, prune);
	g_assert_cmpuint(store_state_count(t->st, STORE_KIND_JOB), ==, STORE_JOB_KEEP + 1);
	g_assert_null(store_job_cmd_prune(t->st, now));
	/* A week later every finished one goes. */
	prune = store_job_cmd_prune(t->st, now + STORE_JOB_KEEP_MS);
	apply_new_ok(t, prune);
	g_assert_cmpuint(store_state_count(t->st, STORE_KIND_JOB), ==, 1);
}

static store_object *vm_object(const char *node, const char *move_to)
{
	g_autoptr(json_t) d = json_pack("{s:s,s:s}", "target", "running", "node", node);
	if (move_to)
		json_object_set_new(d, "move_to", json_string(move_to));
	return store_object_new(STORE_KIND_VM, VM_UUID, "web1", 3, 0, 0, d);
}

static void test_migrate_step(void)
{
	g_autoptr(test_store) t = test_store_new();
	store_object *job = new_job(t);
	herd_job_step s;
	/* Under way: progress and a line per memory pass. */
	g_autoptr(store_object) moving = vm_object("n1", "n2");
	g_autoptr(json_t) m = json_pack("{s:I,s:I,s:I,s:i,s:I}", "memory_total", (json_int_t)1000,
					"memory_remaining", (json_int_t)250, "memory_processed", (json_int_t)750,
					"iteration", 1, "bandwidth", (json_int_t)1048576);
	herd_job_migrate_facts f = { .vm = moving, .rt_node = "n1", .rt_state = "migrating", .migration = m };
	herd_job_migrate_step(job, &f, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_RUNNING);
	g_assert_cmpint(s.progress, ==, 75);
	g_assert_nonnull(s.line);
	g_assert_true(g_str_has_prefix(s.line, "Memory pass 1:"));
	g_assert_cmpint(s.iteration, ==, 1);
	g_assert_false(s.cancel_now);
	herd_job_step_clear(&s);
	f.last_iteration = 1;
	herd_job_migrate_step(job, &f, &s);
	g_assert_null(s.line);
	herd_job_step_clear(&s);
	/* Arrived: assigned there and running there. */
	g_autoptr(store_object) there = vm_object("n2", NULL);
	herd_job_migrate_facts arrived = { .vm = there, .rt_node = "n1", .rt_state = "running" };
	herd_job_migrate_step(job, &arrived, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_RUNNING); /* its state follows */
	herd_job_step_clear(&s);
	arrived.rt_node = "n2";
	herd_job_migrate_step(job, &arrived, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_DONE);
	herd_job_step_clear(&s);
	/* Given up: failed, with the reason. */
	g_autoptr(store_object) stayed = vm_object("n1", NULL);
	herd_job_migrate_facts gave_up = { .vm = stayed, .rt_node = "n1", .rt_state = "running",
					   .rt_error = "migrate failed: no route" };
	herd_job_migrate_step(job, &gave_up, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_FAILED);
	g_assert_cmpstr(s.error, ==, "VM web1 was not migrated to node n2: migrate failed: no route; it runs on node n1.");
	herd_job_step_clear(&s);
	/* Gone. */
	herd_job_migrate_facts gone = { 0 };
	herd_job_migrate_step(job, &gone, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_FAILED);
	herd_job_step_clear(&s);
	/* Cancel asked: abort once; given up then is cancelled. */
	char uuid[37];
	g_strlcpy(uuid, job->uuid, sizeof(uuid));
	apply_new_ok(t, store_job_cmd_cancel(job, "alice", 2000));
	job = store_state_lookup(t->st, STORE_KIND_JOB, uuid);
	herd_job_migrate_step(job, &f, &s);
	g_assert_true(s.cancel_now);
	herd_job_step_clear(&s);
	f.cancel_sent = true;
	herd_job_migrate_step(job, &f, &s);
	g_assert_false(s.cancel_now);
	herd_job_step_clear(&s);
	herd_job_migrate_step(job, &gave_up, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_CANCELLED);
	g_assert_cmpstr(s.error, ==, "User alice cancelled the migration; VM web1 runs on node n1.");
	herd_job_step_clear(&s);
}

#define NODE_UUID "22222222-2222-4222-8222-222222222222"

static store_object *node_object(const char *mode)
{
	g_autoptr(json_t) d = json_pack("{s:i,s:s}", "nodeid", 2, "mode", mode);
	return store_object_new(STORE_KIND_NODE, NODE_UUID, "n2", 1, 0, 0, d);
}

static void test_evacuate_step(void)
{
	g_autoptr(test_store) t = test_store_new();
	char uuid[STORE_UUID_LEN + 1];
	test_store_apply_new(t, store_job_cmd_create("evacuate", "n2", NODE_UUID, NULL, 4, "root", "n2",
						     "Standby.", 1000, uuid));
	store_object *job = store_state_get(t->st, STORE_KIND_JOB, uuid);
	g_assert_cmpuint(store_job_of(job)->total, ==, 4);
	g_autoptr(store_object) standby = node_object("standby");
	g_autoptr(store_object) online = node_object("online");
	herd_job_step s;
	herd_job_evacuate_facts f = { .node = standby, .remaining = 4 };
	herd_job_evacuate_step(job, &f, 5000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_RUNNING);
	g_assert_null(s.line);
	herd_job_step_clear(&s);
	f.remaining = 1;
	herd_job_evacuate_step(job, &f, 1500, &s); /* not a second since the last write */
	g_assert_cmpint(s.progress, ==, -1);
	herd_job_step_clear(&s);
	herd_job_evacuate_step(job, &f, 2500, &s);
	g_assert_cmpint(s.progress, ==, 75);
	g_assert_cmpstr(s.line, ==, "3 of 4 VM(s) have left node n2.");
	herd_job_step_clear(&s);
	f.remaining = 0;
	herd_job_evacuate_step(job, &f, 3000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_DONE);
	g_assert_cmpstr(s.line, ==, "No VM is left on node n2.");
	herd_job_step_clear(&s);
	/* Put online meanwhile: called off. */
	herd_job_evacuate_facts back = { .node = online, .remaining = 2 };
	herd_job_evacuate_step(job, &back, 3000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_CANCELLED);
	g_assert_cmpstr(s.error, ==, "Node n2 was put online again before it was empty; 2 VM(s) left on it.");
	herd_job_step_clear(&s);
	/* Cancelled: the node goes back online, once. */
	apply_new_ok(t, store_job_cmd_cancel(job, "root", 3000));
	job = store_state_get(t->st, STORE_KIND_JOB, uuid);
	f.remaining = 2;
	herd_job_evacuate_step(job, &f, 3000, &s);
	g_assert_true(s.cancel_now);
	herd_job_step_clear(&s);
	f.cancel_sent = true;
	herd_job_evacuate_step(job, &f, 3000, &s);
	g_assert_false(s.cancel_now);
	g_assert_cmpint(s.end, ==, STORE_JOB_RUNNING);
	herd_job_step_clear(&s);
	herd_job_evacuate_step(job, &back, 3000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_CANCELLED);
	g_assert_cmpstr(s.error, ==, "User root cancelled the evacuation; node n2 is online again, 2 VM(s) left on it.");
	herd_job_step_clear(&s);
	herd_job_evacuate_facts removed = { 0 };
	herd_job_evacuate_step(job, &removed, 3000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_FAILED);
	herd_job_step_clear(&s);
	g_assert_true(store_job_running(t->st, "evacuate", NODE_UUID) == job);
	g_assert_null(store_job_running(t->st, "migrate", NODE_UUID));
}

/* An eSAN sync's job: begun when herd-san's state shows this node the
 * source with a size; progress at most once a second; done when in sync,
 * failed when interrupted or the disk is deleted. */
static void test_sync_step(void)
{
	g_autoptr(json_t) start = json_pack("{s:s,s:s,s:{s:s,s:i,s:i}}", "conn", "connected", "decision",
					    "source-full", "sync", "role", "source", "done", 0, "total", 32 << 20);
	g_autoptr(json_t) sizing = json_pack("{s:s,s:s,s:{s:s,s:i,s:i}}", "conn", "connected", "decision",
					     "source-bitmap", "sync", "role", "source", "done", 0, "total", 0);
	herd_job_sync_facts f = { .disk = "data", .peer = "n1", .peer_discarded = true, .sync_by = "alice",
				  .san = sizing };
	const char *owner = NULL;
	g_assert_null(herd_job_sync_begins(&f, "n2", &owner)); /* its size not known yet */
	f.san = start;
	g_autofree char *line = herd_job_sync_begins(&f, "n2", &owner);
	g_assert_cmpstr(line, ==, "Sync of disk data from n2 to n1 started: a full sync (every block), 32.0 MiB to "
				  "copy.");
	g_assert_cmpstr(owner, ==, "alice");
	f.peer_discarded = false; /* a resync after an outage */
	g_autofree char *again = herd_job_sync_begins(&f, "n2", &owner);
	g_assert_cmpstr(owner, ==, "system");

	g_autoptr(test_store) t = test_store_new();
	char uuid[STORE_UUID_LEN + 1];
	test_store_apply_new(t, store_job_cmd_create("esan-sync", "data", VM_UUID, "n1", 0, "system", "n2", line,
						     1000, uuid));
	store_object *job = store_state_get(t->st, STORE_KIND_JOB, uuid);
	g_assert_false(store_job_kind_cancellable("esan-sync"));
	g_autoptr(json_t) half = json_pack("{s:s,s:{s:s,s:i,s:i}}", "conn", "connected", "sync", "role", "source",
					   "done", 16 << 20, "total", 32 << 20);
	f.san = half;
	herd_job_step s;
	herd_job_sync_step(job, &f, 1500, &s); /* not a second since the last write */
	g_assert_cmpint(s.end, ==, STORE_JOB_RUNNING);
	g_assert_cmpint(s.progress, ==, -1);
	herd_job_step_clear(&s);
	herd_job_sync_step(job, &f, 2000, &s);
	g_assert_cmpint(s.progress, ==, 50);
	herd_job_step_clear(&s);
	f.san = NULL; /* herd-san not heard since herdd started: it goes on */
	herd_job_sync_step(job, &f, 2000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_RUNNING);
	herd_job_step_clear(&s);
	g_autoptr(json_t) synced = json_pack("{s:s,s:n,s:i}", "conn", "connected", "sync", "resynced", 32 << 20);
	f.san = synced;
	herd_job_sync_step(job, &f, 5000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_DONE);
	g_assert_cmpstr(s.line, ==, "Done: 32.0 MiB copied in 4.0 s; the replicas of disk data on n2 and n1 are "
				    "identical.");
	herd_job_step_clear(&s);
	g_autoptr(json_t) cut = json_pack("{s:s,s:n}", "conn", "connecting", "sync");
	f.san = cut;
	herd_job_sync_step(job, &f, 3000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_FAILED);
	g_assert_cmpstr(s.error, ==, "Interrupted at 0 % after 2.0 s: the link to node n1 was lost. The sync goes on, "
				     "as a new job, once the replicas connect again.");
	herd_job_step_clear(&s);
	/* connected, no sync role, but the peer's disk detached: not in sync */
	g_autoptr(json_t) diskless = json_pack("{s:s,s:n,s:b}", "conn", "connected", "sync", "peer_diskless", 1);
	f.san = diskless;
	herd_job_sync_step(job, &f, 3000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_FAILED);
	g_assert_cmpstr(s.error, ==, "Interrupted at 0 % after 2.0 s: the local disk under node n1's replica failed "
				     "(it is detached). The sync goes on, as a new job, once the replicas connect again.");
	herd_job_step_clear(&s);
	f.disk = NULL;
	herd_job_sync_step(job, &f, 3000, &s);
	g_assert_cmpint(s.end, ==, STORE_JOB_FAILED);
	g_assert_cmpstr(s.error, ==, "Disk data was deleted while it was synchronised.");
	herd_job_step_clear(&s);
}

static void test_lost_and_orphaned(void)
{
	g_autoptr(test_store) t = test_store_new();
	store_object *job = new_job(t);
	const store_job *j = store_job_of(job);
	g_autoptr(json_t) up = json_pack("{s:i}", "nodeid", 1);
	g_autoptr(json_t) down = json_pack("{s:i,s:{s:s,s:i}}", "nodeid", 1, "down", "how", "fenced", "time_ms", 5);
	g_autoptr(store_object) n_up = store_object_new(STORE_KIND_NODE, "22222222-2222-4222-8222-222222222222",
							"n1", 1, 0, 0, up);
	g_autoptr(store_object) n_down = store_object_new(STORE_KIND_NODE, "22222222-2222-4222-8222-222222222222",
							  "n1", 2, 0, 0, down);
	g_assert_null(herd_job_lost(j, n_up, true));
	g_autofree char *left = herd_job_lost(j, n_up, false);
	g_assert_nonnull(strstr(left, "Node n1, which ran the job, left the cluster"));
	g_autofree char *fenced = herd_job_lost(j, n_down, true);
	g_assert_nonnull(strstr(fenced, "went down"));
	g_autofree char *removed = herd_job_lost(j, NULL, false);
	g_assert_nonnull(strstr(removed, "no longer a node"));
	/* Not yet adopted, or adopted by this run: its own. */
	g_assert_null(herd_job_orphaned(j, "boot-b"));
	char uuid[37];
	g_strlcpy(uuid, job->uuid, sizeof(uuid));
	apply_new_ok(t, store_job_cmd_adopt(job, "boot-a", 1500));
	j = store_job_of(store_state_lookup(t->st, STORE_KIND_JOB, uuid));
	g_assert_null(herd_job_orphaned(j, "boot-a"));
	g_autofree char *restarted = herd_job_orphaned(j, "boot-b");
	g_assert_nonnull(strstr(restarted, "herd on node n1 restarted"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/job/create", test_create);
	g_test_add_func("/job/validate", test_validate);
	g_test_add_func("/job/log_bounded", test_log_bounded);
	g_test_add_func("/job/throttle", test_throttle);
	g_test_add_func("/job/finish", test_finish);
	g_test_add_func("/job/prune", test_prune);
	g_test_add_func("/job/migrate_step", test_migrate_step);
	g_test_add_func("/job/evacuate_step", test_evacuate_step);
	g_test_add_func("/job/sync_step", test_sync_step);
	g_test_add_func("/job/lost_and_orphaned", test_lost_and_orphaned);
	return g_test_run();
}
