/* An eSAN replica's metadata: generation identifiers, the decision on connect, its block. */
#include "san/meta.h"

#include "san/block.h"

#include <string.h>

/* The block: magic, version, flags, size, current, bitmap, history[2],
 * replica_id, zeros, and the SHA-256 of everything before it at the end. */
#define MAGIC "HERDSANM"
#define OFF_VERSION 8
#define OFF_FLAGS 12
#define OFF_SIZE 16
#define OFF_CURRENT 24
#define OFF_BITMAP 32
#define OFF_HISTORY 40
#define OFF_REPLICA 56
#define OFF_AL_ID 64
#define OFF_CRASH_EXTENT 72
#define OFF_CRASH_COUNT 80
#define OFF_CRASH 84
#define OFF_SUM (SAN_META_BLOCK - 32)

const char *san_sync_name(san_sync s)
{
	switch (s) {
	case SAN_SYNC_NONE: return "in-sync";
	case SAN_SYNC_SOURCE_BITMAP: return "source-bitmap";
	case SAN_SYNC_TARGET_BITMAP: return "target-bitmap";
	case SAN_SYNC_SOURCE_FULL: return "source-full";
	case SAN_SYNC_TARGET_FULL: return "target-full";
	case SAN_SYNC_SPLIT_BRAIN: return "split-brain";
	case SAN_SYNC_UNRELATED: return "unrelated";
	}
	return "?";
}

san_sync san_sync_mirror(san_sync s)
{
	switch (s) {
	case SAN_SYNC_SOURCE_BITMAP: return SAN_SYNC_TARGET_BITMAP;
	case SAN_SYNC_TARGET_BITMAP: return SAN_SYNC_SOURCE_BITMAP;
	case SAN_SYNC_SOURCE_FULL: return SAN_SYNC_TARGET_FULL;
	case SAN_SYNC_TARGET_FULL: return SAN_SYNC_SOURCE_FULL;
	default: return s;
	}
}

bool san_sync_is_source(san_sync s)
{
	return s == SAN_SYNC_SOURCE_BITMAP || s == SAN_SYNC_SOURCE_FULL;
}

bool san_sync_is_target(san_sync s)
{
	return s == SAN_SYNC_TARGET_BITMAP || s == SAN_SYNC_TARGET_FULL;
}

void san_meta_init(san_meta *m, uint64_t size, uint64_t current, uint64_t replica_id)
{
	memset(m, 0, sizeof *m);
	m->size = size;
	m->current = current;
	m->replica_id = replica_id;
	if (current)
		m->flags = SAN_META_CONSISTENT;
}

/* A replica one can copy from: a generation, whole. */
static bool usable(const san_meta *m)
{
	return m->current != 0 && (m->flags & SAN_META_CONSISTENT);
}

static bool crashed(const san_meta *m)
{
	return (m->flags & SAN_META_CRASHED) != 0;
}

bool san_meta_crash_listed(const san_meta *m)
{
	return (m->flags & (SAN_META_CRASHED | SAN_META_CRASH_LISTED)) ==
	       (SAN_META_CRASHED | SAN_META_CRASH_LISTED);
}

/* Crashed, and nothing says where the replicas may differ. */
static bool crashed_unlisted(const san_meta *m)
{
	return crashed(m) && !san_meta_crash_listed(m);
}

static bool in_history(const san_meta *m, uint64_t id)
{
	return id != 0 && (m->history[0] == id || m->history[1] == id);
}

/* Any generation both have known (bitmap or history): they share an ancestor. */
static bool common_ancestor(const san_meta *a, const san_meta *b)
{
	uint64_t ia[3] = { a->bitmap, a->history[0], a->history[1] };
	uint64_t ib[3] = { b->bitmap, b->history[0], b->history[1] };
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (ia[i] && ia[i] == ib[j])
				return true;
	return false;
}

/* Between two replicas of the same generation of which one crashed: which
 * one is copied from.  -1: neither can be told apart (a copied replica). */
static int equal_source_is_self(const san_meta *s, const san_meta *p)
{
	bool sw = s->flags & SAN_META_WRITER_NOW, pw = p->flags & SAN_META_WRITER_NOW;
	if (sw != pw)
		return sw;      /* never overwrite what a running guest reads */
	if (crashed(s) != crashed(p))
		return crashed(s);
	if (s->replica_id != p->replica_id)
		return s->replica_id > p->replica_id;
	return -1;
}

