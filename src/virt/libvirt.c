/*
 * The libvirt VM driver (see driver.h): herd's hands on its node's libvirtd.
 *
 * Threads.  Every libvirt call is an RPC to libvirtd that may take 150 ms
 * (creating a domain) or forever (libvirtd stuck), so none runs on herdd's
 * main loop: operations run as jobs in a small thread pool, connecting,
 * pings and lists on one control thread (each with its own connection, see
 * lv_conn), and everything a job learns comes back through one ordered inbox
 * that the main loop drains.
 * Only the main thread touches the cache of facts, the per-VM operation
 * queues and the user's callbacks.  Operations on one VM run one at a time
 * in the order asked (a destroy may overtake a hung operation, see
 * destroy_submit); different VMs run in parallel.
 *
 * Events.  libvirt's lifecycle events run on GLib's default main context
 * through libvirt-glib's gvir_event_register(): the documented way to get a
 * GLib event loop (libvirt's own virEventRegisterDefaultImpl() happens to be
 * GLib-based since 6.1, but libvirt says applications must not rely on it).
 * Events keep the cache current; a cheap full list every few seconds, and
 * after every (re)connect, catches whatever an event did not say.
 *
 * Connection.  A close callback (libvirtd gone), a failed call on a dead
 * connection, or a ping left unanswered for HUNG_MS (libvirtd stuck) marks
 * it lost; the driver reports that, reconnects with a growing pause, and on
 * return reports every VM again.  Not libvirt's client keepalive: libvirt
 * 9.0's client crashes when keepalive closes a connection on which several
 * threads wait in calls (tests/cluster/test_virt.py provokes exactly that).
 * A stuck connection is abandoned instead, with no further call on it; the
 * threads in it return when libvirtd answers or dies.
 *
 * Bounds.  Every operation has a deadline after which its caller gets a
 * timeout error; close() waits at most a second for jobs still running.
 *
 * Files.  This one holds everything on the main thread: the herd_virt
 * vtable, the constructor and the destructor, the connection, the cache of
 * facts and the operations.  libvirt_worker.c holds what runs off it (the
 * threads, libvirt's callbacks, the inbox), libvirt_state.c the pure
 * tables, and libvirt_priv.h their shared types.
 */
#define G_LOG_DOMAIN "virt"
#include "virt/libvirt_priv.h"

#include "common/log.h"

#include <string.h>

#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/virterror.h>

/* Enough for 20 VMs starting after a failover: libvirtd serves at most 5
 * calls of one client at once (max_client_requests), the rest queue there. */
#define WORKER_THREADS 8
#define CLOSE_WAIT_MS 1000

/* herd_vm_state_name() lives in ha/facts.c, with the pure core that the
 * simulator links without libvirt. */

static const herd_virt_ops lv_ops;

static void destroy_driver(herd_virt_libvirt *v);

static void silent_error(void *data, virErrorPtr err)
{
}

#define TICK_MS 1000
#define RESYNC_INTERVAL_MS 5000
#define PING_INTERVAL_MS 2000
/* A libvirtd that leaves a ping (or a list) unanswered this long is lost. */
#define HUNG_MS 6000
#define RECONNECT_FIRST_MS 100
#define RECONNECT_MAX_MS 2000
/* A connection attempt that has not finished by then is reported as lost. */
#define CONNECT_SLOW_MS 3000

static void connect_now(herd_virt_libvirt *v);

static void report_connection(herd_virt_libvirt *v, bool lost)
{
	if (lost && v->reported == REPORTED_DOWN)
		return;
	bool first = v->reported == REPORTED_NOTHING;
	v->reported = lost ? REPORTED_DOWN : REPORTED_UP;
	if (v->base.cb.connection && !v->closed)
		v->base.cb.connection(v->base.user, lost);
	/* Operations that waited for a first connection fail now. */
	if (lost && first)
		lv_queue_pump_all(v);
}

static gboolean on_retry(gpointer data)
{
	herd_virt_libvirt *v = data;
	g_source_unref(v->retry);
	v->retry = NULL;
	connect_now(v);
	return G_SOURCE_REMOVE;
}

