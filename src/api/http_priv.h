/*
 * The HTTP server's insides, shared by its files and by nothing else: the
 * server, a listener, a request, and each file's functions for the others.
 * Threads and who owns what: the comment at the top of http.c.  The files:
 *
 *   http.c          the server's thread, its listeners (libmicrohttpd on
 *                   that thread's context), libmicrohttpd's callbacks,
 *                   admission (path, size, route, credentials), stopping
 *   http_route.c    the route table: a path's route and {params}, 404, 405
 *   http_request.c  a request: its references, what handlers read of it,
 *                   and its answers, from whichever side gives them
 *   http_handoff.c  the handlers' side: requests run one per iteration of
 *                   the handlers' loop, their answers back to the server's
 *                   thread, and what handlers hold when the server stops
 *   http_upgrade.c  upgraded connections (the console's websocket): handed
 *                   to the application, shut when it is done or the server
 *                   stops
 *   http_files.c    the web UI's files, served on the server's thread
 *   http_feed.c     an answer that streams for as long as the client stays
 *                   (server-sent events): a bounded queue from the handlers'
 *                   side, the connection asleep while it is empty
 *   http_stream.c   a streamed body (HTTP_ROUTE_STREAM): the bounded queue
 *                   from the server's thread to the stream's own thread,
 *                   which feeds the handler's sink
 */
#pragma once

#include "api/http.h"
#include "common/mailbox.h"

#include <microhttpd.h>

/* The server's thread's, like everything it points to. */
typedef struct http_listener {
	http_server *server;
	struct MHD_Daemon *mhd;
	bool is_unix;
	char *unix_path;
	GSource *epoll_watch;
	GSource *timer;
	GSource *idle;
	unsigned live;             /* requests not yet completed */
	bool draining;             /* accepts no more; stops when live is 0 */
	bool stopping;
} http_listener;

struct http_server {
	/* Set at creation, read by both threads. */
	const http_route *routes;
	size_t n_routes;
	gpointer user_data;
	GMainContext *handler_context; /* where handlers run */
	http_authorize_fn authorize;   /* or NULL; the handlers' thread reads it */
	GMainContext *context;         /* the server's thread's */
	GMainLoop *loop;
	GThread *thread;
	mailbox *calls;                /* server_call*, to the server's thread */
	mailbox *due;                  /* http_request*, to the handlers, one per iteration */
	mailbox *answers;              /* http_request*, answered, back to the server's thread */
	mailbox *wakes;                /* http_feed*, bytes queued, to the server's thread */
	char *files_dir;               /* the web UI's files, or NULL; set before listening */

	/* The server's thread's. */
	http_credentials *credentials; /* NULL: only local root gets in */
	GPtrArray *listeners;          /* of http_listener* */
	GHashTable *suspended;         /* http_request* set: connections that wait */
	GHashTable *upgraded;          /* http_upgraded* set: handed to the application */
	mailbox *upgrade_closes;       /* http_upgraded*, given back by the application */
	bool stopping;                 /* nothing more may wait: libmicrohttpd stops */

	/* The handlers' thread's. */
	GHashTable *held;              /* http_request* set: kept by handlers for later */
};

/* Where a request is, as libmicrohttpd calls on_access() for it. */
typedef enum {
	REQ_STARTED,               /* the raw URI is in (on_uri) */
	REQ_AUTHENTICATING,        /* suspended before its body, credentials being checked */
	REQ_RECEIVING,             /* admitted: the body comes */
	REQ_OFFERED,               /* streamed body: the handler decides, before the body */
	REQ_STREAMING,             /* streamed body: it comes, to the handler's sink */
	REQ_DISPATCHED,            /* the handlers have it (a streamed body: all of it came) */
} request_stage;

typedef struct http_stream http_stream;
typedef struct http_upgrade_offer http_upgrade_offer;

struct http_request {
	/* The connection's, a credential check's, the handler's, an answer's
	 * on its way to the server's thread. */
	gatomicrefcount refs;

	/* What handlers read: written by the server's thread before the
	 * hand-off, read-only after. */
	bool handed_over;              /* to the handlers: answers go through them */
	const http_route *route;
	char *method;
	char *path;
	GHashTable *params;            /* name -> segment */
	GHashTable *headers;           /* name (any case) -> first value */
	GHashTable *query;             /* name (any case) -> first value or NULL */
	GByteArray *body;
	char *user;                    /* authenticated user */
	char *peer;                    /* client address */
	bool local_root;
	bool by_cookie;                /* authenticated by the session cookie */
	bool by_token;                 /* ... or by a session token (cookie or bearer) */
	char *csrf_token;              /* the cookie's CSRF token, if it came with the cookie */

	/* The server's thread's. */
	http_listener *listener;       /* NULL once the connection is done */
	struct MHD_Connection *conn;   /* NULL once the connection is done */
	request_stage stage;
	char *bad_path;                /* why the raw path is refused, or NULL */
	guint64 content_length;        /* announced (streamed bodies) */
	bool stream_reading;           /* past the first call's repeat: the body comes */
	bool stream_paused;            /* the connection waits for the stream's queue */
	bool body_too_large;
	bool waiting;                  /* the connection is suspended */
	bool responded;                /* a response is set for the connection */
	unsigned status;
	struct MHD_Response *response; /* to queue when libmicrohttpd calls again */

