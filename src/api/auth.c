/*
 * Who is calling: root on the local socket, or a cluster user over HTTPS
 * with HTTP Basic authentication against the replicated user list.
 * Repeated failures from one address are slowed down.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/log.h"
#include "common/password.h"
#include "store/user.h"

#include <string.h>

/* After this many failures within the window an address must wait. */
#define AUTH_MAX_FAILURES 5
#define AUTH_WINDOW_US (60 * G_USEC_PER_SEC)

typedef struct {
	unsigned failures;
	gint64 first_us;
} auth_failures;

static GHashTable *failures_by_peer; /* peer -> auth_failures* */

static bool too_many_failures(const char *peer, gint64 now)
{
	auth_failures *f = failures_by_peer ? g_hash_table_lookup(failures_by_peer, peer) : NULL;
	if (!f)
		return false;
	if (now - f->first_us > AUTH_WINDOW_US) {
		g_hash_table_remove(failures_by_peer, peer);
		return false;
	}
	return f->failures >= AUTH_MAX_FAILURES;
}

static void note_failure(const char *peer, gint64 now)
{
	if (!failures_by_peer)
		failures_by_peer = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	auth_failures *f = g_hash_table_lookup(failures_by_peer, peer);
	if (!f) {
		f = g_new0(auth_failures, 1);
		f->first_us = now;
		g_hash_table_insert(failures_by_peer, g_strdup(peer), f);
	}
	f->failures++;
	log_warn("failed login from %s (%u within a minute)", peer, f->failures);
}

char *api_authenticate(http_request *req, gpointer user_data, GError **error)
{
	herdd *d = user_data;
	const char *peer = http_request_peer(req);
	gint64 now = g_get_monotonic_time();
	const char *header = http_request_header(req, "Authorization");
	if (!header || g_ascii_strncasecmp(header, "Basic ", 6) != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "This API needs a user name and password (HTTP Basic authentication).");
		return NULL;
	}
	if (too_many_failures(peer, now)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "Too many failed logins from %s; wait a minute.", peer);
		return NULL;
	}
	gsize len = 0;
	g_autofree guchar *raw = g_base64_decode(header + 6, &len);
	g_autofree char *text = g_strndup((const char *)raw, len);
	char *colon = strchr(text, ':');
	store_state *st = herd_cluster_state(d->cluster);
	if (!store_state_cluster(st)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "This node is not part of a cluster and has no users; use its local socket.");
		return NULL;
	}
	store_object *user = colon ? store_state_get_by_name(st, STORE_KIND_USER,
							     (*colon = '\0', text))
				   : NULL;
	const char *hash = user ? store_user_of(user)->password_hash : NULL;
	if (!user || !herd_password_verify(colon + 1, hash)) {
		note_failure(peer, now);
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED, "Wrong user name or password.");
		return NULL;
	}
	return g_strdup(user->name);
}
