#define G_LOG_DOMAIN "api"
#include "api/http.h"

#include "common/log.h"

#include <errno.h>
#include <glib-unix.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct http_listener {
	http_server *server;
	struct MHD_Daemon *mhd;
	bool is_unix;
	char *unix_path;
	guint epoll_watch;
	guint timer;
	guint idle;
	unsigned live;             /* requests not yet completed */
	bool draining;             /* accepts no more; stops when live is 0 */
	bool stopping;
} http_listener;

struct http_server {
	const http_route *routes;
	size_t n_routes;
	gpointer user_data;
	http_credentials *credentials; /* NULL: only local root gets in */
	GPtrArray *listeners;      /* of http_listener* */
	GHashTable *suspended;     /* http_request* set */
};

/* Where a request is, as libmicrohttpd calls on_access() for it. */
typedef enum {
	REQ_STARTED,               /* the raw URI is in (on_uri) */
	REQ_AUTHENTICATING,        /* suspended before its body, credentials being checked */
	REQ_RECEIVING,             /* admitted: the body comes */
	REQ_DISPATCHED,            /* the handler has it */
} request_stage;

struct http_request {
	http_listener *listener;
	struct MHD_Connection *conn;
	request_stage stage;
	char *method;
	char *path;
	char *bad_path;            /* why the raw path is refused, or NULL */
	GByteArray *body;
	bool body_too_large;
	bool suspended;
	bool owner_holds;          /* suspended: the handler's code (or the
				    * credential check) will answer */
	bool answered;
	struct MHD_Response *response; /* prepared while suspended */
	unsigned status;
	const http_route *route;       /* once admitted */
	GHashTable *params;            /* name -> segment */
	int peer_uid;                  /* -1 unless unix socket */
	char *user;                    /* authenticated user */
	char *peer;                    /* client address */
};

static void listener_run(http_listener *l);

/* ------------------------------------------------------------------ */
/* Main loop integration                                               */

static gboolean on_timer(gpointer data)
{
	http_listener *l = data;
	l->timer = 0;
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
	l->idle = 0;
	if (l->draining && l->live == 0)
		g_ptr_array_remove(l->server->listeners, l); /* frees l */
	else
		listener_run(l);
	return G_SOURCE_REMOVE;
}

static void listener_wake(http_listener *l)
{
	if (!l->idle && !l->stopping)
		l->idle = g_idle_add(on_idle, l);
}

/* Let MHD do its work, then arm a timer for what it wants next. */
static void listener_run(http_listener *l)
{
	MHD_run(l->mhd);
	if (l->timer) {
		g_source_remove(l->timer);
		l->timer = 0;
	}
	MHD_UNSIGNED_LONG_LONG timeout_ms;
	if (MHD_get_timeout(l->mhd, &timeout_ms) == MHD_YES) {
		if (timeout_ms > 60000)
			timeout_ms = 60000;
		l->timer = g_timeout_add((guint)timeout_ms, on_timer, l);
	}
}

/* ------------------------------------------------------------------ */
/* Routing                                                             */

/*
 * Does @path match @pattern ("/api/v1/vms/{vm}")?  Segment by segment; a
 * {name} segment matches any non-empty one and goes into @params if given.
 * A trailing slash is tolerated: "/api/v1/vms/" is "/api/v1/vms".  Every
 * request tries the routes in turn, so this allocates nothing unless it
 * fills @params.
 */
static bool route_match(const char *pattern, const char *path, GHashTable *params)
{
	size_t plen = strlen(path);
	if (plen > 0 && path[plen - 1] == '/')
		plen--;
	const char *p = pattern, *s = path, *s_end = path + plen;
	for (;;) {
		const char *pe = strchrnul(p, '/');
		const char *se = memchr(s, '/', (size_t)(s_end - s));
		if (!se)
			se = s_end;
		size_t pn = (size_t)(pe - p), sn = (size_t)(se - s);
		if (pn > 2 && p[0] == '{' && p[pn - 1] == '}') {
			if (sn == 0)
				return false;
			if (params)
				g_hash_table_insert(params, g_strndup(p + 1, pn - 2), g_strndup(s, sn));
		} else if (pn != sn || memcmp(p, s, pn) != 0) {
			return false;
		}
		if (*pe == '\0' || se == s_end)
			return *pe == '\0' && se == s_end;
		p = pe + 1;
		s = se + 1;
	}
}

