/*
 * Reach: what a node finds of the cluster's storages and virtual switches,
 * the pure part.  Which objects to check (herd_reach_targets()), how each
 * kind is checked — one check per storage type in a table, and one for a
 * virtual switch — and what the results say in a node's STATUS
 * (herd_reach_json()).  The checks ask the host only through a
 * herd_reach_host table: herdd's reach checker (daemon/reach_check.h)
 * gives the real calls and runs them off its main loop, a unit test gives
 * fakes.  The scheduler places a VM only on nodes whose report says they
 * reach all that it needs (ha/sched.h).
 *
 * A dir storage is reached where its path is a directory that holds the
 * marker file of this cluster and this storage (store/storage.h): an empty
 * mount point (an NFS mount that failed) is not the storage.  Checking
 * never writes the marker; only adding the storage does.  An iSCSI storage
 * is reached where its portal answers and offers its target to this node
 * (a login through libiscsi, the initiator QEMU uses: virt/iscsi.h).
 */
#pragma once

#include "store/state.h"
#include "store/storage.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* One storage or virtual switch to check, copied from the store: the
 * checks run on another thread. */
typedef struct herd_reach_target {
	char *uuid;
	char *name;
	bool network;              /* a virtual switch; else a storage */
	store_storage_type type;   /* a storage's type */
	char *path;                /* dir: its path */
	char *bridge;              /* a virtual switch: its bridge */
	unsigned vlan;             /* a virtual switch: its VLAN, or 0 */
	char *portal;              /* iscsi: its portal (host[:port]) */
	char *target;              /* iscsi: its target's IQN */
} herd_reach_target;

void herd_reach_target_free(herd_reach_target *t);
/* A copy of @t of its own (for a check's thread). */
herd_reach_target *herd_reach_target_copy(const herd_reach_target *t);
/* Is @a checked as @b is (the same object, checked at the same place)? */
bool herd_reach_target_same(const herd_reach_target *a, const herd_reach_target *b);

/* Every storage and virtual switch of @st, by uuid (herd_reach_target*,
 * freed with the array). */
GPtrArray *herd_reach_targets(store_state *st);

typedef struct herd_reach_result {
	bool ok;
	char *problem;             /* why not, a phrase ("… does not exist"); NULL if ok */
	bool has_usage;            /* a dir storage seen: its filesystem's */
	uint64_t size, free;       /* bytes */
} herd_reach_result;

void herd_reach_result_clear(herd_reach_result *r);

/* What a check asks of the host.  Each returns 0 or -errno. */
typedef struct herd_reach_host {
	/* Is @path a directory (-ENOENT, -ENOTDIR, -EACCES…)? */
	int (*dir_exists)(gpointer user, const char *path);
	/* The content of file @path, at most @max bytes (g_free). */
	int (*read_file)(gpointer user, const char *path, size_t max, char **content);
	/* Size and free space of the filesystem of @path (statvfs). */
	int (*fs_usage)(gpointer user, const char *path, uint64_t *size, uint64_t *free);
	/* Is @name a bridge on this host (-ENOENT: no such interface,
	 * -ENOTDIR: an interface, not a bridge)?  *@ovs: an Open vSwitch
	 * bridge (its port is enslaved to ovs-system), else a Linux bridge. */
	int (*bridge_exists)(gpointer user, const char *name, bool *ovs);
	/* List the iSCSI targets and LUNs at @portal (iscsi-ls -s, bounded in
	 * time): 0 and its *@output; a positive exit status and its *@error
	 * text; or -errno if it could not run.  Both strings g_free'd. */
	int (*iscsi_list)(gpointer user, const char *portal, char **output, char **error);
} herd_reach_host;

/* Check one storage type: fill @out. */
typedef void (*herd_reach_check_fn)(const herd_reach_target *t, const char *cluster_uuid,
				    const herd_reach_host *host, gpointer user, herd_reach_result *out);

/* Is storage type @type checked (a check in the table)?  A VM needs only
 * storages that are: until iSCSI is checked, its storages are reported
 * "not checked yet" and constrain no placement. */
bool herd_reach_type_checked(store_storage_type type);

/* Check @t on this host (the cluster's uuid for the marker). */
void herd_reach_check(const herd_reach_target *t, const char *cluster_uuid,
		      const herd_reach_host *host, gpointer user, herd_reach_result *out);

/* @results (uuid -> herd_reach_result*) as a STATUS's "reach"
 * ({uuid: {"ok"[,"problem"]}}) and "usage" ({uuid: {"size","free"}}),
 * in uuid order: the same results give the same bytes. */
void herd_reach_json(GHashTable *results, json_t **reach, json_t **usage);

/* The largest marker file read back (it holds two uuids and a name). */
#define HERD_REACH_MARKER_MAX 4096
