/*
 * The VM console proxy (daemon/console_proxy.h).
 *
 * A console is one thread between two endpoints: the client (a browser's
 * websocket, or the TLS relay from the node that serves the browser) and
 * the upstream (the VM's display, or the TLS relay to the node that runs
 * the VM).  Every socket is non-blocking and every wait is a poll() that
 * also watches the console's eventfd, so that the main loop can close a
 * console at any moment; buffers are fixed (one websocket frame in, one
 * chunk out), and a slow side makes the other wait rather than queue.
 *
 * The relay between nodes: the connecting node sends one line of JSON,
 * {"v":1,"vm":UUID,"name":NAME,"user":USER}; the VM's node answers one
 * line, {"ok":true} or {"error":SENTENCE}, and then carries the display's
 * bytes.  Both sides prove to be nodes of the cluster with certificates
 * of its CA; the connecting node also checks that the other is the node
 * that runs the VM (its certificate names it: the node's name is its
 * common name and a DNS name); the VM's node checks that the other's
 * certificate names a node the store has now (its common name), so that
 * the certificate of a node removed from the cluster, still signed by
 * its CA, opens no console.
 */
#define G_LOG_DOMAIN "console"
#include "daemon/console_proxy.h"

#include "api/http.h"
#include "cluster/service.h"
#include "common/json.h"
#include "common/log.h"
#include "common/tcp_listen.h"
#include "common/websocket.h"
#include "store/state.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_VERSION 1
#define RELAY_LINE_MAX 4096
#define CONNECT_TIMEOUT_MS 10000
#define CHUNK_BYTES 65536
#define CHECK_INTERVAL_S 1
#define CLOSE_LINGER_MS 2000

typedef enum { CONSOLE_WEBSOCKET, CONSOLE_RELAY } console_kind;

typedef struct {
	int fd;                               /* -1: none */
	gnutls_session_t tls;                 /* NULL: plain */
	gnutls_certificate_credentials_t cred;
} endpoint;

typedef struct console {
	gatomicrefcount refs;
	herd_console_proxy *p;
	console_kind kind;
	/* Set before the thread starts (a relay's: once its request is read,
	 * under p->lock). */
	char *vm_uuid;
	char *vm_name;
	char *node;                           /* where the VM runs */
	char *address;                        /* that node's address; NULL: here */
	char *user;
	http_upgraded *up;                    /* a websocket's */
	GByteArray *early;                    /* a websocket's bytes read with its upgrade */
	GByteArray *pending;                  /* the display's, read with the relay's answer */
	endpoint client;
	endpoint upstream;
	int wake;                             /* eventfd: close now */
	char *reason;                         /* why it was closed from outside (p->lock) */
} console;

struct herd_console_proxy {
	char *node_name;
	char *libvirt_uri;
	char *tls_dir;
	int relay_port;
	herd_ha *ha;
	herd_cluster *cluster;
	GMutex lock;
	GCond gone;
	GHashTable *consoles;                 /* console* set with a thread (lock) */
	bool stopping;                        /* (lock) */
	int listen_fd;
	int acceptor_wake;
	GThread *acceptor;
	guint check_timer;
	GHashTable *node_names;               /* the store's nodes now (lock; on_check) */
};

/* ------------------------------------------------------------------ */
/* Consoles                                                            */

static console *console_new(herd_console_proxy *p, console_kind kind)
{
	console *c = g_new0(console, 1);
	g_atomic_ref_count_init(&c->refs);
	c->p = p;
	c->kind = kind;
	c->client.fd = c->upstream.fd = -1;
	c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->early = g_byte_array_new();
	c->pending = g_byte_array_new();
	return c;
}

static void endpoint_close(endpoint *e)
{
	if (e->tls) {
		gnutls_deinit(e->tls);
		e->tls = NULL;
	}
	if (e->cred) {
		gnutls_certificate_free_credentials(e->cred);
		e->cred = NULL;
	}
	if (e->fd >= 0) {
		close(e->fd);
		e->fd = -1;
	}
}

static void console_unref(gpointer data)
{
	console *c = data;
	if (!c || !g_atomic_ref_count_dec(&c->refs))
		return;
	endpoint_close(&c->client);
	endpoint_close(&c->upstream);
	if (c->up)
		http_upgraded_close(c->up);
	if (c->wake >= 0)
		close(c->wake);
	g_byte_array_unref(c->early);
	g_byte_array_unref(c->pending);
	g_free(c->vm_uuid);
	g_free(c->vm_name);
	g_free(c->node);
	g_free(c->address);
	g_free(c->user);
	g_free(c->reason);
	g_free(c);
}

