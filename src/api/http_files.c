/*
 * The web UI's files (ui/, built into the configured directory), served on
 * the server's thread beside the API: no handler, no authentication (the
 * files hold no data; the API they call is protected), so a browser gets
 * the login page from any node whatever its main loop is doing.
 *
 * A path is served only if every segment is a plain name (letters, digits,
 * '.', '-', '_', '~', not starting with '.'): no "..", no hidden file, no
 * escape of the directory; the last segment is opened without following a
 * symlink.  "/" and paths whose last segment has no extension are the UI's
 * own routes (/vms, /login): index.html, which the page's router reads.
 * Built assets carry their content's hash in their names (under assets/):
 * cached for a year; index.html is revalidated every time, so a new build
 * shows at the next load.
 */
#define G_LOG_DOMAIN "api"
#include "api/http_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* What the page may load and do: only this server's own scripts, styles,
 * images and API; no inline script, no framing by another site. */
#define FILES_CSP "default-src 'self'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; " \
	"frame-ancestors 'none'; form-action 'self'"

static const struct {
	const char *ext;
	const char *type;
} mime_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".mjs", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".json", "application/json" },
	{ ".map", "application/json" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".woff2", "font/woff2" },
	{ ".txt", "text/plain; charset=utf-8" },
};

static const char *mime_type_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < G_N_ELEMENTS(mime_types); i++)
		if (g_ascii_strcasecmp(dot, mime_types[i].ext) == 0)
			return mime_types[i].type;
	return "application/octet-stream";
}

bool files_wanted(http_request *req)
{
	const char *p = req->path;
	return (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
	       strcmp(p, "/api") != 0 && !g_str_has_prefix(p, "/api/") &&
	       strcmp(p, "/metrics") != 0;
}

/* Is every segment of @rel (the path without its leading '/') a plain
 * name?  An empty @rel is the root. */
static bool plain_path(const char *rel)
{
	if (!*rel)
		return true;
	g_auto(GStrv) segs = g_strsplit(rel, "/", -1);
	for (char **s = segs; *s; s++) {
		if (**s == '\0' || **s == '.')
			return false;
		for (const char *c = *s; *c; c++)
			if (!g_ascii_isalnum(*c) && !strchr("._-~", *c))
				return false;
	}
	return true;
}

void files_answer(http_request *req)
{
	const char *dir = req->listener->server->files_dir;
	const char *rel = req->path + 1;
	/* A trailing slash is the same page ("/vms/" is "/vms"). */
	g_autofree char *trimmed = g_strdup(rel);
	size_t len = strlen(trimmed);
	if (len > 0 && trimmed[len - 1] == '/')
		trimmed[len - 1] = '\0';
	if (!plain_path(trimmed)) {
		http_respond_errorf(req, HERD_ERR_INVALID,
			     "The path %s is not a file of the web UI: each segment must be a plain "
			     "name (no '..', no hidden file).", req->path);
		return;
	}
	const char *last = strrchr(trimmed, '/');
	last = last ? last + 1 : trimmed;
	const char *name = (!*trimmed || !strchr(last, '.')) ? "index.html" : trimmed;
	g_autofree char *file = g_build_filename(dir, name, NULL);
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = ENOENT;
	}
	if (fd < 0) {
		if (strcmp(name, "index.html") == 0)
			http_respond_errorf(req, HERD_ERR_NOT_FOUND,
				     "The web UI is not installed on this node (no index.html in %s).", dir);
		else
			http_respond_errorf(req, HERD_ERR_NOT_FOUND, "The web UI has no file %s.", req->path);
		return;
	}
	struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (!resp) {
		close(fd);
		http_respond_errorf(req, HERD_ERR_INTERNAL, "Cannot send %s.", req->path);
		return;
	}
	MHD_add_response_header(resp, "Content-Type", mime_type_of(name));
	MHD_add_response_header(resp, "Cache-Control",
				g_str_has_prefix(name, "assets/") ? "public, max-age=31536000, immutable"
								  : "no-cache");
	MHD_add_response_header(resp, "Content-Security-Policy", FILES_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	connection_answer(req, 200, resp);
}
