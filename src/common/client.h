/*
 * The CLI's connection to a herdd API: the local unix socket by default, or
 * a remote node over HTTPS with --host.  Requests and answers are JSON; an
 * error answer becomes a GError carrying the daemon's code and sentence.
 */
#pragma once

#include "common/error.h"

#include <curl/curl.h>
#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct herd_client herd_client;

typedef struct {
	const char *socket_path;  /* local API socket (default /run/herd/herd.sock) */
	const char *host;         /* HOST or HOST:PORT of a remote node, or NULL */
	const char *ca_file;      /* CA to verify a remote node with, or NULL */
	const char *ca_pem;       /* …or the CA itself, in memory */
	bool insecure;            /* skip certificate verification (testing only) */
	const char *user;         /* HTTP Basic credentials for a remote node */
	const char *password;
	const char *token;        /* a session token (herd login), sent instead */
	long timeout_s;           /* whole-request timeout; 0: none */
} herd_client_options;

herd_client *herd_client_new(const herd_client_options *opts);
void herd_client_free(herd_client *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_client, herd_client_free)

/*
 * Send @method @path with @body (may be NULL; not stolen) and return the
 * parsed answer (a new reference), or NULL with @error set: the daemon's
 * own error (an answer with HTTP status 400 or more; any 2xx answer is
 * data), or HERD_ERR_UNAVAILABLE when it cannot be reached.
 */
json_t *herd_client_call(herd_client *c, const char *method, const char *path,
			 json_t *body, GError **error);

/*
 * PUT @path with @size bytes of the file @fd as its body, read in chunks as
 * they are sent (bounded memory), and return the answer as
 * herd_client_call() does; *@sha256 (if not NULL) becomes the SHA-256 of
 * what was sent, lower-case hex.  A file that cannot be read to its @size
 * stops the upload with an IO error.
 */
json_t *herd_client_upload(herd_client *c, const char *path, int fd, guint64 size, char **sha256,
			   GError **error);

/*
 * A connection of its own to the API, made as requests are (the socket or
 * --host's TLS, with its CA), for the caller's own bytes both ways
 * (curl_easy_send(), curl_easy_recv(): libcurl's CONNECT_ONLY), e.g. a
 * websocket; NULL with an UNAVAILABLE @error.  curl_easy_cleanup() it.
 */
CURL *herd_client_connect_raw(herd_client *c, GError **error);

/* Where the client connects, for messages ("/run/herd/herd.sock", "n2:8001"). */
const char *herd_client_target(herd_client *c);
