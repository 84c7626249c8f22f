/*
 * virt-probe URI: the libvirt VM driver on a GLib main loop, driven by
 * commands on stdin, reporting on stdout (one line each, flushed), for
 * test_virt.py and test_virt_migrate.py inside a test node.
 *
 * Commands:
 *   start ID UUID XMLFILE | shutdown ID UUID TIMEOUT_S
 *   destroy|reboot|reset|suspend|resume ID UUID
 *   migrate ID UUID NODE ADDRESS TIMEOUT_S tls|plain [BANDWIDTH_MIB_S]
 *   facts | resources | stall | rusage | tick on|off | quit
 * Reports (T: milliseconds since the probe started, monotonic):
 *   ready | connection lost|back t=T
 *   fact UUID STATE since=WALL_MS t=T reason=…
 *   begin ID t=T | done ID ok t=T elapsed_ms=MS
 *   done ID err CODE t=T elapsed_ms=MS msg=…
 *   progress ID t=T elapsed_ms=MS total=B processed=B remaining=B
 *            dirty_rate=PAGES_S page_size=B bps=B_S iteration=N
 *            downtime_ms=MS throttle=PCT started=WALL_MS
 *                                (while a migration runs: what migrate_progress()
 *                                 says, every PROGRESS_MS when it changed)
 *   facts-begin / fact-now UUID STATE since=WALL_MS reason=… / facts-end
 *   resources mem=MIB free=MIB cpus=N | resources unknown
 *   stall max_ms=MS ticks=N       (longest gap of a 10 ms timer since the last stall;
 *                                  "tick off" stops that timer, to measure the driver alone)
 *   tick on|off
 *   rusage user_ms=MS sys_ms=MS   (this process's CPU time)
 *   bye
 * stdin closing is quit.  Errors of the probe itself: "error …".
 */
#include "common/error.h"
#include "common/log.h"
#include "virt/driver.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

static gint64 t0_us;
static herd_virt *virt;
static GMainLoop *loop;
static gint64 last_tick_us, max_gap_us, ticks;
static guint tick_source;

static double t_ms(void)
{
	return (g_get_monotonic_time() - t0_us) / 1000.0;
}

