/* common/websocket: the handshake's key and a client's frames, including
 * what a client must not send (RFC 6455). */
#include "common/websocket.h"
#include "common/error.h"

#include <string.h>

/* A client's frame: @opcode (with FIN if @fin), masked with @mask. */
static GByteArray *client_frame(unsigned opcode, bool fin, const void *payload, size_t len,
				bool masked)
{
	GByteArray *f = g_byte_array_new();
	uint8_t b0 = (uint8_t)((fin ? 0x80 : 0) | opcode);
	g_byte_array_append(f, &b0, 1);
	uint8_t b1 = masked ? 0x80 : 0;
	if (len < 126) {
		b1 |= (uint8_t)len;
		g_byte_array_append(f, &b1, 1);
	} else if (len <= 0xffff) {
		b1 |= 126;
		uint8_t ext[2] = { (uint8_t)(len >> 8), (uint8_t)len };
		g_byte_array_append(f, &b1, 1);
		g_byte_array_append(f, ext, 2);
	} else {
		b1 |= 127;
		uint8_t ext[8];
		for (int i = 0; i < 8; i++)
			ext[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		g_byte_array_append(f, &b1, 1);
		g_byte_array_append(f, ext, 8);
	}
	const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };
	if (masked)
		g_byte_array_append(f, mask, 4);
	const uint8_t *p = payload;
	for (size_t i = 0; i < len; i++) {
		uint8_t b = masked ? (uint8_t)(p[i] ^ mask[i & 3]) : p[i];
		g_byte_array_append(f, &b, 1);
	}
	return f;
}

