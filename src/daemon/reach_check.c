#define G_LOG_DOMAIN "reach"
#include "daemon/reach_check.h"

#include "common/json.h"
#include "common/log.h"
#include "ha/reach.h"
#include "virt/iscsi.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The host, as the checks see it (on a check's thread)                */

static int host_dir_exists(gpointer user, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int host_read_file(gpointer user, const char *path, size_t max, char **content)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	char *buf = g_malloc(max + 1);
	size_t n = 0;
	while (n < max) {
		ssize_t r = read(fd, buf + n, max - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			g_free(buf);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*content = buf;
	return 0;
}

static int host_fs_usage(gpointer user, const char *path, uint64_t *size, uint64_t *free_bytes)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return -errno;
	*size = (uint64_t)sv.f_blocks * sv.f_frsize;
	*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

static int host_bridge_exists(gpointer user, const char *name, bool *ovs)
{
	g_autofree char *dev = g_build_filename("/sys/class/net", name, NULL);
	g_autofree char *bridge = g_build_filename(dev, "bridge", NULL);
	g_autofree char *master = g_build_filename(dev, "master", NULL);
	if (access(dev, F_OK) < 0)
		return -errno;
	*ovs = false;
	if (access(bridge, F_OK) == 0)
		return 0;
	/* An Open vSwitch bridge's own port is enslaved to ovs-system. */
	g_autofree char *up = g_file_read_link(master, NULL);
	g_autofree char *up_name = up ? g_path_get_basename(up) : NULL;
	if (g_strcmp0(up_name, "ovs-system") == 0) {
		*ovs = true;
		return 0;
	}
	return -ENOTDIR;
}

/* iscsi-ls gives up on a portal that does not answer after a while of its
 * own; this bounds it whatever the network does. */
#define ISCSI_LS_TIMEOUT "8"

static int host_iscsi_list(gpointer user, const char *portal, char **output, char **error)
{
	g_auto(GStrv) ls = herd_iscsi_ls_argv(portal);
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();
	g_strv_builder_add_many(b, "timeout", "-k", "2", ISCSI_LS_TIMEOUT, NULL);
	g_strv_builder_addv(b, (const char **)ls);
	g_auto(GStrv) argv = g_strv_builder_end(b);
	int status = 0;
	g_autoptr(GError) err = NULL;
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDIN_FROM_DEV_NULL, NULL, NULL,
			  output, error, &status, &err))
		return g_error_matches(err, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT) ? -ENOENT : -EIO;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 124) {
		g_free(*error);
		*error = g_strdup("no answer within " ISCSI_LS_TIMEOUT " s");
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static const herd_reach_host real_host = {
	.dir_exists = host_dir_exists,
	.read_file = host_read_file,
	.fs_usage = host_fs_usage,
	.bridge_exists = host_bridge_exists,
	.iscsi_list = host_iscsi_list,
};

/* ------------------------------------------------------------------ */
/* Rounds of checks                                                    */

struct herd_reach_checker {
	gint refcount;             /* herdd's, and one per check running */
	bool dead;                 /* herdd let go of it */
	herd_cluster *cluster;
	herd_reach_report_fn report;
	gpointer user;
	GHashTable *targets;       /* uuid -> herd_reach_target* (the store's, last round) */
	GHashTable *results;       /* uuid -> herd_reach_result* */
	GHashTable *running;       /* uuid -> check* under way */
	char *cluster_uuid;
	guint period, soon, overdue;
};

typedef struct check {
	herd_reach_checker *rc;
	herd_reach_target *target; /* its own copy */
	char *cluster_uuid;
	int64_t started_ms;
	bool overdue;              /* reported "not answering" */
	herd_reach_result result;
} check;

static void checker_unref(herd_reach_checker *rc)
{
	if (!g_atomic_int_dec_and_test(&rc->refcount))
		return;
	g_hash_table_destroy(rc->targets);
	g_hash_table_destroy(rc->results);
	g_hash_table_destroy(rc->running);
	g_free(rc->cluster_uuid);
	g_free(rc);
}

static void result_free(gpointer r)
{
	herd_reach_result_clear(r);
	g_free(r);
}

static void check_free(check *c)
{
	herd_reach_target_free(c->target);
	g_free(c->cluster_uuid);
	herd_reach_result_clear(&c->result);
	g_free(c);
}

static void publish(herd_reach_checker *rc)
{
	json_t *reach, *usage;
	herd_reach_json(rc->results, &reach, &usage);
	rc->report(rc->user, reach, usage);
	json_decref(reach);
	json_decref(usage);
}

/* "storage data1" or "virtual switch lan", for the log. */
static char *target_text(const herd_reach_target *t)
{
	return g_strdup_printf("%s %s (%s)", t->network ? "virtual switch" : "storage", t->name, t->uuid);
}

static void set_result(herd_reach_checker *rc, const herd_reach_target *t, herd_reach_result *r)
{
	const char *uuid = t->uuid;
	herd_reach_result *was = g_hash_table_lookup(rc->results, uuid);
	if (!was || was->ok != r->ok || g_strcmp0(was->problem, r->problem) != 0) {
		g_autofree char *what = target_text(t);
		if (r->ok)
			log_info("%s: reachable", what);
		else
			log_warn("%s: not reachable: %s", what, r->problem);
	}
	herd_reach_result *copy = g_new0(herd_reach_result, 1);
	*copy = *r;
	copy->problem = g_strdup(r->problem);
	g_hash_table_replace(rc->results, g_strdup(uuid), copy);
}

/* Back on the main loop. */
static gboolean on_check_done(gpointer data)
{
	check *c = data;
	herd_reach_checker *rc = c->rc;
	if (!rc->dead) {
		if (g_hash_table_lookup(rc->running, c->target->uuid) == c)
			g_hash_table_remove(rc->running, c->target->uuid);
		if (c->overdue) {
			g_autofree char *what = target_text(c->target);
			log_info("%s: its check returned after %" G_GINT64_FORMAT " ms", what,
				 g_get_monotonic_time() / 1000 - c->started_ms);
		}
		/* Only for what the store still has, as it has it. */
		herd_reach_target *now = g_hash_table_lookup(rc->targets, c->target->uuid);
		if (now && herd_reach_target_same(now, c->target) &&
		    g_strcmp0(rc->cluster_uuid, c->cluster_uuid) == 0) {
			set_result(rc, c->target, &c->result);
			publish(rc);
		}
	}
	check_free(c);
	checker_unref(rc);
	return G_SOURCE_REMOVE;
}

static gpointer check_thread(gpointer data)
{
	check *c = data;
	herd_reach_check(c->target, c->cluster_uuid, &real_host, NULL, &c->result);
	g_idle_add(on_check_done, c);
	return NULL;
}

/* Checks that have not returned in time: "not answering". */
static gboolean on_overdue(gpointer data)
{
	herd_reach_checker *rc = data;
	rc->overdue = 0;
	int64_t now_ms = g_get_monotonic_time() / 1000;
	bool changed = false;
	GHashTableIter it;
	gpointer v;
	int64_t next_ms = 0;
	g_hash_table_iter_init(&it, rc->running);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		check *c = v;
		if (c->overdue)
			continue;
		if (now_ms - c->started_ms < REACH_ANSWER_MS) {
			int64_t left = REACH_ANSWER_MS - (now_ms - c->started_ms);
			next_ms = next_ms ? MIN(next_ms, left) : left;
			continue;
		}
		c->overdue = true;
		herd_reach_result r = { 0 };
		r.problem = g_strdup_printf("not answering: its check has not returned for %" G_GINT64_FORMAT
					    " s (a hung mount?)", (now_ms - c->started_ms) / 1000);
		set_result(rc, c->target, &r);
		herd_reach_result_clear(&r);
		changed = true;
	}
	if (changed)
		publish(rc);
	if (next_ms)
		rc->overdue = g_timeout_add((guint)next_ms + 100, on_overdue, rc);
	return G_SOURCE_REMOVE;
}

