/*
 * Everything of the libvirt driver that runs off the main thread (see
 * libvirt_priv.h for the rest): the jobs that call libvirt's blocking API on
 * the thread pools (connect, ping, list, operate on a domain, close a
 * connection), libvirt's own callbacks (lifecycle events, connection
 * closed), and the inbox through which all of them tell the main thread
 * what they learnt.  Code here touches only the shared part (lv_shared,
 * under its lock), its own job, and the fields of an operation set before
 * it was queued: never the driver, its VMs or the user's callbacks.  The
 * exceptions run on the main thread, and say so: the shared part's
 * constructor, and the two functions that hand a job to the threads.
 */
#define G_LOG_DOMAIN "virt"
#include "common/loadavg.h"
#include "virt/libvirt_priv.h"

#include <libvirt/virterror.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void conn_close(lv_conn *c);

/* ---- the shared part and the inbox ---------------------------------------------------------- */

static gboolean wake_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
	/* Unset before draining: a message posted meanwhile sets it again. */
	g_source_set_ready_time(s, -1);
	return cb(data);
}

static GSourceFuncs wake_funcs = {
	.dispatch = wake_dispatch,
};

/* Main thread. */
lv_shared *lv_shared_new(GMainContext *ctx, GSourceFunc drain, gpointer data)
{
	lv_shared *sh = g_new0(lv_shared, 1);
	g_atomic_ref_count_init(&sh->refs);
	g_mutex_init(&sh->lock);
	g_cond_init(&sh->idle);
	g_queue_init(&sh->inbox);
	sh->wake = g_source_new(&wake_funcs, sizeof(GSource));
	g_source_set_callback(sh->wake, drain, data, NULL);
	g_source_set_name(sh->wake, "herd libvirt inbox");
	g_source_attach(sh->wake, ctx);
	return sh;
}

static lv_shared *shared_ref(lv_shared *sh)
{
	g_atomic_ref_count_inc(&sh->refs);
	return sh;
}

void lv_shared_unref(lv_shared *sh)
{
	if (!sh || !g_atomic_ref_count_dec(&sh->refs))
		return;
	lv_msg *m;
	while ((m = g_queue_pop_head(&sh->inbox)))
		lv_msg_free(m);
	/* close() handed a live connection to a job; this is only a fallback
	 * for a connect that finished after the last job was waited for. */
	if (sh->conn)
		conn_close(sh->conn);
	if (sh->wake) {
		g_source_destroy(sh->wake);
		g_source_unref(sh->wake);
	}
	g_mutex_clear(&sh->lock);
	g_cond_clear(&sh->idle);
	g_free(sh);
}

void lv_post(lv_shared *sh, lv_msg *m)
{
	g_mutex_lock(&sh->lock);
	g_queue_push_tail(&sh->inbox, m);
	GSource *wake = sh->wake ? g_source_ref(sh->wake) : NULL;
	g_mutex_unlock(&sh->lock);
	if (wake) {
		/* Thread-safe; a no-op once the source is destroyed. */
		g_source_set_ready_time(wake, 0);
		g_source_unref(wake);
	}
}

static void job_free(lv_job *j)
{
	if (!j)
		return;
	lv_op_unref(j->op);
	g_free(j->uri);
	g_free(j->err_detail);
	if (j->domains)
		g_array_unref(j->domains);
	if (j->sh) {
		g_mutex_lock(&j->sh->lock);
		if (j->sh->jobs > 0 && --j->sh->jobs == 0)
			g_cond_broadcast(&j->sh->idle);
		g_mutex_unlock(&j->sh->lock);
		lv_shared_unref(j->sh);
	}
	g_free(j);
}

void lv_msg_free(lv_msg *m)
{
	if (!m)
		return;
	g_free(m->text);
	job_free(m->job);
	lv_op_unref(m->op);
	if (m->error)
		g_error_free(m->error);
	g_free(m);
}

lv_msg *lv_msg_new(msg_kind kind)
{
	lv_msg *m = g_new0(lv_msg, 1);
	m->kind = kind;
	return m;
}

/* ---- jobs, handed over by the main thread --------------------------------------------------- */

