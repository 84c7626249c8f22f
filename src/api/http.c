/*
 * The HTTP server: libmicrohttpd on a thread of the server's own, the
 * handlers on the context that was thread-default when http_server_new()
 * was called (herdd's main loop).
 *
 * Threads.  The server's thread runs a GMainContext of its own, where
 * libmicrohttpd works in "external epoll" mode: its epoll fd is watched
 * there and MHD_run() is called when it is ready.  Everything that is HTTP
 * plumbing happens on that thread: accepting, TLS handshakes and records,
 * reading requests and their bodies, the path checks, the route, the
 * credential check and its cache (api/credentials.h: only the stored hash
 * is looked up on the handlers' context), the answers that need no handler
 * (400, 401, 403, 404, 405, 413, 503), and writing every response.  A
 * request whose body is in is handed over, its connection suspended, to
 * the handlers' side (http_handoff.c), which runs one handler per iteration
 * of the handlers' loop; the answer comes back through a mailbox and the
 * server's thread resumes the connection to write it.  libmicrohttpd's own
 * polling thread would have done the I/O too, but then the credential
 * checker, the answers and a draining listener's teardown would each need
 * their own way onto that thread; a GMainContext gives them one.
 *
 * Who owns what.  The server's thread alone touches libmicrohttpd (except
 * for building responses, which is safe anywhere), the listeners, the
 * credential checker and the set of waiting connections; the handlers'
 * thread alone touches what handlers keep.  A request is shared: reference
 * counts say who holds it -- its connection, from on_uri() to
 * on_completed(); a credential check waiting on it; its handler, from the
 * hand-off to its answer (or to the server dropping it unhandled as it
 * stops); an answer on its way back -- and the last one frees it.  Its
 * fields come in three groups (http_priv.h): what handlers read, written by
 * the server's thread before the hand-off and read-only after; the server
 * thread's; the handlers'.  No field is written by both threads: mailboxes
 * (and thread start and join) are the only synchronisation.
 *
 * The public functions are called on the handlers' thread.  Listening,
 * stopping the TCP listeners and setting up authentication are carried out
 * on the server's thread while the caller waits: they are rare (start, a
 * new certificate), and the server's thread never waits for the handlers'.
 *
 * Stopping.  http_server_free() has the server's thread deliver the
 * answers handlers gave before (herdd frees its engine first: its last
 * answers go out), answer "The daemon is shutting down." to every request
 * that still waits -- for its credentials, for its handler or in it -- run
 * libmicrohttpd once to send that, and end.  Then, on the caller's thread,
 * the listeners stop and close their connections, the credential checker
 * stops, requests never handled are dropped, and those that handlers still
 * hold stay theirs: the answer, when it comes, goes nowhere and frees them.
 */
#define G_LOG_DOMAIN "api"
#include "api/http_priv.h"

#include "common/log.h"
#include "common/password.h"
#include "common/tcp_listen.h"

#include <errno.h>
#include <glib-unix.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Calls to the server's thread                                        */

typedef void (*server_call_fn)(http_server *srv, gpointer data);

typedef struct {
	server_call_fn fn;
	gpointer data;
	GMutex lock;
	GCond cond;
	bool done;
} server_call;

static void call_arrived(gpointer item, gpointer data)
{
	server_call *c = item;
	c->fn(data, c->data);
	g_mutex_lock(&c->lock);
	c->done = true;
	g_cond_signal(&c->cond);
	g_mutex_unlock(&c->lock);
}

/* Run @fn(@srv, @data) on the server's thread and wait for it. */
static void server_call_wait(http_server *srv, server_call_fn fn, gpointer data)
{
	server_call c = { .fn = fn, .data = data };
	g_mutex_init(&c.lock);
	g_cond_init(&c.cond);
	mailbox_post(srv->calls, &c);
	g_mutex_lock(&c.lock);
	while (!c.done)
		g_cond_wait(&c.cond, &c.lock);
	g_mutex_unlock(&c.lock);
	g_mutex_clear(&c.lock);
	g_cond_clear(&c.cond);
}

