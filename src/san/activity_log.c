/* An eSAN replica's activity log: the active extents, their decisions, the block. */
#include "san/activity_log.h"

#include "san/block.h"

#include <stdlib.h>
#include <string.h>

#define MAGIC "HERDSANA"
#define VERSION 1u
#define OFF_VERSION 8
#define OFF_COUNT 12
#define OFF_AL_ID 16
#define OFF_SEQ 24
#define OFF_EXTENT 32
#define OFF_EXTENTS 40
#define OFF_SUM (SAN_AL_BLOCK - 32)

G_STATIC_ASSERT(OFF_EXTENTS + 4 * SAN_AL_MAX_EXTENTS <= OFF_SUM);

typedef struct {
	bool used;
	uint32_t ext;
	unsigned refs;          /* writes in flight in it */
	uint64_t added;         /* the transaction that first holds it */
	uint64_t dirty_epoch;   /* the flush epoch when its last write ended */
	int64_t last_use;       /* when a write last began or ended in it */
} slot;

struct san_al {
	unsigned capacity;
	unsigned count;
	uint64_t extent;
	int64_t quiet_us;
	uint64_t al_id;
	uint64_t seq;           /* the last transaction encoded */
	uint64_t durable;       /* the last transaction stable */
	uint64_t epoch;         /* flushes begun */
	uint64_t flushed;       /* the newest flush that succeeded */
	bool changed;
	slot *slots;
};

san_al *san_al_new(unsigned capacity, uint64_t extent, int64_t quiet_us)
{
	g_return_val_if_fail(capacity >= 2 && capacity <= SAN_AL_MAX_EXTENTS, NULL);
	g_return_val_if_fail(extent && (extent & (extent - 1)) == 0, NULL);
	san_al *al = g_new0(san_al, 1);
	al->capacity = capacity;
	al->extent = extent;
	al->quiet_us = quiet_us;
	al->slots = g_new0(slot, capacity);
	return al;
}

void san_al_free(san_al *al)
{
	if (!al)
		return;
	g_free(al->slots);
	g_free(al);
}

void san_al_reset(san_al *al, uint64_t al_id)
{
	memset(al->slots, 0, al->capacity * sizeof *al->slots);
	al->count = 0;
	al->al_id = al_id;
	al->changed = true;
}

static slot *find(san_al *al, uint32_t ext)
{
	for (unsigned i = 0; i < al->capacity; i++)
		if (al->slots[i].used && al->slots[i].ext == ext)
			return &al->slots[i];
	return NULL;
}

static bool clean(const san_al *al, const slot *s)
{
	return s->refs == 0 && s->dirty_epoch < al->flushed;
}

/* Extents [first, last] of a range (a zero length counts as one byte). */
static void extents_of(const san_al *al, uint64_t off, uint64_t len, uint32_t *first, uint32_t *last)
{
	*first = (uint32_t)(off / al->extent);
	*last = (uint32_t)((off + MAX(len, 1) - 1) / al->extent);
}

static int by_last_use(const void *a, const void *b)
{
	const slot *x = *(slot *const *)a, *y = *(slot *const *)b;
	return x->last_use < y->last_use ? -1 : x->last_use > y->last_use;
}

/* Make room for @missing new extents (none of [first, last] is evicted):
 * GO if there is, else FLUSH or WAIT. */
static san_al_step make_room(san_al *al, unsigned missing, uint32_t first, uint32_t last)
{
	unsigned free_slots = al->capacity - al->count;
	if (missing <= free_slots)
		return SAN_AL_GO;
	unsigned evict = missing - free_slots, idle = 0, nvictims = 0;
	g_autofree slot **victims = g_new(slot *, al->capacity);
	for (unsigned i = 0; i < al->capacity; i++) {
		slot *s = &al->slots[i];
		if (!s->used || s->refs || (s->ext >= first && s->ext <= last))
			continue;
		idle++;
		if (clean(al, s))
			victims[nvictims++] = s;
	}
	if (nvictims < evict)
		return idle >= evict ? SAN_AL_FLUSH : SAN_AL_WAIT;
	/* the least recently used clean ones go; the next transaction omits them */
	qsort(victims, nvictims, sizeof *victims, by_last_use);
	for (unsigned i = 0; i < evict; i++) {
		victims[i]->used = false;
		al->count--;
	}
	al->changed = true;
	return SAN_AL_GO;
}

san_al_step san_al_begin(san_al *al, uint64_t off, uint64_t len, int64_t now, uint64_t *need)
{
	uint32_t first, last;
	extents_of(al, off, len, &first, &last);
	g_return_val_if_fail(last - first < al->capacity, SAN_AL_WAIT);
	unsigned missing = 0;
	for (uint32_t e = first; e <= last; e++)
		if (!find(al, e))
			missing++;
	san_al_step room = make_room(al, missing, first, last);
	if (room != SAN_AL_GO)
		return room;
	uint64_t want = 0;
	for (uint32_t e = first; e <= last; e++) {
		slot *s = find(al, e);
		if (!s) {
			for (s = al->slots; s->used; s++)
				;
			*s = (slot){ .used = true, .ext = e, .added = al->seq + 1, .dirty_epoch = al->epoch };
			al->count++;
			al->changed = true;
		}
		s->refs++;
		s->last_use = now;
		want = MAX(want, s->added);
	}
	*need = want;
	return want > al->durable ? SAN_AL_PERSIST : SAN_AL_GO;
}

