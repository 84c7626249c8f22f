/*
 * The libvirt driver's operations (start, shutdown, destroy, reboot, reset,
 * suspend, resume), on the main thread.  Operations on one VM run one at a
 * time in the order asked, from a queue per VM (pump); a destroy may
 * overtake a hung operation and ends those queued before it
 * (destroy_submit).  Each has a deadline.  One that libvirt has done waits
 * a moment for the event that brings the state it saw (op_settle), so the
 * caller sees the new fact before its callback.  A shutdown leaves the
 * queue to wait for the stop, and is forced with a destroy when its time is
 * up (on_shutdown_wait).
 */
#define G_LOG_DOMAIN "virt"
#include "virt/libvirt_priv.h"

#include "common/log.h"

/* Deadlines of operations, queueing included.  A start may legitimately
 * take long (large guests, memory preallocation); libvirt gives up on a
 * busy domain after 30 s by itself. */
#define START_TIMEOUT_MS 120000
#define OP_TIMEOUT_MS 60000
/* A shutdown waits a day at most (the API's limit too), so that its time in
 * ms fits the timers' 32 bits. */
#define SHUTDOWN_TIMEOUT_MAX_S (24u * 3600u)
/* libvirtd sends events from another thread than replies, so the event of
 * an operation may arrive after its reply.  The operation waits this long
 * for the event that brings the state it saw, before applying that state
 * itself. */
#define SETTLE_MS 500

static const char *const op_verbs[] = {
	"start", "shut down", "destroy", "reboot", "reset", "suspend", "resume",
};

static void pump(herd_virt_libvirt *v, lv_vm *vm);
static void destroy_submit(herd_virt_libvirt *v, lv_vm *vm, lv_op *op);
static void op_complete(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, GError *error);
static gboolean on_shutdown_wait(gpointer data);

/* ---- operations, refcounting ---------------------------------------------------------------- */

static GError *op_error(const lv_op *op, herd_error_code code, const char *detail)
{
	return g_error_new(HERD_ERROR, code, "Cannot %s VM %s: %s.", op_verbs[op->kind], op->uuid,
			   detail);
}

static lv_op *op_new(herd_virt_libvirt *v, op_kind kind, const char *uuid, herd_virt_done done,
		     gpointer user)
{
	lv_op *op = g_new0(lv_op, 1);
	g_atomic_ref_count_init(&op->refs);
	op->kind = kind;
	g_strlcpy(op->uuid, uuid ? uuid : "", sizeof(op->uuid));
	op->done = done;
	op->user = user;
	op->v = v;
	return op;
}

static lv_op *op_ref(lv_op *op)
{
	g_atomic_ref_count_inc(&op->refs);
	return op;
}

/* May run on any thread: touches no main-thread state but its own timers,
 * which are gone by then (lv_op_finish cancels them). */
void lv_op_unref(lv_op *op)
{
	if (!op || !g_atomic_ref_count_dec(&op->refs))
		return;
	g_free(op->xml);
	g_free(op);
}

/* Call the operation's done callback once; the caller still holds its
 * reference. */
void lv_op_finish(lv_op *op, GError *error)
{
	if (op->finished) {
		if (error)
			g_error_free(error);
		return;
	}
	op->finished = true;
	lv_timer_cancel(&op->deadline);
	lv_timer_cancel(&op->wait);
	lv_timer_cancel(&op->settle);
	if (op->done)
		op->done(error, op->user);
	if (error)
		g_error_free(error);
}

/* Forget @op's completion (the driver closes): no callback, no timers. */
void lv_op_drop(lv_op *op)
{
	op->done = NULL;
	lv_op_finish(op, NULL);
}

static void finish_waiters(herd_virt_libvirt *v, lv_vm *vm, const GError *error)
{
	while (vm->waiters->len > 0) {
		lv_op *w = g_ptr_array_steal_index(vm->waiters, 0);
		lv_op_finish(w, error ? g_error_copy(error) : NULL);
		lv_op_unref(w);
	}
}

/* ---- what the VM's state means to its operations -------------------------------------------- */

/* Is a shutdown that herd asked for under way on @vm? */
static bool shutdown_asked(const lv_vm *vm)
{
	return vm->waiters->len > 0 || (vm->active && vm->active->kind == OP_SHUTDOWN);
}