/* ------------------------------------------------------------------ */
/* libmicrohttpd on the server's context                               */

static void listener_run(http_listener *l);

static void source_clear(GSource **s)
{
	if (*s) {
		g_source_destroy(*s);
		g_source_unref(*s);
		*s = NULL;
	}
}

/* @s, calling @fn(@l), on the server's context. */
static GSource *listener_source(http_listener *l, GSource *s, GSourceFunc fn)
{
	g_source_set_callback(s, fn, l, NULL);
	g_source_attach(s, l->server->context);
	return s;
}

static gboolean on_timer(gpointer data)
{
	http_listener *l = data;
	source_clear(&l->timer);
	listener_run(l);
	return G_SOURCE_REMOVE;
}

static gboolean on_epoll(gint fd, GIOCondition cond, gpointer data)
{
	listener_run(data);
	return G_SOURCE_CONTINUE;
}

static gboolean on_idle(gpointer data)
{
	http_listener *l = data;
	source_clear(&l->idle);
	if (l->draining && l->live == 0)
		g_ptr_array_remove(l->server->listeners, l); /* frees l */
	else
		listener_run(l);
	return G_SOURCE_REMOVE;
}

void listener_wake(http_listener *l)
{
	if (!l->idle && !l->stopping)
		l->idle = listener_source(l, g_idle_source_new(), on_idle);
}

/* Let MHD do its work, then arm a timer for what it wants next. */
static void listener_run(http_listener *l)
{
	MHD_run(l->mhd);
	source_clear(&l->timer);
	MHD_UNSIGNED_LONG_LONG timeout_ms;
	if (MHD_get_timeout(l->mhd, &timeout_ms) == MHD_YES) {
		if (timeout_ms > 60000)
			timeout_ms = 60000;
		l->timer = listener_source(l, g_timeout_source_new((guint)timeout_ms), on_timer);
	}
}

/* ------------------------------------------------------------------ */
/* The connection's side of a request                                  */

/* Suspend @req's connection until it is answered or admitted (or its feed
 * has bytes); only in on_access() or a content reader, as libmicrohttpd
 * wants. */
void connection_wait(http_request *req)
{
	req->waiting = true;
	g_hash_table_add(req->listener->server->suspended, req);
	MHD_suspend_connection(req->conn);
}

void connection_resume(http_request *req)
{
	req->waiting = false;
	g_hash_table_remove(req->listener->server->suspended, req);
	MHD_resume_connection(req->conn);
	listener_wake(req->listener);
}

void connection_answer(http_request *req, unsigned status, struct MHD_Response *resp)
{
	if (!req->conn || req->responded) {
		/* The client is gone, or the server answered as it stopped. */
		MHD_destroy_response(resp);
		return;
	}
	req->responded = true;
	req->status = status;
	req->response = resp;
	if (req->listener->draining)
		MHD_add_response_header(resp, "Connection", "close");
	if (req->waiting)
		connection_resume(req);
}

static enum MHD_Result queue_prepared(http_request *req)
{
	enum MHD_Result rc = MHD_queue_response(req->conn, req->status, req->response);
	MHD_destroy_response(req->response);
	req->response = NULL;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Admission                                                           */

/* Answer @req's connection 503: the server stops. */
static void respond_shutting_down(http_request *req)
{
	g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, HERD_ERR_UNAVAILABLE,
						    "The daemon is shutting down.");
	unsigned status;
	struct MHD_Response *resp = response_for_error(err, &status);
	connection_answer(req, status, resp);
}

/* Answer @req with the authentication error @err (a challenge with 401).
 * Not to a page's own script (fetch, EventSource: a Sec-Fetch-Mode other
 * than navigate), which handles a 401 itself: the challenge would make the
 * browser ask for a password with its own dialog. */
static void respond_refused(http_request *req, const GError *err)
{
	http_respond_error(req, err);
	const char *mode = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Sec-Fetch-Mode");
	if (req->response && err->domain == HERD_ERROR && err->code == HERD_ERR_UNAUTHORIZED &&
	    (!mode || strcmp(mode, "navigate") == 0))
		MHD_add_response_header(req->response, "WWW-Authenticate", "Basic realm=\"herd\"");
}

