/*
 * The order of a node's VM starts: restart priorities and "start after"
 * (store_vm's restart_priority, start_after, start_wait_s).
 *
 * Every start goes through a node agent — after a failover, at a cold start
 * of the whole cluster (every node starts the VMs assigned to it), after a
 * cold move off a node that is evacuated — so the order is kept there, on
 * the cluster-wide facts, whichever node each VM starts on:
 *   - a VM starts only once no VM of a higher priority is still to start
 *     (to run, assigned to a member of the group, not reported running by
 *     any member, and not itself waiting for its start_after VM);
 *   - a VM with start_after starts only once that VM runs (or is not to
 *     run, or is gone);
 *   - either wait ends after the VM's start_wait_s, counted from the first
 *     time it was held back: a failed or slow VM holds nobody for long.
 * The VMs a node starts at once are handed to the hypervisor in priority
 * order (then by name).
 *
 * Pure: no I/O, the clock an argument; the only state is when each held VM
 * was first held.
 */
#pragma once

#include "store/state.h"

#include <glib.h>
#include <stdint.h>

typedef struct herd_start_order herd_start_order;

herd_start_order *herd_start_order_new(void);
void herd_start_order_free(herd_start_order *o);

/*
 * @starts: the VMs (store_object*) this node would start now.  Sorts them
 * (priority, then name) and removes those that must wait; returns in how
 * many ms the first of those may go (0: none waits).  @running: the uuids
 * reported running by the group's members (this node too); @members: the
 * members' names.  Either NULL: nothing is known, nothing waits.
 */
int64_t herd_start_order_pick(herd_start_order *o, store_state *st, GPtrArray *starts,
			      GHashTable *running, GHashTable *members, int64_t now_ms);

/* Why @uuid waits, or NULL (valid until the next pick). */
const char *herd_start_order_why(herd_start_order *o, const char *uuid);
