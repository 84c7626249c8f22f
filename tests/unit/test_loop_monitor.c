/*
 * The main-loop monitor: its per-second bookkeeping fed with made-up times,
 * and its poll wrapper on a private main context with a fake clock, so that
 * nothing here depends on how fast this machine is.
 */
#include "common/json.h"
#include "common/loop_monitor.h"


#define SEC ((gint64)G_USEC_PER_SEC)
#define MS 1000

static void test_empty(void)
{
	loop_stalls s;
	loop_stalls_init(&s);
	g_assert_cmpint(loop_stalls_max_us(&s, 0, 10), ==, 0);
	g_assert_cmpint(loop_stalls_max_us(&s, 1000 * SEC, 60), ==, 0);
	g_assert_cmpint(s.max_ever_us, ==, 0);
}

/* A stall counts in a window of N seconds for the second it ended in and
 * the N - 1 after it. */
static void test_windows(void)
{
	loop_stalls s;
	loop_stalls_init(&s);
	loop_stalls_record(&s, 100 * SEC + SEC / 2, 3 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 100 * SEC + SEC / 2, 10), ==, 3 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 109 * SEC + SEC - 1, 10), ==, 3 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 110 * SEC, 10), ==, 0);
	g_assert_cmpint(loop_stalls_max_us(&s, 159 * SEC, 60), ==, 3 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 160 * SEC, 60), ==, 0);
	g_assert_cmpint(s.max_ever_us, ==, 3 * MS);
	/* asked about a time before it ended: not in the window */
	g_assert_cmpint(loop_stalls_max_us(&s, 99 * SEC, 60), ==, 0);
}

static void test_worst_of_a_second(void)
{
	loop_stalls s;
	loop_stalls_init(&s);
	loop_stalls_record(&s, 50 * SEC + 1, 2 * MS);
	loop_stalls_record(&s, 50 * SEC + 2, 7 * MS);
	loop_stalls_record(&s, 50 * SEC + 3, 1 * MS);
	loop_stalls_record(&s, 55 * SEC, 4 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 55 * SEC, 10), ==, 7 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 60 * SEC, 10), ==, 4 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 60 * SEC, 1), ==, 0);
	g_assert_cmpint(loop_stalls_max_us(&s, 55 * SEC, 1), ==, 4 * MS);
}

/* Beside the worst stall, the CPU time the thread got in it. */
static void test_cpu_of_the_worst(void)
{
	loop_stalls s;
	loop_stalls_init(&s);
	g_assert_cmpint(loop_stalls_max_cpu_us(&s, 50 * SEC, 10), ==, -1);
	g_assert_cmpint(s.max_ever_cpu_us, ==, -1);
	loop_stalls_record_cpu(&s, 50 * SEC + 1, 2 * MS, 2 * MS);
	loop_stalls_record_cpu(&s, 50 * SEC + 2, 30 * MS, 1 * MS);   /* waited for a CPU */
	loop_stalls_record_cpu(&s, 52 * SEC, 5 * MS, 5 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 52 * SEC, 10), ==, 30 * MS);
	g_assert_cmpint(loop_stalls_max_cpu_us(&s, 52 * SEC, 10), ==, 1 * MS);
	g_assert_cmpint(loop_stalls_max_cpu_us(&s, 52 * SEC, 1), ==, 5 * MS);
	g_assert_cmpint(s.max_ever_cpu_us, ==, 1 * MS);
	/* without a CPU clock: unknown */
	loop_stalls_record(&s, 53 * SEC, 40 * MS);
	g_assert_cmpint(loop_stalls_max_cpu_us(&s, 53 * SEC, 10), ==, -1);
	g_assert_cmpint(s.max_ever_us, ==, 40 * MS);
	g_assert_cmpint(s.max_ever_cpu_us, ==, -1);
}

/* A minute later the same slot holds a new second: the old maximum goes,
 * except from the maximum since the start. */
static void test_slot_reused(void)
{
	loop_stalls s;
	loop_stalls_init(&s);
	loop_stalls_record(&s, 100 * SEC, 9 * MS);
	loop_stalls_record(&s, 160 * SEC, 1 * MS);
	g_assert_cmpint(loop_stalls_max_us(&s, 160 * SEC, 60), ==, 1 * MS);
	g_assert_cmpint(s.max_ever_us, ==, 9 * MS);
	/* and after a long quiet time nothing is left in the windows */
	g_assert_cmpint(loop_stalls_max_us(&s, 10000 * SEC, 60), ==, 0);
	g_assert_cmpint(s.max_ever_us, ==, 9 * MS);
}

/* ------------------------------------------------------------------ */
/* The poll wrapper, with a fake clock                                 */

static gint64 fake_now_us;

static gint64 fake_clock(void)
{
	return fake_now_us;
}

/* A handler that "takes" 25 ms of the fake clock. */
static gboolean slow_handler(gpointer data)
{
	fake_now_us += 25 * MS;
	(*(int *)data)++;
	return G_SOURCE_REMOVE;
}

