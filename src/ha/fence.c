#define G_LOG_DOMAIN "fence"
#include "ha/fence.h"

#include "common/error.h"
#include "common/log.h"
#include "ha/fence_standby.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>

/* A fence agent that has not finished after this long is killed. */
#define AGENT_TIMEOUT_S 120
#define AGENT_DIR_DEFAULT "/usr/sbin"

static const char *agent_dir(void)
{
	const char *d = g_getenv("HERD_FENCE_AGENT_DIR");
	return d && *d ? d : AGENT_DIR_DEFAULT;
}

char *herd_fence_agent_path(const char *agent)
{
	return g_build_filename(agent_dir(), agent, NULL);
}

/* The directory of herd's sitecustomize.py, once written (herdd's). */
static char *python_dir;

static const char sitecustomize[] =
	"# Written by herdd for the fence agents it runs; see src/ha/fence.h.\n"
	"# pexpect.run() sleeps 0.1 s in close() after each command, although it\n"
	"# has read EOF and ptyprocess then reads the exit status with a blocking\n"
	"# waitpid(): the pause is set to 0.  Then the system's own sitecustomize.\n"
	"import importlib.machinery, importlib.util, os, sys\n"
	"try:\n"
	"    import ptyprocess\n"
	"    _herd_init = ptyprocess.PtyProcess.__init__\n"
	"    def _herd_no_pause(self, *args, **kwargs):\n"
	"        _herd_init(self, *args, **kwargs)\n"
	"        self.delayafterclose = 0\n"
	"    ptyprocess.PtyProcess.__init__ = _herd_no_pause\n"
	"except Exception:\n"
	"    pass\n"
	"_herd_here = os.path.dirname(os.path.abspath(__file__))\n"
	"_herd_spec = importlib.machinery.PathFinder.find_spec(\n"
	"    'sitecustomize', [p for p in sys.path if os.path.abspath(p or '.') != _herd_here])\n"
	"if _herd_spec and _herd_spec.loader:\n"
	"    try:\n"
	"        _herd_spec.loader.exec_module(importlib.util.module_from_spec(_herd_spec))\n"
	"    except Exception:\n"
	"        pass\n";

bool herd_fence_agent_python_setup(const char *dir, GError **error)
{
	g_autofree char *file = g_build_filename(dir, "sitecustomize.py", NULL);
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		int e = errno;
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL, "cannot create %s: %s", dir, g_strerror(e));
		return false;
	}
	if (!g_file_set_contents(file, sitecustomize, -1, error))
		return false;
	g_free(python_dir);
	python_dir = g_strdup(dir);
	return true;
}

GSubprocess *herd_fence_agent_spawn(const char *agent, GError **error)
{
	g_autofree char *path = herd_fence_agent_path(agent);
	const char *argv[] = { path, NULL };
	g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
		G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
	if (python_dir) {
		const char *old = g_getenv("PYTHONPATH");
		g_autofree char *pp = old && *old ? g_strconcat(python_dir, ":", old, NULL) : g_strdup(python_dir);
		g_subprocess_launcher_setenv(l, "PYTHONPATH", pp, TRUE);
	}
	return g_subprocess_launcher_spawnv(l, argv, error);
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
	bool waited;          /* @proc is an agent that waited (fence_pool.h) */
	gint64 started_us;    /* its start, or the hand-over to a waiting one */
} agent_run;

static void agent_start(agent_run *r, GSubprocess *proc);
static bool agent_spawn(agent_run *r);

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

static void on_agent_finished(GObject *src, GAsyncResult *res, gpointer data)
{
	agent_run *r = data;
	g_autofree char *out = NULL, *err_text = NULL;
	g_autoptr(GError) err = NULL;
	double secs = (double)(g_get_monotonic_time() - r->started_us) / 1e6;
	if (r->timer)
		g_source_remove(r->timer);
	r->timer = 0;
	bool ran = g_subprocess_communicate_utf8_finish(r->proc, res, &out, &err_text, &err);
	/* A waiting agent that was gone before it read its options (the
	 * write failed, or it was killed and said nothing): a fresh one does
	 * the run.  (Killed without a word just after it read them, it may
	 * have acted: the run is then repeated, as a retry would.) */
	if (r->waited && !r->timed_out &&
	    (!ran || (g_subprocess_get_if_signaled(r->proc) && (!out || !*out) && (!err_text || !*err_text)))) {
		log_warn("%s of fence device %s: the waiting agent was gone before it took its options (%s); "
			 "running a fresh one", r->t->agent, r->t->device,
			 ran ? "killed" : err->message);
		g_clear_object(&r->proc);
		r->waited = false;
		agent_spawn(r); /* answers and frees @r if it cannot run */
		return;
	}
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
		/* fencing.py's reboot succeeds even when the power-on failed;
		 * it says so only on stderr. */
		if (ok && strcmp(r->action, "reboot") == 0 && err_text && *g_strstrip(err_text)) {
			g_autofree char *line = g_steal_pointer(&detail);
			detail = g_strdup_printf("%s\n%s", line, why);
		}
	}
	r->done(ok, r->t->device, detail, secs, r->user);
	g_object_unref(r->proc);
	g_free(r->action);
	g_free(r);
}

/* A fresh agent for @r; false (and @r answered and freed) if it cannot run. */
static bool agent_spawn(agent_run *r)
{
	g_autoptr(GError) err = NULL;
	GSubprocess *proc = herd_fence_agent_spawn(r->t->agent, &err);
	if (!proc) {
		g_autofree char *detail = g_strdup_printf("%s could not be run: %s", r->t->agent, err->message);
		r->done(false, r->t->device, detail, 0, r->user);
		g_free(r->action);
		g_free(r);
		return false;
	}
	agent_start(r, proc);
	return true;
}

/* Hand @proc (fresh or waiting) its options: it acts once it reads EOF. */
static void agent_start(agent_run *r, GSubprocess *proc)
{
	r->proc = proc;
	g_autofree char *in = herd_fence_agent_input(r->t, r->action);
	if (!r->timer)
		r->timer = g_timeout_add_seconds(AGENT_TIMEOUT_S, on_agent_timeout, r);
	g_subprocess_communicate_utf8_async(r->proc, in, NULL, on_agent_finished, r);
}

void herd_fence_agent_run(herd_fence_pool *pool, const herd_fence_target *t, const char *action,
			  herd_fence_done done, gpointer user)
{
	agent_run *r = g_new0(agent_run, 1);
	r->t = t;
	r->action = g_strdup(action);
	r->done = done;
	r->user = user;
	r->started_us = g_get_monotonic_time();
	GSubprocess *waiting = pool ? herd_fence_pool_take(pool, t->device, t->agent) : NULL;
	if (waiting) {
		r->waited = true;
		log_info("%s of fence device %s: action=%s through the waiting agent (pid %s)", t->agent,
			 t->device, action,
			 g_subprocess_get_identifier(waiting) ? g_subprocess_get_identifier(waiting) : "?");
		agent_start(r, waiting);
		return;
	}
	agent_spawn(r);
}

void herd_fence_agent_action(const herd_fence_target *t, const char *action,
			     herd_fence_done done, gpointer user)
{
	herd_fence_agent_run(NULL, t, action, done, user);
}
