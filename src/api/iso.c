/*
 * ISOs as a resource: PUT /api/v1/isos/{iso} with the image as its body
 * (streamed: HTTP_ROUTE_STREAM), GET /api/v1/isos, DELETE
 * /api/v1/isos/{iso}.
 *
 * An upload goes into a hidden temporary file in isos/ of the cluster
 * share (isos/.upload-XXXXXX), its SHA-256 computed on the way.  Only when
 * all of it came is it fsynced and linked to isos/NAME (never over a file
 * already there), then the ISO committed; a refused commit removes the
 * file again.  A cut-off or failed upload removes its temporary file: no
 * ISO, no file.  The file is in place before the ISO is committed, so a
 * committed ISO always has its file (the other order would leave an ISO
 * without one if the rename failed after the commit).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/job_work.h"
#include "api/routes.h"
#include "api/storage_files.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/size.h"
#include "store/disk.h"
#include "store/refs.h"
#include "store/storage.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

static json_t *iso_json(api_ctx *a, store_object *o)
{
	store_state *st = api_state(a);
	const store_iso *i = store_iso_of(o);
	store_object *vm = store_refs_user(st, o);
	g_autofree char *path = store_file_path(st, i->storage, i->file);
	return json_pack("{s:s,s:s,s:I,s:s,s:s,s:s?,s:s?}", "name", o->name, "uuid", o->uuid, "size",
			 (json_int_t)i->size, "sha256", i->sha256, "file", i->file, "path", path, "vm",
			 vm ? vm->name : NULL);
}

void api_isos_list(http_request *req, gpointer user_data)
{
	api_respond_list(req, user_data, STORE_KIND_ISO, iso_json);
}

void api_iso_delete(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_ISO, "iso");
	if (!o)
		return;
	const store_iso *i = store_iso_of(o);
	store_object *share = store_state_get(api_state(a), STORE_KIND_STORAGE, i->storage);
	g_autofree char *path = store_file_path(api_state(a), i->storage, i->file);
	api_file_object_delete(req, a, o, share, path);
}

/* ------------------------------------------------------------------ */
/* Upload                                                              */

/* An upload under way: the handlers' loop's fields, and the stream
 * thread's (fd, checksum, written) once the body comes. */
typedef struct {
	http_request *req;
	api_ctx *a;
	char *name;
	store_object *share;
	char *final_path;          /* isos/NAME on the share */
	guint64 length;            /* announced */
	/* the opening job's result, then the stream thread's */
	int fd;
	char *temp_path;
	GChecksum *sha256;
	guint64 written;
	char *digest;              /* once complete */
	api_job_work *job;         /* its job (store/job.h) */
	int cancelled;             /* atomic: an operator cancelled the job */
	/* the answer, once the upload has ended */
	GError *error;
	bool commit_failed;        /* the file is in place, the ISO not committed */
	json_t *result;
} upload;

static void upload_free(upload *u)
{
	if (u->fd >= 0)
		close(u->fd);
	g_free(u->name);
	store_object_unref(u->share);
	g_free(u->final_path);
	g_free(u->temp_path);
	if (u->sha256)
		g_checksum_free(u->sha256);
	g_free(u->digest);
	g_clear_error(&u->error);
	json_decref(u->result);
	g_free(u);
}

static void upload_answer(upload *u, json_t *job)
{
	if (u->error && u->commit_failed) {
		api_file_commit_failed(u->req, u->a, u->error, STORE_KIND_ISO, u->name, u->share, u->final_path);
	} else if (u->error) {
		http_respond_error(u->req, u->error);
	} else {
		store_object *o = store_state_get_by_name(api_state(u->a), STORE_KIND_ISO, u->name);
		json_t *j = o ? iso_json(u->a, o) : json_incref(u->result);
		if (job)
			json_object_set(j, "job", job);
		http_respond_json(u->req, 201, j);
	}
	upload_free(u);
}

static void on_job_ended(json_t *job, gpointer user)
{
	upload *u = user;
	u->job = NULL;
	upload_answer(u, job);
}

/* The upload has ended, with @result or @error (taken): its job records
 * how (cancelled if an operator asked and that stopped it), then the
 * request is answered. */
