/*
 * WebSocket (RFC 6455), as the VM console speaks it: the opening
 * handshake's accept key, frames parsed from a byte buffer (a client's,
 * by herdd's console proxy; a server's, by the CLI's port forwarding) and
 * frame headers written.  Pure: no I/O, no allocation but the key;
 * daemon/console_proxy.c and cli/vm_console.c do the reading and writing.
 *
 * The console carries RFB, a byte stream: a data message's frames are
 * passed on as they come, so a fragmented message needs no buffer of its
 * own; what the parser keeps is only whether one is under way.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
	WS_OP_CONTINUATION = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
} ws_opcode;

/* Close codes (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011
#define WS_CLOSE_TRY_LATER 1013

/* A control frame's payload is at most this long (and never fragmented). */
#define WS_MAX_CONTROL_PAYLOAD 125
/* The longest frame header: 2 bytes, a 64-bit length, a 4-byte mask. */
#define WS_MAX_HEADER 14

/* Sec-WebSocket-Accept for the client's Sec-WebSocket-Key @key; NULL if
 * @key is not the base64 of 16 bytes, as RFC 6455 wants it. */
char *ws_accept_key(const char *key);

/* One connection's frames: what the parser keeps between them. */
typedef struct {
	size_t max_payload;   /* a data frame's largest payload taken */
	bool from_server;     /* the server's frames (unmasked), not a client's */
	bool in_message;      /* a fragmented data message goes on */
} ws_decoder;

typedef struct {
	ws_opcode opcode;
	bool fin;
	uint8_t *payload;     /* unmasked in place, inside the caller's buffer */
	size_t len;
} ws_frame;

typedef enum {
	WS_DECODE_ERROR = -1, /* the connection must close with *close_code */
	WS_DECODE_MORE = 0,   /* not a whole frame yet */
	WS_DECODE_FRAME = 1,  /* a frame, *used bytes of the buffer */
} ws_decode_result;

/*
 * The first frame of @buf (@len bytes): its payload unmasked in place.  A
 * frame that breaks the protocol or the console's limits (a client's
 * unmasked or a server's masked,
 * reserved bits, unknown opcode, a control frame fragmented or too long,
 * a data frame over @d->max_payload, a continuation without a message or
 * a message inside another, text) is an error with the close code to send
 * and a sentence.
 */
ws_decode_result ws_decode(ws_decoder *d, uint8_t *buf, size_t len, ws_frame *out, size_t *used,
			   uint16_t *close_code, GError **error);

/* The header of an unmasked, final server frame of @opcode carrying
 * @payload_len bytes, written to @out: its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[WS_MAX_HEADER], ws_opcode opcode, uint64_t payload_len);

/* The header of a final client frame, masked with @mask (4 random bytes):
 * its length (6, 8 or 14); the payload is to be masked with ws_mask(). */
size_t ws_client_frame_header(uint8_t out[WS_MAX_HEADER], ws_opcode opcode, uint64_t payload_len,
			      const uint8_t mask[4]);
/* Mask (or unmask) @len bytes of @data with @mask in place. */
void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4]);