/* Main thread. */
lv_job *lv_job_new(herd_virt_libvirt *v, job_kind kind)
{
	lv_job *j = g_new0(lv_job, 1);
	j->kind = kind;
	j->sh = shared_ref(v->sh);
	j->gen = v->gen;
	j->serial = v->event_serial;
	return j;
}

/* Main thread. */
void lv_job_push(herd_virt_libvirt *v, lv_job *j)
{
	g_mutex_lock(&v->sh->lock);
	v->sh->jobs++;
	g_mutex_unlock(&v->sh->lock);
	bool control = j->kind == JOB_CONNECT || j->kind == JOB_PING || j->kind == JOB_RESYNC;
	bool migration = j->kind == JOB_OP && j->op->kind == OP_MIGRATE;
	g_thread_pool_push(control ? v->control : migration ? v->migrations : v->pool, j, NULL);
}

/* ---- errors --------------------------------------------------------------------------------- */

/* libvirt's last error message of this thread, as one line without
 * trailing dots (lv_error_text); resets the error. */
static char *take_vir_error(int *code)
{
	virErrorPtr e = virGetLastError();
	if (code)
		*code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
	char *msg = lv_error_text(e && e->message ? e->message : "unknown error");
	virResetLastError();
	return msg;
}

static void job_fail(lv_job *j, herd_error_code code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void job_fail(lv_job *j, herd_error_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_free(j->err_detail);
	j->err_detail = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	j->failed = true;
	j->err_code = code;
}

/* Record libvirt's last error as the job's failure; a dead connection makes
 * it "unavailable" and marks the connection lost. */
static void job_fail_vir(lv_job *j, virConnectPtr conn)
{
	int vir_code;
	g_autofree char *msg = take_vir_error(&vir_code);
	herd_error_code code = lv_error_code(vir_code);
	if (conn && virConnectIsAlive(conn) == 0) {
		j->lost = true;
		code = HERD_ERR_UNAVAILABLE;
	}
	virResetLastError();
	if (vir_code == VIR_ERR_NO_DOMAIN)
		job_fail(j, code, "it is not running on this node (libvirt: %s)", msg);
	else
		job_fail(j, code, "libvirt: %s", msg);
}

/* ---- libvirt callbacks (they run on the main context, or on whichever
 * thread found the connection closed) ------------------------------------------------------- */

static lv_cb_ctx *cb_ctx_new(lv_shared *sh, unsigned gen)
{
	lv_cb_ctx *c = g_new0(lv_cb_ctx, 1);
	c->sh = shared_ref(sh);
	c->gen = gen;
	return c;
}

static void cb_ctx_free(void *p)
{
	lv_cb_ctx *c = p;
	lv_shared_unref(c->sh);
	g_free(c);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	lv_cb_ctx *c = opaque;
	lv_msg *m = lv_msg_new(MSG_EVENT);
	m->gen = c->gen;
	if (virDomainGetUUIDString(dom, m->uuid) < 0) {
		virResetLastError();
		lv_msg_free(m);
		return 0;
	}
	m->event = event;
	m->detail = detail;
	lv_post(c->sh, m);
	return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	lv_cb_ctx *c = opaque;
	lv_msg *m = lv_msg_new(MSG_LOST);
	m->gen = c->gen;
	m->text = g_strdup(lv_close_reason_text(reason));
	lv_post(c->sh, m);
	/* libvirt forgets the callback after running it: from here on the
	 * context may go (conn_close), so nothing below may touch it. */
	g_atomic_int_set(&c->fired, 1);
}

/* ---- connections ---------------------------------------------------------------------------- */

/* The live connection (@ops: the one for operations, else the control
 * one), with a reference of its own, or NULL. */
static virConnectPtr conn_get(lv_shared *sh, bool ops)
{
	g_mutex_lock(&sh->lock);
	virConnectPtr c = sh->conn ? (ops ? sh->conn->ops : sh->conn->conn) : NULL;
	if (c)
		virConnectRef(c);
	g_mutex_unlock(&sh->lock);
	return c;
}

/* Unregister and close; may block on a libvirtd that hangs, so workers
 * only (the shared part's last unref is the exception, see there). */
static void conn_close(lv_conn *c)
{
	if (!c)
		return;
	if (c->cb_id >= 0 && !c->dead)
		virConnectDomainEventDeregisterAny(c->conn, c->cb_id);
	/* The close callback's context is freed only once libvirt let go of
	 * it.  Drivers without close callbacks (test:///) accept one and never
	 * call a free function, so herd cannot leave that to libvirt; and
	 * libvirt 9's remote driver asks libvirtd before it unregisters, so on
	 * a dead connection unregistering fails and the callback stays armed:
	 * a thread still in a call on it may run it later.  Then the context
	 * (and the shared part it holds) is left alive for good, a few bytes
	 * per lost connection; what the callback posts is a stale
	 * generation's, ignored. */
	bool unregistered = !c->dead &&
			    virConnectUnregisterCloseCallback(c->conn, on_close) == 0;
	/* Our references; when one is the last, libvirt says goodbye to
	 * libvirtd, which on a stuck one waits for it (here, in a worker). */
	if (c->ops)
		virConnectClose(c->ops);
	virConnectClose(c->conn);
	virResetLastError();
	if (c->close_ctx && (unregistered || g_atomic_int_get(&c->close_ctx->fired)))
		cb_ctx_free(c->close_ctx);
	g_free(c);
}

/* ---- what libvirt has ----------------------------------------------------------------------- */

/* When the QEMU process of running domain @name started (wall clock ms),
 * from the pid file libvirt's system QEMU driver keeps; 0 if unknown. */
static int64_t qemu_start_ms(const char *name)
{
	g_autofree char *pidfile = g_strdup_printf("/run/libvirt/qemu/%s.pid", name);
	g_autofree char *text = NULL;
	if (strchr(name, '/') || !g_file_get_contents(pidfile, &text, NULL, NULL))
		return 0;
	long pid = strtol(text, NULL, 10);
	if (pid <= 0)
		return 0;
	g_autofree char *statpath = g_strdup_printf("/proc/%ld/stat", pid);
	g_autofree char *stat = NULL;
	g_autofree char *up = NULL;
	if (!g_file_get_contents(statpath, &stat, NULL, NULL) ||
	    !g_file_get_contents("/proc/uptime", &up, NULL, NULL))
		return 0;
	return lv_qemu_start_ms(stat, up, sysconf(_SC_CLK_TCK), lv_now_ms());
}

/* The operation of libvirt's job on @dom (lv_job_operation), 0 if unknown. */
static int job_operation(virDomainPtr dom)
{
	int type = VIR_DOMAIN_JOB_NONE, operation = 0;
	virTypedParameterPtr params = NULL;
	int n = 0;
	bool ok = virDomainGetJobStats(dom, &type, &params, &n, 0) == 0;
	int code = 0;
	if (ok) {
		if (virTypedParamsGetInt(params, n, VIR_DOMAIN_JOB_OPERATION, &operation) != 1)
			operation = 0;
		virTypedParamsFree(params, n);
	} else {
		virErrorPtr e = virGetLastError();
		code = e ? e->code : 0;
	}
	virResetLastError();
	return lv_job_operation(ok, operation, code);
}

static void add_obs(GArray *out, virDomainPtr dom, int state, int reason, bool want_start)
{
	lv_obs o = { 0 };
	if (virDomainGetUUIDString(dom, o.uuid) < 0) {
		virResetLastError();
		return;
	}
	o.state = state;
	o.reason = reason;
	/* One more call, but only for a domain paused while it starts or
	 * for a migration: an incoming migration is no copy that runs. */
	if (lv_domain_may_be_incoming(state, reason))
		o.job_operation = job_operation(dom);
	if (want_start && state == VIR_DOMAIN_RUNNING) {
		const char *name = virDomainGetName(dom);
		if (name)
			o.started_ms = qemu_start_ms(name);
	}
	g_array_append_val(out, o);
}

/* Every domain with its state: one RPC where the driver supports it. */
static bool list_domains(lv_job *j, virConnectPtr conn)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(lv_obs));
	virDomainStatsRecordPtr *recs = NULL;
	int n = virConnectGetAllDomainStats(conn, VIR_DOMAIN_STATS_STATE, &recs, 0);
	if (n >= 0) {
		for (int i = 0; i < n; i++) {
			int st = VIR_DOMAIN_NOSTATE, rs = 0;
			virTypedParamsGetInt(recs[i]->params, recs[i]->nparams, "state.state", &st);
			virTypedParamsGetInt(recs[i]->params, recs[i]->nparams, "state.reason", &rs);
			add_obs(out, recs[i]->dom, st, rs, j->want_start_time);
		}
		virDomainStatsRecordListFree(recs);
	} else {
		int code;
		g_autofree char *msg = take_vir_error(&code);
		if (code != VIR_ERR_NO_SUPPORT) {
			job_fail(j, HERD_ERR_UNAVAILABLE, "libvirt: %s", msg);
			j->lost = virConnectIsAlive(conn) == 0;
			g_array_unref(out);
			return false;
		}
		virDomainPtr *doms = NULL;
		n = virConnectListAllDomains(conn, &doms, 0);
		if (n < 0) {
			job_fail_vir(j, conn);
			g_array_unref(out);
			return false;
		}
		for (int i = 0; i < n; i++) {
			int st, rs;
			if (virDomainGetState(doms[i], &st, &rs, 0) == 0)
				add_obs(out, doms[i], st, rs, j->want_start_time);
			else
				virResetLastError();
			virDomainFree(doms[i]);
		}
		free(doms);
	}
	if (j->domains)
		g_array_unref(j->domains);
	j->domains = out;
	return true;
}

