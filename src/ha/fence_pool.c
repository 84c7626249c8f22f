#define G_LOG_DOMAIN "fence"
#include "ha/fence_pool.h"

#include "common/log.h"
#include "ha/fence.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>

typedef struct waiting {
	herd_fence_pool *pool;   /* NULL once taken or killed, or the pool is gone */
	char *device;
	char *agent;
	char *key;
	GSubprocess *proc;
	char *pid;               /* for the log, also once it was reaped */
} waiting;

struct herd_fence_pool {
	GPtrArray *wants;        /* herd_standby_want* */
	GPtrArray *agents;       /* waiting* that wait */
	GHashTable *not_before;  /* device -> int64_t* (monotonic ms) */
	GHashTable *deaths;      /* device -> deaths in a row (GUINT_TO_POINTER) */
	guint timer;
	herd_fence_pool_changed_fn changed;
	gpointer user;
};

static int64_t mono_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

static void waiting_free(waiting *w)
{
	g_free(w->device);
	g_free(w->agent);
	g_free(w->key);
	g_free(w->pid);
	g_clear_object(&w->proc);
	g_free(w);
}

static void replan(herd_fence_pool *p);

static void hold_back(herd_fence_pool *p, const char *device, int64_t ms)
{
	int64_t *at = g_new(int64_t, 1);
	*at = mono_ms() + ms;
	g_hash_table_insert(p->not_before, g_strdup(device), at);
}

/* The process ended: taken (its run is over), killed, or it died waiting. */
static void on_exited(GObject *src, GAsyncResult *res, gpointer data)
{
	waiting *w = data;
	g_subprocess_wait_finish(G_SUBPROCESS(src), res, NULL);
	herd_fence_pool *p = w->pool;
	if (p) {
		unsigned deaths = GPOINTER_TO_UINT(g_hash_table_lookup(p->deaths, w->device)) + 1;
		g_hash_table_insert(p->deaths, g_strdup(w->device), GUINT_TO_POINTER(deaths));
		int64_t backoff = herd_standby_backoff_ms(deaths);
		log_warn("the waiting fence agent %s of device %s (pid %s) ended on its own (%s %d); "
			 "another starts in %" G_GINT64_FORMAT " ms", w->agent, w->device,
			 w->pid, g_subprocess_get_if_signaled(w->proc) ? "signal" : "exit",
			 g_subprocess_get_if_signaled(w->proc) ? g_subprocess_get_term_sig(w->proc)
							       : g_subprocess_get_exit_status(w->proc),
			 backoff);
		g_ptr_array_remove(p->agents, w);
		hold_back(p, w->device, backoff);
		replan(p);
		p->changed(p->user);
	}
	waiting_free(w);
}

/* SIGKILL, never EOF on stdin (see fence_pool.h); the process is freed
 * once it is gone. */
static void kill_waiting(waiting *w)
{
	w->pool = NULL;
	g_subprocess_force_exit(w->proc);
}

static bool spawn(herd_fence_pool *p, const herd_standby_want *want)
{
	g_autoptr(GError) err = NULL;
	GSubprocess *proc = herd_fence_agent_spawn(want->agent, &err);
	if (!proc) {
		unsigned deaths = GPOINTER_TO_UINT(g_hash_table_lookup(p->deaths, want->device)) + 1;
		g_hash_table_insert(p->deaths, g_strdup(want->device), GUINT_TO_POINTER(deaths));
		log_warn("fence device %s: its agent %s could not be started to wait: %s", want->device,
			 want->agent, err->message);
		hold_back(p, want->device, herd_standby_backoff_ms(deaths));
		return false;
	}
	waiting *w = g_new0(waiting, 1);
	*w = (waiting){ p, g_strdup(want->device), g_strdup(want->agent), g_strdup(want->key), proc,
			g_strdup(g_subprocess_get_identifier(proc)) };
	g_ptr_array_add(p->agents, w);
	g_subprocess_wait_async(proc, NULL, on_exited, w);
	log_debug("fence device %s: agent %s waits (pid %s)", w->device, w->agent,
		  g_subprocess_get_identifier(proc));
	return true;
}

static gboolean on_timer(gpointer data)
{
	herd_fence_pool *p = data;
	p->timer = 0;
	replan(p);
	return G_SOURCE_REMOVE;
}

static void replan(herd_fence_pool *p)
{
	g_autofree herd_standby_have *have = g_new0(herd_standby_have, MAX(p->agents->len, 1));
	for (guint i = 0; i < p->agents->len; i++) {
		waiting *w = p->agents->pdata[i];
		have[i] = (herd_standby_have){ w->device, w->key };
	}
	herd_standby_plan plan;
	int64_t now = mono_ms();
	herd_standby_plan_make(&plan, p->wants, have, p->agents->len, p->not_before, now);
	bool changed = plan.kill->len > 0;
	g_autoptr(GPtrArray) doomed = g_ptr_array_new();
	for (guint i = 0; i < plan.kill->len; i++)
		g_ptr_array_add(doomed, p->agents->pdata[g_array_index(plan.kill, guint, i)]);
	for (guint i = 0; i < doomed->len; i++) {
		waiting *w = doomed->pdata[i];
		log_info("fence device %s: its waiting agent (pid %s) is no longer wanted: killed", w->device,
			 w->pid);
		g_ptr_array_remove(p->agents, w);
		kill_waiting(w);
	}
	for (guint i = 0; i < plan.spawn->len; i++)
		changed = spawn(p, plan.spawn->pdata[i]) || changed;
	if (p->timer)
		g_source_remove(p->timer);
	p->timer = plan.next_ms ? g_timeout_add((guint)MAX(plan.next_ms - now, 1), on_timer, p) : 0;
	herd_standby_plan_clear(&plan);
	if (changed)
		p->changed(p->user);
}

