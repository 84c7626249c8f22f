/*
 * Work this node does for a request as a job (store/job.h, docs/jobs.md):
 * a disk's file made or grown, an ISO uploaded.  The job is committed
 * before the work begins (bad input was refused before that, so a refused
 * request starts no job); while the work runs its progress and log lines
 * are written at most once a second (STORE_JOB_UPDATE_MS), and its end --
 * done, failed, cancelled -- is written before the request is answered,
 * so the answer shows the job as it ended and the store keeps that end
 * when this node is lost.  A change of the job that loses against another
 * one (herdd's job runner adopting it, an operator's cancel) is made again
 * on the job's new version.  An operator's cancel reaches the work through
 * its cancel callback.  Used on the handlers' loop; the progress may be
 * set from any thread.
 */
#pragma once

#include "api/context.h"
#include "api/http.h"
#include "store/job.h"

#include <glib.h>
#include <jansson.h>

typedef struct api_job_work api_job_work;

/* The job is committed (@w), or could not be (@w NULL, @error says why:
 * nothing was done). */
typedef void (*api_job_started_fn)(api_job_work *w, const GError *error, gpointer user);
/* An operator (user @by) asked to cancel the job: the handlers' loop. */
typedef void (*api_job_cancel_fn)(const char *by, gpointer user);
/* The job's end is recorded: @job as the API shows it (borrowed; NULL if
 * the job is no longer in the store). */
typedef void (*api_job_ended_fn)(json_t *job, gpointer user);

/*
 * Begin job @kind on @target (@target_uuid may be NULL) for the user of
 * @req, run by this node, with the log line @line; @started once it is
 * committed.  @cancel (NULL: the job cannot be cancelled, as
 * store_job_kind_cancellable() says of @kind) is called at most once.
 */
void api_job_work_start(api_ctx *a, http_request *req, const char *kind, const char *target,
			const char *target_uuid, const char *line, api_job_cancel_fn cancel,
			gpointer cancel_user, api_job_started_fn started, gpointer user);
/* Its name ("3f2a09c1"). */
const char *api_job_work_name(const api_job_work *w);
/* Its progress in percent (0-100); any thread. */
void api_job_work_progress(api_job_work *w, int percent);
/* A line for its log. */
void api_job_work_log(api_job_work *w, const char *line);
/*
 * End it in @state: DONE with @text saying what it did, FAILED or
 * CANCELLED with @text saying why; @ended once that is recorded (or the
 * job is gone or was ended by the coordinator meanwhile); @w is freed
 * then.
 */
void api_job_work_end(api_job_work *w, store_job_state state, const char *text,
		      api_job_ended_fn ended, gpointer user);
