/*
 * Affinity rules as the scheduler weighs them (pure: no I/O, no clock).
 *
 * The scheduler tells this core where each VM is counted as it decides
 * (affinity_put, affinity_take) and asks it, for a VM and a node, whether a
 * strict rule forbids the node (affinity_allows) and how many of the VM's
 * rule partners the node would leave on the wrong side (affinity_cost).
 *
 * A partner binds only where it stays: on a node the caller marks open
 * (online and not down, and not the node an N+1 check fails).  VMs leaving
 * a node in standby, or of a fenced node, do not hold their partners there.
 *
 *   apart:    broken by every partner on the same node;
 *   together: broken by every partner on another node.  A strict together
 *             rule allows a node only if a partner is there (or none is
 *             anywhere yet): the first VM of a group chooses, the rest
 *             follow it.
 *
 * Costs count pairs, so that moving a VM to a node of lower cost lowers the
 * sum over all VMs: mending rules one VM at a time ends.
 */
#pragma once

#include "ha/sched.h"

#include <glib.h>
#include <stdbool.h>

typedef struct affinity affinity;

/* The rules of @in.  @open (in->n_nodes entries) stays the caller's and is
 * read at every call: may a VM counted on that node bind its partners? */
affinity *affinity_new(const sched_input *in, const bool *open);
void affinity_free(affinity *a);

/* Does any rule name a VM of the input?  (None: every call below is cheap.) */
bool affinity_any(const affinity *a);

/* @vm is counted on node @node now (placed, or staying there); while it
 * moves there from node @from (or -1: from where it was counted), a strict
 * apart rule keeps its partners off both. */
void affinity_put(affinity *a, const sched_vm *vm, int node, int from);
/* ... no longer on @node (if that is where it was counted). */
void affinity_take(affinity *a, const sched_vm *vm, int node);
/* Where @vm is counted, or -1. */
int affinity_at(const affinity *a, const sched_vm *vm);

/* Nowhere: every VM is counted on no node. */
void affinity_reset(affinity *a);

/* Where every VM is counted, to be put back with affinity_restore()
 * (g_free the copy). */
int *affinity_save(const affinity *a);
void affinity_restore(affinity *a, const int *saved);

typedef struct {
	unsigned strict;         /* partners of strict rules on the wrong side */
	unsigned soft;           /* ... of soft rules */
} affinity_cost;

/* How many of @vm's partners would be on the wrong side with @vm on @node. */
affinity_cost affinity_cost_at(const affinity *a, const sched_vm *vm, int node);
/* -1, 0, 1: is @x better (lower) than @y?  Strict before soft. */
int affinity_cost_cmp(affinity_cost x, affinity_cost y);

/* May @vm go to node @node under its strict rules?  False with *@why, a
 * sentence fragment naming the rule (interned: it outlives @a). */
bool affinity_allows(affinity *a, const sched_vm *vm, int node, const char **why);

/* The reason of the last refusal of affinity_allows() since
 * affinity_forget(), or NULL: a rule, not room, kept a VM off a node
 * (*@node: that node's index). */
const char *affinity_last_refusal(const affinity *a, int *node);
void affinity_forget(affinity *a);

/* The first rule @vm breaks on node @node (strict ones first), or NULL;
 * *@strict says which kind. */
const sched_rule *affinity_broken(const affinity *a, const sched_vm *vm, int node, bool *strict);
