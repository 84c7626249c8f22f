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
 * destroy_submit in libvirt_queue.c); different VMs run in parallel.
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
 * Migrations.  A live migration is one blocking libvirt call for its whole
 * length (peer to peer: this node's libvirtd drives it), so it runs in a
 * pool of its own and on a connection of its own, and never takes a worker
 * or one of libvirtd's few calls per client from the other operations.
 * Meanwhile a worker asks for its progress once a second, and when its
 * timeout passes another aborts it (libvirt then ends the blocked call).
 *
 * Bounds.  Every operation has a deadline after which its caller gets a
 * timeout error; close() waits at most a second for jobs still running (a
 * migration under way is left to libvirtd, which finishes or fails it).
 *
 * Files.  This one holds the herd_virt vtable, the constructor and the
 * destructor, and the main thread's end of the inbox, which hands each
 * message to the part it is for: libvirt_worker.c (the threads, libvirt's
 * callbacks, the inbox), libvirt_conn.c (the connection), libvirt_cache.c
 * (what is known of each VM), libvirt_queue.c (the operations) and
 * libvirt_state.c (pure tables).  libvirt_priv.h has their shared types.
 */
#define G_LOG_DOMAIN "virt"
#include "virt/libvirt_priv.h"

#include "common/log.h"

#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/virterror.h>

/* Enough for 20 VMs starting after a failover: libvirtd serves at most 5
 * calls of one client at once (max_client_requests), the rest queue there. */
#define WORKER_THREADS 8
/* As many migrations at once as herd's setting migration_parallel allows. */
#define MIGRATION_THREADS 16
#define CLOSE_WAIT_MS 1000

static const herd_virt_ops lv_ops;

static void destroy_driver(herd_virt_libvirt *v);

/* ---- main-loop helpers ---------------------------------------------------------------------- */

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
		case JOB_PROGRESS:
			lv_queue_progress_done(v, m->job);
			break;
		case JOB_ABORT:
			lv_queue_abort_done(v, m->job);
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
	lv_queue_submit(v, OP_START, uuid, xml, 0, NULL, done, user);
}

static void lv_shutdown(herd_virt *v, const char *uuid, unsigned timeout_s, herd_virt_done done,
			gpointer user)
{
	lv_queue_submit(v, OP_SHUTDOWN, uuid, NULL, timeout_s, NULL, done, user);
}

static void lv_destroy(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_DESTROY, uuid, NULL, 0, NULL, done, user);
}

static void lv_reboot(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_REBOOT, uuid, NULL, 0, NULL, done, user);
}

static void lv_reset(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_RESET, uuid, NULL, 0, NULL, done, user);
}

static void lv_suspend(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_SUSPEND, uuid, NULL, 0, NULL, done, user);
}

static void lv_change_media(herd_virt *v, const char *uuid, const char *device_xml, herd_virt_done done,
			    gpointer user)
{
	lv_queue_submit(v, OP_CHANGE_MEDIA, uuid, device_xml, 0, NULL, done, user);
}

static void lv_resume(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_RESUME, uuid, NULL, 0, NULL, done, user);
}

static void lv_block_resize(herd_virt *v, const char *uuid, const char *path, uint64_t size,
			    herd_virt_done done, gpointer user)
{
	lv_queue_submit_block_resize(v, uuid, path, size, done, user);
}

static void lv_migrate(herd_virt *v, const char *uuid, const herd_migrate_params *p,
		       herd_virt_done done, gpointer user)
{
	lv_queue_submit(v, OP_MIGRATE, uuid, NULL, p ? p->timeout_s : 0, p, done, user);
}

static bool lv_migrate_progress(herd_virt *base, const char *uuid, herd_migrate_progress *out)
{
	return lv_queue_migrate_progress((herd_virt_libvirt *)base, uuid, out);
}

static bool lv_migrate_cancel(herd_virt *base, const char *uuid)
{
	return lv_queue_migrate_cancel((herd_virt_libvirt *)base, uuid);
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
	g_thread_pool_free(v->migrations, FALSE, FALSE);
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
	.change_media = lv_change_media,
	.suspend = lv_suspend,
	.block_resize = lv_block_resize,
	.resume = lv_resume,
	.migrate = lv_migrate,
	.migrate_progress = lv_migrate_progress,
	.migrate_cancel = lv_migrate_cancel,
	.facts = lv_facts,
	.resources = lv_resources,
};

static void silent_error(void *data, virErrorPtr err)
{
}

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
	v->migrations = g_thread_pool_new(lv_worker_run, NULL, MIGRATION_THREADS, FALSE, NULL);
	v->control = g_thread_pool_new(lv_worker_run, NULL, 1, FALSE, NULL);
	return &v->base;
}

char *herd_virt_libvirt_version(void)
{
	unsigned long v = 0;
	if (virGetVersion(&v, NULL, NULL) < 0)
		return NULL;
	return g_strdup_printf("%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
}
