/*
 * A job as the replicated store keeps it (requirement C26, docs/jobs.md):
 * one long operation an operator started — a live migration, and later the
 * other operations that take longer than a request — with who started it,
 * the node that runs it, its state, its progress in percent and a bounded
 * log.  The node that runs a job updates it, at most once a second
 * (STORE_JOB_UPDATE_MS), so that no job floods the store; its final state
 * (done, failed, cancelled) is in the store and so survives the node.  A
 * job whose node is lost is ended as failed by the coordinator.  Named by
 * the first 8 hex digits of its UUID ("3f2a09c1"), which the CLI shows.
 * Finished jobs are kept for a bounded count and time (store_job_prune()).
 * Read through store_job_of().
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
	STORE_JOB_RUNNING = 0,
	STORE_JOB_DONE,
	STORE_JOB_FAILED,
	STORE_JOB_CANCELLED,
	STORE_JOB__COUNT
} store_job_state;

/* At most this many log lines are kept, each at most this many characters. */
#define STORE_JOB_LOG_LINES 100
#define STORE_JOB_LINE_CHARS 200
/* A running job's progress is written at most this often. */
#define STORE_JOB_UPDATE_MS 1000
/* Finished jobs kept: the newest this many, none older than this. */
#define STORE_JOB_KEEP 200
#define STORE_JOB_KEEP_MS (7 * 24 * 3600 * (int64_t)1000)

typedef struct store_job {
	const char *kind;         /* "migrate", "evacuate", "disk-create", "disk-resize", "iso-upload",
				   * "esan-sync" (an eSAN disk's replica synchronised from the other) */
	const char *target;       /* the name of what it works on (a VM, node, disk, ISO) */
	const char *target_uuid;  /* its UUID, or NULL */
	const char *to;           /* a migration's destination node, or NULL */
	unsigned total;           /* an evacuation's VMs to move, when it began */
	const char *owner;        /* the user that started it */
	const char *node;         /* the node that runs it */
	store_job_state state;
	int progress;             /* 0–100 */
	int64_t updated_ms;       /* its progress or log last written */
	int64_t finished_ms;      /* 0 while it runs */
	const char *error;        /* why it failed or was cancelled, or NULL */
	const char *cancel_by;    /* the user who asked to cancel it, or NULL */
	const char *boot;         /* the run of herdd that follows it, or NULL */
	json_t *log;              /* [{"ms","text"}…], oldest first (borrowed) */
} store_job;

const store_job *store_job_of(const store_object *o);
const char *store_job_state_name(store_job_state s);
bool store_job_state_parse(const char *s, store_job_state *out);
/* May a job of @kind be cancelled?  A live migration (libvirt aborts it),
 * an evacuation (its node goes back online) and an ISO upload (it stops,
 * nothing is kept) may; a disk's create or resize (one qemu-img call or
 * block resize of seconds, no full preallocation) runs to its end; so does
 * an eSAN sync (the disk is not redundant until it ends). */
bool store_job_kind_cancellable(const char *kind);

/* Every job, the newest first. */
GPtrArray *store_job_list(store_state *st);

/*
 * A new running job of @kind on @target (@target_uuid, @to may be NULL;
 * @total: the items it works through, 0 if it has none) by @owner, run by
 * node @node, with a first log line @line; *@uuid_out (STORE_UUID_LEN + 1)
 * gets its UUID.
 */
json_t *store_job_cmd_create(const char *kind, const char *target, const char *target_uuid,
			     const char *to, unsigned total, const char *owner, const char *node,
			     const char *line, int64_t now_ms, char *uuid_out);
/* The running job of @kind on @target_uuid, or NULL. */
store_object *store_job_running(store_state *st, const char *kind, const char *target_uuid);
/* Its progress (-1: as it is) and a log line (NULL: none), if the job is
 * still at its version. */
json_t *store_job_cmd_update(const store_object *o, int progress, const char *line, int64_t now_ms);
/* Followed by herdd run @boot of its node, from now on. */
json_t *store_job_cmd_adopt(const store_object *o, const char *boot, int64_t now_ms);
/* Ended in @state (not RUNNING), @error saying why for failed and
 * cancelled (for done: what it did, logged only); if the job is still at
 * its version. */
json_t *store_job_cmd_finish(const store_object *o, store_job_state state, const char *error,
			     int64_t now_ms);
/* @user asks to cancel it (its node does that). */
json_t *store_job_cmd_cancel(const store_object *o, const char *user, int64_t now_ms);

/* Is a progress of @progress worth writing now?  It changed, and the last
 * write is STORE_JOB_UPDATE_MS old. */
bool store_job_update_due(const store_job *j, int progress, int64_t now_ms);

/* The deletions of finished jobs beyond STORE_JOB_KEEP or older than
 * STORE_JOB_KEEP_MS, as one batch, or NULL if none is due. */
json_t *store_job_cmd_prune(store_state *st, int64_t now_ms);

bool store_job_validate(json_t *data, GError **error);
void *store_job_parse(json_t *data);
void store_job_free(void *typed);
