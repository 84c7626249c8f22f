/* The wire format between nodes: header encoding, and every rejection. */
#include "common/error.h"
#include "store/wire.h"

#include <string.h>

static void test_le_helpers(void)
{
	uint8_t b[8];
	herd_put_le32(b, 0x11223344u);
	g_assert_cmphex(b[0], ==, 0x44);
	g_assert_cmphex(b[3], ==, 0x11);
	g_assert_cmphex(herd_get_le32(b), ==, 0x11223344u);
	herd_put_le64(b, 0x0102030405060708ull);
	g_assert_cmphex(b[0], ==, 0x08);
	g_assert_cmphex(b[7], ==, 0x01);
	g_assert_cmphex(herd_get_le64(b), ==, 0x0102030405060708ull);
	herd_put_le64(b, UINT64_MAX);
	g_assert_cmphex(herd_get_le64(b), ==, UINT64_MAX);
	herd_put_le32(b, 0x80000000u);
	g_assert_cmphex(herd_get_le32(b), ==, 0x80000000u);
}

static void test_round_trip(void)
{
	const char payload[] = "{\"op\":\"create\"}";
	size_t len = 0;
	g_autofree uint8_t *m = herd_wire_encode(HERD_MSG_COMMAND, 7, 0x0000000300000002ull,
						 0xfedcba9876543210ull, payload, strlen(payload), &len);
	g_assert_cmpuint(len, ==, HERD_WIRE_HEADER_SIZE + strlen(payload));
	herd_wire_header h;
	const void *p = NULL;
	g_autoptr(GError) error = NULL;
	g_assert_true(herd_wire_decode(m, len, 7, &h, &p, &error));
	g_assert_no_error(error);
	g_assert_cmphex(h.magic, ==, HERD_WIRE_MAGIC);
	g_assert_cmpuint(h.version, ==, HERD_WIRE_VERSION);
	g_assert_cmpuint(h.type, ==, HERD_MSG_COMMAND);
	g_assert_cmpuint(h.sender, ==, 7);
	g_assert_cmpuint(h.flags, ==, 0);
	g_assert_cmphex(h.epoch, ==, 0x0000000300000002ull);
	g_assert_cmphex(h.msg_id, ==, 0xfedcba9876543210ull);
	g_assert_cmpuint(h.payload_len, ==, strlen(payload));
	g_assert_cmpuint(h.reserved, ==, 0);
	g_assert_true(p == m + HERD_WIRE_HEADER_SIZE);
	g_assert_cmpmem(p, h.payload_len, payload, strlen(payload));

	/* no payload */
	g_autofree uint8_t *e = herd_wire_encode(HERD_MSG_SYNC_START, 1, 5, 0, NULL, 0, &len);
	g_assert_cmpuint(len, ==, HERD_WIRE_HEADER_SIZE);
	g_assert_true(herd_wire_decode(e, len, 1, &h, &p, NULL));
	g_assert_cmpuint(h.payload_len, ==, 0);
	g_assert_cmpuint(h.type, ==, HERD_MSG_SYNC_START);

	/* every known type passes */
	for (unsigned t = HERD_MSG_SYNC_START; t < HERD_MSG__MAX; t++) {
		g_autofree uint8_t *x = herd_wire_encode((herd_msg_type)t, 2, 0, 0, "x", 1, &len);
		g_assert_true(herd_wire_decode(x, len, 2, &h, &p, NULL));
		g_assert_cmpuint(h.type, ==, t);
	}
}

/* The header's bytes are little-endian whatever the host: check them one
 * by one against the layout in wire.h. */
/* The type read off a message without checking it (the send counters),
 * and every type's name. */
