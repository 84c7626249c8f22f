/* common/json_writer: the text it writes is the JSON it was asked for. */
#include "common/json.h"
#include "common/json_writer.h"

#include <string.h>

/* Parse what was written; fail the test if it is not JSON. */
static json_t *parsed(GString *text)
{
	json_error_t err;
	json_t *j = json_loads(text->str, 0, &err);
	if (!j)
		g_error("not JSON (%s): %s", err.text, text->str);
	return j;
}

static void test_nesting(void)
{
	g_autoptr(GString) text = g_string_new(NULL);
	json_writer w;
	json_writer_init(&w, text);
	json_writer_array_begin(&w);
	json_writer_object_begin(&w);
	json_writer_member_string(&w, "name", "web1");
	json_writer_member_int(&w, "memory_mib", 4096);
	json_writer_member_int(&w, "big", INT64_MIN);
	json_writer_member_int(&w, "zero", 0);
	json_writer_member_int(&w, "max", INT64_MAX);
	json_writer_member_bool(&w, "ha", true);
	json_writer_member_bool(&w, "failback", false);
	json_writer_member_string(&w, "sticky", NULL);
	json_writer_key(&w, "failed");
	json_writer_array_begin(&w);
	json_writer_array_end(&w);
	json_writer_key(&w, "nested");
	json_writer_array_begin(&w);
	json_writer_int(&w, 1);
	json_writer_object_begin(&w);
	json_writer_object_end(&w);
	json_writer_null(&w);
	json_writer_array_end(&w);
	json_writer_object_end(&w);
	json_writer_object_begin(&w);
	json_writer_object_end(&w);
	json_writer_array_end(&w);
	g_assert_cmpstr(text->str, ==,
			"[{\"name\":\"web1\",\"memory_mib\":4096,\"big\":-9223372036854775808,\"zero\":0,\"max\":9223372036854775807,\"ha\":true,"
			"\"failback\":false,\"sticky\":null,\"failed\":[],\"nested\":[1,{},null]},{}]");
	g_autoptr(json_t) j = parsed(text);
	g_assert_cmpuint(json_array_size(j), ==, 2);
}

static void test_strings(void)
{
	static const char *const cases[] = {
		"", "plain", "quote \" backslash \\ slash /", "\n\r\t\b\f", "\x01\x1f\x7f",
		"<domain type='kvm'>\n  <name>x</name>\n</domain>", "Grüße, ÄÖÜ €", "\xf0\x9f\x90\x91",
	};
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GString) text = g_string_new(NULL);
		json_writer w;
		json_writer_init(&w, text);
		json_writer_object_begin(&w);
		json_writer_member_string(&w, "value", cases[i]);
		json_writer_object_end(&w);
		g_autoptr(json_t) j = parsed(text);
		g_assert_cmpstr(json_string_value(json_object_get(j, "value")), ==, cases[i]);
	}
}

/* Bytes that are not UTF-8 are replaced: the text stays JSON. */
static void test_not_utf8(void)
{
	g_autoptr(GString) text = g_string_new(NULL);
	json_writer w;
	json_writer_init(&w, text);
	json_writer_array_begin(&w);
	json_writer_string(&w, "ab\xff" "cd\xc3");
	json_writer_array_end(&w);
	g_autoptr(json_t) j = parsed(text);
	g_assert_cmpstr(json_string_value(json_array_get(j, 0)), ==, "ab\xef\xbf\xbd" "cd\xef\xbf\xbd");
}

/* The same members written as JSON and with keys of one byte. */
static void write_members(json_writer *w)
{
	json_writer_member_string(w, "name", "web1");
	json_writer_member_int(w, "version", -3);
	json_writer_member_string(w, "text", "a{b\"c\n\x01");
	json_writer_key(w, "empty");
	json_writer_object_begin(w);
	json_writer_object_end(w);
	json_writer_key(w, "nodes");
	json_writer_array_begin(w);
	for (int i = 0; i < 3; i++) {
		json_writer_object_begin(w);
		json_writer_member_string(w, "node", i == 1 ? "{" : "n1");
		json_writer_member_int(w, "priority", i);
		json_writer_key(w, "inner");
		json_writer_object_begin(w);
		json_writer_member_bool(w, "ha", i == 2);
		json_writer_object_end(w);
		json_writer_object_end(w);
	}
	json_writer_array_end(w);
	json_writer_key(w, "list");
	json_writer_array_begin(w);
	json_writer_int(w, 1);
	json_writer_null(w);
	json_writer_array_begin(w);
	json_writer_array_end(w);
	json_writer_array_end(w);
	json_writer_member_string(w, "sticky", NULL);
}

/* Text with keys of one byte is smaller, and written out it is the same
 * bytes as the members written as JSON, in an object alone or after
 * others; a key not among the writer's ("inner") is written as JSON. */
static void test_keyed(void)
{
	static const char *const names[] = { "name", "version", "text", "empty", "nodes",
					     "node", "priority", "ha", "list", "sticky" };
	json_keys keys;
	json_keys_init(&keys, names, G_N_ELEMENTS(names));
	g_autoptr(GString) plain = g_string_new(NULL), keyed = g_string_new(NULL);
	json_writer w;
	json_writer_init_members(&w, plain);
	write_members(&w);
	json_writer_init_keyed(&w, keyed, &keys);
	write_members(&w);
	g_assert_cmpuint(keyed->len, <, plain->len * 2 / 3);
	g_assert_cmpuint(json_keyed_len(keyed->str, keyed->len, &keys), ==, plain->len);
	for (int before = 0; before < 2; before++) {
		g_autoptr(GString) want = g_string_new(NULL), got = g_string_new(NULL);
		json_writer_init(&w, want);
		json_writer_array_begin(&w);
		json_writer_object_begin(&w);
		if (before)
			json_writer_member_int(&w, "first", 1);
		json_writer_members_text(&w, plain->str, plain->len);
		json_writer_member_bool(&w, "last", true);
		json_writer_object_end(&w);
		json_writer_array_end(&w);
		json_writer_init(&w, got);
		json_writer_array_begin(&w);
		json_writer_object_begin(&w);
		if (before)
			json_writer_member_int(&w, "first", 1);
		json_writer_members_keyed(&w, keyed->str, keyed->len, plain->len, &keys);
		json_writer_member_bool(&w, "last", true);
		json_writer_object_end(&w);
		json_writer_array_end(&w);
		g_assert_cmpstr(got->str, ==, want->str);
		g_autoptr(json_t) j = parsed(got);
		g_assert_cmpuint(json_object_size(json_array_get(j, 0)), ==, 8 + (before ? 1 : 0));
	}
	/* Nothing at all: nothing written, no comma. */
	g_autoptr(GString) none = g_string_new(NULL);
	json_writer_init(&w, none);
	json_writer_object_begin(&w);
	json_writer_members_keyed(&w, "", 0, 0, &keys);
	json_writer_member_int(&w, "n", 1);
	json_writer_object_end(&w);
	g_assert_cmpstr(none->str, ==, "{\"n\":1}");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/json-writer/nesting", test_nesting);
	g_test_add_func("/json-writer/strings", test_strings);
	g_test_add_func("/json-writer/not-utf8", test_not_utf8);
	g_test_add_func("/json-writer/keyed", test_keyed);
	return g_test_run();
}
