/*
 * herdd's notifier: on the node that coordinates the cluster, the alert
 * notices ha/notify.h decides on are delivered by mail (SMTP through the
 * relay of the notify_smtp_* settings, STARTTLS or TLS with the relay's
 * certificate verified, AUTH when a user is set) and to the webhook (a
 * JSON POST), with libcurl on a thread of its own, one notice at a time,
 * each attempt bounded by NOTIFY_SEND_TIMEOUT_MS: a relay that hangs never
 * blocks the main loop.  A delivered notice is marked in its alert records
 * through the store.  Nothing of the settings (the password least) is
 * logged.
 */
#pragma once

#include "cluster/service.h"
#include "ha/ha.h"

#include <glib.h>
#include <jansson.h>

/* One attempt on one channel, connecting included. */
#define NOTIFY_SEND_TIMEOUT_MS 20000
#define NOTIFY_CONNECT_TIMEOUT_MS 5000
/* How often the notifier looks whether this node coordinates. */
#define NOTIFY_TICK_MS 2000

typedef struct herd_notifier herd_notifier;

herd_notifier *herd_notifier_new(herd_cluster *cluster, herd_ha *ha, const char *node_name);
/* Stop; a delivery under way ends into nothing. */
void herd_notifier_free(herd_notifier *n);

/* Send a test notice now, by mail and webhook as set: @done gets
 * {"mail":{"sent":bool,"to":[…],"error"?}|null,"webhook":{…}|null}
 * (api_notify_test_fn). */
void herd_notifier_test(gpointer notifier, void (*done)(json_t *result, gpointer user),
			gpointer user);