static void say(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void on_fact(gpointer user, const herd_vm_fact *f)
{
	say("fact %s %s since=%" G_GINT64_FORMAT " t=%.1f reason=%s", f->uuid,
	    herd_vm_state_name(f->state), f->since_ms, t_ms(), f->reason);
}

static void on_connection(gpointer user, bool lost)
{
	say("connection %s t=%.1f", lost ? "lost" : "back", t_ms());
}

typedef struct {
	char *id;
	double begun;
	char uuid[37];          /* migrate: the VM, for its progress */
	guint progress;         /* … the timer that prints it */
	herd_migrate_progress last;
} op_ctx;

/* How often a migration's progress is looked at (the driver asks libvirt
 * about once a second; this only reads what it last learnt). */
#define PROGRESS_MS 250

static void on_done(const GError *error, gpointer user)
{
	op_ctx *o = user;
	double now = t_ms();
	if (o->progress)
		g_source_remove(o->progress);
	if (error)
		say("done %s err %s t=%.1f elapsed_ms=%.1f msg=%s", o->id,
		    error->domain == HERD_ERROR ? herd_error_name(error->code) : "other", now,
		    now - o->begun, error->message);
	else
		say("done %s ok t=%.1f elapsed_ms=%.1f", o->id, now, now - o->begun);
	g_free(o->id);
	g_free(o);
}

static op_ctx *begin(const char *id)
{
	op_ctx *o = g_new0(op_ctx, 1);
	o->id = g_strdup(id);
	o->begun = t_ms();
	say("begin %s t=%.1f", id, o->begun);
	return o;
}

static gboolean on_progress(gpointer data)
{
	op_ctx *o = data;
	herd_migrate_progress p;
	if (!virt || !virt->ops->migrate_progress(virt, o->uuid, &p))
		return G_SOURCE_CONTINUE;
	/* elapsed_ms moves on its own; the rest only when libvirt says more */
	const herd_migrate_progress *l = &o->last;
	if (p.memory_total == l->memory_total && p.memory_processed == l->memory_processed &&
	    p.memory_remaining == l->memory_remaining && p.dirty_rate == l->dirty_rate &&
	    p.bandwidth == l->bandwidth && p.iteration == l->iteration &&
	    p.expected_downtime_ms == l->expected_downtime_ms &&
	    p.autoconverge_throttle == l->autoconverge_throttle && p.started_ms == l->started_ms)
		return G_SOURCE_CONTINUE;
	o->last = p;
	say("progress %s t=%.1f elapsed_ms=%" G_GUINT64_FORMAT " total=%" G_GUINT64_FORMAT
	    " processed=%" G_GUINT64_FORMAT " remaining=%" G_GUINT64_FORMAT
	    " dirty_rate=%" G_GUINT64_FORMAT " page_size=%" G_GUINT64_FORMAT " bps=%" G_GUINT64_FORMAT
	    " iteration=%" G_GUINT64_FORMAT " downtime_ms=%" G_GUINT64_FORMAT " throttle=%u"
	    " started=%" G_GINT64_FORMAT,
	    o->id, t_ms(), p.elapsed_ms, p.memory_total, p.memory_processed, p.memory_remaining,
	    p.dirty_rate, p.page_size, p.bandwidth, p.iteration, p.expected_downtime_ms,
	    p.autoconverge_throttle, p.started_ms);
	return G_SOURCE_CONTINUE;
}

static gboolean on_tick(gpointer data)
{
	gint64 now = g_get_monotonic_time();
	if (last_tick_us && now - last_tick_us > max_gap_us)
		max_gap_us = now - last_tick_us;
	last_tick_us = now;
	ticks++;
	return G_SOURCE_CONTINUE;
}

static void quit(void)
{
	herd_virt_free(virt);
	virt = NULL;
	say("bye");
	g_main_loop_quit(loop);
}

static void command(char **w, int n)
{
	const char *c = w[0];
	if (strcmp(c, "start") == 0 && n == 4) {
		g_autofree char *xml = NULL;
		g_autoptr(GError) error = NULL;
		if (!g_file_get_contents(w[3], &xml, NULL, &error)) {
			say("error %s", error->message);
			return;
		}
		virt->ops->start(virt, w[2], xml, on_done, begin(w[1]));
	} else if (strcmp(c, "shutdown") == 0 && n == 4) {
		virt->ops->shutdown(virt, w[2], (unsigned)atoi(w[3]), on_done, begin(w[1]));
	} else if (strcmp(c, "destroy") == 0 && n == 3) {
		virt->ops->destroy(virt, w[2], on_done, begin(w[1]));
	} else if (strcmp(c, "reboot") == 0 && n == 3) {
		virt->ops->reboot(virt, w[2], on_done, begin(w[1]));
	} else if (strcmp(c, "reset") == 0 && n == 3) {
		virt->ops->reset(virt, w[2], on_done, begin(w[1]));
	} else if (strcmp(c, "suspend") == 0 && n == 3) {
		virt->ops->suspend(virt, w[2], on_done, begin(w[1]));
	} else if (strcmp(c, "resume") == 0 && n == 3) {
		virt->ops->resume(virt, w[2], on_done, begin(w[1]));
	} else if (strcmp(c, "migrate") == 0 && (n == 7 || n == 8)) {
		herd_migrate_params p = {
			.to = w[3],
			.address = w[4],
			.timeout_s = (unsigned)atoi(w[5]),
			.tls = strcmp(w[6], "tls") == 0,
			.bandwidth_mib_s = n == 8 ? (unsigned)atoi(w[7]) : 0,
			/* qemu.conf's range on the test nodes (for messages) */
			.port_min = 49152,
			.port_max = 49215,
		};
		op_ctx *o = begin(w[1]);
		g_strlcpy(o->uuid, w[2], sizeof(o->uuid));
		o->progress = g_timeout_add(PROGRESS_MS, on_progress, o);
		virt->ops->migrate(virt, w[2], &p, on_done, o);
	} else if (strcmp(c, "facts") == 0) {
		g_autoptr(GArray) all = virt->ops->facts(virt);
		say("facts-begin");
		for (guint i = 0; i < all->len; i++) {
			herd_vm_fact *f = &g_array_index(all, herd_vm_fact, i);
			say("fact-now %s %s since=%" G_GINT64_FORMAT " reason=%s", f->uuid,
			    herd_vm_state_name(f->state), f->since_ms, f->reason);
		}
		say("facts-end");
	} else if (strcmp(c, "resources") == 0) {
		herd_node_resources r;
		if (virt->ops->resources(virt, &r))
			say("resources mem=%" G_GUINT64_FORMAT " free=%" G_GUINT64_FORMAT " cpus=%u",
			    r.memory_mib, r.free_mib, r.cpus);
		else
			say("resources unknown");
	} else if (strcmp(c, "stall") == 0) {
		say("stall max_ms=%.1f ticks=%" G_GINT64_FORMAT, max_gap_us / 1000.0, ticks);
		max_gap_us = 0;
		ticks = 0;
	} else if (strcmp(c, "rusage") == 0) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		say("rusage user_ms=%.1f sys_ms=%.1f",
		    ru.ru_utime.tv_sec * 1000.0 + ru.ru_utime.tv_usec / 1000.0,
		    ru.ru_stime.tv_sec * 1000.0 + ru.ru_stime.tv_usec / 1000.0);
	} else if (strcmp(c, "tick") == 0 && n == 2) {
		if (strcmp(w[1], "off") == 0 && tick_source) {
			g_source_remove(tick_source);
			tick_source = 0;
		} else if (strcmp(w[1], "on") == 0 && !tick_source) {
			last_tick_us = 0;
			tick_source = g_timeout_add(10, on_tick, NULL);
		}
		say("tick %s", tick_source ? "on" : "off");
	} else if (strcmp(c, "quit") == 0) {
		quit();
	} else {
		say("error unknown command '%s' with %d word(s)", c, n);
	}
}

