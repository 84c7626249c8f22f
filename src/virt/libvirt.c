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
 */
#define G_LOG_DOMAIN "virt"
#include "virt/driver.h"
#include "virt/libvirt_state.h"

#include "common/error.h"
#include "common/log.h"

#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Enough for 20 VMs starting after a failover: libvirtd serves at most 5
 * calls of one client at once (max_client_requests), the rest queue there. */
#define WORKER_THREADS 8
#define TICK_MS 1000
#define RESYNC_INTERVAL_MS 5000
/* A libvirtd that leaves a ping (or a list) unanswered this long is lost. */
#define PING_INTERVAL_MS 2000
#define HUNG_MS 6000
#define RECONNECT_FIRST_MS 100
#define RECONNECT_MAX_MS 2000
/* A connection attempt that has not finished by then is reported as lost. */
#define CONNECT_SLOW_MS 3000
/* Deadlines of operations, queueing included.  A start may legitimately
 * take long (large guests, memory preallocation); libvirt gives up on a
 * busy domain after 30 s by itself. */
#define START_TIMEOUT_MS 120000
#define OP_TIMEOUT_MS 60000
#define CLOSE_WAIT_MS 1000
/* libvirtd sends events from another thread than replies, so the event of
 * an operation may arrive after its reply.  The operation waits this long
 * for the event that brings the state it saw, before applying that state
 * itself. */
#define SETTLE_MS 500
/* A full list does not override a VM an event touched this recently: that
 * event's successors may still be on their way. */
#define LIST_QUIET_US (1000 * 1000)
/* A stopped VM that libvirt no longer lists is forgotten after this. */
#define FORGET_STOPPED_MS (15 * 60 * 1000)

/* herd_vm_state_name() lives in ha/facts.c, with the pure core that the
 * simulator links without libvirt. */

/* ---- types ---------------------------------------------------------------------------------- */

typedef enum { OP_START, OP_SHUTDOWN, OP_DESTROY, OP_REBOOT, OP_RESET, OP_SUSPEND, OP_RESUME } op_kind;

static const char *const op_verbs[] = {
	"start", "shut down", "destroy", "reboot", "reset", "suspend", "resume",
};

typedef struct herd_virt_libvirt herd_virt_libvirt;

/* One operation asked for by the user (or a destroy herd makes itself after
 * a shutdown timed out).  Workers read only the fields set before it is
 * queued (kind, uuid, xml, timeout_s, forced); the rest is the main
 * thread's.  Referenced by its VM's queue and by a running job. */
typedef struct lv_op {
	gatomicrefcount refs;
	op_kind kind;
	char uuid[37];
	char *xml;
	unsigned timeout_s;     /* shutdown: seconds before it is forced */
	bool forced;            /* herd's destroy after a shutdown timeout */
	herd_virt_done done;    /* NULL for herd's own operations */
	gpointer user;
	bool finished;          /* done was called */
	herd_virt_libvirt *v;
	GSource *deadline;
	GSource *wait;          /* shutdown: the timeout before forcing */
	uint64_t begin_serial;  /* the driver's event count when it began */
	bool settling;          /* done in libvirt, waiting for the event */
	herd_vm_state expect;   /* … that brings this state */
	char expect_reason[64];
	GSource *settle;        /* … for at most SETTLE_MS */
} lv_op;

/* What the main thread knows of one VM. */
typedef struct lv_vm {
	herd_vm_fact fact;
	uint64_t event_serial;  /* the driver's event count when an event last touched it */
	gint64 event_us;        /* monotonic time of that event */
	uint64_t emitted;       /* the driver's fact count when it was last reported */
	bool listed;            /* in libvirt's last domain list */
	bool seen;              /* ever listed, or named by an event */
	lv_op *active;          /* the operation running on it */
	lv_op *destroying;      /* a destroy that overtook @active */
	GQueue pending;         /* operations waiting for their turn */
	GPtrArray *waiters;     /* shutdowns (lv_op) waiting for it to stop */
} lv_vm;

/* Passed to libvirt's callbacks: which connection they belong to. */
typedef struct lv_cb_ctx lv_cb_ctx;

/* herd's connection to libvirtd: two, in fact.  The control one carries
 * the events, the close callback, the pings and the lists, from one thread
 * of its own; operations use the other from the worker pool.  So a ping
 * never waits behind operations: not in the pool, and not in libvirtd,
 * which serves at most 5 calls of one client at once (max_client_requests)
 * and reads nothing more from it meanwhile.  A busy libvirtd (creating
 * dozens of VMs after a failover) is then not mistaken for a stuck one. */
