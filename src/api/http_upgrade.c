/*
 * Upgraded connections (http.h: http_respond_upgrade()): the VM console's
 * websockets.  libmicrohttpd sends the 101 answer and then calls
 * on_upgraded() on the server's thread with the connection's socket (for
 * HTTPS, one end of a socket pair whose other end libmicrohttpd relays
 * through TLS).  The application gets a duplicate of that socket, so that
 * it never reads a descriptor libmicrohttpd has closed and reused; the
 * server keeps the original and the handle (http_upgraded) to close it.
 *
 * Closing: the application gives the handle back (http_upgraded_close(),
 * any thread) through a mailbox to the server's thread, which shuts the
 * socket down and tells libmicrohttpd it may close it.  When a listener
 * or the server stops first, the server shuts its connections down: the
 * application's socket sees the end, and its handle, when it comes back,
 * finds the connection closed already.  The handle is shared by the
 * server's set and the application; the last to let go frees it.  Once
 * the server is freed, a handle given back goes nowhere (up->srv is
 * cleared under the handle's lock).
 */
#define G_LOG_DOMAIN "api"
#include "api/http_priv.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

struct http_upgrade_offer {
	http_server *srv;
	http_upgrade_fn fn;
	gpointer user;
	GDestroyNotify drop;
	bool taken;                    /* on_upgraded() ran: the application has it */
};

struct http_upgraded {
	gatomicrefcount refs;          /* the server's set's, the application's */
	GMutex lock;                   /* guards srv */
	http_server *srv;              /* NULL once the server is gone */
	/* The server's thread's: */
	http_listener *listener;       /* NULL once shut */
	struct MHD_UpgradeResponseHandle *urh;
	int sock;                      /* libmicrohttpd's socket */
};

static void upgraded_unref(http_upgraded *up)
{
	if (!g_atomic_ref_count_dec(&up->refs))
		return;
	g_mutex_clear(&up->lock);
	g_free(up);
}

/* Shut @up's connection down and let libmicrohttpd close it. */
static void upgraded_shut(http_upgraded *up)
{
	if (!up->listener)
		return;
	shutdown(up->sock, SHUT_RDWR);
	MHD_upgrade_action(up->urh, MHD_UPGRADE_ACTION_CLOSE);
	listener_wake(up->listener);
	up->listener = NULL;
}

/* The server's thread: the application gave @up back. */
static void close_arrived(gpointer item, gpointer data)
{
	http_server *srv = data;
	http_upgraded *up = item;
	upgraded_shut(up);
	if (g_hash_table_steal(srv->upgraded, up))
		upgraded_unref(up); /* the set's */
	upgraded_unref(up);         /* the application's */
}

void upgraded_start(http_server *srv)
{
	srv->upgraded = g_hash_table_new(g_direct_hash, g_direct_equal);
	srv->upgrade_closes = mailbox_new(srv->context, "HTTP upgraded closes", 0, close_arrived, srv);
}

void upgraded_shut_listener(http_server *srv, http_listener *l)
{
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, srv->upgraded);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		http_upgraded *up = key;
		if (!l || up->listener == l)
			upgraded_shut(up);
	}
}

void upgraded_stop(http_server *srv)
{
	http_upgraded *up;
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, srv->upgraded);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		up = key;
		g_mutex_lock(&up->lock);
		up->srv = NULL;
		g_mutex_unlock(&up->lock);
	}
	/* Given back meanwhile: shut already (the listeners are gone). */
	while ((up = mailbox_take(srv->upgrade_closes))) {
		if (g_hash_table_steal(srv->upgraded, up))
			upgraded_unref(up);
		upgraded_unref(up);
	}
	g_hash_table_iter_init(&it, srv->upgraded);
	while (g_hash_table_iter_next(&it, &key, NULL))
		upgraded_unref(key);
	g_clear_pointer(&srv->upgraded, g_hash_table_unref);
	g_clear_pointer(&srv->upgrade_closes, mailbox_free);
}

void http_upgraded_close(http_upgraded *up)
{
	g_mutex_lock(&up->lock);
	if (up->srv) {
		/* The application's reference goes with the handle; this one
		 * keeps the lock alive until it is let go of. */
		g_atomic_ref_count_inc(&up->refs);
		mailbox_post(up->srv->upgrade_closes, up);
	}
	g_mutex_unlock(&up->lock);
	upgraded_unref(up);
}

/* The listener of libmicrohttpd's @daemon. */
static http_listener *listener_of(http_server *srv, struct MHD_Daemon *daemon)
{
	for (guint i = 0; i < srv->listeners->len; i++) {
		http_listener *l = srv->listeners->pdata[i];
		if (l->mhd == daemon)
			return l;
	}
	return NULL;
}

/* libmicrohttpd, on the server's thread: the 101 is sent. */
static void on_upgraded(void *cls, struct MHD_Connection *connection, void *con_cls,
			const char *extra_in, size_t extra_in_size, MHD_socket sock,
			struct MHD_UpgradeResponseHandle *urh)
{
	http_upgrade_offer *offer = cls;
	http_server *srv = offer->srv;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_DAEMON);
	http_upgraded *up = g_new0(http_upgraded, 1);
	g_atomic_ref_count_init(&up->refs);
	g_atomic_ref_count_inc(&up->refs);
	g_mutex_init(&up->lock);
	up->srv = srv;
	up->listener = ci ? listener_of(srv, ci->daemon) : NULL;
	up->urh = urh;
	up->sock = sock;
	g_hash_table_add(srv->upgraded, up);
	int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
	if (fd < 0 || !up->listener) {
		log_warn("cannot take over an upgraded connection: %s",
			 fd < 0 ? g_strerror(errno) : "its listener is unknown");
		if (fd >= 0)
			close(fd);
		if (!up->listener) {
			/* Not ours to shut through a listener: close it here. */
			shutdown(sock, SHUT_RDWR);
			MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		}
		upgraded_shut(up);
		g_hash_table_steal(srv->upgraded, up);
		upgraded_unref(up);
		upgraded_unref(up);
		return; /* the offer's drop runs with the request */
	}
	/* A console may be quiet for long (a screen that does not change):
	 * the application, not the HTTP timeout, decides when it ends. */
	MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)0);
	offer->taken = true;
	offer->fn(up, fd, extra_in, extra_in_size, offer->user);
}

struct MHD_Response *upgrade_response(http_request *req, http_upgrade_fn fn, gpointer user,
				      GDestroyNotify drop)
{
	http_upgrade_offer *offer = g_new0(http_upgrade_offer, 1);
	offer->srv = req->server;
	offer->fn = fn;
	offer->user = user;
	offer->drop = drop;
	g_warn_if_fail(!req->upgrade);
	upgrade_offer_free(req->upgrade);
	req->upgrade = offer;
	return MHD_create_response_for_upgrade(on_upgraded, offer);
}

void upgrade_offer_free(http_upgrade_offer *offer)
{
	if (!offer)
		return;
	if (!offer->taken && offer->drop)
		offer->drop(offer->user);
	g_free(offer);
}