/* Close @c soon, saying @why (any thread). */
static void console_close(console *c, const char *why)
{
	g_mutex_lock(&c->p->lock);
	if (!c->reason)
		c->reason = g_strdup(why);
	g_mutex_unlock(&c->p->lock);
	uint64_t one = 1;
	if (write(c->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("cannot wake a console: %s", g_strerror(errno));
}

/* ------------------------------------------------------------------ */
/* I/O that waits for the console's closing too                        */

static gint64 deadline_in(int ms)
{
	return g_get_monotonic_time() + (gint64)ms * 1000;
}

/* Wait for @events on @fd until @deadline_us (0: none): 1 ready, 0 timed
 * out, -1 the console is to close. */
static int wait_io(console *c, int fd, short events, gint64 deadline_us)
{
	for (;;) {
		int timeout = -1;
		if (deadline_us) {
			gint64 left = deadline_us - g_get_monotonic_time();
			if (left <= 0)
				return 0;
			timeout = (int)MIN(left / 1000 + 1, G_MAXINT);
		}
		struct pollfd fds[2] = { { fd, events, 0 }, { c->wake, POLLIN, 0 } };
		int n = poll(fds, 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || fds[1].revents)
			return -1;
		if (n > 0)
			return 1;
	}
}

static void set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Read what there is: bytes, 0 at the end, -EAGAIN, or another -errno. */
static ssize_t ep_read(endpoint *e, void *buf, size_t len)
{
	if (e->tls) {
		ssize_t r = gnutls_record_recv(e->tls, buf, len);
		if (r >= 0)
			return r;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return -EAGAIN;
		return r == GNUTLS_E_PREMATURE_TERMINATION ? 0 : -EIO;
	}
	ssize_t r = recv(e->fd, buf, len, 0);
	return r >= 0 ? r : (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -EAGAIN : -errno;
}

static bool ep_pending(endpoint *e)
{
	return e->tls && gnutls_record_check_pending(e->tls) > 0;
}

/* Write all of @buf, waiting as the other side reads; false if it cannot
 * (or the console is to close). */
static bool ep_write_all(console *c, endpoint *e, const void *buf, size_t len)
{
	const uint8_t *d = buf;
	while (len > 0) {
		ssize_t r;
		short want = POLLOUT;
		if (e->tls) {
			r = gnutls_record_send(e->tls, d, len);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
				want = gnutls_record_get_direction(e->tls) ? POLLOUT : POLLIN;
				r = -EAGAIN;
			} else if (r < 0) {
				return false;
			}
		} else {
			r = send(e->fd, d, len, MSG_NOSIGNAL);
			if (r < 0)
				r = (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -EAGAIN : -errno;
			if (r < 0 && r != -EAGAIN)
				return false;
		}
		if (r == -EAGAIN) {
			if (wait_io(c, e->fd, want, 0) <= 0)
				return false;
			continue;
		}
		d += r;
		len -= (size_t)r;
	}
	return true;
}

/* One line (without its newline) within @deadline_us; what came after it
 * goes to c->pending. */
static char *ep_read_line(console *c, endpoint *e, gint64 deadline_us, GError **error)
{
	g_autoptr(GByteArray) buf = g_byte_array_new();
	uint8_t chunk[1024];
	for (;;) {
		uint8_t *nl = buf->len ? memchr(buf->data, '\n', buf->len) : NULL;
		if (nl) {
			size_t line = (size_t)(nl - buf->data);
			g_byte_array_append(c->pending, nl + 1, (guint)(buf->len - line - 1));
			return g_strndup((const char *)buf->data, line);
		}
		if (buf->len > RELAY_LINE_MAX) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The console relay's line is longer than %d bytes.", RELAY_LINE_MAX);
			return NULL;
		}
		ssize_t n = ep_read(e, chunk, sizeof(chunk));
		if (n > 0) {
			g_byte_array_append(buf, chunk, (guint)n);
			continue;
		}
		if (n == 0 || n != -EAGAIN) {
			g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
				    "The console relay closed before it answered.");
			return NULL;
		}
		int w = wait_io(c, e->fd, POLLIN, deadline_us);
		if (w <= 0) {
			g_set_error(error, HERD_ERROR, HERD_ERR_TIMEOUT, "%s",
				    w == 0 ? "The console relay did not answer in time." : "The console was closed.");
			return NULL;
		}
	}
}

/* ------------------------------------------------------------------ */
/* TLS between nodes                                                   */

static bool read_tls_file(herd_console_proxy *p, const char *name, char **out, GError **error)
{
	g_autofree char *path = g_build_filename(p->tls_dir, name, NULL);
	if (g_file_get_contents(path, out, NULL, NULL))
		return true;
	g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
		    "Node %s has no cluster certificates (%s) for the console relay; is it a cluster member?",
		    p->node_name, path);
	return false;
}

static bool tls_fail(GError **error, const char *peer, const char *what, int rc)
{
	g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "TLS with %s for the console failed: %s: %s.",
		    peer, what, gnutls_strerror(rc));
	return false;
}

/*
 * TLS on @e's socket as a client of node @peer_node (its certificate must
 * name it) or as the server (@peer_node NULL: any node of the cluster),
 * each with this node's certificate and the cluster's CA.
 */
