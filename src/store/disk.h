/*
 * Disks and ISOs as the replicated store holds them.
 *
 * A disk is a VM's block device on a storage (store/storage.h): on a dir
 * storage an image file images/NAME.FORMAT below the storage's path, made
 * by herd (qemu-img); on an iSCSI storage one LUN of the target, made on
 * the target and registered here.  Its size is the size the guest sees.
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

typedef struct store_disk {
	const char *storage;      /* the storage's UUID */
	store_disk_format format;
	uint64_t size;            /* bytes the guest sees */
	const char *file;         /* dir: its path below the storage's ("images/NAME.qcow2"); else NULL */
	int lun;                  /* iscsi: the LUN; else -1 */
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
