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

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/json-writer/nesting", test_nesting);
	g_test_add_func("/json-writer/strings", test_strings);
	g_test_add_func("/json-writer/not-utf8", test_not_utf8);
	return g_test_run();
}
