/*
 * The changes a replica applied last, as applied (store/replica.c): a
 * member that missed some of them is sent only those (a catch-up), not the
 * whole store.  Kept in memory, packed (store/packed.h), in one ring of
 * @max_bytes allocated at the first change (no block of its own per
 * change: each one dropped left a hole in the heap), bounded in entries
 * and in bytes, oldest dropped first.  No I/O.
 */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

typedef struct change_log change_log;

change_log *change_log_new(unsigned max_entries, size_t max_bytes);
void change_log_free(change_log *l);
/* Forget every change (the history they belong to may be rolled back). */
void change_log_clear(change_log *l);
/* Keep at most @max_entries, dropping the oldest now. */
void change_log_set_max(change_log *l, unsigned max_entries);
/* Keep @cmd, applied as change @index of generation @gen after the
 * position whose hash is @prev.  A change that does not follow the last
 * one kept starts the log anew. */
void change_log_add(change_log *l, uint64_t gen, uint64_t index, const uint8_t prev[32],
		    const uint8_t *cmd, size_t len);
/* The index of the change that follows position (@index, @hash) if the
 * log has it on that history; 0 if not. */
uint64_t change_log_after(const change_log *l, uint64_t index, const uint8_t hash[32]);
/* The changes from index @from on, for the wire: [u64 gen][u64 index]
 * [u32 length][command]…, little-endian; *@n their count. */
GByteArray *change_log_encode(const change_log *l, uint64_t from, unsigned *n);