bool http_same_origin(const char *site, const char *origin, const char *host)
{
	if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
		return false;
	if (!origin)
		return true;
	const char *rest = g_str_has_prefix(origin, "https://") ? origin + 8
			   : g_str_has_prefix(origin, "http://") ? origin + 7
								 : NULL;
	return rest && host && g_ascii_strcasecmp(rest, host) == 0;
}

/* A browser names the page a request comes from in Origin (and
 * Sec-Fetch-Site): a request without them comes from a program (the CLI,
 * curl, Prometheus); one with them must come from this server's pages. */
static bool same_origin(http_request *req)
{
	return http_same_origin(
		MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Sec-Fetch-Site"),
		MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Origin"),
		MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST));
}

/*
 * Who sends @req, for a route that is not public: local root, remembered
 * credentials, or -- the hash must be looked up, the password perhaps
 * checked -- wait suspended, before the body is read, for
 * on_credentials_checked().  A refusal is answered.
 */
static void authenticate(http_request *req)
{
	http_server *srv = req->listener->server;
	g_autoptr(GError) err = NULL;

	if (req->local_root) {
		req->user = g_strdup("root");
		return;
	}
	if (!srv->credentials) {
		g_set_error(&err, HERD_ERROR, HERD_ERR_UNAUTHORIZED, "This API needs authentication.");
		respond_refused(req, err);
		return;
	}
	const char *authorization = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
								MHD_HTTP_HEADER_AUTHORIZATION);
	bool safe = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	if (!safe && !same_origin(req)) {
		/* A browser that cached Basic credentials (after the challenge
		 * below) would send them with another site's form too. */
		g_set_error(&err, HERD_ERROR, HERD_ERR_FORBIDDEN,
			    "A change requested by another site's page is refused (its Origin is not this server).");
		respond_refused(req, err);
		return;
	}
	if (authorization && g_str_has_prefix(authorization, "Bearer "))
		req->by_token = true;
	g_autofree char *from_cookie = NULL;
	const char *cookie = authorization ? NULL
		: MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, HTTP_SESSION_COOKIE);
	if (cookie) {
		/* A browser sends the cookie with whatever another site's page
		 * makes it request: a change must also show the CSRF token,
		 * which only a page of this server got (at login). */
		g_autofree char *want = http_csrf_token(cookie);
		if (!safe && !herd_secret_equal(MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
									      HTTP_CSRF_HEADER), want)) {
			g_set_error(&err, HERD_ERROR, HERD_ERR_FORBIDDEN,
				    "A change sent with the session cookie needs the session's CSRF token "
				    "in the " HTTP_CSRF_HEADER " header (login gives it as csrf_token).");
			respond_refused(req, err);
			return;
		}
		req->by_cookie = req->by_token = true;
		req->csrf_token = g_steal_pointer(&want);
		authorization = from_cookie = g_strdup_printf("Bearer %s", cookie);
	}
	switch (http_credentials_check(srv->credentials, authorization, req->peer,
				       g_get_monotonic_time(), req, &req->user, &err)) {
	case HTTP_CREDENTIALS_ACCEPTED:
		break;
	case HTTP_CREDENTIALS_REFUSED:
		respond_refused(req, err);
		break;
	case HTTP_CREDENTIALS_PENDING:
		req->stage = REQ_AUTHENTICATING;
		request_ref(req); /* the check's */
		connection_wait(req);
		break;
	}
}

/*
 * The credential check of a request waiting in REQ_AUTHENTICATING is over:
 * on to its body with @user, or refused with @error (neither: the checker
 * stopped first).
 */
static void on_credentials_checked(gpointer waiter, const char *user, const GError *error)
{
	http_request *req = waiter;

	if (req->conn && !req->responded) {
		if (user) {
			req->user = g_strdup(user);
			connection_resume(req);
		} else if (error) {
			respond_refused(req, error);
		} else {
			respond_shutting_down(req);
		}
	}
	request_unref(req);
}

