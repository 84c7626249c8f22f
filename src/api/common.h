/*
 * Helpers shared by the API's resource files: strict request bodies,
 * object lookup with the error users read, and "commit, then answer".
 */
#pragma once

#include "api/context.h"
#include "api/http.h"
#include "store/state.h"

#include <jansson.h>
#include <stdbool.h>

/* The request's JSON body, with no field outside @allowed (NULL-terminated). */
json_t *api_body(http_request *req, const char *const *allowed, GError **error);

/*
 * Does this node answer from its store?  If not (it failed, or has not
 * caught up since: herd_cluster_store_check()), answer @req with why and
 * return false.  Every read of the configuration asks first: a store that
 * failed may lack changes the others made, or hold one that was lost.
 */
bool api_require_store(http_request *req, api_ctx *a);
/* Find a @kind object by name or UUID; NOT_FOUND error naming @ref
 * otherwise, or the store's failure (api_require_store()). */
store_object *api_lookup(api_ctx *a, store_kind kind, const char *ref, GError **error);
/* The @kind object that the request's path parameter @param names; NULL
 * after answering the request with api_lookup()'s NOT_FOUND error. */
store_object *api_lookup_param(http_request *req, api_ctx *a, store_kind kind, const char *param);
/* The store as this node has it. */
store_state *api_state(api_ctx *a);

/*
 * Submit @cmd as the request's user and answer the request with @status and
 * what @render makes of the result (the result itself if NULL) once it is
 * committed, or with the error.  The request is suspended meanwhile.  If
 * this node's store fails on the way, the change may have been applied by
 * the others: the error then says which command shows it on another node.
 */
typedef json_t *(*api_render_fn)(api_ctx *a, json_t *result);
void api_commit(http_request *req, api_ctx *a, json_t *cmd, unsigned status, api_render_fn render);
/* api_commit() answering with @answer (borrowed) once committed: what the
 * request did, known before it was submitted. */
void api_commit_answer(http_request *req, api_ctx *a, json_t *cmd, unsigned status, json_t *answer);
/* Answer @req with every @kind object (in the store's order) as @render
 * makes it, once the store answers (api_require_store()). */
typedef json_t *(*api_object_json_fn)(api_ctx *a, store_object *o);
void api_respond_list(http_request *req, api_ctx *a, store_kind kind, api_object_json_fn render);
/* Answer a suspended request with a formation's (or a commit's) outcome. */
void api_answer(json_t *result, const GError *error, gpointer req);



/* Optional typed fields of a body: false with an INVALID error naming the field. */
bool api_get_bool(json_t *body, const char *key, bool *out, GError **error);
bool api_get_int(json_t *body, const char *key, long long min, long long max, long long *out,
		 GError **error);
bool api_get_string(json_t *body, const char *key, const char **out, GError **error);

/* The query parameter @name as true or false (absent: false); false after
 * answering @req that it is neither. */
bool api_query_bool(http_request *req, const char *name, bool *out);
/* A time in ms, or JSON null for 0 (not yet, never). */
json_t *api_ms_or_null(int64_t ms);

/* A node list entry is a valid IPv4/IPv6 address. */
bool api_valid_address(const char *addr);
/* A host name (RFC 1123 letters, digits, '-' and '.') or an IP address. */
bool api_valid_host(const char *h);
/* Who asked, as jobs and records name their owner: the request's user,
 * "root" when there is none. */
const char *api_request_owner(http_request *req);
