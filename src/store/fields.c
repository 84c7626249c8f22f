#include "store/fields.h"

#include "common/error.h"

#include <string.h>

const char *field_str(json_t *data, const char *key)
{
	return json_string_value(json_object_get(data, key));
}

const char *field_text(json_t *data, const char *key)
{
	const char *s = field_str(data, key);
	return s ? s : "";
}

bool field_bool(json_t *data, const char *key, bool dflt)
{
	json_t *v = json_object_get(data, key);
	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

uint64_t field_uint(json_t *data, const char *key, uint64_t dflt)
{
	json_t *v = json_object_get(data, key);
	return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint64_t)json_integer_value(v) : dflt;
}

static bool bad(const char *label, const char *key, const char *what, GError **error)
{
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The %s's field '%s' must be %s.", label, key,
		    what);
	return false;
}

bool check_string(json_t *data, const char *label, const char *key, GError **error)
{
	json_t *v = json_object_get(data, key);
	return !v || (json_is_string(v) && json_string_length(v) > 0) ||
	       bad(label, key, "a non-empty string", error);
}

bool check_bool(json_t *data, const char *label, const char *key, GError **error)
{
	json_t *v = json_object_get(data, key);
	return !v || json_is_boolean(v) || bad(label, key, "true or false", error);
}

bool check_uint(json_t *data, const char *label, const char *key, uint64_t min, uint64_t max,
		GError **error)
{
	json_t *v = json_object_get(data, key);
	if (!v || (json_is_integer(v) && json_integer_value(v) >= 0 &&
		   (uint64_t)json_integer_value(v) >= min && (uint64_t)json_integer_value(v) <= max))
		return true;
	g_autofree char *what = g_strdup_printf("a whole number from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
						min, max);
	return bad(label, key, what, error);
}

bool check_choice(json_t *data, const char *label, const char *key, const char *choices,
		  GError **error)
{
	json_t *v = json_object_get(data, key);
	if (!v)
		return true;
	const char *s = json_string_value(v);
	size_t n = s ? strlen(s) : 0;
	for (const char *p = choices; s && *p;) {
		const char *end = strchrnul(p, '|');
		if ((size_t)(end - p) == n && memcmp(p, s, n) == 0)
			return true;
		p = *end ? end + 1 : end;
	}
	g_autofree char *what = g_strdup_printf("one of %s", choices);
	return bad(label, key, what, error);
}

bool check_string_map(json_t *data, const char *label, const char *key, GError **error)
{
	json_t *v = json_object_get(data, key);
	if (!v)
		return true;
	if (!json_is_object(v))
		return bad(label, key, "an object of strings", error);
	const char *k;
	json_t *e;
	json_object_foreach(v, k, e)
		if (!json_is_string(e))
			return bad(label, key, "an object of strings", error);
	return true;
}