static bool tls_start(console *c, endpoint *e, const char *peer_node, const char *peer_label,
		      GError **error)
{
	herd_console_proxy *p = c->p;
	g_autofree char *ca = NULL, *cert = NULL, *key = NULL;
	if (!read_tls_file(p, "ca.crt", &ca, error) || !read_tls_file(p, "node.crt", &cert, error) ||
	    !read_tls_file(p, "node.key", &key, error))
		return false;
	int rc = gnutls_certificate_allocate_credentials(&e->cred);
	if (rc < 0)
		return tls_fail(error, peer_label, "credentials", rc);
	gnutls_datum_t dca = { (unsigned char *)ca, (unsigned)strlen(ca) };
	gnutls_datum_t dcert = { (unsigned char *)cert, (unsigned)strlen(cert) };
	gnutls_datum_t dkey = { (unsigned char *)key, (unsigned)strlen(key) };
	if ((rc = gnutls_certificate_set_x509_key_mem(e->cred, &dcert, &dkey, GNUTLS_X509_FMT_PEM)) < 0)
		return tls_fail(error, peer_label, "this node's certificate", rc);
	if ((rc = gnutls_certificate_set_x509_trust_mem(e->cred, &dca, GNUTLS_X509_FMT_PEM)) <= 0)
		return tls_fail(error, peer_label, "the cluster's CA", rc ? rc : GNUTLS_E_CERTIFICATE_ERROR);
	if ((rc = gnutls_init(&e->tls, peer_node ? GNUTLS_CLIENT : GNUTLS_SERVER)) < 0)
		return tls_fail(error, peer_label, "session", rc);
	gnutls_set_default_priority(e->tls);
	gnutls_credentials_set(e->tls, GNUTLS_CRD_CERTIFICATE, e->cred);
	if (peer_node) {
		gnutls_server_name_set(e->tls, GNUTLS_NAME_DNS, peer_node, strlen(peer_node));
		gnutls_session_set_verify_cert(e->tls, peer_node, 0);
	} else {
		gnutls_certificate_server_set_request(e->tls, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_cert(e->tls, NULL, 0);
	}
	gnutls_transport_set_int(e->tls, e->fd);
	gint64 deadline = deadline_in(CONNECT_TIMEOUT_MS);
	for (;;) {
		rc = gnutls_handshake(e->tls);
		if (rc == 0)
			break;
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED && gnutls_error_is_fatal(rc))
			return tls_fail(error, peer_label, "handshake", rc);
		int w = wait_io(c, e->fd, gnutls_record_get_direction(e->tls) ? POLLOUT : POLLIN, deadline);
		if (w <= 0)
			return tls_fail(error, peer_label, w == 0 ? "handshake timed out" : "closed",
					GNUTLS_E_TIMEDOUT);
	}
	/* The server side checks again that a certificate of the CA came. */
	unsigned status = 0, n_peers = 0;
	if (gnutls_certificate_verify_peers2(e->tls, &status) < 0 || status != 0 ||
	    !gnutls_certificate_get_peers(e->tls, &n_peers) || n_peers == 0)
		return tls_fail(error, peer_label, "the peer's certificate is not the cluster's",
				GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR);
	return true;
}

static int tcp_connect(console *c, const char *address, int port, GError **error)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	g_autofree char *service = g_strdup_printf("%d", port);
	int gai = getaddrinfo(address, service, &hints, &res);
	if (gai != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "Cannot resolve %s: %s.", address,
			    gai_strerror(gai));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int err = fd < 0 ? errno : 0;
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		err = errno;
		if (err == EINPROGRESS) {
			int w = wait_io(c, fd, POLLOUT, deadline_in(CONNECT_TIMEOUT_MS));
			socklen_t len = sizeof(err);
			if (w <= 0)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
		}
	}
	freeaddrinfo(res);
	if (err) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Cannot reach the console relay of node %s at %s port %d: %s.", c->node, address,
			    port, g_strerror(err));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The common name of the certificate the peer of @e showed (g_free), or
 * NULL. */
static char *peer_name(endpoint *e)
{
	unsigned n = 0;
	const gnutls_datum_t *certs = e->tls ? gnutls_certificate_get_peers(e->tls, &n) : NULL;
	gnutls_x509_crt_t crt;
	if (!certs || n == 0 || gnutls_x509_crt_init(&crt) < 0)
		return NULL;
	char cn[256];
	size_t cn_size = sizeof(cn);
	bool ok = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) >= 0 &&
		  gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_size) >= 0;
	gnutls_x509_crt_deinit(crt);
	return ok ? g_strndup(cn, cn_size) : NULL;
}

/* ------------------------------------------------------------------ */
/* The display                                                         */

