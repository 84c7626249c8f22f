#define G_LOG_DOMAIN "daemon"
#include "daemon/memory_trim.h"

#include "common/log.h"
#include "common/loop_monitor.h"
#include "common/memory.h"
#include "store/db.h"
#include "store/state.h"

#define CHECK_S 5
/* Busy: more than 1 % of a core over a period (50 ms of CPU in 5 s); at
 * rest herdd takes 0.2 %, a node applying 40 defines a second that others
 * took 2 %. */
#define BUSY_PERMILLE 10

struct herdd_memory_trim {
	herd_cluster *cluster;
	guint timer;
	gint64 cpu_us;   /* herdd's CPU time at the last check */
	bool burst;      /* a busy period since the last trim */
};

static gboolean check(gpointer data)
{
	herdd_memory_trim *t = data;
	gint64 now = loop_monitor_process_cpu_us();
	gint64 used = now - t->cpu_us;
	t->cpu_us = now;
	if (used * 1000 > (gint64)CHECK_S * G_USEC_PER_SEC * BUSY_PERMILLE) {
		t->burst = true;
		return G_SOURCE_CONTINUE;
	}
	if (!t->burst)
		return G_SOURCE_CONTINUE;
	t->burst = false;
	store_state *st = herd_cluster_state(t->cluster);
	if (st && st->db)
		store_db_release_memory(st->db);
	herd_malloc_release();
	log_debug("a burst of work is over: freed memory given back (%.1f ms of CPU)",
		  (double)(loop_monitor_process_cpu_us() - now) / 1000);
	return G_SOURCE_CONTINUE;
}

herdd_memory_trim *herdd_memory_trim_new(herd_cluster *cluster)
{
	herdd_memory_trim *t = g_new0(herdd_memory_trim, 1);
	t->cluster = cluster;
	t->cpu_us = loop_monitor_process_cpu_us();
	/* A start (the store read, a sync) is a burst too. */
	t->burst = true;
	t->timer = g_timeout_add_seconds(CHECK_S, check, t);
	return t;
}

void herdd_memory_trim_free(herdd_memory_trim *t)
{
	if (!t)
		return;
	g_source_remove(t->timer);
	g_free(t);
}
