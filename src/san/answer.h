/*
 * The answer to one control line of herdd.  Answers go out in the order of
 * the lines, but some come later than others (the plugin's verdict, a
 * remove that waits for nbdkit to exit): each line gets a slot in its
 * connection's queue at once, filled now or later, and the queue is written
 * up to its first empty slot.  A slot outlives its connection (a plugin may
 * answer after herdd hung up); it is then filled and dropped.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct san_answer san_answer;

/* Called when @a is filled (its connection writes what is ready). */
typedef void (*san_answer_ready_fn)(void *owner);

san_answer *san_answer_new(san_answer_ready_fn ready, void *owner);
san_answer *san_answer_ref(san_answer *a);
void san_answer_unref(san_answer *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(san_answer, san_answer_unref)

/* The connection went away: fill without telling anyone. */
void san_answer_orphan(san_answer *a);

/* Fill @a (NULL: an internal request whose answer nobody reads; an error is
 * then logged).  A slot is filled once; later fills are ignored. */
void san_answer_ok(san_answer *a);
void san_answer_error(san_answer *a, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* With @answer as it came from the plugin ({"ok":…}). */
void san_answer_json(san_answer *a, json_t *answer);

/* The answer once filled (borrowed), else NULL. */
json_t *san_answer_value(const san_answer *a);
