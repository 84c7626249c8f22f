/*
 * The unit tests' main loop and log.  A test waits for a condition by
 * running the GLib main loop until it holds, bounded by a deadline, never
 * by sleeping a fixed time; and it can check what herd logged.  Warnings
 * are not fatal here (a cluster that loses a node warns by design), every
 * message is kept for test_log_count(), and printed to stderr when it is a
 * warning or worse, or with HERD_TEST_LOG=1 set.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* How long TEST_WAIT waits before it fails the test. */
#define TEST_WAIT_MS 15000

/* Run one iteration of the default main context: block until something
 * is ready, or @deadline_us (monotonic) has passed. */
void test_loop_iterate(gint64 deadline_us);

/* Run the main loop until @expr holds (true) or @timeout_ms passed (false). */
#define test_loop_until(expr, timeout_ms)                                                  \
	({                                                                                 \
		gint64 test_deadline_ = g_get_monotonic_time() + (gint64)(timeout_ms) * 1000; \
		bool test_ok_;                                                             \
		while (!(test_ok_ = (expr)) && g_get_monotonic_time() < test_deadline_)      \
			test_loop_iterate(test_deadline_);                                 \
		test_ok_;                                                                  \
	})

/* Run the main loop until @expr holds; fail the test, naming @expr, if it
 * does not within TEST_WAIT_MS. */
#define TEST_WAIT(expr)                                                                    \
	do {                                                                               \
		if (!test_loop_until((expr), TEST_WAIT_MS))                                \
			g_error("%s:%d: still not true after %d ms: %s", __FILE__, __LINE__,     \
				TEST_WAIT_MS, #expr);                                       \
	} while (0)

/* Dispatch what is ready now, without blocking (at most a bounded number
 * of iterations). */
void test_loop_drain(void);

/* Install the log writer; once, in main() after g_test_init(). */
void test_log_init(void);
/* Errors stay fatal, except those that contain @needle: the test causes
 * them on purpose (a fence device that does not answer). */
void test_log_allow_error(const char *needle);
/* How many messages logged since the last test_log_clear() contain @needle. */
unsigned test_log_count(const char *needle);
void test_log_clear(void);
