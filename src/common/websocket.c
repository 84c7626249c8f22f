/*
 * WebSocket frames and the handshake's key (common/websocket.h).
 */
#include "common/websocket.h"

#include "common/error.h"

#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

char *ws_accept_key(const char *key)
{
	if (!key || strlen(key) != 24)
		return NULL;
	for (const char *p = key; *p; p++)
		if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=')
			return NULL;
	gsize n = 0;
	g_autofree guchar *raw = g_base64_decode(key, &n);
	if (n != 16)
		return NULL;
	g_autoptr(GChecksum) sha1 = g_checksum_new(G_CHECKSUM_SHA1);
	g_checksum_update(sha1, (const guchar *)key, 24);
	g_checksum_update(sha1, (const guchar *)WS_GUID, strlen(WS_GUID));
	guint8 digest[20];
	gsize digest_len = sizeof(digest);
	g_checksum_get_digest(sha1, digest, &digest_len);
	return g_base64_encode(digest, digest_len);
}

static ws_decode_result refuse(uint16_t *close_code, uint16_t code, GError **error,
			       const char *message)
{
	*close_code = code;
	g_set_error_literal(error, HERD_ERROR, HERD_ERR_INVALID, message);
	return WS_DECODE_ERROR;
}

ws_decode_result ws_decode(ws_decoder *d, uint8_t *buf, size_t len, ws_frame *out, size_t *used,
			   uint16_t *close_code, GError **error)
{
	if (len < 2)
		return WS_DECODE_MORE;
	bool fin = buf[0] & 0x80;
	unsigned opcode = buf[0] & 0x0f;
	if (buf[0] & 0x70)
		return refuse(close_code, WS_CLOSE_PROTOCOL_ERROR, error,
			      "A frame has reserved bits set (no extension was agreed).");
	bool control = opcode & 0x8;
	if (opcode != WS_OP_CONTINUATION && opcode != WS_OP_TEXT && opcode != WS_OP_BINARY &&
	    opcode != WS_OP_CLOSE && opcode != WS_OP_PING && opcode != WS_OP_PONG)
		return refuse(close_code, WS_CLOSE_PROTOCOL_ERROR, error, "A frame has an unknown opcode.");
	bool masked = buf[1] & 0x80;
	if (!masked && !d->from_server)
		return refuse(close_code, WS_CLOSE_PROTOCOL_ERROR, error,
			      "A client's frame is not masked (RFC 6455 requires it).");
	if (masked && d->from_server)
		return refuse(close_code, WS_CLOSE_PROTOCOL_ERROR, error,
			      "A server's frame is masked (RFC 6455 forbids it).");
	uint64_t plen = buf[1] & 0x7f;
	size_t header = 2;
	if (plen == 126) {
		if (len < 4)
			return WS_DECODE_MORE;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		header = 4;
	} else if (plen == 127) {
		if (len < 10)
			return WS_DECODE_MORE;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		header = 10;
	}
	if (control) {
		if (!fin)
			return refuse(close_code, WS_CLOSE_PROTOCOL_ERROR, error,
				      "A control frame is fragmented.");
		if (plen > WS_MAX_CONTROL_PAYLOAD)
			return refuse(close_code, WS_CLOSE_PROTOCOL_ERROR, error,
				      "A control frame carries more than 125 bytes.");
	} else {
		if (opcode == WS_OP_TEXT)
			return refuse(close_code, WS_CLOSE_UNSUPPORTED, error,
				      "The console takes binary frames only (subprotocol 'binary').");
		if (opcode == WS_OP_CONTINUATION && !d->in_message)
			return refuse(close_code, WS_CLOSE_PROTOCOL_ERROR, error,
				      "A continuation frame comes without a message to continue.");
		if (opcode != WS_OP_CONTINUATION && d->in_message)
			return refuse(close_code, WS_CLOSE_PROTOCOL_ERROR, error,
				      "A new message begins before the fragmented one has ended.");
		if (plen > d->max_payload) {
			*close_code = WS_CLOSE_TOO_BIG;
			g_set_error(error, HERD_ERROR, HERD_ERR_TOO_LARGE,
				    "A frame of %" G_GUINT64_FORMAT " bytes is larger than the console takes (%zu).",
				    plen, d->max_payload);
			return WS_DECODE_ERROR;
		}
	}
	if (masked)
		header += 4;
	if (len < header || len - header < plen)
		return WS_DECODE_MORE;
	uint8_t *payload = buf + header;
	if (masked)
		ws_mask(payload, (size_t)plen, buf + header - 4);
	if (!control)
		d->in_message = !fin;
	out->opcode = (ws_opcode)opcode;
	out->fin = fin;
	out->payload = payload;
	out->len = (size_t)plen;
	*used = header + (size_t)plen;
	return WS_DECODE_FRAME;
}

void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4])
{
	for (size_t i = 0; i < len; i++)
		data[i] ^= mask[i & 3];
}

size_t ws_client_frame_header(uint8_t out[WS_MAX_HEADER], ws_opcode opcode, uint64_t payload_len,
			      const uint8_t mask[4])
{
	size_t n = ws_frame_header(out, opcode, payload_len);
	out[1] |= 0x80;
	memcpy(out + n, mask, 4);
	return n + 4;
}

size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], ws_opcode opcode, uint64_t payload_len)
{
	out[0] = 0x80 | (uint8_t)opcode;
	if (payload_len < 126) {
		out[1] = (uint8_t)payload_len;
		return 2;
	}
	if (payload_len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(payload_len >> 8);
		out[3] = (uint8_t)payload_len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
	return 10;
}