static void round_run(herd_reach_checker *rc)
{
	store_state *st = herd_cluster_state(rc->cluster);
	store_object *cluster = st ? store_state_cluster(st) : NULL;
	g_free(rc->cluster_uuid);
	rc->cluster_uuid = cluster ? g_strdup(cluster->uuid) : NULL;
	g_hash_table_remove_all(rc->targets);
	if (cluster) {
		g_autoptr(GPtrArray) targets = herd_reach_targets(st);
		for (guint i = 0; i < targets->len; i++) {
			herd_reach_target *t = herd_reach_target_copy(targets->pdata[i]);
			g_hash_table_insert(rc->targets, t->uuid, t);
		}
	}
	/* Forget what is gone. */
	GHashTableIter it;
	gpointer k;
	bool gone = false;
	g_hash_table_iter_init(&it, rc->results);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (!g_hash_table_contains(rc->targets, k)) {
			g_hash_table_iter_remove(&it);
			gone = true;
		}
	if (gone || g_hash_table_size(rc->targets) == 0)
		publish(rc);
	int64_t now_ms = g_get_monotonic_time() / 1000;
	gpointer v;
	g_hash_table_iter_init(&it, rc->targets);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		if (g_hash_table_contains(rc->running, k))
			continue; /* still at it (maybe hung): not a second one */
		check *c = g_new0(check, 1);
		c->rc = rc;
		c->target = herd_reach_target_copy(v);
		c->cluster_uuid = g_strdup(rc->cluster_uuid);
		c->started_ms = now_ms;
		g_autoptr(GError) error = NULL;
		g_atomic_int_inc(&rc->refcount);
		GThread *th = g_thread_try_new("herd-reach", check_thread, c, &error);
		if (!th) {
			g_autofree char *what = target_text(c->target);
			log_warn("%s: cannot start its check: %s", what, error->message);
			check_free(c);
			checker_unref(rc);
			continue;
		}
		g_thread_unref(th);
		g_hash_table_insert(rc->running, c->target->uuid, c);
	}
	if (g_hash_table_size(rc->running) && !rc->overdue)
		rc->overdue = g_timeout_add(REACH_ANSWER_MS + 100, on_overdue, rc);
}