static void read_resources(lv_job *j, virConnectPtr conn)
{
	virNodeInfo info;
	if (virNodeGetInfo(conn, &info) < 0) {
		virResetLastError();
		return;
	}
	unsigned long long free_bytes = virNodeGetFreeMemory(conn);
	virResetLastError();
	j->res.memory_mib = info.memory / 1024;
	j->res.free_mib = free_bytes / (1024 * 1024);
	j->res.cpus = info.cpus;
	/* The host's, beside what its hypervisor says (shown as CPU use). */
	j->res.load_known = herd_loadavg_read(&j->res.load_x100);
	j->have_res = true;
}

/* ---- connect, ping, list -------------------------------------------------------------------- */

static void run_connect(lv_job *j)
{
	lv_shared *sh = j->sh;
	conn_close(j->old_conn);
	j->old_conn = NULL;
	lv_conn *c = g_new0(lv_conn, 1);
	c->cb_id = -1;
	c->conn = virConnectOpen(j->uri);
	if (!c->conn) {
		g_autofree char *msg = take_vir_error(NULL);
		job_fail(j, HERD_ERR_UNAVAILABLE, "libvirt: %s", msg);
		g_free(c);
		return;
	}
	c->close_ctx = cb_ctx_new(sh, j->gen);
	if (virConnectRegisterCloseCallback(c->conn, on_close, c->close_ctx, NULL) < 0)
		virResetLastError();
	lv_cb_ctx *ctx = cb_ctx_new(sh, j->gen);
	c->cb_id = virConnectDomainEventRegisterAny(c->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
						    VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), ctx,
						    cb_ctx_free);
	if (c->cb_id < 0) {
		g_autofree char *msg = take_vir_error(NULL);
		job_fail(j, HERD_ERR_UNAVAILABLE, "cannot register for libvirt's events: %s", msg);
		cb_ctx_free(ctx);
		conn_close(c);
		return;
	}
	c->ops = virConnectOpen(j->uri);
	if (!c->ops) {
		g_autofree char *msg = take_vir_error(NULL);
		job_fail(j, HERD_ERR_UNAVAILABLE, "libvirt: %s", msg);
		conn_close(c);
		return;
	}
	/* Listed after registering for events, so nothing falls in between. */
	if (!list_domains(j, c->conn)) {
		conn_close(c);
		return;
	}
	read_resources(j, c->conn);
	g_mutex_lock(&sh->lock);
	bool closing = sh->closing;
	if (!closing)
		sh->conn = c;
	g_mutex_unlock(&sh->lock);
	if (closing) {
		conn_close(c);
		job_fail(j, HERD_ERR_UNAVAILABLE, "the driver was closed");
	}
}

