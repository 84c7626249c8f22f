#include "cluster/join_queue.h"

typedef struct {
	gpointer item;
	int64_t deadline_ms;
} entry;

struct join_queue {
	GQueue entries; /* entry*, oldest first */
};

join_verdict join_admission(const join_facts *f)
{
	if (!f->store_ready)
		return JOIN_WAIT_STORE;
	if (f->busy)
		return JOIN_WAIT_BUSY;
	if (f->present >= f->nodes)
		return JOIN_ADMIT;
	/* Some listed node is not up: with one more, the partition must
	 * still hold more than half of the list without any of them. */
	if (2 * (uint64_t)f->present > (uint64_t)f->nodes + 1)
		return JOIN_ADMIT;
	return f->new_absent > 0 ? JOIN_WAIT_MAJORITY : JOIN_REFUSE_MAJORITY;
}

char *join_wait_reason(join_verdict v, const join_facts *f)
{
	switch (v) {
	case JOIN_WAIT_BUSY:
		return g_strdup("the join before it through this node was still being committed");
	case JOIN_WAIT_MAJORITY:
	case JOIN_REFUSE_MAJORITY:
		return g_strdup_printf("%u of the cluster's %u nodes are up; one more node added now "
				       "would leave this partition without a majority if it did not come up",
				       f->present, f->nodes);
	case JOIN_WAIT_STORE:
	case JOIN_ADMIT:
		break;
	}
	return g_strdup("it could be added");
}

join_queue *join_queue_new(void)
{
	join_queue *q = g_new0(join_queue, 1);
	g_queue_init(&q->entries);
	return q;
}

void join_queue_free(join_queue *q)
{
	if (!q)
		return;
	g_queue_clear_full(&q->entries, g_free);
	g_free(q);
}

unsigned join_queue_length(const join_queue *q)
{
	return q->entries.length;
}

static entry *entry_new(gpointer item, int64_t deadline_ms)
{
	entry *e = g_new(entry, 1);
	e->item = item;
	e->deadline_ms = deadline_ms;
	return e;
}

bool join_queue_push(join_queue *q, gpointer item, int64_t deadline_ms)
{
	if (q->entries.length >= JOIN_QUEUE_MAX)
		return false;
	g_queue_push_tail(&q->entries, entry_new(item, deadline_ms));
	return true;
}

void join_queue_push_front(join_queue *q, gpointer item, int64_t deadline_ms)
{
	/* Not bounded: it was queued (and counted) before it was taken. */
	g_queue_push_head(&q->entries, entry_new(item, deadline_ms));
}

void join_queue_expire(join_queue *q, int64_t now_ms, GPtrArray *expired)
{
	for (GList *l = q->entries.head; l;) {
		GList *next = l->next;
		entry *e = l->data;
		if (e->deadline_ms <= now_ms) {
			g_ptr_array_add(expired, e->item);
			g_free(e);
			g_queue_delete_link(&q->entries, l);
		}
		l = next;
	}
}

gpointer join_queue_next(join_queue *q, const join_facts *f, int64_t *deadline_ms, join_verdict *why)
{
	*why = join_admission(f);
	bool take = *why == JOIN_ADMIT || *why == JOIN_REFUSE_MAJORITY;
	entry *e = take ? g_queue_pop_head(&q->entries) : NULL;
	if (!e)
		return NULL;
	gpointer item = e->item;
	*deadline_ms = e->deadline_ms;
	g_free(e);
	return item;
}
