/*
 * The plugin's control socket (control=PATH): JSON lines with herd-san
 * (san/volume.c is the other end).  Requests (one object a line, "op") are answered
 * in order with {"ok":true} or {"ok":false,"error":SENTENCE}; events ("ev")
 * go to every connected client.  One thread serves it; nbdkit's threads
 * only queue events (bounded), so I/O never waits on a slow or absent
 * herd-san.  A client whose output backs up beyond 1 MiB is disconnected.
 */
#include "san/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/json.h"

#define MAX_QUEUED 10000
#define MAX_OUT (1024 * 1024)
#define MAX_IN (64 * 1024)
#define MAX_CLIENTS 16

typedef struct {
	int fd;
	GString *in;
	GString *out;
} client;

static struct {
	GMutex lock;              /* queue */
	GQueue queue;             /* lines (char *) to send to every client */
	int wake_fd;
	int listen_fd;
	GThread *thread;
	bool stop;
	GPtrArray *clients;       /* client *, the control thread's only */
} C = { .wake_fd = -1, .listen_fd = -1 };

void san_control_emit(char *line)
{
	uint64_t one = 1;
	g_mutex_lock(&C.lock);
	g_queue_push_tail(&C.queue, line);
	while (C.queue.length > MAX_QUEUED)
		g_free(g_queue_pop_head(&C.queue));
	g_mutex_unlock(&C.lock);
	if (C.wake_fd >= 0 && write(C.wake_fd, &one, sizeof one) < 0) {
		/* the counter is full: the thread is awake anyway */
	}
}

static void client_free(gpointer p)
{
	client *c = p;
	close(c->fd);
	g_string_free(c->in, TRUE);
	g_string_free(c->out, TRUE);
	g_free(c);
}

static void reply(client *c, const char *error)
{
	if (!error) {
		g_string_append(c->out, "{\"ok\":true}\n");
		return;
	}
	g_autoptr(json_t) j = json_pack("{s:b,s:s}", "ok", 0, "error", error);
	g_autofree char *s = json_dumps(j, JSON_COMPACT);
	g_string_append_printf(c->out, "%s\n", s);
}

/* Grow the replica (both replicas get the message from herd-san). */
static const char *op_resize(json_t *req)
{
	json_t *js = json_object_get(req, "size");
	if (!json_is_integer(js) || json_integer_value(js) <= 0)
		return "resize needs \"size\", a positive number of bytes";
	uint64_t size = (uint64_t)json_integer_value(js);
	g_mutex_lock(&vol.lock);
	uint64_t old = vol.meta.size;
	g_mutex_unlock(&vol.lock);
	if (size < old)
		return "shrinking a replicated volume is not supported";
	if (size == old)
		return NULL;
	if (ftruncate(vol.fd, (off_t)size) < 0)
		return "the replica file cannot be grown";
	san_bitmap_resize(vol.bitmap, size);
	san_bitmap_resize(vol.unflushed, size);
	if (san_bitmap_write_all(vol.bitmap) < 0)
		return "the dirty bitmap cannot be grown";
	g_mutex_lock(&vol.lock);
	vol.meta.size = size;
	g_mutex_unlock(&vol.lock);
	if (san_meta_save() < 0)
		return "the metadata cannot be written";
	san_log("grown to %" G_GUINT64_FORMAT " bytes (new connections see it)", size);
	return NULL;
}

static const char *op_discard(void)
{
	g_mutex_lock(&vol.lock);
	if (vol.disk != SAN_DISK_HEALTHY) {
		/* its metadata on the disk is older than the peer's already */
		g_mutex_unlock(&vol.lock);
		san_log("replica discarded: detached after a disk failure, it gets a full sync when its "
			"server starts again");
		return NULL;
	}
	if (vol.writers) {
		g_mutex_unlock(&vol.lock);
		return "a local writer has the replica open; it cannot be discarded";
	}
	san_meta_discard(&vol.meta);
	vol.local_uptodate = false;
	san_role_changed_locked();
	g_mutex_unlock(&vol.lock);
	san_bitmap_clear_all(vol.bitmap);
	if (san_bitmap_flush(vol.bitmap) < 0 || san_meta_save() < 0)
		return "the metadata cannot be written";
	san_log("replica discarded: a full sync from the peer follows");
	san_peer_redecide();
	return NULL;
}

static const char *op_promote(void)
{
	g_mutex_lock(&vol.lock);
	if (vol.link == LINK_INSYNC || vol.link == LINK_SOURCE) {
		g_mutex_unlock(&vol.lock);
		return "the replicas are connected; promote is for a replica that is alone";
	}
	san_meta_promote(&vol.meta, san_random_id());
	vol.local_uptodate = true;
	vol.alone_gen = true;
	san_role_changed_locked();
	g_mutex_unlock(&vol.lock);
	if (san_meta_save() < 0)
		return "the metadata cannot be written";
	san_log("replica promoted: declared up to date with a new generation");
	san_peer_redecide();
	return NULL;
}

