#define G_LOG_DOMAIN "daemon"
#include "api/permission.h"
#include "api/routes.h"
#include "cluster/corosync_conf.h"
#include "cluster/service.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/loop_monitor.h"
#include "common/memory.h"
#include "daemon/config.h"
#include "daemon/certificate.h"
#include "daemon/checker.h"
#include "daemon/herdd.h"
#include "common/sd_notify.h"
#include "daemon/link_watch.h"
#include "daemon/memory_trim.h"
#include "daemon/ping_watch.h"
#include "daemon/job_runner.h"
#include "daemon/notify_send.h"
#include "daemon/reach_check.h"
#include "daemon/san_link.h"
#include "daemon/qdevice_setup.h"
#include "daemon/console_proxy.h"
#include "daemon/virt_setup.h"
#include "ha/fence.h"
#include "ha/ha.h"
#include "virt/driver.h"

#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* SIGTERM: the service manager's (see daemon/shutdown.c). */
static gboolean on_sigterm(gpointer data)
{
	herdd_stop_requested(data);
	return G_SOURCE_CONTINUE;
}

/* SIGINT: someone at a terminal; exit at once, as always. */
static gboolean on_sigint(gpointer data)
{
	log_info("shutting down on signal");
	herdd_quit(data);
	return G_SOURCE_CONTINUE;
}

/* corosync's version, for GET /api/v1/node; NULL if it is not installed. */
static char *probe_corosync_version(void)
{
	g_autofree char *out = NULL;
	const char *argv[] = { "corosync", "-v", NULL };
	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
			  NULL, NULL, &out, NULL, NULL, NULL) || !out)
		return NULL;
	char *q = strstr(out, "version '");
	if (!q)
		return NULL;
	q += strlen("version '");
	char *end = strchr(q, '\'');
	return end ? g_strndup(q, (gsize)(end - q)) : NULL;
}

bool herdd_restart_tcp(herdd *d, GError **error)
{
	http_server_stop_tcp(d->api);
	if (d->cfg->api_port <= 0)
		return true;
	return http_server_listen_tcp(d->api, d->cfg->listen_address, d->cfg->api_port,
				      d->tls_cert_pem, d->tls_key_pem, error);
}

/* Cluster formation's I/O: the daemon's certificate and service manager. */
static bool formation_install_tls(gpointer user, const char *ca_pem, const char *cert_pem,
				  const char *key_pem, GError **error)
{
	herdd *d = user;
	if (!herdd_install_tls(d, ca_pem, cert_pem, key_pem, error))
		return false;
	/* libvirt's and QEMU's copies follow. */
	herd_virt_setup_kick(d->virt_setup);
	return true;
}

static bool formation_reset_tls(gpointer user, GError **error)
{
	herdd *d = user;
	if (!herdd_reset_tls(d, error))
		return false;
	herd_virt_setup_kick(d->virt_setup);
	return true;
}

static char *formation_ca_pem(gpointer user)
{
	return herdd_ca_pem(user);
}

static void formation_service(gpointer user, const char *action, const char *service,
			      herd_formation_service_done done, gpointer data)
{
	herdd_service(user, action, service, done, data);
}

/* The host's setup for live migration: its I/O through the daemon. */
static void setup_service(gpointer user, const char *action, const char *service,
			  herd_virt_setup_done done, gpointer data)
{
	herdd_service(user, action, service, done, data);
}

static void setup_run(gpointer user, const char *const *argv, herd_virt_setup_done done,
		      gpointer data)
{
	herdd_run(user, argv, done, data);
}

static unsigned setup_migrations(gpointer user)
{
	herdd *d = user;
	return herd_ha_migrations_here(d->ha);
}

static void setup_status(gpointer user, bool ready, const char *problem)
{
	herdd *d = user;
	herd_ha_set_migration_ready(d->ha, ready, problem);
}

static void reach_report(gpointer user, json_t *reach, json_t *usage)
{
	herdd *d = user;
	herd_ha_set_reach(d->ha, reach, usage);
}