herd_fence_pool *herd_fence_pool_new(herd_fence_pool_changed_fn changed, gpointer user)
{
	herd_fence_pool *p = g_new0(herd_fence_pool, 1);
	p->wants = g_ptr_array_new_with_free_func((GDestroyNotify)herd_standby_want_free);
	p->agents = g_ptr_array_new();
	p->not_before = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	p->deaths = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	p->changed = changed;
	p->user = user;
	return p;
}

void herd_fence_pool_free(herd_fence_pool *p)
{
	if (!p)
		return;
	for (guint i = 0; i < p->agents->len; i++)
		kill_waiting(p->agents->pdata[i]);
	if (p->timer)
		g_source_remove(p->timer);
	g_ptr_array_free(p->agents, TRUE);
	g_ptr_array_free(p->wants, TRUE);
	g_hash_table_destroy(p->not_before);
	g_hash_table_destroy(p->deaths);
	g_free(p);
}

static bool same_wants(GPtrArray *a, GPtrArray *b)
{
	if (a->len != b->len)
		return false;
	for (guint i = 0; i < a->len; i++) {
		const herd_standby_want *x = a->pdata[i], *y = b->pdata[i];
		if (strcmp(x->device, y->device) || strcmp(x->agent, y->agent) || strcmp(x->key, y->key) ||
		    x->count != y->count)
			return false;
	}
	return true;
}

void herd_fence_pool_set_wants(herd_fence_pool *p, GPtrArray *wants)
{
	if (same_wants(p->wants, wants)) {
		g_ptr_array_free(wants, TRUE);
		return;
	}
	/* A device newly wanted here (this node just became the
	 * coordinator's successor: a node was lost) waits as after a use,
	 * not to compete with the failover under way. */
	for (guint i = 0; i < wants->len; i++) {
		const herd_standby_want *w = wants->pdata[i];
		bool known = false;
		for (guint k = 0; k < p->wants->len && !known; k++)
			known = strcmp(((herd_standby_want *)p->wants->pdata[k])->device, w->device) == 0;
		const int64_t *at = g_hash_table_lookup(p->not_before, w->device);
		if (!known && (!at || *at < mono_ms() + HERD_STANDBY_AFTER_USE_MS))
			hold_back(p, w->device, HERD_STANDBY_AFTER_USE_MS);
	}
	g_ptr_array_free(p->wants, TRUE);
	p->wants = wants;
	replan(p);
}

/* Has the process exited (maybe not reaped yet)?  Looked at without
 * reaping it: GLib's child watch does that. */
static bool exited(GSubprocess *proc)
{
	const char *id = g_subprocess_get_identifier(proc);
	if (!id)
		return true;
	siginfo_t info = { 0 };
	if (waitid(P_PID, (id_t)g_ascii_strtoull(id, NULL, 10), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
		return true; /* reaped already (ECHILD) */
	return info.si_pid != 0;
}

GSubprocess *herd_fence_pool_take(herd_fence_pool *p, const char *device, const char *agent)
{
	for (guint i = 0; p && i < p->agents->len; i++) {
		waiting *w = p->agents->pdata[i];
		if (strcmp(w->device, device) != 0 || strcmp(w->agent, agent) != 0)
			continue;
		if (exited(w->proc)) {
			log_warn("fence device %s: its waiting agent (pid %s) is gone; not used", device, w->pid);
			continue; /* on_exited() replaces it */
		}
		g_ptr_array_remove_index(p->agents, i);
		w->pool = NULL; /* on_exited() frees it once the run is over */
		g_hash_table_remove(p->deaths, device);
		hold_back(p, device, HERD_STANDBY_AFTER_USE_MS);
		replan(p);
		p->changed(p->user);
		return g_object_ref(w->proc);
	}
	return NULL;
}

json_t *herd_fence_pool_json(herd_fence_pool *p)
{
	json_t *out = json_object();
	for (guint i = 0; i < p->agents->len; i++) {
		waiting *w = p->agents->pdata[i];
		json_t *d = json_object_get(out, w->device);
		if (!d) {
			d = json_pack("{s:s,s:[]}", "agent", w->agent, "pids");
			json_object_set_new(out, w->device, d);
		}
		json_array_append_new(json_object_get(d, "pids"), json_integer(g_ascii_strtoll(w->pid, NULL, 10)));
	}
	return out;
}

unsigned herd_fence_pool_count(herd_fence_pool *p, const char *device)
{
	unsigned n = 0;
	for (guint i = 0; i < p->agents->len; i++)
		n += !device || strcmp(((waiting *)p->agents->pdata[i])->device, device) == 0;
	return n;
}
