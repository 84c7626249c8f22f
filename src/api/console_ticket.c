/*
 * One-time console tickets (api/console_ticket.h).
 */
#include "api/console_ticket.h"

#include "common/error.h"

typedef struct {
	char *user;
	char *vm_uuid;
	gint64 expires_us;
	bool used;
} ticket;

struct console_tickets {
	GHashTable *by_text; /* ticket text -> ticket* */
};

static void ticket_free(gpointer p)
{
	ticket *k = p;
	g_free(k->user);
	g_free(k->vm_uuid);
	g_free(k);
}

console_tickets *console_tickets_new(void)
{
	console_tickets *t = g_new0(console_tickets, 1);
	t->by_text = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ticket_free);
	return t;
}

void console_tickets_free(console_tickets *t)
{
	if (!t)
		return;
	g_hash_table_unref(t->by_text);
	g_free(t);
}

/* Forget what is past remembering. */
static void forget_old(console_tickets *t, gint64 now_us)
{
	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, t->by_text);
	while (g_hash_table_iter_next(&it, NULL, &value))
		if (now_us >= ((ticket *)value)->expires_us + CONSOLE_TICKET_MEMORY_US)
			g_hash_table_iter_remove(&it);
}

bool console_tickets_add(console_tickets *t, const char *text, const char *user,
			 const char *vm_uuid, gint64 now_us, GError **error)
{
	forget_old(t, now_us);
	if (g_hash_table_size(t->by_text) >= CONSOLE_TICKETS_MAX) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "This node keeps %u console tickets already; try again in a few minutes.",
			    CONSOLE_TICKETS_MAX);
		return false;
	}
	ticket *k = g_new0(ticket, 1);
	k->user = g_strdup(user);
	k->vm_uuid = g_strdup(vm_uuid);
	k->expires_us = now_us + CONSOLE_TICKET_TTL_US;
	g_hash_table_replace(t->by_text, g_strdup(text), k);
	return true;
}

char *console_tickets_take(console_tickets *t, const char *text, const char *vm_uuid,
			   const char *vm_name, gint64 now_us, GError **error)
{
	forget_old(t, now_us);
	ticket *k = text ? g_hash_table_lookup(t->by_text, text) : NULL;
	if (!k) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "%s (get one with POST /api/v1/vms/%s/console on this node).",
			    text && *text ? "This console ticket is unknown here"
					  : "The console needs a ticket (?ticket=…)",
			    vm_name);
		return NULL;
	}
	if (k->used) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "This console ticket was used already; a ticket opens one console once.");
		return NULL;
	}
	k->used = true;
	if (now_us >= k->expires_us) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "This console ticket has expired (a ticket is valid for %d s).",
			    (int)(CONSOLE_TICKET_TTL_US / G_USEC_PER_SEC));
		return NULL;
	}
	if (g_strcmp0(k->vm_uuid, vm_uuid) != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "This console ticket is for another VM than %s.", vm_name);
		return NULL;
	}
	return g_strdup(k->user);
}

guint console_tickets_count(console_tickets *t)
{
	return g_hash_table_size(t->by_text);
}