static void upload_end(upload *u, json_t *result, GError *error, bool commit_failed)
{
	u->result = result ? json_incref(result) : NULL;
	u->error = error;
	u->commit_failed = commit_failed;
	g_autofree char *size = herd_size_format(u->length);
	g_autofree char *done = u->digest ? g_strdup_printf("ISO %s uploaded: %s, SHA-256 %s.", u->name, size,
							    u->digest) : NULL;
	store_job_state end = !error ? STORE_JOB_DONE
			      : g_atomic_int_get(&u->cancelled) ? STORE_JOB_CANCELLED : STORE_JOB_FAILED;
	api_job_work_end(u->job, end, error ? error->message : done, on_job_ended, u);
}

/* An operator cancelled the upload's job: the stream stops at its next
 * piece, its temporary file goes. */
static void upload_cancel(const char *by, gpointer user)
{
	upload *u = user;
	log_info("upload of ISO %s: cancelled by user %s", u->name, by);
	g_atomic_int_set(&u->cancelled, 1);
}

/* The opening job: this node reaches the share; a temporary file in isos/. */
static json_t *open_work(api_file_job *job, gpointer data, GError **error)
{
	storage_file_work *w = data;
	if (!storage_reach_for_file(w, error))
		return NULL;
	g_autofree char *dir = g_path_get_dirname(w->path);
	if (g_file_test(w->path, G_FILE_TEST_EXISTS)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "A file is at %s already; herd does not overwrite it.", w->path);
		return NULL;
	}
	g_autofree char *temp = g_build_filename(dir, ".upload-XXXXXX", NULL);
	int fd = g_mkstemp_full(temp, O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot create a file in %s on node %s: %s.", dir,
			    w->node, g_strerror(errno));
		return NULL;
	}
	if (api_file_job_abandoned(job)) {
		close(fd);
		unlink(temp);
		return NULL;
	}
	return json_pack("{s:i,s:s}", "fd", fd, "temp", temp);
}

/* The temporary file was made and opened, but the wait ran out. */
static void open_undo(json_t *result, gpointer data)
{
	close((int)json_integer_value(json_object_get(result, "fd")));
	unlink(json_string_value(json_object_get(result, "temp")));
}

/* The stream's thread from here to upload_finish(). */
static bool upload_write(gpointer user, const void *data, size_t len, GError **error)
{
	upload *u = user;
	if (g_atomic_int_get(&u->cancelled)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The upload of ISO %s was cancelled (herd job cancel %s); nothing was kept.", u->name,
			    api_job_work_name(u->job));
		return false;
	}
	/* Never more than the Content-Length that was admitted. */
	if (len > u->length - u->written) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The upload sends more than the %" G_GUINT64_FORMAT " bytes it announced.", u->length);
		return false;
	}
	g_checksum_update(u->sha256, data, (gssize)len);
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(u->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot write %s: %s.", u->temp_path,
				    g_strerror(errno));
			return false;
		}
		p += n;
		len -= (size_t)n;
		u->written += (guint64)n;
	}
	api_job_work_progress(u->job, (int)(u->written * 100 / u->length));
	return true;
}

static bool upload_finish(gpointer user, bool complete, GError **error)
{
	upload *u = user;
	bool ok = complete;
	if (ok && u->written != u->length) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
			    " bytes came.", u->written, u->length);
		ok = false;
	}
	if (ok && fsync(u->fd) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot write %s to its disk: %s.", u->temp_path,
			    g_strerror(errno));
		ok = false;
	}
	if (close(u->fd) < 0 && ok) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot write %s: %s.", u->temp_path,
			    g_strerror(errno));
		ok = false;
	}
	u->fd = -1;
	/* link(), not rename(): it never replaces a file that came meanwhile. */
	if (ok && link(u->temp_path, u->final_path) < 0) {
		g_set_error(error, HERD_ERROR, errno == EEXIST ? HERD_ERR_CONFLICT : HERD_ERR_IO,
			    "Cannot put the upload at %s: %s.", u->final_path, g_strerror(errno));
		ok = false;
	}
	unlink(u->temp_path);
	if (ok)
		u->digest = g_strdup(g_checksum_get_string(u->sha256));
	return ok;
}

