#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static herd_log_level log_min_level = HERD_LOG_INFO;
static bool log_timestamps;

static herd_log_level level_of(GLogLevelFlags flags)
{
	if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return HERD_LOG_ERROR;
	if (flags & G_LOG_LEVEL_WARNING)
		return HERD_LOG_WARNING;
	if (flags & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
		return HERD_LOG_INFO;
	return HERD_LOG_DEBUG;
}

static const char *const level_names[] = { "debug", "info", "warning", "error" };

static GLogWriterOutput herd_log_writer(GLogLevelFlags flags, const GLogField *fields,
					gsize n_fields, gpointer user_data)
{
	herd_log_level level = level_of(flags);
	const char *domain = NULL, *message = NULL;

	if (level < log_min_level)
		return G_LOG_WRITER_HANDLED;
	for (gsize i = 0; i < n_fields; i++) {
		if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0)
			domain = fields[i].value;
		else if (strcmp(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	char stamp[40] = "";
	if (log_timestamps) {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		size_t n = strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
		snprintf(stamp + n, sizeof(stamp) - n, ".%03ld ", ts.tv_nsec / 1000000);
	}
	/* One fprintf per line keeps lines whole when several threads log. */
	fprintf(stderr, "%s%s %s: %s\n", stamp, level_names[level],
		domain ? domain : "herd", message ? message : "");
	return G_LOG_WRITER_HANDLED;
}

void herd_log_init(herd_log_level min_level, bool timestamps)
{
	log_min_level = min_level;
	log_timestamps = timestamps;
	g_log_set_writer_func(herd_log_writer, NULL, NULL);
}

void herd_log_set_level(herd_log_level min_level)
{
	log_min_level = min_level;
}

bool herd_log_level_parse(const char *name, herd_log_level *out)
{
	for (unsigned i = 0; i < G_N_ELEMENTS(level_names); i++) {
		if (g_ascii_strcasecmp(name, level_names[i]) == 0) {
			*out = (herd_log_level)i;
			return true;
		}
	}
	if (g_ascii_strcasecmp(name, "warn") == 0) {
		*out = HERD_LOG_WARNING;
		return true;
	}
	return false;
}