/*
 * Find the route of @req: req->route and its {params}, or false with the
 * request answered 404 or 405.  Decided before authentication, as it tells
 * only what the route table tells anyone.
 */
static bool route_request(http_request *req)
{
	http_server *srv = req->listener->server;
	g_autoptr(GString) allowed = NULL;

	for (size_t i = 0; i < srv->n_routes; i++) {
		const http_route *r = &srv->routes[i];
		if (!route_match(r->pattern, req->path, NULL))
			continue;
		if (strcmp(r->method, req->method) != 0) {
			if (!allowed)
				allowed = g_string_new(NULL);
			if (!strstr(allowed->str, r->method))
				g_string_append_printf(allowed, "%s%s", allowed->len ? ", " : "",
						       r->method);
			continue;
		}
		route_match(r->pattern, req->path, req->params);
		req->route = r;
		return true;
	}
	if (allowed) {
		http_respond_errorf(req, HERD_ERR_METHOD, "%s is not allowed on %s (allowed: %s).",
				    req->method, req->path, allowed->str);
		if (req->response)
			MHD_add_response_header(req->response, "Allow", allowed->str);
		return false;
	}
	http_respond_errorf(req, HERD_ERR_NOT_FOUND, "There is no API resource at %s.", req->path);
	return false;
}

/* Answer @req with the authentication error @err (a challenge with 401). */
static void respond_refused(http_request *req, const GError *err)
{
	http_respond_error(req, err);
	if (req->response && err->domain == HERD_ERROR && err->code == HERD_ERR_UNAUTHORIZED)
		MHD_add_response_header(req->response, "WWW-Authenticate", "Basic realm=\"herd\"");
}

/*
 * Who sends @req, for a route that is not public: local root, remembered
 * credentials, or -- the password must be checked -- wait suspended, before
 * the body is read, for on_credentials_checked().  A refusal is answered.
 */
static void authenticate(http_request *req)
{
	http_server *srv = req->listener->server;
	g_autoptr(GError) err = NULL;

	if (http_request_is_local_root(req)) {
		req->user = g_strdup("root");
		return;
	}
	if (!srv->credentials) {
		g_set_error(&err, HERD_ERROR, HERD_ERR_UNAUTHORIZED, "This API needs authentication.");
		respond_refused(req, err);
		return;
	}
	switch (http_credentials_check(srv->credentials, http_request_header(req, "Authorization"),
				       req->peer, g_get_monotonic_time(), req, &req->user, &err)) {
	case HTTP_CREDENTIALS_ACCEPTED:
		break;
	case HTTP_CREDENTIALS_REFUSED:
		respond_refused(req, err);
		break;
	case HTTP_CREDENTIALS_PENDING:
		req->stage = REQ_AUTHENTICATING;
		http_request_suspend(req);
		break;
	}
}

/*
 * The headers are in: decide what can be decided before reading any of the
 * body -- the path, the size the body announces, the route and the
 * credentials -- so that a request to be refused is refused before its
 * (up to HTTP_MAX_BODY_BYTES) body is read.
 */
static void admit(http_request *req)
{
	if (req->bad_path) {
		http_respond_errorf(req, HERD_ERR_INVALID, "%s", req->bad_path);
		return;
	}
	const char *length = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
							 MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length && g_ascii_strtoull(length, NULL, 10) > HTTP_MAX_BODY_BYTES) {
		req->body_too_large = true;
		http_respond_errorf(req, HERD_ERR_TOO_LARGE,
				    "The request body is larger than %u bytes.", HTTP_MAX_BODY_BYTES);
		return;
	}
	if (!route_request(req))
		return;
	if (!(req->route->flags & HTTP_ROUTE_PUBLIC))
		authenticate(req);
}

/* The whole body is in: run the route's handler. */
static void run_handler(http_request *req)
{
	http_server *srv = req->listener->server;

	if (req->body_too_large) {
		/* a body sent in chunks, without a length announced */
		http_respond_errorf(req, HERD_ERR_TOO_LARGE,
				    "The request body is larger than %u bytes.", HTTP_MAX_BODY_BYTES);
		return;
	}
	req->route->handler(req, srv->user_data);
	if (!req->answered && !req->suspended) {
		log_err("handler for %s %s returned without answering", req->method, req->path);
		http_respond_errorf(req, HERD_ERR_INTERNAL, "The request was not answered.");
	}
}

