#include "store/change_log.h"

#include "store/packed.h"
#include "store/wire.h"

#include <string.h>

/*
 * The changes live in one ring of bytes of the log's size, allocated once,
 * not in blocks of their own: the log drops its oldest change as each new
 * one comes, and blocks of their own left a hole in the heap for every
 * change dropped, between the objects made at the time, which stay.  After
 * 10,000 defines a herdd's heap had ~3 MB free in pieces of less than a
 * page that the system could not be given back (issue 14).
 *
 * A change as applied, in the ring: a member at @prev (the hash before it,
 * at index - 1) that missed it is sent it.  Its command follows packed
 * (store/packed.h, the store_packed copied whole: a define with a domain
 * XML 1.8 kB -> ~0.4 kB), unpacked only for a catch-up.  Records are
 * 8-byte aligned and never cross the ring's end: one that does not fit
 * before the end goes to the start, and what is left at the end is unused
 * until the ring comes round.
 */
typedef struct {
	uint64_t gen, index;
	uint8_t prev[32];
	uint32_t size;   /* the record's bytes, this header included, aligned */
	uint32_t unused;
} record;

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

struct change_log {
	guint8 *ring;    /* max_bytes; NULL until the first change */
	GArray *at;      /* guint32 offsets in @ring: the records, oldest first, from @first */
	guint first;     /* entries of @at before this one are dropped */
	size_t tail;     /* where the record after the newest would go */
	unsigned max_entries;
	size_t max_bytes;
};

static unsigned count(const change_log *l)
{
	return l->at->len - l->first;
}

static record *record_at(const change_log *l, guint i)
{
	return (record *)(l->ring + g_array_index(l->at, guint32, i));
}

static const store_packed *command_of(const record *r)
{
	return (const store_packed *)(r + 1);
}

change_log *change_log_new(unsigned max_entries, size_t max_bytes)
{
	change_log *l = g_new0(change_log, 1);
	l->at = g_array_new(FALSE, FALSE, sizeof(guint32));
	l->max_entries = max_entries;
	l->max_bytes = MIN(max_bytes, (size_t)G_MAXUINT32);
	return l;
}

void change_log_clear(change_log *l)
{
	g_array_set_size(l->at, 0);
	l->first = 0;
	l->tail = 0;
}

void change_log_free(change_log *l)
{
	if (!l)
		return;
	g_array_free(l->at, TRUE);
	g_free(l->ring);
	g_free(l);
}

static void drop_oldest(change_log *l)
{
	l->first++;
	if (l->first == l->at->len) {
		change_log_clear(l);
	} else if (l->first >= 1024 && l->first * 2 >= l->at->len) {
		g_array_remove_range(l->at, 0, l->first);
		l->first = 0;
	}
}

void change_log_set_max(change_log *l, unsigned max_entries)
{
	l->max_entries = max_entries;
	while (count(l) > l->max_entries)
		drop_oldest(l);
}

/*
 * Where @size bytes can go without touching a record kept, dropping the
 * oldest until there is room.  The records kept lie from the oldest's
 * offset to the tail, either in one run (oldest < tail: free are the
 * ring's end after the tail and its start before the oldest) or round the
 * end (oldest >= tail: free is what lies between the tail and the oldest).
 */
static size_t make_room(change_log *l, size_t size)
{
	for (;;) {
		if (!count(l)) {
			change_log_clear(l);
			return 0;
		}
		size_t oldest = g_array_index(l->at, guint32, l->first);
		if (oldest < l->tail) {
			if (l->tail + size <= l->max_bytes)
				return l->tail;
			if (size <= oldest)
				return 0;
		} else if (l->tail + size <= oldest) {
			return l->tail;
		}
		drop_oldest(l);
	}
}

void change_log_add(change_log *l, uint64_t gen, uint64_t index, const uint8_t prev[32],
		    const uint8_t *cmd, size_t len)
{
	if (count(l) && record_at(l, l->at->len - 1)->index + 1 != index)
		change_log_clear(l);
	store_packed *p = store_packed_new((const char *)cmd, len);
	size_t packed_size = store_packed_size(p);
	size_t size = ALIGN8(sizeof(record) + packed_size);
	if (size > l->max_bytes || !l->max_entries) {
		/* Cannot be kept: a member that misses it gets the whole store. */
		store_packed_free(p);
		change_log_clear(l);
		return;
	}
	if (!l->ring)
		l->ring = g_malloc(l->max_bytes);
	while (count(l) >= l->max_entries)
		drop_oldest(l);
	size_t pos = make_room(l, size);
	record *r = (record *)(l->ring + pos);
	*r = (record){ .gen = gen, .index = index, .size = (uint32_t)size };
	memcpy(r->prev, prev, 32);
	memcpy(r + 1, p, packed_size);
	store_packed_free(p);
	guint32 off = (guint32)pos;
	g_array_append_val(l->at, off);
	l->tail = pos + size;
}

/* Where change @index is in @l->at, or -1. */
static gint place_of(const change_log *l, uint64_t index)
{
	if (!count(l))
		return -1;
	uint64_t oldest = record_at(l, l->first)->index;
	if (index < oldest || index - oldest >= count(l))
		return -1;
	return (gint)(l->first + (index - oldest));
}

uint64_t change_log_after(const change_log *l, uint64_t index, const uint8_t hash[32])
{
	gint i = place_of(l, index + 1);
	if (i < 0 || memcmp(record_at(l, (guint)i)->prev, hash, 32) != 0)
		return 0;
	return index + 1;
}

GByteArray *change_log_encode(const change_log *l, uint64_t from, unsigned *n)
{
	GByteArray *out = g_byte_array_new();
	*n = 0;
	gint i = place_of(l, from);
	for (guint k = i < 0 ? l->at->len : (guint)i; k < l->at->len; k++, (*n)++) {
		const record *r = record_at(l, k);
		size_t len = store_packed_text_len(command_of(r));
		g_autofree char *cmd = store_packed_text(command_of(r));
		uint8_t head[20];
		herd_put_le64(head, r->gen);
		herd_put_le64(head + 8, r->index);
		herd_put_le32(head + 16, (uint32_t)len);
		g_byte_array_append(out, head, sizeof(head));
		g_byte_array_append(out, (const guint8 *)cmd, (guint)len);
	}
	return out;
}
