#define G_LOG_DOMAIN "api"
#include "api/storage_files.h"

#include "api/common.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/command.h"
#include "store/refs.h"
#include "store/storage.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct api_file_job {
	gint refs;                 /* the thread's and the main loop's */
	gint abandoned;            /* 0 while both wait; 1: the main loop stopped
				    * waiting (timeout); 2: the thread's outcome
				    * is taken (the timeout no longer counts) */
	api_file_work_fn work;
	api_file_undo_fn undo;
	gpointer data;
	GDestroyNotify free_data;
	GMainContext *context;
	GSource *timeout;          /* main loop's, until the first of answer and timeout */
	guint timeout_ms;
	char *node;
	char *what;
	api_file_done_fn done;
	gpointer user;
	/* the outcome, written by the thread before it posts it */
	json_t *result;
	GError *error;
};

static void job_unref(api_file_job *job)
{
	if (!g_atomic_int_dec_and_test(&job->refs))
		return;
	if (job->free_data)
		job->free_data(job->data);
	g_main_context_unref(job->context);
	json_decref(job->result);
	g_clear_error(&job->error);
	g_free(job->node);
	g_free(job->what);
	g_free(job);
}

bool api_file_job_abandoned(api_file_job *job)
{
	return g_atomic_int_get(&job->abandoned) != 0;
}

/* The main loop is done waiting (its reference goes). */
static void stop_waiting(api_file_job *job)
{
	g_source_destroy(job->timeout);
	g_source_unref(job->timeout);
	job->timeout = NULL;
	job_unref(job);
}

/* On the main loop: the thread is done; answer if it took its outcome
 * before the wait ran out (job_thread). */
static gboolean on_job_done(gpointer data)
{
	api_file_job *job = data;
	if (g_atomic_int_get(&job->abandoned) == 2) {
		job->done(job->result, job->error, job->user);
		stop_waiting(job);
	}
	job_unref(job); /* the thread's */
	return G_SOURCE_REMOVE;
}

static gboolean on_job_timeout(gpointer data)
{
	api_file_job *job = data;
	if (g_atomic_int_compare_and_exchange(&job->abandoned, 0, 1)) {
		g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
						    "%s did not finish within %u s on node %s (a hung mount?).",
						    job->what, job->timeout_ms / 1000, job->node);
		log_warn("%s", err->message);
		job->done(NULL, err, job->user);
		stop_waiting(job);
	}
	return G_SOURCE_REMOVE;
}

static gpointer job_thread(gpointer data)
{
	api_file_job *job = data;
	job->result = job->work(job, job->data, &job->error);
	if (!job->result && !job->error)
		job->error = g_error_new(HERD_ERROR, HERD_ERR_INTERNAL, "%s failed.", job->what);
	/* Taken now, or never: what it made goes again, here. */
	if (!g_atomic_int_compare_and_exchange(&job->abandoned, 0, 2) && job->undo && job->result)
		job->undo(job->result, job->data);
	GSource *s = g_idle_source_new();
	g_source_set_callback(s, on_job_done, job, NULL);
	g_source_attach(s, job->context);
	g_source_unref(s);
	return NULL;
}

void api_file_job_run(api_file_work_fn work, gpointer data, GDestroyNotify free_data,
		      guint timeout_ms, const char *node, const char *what, api_file_done_fn done,
		      gpointer user)
{
	api_file_job_run_undo(work, NULL, data, free_data, timeout_ms, node, what, done, user);
}

void api_file_job_run_undo(api_file_work_fn work, api_file_undo_fn undo, gpointer data,
			   GDestroyNotify free_data, guint timeout_ms, const char *node, const char *what,
			   api_file_done_fn done, gpointer user)
{
	api_file_job *job = g_new0(api_file_job, 1);
	job->refs = 2;
	job->work = work;
	job->undo = undo;
	job->data = data;
	job->free_data = free_data;
	job->context = g_main_context_ref_thread_default();
	job->node = g_strdup(node);
	job->what = g_strdup(what);
	job->done = done;
	job->user = user;
	job->timeout_ms = timeout_ms;
	job->timeout = g_timeout_source_new(timeout_ms);
	g_source_set_callback(job->timeout, on_job_timeout, job, NULL);
	g_source_attach(job->timeout, job->context);
	/* A thread of its own, not a pool's: a hung mount keeps only it. */
	g_thread_unref(g_thread_new("herd-files", job_thread, job));
}

