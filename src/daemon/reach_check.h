/*
 * herdd's reach checker: on this node, every REACH_PERIOD_S and at once
 * after a storage, virtual switch or the cluster changed in the store, it
 * checks every storage and virtual switch of the cluster (ha/reach.h says
 * how) and hands what it found to the HA engine, which sends it in the
 * node's STATUS (herd_ha_set_reach()).
 *
 * The checks touch filesystems that may hang (an NFS server gone: stat()
 * blocks in the kernel, uninterruptibly), so each runs on a thread of its
 * own, never on the main loop, and at most one per storage at a time: a
 * check that has not returned after REACH_ANSWER_MS is reported "not
 * answering", and that storage is not checked again until its hung check
 * returns (a hung mount costs one thread, not one per period).
 */
#pragma once

#include "cluster/service.h"

#include <glib.h>
#include <jansson.h>

#define REACH_PERIOD_S 10
#define REACH_ANSWER_MS 5000

typedef struct herd_reach_checker herd_reach_checker;

/* What was found: @reach {uuid: {"ok","problem"?}} and @usage {uuid:
 * {"size","free"}} (borrowed for the call). */
typedef void (*herd_reach_report_fn)(gpointer user, json_t *reach, json_t *usage);

/* Start checking the storages and switches of @cluster's store (a first
 * round soon). */
herd_reach_checker *herd_reach_checker_new(herd_cluster *cluster, herd_reach_report_fn report,
					   gpointer user);
/* Stop; checks still running end into nothing. */
void herd_reach_checker_free(herd_reach_checker *rc);
