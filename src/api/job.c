/*
 * Jobs as a resource (herd job, requirement C26, docs/jobs.md): the long
 * operations of the store (store/job.h), newest first.  GET /api/v1/jobs
 * lists the running ones (?all=true: the finished ones too), GET
 * /api/v1/jobs/{job} shows one with its log, POST /api/v1/jobs/{job}/cancel
 * asks its node to cancel it.  Anyone who may read the cluster reads jobs;
 * only a job's owner or an admin cancels it (API_PERM_OWNER).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "store/job.h"

#include <string.h>

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *api_job_json(api_ctx *a, store_object *o, bool with_log)
{
	const store_job *j = store_job_of(o);
	json_t *out = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:o,s:b}", "name", o->name,
				"uuid", o->uuid, "kind", j->kind, "target", j->target, "owner", j->owner,
				"node", j->node, "state", store_job_state_name(j->state), "progress",
				j->progress, "created_ms", (json_int_t)o->created_ms, "updated_ms",
				(json_int_t)j->updated_ms, "finished_ms", api_ms_or_null(j->finished_ms),
				"cancellable", j->state == STORE_JOB_RUNNING && store_job_kind_cancellable(j->kind));
	json_object_set_new(out, "target_uuid", str_or_null(j->target_uuid));
	json_object_set_new(out, "to", str_or_null(j->to));
	json_object_set_new(out, "error", str_or_null(j->error));
	json_object_set_new(out, "cancel_by", str_or_null(j->cancel_by));
	size_t n = j->log ? json_array_size(j->log) : 0;
	json_t *last = n ? json_object_get(json_array_get(j->log, n - 1), "text") : NULL;
	json_object_set_new(out, "last", last ? json_incref(last) : json_null());
	if (with_log)
		json_object_set_new(out, "log", j->log ? json_deep_copy(j->log) : json_array());
	return out;
}

void api_jobs_list(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	bool finished_too;
	if (!api_query_bool(req, "all", &finished_too) || !api_require_store(req, a))
		return;
	g_autoptr(GPtrArray) jobs = store_job_list(api_state(a));
	json_t *out = json_array();
	for (guint i = 0; i < jobs->len; i++)
		if (finished_too || store_job_of(jobs->pdata[i])->state == STORE_JOB_RUNNING)
			json_array_append_new(out, api_job_json(a, jobs->pdata[i], false));
	http_respond_json(req, 200, out);
}

void api_job_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_JOB, "job");
	if (o)
		http_respond_json(req, 200, api_job_json(a, o, true));
}

/* A cancel under way: made again on the job's new version when the job's
 * node wrote its progress first (at most once a second), a few times. */
#define CANCEL_TRIES 5

typedef struct {
	http_request *req;
	api_ctx *a;
	char uuid[STORE_UUID_LEN + 1];
	char *user;
	uint64_t version;           /* the job's, that the change was made for */
	unsigned tries;
} cancel_ctx;

static void cancel_free(cancel_ctx *c)
{
	g_free(c->user);
	g_free(c);
}

/* May job @o be cancelled?  Else answer @req with why not. */
static bool cancel_allowed(http_request *req, const store_object *o)
{
	const store_job *j = store_job_of(o);
	if (j->state != STORE_JOB_RUNNING) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Job %s (%s of %s) has ended already: it is %s.",
				    o->name, j->kind, j->target, store_job_state_name(j->state));
		return false;
	}
	if (strcmp(j->kind, "esan-sync") == 0) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "Job %s (the sync of eSAN disk %s to node %s) cannot be cancelled: disk %s is not "
				    "redundant until its replicas are identical again. Its speed is the cluster's "
				    "setting esan_resync_mibs (herd cluster set esan_resync_mibs=N).", o->name, j->target,
				    j->to ? j->to : "?", j->target);
		return false;
	}
	if (!store_job_kind_cancellable(j->kind)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "Job %s (%s of %s) cannot be cancelled: only live migrations, evacuations and "
				    "ISO uploads can be; this one runs to its end.", o->name, j->kind, j->target);
		return false;
	}
	if (j->cancel_by) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "Job %s is being cancelled already (user %s asked); 'herd job show %s' shows "
				    "when it has ended.", o->name, j->cancel_by, o->name);
		return false;
	}
	return true;
}

static void cancel_submit(cancel_ctx *c);

static void on_cancel_committed(json_t *result, const GError *error, gpointer user)
{
	cancel_ctx *c = user;
	store_object *o = store_state_get(api_state(c->a), STORE_KIND_JOB, c->uuid);
	if (error && o && o->version != c->version && ++c->tries < CANCEL_TRIES) {
		cancel_submit(c);
		return;
	}
	if (error)
		http_respond_error(c->req, error);
	else
		http_respond_json(c->req, 202, o ? api_job_json(c->a, o, true) : json_incref(result));
	cancel_free(c);
}

static void cancel_submit(cancel_ctx *c)
{
	store_object *o = store_state_get(api_state(c->a), STORE_KIND_JOB, c->uuid);
	g_autoptr(GError) err = NULL;
	if (!o) {
		http_respond_errorf(c->req, HERD_ERR_NOT_FOUND, "Job %.8s was deleted meanwhile.", c->uuid);
	} else if (cancel_allowed(c->req, o)) {
		c->version = o->version;
		g_autoptr(json_t) cmd = store_job_cmd_cancel(o, c->user, g_get_real_time() / 1000);
		if (herd_cluster_submit(c->a->cluster, cmd, http_request_user(c->req), on_cancel_committed, c, &err))
			return;
		http_respond_error(c->req, err);
	}
	cancel_free(c);
}

void api_job_cancel(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = api_lookup_param(req, a, STORE_KIND_JOB, "job");
	if (!o || !cancel_allowed(req, o))
		return;
	cancel_ctx *c = g_new0(cancel_ctx, 1);
	c->req = req;
	c->a = a;
	g_strlcpy(c->uuid, o->uuid, sizeof(c->uuid));
	c->user = g_strdup(api_request_owner(req));
	http_request_suspend(req);
	cancel_submit(c);
}
