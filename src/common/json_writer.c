#include "common/json_writer.h"

#include <string.h>

void json_writer_init(json_writer *w, GString *out)
{
	*w = (json_writer){ .out = out };
}

void json_writer_init_members(json_writer *w, GString *out)
{
	*w = (json_writer){ .out = out, .depth = 1 };
}

/* Before a value: the comma that separates it from the one before, unless
 * it is an object member's value (its key wrote the comma). */
static void separate(json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	uint64_t bit = UINT64_C(1) << w->depth;
	if (w->has_items & bit)
		g_string_append_c(w->out, ',');
	w->has_items |= bit;
}

static void container_begin(json_writer *w, char c)
{
	separate(w);
	g_return_if_fail(w->depth + 1 < JSON_WRITER_DEPTH_MAX);
	g_string_append_c(w->out, c);
	w->depth++;
	w->has_items &= ~(UINT64_C(1) << w->depth);
}

static void container_end(json_writer *w, char c)
{
	g_return_if_fail(w->depth > 0 && !w->after_key);
	w->depth--;
	g_string_append_c(w->out, c);
}

void json_writer_members_text(json_writer *w, const char *text, size_t len)
{
	g_return_if_fail(w->depth > 0 && !w->after_key);
	if (len == 0)
		return;
	separate(w);
	g_string_append_len(w->out, text, (gssize)len);
}

void json_writer_object_begin(json_writer *w)
{
	container_begin(w, '{');
}

void json_writer_object_end(json_writer *w)
{
	container_end(w, '}');
}

void json_writer_array_begin(json_writer *w)
{
	container_begin(w, '[');
}

void json_writer_array_end(json_writer *w)
{
	container_end(w, ']');
}

void json_text_append_string(GString *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	g_string_append_c(out, '"');
	const char *run = s;   /* bytes that need no escape, not yet copied */
	for (const char *p = s; p < s + len; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		g_string_append_len(out, run, p - run);
		run = p + 1;
		switch (c) {
		case '"': g_string_append(out, "\\\""); break;
		case '\\': g_string_append(out, "\\\\"); break;
		case '\n': g_string_append(out, "\\n"); break;
		case '\r': g_string_append(out, "\\r"); break;
		case '\t': g_string_append(out, "\\t"); break;
		case '\b': g_string_append(out, "\\b"); break;
		case '\f': g_string_append(out, "\\f"); break;
		default: {
			char u[7] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0 };
			g_string_append(out, u);
		}
		}
	}
	g_string_append_len(out, run, s + len - run);
	g_string_append_c(out, '"');
}

/* @s as a JSON string, bytes that are not UTF-8 replaced. */
static void append_text(GString *out, const char *s)
{
	size_t len = strlen(s);
	if (g_utf8_validate_len(s, len, NULL)) {
		json_text_append_string(out, s, len);
		return;
	}
	g_autofree char *valid = g_utf8_make_valid(s, len);
	json_text_append_string(out, valid, strlen(valid));
}

void json_writer_string(json_writer *w, const char *s)
{
	if (!s) {
		json_writer_null(w);
		return;
	}
	separate(w);
	append_text(w->out, s);
}

void json_writer_key(json_writer *w, const char *key)
{
	g_return_if_fail(!w->after_key);
	separate(w);
	/* Keys come from herd's code: nothing in them needs escaping. */
	g_string_append_c(w->out, '"');
	g_string_append(w->out, key);
	g_string_append_len(w->out, "\":", 2);
	w->after_key = true;
}

void json_writer_int(json_writer *w, int64_t n)
{
	separate(w);
	/* printf costs more than the rest of a VM's line together. */
	char digits[24];
	char *p = digits + sizeof(digits);
	uint64_t u = n < 0 ? -(uint64_t)n : (uint64_t)n;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (n < 0)
		*--p = '-';
	g_string_append_len(w->out, p, digits + sizeof(digits) - p);
}

void json_writer_bool(json_writer *w, bool b)
{
	separate(w);
	g_string_append(w->out, b ? "true" : "false");
}

void json_writer_null(json_writer *w)
{
	separate(w);
	g_string_append(w->out, "null");
}

void json_writer_member_string(json_writer *w, const char *key, const char *s)
{
	json_writer_key(w, key);
	json_writer_string(w, s);
}

void json_writer_member_int(json_writer *w, const char *key, int64_t n)
{
	json_writer_key(w, key);
	json_writer_int(w, n);
}

void json_writer_member_bool(json_writer *w, const char *key, bool b)
{
	json_writer_key(w, key);
	json_writer_bool(w, b);
}
