#include "common/size.h"

#include "common/error.h"

#include <string.h>

static const char units[] = "BKMGTPE";

bool herd_size_parse(const char *s, uint64_t max, const char *what, uint64_t *out, GError **error)
{
	const char *p = s ? s : "";
	while (g_ascii_isdigit(*p))
		p++;
	const char *digits_end = p;
	if (*p == '.')
		for (p++; g_ascii_isdigit(*p); p++)
			;
	g_autofree char *number = g_strndup(s ? s : "", p - (s ? s : ""));
	unsigned shift = 0;
	if (*p) {
		const char *u = strchr(units + 1, g_ascii_toupper(*p));
		if (!u)
			goto bad;
		shift = 10 * (unsigned)(u - units);
		p++;
		if (g_ascii_strcasecmp(p, "iB") == 0 || g_ascii_strcasecmp(p, "B") == 0)
			p += strlen(p);
	}
	if (*p || digits_end == (s ? s : "") || (digits_end != p && shift == 0) ||
	    (*digits_end == '.' && !digits_end[1]))
		goto bad;
	double v = g_ascii_strtod(number, NULL) * (double)(UINT64_C(1) << shift);
	if (v > (double)max || v >= 18446744073709551615.0) {
		g_autofree char *m = herd_size_format(max);
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The %s '%s' is too large: at most %s.",
			    what, s, m);
		return false;
	}
	if (v < 1) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The %s '%s' must be more than nothing.",
			    what, s);
		return false;
	}
	*out = (uint64_t)v;
	return true;
bad:
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
		    "The %s '%s' is not a size: write a number with K, M, G or T (binary units), "
		    "e.g. 20G.", what, s ? s : "");
	return false;
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
