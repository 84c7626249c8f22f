/*
 * The fields of herd-san's 4 KiB blocks on disk and on the wire (a
 * replica's metadata, its activity log's transactions): little-endian
 * integers at fixed offsets, and a SHA-256 of everything before it in the
 * block's last 32 bytes.  Pure; inline helpers for meta.c and
 * activity_log.c.
 */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <string.h>

static inline void san_put32(uint8_t *b, uint32_t v)
{
	v = GUINT32_TO_LE(v);
	memcpy(b, &v, 4);
}

static inline void san_put64(uint8_t *b, uint64_t v)
{
	v = GUINT64_TO_LE(v);
	memcpy(b, &v, 8);
}

static inline uint32_t san_get32(const uint8_t *b)
{
	uint32_t v;
	memcpy(&v, b, 4);
	return GUINT32_FROM_LE(v);
}

static inline uint64_t san_get64(const uint8_t *b)
{
	uint64_t v;
	memcpy(&v, b, 8);
	return GUINT64_FROM_LE(v);
}

/* The SHA-256 of the first @len bytes of @block, into @sum (32 bytes). */
static inline void san_block_sum(const uint8_t *block, size_t len, uint8_t *sum)
{
	g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA256);
	gsize n = 32;
	g_checksum_update(c, block, len);
	g_checksum_get_digest(c, sum, &n);
}
