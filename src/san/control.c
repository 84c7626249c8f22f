#include "common/json.h"
#include "san/control.h"

#include "common/error.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "san/answer.h"
#include "san/jsonl.h"
#include "san/listen.h"
#include "san/volume.h"

#include <errno.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
	san_daemon *d;
	san_jsonl *conn;
	GQueue answers;		/* san_answer*, oldest first */
} san_client;

static int listen_fd = -1;
static guint listen_watch;

/* Write the answers that are ready, up to the first that is not. */
static void client_flush(void *data)
{
	san_client *c = data;
	san_answer *a;
	while ((a = g_queue_peek_head(&c->answers)) && san_answer_value(a)) {
		san_jsonl_send(c->conn, san_answer_value(a));
		g_queue_pop_head(&c->answers);
		san_answer_unref(a);
	}
}

static void client_free(san_client *c)
{
	san_answer *a;
	while ((a = g_queue_pop_head(&c->answers))) {
		san_answer_orphan(a);
		san_answer_unref(a);
	}
	san_jsonl_free(c->conn);
	g_free(c);
}

/* ------------------------------------------------------------ config */

static bool check_tls_dir(const char *dir, GError **error)
{
	const char *names[] = { "ca.crt", "node.crt", "node.key" };
	for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree char *path = g_build_filename(dir, names[i], NULL);
		if (access(path, R_OK) < 0)
			return herd_refuse(error, HERD_ERR_INVALID,
					   "op 'config': \"tls_dir\" '%s' lacks a readable %s (%s).", dir, names[i],
					   g_strerror(errno));
	}
	return true;
}

/* RUN/tls: nbdkit's file names as symlinks to the node's files. */
static bool make_nbdkit_tls_dir(san_daemon *d, const char *tls_dir, GError **error)
{
	g_autofree char *dir = san_tls_path(d);
	if (!herd_mkdir_p(dir, 0700, error))
		return false;
	const char *links[][2] = { { "ca-cert.pem", "ca.crt" }, { "server-cert.pem", "node.crt" },
				   { "server-key.pem", "node.key" } };
	for (unsigned i = 0; i < G_N_ELEMENTS(links); i++) {
		g_autofree char *link = g_build_filename(dir, links[i][0], NULL);
		g_autofree char *tmp = g_strdup_printf("%s.new", link);
		g_autofree char *target = g_build_filename(tls_dir, links[i][1], NULL);
		unlink(tmp);
		if (symlink(target, tmp) < 0 || rename(tmp, link) < 0)
			return herd_refuse(error, HERD_ERR_IO, "Cannot link '%s' to '%s': %s.", link, target,
					   g_strerror(errno));
	}
	return true;
}

/* SHA-256 over the node's TLS files in @dir, or NULL if one is unreadable. */
static char *tls_fingerprint(const char *dir)
{
	static const char *const names[] = { "ca.crt", "node.crt", "node.key" };
	g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
	for (unsigned i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree char *path = g_build_filename(dir, names[i], NULL);
		g_autofree char *data = NULL;
		gsize len = 0;
		if (!g_file_get_contents(path, &data, &len, NULL))
			return NULL;
		g_checksum_update(sum, (const guchar *)data, (gssize)len);
	}
	return g_strdup(g_checksum_get_string(sum));
}

void san_control_check_certs(san_daemon *d)
{
	if (!d->config)
		return;
	g_autofree char *now = tls_fingerprint(d->config->config.tls_dir);
	if (!now || g_strcmp0(now, d->tls_fingerprint) == 0)
		return;
	bool renewed = d->tls_fingerprint != NULL;
	g_free(d->tls_fingerprint);
	d->tls_fingerprint = g_steal_pointer(&now);
	if (!renewed)
		return;
	log_info("the node's TLS certificates in %s changed: the volumes' nbdkits start again with them",
		 d->config->config.tls_dir);
	GHashTableIter it;
	void *value;
	g_hash_table_iter_init(&it, d->volumes);
	while (g_hash_table_iter_next(&it, NULL, &value))
		san_volume_certs_changed(value);
}

bool san_control_apply_config(san_daemon *d, const san_request *req, GError **error)
{
	if (!check_tls_dir(req->config.tls_dir, error) || !make_nbdkit_tls_dir(d, req->config.tls_dir, error))
		return false;
	g_autoptr(san_request) copy = san_request_from_json(req->json, error);
	if (!copy)
		return false;
	g_autofree char *saved = g_build_filename(d->data_dir, "config.json", NULL);
	g_autofree char *text = json_dumps(req->json, JSON_COMPACT | JSON_SORT_KEYS);
	if (!d->config_msg || !json_equal(d->config_msg, req->json)) {
		if (!herd_file_write_atomic(saved, text, strlen(text), 0600, error))
			return false;
	}
	if (d->config_msg)
		json_decref(d->config_msg);
	d->config_msg = json_incref(req->json);
	san_request_free(d->config);
	d->config = g_steal_pointer(&copy);
	GHashTableIter it;
	void *value;
	g_hash_table_iter_init(&it, d->volumes);
	/* A volume may start here, never leave: safe to iterate. */
	while (g_hash_table_iter_next(&it, NULL, &value))
		san_volume_config_changed(value);
	san_control_check_certs(d);
	return true;
}

