/*
 * Users: list, show, add, change (role, mail address), a new password, and
 * removal.  A password is hashed (yescrypt, tens of milliseconds) on a
 * worker thread, never on the main loop; a new password also makes a new
 * session key, which ends the user's sessions.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/permission.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "common/password.h"
#include "store/command.h"
#include "store/group.h"
#include "store/user.h"

#include <gio/gio.h>
#include <string.h>

json_t *api_user_json(api_ctx *a, store_object *o)
{
	store_state *st = api_state(a);
	const store_user *u = store_user_of(o);
	json_t *groups = json_array(), *roles = json_array();
	g_autoptr(GPtrArray) all = store_state_list(st, STORE_KIND_GROUP);
	for (guint i = 0; i < all->len; i++) {
		store_object *g = all->pdata[i];
		if (store_group_has_member(store_group_of(g), o->uuid))
			json_array_append_new(groups, json_string(g->name));
	}
	api_access ac;
	api_access_of(st, o, &ac);
	for (guint i = 0; i < ac.roles->len; i++)
		json_array_append_new(roles, json_string(ac.roles->pdata[i]));
	api_access_clear(&ac);
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:b}", "name", o->name, "uuid", o->uuid, "role",
			 u->role, "email", u->email, "groups", groups, "roles", roles, "has_password",
			 *u->password_hash != '\0');
}

void api_users_list(http_request *req, gpointer user_data)
{
	api_respond_list(req, user_data, STORE_KIND_USER, api_user_json);
}

void api_user_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *u = api_lookup_param(req, a, STORE_KIND_USER, "user");
	if (u)
		http_respond_json(req, 200, api_user_json(a, u));
}

static json_t *render_user(api_ctx *a, json_t *result)
{
	store_object *u = store_state_get(api_state(a), STORE_KIND_USER,
					  json_string_value(json_object_get(result, "uuid")));
	return u ? api_user_json(a, u) : json_incref(result);
}

/* The role and email of @body into @fields: false with an error naming the
 * field.  null (or "") clears either. */
static bool user_fields(json_t *body, json_t *fields, GError **error)
{
	json_t *role = json_object_get(body, "role"), *email = json_object_get(body, "email");
	if (role && !json_is_null(role) &&
	    (!json_is_string(role) || (*json_string_value(role) && !store_role_valid(json_string_value(role))))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field 'role' must be one of %s, or null for none.", STORE_ROLES);
		return false;
	}
	if (email && !json_is_null(email) &&
	    (!json_is_string(email) || (*json_string_value(email) && !store_email_valid(json_string_value(email))))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field 'email' must be a mail address (name@domain), or null for none.");
		return false;
	}
	if (role)
		json_object_set_new(fields, "role", json_string(json_is_string(role) ? json_string_value(role) : ""));
	if (email)
		json_object_set_new(fields, "email", json_string(json_is_string(email) ? json_string_value(email) : ""));
	return true;
}

/* A password to hash off the main loop, and what to submit with its hash. */
typedef struct {
	http_request *req;
	api_ctx *a;
	char *password;
	char *hash;
	json_t *cmd;          /* a create or patch whose data gets "password_hash" */
	unsigned status;
} hashing;

static void hashing_free(hashing *h)
{
	if (h->password) {
		explicit_bzero(h->password, strlen(h->password));
		g_free(h->password);
	}
	g_free(h->hash);
	json_decref(h->cmd);
	g_free(h);
}

static void hash_in_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	hashing *h = data;
	GError *err = NULL;
	h->hash = herd_password_hash(h->password, &err);
	if (h->hash)
		g_task_return_boolean(task, TRUE);
	else
		g_task_return_error(task, err);
}

static void hashed(GObject *source, GAsyncResult *res, gpointer data)
{
	hashing *h = g_task_get_task_data(G_TASK(res));
	g_autoptr(GError) err = NULL;
	if (!g_task_propagate_boolean(G_TASK(res), &err)) {
		http_respond_error(h->req, err);
		return;
	}
	json_t *d = json_object_get(h->cmd, "data");
	json_object_set_new(d, "password_hash", json_string(h->hash));
	api_commit(h->req, h->a, h->cmd, h->status, render_user);
}

/* Hash @password on a worker thread, then submit @cmd (taken) with it. */
static void submit_with_password(http_request *req, api_ctx *a, const char *password, json_t *cmd,
				 unsigned status)
{
	hashing *h = g_new0(hashing, 1);
	h->req = req;
	h->a = a;
	h->password = g_strdup(password);
	h->cmd = cmd;
	h->status = status;
	http_request_suspend(req);
	GTask *task = g_task_new(NULL, NULL, hashed, NULL);
	g_task_set_task_data(task, h, (GDestroyNotify)hashing_free);
	g_task_run_in_thread(task, hash_in_thread);
	g_object_unref(task);
}

