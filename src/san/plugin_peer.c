/*
 * The link to the peer's plugin through libnbd, over TCP and TLS (the
 * node's certificate from the cluster CA): two connections, one to the
 * peer's `data` export for mirrored writes and the resync, one to its `meta`
 * export for the generation identifiers.
 *
 * One thread (the link thread) connects, reads the peer's meta, has the
 * decision taken (plugin_sync.c), then runs libnbd's state machine for the
 * data connection: it polls the socket and an eventfd that request threads
 * write to after queueing a command (libnbd queues a command when another
 * is in flight; only the poller sends it).  nbdkit's threads queue commands
 * with nbd_aio_* and wait on a condition variable with the timeout; a
 * request not answered in time drops the link.  Buffers belong to nbdkit's
 * threads, so a waiter returns only when libnbd has retired its command
 * (the callback's free), which nbd_close does for any left in flight.
 * The meta connection is driven by whoever uses it, with a deadline.
 * Dropped or lost, the link is tried again soon (50 ms), then less and
 * less often, at most a second apart (san_link_retry_ms); a plain TCP
 * connect probes the peer's port first (given up after a second without
 * answer), so that an attempt on a cut link does not wait for the kernel's
 * SYN retries, and libnbd connects (TLS, the handshake) only then.
 */
#include "san/plugin.h"

#include "san/backoff.h"

#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A TCP connect that gets no answer (a cut link drops the SYN) is given up
 * after this long, so that a healed link is seen within about a second. */
#define TCP_CONNECT_MS 1000

struct san_peer_req {
	int refs;               /* the waiter, libnbd (until .free) */
	bool answered;
	bool retired;
	bool waiting;           /* its waiter sleeps on cond (else no wake-up is sent) */
	int err;
	GCond cond;             /* its waiter only: an answer wakes one thread, not all */
};

static GMutex req_mutex;

static struct {
	GMutex lock;            /* data, up, drop, redecide */
	struct nbd_handle *data;
	bool up;                /* data may take requests */
	bool drop;
	char *drop_why;
	bool redecide;
	GMutex meta_lock;       /* the meta connection, one user at a time */
	struct nbd_handle *meta;
	int wake_fd;
	GThread *thread;
	bool stop;
} P = { .wake_fd = -1 };

static void wake(void)
{
	uint64_t one = 1;
	if (P.wake_fd >= 0 && write(P.wake_fd, &one, sizeof one) < 0) {
		/* the counter is full: the poller is awake anyway */
	}
}

/* ------------------------------------------------------------- requests */

static int req_answer(void *user_data, int *error)
{
	san_peer_req *r = user_data;
	g_mutex_lock(&req_mutex);
	r->answered = true;
	r->err = *error;
	/* a signal is a system call: the resync's answers mostly come while
	 * their waiter is still sending (bench/README.md, "bench/esan") */
	if (r->waiting)
		g_cond_signal(&r->cond);
	g_mutex_unlock(&req_mutex);
	return 1;
}

static void req_release(san_peer_req *r)
{
	bool last = --r->refs == 0;
	if (last) {
		g_cond_clear(&r->cond);
		g_free(r);
	}
}

static void req_retire(void *user_data)
{
	san_peer_req *r = user_data;
	g_mutex_lock(&req_mutex);
	r->retired = true;
	if (r->waiting)
		g_cond_signal(&r->cond);
	req_release(r);
	g_mutex_unlock(&req_mutex);
}

typedef enum { REQ_PWRITE, REQ_ZERO, REQ_PREAD, REQ_FLUSH } req_kind;

