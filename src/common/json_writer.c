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

void json_keys_init(json_keys *k, const char *const *names, unsigned n)
{
	g_return_if_fail(n <= JSON_KEYS_MAX);
	*k = (json_keys){ .n = n };
	for (unsigned i = 0; i < n; i++) {
		size_t len = strlen(names[i]);
		g_return_if_fail(len <= JSON_KEY_LEN_MAX);
		char *q = k->key[i].text;
		q[0] = ',';
		q[1] = '"';
		memcpy(q + 2, names[i], len);
		memcpy(q + 2 + len, "\":", 2);
		k->key[i].len = (uint8_t)(len + 4);
	}
	static const char *const values[] = { "null", "true", "false" };
	for (unsigned i = 0; i < 3; i++) {
		k->key[n + i].len = (uint8_t)strlen(values[i]);
		memcpy(k->key[n + i].text, values[i], k->key[n + i].len);
	}
}

/* The byte that stands for null (0), true (1) or false (2). */
static inline char value_code(const json_keys *k, unsigned which)
{
	return (char)(1 + k->n + which);
}

void json_writer_init_keyed(json_writer *w, GString *out, json_keys *keys)
{
	*w = (json_writer){ .out = out, .depth = 1, .keys = keys };
}

/* The index of @key in @k, or -1; the one after the last found is tried
 * first (keys come in the same order VM after VM). */
static int key_index(json_keys *k, const char *key)
{
	size_t len = strlen(key);
	for (unsigned n = 0; n < k->n; n++) {
		unsigned i = (k->next + n) % k->n;
		if (k->key[i].len == len + 4 && memcmp(k->key[i].text + 2, key, len) == 0) {
			k->next = (i + 1) % k->n;
			return (int)i;
		}
	}
	return -1;
}

size_t json_keyed_len(const char *text, size_t len, const json_keys *keys)
{
	size_t out = len;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c >= 0x20)
			continue;
		g_return_val_if_fail(c >= 1 && c <= keys->n + 3, 0);
		out += keys->key[c - 1].len - 1u;
	}
	return out;
}

/* Bit 7 of each byte of @x that is below 0x20; the lowest set bit is
 * exact, those above it may not be. */
static inline uint64_t bytes_below_space(uint64_t x)
{
	return (x - UINT64_C(0x2020202020202020)) & ~x & UINT64_C(0x8080808080808080);
}

void json_writer_members_keyed(json_writer *w, const char *text, size_t len, size_t json_len,
			       const json_keys *keys)
{
	g_return_if_fail(w->depth > 0 && !w->after_key);
	if (len == 0)
		return;
	separate(w);
	/* Written with copies of fixed sizes: room for one more key and 8
	 * bytes beyond the end, cut off at the end. */
	gsize at = w->out->len;
	g_string_set_size(w->out, at + json_len + sizeof(keys->key[0].text) + 8);
	char *d = w->out->str + at, *end = d + json_len;
	const char *p = text, *e = text + len;
	while (p < e && d <= end) {
		if (G_BYTE_ORDER == G_LITTLE_ENDIAN && e - p >= 8) {
			/* Eight bytes at once up to the next code. */
			uint64_t x;
			memcpy(&x, p, 8);
			memcpy(d, &x, 8);
			uint64_t codes = bytes_below_space(x);
			if (!codes) {
				p += 8;
				d += 8;
				continue;
			}
			unsigned before = (unsigned)__builtin_ctzll(codes) / 8;
			p += before;
			d += before;
		} else if ((unsigned char)*p >= 0x20) {
			*d++ = *p++;
			continue;
		}
		unsigned c = (unsigned char)*p++;
		if (c < 1 || c > keys->n + 3) {
			g_critical("json_writer: not text of these keys");
			break;
		}
		memcpy(d, keys->key[c - 1].text, sizeof(keys->key[0].text));
		d += keys->key[c - 1].len;
	}
	if (d != end || p != e)
		g_critical("json_writer: keyed text of another length than given");
	g_string_truncate(w->out, at + json_len);
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
	/* A key of one byte stands for the comma before it too: the first
	 * of an object is written as JSON. */
	uint64_t bit = UINT64_C(1) << w->depth;
	int i = w->keys && (w->has_items & bit) ? key_index(w->keys, key) : -1;
	if (i >= 0) {
		g_string_append_c(w->out, (char)(1 + i));
		w->after_key = true;
		return;
	}
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
	if (w->keys)
		g_string_append_c(w->out, value_code(w->keys, b ? 1 : 2));
	else
		g_string_append(w->out, b ? "true" : "false");
}

void json_writer_null(json_writer *w)
{
	separate(w);
	if (w->keys)
		g_string_append_c(w->out, value_code(w->keys, 0));
	else
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