/*
 * The headers are in: decide what can be decided before reading any of the
 * body -- the path, the size the body announces, the route and the
 * credentials -- so that a request to be refused is refused before its
 * (up to HTTP_MAX_BODY_BYTES) body is read.
 */
static void admit(http_request *req)
{
	if (req->listener->server->stopping) {
		respond_shutting_down(req);
		return;
	}
	if (req->bad_path) {
		http_respond_errorf(req, HERD_ERR_INVALID, "%s", req->bad_path);
		return;
	}
	const char *length = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (req->listener->server->files_dir && files_wanted(req)) {
		files_answer(req);
		return;
	}
	if (!route_request(req))
		return;
	if (req->route->flags & HTTP_ROUTE_STREAM) {
		/* The handler judges the size (before the body is read). */
		if (!length) {
			http_respond_errorf(req, HERD_ERR_INVALID,
					    "This request needs its body's length (Content-Length).");
			return;
		}
		req->content_length = g_ascii_strtoull(length, NULL, 10);
	} else if (length && g_ascii_strtoull(length, NULL, 10) > HTTP_MAX_BODY_BYTES) {
		req->body_too_large = true;
		http_respond_errorf(req, HERD_ERR_TOO_LARGE,
				    "The request body is larger than %u bytes.", HTTP_MAX_BODY_BYTES);
		return;
	}
	if (!(req->route->flags & HTTP_ROUTE_PUBLIC))
		authenticate(req);
}

/* The whole body is in: over to the handlers, the connection waiting for
 * their answer. */
static void hand_over(http_request *req)
{
	if (req->body_too_large) {
		/* a body sent in chunks, without a length announced */
		http_respond_errorf(req, HERD_ERR_TOO_LARGE,
				    "The request body is larger than %u bytes.", HTTP_MAX_BODY_BYTES);
		return;
	}
	if (req->listener->server->stopping) {
		respond_shutting_down(req);
		return;
	}
	req->stage = REQ_DISPATCHED;
	request_copy_connection(req);
	connection_wait(req);
	handoff_post(req);
}

/* Admitted, for a streamed body: to the handlers before the body, which
 * comes once a handler takes it (http_request_stream_body()). */
static void offer(http_request *req)
{
	if (!(req->route->flags & HTTP_ROUTE_STREAM))
		return;
	if (req->listener->server->stopping) {
		respond_shutting_down(req);
		return;
	}
	req->stage = REQ_OFFERED;
	request_copy_connection(req);
	connection_wait(req);
	handoff_post(req);
}

/* ------------------------------------------------------------------ */
/* libmicrohttpd's callbacks                                           */

static int peer_uid_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return -1;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -1;
	return (int)cred.uid;
}

static char *peer_address_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char host[INET6_ADDRSTRLEN + 1] = "?";
	if (ci && ci->client_addr)
		getnameinfo(ci->client_addr,
			    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								   : sizeof(struct sockaddr_in),
			    host, sizeof(host), NULL, 0, NI_NUMERICHOST);
	/* An IPv4 client of the dual-stack socket is shown as IPv4. */
	if (g_str_has_prefix(host, "::ffff:") && strchr(host, '.'))
		return g_strdup(host + strlen("::ffff:"));
	return g_strdup(host);
}

