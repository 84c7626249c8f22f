#define G_LOG_DOMAIN "virt-setup"
#include "daemon/virt_setup.h"

#include "common/error.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/replica.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RESERVED_PORTS "/proc/sys/net/ipv4/ip_local_reserved_ports"
/* In the state directory: what libvirtd still owes ("restart" or
 * "reload"), so that a herdd that died between writing the files and
 * telling libvirtd does it when it is back. */
#define OWED_FILE "libvirtd-owed"

struct herd_virt_setup {
	/* The configuration's strings, owned. */
	char *paths_strings[6];
	herd_host_paths paths;
	char *qemu_group, *tls_socket, *libvirtd, *state_dir, *tls_dir;
	char *node;
	herd_cluster *cluster;
	herd_virt_setup_io io;
	gpointer user;

	guint idle;            /* a look is due */
	guint timer;           /* the next look after a failure or while busy */
	unsigned retry_s;      /* the delay of the next retry after a failure */
	bool working;          /* commands under way */
	bool again;            /* asked to look while they ran */
	bool dying;            /* freed while commands ran: freed when they end */
	bool certificates_ok;  /* the node's certificate is usable and in place */
	bool socket_on;        /* libvirtd's TLS listener seen enabled since herdd started */
	bool restart_owed;     /* libvirtd must restart (qemu.conf, or a new listener) */
	bool reload_owed;      /* libvirtd must load its certificates again */
	bool busy;             /* the restart waits for migrations */
	char *problem;         /* why the node is not ready, or NULL */
	char *logged;          /* the last problem logged */
	bool logged_ready;     /* "set up" was logged since the last problem */
	bool after_sync;       /* a look waits for the store's sync to end */
};

static void work(herd_virt_setup *vs);
static gboolean on_retry(gpointer data);
static void look_soon(herd_virt_setup *vs);

/* ------------------------------------------------------------------ */
/* What libvirtd owes, kept across herdd's restarts                    */

static char *owed_path(herd_virt_setup *vs)
{
	return g_build_filename(vs->state_dir, OWED_FILE, NULL);
}

static void owed_load(herd_virt_setup *vs)
{
	g_autofree char *path = owed_path(vs);
	g_autofree char *text = NULL;
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return;
	vs->restart_owed |= strstr(text, "restart") != NULL;
	vs->reload_owed |= strstr(text, "reload") != NULL;
}

static void owed_save(herd_virt_setup *vs)
{
	g_autofree char *path = owed_path(vs);
	g_autoptr(GError) err = NULL;
	if (!vs->restart_owed && !vs->reload_owed) {
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("cannot remove %s: %s", path, g_strerror(errno));
		return;
	}
	const char *text = vs->restart_owed ? "restart\n" : "reload\n";
	/* Without it only a crash at the wrong moment loses the restart. */
	if (!herd_file_write_atomic(path, text, strlen(text), 0600, &err))
		log_warn("%s", err->message);
}

/* ------------------------------------------------------------------ */
/* Reporting                                                           */

static void set_problem(herd_virt_setup *vs, char *problem)
{
	if (!vs->problem)
		vs->problem = problem;
	else
		g_free(problem); /* the first reason is the one to fix first */
}