static void run_ping(lv_job *j)
{
	virConnectPtr conn = conn_get(j->sh, false);
	if (!conn) {
		job_fail(j, HERD_ERR_UNAVAILABLE, "not connected");
		return;
	}
	unsigned long version;
	if (virConnectGetLibVersion(conn, &version) < 0)
		job_fail_vir(j, conn);
	virConnectClose(conn);
	virResetLastError();
}

static void run_resync(lv_job *j)
{
	virConnectPtr conn = conn_get(j->sh, false);
	if (!conn) {
		job_fail(j, HERD_ERR_UNAVAILABLE, "not connected");
		return;
	}
	if (list_domains(j, conn))
		read_resources(j, conn);
	virConnectClose(conn);
	virResetLastError();
}

/* ---- operations ----------------------------------------------------------------------------- */

/* Look @uuid up; NULL and no failure when libvirt has no such domain. */
static virDomainPtr lookup(lv_job *j, virConnectPtr conn, const char *uuid)
{
	virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid);
	if (dom)
		return dom;
	virErrorPtr e = virGetLastError();
	if (e && e->code == VIR_ERR_NO_DOMAIN)
		virResetLastError();
	else
		job_fail_vir(j, conn);
	return NULL;
}

/* The domain's state after the operation, for the main thread. */
static void observe(lv_job *j, virConnectPtr conn)
{
	virDomainPtr dom = virDomainLookupByUUIDString(conn, j->op->uuid);
	if (!dom) {
		virErrorPtr e = virGetLastError();
		j->observed = e && e->code == VIR_ERR_NO_DOMAIN;
		j->found = false;
		virResetLastError();
		return;
	}
	int st, rs;
	if (virDomainGetState(dom, &st, &rs, 0) == 0) {
		j->observed = j->found = true;
		j->state = st;
		j->reason = rs;
	} else {
		virErrorPtr e = virGetLastError();
		j->observed = e && e->code == VIR_ERR_NO_DOMAIN;
		j->found = false;
		virResetLastError();
	}
	virDomainFree(dom);
}

