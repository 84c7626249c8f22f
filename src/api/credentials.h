/*
 * Who sends an HTTP request: HTTP Basic credentials checked against the
 * password hashes the application keeps, without stalling the main loop.
 *
 * The checker runs on one thread (its context: the HTTP server's), the
 * application on another (its main loop), which answers one question: user
 * name -> a copy of its stored hash, asked through a mailbox.  The password
 * check itself (yescrypt, tens of milliseconds) runs on a small pool of
 * worker threads behind a bounded queue, and its verdict comes back on the
 * checker's context.  A verified credential is remembered, keyed by an
 * HMAC of "user:password" under a per-process random key, while the user's
 * stored hash is still the one it was verified against (a password change
 * or the user's removal forgets it) and for ten minutes at most, so that
 * later requests cost microseconds.  Failures are never remembered; they are counted per client
 * address, and an address with five within a minute must wait; at most
 * HTTP_CREDENTIALS_PEERS_MAX addresses are on record, whatever the number
 * of clients (the oldest record goes first).
 *
 * A session token ("Authorization: Bearer TOKEN", or the session cookie,
 * which http.c passes the same way) is no password: the application
 * checks it on its loop (an HMAC, microseconds) and names its user.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

typedef struct http_credentials http_credentials;

/*
 * The application's side: a copy of the stored password hash of @user
 * (g_free()d by the caller), or NULL if there is no such user.  NULL with
 * @error set refuses the request with that error whatever its password
 * (e.g. a node that has no users yet).  Called on the checker's lookup
 * context (http_credentials_new()); must not block.
 */
typedef char *(*http_password_hash_fn)(const char *user, gpointer user_data, GError **error);

/*
 * The application's side for a session token: the name of its user
 * (g_free()d by the caller), or NULL with @error (UNAUTHORIZED: forged,
 * expired, logged out…).  Called like the hash lookup.
 */
typedef char *(*http_token_user_fn)(const char *token, gpointer user_data, GError **error);

/* Client addresses whose failures are on record, at most. */
#define HTTP_CREDENTIALS_PEERS_MAX 4096

/* Limits, and a seam for tests; a zero field takes the default in (). */
typedef struct {
	unsigned threads;          /* password checks at once (2) */
	unsigned queue_max;        /* checks waiting for a thread (16); more get 503 */
	unsigned cache_max;        /* credentials remembered (256) */
	gint64 cache_ttl_us;       /* for at most this long (10 minutes) */
	unsigned max_failures;     /* per address within failure_window_us (5) */
	gint64 failure_window_us;  /* (1 minute) */
	/* The check (herd_password_verify); runs on a worker thread. */
	bool (*verify)(const char *password, const char *hash);
	/* Session tokens' users; NULL: bearer tokens are refused. */
	http_token_user_fn token_user;
	/* Addresses on record at most (HTTP_CREDENTIALS_PEERS_MAX). */
	unsigned peers_max;
	/* The refusal of a wrong password of @user (a pseudo-user's own
	 * sentence); NULL, or NULL returned: "Wrong user name or password." */
	const char *(*refusal)(const char *user);
} http_credentials_config;

/* The CSRF token that goes with session token @token (g_free): a hash of
 * it, which a page that cannot read the token cannot make. */
char *http_csrf_token(const char *token);

/* Client addresses on record now (for tests of the bound). */
unsigned http_credentials_peers(http_credentials *c);

/*
 * A check that had to wait is over, on the checker's context: @user (the
 * caller's to copy) if the credentials are right, else @error; both NULL
 * when the checker is freed first.
 */
typedef void (*http_credentials_done_fn)(gpointer waiter, const char *user, const GError *error);

typedef enum {
	HTTP_CREDENTIALS_ACCEPTED, /* remembered credentials: *user is set */
	HTTP_CREDENTIALS_REFUSED,  /* *error is set (UNAUTHORIZED, UNAVAILABLE, or the lookup's) */
	HTTP_CREDENTIALS_PENDING,  /* the hash is looked up or the password checked:
				    * @done comes later */
} http_credentials_result;

/*
 * A checker on the thread-default context of the caller (where it is to be
 * used and @done is called), asking @lookup(user, @lookup_data) for hashes
 * on @lookup_context: the application's, run by another thread.  With
 * @lookup_context NULL the lookup is made inside http_credentials_check()
 * (checker and application on one thread), and remembered credentials are
 * accepted at once; with one, every check that gets as far as needing the
 * hash is PENDING.  @config may be NULL.
 */
http_credentials *http_credentials_new(const http_credentials_config *config,
				       http_password_hash_fn lookup, gpointer lookup_data,
				       GMainContext *lookup_context, http_credentials_done_fn done);

/* Waits for the checks under way; every waiter still waiting gets
 * @done(waiter, NULL, NULL), on the calling thread.  With a lookup
 * context, call it where no lookup runs meanwhile: on that context's
 * thread, or while nothing runs it.  NULL is fine. */
void http_credentials_free(http_credentials *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(http_credentials, http_credentials_free)

/*
 * Check the Authorization header @authorization (may be NULL) of a request
 * from @peer (an address, or "unix") at monotonic time @now_us, on the
 * checker's context.  PENDING means @done(@waiter, …) will be called, once,
 * on that context.
 */
http_credentials_result http_credentials_check(http_credentials *c, const char *authorization,
					       const char *peer, gint64 now_us, gpointer waiter,
					       char **user, GError **error);
