/*
 * The route table, on the server's thread: which route a path is, with
 * its {params}, or the 404 or 405 that says it is none; and the raw paths
 * no route may see.
 */
#define G_LOG_DOMAIN "api"
#include "api/http_priv.h"

#include <string.h>

/*
 * Why the raw @uri's path cannot be served, or NULL.  libmicrohttpd decodes
 * the path into a C string before the access handler sees it: "%00" would
 * cut a segment short ("/vms/ca%00/xml" served as "/vms/ca") and "%2F"
 * would make one segment two.  Other escapes are decoded as usual ("%20");
 * "%252F" stays a name holding "%2F".
 */
char *path_problem(const char *uri)
{
	size_t n = strcspn(uri, "?");
	for (size_t i = 0; i + 2 < n; i++) {
		if (uri[i] != '%')
			continue;
		if (uri[i + 1] == '0' && uri[i + 2] == '0')
			return g_strdup_printf("The path %.*s holds %%00, an encoded NUL byte, "
					       "which no name can contain.", (int)n, uri);
		if (uri[i + 1] == '2' && g_ascii_toupper(uri[i + 2]) == 'F')
			return g_strdup_printf("The path %.*s holds %%2F, an encoded '/', which no "
					       "name can contain; a plain '/' separates segments.",
					       (int)n, uri);
	}
	return NULL;
}

/*
 * Does @path match @pattern ("/api/v1/vms/{vm}")?  Segment by segment; a
 * {name} segment matches any non-empty one and goes into @params if given.
 * A trailing slash is tolerated: "/api/v1/vms/" is "/api/v1/vms".  Every
 * request tries the routes in turn, so this allocates nothing unless it
 * fills @params.
 */
static bool route_match(const char *pattern, const char *path, GHashTable *params)
{
	size_t plen = strlen(path);
	if (plen > 0 && path[plen - 1] == '/')
		plen--;
	const char *p = pattern, *s = path, *s_end = path + plen;
	for (;;) {
		const char *pe = strchrnul(p, '/');
		const char *se = memchr(s, '/', (size_t)(s_end - s));
		if (!se)
			se = s_end;
		size_t pn = (size_t)(pe - p), sn = (size_t)(se - s);
		if (pn > 2 && p[0] == '{' && p[pn - 1] == '}') {
			if (sn == 0)
				return false;
			if (params)
				g_hash_table_insert(params, g_strndup(p + 1, pn - 2), g_strndup(s, sn));
		} else if (pn != sn || memcmp(p, s, pn) != 0) {
			return false;
		}
		if (*pe == '\0' || se == s_end)
			return *pe == '\0' && se == s_end;
		p = pe + 1;
		s = se + 1;
	}
}

/*
 * Find the route of @req: req->route and its {params}, or false with the
 * request answered 404 or 405.  Decided before authentication, as it tells
 * only what the route table tells anyone.
 */
bool route_request(http_request *req)
{
	http_server *srv = req->listener->server;
	g_autoptr(GString) allowed = NULL;

	for (size_t i = 0; i < srv->n_routes; i++) {
		const http_route *r = &srv->routes[i];
		if (!route_match(r->pattern, req->path, NULL))
			continue;
		if (strcmp(r->method, req->method) != 0) {
			if (!allowed)
				allowed = g_string_new(NULL);
			if (!strstr(allowed->str, r->method))
				g_string_append_printf(allowed, "%s%s", allowed->len ? ", " : "",
						       r->method);
			continue;
		}
		route_match(r->pattern, req->path, req->params);
		req->route = r;
		return true;
	}
	if (allowed) {
		http_respond_errorf(req, HERD_ERR_METHOD, "%s is not allowed on %s (allowed: %s).",
				    req->method, req->path, allowed->str);
		if (req->response)
			MHD_add_response_header(req->response, "Allow", allowed->str);
		return false;
	}
	http_respond_errorf(req, HERD_ERR_NOT_FOUND, "There is no API resource at %s.", req->path);
	return false;
}