/* The handlers' loop again: committed, or the file goes. */
static void on_iso_committed(json_t *result, const GError *error, gpointer user)
{
	upload *u = user;
	upload_end(u, result, error ? g_error_copy(error) : NULL, error != NULL);
}

static void upload_done(http_request *req, gpointer user, const GError *error)
{
	upload *u = user;
	GError *err = NULL;
	if (error) {
		log_info("upload of ISO %s failed: %s", u->name, error->message);
		upload_end(u, NULL, g_error_copy(error), false);
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	g_autoptr(json_t) cmd = store_iso_cmd_create(uuid, u->name, u->share, u->length, u->digest);
	if (herd_cluster_submit(u->a->cluster, cmd, http_request_user(req), on_iso_committed, u, &err))
		return;
	storage_remove_orphan(u->a, u->share, u->final_path);
	upload_end(u, NULL, err, false);
}

static const http_body_sink upload_sink = { upload_write, upload_finish, upload_done };

/* The share is reached and the temporary file open: take the body. */
static void on_opened(json_t *result, const GError *error, gpointer user)
{
	upload *u = user;
	if (error) {
		upload_end(u, NULL, g_error_copy(error), false);
		return;
	}
	u->fd = (int)json_integer_value(json_object_get(result, "fd"));
	u->temp_path = g_strdup(json_string_value(json_object_get(result, "temp")));
	u->sha256 = g_checksum_new(G_CHECKSUM_SHA256);
	http_request_stream_body(u->req, &upload_sink, u);
}

/* Its job is committed: the share, and a temporary file there. */
static void on_job_started(api_job_work *w, const GError *error, gpointer user)
{
	upload *u = user;
	if (error) {
		/* No job, no upload: nothing changed. */
		http_respond_error(u->req, error);
		upload_free(u);
		return;
	}
	u->job = w;
	api_file_job_run_undo(open_work, open_undo, storage_file_work_new(u->a, u->share, u->final_path),
			      storage_file_work_free, API_FILE_LOOK_MS, u->a->node->name,
			      "Opening a file on the cluster share", on_opened, u);
}

void api_iso_upload(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	g_autoptr(GError) err = NULL;
	const char *name = http_request_param(req, "iso");
	guint64 length = http_request_content_length(req);
	if (!store_name_validate(STORE_KIND_ISO, name, &err) || !api_require_store(req, a)) {
		if (err)
			http_respond_error(req, err);
		return;
	}
	if (store_state_get_by_name(api_state(a), STORE_KIND_ISO, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "ISO %s exists already.", name);
		return;
	}
	store_object *share = store_storage_share(api_state(a));
	if (!share) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "There is no cluster share for ISOs: add one with 'herd storage add NAME --type dir --path PATH --cluster-share'.");
		return;
	}
	if (length == 0) {
		http_respond_errorf(req, HERD_ERR_INVALID, "The ISO %s is empty.", name);
		return;
	}
	if (length > STORE_ISO_SIZE_MAX) {
		g_autofree char *max = herd_size_format(STORE_ISO_SIZE_MAX);
		http_respond_errorf(req, HERD_ERR_TOO_LARGE,
				    "The ISO %s is %" G_GUINT64_FORMAT " bytes: an ISO has at most %s.", name, length, max);
		return;
	}
	upload *u = g_new0(upload, 1);
	u->req = req;
	u->a = a;
	u->fd = -1;
	u->name = g_strdup(name);
	u->share = store_object_ref(share);
	u->length = length;
	g_autofree char *file = store_iso_file_for(name);
	u->final_path = store_file_path(api_state(a), share->uuid, file);
	g_autofree char *size = herd_size_format(length);
	const char *user = api_request_owner(req);
	g_autofree char *line = g_strdup_printf("User %s began to upload ISO %s (%s) on node %s.", user, name,
						size, a->node->name);
	http_request_suspend(req);
	api_job_work_start(a, req, "iso-upload", name, NULL, line, upload_cancel, u, on_job_started, u);
}