static void test_type_of(void)
{
	size_t len = 0;
	g_autofree uint8_t *m = herd_wire_encode(HERD_MSG_CATCHUP, 2, 0, 0, "x", 1, &len);
	g_assert_cmpuint(herd_wire_type_of(m, len), ==, HERD_MSG_CATCHUP);
	g_assert_cmpuint(herd_wire_type_of(m, HERD_WIRE_HEADER_SIZE - 1), ==, 0);
	g_assert_cmpstr(herd_wire_type_name(HERD_MSG_CATCHUP), ==, "CATCHUP");
	g_assert_cmpstr(herd_wire_type_name(HERD_MSG_STATUS), ==, "STATUS");
	for (unsigned t = HERD_MSG_SYNC_START; t < HERD_MSG__MAX; t++)
		g_assert_nonnull(herd_wire_type_name(t));
	g_assert_null(herd_wire_type_name(0));
	g_assert_null(herd_wire_type_name(HERD_MSG__MAX));
}

static void test_byte_order(void)
{
	size_t len;
	g_autofree uint8_t *m = herd_wire_encode(HERD_MSG_PERSISTED, 0x0a0b0c0du,
						 0x1122334455667788ull, 0x99aabbccddeeff00ull,
						 "ab", 2, &len);
	static const uint8_t expect[HERD_WIRE_HEADER_SIZE + 2] = {
		'H', 'E', 'R', 'D',                             /* magic */
		HERD_WIRE_VERSION, 0,                           /* version */
		HERD_MSG_PERSISTED, 0,                          /* type */
		0x0d, 0x0c, 0x0b, 0x0a,                         /* sender */
		0, 0, 0, 0,                                     /* flags */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* epoch */
		0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, /* msg_id */
		2, 0, 0, 0,                                     /* payload_len */
		0, 0, 0, 0,                                     /* reserved */
		'a', 'b',
	};
	g_assert_cmpmem(m, len, expect, sizeof(expect));

	/* and a hand-made message in that layout decodes, flags and reserved
	 * included (a newer sender may set them) */
	uint8_t hand[sizeof(expect)];
	memcpy(hand, expect, sizeof(hand));
	herd_put_le32(hand + 12, 0x01020304u);
	herd_put_le32(hand + 36, 0x05060708u);
	herd_wire_header h;
	const void *p;
	g_assert_true(herd_wire_decode(hand, sizeof(hand), 0x0a0b0c0du, &h, &p, NULL));
	g_assert_cmphex(h.epoch, ==, 0x1122334455667788ull);
	g_assert_cmphex(h.msg_id, ==, 0x99aabbccddeeff00ull);
	g_assert_cmphex(h.flags, ==, 0x01020304u);
	g_assert_cmphex(h.reserved, ==, 0x05060708u);
	g_assert_cmpuint(h.payload_len, ==, 2);
}

/* Decoding @m (@len bytes) from @sender fails with a message containing
 * every one of the NULL-terminated needles. */
