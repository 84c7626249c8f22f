/*
 * What becomes of a job (store/job.h, docs/jobs.md): the decisions of the
 * node that runs it and of the coordinator, pure (facts in, a step out),
 * so that unit tests run them without a cluster.  daemon/job_runner.c is
 * the shell that gathers the facts and commits the steps.
 */
#pragma once

#include "store/job.h"
#include "store/node.h"
#include "store/vm.h"

#include <jansson.h>
#include <stdbool.h>

/* What the node that runs a live migration's job knows of it. */
typedef struct herd_job_migrate_facts {
	const store_object *vm;   /* the VM the job migrates, or NULL if it is gone */
	const char *rt_node;      /* where the VM runs (herd_vm_runtime), or NULL */
	const char *rt_state;     /* "running", "paused", "stopped"… */
	const char *rt_error;     /* why its last operation failed, or NULL */
	json_t *migration;        /* its progress as the hypervisor tells it, or NULL */
	int last_iteration;       /* the memory pass last logged (0: none) */
	bool cancel_sent;         /* the hypervisor was asked to abort it */
} herd_job_migrate_facts;

/* The step to take: all fields 0/NULL is "nothing new". */
typedef struct herd_job_step {
	store_job_state end;      /* RUNNING: it goes on */
	char *error;              /* why it failed or was cancelled (with end) */
	int progress;             /* -1: as it is */
	char *line;               /* a log line, or NULL */
	int iteration;            /* the memory pass now (the caller keeps it) */
	bool cancel_now;          /* ask the hypervisor to abort it */
} herd_job_step;

void herd_job_step_clear(herd_job_step *s);

/* The next step of job @job (a live migration) on the node that runs it. */
void herd_job_migrate_step(const store_object *job, const herd_job_migrate_facts *f, herd_job_step *out);

/* What the node being evacuated knows: its node object (NULL if it was
 * removed) and how many VMs are still assigned to it or run on it. */
typedef struct herd_job_evacuate_facts {
	const store_object *node;
	unsigned remaining;
	bool cancel_sent;         /* its mode was set back to online */
} herd_job_evacuate_facts;

/* The next step of evacuation job @job at @now_ms (a progress line at most
 * once a second); cancel_now: put the node back online. */
void herd_job_evacuate_step(const store_object *job, const herd_job_evacuate_facts *f, int64_t now_ms,
			    herd_job_step *out);

/*
 * The coordinator's view: has the node of running job @job been lost?
 * @node is its node object (NULL: no longer a node), @in_group whether its
 * herd is in the coordinator's group.  The sentence that says so (g_free),
 * or NULL while the node is there.
 */
char *herd_job_lost(const store_job *job, const store_object *node, bool in_group);

/* The node's own view after its herdd started anew (run @boot): a running
 * job of its own that an earlier run followed ends as failed with this
 * sentence (g_free); NULL if it is this run's, or nobody's yet. */
char *herd_job_orphaned(const store_job *job, const char *boot);

/* What the node whose replica is the source of an eSAN sync knows of it. */
typedef struct herd_job_sync_facts {
	const char *disk;         /* the disk's name; NULL: it was deleted */
	const char *peer;         /* the node of the replica being synchronised */
	bool peer_discarded;      /* the store has that replica discarded (promote, resolve) */
	const char *sync_by;      /* who caused the disk's last discard (store_disk.sync_by), or NULL */
	json_t *san;              /* herd-san's last state of the volume here, or NULL */
} herd_job_sync_facts;

/*
 * Does herd-san's state say that a sync from this node (@me) has begun,
 * its size known?  Then the first line of its job (g_free) and, in
 * *@owner, who caused it: for a discarded peer replica the user of the
 * promote, resolve or attach that discarded it ("system" after a local
 * disk failed), else "system" (a resync after an outage, a new or crashed
 * replica).  NULL: no sync begins.
 */
char *herd_job_sync_begins(const herd_job_sync_facts *f, const char *me, const char **owner);

/* The next step of sync job @job at @now_ms: its progress (at most once a
 * second), done once the replicas are in sync, failed when the sync was
 * interrupted (the link lost, a refusal, the disk deleted) -- a sync that
 * starts again later is a new job. */
void herd_job_sync_step(const store_object *job, const herd_job_sync_facts *f, int64_t now_ms,
			herd_job_step *out);
