/*
 * Logging for herdd and its tools.
 *
 * Every line goes to stderr as "LEVEL component: message" (journald adds the
 * timestamp when run under systemd; on a terminal we add one ourselves).  The
 * component is the GLib log domain of the file that logs, so each source file
 * says which part of the daemon it belongs to by defining G_LOG_DOMAIN.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef enum {
	HERD_LOG_DEBUG = 0,
	HERD_LOG_INFO,
	HERD_LOG_WARNING,
	HERD_LOG_ERROR,
} herd_log_level;

/* Install the stderr writer; messages below @min_level are dropped. */
void herd_log_init(herd_log_level min_level, bool timestamps);

/* Change the threshold at run time (e.g. after the config file was read). */
void herd_log_set_level(herd_log_level min_level);

/* Parse "debug", "info", "warning" or "error"; returns false if unknown. */
bool herd_log_level_parse(const char *name, herd_log_level *out);

#define log_debug(...) g_log(G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  g_log(G_LOG_DOMAIN, G_LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  g_log(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, __VA_ARGS__)
/* An error the daemon survives; G_LOG_LEVEL_ERROR would abort. */
#define log_err(...)   g_log(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, __VA_ARGS__)