typedef struct lv_conn {
	virConnectPtr conn;     /* control */
	virConnectPtr ops;      /* operations */
	int cb_id;              /* the lifecycle event callback */
	lv_cb_ctx *close_ctx;   /* the close callback's; herd frees it, see
				 * conn_close() */
	bool dead;              /* lost: no more calls on it, not even to close */
} lv_conn;

/* State shared by the main thread and the workers; refcounted because a
 * worker stuck in libvirt may outlive the driver. */
typedef struct lv_shared {
	gatomicrefcount refs;
	GMutex lock;            /* guards everything below */
	GCond idle;             /* signalled when @jobs drops to 0 */
	unsigned jobs;          /* jobs queued or running */
	bool closing;           /* close() ran: a new connection is closed at once */
	lv_conn *conn;          /* the live connection, or NULL */
	GQueue inbox;           /* lv_msg for the main thread, in order */
	GSource *wake;          /* drains the inbox on the main context */
} lv_shared;

typedef enum { JOB_CONNECT, JOB_RESYNC, JOB_PING, JOB_OP, JOB_DISCONNECT } job_kind;

/* One domain as libvirt listed it. */
typedef struct lv_obs {
	char uuid[37];
	int state, reason;      /* virDomainState and its reason */
	int64_t started_ms;     /* when its QEMU process started, 0 if unknown */
} lv_obs;

typedef struct lv_job {
	job_kind kind;
	lv_shared *sh;          /* dropped before the job goes back to the main thread */
	char *uri;
	unsigned gen;           /* connection generation it ran under */
	uint64_t serial;        /* the main thread's event count when it was queued */
	lv_conn *old_conn;      /* CONNECT, DISCONNECT: to be closed first */
	lv_op *op;              /* OP */
	bool want_start_time;   /* CONNECT: look up QEMU start times */
	/* results */
	bool failed;
	herd_error_code err_code;
	char *err_detail;       /* "libvirt: …" (what follows "Cannot start VM X: ") */
	bool lost;              /* the connection turned out dead */
	bool observed;          /* OP: found/state/reason are valid */
	bool found;
	int state, reason;
	GArray *domains;        /* CONNECT, RESYNC: lv_obs */
	bool have_res;
	herd_node_resources res;
} lv_job;

typedef enum { MSG_EVENT, MSG_LOST, MSG_JOB, MSG_BEGIN, MSG_FINISH } msg_kind;

typedef struct lv_msg {
	msg_kind kind;
	unsigned gen;
	char uuid[37];          /* EVENT */
	int event, detail;      /* EVENT */
	char *text;             /* LOST: why */
	lv_job *job;            /* JOB */
	lv_op *op;              /* BEGIN, FINISH (a reference) */
	GError *error;          /* FINISH */
} lv_msg;

struct lv_cb_ctx {
	lv_shared *sh;
	unsigned gen;
	gint fired;             /* the close callback ran (and will not again) */
};

enum { REPORTED_NOTHING, REPORTED_UP, REPORTED_DOWN };

struct herd_virt_libvirt {
	herd_virt base;         /* first: herd_virt * is a herd_virt_libvirt * */
	char *uri;
	GMainContext *ctx;
	lv_shared *sh;
	GThreadPool *pool;      /* operations, closing connections */
	GThreadPool *control;   /* one thread: connect, ping, list */
	GHashTable *vms;        /* uuid -> lv_vm */
	bool opened, closed;
	bool connected;         /* a connection is installed and not known lost */
	bool connecting;        /* a JOB_CONNECT is under way */
	bool lost_early;        /* its connection died before it was installed */
	unsigned gen;           /* generation of the current (or coming) connection */
	int reported;           /* what connection() said last */
	unsigned failures;      /* connection attempts failed in a row */
	unsigned backoff_ms;
	GSource *retry, *tick, *slow;
	bool resync_running, ping_running;
	gint64 resync_at_us, ping_at_us; /* when they were last sent */
	uint64_t event_serial;  /* events applied so far */
	uint64_t fact_serial;   /* facts reported so far */
	lv_conn *old_conn;      /* a lost connection, closed by the next job */
	bool have_res;
	herd_node_resources res;
	int depth;              /* nesting of main-loop entry points */
	bool doomed;            /* freed from inside a callback: free on the way out */
};

static const herd_virt_ops lv_ops;

static void pump(herd_virt_libvirt *v, lv_vm *vm);
static void pump_all(herd_virt_libvirt *v);

