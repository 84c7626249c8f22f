/* The cluster settings table: validation of changes, effective values. */
#include "common/error.h"
#include "common/json.h"
#include "store/settings.h"

#include <stdlib.h>
#include <string.h>

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!j)
		g_error("fixture is not JSON: %s: %s", text, jerr.text);
	return j;
}

/* @changes are valid and come back as @expect. */
static void expect_valid(const char *changes, const char *expect)
{
	g_autoptr(json_t) in = parse(changes);
	g_autoptr(json_t) want = parse(expect);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) out = cluster_settings_validate(in, &error);
	if (!out)
		g_error("%s refused: %s", changes, error->message);
	if (!json_equal(out, want)) {
		g_autofree char *got = json_dumps(out, JSON_SORT_KEYS);
		g_error("%s validated to %s, expected %s", changes, got, expect);
	}
}

static void expect_invalid(const char *changes, const char *needle)
{
	g_autoptr(json_t) in = parse(changes);
	g_autoptr(json_t) copy = json_deep_copy(in);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) out = cluster_settings_validate(in, &error);
	if (out)
		g_error("%s accepted", changes);
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s' (input %s)", error->message, needle, changes);
	g_assert_true(json_equal(in, copy)); /* the input is left alone */
}

/* The notification settings: text checked by what it is, the password
 * shown only as set. */
static void test_notify(void)
{
	expect_valid("{\"notify_smtp_host\":\"mail.example.com\",\"notify_smtp_port\":\"587\","
		     "\"notify_smtp_tls\":\"starttls\",\"notify_to\":\"a@x.org, b@y.org\","
		     "\"notify_from\":\"herd@x.org\",\"notify_webhook\":\"https://hooks.x.org/h?k=1\","
		     "\"notify_smtp_password\":\"s3cret pass\",\"notify_smtp_ca\":\"/etc/ca.pem\"}",
		     "{\"notify_smtp_host\":\"mail.example.com\",\"notify_smtp_port\":587,"
		     "\"notify_smtp_tls\":\"starttls\",\"notify_to\":\"a@x.org, b@y.org\","
		     "\"notify_from\":\"herd@x.org\",\"notify_webhook\":\"https://hooks.x.org/h?k=1\","
		     "\"notify_smtp_password\":\"s3cret pass\",\"notify_smtp_ca\":\"/etc/ca.pem\"}");
	expect_valid("{\"notify_smtp_host\":\"10.0.0.1\"}", "{\"notify_smtp_host\":\"10.0.0.1\"}");
	expect_invalid("{\"notify_smtp_host\":\"mail example\"}", "notify_smtp_host");
	expect_invalid("{\"notify_smtp_port\":\"0\"}", "notify_smtp_port");
	expect_invalid("{\"notify_smtp_tls\":\"ssl\"}", "notify_smtp_tls");
	expect_invalid("{\"notify_to\":\"ops\"}", "notify_to");
	expect_invalid("{\"notify_to\":\"a@x.org, <b@y.org>\"}", "notify_to");
	expect_invalid("{\"notify_to\":\" , \"}", "notify_to");
	expect_invalid("{\"notify_from\":\"a@b@c\"}", "notify_from");
	expect_invalid("{\"notify_webhook\":\"ftp://x.org/\"}", "notify_webhook");
	expect_invalid("{\"notify_webhook\":\"https://\"}", "notify_webhook");
	expect_invalid("{\"notify_smtp_ca\":\"ca.pem\"}", "notify_smtp_ca");
	expect_invalid("{\"notify_smtp_user\":\"a\\r\\nRCPT TO:<x@y>\"}", "notify_smtp_user");
	expect_invalid("{\"notify_smtp_password\":5}", "notify_smtp_password");
	g_auto(GStrv) to = cluster_setting_addresses("notify_to", "a@x.org,b@y.org  c@z.org", NULL);
	g_assert_cmpuint(g_strv_length(to), ==, 3);
	g_assert_cmpstr(to[2], ==, "c@z.org");

	g_autoptr(json_t) stored = parse("{\"notify_smtp_password\":\"s3cret\",\"notify_smtp_user\":\"u\"}");
	g_assert_true(cluster_settings_check_stored(stored, NULL));
	g_autoptr(json_t) shown = cluster_settings_shown(stored);
	g_autofree char *text = json_dumps(shown, 0);
	g_assert_null(strstr(text, "s3cret"));
	g_assert_cmpstr(json_string_value(json_object_get(shown, "notify_smtp_password")), ==,
			CLUSTER_SETTING_SECRET_SHOWN);
	g_assert_cmpstr(json_string_value(json_object_get(shown, "notify_smtp_user")), ==, "u");
	g_autoptr(json_t) none = cluster_settings_shown(NULL);
	g_assert_cmpstr(json_string_value(json_object_get(none, "notify_smtp_password")), ==, "");
	g_assert_true(cluster_setting_find("notify_smtp_password")->secret);
	g_assert_false(cluster_setting_find("notify_smtp_user")->secret);
	g_assert_cmpstr(cluster_setting_string(stored, "notify_smtp_user"), ==, "u");
	g_assert_cmpstr(cluster_setting_string(NULL, "notify_to"), ==, "");
}