/* ------------------------------------------------------------ ops */

static san_volume *find_volume(san_daemon *d, const san_request *req, GError **error)
{
	san_volume *v = g_hash_table_lookup(d->volumes, req->uuid);
	if (!v)
		herd_refuse(error, HERD_ERR_NOT_FOUND, "op '%s': there is no volume %s on this node.",
			    san_op_name(req->op), req->uuid);
	return v;
}

/* Carry out @req; fill @a now or later.  False with @error: refused. */
static bool dispatch(san_daemon *d, const san_request *req, san_answer *a, GError **error)
{
	san_volume *v = NULL;
	switch (req->op) {
	case SAN_OP_CONFIG:
		if (!san_control_apply_config(d, req, error))
			return false;
		san_answer_ok(a);
		return true;
	case SAN_OP_STATUS: {
		GHashTableIter it;
		void *value;
		g_hash_table_iter_init(&it, d->volumes);
		while (g_hash_table_iter_next(&it, NULL, &value))
			san_volume_status(value);
		san_answer_ok(a);
		return true;
	}
	case SAN_OP_VOLUME:
		v = g_hash_table_lookup(d->volumes, req->uuid);
		if (v)
			return san_volume_update(v, req, a, error);
		if (!san_volume_create(d, req, error))
			return false;
		san_answer_ok(a);
		return true;
	case SAN_OP_REMOVE:
		/* Idempotent: a volume that is not here is removed. */
		v = g_hash_table_lookup(d->volumes, req->uuid);
		if (v)
			san_volume_remove(v, a);
		else
			san_answer_ok(a);
		return true;
	case SAN_OP_RESIZE:
		return (v = find_volume(d, req, error)) && san_volume_resize(v, req->size, a, error);
	case SAN_OP_ATTACH:
		return (v = find_volume(d, req, error)) && san_volume_attach(v, a, error);
	default:
		g_assert(san_op_is_relayed(req->op));
		if (!(v = find_volume(d, req, error)))
			return false;
		san_volume_relay(v, req, a);
		return true;
	}
}

static void on_client_line(san_jsonl *conn, const char *line, void *data)
{
	san_client *c = data;
	g_autoptr(san_answer) a = san_answer_new(client_flush, c);
	g_queue_push_tail(&c->answers, san_answer_ref(a));
	g_autoptr(GError) error = NULL;
	g_autoptr(san_request) req = san_request_parse(line, &error);
	if (!req || !dispatch(c->d, req, a, &error)) {
		log_info("refused: %s", error->message);
		san_answer_error(a, "%s", error->message);
	}
}

static void on_client_closed(san_jsonl *conn, const char *why, void *data)
{
	san_client *c = data;
	log_info("herdd's connection closed (%s)", why);
	c->d->clients = g_list_remove(c->d->clients, c);
	client_free(c);
}

static const san_jsonl_ops client_ops = { .line = on_client_line, .closed = on_client_closed };

static gboolean on_accept(int fd, GIOCondition cond, void *data)
{
	san_daemon *d = data;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("accept on %s: %s", d->socket_path, g_strerror(errno));
		return G_SOURCE_CONTINUE;
	}
	san_client *c = g_new0(san_client, 1);
	c->d = d;
	g_queue_init(&c->answers);
	c->conn = san_jsonl_new(cfd, &client_ops, c);
	d->clients = g_list_prepend(d->clients, c);
	log_debug("herdd connected");
	return G_SOURCE_CONTINUE;
}

bool san_control_start(san_daemon *d, GError **error)
{
	listen_fd = san_listen_unix(d->socket_path, error);
	if (listen_fd < 0)
		return false;
	g_unix_set_fd_nonblocking(listen_fd, TRUE, NULL);
	listen_watch = g_unix_fd_add(listen_fd, G_IO_IN, on_accept, d);
	return true;
}

void san_control_stop(san_daemon *d)
{
	if (listen_watch)
		g_source_remove(listen_watch);
	listen_watch = 0;
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	while (d->clients) {
		san_client *c = d->clients->data;
		d->clients = g_list_delete_link(d->clients, d->clients);
		client_free(c);
	}
}

/* ------------------------------------------------------------ events */

void san_daemon_event(san_daemon *d, json_t *ev)
{
	for (GList *l = d->clients; l; l = l->next) {
		san_client *c = l->data;
		san_jsonl_send(c->conn, ev);
	}
}

void san_daemon_error_event(san_daemon *d, const char *uuid, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	log_err("%s", msg);
	g_autoptr(json_t) ev = json_pack("{s:s,s:s,s:s}", "ev", "error", "uuid", uuid, "message", msg);
	san_daemon_event(d, ev);
}