/*
 * A request begins: libmicrohttpd passes its raw URI (before it decodes
 * anything) and keeps what this returns as the request's *con_cls.  Unlike
 * MHD_OPTION_UNESCAPE_CALLBACK, which is called alike for the path and each
 * query argument and cannot refuse anything, this sees the path as sent.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	http_listener *l = cls;
	http_request *req = request_new(l->server);
	req->listener = l;
	req->conn = conn;
	req->bad_path = uri ? path_problem(uri) : NULL;
	req->local_root = l->is_unix && peer_uid_of(conn) == 0;
	req->peer = l->is_unix ? g_strdup("unix") : peer_address_of(conn);
	l->live++;
	return req;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
				 const char *method, const char *version,
				 const char *upload_data, size_t *upload_data_size,
				 void **con_cls)
{
	http_request *req = *con_cls;

	switch (req->stage) {
	case REQ_STARTED:
		/* the headers are in: the first call */
		req->method = g_strdup(method);
		req->path = g_strdup(url);
		req->stage = REQ_RECEIVING;
		admit(req);
		if (!req->response && req->stage == REQ_RECEIVING)
			offer(req);
		break;
	case REQ_AUTHENTICATING:
		/* Resumed after the check, still before the body: libmicrohttpd
		 * repeats the first call.  Refused, or on to the body. */
		if (!req->response) {
			req->stage = REQ_RECEIVING;
			offer(req);
		}
		break;
	case REQ_OFFERED:
		/* resumed with the handler's answer, before the body */
		break;
	case REQ_STREAMING:
		if (req->response)
			break; /* answered meanwhile: the server stops */
		if (!req->stream_reading) {
			/* Resumed after the handler took the body: libmicrohttpd
			 * repeats the first call (no data yet); the body comes
			 * after it. */
			req->stream_reading = true;
			return MHD_YES;
		}
		if (*upload_data_size > 0) {
			if (!stream_push(req, upload_data, *upload_data_size)) {
				/* The same data comes again once resumed. */
				req->stream_paused = true;
				connection_wait(req);
				return MHD_YES;
			}
			*upload_data_size = 0;
			return MHD_YES;
		}
		/* the final call: all of the body came */
		stream_end(req, true);
		req->stage = REQ_DISPATCHED;
		connection_wait(req);
		break;
	case REQ_RECEIVING:
		if (*upload_data_size > 0) {
			if (req->body->len + *upload_data_size > HTTP_MAX_BODY_BYTES)
				req->body_too_large = true;
			else
				g_byte_array_append(req->body, (const guint8 *)upload_data,
						    (guint)*upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
		/* the final call: the whole body is in */
		hand_over(req);
		break;
	case REQ_DISPATCHED:
		/* resumed with the handler's answer */
		break;
	}
	if (req->response)
		return queue_prepared(req);
	/* Suspended, or on to the body: wait. */
	return MHD_YES;
}

/* The connection is done with @req; whoever else holds it (a credential
 * check, a handler) still may. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	http_request *req = *con_cls;
	if (!req)
		return;
	*con_cls = NULL;
	http_listener *l = req->listener;
	if (req->stage == REQ_STREAMING) {
		/* The client left, or was timed out, before all of its body came. */
		stream_end(req, false);
		req->stage = REQ_DISPATCHED;
	}
	g_hash_table_remove(l->server->suspended, req);
	req->waiting = false;
	req->conn = NULL;
	req->listener = NULL;
	if (--l->live == 0 && l->draining)
		listener_wake(l);
	request_unref(req);
}

/* libmicrohttpd hands us its own format strings. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	g_strchomp(msg);
	log_debug("libmicrohttpd: %s", msg);
}
#pragma GCC diagnostic pop

/* ------------------------------------------------------------------ */
/* Listeners                                                           */

typedef struct {
	http_listener *l;
	unsigned flags;
	const struct MHD_OptionItem *options;
	GError **error;
	bool ok;
} listener_start_args;

/* Start MHD for a->l with a->flags and the MHD_OPTION_END-terminated
 * a->options; on the server's thread. */
