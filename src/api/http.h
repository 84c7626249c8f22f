/*
 * The API's HTTP layer: libmicrohttpd on a thread of the server's own,
 * route handlers on the caller's main loop.
 *
 * The server's thread does all that is HTTP: connections, TLS, reading
 * requests, routing, credentials, the answers that need no handler, and
 * writing responses.  Handlers run on the context that was thread-default
 * when http_server_new() was called (herdd's main loop), one per
 * iteration of it, so they may touch daemon state without locks and a
 * burst of requests never stalls the loop for long.  A handler answers at
 * once, or suspends the request and answers later (e.g. once a change has
 * been committed through corosync); either way it answers exactly once.
 * Every function here is called on that main loop's thread.
 *
 * A request is admitted when its headers are in, before its body is read:
 * path, announced size, route, then credentials (api/credentials.h: the
 * stored hash looked up on the main loop, the password checked on worker
 * threads, while the request waits).  A refused request is answered
 * without reading its body.
 */
#pragma once

#include "api/credentials.h"
#include "common/error.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef void (*http_handler_fn)(http_request *req, gpointer user_data);

enum {
	HTTP_ROUTE_PUBLIC = 1 << 0, /* served to anyone, no authentication */
	/* The body is streamed, not buffered: the handler runs once the
	 * headers are in and takes the body with http_request_stream_body()
	 * (or answers without reading it).  Any size; a Content-Length is
	 * required. */
	HTTP_ROUTE_STREAM = 1 << 1,
};

typedef struct {
	const char *method;   /* "GET", "POST", "PUT", "DELETE" */
	const char *pattern;  /* "/api/v1/vms/{vm}": {x} matches one segment */
	http_handler_fn handler;
	unsigned flags;
	/* The permission the route needs, as the application's authorizer
	 * (http_server_set_authorize()) reads it; 0 declares none, which an
	 * authorizer should refuse, so that no route is open by omission. */
	unsigned perm;
} http_route;

/*
 * Sessions: a client that logged in sends its token as "Authorization:
 * Bearer TOKEN" (scripts) or in this cookie (browsers).  A request that
 * changes something (not GET or HEAD) with the cookie must also carry the
 * token's CSRF token (http_csrf_token()) in the header, which another
 * site's page cannot read or set.
 */
#define HTTP_SESSION_COOKIE "herd_session"
#define HTTP_CSRF_HEADER "X-CSRF-Token"

/*
 * Before each handler of a route that is not public, on the handlers'
 * loop: may the request's user (http_request_user(), "root" for local
 * root) do what its route (http_request_route()) declares?  False with
 * @error (FORBIDDEN, in a whole sentence) refuses it; the handler does not
 * run.
 */
typedef bool (*http_authorize_fn)(http_request *req, gpointer user_data, GError **error);

/* Largest request body accepted; larger ones get 413. */
#define HTTP_MAX_BODY_BYTES (8u * 1024 * 1024)

/* A server over @routes (kept by reference; normally a static table). */
http_server *http_server_new(const http_route *routes, size_t n_routes, gpointer user_data);
/*
 * Let in, besides local root, clients with HTTP Basic credentials that
 * match the stored hash @lookup(user, server's user_data) gives, called
 * on the handlers' main loop; @config (may be NULL) tunes the checker.
 * Without this only local root is let in.  Once per server, before it
 * listens.
 */
void http_server_set_auth(http_server *srv, http_password_hash_fn lookup,
			  const http_credentials_config *config);

/* Check every authenticated request with @authorize (before listening). */
void http_server_set_authorize(http_server *srv, http_authorize_fn authorize);

/* Serve on a unix socket at @path (replacing a stale socket file). */
bool http_server_listen_unix(http_server *srv, const char *path, GError **error);

/*
 * Serve on TCP @port of @address ("" for all, IPv4 and IPv6).  With
 * @cert_pem and @key_pem set, the listener speaks HTTPS only.
 */
bool http_server_listen_tcp(http_server *srv, const char *address, int port,
			    const char *cert_pem, const char *key_pem, GError **error);

/*
 * Serve the files of @dir (the web UI's built assets; NULL: none) to GET
 * and HEAD requests for paths outside /api/ and /metrics, without
 * authentication, on the server's thread (http_files.c): "/" and paths
 * whose last segment has no extension (the UI's own routes) get
 * index.html.  Before listening.
 */
void http_server_set_files(http_server *srv, const char *dir);

/* Stop the TCP listeners (to restart them with a new certificate). */
void http_server_stop_tcp(http_server *srv);

/* Requests whose handler has not run yet: the handlers' loop's backlog.
 * Any thread. */
guint http_server_queued(http_server *srv);

/* Stop the server's thread and every listener; requests that wait (for
 * their credentials, for or in their handlers) are answered 503 first.
 * Requests handlers hold stay readable; their answers go nowhere. */
