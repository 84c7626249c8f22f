/*
 * A storage as the replicated store holds it: where the disks and ISOs of
 * the cluster live, and how every node reaches it.
 *
 *   dir    a directory that every node mounts at the same path (OCFS2, NFS,
 *          GlusterFS…).  A marker file in it (STORE_STORAGE_MARKER, with the
 *          cluster's and the storage's UUIDs) tells the storage from an empty
 *          mount point: a node reaches the storage only where the marker is.
 *   iscsi  a target that QEMU's own initiator (libiscsi) logs in to: a
 *          portal (host[:port]) and the target's IQN; its LUNs are the disks.
 *
 * One dir storage may be the cluster share: images/, isos/, templates/ and
 * snapshots/ below its path; uploaded ISOs go there.  Read through
 * store_storage_of(); written through the builders below.
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

#define STORE_STORAGE_MARKER ".herd-storage"
#define STORE_ISCSI_PORT 3260

typedef enum {
	STORE_STORAGE_DIR = 0,
	STORE_STORAGE_ISCSI,
} store_storage_type;

typedef struct store_storage {
	store_storage_type type;
	const char *path;        /* dir: absolute, no trailing '/'; else NULL */
	const char *portal;      /* iscsi: "host" or "host:port"; else NULL */
	const char *target;      /* iscsi: the target's IQN; else NULL */
	bool cluster_share;      /* the one with images/, isos/, templates/, snapshots/ */
} store_storage;

const store_storage *store_storage_of(const store_object *o);
const char *store_storage_type_name(store_storage_type t);
bool store_storage_type_parse(const char *s, store_storage_type *out);

/* The cluster share, or NULL if there is none. */
store_object *store_storage_share(store_state *st);

/* The sub-directories of the cluster share, NULL-terminated. */
extern const char *const store_share_dirs[];

/*
 * Check what an operator gives for a new storage (the fields of the API's
 * POST /storage); on failure @error names the field.  @st: only one
 * cluster share, and no second storage at the same path or target.
 */
bool store_storage_check(store_state *st, json_t *fields, GError **error);
/* A new storage from checked @fields ({"type","path"|"portal","target","cluster_share"}). */
json_t *store_storage_cmd_create(const char *uuid, const char *name, json_t *fields);
/* Remove it (refused at apply while a disk or ISO is on it). */
json_t *store_storage_cmd_remove(const store_object *storage);

/* The marker file's content for @storage of the cluster @cluster_uuid
 * ({"cluster":…,"storage":…} and a newline). */
char *store_storage_marker(const char *cluster_uuid, const store_object *storage);
/* Does @content (a marker file read back) name this cluster and storage? */
bool store_storage_marker_matches(const char *content, const char *cluster_uuid,
				  const store_object *storage);

bool store_storage_validate(json_t *data, GError **error);
void *store_storage_parse(json_t *data);
void store_storage_free(void *typed);
