/*
 * A volume's life in herd-san.  Its nbdkit does not depend on herd-san: it
 * runs in its own session with the sockets it was handed, so a herd-san
 * restart leaves a guest's disk alone, and the next herd-san finds it again
 * through UUID.pid (checked against the process's command line, so that a
 * recycled pid is not taken for it).  herd-san keeps copies of the
 * listening sockets of an nbdkit it started: if that nbdkit dies, QEMU's
 * reconnects wait in the socket's backlog until the next one serves them.
 */
#include "common/json.h"
#include "san/volume.h"

#include "common/error.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "san/backoff.h"
#include "san/listen.h"
#include "san/nbdkit.h"
#include "san/plugin_link.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* How long nbdkit gets after SIGTERM on remove before SIGKILL.  nbdkit 1.32
 * does not stop while a TLS client (the peer's plugin) stays connected: its
 * worker sits in a blocking gnutls read.  The volume's files are deleted
 * next anyway, so a short wait does. */
#define STOP_TIMEOUT_MS 3000

struct san_volume {
	san_daemon *d;
	char uuid[SAN_UUID_LEN + 1];
	san_request *spec;	/* the last "volume" request */
	char *img, *meta, *bitmap, *al, *saved, *sock, *ctl, *pidfile;
	pid_t pid;		/* 0: not running */
	int pidfd;
	guint pid_watch, restart_timer, kill_timer;
	bool moving;		/* stopped to start again at once on new addresses */
	bool move_pending;	/* new addresses wait for the local writer to close */
	bool writer;		/* the plugin's last state: a local writer is open */
	bool disk_failed;	/* the plugin's last state: its local disk failed (detached) */
	gint64 started_us;
	int unix_fd, tcp_fd;	/* the listening sockets herd-san holds, or -1 */
	san_backoff backoff;
	san_plugin_link *link;
	GPtrArray *remove_waiters;	/* san_answer*: remove requests */
};

static void start_or_retry(san_volume *v);
static void move_now(san_volume *v);

static void on_plugin_connected(void *data)
{
	san_volume *v = data;
	if (v->d->config_msg)
		san_plugin_link_request(v->link, v->d->config_msg, NULL);
	san_plugin_link_request(v->link, v->spec->json, NULL);
}

static void on_plugin_event(json_t *ev, void *data)
{
	san_volume *v = data;
	if (!json_object_get(ev, "uuid"))
		json_object_set_new(ev, "uuid", json_string(v->uuid));
	if (g_strcmp0(json_string_value(json_object_get(ev, "ev")), "state") == 0) {
		v->writer = json_is_true(json_object_get(ev, "writer"));
		v->disk_failed = json_is_object(json_object_get(ev, "disk"));
		if (!v->writer && v->move_pending) {
			v->move_pending = false;
			log_info("volume %s: its local writer closed: starting its nbdkit again (new addresses "
				 "or certificates)", v->uuid);
			move_now(v);
		}
	}
	san_daemon_event(v->d, ev);
}

static const san_plugin_link_ops link_ops = { .connected = on_plugin_connected, .event = on_plugin_event };

static san_volume *volume_new(san_daemon *d, const char *uuid)
{
	san_volume *v = g_new0(san_volume, 1);
	v->d = d;
	g_strlcpy(v->uuid, uuid, sizeof v->uuid);
	v->img = san_data_path(d, uuid, "img");
	v->meta = san_data_path(d, uuid, "meta");
	v->bitmap = san_data_path(d, uuid, "bitmap");
	v->al = san_data_path(d, uuid, "al");
	v->saved = san_data_path(d, uuid, "json");
	v->sock = san_run_path(d, uuid, "sock");
	v->ctl = san_run_path(d, uuid, "ctl");
	v->pidfile = san_run_path(d, uuid, "pid");
	v->pidfd = v->unix_fd = v->tcp_fd = -1;
	v->link = san_plugin_link_new(v->ctl, &link_ops, v);
	v->remove_waiters = g_ptr_array_new_with_free_func((GDestroyNotify)san_answer_unref);
	return v;
}

static void close_listeners(san_volume *v)
{
	if (v->unix_fd >= 0)
		close(v->unix_fd);
	if (v->tcp_fd >= 0)
		close(v->tcp_fd);
	v->unix_fd = v->tcp_fd = -1;
}

static void volume_release(san_volume *v)
{
	if (v->pid_watch)
		g_source_remove(v->pid_watch);
	if (v->restart_timer)
		g_source_remove(v->restart_timer);
	if (v->kill_timer)
		g_source_remove(v->kill_timer);
	if (v->pidfd >= 0)
		close(v->pidfd);
	close_listeners(v);
	san_plugin_link_free(v->link);
	san_request_free(v->spec);
	g_ptr_array_unref(v->remove_waiters);
	g_free(v->img);
	g_free(v->meta);
	g_free(v->bitmap);
	g_free(v->al);
	g_free(v->saved);
	g_free(v->sock);
	g_free(v->ctl);
	g_free(v->pidfile);
	g_free(v);
}

void san_volume_free(san_volume *v)
{
	if (v)
		volume_release(v);
}

/* ------------------------------------------------------------ files */

static bool fsync_dir_of(const char *path, GError **error)
{
	g_autofree char *dir = g_path_get_dirname(path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		herd_refuse(error, HERD_ERR_IO, "Cannot sync the directory '%s': %s.", dir, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	return true;
}

/* Delete @path, a directory with what it holds too. */
static bool remove_tree(const char *path, GError **error)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ||
		       herd_refuse(error, HERD_ERR_IO, "Cannot delete '%s': %s.", path, g_strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		g_autoptr(GDir) dir = g_dir_open(path, 0, error);
		if (!dir)
			return false;
		const char *name;
		while ((name = g_dir_read_name(dir))) {
			g_autofree char *child = g_build_filename(path, name, NULL);
			if (!remove_tree(child, error))
				return false;
		}
	}
	if (remove(path) < 0 && errno != ENOENT)
		return herd_refuse(error, HERD_ERR_IO, "Cannot delete '%s': %s.", path, g_strerror(errno));
	return true;
}

/* Make the replica @path, sparse, @size bytes; *@made says whether it was
 * made (false: it was there, and is kept as it is if not larger). */
static bool make_replica(const char *path, uint64_t size, bool *made, GError **error)
{
	*made = false;
	struct stat st;
	if (stat(path, &st) == 0) {
		if ((uint64_t)st.st_size > size)
			return herd_refuse(error, HERD_ERR_CONFLICT,
					   "The replica '%s' exists and is larger (%" G_GINT64_FORMAT
					   " bytes) than the volume (%" G_GUINT64_FORMAT " bytes).",
					   path, (gint64)st.st_size, (guint64)size);
		return true;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return herd_refuse(error, HERD_ERR_IO, "Cannot make the replica '%s': %s.", path, g_strerror(errno));
	*made = true;
	if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
		herd_refuse(error, HERD_ERR_IO, "Cannot give the replica '%s' its size: %s.", path, g_strerror(errno));
		close(fd);
		unlink(path);
		*made = false;
		return false;
	}
	close(fd);
	return fsync_dir_of(path, error) || (unlink(path), *made = false, false);
}

/* Grow the replica to @size (a no-op if it has it). */
static bool grow_replica(san_volume *v, uint64_t size, GError **error)
{
	struct stat st;
	if (stat(v->img, &st) < 0)
		return herd_refuse(error, HERD_ERR_IO, "Cannot read the replica '%s': %s.", v->img, g_strerror(errno));
	if ((uint64_t)st.st_size > size)
		return herd_refuse(error, HERD_ERR_INVALID,
				   "Volume %s cannot shrink: its replica has %" G_GINT64_FORMAT " bytes, more than %"
				   G_GUINT64_FORMAT ".", v->uuid, (gint64)st.st_size, (guint64)size);
	if ((uint64_t)st.st_size == size)
		return true;
	int fd = open(v->img, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) {
		herd_refuse(error, HERD_ERR_IO, "Cannot grow the replica '%s': %s.", v->img, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	log_info("volume %s: replica grown to %" G_GUINT64_FORMAT " bytes", v->uuid, (guint64)size);
	return true;
}

static bool save_message(san_volume *v, json_t *msg, GError **error)
{
	g_autofree char *text = json_dumps(msg, JSON_COMPACT | JSON_SORT_KEYS);
	return herd_file_write_atomic(v->saved, text, strlen(text), 0600, error);
}

/* Delete every "UUID.*" of the data and run directories: herd-san's files
 * and whatever the plugin keeps beside them (its TLS files, say). */
static void delete_files(san_volume *v)
{
	const char *dirs[] = { v->d->data_dir, v->d->run_dir };
	g_autofree char *prefix = g_strdup_printf("%s.", v->uuid);
	for (unsigned i = 0; i < G_N_ELEMENTS(dirs); i++) {
		g_autoptr(GDir) dir = g_dir_open(dirs[i], 0, NULL);
		const char *name;
		while (dir && (name = g_dir_read_name(dir))) {
			if (!g_str_has_prefix(name, prefix))
				continue;
			g_autofree char *path = g_build_filename(dirs[i], name, NULL);
			g_autoptr(GError) error = NULL;
			if (!remove_tree(path, &error))
				log_warn("volume %s: %s", v->uuid, error->message);
		}
		g_autofree char *any = g_build_filename(dirs[i], ".", NULL);
		fsync_dir_of(any, NULL);
	}
}

/* ------------------------------------------------------------ nbdkit */

static void on_exit_of(san_volume *v);

static gboolean on_pidfd(int fd, GIOCondition cond, void *data)
{
	san_volume *v = data;
	v->pid_watch = 0;
	on_exit_of(v);
	return G_SOURCE_REMOVE;
}

static bool watch_pid(san_volume *v, pid_t pid, GError **error)
{
	int fd = san_pidfd_open(pid);
	if (fd < 0)
		return herd_refuse(error, HERD_ERR_IO, "Cannot watch nbdkit (pid %d) of volume %s: %s.", (int)pid,
				   v->uuid, g_strerror(errno));
	v->pid = pid;
	v->pidfd = fd;
	v->pid_watch = g_unix_fd_add(fd, G_IO_IN, on_pidfd, v);
	return true;
}

/* The plugin's parameters (src/san/plugin.c): the files, the sockets, the
 * peer, and what the store says of this replica for a meta file made new. */
static char **nbdkit_argv(san_volume *v)
{
	san_daemon *d = v->d;
	const san_volume_spec *spec = &v->spec->volume;
	const san_config *cfg = &d->config->config;
	g_autofree char *tls = san_tls_path(d);
	bool v6 = strchr(spec->peer.address, ':') != NULL;
	GPtrArray *a = g_ptr_array_new();
	const char *fixed[] = { d->nbdkit, "--foreground", "--log=stderr", "--tls=on" };
	for (unsigned i = 0; i < G_N_ELEMENTS(fixed); i++)
		g_ptr_array_add(a, g_strdup(fixed[i]));
	g_ptr_array_add(a, g_strdup_printf("--tls-certificates=%s", tls));
	g_ptr_array_add(a, g_strdup("--tls-verify-peer"));
	g_ptr_array_add(a, g_strdup(d->plugin));
	g_ptr_array_add(a, g_strdup_printf("file=%s", v->img));
	g_ptr_array_add(a, g_strdup_printf("meta=%s", v->meta));
	g_ptr_array_add(a, g_strdup_printf("bitmap=%s", v->bitmap));
	g_ptr_array_add(a, g_strdup_printf("al=%s", v->al));
	g_ptr_array_add(a, g_strdup_printf("control=%s", v->ctl));
	g_ptr_array_add(a, g_strdup_printf("tls-dir=%s", cfg->tls_dir));
	g_ptr_array_add(a, g_strdup_printf("uuid=%s", v->uuid));
	g_ptr_array_add(a, g_strdup_printf("peer=%s%s%s:%u", v6 ? "[" : "", spec->peer.address, v6 ? "]" : "",
					   spec->peer.port));
	g_ptr_array_add(a, g_strdup_printf("uptodate=%s", spec->local == SAN_REPLICA_UPTODATE ? "true" : "false"));
	if (spec->initial_gen) {
		g_autofree char *gen = san_gen_format(spec->initial_gen);
		g_ptr_array_add(a, g_strdup_printf("initial-gen=%s", gen));
	}
	g_ptr_array_add(a, g_strdup_printf("timeout-ms=%" G_GUINT64_FORMAT, (guint64)cfg->timeout_ms));
	g_ptr_array_add(a, g_strdup_printf("resync-rate=%" G_GUINT64_FORMAT, (guint64)cfg->resync_rate));
	g_ptr_array_add(a, NULL);
	return (char **)g_ptr_array_free(a, FALSE);
}

static bool make_listeners(san_volume *v, GError **error)
{
	if (v->unix_fd < 0 && (v->unix_fd = san_listen_unix(v->sock, error)) < 0)
		return false;
	/* QEMU may run as its own user (Debian's libvirt-qemu): its group may
	 * connect, no one else. */
	if (v->d->qemu_gid >= 0 && (chown(v->sock, 0, (gid_t)v->d->qemu_gid) < 0 || chmod(v->sock, 0660) < 0)) {
		herd_refuse(error, HERD_ERR_IO, "Cannot give '%s' to QEMU's group: %s.", v->sock, g_strerror(errno));
		close_listeners(v);
		unlink(v->sock);
		return false;
	}
	if (v->tcp_fd < 0 &&
	    (v->tcp_fd = san_listen_tcp(v->spec->volume.listen.address, v->spec->volume.listen.port, error)) < 0) {
		close_listeners(v);
		unlink(v->sock);
		return false;
	}
	return true;
}

static bool start_nbdkit(san_volume *v, GError **error)
{
	if (!v->d->config)
		return herd_refuse(error, HERD_ERR_UNAVAILABLE,
				   "Volume %s waits for herdd's config (its TLS directory) to start.", v->uuid);
	if (!make_listeners(v, error))
		return false;
	g_auto(GStrv) argv = nbdkit_argv(v);
	pid_t pid = san_nbdkit_spawn(argv, v->unix_fd, v->tcp_fd, error);
	if (pid < 0)
		return false;
	v->started_us = g_get_monotonic_time();
	g_autofree char *text = g_strdup_printf("%d\n", (int)pid);
	g_autoptr(GError) perr = NULL;
	if (!herd_file_write_atomic(v->pidfile, text, strlen(text), 0644, &perr))
		log_warn("volume %s: %s (a restarted herd-san will not find its nbdkit)", v->uuid, perr->message);
	if (!watch_pid(v, pid, error)) {
		kill(pid, SIGKILL);
		v->pid = 0;
		return false;
	}
	log_info("volume %s: nbdkit started (pid %d)", v->uuid, (int)pid);
	san_plugin_link_start(v->link);
	return true;
}

static gboolean on_restart(void *data)
{
	san_volume *v = data;
	v->restart_timer = 0;
	start_or_retry(v);
	return G_SOURCE_REMOVE;
}

static void schedule_restart(san_volume *v, uint64_t ran_ms, const char *what)
{
	uint64_t delay_ms = san_backoff_exit(&v->backoff, ran_ms);
	if (san_backoff_alarming(&v->backoff))
		san_daemon_error_event(v->d, v->uuid,
				       "Volume %s's nbdkit failed %u times in a row (last: %s); starting it again in %.1f s.",
				       v->uuid, v->backoff.quick_exits, what, delay_ms / 1000.0);
	else
		log_warn("volume %s: %s; starting it again in %.1f s", v->uuid, what, delay_ms / 1000.0);
	v->restart_timer = g_timeout_add((guint)delay_ms, on_restart, v);
}

static void start_or_retry(san_volume *v)
{
	g_autoptr(GError) error = NULL;
	if (v->pid || v->restart_timer || v->remove_waiters->len)
		return;
	if (start_nbdkit(v, &error))
		return;
	if (g_error_matches(error, HERD_ERROR, HERD_ERR_UNAVAILABLE)) {
		log_info("%s", error->message);
		return;
	}
	schedule_restart(v, 0, error->message);
}

static void finish_remove(san_volume *v)
{
	delete_files(v);
	log_info("volume %s: removed", v->uuid);
	for (guint i = 0; i < v->remove_waiters->len; i++)
		san_answer_ok(g_ptr_array_index(v->remove_waiters, i));
	/* The table's value destructor frees v. */
	g_hash_table_remove(v->d->volumes, v->uuid);
}

static void on_exit_of(san_volume *v)
{
	/* Not herd-san's child (nbdkit.c): its status is not known here; nbdkit
	 * logged why on the same stderr. */
	g_autofree char *what = g_strdup_printf("nbdkit (pid %d) exited", (int)v->pid);
	uint64_t ran_ms = (uint64_t)(g_get_monotonic_time() - v->started_us) / 1000;
	close(v->pidfd);
	v->pidfd = -1;
	v->pid = 0;
	if (v->kill_timer) {
		g_source_remove(v->kill_timer);
		v->kill_timer = 0;
	}
	unlink(v->pidfile);
	san_plugin_link_stop(v->link);
	if (v->remove_waiters->len) {
		finish_remove(v);
		return;
	}
	v->writer = false;
	if (v->moving || v->move_pending) {
		v->moving = v->move_pending = false;
		if (v->tcp_fd >= 0)
			close(v->tcp_fd);
		v->tcp_fd = -1;
		log_info("volume %s: nbdkit stopped; starting it on the new addresses", v->uuid);
		start_or_retry(v);
		return;
	}
	schedule_restart(v, ran_ms, what);
}

static int pidfd_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static gboolean on_kill_timeout(void *data)
{
	san_volume *v = data;
	v->kill_timer = 0;
	log_info("volume %s: nbdkit (pid %d) did not stop within %d s (a peer is still connected): killing it",
		 v->uuid, (int)v->pid, STOP_TIMEOUT_MS / 1000);
	pidfd_signal(v->pidfd, SIGKILL);
	return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------ the API */

san_volume *san_volume_create(san_daemon *d, const san_request *req, GError **error)
{
	san_volume *v = volume_new(d, req->uuid);
	g_autoptr(GError) local = NULL;
	bool made = false;
	v->spec = san_request_from_json(req->json, error);
	if (!v->spec || !d->config) {
		if (v->spec)
			herd_refuse(error, HERD_ERR_CONFLICT,
				    "No config yet: herd-san needs a \"config\" op (tls_dir) before the first volume.");
		volume_release(v);
		return NULL;
	}
	if (!make_listeners(v, error) || !make_replica(v->img, req->volume.size, &made, error) ||
	    !grow_replica(v, req->volume.size, error) || !save_message(v, req->json, error)) {
		close_listeners(v);
		unlink(v->sock);
		if (made)
			unlink(v->img);
		volume_release(v);
		return NULL;
	}
	g_hash_table_insert(d->volumes, v->uuid, v);
	if (!start_nbdkit(v, &local))
		schedule_restart(v, 0, local->message);
	log_info("volume %s ('%s', %" G_GUINT64_FORMAT " bytes): serving on %s and %s port %u", v->uuid,
		 req->volume.name, (guint64)req->volume.size, v->sock, req->volume.listen.address,
		 req->volume.listen.port);
	return v;
}

san_volume *san_volume_load(san_daemon *d, const char *uuid, GError **error)
{
	g_autofree char *saved = san_data_path(d, uuid, "json");
	g_autofree char *text = NULL;
	if (!g_file_get_contents(saved, &text, NULL, error))
		return NULL;
	g_autoptr(GError) perr = NULL;
	san_request *spec = san_request_parse(text, &perr);
	if (!spec || spec->op != SAN_OP_VOLUME || strcmp(spec->uuid, uuid) != 0) {
		herd_refuse(error, HERD_ERR_IO, "The saved volume '%s' is not a volume %s: %s", saved, uuid,
			    perr ? perr->message : "another op or UUID.");
		san_request_free(spec);
		return NULL;
	}
	san_volume *v = volume_new(d, uuid);
	v->spec = spec;
	g_hash_table_insert(d->volumes, v->uuid, v);

	g_autofree char *pid_text = NULL;
	gint64 pid = 0;
	if (g_file_get_contents(v->pidfile, &pid_text, NULL, NULL))
		pid = g_ascii_strtoll(pid_text, NULL, 10);
	if (pid <= 1 || !san_nbdkit_matches((pid_t)pid, v->ctl))
		pid = san_nbdkit_find(v->ctl);
	g_autoptr(GError) werr = NULL;
	if (pid > 1 && watch_pid(v, (pid_t)pid, &werr)) {
		v->started_us = g_get_monotonic_time();
		g_autofree char *line = g_strdup_printf("%d\n", (int)pid);
		if (g_strcmp0(line, pid_text) != 0)
			herd_file_write_atomic(v->pidfile, line, strlen(line), 0644, NULL);
		log_info("volume %s: adopted its running nbdkit (pid %d)", uuid, (int)pid);
		san_plugin_link_start(v->link);
	} else {
		if (werr)
			log_warn("%s", werr->message);
		start_or_retry(v);
	}
	return v;
}

static bool endpoint_equal(const san_endpoint *a, const san_endpoint *b)
{
	return strcmp(a->address, b->address) == 0 && a->port == b->port;
}

static void stop_nbdkit(san_volume *v);

/* Start its nbdkit again on the addresses of its spec. */
static void move_now(san_volume *v)
{
	if (v->tcp_fd >= 0)
		close(v->tcp_fd);
	v->tcp_fd = -1;
	if (v->pid) {
		v->moving = true;
		stop_nbdkit(v);
	} else {
		start_or_retry(v);
	}
}

bool san_volume_update(san_volume *v, const san_request *req, san_answer *a, GError **error)
{
	/* A new storage address (its own or its peer's): its nbdkit listens
	 * and connects on the addresses it was started with, so it is started
	 * again — not under a guest that has the volume open (herdd changes an
	 * address only while none has; should one have it open, the move waits
	 * until it closes). */
	bool moved = !endpoint_equal(&v->spec->volume.listen, &req->volume.listen) ||
		     !endpoint_equal(&v->spec->volume.peer, &req->volume.peer);
	g_autoptr(san_request) spec = san_request_from_json(req->json, error);
	if (!spec || !grow_replica(v, req->volume.size, error) || !save_message(v, req->json, error))
		return false;
	san_request_free(v->spec);
	v->spec = g_steal_pointer(&spec);
	if (moved) {
		log_info("volume %s: now on %s port %u, its peer on %s port %u: starting its nbdkit again", v->uuid,
			 v->spec->volume.listen.address, v->spec->volume.listen.port, v->spec->volume.peer.address,
			 v->spec->volume.peer.port);
		san_answer_ok(a);
		if (v->pid && v->writer) {
			v->move_pending = true;
			san_daemon_error_event(v->d, v->uuid,
					       "Volume %s moves to its new addresses once its local writer closes "
					       "(a restart of its nbdkit now would cut the guest's disk).", v->uuid);
			return true;
		}
		v->move_pending = false;
		move_now(v);
		return true;
	} else if (san_plugin_link_is_connected(v->link)) {
		san_plugin_link_request(v->link, v->spec->json, a);
	} else {
		san_answer_ok(a);
	}
	start_or_retry(v);
	return true;
}

bool san_volume_resize(san_volume *v, uint64_t size, san_answer *a, GError **error)
{
	g_autoptr(json_t) msg = json_deep_copy(v->spec->json);
	json_object_set_new(msg, "size", json_integer((json_int_t)size));
	g_autoptr(san_request) spec = san_request_from_json(msg, error);
	if (!spec || !grow_replica(v, size, error) || !save_message(v, msg, error))
		return false;
	san_request_free(v->spec);
	v->spec = g_steal_pointer(&spec);
	g_autoptr(json_t) op = json_pack("{s:s,s:s,s:I}", "op", "resize", "uuid", v->uuid, "size", (json_int_t)size);
	/* Not running: the next nbdkit opens the grown file. */
	if (san_plugin_link_is_connected(v->link))
		san_plugin_link_request(v->link, op, a);
	else
		san_answer_ok(a);
	return true;
}

void san_volume_relay(san_volume *v, const san_request *req, san_answer *a)
{
	san_plugin_link_request(v->link, req->json, a);
}

void san_volume_status(san_volume *v)
{
	if (!san_plugin_link_is_connected(v->link)) {
		/* No plugin to ask: say why herdd gets no state for it. */
		g_autofree char *msg = g_strdup_printf(
			"Volume %s has no state to report: its nbdkit is not running (it is being started).", v->uuid);
		g_autoptr(json_t) ev = json_pack("{s:s,s:s,s:s}", "ev", "error", "uuid", v->uuid, "message", msg);
		san_daemon_event(v->d, ev);
		return;
	}
	g_autoptr(json_t) op = json_pack("{s:s,s:s}", "op", "status", "uuid", v->uuid);
	san_plugin_link_request(v->link, op, NULL);
}

void san_volume_certs_changed(san_volume *v)
{
	if (!v->pid)
		return; /* it starts with the new files */
	if (v->writer) {
		v->move_pending = true;
		san_daemon_error_event(v->d, v->uuid,
				       "Volume %s takes the renewed certificates once its local writer closes "
				       "(a restart of its nbdkit now would cut the guest's disk).", v->uuid);
		return;
	}
	log_info("volume %s: starting its nbdkit again with the renewed certificates", v->uuid);
	v->move_pending = false;
	move_now(v);
}

void san_volume_config_changed(san_volume *v)
{
	if (san_plugin_link_is_connected(v->link))
		san_plugin_link_request(v->link, v->d->config_msg, NULL);
	start_or_retry(v);
}

bool san_volume_attach(san_volume *v, san_answer *a, GError **error)
{
	if (!v->disk_failed) {
		log_info("volume %s: attach: its replica is not detached; nothing to do", v->uuid);
		san_answer_ok(a);
		return true;
	}
	if (v->writer)
		return herd_refuse(error, HERD_ERR_CONFLICT,
				   "Volume %s: a local writer (a guest) has it open through the peer; starting its "
				   "server again would cut the guest's disk: stop the guest first.", v->uuid);
	log_info("volume %s: attach: starting its nbdkit again on the replica whose local disk failed; a full "
		 "sync from the peer follows", v->uuid);
	v->disk_failed = false;
	san_answer_ok(a);
	move_now(v);
	return true;
}

void san_volume_remove(san_volume *v, san_answer *a)
{
	bool first = v->remove_waiters->len == 0;
	g_ptr_array_add(v->remove_waiters, san_answer_ref(a));
	if (!first)
		return;
	if (v->restart_timer) {
		g_source_remove(v->restart_timer);
		v->restart_timer = 0;
	}
	san_plugin_link_stop(v->link);
	close_listeners(v);
	if (!v->pid) {
		finish_remove(v);
		return;
	}
	stop_nbdkit(v);
}

/* SIGTERM, and SIGKILL if it does not stop in time; on_exit_of() goes on. */
static void stop_nbdkit(san_volume *v)
{
	if (v->kill_timer)
		return;
	log_info("volume %s: stopping nbdkit (pid %d)", v->uuid, (int)v->pid);
	pidfd_signal(v->pidfd, SIGTERM);
	v->kill_timer = g_timeout_add(STOP_TIMEOUT_MS, on_kill_timeout, v);
}
