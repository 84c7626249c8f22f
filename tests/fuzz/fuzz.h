/*
 * Shared by the fuzz targets: libFuzzer's entry points, and a quiet log.
 *
 * Each target is one LLVMFuzzerTestOneInput().  Built with -Dfuzz=true and
 * clang it links against libFuzzer; always, it links against replay.c,
 * which runs the committed corpus (tests/fuzz/corpus/<target>/) through it
 * as a normal test, so the sanitizer build checks every seed.
 */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A target's invariant does not hold: report and abort (a finding). */
#define FUZZ_CHECK(cond)                                                              \
	do {                                                                           \
		if (!(cond))                                                           \
			g_error("%s:%d: invariant failed: %s", __FILE__, __LINE__, #cond); \
	} while (0)

static void fuzz_quiet_log(const char *domain, GLogLevelFlags level, const char *text,
			   gpointer data)
{
}

/* Logs of herd's own domains are expected noise while fuzzing. */
static inline void fuzz_quiet(void)
{
	static const char *const domains[] = { "store", "api", "virt", "common", "herd", NULL };
	for (const char *const *d = domains; *d; d++)
		g_log_set_handler(*d, (GLogLevelFlags)(G_LOG_LEVEL_MASK & ~G_LOG_LEVEL_ERROR),
				  fuzz_quiet_log, NULL);
}

/* The input as a NUL-terminated string (a copy; g_free it). */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = g_malloc(size + 1);
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}