static gboolean on_slow_connect(gpointer data)
{
	herd_virt_libvirt *v = data;
	g_source_unref(v->slow);
	v->slow = NULL;
	lv_enter(v);
	log_warn("libvirt at %s has not answered a connection attempt for %u s", v->uri,
		 CONNECT_SLOW_MS / 1000);
	report_connection(v, true);
	lv_leave(v);
	return G_SOURCE_REMOVE;
}

static void connect_now(herd_virt_libvirt *v)
{
	if (v->closed || v->connecting || v->connected)
		return;
	v->gen++;
	v->connecting = true;
	v->lost_early = false;
	lv_job *j = lv_job_new(v, JOB_CONNECT);
	j->uri = g_strdup(v->uri);
	j->old_conn = v->old_conn;
	v->old_conn = NULL;
	/* Only libvirt's system QEMU driver keeps pid files where we look. */
	j->want_start_time = strcmp(v->uri, "qemu:///system") == 0;
	lv_timer_cancel(&v->slow);
	v->slow = lv_timer_new(v, CONNECT_SLOW_MS, on_slow_connect, v);
	lv_job_push(v, j);
}

static void schedule_connect(herd_virt_libvirt *v, unsigned delay_ms)
{
	if (v->closed || v->retry)
		return;
	v->retry = lv_timer_new(v, delay_ms, on_retry, v);
}

void lv_conn_lost(herd_virt_libvirt *v, const char *why)
{
	if (!v->connected)
		return;
	v->connected = false;
	g_mutex_lock(&v->sh->lock);
	v->old_conn = v->sh->conn;
	v->sh->conn = NULL;
	g_mutex_unlock(&v->sh->lock);
	if (v->old_conn)
		v->old_conn->dead = true;
	/* Pings and lists still out belong to the abandoned connection. */
	v->ping_running = v->resync_running = false;
	log_warn("lost the connection to libvirt at %s: %s", v->uri, why);
	report_connection(v, true);
	schedule_connect(v, v->backoff_ms);
}

/* Once a second: a libvirtd that sits on a ping or a list is lost; else
 * ping it every PING_INTERVAL_MS and list every RESYNC_INTERVAL_MS. */
static gboolean on_tick(gpointer data)
{
	herd_virt_libvirt *v = data;
	if (!v->connected || v->closed)
		return G_SOURCE_CONTINUE;
	gint64 now = g_get_monotonic_time();
	if ((v->ping_running && now - v->ping_at_us > HUNG_MS * 1000) ||
	    (v->resync_running && now - v->resync_at_us > HUNG_MS * 1000)) {
		lv_enter(v);
		g_autofree char *why = g_strdup_printf("libvirtd has not answered for %u s",
						       HUNG_MS / 1000);
		lv_conn_lost(v, why);
		lv_leave(v);
		return G_SOURCE_CONTINUE;
	}
	if (!v->ping_running && now - v->ping_at_us >= PING_INTERVAL_MS * 1000) {
		v->ping_running = true;
		v->ping_at_us = now;
		lv_job_push(v, lv_job_new(v, JOB_PING));
	}
	if (!v->resync_running && now - v->resync_at_us >= RESYNC_INTERVAL_MS * 1000) {
		v->resync_running = true;
		v->resync_at_us = now;
		lv_job_push(v, lv_job_new(v, JOB_RESYNC));
	}
	return G_SOURCE_CONTINUE;
}

void lv_conn_start(herd_virt_libvirt *v)
{
	v->backoff_ms = RECONNECT_FIRST_MS;
	v->tick = lv_timer_new(v, TICK_MS, on_tick, v);
	connect_now(v);
}

void lv_conn_closed(herd_virt_libvirt *v, unsigned gen, const char *why)
{
	if (gen != v->gen)
		return;
	if (v->connecting)
		v->lost_early = true;
	else
		lv_conn_lost(v, why);
}

