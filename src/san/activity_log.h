/*
 * An eSAN replica's activity log, after DRBD's: the extents (4 MiB regions
 * of the volume) where a local write may be in flight or not yet stable on
 * both replicas.  Before a local write touches an extent that is not
 * active, the extent is made active and the log persisted (one 4 KiB block
 * written and synced); writes to active extents cost nothing more.  An
 * extent stops being active lazily: once no write is in flight in it, a
 * flush of both replicas covered its last write, and it has been quiet for
 * a while (san_al_tick), or when its slot is needed for another (eviction:
 * the least recently used clean extent).  The set is bounded (capacity), so
 * after a crash of the writer's node at most capacity × extent bytes are in
 * doubt, and only those are resynchronised.
 *
 * This is the pure core: the set, the decisions and the block format, with
 * time passed in; no I/O, no locking (the plugin's shell, plugin_al.c,
 * holds a mutex around every call and writes the blocks).
 *
 * Each persisted transaction is a whole snapshot of the set in one block:
 * magic, version, the log's session id (al_id, kept in the replica's
 * metadata too, new at every first local open), a sequence number, the
 * extent size, the extents, a SHA-256.  The file holds two blocks and
 * transaction n goes to block n mod 2, so a write torn by a power cut
 * leaves the one before intact — and that one suffices, since the torn
 * transaction's new extents had no write issued yet, and what it dropped
 * was clean.  Reading back takes the valid block of the session with the
 * highest number; none valid, or none of this session (an older one's), and
 * the log cannot be trusted.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define SAN_AL_BLOCK 4096u
#define SAN_AL_BLOCKS 2u                      /* the file: a ring of two blocks */
#define SAN_AL_MAX_EXTENTS 1000u              /* what one block holds */

typedef struct san_al san_al;

/* What a write must do before it may go (san_al_begin). */
typedef enum {
	SAN_AL_GO,        /* its extents are active and persisted: write */
	SAN_AL_PERSIST,   /* its extents are active, a transaction must be stable first
			   * (sequence number in *need): persist, then write */
	SAN_AL_FLUSH,     /* no room: a flush of both replicas would free some; nothing taken */
	SAN_AL_WAIT,      /* no room: every extent has a write in flight; nothing taken */
} san_al_step;

/* A log of at most @capacity extents of @extent bytes (a power of two),
 * dropping quiet extents after @quiet_us.  @capacity is at least 2 and at
 * most SAN_AL_MAX_EXTENTS; a write must never span more than @capacity
 * extents (the shell's largest request is much smaller). */
san_al *san_al_new(unsigned capacity, uint64_t extent, int64_t quiet_us);
void san_al_free(san_al *al);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(san_al, san_al_free)

/* A new session @al_id: the set emptied (no write may be in flight), the
 * next transaction says so.  The caller persists one before the metadata
 * names @al_id. */
void san_al_reset(san_al *al, uint64_t al_id);

/*
 * A write of [@off, @off+@len) wants to go at @now.  GO and PERSIST take
 * its extents (each stays active until san_al_end); PERSIST sets @need to
 * the transaction that must be stable before the write is issued.  FLUSH
 * and WAIT take nothing: flush (then san_al_flush_begin/_done) or wait for
 * a write to end, and ask again.
 */
san_al_step san_al_begin(san_al *al, uint64_t off, uint64_t len, int64_t now, uint64_t *need);

/* The write of [@off, @off+@len) ended (answered, or failed) at @now. */
void san_al_end(san_al *al, uint64_t off, uint64_t len, int64_t now);

/* A flush of both replicas starts: its ticket.  Writes that ended before
 * it are covered when it succeeds (san_al_flush_done). */
uint64_t san_al_flush_begin(san_al *al);
void san_al_flush_done(san_al *al, uint64_t ticket);

/* Drop the extents that are clean and quiet since @now - quiet_us; true if
 * any went (a transaction would shrink the log on disk). */
bool san_al_tick(san_al *al, int64_t now);

/* True if the set changed since the last transaction was encoded. */
bool san_al_changed(const san_al *al);

/* Encode the next transaction (a snapshot of the set) into @block
 * (SAN_AL_BLOCK bytes); its number in *@seq, its file offset in *@file_off. */
void san_al_encode_next(san_al *al, uint8_t *block, uint64_t *seq, uint64_t *file_off);

/* Transaction @seq is stable: writes waiting for it may go. */
void san_al_persisted(san_al *al, uint64_t seq);

/* The last stable transaction's number. */
uint64_t san_al_durable(const san_al *al);

/* How many extents are active. */
unsigned san_al_count(const san_al *al);

/* True if the extent holding byte @off is active (tests, logs). */
bool san_al_active(const san_al *al, uint64_t off);

/*
 * Read a log file's content (@len bytes, SAN_AL_BLOCKS blocks or fewer):
 * the extents of session @al_id's newest valid transaction into @extents
 * (uint32_t, ascending), its extent size into @extent.  False with an error
 * naming why the log cannot be trusted: empty or missing, every block torn
 * or foreign, or no block of session @al_id (an older session's log).
 */
bool san_al_read(const uint8_t *data, size_t len, uint64_t al_id, GArray *extents, uint64_t *extent,
		 GError **error);