static san_peer_req *submit(req_kind kind, void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	san_peer_req *r = g_new0(san_peer_req, 1);
	g_cond_init(&r->cond);
	nbd_completion_callback cb = { .callback = req_answer, .user_data = r, .free = req_retire };
	int64_t cookie = -1;
	int err = ENOTCONN;
	bool kick = false;
	r->refs = 2;
	g_mutex_lock(&P.lock);
	if (P.up && P.data) {
		switch (kind) {
		case REQ_PWRITE:
			cookie = nbd_aio_pwrite(P.data, buf, count, off, cb, flags);
			break;
		case REQ_ZERO:
			cookie = nbd_aio_zero(P.data, count, off, cb, flags);
			break;
		case REQ_PREAD:
			cookie = nbd_aio_pread(P.data, buf, count, off, cb, 0);
			break;
		case REQ_FLUSH:
			cookie = nbd_aio_flush(P.data, cb, 0);
			break;
		}
		if (cookie < 0)
			err = nbd_get_errno() ? nbd_get_errno() : EIO;
		/* libnbd sends a command at once, in this thread, when the
		 * connection is idle; the link thread (polling for answers) needs
		 * waking only if something is left to send */
		else
			kick = nbd_aio_get_direction(P.data) & LIBNBD_AIO_DIRECTION_WRITE;
	} else {
		/* libnbd never saw it: its reference goes now */
		r->refs = 1;
		r->retired = true;
	}
	g_mutex_unlock(&P.lock);
	if (cookie < 0) {
		/* libnbd called .free already (also on failure) */
		g_mutex_lock(&req_mutex);
		r->answered = true;
		r->err = err;
		g_mutex_unlock(&req_mutex);
		return r;
	}
	if (kick)
		wake();
	return r;
}

san_peer_req *san_peer_pwrite(const void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	uint32_t f = (flags & NBDKIT_FLAG_FUA) ? LIBNBD_CMD_FLAG_FUA : 0;
	return submit(REQ_PWRITE, (void *)buf, count, off, f);
}

san_peer_req *san_peer_zero(uint32_t count, uint64_t off, uint32_t flags)
{
	uint32_t f = ((flags & NBDKIT_FLAG_FUA) ? LIBNBD_CMD_FLAG_FUA : 0) |
		     ((flags & NBDKIT_FLAG_MAY_TRIM) ? 0 : LIBNBD_CMD_FLAG_NO_HOLE);
	return submit(REQ_ZERO, NULL, count, off, f);
}

san_peer_req *san_peer_pread(void *buf, uint32_t count, uint64_t off)
{
	return submit(REQ_PREAD, buf, count, off, 0);
}

san_peer_req *san_peer_flush(void)
{
	return submit(REQ_FLUSH, NULL, 0, 0, 0);
}

int san_peer_wait(san_peer_req *r)
{
	if (!r)
		return -ENOTCONN;
	gint64 deadline = g_get_monotonic_time() + (gint64)vol.timeout_ms * G_TIME_SPAN_MILLISECOND;
	bool timed_out = false;
	g_mutex_lock(&req_mutex);
	r->waiting = true;
	while (!r->answered && !r->retired) {
		if (!g_cond_wait_until(&r->cond, &req_mutex, deadline)) {
			timed_out = true;
			break;
		}
	}
	if (timed_out) {
		g_mutex_unlock(&req_mutex);
		g_autofree char *why = g_strdup_printf("the peer did not answer within %u ms",
						       vol.timeout_ms);
		san_peer_drop(why);
		g_mutex_lock(&req_mutex);
	}
	/* the buffer is libnbd's until the command is retired */
	while (!r->retired)
		g_cond_wait(&r->cond, &req_mutex);
	int err = r->answered ? r->err : ENOTCONN;
	req_release(r);
	g_mutex_unlock(&req_mutex);
	return err ? -err : 0;
}

void san_peer_drop(const char *why)
{
	g_mutex_lock(&P.lock);
	bool was_up = P.up;
	if (P.data || P.up) {
		P.up = false;
		P.drop = true;
		if (!P.drop_why)
			P.drop_why = g_strdup(why);
	}
	g_mutex_unlock(&P.lock);
	if (was_up) {
		san_log("link to the peer dropped: %s", why);
		san_sync_link_lost();
	}
	wake();
}

void san_peer_redecide(void)
{
	g_mutex_lock(&P.lock);
	P.redecide = true;
	g_mutex_unlock(&P.lock);
	wake();
}

/* ------------------------------------------------- handles, driven here */