/* ------------------------------------------------------------------ */
/* MHD callbacks                                                       */

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

static enum MHD_Result queue_prepared(http_request *req)
{
	enum MHD_Result rc = MHD_queue_response(req->conn, req->status, req->response);
	MHD_destroy_response(req->response);
	req->response = NULL;
	return rc;
}

/*
 * Why the raw @uri's path cannot be served, or NULL.  libmicrohttpd decodes
 * the path into a C string before the access handler sees it: "%00" would
 * cut a segment short ("/vms/ca%00/xml" served as "/vms/ca") and "%2F"
 * would make one segment two.  Other escapes are decoded as usual ("%20");
 * "%252F" stays a name holding "%2F".
 */
static char *path_problem(const char *uri)
{
	size_t n = strcspn(uri, "?");
	for (size_t i = 0; i + 2 < n; i++) {
		if (uri[i] != '%')
			continue;
		if (uri[i + 1] == '0' && uri[i + 2] == '0')
			return g_strdup_printf("The path %.*s holds %%00, an encoded NUL byte, "
					       "which no name can contain.", (int)n, uri);
		if (uri[i + 1] == '2' && g_ascii_toupper(uri[i + 2]) == 'F')
			return g_strdup_printf("The path %.*s holds %%2F, an encoded '/', which no "
					       "name can contain; a plain '/' separates segments.",
					       (int)n, uri);
	}
	return NULL;
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
	http_request *req = g_new0(http_request, 1);
	req->listener = l;
	req->conn = conn;
	req->bad_path = uri ? path_problem(uri) : NULL;
	req->body = g_byte_array_new();
	req->params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	req->peer_uid = l->is_unix ? peer_uid_of(conn) : -1;
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
		break;
	case REQ_AUTHENTICATING:
		/* Resumed after the check, still before the body: libmicrohttpd
		 * repeats the first call.  Refused, or on to the body. */
		if (!req->response)
			req->stage = REQ_RECEIVING;
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
		req->stage = REQ_DISPATCHED;
		run_handler(req);
		break;
	case REQ_DISPATCHED:
		break;
	}
	if (req->response)
		return queue_prepared(req);
	/* Suspended, or on to the body: wait. */
	return MHD_YES;
}

static void request_free(http_request *req)
{
	if (req->response)
		MHD_destroy_response(req->response);
	g_byte_array_unref(req->body);
	g_hash_table_unref(req->params);
	g_free(req->method);
	g_free(req->path);
	g_free(req->bad_path);
	g_free(req->user);
	g_free(req->peer);
	g_free(req);
}

/* The connection is done with @req.  A request whose handler still holds it
 * (suspended, then answered by the server as it stopped, or its client
 * gone) lives on until that code answers: the answer then goes nowhere. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	http_request *req = *con_cls;
	if (!req)
		return;
	*con_cls = NULL;
	http_listener *l = req->listener;
	g_hash_table_remove(l->server->suspended, req);
	req->suspended = false;
	req->conn = NULL;
	req->listener = NULL;
	if (--l->live == 0 && l->draining)
		listener_wake(l);
	if (!req->owner_holds)
		request_free(req);
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
/* Responses                                                           */

/* The code that held @req lets go of it, after the server answered it (as
 * it stopped) or its connection went away. */
static void request_let_go(http_request *req)
{
	req->owner_holds = false;
	if (!req->conn)
		request_free(req);
}

/* Let libmicrohttpd go on with a suspended request. */
static void request_resume(http_request *req)
{
	req->suspended = false;
	g_hash_table_remove(req->listener->server->suspended, req);
	MHD_resume_connection(req->conn);
	listener_wake(req->listener);
}

static void respond(http_request *req, unsigned status, struct MHD_Response *resp)
{
	if (!req->conn || req->answered) {
		/* The server answered already (it stopped), or the client is gone. */
		g_warn_if_fail(req->owner_holds);
		MHD_destroy_response(resp);
		request_let_go(req);
		return;
	}
	req->owner_holds = false;
	req->answered = true;
	req->status = status;
	req->response = resp;
	if (req->listener->draining)
		MHD_add_response_header(resp, "Connection", "close");
	if (req->suspended)
		request_resume(req);
}