/* ---- small helpers -------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
	return g_get_real_time() / 1000;
}

static void silent_error(void *data, virErrorPtr err)
{
}

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

static GError *op_error(const lv_op *op, herd_error_code code, const char *detail)
{
	return g_error_new(HERD_ERROR, code, "Cannot %s VM %s: %s.", op_verbs[op->kind], op->uuid,
			   detail);
}

/* ---- operations, refcounting ---------------------------------------------------------------- */

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

static void timer_cancel(GSource **s)
{
	if (*s) {
		g_source_destroy(*s);
		g_source_unref(*s);
		*s = NULL;
	}
}

/* May run on any thread: touches no main-thread state but its own timers,
 * which are gone by then (op_finish cancels them). */
static void op_unref(lv_op *op)
{
	if (!op || !g_atomic_ref_count_dec(&op->refs))
		return;
	g_free(op->xml);
	g_free(op);
}

/* ---- the shared part and the inbox ---------------------------------------------------------- */

static void msg_free(lv_msg *m);
static void conn_close(lv_conn *c);

static lv_shared *shared_ref(lv_shared *sh)
{
	g_atomic_ref_count_inc(&sh->refs);
	return sh;
}

static void shared_unref(lv_shared *sh)
{
	if (!sh || !g_atomic_ref_count_dec(&sh->refs))
		return;
	lv_msg *m;
	while ((m = g_queue_pop_head(&sh->inbox)))
		msg_free(m);
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

static void post(lv_shared *sh, lv_msg *m)
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
	op_unref(j->op);
	g_free(j->uri);
	g_free(j->err_detail);
	if (j->domains)
		g_array_unref(j->domains);
	if (j->sh) {
		g_mutex_lock(&j->sh->lock);
		if (j->sh->jobs > 0 && --j->sh->jobs == 0)
			g_cond_broadcast(&j->sh->idle);
		g_mutex_unlock(&j->sh->lock);
		shared_unref(j->sh);
	}
	g_free(j);
}

static void msg_free(lv_msg *m)
{
	if (!m)
		return;
	g_free(m->text);
	job_free(m->job);
	op_unref(m->op);
	if (m->error)
		g_error_free(m->error);
	g_free(m);
}

static lv_msg *msg_new(msg_kind kind)
{
	lv_msg *m = g_new0(lv_msg, 1);
	m->kind = kind;
	return m;
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
	shared_unref(c->sh);
	g_free(c);
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	lv_cb_ctx *c = opaque;
	lv_msg *m = msg_new(MSG_EVENT);
	m->gen = c->gen;
	if (virDomainGetUUIDString(dom, m->uuid) < 0) {
		virResetLastError();
		msg_free(m);
		return 0;
	}
	m->event = event;
	m->detail = detail;
	post(c->sh, m);
	return 0;
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	lv_cb_ctx *c = opaque;
	lv_msg *m = msg_new(MSG_LOST);
	m->gen = c->gen;
	m->text = g_strdup(lv_close_reason_text(reason));
	post(c->sh, m);
	/* libvirt forgets the callback after running it: from here on the
	 * context may go (conn_close), so nothing below may touch it. */
	g_atomic_int_set(&c->fired, 1);
}

/* ---- worker side ---------------------------------------------------------------------------- */

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
	return lv_qemu_start_ms(stat, up, sysconf(_SC_CLK_TCK), now_ms());
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
	j->have_res = true;
}

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
	default:
		break;
	}
	if (rc < 0)
		job_fail_vir(j, conn);
	virDomainFree(dom);
}

static void run_op(lv_job *j)
{
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

static void worker(gpointer data, gpointer unused)
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
	case JOB_DISCONNECT:
		conn_close(j->old_conn);
		j->old_conn = NULL;
		break;
	}
	/* The job goes back without its reference to @sh: the inbox lives in
	 * @sh, and a job in it holding @sh would keep it alive for ever. */
	j->sh = NULL;
	lv_msg *m = msg_new(MSG_JOB);
	m->job = j;
	post(sh, m);
	g_mutex_lock(&sh->lock);
	if (sh->jobs > 0 && --sh->jobs == 0)
		g_cond_broadcast(&sh->idle);
	g_mutex_unlock(&sh->lock);
	shared_unref(sh);
}

/* ---- main thread: the cache and the user's callbacks ------------------------------------------ */

static void enter(herd_virt_libvirt *v)
{
	v->depth++;
}

static void destroy_driver(herd_virt_libvirt *v);

/* Returns true if the driver is gone (freed by a callback meanwhile). */
static bool leave(herd_virt_libvirt *v)
{
	if (--v->depth == 0 && v->doomed) {
		destroy_driver(v);
		return true;
	}
	return false;
}