/* A socket to the display of VM @uuid, running here, or -1 with @error. */
static int display_open(herd_console_proxy *p, const char *uuid, const char *name, GError **error)
{
	virConnectPtr conn = virConnectOpen(p->libvirt_uri);
	if (!conn) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Node %s cannot reach its libvirt for the console of VM %s: %s", p->node_name,
			    name, virGetLastErrorMessage());
		return -1;
	}
	virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid);
	int fd = -1;
	if (!dom || virDomainIsActive(dom) != 1)
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "VM %s is not running on node %s.", name,
			    p->node_name);
	else if ((fd = virDomainOpenGraphicsFD(dom, 0, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)) < 0)
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Cannot open the display of VM %s on node %s: %s", name, p->node_name,
			    virGetLastErrorMessage());
	if (dom)
		virDomainFree(dom);
	virConnectClose(conn);
	if (fd >= 0)
		set_nonblocking(fd);
	return fd;
}

/* A websocket's upstream: the display here, or the relay to its node. */
static bool upstream_open(console *c, GError **error)
{
	if (!c->address) {
		c->upstream.fd = display_open(c->p, c->vm_uuid, c->vm_name, error);
		return c->upstream.fd >= 0;
	}
	if (c->p->relay_port <= 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "VM %s runs on node %s, and node %s reaches no other node's consoles: its console relay is off ([api] console_port=0).",
			    c->vm_name, c->node, c->p->node_name);
		return false;
	}
	c->upstream.fd = tcp_connect(c, c->address, c->p->relay_port, error);
	g_autofree char *label = g_strdup_printf("node %s", c->node);
	if (c->upstream.fd < 0 || !tls_start(c, &c->upstream, c->node, label, error))
		return false;
	g_autoptr(json_t) req = json_pack("{s:i,s:s,s:s,s:s}", "v", RELAY_VERSION, "vm", c->vm_uuid,
					  "name", c->vm_name, "user", c->user);
	g_autofree char *text = json_dumps(req, JSON_COMPACT);
	g_autofree char *line = g_strconcat(text, "\n", NULL);
	if (!ep_write_all(c, &c->upstream, line, strlen(line))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "The console relay of node %s closed.", c->node);
		return false;
	}
	g_autofree char *answer = ep_read_line(c, &c->upstream, deadline_in(CONNECT_TIMEOUT_MS), error);
	if (!answer)
		return false;
	g_autoptr(json_t) a = json_loads(answer, 0, NULL);
	const char *refusal = json_string_value(json_object_get(a, "error"));
	if (refusal || !json_is_true(json_object_get(a, "ok"))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "%s",
			    refusal ? refusal : "The console relay's answer makes no sense.");
		return false;
	}
	return true;
}

/* A relay's client: the other node's TLS and request; then the display. */
static bool relay_accept(console *c, GError **error)
{
	herd_console_proxy *p = c->p;
	if (!tls_start(c, &c->client, NULL, "another node", error))
		return false;
	g_autofree char *peer = peer_name(&c->client);
	g_mutex_lock(&p->lock);
	bool member = peer && p->node_names && g_hash_table_contains(p->node_names, peer);
	g_mutex_unlock(&p->lock);
	if (!member) {
		/* Said to it too, and logged by the caller. */
		g_set_error(error, HERD_ERROR, HERD_ERR_FORBIDDEN,
			    "The console relay of node %s serves only the cluster's nodes; the certificate of "
			    "'%s' names no node of the cluster (removed?).", p->node_name, peer ? peer : "?");
		g_autoptr(json_t) answer = json_pack("{s:s}", "error", (*error)->message);
		g_autofree char *text = json_dumps(answer, JSON_COMPACT);
		g_autofree char *out = g_strconcat(text, "\n", NULL);
		ep_write_all(c, &c->client, out, strlen(out));
		return false;
	}
	g_autofree char *line = ep_read_line(c, &c->client, deadline_in(CONNECT_TIMEOUT_MS), error);
	if (!line)
		return false;
	g_autoptr(json_t) req = json_loads(line, 0, NULL);
	const char *uuid = json_string_value(json_object_get(req, "vm"));
	const char *name = json_string_value(json_object_get(req, "name"));
	const char *user = json_string_value(json_object_get(req, "user"));
	g_autoptr(GError) refused = NULL;
	if (json_integer_value(json_object_get(req, "v")) != RELAY_VERSION || !uuid || !name) {
		g_set_error(&refused, HERD_ERROR, HERD_ERR_INVALID,
			    "Node %s does not understand this console relay request.", p->node_name);
	} else {
		g_mutex_lock(&p->lock);
		c->vm_uuid = g_strdup(uuid);
		c->vm_name = g_strdup(name);
		c->user = g_strdup(user ? user : "?");
		c->node = g_strdup(p->node_name);
		g_mutex_unlock(&p->lock);
		c->upstream.fd = display_open(p, uuid, name, &refused);
	}
	g_autoptr(json_t) answer = refused ? json_pack("{s:s}", "error", refused->message)
					   : json_pack("{s:b}", "ok", 1);
	g_autofree char *text = json_dumps(answer, JSON_COMPACT);
	g_autofree char *out = g_strconcat(text, "\n", NULL);
	bool sent = ep_write_all(c, &c->client, out, strlen(out));
	if (refused) {
		g_propagate_error(error, g_steal_pointer(&refused));
		return false;
	}
	if (!sent)
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "The other node left.");
	return sent;
}