/* Ping nodes: IP literals only, normalised, none twice; the dampening at
 * least two rounds long. */
static void test_ping(void)
{
	g_autoptr(GError) error = NULL;
	expect_valid("{\"ping_nodes\":\"192.0.2.1, 2001:db8::1\",\"ping_interval_ms\":\"500\"}",
		     "{\"ping_nodes\":\"192.0.2.1, 2001:db8::1\",\"ping_interval_ms\":500}");
	expect_invalid("{\"ping_nodes\":\"gw.example.com\"}", "no host names");
	expect_invalid("{\"ping_nodes\":\"0.0.0.0\"}", "not '0.0.0.0'");
	expect_invalid("{\"ping_nodes\":\"224.0.0.1\"}", "not '224.0.0.1'");
	expect_invalid("{\"ping_nodes\":\"192.0.2.1,192.0.2.1\"}", "names 192.0.2.1 twice");
	expect_invalid("{\"ping_nodes\":\"2001:db8::1, 2001:DB8:0::1\"}", "names 2001:db8::1 twice");
	expect_invalid("{\"ping_nodes\":\"1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8,1.1.1.9\"}",
		       "from 1 to 8 IP addresses");
	expect_invalid("{\"ping_interval_ms\":50}", "ping_interval_ms");
	g_auto(GStrv) list = cluster_setting_ping_nodes("ping_nodes", "2001:DB8:0:0::1  192.0.2.7", NULL);
	g_assert_cmpuint(g_strv_length(list), ==, 2);
	g_assert_cmpstr(list[0], ==, "2001:db8::1");
	g_assert_cmpstr(list[1], ==, "192.0.2.7");
	/* The default dampening (5 s) is below two rounds of 3 s. */
	g_autoptr(json_t) slow = parse("{\"ping_interval_ms\":3000}");
	g_assert_false(cluster_settings_check_change(NULL, slow, &error));
	g_assert_nonnull(strstr(error->message, "ping_dampen_ms (5000) is below twice ping_interval_ms (3000)"));
	g_clear_error(&error);
	g_autoptr(json_t) both = parse("{\"ping_interval_ms\":3000,\"ping_dampen_ms\":6000}");
	g_assert_true(cluster_settings_check_change(NULL, both, &error));
}

static void test_table(void)
{
	size_t n = 0;
	for (const cluster_setting *s = cluster_settings; s->key; s++, n++) {
		g_assert_true(cluster_setting_find(s->key) == s);
		g_assert_nonnull(s->default_value);
		g_assert_nonnull(s->help);
		g_assert_cmpuint(strlen(s->help), >, 0);
		/* every default is itself a valid value */
		g_autoptr(json_t) change = json_pack("{s:s}", s->key, s->default_value);
		g_autoptr(GError) error = NULL;
		g_autoptr(json_t) typed = cluster_settings_validate(change, &error);
		if (!typed)
			g_error("default of %s is invalid: %s", s->key, error->message);
		if (s->type == SETTING_INT)
			g_assert_cmpint(s->min, <=, s->max);
	}
	g_assert_cmpuint(n, >, 0);
	g_assert_null(cluster_setting_find("no_such_setting"));
	g_assert_null(cluster_setting_find(""));
	g_assert_null(cluster_setting_find(NULL));
	g_assert_null(cluster_setting_find("TOKEN_MS"));
	const cluster_setting *t = cluster_setting_find("token_ms");
	g_assert_nonnull(t);
	g_assert_cmpint(t->type, ==, SETTING_INT);
	g_assert_true(t->corosync);
	g_assert_false(cluster_setting_find("vm_history_limit")->corosync);
}

