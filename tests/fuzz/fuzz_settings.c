/* cluster_settings_validate() on a JSON document, as the API receives it. */
#include "fuzz.h"

#include "common/error.h"
#include "common/json.h"
#include "store/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(json_t) in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (!in)
		return 0;
	g_autoptr(json_t) copy = json_deep_copy(in);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) out = cluster_settings_validate(in, &error);
	FUZZ_CHECK(json_equal(in, copy)); /* the input is not touched */
	if (!out) {
		FUZZ_CHECK(error && error->domain == HERD_ERROR && error->code == HERD_ERR_INVALID);
		FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL)); /* it goes into JSON */
		return 0;
	}
	FUZZ_CHECK(!error);
	/* every key is known and every value typed and in range: validating the
	 * result again gives the result */
	FUZZ_CHECK(json_object_size(out) == json_object_size(in));
	g_autoptr(json_t) again = cluster_settings_validate(out, NULL);
	FUZZ_CHECK(again && json_equal(again, out));
	const char *key;
	json_t *v;
	json_object_foreach(out, key, v) {
		const cluster_setting *s = cluster_setting_find(key);
		FUZZ_CHECK(s);
		if (json_is_null(v))
			continue;
		if (s->type == SETTING_INT) {
			FUZZ_CHECK(json_is_integer(v));
			FUZZ_CHECK(json_integer_value(v) >= s->min && json_integer_value(v) <= s->max);
			FUZZ_CHECK(cluster_setting_int(out, key) == json_integer_value(v));
		}
	}
	g_autoptr(json_t) eff = cluster_settings_effective(out);
	for (const cluster_setting *s = cluster_settings; s->key; s++)
		FUZZ_CHECK(json_object_get(eff, s->key) && !json_is_null(json_object_get(eff, s->key)));
	return 0;
}