/* ------------------------------------------------------------------ */
/* The pump                                                            */

/* A websocket frame to the client, best effort (the console ends). */
static void ws_send_close(console *c, uint16_t code, const char *reason)
{
	uint8_t frame[2 + 2 + WS_MAX_CONTROL_PAYLOAD];
	size_t rlen = reason ? strlen(reason) : 0;
	if (rlen > WS_MAX_CONTROL_PAYLOAD - 2) {
		/* cut at a character's start */
		const char *end = g_utf8_find_prev_char(reason, reason + WS_MAX_CONTROL_PAYLOAD - 2 + 1);
		rlen = end ? (size_t)(end - reason) : 0;
	}
	size_t h = ws_frame_header(frame, WS_OP_CLOSE, 2 + rlen);
	frame[h] = (uint8_t)(code >> 8);
	frame[h + 1] = (uint8_t)code;
	if (rlen)
		memcpy(frame + h + 2, reason, rlen);
	/* Behind what the display sent last, which the client may still be
	 * reading: wait for room, a little (the console is closing, so
	 * wait_io() would not wait). */
	gint64 deadline = deadline_in(CLOSE_LINGER_MS);
	size_t off = 0, len = h + 2 + rlen;
	while (off < len) {
		ssize_t n = send(c->client.fd, frame + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		struct pollfd p = { c->client.fd, POLLOUT, 0 };
		gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
		if ((n < 0 && errno != EAGAIN && errno != EINTR) || left_ms <= 0 ||
		    poll(&p, 1, (int)left_ms) < 0) {
			log_debug("the console's close frame was not sent: %s", g_strerror(errno));
			return;
		}
	}
}

/*
 * After our close frame: wait a little (CLOSE_LINGER_MS) for the client's
 * answer, a close frame or its end, before the connection is shut, so
 * that our close frame is not cut off on its way (RFC 6455 7.1.1: the
 * server closes the TCP connection once the closing handshake is done).
 */
static void ws_linger(console *c)
{
	uint8_t buf[4096];
	size_t len = 0;
	ws_decoder dec = { .max_payload = sizeof(buf) };
	gint64 deadline = deadline_in(CLOSE_LINGER_MS);
	for (;;) {
		struct pollfd p = { c->client.fd, POLLIN, 0 };
		gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
		if (left_ms <= 0 || poll(&p, 1, (int)left_ms) <= 0)
			return;
		ssize_t n = recv(c->client.fd, buf + len, sizeof(buf) - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		for (;;) {
			ws_frame f;
			size_t used;
			uint16_t code;
			ws_decode_result r = ws_decode(&dec, buf, len, &f, &used, &code, NULL);
			if (r != WS_DECODE_FRAME)
				break;
			if (f.opcode == WS_OP_CLOSE)
				return;
			memmove(buf, buf + used, len - used);
			len -= used;
		}
		if (len == sizeof(buf))
			return;
	}
}

static bool ws_send(console *c, ws_opcode op, const uint8_t *payload, size_t len)
{
	uint8_t h[WS_MAX_HEADER];
	size_t hl = ws_frame_header(h, op, len);
	return ep_write_all(c, &c->client, h, hl) && ep_write_all(c, &c->client, payload, len);
}

typedef struct {
	uint16_t code;          /* the websocket close code to send; 0: none (the client closed) */
	char *why;
} ending;

static void end_with(ending *e, uint16_t code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void end_with(ending *e, uint16_t code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	e->code = code;
	e->why = g_strdup_vprintf(fmt, ap);
	va_end(ap);
}

/* The client's websocket frames in @in (@len bytes): to the display.
 * Bytes used, or -1 with @e set. */
static gssize ws_from_client(console *c, ws_decoder *dec, uint8_t *in, size_t len, ending *e)
{
	size_t off = 0;
	while (off < len) {
		ws_frame f;
		size_t used = 0;
		uint16_t code = 0;
		g_autoptr(GError) err = NULL;
		ws_decode_result r = ws_decode(dec, in + off, len - off, &f, &used, &code, &err);
		if (r == WS_DECODE_MORE)
			break;
		if (r == WS_DECODE_ERROR) {
			end_with(e, code, "%s", err->message);
			return -1;
		}
		off += used;
		switch (f.opcode) {
		case WS_OP_BINARY:
		case WS_OP_CONTINUATION:
			if (!ep_write_all(c, &c->upstream, f.payload, f.len)) {
				end_with(e, WS_CLOSE_GOING_AWAY, "The display of VM %s closed.", c->vm_name);
				return -1;
			}
			break;
		case WS_OP_PING:
			if (!ws_send(c, WS_OP_PONG, f.payload, f.len)) {
				end_with(e, 0, "the client left");
				return -1;
			}
			break;
		case WS_OP_CLOSE:
			end_with(e, f.len >= 2 ? (uint16_t)(f.payload[0] << 8 | f.payload[1]) : WS_CLOSE_NORMAL,
				 "the client closed it");
			return -1;
		default:
			break;
		}
	}
	return (gssize)off;
}

/* Carry bytes both ways until one side ends or the console is closed. */
static void pump(console *c, ending *e)
{
	bool ws = c->kind == CONSOLE_WEBSOCKET;
	size_t in_cap = ws ? HERD_CONSOLE_FRAME_MAX + WS_MAX_HEADER : CHUNK_BYTES;
	g_autofree uint8_t *in = g_malloc(in_cap);
	g_autofree uint8_t *out = g_malloc(WS_MAX_HEADER + CHUNK_BYTES);
	size_t in_len = 0;
	ws_decoder dec = { .max_payload = HERD_CONSOLE_FRAME_MAX };

	/* What the browser sent with its upgrade. */
	if (ws && c->early->len) {
		if (c->early->len > in_cap) {
			end_with(e, WS_CLOSE_TOO_BIG, "The client sent too much at once.");
			return;
		}
		memcpy(in, c->early->data, c->early->len);
		in_len = c->early->len;
		g_byte_array_set_size(c->early, 0);
	}
	bool client_data = in_len > 0;
	for (;;) {
		if (client_data) {
			client_data = false;
			if (ws) {
				gssize used = ws_from_client(c, &dec, in, in_len, e);
				if (used < 0)
					return;
				memmove(in, in + used, in_len - (size_t)used);
				in_len -= (size_t)used;
			} else {
				if (!ep_write_all(c, &c->upstream, in, in_len)) {
					end_with(e, 0, "the display closed");
					return;
				}
				in_len = 0;
			}
		}
		struct pollfd fds[3] = {
			{ c->client.fd, POLLIN, 0 },
			{ c->upstream.fd, POLLIN, 0 },
			{ c->wake, POLLIN, 0 },
		};
		bool ready = ep_pending(&c->client) || ep_pending(&c->upstream);
		int n = poll(fds, 3, ready ? 0 : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			end_with(e, WS_CLOSE_INTERNAL, "poll: %s", g_strerror(errno));
			return;
		}
		if (fds[2].revents) {
			g_mutex_lock(&c->p->lock);
			end_with(e, WS_CLOSE_GOING_AWAY, "%s", c->reason ? c->reason : "The console was closed.");
			g_mutex_unlock(&c->p->lock);
			return;
		}
		if (fds[0].revents || ep_pending(&c->client)) {
			ssize_t r = ep_read(&c->client, in + in_len, in_cap - in_len);
			if (r == 0 || (r < 0 && r != -EAGAIN)) {
				end_with(e, 0, "the client left");
				return;
			}
			if (r > 0) {
				in_len += (size_t)r;
				client_data = true;
			}
		}
		if (fds[1].revents || ep_pending(&c->upstream)) {
			ssize_t r = ep_read(&c->upstream, out + WS_MAX_HEADER, CHUNK_BYTES);
			if (r == 0 || (r < 0 && r != -EAGAIN)) {
				end_with(e, WS_CLOSE_GOING_AWAY, "The display of VM %s closed.", c->vm_name);
				return;
			}
			if (r > 0) {
				uint8_t *start = out + WS_MAX_HEADER;
				size_t len = (size_t)r;
				if (ws) {
					uint8_t h[WS_MAX_HEADER];
					size_t hl = ws_frame_header(h, WS_OP_BINARY, len);
					start -= hl;
					memcpy(start, h, hl);
					len += hl;
				}
				if (!ep_write_all(c, &c->client, start, len)) {
					end_with(e, 0, "the client left");
					return;
				}
			}
		}
	}
}

static void console_forget(console *c)
{
	herd_console_proxy *p = c->p;
	g_mutex_lock(&p->lock);
	g_hash_table_remove(p->consoles, c);
	if (g_hash_table_size(p->consoles) == 0)
		g_cond_broadcast(&p->gone);
	g_mutex_unlock(&p->lock);
}

static gpointer console_run(gpointer data)
{
	console *c = data;
	g_autoptr(GError) err = NULL;
	ending e = { 0 };
	bool ws = c->kind == CONSOLE_WEBSOCKET;
	if (ws ? upstream_open(c, &err) : relay_accept(c, &err)) {
		if (!ws && c->pending->len) {
			/* What the other node sent right after its request. */
			if (!ep_write_all(c, &c->upstream, c->pending->data, c->pending->len))
				end_with(&e, 0, "the display closed");
			g_byte_array_set_size(c->pending, 0);
		}
		if (ws && c->address && c->pending->len && !e.why) {
			/* The display's first bytes came with the relay's answer. */
			bool sent = ws_send(c, WS_OP_BINARY, c->pending->data, c->pending->len);
			g_byte_array_set_size(c->pending, 0);
			if (!sent)
				end_with(&e, 0, "the client left");
		}
		if (!e.why) {
			log_info("console of VM %s (on node %s) for %s: open%s", c->vm_name, c->node, c->user,
				 ws ? "" : " (relayed)");
			pump(c, &e);
		}
	} else {
		end_with(&e, WS_CLOSE_INTERNAL, "%s", err->message);
	}
	/* Closed from outside (the VM stopped or moved): whatever the pump
	 * was doing when it noticed, that is why. */
	g_mutex_lock(&c->p->lock);
	if (c->reason) {
		g_free(e.why);
		end_with(&e, WS_CLOSE_GOING_AWAY, "%s", c->reason);
	}
	g_mutex_unlock(&c->p->lock);
	log_info("console of VM %s for %s%s: closed: %s", c->vm_name ? c->vm_name : "?",
		 c->user ? c->user : "another node", ws ? "" : " (relayed)", e.why);
	if (ws && e.code) {
		ws_send_close(c, e.code, e.why);
		ws_linger(c);
	}
	g_free(e.why);
	endpoint_close(&c->client);
	endpoint_close(&c->upstream);
	console_forget(c); /* the set's reference */
	console_unref(c);
	return NULL;
}

/* Start @c's thread; false (nothing started) if it cannot. */
static bool console_start(console *c)
{
	herd_console_proxy *p = c->p;
	g_mutex_lock(&p->lock);
	bool room = !p->stopping && g_hash_table_size(p->consoles) < HERD_CONSOLE_MAX;
	if (room) {
		g_atomic_ref_count_inc(&c->refs); /* the set's, given up by the thread */
		g_hash_table_add(p->consoles, c);
	}
	g_mutex_unlock(&p->lock);
	if (!room)
		return false;
	g_autoptr(GError) err = NULL;
	GThread *t = g_thread_try_new("herd-console", console_run, c, &err);
	if (!t) {
		log_warn("cannot start a console's thread: %s", err->message);
		console_forget(c);
		console_unref(c);
		return false;
	}
	g_thread_unref(t);
	return true;
}

/* ------------------------------------------------------------------ */
/* The API's side                                                      */

static gpointer ops_prepare(gpointer proxy, const api_console_target *t, GError **error)
{
	herd_console_proxy *p = proxy;
	g_mutex_lock(&p->lock);
	bool room = !p->stopping && g_hash_table_size(p->consoles) < HERD_CONSOLE_MAX;
	g_mutex_unlock(&p->lock);
	if (!room) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Node %s serves %d consoles already, as many as it may; close one or use another node.",
			    p->node_name, HERD_CONSOLE_MAX);
		return NULL;
	}
	console *c = console_new(p, CONSOLE_WEBSOCKET);
	c->vm_uuid = g_strdup(t->vm_uuid);
	c->vm_name = g_strdup(t->vm_name);
	c->node = g_strdup(t->node);
	c->address = g_strdup(t->address);
	c->user = g_strdup(t->user);
	return c;
}

/* The server's thread: must not block. */
static void ops_upgraded(http_upgraded *up, int fd, const void *extra, size_t extra_len,
			 gpointer data)
{
	console *c = data;
	c->up = up;
	c->client.fd = fd;
	set_nonblocking(fd);
	g_byte_array_append(c->early, extra, (guint)extra_len);
	if (!console_start(c))
		ws_send_close(c, WS_CLOSE_TRY_LATER, "This node serves as many consoles as it may.");
	/* prepare()'s reference: the thread has its own (or, if none
	 * started, this closes the socket and gives @up back). */
	console_unref(c);
}

static void ops_drop(gpointer data)
{
	console_unref(data);
}

static unsigned ops_count(gpointer proxy)
{
	herd_console_proxy *p = proxy;
	g_mutex_lock(&p->lock);
	unsigned n = g_hash_table_size(p->consoles);
	g_mutex_unlock(&p->lock);
	return n;
}

const api_console_ops herd_console_ops = {
	.prepare = ops_prepare,
	.upgraded = ops_upgraded,
	.drop = ops_drop,
	.count = ops_count,
};

/* ------------------------------------------------------------------ */
/* The relay's listener                                                */

static gpointer accept_run(gpointer data)
{
	herd_console_proxy *p = data;
	for (;;) {
		struct pollfd fds[2] = { { p->listen_fd, POLLIN, 0 }, { p->acceptor_wake, POLLIN, 0 } };
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_warn("console relay: poll: %s", g_strerror(errno));
			break;
		}
		if (fds[1].revents)
			break;
		int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		console *c = console_new(p, CONSOLE_RELAY);
		c->client.fd = fd;
		if (!console_start(c))
			log_warn("console relay: a connection refused: %d consoles already",
				 HERD_CONSOLE_MAX);
		console_unref(c);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The VMs' whereabouts                                                */

/* Why @c's VM is no longer where its console found it, or NULL. */
static char *vm_gone(herd_console_proxy *p, const char *uuid, const char *name, const char *node)
{
	if (!store_state_get(herd_cluster_state(p->cluster), STORE_KIND_VM, uuid))
		return g_strdup_printf("VM %s was deleted.", name);
	const char *where = NULL;
	if (!herd_ha_vm_active(p->ha, uuid, &where) || !where)
		return g_strdup_printf("VM %s stopped.", name);
	if (strcmp(where, node) != 0)
		return g_strdup_printf("VM %s moved to node %s; open its console again.", name, where);
	return NULL;
}

/* The store's nodes, for the relay's threads. */
static void refresh_node_names(herd_console_proxy *p)
{
	store_state *st = herd_cluster_state(p->cluster);
	if (!st)
		return;
	GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++)
		g_hash_table_add(names, g_strdup(((store_object *)nodes->pdata[i])->name));
	g_mutex_lock(&p->lock);
	GHashTable *old = p->node_names;
	p->node_names = names;
	g_mutex_unlock(&p->lock);
	if (old)
		g_hash_table_destroy(old);
}

static gboolean on_check(gpointer data)
{
	herd_console_proxy *p = data;
	refresh_node_names(p);
	g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(console_unref);
	g_autoptr(GPtrArray) facts = g_ptr_array_new_with_free_func(g_free);
	g_mutex_lock(&p->lock);
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, p->consoles);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		console *c = key;
		if (!c->vm_uuid)
			continue; /* a relay that has not said which VM yet */
		g_atomic_ref_count_inc(&c->refs);
		g_ptr_array_add(list, c);
		g_ptr_array_add(facts, g_strdup(c->vm_uuid));
		g_ptr_array_add(facts, g_strdup(c->vm_name));
		g_ptr_array_add(facts, g_strdup(c->node));
	}
	g_mutex_unlock(&p->lock);
	for (guint i = 0; i < list->len; i++) {
		g_autofree char *why = vm_gone(p, facts->pdata[3 * i], facts->pdata[3 * i + 1],
					       facts->pdata[3 * i + 2]);
		if (why)
			console_close(list->pdata[i], why);
	}
	return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* The proxy                                                           */