static lv_vm *vm_get(herd_virt_libvirt *v, const char *uuid)
{
	lv_vm *vm = g_hash_table_lookup(v->vms, uuid);
	if (!vm) {
		vm = g_new0(lv_vm, 1);
		g_strlcpy(vm->fact.uuid, uuid, sizeof(vm->fact.uuid));
		vm->fact.state = HERD_VM_STOPPED;
		vm->fact.since_ms = now_ms();
		g_queue_init(&vm->pending);
		vm->waiters = g_ptr_array_new();
		g_hash_table_insert(v->vms, vm->fact.uuid, vm);
	}
	return vm;
}

static void vm_free(gpointer p)
{
	lv_vm *vm = p;
	/* close() finished every operation first. */
	g_queue_clear(&vm->pending);
	g_ptr_array_unref(vm->waiters);
	g_free(vm);
}

static void emit_fact(herd_virt_libvirt *v, lv_vm *vm)
{
	vm->emitted = ++v->fact_serial;
	if (v->base.cb.fact && !v->closed)
		v->base.cb.fact(v->base.user, &vm->fact);
}

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
		pump_all(v);
}

/* Call the operation's done callback once; the caller still holds its
 * reference. */
static void op_finish(lv_op *op, GError *error)
{
	if (op->finished) {
		if (error)
			g_error_free(error);
		return;
	}
	op->finished = true;
	timer_cancel(&op->deadline);
	timer_cancel(&op->wait);
	timer_cancel(&op->settle);
	if (op->done)
		op->done(error, op->user);
	if (error)
		g_error_free(error);
}

/* Forget @op's completion (the driver closes): no callback, no timers. */
static void op_drop(lv_op *op)
{
	op->done = NULL;
	op_finish(op, NULL);
}

static void finish_waiters(herd_virt_libvirt *v, lv_vm *vm, const GError *error)
{
	while (vm->waiters->len > 0) {
		lv_op *w = g_ptr_array_steal_index(vm->waiters, 0);
		op_finish(w, error ? g_error_copy(error) : NULL);
		op_unref(w);
	}
}

static void destroy_submit(herd_virt_libvirt *v, lv_vm *vm, lv_op *op);
static void op_complete(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, GError *error);

static void set_state(herd_virt_libvirt *v, lv_vm *vm, herd_vm_state state, const char *reason,
		      int64_t since_ms)
{
	if (vm->fact.state == state)
		return;
	vm->fact.state = state;
	vm->fact.since_ms = since_ms > 0 ? since_ms : now_ms();
	g_strlcpy(vm->fact.reason, reason, sizeof(vm->fact.reason));
	log_debug("VM %s: %s (%s)", vm->fact.uuid, herd_vm_state_name(state), reason);
	emit_fact(v, vm);
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
		op_unref(ops[i]);
}

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
static lv_vm_context vm_context(const lv_vm *vm)
{
	const lv_op *forced = forced_destroy(vm);
	return (lv_vm_context){
		.state = vm->fact.state,
		.shutdown_asked = shutdown_asked(vm),
		.forced = forced != NULL,
		.forced_timeout_s = forced ? forced->timeout_s : 0,
	};
}

/* ---- main thread: jobs ---------------------------------------------------------------------- */

static lv_job *job_new(herd_virt_libvirt *v, job_kind kind)
{
	lv_job *j = g_new0(lv_job, 1);
	j->kind = kind;
	j->sh = shared_ref(v->sh);
	j->gen = v->gen;
	j->serial = v->event_serial;
	return j;
}

static void job_push(herd_virt_libvirt *v, lv_job *j)
{
	g_mutex_lock(&v->sh->lock);
	v->sh->jobs++;
	g_mutex_unlock(&v->sh->lock);
	bool control = j->kind == JOB_CONNECT || j->kind == JOB_PING || j->kind == JOB_RESYNC;
	g_thread_pool_push(control ? v->control : v->pool, j, NULL);
}

static GSource *timer_new(herd_virt_libvirt *v, unsigned ms, GSourceFunc fn, gpointer data)
{
	GSource *s = g_timeout_source_new(ms);
	g_source_set_callback(s, fn, data, NULL);
	g_source_attach(s, v->ctx);
	return s;
}

static void connect_now(herd_virt_libvirt *v);

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
	enter(v);
	log_warn("libvirt at %s has not answered a connection attempt for %u s", v->uri,
		 CONNECT_SLOW_MS / 1000);
	report_connection(v, true);
	leave(v);
	return G_SOURCE_REMOVE;
}

