/*
 * How long herdd's main loop goes without looking at its file descriptors:
 * the longest an event (an API request, a corosync message, a libvirt
 * event) can wait before the loop sees it.  The monitor wraps the
 * GMainContext's poll function and times each stretch from one poll's
 * return to the next poll, i.e. the check and dispatch of everything that
 * was ready plus the next prepare.  A stretch is a stall, whatever it was
 * spent on: CPU work, a blocking call, or waiting for a CPU.
 *
 * Why not a periodic timer that measures how late it fires: it wakes the
 * daemon 100 times a second, and a stall of S ms shows as anything between
 * S - interval and S.  Timing the stretches costs two vDSO clock reads per
 * loop iteration, exactly, with no wake-ups (bench/loop-monitor-cost).
 *
 * Beside each stretch the monitor keeps the CPU time the loop's thread got
 * in it (two reads of its thread CPU clock): a stretch much longer than its
 * CPU time was the thread waiting, for a CPU or in a blocking call, not
 * herd's work.
 *
 * The bookkeeping (loop_stalls) is pure: it takes the times it is given.
 */
#pragma once

#include <glib.h>

/* A stall at least this long is also logged (a warning, when it ends),
 * so that the log shows when it happened beside what else went on. */
#define LOOP_MONITOR_LOG_STALL_US (1000 * 1000)

/* Seconds of per-second maxima kept. */
#define LOOP_STALLS_SECONDS 60

/* The worst stall of each of the last LOOP_STALLS_SECONDS seconds, and of
 * all time. */
typedef struct loop_stalls {
	gint64 second[LOOP_STALLS_SECONDS];  /* which second slot i holds, or -1 */
	gint64 max_us[LOOP_STALLS_SECONDS];  /* the longest stall that ended in it */
	gint64 cpu_us[LOOP_STALLS_SECONDS];  /* the CPU time the thread got in that one; -1: unknown */
	gint64 max_ever_us;
	gint64 max_ever_cpu_us;              /* -1: unknown */
} loop_stalls;

/* Empty bookkeeping. */
void loop_stalls_init(loop_stalls *s);
/* A stall of @stall_us ended at monotonic time @end_us (never earlier than
 * the end of the one recorded before). */
void loop_stalls_record(loop_stalls *s, gint64 end_us, gint64 stall_us);
/* The same, with the CPU time @cpu_us the thread got in it (-1: unknown). */
void loop_stalls_record_cpu(loop_stalls *s, gint64 end_us, gint64 stall_us, gint64 cpu_us);
/* The longest stall that ended in the second of @now_us or the @window_s - 1
 * seconds before it (window_s <= LOOP_STALLS_SECONDS); 0 if none. */
gint64 loop_stalls_max_us(const loop_stalls *s, gint64 now_us, unsigned window_s);
/* The CPU time the thread got in that stall; -1 if unknown or none. */
gint64 loop_stalls_max_cpu_us(const loop_stalls *s, gint64 now_us, unsigned window_s);

/* The CPU time the calling thread has had, in microseconds (0 if unknown). */
gint64 loop_monitor_thread_cpu_us(void);
/* The CPU time the whole process has had, user and system, in
 * microseconds (0 if unknown). */
gint64 loop_monitor_process_cpu_us(void);

/* A monotonic clock in microseconds (g_get_monotonic_time, or a test's). */
typedef gint64 (*loop_monitor_clock_fn)(void);

typedef struct loop_monitor loop_monitor;

/* Start timing the stretches of @context (NULL: the default one) by
 * wrapping its poll function; @clock NULL means g_get_monotonic_time and
 * the thread's CPU time beside it (a test's @clock: no CPU times).  A
 * poll function has no user data, so only one monitor runs at a time:
 * NULL (and a warning) if another one does. */
loop_monitor *loop_monitor_start(GMainContext *context, loop_monitor_clock_fn clock);
/* Put the context's poll function back and free @m (NULL is fine). */
void loop_monitor_free(loop_monitor *m);
/* The bookkeeping so far. */
const loop_stalls *loop_monitor_stalls(const loop_monitor *m);
