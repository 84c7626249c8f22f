/*
 * The libvirt driver's operations (start, shutdown, destroy, reboot, reset,
 * suspend, resume, migrate), on the main thread.  Operations on one VM run one at a
 * time in the order asked, from a queue per VM (pump); a destroy may
 * overtake a hung operation and ends those queued before it
 * (destroy_submit).  Each has a deadline.  One that libvirt has done waits
 * a moment for the event that brings the state it saw (op_settle), so the
 * caller sees the new fact before its callback.  A shutdown leaves the
 * queue to wait for the stop, and is forced with a destroy when its time is
 * up (on_shutdown_wait).  A migration is polled for its progress while it
 * runs, and aborted when its timeout passes (on_migrate_poll, on_cancel).
 */
#define G_LOG_DOMAIN "virt"
#include "virt/libvirt_priv.h"

#include "common/log.h"

#include <string.h>

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
/* A migration's timeout is the caller's (a day at most, as a shutdown's).
 * After it libvirt is asked to abort, again every ABORT_RETRY_MS while it
 * cannot yet; the caller hears of it MIGRATE_GRACE_S later at the latest. */
#define MIGRATE_TIMEOUT_MAX_S (24u * 3600u)
#define ABORT_RETRY_MS 1000
#define MIGRATE_GRACE_S 60
/* How often a running migration's progress is asked for. */
#define PROGRESS_MS 1000

static const char *const op_verbs[] = {
	"start", "shut down", "destroy", "reboot", "reset", "suspend", "resume", "migrate",
	"change the medium of",
	"grow a disk of",
};

static void pump(herd_virt_libvirt *v, lv_vm *vm);
static void destroy_submit(herd_virt_libvirt *v, lv_vm *vm, lv_op *op);
static void op_complete(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, GError *error);
static gboolean on_shutdown_wait(gpointer data);

/* ---- operations, refcounting ---------------------------------------------------------------- */

static GError *op_error(const lv_op *op, herd_error_code code, const char *detail)
{
	if (op->kind == OP_MIGRATE && op->address)
		return g_error_new(HERD_ERROR, code, "Cannot migrate VM %s to node %s: %s.", op->uuid,
				   op->to ? op->to : op->address, detail);
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
	g_free(op->to);
	g_free(op->address);
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
	lv_timer_cancel(&op->poll);
	lv_timer_cancel(&op->cancel);
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
		.migrating = vm->active && vm->active->kind == OP_MIGRATE,
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

/* A migration's call returned: the guest runs there (done once the cache
 * says it stopped here), or it failed, was cancelled at its timeout, and
 * still runs here. */
static void migrate_done(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, const lv_job *j)
{
	lv_timer_cancel(&op->poll);
	lv_timer_cancel(&op->cancel);
	if (!j->failed) {
		log_info("VM %s was migrated to node %s", op->uuid, op->to ? op->to : op->address);
		op_settle(v, vm, op, j, "migrated away");
		return;
	}
	/* A migration that failed is no I/O error of herd's, but of the
	 * hypervisors' or the network between them. */
	herd_error_code code = j->err_code == HERD_ERR_INTERNAL ? HERD_ERR_IO : j->err_code;
	GError *err;
	const char *why;
	if (op->cancelled) {
		g_autofree char *detail = g_strdup_printf(
			"it was cancelled by an operator; it runs on here (%s)", j->err_detail);
		err = op_error(op, HERD_ERR_CONFLICT, detail);
		why = "migration cancelled by an operator";
	} else if (op->cancelling) {
		g_autofree char *detail = g_strdup_printf(
			"it did not finish within its timeout of %u s and was cancelled; it runs on "
			"here (%s)", op->timeout_s, j->err_detail);
		err = op_error(op, HERD_ERR_TIMEOUT, detail);
		why = "migration cancelled at its timeout";
	} else {
		err = op_error(op, code, j->err_detail);
		why = "migration failed";
	}
	if (j->observed) {
		/* As it is now, with herd's migration over. */
		lv_vm_context ctx = lv_vm_context_of(vm);
		ctx.migrating = false;
		char reason[64];
		herd_vm_state st = HERD_VM_STOPPED;
		if (j->found)
			st = lv_map_domain_state(&ctx, j->state, j->reason, reason, sizeof(reason));
		else
			g_strlcpy(reason, "not running", sizeof(reason));
		if (st == HERD_VM_RUNNING || st == HERD_VM_PAUSED)
			g_strlcpy(reason, why, sizeof(reason));
		lv_set_state(v, vm, st, reason, 0);
	}
	/* Unobserved (the connection failed): it stays MIGRATING until the
	 * next list says what it is. */
	op_complete(v, vm, op, err);
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
	case OP_MIGRATE:
		g_clear_error(&err);
		migrate_done(v, vm, op, j);
		return;
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
	case OP_CHANGE_MEDIA:
		/* No state comes of it: done when libvirt is. */
		break;
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
	case OP_BLOCK_RESIZE:
		/* No lifecycle event to wait for: done when libvirt is. */
		break;
	}
	op_complete(v, vm, op, err);
}