static const herd_virt_setup_io virt_setup_io = {
	.service = setup_service,
	.run = setup_run,
	.migrations = setup_migrations,
	.status = setup_status,
};

static herd_virt_setup *virt_setup_start(herdd *d)
{
	const herdd_config *c = d->cfg;
	herd_virt_setup_config vc = {
		.paths = {
			.qemu_conf = c->qemu_conf,
			.ca_file = c->libvirt_ca_file,
			.libvirt_pki_dir = c->libvirt_pki_dir,
			.qemu_pki_dir = c->qemu_pki_dir,
			.sysctl_file = c->sysctl_file,
		},
		.qemu_group = c->qemu_group,
		.tls_socket = c->libvirt_tls_socket,
		.libvirtd = "libvirtd",
		.state_dir = c->state_dir,
		.tls_dir = d->tls_dir,
	};
	return herd_virt_setup_new(&vc, d->cluster, c->node_name, &virt_setup_io, d);
}

static const herd_formation_io formation_io = {
	.install_tls = formation_install_tls,
	.reset_tls = formation_reset_tls,
	.ca_pem = formation_ca_pem,
	.service = formation_service,
};

int main(int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	herdd d = { 0 };
	int status = 1;

	herd_malloc_init();
	/* The journal stamps lines itself; anywhere else herdd does. */
	herd_log_init(HERD_LOG_INFO, !g_getenv("JOURNAL_STREAM"));
	/* First, while herdd has one thread: it edits the environment. */
	g_autoptr(herdd_notify) notify = herdd_notify_from_env();
	d.notify = notify;
	d.cfg = herdd_config_load(&argc, &argv, &error);
	if (!d.cfg) {
		fprintf(stderr, "herdd: %s\n", error->message);
		return 2;
	}
	herd_log_level level = HERD_LOG_INFO;
	herd_log_level_parse(d.cfg->log_level, &level);
	herd_log_set_level(level);
	signal(SIGPIPE, SIG_IGN);

	d.loop = g_main_loop_new(NULL, FALSE);
	d.tls_dir = g_build_filename(d.cfg->state_dir, "tls", NULL);
	d.corosync_version = probe_corosync_version();
	d.libvirt_version = herd_virt_libvirt_version();
	d.node_info = (api_node_info){
		.name = d.cfg->node_name,
		.started_us = g_get_monotonic_time(),
		.started_wall_s = g_get_real_time() / G_USEC_PER_SEC,
		.corosync_version = d.corosync_version,
		.libvirt_version = d.libvirt_version,
	};
	log_info("herd %s starting as node '%s' (config %s, state %s)", HERD_VERSION,
		 d.cfg->node_name, d.cfg->config_file ? d.cfg->config_file : "built-in defaults",
		 d.cfg->state_dir);

	if (!herd_mkdir_p(d.cfg->state_dir, 0700, &error) || !herdd_tls_load(&d, &error))
		goto out;
	{
		/* Fence agents without pexpect's 0.1 s pause per command (ha/fence.h). */
		g_autoptr(GError) err = NULL;
		g_autofree char *dir = g_build_filename(d.cfg->state_dir, "fence-python", NULL);
		if (!herd_fence_agent_python_setup(dir, &err))
			log_warn("fence agents run with pexpect's pauses: %s", err->message);
	}

	d.cluster = herd_cluster_new(d.cfg->state_dir, d.cfg->node_name, herd_corosync_bus_new("herd"),
				     &error);
	if (!d.cluster)
		goto out;
	herd_corosync_conf_follow(d.cluster, d.cfg->corosync_dir);
	herd_qdevice_setup_new(&d, d.cfg->corosync_dir);
	d.virt = herd_virt_libvirt_new(d.cfg->libvirt_uri, NULL, NULL);
	d.ha = herd_ha_new(d.cluster, d.cfg->node_name, d.virt);
	d.virt_setup = virt_setup_start(&d);
	d.reach = herd_reach_checker_new(d.cluster, reach_report, &d);
	d.san = herd_san_link_new(d.cluster, d.ha, d.cfg->node_name, d.cfg->san_socket, d.tls_dir);
	d.links = herd_link_watch_new(d.cluster, d.ha, d.cfg->node_name);
	d.ping = herd_ping_watch_new(d.cluster, d.ha);
	d.formation = herd_formation_new(d.cluster, d.cfg->node_name, d.cfg->corosync_dir,
					 &formation_io, &d);
	d.notifier = herd_notifier_new(d.cluster, d.ha, d.cfg->node_name);
	d.jobs = herd_job_runner_new(d.cluster, d.ha, d.cfg->node_name);
	d.api_ctx = (api_ctx){ d.cluster, d.ha, d.formation, &d.node_info };
	d.api_ctx.notify_test = herd_notifier_test;
	d.api_ctx.notifier = d.notifier;
	d.checker = herd_checker_new(d.cluster, d.ha, d.cfg->corosync_dir, d.cfg->libvirt_uri);
	d.api_ctx.check_run = herd_checker_run;
	d.api_ctx.checker = d.checker;
	d.console = herd_console_proxy_new(d.cfg->node_name, d.cfg->libvirt_uri, d.tls_dir,
					   d.cfg->listen_address, d.cfg->console_port, d.ha, d.cluster,
					   &error);
	if (!d.console)
		goto out;
	d.api_ctx.console_ops = &herd_console_ops;
	d.api_ctx.console_proxy = d.console;

	d.api = http_server_new(herd_api_routes, herd_api_n_routes, &d.api_ctx);
	static const http_credentials_config auth_config = { .token_user = api_session_user,
							     .refusal = api_password_refusal };
	http_server_set_auth(d.api, api_user_password_hash, &auth_config);
	http_server_set_authorize(d.api, api_authorize);
	http_server_set_files(d.api, d.cfg->ui_dir);
	if (!http_server_listen_unix(d.api, d.cfg->socket_path, &error) ||
	    !herdd_restart_tcp(&d, &error))
		goto out;
	herd_cluster_start(d.cluster, herd_formation_joining(d.formation));

	g_unix_signal_add(SIGTERM, on_sigterm, &d);
	g_unix_signal_add(SIGINT, on_sigint, &d);
	log_info("ready");
	{
		g_autofree char *ready = g_strdup_printf("serving node %s", d.cfg->node_name);
		herdd_notify_ready(notify, ready);
	}
	d.loop_monitor = loop_monitor_start(NULL, NULL);
	d.trim = herdd_memory_trim_new(d.cluster);
	d.node_info.loop = d.loop_monitor;
	g_main_loop_run(d.loop);
	herdd_notify_stopping(notify);
	status = 0;
out:
	if (error)
		log_err("%s", error->message);
	/* before the API's server: consoles hold its upgraded connections */
	herdd_memory_trim_free(d.trim);
	herd_console_proxy_free(d.console);
	herd_virt_setup_free(d.virt_setup);
	herd_reach_checker_free(d.reach);
	herd_san_link_free(d.san);
	herd_link_watch_free(d.links);
	herd_ping_watch_free(d.ping);
	herd_notifier_free(d.notifier);
	herd_job_runner_free(d.jobs);
	herd_checker_free(d.checker);
	/* Leaving for the host's shutdown: the others hear why before the
	 * group sees this node go (herd_cluster_free() leaves it). */
	herdd_stop_finish(&d);
	g_clear_handle_id(&d.extend_timer, g_source_remove);
	/* The engine first: what it answers goes out through the API server. */
	herd_ha_free(d.ha);
	herd_virt_free(d.virt);
	http_server_free(d.api);
	api_ctx_clear(&d.api_ctx);
	herd_formation_free(d.formation);
	herd_cluster_free(d.cluster);
	loop_monitor_free(d.loop_monitor);
	g_main_loop_unref(d.loop);
	g_free(d.tls_dir);
	g_free(d.tls_cert_pem);
	g_free(d.tls_key_pem);
	g_free(d.tls_fingerprint);
	g_free(d.corosync_version);
	g_free(d.libvirt_version);
	g_free(d.leave_reason);
	herdd_config_free(d.cfg);
	log_info("stopped");
	return status;
}
