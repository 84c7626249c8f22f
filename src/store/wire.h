/*
 * Messages between herdd nodes, carried by corosync CPG.
 *
 * Every message starts with a fixed 40-byte header, little-endian whatever
 * the host: magic, the sender's protocol version, type, sender node id,
 * flags, epoch (the sync round the message belongs to), a sender-local message id
 * and the payload length.  A receiver accepts protocol versions from
 * HERD_WIRE_VERSION_MIN to HERD_WIRE_VERSION + 1: a node one release newer
 * keeps to what this release understands and ignores what it does not add,
 * so nodes one release apart work together during a rolling update
 * (HERD_WIRE_ACCEPT_MAX).  Anything else, a wrong
 * magic, a length that does not match or a payload over the limit is
 * rejected with an error that names the problem.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HERD_WIRE_MAGIC 0x44524548u /* "HERD" in little-endian byte order */
#define HERD_WIRE_VERSION 1
#define HERD_WIRE_VERSION_MIN 1
#define HERD_WIRE_ACCEPT_MAX (HERD_WIRE_VERSION + 1)
#define HERD_WIRE_HEADER_SIZE 40
#define HERD_WIRE_MAX_PAYLOAD (1024u * 1024u)

typedef enum {
	HERD_MSG_SYNC_START = 1, /* sync: the lowest member opens round <epoch> */
	HERD_MSG_STATE = 2,      /* sync: my position and protocol range (JSON) */
	HERD_MSG_SNAPSHOT = 3,   /* sync: one chunk of the leader's full state */
	HERD_MSG_COMMAND = 4,    /* a change to apply (JSON) */
	HERD_MSG_PERSISTED = 5,  /* I made everything up to this position durable */
	HERD_MSG_STATUS = 6,     /* soft state of a node (JSON, not persisted) */
	HERD_MSG_VM_REQUEST = 7, /* an operator's request for the node running a VM */
	HERD_MSG_VM_REPLY = 8,   /* its outcome, for the node that asked */
	HERD_MSG_LEAVING = 9,    /* I leave the group, and why (JSON {"reason"}) */
	HERD_MSG_PROGRESS = 10,  /* my live migrations under way (JSON, soft state) */
	HERD_MSG_CHECK = 11,     /* herd check: a request, a node's probe, the results (JSON) */
	HERD_MSG_CATCHUP = 12,   /* sync: one chunk of the changes a member missed */
	HERD_MSG__MAX
} herd_msg_type;

/* The type in the header of @msg (@len bytes, unchecked), 0 if too short. */
unsigned herd_wire_type_of(const void *msg, size_t len);
/* @type's name ("STATUS"), or NULL if it is not one of herd_msg_type. */
const char *herd_wire_type_name(unsigned type);

/* Is a message of @type the store's (replica_deliver()), not the HA
 * engine's soft state? */
static inline bool herd_msg_is_store(unsigned type)
{
	return type < HERD_MSG_STATUS || type == HERD_MSG_CATCHUP;
}

typedef struct herd_wire_header {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t sender;
	uint32_t flags;
	uint64_t epoch;
	uint64_t msg_id;
	uint32_t payload_len;
	uint32_t reserved;
} herd_wire_header;

/* A message of @type with @payload (may be NULL if @len is 0), g_free()able. */
void *herd_wire_encode(herd_msg_type type, uint32_t sender, uint64_t epoch, uint64_t msg_id,
		       const void *payload, size_t len, size_t *out_len);

/*
 * Check and decode the header of @msg (@len bytes), received from
 * @cpg_sender.  On success *@payload points into @msg.
 */
bool herd_wire_decode(const void *msg, size_t len, uint32_t cpg_sender, herd_wire_header *hdr,
		      const void **payload, GError **error);

/* Fixed-width little-endian helpers for binary payloads. */
void herd_put_le32(uint8_t *p, uint32_t v);
void herd_put_le64(uint8_t *p, uint64_t v);
uint32_t herd_get_le32(const uint8_t *p);
uint64_t herd_get_le64(const uint8_t *p);
