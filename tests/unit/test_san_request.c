/*
 * herd-san's control ops as herdd sends them (san/request.h): every op
 * parsed into its typed request, every malformed line refused with a
 * sentence that names the key; and the restart backoff (san/backoff.h).
 */
#include "common/error.h"
#include "san/backoff.h"
#include "san/request.h"

#include <string.h>

#define U "6b0f2c1e-3d4a-4e5b-8c6d-7e8f9a0b1c2d"
#define VOLUME_HEAD "{\"op\":\"volume\",\"uuid\":\"" U "\",\"name\":\"vol1\","
#define VOLUME_TAIL "\"peer\":{\"node\":\"n2\",\"address\":\"fd00::2\",\"port\":7801}," \
		    "\"local\":\"uptodate\",\"peer_state\":\"outdated\",\"initial_gen\":\"0A1b2c3d4e5f6071\"}"
#define LISTEN "\"listen\":{\"address\":\"10.0.0.1\",\"port\":7800},"

static void test_good_ops(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(san_request) v = san_request_parse(VOLUME_HEAD "\"size\":1048576," LISTEN VOLUME_TAIL, &error);
	g_assert_no_error(error);
	g_assert_cmpint(v->op, ==, SAN_OP_VOLUME);
	g_assert_cmpstr(v->uuid, ==, U);
	g_assert_cmpstr(v->volume.name, ==, "vol1");
	g_assert_cmpuint(v->volume.size, ==, 1048576);
	g_assert_cmpstr(v->volume.listen.address, ==, "10.0.0.1");
	g_assert_cmpuint(v->volume.listen.port, ==, 7800);
	g_assert_cmpstr(v->volume.peer.address, ==, "fd00::2");
	g_assert_cmpstr(v->volume.peer_node, ==, "n2");
	g_assert_cmpint(v->volume.local, ==, SAN_REPLICA_UPTODATE);
	g_assert_cmpint(v->volume.peer_state, ==, SAN_REPLICA_OUTDATED);
	g_assert_cmpuint(v->volume.initial_gen, ==, UINT64_C(0x0a1b2c3d4e5f6071));
	g_autofree char *gen = san_gen_format(v->volume.initial_gen);
	g_assert_cmpstr(gen, ==, "0a1b2c3d4e5f6071");

	g_autoptr(san_request) c = san_request_parse(
		"{\"op\":\"config\",\"tls_dir\":\"/var/lib/herd/tls\",\"resync_rate\":1000,\"timeout_ms\":5000,\"new\":1}",
		&error);
	g_assert_no_error(error);
	g_assert_cmpint(c->op, ==, SAN_OP_CONFIG);
	g_assert_cmpstr(c->config.tls_dir, ==, "/var/lib/herd/tls");
	g_assert_cmpuint(c->config.resync_rate, ==, 1000);
	g_assert_cmpuint(c->config.timeout_ms, ==, 5000);

	/* 0: no limit (esan_resync_mibs=0) */
	g_autoptr(san_request) unlimited = san_request_parse(
		"{\"op\":\"config\",\"tls_dir\":\"/t\",\"resync_rate\":0,\"timeout_ms\":5000}", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(unlimited->config.resync_rate, ==, 0);

	g_autoptr(san_request) r = san_request_parse("{\"op\":\"resize\",\"uuid\":\"" U "\",\"size\":2097152}", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(r->size, ==, 2097152);

	const char *relayed[] = { "outdated", "peer-down", "discard", "promote", "verify" };
	for (unsigned i = 0; i < G_N_ELEMENTS(relayed); i++) {
		g_autofree char *line = g_strdup_printf("{\"op\":\"%s\",\"uuid\":\"" U "\"}", relayed[i]);
		g_autoptr(san_request) req = san_request_parse(line, &error);
		g_assert_no_error(error);
		g_assert_true(san_op_is_relayed(req->op));
		g_assert_cmpstr(san_op_name(req->op), ==, relayed[i]);
		g_assert_true(json_is_object(req->json));
	}
	g_autoptr(san_request) s = san_request_parse("{\"op\":\"status\"}", &error);
	g_assert_no_error(error);
	g_assert_false(san_op_is_relayed(s->op));
	g_autoptr(san_request) rm = san_request_parse("{\"op\":\"remove\",\"uuid\":\"" U "\"}", &error);
	g_assert_no_error(error);
	g_assert_false(san_op_is_relayed(rm->op));
	/* attach: herd-san restarts the volume's server itself */
	g_autoptr(san_request) at = san_request_parse("{\"op\":\"attach\",\"uuid\":\"" U "\"}", &error);
	g_assert_no_error(error);
	g_assert_cmpint(at->op, ==, SAN_OP_ATTACH);
	g_assert_false(san_op_is_relayed(at->op));
	g_assert_null(san_request_parse("{\"op\":\"attach\"}", &error));
	g_assert_nonnull(strstr(error->message, "uuid"));
	g_clear_error(&error);
}

static void test_bad_ops(void)
{
	const struct {
		const char *line, *needle;
	} bad[] = {
		{ "", "not JSON" },
		{ "[1,2]", "JSON object" },
		{ "{\"uuid\":\"" U "\"}", "\"op\"" },
		{ "{\"op\":7}", "\"op\"" },
		{ "{\"op\":\"launch\"}", "Unknown op 'launch'" },
		{ "{\"op\":\"remove\"}", "\"uuid\" is missing" },
		{ "{\"op\":\"remove\",\"uuid\":\"6B0F2C1E-3D4A-4E5B-8C6D-7E8F9A0B1C2D\"}", "not a UUID" },
		{ "{\"op\":\"remove\",\"uuid\":\"../../../../etc/passwd/aaaaaaaaaaaaaaa\"}", "not a UUID" },
		{ "{\"op\":\"remove\",\"uuid\":\"" U "\",\"uuid\":\"" U "\"}", "not JSON" },
		{ "{\"op\":\"resize\",\"uuid\":\"" U "\"}", "\"size\" is missing" },
		{ "{\"op\":\"resize\",\"uuid\":\"" U "\",\"size\":-512}", "\"size\" must be an integer" },
		{ "{\"op\":\"resize\",\"uuid\":\"" U "\",\"size\":1000}", "multiple of 512" },
		{ "{\"op\":\"resize\",\"uuid\":\"" U "\",\"size\":140737488355328}", "\"size\" must be" },
		{ "{\"op\":\"config\",\"tls_dir\":\"tls\",\"resync_rate\":1,\"timeout_ms\":1}", "absolute path" },
		{ "{\"op\":\"config\",\"tls_dir\":\"/t\",\"resync_rate\":-1,\"timeout_ms\":1}", "\"resync_rate\"" },
		{ "{\"op\":\"config\",\"tls_dir\":\"/t\",\"resync_rate\":1,\"timeout_ms\":1.5}", "\"timeout_ms\"" },
		{ "{\"op\":\"config\",\"resync_rate\":1,\"timeout_ms\":1}", "\"tls_dir\" is missing" },
		{ VOLUME_HEAD "\"size\":0," LISTEN VOLUME_TAIL, "\"size\"" },
		{ VOLUME_HEAD "\"size\":\"1M\"," LISTEN VOLUME_TAIL, "\"size\"" },
		{ VOLUME_HEAD "\"size\":1048576," VOLUME_TAIL, "\"listen\" is missing" },
		{ VOLUME_HEAD "\"size\":1048576,\"listen\":\"10.0.0.1:7800\"," VOLUME_TAIL, "\"listen\" must be an object" },
		{ VOLUME_HEAD "\"size\":1048576,\"listen\":{\"address\":\"host.example\",\"port\":7800}," VOLUME_TAIL,
		  "\"listen.address\" 'host.example' is not an IPv4 or IPv6 address" },
		{ VOLUME_HEAD "\"size\":1048576,\"listen\":{\"address\":\"10.0.0.1\",\"port\":0}," VOLUME_TAIL,
		  "\"listen.port\" must be an integer from 1 to 65535" },
		{ "{\"op\":\"volume\",\"uuid\":\"" U "\",\"size\":1048576," LISTEN VOLUME_TAIL, "\"name\" is missing" },
		{ "{\"op\":\"volume\",\"uuid\":\"" U "\",\"name\":\"\",\"size\":1048576," LISTEN VOLUME_TAIL, "\"name\"" },
		{ VOLUME_HEAD "\"size\":1048576," LISTEN
		  "\"peer\":{\"address\":\"10.0.0.2\",\"port\":7801},\"local\":\"uptodate\",\"peer_state\":\"uptodate\","
		  "\"initial_gen\":\"0000000000000001\"}", "\"node\" is missing" },
		{ VOLUME_HEAD "\"size\":1048576," LISTEN
		  "\"peer\":{\"node\":\"n2\",\"address\":\"10.0.0.2\",\"port\":7801},\"local\":\"fine\","
		  "\"peer_state\":\"uptodate\",\"initial_gen\":\"0000000000000001\"}", "\"local\" 'fine'" },
		{ VOLUME_HEAD "\"size\":1048576," LISTEN
		  "\"peer\":{\"node\":\"n2\",\"address\":\"10.0.0.2\",\"port\":7801},\"local\":\"uptodate\","
		  "\"initial_gen\":\"0000000000000001\"}", "\"peer_state\" is missing" },
		{ VOLUME_HEAD "\"size\":1048576," LISTEN
		  "\"peer\":{\"node\":\"n2\",\"address\":\"10.0.0.2\",\"port\":7801},\"local\":\"uptodate\","
		  "\"peer_state\":\"uptodate\",\"initial_gen\":\"12345\"}", "16 hex digits" },
		{ VOLUME_HEAD "\"size\":1048576," LISTEN
		  "\"peer\":{\"node\":\"n2\",\"address\":\"10.0.0.2\",\"port\":7801},\"local\":\"uptodate\","
		  "\"peer_state\":\"uptodate\",\"initial_gen\":\"000000000000000g\"}", "16 hex digits" },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(san_request) req = san_request_parse(bad[i].line, &error);
		if (req)
			g_error("accepted: %s", bad[i].line);
		g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
		if (!strstr(error->message, bad[i].needle))
			g_error("%s\n  refused with '%s', which does not say '%s'", bad[i].line, error->message,
				bad[i].needle);
	}
}

static void test_backoff(void)
{
	san_backoff b = { 0 };
	/* dying soon after each start: later and later, up to the cap */
	g_assert_cmpuint(san_backoff_exit(&b, 100), ==, SAN_BACKOFF_FIRST_MS);
	g_assert_false(san_backoff_alarming(&b));
	g_assert_cmpuint(san_backoff_exit(&b, 100), ==, 2 * SAN_BACKOFF_FIRST_MS);
	g_assert_false(san_backoff_alarming(&b));
	g_assert_cmpuint(san_backoff_exit(&b, 100), ==, 4 * SAN_BACKOFF_FIRST_MS);
	g_assert_true(san_backoff_alarming(&b));
	uint64_t last = 0;
	for (int i = 0; i < 100; i++)
		last = san_backoff_exit(&b, 0);
	g_assert_cmpuint(last, ==, SAN_BACKOFF_MAX_MS);
	g_assert_true(san_backoff_alarming(&b));
	/* a long run starts the count anew */
	g_assert_cmpuint(san_backoff_exit(&b, SAN_BACKOFF_STABLE_MS), ==, SAN_BACKOFF_FIRST_MS);
	g_assert_false(san_backoff_alarming(&b));
}

static void test_link_retry(void)
{
	/* soon after a loss, then later and later, at most once a second */
	g_assert_cmpuint(san_link_retry_ms(0), ==, SAN_LINK_RETRY_FIRST_MS);
	g_assert_cmpuint(san_link_retry_ms(1), ==, SAN_LINK_RETRY_FIRST_MS);
	g_assert_cmpuint(san_link_retry_ms(2), ==, 2 * SAN_LINK_RETRY_FIRST_MS);
	g_assert_cmpuint(san_link_retry_ms(3), ==, 4 * SAN_LINK_RETRY_FIRST_MS);
	for (unsigned f = 1; f < 1000; f++) {
		g_assert_cmpuint(san_link_retry_ms(f), <=, SAN_LINK_RETRY_MAX_MS);
		g_assert_cmpuint(san_link_retry_ms(f), <=, san_link_retry_ms(f + 1));
	}
	g_assert_cmpuint(san_link_retry_ms(UINT32_MAX), ==, SAN_LINK_RETRY_MAX_MS);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/san/request/good", test_good_ops);
	g_test_add_func("/san/request/bad", test_bad_ops);
	g_test_add_func("/san/backoff", test_backoff);
	g_test_add_func("/san/link-retry", test_link_retry);
	return g_test_run();
}