static const lv_op *forced_destroy(const lv_vm *vm)
{
	if (vm->destroying && vm->destroying->forced)
		return vm->destroying;
	if (vm->active && vm->active->forced)
		return vm->active;
	return NULL;
}

/* What the state tables need to know of @vm (see lv_vm_context). */
lv_vm_context lv_vm_context_of(const lv_vm *vm)
{
	const lv_op *forced = forced_destroy(vm);
	return (lv_vm_context){
		.state = vm->fact.state,
		.shutdown_asked = shutdown_asked(vm),
		.forced = forced != NULL,
		.forced_timeout_s = forced ? forced->timeout_s : 0,
	};
}

/* After the fact is reported (lv_set_state): a stop ends the shutdowns
 * waiting for it, a crash forces their end, and an operation waiting for
 * this state is done. */
void lv_queue_state_changed(herd_virt_libvirt *v, lv_vm *vm, herd_vm_state state)
{
	if (lv_state_is_down(state)) {
		finish_waiters(v, vm, NULL);
	} else if (state == HERD_VM_CRASHED && !v->closed && vm->waiters->len > 0 &&
		   !vm->destroying && !(vm->active && vm->active->kind == OP_DESTROY)) {
		/* Being shut down and crashed: no point waiting for it. */
		lv_op *w = g_ptr_array_index(vm->waiters, 0);
		lv_op *d = op_new(v, OP_DESTROY, vm->fact.uuid, NULL, NULL);
		d->forced = true;
		d->timeout_s = w->timeout_s;
		destroy_submit(v, vm, d);
	}
	/* An operation waiting for this state is done now. */
	lv_op *ops[2] = { vm->active, vm->destroying };
	for (int i = 0; i < 2; i++)
		if (ops[i])
			op_ref(ops[i]); /* a callback below may close the driver */
	for (int i = 0; i < 2; i++)
		if (ops[i] && ops[i]->settling && ops[i]->expect == state)
			op_complete(v, vm, ops[i], NULL);
	for (int i = 0; i < 2; i++)
		lv_op_unref(ops[i]);
}

/* ---- beginning and end ---------------------------------------------------------------------- */

/* What a job saw of its VM after the operation, as herd's state; false if
 * it saw nothing (the connection failed). */
static bool observed_state(const lv_vm *vm, const lv_job *j, const char *gone, herd_vm_state *st,
			   char *reason, size_t len)
{
	if (!j->observed)
		return false;
	if (j->found) {
		lv_vm_context ctx = lv_vm_context_of(vm);
		*st = lv_map_domain_state(&ctx, j->state, j->reason, reason, len);
		if (*st == HERD_VM_STOPPED && gone)
			g_strlcpy(reason, gone, len);
	} else {
		*st = HERD_VM_STOPPED;
		g_strlcpy(reason, gone ? gone : "not running", len);
	}
	return true;
}

static void apply_observation(herd_virt_libvirt *v, lv_vm *vm, const lv_job *j, const char *gone)
{
	herd_vm_state st;
	char reason[64];
	if (observed_state(vm, j, gone, &st, reason, sizeof(reason)))
		lv_set_state(v, vm, st, reason, 0);
}

/* The operation is over: it leaves its VM, its caller hears of it, the
 * next one on the VM may run. */
static void op_complete(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, GError *error)
{
	op->settling = false;
	lv_timer_cancel(&op->settle);
	if (vm->active == op)
		vm->active = NULL;
	else if (vm->destroying == op)
		vm->destroying = NULL;
	else
		op = op_ref(op); /* not the VM's (any more): balance the unref */
	lv_op_finish(op, error);
	lv_op_unref(op);
	pump(v, vm);
}

static gboolean on_settle(gpointer data)
{
	lv_op *op = data;
	herd_virt_libvirt *v = op->v;
	g_source_unref(op->settle);
	op->settle = NULL;
	lv_enter(v);
	op_ref(op);
	lv_vm *vm = lv_vm_get(v, op->uuid);
	/* No event at all since it began: libvirt sent none (or it is lost),
	 * so what the operation saw is the best knowledge.  Otherwise the
	 * events had their say. */
	if (vm->event_serial <= op->begin_serial)
		lv_set_state(v, vm, op->expect, op->expect_reason, 0);
	if (op->settling)
		op_complete(v, vm, op, NULL);
	lv_op_unref(op);
	lv_leave(v);
	return G_SOURCE_REMOVE;
}

