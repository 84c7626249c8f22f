/*
 * Whose password is what: the stored hash of a cluster user, asked by the
 * HTTP server's credential checker (api/credentials.c parses HTTP Basic,
 * checks passwords off the main loop, remembers and limits).  Root on the
 * local socket needs no password (api/http.c).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "store/user.h"

char *api_user_password_hash(const char *user, gpointer user_data, GError **error)
{
	api_ctx *a = user_data;
	store_state *st = api_state(a);
	if (!store_state_cluster(st)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "This node is not part of a cluster and has no users; use its local socket.");
		return NULL;
	}
	store_object *u = store_state_get_by_name(st, STORE_KIND_USER, user);
	return u ? g_strdup(store_user_of(u)->password_hash) : NULL;
}