herd_console_proxy *herd_console_proxy_new(const char *node_name, const char *libvirt_uri,
					   const char *tls_dir, const char *listen_address,
					   int relay_port, herd_ha *ha, herd_cluster *cluster,
					   GError **error)
{
	herd_console_proxy *p = g_new0(herd_console_proxy, 1);
	p->node_name = g_strdup(node_name);
	p->libvirt_uri = g_strdup(libvirt_uri);
	p->tls_dir = g_strdup(tls_dir);
	p->relay_port = relay_port;
	p->ha = ha;
	p->cluster = cluster;
	g_mutex_init(&p->lock);
	g_cond_init(&p->gone);
	p->consoles = g_hash_table_new(g_direct_hash, g_direct_equal);
	p->listen_fd = p->acceptor_wake = -1;
	if (relay_port > 0) {
		p->listen_fd = herd_tcp_listen(listen_address, relay_port, 32, error);
		if (p->listen_fd < 0) {
			g_prefix_error(error, "The console relay: ");
			herd_console_proxy_free(p);
			return NULL;
		}
		p->acceptor_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		p->acceptor = g_thread_new("herd-console-relay", accept_run, p);
		log_info("console relay listening on %s port %d",
			 listen_address && *listen_address ? listen_address : "all addresses", relay_port);
	}
	refresh_node_names(p);
	p->check_timer = g_timeout_add_seconds(CHECK_INTERVAL_S, on_check, p);
	return p;
}

