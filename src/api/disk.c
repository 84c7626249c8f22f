/*
 * Disks as a resource: GET/POST /api/v1/disks, GET/DELETE
 * /api/v1/disks/{disk}, POST /api/v1/disks/{disk}/resize.
 *
 * The node that serves the request does the file work (api/storage_files.h),
 * so it must reach the storage.  Create makes the file first, then commits
 * the disk (the file goes again if the commit is refused); delete commits
 * first, then removes the file (a file that stays is reported: the disk is
 * gone either way); resize grows the file, then commits the new size.  A
 * disk is on a dir storage (an image file) or on an iSCSI one (a LUN of
 * its target): the switches on the storage's type below are where LUNs go.
 */
#define G_LOG_DOMAIN "api"
#include "api/disk.h"

#include "api/disk_esan.h"
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
#include "virt/iscsi.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The work on the storage, on a job's thread                          */

typedef storage_file_work file_work;
#define file_work_new storage_file_work_new
#define file_work_free storage_file_work_free

static json_t *create_work(api_file_job *job, gpointer data, GError **error)
{
	file_work *w = data;
	if (!storage_reach_for_file(w, error))
		return NULL;
	/* O_EXCL: a file already there (another cluster's, an operator's) is
	 * refused, never overwritten, even if it came a moment ago. */
	int fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		g_set_error(error, HERD_ERROR, errno == EEXIST ? HERD_ERR_CONFLICT : HERD_ERR_IO,
			    errno == EEXIST ? "A file is at %s already; herd does not overwrite it%s."
					    : "Cannot create %s: %s.",
			    w->path, errno == EEXIST ? "" : g_strerror(errno));
		return NULL;
	}
	close(fd);
	g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, w->size);
	const char *argv[] = { "create", "-q", "-f", store_disk_format_name(w->format), w->path, size, NULL };
	if (!storage_qemu_img(argv, NULL, error) || api_file_job_abandoned(job)) {
		/* Not made, or made too late: nobody will commit it. */
		unlink(w->path);
		return NULL;
	}
	return json_pack("{s:I}", "used", (json_int_t)storage_file_used(w->path));
}

/* The file was made, but the wait ran out: nobody commits it. */
static void create_undo(json_t *result, gpointer data)
{
	unlink(((file_work *)data)->path);
}

static json_t *resize_work(api_file_job *job, gpointer data, GError **error)
{
	file_work *w = data;
	if (!storage_dir_reach(w->storage, w->cluster_uuid, w->node, error))
		return NULL;
	g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, w->size);
	const char *argv[] = { "resize", "-q", "-f", store_disk_format_name(w->format), w->path, size, NULL };
	if (!storage_qemu_img(argv, NULL, error))
		return NULL;
	return json_object();
}

/* An iSCSI LUN as QEMU's initiator sees it from this node: its size. */
static json_t *lun_work(api_file_job *job, gpointer data, GError **error)
{
	file_work *w = data;
	const char *argv[] = { "info", "--output=json", w->path, NULL };
	g_autofree char *out = NULL;
	if (!storage_qemu_img(argv, &out, error))
		return NULL;
	g_autoptr(json_t) info = json_loads(out, 0, NULL);
	json_int_t size = json_integer_value(json_object_get(info, "virtual-size"));
	if (size <= 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "%s has no size: not a disk.", w->path);
		return NULL;
	}
	return json_pack("{s:I}", "size", size);
}

