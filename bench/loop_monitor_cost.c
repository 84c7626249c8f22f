/*
 * Benchmark of the main-loop monitor's own cost (src/common/loop_monitor.c):
 * the CPU time of one main-loop iteration with and without the monitor's
 * poll wrapper, on a private GMainContext whose one source (an idle source)
 * is always ready, so that every iteration polls and dispatches and nothing
 * waits.  That is the worst case: in herdd each iteration also runs real
 * handlers, which take far longer than an empty one.
 *
 *   loop-monitor-cost [ITERATIONS [ROUNDS]]      (default 200000 7)
 *
 * Rounds alternate with and without the monitor; the least CPU time per
 * iteration of each is printed, then what the monitor adds.  The monitor
 * has no timer: an idle herdd is not woken by it.  Asserts nothing about
 * time.
 */
#include "common/loop_monitor.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static gboolean on_idle(gpointer data)
{
	(*(guint64 *)data)++;
	return G_SOURCE_CONTINUE;
}

static double thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* CPU ns per iteration of @ctx, @iterations times. */
static double run(GMainContext *ctx, unsigned iterations)
{
	double t0 = thread_cpu_ns();
	for (unsigned i = 0; i < iterations; i++)
		g_main_context_iteration(ctx, FALSE);
	return (thread_cpu_ns() - t0) / iterations;
}

int main(int argc, char **argv)
{
	unsigned iterations = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 200000;
	unsigned rounds = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 7;
	if (iterations == 0 || rounds == 0) {
		fprintf(stderr, "usage: loop-monitor-cost [ITERATIONS [ROUNDS]]\n");
		return 2;
	}
	GMainContext *ctx = g_main_context_new();
	guint64 dispatched = 0;
	GSource *idle = g_idle_source_new();
	g_source_set_callback(idle, on_idle, &dispatched, NULL);
	g_source_attach(idle, ctx);
	g_source_unref(idle);

	run(ctx, iterations / 10); /* warm up */
	double plain = G_MAXDOUBLE, monitored = G_MAXDOUBLE;
	for (unsigned r = 0; r < rounds; r++) {
		plain = MIN(plain, run(ctx, iterations));
		loop_monitor *m = loop_monitor_start(ctx, NULL);
		monitored = MIN(monitored, run(ctx, iterations));
		loop_monitor_free(m);
	}
	g_main_context_unref(ctx);

	printf("%u rounds of %u iterations of an always-ready main loop (least CPU time per iteration)\n",
	       rounds, iterations);
	printf("main-loop iteration: %.0f ns without the monitor, %.0f ns with it\n", plain, monitored);
	printf("main-loop monitor cost: %+.0f ns per iteration, no wake-ups of its own\n",
	       monitored - plain);
	return 0;
}