/* ---- a migration while it runs --------------------------------------------------------------- */

static gboolean on_migrate_poll(gpointer data)
{
	lv_op *op = data;
	herd_virt_libvirt *v = op->v;
	lv_vm *vm = g_hash_table_lookup(v->vms, op->uuid);
	if (op->finished || !vm || vm->active != op) {
		g_source_unref(op->poll);
		op->poll = NULL;
		return G_SOURCE_REMOVE;
	}
	if (!op->polling && v->connected) {
		/* One question at a time: a busy libvirtd gets no second. */
		op->polling = true;
		lv_job *j = lv_job_new(v, JOB_PROGRESS);
		j->op = op_ref(op);
		lv_job_push(v, j);
	}
	return G_SOURCE_CONTINUE;
}

void lv_queue_progress_done(herd_virt_libvirt *v, lv_job *j)
{
	lv_op *op = j->op;
	op->polling = false;
	lv_vm *vm = g_hash_table_lookup(v->vms, op->uuid);
	if (!vm || vm->active != op)
		return; /* over meanwhile */
	if (j->failed) {
		log_debug("no progress of the migration of VM %s: %s", op->uuid, j->err_detail);
		return;
	}
	if (j->have_progress) {
		int64_t started_ms = op->progress.started_ms;
		op->progress = j->progress;
		op->progress.started_ms = started_ms;
	}
}

static void abort_migration(herd_virt_libvirt *v, lv_op *op)
{
	lv_job *j = lv_job_new(v, JOB_ABORT);
	j->op = op_ref(op);
	lv_job_push(v, j);
}

/* Its timeout passed (or an abort could not be done yet): ask libvirt to
 * abort it, from a worker of the pool, while the migration's own call
 * stays blocked in its thread until libvirt ends it. */
static gboolean on_cancel(gpointer data)
{
	lv_op *op = data;
	herd_virt_libvirt *v = op->v;
	g_source_unref(op->cancel);
	op->cancel = NULL;
	lv_vm *vm = g_hash_table_lookup(v->vms, op->uuid);
	if (op->finished || !vm || vm->active != op)
		return G_SOURCE_REMOVE;
	if (!op->cancelling && !op->cancelled) {
		op->cancelling = true;
		log_info("VM %s: the migration to node %s has not finished within its timeout of "
			 "%u s; cancelling it", op->uuid, op->to ? op->to : op->address, op->timeout_s);
	}
	abort_migration(v, op);
	return G_SOURCE_REMOVE;
}

void lv_queue_abort_done(herd_virt_libvirt *v, lv_job *j)
{
	lv_op *op = j->op;
	lv_vm *vm = g_hash_table_lookup(v->vms, op->uuid);
	if (!j->failed || op->finished || !vm || vm->active != op)
		return;
	/* E.g. libvirt had not begun its job yet, or is in a phase that
	 * cannot be aborted: again, until the migration ends or its grace
	 * (the deadline) is over. */
	log_info("cannot cancel the migration of VM %s yet (%s); trying again", op->uuid,
		 j->err_detail);
	if (!op->cancel)
		op->cancel = lv_timer_new(v, ABORT_RETRY_MS, on_cancel, op);
}