void herd_console_proxy_free(herd_console_proxy *p)
{
	if (!p)
		return;
	if (p->acceptor) {
		uint64_t one = 1;
		if (write(p->acceptor_wake, &one, sizeof(one)) < 0)
			log_warn("cannot stop the console relay: %s", g_strerror(errno));
		g_thread_join(p->acceptor);
	}
	if (p->check_timer)
		g_source_remove(p->check_timer);
	g_mutex_lock(&p->lock);
	p->stopping = true;
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, p->consoles);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		console *c = key;
		if (!c->reason)
			c->reason = g_strdup("The node's herdd is stopping.");
		uint64_t one = 1;
		if (write(c->wake, &one, sizeof(one)) < 0)
			log_warn("cannot wake a console: %s", g_strerror(errno));
	}
	while (g_hash_table_size(p->consoles) > 0)
		g_cond_wait(&p->gone, &p->lock);
	g_mutex_unlock(&p->lock);
	if (p->listen_fd >= 0)
		close(p->listen_fd);
	if (p->acceptor_wake >= 0)
		close(p->acceptor_wake);
	g_hash_table_unref(p->consoles);
	g_mutex_clear(&p->lock);
	g_cond_clear(&p->gone);
	g_free(p->node_name);
	g_free(p->libvirt_uri);
	g_free(p->tls_dir);
	if (p->node_names)
		g_hash_table_destroy(p->node_names);
	g_free(p);
}