/* Each path's used bytes, null where there is none or stat fails. */
static json_t *used_work(api_file_job *job, gpointer data, GError **error)
{
	file_work *w = data;
	json_t *used = json_array();
	for (guint i = 0; i < w->paths->len; i++) {
		const char *p = w->paths->pdata[i];
		int64_t u = p ? storage_file_used(p) : -1;
		json_array_append_new(used, u >= 0 ? json_integer(u) : json_null());
	}
	return used;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

json_t *api_disk_json(api_ctx *a, store_object *o, json_t *used)
{
	store_state *st = api_state(a);
	const store_disk *d = store_disk_of(o);
	store_object *storage = d->storage ? store_state_get(st, STORE_KIND_STORAGE, d->storage) : NULL;
	store_object *vm = store_refs_user(st, o);
	g_autofree char *path = store_file_path(st, d->storage, d->file);
	json_t *j = json_pack("{s:s,s:s,s:s?,s:s?,s:s,s:I,s:O}", "name", o->name, "uuid", o->uuid,
			      "storage", storage ? storage->name : NULL, "storage_uuid", d->storage,
			      "format", store_disk_format_name(d->format), "size", (json_int_t)d->size,
			      "used", used ? used : json_null());
	if (d->file)
		json_object_set_new(j, "file", json_string(d->file));
	if (path)
		json_object_set_new(j, "path", json_string(path));
	if (d->lun >= 0)
		json_object_set_new(j, "lun", json_integer(d->lun));
	json_object_set_new(j, "vm", vm ? json_string(vm->name) : json_null());
	if (d->esan)
		api_disk_esan_json(a, o, j);
	return j;
}

typedef struct {
	http_request *req;
	api_ctx *a;
	GPtrArray *disks;           /* store_object*, referenced */
	bool one;                   /* GET /disks/{disk}: an object, not a list */
} read_ctx;

static void on_used(json_t *used, const GError *error, gpointer user)
{
	read_ctx *c = user;
	json_t *list = json_array();
	if (error)
		log_warn("disk sizes: %s", error->message);
	for (guint i = 0; i < c->disks->len; i++)
		json_array_append_new(list, api_disk_json(c->a, c->disks->pdata[i], json_array_get(used, i)));
	http_respond_json(c->req, 200, c->one ? json_incref(json_array_get(list, 0)) : json_incref(list));
	json_decref(list);
	g_ptr_array_free(c->disks, TRUE);
	g_free(c);
}

/* Answer @req with @disks and the space each uses, stat'ed off the loop. */
static void respond_disks(http_request *req, api_ctx *a, GPtrArray *disks, bool one)
{
	read_ctx *c = g_new0(read_ctx, 1);
	c->req = req;
	c->a = a;
	c->one = one;
	c->disks = g_ptr_array_new_with_free_func((GDestroyNotify)store_object_unref);
	file_work *w = file_work_new(a, NULL, NULL);
	w->paths = g_ptr_array_new_with_free_func(g_free);
	/* Only on storages this node's checker reaches: a file on a hung
	 * mount would keep a thread for every list (daemon/reach_check.h). */
	g_autoptr(GHashTable) reached = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = 0; i < disks->len; i++) {
		store_object *o = disks->pdata[i];
		const char *storage = store_disk_of(o)->storage;
		g_ptr_array_add(c->disks, store_object_ref(o));
		if (!storage) { /* eSAN: its replicas are herd-san's */
			g_ptr_array_add(w->paths, NULL);
			continue;
		}
		if (!g_hash_table_contains(reached, storage)) {
			g_autoptr(json_t) r = herd_ha_reach(a->ha, storage);
			bool ok = json_is_true(json_object_get(json_object_get(r, a->node->name), "ok"));
			g_hash_table_insert(reached, (gpointer)storage, GINT_TO_POINTER(ok));
		}
		g_ptr_array_add(w->paths, GPOINTER_TO_INT(g_hash_table_lookup(reached, storage)) ?
						  store_file_path(api_state(a), storage, store_disk_of(o)->file) :
						  NULL);
	}
	http_request_suspend(req);
	api_file_job_run(used_work, w, file_work_free, API_FILE_LOOK_MS, a->node->name,
			 "Reading the disks' used space", on_used, c);
}

void api_disks_list(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	g_autoptr(GPtrArray) disks = store_state_list(api_state(a), STORE_KIND_DISK);
	respond_disks(req, a, disks, false);
}

void api_disk_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_DISK, "disk");
	if (!o)
		return;
	g_autoptr(GPtrArray) one = g_ptr_array_new();
	g_ptr_array_add(one, o);
	respond_disks(req, a, one, true);
}

/* ------------------------------------------------------------------ */
/* Changes                                                             */

