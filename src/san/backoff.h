/*
 * When to start a volume's nbdkit again after it exited: at once after a
 * long run, then later and later while it keeps dying soon after its start
 * (a broken plugin, a full disk), so that herd-san neither spins nor gives
 * up.  And when the plugin's link tries its peer again: soon after a loss
 * (a short cut heals fast), then at most once a second.  Pure: the shell
 * passes how long the process ran, how many attempts failed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* A run this long was a good one: the next exit starts the count anew. */
#define SAN_BACKOFF_STABLE_MS 30000
#define SAN_BACKOFF_FIRST_MS 500
#define SAN_BACKOFF_MAX_MS 60000
/* From this many quick exits in a row on, each exit is reported (an error event). */
#define SAN_BACKOFF_ALARM_EXITS 3

typedef struct {
	unsigned quick_exits;	/* exits in a row, each soon after its start */
} san_backoff;

/* Record an exit after @ran_ms of running; the delay in ms before the next start. */
uint64_t san_backoff_exit(san_backoff *b, uint64_t ran_ms);

/* True when the exits just recorded are worth an error event. */
bool san_backoff_alarming(const san_backoff *b);

/* The plugin's link to its peer: attempts start SAN_LINK_RETRY_FIRST_MS
 * apart after the first failure, twice as far after each further one, up
 * to SAN_LINK_RETRY_MAX_MS; a connection made starts the count anew. */
#define SAN_LINK_RETRY_FIRST_MS 50
#define SAN_LINK_RETRY_MAX_MS 1000

/* The time in ms from the start of the attempt that failed as the
 * @failures-th in a row (1, 2, …) to the start of the next. */
unsigned san_link_retry_ms(unsigned failures);
