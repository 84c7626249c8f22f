#include "store/wire.h"

#include "common/error.h"

#include <string.h>

void herd_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void herd_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t herd_get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

uint64_t herd_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

unsigned herd_wire_type_of(const void *msg, size_t len)
{
	return len >= HERD_WIRE_HEADER_SIZE ? get_le16((const uint8_t *)msg + 6) : 0;
}

const char *herd_wire_type_name(unsigned type)
{
	static const char *const names[HERD_MSG__MAX] = {
		[HERD_MSG_SYNC_START] = "SYNC_START", [HERD_MSG_STATE] = "STATE",
		[HERD_MSG_SNAPSHOT] = "SNAPSHOT",     [HERD_MSG_COMMAND] = "COMMAND",
		[HERD_MSG_PERSISTED] = "PERSISTED",   [HERD_MSG_STATUS] = "STATUS",
		[HERD_MSG_VM_REQUEST] = "VM_REQUEST", [HERD_MSG_VM_REPLY] = "VM_REPLY",
		[HERD_MSG_LEAVING] = "LEAVING",       [HERD_MSG_PROGRESS] = "PROGRESS",
		[HERD_MSG_CHECK] = "CHECK",           [HERD_MSG_CATCHUP] = "CATCHUP",
	};
	return type < HERD_MSG__MAX ? names[type] : NULL;
}

void *herd_wire_encode(herd_msg_type type, uint32_t sender, uint64_t epoch, uint64_t msg_id,
		       const void *payload, size_t len, size_t *out_len)
{
	uint8_t *m = g_malloc(HERD_WIRE_HEADER_SIZE + len);
	herd_put_le32(m + 0, HERD_WIRE_MAGIC);
	put_le16(m + 4, HERD_WIRE_VERSION);
	put_le16(m + 6, (uint16_t)type);
	herd_put_le32(m + 8, sender);
	herd_put_le32(m + 12, 0);
	herd_put_le64(m + 16, epoch);
	herd_put_le64(m + 24, msg_id);
	herd_put_le32(m + 32, (uint32_t)len);
	herd_put_le32(m + 36, 0);
	if (len)
		memcpy(m + HERD_WIRE_HEADER_SIZE, payload, len);
	*out_len = HERD_WIRE_HEADER_SIZE + len;
	return m;
}

bool herd_wire_decode(const void *msg, size_t len, uint32_t cpg_sender, herd_wire_header *hdr,
		      const void **payload, GError **error)
{
	const uint8_t *m = msg;
	if (len < HERD_WIRE_HEADER_SIZE) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Message from node %u is truncated: %zu bytes, shorter than the %d-byte header.",
			    cpg_sender, len, HERD_WIRE_HEADER_SIZE);
		return false;
	}
	hdr->magic = herd_get_le32(m + 0);
	hdr->version = get_le16(m + 4);
	hdr->type = get_le16(m + 6);
	hdr->sender = herd_get_le32(m + 8);
	hdr->flags = herd_get_le32(m + 12);
	hdr->epoch = herd_get_le64(m + 16);
	hdr->msg_id = herd_get_le64(m + 24);
	hdr->payload_len = herd_get_le32(m + 32);
	hdr->reserved = herd_get_le32(m + 36);
	if (hdr->magic != HERD_WIRE_MAGIC) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Message from node %u has a wrong magic number 0x%08x.", cpg_sender,
			    hdr->magic);
		return false;
	}
	if (hdr->version < HERD_WIRE_VERSION_MIN || hdr->version > HERD_WIRE_ACCEPT_MAX) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Message from node %u speaks protocol %u; this node understands %d to %d.",
			    cpg_sender, hdr->version, HERD_WIRE_VERSION_MIN, HERD_WIRE_ACCEPT_MAX);
		return false;
	}
	if (hdr->type == 0 || hdr->type >= HERD_MSG__MAX) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Message from node %u has unknown type %u.", cpg_sender, hdr->type);
		return false;
	}
	if (hdr->sender != cpg_sender) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Message from node %u claims to come from node %u.", cpg_sender,
			    hdr->sender);
		return false;
	}
	if (hdr->payload_len > HERD_WIRE_MAX_PAYLOAD) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Message from node %u announces %u payload bytes, over the limit of %u.",
			    cpg_sender, hdr->payload_len, HERD_WIRE_MAX_PAYLOAD);
		return false;
	}
	if (hdr->payload_len != len - HERD_WIRE_HEADER_SIZE) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Message from node %u announces %u payload bytes but carries %zu.",
			    cpg_sender, hdr->payload_len, len - HERD_WIRE_HEADER_SIZE);
		return false;
	}
	*payload = m + HERD_WIRE_HEADER_SIZE;
	return true;
}