static void listener_start(http_server *srv, gpointer data)
{
	listener_start_args *a = data;
	http_listener *l = a->l;
	l->server = srv;
	l->mhd = MHD_start_daemon(a->flags | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
					  MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG,
				  0, NULL, NULL, on_access, l,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				  MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
				  MHD_OPTION_ARRAY, a->options,
				  MHD_OPTION_END);
	if (!l->mhd) {
		g_set_error(a->error, HERD_ERROR, HERD_ERR_IO, "Cannot start the HTTP server.");
		return;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	l->epoll_watch = listener_source(l, g_unix_fd_source_new(info->epoll_fd, G_IO_IN),
					 G_SOURCE_FUNC(on_epoll));
	g_ptr_array_add(srv->listeners, l);
	listener_run(l);
	a->ok = true;
}

/* Serve @l on the server's thread. */
static bool listener_add(http_server *srv, http_listener *l, unsigned flags,
			 const struct MHD_OptionItem *options, GError **error)
{
	listener_start_args a = { l, flags, options, error, false };
	server_call_wait(srv, listener_start, &a);
	return a.ok;
}

bool http_server_listen_unix(http_server *srv, const char *path, GError **error)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Socket path %s is too long.", path);
		return false;
	}
	strcpy(sa.sun_path, path);
	g_autofree char *dir = g_path_get_dirname(path);
	if (g_mkdir_with_parents(dir, 0755) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot create %s: %s.", dir,
			    g_strerror(errno));
		return false;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "socket: %s", g_strerror(errno));
		return false;
	}
	/* A socket file left by a daemon that died is replaced; a live one is not. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "Another daemon is already listening on %s.", path);
		return false;
	}
	unlink(path);
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 128) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot listen on %s: %s.", path,
			    g_strerror(errno));
		close(fd);
		return false;
	}
	http_listener *l = g_new0(http_listener, 1);
	l->is_unix = true;
	l->unix_path = g_strdup(path);
	const struct MHD_OptionItem options[] = {
		{ MHD_OPTION_LISTEN_SOCKET, fd, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};
	if (!listener_add(srv, l, 0, options, error)) {
		close(fd);
		unlink(path);
		g_free(l->unix_path);
		g_free(l);
		return false;
	}
	log_info("API listening on unix socket %s", path);
	return true;
}

bool http_server_listen_tcp(http_server *srv, const char *address, int port,
			    const char *cert_pem, const char *key_pem, GError **error)
{
	bool any = !address || !*address || strcmp(address, "*") == 0;
	int fd = herd_tcp_listen(address, port, 128, error);
	if (fd < 0)
		return false;

	http_listener *l = g_new0(http_listener, 1);
	bool tls = cert_pem && key_pem;
	const struct MHD_OptionItem options[] = {
		{ MHD_OPTION_LISTEN_SOCKET, fd, NULL },
		{ tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cert_pem },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem },
		{ MHD_OPTION_END, 0, NULL },
	};
	unsigned flags = (tls ? MHD_USE_TLS : 0);
	if (!listener_add(srv, l, flags, options, error)) {
		close(fd);
		g_free(l);
		return false;
	}
	log_info("API listening on %s port %d (%s)", any ? "all addresses" : address, port,
		 cert_pem ? "https" : "http");
	return true;
}

static void listener_free(http_listener *l)
{
	l->stopping = true;
	upgraded_shut_listener(l->server, l);
	source_clear(&l->epoll_watch);
	source_clear(&l->timer);
	source_clear(&l->idle);
	MHD_stop_daemon(l->mhd);
	if (l->unix_path)
		unlink(l->unix_path);
	g_free(l->unix_path);
	g_free(l);
}

/* On the server's thread. */
static void stop_tcp(http_server *srv, gpointer data)
{
	for (guint i = srv->listeners->len; i-- > 0;) {
		http_listener *l = srv->listeners->pdata[i];
		if (l->is_unix || l->draining)
			continue;
		MHD_socket fd = MHD_quiesce_daemon(l->mhd);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
		l->draining = true;
		/* Feeds never end by themselves: end those asleep on it. */
		GList *waiting = g_hash_table_get_keys(srv->suspended);
		for (GList *p = waiting; p; p = p->next) {
			http_request *req = p->data;
			if (req->feed && req->listener == l)
				feed_stop(req);
		}
		g_list_free(waiting);
		if (l->live == 0)
			g_ptr_array_remove_index(srv->listeners, i);
	}
}

/* The TCP listeners close their ports at once, so that new ones can take
 * them; requests under way on them are still answered, then they stop. */
void http_server_stop_tcp(http_server *srv)
{
	server_call_wait(srv, stop_tcp, NULL);
}

/* ------------------------------------------------------------------ */
/* The server                                                          */

static gpointer serve(gpointer data)
{
	http_server *srv = data;
	g_main_context_push_thread_default(srv->context);
	g_main_loop_run(srv->loop);
	g_main_context_pop_thread_default(srv->context);
	return NULL;
}