/* Run @h's state machine until @done says so, the handle dies, or the
 * deadline passes.  0, -ETIMEDOUT, or -errno. */
static int drive(struct nbd_handle *h, int (*done)(struct nbd_handle *, int64_t), int64_t arg,
		 gint64 deadline)
{
	for (;;) {
		int d = done(h, arg);
		if (d > 0)
			return 0;
		if (d < 0 || nbd_aio_is_dead(h) || nbd_aio_is_closed(h))
			return -(nbd_get_errno() ? nbd_get_errno() : ECONNRESET);
		gint64 left = (deadline - g_get_monotonic_time()) / 1000;
		if (left <= 0)
			return -ETIMEDOUT;
		unsigned dir = nbd_aio_get_direction(h);
		struct pollfd pfd = { .fd = nbd_aio_get_fd(h) };
		if (pfd.fd < 0)
			return -ENOTCONN;
		pfd.events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
			     ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0);
		int n = poll(&pfd, 1, (int)MIN(left, 1000));
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		dir = nbd_aio_get_direction(h);
		int r = 0;
		if ((dir & LIBNBD_AIO_DIRECTION_READ) && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			r = nbd_aio_notify_read(h);
		else if ((dir & LIBNBD_AIO_DIRECTION_WRITE) && (pfd.revents & (POLLOUT | POLLHUP | POLLERR)))
			r = nbd_aio_notify_write(h);
		if (r < 0)
			return -(nbd_get_errno() ? nbd_get_errno() : EIO);
	}
}

static int is_ready(struct nbd_handle *h, int64_t unused)
{
	if (nbd_aio_is_ready(h))
		return 1;
	return nbd_aio_is_dead(h) || nbd_aio_is_closed(h) ? -1 : 0;
}

static int command_done(struct nbd_handle *h, int64_t cookie)
{
	return nbd_aio_command_completed(h, (uint64_t)cookie);
}

/* Whether the peer's port answers: a TCP connect, tried for at most @ms
 * (each of the peer's addresses), closed at once; false with @error. */
static bool tcp_answers(unsigned ms, GError **error)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(vol.peer_host, vol.peer_port, &hints, &res);
	if (gai != 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s:%s: %s", vol.peer_host,
			    vol.peer_port, gai_strerror(gai));
		return -1;
	}
	int fd = -1, err = ETIMEDOUT;
	gint64 deadline = g_get_monotonic_time() + (gint64)ms * 1000;
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int n;
		do {
			gint64 left = (deadline - g_get_monotonic_time()) / 1000;
			n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
		} while (n < 0 && errno == EINTR);
		int soerr = n > 0 ? 0 : ETIMEDOUT;
		socklen_t sl = sizeof soerr;
		if (n > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			err = soerr;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "%s:%s: %s", vol.peer_host,
			    vol.peer_port, err == ETIMEDOUT ? "no answer (connect timed out)" : g_strerror(err));
		return false;
	}
	close(fd);
	return true;
}

static struct nbd_handle *connect_export(const char *name, GError **error)
{
	struct nbd_handle *h = nbd_create();
	if (!h) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "libnbd: %s", nbd_get_error());
		return NULL;
	}
	if (nbd_set_export_name(h, name) < 0 || nbd_set_tls(h, LIBNBD_TLS_REQUIRE) < 0 ||
	    nbd_set_tls_certificates(h, vol.libnbd_tls_dir) < 0 ||
	    nbd_set_tls_verify_peer(h, true) < 0 ||
	    nbd_aio_connect_tcp(h, vol.peer_host, vol.peer_port) < 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s", nbd_get_error());
		nbd_close(h);
		return NULL;
	}
	gint64 deadline = g_get_monotonic_time() + (gint64)vol.timeout_ms * G_TIME_SPAN_MILLISECOND;
	int r = drive(h, is_ready, 0, deadline);
	if (r < 0) {
		const char *e = nbd_get_error();
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "export %s of %s:%s: %s", name,
			    vol.peer_host, vol.peer_port, e ? e : g_strerror(-r));
		nbd_close(h);
		return NULL;
	}
	return h;
}

