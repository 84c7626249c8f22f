/*
 * Disks and ISOs as the replicated store holds them.
 *
 * A disk is a VM's block device on a storage (store/storage.h): on a dir
 * storage an image file images/NAME.FORMAT below the storage's path, made
 * by herd (qemu-img); on an iSCSI storage one LUN of the target, made on
 * the target and registered here.  Its size is the size the guest sees.
 *
 * An eSAN disk (issue 11, docs/esan.md) is on no storage: it is a volume
 * with one replica on each of two nodes, kept identical by herd-san (the
 * data path, src/san) and served to the local QEMU over NBD.  The store
 * records, per replica, whether it is up to date: a replica is marked
 * outdated (a committed change) before its peer writes alone, so no
 * failover ever picks a stale one.
 *
 * An ISO is an image file uploaded into isos/ of the cluster share: a
 * CD-ROM, or a floppy image (virtio drivers for Windows), for VMs.
 *
 * Read through store_disk_of() and store_iso_of(); written through the
 * builders below.  A disk or ISO that a VM uses is not deleted (apply
 * refuses it: store/refs.h).
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* The largest disk herd makes: 64 TiB. */
#define STORE_DISK_SIZE_MAX (UINT64_C(64) << 40)
/* The largest ISO it takes: 64 GiB. */
#define STORE_ISO_SIZE_MAX (UINT64_C(64) << 30)
/* The largest LUN number (SAM: 0–16383 in the flat space). */
#define STORE_DISK_LUN_MAX 16383

typedef enum {
	STORE_DISK_QCOW2 = 0,
	STORE_DISK_RAW,
} store_disk_format;

/* An eSAN replica's state, as the store records it. */
typedef enum {
	STORE_REPLICA_UPTODATE = 0, /* holds every acknowledged write */
	STORE_REPLICA_OUTDATED,     /* its peer wrote alone since: it may be behind */
	STORE_REPLICA_INCONSISTENT, /* being synchronised, or never was: unusable */
} store_replica_state;

typedef struct store_replica {
	const char *node;         /* the node's UUID */
	store_replica_state state;
	bool discard;             /* an operator chose the other replica (promote
				   * --force, resolve --keep): this one's data goes,
				   * it is synchronised in full from the other */
} store_replica;

/* A verification of an eSAN disk's replicas (herd disk verify): asked of
 * one replica node's herd-san, its result recorded by that node. */
typedef struct store_esan_verify {
	int64_t id;               /* 0: never asked */
	const char *node;         /* the node asked (UUID) */
	bool done;
	bool equal;
	uint64_t differ;          /* bytes that differ */
	int64_t first;            /* the first offset that differs, or -1 */
	uint64_t compared;
	int64_t time_ms;          /* when the result was recorded */
	const char *error;        /* it could not compare, or NULL */
} store_esan_verify;

/* An operator's attach of a detached eSAN replica (herd disk attach): asked
 * of the replica node's herd-san, which starts that volume's server again. */
typedef struct store_esan_attach {
	int64_t id;               /* 0: never asked */
	const char *node;         /* the replica's node (UUID) */
} store_esan_attach;

/* The eSAN port range (TCP, one port per volume for the replication link). */
#define STORE_ESAN_PORT_MIN 7790
#define STORE_ESAN_PORT_MAX 7999

typedef struct store_disk {
	const char *storage;      /* the storage's UUID; NULL for an eSAN disk */
	store_disk_format format;
	uint64_t size;            /* bytes the guest sees */
	const char *file;         /* dir: its path below the storage's ("images/NAME.qcow2"); else NULL */
	int lun;                  /* iscsi: the LUN; else -1 */
	bool esan;                /* an eSAN volume: the fields below */
	store_replica replicas[2];
	int port;                 /* the replication link's TCP port, on both nodes */
	const char *gen;          /* its first generation identifier, 16 hex digits */
	store_esan_verify verify;
	store_esan_attach attach;
	const char *sync_by;      /* who caused the last discard (a full sync follows): the
				   * user of a promote, resolve or attach, or "system" */
} store_disk;

const store_disk *store_disk_of(const store_object *o);
const char *store_disk_format_name(store_disk_format f);
bool store_disk_format_parse(const char *s, store_disk_format *out);

/* A new disk's size from an operator's @s ("20G", "512M", bytes): at most
 * STORE_DISK_SIZE_MAX, in whole 512-byte sectors (what qemu-img makes). */