/* The look is over: say how it went, once per reason. */
static void report(herd_virt_setup *vs)
{
	if (vs->problem && g_strcmp0(vs->problem, vs->logged) != 0) {
		if (vs->busy)
			log_info("%s", vs->problem);
		else
			log_warn("this node is not ready for live migration: %s", vs->problem);
		g_free(vs->logged);
		vs->logged = g_strdup(vs->problem);
		vs->logged_ready = false;
	} else if (!vs->problem && !vs->logged_ready) {
		log_info("this node's libvirt and QEMU are set up for live migration");
		g_clear_pointer(&vs->logged, g_free);
		vs->logged_ready = true;
	}
	vs->io.status(vs->user, vs->problem == NULL, vs->problem);
	if (vs->timer) {
		g_source_remove(vs->timer);
		vs->timer = 0;
	}
	if (vs->problem) {
		unsigned delay = vs->busy ? VIRT_SETUP_BUSY_RETRY_S : vs->retry_s;
		if (!vs->busy)
			vs->retry_s = MIN(vs->retry_s * 2, VIRT_SETUP_RETRY_MAX_S);
		vs->timer = g_timeout_add_seconds(delay, on_retry, vs);
	} else {
		vs->retry_s = VIRT_SETUP_RETRY_FIRST_S;
	}
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

static GHashTable *read_files(GPtrArray *paths)
{
	GHashTable *out = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
						(GDestroyNotify)herd_host_file_free);
	for (guint i = 0; i < paths->len; i++) {
		const char *path = paths->pdata[i];
		herd_host_file *f = g_new0(herd_host_file, 1);
		struct stat st;
		/* A file that cannot be read counts as missing: writing it
		 * says what is wrong. */
		if (!g_file_get_contents(path, &f->text, NULL, NULL) || stat(path, &st) < 0) {
			herd_host_file_free(f);
			continue;
		}
		f->path = g_strdup(path);
		f->mode = st.st_mode & 07777;
		f->gid = (int)st.st_gid;
		g_hash_table_replace(out, f->path, f);
	}
	return out;
}

static bool write_file(const herd_host_file *f, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(f->path);
	if (!g_file_test(dir, G_FILE_TEST_IS_DIR) && !herd_mkdir_p(dir, f->dir_mode, error))
		return false;
	return herd_file_write_atomic_group(f->path, f->text, strlen(f->text), f->mode, f->gid,
					    error);
}

/* The kernel's list is a file of /proc: written in place, not renamed. */
static bool write_kernel(const char *path, const char *value, GError **error)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	g_autofree char *line = g_strdup_printf("%s\n", value);
	ssize_t n = fd < 0 ? -1 : write(fd, line, strlen(line));
	int saved = errno;
	if (fd >= 0 && close(fd) < 0 && n >= 0) {
		saved = errno;
		n = -1;
	}
	if (n < 0 || (size_t)n != strlen(line)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot reserve ports %s in %s: %s.", value,
			    path, n < 0 ? g_strerror(saved) : "short write");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* A look: the files, then what libvirtd must do                       */

/* The node's certificate, CA and key from herdd's directory, checked for
 * every name other nodes reach this one by; false with the reason. */
static bool load_certificates(herd_virt_setup *vs, const store_node *me, char **ca, char **cert,
			      char **key)
{
	g_autofree char *ca_path = g_build_filename(vs->tls_dir, "ca.crt", NULL);
	g_autofree char *cert_path = g_build_filename(vs->tls_dir, "node.crt", NULL);
	g_autofree char *key_path = g_build_filename(vs->tls_dir, "node.key", NULL);
	g_autoptr(GError) err = NULL;
	if (!g_file_get_contents(ca_path, ca, NULL, NULL) ||
	    !g_file_get_contents(cert_path, cert, NULL, NULL) ||
	    !g_file_get_contents(key_path, key, NULL, NULL)) {
		set_problem(vs, g_strdup_printf("This node has no certificate from the cluster's CA in %s yet.",
						vs->tls_dir));
		return false;
	}
	if (!herd_tls_check_virt(*cert, *ca, vs->node, &err)) {
		set_problem(vs, g_strdup_printf("This node's certificate (%s) cannot serve libvirt and QEMU: %s",
						cert_path, err->message));
		return false;
	}
	for (size_t i = 0; i < me->n_links; i++) {
		if (!herd_tls_check_virt(*cert, *ca, me->links[i], &err)) {
			set_problem(vs, g_strdup_printf("This node's certificate (%s) cannot serve libvirt and QEMU at %s: %s",
							cert_path, me->links[i], err->message));
			return false;
		}
	}
	return true;
}

static int qemu_gid(herd_virt_setup *vs)
{
	if (!vs->qemu_group || !*vs->qemu_group)
		return -1;
	struct group *g = getgrnam(vs->qemu_group);
	if (!g) {
		set_problem(vs, g_strdup_printf("Group '%s' ([libvirt] qemu_group in herd.conf) does not exist; QEMU, running as it, could not read its key.",
						vs->qemu_group));
		return -1;
	}
	return (int)g->gr_gid;
}