/*
 * The credential check of a request waiting in REQ_AUTHENTICATING is over:
 * on to its body with @user, or refused with @error (neither: the checker
 * stopped first).
 */
static void on_credentials_checked(gpointer waiter, const char *user, const GError *error)
{
	http_request *req = waiter;

	if (!req->conn || req->answered) {
		request_let_go(req);
		return;
	}
	if (user) {
		req->owner_holds = false;
		req->user = g_strdup(user);
		request_resume(req);
	} else if (error) {
		respond_refused(req, error);
	} else {
		http_respond_errorf(req, HERD_ERR_UNAVAILABLE, "The daemon is shutting down.");
	}
}

/* The server stops: answer a suspended request itself.  The code that
 * suspended it still holds it; its own answer later is dropped. */
static void respond_shutting_down(http_request *req)
{
	req->owner_holds = false;
	http_respond_errorf(req, HERD_ERR_UNAVAILABLE, "The daemon is shutting down.");
	req->owner_holds = true;
}

void http_respond_bytes(http_request *req, unsigned status, const char *content_type,
			const void *data, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	respond(req, status, resp);
}

/* Answer with @len bytes of JSON at @text, which @free_text frees. */
static void respond_json_bytes(http_request *req, unsigned status, char *text, size_t len,
			       MHD_ContentReaderFreeCallback free_text)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, text, free_text);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	respond(req, status, resp);
}

void http_respond_json(http_request *req, unsigned status, json_t *body)
{
	if (!body) {
		/* json_pack() gives NULL for text that is not UTF-8. */
		status = 500;
		body = json_pack("{s:{s:s,s:s}}", "error", "code", "internal", "message",
				 "The answer could not be encoded as JSON.");
	}
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	respond_json_bytes(req, status, text, strlen(text), free);
}

void http_respond_json_text(http_request *req, unsigned status, GString *text)
{
	gsize len = text->len;
	respond_json_bytes(req, status, g_string_free(text, FALSE), len, g_free);
}

void http_respond_error(http_request *req, const GError *err)
{
	herd_error_code code = err->domain == HERD_ERROR ? (herd_error_code)err->code
							 : HERD_ERR_INTERNAL;
	/* Messages quote user input (a path, a name): keep them valid UTF-8. */
	g_autofree char *message = g_utf8_make_valid(err->message, -1);
	json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", herd_error_name(code),
				 "message", message);
	http_respond_json(req, herd_error_http_status(code), body);
}

void http_respond_errorf(http_request *req, herd_error_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autoptr(GError) err = g_error_new_valist(HERD_ERROR, (gint)code, fmt, ap);
	va_end(ap);
	http_respond_error(req, err);
}