/* A meta request, driven by the caller with the timeout. */
static int meta_io(bool write, uint8_t *block)
{
	g_mutex_lock(&P.meta_lock);
	struct nbd_handle *h = P.meta;
	int r = -ENOTCONN;
	if (h) {
		int64_t cookie = write ? nbd_aio_pwrite(h, block, SAN_META_BLOCK, 0, NBD_NULL_COMPLETION,
							LIBNBD_CMD_FLAG_FUA)
				       : nbd_aio_pread(h, block, SAN_META_BLOCK, 0, NBD_NULL_COMPLETION, 0);
		if (cookie < 0) {
			r = -(nbd_get_errno() ? nbd_get_errno() : EIO);
		} else {
			gint64 deadline = g_get_monotonic_time() +
					  (gint64)vol.timeout_ms * G_TIME_SPAN_MILLISECOND;
			r = drive(h, command_done, cookie, deadline);
			if (r == 0 && nbd_aio_command_completed(h, (uint64_t)cookie) < 0)
				r = -(nbd_get_errno() ? nbd_get_errno() : EIO);
		}
	}
	g_mutex_unlock(&P.meta_lock);
	return r;
}

int san_peer_meta_read(san_meta *m)
{
	uint8_t block[SAN_META_BLOCK];
	g_autoptr(GError) error = NULL;
	int r = meta_io(false, block);
	if (r < 0)
		return r;
	if (!san_meta_decode(block, sizeof block, m, &error)) {
		san_log("the peer's metadata: %s", error->message);
		return -EPROTO;
	}
	return 0;
}

int san_peer_meta_write(const san_meta *m)
{
	uint8_t block[SAN_META_BLOCK];
	san_meta_encode(m, false, block);
	return meta_io(true, block);
}

/* --------------------------------------------------------- the link thread */

static void close_link(void)
{
	g_mutex_lock(&P.lock);
	struct nbd_handle *h = P.data;
	P.data = NULL;
	P.up = false;
	P.drop = false;
	g_clear_pointer(&P.drop_why, g_free);
	/* closed under the lock: no request thread is inside libnbd with it */
	if (h)
		nbd_close(h);
	g_mutex_unlock(&P.lock);
	g_mutex_lock(&P.meta_lock);
	g_clear_pointer(&P.meta, nbd_close);
	g_mutex_unlock(&P.meta_lock);
	san_sync_link_lost();
}

/* Sleep @ms, woken early by stop. */
static void pause_ms(unsigned ms)
{
	struct pollfd pfd = { .fd = P.wake_fd, .events = POLLIN };
	gint64 end = g_get_monotonic_time() + ms * 1000;
	while (!P.stop) {
		gint64 left = (end - g_get_monotonic_time()) / 1000;
		if (left <= 0)
			break;
		if (poll(&pfd, 1, (int)left) > 0) {
			uint64_t v;
			if (read(P.wake_fd, &v, sizeof v) < 0) {
				/* nothing to read: woken by someone else */
			}
		}
	}
}

static bool same_meta(const san_meta *a, const san_meta *b)
{
	return a->current == b->current && a->bitmap == b->bitmap && a->history[0] == b->history[0] &&
	       a->history[1] == b->history[1] && a->flags == b->flags;
}

/* Read the peer's meta and decide again if @always or it changed since
 * @last; false if the peer does not answer (the link is dead). */
static bool check_peer(san_meta *last, bool always)
{
	san_meta pm;
	int r = san_peer_meta_read(&pm);
	if (r < 0) {
		san_log("cannot read the peer's metadata: %s", g_strerror(-r));
		return false;
	}
	if (always || !same_meta(&pm, last))
		san_sync_connected(&pm);
	*last = pm;
	return true;
}

static int nothing_in_flight(struct nbd_handle *h, int64_t unused)
{
	return nbd_aio_in_flight(h) == 0;
}

/* Both replicas grew (`resize` on both) but the data connection still has
 * the old size: a new connection takes the requests, the old one finishes
 * what it has, then closes.  False if the link is to be dropped. */
