#include "ha/start_order.h"

#include "common/log.h"
#include "store/vm.h"

#include <string.h>

struct herd_start_order {
	GHashTable *held;       /* uuid -> when it was first held (int64_t*) */
	GHashTable *why;        /* uuid -> why it waits (its last pick) */
};

herd_start_order *herd_start_order_new(void)
{
	herd_start_order *o = g_new0(herd_start_order, 1);
	o->held = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	o->why = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	return o;
}

void herd_start_order_free(herd_start_order *o)
{
	if (!o)
		return;
	g_hash_table_destroy(o->held);
	g_hash_table_destroy(o->why);
	g_free(o);
}

static gint by_priority(gconstpointer a, gconstpointer b)
{
	const store_object *x = *(store_object *const *)a, *y = *(store_object *const *)b;
	int px = store_vm_of(x)->restart_priority, py = store_vm_of(y)->restart_priority;
	if (px != py)
		return px < py ? -1 : 1;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->uuid, y->uuid);
}

/* Is @vm still to start somewhere: to run, assigned to a member, and not
 * reported running? */
static bool to_start(store_object *vm, GHashTable *running, GHashTable *members)
{
	const store_vm *v = store_vm_of(vm);
	return v->target_running && v->node && g_hash_table_contains(members, v->node) &&
	       !g_hash_table_contains(running, vm->uuid);
}

/* Does @vm wait for its start_after VM (to run, not running)? */
static bool waits_after(store_state *st, store_object *vm, GHashTable *running)
{
	const char *uuid = store_vm_of(vm)->start_after;
	store_object *after = uuid ? store_state_get(st, STORE_KIND_VM, uuid) : NULL;
	return after && after != vm && store_vm_of(after)->target_running &&
	       !g_hash_table_contains(running, after->uuid);
}

/* The highest priority (lowest value) of the VMs still to start, or
 * STORE_VM_PRIORITY_DISABLED + 1 if none.  One that waits for its
 * start_after VM holds no one: that VM may be of a lower priority. */
static int highest_to_start(store_state *st, GHashTable *running, GHashTable *members)
{
	int best = STORE_VM_PRIORITY_DISABLED + 1;
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	for (guint i = 0; i < vms->len && best > STORE_VM_PRIORITY_HIGH; i++) {
		store_object *vm = vms->pdata[i];
		int p = store_vm_of(vm)->restart_priority;
		if (p < best && to_start(vm, running, members) && !waits_after(st, vm, running))
			best = p;
	}
	return best;
}

int64_t herd_start_order_pick(herd_start_order *o, store_state *st, GPtrArray *starts,
			      GHashTable *running, GHashTable *members, int64_t now_ms)
{
	g_hash_table_remove_all(o->why);
	g_ptr_array_sort(starts, by_priority);
	if (!running || !members || starts->len == 0) {
		g_hash_table_remove_all(o->held);
		return 0;
	}
	/* Only a start of a lower priority than the highest can wait for
	 * priorities; only one with start_after for its VM. */
	bool any_after = false;
	for (guint i = 0; i < starts->len; i++)
		any_after |= store_vm_of(starts->pdata[i])->start_after != NULL;
	int first = store_vm_of(starts->pdata[0])->restart_priority;
	int last = store_vm_of(starts->pdata[starts->len - 1])->restart_priority;
	int best = first != last || first > STORE_VM_PRIORITY_HIGH ? highest_to_start(st, running, members)
								   : first;
	if (best >= last && !any_after) {
		g_hash_table_remove_all(o->held);
		return 0;
	}
	g_autoptr(GHashTable) still = g_hash_table_new(g_str_hash, g_str_equal);
	int64_t next = 0;
	guint kept = 0;
	for (guint i = 0; i < starts->len; i++) {
		store_object *vm = starts->pdata[i];
		const store_vm *v = store_vm_of(vm);
		g_autofree char *why = NULL;
		if ((int)v->restart_priority > best)
			why = g_strdup_printf("waits for the VMs of restart priority %s to run",
					      store_vm_priority_name((store_vm_priority)best));
		if (!why && waits_after(st, vm, running))
			why = g_strdup_printf("waits for VM %s to run (start after)",
					      store_state_get(st, STORE_KIND_VM, v->start_after)->name);
		if (!why) {
			starts->pdata[kept++] = vm;
			continue;
		}
		int64_t *since = g_hash_table_lookup(o->held, vm->uuid);
		if (!since) {
			since = g_new(int64_t, 1);
			*since = now_ms;
			g_hash_table_insert(o->held, g_strdup(vm->uuid), since);
			log_info("VM %s %s, at most %u s", vm->name, why, v->start_wait_s);
		}
		int64_t left = *since + (int64_t)v->start_wait_s * 1000 - now_ms;
		if (left <= 0) {
			log_info("VM %s starts although it %s: its start_wait_s (%u s) is over", vm->name,
				 why, v->start_wait_s);
			starts->pdata[kept++] = vm;
			continue;
		}
		g_hash_table_add(still, vm->uuid);
		g_hash_table_insert(o->why, g_strdup(vm->uuid), g_steal_pointer(&why));
		next = next ? MIN(next, left) : left;
	}
	g_ptr_array_set_size(starts, kept);
	/* Forget what no longer waits (started, or not to start here). */
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, o->held);
	while (g_hash_table_iter_next(&it, &k, NULL))
		if (!g_hash_table_contains(still, k))
			g_hash_table_iter_remove(&it);
	return next;
}

const char *herd_start_order_why(herd_start_order *o, const char *uuid)
{
	return g_hash_table_lookup(o->why, uuid);
}
