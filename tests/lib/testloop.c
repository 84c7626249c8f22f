#include "testloop.h"

#include <stdio.h>
#include <string.h>

/* Messages kept at most; older ones are dropped first. */
#define LOG_KEEP_MAX 20000

static gboolean on_deadline(gpointer data)
{
	return G_SOURCE_REMOVE;
}

void test_loop_iterate(gint64 deadline_us)
{
	gint64 left_us = deadline_us - g_get_monotonic_time();
	if (left_us <= 0) {
		g_main_context_iteration(NULL, FALSE);
		return;
	}
	/* The timer only wakes the loop: whatever happened, the caller looks again. */
	guint timer = g_timeout_add((guint)MIN(left_us / 1000 + 1, G_MAXUINT), on_deadline, NULL);
	g_main_context_iteration(NULL, TRUE);
	GSource *s = g_main_context_find_source_by_id(NULL, timer);
	if (s && !g_source_is_destroyed(s))
		g_source_remove(timer);
}

void test_loop_drain(void)
{
	for (int i = 0; i < 10000 && g_main_context_iteration(NULL, FALSE); i++)
		;
}

/* ------------------------------------------------------------------ */

static struct {
	GMutex lock;
	GQueue lines;     /* char*: "LEVEL domain: message" */
	bool verbose;
	GPtrArray *allowed_errors;  /* test_log_allow_error() */
} logbook;

static const char *level_name(GLogLevelFlags level)
{
	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		return "error";
	if (level & G_LOG_LEVEL_WARNING)
		return "warning";
	if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
		return "info";
	return "debug";
}

static void record(GLogLevelFlags level, const char *domain, const char *message)
{
	char *line = g_strdup_printf("%s %s: %s", level_name(level), domain ? domain : "herd",
				     message ? message : "");
	bool loud = logbook.verbose || (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL |
						 G_LOG_LEVEL_WARNING));
	if (loud)
		fprintf(stderr, "%s\n", line);
	g_mutex_lock(&logbook.lock);
	bool fatal = level & G_LOG_LEVEL_CRITICAL;
	for (guint i = 0; fatal && logbook.allowed_errors && i < logbook.allowed_errors->len; i++)
		fatal = !strstr(line, logbook.allowed_errors->pdata[i]);
	g_queue_push_tail(&logbook.lines, line);
	if (g_queue_get_length(&logbook.lines) > LOG_KEEP_MAX)
		g_free(g_queue_pop_head(&logbook.lines));
	g_mutex_unlock(&logbook.lock);
	if (fatal)
		G_BREAKPOINT();
}

static GLogWriterOutput test_log_writer(GLogLevelFlags level, const GLogField *fields,
					gsize n_fields, gpointer user_data)
{
	const char *domain = NULL, *message = NULL;
	for (gsize i = 0; i < n_fields; i++) {
		if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0)
			domain = fields[i].value;
		else if (strcmp(fields[i].key, "MESSAGE") == 0)
			message = fields[i].value;
	}
	record(level, domain, message);
	return G_LOG_WRITER_HANDLED;
}

/* g_log() goes here under GTest (g_test_init() installs a handler of its own). */
static void test_log_handler(const char *domain, GLogLevelFlags level, const char *message,
			     gpointer user_data)
{
	record(level, domain, message);
}

void test_log_allow_error(const char *needle)
{
	g_mutex_lock(&logbook.lock);
	if (!logbook.allowed_errors)
		logbook.allowed_errors = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(logbook.allowed_errors, g_strdup(needle));
	g_mutex_unlock(&logbook.lock);
}

void test_log_init(void)
{
	logbook.verbose = g_strcmp0(g_getenv("HERD_TEST_LOG"), "1") == 0;
	g_log_set_writer_func(test_log_writer, NULL, NULL);
	g_log_set_default_handler(test_log_handler, NULL);
	/* g_test_init() makes warnings fatal; herd's are expected here.
	 * Criticals (herd's log_err, failed g_return_if_fail) stay fatal,
	 * unless allowed: record() aborts on them. */
	g_log_set_always_fatal(G_LOG_FATAL_MASK);
}

unsigned test_log_count(const char *needle)
{
	unsigned n = 0;
	g_mutex_lock(&logbook.lock);
	for (GList *l = logbook.lines.head; l; l = l->next)
		n += strstr(l->data, needle) != NULL;
	g_mutex_unlock(&logbook.lock);
	return n;
}

void test_log_clear(void)
{
	g_mutex_lock(&logbook.lock);
	g_queue_clear_full(&logbook.lines, g_free);
	g_mutex_unlock(&logbook.lock);
}