static void migrate_begin(herd_virt_libvirt *v, lv_vm *vm, lv_op *op)
{
	herd_vm_state s = vm->fact.state;
	const char *to = op->to ? op->to : op->address;
	if (s == HERD_VM_RUNNING || s == HERD_VM_PAUSED) {
		g_autofree char *reason = g_strdup_printf("migrating to node %s", to);
		lv_set_state(v, vm, HERD_VM_MIGRATING, reason, 0);
	}
	if (op->finished)
		return; /* its deadline passed in the queue */
	op->progress.started_ms = lv_now_ms();
	g_autofree char *ports = op->port_min ? g_strdup_printf(", memory to a port in %u-%u",
								 op->port_min, op->port_max)
					      : g_strdup("");
	log_info("migrating VM %s to node %s (%s%s%s), cancelled after %u s", op->uuid, to,
		 op->address, op->tls ? ", encrypted" : "", ports, op->timeout_s);
	op->poll = lv_timer_new(v, PROGRESS_MS, on_migrate_poll, op);
	op->cancel = lv_timer_new(v, op->timeout_s * 1000u, on_cancel, op);
}

bool lv_queue_migrate_progress(herd_virt_libvirt *v, const char *uuid,
			       herd_migrate_progress *out)
{
	if (!uuid || !g_uuid_string_is_valid(uuid))
		return false;
	g_autofree char *key = g_ascii_strdown(uuid, -1);
	lv_vm *vm = g_hash_table_lookup(v->vms, key);
	const lv_op *op = vm ? vm->active : NULL;
	if (!op || op->kind != OP_MIGRATE || op->progress.started_ms == 0)
		return false;
	*out = op->progress;
	if (out->elapsed_ms == 0)
		out->elapsed_ms = (uint64_t)MAX(lv_now_ms() - out->started_ms, 0);
	return true;
}

bool lv_queue_migrate_cancel(herd_virt_libvirt *v, const char *uuid)
{
	if (!uuid || !g_uuid_string_is_valid(uuid))
		return false;
	g_autofree char *key = g_ascii_strdown(uuid, -1);
	lv_vm *vm = g_hash_table_lookup(v->vms, key);
	lv_op *op = vm ? vm->active : NULL;
	if (!op || op->kind != OP_MIGRATE || op->finished)
		return false;
	if (!op->cancelled) {
		op->cancelled = true;
		log_info("VM %s: cancelling the migration to node %s, as an operator asked", op->uuid,
			 op->to ? op->to : op->address);
	}
	/* The abort's retries (lv_queue_abort_done) run on its cancel timer. */
	lv_timer_cancel(&op->cancel);
	abort_migration(v, op);
	return true;
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
		    s == HERD_VM_CRASHED || s == HERD_VM_MIGRATING)
			lv_set_state(v, vm, HERD_VM_STOPPING, "powering off", 0);
		break;
	case OP_MIGRATE:
		migrate_begin(v, vm, op);
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
	if (op->kind == OP_MIGRATE)
		j->uri = g_strdup(v->uri); /* its own connection */
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
	if (op->kind == OP_MIGRATE) {
		/* Still MIGRATING: it may yet end here or there. */
		g_free(detail);
		detail = g_strdup_printf("libvirt did not end it within %u s of its timeout of "
					 "%u s; where the VM runs is not known yet",
					 MIGRATE_GRACE_S, op->timeout_s);
	}
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

/* Is @address a host name or an IP address (it goes into URIs)? */
static bool valid_address(const char *address)
{
	if (!address || !*address || strlen(address) > 253)
		return false;
	for (const char *c = address; *c; c++)
		if (!g_ascii_isalnum(*c) && *c != '.' && *c != '-' && *c != ':')
			return false;
	return true;
}

/* A migration's parameters, checked and copied into @op; false (and @op
 * finished with the error) if they are bad. */
