#define G_LOG_DOMAIN "daemon"
#include "daemon/herdd.h"

#include "common/error.h"
#include "common/log.h"

#include <gio/gio.h>

/* A service command that hangs is killed after this long. */
#define SERVICE_TIMEOUT_S 60

typedef struct {
	herdd_service_done done;
	gpointer user;
	char *desc;
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
		err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT, "'%s' did not finish within %d s.",
				  c->desc, SERVICE_TIMEOUT_S);
	} else if (!g_subprocess_get_successful(c->proc)) {
		g_strstrip(out);
		err = g_error_new(HERD_ERROR, HERD_ERR_IO, "'%s' failed (exit status %d)%s%s", c->desc,
				  g_subprocess_get_exit_status(c->proc), out && *out ? ": " : ".",
				  out ? out : "");
	} else {
		log_info("ran '%s'", c->desc);
	}
	c->done(err, c->user);
	g_object_unref(c->proc);
	g_free(c->desc);
	g_free(c);
}

/* Run @argv, its output and exit status reported to @done as @desc. */
static void run_argv(const char *const *argv, const char *desc, herdd_service_done done,
		     gpointer user)
{
	g_autoptr(GError) err = NULL;
	svc_ctx *c = g_new0(svc_ctx, 1);
	c->done = done;
	c->user = user;
	c->desc = g_strdup(desc);
	c->proc = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
				    &err);
	if (!c->proc) {
		g_autoptr(GError) e = g_error_new(HERD_ERROR, HERD_ERR_IO, "Cannot run '%s': %s",
						  c->desc, err->message);
		done(e, user);
		g_free(c->desc);
		g_free(c);
		return;
	}
	c->timer = g_timeout_add_seconds(SERVICE_TIMEOUT_S, on_timeout, c);
	g_subprocess_communicate_utf8_async(c->proc, NULL, NULL, on_finished, c);
}

void herdd_run(herdd *d, const char *const *argv, herdd_service_done done, gpointer user)
{
	g_autofree char *desc = g_strjoinv(" ", (char **)argv);
	run_argv(argv, desc, done, user);
}

void herdd_service(herdd *d, const char *action, const char *service, herdd_service_done done,
		   gpointer user)
{
	g_autoptr(GError) err = NULL;
	g_auto(GStrv) base = NULL;
	g_autofree char *desc = g_strdup_printf("%s %s %s", d->cfg->service_command, action, service);
	if (!g_shell_parse_argv(d->cfg->service_command, NULL, &base, &err)) {
		g_autoptr(GError) e = g_error_new(HERD_ERROR, HERD_ERR_IO, "Cannot run '%s': %s", desc,
						  err->message);
		done(e, user);
		return;
	}
	GStrvBuilder *b = g_strv_builder_new();
	g_strv_builder_addv(b, (const char **)base);
	g_strv_builder_add(b, action);
	g_strv_builder_add(b, service);
	g_auto(GStrv) argv = g_strv_builder_end(b);
	g_strv_builder_unref(b);
	run_argv((const char *const *)argv, desc, done, user);
}
