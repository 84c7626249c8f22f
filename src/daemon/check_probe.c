#define G_LOG_DOMAIN "check"
#include "daemon/check_probe.h"

#include "common/json.h"
#include "ha/check.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void herd_check_probe_spec_free(herd_check_probe_spec *s)
{
	if (!s)
		return;
	json_decref(s->targets);
	g_free(s->corosync_conf);
	g_free(s->libvirt_uri);
	g_free(s);
}

/* One command under way. */
typedef struct {
	GPid pid;
	int out, err;
	char *output, *error;
	int status;
	bool started;
} command;

static void command_start(command *c, const char *const *argv)
{
	g_autoptr(GError) err = NULL;
	c->out = c->err = -1;
	c->started = g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
					      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
						      G_SPAWN_STDIN_FROM_DEV_NULL,
					      NULL, NULL, &c->pid, NULL, &c->out, &c->err, &err);
	if (!c->started)
		c->error = g_strdup(err->message);
}

static char *read_all(int fd)
{
	GString *s = g_string_new(NULL);
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		g_string_append_len(s, buf, n);
	}
	close(fd);
	return g_string_free(s, FALSE);
}

/* Its output, error output and exit status.  Small outputs (a ping's
 * summary): one pipe read after the other cannot fill up. */
static void command_finish(command *c)
{
	if (!c->started)
		return;
	c->output = read_all(c->out);
	c->error = read_all(c->err);
	while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
		;
	g_spawn_close_pid(c->pid);
}

static void command_clear(command *c)
{
	g_free(c->output);
	g_free(c->error);
}

/* The first line of ping's output that says why a ping did not pass
 * ("ping: local error: message too long, mtu=1400", "From 10.0.0.254
 * icmp_seq=1 Frag needed and DF set (mtu = 1400)"), without "ping: ", or
 * NULL. */
static char *ping_complaint(const char *text)
{
	g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
	for (char **l = lines; *l; l++)
		if (g_str_has_prefix(*l, "ping: ") || g_str_has_prefix(*l, "From "))
			return g_strstrip(g_strdup(g_str_has_prefix(*l, "ping: ") ? *l + 6 : *l));
	return NULL;
}

/* The first line of @text, stripped of "ping: ", or NULL. */
static char *first_line(const char *text)
{
	if (!text || !*text)
		return NULL;
	const char *end = strchr(text, '\n');
	g_autofree char *l = g_strndup(text, end ? (size_t)(end - text) : strlen(text));
	g_strstrip(l);
	if (!*l)
		return NULL;
	return g_strdup(g_str_has_prefix(l, "ping: ") ? l + 6 : l);
}

static void probe_pings(herd_check_probe_spec *s, json_t *probe)
{
	size_t n = json_array_size(s->targets);
	command *small = g_new0(command, n), *big = g_new0(command, n);
	g_autofree char *count = g_strdup_printf("%d", CHECK_PINGS);
	g_autofree char *bound = g_strdup_printf("%d", CHECK_PROBE_COMMAND_S);
	/* Every ping at once: the probe takes as long as the slowest. */
	for (size_t i = 0; i < n; i++) {
		const char *addr = json_string_value(json_object_get(json_array_get(s->targets, i), "address"));
		g_autofree char *size = g_strdup_printf("%u", herd_check_ping_size(s->mtu, addr));
		const char *a[] = { "timeout", bound, "ping", "-n", "-q", "-c", count, "-i", "0.2", "-W", "1",
				    addr, NULL };
		/* Not quiet: ping says why per packet (a local MTU, a router's
		 * "Frag needed"). */
		const char *b[] = { "timeout", bound, "ping", "-n", "-c", count, "-i", "0.2", "-W", "1",
				    "-M", "do", "-s", size, addr, NULL };
		command_start(&small[i], a);
		command_start(&big[i], b);
	}
	json_t *pings = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_array_get(s->targets, i);
		const char *addr = json_string_value(json_object_get(t, "address"));
		command_finish(&small[i]);
		command_finish(&big[i]);
		unsigned sent = 0, received = 0, df_sent = 0, df_received = 0;
		bool ok = herd_check_parse_ping(small[i].output, &sent, &received);
		bool df_ok = herd_check_parse_ping(big[i].output, &df_sent, &df_received);
		json_t *p = json_pack("{s:O,s:O,s:s,s:i,s:i,s:i,s:i,s:i}", "peer", json_object_get(t, "peer"), "link",
				      json_object_get(t, "link"), "address", addr, "size",
				      (int)herd_check_ping_size(s->mtu, addr), "sent", (int)sent, "received",
				      (int)received, "df_sent", (int)df_sent, "df_received", (int)df_received);
		/* Why the large ones did not pass, as ping says ("local error:
		 * message too long, mtu=1400"), else why ping did not run. */
		g_autofree char *why = NULL;
		if (!df_ok || df_received < df_sent) {
			why = ping_complaint(big[i].error);
			if (!why)
				why = ping_complaint(big[i].output);
		}
		if (!why && !ok)
			why = first_line(small[i].error);
		if (!why && (!ok || !df_ok))
			why = g_strdup("ping gave no summary");
		if (why)
			json_object_set_new(p, "error", json_string(why));
		json_array_append_new(pings, p);
		command_clear(&small[i]);
		command_clear(&big[i]);
	}
	g_free(small);
	g_free(big);
	json_object_set_new(probe, "pings", pings);
}