san_sync san_meta_decide(const san_meta *s, const san_meta *p)
{
	bool su = usable(s), pu = usable(p);
	bool full = crashed_unlisted(s) || crashed_unlisted(p);

	if (!su && !pu)
		return SAN_SYNC_UNRELATED;
	if (!pu)
		return s->bitmap && s->bitmap == p->current && !full ? SAN_SYNC_SOURCE_BITMAP
								  : SAN_SYNC_SOURCE_FULL;
	if (!su)
		return p->bitmap && p->bitmap == s->current && !full ? SAN_SYNC_TARGET_BITMAP
								  : SAN_SYNC_TARGET_FULL;

	if (s->current == p->current) {
		if (!crashed(s) && !crashed(p))
			return SAN_SYNC_NONE;
		int self = equal_source_is_self(s, p);
		if (self < 0)
			return SAN_SYNC_UNRELATED;
		if (full)
			return self ? SAN_SYNC_SOURCE_FULL : SAN_SYNC_TARGET_FULL;
		return self ? SAN_SYNC_SOURCE_BITMAP : SAN_SYNC_TARGET_BITMAP;
	}

	bool s_ahead = s->bitmap && s->bitmap == p->current;
	bool p_ahead = p->bitmap && p->bitmap == s->current;
	if (s_ahead && !p_ahead)
		return full ? SAN_SYNC_SOURCE_FULL : SAN_SYNC_SOURCE_BITMAP;
	if (p_ahead && !s_ahead)
		return full ? SAN_SYNC_TARGET_FULL : SAN_SYNC_TARGET_BITMAP;
	if (s_ahead && p_ahead)
		return SAN_SYNC_SPLIT_BRAIN;

	if (s->bitmap && s->bitmap == p->bitmap)
		return SAN_SYNC_SPLIT_BRAIN;

	bool s_old = in_history(p, s->current), p_old = in_history(s, p->current);
	if (s_old && !p_old)
		return SAN_SYNC_TARGET_FULL;
	if (p_old && !s_old)
		return SAN_SYNC_SOURCE_FULL;
	if (s_old && p_old)
		return SAN_SYNC_SPLIT_BRAIN;

	if (common_ancestor(s, p))
		return SAN_SYNC_SPLIT_BRAIN;
	return SAN_SYNC_UNRELATED;
}

static void push_history(san_meta *m, uint64_t id)
{
	if (!id || m->history[0] == id)
		return;
	m->history[1] = m->history[0];
	m->history[0] = id;
}

