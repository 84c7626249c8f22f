#define G_LOG_DOMAIN "daemon"
#include "daemon/herdd.h"

#include "common/error.h"
#include "common/log.h"

#include <gio/gio.h>
#include <string.h>

/* A service command that hangs is killed after this long. */
#define SERVICE_TIMEOUT_S 60

typedef struct {
	herdd *d;
	herdd_service_done done;    /* an action on a service, or */
	herdd_service_answer answer; /* a question to the service manager */
	gpointer user;
	char *desc;
	unsigned timeout_s;
	GSubprocess *proc;
	guint timer;
	bool timed_out;
} svc_ctx;

static gboolean on_timeout(gpointer data)
{
	svc_ctx *c = data;
	c->timer = 0;
	c->timed_out = true;
	g_subprocess_force_exit(c->proc);
	return G_SOURCE_REMOVE;
}

static void svc_ctx_free(svc_ctx *c)
{
	if (c->proc)
		g_object_unref(c->proc);
	g_free(c->desc);
	g_free(c);
}

static void on_finished(GObject *source, GAsyncResult *res, gpointer data)
{
	svc_ctx *c = data;
	g_autofree char *out = NULL;
	g_autoptr(GError) err = NULL;
	if (c->timer)
		g_source_remove(c->timer);
	if (!g_subprocess_communicate_utf8_finish(c->proc, res, &out, NULL, &err)) {
		g_clear_error(&err);
		err = g_error_new(HERD_ERROR, HERD_ERR_IO, "'%s' could not be run.", c->desc);
	} else if (c->timed_out) {
		err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT, "'%s' did not finish within %u s.",
				  c->desc, c->timeout_s);
	} else if (c->answer) {
		/* A question's exit status is part of its answer
		 * (is-system-running fails for anything but "running"). */
		if (out)
			g_strstrip(out);
		if (!out || !*out || strchr(out, '\n'))
			err = g_error_new(HERD_ERROR, HERD_ERR_IO, "'%s' gave no one-line answer%s%s.",
					  c->desc, out && *out ? ": " : "", out ? out : "");
	} else if (!g_subprocess_get_successful(c->proc)) {
		if (out)
			g_strstrip(out);
		err = g_error_new(HERD_ERROR, HERD_ERR_IO, "'%s' failed (exit status %d)%s%s", c->desc,
				  g_subprocess_get_exit_status(c->proc), out && *out ? ": " : ".",
				  out ? out : "");
	} else {
		log_info("ran '%s'", c->desc);
	}
	if (c->answer)
		c->answer(err ? NULL : out, err, c->user);
	else
		c->done(err, c->user);
	svc_ctx_free(c);
}

/* @c could not be run, for @why: answered, and freed. */
static void cannot_run(svc_ctx *c, const GError *why)
{
	g_autoptr(GError) e = g_error_new(HERD_ERROR, HERD_ERR_IO, "Cannot run '%s': %s", c->desc,
					  why->message);
	if (c->answer)
		c->answer(NULL, e, c->user);
	else
		c->done(e, c->user);
	svc_ctx_free(c);
}

/* Start @argv for @c (its desc set); @c answers when it ends. */
static void spawn(svc_ctx *c, const char *const *argv, GSubprocessFlags flags)
{
	g_autoptr(GError) err = NULL;
	c->proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | flags, &err);
	if (!c->proc) {
		cannot_run(c, err);
		return;
	}
	c->timer = g_timeout_add_seconds(c->timeout_s, on_timeout, c);
	g_subprocess_communicate_utf8_async(c->proc, NULL, NULL, on_finished, c);
}

/* Run "<service_command> ACTION [SERVICE]"; @c answers when it ends. */
static void run(svc_ctx *c, const char *action, const char *service, GSubprocessFlags flags)
{
	g_autoptr(GError) err = NULL;
	g_auto(GStrv) base = NULL;
	c->desc = service ? g_strdup_printf("%s %s %s", c->d->cfg->service_command, action, service)
			  : g_strdup_printf("%s %s", c->d->cfg->service_command, action);
	if (!g_shell_parse_argv(c->d->cfg->service_command, NULL, &base, &err)) {
		cannot_run(c, err);
		return;
	}
	GStrvBuilder *b = g_strv_builder_new();
	g_strv_builder_addv(b, (const char **)base);
	g_strv_builder_add(b, action);
	if (service)
		g_strv_builder_add(b, service);
	g_auto(GStrv) argv = g_strv_builder_end(b);
	g_strv_builder_unref(b);
	spawn(c, (const char *const *)argv, flags);
}

/* A command run for @d, killed after @timeout_s, that answers @user. */
static svc_ctx *svc_new(herdd *d, unsigned timeout_s, gpointer user)
{
	svc_ctx *c = g_new0(svc_ctx, 1);
	c->d = d;
	c->user = user;
	c->timeout_s = timeout_s;
	return c;
}

void herdd_run(herdd *d, const char *const *argv, herdd_service_done done, gpointer user)
{
	svc_ctx *c = svc_new(d, SERVICE_TIMEOUT_S, user);
	c->done = done;
	c->desc = g_strjoinv(" ", (char **)argv);
	spawn(c, argv, G_SUBPROCESS_FLAGS_STDERR_MERGE);
}

void herdd_service(herdd *d, const char *action, const char *service, herdd_service_done done,
		   gpointer user)
{
	svc_ctx *c = svc_new(d, SERVICE_TIMEOUT_S, user);
	c->done = done;
	run(c, action, service, G_SUBPROCESS_FLAGS_STDERR_MERGE);
}

void herdd_service_ask(herdd *d, const char *question, unsigned timeout_s,
		       herdd_service_answer answer, gpointer user)
{
	svc_ctx *c = svc_new(d, timeout_s, user);
	c->answer = answer;
	/* The answer is stdout; what it says on stderr goes to herdd's. */
	run(c, question, NULL, G_SUBPROCESS_FLAGS_NONE);
}
