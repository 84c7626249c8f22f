/*
 * One-time console tickets.  POST /api/v1/vms/{vm}/console gives one; the
 * console's websocket (GET …/console?ticket=…) takes it, once, within its
 * lifetime.  A browser cannot set headers on a websocket, so the ticket is
 * the upgrade's authentication: it is bound to the user that asked for it
 * and to the VM, lives CONSOLE_TICKET_TTL_US, and is spent by its first
 * use, whatever comes of it.  Tickets are this node's own (the websocket
 * goes to the node that gave the ticket).
 *
 * Pure: the caller passes the time and the ticket's random text.  A spent
 * or expired ticket is remembered a while longer, so that its refusal
 * says what happened to it; at most CONSOLE_TICKETS_MAX are kept.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define CONSOLE_TICKET_TTL_US (30 * G_USEC_PER_SEC)
/* How long a spent or expired ticket is remembered after it expired. */
#define CONSOLE_TICKET_MEMORY_US (120 * G_USEC_PER_SEC)
#define CONSOLE_TICKETS_MAX 1024

typedef struct console_tickets console_tickets;

console_tickets *console_tickets_new(void);
void console_tickets_free(console_tickets *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(console_tickets, console_tickets_free)

/* Keep @ticket for @user and VM @vm_uuid, valid from @now_us for
 * CONSOLE_TICKET_TTL_US; false with an UNAVAILABLE @error if
 * CONSOLE_TICKETS_MAX are kept. */
bool console_tickets_add(console_tickets *t, const char *ticket, const char *user,
			 const char *vm_uuid, gint64 now_us, GError **error);

/* Spend @ticket for VM @vm_uuid (named @vm_name in messages) at @now_us:
 * the user it was given to (g_free), or NULL with an UNAUTHORIZED @error
 * that says why (unknown, used, expired, for another VM). */
char *console_tickets_take(console_tickets *t, const char *ticket, const char *vm_uuid,
			   const char *vm_name, gint64 now_us, GError **error);

/* Tickets kept (live, spent or expired). */
guint console_tickets_count(console_tickets *t);
