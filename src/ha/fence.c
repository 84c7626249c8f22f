#define G_LOG_DOMAIN "fence"
#include "ha/fence.h"

#include "common/error.h"
#include "common/log.h"

#include <gio/gio.h>
#include <string.h>

/* A fence agent that has not finished after this long is killed. */
#define AGENT_TIMEOUT_S 120
#define AGENT_DIR_DEFAULT "/usr/sbin"

void herd_fence_target_free(herd_fence_target *t)
{
	if (!t)
		return;
	g_free(t->device);
	g_free(t->agent);
	json_decref(t->params);
	g_free(t->plug);
	g_free(t);
}

static const char *agent_dir(void)
{
	const char *d = g_getenv("HERD_FENCE_AGENT_DIR");
	return d && *d ? d : AGENT_DIR_DEFAULT;
}

bool herd_fence_agent_valid(const char *agent, GError **error)
{
	bool shape = agent && g_str_has_prefix(agent, "fence_") && strlen(agent) > 6 && strlen(agent) < 64;
	for (const char *p = agent; shape && *p; p++)
		shape = g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '_';
	if (!shape) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "'%s' is not a fence agent name (fence_ followed by lower-case letters, digits, '_').",
			    agent ? agent : "");
		return false;
	}
	g_autofree char *path = g_build_filename(agent_dir(), agent, NULL);
	if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Fence agent %s is not installed (%s not found; Debian's fence-agents package has the standard ones).",
			    agent, path);
		return false;
	}
	return true;
}

typedef struct {
	const herd_fence_target *t;
	char *action;
	herd_fence_done done;
	gpointer user;
	GSubprocess *proc;
	guint timer;
	bool timed_out;
	gint64 started_us;
} agent_run;

static gboolean on_agent_timeout(gpointer data)
{
	agent_run *r = data;
	r->timer = 0;
	r->timed_out = true;
	g_subprocess_force_exit(r->proc);
	return G_SOURCE_REMOVE;
}

static char *last_line(const char *s)
{
	if (!s)
		return g_strdup("");
	g_autofree char *copy = g_strstrip(g_strdup(s));
	char *nl = strrchr(copy, '\n');
	return g_strdup(nl ? nl + 1 : copy);
}

/*
 * Why an agent failed, in one line: the last line of its stderr (else
 * stdout) that says more than fencing.py's closing "Please use '-h' for
 * usage", without fencing.py's "2026-12-02 09:21:24,287 " time stamp.
 */
static char *agent_error(const char *err_text, const char *out)
{
	const char *text = err_text && *err_text ? err_text : out;
	g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
	const char *why = NULL;
	for (char **l = lines; *l; l++) {
		g_strstrip(*l);
		if (**l && !strstr(*l, "Please use '-h' for usage"))
			why = *l;
	}
	if (!why)
		return last_line(text);
	/* YYYY-MM-DD HH:MM:SS,mmm */
	if (strlen(why) > 24 && g_ascii_isdigit(why[0]) && why[4] == '-' && why[10] == ' ' &&
	    why[13] == ':' && why[19] == ',') {
		const char *p = why + 20;
		while (g_ascii_isdigit(*p))
			p++;
		why = p;
	}
	return g_strdup(g_strstrip((char *)why));
}

/*
 * Does the output of a successful "off" say that the agent read the power
 * state back as off?  fencing.py, on which Debian's agents are built,
 * prints "Success: Powered OFF" only after its status read shows the plug
 * off (or after the device's synchronous "off" call returned success), and
 * "Success: Already OFF" after a status read that showed it off.
 */
bool herd_fence_off_verified(const char *out)
{
	g_autofree char *line = last_line(out);
	return strcmp(line, "Success: Powered OFF") == 0 || strcmp(line, "Success: Already OFF") == 0;
}