http_server *http_server_new(const http_route *routes, size_t n_routes, gpointer user_data)
{
	http_server *srv = g_new0(http_server, 1);
	srv->routes = routes;
	srv->n_routes = n_routes;
	srv->user_data = user_data;
	srv->handler_context = g_main_context_ref_thread_default();
	srv->context = g_main_context_new();
	srv->loop = g_main_loop_new(srv->context, FALSE);
	srv->calls = mailbox_new(srv->context, "HTTP server calls", 0, call_arrived, srv);
	srv->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)listener_free);
	srv->suspended = g_hash_table_new(g_direct_hash, g_direct_equal);
	upgraded_start(srv);
	srv->wakes = mailbox_new(srv->context, "HTTP feeds", 0, feed_wake, srv);
	handoff_start(srv);
	srv->thread = g_thread_new("herd-http", serve, srv);
	return srv;
}

typedef struct {
	http_password_hash_fn lookup;
	const http_credentials_config *config;
} set_auth_args;

/* On the server's thread, so that the checker's verdicts come there; the
 * hashes are looked up on the handlers' context, where the application's
 * data lives. */
static void set_auth(http_server *srv, gpointer data)
{
	set_auth_args *a = data;
	g_return_if_fail(!srv->credentials);
	srv->credentials = http_credentials_new(a->config, a->lookup, srv->user_data,
						srv->handler_context, on_credentials_checked);
}

void http_server_set_files(http_server *srv, const char *dir)
{
	/* Read by the server's thread only after a listener started, which
	 * goes through a mailbox. */
	g_free(srv->files_dir);
	srv->files_dir = dir && *dir ? g_strdup(dir) : NULL;
}

void http_server_set_authorize(http_server *srv, http_authorize_fn authorize)
{
	srv->authorize = authorize;
}

void http_server_set_auth(http_server *srv, http_password_hash_fn lookup,
			  const http_credentials_config *config)
{
	set_auth_args a = { lookup, config };
	server_call_wait(srv, set_auth, &a);
}

/*
 * On the server's thread, as it stops: the handlers' answers given so far
 * go out; what still waits is answered here, and from now on nothing may
 * wait (libmicrohttpd panics when it is stopped with a suspended
 * connection): a request that comes meanwhile is answered 503 too.  Once
 * libmicrohttpd has run to send that, the loop ends.
 */
static void stop_serving(http_server *srv, gpointer data)
{
	srv->stopping = true;
	handoff_flush_answers(srv);
	upgraded_shut_listener(srv, NULL);
	GList *waiting = g_hash_table_get_keys(srv->suspended);
	for (GList *p = waiting; p; p = p->next) {
		http_request *req = p->data;
		if (req->feed)
			feed_stop(req);
		else
			respond_shutting_down(req);
	}
	g_list_free(waiting);
	for (guint i = 0; i < srv->listeners->len; i++) {
		http_listener *l = srv->listeners->pdata[i];
		MHD_run(l->mhd);
	}
	g_main_loop_quit(srv->loop);
}

void http_server_free(http_server *srv)
{
	if (!srv)
		return;
	server_call_wait(srv, stop_serving, NULL);
	g_thread_join(srv->thread);
	/* The server's thread is gone: what was its own is this thread's. */
	g_ptr_array_free(srv->listeners, TRUE);
	/* after the listeners: what waited on a check was answered */
	http_credentials_free(srv->credentials);
	handoff_stop(srv);
	upgraded_stop(srv);
	/* Every feed's answer is gone with its connection: no more wakes. */
	gpointer feed;
	while ((feed = mailbox_take(srv->wakes)))
		feed_unref_item(feed);
	mailbox_free(srv->wakes);
	g_free(srv->files_dir);
	mailbox_free(srv->calls);
	g_hash_table_unref(srv->suspended);
	g_main_loop_unref(srv->loop);
	g_main_context_unref(srv->context);
	g_main_context_unref(srv->handler_context);
	g_free(srv);
}
