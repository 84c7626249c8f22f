/*
 * The node that adds a dir storage prepares its directory: it must be there
 * (a directory), and it gets this cluster's marker for the new storage —
 * written atomically (a temporary file renamed), unless the same marker is
 * there — and, for the cluster share, images/, isos/, templates/ and
 * snapshots/.  A marker of another cluster, or of another storage of this
 * one, is never overwritten: that directory is someone else's.  Only this
 * node writes; the others only check (daemon/reach_check.h), so an empty
 * mount point elsewhere shows as unreachable instead of being "repaired".
 *
 * The filesystem may hang (NFS): the work runs on a thread of its own, and
 * the request is answered "not answering" after STORAGE_DIR_ANSWER_MS.
 */
#define G_LOG_DOMAIN "api"
#include "api/storage_dir.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "ha/reach.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
	gint refcount;              /* the thread's and the main loop's */
	/* In: */
	char *node;
	char *path;
	char *cluster_uuid;
	char *marker;               /* the content to write */
	store_object *storage;      /* as it will be stored (held) */
	GHashTable *existing;       /* uuid -> name of this cluster's storages */
	bool share;
	/* Out: */
	GError *error;
	/* Main loop: */
	bool answered;
	guint timeout;
	api_storage_dir_done done;
	gpointer user;
} prep;

static void prep_unref(prep *p)
{
	if (!g_atomic_int_dec_and_test(&p->refcount))
		return;
	g_free(p->node);
	g_free(p->path);
	g_free(p->cluster_uuid);
	g_free(p->marker);
	store_object_unref(p->storage);
	g_hash_table_destroy(p->existing);
	g_clear_error(&p->error);
	g_free(p);
}

static bool refuse(prep *p, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static bool refuse(prep *p, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error_literal(&p->error, HERD_ERROR, code, msg);
	return false;
}

/* May the marker found in the directory be replaced by ours?  Yes when it
 * is ours already, or this cluster's for a storage the cluster no longer
 * has (removed, or an add whose commit failed). */
static bool marker_check(prep *p, const char *marker_path, const char *content, bool *write)
{
	*write = true;
	if (!content)
		return true;
	g_autoptr(json_t) j = json_loads(content, 0, NULL);
	const char *cluster = json_string_value(json_object_get(j, "cluster"));
	const char *storage = json_string_value(json_object_get(j, "storage"));
	if (!cluster || !storage)
		return refuse(p, HERD_ERR_CONFLICT,
			      "%s holds a marker file %s that herd cannot read; remove it if the directory is no storage any more.",
			      p->path, STORE_STORAGE_MARKER);
	if (strcmp(cluster, p->cluster_uuid) != 0)
		return refuse(p, HERD_ERR_CONFLICT,
			      "%s is a storage of another cluster (%s, by its marker file %s); herd does not take it over.",
			      p->path, cluster, marker_path);
	if (store_storage_marker_matches(content, p->cluster_uuid, p->storage)) {
		*write = false;
		return true;
	}
	const char *other = g_hash_table_lookup(p->existing, storage);
	if (other)
		return refuse(p, HERD_ERR_CONFLICT,
			      "%s is storage %s of this cluster already (by its marker file %s).", p->path,
			      other, marker_path);
	return true;
}

static void prepare(prep *p)
{
	struct stat st;
	if (stat(p->path, &st) < 0) {
		int e = errno;
		if (e == ENOENT)
			refuse(p, HERD_ERR_INVALID, "Directory %s does not exist on node %s.", p->path, p->node);
		else
			refuse(p, HERD_ERR_INVALID, "Directory %s cannot be looked at on node %s: %s.", p->path,
			       p->node, g_strerror(e));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		refuse(p, HERD_ERR_INVALID, "%s is not a directory on node %s.", p->path, p->node);
		return;
	}
	g_autofree char *marker_path = g_build_filename(p->path, STORE_STORAGE_MARKER, NULL);
	g_autofree char *content = NULL;
	gsize len = 0;
	g_autoptr(GError) err = NULL;
	if (!g_file_get_contents(marker_path, &content, &len, &err) &&
	    !g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
		refuse(p, HERD_ERR_INVALID, "The marker file %s cannot be read on node %s: %s.", marker_path,
		       p->node, err->message);
		return;
	}
	if (content && len > HERD_REACH_MARKER_MAX) {
		refuse(p, HERD_ERR_CONFLICT, "%s holds a marker file %s of %zu bytes, not herd's.", p->path,
		       STORE_STORAGE_MARKER, (size_t)len);
		return;
	}
	bool write;
	if (!marker_check(p, marker_path, content, &write))
		return;
	g_clear_error(&err);
	/* g_file_set_contents(): a temporary file in the same directory,
	 * synced, then renamed over the marker. */
	if (write && !g_file_set_contents(marker_path, p->marker, -1, &err)) {
		refuse(p, HERD_ERR_INVALID, "The marker file %s cannot be written on node %s: %s.",
		       marker_path, p->node, err->message);
		return;
	}
	for (const char *const *d = p->share ? store_share_dirs : NULL; d && *d; d++) {
		g_autofree char *sub = g_build_filename(p->path, *d, NULL);
		if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
			refuse(p, HERD_ERR_INVALID, "The cluster share's directory %s cannot be made on node %s: %s.",
			       sub, p->node, g_strerror(errno));
			return;
		}
	}
}

