/*
 * An eSAN replica's dirty bitmap: one bit per 4 KiB of the volume, set for
 * every region written while the peer did not get it, cleared when a resync
 * copied the region.  Held in memory and in a file that survives a crash:
 * a header block, then the bits, 4 KiB a page (one page covers 128 MiB).
 * san_bitmap_mark() returns only when the pages holding the region's bits
 * are on stable storage (written and synced), so the caller may then
 * acknowledge the write; pages are written through a callback table (a file
 * descriptor in the plugin, memory in the tests).  Thread-safe.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SAN_BITMAP_GRAIN 4096u        /* bytes of volume per bit */
#define SAN_BITMAP_PAGE 4096u         /* bytes of bitmap per page */
#define SAN_BITMAP_HEADER 4096u       /* the file's header block */

/* Where the bitmap's file is written; both return 0 or -errno. */
typedef struct {
	int (*write)(void *ctx, uint64_t file_offset, const void *buf, size_t len);
	int (*sync)(void *ctx);
	void *ctx;
} san_bitmap_io;

typedef struct san_bitmap san_bitmap;

/* A clean bitmap for a volume of @size bytes, writing through @io (copied). */
san_bitmap *san_bitmap_new(uint64_t size, const san_bitmap_io *io);
void san_bitmap_free(san_bitmap *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(san_bitmap, san_bitmap_free)

/* The bits from a file's content (@len bytes: header and pages); false with
 * an error if the header does not match this volume's size or is no
 * bitmap's.  Pages the file lacks are clean. */
bool san_bitmap_load(san_bitmap *b, const void *data, size_t len, GError **error);

/* Write the whole file (header and every page) and sync: for a new file,
 * after a resize, after loading one that could not be trusted.  0 or -errno. */
int san_bitmap_write_all(san_bitmap *b);

/* Mark [@offset, @offset+@len) dirty; returns once every page holding those
 * bits is stable (also when another thread set them and is still writing).
 * 0 or -errno (the caller must then not acknowledge the write). */
int san_bitmap_mark(san_bitmap *b, uint64_t offset, uint64_t len);

/* Mark the whole volume dirty (a full sync's start), persisted.  0 or -errno. */
int san_bitmap_mark_all(san_bitmap *b);

/* Set [@offset, @offset+@len) in memory only (a bitmap never persisted, or
 * one flushed later by the caller). */
void san_bitmap_set(san_bitmap *b, uint64_t offset, uint64_t len);

/* Clear [@offset, @offset+@len) in memory; san_bitmap_flush() persists it. */
void san_bitmap_clear(san_bitmap *b, uint64_t offset, uint64_t len);
/* Clear everything in memory. */
void san_bitmap_clear_all(san_bitmap *b);

/* Persist every page changed since it was last written.  0 or -errno. */
int san_bitmap_flush(san_bitmap *b);

/* True if any bit of [@offset, @offset+@len) is set. */
bool san_bitmap_test(san_bitmap *b, uint64_t offset, uint64_t len);

/* The number of dirty bits (bytes: × SAN_BITMAP_GRAIN). */
uint64_t san_bitmap_count(san_bitmap *b);
/* Dirty bytes, clipped to the volume's size. */
uint64_t san_bitmap_dirty_bytes(san_bitmap *b);

/* The first dirty run at or after byte @from, at most @max_len bytes long
 * (a multiple of SAN_BITMAP_GRAIN), clipped to the volume: false if none. */
bool san_bitmap_next_dirty(san_bitmap *b, uint64_t from, uint64_t max_len, uint64_t *offset,
			   uint64_t *len);

/* Grow to @size bytes (new regions clean); the caller then write_all()s. */
void san_bitmap_resize(san_bitmap *b, uint64_t size);

/* The volume size the bitmap covers. */
uint64_t san_bitmap_size(san_bitmap *b);

/* An I/O table on a file descriptor (pwrite, fdatasync); @fd_ptr points at
 * an int that outlives the bitmap. */
san_bitmap_io san_bitmap_io_fd(int *fd_ptr);
