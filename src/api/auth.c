/*
 * Whose password or session is what: the stored hash of a cluster user,
 * and the user of a session token, asked by the HTTP server's credential
 * checker (api/credentials.c parses HTTP Basic, checks passwords off the
 * main loop, remembers and limits).  Root on the local socket needs no
 * password (api/http.c).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"
#include "api/session_token.h"

#include "common/error.h"
#include "store/user.h"

/* The store, or NULL with why no user can get in. */
static store_state *users_state(api_ctx *a, GError **error)
{
	store_state *st = api_state(a);
	if (!store_state_cluster(st)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "This node is not part of a cluster and has no users: give its setup code "
			    "('herd cluster setup-code' on the node), or use its local socket.");
		return NULL;
	}
	return st;
}

char *api_user_password_hash(const char *user, gpointer user_data, GError **error)
{
	/* A blank node's setup code (cluster_setup.c); none on a member,
	 * where no stored user has this name. */
	char *setup = api_setup_user(user) ? api_setup_code_hash(user_data, NULL) : NULL;
	if (setup)
		return setup;
	store_state *st = users_state(user_data, error);
	if (!st)
		return NULL;
	store_object *u = store_state_get_by_name(st, STORE_KIND_USER, user);
	return u ? g_strdup(store_user_of(u)->password_hash) : NULL;
}

char *api_session_user(const char *token, gpointer user_data, GError **error)
{
	store_state *st = users_state(user_data, error);
	if (!st)
		return NULL;
	g_autofree char *name = session_token_user(token);
	if (!name) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED, "The session token is malformed.");
		return NULL;
	}
	store_object *u = store_state_get_by_name(st, STORE_KIND_USER, name);
	if (!u) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "The session of '%s' has ended: there is no such user (any more).", name);
		return NULL;
	}
	if (!session_token_check(token, store_user_of(u)->session_key,
				 g_get_real_time() / G_USEC_PER_SEC, error))
		return NULL;
	return g_steal_pointer(&name);
}

const char *api_password_refusal(const char *user)
{
	return api_setup_user(user)
		       ? "Wrong setup code: 'herd cluster setup-code' on the node shows the right one."
		       : NULL;
}
