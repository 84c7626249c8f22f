/*
 * Telling the service manager how herdd is: systemd's notification protocol
 * (sd_notify(3)), written by hand so that herdd (and herd-san) need no libsystemd.  The
 * manager (systemd, or the supervisor of a test node) passes a datagram
 * socket in $NOTIFY_SOCKET (a path, or '@' for an abstract address) and, for
 * WatchdogSec=, the interval in $WATCHDOG_USEC: herdd says READY=1 once it
 * serves, then WATCHDOG=1 from a timer on the main loop at half the interval,
 * so that a main loop that hangs stops feeding and gets herdd restarted;
 * STOPPING=1 when it shuts down; and EXTEND_TIMEOUT_USEC= while it waits
 * for its VMs to leave before the host shuts down.  Without $NOTIFY_SOCKET it does nothing.
 */
#pragma once

#include <glib.h>
#include <stdint.h>

typedef struct herdd_notify herdd_notify;

/* Take $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID out of the
 * environment (herdd's children, such as fence agents or corosync started by
 * the service command, must not speak for herdd).  NULL if no manager
 * listens; every function below accepts NULL and then does nothing.  Call it
 * before any thread starts: it changes the environment. */
herdd_notify *herdd_notify_from_env(void);

/* The watchdog interval the manager asked for, in microseconds; 0: none. */
uint64_t herdd_notify_watchdog_usec(const herdd_notify *n);

/* READY=1 (with STATUS=@status if not NULL), and from now on WATCHDOG=1 from a
 * timer on the default main context every half watchdog interval. */
void herdd_notify_ready(herdd_notify *n, const char *status);

/* STOPPING=1: herdd shuts down; the watchdog is no longer fed. */
void herdd_notify_stopping(herdd_notify *n);

/* EXTEND_TIMEOUT_USEC=@usec (and STATUS=@status if not NULL): herdd needs
 * that much more time from now to stop than the unit's TimeoutStopSec
 * gives (systemd 236 and later; sent again before it runs out). */
void herdd_notify_extend_timeout(herdd_notify *n, uint64_t usec, const char *status);

void herdd_notify_free(herdd_notify *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herdd_notify, herdd_notify_free)