typedef struct change_ctx {
	http_request *req;
	api_ctx *a;
	json_t *cmd;
	char *name;
	char *path;
	store_object *storage;
	uint64_t size;
	char *live_vm;              /* resize: grown live in this VM, or NULL */
	storage_file_work *work;    /* the file work, until it is begun */
	api_job_work *job;          /* the job (store/job.h), NULL for a LUN */
	char *done_text;            /* the job's last line if it goes well */
	/* the answer, once the work has ended */
	unsigned status;
	json_t *result;
	GError *error;
	bool commit_failed;         /* the file was made, the disk not committed */
	json_t *job_json;           /* the job as it ended */
	void (*begin)(struct change_ctx *c); /* the work, once its job is committed */
	char vm_uuid[STORE_UUID_LEN + 1]; /* resize: of live_vm */
} change_ctx;

static change_ctx *change_new(http_request *req, api_ctx *a, const char *name, const char *path,
			      store_object *storage)
{
	change_ctx *c = g_new0(change_ctx, 1);
	c->req = req;
	c->a = a;
	c->name = g_strdup(name);
	c->path = g_strdup(path);
	c->storage = store_object_ref(storage);
	return c;
}

static void change_free(change_ctx *c)
{
	json_decref(c->cmd);
	if (c->work)
		file_work_free(c->work);
	g_free(c->done_text);
	json_decref(c->result);
	g_clear_error(&c->error);
	json_decref(c->job_json);
	g_free(c->name);
	g_free(c->path);
	store_object_unref(c->storage);
	g_free(c->live_vm);
	g_free(c);
}

/* Is @disk an image file herd makes and grows (a dir storage's)?  Else
 * (a LUN, made and grown on its iSCSI target) answer @req and say no. */
static bool herd_grows(http_request *req, const store_object *disk, store_object *storage)
{
	if (store_storage_of(storage)->type == STORE_STORAGE_DIR)
		return true;
	http_respond_errorf(req, HERD_ERR_INVALID,
			    "Disk %s is LUN %d of iSCSI storage %s: grow it on the target; herd does not change LUNs.",
			    disk->name, store_disk_of(disk)->lun, storage->name);
	return false;
}

/* Answer a committed change with the disk as it is now. */
static void respond_disk(change_ctx *c, unsigned status, json_t *result)
{
	store_object *o = store_state_get_by_name(api_state(c->a), STORE_KIND_DISK, c->name);
	json_t *j = o ? api_disk_json(c->a, o, NULL) : json_incref(result);
	if (c->live_vm)
		json_object_set_new(j, "grown_live_in", json_string(c->live_vm));
	if (c->job_json)
		json_object_set(j, "job", c->job_json);
	http_respond_json(c->req, status, j);
}

/* Answer the request as its work ended (change_end()). */
static void change_answer(change_ctx *c)
{
	if (c->error && c->commit_failed)
		api_file_commit_failed(c->req, c->a, c->error, STORE_KIND_DISK, c->name, c->storage, c->path);
	else if (c->error)
		http_respond_error(c->req, c->error);
	else
		respond_disk(c, c->status, c->result);
	change_free(c);
}

static void on_job_ended(json_t *job, gpointer user)
{
	change_ctx *c = user;
	c->job = NULL;
	c->job_json = job ? json_incref(job) : NULL;
	change_answer(c);
}

/*
 * The work has ended: with @status and @result, or @error (taken;
 * @commit_failed: the file was made, the disk not committed).  Its job
 * records how, then the request is answered (with the job, as it ended).
 */
static void change_end(change_ctx *c, unsigned status, json_t *result, GError *error, bool commit_failed)
{
	c->status = status;
	c->result = result ? json_incref(result) : NULL;
	c->error = error;
	c->commit_failed = commit_failed;
	if (!c->job) {
		change_answer(c);
		return;
	}
	api_job_work_end(c->job, error ? STORE_JOB_FAILED : STORE_JOB_DONE, error ? error->message : c->done_text,
			 on_job_ended, c);
}

static void on_job_started(api_job_work *w, const GError *error, gpointer user)
{
	change_ctx *c = user;
	if (error) {
		/* No job, no work: nothing changed. */
		http_respond_error(c->req, error);
		change_free(c);
		return;
	}
	c->job = w;
	c->begin(c);
}

/* Begin @c's work (c->begin) as a job of @kind, committed first, whose
 * first log line says who asked for @what. */
static void change_start_job(change_ctx *c, const char *kind, const char *uuid, const char *what)
{
	const char *user = http_request_user(c->req) ? http_request_user(c->req) : "root";
	g_autofree char *line = g_strdup_printf("User %s asked on node %s to %s.", user, c->a->node->name, what);
	http_request_suspend(c->req);
	api_job_work_start(c->a, c->req, kind, c->name, uuid, line, NULL, NULL, on_job_started, c);
}