static const char *handle_request(json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *uuid = json_string_value(json_object_get(req, "uuid"));
	if (!op)
		return "a request needs \"op\"";
	if (uuid && strcmp(uuid, vol.uuid) != 0)
		return "this plugin serves another volume";

	if (strcmp(op, "config") == 0) {
		json_t *rate = json_object_get(req, "resync_rate"), *t = json_object_get(req, "timeout_ms");
		if ((rate && (!json_is_integer(rate) || json_integer_value(rate) < 0)) ||
		    (t && (!json_is_integer(t) || json_integer_value(t) <= 0)))
			return "config: resync_rate and timeout_ms are non-negative numbers";
		if (rate)
			vol.resync_rate = (uint64_t)json_integer_value(rate);
		if (t)
			vol.timeout_ms = (unsigned)json_integer_value(t);
		return NULL;
	}
	if (strcmp(op, "volume") == 0) {
		const char *local = json_string_value(json_object_get(req, "local"));
		if (local && strcmp(local, "uptodate") != 0 && strcmp(local, "outdated") != 0 &&
		    strcmp(local, "inconsistent") != 0)
			return "volume: \"local\" is uptodate, outdated or inconsistent";
		const char *peer = json_string_value(json_object_get(req, "peer_state"));
		if (peer && strcmp(peer, "uptodate") != 0 && strcmp(peer, "outdated") != 0 &&
		    strcmp(peer, "inconsistent") != 0)
			return "volume: \"peer_state\" is uptodate, outdated or inconsistent";
		json_t *peer_discard = json_object_get(req, "peer_discard");
		if (peer_discard && !json_is_boolean(peer_discard))
			return "volume: \"peer_discard\" is true or false";
		g_mutex_lock(&vol.lock);
		if (local)
			vol.local_uptodate = strcmp(local, "uptodate") == 0;
		if (peer)
			vol.peer_outdated = strcmp(peer, "uptodate") != 0;
		if (peer_discard)
			vol.peer_discarded = json_is_true(peer_discard);
		/* in sync already (no resync to end): say so, once; a discarded
		 * peer (a detached disk's) only after its full sync */
		bool tell = vol.peer_outdated && vol.link == LINK_INSYNC && vol.local_uptodate &&
			    !vol.peer_discarded && vol.disk == SAN_DISK_HEALTHY;
		san_emit_state_locked();
		g_mutex_unlock(&vol.lock);
		if (tell)
			san_sync_announce_synced();
		json_t *size = json_object_get(req, "size");
		return size ? op_resize(req) : NULL;
	}
	if (strcmp(op, "outdated") == 0) {
		json_t *seq = json_object_get(req, "seq");
		if (seq && !json_is_integer(seq))
			return "outdated: \"seq\" is the number of the peer-lost it answers";
		g_mutex_lock(&vol.lock);
		/* in sync, an `outdated` is from an outage already over; with
		 * "seq", one that answers an earlier peer-lost is too */
		bool stale = seq && (uint64_t)json_integer_value(seq) != vol.lost_seq;
		if (stale)
			san_log("`outdated` for peer-lost %" G_GUINT64_FORMAT " ignored (the last is %"
				G_GUINT64_FORMAT ")", (uint64_t)json_integer_value(seq), vol.lost_seq);
		if (!stale && vol.link != LINK_INSYNC && !vol.alone_ok) {
			vol.alone_ok = true;
			san_log("the peer is recorded outdated: writes go on alone");
			g_cond_broadcast(&vol.cond);
			san_emit_state_locked();
		}
		g_mutex_unlock(&vol.lock);
		return NULL;
	}
	if (strcmp(op, "detached") == 0) {
		san_disk_recorded();
		return NULL;
	}
	if (strcmp(op, "peer-down") == 0) {
		san_peer_drop("herd-san: the peer's node is lost");
		return NULL;
	}
	if (strcmp(op, "resize") == 0)
		return op_resize(req);
	if (strcmp(op, "discard") == 0)
		return op_discard();
	if (strcmp(op, "promote") == 0)
		return op_promote();
	if (strcmp(op, "verify") == 0) {
		static char msg[256];
		g_autoptr(GError) error = NULL;
		if (san_verify_start(json_integer_value(json_object_get(req, "id")), &error))
			return NULL;
		g_strlcpy(msg, error->message, sizeof msg);
		return msg;
	}
	if (strcmp(op, "status") == 0) {
		g_mutex_lock(&vol.lock);
		san_emit_state_locked();
		g_mutex_unlock(&vol.lock);
		return NULL;
	}
	return "unknown op";
}