void http_request_suspend(http_request *req)
{
	g_return_if_fail(!req->answered);
	if (req->suspended)
		return; /* already waiting (a handler that waits in steps) */
	req->suspended = true;
	req->owner_holds = true;
	g_hash_table_add(req->listener->server->suspended, req);
	MHD_suspend_connection(req->conn);
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */

const char *http_request_method(http_request *req) { return req->method; }
const char *http_request_path(http_request *req) { return req->path; }

const char *http_request_param(http_request *req, const char *name)
{
	return g_hash_table_lookup(req->params, name);
}

const char *http_request_query(http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_request_header(http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_body(http_request *req, size_t *len)
{
	if (len)
		*len = req->body->len;
	return (const char *)req->body->data;
}

json_t *http_request_json(http_request *req, GError **error)
{
	json_error_t jerr;
	if (req->body->len == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The request needs a JSON object as its body.");
		return NULL;
	}
	json_t *root = json_loadb((const char *)req->body->data, req->body->len,
				  JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The request body is not valid JSON: %s (line %d, column %d).",
			    jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The request body must be a JSON object.");
		return NULL;
	}
	return root;
}

bool http_request_is_local_root(http_request *req)
{
	return req->listener->is_unix && req->peer_uid == 0;
}

const char *http_request_user(http_request *req)
{
	return req->user;
}

const char *http_request_peer(http_request *req)
{
	return req->peer;
}

void http_server_set_auth(http_server *srv, http_password_hash_fn lookup,
			  const http_credentials_config *config)
{
	g_return_if_fail(!srv->credentials);
	srv->credentials = http_credentials_new(config, lookup, srv->user_data, NULL,
						on_credentials_checked);
}

/* ------------------------------------------------------------------ */
/* Listeners                                                           */

/* Start MHD for @l with @flags and the MHD_OPTION_END-terminated @options. */
static bool listener_start(http_server *srv, http_listener *l, unsigned flags,
			   const struct MHD_OptionItem *options, GError **error)
{
	l->server = srv;
	l->mhd = MHD_start_daemon(flags | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
					  MHD_USE_ERROR_LOG,
				  0, NULL, NULL, on_access, l,
				  MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				  MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
				  MHD_OPTION_ARRAY, options,
				  MHD_OPTION_END);
	if (!l->mhd) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot start the HTTP server.");
		return false;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	l->epoll_watch = g_unix_fd_add(info->epoll_fd, G_IO_IN, on_epoll, l);
	g_ptr_array_add(srv->listeners, l);
	listener_run(l);
	return true;
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
	if (!listener_start(srv, l, 0, options, error)) {
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
	int fd = -1;
	bool any = !address || !*address || strcmp(address, "*") == 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST,
				  .ai_family = any ? AF_INET6 : AF_UNSPEC };
	struct addrinfo *res = NULL;
	g_autofree char *service = g_strdup_printf("%d", port);
	int gai = getaddrinfo(any ? NULL : address, service, &hints, &res);
	if (gai != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Cannot listen on '%s': %s.", address, gai_strerror(gai));
		return false;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, zero = 0;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (res->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
	}
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot listen on %s port %d: %s.",
			    any ? "all addresses" : address, port, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return false;
	}
	freeaddrinfo(res);

	http_listener *l = g_new0(http_listener, 1);
	bool tls = cert_pem && key_pem;
	const struct MHD_OptionItem options[] = {
		{ MHD_OPTION_LISTEN_SOCKET, fd, NULL },
		{ tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, (void *)cert_pem },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key_pem },
		{ MHD_OPTION_END, 0, NULL },
	};
	unsigned flags = (tls ? MHD_USE_TLS : 0);
	if (!listener_start(srv, l, flags, options, error)) {
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
	if (l->epoll_watch)
		g_source_remove(l->epoll_watch);
	if (l->timer)
		g_source_remove(l->timer);
	if (l->idle)
		g_source_remove(l->idle);
	MHD_stop_daemon(l->mhd);
	if (l->unix_path)
		unlink(l->unix_path);
	g_free(l->unix_path);
	g_free(l);
}

/* The TCP listeners close their ports at once, so that new ones can take
 * them; requests under way on them are still answered, then they stop. */
void http_server_stop_tcp(http_server *srv)
{
	for (guint i = srv->listeners->len; i-- > 0;) {
		http_listener *l = srv->listeners->pdata[i];
		if (l->is_unix || l->draining)
			continue;
		MHD_socket fd = MHD_quiesce_daemon(l->mhd);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
		l->draining = true;
		if (l->live == 0)
			g_ptr_array_remove_index(srv->listeners, i);
	}
}

http_server *http_server_new(const http_route *routes, size_t n_routes, gpointer user_data)
{
	http_server *srv = g_new0(http_server, 1);
	srv->routes = routes;
	srv->n_routes = n_routes;
	srv->user_data = user_data;
	srv->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)listener_free);
	srv->suspended = g_hash_table_new(g_direct_hash, g_direct_equal);
	return srv;
}

void http_server_free(http_server *srv)
{
	if (!srv)
		return;
	/* MHD cannot stop with suspended connections: answer them first. */
	GList *pending = g_hash_table_get_keys(srv->suspended);
	for (GList *p = pending; p; p = p->next)
		respond_shutting_down(p->data);
	g_list_free(pending);
	for (guint i = 0; i < srv->listeners->len; i++) {
		http_listener *l = srv->listeners->pdata[i];
		MHD_run(l->mhd);
	}
	g_ptr_array_free(srv->listeners, TRUE);
	/* after the listeners: what waited on a check was answered and is let go */
	http_credentials_free(srv->credentials);
	g_hash_table_unref(srv->suspended);
	g_free(srv);
}