static void on_create_committed(json_t *result, const GError *error, gpointer user)
{
	change_ctx *c = user;
	change_end(c, 201, result, error ? g_error_copy(error) : NULL, error != NULL);
}

static void on_created(json_t *result, const GError *error, gpointer user)
{
	change_ctx *c = user;
	GError *err = NULL;
	if (error) {
		change_end(c, 0, NULL, g_error_copy(error), false);
	} else if (!herd_cluster_submit(c->a->cluster, c->cmd, http_request_user(c->req),
					on_create_committed, c, &err)) {
		storage_remove_orphan(c->a, c->storage, c->path);
		change_end(c, 0, NULL, err, false);
	}
}

static void begin_create(change_ctx *c)
{
	storage_job_after_reach(create_work, create_undo, g_steal_pointer(&c->work), API_FILE_QEMU_IMG_MS,
				"Creating the disk's file", on_created, c);
}

/* A size field: "20G" or a number of bytes. */
static bool size_field(json_t *body, const char **text, char **owned, GError **error)
{
	json_t *v = json_object_get(body, "size");
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*owned = g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*text = *owned;
		return true;
	}
	if (json_is_string(v)) {
		*text = json_string_value(v);
		return true;
	}
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
		    "Field 'size' must be a size such as \"20G\" or a number of bytes.");
	return false;
}

static void on_lun_committed(json_t *result, const GError *error, gpointer user)
{
	change_ctx *c = user;
	if (error)
		http_respond_error(c->req, error);
	else
		respond_disk(c, 201, result);
	change_free(c);
}

static void on_lun_looked(json_t *result, const GError *error, gpointer user)
{
	change_ctx *c = user;
	g_autoptr(GError) err = NULL;
	json_int_t size = json_integer_value(json_object_get(result, "size"));
	if (error) {
		http_respond_error(c->req, error);
	} else {
		/* The command as made before, with the size the target gave. */
		json_object_set_new(json_object_get(c->cmd, "data"), "size", json_integer(size));
		if (herd_cluster_submit(c->a->cluster, c->cmd, http_request_user(c->req),
					on_lun_committed, c, &err))
			return;
		http_respond_error(c->req, err);
	}
	change_free(c);
}

/* A LUN of an iSCSI storage, registered as a disk: its size is what the
 * target says, as this node's QEMU initiator sees it. */
static void register_lun(http_request *req, api_ctx *a, json_t *body, const char *name,
			 store_object *storage)
{
	json_t *lun = json_object_get(body, "lun");
	if (json_object_get(body, "size") || json_object_get(body, "format")) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Storage %s is iSCSI: a disk there is a LUN of its target, with the size the target gives "
				    "and no format: give 'lun', not 'size' or 'format'.", storage->name);
		return;
	}
	if (!json_is_integer(lun) || json_integer_value(lun) < 0 ||
	    json_integer_value(lun) > STORE_DISK_LUN_MAX) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Storage %s is iSCSI: give the disk's LUN (field 'lun', 0 to %d).", storage->name,
				    STORE_DISK_LUN_MAX);
		return;
	}
	const store_storage *s = store_storage_of(storage);
	g_autofree char *url = herd_iscsi_url(s->portal, s->target, (unsigned)json_integer_value(lun));
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	change_ctx *c = change_new(req, a, name, url, storage);
	c->cmd = store_disk_cmd_create(uuid, name, storage, STORE_DISK_RAW, 1, NULL,
				       (int)json_integer_value(lun));
	http_request_suspend(req);
	api_file_job_run(lun_work, file_work_new(a, storage, url), file_work_free, API_FILE_QEMU_IMG_MS,
			 a->node->name, "Asking the iSCSI target about the LUN", on_lun_looked, c);
}

