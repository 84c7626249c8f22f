#include "cli/table.h"

#include <stdarg.h>
#include <stdio.h>

struct cli_table {
	GPtrArray *headers;
	GPtrArray *rows; /* of GPtrArray of char* */
};

cli_table *cli_table_new(const char *first_header, ...)
{
	cli_table *t = g_new0(cli_table, 1);
	t->headers = g_ptr_array_new_with_free_func(g_free);
	t->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
	va_list ap;
	va_start(ap, first_header);
	for (const char *h = first_header; h; h = va_arg(ap, const char *))
		g_ptr_array_add(t->headers, g_strdup(h));
	va_end(ap);
	return t;
}

void cli_table_add(cli_table *t, ...)
{
	GPtrArray *row = g_ptr_array_new_with_free_func(g_free);
	va_list ap;
	va_start(ap, t);
	for (guint i = 0; i < t->headers->len; i++) {
		const char *cell = va_arg(ap, const char *);
		g_ptr_array_add(row, g_strdup(cell ? cell : "-"));
	}
	va_end(ap);
	g_ptr_array_add(t->rows, row);
}

void cli_table_print(cli_table *t)
{
	guint n = t->headers->len;
	g_autofree int *width = g_new0(int, n);
	for (guint i = 0; i < n; i++)
		width[i] = (int)g_utf8_strlen(t->headers->pdata[i], -1);
	for (guint r = 0; r < t->rows->len; r++) {
		GPtrArray *row = t->rows->pdata[r];
		for (guint i = 0; i < n; i++)
			width[i] = MAX(width[i], (int)g_utf8_strlen(row->pdata[i], -1));
	}
	for (guint r = 0; r <= t->rows->len; r++) {
		GPtrArray *row = r == 0 ? t->headers : t->rows->pdata[r - 1];
		GString *line = g_string_new(NULL);
		for (guint i = 0; i < n; i++) {
			const char *cell = row->pdata[i];
			g_string_append(line, cell);
			if (i + 1 < n)
				for (int pad = (int)g_utf8_strlen(cell, -1); pad < width[i] + 2; pad++)
					g_string_append_c(line, ' ');
		}
		puts(line->str);
		g_string_free(line, TRUE);
	}
	cli_table_free(t);
}

void cli_table_free(cli_table *t)
{
	g_ptr_array_unref(t->rows);
	g_ptr_array_unref(t->headers);
	g_free(t);
}
