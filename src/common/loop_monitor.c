#include "common/loop_monitor.h"

#include "common/log.h"

#include <sys/resource.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Bookkeeping                                                         */

void loop_stalls_init(loop_stalls *s)
{
	for (unsigned i = 0; i < LOOP_STALLS_SECONDS; i++) {
		s->second[i] = -1;
		s->max_us[i] = 0;
		s->cpu_us[i] = -1;
	}
	s->max_ever_us = 0;
	s->max_ever_cpu_us = -1;
}

void loop_stalls_record(loop_stalls *s, gint64 end_us, gint64 stall_us)
{
	loop_stalls_record_cpu(s, end_us, stall_us, -1);
}

void loop_stalls_record_cpu(loop_stalls *s, gint64 end_us, gint64 stall_us, gint64 cpu_us)
{
	gint64 sec = end_us / G_USEC_PER_SEC;
	unsigned i = (unsigned)(sec % LOOP_STALLS_SECONDS);
	if (s->second[i] != sec) {
		/* a slot last used a minute (or more) ago */
		s->second[i] = sec;
		s->max_us[i] = 0;
		s->cpu_us[i] = -1;
	}
	if (stall_us >= s->max_us[i]) {
		s->max_us[i] = stall_us;
		s->cpu_us[i] = cpu_us;
	}
	if (stall_us >= s->max_ever_us) {
		s->max_ever_us = stall_us;
		s->max_ever_cpu_us = cpu_us;
	}
}

/* The slot of the longest stall in the window, or -1. */
static int worst_slot(const loop_stalls *s, gint64 now_us, unsigned window_s)
{
	gint64 now_s = now_us / G_USEC_PER_SEC;
	int worst = -1;
	for (unsigned i = 0; i < LOOP_STALLS_SECONDS; i++) {
		gint64 age_s = now_s - s->second[i];
		if (s->second[i] >= 0 && age_s >= 0 && age_s < (gint64)window_s &&
		    (worst < 0 || s->max_us[i] > s->max_us[worst]))
			worst = (int)i;
	}
	return worst;
}

gint64 loop_stalls_max_us(const loop_stalls *s, gint64 now_us, unsigned window_s)
{
	int i = worst_slot(s, now_us, window_s);
	return i < 0 ? 0 : s->max_us[i];
}

gint64 loop_stalls_max_cpu_us(const loop_stalls *s, gint64 now_us, unsigned window_s)
{
	int i = worst_slot(s, now_us, window_s);
	return i < 0 ? -1 : s->cpu_us[i];
}

/* ------------------------------------------------------------------ */
/* The poll wrapper                                                    */

struct loop_monitor {
	GMainContext *context;
	GPollFunc poll;            /* the context's own, called in between */
	loop_monitor_clock_fn clock;
	loop_monitor_clock_fn cpu_clock; /* the thread's CPU time, or NULL */
	gint64 returned_us;        /* when the last poll returned; 0: none yet */
	gint64 returned_cpu_us;
	loop_stalls stalls;
};

/* The poll function has no user data: the one monitor running. */
static loop_monitor *running;

gint64 loop_monitor_thread_cpu_us(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

gint64 loop_monitor_process_cpu_us(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (gint64)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * G_USEC_PER_SEC +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static gint monitored_poll(GPollFD *fds, guint n_fds, gint timeout_ms)
{
	loop_monitor *m = running;
	gint64 entered_us = m->clock();
	gint64 entered_cpu_us = m->cpu_clock ? m->cpu_clock() : -1;
	if (m->returned_us) {
		gint64 stall_us = entered_us - m->returned_us;
		gint64 cpu_us = m->cpu_clock ? entered_cpu_us - m->returned_cpu_us : -1;
		loop_stalls_record_cpu(&m->stalls, entered_us, stall_us, cpu_us);
		/* Once per stall and only for long ones: a line in the log at
		 * the moment it happened, beside what else went on then. */
		if (stall_us >= LOOP_MONITOR_LOG_STALL_US && cpu_us >= 0)
			log_warn("the main loop stalled for %lld ms (%lld ms of it on the CPU): events waited that long",
				 (long long)(stall_us / 1000), (long long)(cpu_us / 1000));
		else if (stall_us >= LOOP_MONITOR_LOG_STALL_US)
			log_warn("the main loop stalled for %lld ms: events waited that long",
				 (long long)(stall_us / 1000));
	}
	gint rc = m->poll(fds, n_fds, timeout_ms);
	m->returned_us = m->clock();
	if (m->cpu_clock)
		m->returned_cpu_us = m->cpu_clock();
	return rc;
}

loop_monitor *loop_monitor_start(GMainContext *context, loop_monitor_clock_fn clock)
{
	if (running) {
		log_warn("a main-loop monitor is already running; not starting another");
		return NULL;
	}
	loop_monitor *m = g_new0(loop_monitor, 1);
	m->context = g_main_context_ref(context ? context : g_main_context_default());
	m->clock = clock ? clock : g_get_monotonic_time;
	m->cpu_clock = clock ? NULL : loop_monitor_thread_cpu_us;
	m->poll = g_main_context_get_poll_func(m->context);
	loop_stalls_init(&m->stalls);
	running = m;
	g_main_context_set_poll_func(m->context, monitored_poll);
	return m;
}

void loop_monitor_free(loop_monitor *m)
{
	if (!m)
		return;
	g_main_context_set_poll_func(m->context, m->poll);
	g_main_context_unref(m->context);
	running = NULL;
	g_free(m);
}

const loop_stalls *loop_monitor_stalls(const loop_monitor *m)
{
	return &m->stalls;
}
