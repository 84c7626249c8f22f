/*
 * An eSAN replica's metadata and the decision two replicas take when they
 * meet, after DRBD's generation identifiers.  Every data generation has a
 * random 64-bit identifier: "current" names the one this replica holds,
 * "bitmap" the one its dirty bitmap counts changes against (0: the bitmap
 * tracks nothing), "history" the two before.  A replica goes on alone
 * (san_meta_go_alone) by starting a new generation; two replicas that meet
 * compare identifiers (san_meta_decide) to learn which one is newer, whether
 * the dirty bitmap suffices or everything must be copied, and whether both
 * were written independently (split brain) or never shared data (unrelated).
 *
 * A replica whose writer crashed (SAN_META_CRASHED) may differ from its peer
 * where writes were in flight.  If its activity log (san/activity_log.h) was
 * trustworthy, those regions are listed here (SAN_META_CRASH_LISTED, the
 * crash extents) and a sync copies only them and the dirty bitmap; else a
 * sync copies everything.
 *
 * On disk (and in the peer's `meta` export) the metadata is one 4 KiB block:
 * magic, version, fields little-endian, a SHA-256 of the rest at its end.
 * The activity log's fields (al_id, the crash extents) sit in what version 1
 * left zero: a herd without them ignores them and, not knowing
 * SAN_META_CRASH_LISTED, never keeps that flag, so it falls back to a full
 * sync (never to none).
 * Pure: no I/O; the plugin saves it with herd_file_write_atomic.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define SAN_META_BLOCK 4096u
#define SAN_META_VERSION 1u

/* Flags kept on disk. */
enum {
	/* The replica holds a whole generation (clear on a sync target until the sync ends). */
	SAN_META_CONSISTENT = 1u << 0,
	/* The store recorded this replica outdated (informational; the store decides). */
	SAN_META_OUTDATED = 1u << 1,
	/* A local writer (the guest's QEMU) had the replica open: set while one
	 * is, cleared at its clean close.  Found set at start, it means the
	 * writer's node crashed, and SAN_META_CRASHED is set. */
	SAN_META_WRITER = 1u << 2,
	/* The replica was opened after a crash with a writer open: it may hold
	 * writes its peer never got (or miss some the peer got); the next sync
	 * copies everything.  Cleared at a sync's end. */
	SAN_META_CRASHED = 1u << 3,
	/* With SAN_META_CRASHED: the regions the crash may have left differing
	 * are listed (crash extents, from the activity log); a sync copies
	 * those, not everything.  Cleared with SAN_META_CRASHED. */
	SAN_META_CRASH_LISTED = 1u << 4,
	/* Live only, never on disk: the local disk under this replica failed
	 * and the store has the replica outdated (detached): it serves its
	 * guest from the peer's replica, and takes none of the peer's writes
	 * (what the `meta` export shows the peer). */
	SAN_META_DISKLESS_NOW = 1u << 30,
	/* Live only, never on disk: a local writer has the replica open now
	 * (what the `meta` export shows the peer). */
	SAN_META_WRITER_NOW = 1u << 31,
};
#define SAN_META_DISK_FLAGS (SAN_META_CONSISTENT | SAN_META_OUTDATED | SAN_META_WRITER | SAN_META_CRASHED | \
			     SAN_META_CRASH_LISTED)

/* The most crash extents a block holds (32 bits each); more: a full sync. */
#define SAN_META_CRASH_MAX 960u

typedef struct {
	uint32_t flags;
	uint64_t size;           /* the volume's size, bytes */
	uint64_t current;        /* 0: no data generation (a new or discarded replica) */
	uint64_t bitmap;
	uint64_t history[2];
	uint64_t replica_id;     /* random, made with the replica: a tie-break between equals */
	uint64_t al_id;          /* the activity log's session, made at each first local open */
	uint64_t crash_extent;   /* bytes per crash extent (with SAN_META_CRASH_LISTED) */
	uint32_t crash_count;
	uint32_t crash[SAN_META_CRASH_MAX];   /* extent numbers, ascending, each once */
} san_meta;

/* What two replicas do when they meet, as seen from "self". */
typedef enum {
	SAN_SYNC_NONE,            /* identical: connected, in sync */
	SAN_SYNC_SOURCE_BITMAP,   /* self is newer: copy self's dirty regions to the peer */
	SAN_SYNC_TARGET_BITMAP,   /* the peer is newer and copies its dirty regions here */
	SAN_SYNC_SOURCE_FULL,     /* self copies everything to the peer */
	SAN_SYNC_TARGET_FULL,     /* the peer copies everything here */
	SAN_SYNC_SPLIT_BRAIN,     /* both written since they parted: refuse */
	SAN_SYNC_UNRELATED,       /* no common generation, or no replica to copy from: refuse */
} san_sync;