static void probe_corosync_conf(herd_check_probe_spec *s, json_t *probe)
{
	g_autofree char *text = NULL;
	gsize len = 0;
	g_autoptr(GError) err = NULL;
	if (!g_file_get_contents(s->corosync_conf, &text, &len, &err)) {
		json_object_set_new(probe, "corosync_conf_error", json_string(err->message));
		return;
	}
	g_autofree char *sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)text, len);
	json_object_set_new(probe, "corosync_conf", json_string(sha));
}

static void probe_virt(herd_check_probe_spec *s, json_t *probe)
{
	g_autofree char *bound = g_strdup_printf("%d", CHECK_PROBE_COMMAND_S);
	const char *argv[] = { "timeout", bound, "virsh", "-c", s->libvirt_uri, "version", NULL };
	command c = { 0 };
	command_start(&c, argv);
	command_finish(&c);
	g_autofree char *libvirt = NULL, *qemu = NULL;
	if (c.started && WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0 &&
	    herd_check_parse_virsh_version(c.output, &libvirt, &qemu)) {
		json_object_set_new(probe, "libvirt", json_string(libvirt));
		json_object_set_new(probe, "qemu", json_string(qemu));
	} else {
		g_autofree char *why = first_line(c.error);
		g_autofree char *msg = g_strdup_printf("virsh -c %s version: %s", s->libvirt_uri,
						       why ? why : "no versions in its output");
		json_object_set_new(probe, "virt_error", json_string(msg));
	}
	command_clear(&c);
}

static void probe_cpu(json_t *probe)
{
	g_autofree char *text = NULL, *model = NULL, *flags = NULL;
	if (!g_file_get_contents("/proc/cpuinfo", &text, NULL, NULL) ||
	    !herd_check_parse_cpuinfo(text, &model, &flags))
		return;
	g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, flags, -1);
	json_object_set_new(probe, "cpu_model", json_string(model));
	json_object_set_new(probe, "cpu_flags", json_string(sha));
}

typedef struct {
	herd_check_probe_spec *spec;
	herd_check_probe_done done;
	gpointer user;
	json_t *probe;
} probe_job;

static gboolean on_probed(gpointer data)
{
	probe_job *j = data;
	j->done(j->probe, j->user);
	json_decref(j->probe);
	herd_check_probe_spec_free(j->spec);
	g_free(j);
	return G_SOURCE_REMOVE;
}

static gpointer probe_thread(gpointer data)
{
	probe_job *j = data;
	/* Built here, handed over whole: no other thread touches it meanwhile. */
	j->probe = json_object();
	probe_pings(j->spec, j->probe);
	probe_corosync_conf(j->spec, j->probe);
	probe_virt(j->spec, j->probe);
	probe_cpu(j->probe);
	g_idle_add(on_probed, j);
	return NULL;
}

void herd_check_probe(herd_check_probe_spec *spec, herd_check_probe_done done, gpointer user)
{
	probe_job *j = g_new0(probe_job, 1);
	j->spec = spec;
	j->done = done;
	j->user = user;
	g_autoptr(GError) err = NULL;
	GThread *th = g_thread_try_new("herd-check", probe_thread, j, &err);
	if (th) {
		g_thread_unref(th);
		return;
	}
	j->probe = json_pack("{s:s}", "virt_error", err->message);
	g_idle_add(on_probed, j);
}
