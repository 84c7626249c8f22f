/*
 * Notifications (requirement C25, docs/alerts.md): what the coordinator's
 * node mails and POSTs about the alert records of the store, and when.
 * Pure: the store and the time in, a notice to deliver out; the shell
 * (daemon/notify_send.h) delivers it with libcurl on a thread of its own
 * and tells the result back.
 *
 * A record's raising and its clearing are each notified once, and its
 * severity getting worse while it holds (a storage 80 % full, then 90 %)
 * once per step up; a message reworded or a severity going down sends
 * nothing.  After a
 * delivery the shell writes notified_ms / cleared_notified_ms into the
 * record through the store, so a new coordinator neither sends them again
 * nor skips what was not delivered.  One notice holds events of one kind:
 * a kind is sent at most once per notify_interval_s (a setting), and what comes
 * meanwhile goes into its next notice; a first event waits
 * NOTIFY_GATHER_MS for what happens with it (both ends of a link going
 * down).  A notice that could not be delivered is tried again after a
 * backoff that doubles up to NOTIFY_RETRY_MAX_MS.  At most
 * NOTIFY_QUEUE_MAX events wait: beyond that the oldest are dropped, and
 * the next notice says how many.
 */
#pragma once

#include "store/alert.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define NOTIFY_GATHER_MS 3000
#define NOTIFY_RETRY_FIRST_MS 2000
#define NOTIFY_RETRY_MAX_MS 30000
/* Events older than this are not notified any more (a relay down for a
 * day, or notifications set up on a cluster with a history). */
#define NOTIFY_MAX_AGE_MS (24 * 3600 * 1000LL)
#define NOTIFY_QUEUE_MAX 100
/* Events listed in one notice (the rest of its kind is counted). */
#define NOTIFY_LIST_MAX 20

/* One record's events a notice covers. */
typedef struct herd_notify_mark {
	char *uuid;
	bool raised, cleared;
	store_alert_severity severity; /* raised: the severity notified */
} herd_notify_mark;

typedef struct herd_notice {
	uint64_t id;              /* a new one for every notice */
	char *kind;               /* its alerts' kind, or "test" */
	char *subject;            /* one line, UTF-8 */
	char *text;               /* the mail's body, UTF-8, lines ending in \n */
	json_t *json;             /* the webhook's body */
	GArray *marks;            /* of herd_notify_mark */
	unsigned dropped;         /* events dropped unsent, counted in it */
	unsigned channels_done;   /* the shell's: channels that took it */
} herd_notice;

void herd_notice_free(herd_notice *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_notice, herd_notice_free)

typedef struct herd_notify herd_notify;

herd_notify *herd_notify_new(void);
void herd_notify_free(herd_notify *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_notify, herd_notify_free)

/*
 * The notice to deliver now about the alert records of @st (of cluster
 * @cluster_name), or NULL; then *@wake_ms is how long until something may
 * be due (0: nothing waits — ask again when the store changes).  The
 * notice stays the notifier's; the same one comes back while it is
 * retried.
 */
const herd_notice *herd_notify_next(herd_notify *n, store_state *st, const char *cluster_name,
				    int64_t now_ms, int64_t *wake_ms);
/* The notice being delivered or retried, or NULL. */
herd_notice *herd_notify_current(herd_notify *n);
/* The current notice was delivered at @now_ms: the store command that
 * marks its records notified (submit it), or NULL. */
json_t *herd_notify_delivered(herd_notify *n, store_state *st, int64_t now_ms);
/* The current notice was not delivered: try again after the backoff. */
void herd_notify_failed(herd_notify *n, int64_t now_ms);
/* This node stopped coordinating: forget the current notice and what it
 * sent (the store says what was notified). */
void herd_notify_reset(herd_notify *n);

/* A test notice from node @node_name of @cluster_name (herd notify test). */
herd_notice *herd_notice_test(const char *cluster_name, const char *node_name, int64_t now_ms);

/* @n as an RFC 5322 message from @from to @to (NULL-terminated), lines
 * ending in CRLF, the subject encoded (RFC 2047) when it is not ASCII. */
/*
 * Whom the mails go to: the users with the monitor role (their own or a
 * group's) that have a mail address; if there are none, the administrators
 * (role admin) that have one; and always the addresses of the setting
 * notify_to (@notify_to, "a@x, b@y"; may be NULL), for mailboxes that are
 * no user (a ticket system).  Each address once, users by name; NULL with
 * an error if @notify_to is not a list of addresses; may be empty.
 */
char **herd_notify_recipients(store_state *st, const char *notify_to, GError **error);

char *herd_notice_mail(const herd_notice *n, const char *from, char *const *to, int64_t now_ms);
