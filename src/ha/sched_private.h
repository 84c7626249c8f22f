/*
 * The scheduler's parts (ha/sched.h is its interface): its working state
 * and the helpers they share.  Only for src/ha/sched*.c.
 *
 *   sched.c      decides, VM by VM, and makes the plan; places one VM
 *   sched_ctx.c  the working state: names to indices, the room VMs hold,
 *                whether a VM fits on a node and how full it would be
 *   sched_set.c  node sets (Proxmox HA groups): tiers of nodes by priority
 *   sched_n1.c   N+1: could every node's HA VMs be restarted elsewhere
 */
#pragma once

#include "ha/affinity.h"
#include "ha/sched.h"

#include <string.h>

/*
 * One decision's working state.  Names are looked up once, in ctx_init():
 * the VMs' nodes and anti-affinity groups become indices, so that placing a
 * VM (and the N+1 check, which places every node's VMs once more) does no
 * string work.  32 nodes x 10,000 VMs: bench/sched_plan.c.
 */
typedef struct {
	const sched_input *in;
	GHashTable *index;      /* node name -> index + 1 */
	GHashTable *group_ids;  /* anti-affinity group name -> id + 1 */
	size_t n_groups;
	int *vm_node;           /* per VM of in->vms: its node's index, or -1 */
	int *vm_preferred;      /* per VM: its preferred node's index, or -1 */
	int *vm_group;          /* per VM: its group's id, or -1 */
	uint64_t *mem_used;
	unsigned *vcpu_used;
	unsigned *group_used;   /* [group id * n_nodes + node]: its VMs counted there */
	GHashTable *fencing;    /* node names with a FENCE action */
	GHashTable *uncovered;  /* lost nodes already reported as unfenceable */
	bool *open;             /* per node: may a VM there bind its rule partners
				 * (see ctx_init; not the node an N+1 check fails) */
	affinity *aff;          /* the affinity rules (ha/affinity.h) */
	bool ping_somewhere;    /* a node that may take VMs reaches a ping node: the
				 * HA VMs of nodes that reach none go there */
	sched_plan *plan;
} ctx;

/*
 * How full node @i would be with @vm on it, relative to its size: the
 * share of its memory (what VMs hold over what it may give them, after
 * memory_reserve_mib) and of its vCPUs (over cpus x vcpu_overcommit).
 * Only called for a node that sched_fits(): the sums are within its room.
 */
typedef struct {
	double fuller;           /* the larger share: what fills the node first */
	double other;            /* the smaller one */
	int64_t free_mib;        /* memory left, MiB */
} sched_load;

static inline int node_idx(ctx *c, const char *name)
{
	return name ? GPOINTER_TO_INT(g_hash_table_lookup(c->index, name)) - 1 : -1;
}

/* @vm's position in c->in->vms, or -1 (a VM judged from outside). */
static inline ssize_t vm_pos(ctx *c, const sched_vm *vm)
{
	uintptr_t off = (uintptr_t)vm - (uintptr_t)c->in->vms;
	return c->in->vms && off < c->in->n_vms * sizeof(sched_vm) ? (ssize_t)(off / sizeof(sched_vm)) : -1;
}

static inline int vm_node_idx(ctx *c, const sched_vm *vm)
{
	ssize_t k = vm_pos(c, vm);
	return k >= 0 ? c->vm_node[k] : node_idx(c, vm->node);
}

static inline int vm_preferred_idx(ctx *c, const sched_vm *vm)
{
	ssize_t k = vm_pos(c, vm);
	return k >= 0 ? c->vm_preferred[k] : node_idx(c, vm->preferred);
}

/* Its group's id, or -1: no group, or one no VM of the input has. */
static inline int vm_group_id(ctx *c, const sched_vm *vm)
{
	ssize_t k = vm_pos(c, vm);
	if (k >= 0)
		return c->vm_group[k];
	return vm->group ? GPOINTER_TO_INT(g_hash_table_lookup(c->group_ids, vm->group)) - 1 : -1;
}

/*
 * The node cannot be running anything: it was fenced or confirmed down and
 * has not come back.  A node that is back in corosync's ring may run its
 * VMs again, whatever its down mark says (it is cleared once its herd
 * reports in).
 */
static inline bool effectively_down(ctx *c, const sched_node *n)
{
	return !n->in_ring && (n->down || c->in->lab_mode);
}

/* Out of the ring but possibly alive, and herd's to look after (not in
 * maintenance). */
static inline bool away(ctx *c, const sched_node *n)
{
	return !n->in_ring && !effectively_down(c, n) && n->mode != STORE_NODE_MAINTENANCE;
}

/* It must be fenced before its VMs go elsewhere. */
static inline bool lost(ctx *c, const sched_node *n)
{
	return away(c, n) && !n->awaited;
}

/* Not seen since the cluster started, and given time to join. */
static inline bool awaited(ctx *c, const sched_node *n)
{
	return away(c, n) && n->awaited;
}

static inline bool usable(const sched_node *n)
{
	return n->in_ring && n->herd_up && !n->down && n->mode == STORE_NODE_ONLINE;
}

void sched_ctx_init(ctx *c, const sched_input *in, sched_plan *plan);
void sched_ctx_clear(ctx *c);
/* in->vms (and @extra, if any) in the order they are decided. */
GPtrArray *sched_vms_in_order(const sched_input *in, const sched_vm *extra);

void sched_add_action(ctx *c, sched_action_type type, const char *vm, const char *node,
		      const char *move_to, const char *reason);
void sched_add_alert(ctx *c, sched_severity sev, const char *vm, const char *node,
		     const char *fmt, ...) G_GNUC_PRINTF(5, 6);

void sched_account(ctx *c, const sched_vm *vm, int i);
void sched_account_assigned(ctx *c, const sched_vm *vm, int i);
void sched_unaccount(ctx *c, const sched_vm *vm, int i);
void sched_account_settled(ctx *c);
bool sched_fits(ctx *c, const sched_vm *vm, int i, const char **why);
sched_load sched_load_with(ctx *c, const sched_vm *vm, int i);
bool sched_better_home(ctx *c, int i, sched_load a, int j, sched_load b);

int sched_set_priority(ctx *c, const sched_vm *vm, int i);
int sched_choose_in_set(ctx *c, const sched_vm *vm, int avoid, const char **why);
char *sched_explain_set(ctx *c, const sched_vm *vm, int avoid);
bool sched_set_failback(ctx *c, const sched_vm *vm, const sched_node *n, int ni, bool here);
bool sched_set_allows_return(ctx *c, const sched_vm *vm, int here);

int sched_choose(ctx *c, const sched_vm *vm, int avoid, const char **why);
void sched_add_move(ctx *c, const sched_vm *vm, const sched_node *n, int to, bool here,
		    bool cold_ok, const char *reason, const char *return_to);

bool sched_n1_check(ctx *c, GPtrArray *order, const sched_vm *extra, char **detail, unsigned *unsafe);
