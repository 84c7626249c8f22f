/*
 * Fence agents started before they are needed: the decisions, with no I/O.
 *
 * The standard agents (fencing.py) read all their options from stdin until
 * EOF before they act: one started with an open, empty stdin imports its
 * Python modules and waits, and does nothing else (checked with strace and
 * the test nodes' PDU; tests/cluster/test_fence_standby.py).  So a node that
 * would fence keeps such agents waiting, and a fence hands one its options
 * the moment it is decided: the agent's start-up (about 0.25 s of Python,
 * most of a PDU fence) no longer counts.  ha/fence_pool.c keeps the
 * processes; this file says which to keep, when to start them again and
 * what to hand over.
 *
 * Which node keeps them: the one that would fence.  The coordinator (the
 * lowest node id of the group, ha/coordinator.h) fences any lost node; when
 * the coordinator itself is lost, the next lowest becomes coordinator and
 * fences it.  So the lowest keeps agents for every device that covers
 * another node, the second lowest for the devices that cover the lowest,
 * and the others none.  A fence run by any other node (an operator's
 * `herd node fence`) starts its agents afresh, as before.
 *
 * How many: a fence runs the device's "off" (or "reboot") and its "list"
 * at once (ha/fencer.h), so HERD_STANDBY_PER_DEVICE per device, level 1
 * first, at most HERD_STANDBY_MAX per node (each waiting fence_apc_snmp
 * holds about 20 MB).
 */
#pragma once

#include "ha/fencer.h"
#include "store/state.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define HERD_STANDBY_PER_DEVICE 2
#define HERD_STANDBY_MAX 8
/* After a use, the replacement waits this long: its start-up (a core's
 * worth of Python for a quarter second) must not compete with the guests
 * the fence lets start.  So does the first agent of a device that becomes
 * wanted on this node (a membership change, or a new device). */
#define HERD_STANDBY_AFTER_USE_MS 2000
/* An agent that dies while it waits is started again after 1 s, 2 s, 4 s…
 * up to this (a broken agent must not be restarted in a loop). */
#define HERD_STANDBY_BACKOFF_MAX_MS 60000

/* A fence device as the decisions see it. */
typedef struct herd_standby_device {
	const char *name;
	const char *agent;
	const char *key;            /* its configuration's identity: uuid and version */
	unsigned level;
	const char *const *nodes;   /* the nodes it has a plug for */
	size_t n_nodes;
} herd_standby_device;

/* Waiting agents to keep for one device. */
typedef struct herd_standby_want {
	char *device;
	char *agent;
	char *key;
	unsigned count;
} herd_standby_want;

void herd_standby_want_free(herd_standby_want *w);

/* The nodes @self would fence (see above), as node ids into @out (room for
 * @n_group - 1); how many.  @group: the group's node ids, any order. */
size_t herd_standby_would_fence(const uint32_t *group, size_t n_group, uint32_t self, uint32_t *out);

/* The waiting agents to keep for fencing the nodes @fenced (names): for
 * every device with a plug for one of them, by level then name, one each,
 * then a second each…, up to HERD_STANDBY_PER_DEVICE per device and @max
 * in all.  herd_standby_want*, by level then name. */
GPtrArray *herd_standby_choose(const herd_standby_device *devices, size_t n_devices,
			       const char *const *fenced, size_t n_fenced, unsigned max);

/* The same from the store, for node @self in @group. */
GPtrArray *herd_standby_wants(store_state *st, const uint32_t *group, size_t n_group, uint32_t self);

/* A waiting agent as the pool sees it. */
typedef struct herd_standby_have {
	const char *device;
	const char *key;
} herd_standby_have;

/* What to do about the waiting agents @have (@n_have) for @wants. */
typedef struct herd_standby_plan {
	GArray *kill;        /* guint indexes into @have: not wanted (any more), or too many */
	GPtrArray *spawn;    /* herd_standby_want* (borrowed from @wants), once per agent to start now */
	int64_t next_ms;     /* when to plan again for a start held back; 0: none */
} herd_standby_plan;

/* @not_before: device name -> int64_t* (ms), when its next start may be
 * (after a use or a death); may be NULL.  Free with herd_standby_plan_clear(). */
void herd_standby_plan_make(herd_standby_plan *plan, GPtrArray *wants, const herd_standby_have *have,
			    size_t n_have, GHashTable *not_before, int64_t now_ms);
void herd_standby_plan_clear(herd_standby_plan *plan);

/* How long to hold back the next start of a device's agent after one of
 * its waiting agents died without a use, the @deaths-th time in a row. */
int64_t herd_standby_backoff_ms(unsigned deaths);

/* What an agent reads on stdin for @action on @t: "action=…", "plug=…",
 * then its parameters, one "key=value" line each. */
char *herd_fence_agent_input(const herd_fence_target *t, const char *action);
