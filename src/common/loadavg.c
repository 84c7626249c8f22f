#include "common/loadavg.h"

#include <glib.h>
#include <math.h>

bool herd_loadavg_parse(const char *text, unsigned *load_x100)
{
	if (!text || !g_ascii_isdigit(text[0]))
		return false;
	char *end = NULL;
	double v = g_ascii_strtod(text, &end);
	/* One number, then a space or the end: "0.52 0.58 …". */
	if (end == text || (*end && !g_ascii_isspace(*end)) || !isfinite(v) || v < 0 || v > 1e6)
		return false;
	*load_x100 = (unsigned)(v * 100 + 0.5);
	return true;
}

bool herd_loadavg_read(unsigned *load_x100)
{
	g_autofree char *text = NULL;
	if (!g_file_get_contents("/proc/loadavg", &text, NULL, NULL))
		return false;
	return herd_loadavg_parse(text, load_x100);
}