bool storage_dir_reach(const store_object *storage, const char *cluster_uuid, const char *node,
		       GError **error)
{
	const char *path = store_storage_of(storage)->path;
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Storage %s is not reachable on node %s: %s is %s.", storage->name, node,
			    path, errno == ENOENT ? "not there" : "not a directory");
		return false;
	}
	g_autofree char *marker = g_build_filename(path, STORE_STORAGE_MARKER, NULL);
	g_autofree char *content = NULL;
	g_autoptr(GError) read_err = NULL;
	if (!g_file_get_contents(marker, &content, NULL, &read_err)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Storage %s is not reachable on node %s: %s has no marker file %s (not mounted there?).",
			    storage->name, node, path, STORE_STORAGE_MARKER);
		return false;
	}
	if (!store_storage_marker_matches(content, cluster_uuid, storage)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Storage %s is not reachable on node %s: the marker in %s names another storage or cluster.",
			    storage->name, node, path);
		return false;
	}
	return true;
}

bool storage_qemu_img(const char *const *argv, char **output, GError **error)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new();
	g_ptr_array_add(args, (gpointer) "qemu-img");
	for (const char *const *a = argv; *a; a++)
		g_ptr_array_add(args, (gpointer)*a);
	g_ptr_array_add(args, NULL);
	g_autofree char *out = NULL, *err = NULL;
	int status = 0;
	g_autoptr(GError) spawn_err = NULL;
	if (!g_spawn_sync(NULL, (char **)args->pdata, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
			  &status, &spawn_err)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot run qemu-img: %s.", spawn_err->message);
		return false;
	}
	if (!g_spawn_check_wait_status(status, NULL)) {
		g_strstrip(err);
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "qemu-img %s failed: %s", argv[0],
			    *err ? err : "(it printed nothing)");
		return false;
	}
	if (output)
		*output = g_steal_pointer(&out);
	return true;
}

int64_t storage_file_used(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	return (int64_t)st.st_blocks * 512;
}

/* ------------------------------------------------------------------ */
/* The work of disks and ISOs                                          */

storage_file_work *storage_file_work_new(api_ctx *a, store_object *storage, const char *path)
{
	storage_file_work *w = g_new0(storage_file_work, 1);
	store_object *cluster = store_state_cluster(api_state(a));
	w->storage = storage ? store_object_ref(storage) : NULL;
	w->cluster_uuid = g_strdup(cluster ? cluster->uuid : "");
	w->node = g_strdup(a->node->name);
	w->path = g_strdup(path);
	return w;
}

void storage_file_work_free(gpointer p)
{
	storage_file_work *w = p;
	store_object_unref(w->storage);
	g_free(w->cluster_uuid);
	g_free(w->node);
	g_free(w->path);
	if (w->paths)
		g_ptr_array_free(w->paths, TRUE);
	g_free(w);
}

bool storage_reach_for_file(const storage_file_work *w, GError **error)
{
	if (!storage_dir_reach(w->storage, w->cluster_uuid, w->node, error))
		return false;
	g_autofree char *dir = g_path_get_dirname(w->path);
	if (g_mkdir_with_parents(dir, 0755) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot make %s on node %s: %s.", dir, w->node,
			    g_strerror(errno));
		return false;
	}
	return true;
}

json_t *storage_reach_work(api_file_job *job, gpointer data, GError **error)
{
	storage_file_work *w = data;
	return storage_dir_reach(w->storage, w->cluster_uuid, w->node, error) ? json_object() : NULL;
}

json_t *storage_remove_work(api_file_job *job, gpointer data, GError **error)
{
	storage_file_work *w = data;
	if (unlink(w->path) < 0 && errno != ENOENT) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot remove %s on node %s: %s.", w->path,
			    w->node, g_strerror(errno));
		return NULL;
	}
	return json_object();
}

typedef struct {
	api_file_work_fn work;
	api_file_undo_fn undo;
	storage_file_work *w;
	guint timeout_ms;
	char *what;
	api_file_done_fn done;
	gpointer user;
} after_reach;

static void on_reached(json_t *result, const GError *error, gpointer p)
{
	after_reach *t = p;
	if (error) {
		t->done(NULL, error, t->user);
		storage_file_work_free(t->w);
	} else {
		api_file_job_run_undo(t->work, t->undo, t->w, storage_file_work_free, t->timeout_ms,
				      t->w->node, t->what, t->done, t->user);
	}
	g_free(t->what);
	g_free(t);
}

void storage_job_after_reach(api_file_work_fn work, api_file_undo_fn undo, storage_file_work *w,
			     guint timeout_ms, const char *what, api_file_done_fn done, gpointer user)
{
	after_reach *t = g_new0(after_reach, 1);
	t->work = work;
	t->undo = undo;
	t->w = w;
	t->timeout_ms = timeout_ms;
	t->what = g_strdup(what);
	t->done = done;
	t->user = user;
	/* The quick job's own copy: a hung mount may keep it. */
	storage_file_work *look = g_new0(storage_file_work, 1);
	look->storage = store_object_ref(w->storage);
	look->cluster_uuid = g_strdup(w->cluster_uuid);
	look->node = g_strdup(w->node);
	look->path = g_strdup(w->path);
	api_file_job_run(storage_reach_work, look, storage_file_work_free, API_FILE_LOOK_MS, w->node,
			 "Checking the storage", on_reached, t);
}

