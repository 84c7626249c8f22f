/*
 * The host's load average, as /proc/loadavg has it ("0.52 0.58 0.59
 * 1/467 12345"): what the dashboard shows as a node's CPU use, beside
 * its CPUs (facts, never decided on).
 */
#pragma once

#include <stdbool.h>

/* The 1-minute load average of @text (the contents of /proc/loadavg),
 * × 100 and rounded, into *@load_x100; false if @text does not start with
 * a non-negative decimal number. */
bool herd_loadavg_parse(const char *text, unsigned *load_x100);

/* /proc/loadavg read and parsed; false if it cannot be. */
bool herd_loadavg_read(unsigned *load_x100);
