#include "common/client.h"

#include "common/fileutil.h"
#include "herd-config.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

struct herd_client {
	CURL *curl;
	char *base_url;
	char *target;
	herd_client_options opts;
	char *ca_copy;   /* opts.ca_pem in a file of our own, for a libcurl
			  * without CURLOPT_CAINFO_BLOB (GnuTLS's, 7.88); NULL
			  * until needed; removed with the client */
};

/* "n1" -> "n1:8001", "10.0.0.1:9000" stays, "fe80::1" -> "[fe80::1]:8001". */
static char *host_with_port(const char *host)
{
	const char *first = strchr(host, ':');
	if (host[0] == '[')
		return strstr(host, "]:") ? g_strdup(host) : g_strdup_printf("%s:8001", host);
	if (!first)
		return g_strdup_printf("%s:8001", host);
	if (first == strrchr(host, ':'))
		return g_strdup(host);
	return g_strdup_printf("[%s]:8001", host);
}

herd_client *herd_client_new(const herd_client_options *opts)
{
	herd_client *c = g_new0(herd_client, 1);
	c->opts = *opts;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c->curl = curl_easy_init();
	if (opts->host) {
		c->target = host_with_port(opts->host);
		c->base_url = g_strdup_printf("https://%s", c->target);
	} else {
		const char *sock = opts->socket_path ? opts->socket_path : HERD_RUNDIR "/herd.sock";
		c->target = g_strdup(sock);
		c->base_url = g_strdup("http://localhost");
	}
	return c;
}

void herd_client_free(herd_client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	if (c->ca_copy) {
		unlink(c->ca_copy);
		g_free(c->ca_copy);
	}
	g_free(c->base_url);
	g_free(c->target);
	g_free(c);
}

const char *herd_client_target(herd_client *c)
{
	return c->target;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	g_string_append_len(user, data, (gssize)(size * nmemb));
	return size * nmemb;
}

static void setup_on(herd_client *c, CURL *curl, const char *method, const char *url,
		     GString *answer, char *curl_err);

/* The options of every request: @method to @url, the answer into @answer. */
static void request_setup(herd_client *c, const char *method, const char *url, GString *answer,
			  char *curl_err)
{
	curl_easy_reset(c->curl);
	setup_on(c, c->curl, method, url, answer, curl_err);
}

CURL *herd_client_connect_raw(herd_client *c, GError **error)
{
	CURL *curl = curl_easy_init();
	char curl_err[CURL_ERROR_SIZE] = "";
	g_autofree char *url = g_strconcat(c->base_url, "/", NULL);
	setup_on(c, curl, "GET", url, NULL, curl_err);
	curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 0L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 20L);
	CURLcode rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "Cannot reach herdd at %s: %s.",
			    c->target, curl_err[0] ? curl_err : curl_easy_strerror(rc));
		curl_easy_cleanup(curl);
		return NULL;
	}
	return curl;
}

/* The path of a file that holds opts.ca_pem, written at the first call; a
 * path that does not exist if it cannot be written (no CA: the TLS
 * handshake fails, as with a wrong one). */
static const char *ca_copy(herd_client *c)
{
	if (c->ca_copy)
		return c->ca_copy;
	g_autoptr(GError) err = NULL;
	int fd = g_file_open_tmp("herd-ca-XXXXXX.pem", &c->ca_copy, &err);
	if (fd < 0) {
		c->ca_copy = g_strdup("/nonexistent/herd-ca.pem");
		return c->ca_copy;
	}
	bool written = herd_fd_write_all(fd, c->opts.ca_pem, strlen(c->opts.ca_pem));
	close(fd);
	if (!written)
		unlink(c->ca_copy);
	return c->ca_copy;
}

/* The options of every request and connection, on @curl. */
static void setup_on(herd_client *c, CURL *curl, const char *method, const char *url,
		     GString *answer, char *curl_err)
{
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, answer);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (c->opts.timeout_s > 0)
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, c->opts.timeout_s);
	if (!c->opts.host)
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->target);
	if (c->opts.ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->opts.ca_file);
	if (c->opts.ca_pem) {
		struct curl_blob blob = { (void *)c->opts.ca_pem, strlen(c->opts.ca_pem),
					  CURL_BLOB_COPY };
		if (curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK)
			curl_easy_setopt(curl, CURLOPT_CAINFO, ca_copy(c));
	}
	if (c->opts.token) {
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, c->opts.token);
	} else if (c->opts.user && c->opts.password) {
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(curl, CURLOPT_USERNAME, c->opts.user);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, c->opts.password);
	}
	if (c->opts.insecure || c->opts.ca_file || c->opts.ca_pem) {
		/* Nodes' certificates name the node, not whatever address the
		 * operator typed; the CA pins who they are. */
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->opts.insecure)
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
}

