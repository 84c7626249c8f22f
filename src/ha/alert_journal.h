/*
 * The alerts' history (requirement C25, docs/alerts.md): the coordinator's
 * alerts now (what `herd status` shows) compared with the alert records of
 * the store, and the one batch of store changes that brings the records up
 * to date — a new record for an alert that was not there, a change of
 * severity or message, the time an alert cleared, and the oldest cleared
 * records beyond the history's bound deleted.  Pure: store and alerts in,
 * a command out.
 *
 * The same condition is the same alert: its key is its kind and what it is
 * about (VM, node, disk, pair of nodes), not its sentence, so that an alert
 * whose sentence changes (a countdown, a new reason) stays one record.  A
 * change of the sentence alone is written at most every
 * ALERT_MESSAGE_REFRESH_MS: the history is not a log of every word.
 */
#pragma once

#include "store/state.h"

#include <jansson.h>
#include <stdint.h>

#define ALERT_MESSAGE_REFRESH_MS 60000
/* Cleared alerts kept, the newest. */
#define ALERT_HISTORY_KEEP 500
/* Events waiting for a store that takes changes, at most. */
#define ALERT_EVENTS_MAX 100

/* The key of @alert ({"kind"?,"severity","message","vm"?,"node"?,"nodes"?,
 * "disk"?}, as the coordinator's list has them): its kind (or "vm", "node",
 * "cluster" by what it names) and the names it is about. */
char *herd_alert_key(json_t *alert);

/* The batch that makes the store's records match @active (an array of
 * alerts) at @now_ms and records @events (what happened: a fence, a
 * failover, a node back; each a record raised and cleared at once; NULL:
 * none), or NULL when there is nothing to write. */
json_t *herd_alert_journal(store_state *st, json_t *active, json_t *events, int64_t now_ms,
			   unsigned keep);
