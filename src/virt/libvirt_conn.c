/*
 * The libvirt driver's connection, on the main thread: connecting (on the
 * control thread, see run_connect in libvirt_worker.c), reconnecting with a
 * growing pause, pinging and listing every few seconds, telling a stuck
 * libvirtd from a busy one, and reporting lost and back to the user.  On
 * every (re)connect and every list the cache is brought in line
 * (lv_cache_apply_list).
 */
#define G_LOG_DOMAIN "virt"
#include "virt/libvirt_priv.h"

#include "common/log.h"

#include <string.h>

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
