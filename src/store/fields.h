/*
 * Reading and checking the JSON fields of stored objects, for the kind
 * files of src/store (vm.c, node.c…) and nothing else: outside src/store,
 * objects are read through their typed views.
 *
 * The readers apply a default when a field is absent or of another type:
 * what is stored was checked when it was applied, so a wrong type only
 * comes from a release that did not check it.  The checkers are for apply:
 * deterministic, and their errors name the kind and the field.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* A string field, or NULL (absent, or not a string). */
const char *field_str(json_t *data, const char *key);
/* A string field, or "" */
const char *field_text(json_t *data, const char *key);
bool field_bool(json_t *data, const char *key, bool dflt);
uint64_t field_uint(json_t *data, const char *key, uint64_t dflt);

/* Apply-time checks: absent fields pass (a kind's defaults apply). */
bool check_string(json_t *data, const char *label, const char *key, GError **error);
bool check_bool(json_t *data, const char *label, const char *key, GError **error);
bool check_uint(json_t *data, const char *label, const char *key, uint64_t min, uint64_t max,
		GError **error);
/* One of @choices ("a|b|c"). */
bool check_choice(json_t *data, const char *label, const char *key, const char *choices,
		  GError **error);
/* An object whose values are all strings. */
bool check_string_map(json_t *data, const char *label, const char *key, GError **error);
