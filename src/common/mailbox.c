#include "common/mailbox.h"

/*
 * The mailbox is its own GSource, ready by its ready time: a post sets it to
 * "now" (which also wakes the context), and the delivery that empties the
 * queue sets it back to "never", both under the lock, so that the source is
 * ready exactly while something waits.  The GSource's reference count keeps
 * the mailbox alive through a delivery that frees it.
 */
struct mailbox {
	GSource source;
	GMutex lock;
	GQueue items;
	unsigned per_iteration;
	mailbox_deliver_fn deliver;
	gpointer user_data;
};

/* The oldest item, or NULL; "never ready" once none is left. */
static gpointer take_locked(mailbox *m)
{
	gpointer item = g_queue_pop_head(&m->items);
	if (g_queue_is_empty(&m->items))
		g_source_set_ready_time(&m->source, -1);
	return item;
}

gpointer mailbox_take(mailbox *m)
{
	g_mutex_lock(&m->lock);
	gpointer item = take_locked(m);
	g_mutex_unlock(&m->lock);
	return item;
}

static gboolean mailbox_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
	mailbox *m = (mailbox *)s;
	g_mutex_lock(&m->lock);
	guint n = m->per_iteration ? m->per_iteration : m->items.length;
	g_mutex_unlock(&m->lock);
	for (guint i = 0; i < n && !g_source_is_destroyed(s); i++) {
		gpointer item = mailbox_take(m);
		if (!item)
			break;
		m->deliver(item, m->user_data);
	}
	return G_SOURCE_CONTINUE;
}

static void mailbox_finalize(GSource *s)
{
	mailbox *m = (mailbox *)s;
	g_queue_clear(&m->items);
	g_mutex_clear(&m->lock);
}

static GSourceFuncs mailbox_funcs = {
	.dispatch = mailbox_dispatch,
	.finalize = mailbox_finalize,
};

mailbox *mailbox_new(GMainContext *context, const char *name, unsigned per_iteration,
		     mailbox_deliver_fn deliver, gpointer user_data)
{
	mailbox *m = (mailbox *)g_source_new(&mailbox_funcs, sizeof(mailbox));
	g_mutex_init(&m->lock);
	g_queue_init(&m->items);
	m->per_iteration = per_iteration;
	m->deliver = deliver;
	m->user_data = user_data;
	g_source_set_name(&m->source, name);
	g_source_attach(&m->source, context);
	return m;
}

void mailbox_set_priority(mailbox *m, int priority)
{
	g_source_set_priority(&m->source, priority);
}

void mailbox_post(mailbox *m, gpointer item)
{
	g_return_if_fail(item != NULL);
	g_mutex_lock(&m->lock);
	g_queue_push_tail(&m->items, item);
	g_source_set_ready_time(&m->source, 0);
	g_mutex_unlock(&m->lock);
}

guint mailbox_length(mailbox *m)
{
	g_mutex_lock(&m->lock);
	guint n = m->items.length;
	g_mutex_unlock(&m->lock);
	return n;
}

void mailbox_free(mailbox *m)
{
	if (!m)
		return;
	g_source_destroy(&m->source);
	g_source_unref(&m->source);
}