void http_server_free(http_server *srv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(http_server, http_server_free)

/* Request accessors: what the request said, valid until its handler
 * answers it (even if the server stopped or the client left meanwhile). */
const char *http_request_method(http_request *req);
const char *http_request_path(http_request *req);
/* The segment matched by {name} in the route pattern. */
const char *http_request_param(http_request *req, const char *name);
/* A query-string argument, or NULL. */
const char *http_request_query(http_request *req, const char *name);
/* A request header, or NULL. */
const char *http_request_header(http_request *req, const char *name);
const char *http_request_body(http_request *req, size_t *len);
/* The body parsed as a JSON object; NULL with an INVALID error otherwise. */
json_t *http_request_json(http_request *req, GError **error);
/* True for a client on the unix socket running as root. */
bool http_request_is_local_root(http_request *req);
/* The authenticated user ("root" for local root), or NULL on public routes. */
const char *http_request_user(http_request *req);
/* The client's address ("unix" on the socket). */
const char *http_request_peer(http_request *req);
/* The route the request matched. */
const http_route *http_request_route(http_request *req);
/* Did the request authenticate with the session cookie? */
bool http_request_by_cookie(http_request *req);
/* Authenticated by a session token (bearer or cookie), not a password. */
bool http_request_by_token(http_request *req);
/* The CSRF token a change sent with this request's session cookie needs,
 * or NULL if it did not come with the cookie. */
const char *http_request_csrf_token(http_request *req);
/* Add a header to the answer the handler is about to give (Set-Cookie), if
 * it is a success (status below 400). */
void http_request_add_answer_header(http_request *req, const char *name, const char *value);

/*
 * A streamed body (HTTP_ROUTE_STREAM) goes to a sink: chunks as they come,
 * in order, on a thread of the stream's own (so that a slow or hung disk
 * stalls only this upload), at most HTTP_STREAM_QUEUE_BYTES queued in
 * between -- the connection waits while the queue is full.
 */
#define HTTP_STREAM_QUEUE_BYTES (4u * 1024 * 1024)
typedef struct {
	/* The stream's thread: take @len bytes; false with @error to refuse
	 * the rest (it is read and dropped). */
	bool (*write)(gpointer user, const void *data, size_t len, GError **error);
	/* The stream's thread, once: the body is all in (@complete), or it
	 * was cut off; false with @error if what came cannot be kept.  (On
	 * the handlers' loop, not complete, if the server had stopped before
	 * the stream began.) */
	bool (*finish)(gpointer user, bool complete, GError **error);
	/* The handlers' loop, once, last: answer @req.  @error says why the
	 * body is not all there and kept (a write or finish error, or the
	 * client left, or sent less than it announced). */
	void (*done)(http_request *req, gpointer user, const GError *error);
} http_body_sink;

/* For a handler of a HTTP_ROUTE_STREAM route: take the body through @sink
 * with @user; the request is kept, and sink->done answers it. */
void http_request_stream_body(http_request *req, const http_body_sink *sink, gpointer user);
/* The body's announced length (a HTTP_ROUTE_STREAM request has one). */
guint64 http_request_content_length(http_request *req);

/*
 * A feed: an answer whose body the handler's side keeps writing for as
 * long as the client stays (server-sent events).  Bytes pushed wait in a
 * queue of at most @max_queued bytes; the connection sleeps (suspended)
 * while the queue is empty, so a quiet feed costs the server's thread
 * nothing.  A client too slow to take what comes is cut off, not buffered
 * without bound.
 */
typedef struct http_feed http_feed;
/* Answer @req 200 with a feed of @content_type; the caller gets a
 * reference (http_feed_unref()). */
http_feed *http_respond_feed(http_request *req, const char *content_type, size_t max_queued);
/* Queue @len bytes; any thread.  False (nothing queued) once the client
 * left, the feed was closed, or the queue would exceed its bound -- then
 * the feed is closed and its connection cut. */
bool http_feed_push(http_feed *f, const char *data, size_t len);
/* End the feed once what is queued is written. */
void http_feed_close(http_feed *f);
void http_feed_unref(http_feed *f);

/* Keep the request open after the handler returns; answer it later.
 * Suspending a suspended request changes nothing. */
void http_request_suspend(http_request *req);

/* Answer with @body (reference stolen), status @status. */
void http_respond_json(http_request *req, unsigned status, json_t *body);
/* Answer with JSON text (json_writer.h) @text, which it takes. */
void http_respond_json_text(http_request *req, unsigned status, GString *text);
/* Answer with the error's code and message as {"error":{…}}. */
void http_respond_error(http_request *req, const GError *err);
void http_respond_errorf(http_request *req, herd_error_code code, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);
/*
 * Protocol upgrade (the VM console's websocket): the handler answers 101
 * Switching Protocols with the headers it added (Upgrade,
 * Sec-WebSocket-Accept…), and once that is sent the connection is the
 * application's.  @fn gets, on the server's thread (it must not block),
 * a socket of its own (@fd, a duplicate of the connection's: it closes
 * it), the bytes the client sent after its request (@extra) and a handle
 * to give back with http_upgraded_close() when it is done.  The server
 * shuts the connection down when it stops (the application's socket sees
 * its end).  If the connection ends before it is upgraded, @drop(@user)
 * is called instead.
 */
typedef struct http_upgraded http_upgraded;
typedef void (*http_upgrade_fn)(http_upgraded *up, int fd, const void *extra, size_t extra_len,
				gpointer user);
void http_respond_upgrade(http_request *req, http_upgrade_fn fn, gpointer user, GDestroyNotify drop);
/* The application is done with @up (any thread, once): the server closes
 * the connection.  Every handle must be given back before
 * http_server_free(). */
void http_upgraded_close(http_upgraded *up);

/*
 * Does a request with these headers come from this server's own pages (or
 * from a program, which sends neither Origin nor Sec-Fetch-Site)?  A
 * browser names the page a request comes from; another site's page must
 * not change anything, nor open a console.
 */
bool http_same_origin(const char *fetch_site, const char *origin, const char *host);

/* Answer with raw bytes of @content_type. */
void http_respond_bytes(http_request *req, unsigned status, const char *content_type,
			const void *data, size_t len);
