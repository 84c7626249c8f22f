/*
 * A request: its references, what handlers read of it, and its answers.
 *
 * Handlers read only what the server's thread copied into the request
 * before handing it over (never the connection, which that thread may
 * close), so that a request stays readable for as long as its handler holds
 * it, the server stopped or not.  An answer is built as a libmicrohttpd
 * response wherever it is given (that is safe on any thread) and goes to
 * the connection: at once on the server's thread (the answers that need no
 * handler), through the hand-off from a handler.
 */
#define G_LOG_DOMAIN "api"
#include "api/http_priv.h"

#include <stdarg.h>
#include <string.h>

/* Header and query names are compared without regard to ASCII case, as
 * libmicrohttpd does. */
static guint ascii_case_hash(gconstpointer p)
{
	guint h = 5381;
	for (const char *s = p; *s; s++)
		h = h * 33 + (guint)g_ascii_tolower(*s);
	return h;
}

static gboolean ascii_case_equal(gconstpointer a, gconstpointer b)
{
	return g_ascii_strcasecmp(a, b) == 0;
}

static GHashTable *values_new(void)
{
	return g_hash_table_new_full(ascii_case_hash, ascii_case_equal, g_free, g_free);
}

http_request *request_new(http_server *srv)
{
	http_request *req = g_new0(http_request, 1);
	g_atomic_ref_count_init(&req->refs);
	req->server = srv;
	req->body = g_byte_array_new();
	req->params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	req->headers = values_new();
	req->query = values_new();
	return req;
}

http_request *request_ref(http_request *req)
{
	g_atomic_ref_count_inc(&req->refs);
	return req;
}

void request_unref(http_request *req)
{
	if (!g_atomic_ref_count_dec(&req->refs))
		return;
	if (req->response)
		MHD_destroy_response(req->response);
	if (req->answer)
		MHD_destroy_response(req->answer);
	g_byte_array_unref(req->body);
	g_hash_table_unref(req->params);
	g_hash_table_unref(req->headers);
	g_hash_table_unref(req->query);
	g_free(req->method);
	g_free(req->path);
	g_free(req->bad_path);
	g_free(req->user);
	g_free(req->peer);
	g_free(req->csrf_token);
	if (req->answer_headers)
		g_ptr_array_unref(req->answer_headers);
	upgrade_offer_free(req->upgrade);
	g_free(req);
}

/* The first value of each name, as MHD_lookup_connection_value() gives. */
static enum MHD_Result copy_value(void *table, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	if (!g_hash_table_contains(table, key))
		g_hash_table_insert(table, g_strdup(key), g_strdup(value));
	return MHD_YES;
}

void request_copy_connection(http_request *req)
{
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, copy_value, req->headers);
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, copy_value, req->query);
}

/* ------------------------------------------------------------------ */
/* What handlers read                                                  */

const char *http_request_method(http_request *req) { return req->method; }
const char *http_request_path(http_request *req) { return req->path; }

const char *http_request_param(http_request *req, const char *name)
{
	return g_hash_table_lookup(req->params, name);
}

const char *http_request_query(http_request *req, const char *name)
{
	return g_hash_table_lookup(req->query, name);
}

const char *http_request_header(http_request *req, const char *name)
{
	return g_hash_table_lookup(req->headers, name);
}

const char *http_request_body(http_request *req, size_t *len)
{
	if (len)
		*len = req->body->len;
	return (const char *)req->body->data;
}

json_t *http_request_json(http_request *req, GError **error)
{
	json_error_t jerr;
	if (req->body->len == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The request needs a JSON object as its body.");
		return NULL;
	}
	json_t *root = json_loadb((const char *)req->body->data, req->body->len,
				  JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The request body is not valid JSON: %s (line %d, column %d).",
			    jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The request body must be a JSON object.");
		return NULL;
	}
	return root;
}

bool http_request_is_local_root(http_request *req)
{
	return req->local_root;
}

