#include "common/size.h"

#include "common/error.h"

#include <string.h>

static const char units[] = "BKMGTPE";

bool herd_size_parse(const char *s, uint64_t max, const char *what, uint64_t *out, GError **error)
{
	const char *text = s ? s : "", *p = text;
	while (g_ascii_isdigit(*p))
		p++;
	bool whole = p > text, fraction = false;
	if (whole && *p == '.' && g_ascii_isdigit(p[1])) {
		fraction = true;
		for (p++; g_ascii_isdigit(*p); p++)
			;
	}
	g_autofree char *number = g_strndup(text, (gsize)(p - text));
	unsigned shift = 0;
	if (whole && *p) {
		const char *u = strchr(units + 1, g_ascii_toupper(*p));
		if (u && *u) {
			shift = 10 * (unsigned)(u - units);
			p++;
			if (g_ascii_strcasecmp(p, "iB") == 0 || g_ascii_strcasecmp(p, "B") == 0)
				p += strlen(p);
		}
	}
	/* A fraction only with a unit: no fractions of a byte. */
	if (!whole || *p || (fraction && shift == 0)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The %s '%s' is not a size: write a number with K, M, G or T (binary units), "
			    "e.g. 20G.", what, text);
		return false;
	}
	double v = g_ascii_strtod(number, NULL) * (double)(UINT64_C(1) << shift);
	if (v > (double)max) {
		g_autofree char *m = herd_size_format(max);
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The %s '%s' is too large: at most %s.",
			    what, text, m);
		return false;
	}
	if (v < 1) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The %s '%s' must be more than nothing.",
			    what, text);
		return false;
	}
	*out = (uint64_t)v;
	return true;
}

char *herd_size_format(uint64_t bytes)
{
	unsigned i = 0;
	double v = (double)bytes;
	while (v >= 1024 && units[i + 1]) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT " B", bytes);
	if (v == (double)(uint64_t)v)
		return g_strdup_printf("%.0f %ciB", v, units[i]);
	return g_strdup_printf("%.1f %ciB", v, units[i]);
}