	/* The handlers' thread's. */
	http_server *server;           /* where answers go; NULL once it stopped */
	bool handling;                 /* its handler runs */
	bool suspended;                /* its handler keeps it, to answer later */
	bool answered;
	GPtrArray *answer_headers;     /* name, value, name, value…; or NULL */
	/* A 101 answer's: made by the handler, the server's thread's once
	 * the answer is posted; freed with the request. */
	http_upgrade_offer *upgrade;
	/* A streamed body's stream: made by the handler, then the server's
	 * thread's until the body is all in or cut off, then the stream's
	 * thread's. */
	http_stream *stream;
	/* The answer, on its way: written before it is posted to the server's
	 * thread, read there after. */
	unsigned answer_status;
	struct MHD_Response *answer;
	/* The feed its answer is (http_feed.c), while that answer exists: set
	 * by the handler before the answer goes, the server's thread's after. */
	http_feed *feed;
};

/* ---- http.c: the server's thread ---------------------------------------- */

/* Answer @req's connection with @resp (taken): now if libmicrohttpd is in
 * on_access() for it, else once it resumes.  A connection gone or already
 * answered (the server stopped) drops it. */
void connection_answer(http_request *req, unsigned status, struct MHD_Response *resp);
/* Let @req's suspended connection go on (in or out of on_access()). */
void connection_resume(http_request *req);
/* Have libmicrohttpd run on @l soon. */
void listener_wake(http_listener *l);
/* Suspend @req's connection; only in on_access() or a content reader. */
void connection_wait(http_request *req);

/* ---- http_route.c: the server's thread ---------------------------------- */

/* Why the raw @uri's path cannot be served, or NULL. */
char *path_problem(const char *uri);
/* Find the route of @req: req->route and its {params}, or false with the
 * request answered 404 or 405. */
bool route_request(http_request *req);

/* ---- http_request.c ------------------------------------------------------ */

/* A request of @srv on its connection's behalf (one reference). */
http_request *request_new(http_server *srv);
http_request *request_ref(http_request *req);
void request_unref(http_request *req);
/* Copy what handlers may read of the connection (headers, query); server's
 * thread, before the hand-off. */
void request_copy_connection(http_request *req);
/* Answer @req with @resp (taken): to the connection, or through the
 * handlers' side once they have it. */
void request_answer(http_request *req, unsigned status, struct MHD_Response *resp);
/* A JSON error answer for @err, and its status. */
struct MHD_Response *response_for_error(const GError *err, unsigned *status);

/* ---- http_stream.c: the server's thread ---------------------------------- */

/* Queue @len bytes of @req's streamed body; false if the queue is full
 * (nothing taken: the caller suspends the connection, and the stream
 * resumes it once the queue has drained). */
bool stream_push(http_request *req, const char *data, size_t len);
/* @req's body is all in (@complete), or the connection ended without it. */
void stream_end(http_request *req, bool complete);

/* ---- http_upgrade.c ----------------------------------------------------- */

/* The server's side of upgraded connections: its set and mailbox. */
void upgraded_start(http_server *srv);
/* Shut every upgraded connection of listener @l (NULL: of every listener);
 * the server's thread (or the caller's, once it is gone). */
void upgraded_shut_listener(http_server *srv, http_listener *l);
/* The server's thread is gone: handles the application still holds go
 * nowhere when given back.  Caller's thread. */
void upgraded_stop(http_server *srv);
/* A 101 response that hands @req's connection to @fn (http.h), once sent. */
struct MHD_Response *upgrade_response(http_request *req, http_upgrade_fn fn, gpointer user,
				      GDestroyNotify drop);
/* Free @offer, with its drop if the connection was never upgraded. */
void upgrade_offer_free(http_upgrade_offer *offer);

/* ---- http_files.c: the server's thread ----------------------------------- */

/* Is @req (method and path) for the web UI's files rather than the API? */
bool files_wanted(http_request *req);
/* Answer @req with the file it names (or index.html), or 400/404. */
void files_answer(http_request *req);

/* ---- http_feed.c --------------------------------------------------------- */

/* The server's thread: a feed has bytes for its sleeping connection. */
void feed_wake(gpointer item, gpointer data);
/* The server's thread, as it stops: end @req's feed and let its
 * connection go on to say so (libmicrohttpd cannot stop with it asleep). */
void feed_stop(http_request *req);
void feed_unref_item(gpointer feed);

/* ---- http_handoff.c ------------------------------------------------------ */

/* The handlers' side of @srv: its mailboxes.  Caller's thread. */
void handoff_start(http_server *srv);
/* Give @req, its body in and its connection suspended, to the handlers;
 * server's thread. */
void handoff_post(http_request *req);
/* A handler answers @req with @resp (taken); handlers' thread. */
void handoff_answer(http_request *req, unsigned status, struct MHD_Response *resp);
/* Deliver the answers waiting for the server's thread now (it stops). */
void handoff_flush_answers(http_server *srv);
/* The server's thread is gone: drop what never reached a handler, and
 * let handlers' later answers go nowhere.  Caller's thread. */
void handoff_stop(http_server *srv);