const char *http_request_user(http_request *req)
{
	return req->user;
}

const char *http_request_peer(http_request *req)
{
	return req->peer;
}

const http_route *http_request_route(http_request *req)
{
	return req->route;
}

bool http_request_by_cookie(http_request *req)
{
	return req->by_cookie;
}

bool http_request_by_token(http_request *req)
{
	return req->by_token;
}

const char *http_request_csrf_token(http_request *req)
{
	return req->csrf_token;
}

void http_request_add_answer_header(http_request *req, const char *name, const char *value)
{
	if (!req->answer_headers)
		req->answer_headers = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(req->answer_headers, g_strdup(name));
	g_ptr_array_add(req->answer_headers, g_strdup(value));
}

/* ------------------------------------------------------------------ */
/* Answers                                                             */

void request_answer(http_request *req, unsigned status, struct MHD_Response *resp)
{
	/* A refusal or failure sets no cookie. */
	for (guint i = 0; status < 400 && req->answer_headers && i + 1 < req->answer_headers->len; i += 2)
		MHD_add_response_header(resp, req->answer_headers->pdata[i],
					req->answer_headers->pdata[i + 1]);
	if (req->handed_over)
		handoff_answer(req, status, resp);
	else
		connection_answer(req, status, resp);
}

void http_request_suspend(http_request *req)
{
	g_return_if_fail(req->handed_over);
	g_return_if_fail(!req->answered);
	/* Suspending a suspended request (a handler that waits in steps)
	 * changes nothing; its connection waits since the hand-off. */
	req->suspended = true;
}

void http_respond_bytes(http_request *req, unsigned status, const char *content_type,
			const void *data, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", content_type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	request_answer(req, status, resp);
}

void http_respond_upgrade(http_request *req, http_upgrade_fn fn, gpointer user, GDestroyNotify drop)
{
	request_answer(req, 101, upgrade_response(req, fn, user, drop));
}

/* A response of @len bytes of JSON at @text, which @free_text frees. */
static struct MHD_Response *json_bytes_response(char *text, size_t len,
						MHD_ContentReaderFreeCallback free_text)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, text, free_text);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	return resp;
}

/* A response of @body (reference stolen); *status becomes 500 if it is
 * NULL. */
static struct MHD_Response *json_response(json_t *body, unsigned *status)
{
	if (!body) {
		/* json_pack() gives NULL for text that is not UTF-8. */
		*status = 500;
		body = json_pack("{s:{s:s,s:s}}", "error", "code", "internal", "message",
				 "The answer could not be encoded as JSON.");
	}
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return json_bytes_response(text, strlen(text), free);
}

void http_respond_json(http_request *req, unsigned status, json_t *body)
{
	struct MHD_Response *resp = json_response(body, &status);
	request_answer(req, status, resp);
}

void http_respond_json_text(http_request *req, unsigned status, GString *text)
{
	gsize len = text->len;
	request_answer(req, status, json_bytes_response(g_string_free(text, FALSE), len, g_free));
}

struct MHD_Response *response_for_error(const GError *err, unsigned *status)
{
	herd_error_code code = err->domain == HERD_ERROR ? (herd_error_code)err->code
							 : HERD_ERR_INTERNAL;
	/* Messages quote user input (a path, a name): keep them valid UTF-8. */
	g_autofree char *message = g_utf8_make_valid(err->message, -1);
	json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", herd_error_name(code),
				 "message", message);
	*status = herd_error_http_status(code);
	return json_response(body, status);
}

void http_respond_error(http_request *req, const GError *err)
{
	unsigned status;
	struct MHD_Response *resp = response_for_error(err, &status);
	request_answer(req, status, resp);
}

void http_respond_errorf(http_request *req, herd_error_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autoptr(GError) err = g_error_new_valist(HERD_ERROR, (gint)code, fmt, ap);
	va_end(ap);
	http_respond_error(req, err);
}
