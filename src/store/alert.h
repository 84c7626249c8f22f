/*
 * An alert as the replicated store keeps it (requirement C25, docs/alerts.md):
 * one record per occurrence of a condition the coordinator raised — a VM
 * that cannot run, a node lost, a fence that failed, a heartbeat link down,
 * an eSAN replica behind… — from when it was first seen until it cleared,
 * kept for a bounded history.  Only the coordinator writes them
 * (ha/alert_journal.h), in one batch per change of its alerts; operators
 * acknowledge them.  Named by a number that grows ("17"), so every node
 * shows the same list with the same names.  Read through store_alert_of().
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
	STORE_ALERT_INFO = 0,
	STORE_ALERT_WARNING,
	STORE_ALERT_CRITICAL,
} store_alert_severity;

typedef struct store_alert {
	const char *key;          /* what it is about: kind and object, the same for every
				   * occurrence of the same condition */
	const char *kind;         /* "vm", "node", "fence_failed", "link_last"… */
	store_alert_severity severity;
	const char *message;
	const char *vm;           /* the VM's name it is about, or NULL */
	const char *node;         /* the node's name it is about, or NULL */
	const char *disk;         /* the disk's name it is about, or NULL */
	const char *storage;      /* the storage's name it is about, or NULL */
	int64_t first_ms;         /* raised */
	int64_t last_ms;          /* its severity or message last changed */
	int64_t cleared_ms;       /* cleared, or 0 while it holds */
	const char *acked_by;     /* the user who acknowledged it, or NULL */
	int64_t acked_ms;
	int64_t notified_ms;      /* its raising was notified (mail, webhook), or 0 */
	store_alert_severity notified_severity; /* its severity then (that of a record
				   * notified by an older herd: its severity now) */
	int64_t cleared_notified_ms; /* its clearing was notified, or 0 */
} store_alert;

const store_alert *store_alert_of(const store_object *o);
const char *store_alert_severity_name(store_alert_severity s);
bool store_alert_severity_parse(const char *s, store_alert_severity *out);

/* Every alert, the newest (highest number) first. */
GPtrArray *store_alert_list(store_state *st);

/* Raise alert number @number: @alert is {"key","kind","severity","message",
 * "vm"?,"node"?,"disk"?} (copied); its UUID derives from @cluster_uuid and
 * @number, so that the same decision gives the same command anywhere. */
json_t *store_alert_cmd_raise(const char *cluster_uuid, uint64_t number, json_t *alert,
			      int64_t now_ms);
/* The same for an event (a fence, a failover): over as it is recorded. */
json_t *store_alert_cmd_event(const char *cluster_uuid, uint64_t number, json_t *alert,
			      int64_t now_ms);
/* A new severity or message. */
json_t *store_alert_cmd_change(const store_object *o, const char *severity, const char *message,
			       int64_t now_ms);
json_t *store_alert_cmd_clear(const store_object *o, int64_t now_ms);
/* Acknowledged by @user (an operator: herd alert ack). */
json_t *store_alert_cmd_ack(const store_object *o, const char *user, int64_t now_ms);
json_t *store_alert_cmd_delete(const store_object *o);
/* Its raising (@raised, at @severity: a worse one is notified again) and/or
 * its clearing (@cleared) were notified at @now_ms (ha/notify.h). */
json_t *store_alert_cmd_notified(const store_object *o, bool raised, store_alert_severity severity,
				 bool cleared, int64_t now_ms);

bool store_alert_validate(json_t *data, GError **error);
void *store_alert_parse(json_t *data);
void store_alert_free(void *typed);