static void look(herd_virt_setup *vs)
{
	if (vs->working) {
		vs->again = true;
		return;
	}
	g_clear_pointer(&vs->problem, g_free);
	vs->busy = false;
	store_state *st = herd_cluster_state(vs->cluster);
	store_object *me = store_state_cluster(st)
				   ? store_state_get_by_name(st, STORE_KIND_NODE, vs->node)
				   : NULL;
	/* Not a member (yet, or any more): nothing of a cluster to set. */
	if (!me)
		return;
	const store_settings *settings = store_settings_of(st);
	g_autofree char *ca = NULL, *cert = NULL, *key = NULL;
	bool certificates = load_certificates(vs, store_node_of(me), &ca, &cert, &key);
	herd_host_want want = {
		.ca_pem = certificates ? ca : NULL,
		.cert_pem = certificates ? cert : NULL,
		.key_pem = certificates ? key : NULL,
		.port_min = (unsigned)settings->migration_port_min,
		.port_max = (unsigned)settings->migration_port_max,
		.qemu_key_gid = qemu_gid(vs),
	};
	g_autoptr(GPtrArray) to_read = herd_host_paths_to_read(&vs->paths, &want);
	g_autoptr(GHashTable) current = read_files(to_read);
	g_autoptr(herd_host_plan) plan = herd_host_plan_make(&vs->paths, &want, current);

	if (plan->qemu_conf_changed || plan->libvirt_tls_changed) {
		vs->restart_owed |= plan->qemu_conf_changed;
		vs->reload_owed |= plan->libvirt_tls_changed;
		owed_save(vs);
	}
	bool written = true;
	for (guint i = 0; i < plan->write->len && written; i++) {
		const herd_host_file *f = plan->write->pdata[i];
		g_autoptr(GError) err = NULL;
		written = write_file(f, &err);
		if (written)
			log_info("wrote %s", f->path);
		else
			set_problem(vs, g_strdup(err->message));
	}
	vs->certificates_ok = certificates && written;
	if (plan->reserved_ports && written) {
		g_autoptr(GError) err = NULL;
		if (write_kernel(vs->paths.reserved_ports, plan->reserved_ports, &err))
			log_info("the kernel reserves ports %s now (migration ports %u-%u)",
				 plan->reserved_ports, want.port_min, want.port_max);
		else
			set_problem(vs, g_strdup(err->message));
	}
	if (plan->problem)
		set_problem(vs, g_strdup(plan->problem));
	/* Half-written files are no configuration to restart libvirtd with
	 * (a missing key would keep it from starting): try again later. */
	if (written)
		work(vs);
	else
		report(vs);
}

/* Wait with a look while the store syncs, at most this long. */
#define SYNC_WAIT_MS 1000

static gboolean on_look(gpointer data)
{
	herd_virt_setup *vs = data;
	vs->idle = 0;
	/*
	 * Not while the store syncs: a look writes a dozen files, each made
	 * durable, on the main loop (0.1 s on a busy test host, the first
	 * time a node joins), and the sync ends only once this node has taken
	 * in every member's PERSISTED message.  A joining node's sync took
	 * that much longer, and so did its join.  The sync's end (durable),
	 * a change, or SYNC_WAIT_MS look again.
	 */
	if (replica_get_phase(herd_cluster_replica(vs->cluster)) == REPLICA_SYNCING) {
		vs->after_sync = true;
		if (!vs->timer)
			vs->timer = g_timeout_add(SYNC_WAIT_MS, on_retry, vs);
		return G_SOURCE_REMOVE;
	}
	vs->after_sync = false;
	look(vs);
	return G_SOURCE_REMOVE;
}

static void look_soon(herd_virt_setup *vs)
{
	if (vs->timer) {
		g_source_remove(vs->timer);
		vs->timer = 0;
	}
	if (!vs->idle)
		vs->idle = g_idle_add(on_look, vs);
}

