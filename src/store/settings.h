/*
 * The cluster's settings: one table of every key with its type, range,
 * default and meaning.  The API validates changes against it, `herd cluster
 * settings` prints it, and readers ask for a value with its default applied.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef enum { SETTING_INT, SETTING_BOOL, SETTING_ENUM } cluster_setting_type;

typedef struct cluster_setting {
	const char *key;
	cluster_setting_type type;
	long long min, max;       /* SETTING_INT */
	const char *choices;      /* SETTING_ENUM: "a|b|c" */
	const char *default_value;
	const char *help;
	bool corosync;            /* takes effect in corosync.conf */
} cluster_setting;

/* All settings, terminated by a zeroed entry. */
extern const cluster_setting cluster_settings[];

const cluster_setting *cluster_setting_find(const char *key);

/*
 * Validate @changes (an object of key -> value; null resets to the default)
 * and return them as typed JSON values ready for a patch.  Values may be
 * strings ("300", "yes") as typed on a command line.
 */
json_t *cluster_settings_validate(json_t *changes, GError **error);

/* The effective settings: @stored (may be NULL) over the defaults. */
json_t *cluster_settings_effective(json_t *stored);

/* One effective value. */
long long cluster_setting_int(json_t *stored, const char *key);
bool cluster_setting_bool(json_t *stored, const char *key);
const char *cluster_setting_string(json_t *stored, const char *key);
