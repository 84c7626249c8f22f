/*
 * Ping nodes (requirement C3), the pure part: what a node makes of its echo
 * requests to the cluster's ping nodes (the ping_nodes setting).  Every
 * ping_interval_ms its pinger (daemon/ping_watch.h) sends each ping node an
 * ICMP echo request and tells, at the end of the round, which answered;
 * herd_ping_round() turns those rounds into a verdict per ping node that
 * changes only once the new answer has held for ping_dampen_ms, so that
 * one lost echo (or one that comes back) moves nothing.  The node reaches
 * the outside world while any ping node is reached by that verdict; it
 * tells the others so in its STATUS (herd_ping_json(), read back by
 * ha/facts.c), and the scheduler gives the HA VMs of a node that reaches
 * none to nodes that reach one (ha/sched.h: sched_node.ping_lost).
 *
 * Time is passed in; no I/O.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct herd_ping herd_ping;

herd_ping *herd_ping_new(void);
void herd_ping_free(herd_ping *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_ping, herd_ping_free)

/* The ping nodes now (addresses as cluster_setting_ping_nodes() gives
 * them; @n 0: none).  A ping node named before keeps its verdict; a new
 * one counts as reached until its echoes say otherwise for the dampening
 * time.  Returns whether the list changed. */
bool herd_ping_configure(herd_ping *p, const char *const *addresses, size_t n, int64_t now_ms);

/* The ping nodes, in the order configured (borrowed; n via *@n). */
const char *const *herd_ping_targets(herd_ping *p, size_t *n);

/* A round ended at @now_ms: @answered[i] says whether ping node i (in the
 * order of herd_ping_targets()) answered its echo.  Returns whether a
 * verdict changed. */
bool herd_ping_round(herd_ping *p, const bool *answered, int64_t now_ms, int64_t dampen_ms);

/* No ping node configured, or at least one reached by the verdicts. */
bool herd_ping_reaches(herd_ping *p);

/* What the node tells in its STATUS: {"lost":bool,"targets":{address:bool}},
 * or NULL when no ping node is configured. */
json_t *herd_ping_json(herd_ping *p);