static void answer(prep *p)
{
	if (p->answered)
		return;
	p->answered = true;
	if (p->timeout) {
		g_clear_handle_id(&p->timeout, g_source_remove);
		prep_unref(p); /* the timeout's (the caller holds another) */
	}
	p->done(p->error, p->user);
}

static gboolean on_prepared(gpointer data)
{
	prep *p = data;
	answer(p);
	prep_unref(p);
	return G_SOURCE_REMOVE;
}

static gpointer prepare_thread(gpointer data)
{
	prep *p = data;
	prepare(p);
	g_idle_add(on_prepared, p);
	return NULL;
}

static gboolean on_timeout(gpointer data)
{
	prep *p = data;
	p->timeout = 0;
	if (!p->answered) {
		g_autoptr(GError) e = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
						  "Directory %s is not answering on node %s (no answer in %d s: a hung mount?); the storage was not added (a marker written there later is taken over by the next add).",
						  p->path, p->node, STORAGE_DIR_ANSWER_MS / 1000);
		p->answered = true;
		p->done(e, p->user);
	}
	prep_unref(p);
	return G_SOURCE_REMOVE;
}

void api_storage_dir_prepare(const char *node, store_state *st, const store_object *storage,
			     api_storage_dir_done done, gpointer user)
{
	const store_storage *s = store_storage_of(storage);
	store_object *cluster = store_state_cluster(st);
	prep *p = g_new0(prep, 1);
	p->refcount = 2;
	p->node = g_strdup(node);
	p->path = g_strdup(s->path);
	p->cluster_uuid = g_strdup(cluster ? cluster->uuid : "");
	p->marker = store_storage_marker(p->cluster_uuid, storage);
	p->storage = store_object_ref((store_object *)storage);
	p->share = s->cluster_share;
	p->existing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_autoptr(GPtrArray) all = store_state_list(st, STORE_KIND_STORAGE);
	for (guint i = 0; i < all->len; i++) {
		store_object *o = all->pdata[i];
		g_hash_table_insert(p->existing, g_strdup(o->uuid), g_strdup(o->name));
	}
	p->done = done;
	p->user = user;
	p->timeout = g_timeout_add(STORAGE_DIR_ANSWER_MS, on_timeout, p);
	g_autoptr(GError) err = NULL;
	GThread *th = g_thread_try_new("herd-storage", prepare_thread, p, &err);
	if (!th) {
		g_set_error(&p->error, HERD_ERROR, HERD_ERR_INTERNAL, "Cannot start a thread: %s.",
			    err->message);
		answer(p);
		prep_unref(p); /* the thread's */
		return;
	}
	g_thread_unref(th);
}
