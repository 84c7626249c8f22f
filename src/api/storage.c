/*
 * POST /api/v1/storage {"name","type":"dir","path","cluster_share"?}: add a
 * dir storage.  The smallest version, for disks and ISOs to have a storage
 * to go on: the serving node writes the storage's marker into its directory
 * (and, for the cluster share, makes its sub-directories), then the storage
 * is committed; if the commit is refused the marker goes again.  Listing,
 * iSCSI and the per-node reach checks come with the storage branch.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"
#include "api/storage_files.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/storage.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a marker job needs, its own (a hung mount may keep it). */
typedef struct {
	store_object *storage;     /* as it will be stored */
	char *marker;              /* its marker file's content */
	char *node;
} marker_data;

static void marker_data_free(gpointer p)
{
	marker_data *m = p;
	store_object_unref(m->storage);
	g_free(m->marker);
	g_free(m->node);
	g_free(m);
}

static marker_data *marker_data_copy(const marker_data *m)
{
	marker_data *c = g_new0(marker_data, 1);
	c->storage = store_object_ref(m->storage);
	c->marker = g_strdup(m->marker);
	c->node = g_strdup(m->node);
	return c;
}

typedef struct {
	http_request *req;
	api_ctx *a;
	json_t *cmd;
	marker_data m;
} add_ctx;

static void add_free(add_ctx *c)
{
	json_decref(c->cmd);
	store_object_unref(c->m.storage);
	g_free(c->m.marker);
	g_free(c->m.node);
	g_free(c);
}

static json_t *marker_work(api_file_job *job, gpointer data, GError **error)
{
	marker_data *c = data;
	const store_storage *s = store_storage_of(c->storage);
	struct stat st;
	if (stat(s->path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "%s is not a directory on node %s.", s->path,
			    c->node);
		return NULL;
	}
	g_autofree char *marker = g_build_filename(s->path, STORE_STORAGE_MARKER, NULL);
	if (g_file_test(marker, G_FILE_TEST_EXISTS)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "%s has a storage marker already (%s): it is a storage of this or another cluster.",
			    s->path, STORE_STORAGE_MARKER);
		return NULL;
	}
	for (unsigned i = 0; s->cluster_share && store_share_dirs[i]; i++) {
		g_autofree char *dir = g_build_filename(s->path, store_share_dirs[i], NULL);
		if (g_mkdir_with_parents(dir, 0755) < 0) {
			g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot make %s: %s.", dir, g_strerror(errno));
			return NULL;
		}
	}
	if (!g_file_set_contents(marker, c->marker, -1, error))
		return NULL;
	if (api_file_job_abandoned(job)) {
		unlink(marker);
		return NULL;
	}
	return json_object();
}

static json_t *unmark_work(api_file_job *job, gpointer data, GError **error)
{
	marker_data *c = data;
	g_autofree char *marker = g_build_filename(store_storage_of(c->storage)->path,
						   STORE_STORAGE_MARKER, NULL);
	unlink(marker);
	return json_object();
}

static void on_unmarked(json_t *result, const GError *error, gpointer user) {}

static void on_committed(json_t *result, const GError *error, gpointer user)
{
	add_ctx *c = user;
	if (error)
		http_respond_error(c->req, error);
	else
		http_respond_json(c->req, 201, json_pack("{s:s,s:s}", "name", c->m.storage->name, "uuid",
							 c->m.storage->uuid));
	if (error && !g_error_matches(error, HERD_ERROR, HERD_ERR_IO))
		api_file_job_run(unmark_work, marker_data_copy(&c->m), marker_data_free, API_FILE_LOOK_MS,
				 c->m.node, "Removing an uncommitted storage's marker", on_unmarked, NULL);
	add_free(c);
}

static void on_marked(json_t *result, const GError *error, gpointer user)
{
	add_ctx *c = user;
	g_autoptr(GError) err = NULL;
	if (error)
		http_respond_error(c->req, error);
	else if (herd_cluster_submit(c->a->cluster, c->cmd, http_request_user(c->req), on_committed, c, &err))
		return;
	else
		http_respond_error(c->req, err);
	add_free(c);
}

void api_storage_add(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "type", "path", "portal", "target", "cluster_share", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	g_autofree char *name = g_strdup(json_string_value(json_object_get(body, "name")));
	if (!body || !store_name_validate(STORE_KIND_STORAGE, name, &err) ||
	    !api_require_store(req, a))
		goto refused;
	json_object_del(body, "name");
	if (!store_storage_check(api_state(a), body, &err))
		goto refused;
	if (g_strcmp0(json_string_value(json_object_get(body, "type")), "dir") != 0) {
		http_respond_errorf(req, HERD_ERR_INVALID, "This version of herd adds dir storage only.");
		return;
	}
	if (store_state_get_by_name(api_state(a), STORE_KIND_STORAGE, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Storage %s exists already.", name);
		return;
	}
	store_object *cluster = store_state_cluster(api_state(a));
	if (!cluster) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "This node is not in a cluster.");
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	add_ctx *c = g_new0(add_ctx, 1);
	c->req = req;
	c->a = a;
	c->m.node = g_strdup(a->node->name);
	c->cmd = store_storage_cmd_create(uuid, name, body);
	c->m.storage = store_object_new(STORE_KIND_STORAGE, uuid, name, 1, 0, 0,
					json_object_get(c->cmd, "data"));
	c->m.marker = store_storage_marker(cluster->uuid, c->m.storage);
	http_request_suspend(req);
	api_file_job_run(marker_work, marker_data_copy(&c->m), marker_data_free, API_FILE_LOOK_MS,
			 a->node->name, "Writing the storage's marker", on_marked, c);
	return;
refused:
	if (err)
		http_respond_error(req, err);
}