static bool grow_link(struct nbd_handle **data, const san_meta *peer)
{
	g_mutex_lock(&vol.lock);
	uint64_t size = vol.meta.size;
	g_mutex_unlock(&vol.lock);
	int64_t have = nbd_get_size(*data);
	if (have < 0 || (uint64_t)have >= size || peer->size < size)
		return true;
	g_autoptr(GError) error = NULL;
	struct nbd_handle *fresh = connect_export("data", &error);
	if (!fresh) {
		san_log("cannot reconnect for the new size: %s", error->message);
		return true;          /* tried again in a second */
	}
	struct nbd_handle *old = *data;
	g_mutex_lock(&P.lock);
	P.data = fresh;
	g_mutex_unlock(&P.lock);
	gint64 deadline = g_get_monotonic_time() + (gint64)vol.timeout_ms * G_TIME_SPAN_MILLISECOND;
	int r = drive(old, nothing_in_flight, 0, deadline);
	nbd_close(old);         /* retires whatever it still had: those writes are held */
	*data = fresh;
	san_log("the link now sees the peer's new size, %" G_GUINT64_FORMAT " bytes", size);
	g_mutex_lock(&vol.lock);
	san_emit_state_locked();
	g_mutex_unlock(&vol.lock);
	return r == 0;
}

uint64_t san_peer_size(void)
{
	g_mutex_lock(&P.lock);
	int64_t s = P.up && P.data ? nbd_get_size(P.data) : 0;
	g_mutex_unlock(&P.lock);
	return s > 0 ? (uint64_t)s : 0;
}

/* After a failed attempt that started at @started: wait until the next is due. */
static void retry_pause(unsigned *failures, gint64 started)
{
	if (*failures < 64)
		(*failures)++;
	gint64 due = started + (gint64)san_link_retry_ms(*failures) * 1000;
	gint64 left = (due - g_get_monotonic_time()) / 1000;
	if (left > 0)
		pause_ms((unsigned)left);
}