static void on_agent_finished(GObject *src, GAsyncResult *res, gpointer data)
{
	agent_run *r = data;
	g_autofree char *out = NULL, *err_text = NULL;
	g_autoptr(GError) err = NULL;
	double secs = (double)(g_get_monotonic_time() - r->started_us) / 1e6;
	if (r->timer)
		g_source_remove(r->timer);
	bool ran = g_subprocess_communicate_utf8_finish(r->proc, res, &out, &err_text, &err);
	int status = ran && g_subprocess_get_if_exited(r->proc) ? g_subprocess_get_exit_status(r->proc) : -1;
	g_autofree char *detail = NULL;
	bool ok;
	if (r->timed_out) {
		ok = false;
		detail = g_strdup_printf("%s action=%s on %s did not finish within %d s", r->t->agent,
					 r->action, r->t->device, AGENT_TIMEOUT_S);
	} else if (!ran) {
		ok = false;
		detail = g_strdup_printf("%s could not be run: %s", r->t->agent, err->message);
	} else if (strcmp(r->action, "status") == 0) {
		ok = status == 0 || status == 2;
		g_autofree char *why = agent_error(err_text, out);
		detail = ok ? g_strdup(status == 0 ? "on" : "off")
			    : g_strdup_printf("%s action=status on %s failed (exit %d): %s", r->t->agent,
					      r->t->device, status, why);
	} else if (strcmp(r->action, "list") == 0) {
		/* The whole output: a "plug,alias" line per outlet. */
		ok = status == 0;
		g_autofree char *why = agent_error(err_text, out);
		detail = ok ? g_strdup(out ? out : "")
			    : g_strdup_printf("%s action=list on %s failed (exit %d): %s", r->t->agent,
					      r->t->device, status, why);
	} else {
		ok = status == 0;
		g_autofree char *why = agent_error(err_text, out);
		detail = ok ? last_line(out)
			    : g_strdup_printf("%s action=%s on %s failed (exit %d): %s", r->t->agent,
					      r->action, r->t->device, status, why);
	}
	r->done(ok, r->t->device, detail, secs, r->user);
	g_object_unref(r->proc);
	g_free(r->action);
	g_free(r);
}

void herd_fence_agent_action(const herd_fence_target *t, const char *action,
			     herd_fence_done done, gpointer user)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *path = g_build_filename(agent_dir(), t->agent, NULL);
	GString *in = g_string_new(NULL);
	g_string_append_printf(in, "action=%s\n", action);
	if (t->plug && *t->plug)
		g_string_append_printf(in, "plug=%s\n", t->plug);
	const char *k;
	json_t *v;
	json_object_foreach(t->params, k, v) {
		if (json_is_string(v))
			g_string_append_printf(in, "%s=%s\n", k, json_string_value(v));
		else if (json_is_integer(v))
			g_string_append_printf(in, "%s=%lld\n", k, (long long)json_integer_value(v));
		else if (json_is_true(v))
			g_string_append_printf(in, "%s=1\n", k);
	}
	agent_run *r = g_new0(agent_run, 1);
	r->t = t;
	r->action = g_strdup(action);
	r->done = done;
	r->user = user;
	r->started_us = g_get_monotonic_time();
	const char *argv[] = { path, NULL };
	r->proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
						  G_SUBPROCESS_FLAGS_STDERR_PIPE,
				    &err);
	if (!r->proc) {
		g_autofree char *detail = g_strdup_printf("%s could not be run: %s", t->agent, err->message);
		done(false, t->device, detail, 0, user);
		g_string_free(in, TRUE);
		g_free(r->action);
		g_free(r);
		return;
	}
	r->timer = g_timeout_add_seconds(AGENT_TIMEOUT_S, on_agent_timeout, r);
	g_subprocess_communicate_utf8_async(r->proc, in->str, NULL, on_agent_finished, r);
	g_string_free(in, TRUE);
}

/* ------------------------------------------------------------------ */
/* Fencing a node: levels in order, every device of a level off + verified */

typedef struct {
	char *node;
	GPtrArray *targets;   /* sorted by level */
	guint next;           /* index of the next target to run */
	int level;            /* level in progress */
	bool level_ok;
	GString *devices;     /* devices that switched it off in this level */
	GString *errors;
	double agent_seconds;
	herd_fence_done done;
	gpointer user;
	herd_fence_target *current;
} fence_job;

static void step(fence_job *j);

static void job_finish(fence_job *j, bool ok, const char *detail)
{
	j->done(ok, j->devices->str, detail, j->agent_seconds, j->user);
	g_ptr_array_free(j->targets, TRUE);
	g_string_free(j->devices, TRUE);
	g_string_free(j->errors, TRUE);
	g_free(j->node);
	g_free(j);
}

GHashTable *herd_fence_parse_list(const char *out)
{
	GHashTable *plugs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_auto(GStrv) lines = g_strsplit(out ? out : "", "\n", -1);
	for (char **l = lines; *l; l++) {
		/* fencing.py's answers for a device without plugs (a BMC: "N/A")
		 * and for an agent that cannot list ("NOTICE: List option is not
		 * working on this device yet"): no list, not a list of one. */
		g_autofree char *line = g_strstrip(g_strdup(*l));
		if (strcmp(line, "N/A") == 0 || g_str_has_prefix(line, "NOTICE:"))
			continue;
		char *comma = strchr(line, ',');
		g_autofree char *plug = g_strstrip(comma ? g_strndup(line, (gsize)(comma - line)) : g_strdup(line));
		if (*plug)
			g_hash_table_add(plugs, g_steal_pointer(&plug));
	}
	if (g_hash_table_size(plugs) == 0) {
		g_hash_table_destroy(plugs);
		return NULL;
	}
	return plugs;
}

