/*
 * What the libvirt driver's main thread knows of each VM (lv_vm): its fact
 * (herd's state, since when, why), kept current by libvirt's lifecycle
 * events, by full lists after every (re)connect and every few seconds, and
 * by what operations saw; every change is reported to the user, and tells
 * the operations waiting for it (lv_queue_state_changed).
 */
#define G_LOG_DOMAIN "virt"
#include "virt/libvirt_priv.h"

#include "common/log.h"

/* A full list does not override a VM an event touched this recently: that
 * event's successors may still be on their way. */
#define LIST_QUIET_US (1000 * 1000)
/* A stopped VM that libvirt no longer lists is forgotten after this. */
#define FORGET_STOPPED_MS (15 * 60 * 1000)

/* herd_vm_state_name() lives in ha/facts.c, with the pure core that the
 * simulator links without libvirt. */

lv_vm *lv_vm_get(herd_virt_libvirt *v, const char *uuid)
{
	lv_vm *vm = g_hash_table_lookup(v->vms, uuid);
	if (!vm) {
		vm = g_new0(lv_vm, 1);
		g_strlcpy(vm->fact.uuid, uuid, sizeof(vm->fact.uuid));
		vm->fact.state = HERD_VM_STOPPED;
		vm->fact.since_ms = lv_now_ms();
		g_queue_init(&vm->pending);
		vm->waiters = g_ptr_array_new();
		g_hash_table_insert(v->vms, vm->fact.uuid, vm);
	}
	return vm;
}

void lv_vm_free(gpointer p)
{
	lv_vm *vm = p;
	/* close() finished every operation first. */
	g_queue_clear(&vm->pending);
	g_ptr_array_unref(vm->waiters);
	g_free(vm);
}

void lv_emit_fact(herd_virt_libvirt *v, lv_vm *vm)
{
	vm->emitted = ++v->fact_serial;
	if (v->base.cb.fact && !v->closed)
		v->base.cb.fact(v->base.user, &vm->fact);
}

void lv_set_state(herd_virt_libvirt *v, lv_vm *vm, herd_vm_state state, const char *reason,
		  int64_t since_ms)
{
	if (vm->fact.state == state)
		return;
	vm->fact.state = state;
	vm->fact.since_ms = since_ms > 0 ? since_ms : lv_now_ms();
	g_strlcpy(vm->fact.reason, reason, sizeof(vm->fact.reason));
	log_debug("VM %s: %s (%s)", vm->fact.uuid, herd_vm_state_name(state), reason);
	lv_emit_fact(v, vm);
	lv_queue_state_changed(v, vm, state);
}

void lv_cache_event(herd_virt_libvirt *v, const lv_msg *m)
{
	if (m->gen != v->gen)
		return; /* from a connection given up on */
	lv_vm *vm = lv_vm_get(v, m->uuid);
	vm->seen = true;
	vm->event_serial = ++v->event_serial;
	vm->event_us = g_get_monotonic_time();
	herd_vm_state st;
	char reason[64];
	lv_vm_context ctx = lv_vm_context_of(vm);
	if (lv_map_event(&ctx, m->event, m->detail, &st, reason, sizeof(reason)))
		lv_set_state(v, vm, st, reason, 0);
}

/* Bring the cache in line with a full list from libvirt.  VMs with an
 * operation under way are left to it; so is a VM an event touched after
 * the list was asked for (the event is at least as new). */
void lv_cache_apply_list(herd_virt_libvirt *v, GArray *domains, uint64_t serial,
			 bool reconnected)
{
	gint64 now_us = g_get_monotonic_time();
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val))
		((lv_vm *)val)->listed = false;
	for (guint i = 0; i < domains->len; i++) {
		const lv_obs *o = &g_array_index(domains, lv_obs, i);
		lv_vm *vm = lv_vm_get(v, o->uuid);
		bool is_new = !vm->seen;
		vm->listed = vm->seen = true;
		if (vm->active || vm->destroying || vm->event_serial > serial ||
		    (!reconnected && now_us - vm->event_us < LIST_QUIET_US))
			continue;
		char reason[64];
		lv_vm_context ctx = lv_vm_context_of(vm);
		ctx.job_operation = o->job_operation;
		herd_vm_state st = lv_map_domain_state(&ctx, o->state, o->reason, reason,
						       sizeof(reason));
		if (vm->waiters->len > 0 && !lv_state_is_down(st))
			continue; /* still shutting down */
		if (is_new && st == HERD_VM_STOPPED) {
			/* A defined, inactive domain: known, quietly. */
			g_strlcpy(vm->fact.reason, reason, sizeof(vm->fact.reason));
			continue;
		}
		/* A VM found running at herd's start: since its QEMU started. */
		lv_set_state(v, vm, st, reason, is_new && st == HERD_VM_RUNNING ? o->started_ms : 0);
	}
	int64_t now = lv_now_ms();
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val)) {
		lv_vm *vm = val;
		if (vm->listed || vm->active || vm->destroying || vm->event_serial > serial ||
		    (!reconnected && now_us - vm->event_us < LIST_QUIET_US))
			continue;
		if (vm->fact.state != HERD_VM_STOPPED) {
			lv_set_state(v, vm, HERD_VM_STOPPED,
				     reconnected ? "gone while libvirt was unreachable"
						 : "gone without an event", 0);
		} else if (!reconnected && vm->waiters->len == 0 && g_queue_is_empty(&vm->pending) &&
			   now - vm->fact.since_ms > FORGET_STOPPED_MS) {
			g_hash_table_iter_remove(&it);
		}
	}
}
