/*
 * A feed: an answer whose body is written for as long as the client stays
 * (server-sent events, GET /api/v1/events).
 *
 * The handlers' side pushes bytes into a queue under the feed's lock;
 * libmicrohttpd, on the server's thread, pulls them through a content
 * reader.  When the queue is empty the reader suspends the connection (a
 * quiet feed costs no polling); a push that finds it asleep posts the feed
 * to the server's thread (srv->wakes), which resumes it.  Both suspend and
 * resume happen on the server's thread, so a wake can never overtake the
 * sleep it ends.
 *
 * Who holds what: the feed holds its request (for the connection); the
 * request points to the feed only while the feed's answer exists (the
 * answer's free callback clears it), so the two never keep each other
 * alive.  The answer holds a reference, the caller of http_respond_feed()
 * another, a wake on its way a third.  Once the answer is gone (the client
 * left, was cut off, or the server stopped) pushes return false.
 */
#define G_LOG_DOMAIN "api"
#include "api/http_priv.h"

#include <string.h>

struct http_feed {
	gatomicrefcount refs;
	http_server *server;    /* where wakes go; NULL if it had stopped */
	GMutex lock;
	/* Under the lock: */
	GString *queue;         /* bytes not written yet */
	size_t max_queued;
	bool closed;            /* no more bytes: end once the queue is written */
	bool gone;              /* the answer is gone: nobody reads */
	bool asleep;            /* the connection waits for bytes */
	/* The server's thread's once the answer is out: */
	http_request *req;      /* a reference */
};

static http_feed *feed_ref(http_feed *f)
{
	g_atomic_ref_count_inc(&f->refs);
	return f;
}

void http_feed_unref(http_feed *f)
{
	if (!f || !g_atomic_ref_count_dec(&f->refs))
		return;
	request_unref(f->req);
	g_string_free(f->queue, TRUE);
	g_mutex_clear(&f->lock);
	g_free(f);
}

void feed_unref_item(gpointer feed)
{
	http_feed_unref(feed);
}

/* libmicrohttpd wants bytes for the connection: what is queued, or the
 * end, or nothing yet -- then the connection sleeps until a push. */
static ssize_t feed_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	http_feed *f = cls;
	g_mutex_lock(&f->lock);
	if (f->queue->len > 0) {
		size_t n = MIN(max, f->queue->len);
		memcpy(buf, f->queue->str, n);
		g_string_erase(f->queue, 0, (gssize)n);
		g_mutex_unlock(&f->lock);
		return (ssize_t)n;
	}
	/* A listener that drains (a new certificate) or a server that stops
	 * must not keep the connection: libmicrohttpd cannot stop with it
	 * asleep.  The client reconnects to the new listener. */
	http_listener *l = f->req->listener;
	bool closed = f->closed || l->draining || l->server->stopping;
	f->asleep = !closed;
	g_mutex_unlock(&f->lock);
	if (closed)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	connection_wait(f->req);
	return 0;
}

/* The answer is gone (its connection ended, or it never reached one). */
static void feed_answer_freed(void *cls)
{
	http_feed *f = cls;
	f->req->feed = NULL;
	g_mutex_lock(&f->lock);
	f->gone = true;
	g_mutex_unlock(&f->lock);
	http_feed_unref(f);
}

void feed_wake(gpointer item, gpointer data)
{
	http_feed *f = item;
	if (f->req->conn && f->req->waiting && f->req->feed == f)
		connection_resume(f->req);
	http_feed_unref(f);
}

void feed_stop(http_request *req)
{
	http_feed *f = req->feed;
	g_mutex_lock(&f->lock);
	f->closed = true;
	f->asleep = false;
	g_mutex_unlock(&f->lock);
	connection_resume(req);
}

http_feed *http_respond_feed(http_request *req, const char *content_type, size_t max_queued)
{
	http_feed *f = g_new0(http_feed, 1);
	g_atomic_ref_count_init(&f->refs); /* the caller's */
	g_mutex_init(&f->lock);
	f->queue = g_string_new(NULL);
	f->max_queued = max_queued;
	f->server = req->server;
	f->req = request_ref(req);
	struct MHD_Response *resp = MHD_create_response_from_callback(
		MHD_SIZE_UNKNOWN, 16 * 1024, feed_read, feed_ref(f) /* the answer's */,
		feed_answer_freed);
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	req->feed = f;
	request_answer(req, 200, resp);
	return f;
}

/* Under the lock: is the connection asleep?  Then it is not any more. */
static bool take_asleep(http_feed *f)
{
	bool asleep = f->asleep;
	f->asleep = false;
	return asleep;
}

bool http_feed_push(http_feed *f, const char *data, size_t len)
{
	g_mutex_lock(&f->lock);
	if (f->gone || f->closed) {
		g_mutex_unlock(&f->lock);
		return false;
	}
	bool ok = f->queue->len + len <= f->max_queued;
	if (ok) {
		g_string_append_len(f->queue, data, (gssize)len);
	} else {
		/* Too slow: cut off (it reconnects and reloads what it shows). */
		g_string_truncate(f->queue, 0);
		f->closed = true;
	}
	bool wake = take_asleep(f) && f->server;
	g_mutex_unlock(&f->lock);
	if (wake)
		mailbox_post(f->server->wakes, feed_ref(f));
	return ok;
}

void http_feed_close(http_feed *f)
{
	g_mutex_lock(&f->lock);
	f->closed = true;
	bool wake = take_asleep(f) && f->server && !f->gone;
	g_mutex_unlock(&f->lock);
	if (wake)
		mailbox_post(f->server->wakes, feed_ref(f));
}
