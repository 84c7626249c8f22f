/* api/console_ticket: one-time console tickets, bound to a user and a VM,
 * valid CONSOLE_TICKET_TTL_US, each refusal a sentence that says why. */
#include "api/console_ticket.h"
#include "common/error.h"

#include <string.h>

#define T0 ((gint64)1000 * G_USEC_PER_SEC)

static void refused(console_tickets *t, const char *ticket, const char *vm, gint64 now,
		    const char *why)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *user = console_tickets_take(t, ticket, vm, "web1", now, &err);
	g_assert_null(user);
	g_assert_error(err, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	if (!strstr(err->message, why))
		g_error("'%s' does not say '%s'", err->message, why);
}

static void test_once(void)
{
	g_autoptr(console_tickets) t = console_tickets_new();
	g_assert_true(console_tickets_add(t, "tk1", "op", "uuid-web1", T0, NULL));
	g_autofree char *user = console_tickets_take(t, "tk1", "uuid-web1", "web1", T0 + 1, NULL);
	g_assert_cmpstr(user, ==, "op");
	refused(t, "tk1", "uuid-web1", T0 + 2, "used already");
	refused(t, "nope", "uuid-web1", T0 + 2, "unknown here");
	refused(t, "", "uuid-web1", T0 + 2, "needs a ticket");
	refused(t, NULL, "uuid-web1", T0 + 2, "needs a ticket");
}

static void test_expiry(void)
{
	g_autoptr(console_tickets) t = console_tickets_new();
	g_assert_true(console_tickets_add(t, "a", "op", "uuid-web1", T0, NULL));
	g_assert_true(console_tickets_add(t, "b", "op", "uuid-web1", T0, NULL));
	g_autofree char *user = console_tickets_take(t, "a", "uuid-web1", "web1",
						     T0 + CONSOLE_TICKET_TTL_US - 1, NULL);
	g_assert_cmpstr(user, ==, "op");
	refused(t, "b", "uuid-web1", T0 + CONSOLE_TICKET_TTL_US, "expired");
	/* spent by the failed try too */
	refused(t, "b", "uuid-web1", T0 + CONSOLE_TICKET_TTL_US, "used already");
	/* forgotten in the end: no memory kept for ever */
	g_assert_cmpuint(console_tickets_count(t), ==, 2);
	refused(t, "b", "uuid-web1", T0 + CONSOLE_TICKET_TTL_US + CONSOLE_TICKET_MEMORY_US, "unknown");
	g_assert_cmpuint(console_tickets_count(t), ==, 0);
}

static void test_other_vm(void)
{
	g_autoptr(console_tickets) t = console_tickets_new();
	g_assert_true(console_tickets_add(t, "a", "op", "uuid-db1", T0, NULL));
	refused(t, "a", "uuid-web1", T0 + 1, "for another VM than web1");
	/* and then it is spent */
	refused(t, "a", "uuid-db1", T0 + 1, "used already");
}

static void test_bounded(void)
{
	g_autoptr(console_tickets) t = console_tickets_new();
	for (int i = 0; i < CONSOLE_TICKETS_MAX; i++) {
		g_autofree char *k = g_strdup_printf("t%d", i);
		g_assert_true(console_tickets_add(t, k, "op", "uuid-web1", T0, NULL));
	}
	g_autoptr(GError) err = NULL;
	g_assert_false(console_tickets_add(t, "one-more", "op", "uuid-web1", T0, &err));
	g_assert_error(err, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	/* once they are past remembering, there is room again */
	g_assert_true(console_tickets_add(t, "later", "op", "uuid-web1",
					  T0 + CONSOLE_TICKET_TTL_US + CONSOLE_TICKET_MEMORY_US, NULL));
	g_assert_cmpuint(console_tickets_count(t), ==, 1);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/console-ticket/once", test_once);
	g_test_add_func("/console-ticket/expiry", test_expiry);
	g_test_add_func("/console-ticket/other-vm", test_other_vm);
	g_test_add_func("/console-ticket/bounded", test_bounded);
	return g_test_run();
}
