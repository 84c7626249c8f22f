/*
 * Helpers shared by the API's resource files: strict request bodies,
 * object lookup with the error users read, and "commit, then answer".
 */
#pragma once

#include "api/http.h"
#include "cluster/service.h"
#include "daemon/herdd.h"
#include "store/state.h"

#include <jansson.h>
#include <stdbool.h>

/* The request's JSON body, with no field outside @allowed (NULL-terminated). */
json_t *api_body(http_request *req, const char *const *allowed, GError **error);

/* Find a @kind object by name or UUID; NOT_FOUND error naming @ref otherwise. */
store_object *api_lookup(herdd *d, store_kind kind, const char *ref, GError **error);

/*
 * Submit @cmd as the request's user and answer the request with @status and
 * what @render makes of the result (the result itself if NULL) once it is
 * committed, or with the error.  The request is suspended meanwhile.
 */
typedef json_t *(*api_render_fn)(herdd *d, json_t *result);
void api_commit(http_request *req, herdd *d, json_t *cmd, unsigned status, api_render_fn render);

/* Optional typed fields of a body: false with an INVALID error naming the field. */
bool api_get_bool(json_t *body, const char *key, bool *out, GError **error);
bool api_get_int(json_t *body, const char *key, long long min, long long max, long long *out,
		 GError **error);
bool api_get_string(json_t *body, const char *key, const char **out, GError **error);

/* A node list entry is a valid IPv4/IPv6 address. */
bool api_valid_address(const char *addr);