bool store_disk_size_parse(const char *s, uint64_t *out, GError **error);
/* The size disk @name of @current bytes grows to by @s: "30G" (the new
 * size) or "+10G" (that much more).  herd only grows disks: a size that
 * is not larger is refused with a sentence that says so. */
bool store_disk_grow_parse(const char *name, const char *s, uint64_t current, uint64_t *out,
			   GError **error);

/* Where a new disk @name of @format goes on a dir storage ("images/NAME.qcow2"). */
char *store_disk_file_for(const char *name, store_disk_format format);

/* A new disk; @file for a dir storage, @lun (>= 0) for an iSCSI one. */
json_t *store_disk_cmd_create(const char *uuid, const char *name, const store_object *storage,
			      store_disk_format format, uint64_t size, const char *file, int lun);
/* A new eSAN disk with replicas on nodes @nodes (UUIDs), both up to date
 * (two new volumes of zeros are identical), replication on TCP @port, first
 * generation identifier @gen (16 hex digits). */
json_t *store_disk_cmd_create_esan(const char *uuid, const char *name, uint64_t size,
				   const char *const nodes[2], int port, const char *gen);
/* Replica states @states (in the order of its replicas), if the disk is
 * still at the version the caller saw.  A replica that becomes up to date
 * loses its discard mark; the others keep theirs. */
json_t *store_disk_cmd_replicas(const store_object *disk, const store_replica_state states[2]);
/* An operator's choice: replica @keep (0 or 1) is up to date as it is, the
 * other outdated and discarded (promote --force, resolve --keep). */
json_t *store_disk_cmd_keep(const store_object *disk, unsigned keep);
/* @cmd (a store_disk_cmd_keep()) records @user as the one who chose
 * (instead of "system"). */
void store_disk_cmd_sync_by(json_t *cmd, const char *user);
/* Ask node @node_uuid's herd-san to attach its detached replica again (the
 * next id), for @user (who caused the full sync that follows). */
json_t *store_disk_cmd_attach(const store_object *disk, const char *node_uuid, const char *user);
/* Ask node @node_uuid's herd-san to verify the disk (the next id). */
json_t *store_disk_cmd_verify(const store_object *disk, const char *node_uuid);
/* Record the result of verification @id (@error: it could not compare);
 * NULL when the disk asks for another (or has this one's result). */
json_t *store_disk_cmd_verified(const store_object *disk, int64_t id, bool equal, uint64_t differ,
				int64_t first, uint64_t compared, const char *error, int64_t now_ms);
/* Its replica on node @node_uuid, or NULL. */
const store_replica *store_disk_replica(const store_disk *d, const char *node_uuid);
/* The other replica than @node_uuid's, or NULL (@node_uuid holds none). */
const store_replica *store_disk_peer(const store_disk *d, const char *node_uuid);
const char *store_replica_state_name(store_replica_state s);
bool store_replica_state_parse(const char *s, store_replica_state *out);
/* Where herd-san serves eSAN disk @uuid to the node's QEMU (NBD, export
 * @uuid): HERD_SAN_RUN_DIR/UUID.sock. */
#define HERD_SAN_RUN_DIR "/run/herd/san"
char *store_esan_socket(const char *uuid);
/* The lowest port in STORE_ESAN_PORT_MIN..MAX that no eSAN disk uses, or -1. */
int store_esan_free_port(store_state *st);

/* Its new size (grown). */
json_t *store_disk_cmd_resize(const store_object *disk, uint64_t size);
json_t *store_disk_cmd_delete(const store_object *disk);

bool store_disk_validate(json_t *data, GError **error);
void *store_disk_parse(json_t *data);
void store_disk_free(void *typed);

typedef struct store_iso {
	const char *storage;      /* the cluster share's UUID */
	const char *file;         /* its path below the share's ("isos/NAME") */
	uint64_t size;
	const char *sha256;       /* of its content, lower-case hex */
} store_iso;

const store_iso *store_iso_of(const store_object *o);
/* Where ISO @name goes on the cluster share ("isos/NAME"). */
char *store_iso_file_for(const char *name);
json_t *store_iso_cmd_create(const char *uuid, const char *name, const store_object *share,
			     uint64_t size, const char *sha256);
json_t *store_iso_cmd_delete(const store_object *iso);

bool store_iso_validate(json_t *data, GError **error);
void *store_iso_parse(json_t *data);
void store_iso_free(void *typed);

/* The file of a disk or ISO on a dir storage, as every node sees it
 * (storage path + '/' + file), or NULL (iSCSI, or no such storage). */
char *store_file_path(store_state *st, const char *storage_uuid, const char *file);