/* Done in libvirt: complete once the cache shows what the operation saw —
 * normally when libvirt's event arrives — so that facts keep libvirt's
 * order and the caller sees the new fact before its callback. */
static void op_settle(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, const lv_job *j, const char *gone)
{
	herd_vm_state st;
	char reason[64];
	if (op->finished || !observed_state(vm, j, gone, &st, reason, sizeof(reason)) ||
	    vm->fact.state == st) {
		op_complete(v, vm, op, NULL);
		return;
	}
	op->settling = true;
	op->expect = st;
	g_strlcpy(op->expect_reason, reason, sizeof(op->expect_reason));
	op->settle = lv_timer_new(v, SETTLE_MS, on_settle, op);
}

void lv_queue_op_done(herd_virt_libvirt *v, lv_job *j)
{
	lv_op *op = j->op;
	lv_vm *vm = lv_vm_get(v, op->uuid);
	if (vm->active != op && vm->destroying != op) {
		/* Released meanwhile (the driver closed). */
		return;
	}
	if (j->lost && j->gen == v->gen)
		lv_conn_lost(v, j->err_detail ? j->err_detail : "a call failed");
	GError *err = j->failed ? op_error(op, j->err_code, j->err_detail) : NULL;
	char forced_reason[64];
	g_snprintf(forced_reason, sizeof(forced_reason), "forced off after %u s shutdown timeout",
		   op->timeout_s);
	switch (op->kind) {
	case OP_START:
		if (!err) {
			op_settle(v, vm, op, j, NULL);
			return;
		}
		apply_observation(v, vm, j, "start failed");
		if (vm->fact.state == HERD_VM_STARTING)
			lv_set_state(v, vm, HERD_VM_STOPPED, "start failed", 0);
		break;
	case OP_DESTROY:
		if (!err) {
			op_settle(v, vm, op, j, op->forced ? forced_reason : "destroyed");
			return;
		}
		if (op->forced) {
			GError *e = g_error_new(HERD_ERROR, j->err_code,
						"Cannot shut down VM %s: it did not stop within %u s, "
						"and destroying it failed: %s.",
						op->uuid, op->timeout_s, j->err_detail);
			finish_waiters(v, vm, e);
			g_error_free(e);
		}
		apply_observation(v, vm, j, NULL);
		break;
	case OP_SHUTDOWN:
		if (j->observed && (!j->found || !lv_domain_active(j->state))) {
			/* Stopped already (or never here): done when the cache
			 * says so. */
			g_clear_error(&err);
			op_settle(v, vm, op, j, "shut down on request");
			return;
		}
		if (err && j->lost)
			break;
		if (err) {
			/* The guest cannot be asked (paused, or libvirt refused):
			 * it gets its time all the same, then it is forced off. */
			log_warn("%s; it will be destroyed if it has not stopped after %u s",
				 err->message, op->timeout_s);
			g_clear_error(&err);
		}
		if (op->finished)
			break; /* its deadline passed meanwhile */
		/* Off the VM's queue (other operations may run meanwhile, a
		 * destroy ends the wait), waiting for the stop, then forcing it. */
		g_ptr_array_add(vm->waiters, op_ref(op));
		op->wait = lv_timer_new(v, op->timeout_s * 1000u, on_shutdown_wait, op);
		if (vm->active == op)
			vm->active = NULL;
		else
			vm->destroying = NULL;
		lv_op_unref(op);
		pump(v, vm);
		return;
	case OP_REBOOT:
	case OP_RESET:
	case OP_SUSPEND:
	case OP_RESUME:
		if (!err) {
			op_settle(v, vm, op, j, NULL);
			return;
		}
		apply_observation(v, vm, j, NULL);
		break;
	}
	op_complete(v, vm, op, err);
}