static void test_validate_ok(void)
{
	expect_valid("{\"token_ms\":300}", "{\"token_ms\":300}");
	/* as typed on a command line */
	expect_valid("{\"token_ms\":\"300\"}", "{\"token_ms\":300}");
	expect_valid("{\"knet_ping_interval_ms\":\"0\"}", "{\"knet_ping_interval_ms\":0}");
	/* the bounds themselves */
	expect_valid("{\"token_ms\":100}", "{\"token_ms\":100}");
	expect_valid("{\"token_ms\":60000}", "{\"token_ms\":60000}");
	expect_valid("{\"vm_history_limit\":1}", "{\"vm_history_limit\":1}");
	/* null resets to the default */
	expect_valid("{\"token_ms\":null}", "{\"token_ms\":null}");
	expect_valid("{\"token_ms\":500,\"vm_history_limit\":\"7\",\"knet_ping_timeout_ms\":null}",
		     "{\"token_ms\":500,\"vm_history_limit\":7,\"knet_ping_timeout_ms\":null}");
}

static void test_validate_bad(void)
{
	expect_invalid("{}", "No settings to change were given");
	expect_invalid("[]", "No settings to change were given");
	expect_invalid("\"token_ms=300\"", "No settings to change were given");
	expect_invalid("{\"token\":300}", "Unknown cluster setting 'token'");
	expect_invalid("{\"TOKEN_MS\":300}", "Unknown cluster setting 'TOKEN_MS'");
	/* one bad key spoils the whole change */
	expect_invalid("{\"token_ms\":300,\"bogus\":1}", "Unknown cluster setting 'bogus'");
	expect_invalid("{\"token_ms\":300,\"vm_history_limit\":0}", "vm_history_limit");
	/* out of range, as a number or as text */
	expect_invalid("{\"token_ms\":99}", "Setting token_ms must be from 100 to 60000, not 99.");
	expect_invalid("{\"token_ms\":60001}", "not 60001");
	expect_invalid("{\"token_ms\":\"-5\"}", "must be from 100 to 60000, not -5");
	expect_invalid("{\"vm_history_limit\":100001}", "from 1 to 100000");
	expect_invalid("{\"token_ms\":9223372036854775807}", "must be from 100 to 60000");
	/* not a whole number */
	expect_invalid("{\"token_ms\":\"yes\"}", "Setting token_ms must be a whole number, not \"yes\"");
	expect_invalid("{\"token_ms\":\"300ms\"}", "not \"300ms\"");
	expect_invalid("{\"token_ms\":\"300 \"}", "a whole number");
	expect_invalid("{\"token_ms\":\"\"}", "a whole number");
	expect_invalid("{\"token_ms\":\"0x12c\"}", "a whole number");
	expect_invalid("{\"token_ms\":\"3e2\"}", "a whole number");
	expect_invalid("{\"token_ms\":\"99999999999999999999\"}", "a whole number");
	expect_invalid("{\"token_ms\":300.0}", "a whole number, not 300.0");
	expect_invalid("{\"token_ms\":true}", "a whole number, not true");
	expect_invalid("{\"token_ms\":[300]}", "a whole number");
	expect_invalid("{\"token_ms\":{\"v\":300}}", "a whole number");
}

