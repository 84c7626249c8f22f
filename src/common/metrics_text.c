#include "common/metrics_text.h"

#include <math.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdbool.h>

struct metrics_text {
	GString *out;
	char *family;
	GHashTable *seen;  /* families begun */
};

metrics_text *metrics_text_new(void)
{
	metrics_text *m = g_new0(metrics_text, 1);
	m->out = g_string_sized_new(4096);
	m->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return m;
}

/* HELP text escapes backslash and newline; label values also the quote. */
static void append_escaped(GString *out, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			g_string_append(out, "\\\\");
		else if (*s == '\n')
			g_string_append(out, "\\n");
		else if (quote && *s == '"')
			g_string_append(out, "\\\"");
		else
			g_string_append_c(out, *s);
	}
}

void metrics_family(metrics_text *m, const char *name, const char *type, const char *help)
{
	g_return_if_fail(!g_hash_table_contains(m->seen, name));
	g_hash_table_add(m->seen, g_strdup(name));
	g_free(m->family);
	m->family = g_strdup(name);
	g_string_append_printf(m->out, "# HELP %s ", name);
	append_escaped(m->out, help, false);
	g_string_append_printf(m->out, "\n# TYPE %s %s\n", name, type);
}

static void append_value(GString *out, double v)
{
	if (isnan(v))
		g_string_append(out, "NaN");
	else if (isinf(v))
		g_string_append(out, v > 0 ? "+Inf" : "-Inf");
	else if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v)
		g_string_append_printf(out, "%.0f", v);
	else
		g_string_append_printf(out, "%.17g", v);
}

void metrics_sample_v(metrics_text *m, double value, const char *const *labels, size_t n)
{
	g_return_if_fail(m->family);
	g_string_append(m->out, m->family);
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		const char *name = labels[2 * i], *v = labels[2 * i + 1];
		if (!v)
			continue;
		g_string_append(m->out, any ? "," : "{");
		any = true;
		g_string_append_printf(m->out, "%s=\"", name);
		append_escaped(m->out, v, true);
		g_string_append_c(m->out, '"');
	}
	if (any)
		g_string_append_c(m->out, '}');
	g_string_append_c(m->out, ' ');
	append_value(m->out, value);
	g_string_append_c(m->out, '\n');
}

void metrics_sample(metrics_text *m, double value, ...)
{
	const char *labels[32];
	size_t n = 0;
	va_list ap;
	va_start(ap, value);
	for (const char *k = va_arg(ap, const char *); k && n < G_N_ELEMENTS(labels) / 2;
	     k = va_arg(ap, const char *)) {
		labels[2 * n] = k;
		labels[2 * n + 1] = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	metrics_sample_v(m, value, labels, n);
}

GString *metrics_text_free(metrics_text *m)
{
	GString *out = m->out;
	g_hash_table_unref(m->seen);
	g_free(m->family);
	g_free(m);
	return out;
}
