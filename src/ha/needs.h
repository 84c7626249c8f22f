/*
 * What a VM needs of the node it runs on, for the scheduler (sched_need):
 * the storages its disks and ISOs are on and the virtual switches of its
 * NICs (a VM made by herd: its "hw"), or — for a VM defined from an
 * operator's XML — the dir storages under whose paths its disks' files lie
 * and the switches whose bridges its interfaces name.  Mapped when the
 * scheduler plans, so that a storage or switch added later counts.  Only
 * storages that nodes check count (herd_reach_type_checked()).  Pure.
 */
#pragma once

#include "ha/sched.h"
#include "store/state.h"
#include "store/vm.h"

typedef struct herd_needs herd_needs;

/* The storages and switches of @st, indexed (borrowed: use while @st is). */
herd_needs *herd_needs_new(store_state *st);
void herd_needs_free(herd_needs *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_needs, herd_needs_free)

/* @vm's needs (g_free the array; its strings are interned), or NULL with
 * *@count 0. */
sched_need *herd_needs_of(herd_needs *n, const store_vm *vm, size_t *count);