static void test_effective(void)
{
	g_autoptr(json_t) defaults = cluster_settings_effective(NULL);
	for (const cluster_setting *s = cluster_settings; s->key; s++) {
		json_t *v = json_object_get(defaults, s->key);
		g_assert_nonnull(v);
		if (s->type == SETTING_INT) {
			g_assert_true(json_is_integer(v));
			g_assert_cmpint(json_integer_value(v), ==, strtoll(s->default_value, NULL, 10));
			g_assert_cmpint(cluster_setting_int(NULL, s->key), ==, json_integer_value(v));
		}
	}
	size_t n = 0;
	for (const cluster_setting *s = cluster_settings; s->key; s++)
		n++;
	g_assert_cmpuint(json_object_size(defaults), ==, n);
	g_assert_cmpint(json_integer_value(json_object_get(defaults, "token_ms")), ==, 1000);
	g_assert_cmpint(json_integer_value(json_object_get(defaults, "vm_history_limit")), ==, 100);

	g_autoptr(json_t) stored = parse("{\"token_ms\":300,\"token_coefficient_ms\":null,\"other\":1}");
	g_autoptr(json_t) eff = cluster_settings_effective(stored);
	g_assert_cmpint(json_integer_value(json_object_get(eff, "token_ms")), ==, 300);
	/* null (reset) means the default */
	g_assert_true(json_is_integer(json_object_get(eff, "token_coefficient_ms")));
	g_assert_cmpint(json_integer_value(json_object_get(eff, "token_coefficient_ms")), ==, 650);
	g_assert_cmpint(json_integer_value(json_object_get(eff, "knet_ping_timeout_ms")), ==, 0);
	g_assert_null(json_object_get(eff, "other")); /* only known settings */

	g_assert_cmpint(cluster_setting_int(stored, "token_ms"), ==, 300);
	g_assert_cmpint(cluster_setting_int(stored, "token_coefficient_ms"), ==, 650);
	g_assert_cmpint(cluster_setting_int(stored, "vm_history_limit"), ==, 100);
	g_assert_cmpint(cluster_setting_int(stored, "no_such"), ==, 0);
	/* a stored value of the wrong type falls back to the default */
	g_autoptr(json_t) odd = parse("{\"token_ms\":\"300\"}");
	g_assert_cmpint(cluster_setting_int(odd, "token_ms"), ==, 1000);

	g_assert_false(cluster_setting_bool(NULL, "no_such"));
	g_autoptr(json_t) b = parse("{\"flag\":true}");
	g_assert_true(cluster_setting_bool(b, "flag"));
	g_assert_cmpstr(cluster_setting_string(NULL, "token_ms"), ==, "1000");
	g_assert_cmpstr(cluster_setting_string(NULL, "no_such"), ==, "");
	g_autoptr(json_t) s = parse("{\"mode\":\"x\"}");
	g_assert_cmpstr(cluster_setting_string(s, "mode"), ==, "x");
}

/* fence_action: an enum, typed in store_settings by its place among the choices. */
static void test_fence_action(void)
{
	expect_valid("{\"fence_action\":\"off\"}", "{\"fence_action\":\"off\"}");
	expect_valid("{\"fence_action\":\"reboot\"}", "{\"fence_action\":\"reboot\"}");
	expect_valid("{\"fence_action\":null}", "{\"fence_action\":null}");
	expect_invalid("{\"fence_action\":\"cycle\"}",
		       "Setting fence_action must be one of reboot|off, not 'cycle'.");
	expect_invalid("{\"fence_action\":\"OFF\"}", "not 'OFF'");
	expect_invalid("{\"fence_action\":1}", "fence_action");

	store_settings st;
	cluster_settings_fill(NULL, &st);
	g_assert_cmpint(st.fence_action, ==, STORE_FENCE_REBOOT); /* Pacemaker's default, too */
	g_autoptr(json_t) off = parse("{\"fence_action\":\"off\"}");
	cluster_settings_fill(off, &st);
	g_assert_cmpint(st.fence_action, ==, STORE_FENCE_OFF);
	g_autoptr(json_t) reset = parse("{\"fence_action\":null}");
	cluster_settings_fill(reset, &st);
	g_assert_cmpint(st.fence_action, ==, STORE_FENCE_REBOOT);
}

/* The migration port range: each end alone, and the two as a range after
 * a change, also at apply time. */
