#define G_LOG_DOMAIN "api"
#include "api/common.h"

#include "common/error.h"

#include <arpa/inet.h>
#include <string.h>

json_t *api_body(http_request *req, const char *const *allowed, GError **error)
{
	json_t *body = http_request_json(req, error);
	if (!body)
		return NULL;
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		if (!g_strv_contains(allowed, key)) {
			g_autofree char *list = g_strjoinv(", ", (char **)allowed);
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Unknown field '%s' (known: %s).", key, list);
			json_decref(body);
			return NULL;
		}
	}
	return body;
}

store_state *api_state(api_ctx *a)
{
	return herd_cluster_state(a->cluster);
}

bool api_require_store(http_request *req, api_ctx *a)
{
	g_autoptr(GError) err = NULL;
	if (herd_cluster_store_check(a->cluster, &err))
		return true;
	http_respond_error(req, err);
	return false;
}

store_object *api_lookup(api_ctx *a, store_kind kind, const char *ref, GError **error)
{
	if (!herd_cluster_store_check(a->cluster, error))
		return NULL;
	store_object *o = store_state_lookup(api_state(a), kind, ref);
	if (!o) {
		g_autofree char *label = g_strdup(store_kind_label(kind));
		label[0] = g_ascii_toupper(label[0]);
		g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND, "%s '%s' is not defined.", label, ref);
	}
	return o;
}

store_object *api_lookup_param(http_request *req, api_ctx *a, store_kind kind, const char *param)
{
	g_autoptr(GError) err = NULL;
	store_object *o = api_lookup(a, kind, http_request_param(req, param), &err);
	if (!o)
		http_respond_error(req, err);
	return o;
}

typedef struct {
	http_request *req;
	api_ctx *a;
	unsigned status;
	api_render_fn render;
	json_t *answer;        /* or this, the same whatever the result (owned) */
	const char *check;     /* the CLI command that shows the change */
} commit_ctx;

/* The CLI command that shows what @cmd changes. */
static const char *check_command(json_t *cmd)
{
	json_t *ops = json_object_get(cmd, "ops");
	const char *kind = json_string_value(json_object_get(json_array_size(ops) ? json_array_get(ops, 0) : cmd,
							      "kind"));
	if (g_strcmp0(kind, "vm") == 0)
		return "vm list --all";
	if (g_strcmp0(kind, "node") == 0)
		return "node list";
	if (g_strcmp0(kind, "fence_device") == 0)
		return "fence-device list";
	if (g_strcmp0(kind, "cluster") == 0)
		return "cluster settings";
	if (g_strcmp0(kind, "rule") == 0)
		return "rule list";
	return "status";
}

static void on_committed(json_t *result, const GError *error, gpointer user)
{
	commit_ctx *c = user;
	if (error && g_error_matches(error, HERD_ERROR, HERD_ERR_IO)) {
		/* This node's store failed with the change under way (replica.h):
		 * the others may have applied it. */
		const char *peer = herd_cluster_peer_address(c->a->cluster);
		g_autofree char *where = peer ? g_strdup_printf("herd --host %s %s", peer, c->check)
					      : g_strdup_printf("herd %s on another node", c->check);
		g_autoptr(GError) told = g_error_new(HERD_ERROR, HERD_ERR_IO,
						     "%s Check with '%s' before you retry it.",
						     error->message, where);
		http_respond_error(c->req, told);
	} else if (error)
		http_respond_error(c->req, error);
	else
		http_respond_json(c->req, c->status,
				  c->answer ? json_incref(c->answer)
				  : c->render ? c->render(c->a, result) : json_incref(result));
	json_decref(c->answer);
	g_free(c);
}

void api_respond_list(http_request *req, api_ctx *a, store_kind kind, api_object_json_fn render)
{
	if (!api_require_store(req, a))
		return;
	g_autoptr(GPtrArray) all = store_state_list(api_state(a), kind);
	json_t *list = json_array();
	for (guint i = 0; i < all->len; i++)
		json_array_append_new(list, render(a, all->pdata[i]));
	http_respond_json(req, 200, list);
}

static void commit(http_request *req, api_ctx *a, json_t *cmd, unsigned status, api_render_fn render,
		   json_t *answer)
{
	g_autoptr(GError) err = NULL;
	commit_ctx *c = g_new0(commit_ctx, 1);
	c->req = req;
	c->a = a;
	c->status = status;
	c->render = render;
	c->answer = answer ? json_incref(answer) : NULL;
	c->check = check_command(cmd);
	if (!herd_cluster_submit(a->cluster, cmd, http_request_user(req), on_committed, c, &err)) {
		json_decref(c->answer);
		g_free(c);
		http_respond_error(req, err);
		return;
	}
	http_request_suspend(req);
}

void api_commit(http_request *req, api_ctx *a, json_t *cmd, unsigned status, api_render_fn render)
{
	commit(req, a, cmd, status, render, NULL);
}

void api_commit_answer(http_request *req, api_ctx *a, json_t *cmd, unsigned status, json_t *answer)
{
	commit(req, a, cmd, status, NULL, answer);
}

void api_answer(json_t *result, const GError *error, gpointer req)
{
	if (error)
		http_respond_error(req, error);
	else
		http_respond_json(req, 200, json_incref(result));
}

bool api_get_bool(json_t *body, const char *key, bool *out, GError **error)
{
	json_t *v = json_object_get(body, key);
	if (!v)
		return true;
	if (!json_is_boolean(v)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Field '%s' must be true or false.", key);
		return false;
	}
	*out = json_is_true(v);
	return true;
}

bool api_get_int(json_t *body, const char *key, long long min, long long max, long long *out,
		 GError **error)
{
	json_t *v = json_object_get(body, key);
	if (!v)
		return true;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field '%s' must be a whole number from %lld to %lld.", key, min, max);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

bool api_get_string(json_t *body, const char *key, const char **out, GError **error)
{
	json_t *v = json_object_get(body, key);
	if (!v)
		return true;
	if (!json_is_string(v)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Field '%s' must be a string.", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

bool api_valid_address(const char *addr)
{
	unsigned char buf[16];
	return addr && (inet_pton(AF_INET, addr, buf) == 1 || inet_pton(AF_INET6, addr, buf) == 1);
}

const char *api_request_owner(http_request *req)
{
	const char *user = http_request_user(req);
	return user ? user : "root";
}

bool api_valid_host(const char *h)
{
	if (!h || !*h || strlen(h) > 253)
		return false;
	if (api_valid_address(h))
		return true;
	for (const char *p = h; *p; p++)
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.')
			return false;
	return h[0] != '-' && h[0] != '.';
}

bool api_query_bool(http_request *req, const char *name, bool *out)
{
	const char *v = http_request_query(req, name);
	*out = v && strcmp(v, "true") == 0;
	if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Parameter '%s' is true or false, not '%s'.", name, v);
		return false;
	}
	return true;
}

json_t *api_ms_or_null(int64_t ms)
{
	return ms ? json_integer(ms) : json_null();
}
