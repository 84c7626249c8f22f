/*
 * herd-san: the eSAN daemon of a node (docs/esan.md).  It serves each
 * replicated volume of this node through one nbdkit with herd's plugin (the
 * data path), and takes herdd's orders on /run/herd/san.sock.  It is not a
 * child of herdd, and its nbdkits are not tied to it: herdd and herd-san
 * can both restart while a guest writes, and its disk goes on (the plugin
 * serves alone; herd-san only starts, watches and tells).
 *
 *   herd-san [--data-dir DIR] [--run-dir DIR] [--socket PATH]
 *            [--nbdkit PATH] [--plugin PATH] [--qemu-group GROUP] [--verbose]
 *
 * QEMU's sockets (RUN/UUID.sock) are root's (0600), or with --qemu-group
 * (default: libvirt-qemu, if that group exists) also that group's (0660).
 */
#define G_LOG_DOMAIN "san"

#include "common/error.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/sd_notify.h"
#include "herd-config.h"
#include "san/control.h"
#include "san/daemon.h"
#include "san/volume.h"
#include "store/object.h"

#include <errno.h>
#include <glib-unix.h>
#include <grp.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <string.h>
#include <unistd.h>

char *san_data_path(const san_daemon *d, const char *uuid, const char *suffix)
{
	g_autofree char *name = g_strdup_printf("%s.%s", uuid, suffix);
	return g_build_filename(d->data_dir, name, NULL);
}

char *san_run_path(const san_daemon *d, const char *uuid, const char *suffix)
{
	g_autofree char *name = g_strdup_printf("%s.%s", uuid, suffix);
	return g_build_filename(d->run_dir, name, NULL);
}

char *san_tls_path(const san_daemon *d)
{
	return g_build_filename(d->run_dir, "tls", NULL);
}

/* How often herd-san looks whether the node's certificates were renewed. */
#define CERT_CHECK_S 5

static gboolean on_cert_check(void *data)
{
	san_control_check_certs(data);
	return G_SOURCE_CONTINUE;
}

static gboolean on_quit_signal(void *data)
{
	log_info("stopping; the volumes' nbdkits go on serving");
	g_main_loop_quit(data);
	return G_SOURCE_CONTINUE;
}

/* The saved config, then every saved volume (adopting running nbdkits). */
static void load_saved(san_daemon *d)
{
	g_autofree char *config_path = g_build_filename(d->data_dir, "config.json", NULL);
	g_autofree char *text = NULL;
	if (g_file_get_contents(config_path, &text, NULL, NULL)) {
		g_autoptr(GError) error = NULL;
		g_autoptr(san_request) req = san_request_parse(text, &error);
		if (!req || req->op != SAN_OP_CONFIG || !san_control_apply_config(d, req, &error))
			log_warn("the saved config '%s' is not usable (%s): waiting for herdd's",
				 config_path, error ? error->message : "another op");
	}
	g_autoptr(GDir) dir = g_dir_open(d->data_dir, 0, NULL);
	const char *name;
	while (dir && (name = g_dir_read_name(dir))) {
		if (!g_str_has_suffix(name, ".json") || strlen(name) != SAN_UUID_LEN + 5)
			continue;
		g_autofree char *uuid = g_strndup(name, SAN_UUID_LEN);
		g_autoptr(GError) error = NULL;
		if (store_uuid_is_valid(uuid) && !san_volume_load(d, uuid, &error))
			log_err("volume %s not loaded: %s", uuid, error->message);
	}
}