static gboolean on_retry(gpointer data)
{
	herd_virt_setup *vs = data;
	vs->timer = 0;
	vs->after_sync = false;
	look(vs);
	return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------ */
/* Commands: one at a time, each step calls work() again when done     */

typedef enum {
	STEP_SOCKET_STATUS,
	STEP_SOCKET_ENABLE,
	STEP_SOCKET_START,
	STEP_RESTART,
	STEP_RELOAD,
} step;

typedef struct {
	herd_virt_setup *vs;
	step step;
} step_ctx;

static void finish(herd_virt_setup *vs)
{
	vs->working = false;
	if (vs->dying) {
		herd_virt_setup_free(vs);
		return;
	}
	report(vs);
	if (vs->again) {
		vs->again = false;
		look_soon(vs);
	}
}

static void on_step(const GError *error, gpointer data);

static void run_step(herd_virt_setup *vs, step s)
{
	step_ctx *c = g_new0(step_ctx, 1);
	c->vs = vs;
	c->step = s;
	vs->working = true;
	switch (s) {
	case STEP_SOCKET_STATUS:
		vs->io.service(vs->user, "status", vs->tls_socket, on_step, c);
		break;
	case STEP_SOCKET_ENABLE:
		vs->io.service(vs->user, "enable", vs->tls_socket, on_step, c);
		break;
	case STEP_SOCKET_START:
		vs->io.service(vs->user, "start", vs->tls_socket, on_step, c);
		break;
	case STEP_RESTART:
		vs->io.service(vs->user, "restart", vs->libvirtd, on_step, c);
		break;
	case STEP_RELOAD: {
		/* New certificates without a restart (libvirt 6.2 and later);
		 * "libvirtd" is the server of libvirtd's clients, as opposed to
		 * its "admin" server. */
		const char *argv[] = { "virt-admin", "server-update-tls", "libvirtd", NULL };
		vs->io.run(vs->user, argv, on_step, c);
		break;
	}
	}
}

static void on_step(const GError *error, gpointer data)
{
	step_ctx *c = data;
	herd_virt_setup *vs = c->vs;
	step s = c->step;
	g_free(c);
	if (vs->dying) {
		finish(vs);
		return;
	}
	switch (s) {
	case STEP_SOCKET_STATUS:
		if (!error) {
			vs->socket_on = true;
			work(vs);
		} else {
			run_step(vs, STEP_SOCKET_ENABLE);
		}
		return;
	case STEP_SOCKET_ENABLE:
	case STEP_SOCKET_START:
		if (error) {
			set_problem(vs, g_strdup_printf("libvirtd cannot be made to listen for TLS (port 16514): %s",
							error->message));
			finish(vs);
		} else if (s == STEP_SOCKET_ENABLE) {
			run_step(vs, STEP_SOCKET_START);
		} else {
			log_info("enabled %s: libvirtd listens for TLS once it restarts", vs->tls_socket);
			vs->socket_on = true;
			vs->restart_owed = true;
			owed_save(vs);
			work(vs);
		}
		return;
	case STEP_RESTART:
		if (error) {
			set_problem(vs, g_strdup_printf("libvirtd could not be restarted to take its new configuration: %s",
							error->message));
		} else {
			log_info("restarted %s with its new configuration (running guests are not touched)",
				 vs->libvirtd);
			vs->restart_owed = vs->reload_owed = false;
			owed_save(vs);
		}
		finish(vs);
		return;
	case STEP_RELOAD:
		if (error) {
			/* An older libvirtd, or one without a TLS listener:
			 * it takes them at a restart. */
			log_info("virt-admin could not make libvirtd load its new certificates (%s); restarting it instead",
				 error->message);
			vs->restart_owed = true;
			owed_save(vs);
		} else {
			log_info("libvirtd loaded its new certificates");
			vs->reload_owed = false;
			owed_save(vs);
		}
		work(vs);
		return;
	}
}

/* The next thing libvirtd needs, or the end of the look. */
static void work(herd_virt_setup *vs)
{
	/* libvirtd's TLS listener needs the certificates in place: without
	 * them libvirtd would not start at all. */
	if (vs->tls_socket && *vs->tls_socket && !vs->socket_on && vs->certificates_ok) {
		run_step(vs, STEP_SOCKET_STATUS);
		return;
	}
	if (vs->restart_owed) {
		unsigned running = vs->io.migrations(vs->user);
		if (running > 0) {
			/* A restart would end them (libvirt cancels a migration
			 * it finds under way when it starts again). */
			vs->busy = true;
			set_problem(vs, g_strdup_printf("libvirtd must restart to take its new configuration; it waits for the %u live migration(s) under way on this node.",
							running));
			finish(vs);
			return;
		}
		run_step(vs, STEP_RESTART);
		return;
	}
	if (vs->reload_owed) {
		run_step(vs, STEP_RELOAD);
		return;
	}
	finish(vs);
}

/* ------------------------------------------------------------------ */

static void on_store_change(gpointer user, GPtrArray *changes)
{
	herd_virt_setup *vs = user;
	bool relevant = changes == NULL;
	for (guint i = 0; changes && i < changes->len && !relevant; i++) {
		store_change *c = changes->pdata[i];
		relevant = c->kind == STORE_KIND_CLUSTER || c->kind == STORE_KIND_NODE;
	}
	if (relevant)
		look_soon(vs);
}

static void on_durable(gpointer user)
{
	herd_virt_setup *vs = user;
	if (vs->after_sync)
		look_soon(vs);
}

herd_virt_setup *herd_virt_setup_new(const herd_virt_setup_config *cfg, herd_cluster *cluster,
				     const char *node_name, const herd_virt_setup_io *io,
				     gpointer user)
{
	herd_virt_setup *vs = g_new0(herd_virt_setup, 1);
	const char *paths[] = { cfg->paths.qemu_conf, cfg->paths.ca_file, cfg->paths.libvirt_pki_dir,
				cfg->paths.qemu_pki_dir, cfg->paths.sysctl_file,
				cfg->paths.reserved_ports ? cfg->paths.reserved_ports
							  : RESERVED_PORTS };
	for (unsigned i = 0; i < G_N_ELEMENTS(paths); i++)
		vs->paths_strings[i] = g_strdup(paths[i]);
	vs->paths = (herd_host_paths){
		.qemu_conf = vs->paths_strings[0],
		.ca_file = vs->paths_strings[1],
		.libvirt_pki_dir = vs->paths_strings[2],
		.qemu_pki_dir = vs->paths_strings[3],
		.sysctl_file = vs->paths_strings[4],
		.reserved_ports = vs->paths_strings[5],
	};
	vs->qemu_group = g_strdup(cfg->qemu_group);
	vs->tls_socket = g_strdup(cfg->tls_socket);
	vs->libvirtd = g_strdup(cfg->libvirtd ? cfg->libvirtd : "libvirtd");
	vs->state_dir = g_strdup(cfg->state_dir);
	vs->tls_dir = g_strdup(cfg->tls_dir);
	vs->node = g_strdup(node_name);
	vs->cluster = cluster;
	vs->io = *io;
	vs->user = user;
	vs->retry_s = VIRT_SETUP_RETRY_FIRST_S;
	owed_load(vs);
	herd_cluster_listen(cluster, on_store_change, vs);
	herd_cluster_on_durable(cluster, on_durable, vs);
	look_soon(vs);
	return vs;
}

void herd_virt_setup_kick(herd_virt_setup *vs)
{
	look_soon(vs);
}

void herd_virt_setup_free(herd_virt_setup *vs)
{
	if (!vs)
		return;
	if (!vs->dying) {
		herd_cluster_unlisten(vs->cluster, vs);
		if (vs->idle)
			g_source_remove(vs->idle);
		if (vs->timer)
			g_source_remove(vs->timer);
		vs->idle = vs->timer = 0;
		vs->dying = true;
	}
	/* A command under way calls back: freed then. */
	if (vs->working)
		return;
	for (unsigned i = 0; i < G_N_ELEMENTS(vs->paths_strings); i++)
		g_free(vs->paths_strings[i]);
	g_free(vs->qemu_group);
	g_free(vs->tls_socket);
	g_free(vs->libvirtd);
	g_free(vs->state_dir);
	g_free(vs->tls_dir);
	g_free(vs->node);
	g_free(vs->problem);
	g_free(vs->logged);
	g_free(vs);
}
