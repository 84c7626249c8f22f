/*
 * The libvirt VM driver's insides, shared by its files and by nothing else:
 * the types every part of the driver sees (an operation, a VM, a job, a
 * message, the connection, the part shared with the threads, the driver
 * itself) and each file's functions for the others.  The only private
 * header: the files include it and the public ones, so includes never
 * loop.  The files:
 *
 *   libvirt.c         the herd_virt vtable, its constructor and destructor,
 *                     and the inbox's dispatch on the main thread
 *   libvirt_worker.c  all that runs off the main thread: the jobs that call
 *                     libvirt, libvirt's callbacks, and the inbox they post to
 *   libvirt_conn.c    connecting, reconnecting with backoff, pings and lists
 *   libvirt_cache.c   what the main thread knows of each VM, and its facts
 *   libvirt_queue.c   the operations: per-VM queues, deadlines, settling,
 *                     shutdown-then-destroy
 *   libvirt_state.c   pure tables from libvirt's states and codes to herd's
 */
#pragma once

#include "common/error.h"
#include "virt/driver.h"
#include "virt/libvirt_state.h"

#include <glib.h>
#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
	OP_START, OP_SHUTDOWN, OP_DESTROY, OP_REBOOT, OP_RESET, OP_SUSPEND, OP_RESUME, OP_MIGRATE,
	OP_CHANGE_MEDIA, OP_BLOCK_RESIZE
} op_kind;

typedef struct herd_virt_libvirt herd_virt_libvirt;

/* One operation asked for by the user (or a destroy herd makes itself after
 * a shutdown timed out).  Workers read only the fields set before it is
 * queued (kind, uuid, xml, timeout_s, forced, the migration's); the rest is
 * the main thread's.  Referenced by its VM's queue and by a running job. */