void lv_conn_connect_done(herd_virt_libvirt *v, lv_job *j)
{
	v->connecting = false;
	lv_timer_cancel(&v->slow);
	if (j->failed) {
		if (v->failures++ == 0)
			log_warn("cannot connect to libvirt at %s: %s; retrying", v->uri, j->err_detail);
		else
			log_debug("cannot connect to libvirt at %s: %s", v->uri, j->err_detail);
		report_connection(v, true);
		v->backoff_ms = MIN(v->backoff_ms * 2, RECONNECT_MAX_MS);
		schedule_connect(v, v->backoff_ms);
		return;
	}
	v->connected = true;
	if (v->lost_early) {
		lv_conn_lost(v, "libvirtd closed the connection while herd connected");
		return;
	}
	log_info("connected to libvirt at %s (%u domain(s))", v->uri, j->domains->len);
	v->failures = 0;
	v->backoff_ms = RECONNECT_FIRST_MS;
	v->ping_at_us = v->resync_at_us = g_get_monotonic_time();
	v->have_res = j->have_res;
	v->res = j->res;
	bool again = v->reported != REPORTED_NOTHING;
	report_connection(v, false);
	uint64_t before = v->fact_serial;
	lv_cache_apply_list(v, j->domains, j->serial, again);
	/* On return, every VM's fact again (the API promises it), once. */
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val))
		if (((lv_vm *)val)->emitted <= before)
			lv_emit_fact(v, val);
	/* Operations asked for before the first connection run now. */
	lv_queue_pump_all(v);
}

void lv_conn_ping_done(herd_virt_libvirt *v, lv_job *j)
{
	if (j->gen != v->gen || !v->connected)
		return;
	v->ping_running = false;
	if (j->failed && j->lost)
		lv_conn_lost(v, j->err_detail);
}

void lv_conn_resync_done(herd_virt_libvirt *v, lv_job *j)
{
	if (j->gen != v->gen || !v->connected)
		return;
	v->resync_running = false;
	if (j->failed) {
		if (j->lost)
			lv_conn_lost(v, j->err_detail);
		else
			log_warn("cannot list libvirt's domains: %s", j->err_detail);
		return;
	}
	if (j->have_res) {
		v->have_res = true;
		v->res = j->res;
	}
	lv_cache_apply_list(v, j->domains, j->serial, false);
}

/* A full list does not override a VM an event touched this recently: that
 * event's successors may still be on their way. */
#define LIST_QUIET_US (1000 * 1000)
/* A stopped VM that libvirt no longer lists is forgotten after this. */
#define FORGET_STOPPED_MS (15 * 60 * 1000)

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

/* Deadlines of operations, queueing included.  A start may legitimately
 * take long (large guests, memory preallocation); libvirt gives up on a
 * busy domain after 30 s by itself. */
#define START_TIMEOUT_MS 120000
#define OP_TIMEOUT_MS 60000
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
	op->timeout_s = timeout_s;
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
		deadline_ms += MIN(timeout_s, 24u * 3600u) * 1000u;
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

/* ---- main-loop helpers ---- */

void lv_enter(herd_virt_libvirt *v)
{
	v->depth++;
}

bool lv_leave(herd_virt_libvirt *v)
{
	if (--v->depth == 0 && v->doomed) {
		destroy_driver(v);
		return true;
	}
	return false;
}

GSource *lv_timer_new(herd_virt_libvirt *v, unsigned ms, GSourceFunc fn, gpointer data)
{
	GSource *s = g_timeout_source_new(ms);
	g_source_set_callback(s, fn, data, NULL);
	g_source_attach(s, v->ctx);
	return s;
}

void lv_timer_cancel(GSource **s)
{
	if (*s) {
		g_source_destroy(*s);
		g_source_unref(*s);
		*s = NULL;
	}
}

/* ---- the inbox, on the main thread ---------------------------------------------------------- */

