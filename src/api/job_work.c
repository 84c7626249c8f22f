/* Work this node does for a request as a job (api/job_work.h). */
#define G_LOG_DOMAIN "api"
#include "api/job_work.h"

#include "api/common.h"
#include "api/routes.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/command.h"

#include <string.h>

/* A change of the job's end that lost against another change is made
 * again at once on the new version, this many times, then at the ticks. */
#define END_RETRIES 5

struct api_job_work {
	api_ctx *a;
	char uuid[STORE_UUID_LEN + 1];
	char *name;
	api_job_cancel_fn cancel;
	gpointer cancel_user;
	bool cancel_called;
	api_job_started_fn started;
	gpointer started_user;
	int progress;             /* atomic */
	GQueue lines;             /* char*, not written yet */
	bool line_sent;           /* the head of lines is under way */
	bool submitting;
	guint tick;
	/* once ended */
	bool ending;
	store_job_state end;
	char *end_text;
	unsigned end_tries;
	api_job_ended_fn ended;
	gpointer ended_user;
};

static void work_free(api_job_work *w)
{
	if (w->tick)
		g_source_remove(w->tick);
	herd_cluster_forget(w->a->cluster, w);
	g_queue_clear_full(&w->lines, g_free);
	g_free(w->name);
	g_free(w->end_text);
	g_free(w);
}

const char *api_job_work_name(const api_job_work *w)
{
	return w->name;
}

void api_job_work_progress(api_job_work *w, int percent)
{
	g_atomic_int_set(&w->progress, CLAMP(percent, 0, 100));
}

void api_job_work_log(api_job_work *w, const char *line)
{
	g_queue_push_tail(&w->lines, g_strdup(line));
}

static void flush(api_job_work *w);

/* Its end is recorded, or there is nothing more to record. */
static void ended(api_job_work *w, store_object *o)
{
	g_autoptr(json_t) j = o ? api_job_json(w->a, o, false) : NULL;
	if (w->ended)
		w->ended(j, w->ended_user);
	work_free(w);
}

static void on_flushed(json_t *result, const GError *error, gpointer user)
{
	api_job_work *w = user;
	w->submitting = false;
	if (error) {
		/* Another change of the job came first: made again on its new
		 * version (the end at once, a few times; the rest at the tick). */
		log_debug("job %s not updated: %s", w->name, error->message);
		if (w->ending && ++w->end_tries <= END_RETRIES)
			flush(w);
		return;
	}
	if (w->line_sent)
		g_free(g_queue_pop_head(&w->lines));
	w->line_sent = false;
	if (w->ending)
		ended(w, store_state_get(api_state(w->a), STORE_KIND_JOB, w->uuid));
}

static void flush(api_job_work *w)
{
	store_state *st = api_state(w->a);
	if (w->submitting || !st)
		return;
	store_object *o = store_state_get(st, STORE_KIND_JOB, w->uuid);
	const store_job *j = o ? store_job_of(o) : NULL;
	if (!j || j->state != STORE_JOB_RUNNING) {
		/* Deleted, or ended by the coordinator (it thought this node
		 * lost): nothing more to write. */
		if (w->ending)
			ended(w, o);
		return;
	}
	if (j->cancel_by && !w->cancel_called && !w->ending) {
		w->cancel_called = true;
		if (w->cancel)
			w->cancel(j->cancel_by, w->cancel_user);
	}
	int64_t now_ms = g_get_real_time() / 1000;
	json_t *cmd = NULL;
	if (w->ending) {
		cmd = store_job_cmd_finish(o, w->end, w->end_text, now_ms);
	} else {
		int progress = g_atomic_int_get(&w->progress);
		bool due = store_job_update_due(j, progress, now_ms);
		const char *line = g_queue_peek_head(&w->lines);
		if (!due && !line)
			return;
		cmd = store_job_cmd_update(o, due ? progress : -1, line, now_ms);
		w->line_sent = line != NULL;
	}
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) owned = cmd;
	if (herd_cluster_submit(w->a->cluster, cmd, "herd", on_flushed, w, &err)) {
		w->submitting = true;
		return;
	}
	w->line_sent = false;
	log_debug("job %s not updated: %s", w->name, err->message);
}

static gboolean on_tick(gpointer data)
{
	flush(data);
	return G_SOURCE_CONTINUE;
}

static void on_created(json_t *result, const GError *error, gpointer user)
{
	api_job_work *w = user;
	if (error) {
		w->started(NULL, error, w->started_user);
		work_free(w);
		return;
	}
	w->tick = g_timeout_add(STORE_JOB_UPDATE_MS, on_tick, w);
	w->started(w, NULL, w->started_user);
}

void api_job_work_start(api_ctx *a, http_request *req, const char *kind, const char *target,
			const char *target_uuid, const char *line, api_job_cancel_fn cancel,
			gpointer cancel_user, api_job_started_fn started, gpointer user)
{
	api_job_work *w = g_new0(api_job_work, 1);
	w->a = a;
	w->cancel = cancel;
	w->cancel_user = cancel_user;
	w->started = started;
	w->started_user = user;
	g_queue_init(&w->lines);
	const char *owner = api_request_owner(req);
	g_autoptr(json_t) cmd = store_job_cmd_create(kind, target, target_uuid, NULL, 0, owner, a->node->name,
						     line, g_get_real_time() / 1000, w->uuid);
	w->name = g_strndup(w->uuid, 8);
	g_autoptr(GError) err = NULL;
	if (!herd_cluster_submit(a->cluster, cmd, http_request_user(req), on_created, w, &err)) {
		started(NULL, err, user);
		work_free(w);
	}
}

void api_job_work_end(api_job_work *w, store_job_state state, const char *text,
		      api_job_ended_fn ended_fn, gpointer user)
{
	g_assert(state != STORE_JOB_RUNNING && !w->ending);
	w->ending = true;
	w->end = state;
	w->end_text = g_strdup(text);
	w->ended = ended_fn;
	w->ended_user = user;
	flush(w);
}