/*
 * One device of a level: "off", and meanwhile "list".  The power state is
 * verified: by the agent itself when it says so (herd_fence_off_verified(),
 * every fencing.py agent), else by a "status" after the "off".  Over SNMP a
 * plug the device does not have switches "off" with success and reads
 * "off": the power state counts only for a plug the device lists (when its
 * agent can list).
 */
typedef struct {
	fence_job *j;
	herd_fence_target *t;
	unsigned pending;
	bool off;               /* switched off and verified off */
	bool unlisted;          /* the device lists its plugs, not this one */
	char *error;
} target_run;

static void run_done(target_run *r)
{
	if (--r->pending > 0)
		return;
	fence_job *j = r->j;
	if (r->off && !r->unlisted) {
		g_string_append_printf(j->devices, "%s%s", j->devices->len ? ", " : "", r->t->device);
	} else {
		j->level_ok = false;
		g_autofree char *why = r->error ? g_strdup(r->error)
			: g_strdup_printf("%s: plug %s is not an outlet of the device; its power state means nothing",
					  r->t->device, r->t->plug);
		g_string_append_printf(j->errors, "%s%s", j->errors->len ? "; " : "", why);
	}
	g_free(r->error);
	g_free(r);
	step(j);
}

static void on_status(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	target_run *r = user;
	r->j->agent_seconds += secs;
	r->off = ok && strcmp(detail, "off") == 0;
	if (!r->off)
		r->error = ok ? g_strdup_printf("%s: switched off, but reports the outlet still on", device)
			      : g_strdup(detail);
	run_done(r);
}

static void on_off(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	target_run *r = user;
	r->j->agent_seconds += secs;
	if (!ok) {
		r->error = g_strdup(detail);
		run_done(r);
		return;
	}
	/* The power state is verified: by the agent's own read-back, or by
	 * asking it.  A second agent run costs a fencing.py agent about as
	 * long as the "off" (its start and imports, the device's login), and
	 * the node's VMs wait for it. */
	if (herd_fence_off_verified(detail)) {
		r->off = true;
		run_done(r);
		return;
	}
	herd_fence_agent_action(r->t, "status", on_status, r);
}

static void on_list(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	target_run *r = user;
	g_autoptr(GHashTable) plugs = ok ? herd_fence_parse_list(detail) : NULL;
	r->unlisted = plugs && !g_hash_table_contains(plugs, r->t->plug);
	run_done(r);
}

static void step(fence_job *j)
{
	/* The level just run (all its devices tried) decides first. */
	bool level_done = j->next >= j->targets->len ||
			  ((herd_fence_target *)j->targets->pdata[j->next])->level != j->level;
	if (j->level && level_done) {
		if (j->level_ok) {
			g_autofree char *detail = g_strdup_printf("switched off and verified off by %s",
								  j->devices->str);
			job_finish(j, true, detail);
			return;
		}
		g_string_set_size(j->devices, 0);
		j->level = 0;
	}
	if (j->next >= j->targets->len) {
		g_autofree char *detail = g_strdup(j->errors->len ? j->errors->str : "no fence device covers the node");
		job_finish(j, false, detail);
		return;
	}
	j->current = j->targets->pdata[j->next++];
	if (!j->level) {
		j->level = j->current->level;
		j->level_ok = true;
	}
	log_info("fencing %s: %s (%s, plug %s, level %d)", j->node, j->current->device,
		 j->current->agent, j->current->plug, j->current->level);
	target_run *r = g_new0(target_run, 1);
	r->j = j;
	r->t = j->current;
	r->pending = 2;
	herd_fence_agent_action(r->t, "off", on_off, r);
	herd_fence_agent_action(r->t, "list", on_list, r);
}

static gint by_level(gconstpointer a, gconstpointer b)
{
	const herd_fence_target *x = *(herd_fence_target *const *)a, *y = *(herd_fence_target *const *)b;
	if (x->level != y->level)
		return x->level < y->level ? -1 : 1;
	return strcmp(x->device, y->device);
}

static gboolean on_delay_over(gpointer data)
{
	step(data);
	return G_SOURCE_REMOVE;
}

void herd_fence_node(const char *node, GPtrArray *targets, unsigned delay_ms,
		     herd_fence_done done, gpointer user)
{
	fence_job *j = g_new0(fence_job, 1);
	j->node = g_strdup(node);
	j->targets = targets;
	g_ptr_array_sort(j->targets, by_level);
	j->devices = g_string_new(NULL);
	j->errors = g_string_new(NULL);
	j->done = done;
	j->user = user;
	if (delay_ms) {
		log_info("fencing %s after a delay of %u ms (two-node tie-break)", node, delay_ms);
		g_timeout_add(delay_ms, on_delay_over, j);
	} else {
		step(j);
	}
}