static void run_start(lv_job *j, virConnectPtr conn)
{
	const lv_op *op = j->op;
	virDomainPtr dom = lookup(j, conn, op->uuid);
	if (j->failed)
		return;
	if (dom) {
		int st = VIR_DOMAIN_NOSTATE, rs = 0;
		if (virDomainGetState(dom, &st, &rs, 0) < 0) {
			job_fail_vir(j, conn);
			virDomainFree(dom);
			return;
		}
		bool crashed = lv_domain_crashed(st, rs);
		if (lv_domain_may_be_incoming(st, rs) &&
		    job_operation(dom) == VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN) {
			/* Not a copy that runs, and libvirt's to destroy if
			 * the migration fails. */
			job_fail(j, HERD_ERR_CONFLICT, "a live migration of it into this node is under way");
			virDomainFree(dom);
			return;
		}
		if (lv_domain_active(st) && !crashed) {
			/* Already there: start is done (idempotent). */
			virDomainFree(dom);
			return;
		}
		/* A crashed guest kept for inspection (on_crash=preserve) is
		 * powered off first: start means make it run. */
		if (crashed && virDomainDestroy(dom) < 0) {
			job_fail_vir(j, conn);
			virDomainFree(dom);
			return;
		}
		virDomainFree(dom);
	}
	dom = virDomainCreateXML(conn, op->xml, VIR_DOMAIN_NONE);
	if (!dom) {
		job_fail_vir(j, conn);
		if (j->lost)
			return;
		/* A start that raced with another one (or with a start by
		 * someone else) found it running: that is success too. */
		observe(j, conn);
		if (j->observed && j->found && lv_domain_active(j->state) && j->state != VIR_DOMAIN_CRASHED)
			j->failed = false;
		return;
	}
	char got[VIR_UUID_STRING_BUFLEN];
	if (virDomainGetUUIDString(dom, got) == 0 && strcmp(got, op->uuid) != 0) {
		virDomainDestroy(dom);
		virResetLastError();
		job_fail(j, HERD_ERR_INVALID, "its domain XML has the UUID %s", got);
	}
	virDomainFree(dom);
}