void api_disk_create(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "storage", "size", "format", "lun", "esan", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *storage_ref = NULL;
	if (!body || !store_name_validate(STORE_KIND_DISK, name, &err) ||
	    !api_get_string(body, "storage", &storage_ref, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (json_object_get(body, "esan")) {
		if (store_state_get_by_name(api_state(a), STORE_KIND_DISK, name))
			http_respond_errorf(req, HERD_ERR_CONFLICT, "Disk %s exists already.", name);
		else
			api_disk_esan_create(req, a, body, name);
		return;
	}
	if (!storage_ref) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "A disk needs a storage (field 'storage'), or two nodes for an eSAN disk (field 'esan').");
		return;
	}
	store_object *storage = api_lookup(a, STORE_KIND_STORAGE, storage_ref, &err);
	if (!storage) {
		http_respond_error(req, err);
		return;
	}
	if (store_state_get_by_name(api_state(a), STORE_KIND_DISK, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Disk %s exists already.", name);
		return;
	}
	if (store_storage_of(storage)->type == STORE_STORAGE_ISCSI) {
		register_lun(req, a, body, name, storage);
		return;
	}
	if (json_object_get(body, "lun")) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Storage %s is a directory: its disks are image files, not LUNs (no field 'lun').",
				    storage->name);
		return;
	}
	const char *format_name = "qcow2", *size_text = NULL;
	g_autofree char *size_owned = NULL;
	store_disk_format format;
	uint64_t size = 0;
	if (!api_get_string(body, "format", &format_name, &err) ||
	    !size_field(body, &size_text, &size_owned, &err) ||
	    !store_disk_size_parse(size_text, &size, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!store_disk_format_parse(format_name, &format)) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Unknown disk format '%s' (known: qcow2, raw).",
				    format_name);
		return;
	}
	g_autofree char *file = store_disk_file_for(name, format);
	g_autofree char *path = store_file_path(api_state(a), storage->uuid, file);
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	change_ctx *c = change_new(req, a, name, path, storage);
	c->cmd = store_disk_cmd_create(uuid, name, storage, format, size, file, -1);
	c->work = file_work_new(a, storage, path);
	c->work->format = format;
	c->work->size = size;
	c->begin = begin_create;
	g_autofree char *size_text_out = herd_size_format(size);
	c->done_text = g_strdup_printf("Disk %s made: %s, %s, on storage %s.", name, size_text_out,
				       format_name, storage->name);
	g_autofree char *what = g_strdup_printf("create disk %s (%s, %s) on storage %s", name, size_text_out,
						format_name, storage->name);
	change_start_job(c, "disk-create", uuid, what);
}

static void on_resize_committed(json_t *result, const GError *error, gpointer user)
{
	change_ctx *c = user;
	GError *err = NULL;
	if (error) {
		g_autofree char *size = herd_size_format(c->size);
		g_set_error(&err, HERD_ERROR, error->domain == HERD_ERROR ? (herd_error_code)error->code : HERD_ERR_INTERNAL,
			    "%s The file of disk %s was grown to %s already: 'herd disk resize %s --size %" G_GUINT64_FORMAT "' records it.",
			    error->message, c->name, size, c->name, c->size);
	}
	change_end(c, 200, result, err, false);
}

static void on_resized(json_t *result, const GError *error, gpointer user)
{
	change_ctx *c = user;
	GError *err = NULL;
	/* The disk as it is now: it may have changed while qemu-img ran. */
	store_object *o = store_state_get_by_name(api_state(c->a), STORE_KIND_DISK, c->name);
	if (error) {
		change_end(c, 0, NULL, g_error_copy(error), false);
	} else if (!o) {
		g_set_error(&err, HERD_ERROR, HERD_ERR_CONFLICT, "Disk %s was deleted meanwhile.", c->name);
		change_end(c, 0, NULL, err, false);
	} else if (store_disk_of(o)->size >= c->size) {
		/* Another resize grew it as far or further meanwhile: its size
		 * stands (the store never records less than the file has). */
		change_end(c, 200, NULL, NULL, false);
	} else {
		json_decref(c->cmd);
		c->cmd = store_disk_cmd_resize(o, c->size);
		if (!herd_cluster_submit(c->a->cluster, c->cmd, http_request_user(c->req),
					 on_resize_committed, c, &err))
			change_end(c, 0, NULL, err, false);
	}
}