void san_al_end(san_al *al, uint64_t off, uint64_t len, int64_t now)
{
	uint32_t first, last;
	extents_of(al, off, len, &first, &last);
	for (uint32_t e = first; e <= last; e++) {
		slot *s = find(al, e);
		if (!s || !s->refs)
			continue;       /* a reset dropped it (no writer then: not reached) */
		s->refs--;
		s->dirty_epoch = al->epoch;
		s->last_use = now;
	}
}

uint64_t san_al_flush_begin(san_al *al)
{
	return ++al->epoch;
}

void san_al_flush_done(san_al *al, uint64_t ticket)
{
	al->flushed = MAX(al->flushed, ticket);
}

bool san_al_tick(san_al *al, int64_t now)
{
	bool dropped = false;
	for (unsigned i = 0; i < al->capacity; i++) {
		slot *s = &al->slots[i];
		if (s->used && clean(al, s) && now - s->last_use >= al->quiet_us) {
			s->used = false;
			al->count--;
			dropped = true;
		}
	}
	if (dropped)
		al->changed = true;
	return dropped;
}

bool san_al_changed(const san_al *al)
{
	return al->changed;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void san_al_encode_next(san_al *al, uint8_t *block, uint64_t *seq, uint64_t *file_off)
{
	g_autofree uint32_t *ext = g_new(uint32_t, al->capacity);
	unsigned n = 0;
	for (unsigned i = 0; i < al->capacity; i++)
		if (al->slots[i].used)
			ext[n++] = al->slots[i].ext;
	qsort(ext, n, sizeof *ext, cmp_u32);
	*seq = ++al->seq;
	memset(block, 0, SAN_AL_BLOCK);
	memcpy(block, MAGIC, 8);
	san_put32(block + OFF_VERSION, VERSION);
	san_put32(block + OFF_COUNT, n);
	san_put64(block + OFF_AL_ID, al->al_id);
	san_put64(block + OFF_SEQ, *seq);
	san_put64(block + OFF_EXTENT, al->extent);
	for (unsigned i = 0; i < n; i++)
		san_put32(block + OFF_EXTENTS + 4 * i, ext[i]);
	san_block_sum(block, OFF_SUM, block + OFF_SUM);
	*file_off = (*seq % SAN_AL_BLOCKS) * SAN_AL_BLOCK;
	al->changed = false;
}

void san_al_persisted(san_al *al, uint64_t seq)
{
	al->durable = MAX(al->durable, seq);
}

uint64_t san_al_durable(const san_al *al)
{
	return al->durable;
}

unsigned san_al_count(const san_al *al)
{
	return al->count;
}

bool san_al_active(const san_al *al, uint64_t off)
{
	return find((san_al *)al, (uint32_t)(off / al->extent)) != NULL;
}

/* One block: valid (magic, version, checksum, sane count and extent size)? */
static bool block_valid(const uint8_t *b)
{
	uint8_t sum[32];
	if (memcmp(b, MAGIC, 8) != 0 || san_get32(b + OFF_VERSION) != VERSION)
		return false;
	san_block_sum(b, OFF_SUM, sum);
	if (memcmp(sum, b + OFF_SUM, 32) != 0)
		return false;
	uint64_t extent = san_get64(b + OFF_EXTENT);
	return san_get32(b + OFF_COUNT) <= SAN_AL_MAX_EXTENTS && extent && (extent & (extent - 1)) == 0;
}

bool san_al_read(const uint8_t *data, size_t len, uint64_t al_id, GArray *extents, uint64_t *extent,
		 GError **error)
{
	const uint8_t *best = NULL;
	unsigned valid = 0;
	if (al_id == 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "the metadata names no activity log session (written by a herd without one)");
		return false;
	}
	if (len < SAN_AL_BLOCK) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "the activity log is missing or shorter than a block (%zu bytes)", len);
		return false;
	}
	for (size_t i = 0; i < SAN_AL_BLOCKS && (i + 1) * SAN_AL_BLOCK <= len; i++) {
		const uint8_t *b = data + i * SAN_AL_BLOCK;
		if (!block_valid(b))
			continue;
		valid++;
		if (san_get64(b + OFF_AL_ID) == al_id && (!best || san_get64(b + OFF_SEQ) > san_get64(best + OFF_SEQ)))
			best = b;
	}
	if (!valid) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "the activity log has no valid block (torn, corrupt or not a log)");
		return false;
	}
	if (!best) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "the activity log is of an older session (none of its blocks is of session %016"
			    G_GINT64_MODIFIER "X, the one the metadata names)", al_id);
		return false;
	}
	uint32_t n = san_get32(best + OFF_COUNT);
	g_array_set_size(extents, 0);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t e = san_get32(best + OFF_EXTENTS + 4 * i);
		g_array_append_val(extents, e);
	}
	*extent = san_get64(best + OFF_EXTENT);
	return true;
}
