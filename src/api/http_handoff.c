/*
 * The handlers' side of the HTTP server: requests whose bodies are in come
 * from the server's thread through a mailbox on the handlers' context,
 * which runs one handler per iteration -- a burst of a hundred requests is
 * a hundred short stretches of herdd's main loop, with corosync and the HA
 * engine served in between, never one long one.  A handler answers at once
 * or keeps the request (suspended) and answers later; the answer goes back
 * through a mailbox to the server's thread, which writes it.
 *
 * A request a handler holds carries a reference of the handler's, which
 * its answer gives up; the server stopping does not take it: the request
 * stays readable for its handler, and the answer, when it comes, goes
 * nowhere.
 */
#define G_LOG_DOMAIN "api"
#include "api/http_priv.h"

#include "common/log.h"

/* The handlers' context: run the next request's handler. */
static void handle(gpointer item, gpointer data)
{
	http_server *srv = data;
	http_request *req = item;

	req->handling = true;
	g_autoptr(GError) refused = NULL;
	if (srv->authorize && !(req->route->flags & HTTP_ROUTE_PUBLIC) &&
	    !srv->authorize(req, srv->user_data, &refused))
		http_respond_error(req, refused);
	else
		req->route->handler(req, srv->user_data);
	if (!req->answered && !req->suspended) {
		log_err("handler for %s %s returned without answering", req->method, req->path);
		http_respond_errorf(req, HERD_ERR_INTERNAL, "The request was not answered.");
	}
	req->handling = false;
	if (req->answered)
		request_unref(req);
	else
		g_hash_table_add(srv->held, req);
}

/* The server's thread: an answer is in. */
static void answer_arrived(gpointer item, gpointer data)
{
	http_request *req = item;
	connection_answer(req, req->answer_status, g_steal_pointer(&req->answer));
	request_unref(req);
}

void handoff_start(http_server *srv)
{
	srv->due = mailbox_new(srv->handler_context, "HTTP requests", 1, handle, srv);
	/* At idle priority: the loop's own sources (corosync, libvirt, timers)
	 * go first, and its idle work (herdd's HA engine) takes turns with a
	 * backlog of requests rather than waiting until it is gone. */
	mailbox_set_priority(srv->due, G_PRIORITY_DEFAULT_IDLE);
	srv->answers = mailbox_new(srv->context, "HTTP answers", 0, answer_arrived, srv);
	srv->held = g_hash_table_new(g_direct_hash, g_direct_equal);
}

void handoff_post(http_request *req)
{
	req->handed_over = true;
	mailbox_post(req->server->due, request_ref(req));
}

void handoff_answer(http_request *req, unsigned status, struct MHD_Response *resp)
{
	http_server *srv = req->server;

	if (req->answered) {
		g_warn_if_reached(); /* a second answer */
		MHD_destroy_response(resp);
		return;
	}
	req->answered = true;
	if (!srv) {
		/* The server stopped and answered it: this goes nowhere. */
		MHD_destroy_response(resp);
		if (!req->handling)
			request_unref(req);
		return;
	}
	req->answer_status = status;
	req->answer = resp;
	/* Answered in its handler, the request goes with a reference of its
	 * own (handle() gives up the handler's); later, with the handler's. */
	if (req->handling)
		request_ref(req);
	else
		g_hash_table_remove(srv->held, req);
	mailbox_post(srv->answers, req);
}

void handoff_flush_answers(http_server *srv)
{
	http_request *req;
	while ((req = mailbox_take(srv->answers)))
		answer_arrived(req, srv);
}

void handoff_stop(http_server *srv)
{
	http_request *req;
	/* Not handled: answered "shutting down" by the server's thread. */
	while ((req = mailbox_take(srv->due)))
		request_unref(req);
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, srv->held);
	while (g_hash_table_iter_next(&it, &key, NULL))
		((http_request *)key)->server = NULL;
	g_hash_table_unref(srv->held);
	srv->held = NULL;
	/* Posted after the server's thread last looked: none, as the
	 * handlers' thread is the one stopping it. */
	while ((req = mailbox_take(srv->answers))) {
		g_warn_if_reached();
		request_unref(req);
	}
	g_clear_pointer(&srv->due, mailbox_free);
	g_clear_pointer(&srv->answers, mailbox_free);
}

guint http_server_queued(http_server *srv)
{
	return mailbox_length(srv->due);
}