/* The transitional state an operation puts its VM in when it begins. */
void lv_queue_op_begin(herd_virt_libvirt *v, lv_op *op)
{
	lv_vm *vm = lv_vm_get(v, op->uuid);
	herd_vm_state s = vm->fact.state;
	op->begin_serial = v->event_serial;
	switch (op->kind) {
	case OP_START:
		if (s == HERD_VM_STOPPED || s == HERD_VM_CRASHED)
			lv_set_state(v, vm, HERD_VM_STARTING, "starting", 0);
		break;
	case OP_SHUTDOWN:
		if (s == HERD_VM_RUNNING || s == HERD_VM_PAUSED || s == HERD_VM_STARTING)
			lv_set_state(v, vm, HERD_VM_STOPPING,
				     op->timeout_s > 0 ? "shutting down" : "powering off", 0);
		break;
	case OP_DESTROY:
		if (s == HERD_VM_RUNNING || s == HERD_VM_PAUSED || s == HERD_VM_STARTING ||
		    s == HERD_VM_CRASHED)
			lv_set_state(v, vm, HERD_VM_STOPPING, "powering off", 0);
		break;
	default:
		break;
	}
}

/* ---- the queue ------------------------------------------------------------------------------ */

static void dispatch_op(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, bool alongside)
{
	if (alongside)
		vm->destroying = op; /* the queue's reference moves here */
	else
		vm->active = op;
	lv_msg *m = lv_msg_new(MSG_BEGIN);
	m->op = op_ref(op);
	lv_post(v->sh, m);
	lv_job *j = lv_job_new(v, JOB_OP);
	j->op = op_ref(op);
	lv_job_push(v, j);
}

/* Finish @op later, from the main loop (never inside the caller's call). */
static void finish_later(herd_virt_libvirt *v, lv_op *op, GError *error)
{
	lv_msg *m = lv_msg_new(MSG_FINISH);
	m->op = op; /* takes the caller's reference */
	m->error = error;
	lv_post(v->sh, m);
}

static void pump(herd_virt_libvirt *v, lv_vm *vm)
{
	while (!vm->active && !vm->destroying && !g_queue_is_empty(&vm->pending)) {
		lv_op *op = g_queue_pop_head(&vm->pending);
		if (op->finished) {
			lv_op_unref(op); /* its deadline passed while it waited */
			continue;
		}
		if (!v->connected) {
			if (v->reported == REPORTED_NOTHING) {
				/* The first connection is under way: wait for it. */
				g_queue_push_head(&vm->pending, op);
				return;
			}
			finish_later(v, op, op_error(op, HERD_ERR_UNAVAILABLE,
						    "herd is not connected to libvirt"));
			continue;
		}
		dispatch_op(v, vm, op, false);
	}
}

void lv_queue_pump_all(herd_virt_libvirt *v)
{
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val))
		pump(v, val);
}

/* A destroy must work when everything else hangs (a QEMU monitor that no
 * longer answers holds libvirt's job on the domain; libvirt's destroy kills
 * the process first).  So it overtakes a running operation — but not a
 * start, whose domain may not be visible yet — and it ends the operations
 * queued before it: shutdowns and destroys then complete with it, the rest
 * fail (they were meant to happen before it). */
static void destroy_submit(herd_virt_libvirt *v, lv_vm *vm, lv_op *op)
{
	lv_op *p;
	while ((p = g_queue_pop_head(&vm->pending))) {
		if (p->finished) {
			lv_op_unref(p);
		} else if (p->kind == OP_SHUTDOWN || p->kind == OP_DESTROY) {
			g_ptr_array_add(vm->waiters, p);
		} else {
			finish_later(v, p, op_error(p, HERD_ERR_CONFLICT,
						   "a destroy was asked for before it could run"));
		}
	}
	if (!v->connected && v->reported != REPORTED_NOTHING) {
		finish_later(v, op, op_error(op, HERD_ERR_UNAVAILABLE,
					    "herd is not connected to libvirt"));
		return;
	}
	if (!v->connected || vm->destroying || (vm->active && vm->active->kind == OP_START))
		g_queue_push_tail(&vm->pending, op);
	else
		dispatch_op(v, vm, op, vm->active != NULL);
}

/* ---- deadlines and shutdown timeouts -------------------------------------------------------- */