static gpointer link_thread(gpointer unused)
{
	bool logged_failure = false;
	unsigned failures = 0;
	while (!P.stop) {
		g_autoptr(GError) error = NULL;
		gint64 started = g_get_monotonic_time();
		/* libnbd's own TCP connect would wait for the kernel's SYN retries
		 * (seconds) on a cut link: a quick probe first */
		bool answers = tcp_answers(MIN(vol.timeout_ms, TCP_CONNECT_MS), &error);
		struct nbd_handle *data = answers ? connect_export("data", &error) : NULL;
		struct nbd_handle *meta = data ? connect_export("meta", &error) : NULL;
		if (!meta) {
			if (data)
				nbd_close(data);
			if (!logged_failure)
				san_log("cannot reach the peer (trying again, at most a second apart): %s",
					error->message);
			logged_failure = true;
			retry_pause(&failures, started);
			continue;
		}
		logged_failure = false;
		g_mutex_lock(&P.meta_lock);
		P.meta = meta;
		g_mutex_unlock(&P.meta_lock);
		g_mutex_lock(&P.lock);
		P.data = data;
		P.up = true;
		P.drop = false;
		P.redecide = false;
		g_mutex_unlock(&P.lock);
		san_log("connected to the peer %s:%s", vol.peer_host, vol.peer_port);
		san_meta last;
		if (!check_peer(&last, true)) {
			close_link();
			retry_pause(&failures, started);
			continue;
		}

		/* once a second: the peer answers (else the link is dead), and if
		 * its identifiers or flags changed (a discard, a promote, a writer,
		 * an outage it saw and this side did not), decide again */
		gint64 next_check = g_get_monotonic_time() + G_USEC_PER_SEC;
		while (!P.stop) {
			g_mutex_lock(&P.lock);
			bool drop = P.drop, redecide = P.redecide;
			P.redecide = false;
			g_mutex_unlock(&P.lock);
			if (drop)
				break;
			bool due = g_get_monotonic_time() >= next_check;
			if (due)
				next_check = g_get_monotonic_time() + G_USEC_PER_SEC;
			if ((redecide || due) && !check_peer(&last, redecide)) {
				san_peer_drop("the peer does not answer");
				break;
			}
			if (due && !grow_link(&data, &last))
				break;

			unsigned dir = nbd_aio_get_direction(data);
			struct pollfd pfd[2] = {
				{ .fd = nbd_aio_get_fd(data),
				  .events = ((dir & LIBNBD_AIO_DIRECTION_READ) ? POLLIN : 0) |
					    ((dir & LIBNBD_AIO_DIRECTION_WRITE) ? POLLOUT : 0) },
				{ .fd = P.wake_fd, .events = POLLIN },
			};
			if (pfd[0].fd < 0)
				break;
			int n = poll(pfd, 2, 1000);
			if (n < 0 && errno != EINTR)
				break;
			if (n <= 0)
				continue;
			if (pfd[1].revents & POLLIN) {
				uint64_t v;
				if (read(P.wake_fd, &v, sizeof v) < 0) {
					/* raced with another reader: fine */
				}
			}
			dir = nbd_aio_get_direction(data);
			int r = 0;
			if ((dir & LIBNBD_AIO_DIRECTION_READ) &&
			    (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
				r = nbd_aio_notify_read(data);
			else if ((dir & LIBNBD_AIO_DIRECTION_WRITE) &&
				 (pfd[0].revents & (POLLOUT | POLLHUP | POLLERR)))
				r = nbd_aio_notify_write(data);
			if (r < 0 || nbd_aio_is_dead(data) || nbd_aio_is_closed(data)) {
				san_peer_drop("the connection to the peer failed");
				break;
			}
		}
		close_link();
		/* a link that was up a while and broke: try again soon; one that
		 * breaks at once, again and again, less and less often */
		if (g_get_monotonic_time() - started >= G_USEC_PER_SEC + (gint64)vol.timeout_ms * 2000)
			failures = 0;
		if (!P.stop)
			retry_pause(&failures, g_get_monotonic_time());
	}
	return NULL;
}

/* libnbd reads ca-cert.pem, client-cert.pem and client-key.pem from a
 * directory: links to the node's files, beside the control socket. */
static bool make_tls_dir(GError **error)
{
	static const char *const names[][2] = {
		{ "ca.crt", "ca-cert.pem" }, { "node.crt", "client-cert.pem" }, { "node.key", "client-key.pem" },
	};
	vol.libnbd_tls_dir = g_strdup_printf("%s.libnbd-tls", vol.control_path);
	if (g_mkdir_with_parents(vol.libnbd_tls_dir, 0700) < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot make %s: %s",
			    vol.libnbd_tls_dir, g_strerror(errno));
		return false;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree char *from = g_build_filename(vol.tls_dir, names[i][0], NULL);
		g_autofree char *to = g_build_filename(vol.libnbd_tls_dir, names[i][1], NULL);
		if (access(from, R_OK) < 0) {
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
				    "tls-dir: cannot read %s: %s", from, g_strerror(errno));
			return false;
		}
		unlink(to);
		if (symlink(from, to) < 0) {
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
				    "cannot link %s: %s", to, g_strerror(errno));
			return false;
		}
	}
	return true;
}

static void remove_tls_dir(void)
{
	static const char *const names[] = { "ca-cert.pem", "client-cert.pem", "client-key.pem" };
	if (!vol.libnbd_tls_dir)
		return;
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		g_autofree char *path = g_build_filename(vol.libnbd_tls_dir, names[i], NULL);
		unlink(path);
	}
	rmdir(vol.libnbd_tls_dir);
}

bool san_peer_start(GError **error)
{
	if (!make_tls_dir(error))
		return false;
	P.wake_fd = san_eventfd(error);
	if (P.wake_fd < 0)
		return false;
	P.thread = g_thread_new("san-link", link_thread, NULL);
	return true;
}

void san_peer_stop(void)
{
	if (!P.thread)
		return;
	P.stop = true;
	san_peer_drop("nbdkit stops");
	g_thread_join(P.thread);
	P.thread = NULL;
	remove_tls_dir();
}