static void client_input(client *c)
{
	char *nl;
	while ((nl = memchr(c->in->str, '\n', c->in->len))) {
		size_t n = (size_t)(nl - c->in->str);
		json_error_t jerr;
		g_autoptr(json_t) req = json_loadb(c->in->str, n, 0, &jerr);
		if (!req || !json_is_object(req))
			reply(c, "a request is one JSON object on one line");
		else
			reply(c, handle_request(req));
		g_string_erase(c->in, 0, (gssize)n + 1);
	}
}

/* Read what is there; false: the client is gone or misbehaves. */
static bool client_read(client *c)
{
	char buf[4096];
	ssize_t n = read(c->fd, buf, sizeof buf);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	g_string_append_len(c->in, buf, n);
	client_input(c);
	return c->in->len <= MAX_IN;
}

static bool client_write(client *c)
{
	while (c->out->len) {
		ssize_t n = send(c->fd, c->out->str, c->out->len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		g_string_erase(c->out, 0, n);
	}
	return true;
}

static gpointer control_thread(gpointer unused)
{
	while (!C.stop) {
		guint nc = C.clients->len;
		g_autofree struct pollfd *pfd = g_new0(struct pollfd, nc + 2);
		pfd[0] = (struct pollfd){ .fd = C.listen_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = C.wake_fd, .events = POLLIN };
		for (guint i = 0; i < nc; i++) {
			client *c = C.clients->pdata[i];
			pfd[i + 2] = (struct pollfd){ .fd = c->fd, .events = POLLIN | (c->out->len ? POLLOUT : 0) };
		}
		if (poll(pfd, nc + 2, 1000) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN) {
			uint64_t v;
			if (read(C.wake_fd, &v, sizeof v) < 0) {
				/* nothing: woken already */
			}
		}
		/* events to every client */
		g_mutex_lock(&C.lock);
		char *line;
		while ((line = g_queue_pop_head(&C.queue))) {
			for (guint i = 0; i < C.clients->len; i++) {
				client *c = C.clients->pdata[i];
				g_string_append_printf(c->out, "%s\n", line);
			}
			g_free(line);
		}
		g_mutex_unlock(&C.lock);
		/* the clients polled, then new ones (nc: those that were polled) */
		for (guint i = nc; i-- > 0;) {
			client *c = C.clients->pdata[i];
			bool ok = true;
			if (pfd[i + 2].revents & (POLLIN | POLLHUP | POLLERR))
				ok = client_read(c);
			if (ok)
				ok = client_write(c) && c->out->len <= MAX_OUT;
			if (!ok)
				g_ptr_array_remove_index(C.clients, i);
		}
		if (pfd[0].revents & POLLIN) {
			int fd = accept4(C.listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd >= 0 && C.clients->len >= MAX_CLIENTS) {
				close(fd);
			} else if (fd >= 0) {
				client *c = g_new0(client, 1);
				c->fd = fd;
				c->in = g_string_new(NULL);
				c->out = g_string_new(NULL);
				g_ptr_array_add(C.clients, c);
				/* a new client learns the state at once (also to the others: harmless) */
				g_mutex_lock(&vol.lock);
				san_emit_state_locked();
				/* writes wait for `outdated`: a herd-san that was away hears it again */
				if (vol.peer_lost_sent && !vol.alone_ok)
					san_control_emit(g_strdup_printf(
						"{\"ev\":\"peer-lost\",\"uuid\":\"%s\",\"seq\":%"
						G_GUINT64_FORMAT "}", vol.uuid, vol.lost_seq));
				san_sync_retell_synced_locked();
				g_mutex_unlock(&vol.lock);
			}
		}
	}
	return NULL;
}

bool san_control_start(GError **error)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(vol.control_path) >= sizeof sa.sun_path) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG, "control=%s: path too long",
			    vol.control_path);
		return false;
	}
	strcpy(sa.sun_path, vol.control_path);
	C.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(vol.control_path);
	if (C.listen_fd < 0 || bind(C.listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(C.listen_fd, 4) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
			    "cannot listen on %s: %s", vol.control_path, g_strerror(errno));
		return false;
	}
	C.wake_fd = san_eventfd(error);
	if (C.wake_fd < 0)
		return false;
	C.clients = g_ptr_array_new_with_free_func(client_free);
	C.thread = g_thread_new("san-control", control_thread, NULL);
	return true;
}

void san_control_stop(void)
{
	if (!C.thread)
		return;
	C.stop = true;
	san_control_emit(g_strdup("{\"ev\":\"stopping\"}"));
	g_thread_join(C.thread);
	C.thread = NULL;
	g_ptr_array_unref(C.clients);
	unlink(vol.control_path);
}