static void test_accept_key(void)
{
	/* RFC 6455 section 1.3's example */
	g_autofree char *a = ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
	g_assert_cmpstr(a, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	g_assert_null(ws_accept_key(NULL));
	g_assert_null(ws_accept_key(""));
	g_assert_null(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ"));   /* short */
	g_assert_null(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=!"));  /* not base64 */
	g_assert_null(ws_accept_key("dGhlIHNhbXBsZSBub25jZWVl")); /* 18 bytes */
}

static void test_binary_frames(void)
{
	ws_decoder d = { .max_payload = 70000 };
	ws_frame f;
	size_t used;
	uint16_t code;
	GError *err = NULL;
	/* three lengths: 7-bit, 16-bit, 64-bit */
	size_t lens[] = { 12, 300, 66000 };
	for (size_t k = 0; k < G_N_ELEMENTS(lens); k++) {
		g_autofree uint8_t *data = g_malloc(lens[k]);
		for (size_t i = 0; i < lens[k]; i++)
			data[i] = (uint8_t)(i * 7 + k);
		g_autoptr(GByteArray) fr = client_frame(WS_OP_BINARY, true, data, lens[k], true);
		/* a frame cut anywhere is "more", and changes nothing */
		for (size_t cut = 0; cut < fr->len; cut += 1 + fr->len / 17)
			g_assert_cmpint(ws_decode(&d, fr->data, cut, &f, &used, &code, &err), ==,
					WS_DECODE_MORE);
		g_assert_cmpint(ws_decode(&d, fr->data, fr->len, &f, &used, &code, &err), ==,
				WS_DECODE_FRAME);
		g_assert_no_error(err);
		g_assert_cmpuint(used, ==, fr->len);
		g_assert_cmpint(f.opcode, ==, WS_OP_BINARY);
		g_assert_true(f.fin);
		g_assert_cmpuint(f.len, ==, lens[k]);
		g_assert_cmpmem(f.payload, f.len, data, lens[k]);
	}
}

/* Two frames in one buffer: the first is taken, the second stays. */
static void test_two_frames(void)
{
	ws_decoder d = { .max_payload = 1024 };
	g_autoptr(GByteArray) a = client_frame(WS_OP_BINARY, true, "RFB ", 4, true);
	g_autoptr(GByteArray) b = client_frame(WS_OP_PING, true, "hi", 2, true);
	g_byte_array_append(a, b->data, b->len);
	ws_frame f;
	size_t used;
	uint16_t code;
	g_assert_cmpint(ws_decode(&d, a->data, a->len, &f, &used, &code, NULL), ==, WS_DECODE_FRAME);
	g_assert_cmpmem(f.payload, f.len, "RFB ", 4);
	g_assert_cmpint(ws_decode(&d, a->data + used, a->len - used, &f, &used, &code, NULL), ==,
			WS_DECODE_FRAME);
	g_assert_cmpint(f.opcode, ==, WS_OP_PING);
	g_assert_cmpmem(f.payload, f.len, "hi", 2);
}

/* A fragmented message: binary (no FIN), a ping between, continuations. */
static void test_fragmented(void)
{
	ws_decoder d = { .max_payload = 1024 };
	ws_frame f;
	size_t used;
	uint16_t code;
	g_autoptr(GByteArray) first = client_frame(WS_OP_BINARY, false, "ab", 2, true);
	g_autoptr(GByteArray) ping = client_frame(WS_OP_PING, true, NULL, 0, true);
	g_autoptr(GByteArray) mid = client_frame(WS_OP_CONTINUATION, false, "cd", 2, true);
	g_autoptr(GByteArray) last = client_frame(WS_OP_CONTINUATION, true, "ef", 2, true);
	g_assert_cmpint(ws_decode(&d, first->data, first->len, &f, &used, &code, NULL), ==, WS_DECODE_FRAME);
	g_assert_false(f.fin);
	g_assert_true(d.in_message);
	g_assert_cmpint(ws_decode(&d, ping->data, ping->len, &f, &used, &code, NULL), ==, WS_DECODE_FRAME);
	g_assert_true(d.in_message);
	g_assert_cmpint(ws_decode(&d, mid->data, mid->len, &f, &used, &code, NULL), ==, WS_DECODE_FRAME);
	g_assert_cmpmem(f.payload, f.len, "cd", 2);
	g_assert_cmpint(ws_decode(&d, last->data, last->len, &f, &used, &code, NULL), ==, WS_DECODE_FRAME);
	g_assert_true(f.fin);
	g_assert_false(d.in_message);
}

/* What a client must not send: each an error with its close code and a
 * sentence. */
static void refused(ws_decoder *d, GByteArray *fr, uint16_t want_code, const char *want_text)
{
	ws_frame f;
	size_t used = 0;
	uint16_t code = 0;
	g_autoptr(GError) err = NULL;
	g_assert_cmpint(ws_decode(d, fr->data, fr->len, &f, &used, &code, &err), ==, WS_DECODE_ERROR);
	g_assert_cmpuint(code, ==, want_code);
	g_assert_nonnull(err);
	g_assert_nonnull(strstr(err->message, want_text));
	g_byte_array_unref(fr);
}

static void test_bad_frames(void)
{
	ws_decoder d = { .max_payload = 1000 };
	uint8_t big[1001] = { 0 };
	refused(&d, client_frame(WS_OP_BINARY, true, "x", 1, false), WS_CLOSE_PROTOCOL_ERROR, "not masked");
	refused(&d, client_frame(WS_OP_BINARY, true, big, sizeof(big), true), WS_CLOSE_TOO_BIG,
		"1001 bytes is larger");
	/* a length the header claims, far beyond any buffer: refused before
	 * any of it is read */
	static const uint8_t huge_head[] = { 0x82, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					     0xff, 1, 2, 3, 4 };
	g_autoptr(GByteArray) huge = g_byte_array_new();
	g_byte_array_append(huge, huge_head, sizeof(huge_head));
	refused(&d, g_byte_array_ref(huge), WS_CLOSE_TOO_BIG, "larger than the console takes");
	refused(&d, client_frame(WS_OP_TEXT, true, "hi", 2, true), WS_CLOSE_UNSUPPORTED, "binary");
	refused(&d, client_frame(0x3, true, "x", 1, true), WS_CLOSE_PROTOCOL_ERROR, "unknown opcode");
	refused(&d, client_frame(0xb, true, "x", 1, true), WS_CLOSE_PROTOCOL_ERROR, "unknown opcode");
	refused(&d, client_frame(WS_OP_PING, false, "x", 1, true), WS_CLOSE_PROTOCOL_ERROR, "fragmented");
	refused(&d, client_frame(WS_OP_CLOSE, true, big, 126, true), WS_CLOSE_PROTOCOL_ERROR, "125 bytes");
	refused(&d, client_frame(WS_OP_CONTINUATION, true, "x", 1, true), WS_CLOSE_PROTOCOL_ERROR,
		"without a message");
	GByteArray *rsv = client_frame(WS_OP_BINARY, true, "x", 1, true);
	rsv->data[0] |= 0x40;
	refused(&d, rsv, WS_CLOSE_PROTOCOL_ERROR, "reserved bits");
	/* a new message inside a fragmented one */
	g_autoptr(GByteArray) first = client_frame(WS_OP_BINARY, false, "ab", 2, true);
	ws_frame f;
	size_t used;
	uint16_t code;
	g_assert_cmpint(ws_decode(&d, first->data, first->len, &f, &used, &code, NULL), ==, WS_DECODE_FRAME);
	refused(&d, client_frame(WS_OP_BINARY, true, "cd", 2, true), WS_CLOSE_PROTOCOL_ERROR,
		"before the fragmented one");
}

static void test_server_header(void)
{
	uint8_t h[WS_MAX_HEADER];
	g_assert_cmpuint(ws_frame_header(h, WS_OP_BINARY, 5), ==, 2);
	g_assert_cmpuint(h[0], ==, 0x82);
	g_assert_cmpuint(h[1], ==, 5);
	g_assert_cmpuint(ws_frame_header(h, WS_OP_BINARY, 65535), ==, 4);
	g_assert_cmpuint(h[1], ==, 126);
	g_assert_cmpuint(h[2] << 8 | h[3], ==, 65535);
	g_assert_cmpuint(ws_frame_header(h, WS_OP_CLOSE, 65536), ==, 10);
	g_assert_cmpuint(h[0], ==, 0x88);
	g_assert_cmpuint(h[1], ==, 127);
	g_assert_cmpuint(h[7], ==, 1);
	g_assert_cmpuint(h[8] | h[9], ==, 0);
}

/* The CLI's side: its frames, masked, are what herdd parses; the server's
 * frames, unmasked, are what it parses, and a masked one is refused. */
static void test_client_side(void)
{
	const uint8_t mask[4] = { 0xde, 0xad, 0xbe, 0xef };
	uint8_t buf[WS_MAX_HEADER + 300];
	uint8_t payload[300];
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 13);
	size_t h = ws_client_frame_header(buf, WS_OP_BINARY, sizeof(payload), mask);
	g_assert_cmpuint(h, ==, 8);
	memcpy(buf + h, payload, sizeof(payload));
	ws_mask(buf + h, sizeof(payload), mask);
	ws_decoder server = { .max_payload = 1024 };
	ws_frame f;
	size_t used;
	uint16_t code;
	g_assert_cmpint(ws_decode(&server, buf, h + sizeof(payload), &f, &used, &code, NULL), ==,
			WS_DECODE_FRAME);
	g_assert_cmpmem(f.payload, f.len, payload, sizeof(payload));

	ws_decoder client = { .max_payload = 1024, .from_server = true };
	h = ws_frame_header(buf, WS_OP_BINARY, 5);
	memcpy(buf + h, "RFB 0", 5);
	g_assert_cmpint(ws_decode(&client, buf, h + 5, &f, &used, &code, NULL), ==, WS_DECODE_FRAME);
	g_assert_cmpmem(f.payload, f.len, "RFB 0", 5);
	g_assert_cmpuint(used, ==, h + 5);
	refused(&client, client_frame(WS_OP_BINARY, true, "x", 1, true), WS_CLOSE_PROTOCOL_ERROR,
		"server's frame is masked");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/websocket/accept-key", test_accept_key);
	g_test_add_func("/websocket/binary-frames", test_binary_frames);
	g_test_add_func("/websocket/two-frames", test_two_frames);
	g_test_add_func("/websocket/fragmented", test_fragmented);
	g_test_add_func("/websocket/bad-frames", test_bad_frames);
	g_test_add_func("/websocket/server-header", test_server_header);
	g_test_add_func("/websocket/client-side", test_client_side);
	return g_test_run();
}