static void connect_now(herd_virt_libvirt *v)
{
	if (v->closed || v->connecting || v->connected)
		return;
	v->gen++;
	v->connecting = true;
	v->lost_early = false;
	lv_job *j = job_new(v, JOB_CONNECT);
	j->uri = g_strdup(v->uri);
	j->old_conn = v->old_conn;
	v->old_conn = NULL;
	/* Only libvirt's system QEMU driver keeps pid files where we look. */
	j->want_start_time = strcmp(v->uri, "qemu:///system") == 0;
	timer_cancel(&v->slow);
	v->slow = timer_new(v, CONNECT_SLOW_MS, on_slow_connect, v);
	job_push(v, j);
}

static void schedule_connect(herd_virt_libvirt *v, unsigned delay_ms)
{
	if (v->closed || v->retry)
		return;
	v->retry = timer_new(v, delay_ms, on_retry, v);
}

static void connection_lost(herd_virt_libvirt *v, const char *why)
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
		enter(v);
		g_autofree char *why = g_strdup_printf("libvirtd has not answered for %u s",
						       HUNG_MS / 1000);
		connection_lost(v, why);
		leave(v);
		return G_SOURCE_CONTINUE;
	}
	if (!v->ping_running && now - v->ping_at_us >= PING_INTERVAL_MS * 1000) {
		v->ping_running = true;
		v->ping_at_us = now;
		job_push(v, job_new(v, JOB_PING));
	}
	if (!v->resync_running && now - v->resync_at_us >= RESYNC_INTERVAL_MS * 1000) {
		v->resync_running = true;
		v->resync_at_us = now;
		job_push(v, job_new(v, JOB_RESYNC));
	}
	return G_SOURCE_CONTINUE;
}

/* Bring the cache in line with a full list from libvirt.  VMs with an
 * operation under way are left to it; so is a VM an event touched after
 * the list was asked for (the event is at least as new). */
static void apply_list(herd_virt_libvirt *v, GArray *domains, uint64_t serial, bool reconnected)
{
	gint64 now_us = g_get_monotonic_time();
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val))
		((lv_vm *)val)->listed = false;
	for (guint i = 0; i < domains->len; i++) {
		const lv_obs *o = &g_array_index(domains, lv_obs, i);
		lv_vm *vm = vm_get(v, o->uuid);
		bool is_new = !vm->seen;
		vm->listed = vm->seen = true;
		if (vm->active || vm->destroying || vm->event_serial > serial ||
		    (!reconnected && now_us - vm->event_us < LIST_QUIET_US))
			continue;
		char reason[64];
		lv_vm_context ctx = vm_context(vm);
		herd_vm_state st = lv_map_domain_state(&ctx, o->state, o->reason, reason, sizeof(reason));
		if (vm->waiters->len > 0 && !lv_state_is_down(st))
			continue; /* still shutting down */
		if (is_new && st == HERD_VM_STOPPED) {
			/* A defined, inactive domain: known, quietly. */
			g_strlcpy(vm->fact.reason, reason, sizeof(vm->fact.reason));
			continue;
		}
		/* A VM found running at herd's start: since its QEMU started. */
		set_state(v, vm, st, reason, is_new && st == HERD_VM_RUNNING ? o->started_ms : 0);
	}
	int64_t now = now_ms();
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val)) {
		lv_vm *vm = val;
		if (vm->listed || vm->active || vm->destroying || vm->event_serial > serial ||
		    (!reconnected && now_us - vm->event_us < LIST_QUIET_US))
			continue;
		if (vm->fact.state != HERD_VM_STOPPED) {
			set_state(v, vm, HERD_VM_STOPPED,
				  reconnected ? "gone while libvirt was unreachable"
					      : "gone without an event", 0);
		} else if (!reconnected && vm->waiters->len == 0 && g_queue_is_empty(&vm->pending) &&
			   now - vm->fact.since_ms > FORGET_STOPPED_MS) {
			g_hash_table_iter_remove(&it);
		}
	}
}

static void handle_connect_done(herd_virt_libvirt *v, lv_job *j)
{
	v->connecting = false;
	timer_cancel(&v->slow);
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
		connection_lost(v, "libvirtd closed the connection while herd connected");
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
	apply_list(v, j->domains, j->serial, again);
	/* On return, every VM's fact again (the API promises it), once. */
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val))
		if (((lv_vm *)val)->emitted <= before)
			emit_fact(v, val);
	/* Operations asked for before the first connection run now. */
	pump_all(v);
}

static void handle_ping_done(herd_virt_libvirt *v, lv_job *j)
{
	if (j->gen != v->gen || !v->connected)
		return;
	v->ping_running = false;
	if (j->failed && j->lost)
		connection_lost(v, j->err_detail);
}