static gboolean on_stdin(GIOChannel *ch, GIOCondition cond, gpointer data)
{
	for (;;) {
		g_autofree char *line = NULL;
		gsize len = 0;
		g_autoptr(GError) error = NULL;
		GIOStatus st = g_io_channel_read_line(ch, &line, &len, NULL, &error);
		if (st == G_IO_STATUS_AGAIN)
			return G_SOURCE_CONTINUE;
		if (st != G_IO_STATUS_NORMAL) {
			if (virt)
				quit();
			return G_SOURCE_REMOVE;
		}
		g_strstrip(line);
		if (!*line)
			continue;
		g_auto(GStrv) w = g_strsplit(line, " ", -1);
		command(w, (int)g_strv_length(w));
		if (!virt)
			return G_SOURCE_REMOVE;
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: virt-probe URI\n");
		return 2;
	}
	herd_log_init(HERD_LOG_INFO, true);
	t0_us = g_get_monotonic_time();
	loop = g_main_loop_new(NULL, FALSE);
	static const herd_virt_callbacks cb = { .fact = on_fact, .connection = on_connection };
	virt = herd_virt_libvirt_new(argv[1], &cb, NULL);
	g_autoptr(GError) error = NULL;
	if (!virt->ops->open(virt, &error)) {
		fprintf(stderr, "virt-probe: %s\n", error->message);
		return 1;
	}
	tick_source = g_timeout_add(10, on_tick, NULL);
	GIOChannel *in = g_io_channel_unix_new(0);
	g_io_channel_set_flags(in, G_IO_FLAG_NONBLOCK, NULL);
	g_io_add_watch(in, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, NULL);
	say("ready");
	g_main_loop_run(loop);
	g_io_channel_unref(in);
	g_main_loop_unref(loop);
	return 0;
}
