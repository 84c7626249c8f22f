/*
 * The mailbox on a private main context, iterated by hand: items come in
 * order, so many per iteration as asked, from other threads too (which
 * wake a loop that waits), and nothing is delivered after it is freed.
 */
#include "common/mailbox.h"

typedef struct {
	GMainContext *ctx;
	GPtrArray *got;       /* items, in the order delivered */
	GThread *thread;      /* where they were delivered */
	mailbox *free_on;     /* free this mailbox when an item comes */
} receiver;

static void deliver(gpointer item, gpointer user_data)
{
	receiver *r = user_data;
	g_ptr_array_add(r->got, item);
	r->thread = g_thread_self();
	g_clear_pointer(&r->free_on, mailbox_free);
}

static receiver *receiver_new(void)
{
	receiver *r = g_new0(receiver, 1);
	r->ctx = g_main_context_new();
	r->got = g_ptr_array_new();
	return r;
}

static void receiver_free(receiver *r)
{
	g_ptr_array_unref(r->got);
	g_main_context_unref(r->ctx);
	g_free(r);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(receiver, receiver_free)

#define ITEM(n) GUINT_TO_POINTER(n)

/* One per iteration: a burst of three takes three iterations, in order. */
static void test_one_per_iteration(void)
{
	g_autoptr(receiver) r = receiver_new();
	g_autoptr(mailbox) m = mailbox_new(r->ctx, "test", 1, deliver, r);
	g_assert_false(g_main_context_iteration(r->ctx, FALSE));
	for (guint i = 1; i <= 3; i++)
		mailbox_post(m, ITEM(i));
	g_assert_cmpuint(mailbox_length(m), ==, 3);
	for (guint i = 1; i <= 3; i++) {
		g_assert_true(g_main_context_iteration(r->ctx, FALSE));
		g_assert_cmpuint(r->got->len, ==, i);
		g_assert_true(r->got->pdata[i - 1] == ITEM(i));
	}
	g_assert_cmpuint(mailbox_length(m), ==, 0);
	/* nothing left: the source is not ready any more */
	g_assert_false(g_main_context_iteration(r->ctx, FALSE));
	g_assert_true(r->thread == g_thread_self());
}

/* 0: all that wait, in one iteration. */
static void test_all_at_once(void)
{
	g_autoptr(receiver) r = receiver_new();
	g_autoptr(mailbox) m = mailbox_new(r->ctx, "test", 0, deliver, r);
	for (guint i = 1; i <= 5; i++)
		mailbox_post(m, ITEM(i));
	g_assert_true(g_main_context_iteration(r->ctx, FALSE));
	g_assert_cmpuint(r->got->len, ==, 5);
	g_assert_false(g_main_context_iteration(r->ctx, FALSE));
}

typedef struct {
	mailbox *m;
	guint n;
	guint *values;      /* written here, read by the receiver */
} poster;

static gpointer post_from_thread(gpointer p)
{
	poster *po = p;
	for (guint i = 0; i < po->n; i++) {
		po->values[i] = i * 7;
		mailbox_post(po->m, &po->values[i]);
	}
	return NULL;
}

/* Posts from another thread wake an iteration that waits, and what the
 * poster wrote first is there. */
static void test_from_thread(void)
{
	g_autoptr(receiver) r = receiver_new();
	g_autoptr(mailbox) m = mailbox_new(r->ctx, "test", 2, deliver, r);
	guint values[50];
	poster po = { m, G_N_ELEMENTS(values), values };
	GThread *t = g_thread_new("poster", post_from_thread, &po);
	while (r->got->len < po.n)
		g_main_context_iteration(r->ctx, TRUE);
	g_thread_join(t);
	for (guint i = 0; i < po.n; i++)
		g_assert_cmpuint(*(guint *)r->got->pdata[i], ==, i * 7);
	g_assert_true(r->thread == g_thread_self());
}

/* The owner empties it itself, in order; freed with items in it, or from
 * its own delivery, it delivers no more. */
static void test_take_and_free(void)
{
	g_autoptr(receiver) r = receiver_new();
	mailbox *m = mailbox_new(r->ctx, "test", 0, deliver, r);
	mailbox_post(m, ITEM(1));
	mailbox_post(m, ITEM(2));
	g_assert_true(mailbox_take(m) == ITEM(1));
	g_assert_true(mailbox_take(m) == ITEM(2));
	g_assert_null(mailbox_take(m));
	g_assert_false(g_main_context_iteration(r->ctx, FALSE));
	mailbox_post(m, ITEM(3));
	mailbox_free(m);
	g_assert_false(g_main_context_iteration(r->ctx, FALSE));
	g_assert_cmpuint(r->got->len, ==, 0);
	mailbox_free(NULL);

	m = mailbox_new(r->ctx, "test", 0, deliver, r);
	r->free_on = m;
	for (guint i = 1; i <= 3; i++)
		mailbox_post(m, ITEM(i));
	g_assert_true(g_main_context_iteration(r->ctx, FALSE));
	g_assert_cmpuint(r->got->len, ==, 1);
	g_assert_false(g_main_context_iteration(r->ctx, FALSE));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailbox/one-per-iteration", test_one_per_iteration);
	g_test_add_func("/mailbox/all-at-once", test_all_at_once);
	g_test_add_func("/mailbox/from-thread", test_from_thread);
	g_test_add_func("/mailbox/take-and-free", test_take_and_free);
	return g_test_run();
}
