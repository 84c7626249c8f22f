/*
 * herd check's rounds (docs/check.md): the node asked multicasts a request
 * (HERD_MSG_CHECK); every herd in the group probes its own part
 * (daemon/check_probe.h) and answers with what it found and its clock; the
 * asker meanwhile asks every fence device's plugs for their 'status', and
 * once every node answered (or CHECK_ANSWER_S passed) judges it all
 * (ha/check.h) and multicasts the results.  Every node keeps the latest
 * results (herd_ha_set_check()): the coordinator alerts about their
 * failures until the next results, from any node, say otherwise.  The
 * coordinator runs a round by itself every check_interval_s.
 */
#pragma once

#include "cluster/service.h"
#include "ha/ha.h"

#include <glib.h>
#include <jansson.h>

/* How long the nodes have to answer a round. */
#define CHECK_ANSWER_S 30

typedef struct herd_checker herd_checker;

herd_checker *herd_checker_new(herd_cluster *cluster, herd_ha *ha, const char *corosync_dir,
			       const char *libvirt_uri);
void herd_checker_free(herd_checker *c);

/* Run a round now (or join the one under way); @done gets
 * {"node","time_ms","results"} (borrowed), or {"code","error"} if no round
 * can run (no cluster). */
void herd_checker_run(gpointer checker, void (*done)(json_t *report, gpointer user), gpointer user);
