/*
 * herdd's job runner (docs/jobs.md): every JOB_TICK_MS it looks at the
 * jobs of the store.  Those its node runs it follows — a live migration's
 * progress and log from the hypervisor, its end from where the VM runs;
 * an evacuation's from the VMs still on the node — and cancels when their
 * owner asks; one that an earlier run of herdd
 * followed ends as failed.  On the node that coordinates, it also ends the
 * running jobs of lost nodes as failed, and prunes finished jobs
 * (store_job_cmd_prune()).  What to do is decided by ha/job_watch.h; the
 * changes go to the store as one batch per tick, one batch at a time.
 */
#pragma once

#include "cluster/service.h"
#include "ha/ha.h"

#define JOB_TICK_MS 500

typedef struct herd_job_runner herd_job_runner;

herd_job_runner *herd_job_runner_new(herd_cluster *cluster, herd_ha *ha, const char *node_name);
void herd_job_runner_free(herd_job_runner *r);
