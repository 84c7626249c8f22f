/*
 * The file work this node does on a dir storage for the API: reach the
 * storage (its directory and marker), make, grow, stat and remove image
 * files.  A mount can hang (a dead NFS server): each piece of work runs on
 * a thread of its own and the main loop waits for it a bounded time; a
 * job that overruns is answered as timed out and finishes alone (a file it
 * made by then is removed again).
 */
#pragma once

#include "api/context.h"
#include "api/http.h"
#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct api_file_job api_file_job;

/* The work, on the job's thread: a result (or NULL with @error set). */
typedef json_t *(*api_file_work_fn)(api_file_job *job, gpointer data, GError **error);
/* Its outcome, on the main loop: @result, or @error (a timeout too). */
typedef void (*api_file_done_fn)(json_t *result, const GError *error, gpointer user);
/* Undo what @work made when nobody waits for its @result any more (the
 * wait ran out first): on the job's thread, so a hung mount blocks it, not
 * the main loop. */
typedef void (*api_file_undo_fn)(json_t *result, gpointer data);

/*
 * Run @work(@data) on a thread of its own and @done(@user) on the caller's
 * main context when it returns, or after @timeout_ms with a TIMEOUT error
 * whose sentence says @what did not finish on @node.  @free_data frees
 * @data once the thread is done with it.
 */
void api_file_job_run(api_file_work_fn work, gpointer data, GDestroyNotify free_data,
		      guint timeout_ms, const char *node, const char *what, api_file_done_fn done,
		      gpointer user);
/* The same, for work that makes something (a file, an open fd): @undo
 * takes it back if the wait ran out before its result was taken. */
void api_file_job_run_undo(api_file_work_fn work, api_file_undo_fn undo, gpointer data,
			   GDestroyNotify free_data, guint timeout_ms, const char *node, const char *what,
			   api_file_done_fn done, gpointer user);
/* Has the main loop stopped waiting for @job?  (Its thread asks before
 * it keeps a file it made.) */
bool api_file_job_abandoned(api_file_job *job);

/* How long the main loop waits for a quick look (stat, marker) and for
 * qemu-img. */
#define API_FILE_LOOK_MS 5000u
#define API_FILE_QEMU_IMG_MS 60000u

/* ---- work that runs on a job's thread ----------------------------------- */

/*
 * Does this node reach dir storage @storage of cluster @cluster_uuid: is its
 * directory there and does its marker name it?  False with an UNAVAILABLE
 * error naming @node and what is wrong.
 */
bool storage_dir_reach(const store_object *storage, const char *cluster_uuid, const char *node,
		       GError **error);
/* Run qemu-img with @argv (NULL-terminated, without "qemu-img"); false with
 * an IO error quoting what it printed. */
bool storage_qemu_img(const char *const *argv, char **output, GError **error);
/* Bytes the file at @path takes on its storage (st_blocks * 512), or -1. */
int64_t storage_file_used(const char *path);

/* ---- the work of disks and ISOs ------------------------------------------ */

/* What a job on a storage's file needs, its own copy (a hung mount may keep
 * it past the request). */
typedef struct storage_file_work {
	store_object *storage;      /* a reference, or NULL */
	char *cluster_uuid;
	char *node;                 /* this node, for messages */
	char *path;                 /* the file */
	int format;                 /* a disk's store_disk_format */
	uint64_t size;
	GPtrArray *paths;           /* files to stat (char*, NULL for none), or NULL */
} storage_file_work;

storage_file_work *storage_file_work_new(api_ctx *a, store_object *storage, const char *path);
void storage_file_work_free(gpointer w);

/* On a job's thread: storage_dir_reach() of w->storage, then make the
 * directory of w->path if it is not there. */
bool storage_reach_for_file(const storage_file_work *w, GError **error);

/* Jobs: storage_dir_reach() of w->storage; remove w->path (gone already
 * is fine). */
json_t *storage_reach_work(api_file_job *job, gpointer w, GError **error);
json_t *storage_remove_work(api_file_job *job, gpointer w, GError **error);
/*
 * Run @work(@w) (a job that may take long: qemu-img, up to @timeout_ms)
 * once a quick job has found that this node reaches w->storage (in
 * API_FILE_LOOK_MS: a hung mount is told in seconds, not after
 * @timeout_ms).  @undo (may be NULL) and @done as for
 * api_file_job_run_undo(); @w is taken.
 */
void storage_job_after_reach(api_file_work_fn work, api_file_undo_fn undo, storage_file_work *w,
			     guint timeout_ms, const char *what, api_file_done_fn done, gpointer user);

/* Remove a file that no committed object names (a failure is logged). */
void storage_remove_orphan(api_ctx *a, store_object *storage, const char *path);

/*
 * The commit of new @kind object @name, whose file @path on @storage was
 * made first, failed with @error: answer @req, and remove the file -- unless
 * this node's store failed under way: the others may have the object, so
 * the file stays and the answer says how to check.
 */
void api_file_commit_failed(http_request *req, api_ctx *a, const GError *error, store_kind kind,
			    const char *name, store_object *storage, const char *path);

/*
 * DELETE of a disk or ISO @o whose file is @path on dir storage @storage:
 * this node must reach the storage; then @o's deletion is committed (apply
 * refuses it while a VM uses @o), then the file removed.  Answers @req
 * {"deleted":NAME,"file_removed":bool,"warning"?: why it stays}.
 */
void api_file_object_delete(http_request *req, api_ctx *a, store_object *o, store_object *storage,
			    const char *path);