static void test_migration_ports(void)
{
	g_autoptr(GError) error = NULL;
	expect_valid("{\"migration_port_min\":\"50000\",\"migration_port_max\":50063}",
		     "{\"migration_port_min\":50000,\"migration_port_max\":50063}");
	expect_invalid("{\"migration_port_min\":1023}", "from 1024 to 65535, not 1023");

	/* The defaults, 49152-49215, are a range. */
	g_autoptr(json_t) up = parse("{\"migration_port_max\":49300}");
	g_assert_true(cluster_settings_check_change(NULL, up, &error));
	g_assert_no_error(error);
	/* The first port above the default last one. */
	g_autoptr(json_t) above = parse("{\"migration_port_min\":50000}");
	g_assert_false(cluster_settings_check_change(NULL, above, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	g_assert_nonnull(strstr(error->message,
				"migration_port_min (50000) is above migration_port_max (49215)"));
	g_clear_error(&error);
	/* ... fine with the last one moved along in the same change, or stored. */
	g_autoptr(json_t) both = parse("{\"migration_port_min\":50000,\"migration_port_max\":50000}");
	g_assert_true(cluster_settings_check_change(NULL, both, &error));
	g_autoptr(json_t) stored = parse("{\"migration_port_max\":50500,\"token_ms\":300}");
	g_assert_true(cluster_settings_check_change(stored, above, &error));
	/* A reset (null) goes back to the default: 49152 > 40000. */
	g_autoptr(json_t) low = parse("{\"migration_port_min\":39000,\"migration_port_max\":40000}");
	g_autoptr(json_t) reset_min = parse("{\"migration_port_min\":null}");
	g_assert_false(cluster_settings_check_change(low, reset_min, &error));
	g_assert_nonnull(strstr(error->message, "(49152) is above migration_port_max (40000)"));
	g_clear_error(&error);
	/* At most CLUSTER_MIGRATION_PORTS_MAX ports. */
	g_autoptr(json_t) wide = parse("{\"migration_port_min\":40000,\"migration_port_max\":41024}");
	g_assert_false(cluster_settings_check_change(NULL, wide, &error));
	g_assert_nonnull(strstr(error->message, "40000-41024 holds 1025 ports; at most 1024"));
	g_clear_error(&error);
	g_autoptr(json_t) widest = parse("{\"migration_port_min\":40000,\"migration_port_max\":41023}");
	g_assert_true(cluster_settings_check_change(NULL, widest, &error));
	/* The inputs are left alone. */
	g_assert_cmpuint(json_object_size(stored), ==, 2);
	g_assert_cmpint(json_integer_value(json_object_get(low, "migration_port_min")), ==, 39000);

	/* Where the store applies it: two changes that pass one by one cannot
	 * be stored together. */
	g_assert_true(cluster_settings_check_stored(low, &error));
	g_autoptr(json_t) crossed = parse("{\"migration_port_min\":49200,\"migration_port_max\":49190}");
	g_assert_false(cluster_settings_check_stored(crossed, &error));
	g_assert_nonnull(strstr(error->message, "(49200) is above migration_port_max (49190)"));
	g_clear_error(&error);
	g_assert_false(cluster_settings_check_stored(above, &error));
	g_clear_error(&error);
	g_assert_true(cluster_settings_check_stored(NULL, &error));

	store_settings st;
	cluster_settings_fill(both, &st);
	g_assert_cmpint(st.migration_port_min, ==, 50000);
	g_assert_cmpint(st.migration_port_max, ==, 50000);
}

/* The shutdown policy: migrate by default; its timeout bounded below what
 * systemd gives a whole shutdown. */
static void test_shutdown_policy(void)
{
	expect_valid("{\"shutdown_policy\":\"failover\",\"shutdown_timeout_s\":\"600\"}",
		     "{\"shutdown_policy\":\"failover\",\"shutdown_timeout_s\":600}");
	expect_valid("{\"shutdown_timeout_s\":0}", "{\"shutdown_timeout_s\":0}");
	expect_invalid("{\"shutdown_policy\":\"freeze\"}",
		       "Setting shutdown_policy must be one of migrate|failover, not 'freeze'.");
	expect_invalid("{\"shutdown_timeout_s\":1201}",
		       "Setting shutdown_timeout_s must be from 0 to 1200, not 1201.");
	expect_invalid("{\"shutdown_timeout_s\":-1}", "from 0 to 1200");

	store_settings st;
	cluster_settings_fill(NULL, &st);
	g_assert_cmpint(st.shutdown_policy, ==, STORE_SHUTDOWN_MIGRATE);
	g_assert_cmpint(st.shutdown_timeout_s, ==, 240);
	g_autoptr(json_t) failover = parse("{\"shutdown_policy\":\"failover\",\"shutdown_timeout_s\":30}");
	cluster_settings_fill(failover, &st);
	g_assert_cmpint(st.shutdown_policy, ==, STORE_SHUTDOWN_FAILOVER);
	g_assert_cmpint(st.shutdown_timeout_s, ==, 30);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/settings/notify", test_notify);
	g_test_add_func("/settings/table", test_table);
	g_test_add_func("/settings/ping", test_ping);
	g_test_add_func("/settings/validate/ok", test_validate_ok);
	g_test_add_func("/settings/validate/bad", test_validate_bad);
	g_test_add_func("/settings/effective", test_effective);
	g_test_add_func("/settings/fence-action", test_fence_action);
	g_test_add_func("/settings/migration-ports", test_migration_ports);
	g_test_add_func("/settings/shutdown-policy", test_shutdown_policy);
	return g_test_run();
}