static void crash_clear(san_meta *m)
{
	m->flags &= ~(uint32_t)(SAN_META_CRASHED | SAN_META_CRASH_LISTED);
	m->crash_count = 0;
	m->crash_extent = 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

bool san_meta_crash_add(san_meta *m, uint64_t extent, const uint32_t *ext, unsigned n)
{
	if (extent == 0 || (crashed(m) && !san_meta_crash_listed(m)) ||
	    (san_meta_crash_listed(m) && m->crash_count && m->crash_extent != extent)) {
		san_meta_crash_full(m);
		return false;
	}
	if (!san_meta_crash_listed(m))
		m->crash_count = 0;
	uint32_t merged[SAN_META_CRASH_MAX];
	unsigned count = m->crash_count;
	memcpy(merged, m->crash, count * sizeof *merged);
	for (unsigned i = 0; i < n; i++) {
		bool seen = false;
		for (unsigned k = 0; k < count && !seen; k++)
			seen = merged[k] == ext[i];
		if (seen)
			continue;
		if (count == SAN_META_CRASH_MAX) {
			san_meta_crash_full(m);
			return false;
		}
		merged[count++] = ext[i];
	}
	qsort(merged, count, sizeof *merged, cmp_u32);
	memcpy(m->crash, merged, count * sizeof *merged);
	m->crash_count = count;
	m->crash_extent = extent;
	m->flags |= SAN_META_CRASHED | SAN_META_CRASH_LISTED;
	return true;
}

void san_meta_crash_full(san_meta *m)
{
	crash_clear(m);
	m->flags |= SAN_META_CRASHED;
}

void san_meta_crash_regions(const san_meta *m, uint64_t size,
			    void (*fn)(uint64_t off, uint64_t len, void *data), void *data)
{
	if (!san_meta_crash_listed(m) || !m->crash_extent)
		return;
	for (unsigned i = 0; i < m->crash_count && i < SAN_META_CRASH_MAX; i++) {
		uint64_t off = (uint64_t)m->crash[i] * m->crash_extent;
		if (off < size)
			fn(off, MIN(m->crash_extent, size - off), data);
	}
}

void san_meta_go_alone(san_meta *m, uint64_t new_id)
{
	if (!m->bitmap)
		m->bitmap = m->current;
	m->current = new_id;
}

void san_meta_sync_end_source(san_meta *source)
{
	push_history(source, source->bitmap);
	source->bitmap = 0;
	source->flags |= SAN_META_CONSISTENT;
	source->flags &= ~(uint32_t)SAN_META_OUTDATED;
	crash_clear(source);
}

void san_meta_sync_end_target(san_meta *target, const san_meta *source)
{
	if (target->current != source->current)
		push_history(target, target->current);
	target->current = source->current;
	target->bitmap = 0;
	target->flags |= SAN_META_CONSISTENT;
	target->flags &= ~(uint32_t)SAN_META_OUTDATED;
	crash_clear(target);
}

void san_meta_promote(san_meta *m, uint64_t new_id)
{
	if (!m->bitmap)
		m->bitmap = m->current;
	m->current = new_id;
	m->flags |= SAN_META_CONSISTENT;
	m->flags &= ~(uint32_t)SAN_META_OUTDATED;
}

void san_meta_discard(san_meta *m)
{
	push_history(m, m->current);
	push_history(m, m->bitmap);
	m->current = 0;
	m->bitmap = 0;
	m->flags &= ~(uint32_t)SAN_META_CONSISTENT;
	m->flags |= SAN_META_OUTDATED;
	crash_clear(m);
}

void san_meta_detach_generation(san_meta *m, uint64_t new_id)
{
	push_history(m, m->bitmap);
	push_history(m, m->current);
	m->current = new_id;
	m->bitmap = 0;
}

void san_meta_encode(const san_meta *m, bool live, uint8_t *block)
{
	memset(block, 0, SAN_META_BLOCK);
	memcpy(block, MAGIC, 8);
	san_put32(block + OFF_VERSION, SAN_META_VERSION);
	san_put32(block + OFF_FLAGS, live ? m->flags : (m->flags & SAN_META_DISK_FLAGS));
	san_put64(block + OFF_SIZE, m->size);
	san_put64(block + OFF_CURRENT, m->current);
	san_put64(block + OFF_BITMAP, m->bitmap);
	san_put64(block + OFF_HISTORY, m->history[0]);
	san_put64(block + OFF_HISTORY + 8, m->history[1]);
	san_put64(block + OFF_REPLICA, m->replica_id);
	san_put64(block + OFF_AL_ID, m->al_id);
	if (san_meta_crash_listed(m)) {
		uint32_t n = MIN(m->crash_count, SAN_META_CRASH_MAX);
		san_put64(block + OFF_CRASH_EXTENT, m->crash_extent);
		san_put32(block + OFF_CRASH_COUNT, n);
		for (uint32_t i = 0; i < n; i++)
			san_put32(block + OFF_CRASH + 4 * i, m->crash[i]);
	}
	san_block_sum(block, OFF_SUM, block + OFF_SUM);
}

bool san_meta_decode(const uint8_t *block, size_t len, san_meta *m, GError **error)
{
	uint8_t sum[32];
	if (len != SAN_META_BLOCK) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "eSAN metadata is %zu bytes, not %u", len, SAN_META_BLOCK);
		return false;
	}
	if (memcmp(block, MAGIC, 8) != 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "eSAN metadata has no magic (not a herd replica's metadata)");
		return false;
	}
	if (san_get32(block + OFF_VERSION) != SAN_META_VERSION) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "eSAN metadata has version %u, this herd knows %u",
			    san_get32(block + OFF_VERSION), SAN_META_VERSION);
		return false;
	}
	san_block_sum(block, OFF_SUM, sum);
	if (memcmp(sum, block + OFF_SUM, 32) != 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "eSAN metadata checksum mismatch (torn or corrupt block)");
		return false;
	}
	memset(m, 0, sizeof *m);
	m->flags = san_get32(block + OFF_FLAGS);
	m->size = san_get64(block + OFF_SIZE);
	m->current = san_get64(block + OFF_CURRENT);
	m->bitmap = san_get64(block + OFF_BITMAP);
	m->history[0] = san_get64(block + OFF_HISTORY);
	m->history[1] = san_get64(block + OFF_HISTORY + 8);
	m->replica_id = san_get64(block + OFF_REPLICA);
	m->al_id = san_get64(block + OFF_AL_ID);
	if (san_meta_crash_listed(m)) {
		uint32_t n = san_get32(block + OFF_CRASH_COUNT);
		m->crash_extent = san_get64(block + OFF_CRASH_EXTENT);
		if (n > SAN_META_CRASH_MAX || m->crash_extent == 0) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
				    "eSAN metadata lists %u crash extents of %" G_GUINT64_FORMAT
				    " bytes (at most %u, not empty)", n, m->crash_extent, SAN_META_CRASH_MAX);
			return false;
		}
		m->crash_count = n;
		for (uint32_t i = 0; i < n; i++)
			m->crash[i] = san_get32(block + OFF_CRASH + 4 * i);
	}
	return true;
}

char *san_meta_describe(const san_meta *m)
{
	return g_strdup_printf("%016" G_GINT64_MODIFIER "X:%016" G_GINT64_MODIFIER "X:%016"
			       G_GINT64_MODIFIER "X:%016" G_GINT64_MODIFIER "X flags %s%s%s%s%s%s%s",
			       m->current, m->bitmap, m->history[0], m->history[1],
			       m->flags & SAN_META_CONSISTENT ? "consistent" : "inconsistent",
			       m->flags & SAN_META_OUTDATED ? ",outdated" : "",
			       m->flags & SAN_META_WRITER ? ",writer" : "",
			       m->flags & SAN_META_CRASHED ? ",crashed" : "",
			       san_meta_crash_listed(m) ? "(listed)" : "",
			       m->flags & SAN_META_WRITER_NOW ? ",writer-now" : "",
			       m->flags & SAN_META_DISKLESS_NOW ? ",diskless-now" : "");
}