static gboolean on_deadline(gpointer data)
{
	lv_op *op = data;
	herd_virt_libvirt *v = op->v;
	g_source_unref(op->deadline);
	op->deadline = NULL;
	lv_enter(v);
	unsigned s = (op->kind == OP_START ? START_TIMEOUT_MS : OP_TIMEOUT_MS) / 1000 +
		     (op->kind == OP_SHUTDOWN ? op->timeout_s : 0);
	g_autofree char *detail = g_strdup_printf("libvirt did not finish within %u s", s);
	lv_vm *vm = g_hash_table_lookup(v->vms, op->uuid);
	if (vm && g_ptr_array_remove(vm->waiters, op)) {
		lv_op_finish(op, op_error(op, HERD_ERR_TIMEOUT, detail));
		lv_op_unref(op);
	} else if (vm && op->settling && (vm->active == op || vm->destroying == op)) {
		/* Done in libvirt, its event still awaited: let the VM go. */
		op_complete(v, vm, op, op_error(op, HERD_ERR_TIMEOUT, detail));
	} else {
		/* Queued or running: the queue or the job drops it later. */
		lv_op_finish(op, op_error(op, HERD_ERR_TIMEOUT, detail));
	}
	lv_leave(v);
	return G_SOURCE_REMOVE;
}

static gboolean on_shutdown_wait(gpointer data)
{
	lv_op *op = data;
	herd_virt_libvirt *v = op->v;
	g_source_unref(op->wait);
	op->wait = NULL;
	lv_enter(v);
	lv_vm *vm = g_hash_table_lookup(v->vms, op->uuid);
	if (vm && !lv_state_is_down(vm->fact.state) && !forced_destroy(vm)) {
		log_info("VM %s did not shut down within %u s: destroying it", op->uuid, op->timeout_s);
		lv_op *d = op_new(v, OP_DESTROY, op->uuid, NULL, NULL);
		d->forced = true;
		d->timeout_s = op->timeout_s;
		d->deadline = lv_timer_new(v, OP_TIMEOUT_MS, on_deadline, d);
		destroy_submit(v, vm, d);
	}
	lv_leave(v);
	return G_SOURCE_REMOVE;
}

/* ---- submitting, dropping ------------------------------------------------------------------- */

void lv_queue_submit(herd_virt *base, op_kind kind, const char *uuid, const char *xml,
		     unsigned timeout_s, herd_virt_done done, gpointer user)
{
	herd_virt_libvirt *v = (herd_virt_libvirt *)base;
	lv_op *op = op_new(v, kind, uuid, done, user);
	op->timeout_s = MIN(timeout_s, SHUTDOWN_TIMEOUT_MAX_S);
	if (!uuid || !g_uuid_string_is_valid(uuid)) {
		finish_later(v, op, g_error_new(HERD_ERROR, HERD_ERR_INVALID,
						"Cannot %s VM '%s': that is not a UUID.",
						op_verbs[kind], uuid ? uuid : ""));
		return;
	}
	/* libvirt prints UUIDs in lower case; so do facts. */
	for (char *c = op->uuid; *c; c++)
		*c = g_ascii_tolower(*c);
	if (v->closed || v->doomed) {
		finish_later(v, op, op_error(op, HERD_ERR_UNAVAILABLE, "the VM driver is closed"));
		return;
	}
	if (kind == OP_START && (!xml || !*xml)) {
		finish_later(v, op, op_error(op, HERD_ERR_INVALID, "its domain XML is empty"));
		return;
	}
	op->xml = g_strdup(xml);
	unsigned deadline_ms = kind == OP_START ? START_TIMEOUT_MS : OP_TIMEOUT_MS;
	if (kind == OP_SHUTDOWN)
		deadline_ms += op->timeout_s * 1000u;
	op->deadline = lv_timer_new(v, deadline_ms, on_deadline, op);
	lv_vm *vm = lv_vm_get(v, op->uuid);
	if (kind == OP_DESTROY) {
		destroy_submit(v, vm, op);
	} else {
		g_queue_push_tail(&vm->pending, op);
		pump(v, vm);
	}
}

/* close(): every operation is dropped, with no callback. */
void lv_queue_drop_all(herd_virt_libvirt *v)
{
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val)) {
		lv_vm *vm = val;
		lv_op *op;
		while ((op = g_queue_pop_head(&vm->pending))) {
			lv_op_drop(op);
			lv_op_unref(op);
		}
		while (vm->waiters->len > 0) {
			op = g_ptr_array_steal_index(vm->waiters, 0);
			lv_op_drop(op);
			lv_op_unref(op);
		}
		lv_op *running[2] = { vm->active, vm->destroying };
		vm->active = vm->destroying = NULL;
		for (int i = 0; i < 2; i++) {
			if (running[i]) {
				lv_op_drop(running[i]);
				lv_op_unref(running[i]);
			}
		}
	}
}