/* The VM's QEMU grew the disk (and with it the file): commit the size. */
static void on_grown_live(const GError *error, gpointer user)
{
	change_ctx *c = user;
	if (error) {
		GError *err = g_error_new(HERD_ERROR, error->domain == HERD_ERROR ? (herd_error_code)error->code : HERD_ERR_INTERNAL,
					  "Disk %s could not be grown live in VM %s: %s Nothing changed.", c->name,
					  c->live_vm, error->message);
		change_end(c, 0, NULL, err, false);
		return;
	}
	on_resized(NULL, NULL, c);
}

static void begin_grow_live(change_ctx *c)
{
	herd_ha_disk_grow(c->a->ha, c->vm_uuid, c->path, c->size, on_grown_live, c);
}

static void begin_resize(change_ctx *c)
{
	storage_job_after_reach(resize_work, NULL, g_steal_pointer(&c->work), API_FILE_QEMU_IMG_MS,
				"Growing the disk's file", on_resized, c);
}

void api_disk_resize(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "size", NULL };
	g_autoptr(GError) err = NULL;
	store_object *o = api_lookup(a, STORE_KIND_DISK, http_request_param(req, "disk"), &err);
	g_autoptr(json_t) body = o ? api_body(req, fields, &err) : NULL;
	const char *size_text = NULL;
	g_autofree char *size_owned = NULL;
	uint64_t size = 0;
	if (!body || !size_field(body, &size_text, &size_owned, &err) ||
	    !store_disk_grow_parse(o->name, size_text, store_disk_of(o)->size, &size, &err)) {
		http_respond_error(req, err);
		return;
	}
	const store_disk *d = store_disk_of(o);
	if (d->esan) {
		/* Each replica node's herd-san grows its replica when its herdd
		 * sees the size (daemon/san_link.h); the guest sees it at its
		 * next start at the latest. */
		api_disk_esan_resize(req, a, o, size);
		return;
	}
	store_object *storage = store_state_get(api_state(a), STORE_KIND_STORAGE, d->storage);
	if (!herd_grows(req, o, storage))
		return;
	store_object *vm = store_refs_user(api_state(a), o);
	g_autofree char *path = store_file_path(api_state(a), d->storage, d->file);
	change_ctx *c = change_new(req, a, o->name, path, storage);
	c->size = size;
	g_autofree char *from = herd_size_format(d->size), *to = herd_size_format(size);
	if (vm && herd_ha_vm_active(a->ha, vm->uuid, NULL)) {
		/* Under a running guest its QEMU grows the image (libvirt's
		 * block resize, on the VM's node), so that the guest sees it at
		 * once; then the size is committed, as after qemu-img. */
		c->live_vm = g_strdup(vm->name);
		g_strlcpy(c->vm_uuid, vm->uuid, sizeof(c->vm_uuid));
		c->begin = begin_grow_live;
		c->done_text = g_strdup_printf("Disk %s grown from %s to %s, live in VM %s.", o->name, from, to,
					       vm->name);
	} else {
		c->work = file_work_new(a, storage, path);
		c->work->format = d->format;
		c->work->size = size;
		c->begin = begin_resize;
		c->done_text = g_strdup_printf("Disk %s grown from %s to %s.", o->name, from, to);
	}
	g_autofree char *what = g_strdup_printf("grow disk %s from %s to %s%s%s", o->name, from, to,
						c->live_vm ? ", live in VM " : "", c->live_vm ? c->live_vm : "");
	change_start_job(c, "disk-resize", o->uuid, what);
}

void api_disk_delete(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_DISK, "disk");
	if (!o)
		return;
	const store_disk *d = store_disk_of(o);
	store_object *storage = d->esan ? NULL : store_state_get(api_state(a), STORE_KIND_STORAGE, d->storage);
	if (!storage) {
		/* eSAN: each replica node's herd-san removes its replica when
		 * its herdd sees the disk gone (daemon/san_link.h). */
		g_autoptr(json_t) cmd = store_disk_cmd_delete(o);
		api_commit(req, a, cmd, 200, NULL);
		return;
	}
	if (store_storage_of(storage)->type == STORE_STORAGE_ISCSI) {
		/* A LUN: herd forgets it; the target keeps it. */
		g_autoptr(json_t) cmd = store_disk_cmd_delete(o);
		api_commit(req, a, cmd, 200, NULL);
		return;
	}
	g_autofree char *path = store_file_path(api_state(a), d->storage, d->file);
	api_file_object_delete(req, a, o, storage, path);
}
