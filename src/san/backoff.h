/*
 * When to start a volume's nbdkit again after it exited: at once after a
 * long run, then later and later while it keeps dying soon after its start
 * (a broken plugin, a full disk), so that herd-san neither spins nor gives
 * up.  Pure: the shell passes how long the process ran.
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