/* A handler that works 5 ms of this thread's CPU time. */
static gboolean busy_handler(gpointer data)
{
	gint64 until = loop_monitor_thread_cpu_us() + 5 * MS;
	volatile unsigned x = 0;
	while (loop_monitor_thread_cpu_us() < until)
		x++;
	return G_SOURCE_REMOVE;
}

/* With the real clocks a stretch's CPU time is measured: at least the
 * handler's work, and not more than the stretch (give or take the two
 * clocks' reads, which are not at the same instant). */
static void test_poll_wrapper_cpu(void)
{
	g_autoptr(GMainContext) ctx = g_main_context_new();
	loop_monitor *m = loop_monitor_start(ctx, NULL);
	g_assert_nonnull(m);
	GSource *idle = g_idle_source_new();
	g_source_set_callback(idle, busy_handler, NULL, NULL);
	g_source_attach(idle, ctx);
	g_source_unref(idle);
	while (g_main_context_iteration(ctx, FALSE))
		;
	g_main_context_iteration(ctx, FALSE);
	const loop_stalls *s = loop_monitor_stalls(m);
	g_assert_cmpint(s->max_ever_cpu_us, >=, 5 * MS);
	g_assert_cmpint(s->max_ever_cpu_us, <=, s->max_ever_us + 1 * MS);
	loop_monitor_free(m);
}

static void test_poll_wrapper(void)
{
	g_autoptr(GMainContext) ctx = g_main_context_new();
	GPollFunc own = g_main_context_get_poll_func(ctx);
	fake_now_us = 1000 * SEC;

	loop_monitor *m = loop_monitor_start(ctx, fake_clock);
	g_assert_nonnull(m);
	g_assert_true(g_main_context_get_poll_func(ctx) != own);

	int ran = 0;
	GSource *idle = g_idle_source_new();
	g_source_set_callback(idle, slow_handler, &ran, NULL);
	g_source_attach(idle, ctx);
	g_source_unref(idle);
	/* poll, dispatch the handler (25 ms), poll again: one stretch recorded */
	while (g_main_context_iteration(ctx, FALSE))
		;
	g_main_context_iteration(ctx, FALSE);
	g_assert_cmpint(ran, ==, 1);
	const loop_stalls *s = loop_monitor_stalls(m);
	g_assert_cmpint(s->max_ever_us, ==, 25 * MS);
	g_assert_cmpint(loop_stalls_max_us(s, fake_now_us, 10), ==, 25 * MS);

	g_assert_cmpint(loop_stalls_max_us(s, fake_now_us + 10 * SEC, 10), ==, 0);
	g_assert_cmpint(loop_stalls_max_us(s, fake_now_us + 10 * SEC, 60), ==, 25 * MS);

	/* one at a time: the poll function has no user data */
	g_test_expect_message("common", G_LOG_LEVEL_WARNING, "*already running*");
	g_assert_null(loop_monitor_start(NULL, NULL));
	g_test_assert_expected_messages();

	loop_monitor_free(m);
	g_assert_true(g_main_context_get_poll_func(ctx) == own);
	loop_monitor_free(NULL);
}

/* A handler that "takes" 1.5 s of the fake clock. */
static gboolean very_slow_handler(gpointer data)
{
	fake_now_us += 1500 * MS;
	return G_SOURCE_REMOVE;
}

/* Run @fn once on @ctx, and the poll after it (which ends its stretch). */
static void run_once(GMainContext *ctx, GSourceFunc fn, gpointer data)
{
	GSource *idle = g_idle_source_new();
	g_source_set_callback(idle, fn, data, NULL);
	g_source_attach(idle, ctx);
	g_source_unref(idle);
	while (g_main_context_iteration(ctx, FALSE))
		;
	g_main_context_iteration(ctx, FALSE);
}

/* A stall of a second or more is logged once, when it ends; a shorter one
 * is not. */
static void test_long_stall_logged(void)
{
	g_autoptr(GMainContext) ctx = g_main_context_new();
	fake_now_us = 1000 * SEC;
	loop_monitor *m = loop_monitor_start(ctx, fake_clock);
	int ran = 0;
	run_once(ctx, slow_handler, &ran);
	g_assert_cmpint(ran, ==, 1);
	g_test_expect_message("common", G_LOG_LEVEL_WARNING,
			      "the main loop stalled for 1500 ms: events waited that long");
	run_once(ctx, very_slow_handler, NULL);
	g_test_assert_expected_messages();
	g_assert_cmpint(loop_monitor_stalls(m)->max_ever_us, ==, 1500 * MS);
	loop_monitor_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/loop-monitor/empty", test_empty);
	g_test_add_func("/loop-monitor/windows", test_windows);
	g_test_add_func("/loop-monitor/worst-of-a-second", test_worst_of_a_second);
	g_test_add_func("/loop-monitor/slot-reused", test_slot_reused);
	g_test_add_func("/loop-monitor/poll-wrapper", test_poll_wrapper);
	g_test_add_func("/loop-monitor/poll-wrapper-cpu", test_poll_wrapper_cpu);
	g_test_add_func("/loop-monitor/cpu-of-the-worst", test_cpu_of_the_worst);
	g_test_add_func("/loop-monitor/long-stall-logged", test_long_stall_logged);
	return g_test_run();
}