/* One message from the threads or libvirt's callbacks, to the part it is for. */
static void handle(herd_virt_libvirt *v, lv_msg *m)
{
	switch (m->kind) {
	case MSG_EVENT:
		lv_cache_event(v, m);
		break;
	case MSG_LOST:
		lv_conn_closed(v, m->gen, m->text);
		break;
	case MSG_BEGIN:
		lv_queue_op_begin(v, m->op);
		break;
	case MSG_FINISH:
		lv_op_finish(m->op, m->error);
		m->error = NULL;
		break;
	case MSG_JOB:
		switch (m->job->kind) {
		case JOB_CONNECT:
			lv_conn_connect_done(v, m->job);
			break;
		case JOB_RESYNC:
			lv_conn_resync_done(v, m->job);
			break;
		case JOB_PING:
			lv_conn_ping_done(v, m->job);
			break;
		case JOB_OP:
			lv_queue_op_done(v, m->job);
			break;
		case JOB_DISCONNECT:
			break;
		}
		break;
	}
}

static gboolean drain(gpointer data)
{
	herd_virt_libvirt *v = data;
	lv_enter(v);
	while (!v->closed) {
		g_mutex_lock(&v->sh->lock);
		lv_msg *m = g_queue_pop_head(&v->sh->inbox);
		g_mutex_unlock(&v->sh->lock);
		if (!m)
			break;
		handle(v, m);
		lv_msg_free(m);
	}
	lv_leave(v);
	return G_SOURCE_CONTINUE;
}

/* ---- the vtable ----------------------------------------------------------------------------- */

static void lv_start(herd_virt *v, const char *uuid, const char *xml, herd_virt_done done,
		     gpointer user)
{
	lv_queue_submit(v, OP_START, uuid, xml, 0, done, user);
}

static void lv_shutdown(herd_virt *v, const char *uuid, unsigned timeout_s, herd_virt_done done,
			gpointer user)
{
	lv_queue_submit(v, OP_SHUTDOWN, uuid, NULL, timeout_s, done, user);
}

static void lv_destroy(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_DESTROY, uuid, NULL, 0, done, user);
}

static void lv_reboot(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_REBOOT, uuid, NULL, 0, done, user);
}

static void lv_reset(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_RESET, uuid, NULL, 0, done, user);
}

static void lv_suspend(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_SUSPEND, uuid, NULL, 0, done, user);
}

static void lv_resume(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_RESUME, uuid, NULL, 0, done, user);
}

static GArray *lv_facts(herd_virt *base)
{
	herd_virt_libvirt *v = (herd_virt_libvirt *)base;
	GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(herd_vm_fact), g_hash_table_size(v->vms));
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val))
		g_array_append_val(out, ((lv_vm *)val)->fact);
	return out;
}

static bool lv_resources(herd_virt *base, herd_node_resources *out)
{
	herd_virt_libvirt *v = (herd_virt_libvirt *)base;
	if (!v->connected || !v->have_res)
		return false;
	*out = v->res;
	return true;
}

static bool lv_open(herd_virt *base, GError **error)
{
	herd_virt_libvirt *v = (herd_virt_libvirt *)base;
	if (v->closed) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "The libvirt driver for %s was closed; make a new one.", v->uri);
		return false;
	}
	if (v->opened)
		return true;
	v->opened = true;
	lv_conn_start(v);
	return true;
}

/* Drops every pending operation without calling its callback (the caller is
 * going away: herd_ha_free() closes the driver after stopping its own
 * timers, and a completion would schedule new ones), hands the connection to
 * a job for closing, and waits at most CLOSE_WAIT_MS for jobs still running.
 * No callback runs during or after it. */
