/*
 * Sessions: login (HTTP Basic, checked off the main loop like any request,
 * then a token: api/session_token.h), logout, who am I.  auth.c checks the
 * tokens.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/permission.h"
#include "api/routes.h"
#include "api/session_token.h"

#include "common/error.h"
#include "common/json.h"
#include "store/command.h"
#include "store/user.h"

/* The stored user of @req, or NULL after answering why there is none. */
static store_object *session_user(http_request *req, api_ctx *a)
{
	if (!api_require_store(req, a))
		return NULL;
	const char *name = http_request_user(req);
	store_object *u = store_state_get_by_name(api_state(a), STORE_KIND_USER, name);
	if (!u)
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "'%s' is no user of the cluster: root on the local socket needs no "
				    "session.", name);
	return u;
}

static void set_cookie(http_request *req, const char *token, long long max_age_s)
{
	g_autofree char *cookie = g_strdup_printf("%s=%s; Path=/; Max-Age=%lld; HttpOnly; Secure; "
						  "SameSite=Strict", HTTP_SESSION_COOKIE, token, max_age_s);
	http_request_add_answer_header(req, "Set-Cookie", cookie);
}

void api_login(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "ttl_s", NULL };
	g_autoptr(GError) err = NULL;
	size_t len = 0;
	http_request_body(req, &len);
	g_autoptr(json_t) body = len ? api_body(req, fields, &err) : json_object();
	long long ttl_s = SESSION_TTL_DEFAULT_S;
	if (!body || !api_get_int(body, "ttl_s", 60, SESSION_TTL_MAX_S, &ttl_s, &err)) {
		http_respond_error(req, err);
		return;
	}
	/* A session does not extend itself: a stolen token would never end. */
	if (http_request_by_token(req)) {
		http_respond_errorf(req, HERD_ERR_UNAUTHORIZED,
				    "Login needs the user's password (HTTP Basic): a session cannot extend itself.");
		return;
	}
	store_object *u = session_user(req, a);
	if (!u)
		return;
	const store_user *su = store_user_of(u);
	/* The first login makes the user's session key. */
	g_autofree char *key = *su->session_key ? g_strdup(su->session_key) : store_session_key_new();
	gint64 expires_s = g_get_real_time() / G_USEC_PER_SEC + ttl_s;
	g_autofree char *token = session_token_make(u->name, key, expires_s);
	g_autofree char *csrf = http_csrf_token(token);
	g_autoptr(json_t) answer = json_pack("{s:s,s:s,s:I,s:s}", "user", u->name, "token", token,
					     "expires_s", (json_int_t)expires_s, "csrf_token", csrf);
	set_cookie(req, token, ttl_s);
	if (*su->session_key) {
		http_respond_json(req, 200, json_incref(answer));
		return;
	}
	json_t *cmd = store_user_cmd_patch(u, json_pack("{s:s}", "session_key", key));
	store_cmd_if_version(cmd, u->version);
	api_commit_answer(req, a, cmd, 200, answer);
	json_decref(cmd);
}

void api_logout(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *u = session_user(req, a);
	if (!u)
		return;
	/* A new key ends every session of the user, on every node. */
	g_autofree char *key = store_session_key_new();
	g_autoptr(json_t) answer = json_pack("{s:s,s:b}", "user", u->name, "sessions_ended", 1);
	set_cookie(req, "", 0);
	json_t *cmd = store_user_cmd_patch(u, json_pack("{s:s}", "session_key", key));
	api_commit_answer(req, a, cmd, 200, answer);
	json_decref(cmd);
}

void api_session_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (http_request_is_local_root(req)) {
		http_respond_json(req, 200, json_pack("{s:s,s:[s],s:b,s:s}", "user", "root", "roles",
						      "admin", "admin", 1, "by", "local root"));
		return;
	}
	if (api_setup_user(http_request_user(req))) {
		/* A blank node's page with its setup code (cluster_setup.c). */
		http_respond_json(req, 200, json_pack("{s:s,s:[],s:b,s:b}", "user", API_SETUP_USER,
						      "roles", "admin", 0, "setup", 1));
		return;
	}
	store_object *u = session_user(req, a);
	if (!u)
		return;
	api_access ac;
	api_access_of(api_state(a), u, &ac);
	json_t *roles = json_array(), *pools = json_array();
	for (guint i = 0; i < ac.roles->len; i++)
		json_array_append_new(roles, json_string(ac.roles->pdata[i]));
	for (guint i = 0; i < ac.pools->len; i++)
		json_array_append_new(pools, json_string(ac.pools->pdata[i]));
	const char *by = http_request_by_cookie(req) ? "cookie"
		: g_str_has_prefix(http_request_header(req, "Authorization") ?: "", "Bearer ") ? "token"
											       : "password";
	json_t *answer = json_pack("{s:s,s:o,s:o,s:b,s:b,s:s}", "user", u->name, "roles", roles,
				   "pools", pools, "admin", ac.admin, "operate_all", ac.operate_all,
				   "by", by);
	/* A page loaded again has the cookie but not the token its changes
	 * need (login gave it to the page before). */
	if (http_request_csrf_token(req))
		json_object_set_new(answer, "csrf_token", json_string(http_request_csrf_token(req)));
	http_respond_json(req, 200, answer);
	api_access_clear(&ac);
}
