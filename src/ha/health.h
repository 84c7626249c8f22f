/*
 * Alerts about the nodes' and storages' health that the coordinator adds
 * to its list (and so to the alert records, ha/alert_journal.h): a node
 * whose libvirtd does not answer, a storage filling up (80 % warning, 90 %
 * critical, as the seed products warned), a node that reaches none of the
 * ping nodes, and N+1 no longer holding.
 * Pure: the store and the nodes' facts in, alerts out.
 */
#pragma once

#include "ha/facts.h"
#include "store/state.h"

#include <jansson.h>
#include <stdbool.h>

#define HEALTH_STORAGE_WARNING_PCT 80
#define HEALTH_STORAGE_CRITICAL_PCT 90

/* A node's libvirtd that does not answer is alerted only once it has not
 * answered for this long, as this coordinator saw it.  A node that joins
 * restarts its libvirtd (daemon/virt_setup.c), a herdd may start before
 * its libvirtd: each was a critical alert, recorded and mailed, for a
 * second.  The scheduler does not wait: it places nothing there meanwhile. */
#define HEALTH_VIRT_DOWN_ALERT_MS 10000

/* Keep @since ({node id: when first seen, ms}) up to date at @now_ms: a
 * node whose fresh facts say its hypervisor connection fails is added, one
 * whose facts say it works, or that left the store, is forgotten (stale
 * facts change nothing).  Returns in how many ms the next of them is due
 * its alert (0: none is waiting). */
int64_t herd_health_virt_watch(GHashTable *since, store_state *st, herd_facts *facts, int64_t now_ms);

/* Append to @alerts: "virt_down" for each node with fresh facts whose
 * hypervisor connection fails, once it has for HEALTH_VIRT_DOWN_ALERT_MS
 * by @virt_since (herd_health_virt_watch()'s) at @now_ms; "storage_full"
 * for each storage that a node sees used at or beyond the thresholds (the
 * fullest view counts);
 * "ping_lost" for each node of @ping_cut (names: those the scheduler takes
 * for cut off from the ping nodes, see coordinator.c) while an online node
 * outside it can take VMs, or one "ping_lost_all" when none can;
 * "n_plus_1" when @n_plus_1 is false, naming the nodes in @at_risk
 * ({node: HA VMs that could not be restarted}). */
void herd_health_alerts(json_t *alerts, store_state *st, herd_facts *facts, GHashTable *virt_since,
			int64_t now_ms, GHashTable *ping_cut, bool n_plus_1, json_t *at_risk);