typedef struct lv_op {
	gatomicrefcount refs;
	op_kind kind;
	char uuid[37];
	char *xml;              /* start: the domain XML; block-resize: the disk's path */
	uint64_t size;          /* block-resize: the disk's new size in bytes */
	unsigned timeout_s;     /* shutdown: seconds before it is forced;
				 * migrate: before it is cancelled */
	bool forced;            /* herd's destroy after a shutdown timeout */
	char *to;               /* migrate: the destination node's name, */
	char *address;          /* … its address, */
	bool tls;               /* … the memory encrypted, */
	unsigned bandwidth_mib_s; /* … its limit (0: none), */
	unsigned port_min, port_max; /* … the destination's ports (for messages) */
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
	/* migrate, while it runs: */
	GSource *poll;          /* asks for its progress every PROGRESS_MS */
	bool polling;           /* … and an answer is still out */
	herd_migrate_progress progress; /* what libvirt last said */
	GSource *cancel;        /* its timeout, then the retries of the abort */
	bool cancelling;        /* the timeout passed: libvirt was asked to abort */
	bool cancelled;         /* an operator cancelled it: libvirt was asked to abort */
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
				 * conn_close() in libvirt_worker.c */
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

/* JOB_PROGRESS and JOB_ABORT are about a migration that a JOB_OP runs. */
typedef enum {
	JOB_CONNECT, JOB_RESYNC, JOB_PING, JOB_OP, JOB_DISCONNECT, JOB_PROGRESS, JOB_ABORT
} job_kind;

/* One domain as libvirt listed it. */
typedef struct lv_obs {
	char uuid[37];
	int state, reason;      /* virDomainState and its reason */
	int64_t started_ms;     /* when its QEMU process started, 0 if unknown */
	int job_operation;      /* libvirt's job on one that may be a migration's
				 * destination (lv_domain_may_be_incoming), else 0 */
} lv_obs;

/* Work for the threads (see libvirt_worker.c) and, once done, its results,
 * which go back to the main thread in an MSG_JOB. */
typedef struct lv_job {
	job_kind kind;
	lv_shared *sh;          /* dropped before the job goes back to the main thread */
	char *uri;              /* CONNECT; OP migrate (its own connection) */
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
	bool have_progress;     /* PROGRESS: a migration job runs, … */
	herd_migrate_progress progress; /* … this far */
} lv_job;

typedef enum { MSG_EVENT, MSG_LOST, MSG_JOB, MSG_BEGIN, MSG_FINISH } msg_kind;

/* What the threads and libvirt's callbacks tell the main thread, through
 * the inbox (lv_shared), in the order they said it. */
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

/* What connection() last told the user. */
enum { REPORTED_NOTHING, REPORTED_UP, REPORTED_DOWN };

/* The driver; only the main thread touches it (the threads see lv_shared). */
struct herd_virt_libvirt {
	herd_virt base;         /* first: herd_virt * is a herd_virt_libvirt * */
	char *uri;
	GMainContext *ctx;
	lv_shared *sh;
	GThreadPool *pool;      /* operations, closing connections */
	GThreadPool *migrations; /* migrations: each blocks a thread for its
				  * length, which must not starve the pool */
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

/* ---- libvirt.c: main-loop helpers --------------------------------------------------------- */

/* Wall-clock time in ms, as facts carry it. */
static inline int64_t lv_now_ms(void)
{
	return g_get_real_time() / 1000;
}

/* A main-loop entry point begins: a callback may free the driver meanwhile. */
void lv_enter(herd_virt_libvirt *v);
/* … and ends; true if the driver is gone (freed by a callback meanwhile). */
bool lv_leave(herd_virt_libvirt *v);
/* A one-shot timer on the driver's main context calling @fn(@data) after @ms. */
GSource *lv_timer_new(herd_virt_libvirt *v, unsigned ms, GSourceFunc fn, gpointer data);
/* Stop the timer *@s if any, and forget it. */
void lv_timer_cancel(GSource **s);

/* ---- libvirt_worker.c: the threads and the inbox ------------------------------------------ */

/* The part shared with the threads; its inbox wakes @drain(@data) on @ctx. */
lv_shared *lv_shared_new(GMainContext *ctx, GSourceFunc drain, gpointer data);
/* Drop a reference to the shared part (any thread); NULL is fine. */
void lv_shared_unref(lv_shared *sh);
/* Queue @m for the main thread and wake it (any thread). */
void lv_post(lv_shared *sh, lv_msg *m);
/* A new, empty message of @kind. */
lv_msg *lv_msg_new(msg_kind kind);
/* Free @m with what it holds (any thread); NULL is fine. */
void lv_msg_free(lv_msg *m);
/* A job of @kind, under the current connection generation and event count. */
lv_job *lv_job_new(herd_virt_libvirt *v, job_kind kind);
/* Hand @j to its thread pool: the control thread, or the workers for operations. */
void lv_job_push(herd_virt_libvirt *v, lv_job *j);
/* The thread pools' function: run one job, then post it back. */
void lv_worker_run(gpointer data, gpointer unused);

/* ---- libvirt_conn.c: the connection, on the main thread ----------------------------------- */

/* Connect, and keep pinging, listing and reconnecting until close(). */
void lv_conn_start(herd_virt_libvirt *v);
/* The connection is lost (@why): report it and reconnect after a pause. */
void lv_conn_lost(herd_virt_libvirt *v, const char *why);
/* libvirt's close callback fired for the connection of generation @gen. */
void lv_conn_closed(herd_virt_libvirt *v, unsigned gen, const char *why);
/* A JOB_CONNECT came back: install the connection, or retry later. */
void lv_conn_connect_done(herd_virt_libvirt *v, lv_job *j);
/* A JOB_PING came back. */
void lv_conn_ping_done(herd_virt_libvirt *v, lv_job *j);
/* A JOB_RESYNC (full list) came back. */
void lv_conn_resync_done(herd_virt_libvirt *v, lv_job *j);

/* ---- libvirt_cache.c: what the main thread knows of each VM ------------------------------- */

/* The VM @uuid, added (stopped) if unknown. */
lv_vm *lv_vm_get(herd_virt_libvirt *v, const char *uuid);
/* Free a VM (the hash table's value destructor); its operations are gone. */
void lv_vm_free(gpointer p);
/* Report @vm's fact to the user. */
void lv_emit_fact(herd_virt_libvirt *v, lv_vm *vm);
/* @vm is in @state now, for @reason, since @since_ms (0: now); reports it. */
void lv_set_state(herd_virt_libvirt *v, lv_vm *vm, herd_vm_state state, const char *reason,
		  int64_t since_ms);
/* A lifecycle event (MSG_EVENT) arrived. */
void lv_cache_event(herd_virt_libvirt *v, const lv_msg *m);
/* Bring the cache in line with a full list of libvirt's @domains (lv_obs). */
void lv_cache_apply_list(herd_virt_libvirt *v, GArray *domains, uint64_t serial,
			 bool reconnected);

/* ---- libvirt_queue.c: operations ------------------------------------------------------------ */

/* Queue an operation of @kind on @uuid (a migration as @mp says, else NULL);
 * @done is called once, always later. */
void lv_queue_submit(herd_virt *base, op_kind kind, const char *uuid, const char *xml,
		     unsigned timeout_s, const herd_migrate_params *mp, herd_virt_done done,
		     gpointer user);
/* Queue growing disk @path of @uuid to @size bytes, live. */
void lv_queue_submit_block_resize(herd_virt *base, const char *uuid, const char *path,
				  uint64_t size, herd_virt_done done, gpointer user);
/* Abort the migration of @uuid that runs (an operator's cancel); false if none. */
bool lv_queue_migrate_cancel(herd_virt_libvirt *v, const char *uuid);
/* The progress of the migration of @uuid that runs, in @out; false if none. */
bool lv_queue_migrate_progress(herd_virt_libvirt *v, const char *uuid,
			       herd_migrate_progress *out);
/* A JOB_PROGRESS came back. */
void lv_queue_progress_done(herd_virt_libvirt *v, lv_job *j);
/* A JOB_ABORT came back. */
void lv_queue_abort_done(herd_virt_libvirt *v, lv_job *j);
/* Drop a reference to @op (any thread); NULL is fine. */
void lv_op_unref(lv_op *op);
/* Call @op's done callback, unless it was called already; takes @error. */
void lv_op_finish(lv_op *op, GError *error);
/* Forget @op's completion (the driver closes): no callback, no timers. */
void lv_op_drop(lv_op *op);
/* An operation's MSG_BEGIN: put its VM in the transitional state. */
void lv_queue_op_begin(herd_virt_libvirt *v, lv_op *op);
/* A JOB_OP came back: settle, wait for the shutdown, or complete. */
void lv_queue_op_done(herd_virt_libvirt *v, lv_job *j);
/* Run what waits on every VM (after a connection came or was given up on). */
void lv_queue_pump_all(herd_virt_libvirt *v);
/* @vm changed to @state: finish the operations that waited for it. */
void lv_queue_state_changed(herd_virt_libvirt *v, lv_vm *vm, herd_vm_state state);
/* What the state tables need to know of @vm (see lv_vm_context). */
lv_vm_context lv_vm_context_of(const lv_vm *vm);
/* Drop every operation of every VM without a callback (close()). */
void lv_queue_drop_all(herd_virt_libvirt *v);