static gboolean on_period(gpointer data)
{
	round_run(data);
	return G_SOURCE_CONTINUE;
}

static gboolean on_soon(gpointer data)
{
	herd_reach_checker *rc = data;
	rc->soon = 0;
	round_run(rc);
	return G_SOURCE_REMOVE;
}

static void round_soon(herd_reach_checker *rc)
{
	if (!rc->soon)
		rc->soon = g_idle_add(on_soon, rc);
}

static void on_store_change(gpointer user, GPtrArray *changes)
{
	herd_reach_checker *rc = user;
	bool relevant = changes == NULL;
	for (guint i = 0; changes && i < changes->len && !relevant; i++) {
		store_change *c = changes->pdata[i];
		relevant = c->kind == STORE_KIND_STORAGE || c->kind == STORE_KIND_NETWORK ||
			   (c->kind == STORE_KIND_CLUSTER && (!c->before || !c->after));
	}
	if (relevant)
		round_soon(rc);
}

herd_reach_checker *herd_reach_checker_new(herd_cluster *cluster, herd_reach_report_fn report,
					   gpointer user)
{
	herd_reach_checker *rc = g_new0(herd_reach_checker, 1);
	rc->refcount = 1;
	rc->cluster = cluster;
	rc->report = report;
	rc->user = user;
	rc->targets = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					    (GDestroyNotify)herd_reach_target_free);
	rc->results = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, result_free);
	rc->running = g_hash_table_new(g_str_hash, g_str_equal);
	herd_cluster_listen(cluster, on_store_change, rc);
	rc->period = g_timeout_add_seconds(REACH_PERIOD_S, on_period, rc);
	round_soon(rc);
	return rc;
}

void herd_reach_checker_free(herd_reach_checker *rc)
{
	if (!rc)
		return;
	herd_cluster_unlisten(rc->cluster, rc);
	g_clear_handle_id(&rc->period, g_source_remove);
	g_clear_handle_id(&rc->soon, g_source_remove);
	g_clear_handle_id(&rc->overdue, g_source_remove);
	rc->dead = true;
	/* The checks still running hold their references. */
	g_hash_table_remove_all(rc->running);
	checker_unref(rc);
}