static void expect_reject(const void *m, size_t len, uint32_t sender, ...)
{
	herd_wire_header h;
	const void *p = NULL;
	g_autoptr(GError) error = NULL;
	g_assert_false(herd_wire_decode(m, len, sender, &h, &p, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	g_assert_null(p);
	va_list ap;
	va_start(ap, sender);
	for (const char *n = va_arg(ap, const char *); n; n = va_arg(ap, const char *))
		if (!strstr(error->message, n))
			g_error("'%s' does not mention '%s'", error->message, n);
	va_end(ap);
}

static uint8_t *valid(size_t payload_len, size_t *len)
{
	g_autofree char *payload = g_malloc0(payload_len + 1);
	return herd_wire_encode(HERD_MSG_COMMAND, 3, 1, 1, payload, payload_len, len);
}

static void test_rejections(void)
{
	size_t len;
	g_autofree uint8_t *m = valid(10, &len);

	/* truncated: anything shorter than the header */
	expect_reject(m, 0, 3, "node 3", "truncated", "0 bytes", "40-byte header", NULL);
	expect_reject(m, HERD_WIRE_HEADER_SIZE - 1, 3, "truncated", "39 bytes", NULL);
	expect_reject(NULL, 0, 3, "truncated", NULL);
	/* truncated payload: the length field no longer matches */
	expect_reject(m, len - 1, 3, "announces 10 payload bytes but carries 9", NULL);
	expect_reject(m, HERD_WIRE_HEADER_SIZE, 3, "announces 10", "carries 0", NULL);

	/* wrong magic */
	g_autofree uint8_t *bad = g_memdup2(m, len);
	bad[0] = 'h';
	expect_reject(bad, len, 3, "wrong magic number 0x44524568", NULL);
	memcpy(bad, m, len);
	herd_put_le32(bad, 0x48455244u); /* "HERD" read big-endian */
	expect_reject(bad, len, 3, "wrong magic", NULL);

	/* protocol version out of range */
	memcpy(bad, m, len);
	bad[4] = 0;
	bad[5] = 0;
	expect_reject(bad, len, 3, "speaks protocol 0", "understands", NULL);
	bad[4] = 0xff;
	bad[5] = 0xff;
	expect_reject(bad, len, 3, "speaks protocol 65535", NULL);
	bad[4] = HERD_WIRE_VERSION + 2;
	bad[5] = 0;
	expect_reject(bad, len, 3, "speaks protocol", NULL);

	/* unknown type */
	memcpy(bad, m, len);
	bad[6] = 0;
	expect_reject(bad, len, 3, "unknown type 0", NULL);
	bad[6] = HERD_MSG__MAX;
	expect_reject(bad, len, 3, "unknown type", NULL);
	bad[6] = HERD_MSG_COMMAND;
	bad[7] = 1; /* type 0x104 */
	expect_reject(bad, len, 3, "unknown type 260", NULL);

	/* the header's sender must be the one CPG names */
	expect_reject(m, len, 4, "Message from node 4 claims to come from node 3", NULL);
	expect_reject(m, len, 0, "claims to come from node 3", NULL);

	/* the length field lies, both ways */
	memcpy(bad, m, len);
	herd_put_le32(bad + 32, 11);
	expect_reject(bad, len, 3, "announces 11 payload bytes but carries 10", NULL);
	herd_put_le32(bad + 32, 0);
	expect_reject(bad, len, 3, "announces 0 payload bytes but carries 10", NULL);
	herd_put_le32(bad + 32, UINT32_MAX);
	expect_reject(bad, len, 3, "announces 4294967295 payload bytes, over the limit", NULL);
}

static void test_payload_limit(void)
{
	size_t len;
	/* exactly the limit passes */
	g_autofree uint8_t *max = valid(HERD_WIRE_MAX_PAYLOAD, &len);
	herd_wire_header h;
	const void *p;
	g_autoptr(GError) error = NULL;
	g_assert_true(herd_wire_decode(max, len, 3, &h, &p, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(h.payload_len, ==, HERD_WIRE_MAX_PAYLOAD);
	/* one byte more does not, even though the length field is honest */
	g_autofree uint8_t *over = valid(HERD_WIRE_MAX_PAYLOAD + 1, &len);
	expect_reject(over, len, 3, "announces 1048577 payload bytes, over the limit of 1048576", NULL);
}

/* Nodes one release apart understand each other: a node accepts messages
 * from a node one protocol version newer (it sends with its own version). */
static void test_newer_peer(void)
{
	size_t len;
	g_autofree uint8_t *m = valid(1, &len);
	m[4] = HERD_WIRE_VERSION + 1;
	herd_wire_header h;
	const void *p;
	g_assert_true(herd_wire_decode(m, len, 3, &h, &p, NULL));
	g_assert_cmpuint(h.version, ==, HERD_WIRE_VERSION + 1);
}

/* A failed decode does not need an error to report into. */
static void test_no_error_pointer(void)
{
	uint8_t junk[HERD_WIRE_HEADER_SIZE] = { 0 };
	herd_wire_header h;
	const void *p;
	g_assert_false(herd_wire_decode(junk, sizeof(junk), 0, &h, &p, NULL));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/wire/le-helpers", test_le_helpers);
	g_test_add_func("/wire/round-trip", test_round_trip);
	g_test_add_func("/wire/byte-order", test_byte_order);
	g_test_add_func("/wire/type-of", test_type_of);
	g_test_add_func("/wire/rejections", test_rejections);
	g_test_add_func("/wire/payload-limit", test_payload_limit);
	g_test_add_func("/wire/newer-peer", test_newer_peer);
	g_test_add_func("/wire/no-error-pointer", test_no_error_pointer);
	return g_test_run();
}