static void run_simple(lv_job *j, virConnectPtr conn)
{
	const lv_op *op = j->op;
	virDomainPtr dom = lookup(j, conn, op->uuid);
	if (j->failed)
		return;
	if (!dom) {
		/* Stopping what is not there is done; anything else is an error. */
		if (op->kind != OP_SHUTDOWN && op->kind != OP_DESTROY)
			job_fail(j, HERD_ERR_NOT_FOUND, "it is not running on this node");
		return;
	}
	int rc = 0;
	switch (op->kind) {
	case OP_SHUTDOWN:
		/* With no time to shut down the main thread destroys at once. */
		if (op->timeout_s > 0 && virDomainIsActive(dom) == 1)
			rc = virDomainShutdown(dom);
		break;
	case OP_DESTROY:
		if (virDomainIsActive(dom) == 1)
			rc = virDomainDestroy(dom);
		break;
	case OP_REBOOT:
		rc = virDomainReboot(dom, 0);
		break;
	case OP_RESET:
		rc = virDomainReset(dom, 0);
		break;
	case OP_SUSPEND:
		rc = virDomainSuspend(dom);
		break;
	case OP_RESUME:
		rc = virDomainResume(dom);
		break;
	case OP_CHANGE_MEDIA:
		/* The running guest's drive only: the configuration is the
		 * cluster's, and the domain is transient. */
		rc = virDomainUpdateDeviceFlags(dom, op->xml, VIR_DOMAIN_AFFECT_LIVE);
		break;
	case OP_BLOCK_RESIZE:
		/* @xml is the disk's path, which libvirt takes as well as a target. */
		rc = virDomainBlockResize(dom, op->xml, op->size, VIR_DOMAIN_BLOCK_RESIZE_BYTES);
		break;
	default:
		break;
	}
	if (rc < 0)
		job_fail_vir(j, conn);
	virDomainFree(dom);
}

/* "HOST" as a URI's authority: an IPv6 address in brackets. */
static char *uri_host(const char *address)
{
	return strchr(address, ':') ? g_strdup_printf("[%s]", address) : g_strdup(address);
}

/* Peer to peer: this node's libvirtd connects to the destination's over
 * TLS (qemu+tls://, with the cluster CA's certificates both ends have) and
 * runs the whole migration; the call returns when the guest runs there, or
 * the migration failed or was aborted (JOB_ABORT, from another thread).
 * The memory goes to tcp://ADDRESS with no port: the destination's libvirtd
 * takes the first free port of its qemu.conf migration_port_min..max
 * (libvirt 9.0 has no parameter for a range, only one fixed port in this
 * URI).  The domain is transient on both ends: no PERSIST_DEST or
 * UNDEFINE_SOURCE.  On a connection of its own, so that a long migration
 * holds none of the few calls libvirtd serves a client at once
 * (max_client_requests): polls and the abort use the shared one. */
static void run_migrate(lv_job *j)
{
	const lv_op *op = j->op;
	g_mutex_lock(&j->sh->lock);
	bool closing = j->sh->closing;
	g_mutex_unlock(&j->sh->lock);
	if (closing) {
		/* Queued behind other migrations until close(): none begins then. */
		job_fail(j, HERD_ERR_UNAVAILABLE, "the driver was closed");
		return;
	}
	virConnectPtr conn = virConnectOpen(j->uri);
	if (!conn) {
		g_autofree char *msg = take_vir_error(NULL);
		job_fail(j, HERD_ERR_UNAVAILABLE, "libvirt: %s", msg);
		return;
	}
	virDomainPtr dom = lookup(j, conn, op->uuid);
	if (!dom && !j->failed)
		job_fail(j, HERD_ERR_NOT_FOUND, "it is not running on this node");
	if (dom) {
		g_autofree char *host = uri_host(op->address);
		g_autofree char *dconnuri = g_strdup_printf("qemu+tls://%s/system", host);
		g_autofree char *miguri = g_strdup_printf("tcp://%s", host);
		virTypedParameterPtr params = NULL;
		int n = 0, max = 0;
		unsigned flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_AUTO_CONVERGE |
				 (op->tls ? VIR_MIGRATE_TLS : 0);
		if (virTypedParamsAddString(&params, &n, &max, VIR_MIGRATE_PARAM_URI, miguri) < 0 ||
		    (op->bandwidth_mib_s > 0 &&
		     virTypedParamsAddULLong(&params, &n, &max, VIR_MIGRATE_PARAM_BANDWIDTH,
					     op->bandwidth_mib_s) < 0) ||
		    virDomainMigrateToURI3(dom, dconnuri, params, n, flags) < 0)
			job_fail_vir(j, conn);
		virTypedParamsFree(params, n);
		virDomainFree(dom);
	}
	if (!j->lost)
		observe(j, conn);
	virConnectClose(conn);
	virResetLastError();
}