void api_user_add(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "password", "role", "email", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = NULL, *password = NULL;
	g_autoptr(json_t) data = json_object();
	if (!body || !api_get_string(body, "name", &name, &err) ||
	    !api_get_string(body, "password", &password, &err) || !user_fields(body, data, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!name || !store_name_validate(STORE_KIND_USER, name, &err)) {
		if (!err)
			g_set_error(&err, HERD_ERROR, HERD_ERR_INVALID, "A user needs a name.");
		http_respond_error(req, err);
		return;
	}
	if (strcmp(name, "root") == 0 || strcmp(name, "herd") == 0) {
		/* The audit log's names for local root and for herdd itself. */
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "'%s' is reserved (the audit log's name for %s); choose another name.",
				    name, strcmp(name, "root") == 0 ? "root on a local socket" : "herdd itself");
		return;
	}
	if (!password || !*password) {
		http_respond_errorf(req, HERD_ERR_INVALID, "User '%s' needs a password.", name);
		return;
	}
	if (!api_require_store(req, a))
		return;
	if (store_state_get_by_name(api_state(a), STORE_KIND_USER, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "User '%s' exists already.", name);
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	g_autofree char *key = store_session_key_new();
	json_object_set_new(data, "session_key", json_string(key));
	if (!json_object_get(data, "role"))
		json_object_set_new(data, "role", json_string(""));
	submit_with_password(req, a, password, store_cmd_create(STORE_KIND_USER, uuid, name,
								 json_incref(data)), 201);
}

void api_user_set(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "role", "email", NULL };
	g_autoptr(GError) err = NULL;
	store_object *u = api_lookup(a, STORE_KIND_USER, http_request_param(req, "user"), &err);
	g_autoptr(json_t) body = u ? api_body(req, fields, &err) : NULL;
	json_t *data = json_object();
	if (!body || !user_fields(body, data, &err)) {
		json_decref(data);
		http_respond_error(req, err);
		return;
	}
	if (json_object_size(data) == 0) {
		json_decref(data);
		http_respond_errorf(req, HERD_ERR_INVALID, "Nothing to change: give role or email.");
		return;
	}
	g_autoptr(json_t) cmd = store_user_cmd_patch(u, data);
	api_commit(req, a, cmd, 200, render_user);
}

void api_user_password(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "password", NULL };
	g_autoptr(GError) err = NULL;
	store_object *u = api_lookup(a, STORE_KIND_USER, http_request_param(req, "user"), &err);
	g_autoptr(json_t) body = u ? api_body(req, fields, &err) : NULL;
	const char *password = NULL;
	if (!body || !api_get_string(body, "password", &password, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!password || !*password) {
		http_respond_errorf(req, HERD_ERR_INVALID, "The new password of '%s' is missing.", u->name);
		return;
	}
	/* A new password ends the user's sessions: a new key. */
	g_autofree char *key = store_session_key_new();
	submit_with_password(req, a, password,
			     store_user_cmd_patch(u, json_pack("{s:s}", "session_key", key)), 200);
}

void api_user_remove(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *u = api_lookup_param(req, a, STORE_KIND_USER, "user");
	if (!u)
		return;
	/* Out of its groups in the same change. */
	json_t *ops = json_array();
	g_autoptr(GPtrArray) groups = store_state_list(api_state(a), STORE_KIND_GROUP);
	for (guint i = 0; i < groups->len; i++) {
		store_object *g = groups->pdata[i];
		const store_group *sg = store_group_of(g);
		if (!store_group_has_member(sg, u->uuid))
			continue;
		json_t *members = json_array();
		for (const char *const *m = sg->members; *m; m++)
			if (strcmp(*m, u->uuid) != 0)
				json_array_append_new(members, json_string(*m));
		json_array_append_new(ops, store_group_cmd_patch(g, json_pack("{s:o}", "members", members)));
	}
	json_array_append_new(ops, store_cmd_delete(STORE_KIND_USER, u->uuid, u->version));
	g_autoptr(json_t) cmd = store_cmd_batch(ops);
	g_autoptr(json_t) answer = json_pack("{s:s,s:s}", "name", u->name, "uuid", u->uuid);
	api_commit_answer(req, a, cmd, 200, answer);
}