/* Run the request set up and make the answer of it. */
static json_t *request_perform(herd_client *c, struct curl_slist *headers, GString *answer,
			       const char *curl_err, GError **error)
{
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
	CURLcode rc = curl_easy_perform(c->curl);
	curl_slist_free_all(headers);
	if (rc != CURLE_OK && !c->opts.host && rc == CURLE_COULDNT_CONNECT) {
		/* curl's words ("localhost port 80") would mislead: say what the
		 * socket itself says. */
		int e = access(c->target, F_OK) < 0 ? errno : access(c->target, W_OK) < 0 ? errno : ECONNREFUSED;
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "Cannot reach herdd at %s: %s%s.",
			    c->target, g_strerror(e),
			    e == ENOENT || e == ECONNREFUSED ? " (is herdd running?)"
			    : e == EACCES ? " (the local API is for root; use sudo, or --host)" : "");
		return NULL;
	}
	if (rc != CURLE_OK) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "Cannot reach herdd at %s: %s.",
			    c->target, curl_err[0] ? curl_err : curl_easy_strerror(rc));
		return NULL;
	}
	long status = 0;
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	json_error_t jerr;
	json_t *root = json_loadb(answer->str, answer->len, 0, &jerr);
	if (!root) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL,
			    "herdd at %s answered HTTP %ld with something that is not JSON.",
			    c->target, status);
		return NULL;
	}
	/* An error answer is its status, not its fields: a 2xx answer is data
	 * even when it has an "error" of its own (a VM's last start error). */
	if (status >= 400) {
		json_t *err = json_object_get(root, "error");
		const char *code = json_string_value(json_object_get(err, "code"));
		const char *msg = json_string_value(json_object_get(err, "message"));
		g_set_error(error, HERD_ERROR, (gint)herd_error_from_name(code), "%s",
			    msg ? msg : "The daemon reported an error without a message.");
		json_decref(root);
		return NULL;
	}
	return root;
}

json_t *herd_client_call(herd_client *c, const char *method, const char *path,
			 json_t *body, GError **error)
{
	g_autofree char *url = g_strconcat(c->base_url, path, NULL);
	g_autofree char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	g_autoptr(GString) answer = g_string_new(NULL);
	struct curl_slist *headers = NULL;
	char curl_err[CURL_ERROR_SIZE] = "";

	request_setup(c, method, url, answer, curl_err);
	headers = curl_slist_append(headers, "Accept: application/json");
	if (payload) {
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	}
	return request_perform(c, headers, answer, curl_err, error);
}

typedef struct {
	int fd;
	guint64 left;              /* bytes still to send */
	GChecksum *sha256;
	GError **error;
} upload_source;

/* curl asks for the next part of the body: read it from the file (only
 * as much as curl's buffer holds: memory stays bounded whatever the size). */
static size_t on_read(char *buffer, size_t size, size_t nitems, void *user)
{
	upload_source *u = user;
	size_t want = MIN(size * nitems, u->left);
	if (want == 0)
		return 0;
	ssize_t n;
	do
		n = read(u->fd, buffer, want);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* The file shrank or cannot be read: stop, so that the server
		 * sees a body shorter than announced and keeps nothing. */
		g_set_error(u->error, HERD_ERROR, HERD_ERR_IO, "Cannot read the file: %s.",
			    n < 0 ? g_strerror(errno) : "it ended before its size");
		return CURL_READFUNC_ABORT;
	}
	g_checksum_update(u->sha256, (const guchar *)buffer, n);
	u->left -= (guint64)n;
	return (size_t)n;
}

json_t *herd_client_upload(herd_client *c, const char *path, int fd, guint64 size, char **sha256,
			   GError **error)
{
	g_autofree char *url = g_strconcat(c->base_url, path, NULL);
	g_autoptr(GString) answer = g_string_new(NULL);
	struct curl_slist *headers = NULL;
	char curl_err[CURL_ERROR_SIZE] = "";
	GError *read_error = NULL;
	upload_source u = { fd, size, g_checksum_new(G_CHECKSUM_SHA256), &read_error };

	request_setup(c, "PUT", url, answer, curl_err);
	curl_easy_setopt(c->curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(c->curl, CURLOPT_READDATA, &u);
	curl_easy_setopt(c->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
	headers = curl_slist_append(headers, "Accept: application/json");
	headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
	GError *perform_error = NULL;
	json_t *root = request_perform(c, headers, answer, curl_err, &perform_error);
	if (read_error) {
		/* what stopped it, rather than curl's "aborted by callback" */
		json_decref(root);
		root = NULL;
		g_clear_error(&perform_error);
		g_propagate_error(error, read_error);
	} else if (perform_error) {
		g_propagate_error(error, perform_error);
	}
	if (root && sha256)
		*sha256 = g_strdup(g_checksum_get_string(u.sha256));
	g_checksum_free(u.sha256);
	return root;
}
