/*
 * What herdd asks of herd-san: one JSON line of /run/herd/san.sock parsed
 * and checked into a typed request.  Pure: no I/O, so that every refusal is
 * unit-tested; herd-san's shell (control.c) acts only on a request that
 * passed.
 */
#pragma once

#include "store/object.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define SAN_UUID_LEN STORE_UUID_LEN
/* A control line longer than this is refused (and its connection closed). */
#define SAN_LINE_MAX (64 * 1024)
/* The largest volume herd-san makes (the store's limit for disks). */
#define SAN_SIZE_MAX (UINT64_C(64) << 40)

typedef enum {
	SAN_OP_CONFIG,
	SAN_OP_VOLUME,
	SAN_OP_REMOVE,
	SAN_OP_OUTDATED,
	SAN_OP_PEER_DOWN,
	SAN_OP_RESIZE,
	SAN_OP_DISCARD,
	SAN_OP_PROMOTE,
	SAN_OP_VERIFY,
	SAN_OP_STATUS,
	SAN_OP_DETACHED,        /* the store has the replica outdated after its disk failed */
	SAN_OP_ATTACH,          /* start a detached replica's server again (herd disk attach) */
} san_op;

typedef enum {
	SAN_REPLICA_UPTODATE,
	SAN_REPLICA_OUTDATED,
	SAN_REPLICA_INCONSISTENT,
} san_replica_state;

typedef struct {
	char *address;	/* an IPv4 or IPv6 literal */
	uint16_t port;
} san_endpoint;

typedef struct {
	char *tls_dir;
	uint64_t resync_rate;	/* bytes/s */
	uint64_t timeout_ms;
} san_config;

typedef struct {
	char *name;
	uint64_t size;
	san_endpoint listen;
	char *peer_node;
	san_endpoint peer;
	san_replica_state local, peer_state;
	uint64_t initial_gen;
} san_volume_spec;

typedef struct {
	san_op op;
	char uuid[SAN_UUID_LEN + 1];	/* "" for config and status */
	uint64_t size;			/* resize */
	san_config config;		/* config */
	san_volume_spec volume;		/* volume */
	json_t *json;			/* the line as parsed, for relaying */
} san_request;

/* Parse and check one control line; NULL with an HERD_ERR_INVALID error that
 * names the problem ("op 'volume': "size" must be …"). */
san_request *san_request_parse(const char *line, GError **error);

/* The same for a parsed object (a volume's saved message). */
san_request *san_request_from_json(json_t *obj, GError **error);

void san_request_free(san_request *req);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(san_request, san_request_free)

/* The op's name as on the wire ("peer-down"). */
const char *san_op_name(san_op op);

/* True for ops herd-san passes on to the volume's plugin. */
bool san_op_is_relayed(san_op op);

/* "uptodate", "outdated", "inconsistent". */
const char *san_replica_state_name(san_replica_state s);

/* The generation identifier as the plugin takes it: 16 hex digits. */
char *san_gen_format(uint64_t gen);