/* A name for logs and events ("source-bitmap", "split-brain"…). */
const char *san_sync_name(san_sync s);
/* The same decision seen from the peer (SOURCE_x ⇄ TARGET_x). */
san_sync san_sync_mirror(san_sync s);
/* True for the two SOURCE decisions. */
bool san_sync_is_source(san_sync s);
/* True for the two TARGET decisions. */
bool san_sync_is_target(san_sync s);

/*
 * A new replica of @size bytes: with @current non-zero it holds that
 * generation and is consistent (both replicas of a new volume are zeros and
 * start with the same identifier), else it is a full sync target.
 */
void san_meta_init(san_meta *m, uint64_t size, uint64_t current, uint64_t replica_id);

/*
 * The decision when @self meets @peer (flags with SAN_META_WRITER_NOW as
 * each side sees it now).  Symmetric: san_meta_decide(peer, self) is
 * san_sync_mirror(san_meta_decide(self, peer)).  The rules, in order:
 *  1. neither consistent with a generation → unrelated (nothing to copy from);
 *  2. one side without a generation or inconsistent, the other consistent →
 *     the consistent side is the full-sync source, unless the peer's bitmap
 *     names the inconsistent side's generation (an interrupted bitmap sync
 *     resumes from the bitmap);
 *  3. equal current identifiers → in sync; but if either side crashed with
 *     a writer open, a full sync from the side with a writer now, else from
 *     the crashed side, else from the larger replica_id;
 *  4. self's bitmap names the peer's current → self is the source (bitmap);
 *     mirrored for the peer;
 *  5. both bitmaps name the same generation → split brain;
 *  6. self's current is in the peer's history → the peer is the full-sync
 *     source; mirrored;
 *  7. a common generation anywhere else (bitmaps, histories) → split brain;
 *  8. else unrelated.
 * A bitmap decision becomes a full one if either side crashed without its
 * regions listed (its bitmap may miss writes that were in flight); with
 * them listed it stays a bitmap decision, and in rule 3 the chosen side is
 * the bitmap source: the source copies its dirty regions and both sides'
 * crash extents (san_meta_crash_regions).
 */
san_sync san_meta_decide(const san_meta *self, const san_meta *peer);

/* Start a new data generation for writing alone: if the bitmap tracks
 * nothing it starts tracking the current generation; current = @new_id.
 * Idempotent per outage: call it once when the first write goes alone. */
void san_meta_go_alone(san_meta *m, uint64_t new_id);

/* A sync from @source ended: the target now holds the source's generation
 * and is consistent, and the source's bitmap generation goes to history. */
void san_meta_sync_end_source(san_meta *source);
void san_meta_sync_end_target(san_meta *target, const san_meta *source);

/* The replica's writer crashed and its activity log names the @n extents
 * of @extent bytes in @ext that were active: they join the crash extents
 * (SAN_META_CRASHED | SAN_META_CRASH_LISTED).  False (and a full sync is
 * what is left: san_meta_crash_full) if an earlier crash was not listed,
 * the extent size differs, or the list overflows. */
bool san_meta_crash_add(san_meta *m, uint64_t extent, const uint32_t *ext, unsigned n);

/* The replica's writer crashed and nothing tells where: the next sync
 * copies everything. */
void san_meta_crash_full(san_meta *m);

/* True if @m crashed with its regions listed. */
bool san_meta_crash_listed(const san_meta *m);

/* Call @fn for each region (byte offset and length, clipped to @size) of
 * @m's crash extents; nothing if not listed. */
void san_meta_crash_regions(const san_meta *m, uint64_t size,
			    void (*fn)(uint64_t off, uint64_t len, void *data), void *data);

/* `promote --force`: this replica is declared up to date, with a new
 * generation @new_id (the one it had is kept as the bitmap's base). */
void san_meta_promote(san_meta *m, uint64_t new_id);

/* `discard`: this replica lost; it becomes a full-sync target. */
void san_meta_discard(san_meta *m);

/* The peer's disk failed and was detached: this replica (and, in memory
 * only, the detached one, which serves from it) goes on in a new
 * generation @new_id with no bitmap base, so that the detached replica's
 * metadata on its disk is older (in the history) and gets a full sync. */
void san_meta_detach_generation(san_meta *m, uint64_t new_id);

/* The block of @m (SAN_META_BLOCK bytes at @block); @live keeps
 * SAN_META_WRITER_NOW (the `meta` export), else only disk flags. */
void san_meta_encode(const san_meta *m, bool live, uint8_t *block);

/* Parse a block; false with an error naming what is wrong (magic, version,
 * checksum, size).  SAN_META_WRITER_NOW is kept as found. */
bool san_meta_decode(const uint8_t *block, size_t len, san_meta *m, GError **error);

/* "current:bitmap:history0:history1 flags" in hex, for logs (g_free). */
char *san_meta_describe(const san_meta *m);
