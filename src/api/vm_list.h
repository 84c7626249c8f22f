/*
 * GET /api/v1/vms, the list of all VMs, written in slices so that it never
 * holds the main loop for long: with 10,000 VMs writing the list costs
 * about 10 ms (50 ms for the first, which writes every VM's configuration;
 * bench/vm-list), more than anything else may hold the loop.  The request
 * takes its snapshot at once — the store's objects (immutable, held) and
 * the HA engine's runtime view (ha/engine.h, which holds what it reads) —
 * and the text of one consistent state is written a slice of about a
 * millisecond per main-loop iteration, the lists under way one after the
 * other, while the request waits suspended.
 *
 * What tests see of it; the handler is in routes.h, the clean-up
 * api_vm_lists_clear() in context.h.
 */
#pragma once

#include "api/context.h"

/* Drop the VM texts kept for the next list whose VM the store has
 * changed or dropped since (done every minute while some are kept);
 * how many are kept then. */
unsigned api_vm_lists_sweep(api_ctx *a);
/* Lists under way (taken, not all written yet). */
unsigned api_vm_lists_under_way(api_ctx *a);
/* Tests: write at most @vms VMs a slice (0: as many as a slice's time allows). */
void api_vm_lists_set_slice_limit(api_ctx *a, unsigned vms);
/* Tests: write no slice until released (lists taken meanwhile wait). */
void api_vm_lists_hold(api_ctx *a, bool hold);