int main(int argc, char **argv)
{
	g_autofree char *data_dir = NULL, *run_dir = NULL, *socket_path = NULL, *nbdkit = NULL, *plugin = NULL;
	g_autofree char *qemu_group = NULL;
	gboolean verbose = FALSE;
	GOptionEntry entries[] = {
		{ "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir, "Replicas and saved state (" HERD_LOCALSTATEDIR "/esan)", "DIR" },
		{ "run-dir", 0, 0, G_OPTION_ARG_FILENAME, &run_dir, "Sockets and pid files (" HERD_RUNDIR "/san)", "DIR" },
		{ "socket", 0, 0, G_OPTION_ARG_FILENAME, &socket_path, "herdd's control socket (" HERD_RUNDIR "/san.sock)", "PATH" },
		{ "nbdkit", 0, 0, G_OPTION_ARG_FILENAME, &nbdkit, "The nbdkit program (nbdkit in PATH)", "PATH" },
		{ "plugin", 0, 0, G_OPTION_ARG_FILENAME, &plugin, "herd's nbdkit plugin (" HERD_SAN_PLUGIN ")", "PATH" },
		{ "qemu-group", 0, 0, G_OPTION_ARG_STRING, &qemu_group, "The group QEMU runs as (libvirt-qemu if it exists; \"\": none)", "GROUP" },
		{ "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL },
		{ NULL },
	};
	g_autoptr(GOptionContext) ctx = g_option_context_new("- herd's eSAN daemon");
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_autoptr(GError) error = NULL;
	if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc != 1) {
		g_printerr("herd-san: %s\n", error ? error->message : "unexpected arguments");
		return 2;
	}
	herd_log_init(verbose ? HERD_LOG_DEBUG : HERD_LOG_INFO, isatty(STDERR_FILENO));
	/* Before any thread, and so that no nbdkit inherits it. */
	herdd_notify *notify = herdd_notify_from_env();
	signal(SIGPIPE, SIG_IGN);

	san_daemon d = { 0 };
	d.data_dir = data_dir ? g_canonicalize_filename(data_dir, NULL) : g_strdup(HERD_LOCALSTATEDIR "/esan");
	d.run_dir = run_dir ? g_canonicalize_filename(run_dir, NULL) : g_strdup(HERD_RUNDIR "/san");
	d.socket_path = socket_path ? g_canonicalize_filename(socket_path, NULL) : g_strdup(HERD_RUNDIR "/san.sock");
	d.plugin = plugin ? g_canonicalize_filename(plugin, NULL) : g_strdup(HERD_SAN_PLUGIN);
	d.qemu_gid = -1;
	struct group *gr = getgrnam(qemu_group ? qemu_group : "libvirt-qemu");
	if (gr)
		d.qemu_gid = (int)gr->gr_gid;
	else if (qemu_group && *qemu_group) {
		g_printerr("herd-san: there is no group '%s'\n", qemu_group);
		return 2;
	}
	d.nbdkit = g_find_program_in_path(nbdkit ? nbdkit : "nbdkit");
	if (!d.nbdkit) {
		g_printerr("herd-san: cannot find the program '%s'\n", nbdkit ? nbdkit : "nbdkit");
		return 1;
	}
	if (access(d.plugin, R_OK) < 0)
		log_warn("the plugin '%s' is not readable (%s): its nbdkits will fail", d.plugin, g_strerror(errno));
	g_autofree char *socket_dir = g_path_get_dirname(d.socket_path);
	if (!herd_mkdir_p(d.data_dir, 0700, &error) || !herd_mkdir_p(d.run_dir, 0755, &error) ||
	    !herd_mkdir_p(socket_dir, 0755, &error)) {
		g_printerr("herd-san: %s\n", error->message);
		return 1;
	}
	/* One herd-san per run directory: a second would take over the
	 * control socket and start second nbdkits. */
	g_autofree char *lock_path = g_build_filename(d.run_dir, "herd-san.lock", NULL);
	int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		g_printerr("herd-san: %s: %s\n", lock_path,
			   errno == EWOULDBLOCK ? "another herd-san serves this run directory" : g_strerror(errno));
		return 1;
	}
	d.volumes = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)san_volume_free);

	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	load_saved(&d);
	if (!san_control_start(&d, &error)) {
		g_printerr("herd-san: %s\n", error->message);
		return 1;
	}
	/* renewed certificates are taken within this long */
	g_timeout_add_seconds(CERT_CHECK_S, on_cert_check, &d);
	g_unix_signal_add(SIGTERM, on_quit_signal, loop);
	g_unix_signal_add(SIGINT, on_quit_signal, loop);
	log_info("herd-san %s: %u volume(s); listening on %s", HERD_VERSION, g_hash_table_size(d.volumes),
		 d.socket_path);
	herdd_notify_ready(notify, "serving");
	g_main_loop_run(loop);
	herdd_notify_stopping(notify);

	san_control_stop(&d);
	g_hash_table_destroy(d.volumes);
	if (d.config_msg)
		json_decref(d.config_msg);
	san_request_free(d.config);
	g_free(d.data_dir);
	g_free(d.run_dir);
	g_free(d.socket_path);
	g_free(d.nbdkit);
	g_free(d.plugin);
	g_free(d.tls_fingerprint);
	close(lock_fd);
	return 0;
}
