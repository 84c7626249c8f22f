/*
 * A streamed request body (HTTP_ROUTE_STREAM): from the server's thread,
 * chunk by chunk as libmicrohttpd reads them, through a queue to a thread
 * of the stream's own, which hands them to the handler's sink (a file on
 * a storage that may be slow, or hang: only this thread waits then).
 *
 * Memory is bounded: while more than HTTP_STREAM_QUEUE_BYTES wait in the
 * queue the connection is suspended (libmicrohttpd then reads nothing more
 * from the client), and the stream's thread resumes it once the queue is
 * down to a quarter of that.  The end of the body (or the connection's end
 * without it) goes through the same queue, so the sink sees every chunk
 * before it hears how the body ended; then the handler's done() answers
 * the request on the handlers' loop.
 *
 * Who touches what: the handler makes the stream (handlers' thread) and
 * has the server's thread begin it; from then on the server's thread
 * pushes chunks and the end marker, the stream's thread pops them, and
 * after the end marker nothing but the stream's thread (and then done())
 * touches the stream.  "Pause" is a handshake: the server's thread sets
 * want_resume before it looks at the queue's size once more, the stream's
 * thread clears it (exactly once) when it resumes the connection.
 */
#define G_LOG_DOMAIN "api"
#include "api/http_priv.h"

#include "common/log.h"

#define RESUME_BELOW_BYTES (HTTP_STREAM_QUEUE_BYTES / 4)

struct http_stream {
	http_request *req;            /* a reference, until done() ran */
	http_body_sink sink;
	gpointer user;
	GMainContext *server_context;
	GMainContext *handler_context;
	GAsyncQueue *chunks;          /* GBytes*, then one of the markers */
	gint queued;                  /* bytes in chunks */
	gint want_resume;             /* the connection waits for the queue to drain */
	guint64 received;             /* the server's thread's, read after the marker */
	GError *error;                /* the stream's thread's */
};

/* The end markers in the queue. */
static char body_complete, body_cut;

static void stream_free(http_stream *st)
{
	request_unref(st->req);
	g_main_context_unref(st->server_context);
	g_main_context_unref(st->handler_context);
	g_async_queue_unref(st->chunks);
	g_clear_error(&st->error);
	g_free(st);
}

/* Handlers' loop: the handler answers. */
static gboolean deliver_done(gpointer data)
{
	http_stream *st = data;
	st->sink.done(st->req, st->user, st->error);
	stream_free(st);
	return G_SOURCE_REMOVE;
}

static void invoke_on(GMainContext *context, GSourceFunc fn, gpointer data, GDestroyNotify notify)
{
	GSource *s = g_idle_source_new();
	g_source_set_callback(s, fn, data, notify);
	g_source_attach(s, context);
	g_source_unref(s);
}

/* Server's thread: the queue has drained; read on. */
static gboolean resume_reading(gpointer data)
{
	http_request *req = data;
	if (req->conn && req->stage == REQ_STREAMING && req->stream_paused && !req->responded) {
		req->stream_paused = false;
		connection_resume(req);
	}
	return G_SOURCE_REMOVE;
}

static gpointer stream_thread(gpointer data)
{
	http_stream *st = data;
	gpointer item;
	while ((item = g_async_queue_pop(st->chunks)) != &body_complete && item != &body_cut) {
		gsize len;
		const void *bytes = g_bytes_get_data(item, &len);
		/* After a failed write the rest is read and dropped: the client
		 * hears why once it has sent it all (or left). */
		if (!st->error)
			st->sink.write(st->user, bytes, len, &st->error);
		g_bytes_unref(item);
		gint left = g_atomic_int_add(&st->queued, -(gint)len) - (gint)len;
		if (left < (gint)RESUME_BELOW_BYTES && g_atomic_int_compare_and_exchange(&st->want_resume, 1, 0))
			invoke_on(st->server_context, resume_reading, request_ref(st->req),
				  (GDestroyNotify)request_unref);
	}
	bool complete = item == &body_complete && !st->error;
	if (item == &body_cut && !st->error)
		st->error = g_error_new(HERD_ERROR, HERD_ERR_INVALID,
					"The upload was cut off: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
					" bytes came.", st->received, st->req->content_length);
	GError *finish_error = NULL;
	if (!st->sink.finish(st->user, complete, &finish_error) && !st->error)
		st->error = finish_error;
	else
		g_clear_error(&finish_error);
	invoke_on(st->handler_context, deliver_done, st, NULL);
	return NULL;
}

/* Server's thread: the handler took the body; read it, or end at once if
 * the connection is gone. */
static gboolean stream_begin(gpointer data)
{
	http_stream *st = data;
	http_request *req = st->req;
	g_thread_unref(g_thread_new("herd-upload", stream_thread, st));
	if (!req->conn || req->responded || req->stage != REQ_OFFERED) {
		g_async_queue_push(st->chunks, &body_cut);
		return G_SOURCE_REMOVE;
	}
	req->stage = REQ_STREAMING;
	connection_resume(req);
	return G_SOURCE_REMOVE;
}

void http_request_stream_body(http_request *req, const http_body_sink *sink, gpointer user)
{
	g_return_if_fail(req->route->flags & HTTP_ROUTE_STREAM);
	g_return_if_fail(!req->stream && !req->answered);
	http_stream *st = g_new0(http_stream, 1);
	st->req = request_ref(req);
	st->sink = *sink;
	st->user = user;
	st->handler_context = g_main_context_ref_thread_default();
	st->chunks = g_async_queue_new();
	req->stream = st;
	http_request_suspend(req);
	if (!req->server) {
		/* The server stopped meanwhile: nothing will come. */
		st->server_context = g_main_context_ref(st->handler_context);
		st->error = g_error_new(HERD_ERROR, HERD_ERR_UNAVAILABLE, "The daemon is shutting down.");
		sink->finish(user, false, NULL);
		invoke_on(st->handler_context, deliver_done, st, NULL);
		return;
	}
	st->server_context = g_main_context_ref(req->server->context);
	invoke_on(st->server_context, stream_begin, st, NULL);
}

guint64 http_request_content_length(http_request *req)
{
	return req->content_length;
}

bool stream_push(http_request *req, const char *data, size_t len)
{
	http_stream *st = req->stream;
	if (g_atomic_int_get(&st->queued) >= (gint)HTTP_STREAM_QUEUE_BYTES) {
		g_atomic_int_set(&st->want_resume, 1);
		/* Drained meanwhile?  Then take the chunk after all -- unless the
		 * stream's thread saw want_resume already and resumes us. */
		if (g_atomic_int_get(&st->queued) >= (gint)HTTP_STREAM_QUEUE_BYTES ||
		    !g_atomic_int_compare_and_exchange(&st->want_resume, 1, 0))
			return false;
	}
	g_atomic_int_add(&st->queued, (gint)len);
	st->received += len;
	g_async_queue_push(st->chunks, g_bytes_new(data, len));
	return true;
}

void stream_end(http_request *req, bool complete)
{
	g_async_queue_push(req->stream->chunks, complete ? &body_complete : &body_cut);
}