static void handle_resync_done(herd_virt_libvirt *v, lv_job *j)
{
	if (j->gen != v->gen || !v->connected)
		return;
	v->resync_running = false;
	if (j->failed) {
		if (j->lost)
			connection_lost(v, j->err_detail);
		else
			log_warn("cannot list libvirt's domains: %s", j->err_detail);
		return;
	}
	if (j->have_res) {
		v->have_res = true;
		v->res = j->res;
	}
	apply_list(v, j->domains, j->serial, false);
}


/* What a job saw of its VM after the operation, as herd's state; false if
 * it saw nothing (the connection failed). */
static bool observed_state(const lv_vm *vm, const lv_job *j, const char *gone, herd_vm_state *st,
			   char *reason, size_t len)
{
	if (!j->observed)
		return false;
	if (j->found) {
		lv_vm_context ctx = vm_context(vm);
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
		set_state(v, vm, st, reason, 0);
}

/* The operation is over: it leaves its VM, its caller hears of it, the
 * next one on the VM may run. */
static void op_complete(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, GError *error)
{
	op->settling = false;
	timer_cancel(&op->settle);
	if (vm->active == op)
		vm->active = NULL;
	else if (vm->destroying == op)
		vm->destroying = NULL;
	else
		op = op_ref(op); /* not the VM's (any more): balance the unref */
	op_finish(op, error);
	op_unref(op);
	pump(v, vm);
}

static gboolean on_settle(gpointer data)
{
	lv_op *op = data;
	herd_virt_libvirt *v = op->v;
	g_source_unref(op->settle);
	op->settle = NULL;
	enter(v);
	op_ref(op);
	lv_vm *vm = vm_get(v, op->uuid);
	/* No event at all since it began: libvirt sent none (or it is lost),
	 * so what the operation saw is the best knowledge.  Otherwise the
	 * events had their say. */
	if (vm->event_serial <= op->begin_serial)
		set_state(v, vm, op->expect, op->expect_reason, 0);
	if (op->settling)
		op_complete(v, vm, op, NULL);
	op_unref(op);
	leave(v);
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
	op->settle = timer_new(v, SETTLE_MS, on_settle, op);
}

static gboolean on_shutdown_wait(gpointer data);

static void handle_op_done(herd_virt_libvirt *v, lv_job *j)
{
	lv_op *op = j->op;
	lv_vm *vm = vm_get(v, op->uuid);
	if (vm->active != op && vm->destroying != op) {
		/* Released meanwhile (the driver closed). */
		return;
	}
	if (j->lost && j->gen == v->gen)
		connection_lost(v, j->err_detail ? j->err_detail : "a call failed");
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
			set_state(v, vm, HERD_VM_STOPPED, "start failed", 0);
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
		op->wait = timer_new(v, op->timeout_s * 1000u, on_shutdown_wait, op);
		if (vm->active == op)
			vm->active = NULL;
		else
			vm->destroying = NULL;
		op_unref(op);
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
static void handle_begin(herd_virt_libvirt *v, lv_op *op)
{
	lv_vm *vm = vm_get(v, op->uuid);
	herd_vm_state s = vm->fact.state;
	op->begin_serial = v->event_serial;
	switch (op->kind) {
	case OP_START:
		if (s == HERD_VM_STOPPED || s == HERD_VM_CRASHED)
			set_state(v, vm, HERD_VM_STARTING, "starting", 0);
		break;
	case OP_SHUTDOWN:
		if (s == HERD_VM_RUNNING || s == HERD_VM_PAUSED || s == HERD_VM_STARTING)
			set_state(v, vm, HERD_VM_STOPPING,
				  op->timeout_s > 0 ? "shutting down" : "powering off", 0);
		break;
	case OP_DESTROY:
		if (s == HERD_VM_RUNNING || s == HERD_VM_PAUSED || s == HERD_VM_STARTING ||
		    s == HERD_VM_CRASHED)
			set_state(v, vm, HERD_VM_STOPPING, "powering off", 0);
		break;
	default:
		break;
	}
}

static void handle_event(herd_virt_libvirt *v, const lv_msg *m)
{
	if (m->gen != v->gen)
		return; /* from a connection given up on */
	lv_vm *vm = vm_get(v, m->uuid);
	vm->seen = true;
	vm->event_serial = ++v->event_serial;
	vm->event_us = g_get_monotonic_time();
	herd_vm_state st;
	char reason[64];
	lv_vm_context ctx = vm_context(vm);
	if (lv_map_event(&ctx, m->event, m->detail, &st, reason, sizeof(reason)))
		set_state(v, vm, st, reason, 0);
}

static void handle(herd_virt_libvirt *v, lv_msg *m)
{
	switch (m->kind) {
	case MSG_EVENT:
		handle_event(v, m);
		break;
	case MSG_LOST:
		if (m->gen != v->gen)
			break;
		if (v->connecting)
			v->lost_early = true;
		else
			connection_lost(v, m->text);
		break;
	case MSG_BEGIN:
		handle_begin(v, m->op);
		break;
	case MSG_FINISH:
		op_finish(m->op, m->error);
		m->error = NULL;
		break;
	case MSG_JOB:
		switch (m->job->kind) {
		case JOB_CONNECT:
			handle_connect_done(v, m->job);
			break;
		case JOB_RESYNC:
			handle_resync_done(v, m->job);
			break;
		case JOB_PING:
			handle_ping_done(v, m->job);
			break;
		case JOB_OP:
			handle_op_done(v, m->job);
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
	enter(v);
	while (!v->closed) {
		g_mutex_lock(&v->sh->lock);
		lv_msg *m = g_queue_pop_head(&v->sh->inbox);
		g_mutex_unlock(&v->sh->lock);
		if (!m)
			break;
		handle(v, m);
		msg_free(m);
	}
	leave(v);
	return G_SOURCE_CONTINUE;
}

static gboolean wake_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
	/* Unset before draining: a message posted meanwhile sets it again. */
	g_source_set_ready_time(s, -1);
	return cb(data);
}

static GSourceFuncs wake_funcs = {
	.dispatch = wake_dispatch,
};

/* ---- main thread: operations ---------------------------------------------------------------- */

static void dispatch_op(herd_virt_libvirt *v, lv_vm *vm, lv_op *op, bool alongside)
{
	if (alongside)
		vm->destroying = op; /* the queue's reference moves here */
	else
		vm->active = op;
	lv_msg *m = msg_new(MSG_BEGIN);
	m->op = op_ref(op);
	post(v->sh, m);
	lv_job *j = job_new(v, JOB_OP);
	j->op = op_ref(op);
	job_push(v, j);
}

/* Finish @op later, from the main loop (never inside the caller's call). */
static void finish_later(herd_virt_libvirt *v, lv_op *op, GError *error)
{
	lv_msg *m = msg_new(MSG_FINISH);
	m->op = op; /* takes the caller's reference */
	m->error = error;
	post(v->sh, m);
}

static void pump(herd_virt_libvirt *v, lv_vm *vm)
{
	while (!vm->active && !vm->destroying && !g_queue_is_empty(&vm->pending)) {
		lv_op *op = g_queue_pop_head(&vm->pending);
		if (op->finished) {
			op_unref(op); /* its deadline passed while it waited */
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

static void pump_all(herd_virt_libvirt *v)
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
			op_unref(p);
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

static gboolean on_deadline(gpointer data)
{
	lv_op *op = data;
	herd_virt_libvirt *v = op->v;
	g_source_unref(op->deadline);
	op->deadline = NULL;
	enter(v);
	unsigned s = (op->kind == OP_START ? START_TIMEOUT_MS : OP_TIMEOUT_MS) / 1000 +
		     (op->kind == OP_SHUTDOWN ? op->timeout_s : 0);
	g_autofree char *detail = g_strdup_printf("libvirt did not finish within %u s", s);
	lv_vm *vm = g_hash_table_lookup(v->vms, op->uuid);
	if (vm && g_ptr_array_remove(vm->waiters, op)) {
		op_finish(op, op_error(op, HERD_ERR_TIMEOUT, detail));
		op_unref(op);
	} else if (vm && op->settling && (vm->active == op || vm->destroying == op)) {
		/* Done in libvirt, its event still awaited: let the VM go. */
		op_complete(v, vm, op, op_error(op, HERD_ERR_TIMEOUT, detail));
	} else {
		/* Queued or running: the queue or the job drops it later. */
		op_finish(op, op_error(op, HERD_ERR_TIMEOUT, detail));
	}
	leave(v);
	return G_SOURCE_REMOVE;
}

static gboolean on_shutdown_wait(gpointer data)
{
	lv_op *op = data;
	herd_virt_libvirt *v = op->v;
	g_source_unref(op->wait);
	op->wait = NULL;
	enter(v);
	lv_vm *vm = g_hash_table_lookup(v->vms, op->uuid);
	if (vm && !lv_state_is_down(vm->fact.state) && !forced_destroy(vm)) {
		log_info("VM %s did not shut down within %u s: destroying it", op->uuid, op->timeout_s);
		lv_op *d = op_new(v, OP_DESTROY, op->uuid, NULL, NULL);
		d->forced = true;
		d->timeout_s = op->timeout_s;
		d->deadline = timer_new(v, OP_TIMEOUT_MS, on_deadline, d);
		destroy_submit(v, vm, d);
	}
	leave(v);
	return G_SOURCE_REMOVE;
}

static void submit(herd_virt *base, op_kind kind, const char *uuid, const char *xml,
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
	op->deadline = timer_new(v, deadline_ms, on_deadline, op);
	lv_vm *vm = vm_get(v, op->uuid);
	if (kind == OP_DESTROY) {
		destroy_submit(v, vm, op);
	} else {
		g_queue_push_tail(&vm->pending, op);
		pump(v, vm);
	}
}

static void lv_start(herd_virt *v, const char *uuid, const char *xml, herd_virt_done done,
		     gpointer user)
{
	submit(v, OP_START, uuid, xml, 0, done, user);
}

static void lv_shutdown(herd_virt *v, const char *uuid, unsigned timeout_s, herd_virt_done done,
			gpointer user)
{
	submit(v, OP_SHUTDOWN, uuid, NULL, timeout_s, done, user);
}

static void lv_destroy(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	submit(v, OP_DESTROY, uuid, NULL, 0, done, user);
}

static void lv_reboot(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	submit(v, OP_REBOOT, uuid, NULL, 0, done, user);
}

static void lv_reset(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	submit(v, OP_RESET, uuid, NULL, 0, done, user);
}

static void lv_suspend(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	submit(v, OP_SUSPEND, uuid, NULL, 0, done, user);
}

static void lv_resume(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	submit(v, OP_RESUME, uuid, NULL, 0, done, user);
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

/* ---- lifetime ------------------------------------------------------------------------------- */

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
	v->backoff_ms = RECONNECT_FIRST_MS;
	v->tick = timer_new(v, TICK_MS, on_tick, v);
	connect_now(v);
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
	timer_cancel(&v->retry);
	timer_cancel(&v->tick);
	timer_cancel(&v->slow);
	v->closed = true;
	GQueue inbox = G_QUEUE_INIT;
	g_mutex_lock(&v->sh->lock);
	inbox = v->sh->inbox;
	g_queue_init(&v->sh->inbox);
	g_mutex_unlock(&v->sh->lock);
	lv_msg *m;
	while ((m = g_queue_pop_head(&inbox))) {
		if (m->op)
			op_drop(m->op);
		msg_free(m);
	}
	GHashTableIter it;
	gpointer val;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &val)) {
		lv_vm *vm = val;
		lv_op *op;
		while ((op = g_queue_pop_head(&vm->pending))) {
			op_drop(op);
			op_unref(op);
		}
		while (vm->waiters->len > 0) {
			op = g_ptr_array_steal_index(vm->waiters, 0);
			op_drop(op);
			op_unref(op);
		}
		lv_op *running[2] = { vm->active, vm->destroying };
		vm->active = vm->destroying = NULL;
		for (int i = 0; i < 2; i++) {
			if (running[i]) {
				op_drop(running[i]);
				op_unref(running[i]);
			}
		}
	}
	g_mutex_lock(&v->sh->lock);
	v->sh->closing = true;
	lv_conn *conn = v->sh->conn;
	v->sh->conn = NULL;
	g_mutex_unlock(&v->sh->lock);
	if (conn) {
		lv_job *j = job_new(v, JOB_DISCONNECT);
		j->old_conn = conn;
		job_push(v, j);
	}
	if (v->old_conn) {
		lv_job *j = job_new(v, JOB_DISCONNECT);
		j->old_conn = v->old_conn;
		v->old_conn = NULL;
		job_push(v, j);
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
	shared_unref(v->sh);
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
	v->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, vm_free);

	lv_shared *sh = g_new0(lv_shared, 1);
	g_atomic_ref_count_init(&sh->refs);
	g_mutex_init(&sh->lock);
	g_cond_init(&sh->idle);
	g_queue_init(&sh->inbox);
	sh->wake = g_source_new(&wake_funcs, sizeof(GSource));
	g_source_set_callback(sh->wake, drain, v, NULL);
	g_source_set_name(sh->wake, "herd libvirt inbox");
	g_source_attach(sh->wake, v->ctx);
	v->sh = sh;

	v->pool = g_thread_pool_new(worker, NULL, WORKER_THREADS, FALSE, NULL);
	v->control = g_thread_pool_new(worker, NULL, 1, FALSE, NULL);
	return &v->base;
}