static void on_orphan_removed(json_t *result, const GError *error, gpointer user)
{
	if (error)
		log_warn("a file that no disk or ISO names stays: %s", error->message);
}

void storage_remove_orphan(api_ctx *a, store_object *storage, const char *path)
{
	api_file_job_run(storage_remove_work, storage_file_work_new(a, storage, path),
			 storage_file_work_free, API_FILE_LOOK_MS, a->node->name,
			 "Removing a file nothing names", on_orphan_removed, NULL);
}

void api_file_commit_failed(http_request *req, api_ctx *a, const GError *error, store_kind kind,
			    const char *name, store_object *storage, const char *path)
{
	/* Only apply's refusals say for sure that the object is not stored;
	 * after a lost quorum, a membership change or a failed write it may
	 * be, and then its file must stay. */
	bool refused = error->domain == HERD_ERROR &&
		       (error->code == HERD_ERR_INVALID || error->code == HERD_ERR_CONFLICT ||
			error->code == HERD_ERR_NOT_FOUND);
	if (!refused) {
		g_autofree char *command = g_ascii_strdown(store_kind_label(kind), -1);
		http_respond_errorf(req, error->domain == HERD_ERROR ? (herd_error_code)error->code : HERD_ERR_INTERNAL,
				    "%s The file %s stays: check with 'herd %s list' on another node, and remove it if %s %s is not there.",
				    error->message, path, command, store_kind_label(kind), name);
		return;
	}
	http_respond_error(req, error);
	storage_remove_orphan(a, storage, path);
}

typedef struct {
	http_request *req;
	api_ctx *a;
	store_kind kind;
	char *name;
	store_object *storage;
	char *path;
} delete_ctx;

static void delete_free(delete_ctx *c)
{
	g_free(c->name);
	store_object_unref(c->storage);
	g_free(c->path);
	g_free(c);
}

static void on_file_removed(json_t *result, const GError *error, gpointer user)
{
	delete_ctx *c = user;
	json_t *answer = json_pack("{s:s,s:b}", "deleted", c->name, "file_removed", !error);
	if (error)
		json_object_set_new(answer, "warning", json_string(error->message));
	http_respond_json(c->req, 200, answer);
	delete_free(c);
}

static void on_delete_committed(json_t *result, const GError *error, gpointer user)
{
	delete_ctx *c = user;
	if (error) {
		http_respond_error(c->req, error);
		delete_free(c);
		return;
	}
	api_file_job_run(storage_remove_work, storage_file_work_new(c->a, c->storage, c->path),
			 storage_file_work_free, API_FILE_LOOK_MS, c->a->node->name, "Removing the file",
			 on_file_removed, c);
}

/* This node reaches the storage: commit the deletion, then remove the file. */
static void on_delete_reached(json_t *result, const GError *error, gpointer user)
{
	delete_ctx *c = user;
	g_autoptr(GError) err = NULL;
	store_object *o = store_state_get_by_name(api_state(c->a), c->kind, c->name);
	if (error) {
		http_respond_errorf(c->req, error->domain == HERD_ERROR ? (herd_error_code)error->code : HERD_ERR_INTERNAL,
				    "%s Delete %s %s from a node that reaches its storage.", error->message,
				    store_kind_label(c->kind), c->name);
	} else if (!o) {
		g_autofree char *label = g_strdup(store_kind_label(c->kind));
		label[0] = g_ascii_toupper(label[0]);
		http_respond_errorf(c->req, HERD_ERR_NOT_FOUND, "%s %s was deleted meanwhile.", label, c->name);
	} else {
		g_autoptr(json_t) cmd = store_cmd_delete(o->kind, o->uuid, o->version);
		if (herd_cluster_submit(c->a->cluster, cmd, http_request_user(c->req), on_delete_committed, c,
					&err))
			return;
		http_respond_error(c->req, err);
	}
	delete_free(c);
}

void api_file_object_delete(http_request *req, api_ctx *a, store_object *o, store_object *storage,
			    const char *path)
{
	g_autoptr(GError) err = NULL;
	/* Refused now rather than after the reach check; apply checks again. */
	if (!store_refs_check_delete(api_state(a), o, &err)) {
		http_respond_error(req, err);
		return;
	}
	delete_ctx *c = g_new0(delete_ctx, 1);
	c->req = req;
	c->a = a;
	c->kind = o->kind;
	c->name = g_strdup(o->name);
	c->storage = store_object_ref(storage);
	c->path = g_strdup(path);
	http_request_suspend(req);
	api_file_job_run(storage_reach_work, storage_file_work_new(a, storage, path),
			 storage_file_work_free, API_FILE_LOOK_MS, a->node->name,
			 "Checking the storage", on_delete_reached, c);
}
