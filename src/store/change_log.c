#include "store/change_log.h"

#include "store/packed.h"
#include "store/wire.h"

#include <string.h>

/* A change as applied: a member at @prev (the hash before it, at index - 1)
 * that missed it is sent it.  The command is kept packed (store/packed.h:
 * a define with a domain XML 1.8 kB -> ~0.5 kB), unpacked only for a
 * catch-up. */
typedef struct {
	uint64_t gen, index;
	uint8_t prev[32];
	store_packed *cmd;
} entry;

struct change_log {
	GQueue *entries;            /* entry*, oldest first, consecutive indexes */
	size_t bytes;               /* what the entries take: their packed commands,
				     * each entry and its link */
	unsigned max_entries;
	size_t max_bytes;
};

static size_t entry_bytes(const entry *e)
{
	return store_packed_size(e->cmd) + sizeof(*e) + sizeof(GList);
}

static void entry_free(entry *e)
{
	store_packed_free(e->cmd);
	g_free(e);
}

change_log *change_log_new(unsigned max_entries, size_t max_bytes)
{
	change_log *l = g_new0(change_log, 1);
	l->entries = g_queue_new();
	l->max_entries = max_entries;
	l->max_bytes = max_bytes;
	return l;
}

void change_log_clear(change_log *l)
{
	entry *e;
	while ((e = g_queue_pop_head(l->entries)))
		entry_free(e);
	l->bytes = 0;
}

void change_log_free(change_log *l)
{
	if (!l)
		return;
	change_log_clear(l);
	g_queue_free(l->entries);
	g_free(l);
}

/* Drop the oldest until the bounds hold. */
static void trim(change_log *l)
{
	while (g_queue_get_length(l->entries) > l->max_entries || l->bytes > l->max_bytes) {
		entry *old = g_queue_pop_head(l->entries);
		l->bytes -= entry_bytes(old);
		entry_free(old);
	}
}

void change_log_set_max(change_log *l, unsigned max_entries)
{
	l->max_entries = max_entries;
	trim(l);
}

void change_log_add(change_log *l, uint64_t gen, uint64_t index, const uint8_t prev[32],
		    const uint8_t *cmd, size_t len)
{
	entry *last = g_queue_peek_tail(l->entries);
	if (last && last->index + 1 != index)
		change_log_clear(l);
	entry *e = g_new0(entry, 1);
	e->gen = gen;
	e->index = index;
	memcpy(e->prev, prev, 32);
	e->cmd = store_packed_new((const char *)cmd, len);
	g_queue_push_tail(l->entries, e);
	l->bytes += entry_bytes(e);
	trim(l);
}

/* The link of change @index, or NULL. */
static GList *link_of(const change_log *l, uint64_t index)
{
	entry *head = g_queue_peek_head(l->entries);
	if (!head || index < head->index)
		return NULL;
	return g_queue_peek_nth_link(l->entries, (guint)(index - head->index));
}

uint64_t change_log_after(const change_log *l, uint64_t index, const uint8_t hash[32])
{
	GList *link = link_of(l, index + 1);
	if (!link || memcmp(((entry *)link->data)->prev, hash, 32) != 0)
		return 0;
	return index + 1;
}

GByteArray *change_log_encode(const change_log *l, uint64_t from, unsigned *n)
{
	GByteArray *out = g_byte_array_new();
	*n = 0;
	for (GList *link = link_of(l, from); link; link = link->next, (*n)++) {
		entry *e = link->data;
		size_t len = store_packed_text_len(e->cmd);
		g_autofree char *cmd = store_packed_text(e->cmd);
		uint8_t head[20];
		herd_put_le64(head, e->gen);
		herd_put_le64(head + 8, e->index);
		herd_put_le32(head + 16, (uint32_t)len);
		g_byte_array_append(out, head, sizeof(head));
		g_byte_array_append(out, (const guint8 *)cmd, (guint)len);
	}
	return out;
}