static void lv_close(herd_virt *base)
{
	herd_virt_libvirt *v = (herd_virt_libvirt *)base;
	if (v->closed)
		return;
	lv_timer_cancel(&v->retry);
	lv_timer_cancel(&v->tick);
	lv_timer_cancel(&v->slow);
	v->closed = true;
	GQueue inbox = G_QUEUE_INIT;
	g_mutex_lock(&v->sh->lock);
	inbox = v->sh->inbox;
	g_queue_init(&v->sh->inbox);
	g_mutex_unlock(&v->sh->lock);
	lv_msg *m;
	while ((m = g_queue_pop_head(&inbox))) {
		if (m->op)
			lv_op_drop(m->op);
		lv_msg_free(m);
	}
	lv_queue_drop_all(v);
	g_mutex_lock(&v->sh->lock);
	v->sh->closing = true;
	lv_conn *conn = v->sh->conn;
	v->sh->conn = NULL;
	g_mutex_unlock(&v->sh->lock);
	if (conn) {
		lv_job *j = lv_job_new(v, JOB_DISCONNECT);
		j->old_conn = conn;
		lv_job_push(v, j);
	}
	if (v->old_conn) {
		lv_job *j = lv_job_new(v, JOB_DISCONNECT);
		j->old_conn = v->old_conn;
		v->old_conn = NULL;
		lv_job_push(v, j);
	}
	gint64 until = g_get_monotonic_time() + CLOSE_WAIT_MS * G_TIME_SPAN_MILLISECOND;
	g_mutex_lock(&v->sh->lock);
	while (v->sh->jobs > 0)
		if (!g_cond_wait_until(&v->sh->idle, &v->sh->lock, until))
			break;
	unsigned left = v->sh->jobs;
	GSource *wake = v->sh->wake;
	g_mutex_unlock(&v->sh->lock);
	if (left > 0)
		log_warn("closing the libvirt driver with %u libvirt call(s) still under way", left);
	g_source_destroy(wake);
	v->connected = false;
}

/* ---- lifetime ------------------------------------------------------------------------------- */

static void destroy_driver(herd_virt_libvirt *v)
{
	/* Jobs still queued or running finish on their own (quickly: the
	 * shared part says closing, and there is no connection left to use)
	 * and only touch the shared part, which they keep alive.  Not
	 * immediate=TRUE: GLib 2.74 then hands its internal wake-up marker to
	 * an item free function as if it were a job. */
	g_thread_pool_free(v->pool, FALSE, FALSE);
	g_thread_pool_free(v->control, FALSE, FALSE);
	g_hash_table_destroy(v->vms);
	lv_shared_unref(v->sh);
	g_main_context_unref(v->ctx);
	g_free(v->uri);
	g_free(v);
}

void herd_virt_free(herd_virt *base)
{
	if (!base)
		return;
	g_return_if_fail(base->ops == &lv_ops);
	herd_virt_libvirt *v = (herd_virt_libvirt *)base;
	if (v->doomed)
		return;
	lv_close(base);
	if (v->depth > 0) {
		v->doomed = true; /* freed when the callback returns */
		return;
	}
	destroy_driver(v);
}

static const herd_virt_ops lv_ops = {
	.open = lv_open,
	.close = lv_close,
	.start = lv_start,
	.shutdown = lv_shutdown,
	.destroy = lv_destroy,
	.reboot = lv_reboot,
	.reset = lv_reset,
	.suspend = lv_suspend,
	.resume = lv_resume,
	.facts = lv_facts,
	.resources = lv_resources,
};

static gpointer init_libvirt_once(gpointer unused)
{
	if (virInitialize() < 0)
		g_error("libvirt cannot initialise");
	/* Errors are reported once, by herd; libvirt's default handler would
	 * print each to stderr as well. */
	virSetErrorFunc(NULL, silent_error);
	gvir_event_register();
	return NULL;
}

herd_virt *herd_virt_libvirt_new(const char *uri, const herd_virt_callbacks *cb, gpointer user)
{
	static GOnce once = G_ONCE_INIT;
	g_once(&once, init_libvirt_once, NULL);

	herd_virt_libvirt *v = g_new0(herd_virt_libvirt, 1);
	v->base.ops = &lv_ops;
	if (cb)
		v->base.cb = *cb;
	v->base.user = user;
	v->uri = g_strdup(uri && *uri ? uri : "qemu:///system");
	v->ctx = g_main_context_ref_thread_default();
	if (v->ctx != g_main_context_default())
		log_warn("the libvirt driver runs on a main context that is not the default one; "
			 "libvirt's events arrive only while the default one runs");
	v->reported = REPORTED_NOTHING;
	v->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, lv_vm_free);
	v->sh = lv_shared_new(v->ctx, drain, v);

	v->pool = g_thread_pool_new(lv_worker_run, NULL, WORKER_THREADS, FALSE, NULL);
	v->control = g_thread_pool_new(lv_worker_run, NULL, 1, FALSE, NULL);
	return &v->base;
}
