/*
 * The waiting fence agents of this node (ha/fence_standby.h says why and
 * which): processes started with an open, empty stdin, one set per fence
 * device, handed to the agent runner (ha/fence.h) when a fence needs one.
 *
 * A waiting agent is only ever ended with SIGKILL, never by closing its
 * stdin: an EOF would let it act on whatever it had read (nothing, so it
 * would fail without an address — but it must not come to that).  One that
 * dies while it waits, or is taken for a fence, is started again
 * (ha/fence_standby.c says when); one of a device that was removed or
 * changed is killed, and one of the new configuration started.
 */
#pragma once

#include "ha/fence_standby.h"

#include <gio/gio.h>
#include <glib.h>
#include <jansson.h>

typedef struct herd_fence_pool herd_fence_pool;

/* The waiting agents changed (started, taken, died, killed). */
typedef void (*herd_fence_pool_changed_fn)(gpointer user);

herd_fence_pool *herd_fence_pool_new(herd_fence_pool_changed_fn changed, gpointer user);
/* Kill every waiting agent (SIGKILL) and forget them. */
void herd_fence_pool_free(herd_fence_pool *p);

/* Keep these waiting agents (herd_standby_want*; stolen). */
void herd_fence_pool_set_wants(herd_fence_pool *p, GPtrArray *wants);

/* A waiting agent of @device running @agent that has not exited, taken out
 * of the pool for a fence (a replacement follows, see
 * HERD_STANDBY_AFTER_USE_MS), with its pipes; NULL if there is none. */
GSubprocess *herd_fence_pool_take(herd_fence_pool *p, const char *device, const char *agent);

/* {device: {"agent":…, "pids":[…]}} of the waiting agents. */
json_t *herd_fence_pool_json(herd_fence_pool *p);
/* How many agents wait (for @device; NULL: in all). */
unsigned herd_fence_pool_count(herd_fence_pool *p, const char *device);
