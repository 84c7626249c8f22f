/*
 * A mailbox: items posted from any thread, delivered in order to one
 * function on the thread that runs a given GMainContext.
 *
 * At most a set number of items is delivered per main-loop iteration, the
 * rest in the iterations after, so that a burst of work becomes many short
 * stretches of the loop rather than one long one, and what else the loop
 * serves (corosync, timers) gets its turn in between.  The mailbox is the
 * only synchronisation between poster and receiver: what a poster wrote
 * before mailbox_post() is visible to the delivery.
 */
#pragma once

#include <glib.h>

typedef struct mailbox mailbox;

/* Called on the mailbox's context with one item. */
typedef void (*mailbox_deliver_fn)(gpointer item, gpointer user_data);

/*
 * A mailbox delivering to @deliver(item, @user_data) on @context (NULL: the
 * default one), at most @per_iteration items per iteration (0: all that
 * wait when the iteration dispatches it).  @name names its GSource.
 */
mailbox *mailbox_new(GMainContext *context, const char *name, unsigned per_iteration,
		     mailbox_deliver_fn deliver, gpointer user_data);

/* Deliver at @priority (G_PRIORITY_DEFAULT until set): while items wait,
 * ready sources of a lower priority wait too, those of the same one take
 * turns with it.  Any thread. */
void mailbox_set_priority(mailbox *m, int priority);

/* Queue @item (not NULL) for delivery; any thread. */
void mailbox_post(mailbox *m, gpointer item);

/* How many items wait; any thread. */
guint mailbox_length(mailbox *m);

/*
 * Take the oldest undelivered item, or NULL: for the owner that empties
 * the mailbox itself (it stops, and must answer what waits), on a thread
 * where no delivery runs meanwhile.
 */
gpointer mailbox_take(mailbox *m);

/* Stop delivering and free @m (NULL is fine).  Items still in it are
 * dropped: take them first if they own anything. */
void mailbox_free(mailbox *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(mailbox, mailbox_free)