/* The job's VM on the operations connection (*@conn, also set when the VM
 * is not found; NULL if not connected): the job has failed when NULL is
 * returned.  Let go of both with job_domain_close(). */
static virDomainPtr job_domain(lv_job *j, virConnectPtr *conn)
{
	*conn = conn_get(j->sh, true);
	if (!*conn) {
		job_fail(j, HERD_ERR_UNAVAILABLE, "herd is not connected to libvirt");
		return NULL;
	}
	virDomainPtr dom = lookup(j, *conn, j->op->uuid);
	if (!dom && !j->failed)
		job_fail(j, HERD_ERR_NOT_FOUND, "it is not on this node any more");
	return dom;
}

static void job_domain_close(virConnectPtr conn, virDomainPtr dom)
{
	if (dom)
		virDomainFree(dom);
	if (conn)
		virConnectClose(conn);
	virResetLastError();
}

/* How far the migration of the job's VM is (virDomainGetJobStats on the
 * source: libvirt asks QEMU). */
static void run_progress(lv_job *j)
{
	virConnectPtr conn;
	virDomainPtr dom = job_domain(j, &conn);
	int type = VIR_DOMAIN_JOB_NONE;
	virTypedParameterPtr params = NULL;
	int n = 0;
	if (dom && virDomainGetJobStats(dom, &type, &params, &n, 0) < 0) {
		job_fail_vir(j, conn);
	} else if (dom) {
		j->have_progress = lv_migrate_progress_of(type, params, n, &j->progress);
		virTypedParamsFree(params, n);
	}
	job_domain_close(conn, dom);
}

/* Abort the migration of the job's VM (its migrate call, blocked in
 * another thread, then returns with an error; the guest runs on here). */
static void run_abort(lv_job *j)
{
	virConnectPtr conn;
	virDomainPtr dom = job_domain(j, &conn);
	if (dom && virDomainAbortJob(dom) < 0)
		job_fail_vir(j, conn);
	job_domain_close(conn, dom);
}

static void run_op(lv_job *j)
{
	if (j->op->kind == OP_MIGRATE) {
		run_migrate(j);
		return;
	}
	virConnectPtr conn = conn_get(j->sh, true);
	if (!conn) {
		job_fail(j, HERD_ERR_UNAVAILABLE, "herd is not connected to libvirt");
		return;
	}
	if (j->op->kind == OP_START)
		run_start(j, conn);
	else
		run_simple(j, conn);
	if (!j->lost)
		observe(j, conn);
	virConnectClose(conn);
	virResetLastError();
}

/* ---- the threads' entry point --------------------------------------------------------------- */

void lv_worker_run(gpointer data, gpointer unused)
{
	lv_job *j = data;
	lv_shared *sh = j->sh; /* the job's reference, released below */
	switch (j->kind) {
	case JOB_CONNECT:
		run_connect(j);
		break;
	case JOB_RESYNC:
		run_resync(j);
		break;
	case JOB_PING:
		run_ping(j);
		break;
	case JOB_OP:
		run_op(j);
		break;
	case JOB_PROGRESS:
		run_progress(j);
		break;
	case JOB_ABORT:
		run_abort(j);
		break;
	case JOB_DISCONNECT:
		conn_close(j->old_conn);
		j->old_conn = NULL;
		break;
	}
	/* The job goes back without its reference to @sh: the inbox lives in
	 * @sh, and a job in it holding @sh would keep it alive for ever. */
	j->sh = NULL;
	lv_msg *m = lv_msg_new(MSG_JOB);
	m->job = j;
	lv_post(sh, m);
	g_mutex_lock(&sh->lock);
	if (sh->jobs > 0 && --sh->jobs == 0)
		g_cond_broadcast(&sh->idle);
	g_mutex_unlock(&sh->lock);
	lv_shared_unref(sh);
}