static bool migrate_params(herd_virt_libvirt *v, lv_op *op, const herd_migrate_params *mp)
{
	const char *bad = NULL;
	g_autofree char *msg = NULL;
	if (!mp)
		bad = "no destination was given";
	else if (!valid_address(mp->address))
		bad = msg = g_strdup_printf("its destination's address '%s' is not a host name or an "
					    "IP address", mp->address ? mp->address : "");
	else if (mp->timeout_s == 0)
		bad = "a migration needs a timeout, and 0 s was given";
	else if (mp->timeout_s > MIGRATE_TIMEOUT_MAX_S)
		bad = msg = g_strdup_printf("its timeout of %u s is longer than a day", mp->timeout_s);
	else if (mp->port_min > mp->port_max || mp->port_max > 65535)
		bad = msg = g_strdup_printf("the port range %u-%u is not one", mp->port_min,
					    mp->port_max);
	if (bad) {
		if (mp && valid_address(mp->address)) {
			op->to = g_strdup(mp->to);
			op->address = g_strdup(mp->address);
		}
		finish_later(v, op, op_error(op, HERD_ERR_INVALID, bad));
		return false;
	}
	op->to = g_strdup(mp->to && *mp->to ? mp->to : NULL);
	op->address = g_strdup(mp->address);
	op->tls = mp->tls;
	op->bandwidth_mib_s = mp->bandwidth_mib_s;
	op->port_min = mp->port_min;
	op->port_max = mp->port_max;
	return true;
}

/* Check @op, made by op_new() for @uuid (as the caller gave it), and queue
 * it with @xml (or its disk's path) and a migration's @mp. */
static void queue_op(herd_virt_libvirt *v, lv_op *op, const char *uuid, const char *xml,
		     const herd_migrate_params *mp)
{
	op_kind kind = op->kind;
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
	if ((kind == OP_START || kind == OP_CHANGE_MEDIA) && (!xml || !*xml)) {
		finish_later(v, op, op_error(op, HERD_ERR_INVALID, "its XML is empty"));
		return;
	}
	if (kind == OP_MIGRATE && !migrate_params(v, op, mp))
		return;
	op->xml = g_strdup(xml);
	unsigned deadline_ms = kind == OP_START ? START_TIMEOUT_MS : OP_TIMEOUT_MS;
	if (kind == OP_SHUTDOWN)
		deadline_ms += op->timeout_s * 1000u;
	else if (kind == OP_MIGRATE)
		/* Its time in the queue counts too; its timeout from when it
		 * begins (migrate_begin). */
		deadline_ms += (op->timeout_s + MIGRATE_GRACE_S) * 1000u;
	op->deadline = lv_timer_new(v, deadline_ms, on_deadline, op);
	lv_vm *vm = lv_vm_get(v, op->uuid);
	if (kind == OP_DESTROY) {
		destroy_submit(v, vm, op);
	} else {
		g_queue_push_tail(&vm->pending, op);
		pump(v, vm);
	}
}

void lv_queue_submit(herd_virt *base, op_kind kind, const char *uuid, const char *xml,
		     unsigned timeout_s, const herd_migrate_params *mp, herd_virt_done done,
		     gpointer user)
{
	herd_virt_libvirt *v = (herd_virt_libvirt *)base;
	lv_op *op = op_new(v, kind, uuid, done, user);
	op->timeout_s = MIN(timeout_s, kind == OP_MIGRATE ? MIGRATE_TIMEOUT_MAX_S
							  : SHUTDOWN_TIMEOUT_MAX_S);
	queue_op(v, op, uuid, xml, mp);
}

void lv_queue_submit_block_resize(herd_virt *base, const char *uuid, const char *path,
				  uint64_t size, herd_virt_done done, gpointer user)
{
	herd_virt_libvirt *v = (herd_virt_libvirt *)base;
	lv_op *op = op_new(v, OP_BLOCK_RESIZE, uuid, done, user);
	op->size = size;
	if (!path || !*path) {
		finish_later(v, op, op_error(op, HERD_ERR_INVALID, "no disk was named"));
		return;
	}
	queue_op(v, op, uuid, path, NULL);
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
