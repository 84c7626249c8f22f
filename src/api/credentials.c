#define G_LOG_DOMAIN "api"
#include "api/credentials.h"

#include "common/error.h"
#include "common/log.h"
#include "common/mailbox.h"
#include "common/password.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>

#define DEFAULT_THREADS 2
#define DEFAULT_QUEUE_MAX 16
#define DEFAULT_CACHE_MAX 256
#define DEFAULT_CACHE_TTL_US (10 * 60 * G_USEC_PER_SEC)
#define DEFAULT_MAX_FAILURES 5
#define DEFAULT_FAILURE_WINDOW_US (60 * G_USEC_PER_SEC)

/* Hashes looked up per iteration of the application's loop (each is a
 * hash-table lookup and a copy: microseconds). */
#define LOOKUPS_PER_ITERATION 32

/* With this many addresses on record, those with nothing left to count are
 * dropped.  Only a password check counts a failure, and the pool bounds
 * those, so the table grows no faster than checks run; at peers_max the
 * record longest in its window goes as well (a hard bound). */
#define PEERS_SWEEP_AT 1024

/*
 * An unknown user's password is checked against this (a yescrypt hash with
 * herd_password_hash()'s parameters) and refused whatever the verdict, so
 * that "no such user" takes as long as "wrong password" and does not tell
 * which user names exist.
 */
static const char unknown_user_hash[] =
	"$y$j9T$a4nIAQFtp2yywhO8uV1BC.$RuhOB693zOmTumJe8of3huh/Tgv63.P3SS3IQgliXCC";

/* A verified credential, under the HMAC of its "user:password". */
typedef struct {
	char *hash;          /* the stored hash it was verified against */
	gint64 verified_us;
} remembered;

typedef struct {
	unsigned failures;
	gint64 window_start_us;  /* of the first failure counted */
	unsigned checking;       /* checks under way for this address */
} peer_record;

typedef struct {
	gpointer waiter;
	char *peer;
} check_waiter;

/* A request's credentials, parsed, on their way to the application for the
 * user's stored hash and back (or, without a lookup context, through
 * http_credentials_check() alone). */
typedef struct {
	char *user;
	char *key;           /* HMAC of "user:password" */
	char *password;      /* wiped when freed */
	char *peer;
	gint64 now_us;
	gpointer waiter;
	char *hash;          /* the lookup's answer: NULL for no such user, */
	GError *error;       /* ... or the application's refusal */
	char *token;         /* a session token to check instead; then @user
			      * is the application's answer */
} lookup;

/* One password check; requests with the same credentials wait on it
 * together. */
typedef struct {
	char *key;           /* HMAC of "user:password" */
	char *user;
	char *password;      /* wiped when freed */
	char *hash;          /* the stored hash; NULL: no such user */
	char *peer;          /* whose record counts it */
	gint64 started_us;
	bool ok;             /* the worker's verdict */
	GArray *waiters;     /* of check_waiter */
} check;

struct http_credentials {
	http_credentials_config cfg;
	http_password_hash_fn lookup;
	gpointer lookup_data;
	http_credentials_done_fn done;
	guint8 hmac_key[32];
	GHashTable *remembered;  /* key -> remembered* */
	GHashTable *peers;       /* address -> peer_record* */
	GHashTable *checks;      /* check* set: every check not yet over */
	GHashTable *joinable;    /* key -> the latest check of those credentials */
	GThreadPool *pool;
	GMainContext *context;   /* the checker's: verdicts come here */
	mailbox *verdicts;       /* check*, from the workers */
	mailbox *lookups;        /* lookup*, to the lookup context; NULL without one */
	mailbox *looked_up;      /* lookup*, back with the hash */
};

static void wipe_free(void *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len);
	g_free(p);
}

static void remembered_free(gpointer p)
{
	remembered *m = p;
	g_free(m->hash);
	g_free(m);
}

static void check_free(check *k)
{
	for (guint i = 0; i < k->waiters->len; i++)
		g_free(g_array_index(k->waiters, check_waiter, i).peer);
	g_array_free(k->waiters, TRUE);
	wipe_free(k->password, strlen(k->password));
	g_free(k->key);
	g_free(k->user);
	g_free(k->hash);
	g_free(k->peer);
	g_free(k);
}

static void lookup_free(lookup *l)
{
	g_free(l->user);
	g_free(l->key);
	if (l->password)
		wipe_free(l->password, strlen(l->password));
	g_free(l->peer);
	g_free(l->hash);
	g_clear_error(&l->error);
	if (l->token)
		wipe_free(l->token, strlen(l->token));
	g_free(l);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(lookup, lookup_free)

static void add_waiter(check *k, gpointer waiter, const char *peer)
{
	check_waiter w = { waiter, g_strdup(peer) };
	g_array_append_val(k->waiters, w);
}

/* ------------------------------------------------------------------ */
/* Failures per address                                                */

/* @r's failures within the window at @now_us. */
static unsigned failures_now(http_credentials *c, peer_record *r, gint64 now_us)
{
	if (r->failures && now_us - r->window_start_us > c->cfg.failure_window_us)
		r->failures = 0;
	return r->failures;
}

/* What making room in a table does with an entry. */
typedef enum { ROOM_KEEP, ROOM_DROP, ROOM_EVICTABLE } room_verdict;
/* The verdict on @value at @now_us; for ROOM_EVICTABLE, *@since_us orders
 * the entries (the smallest goes first). */
typedef room_verdict (*room_judge_fn)(http_credentials *c, gpointer value, gint64 now_us,
				      gint64 *since_us);

/* Drop the entries of @table that @judge says are over; then, if it still
 * holds @max or more, the evictable one of the smallest since_us. */
static void make_room_in(http_credentials *c, GHashTable *table, unsigned max, gint64 now_us,
			 room_judge_fn judge)
{
	GHashTableIter it;
	gpointer k, v, oldest = NULL;
	gint64 oldest_us = G_MAXINT64, since_us = 0;
	g_hash_table_iter_init(&it, table);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		switch (judge(c, v, now_us, &since_us)) {
		case ROOM_DROP:
			g_hash_table_iter_remove(&it);
			break;
		case ROOM_EVICTABLE:
			if (since_us < oldest_us) {
				oldest_us = since_us;
				oldest = k;
			}
			break;
		case ROOM_KEEP:
			break;
		}
	}
	if (g_hash_table_size(table) >= max && oldest)
		g_hash_table_remove(table, oldest);
}

/* Records with nothing left to count go; past the bound, the one longest
 * in its window, the closest to being forgotten anyway.  Records being
 * checked stay (the pool and its queue bound those). */
static room_verdict peer_room(http_credentials *c, gpointer value, gint64 now_us, gint64 *since_us)
{
	peer_record *r = value;
	if (r->checking)
		return ROOM_KEEP;
	if (failures_now(c, r, now_us) == 0)
		return ROOM_DROP;
	*since_us = r->window_start_us;
	return ROOM_EVICTABLE;
}

static peer_record *peer_record_for(http_credentials *c, const char *peer, gint64 now_us)
{
	peer_record *r = g_hash_table_lookup(c->peers, peer);
	if (r)
		return r;
	if (g_hash_table_size(c->peers) >= MIN(PEERS_SWEEP_AT, c->cfg.peers_max))
		make_room_in(c, c->peers, c->cfg.peers_max, now_us, peer_room);
	r = g_new0(peer_record, 1);
	g_hash_table_insert(c->peers, g_strdup(peer), r);
	return r;
}

static void note_failure(http_credentials *c, const char *peer, gint64 now_us)
{
	peer_record *r = peer_record_for(c, peer, now_us);
	if (failures_now(c, r, now_us) == 0)
		r->window_start_us = now_us;
	r->failures++;
	log_warn("failed login from %s (%u within a minute)", peer, r->failures);
}

/* ------------------------------------------------------------------ */
/* Remembered credentials                                              */

static char *credential_key(http_credentials *c, const guchar *text, gsize len)
{
	GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, c->hmac_key, sizeof(c->hmac_key));
	g_hmac_update(h, text, (gssize)len);
	char *hex = g_strdup(g_hmac_get_string(h));
	g_hmac_unref(h);
	return hex;
}

/* Remembered credentials: the expired go first, then the oldest. */
static room_verdict remembered_room(http_credentials *c, gpointer value, gint64 now_us,
				    gint64 *since_us)
{
	remembered *m = value;
	if (now_us - m->verified_us >= c->cfg.cache_ttl_us)
		return ROOM_DROP;
	*since_us = m->verified_us;
	return ROOM_EVICTABLE;
}

static void remember(http_credentials *c, const char *key, const char *hash, gint64 verified_us)
{
	if (!g_hash_table_contains(c->remembered, key) &&
	    g_hash_table_size(c->remembered) >= c->cfg.cache_max)
		make_room_in(c, c->remembered, c->cfg.cache_max, verified_us, remembered_room);
	remembered *m = g_new0(remembered, 1);
	m->hash = g_strdup(hash);
	m->verified_us = verified_us;
	g_hash_table_replace(c->remembered, g_strdup(key), m);
}

/* ------------------------------------------------------------------ */
/* Checks: a worker thread, then the checker's context                 */

static void check_in_thread(gpointer data, gpointer pool_data)
{
	check *k = data;
	http_credentials *c = pool_data;
	bool ok = c->cfg.verify(k->password, k->hash ? k->hash : unknown_user_hash);
	k->ok = ok && k->hash != NULL;
	mailbox_post(c->verdicts, k);
}

/* A verdict is in: tell every request that waits on it. */
static void check_over(gpointer item, gpointer data)
{
	http_credentials *c = data;
	check *k = item;
	g_autoptr(GError) err = NULL;

	g_hash_table_remove(c->checks, k);
	if (g_hash_table_lookup(c->joinable, k->key) == k)
		g_hash_table_remove(c->joinable, k->key);
	peer_record *r = g_hash_table_lookup(c->peers, k->peer);
	if (r && --r->checking == 0 && failures_now(c, r, k->started_us) == 0)
		g_hash_table_remove(c->peers, k->peer);
	if (k->ok) {
		remember(c, k->key, k->hash, k->started_us);
	} else {
		const char *said = c->cfg.refusal ? c->cfg.refusal(k->user) : NULL;
		g_set_error_literal(&err, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
				    said ? said : "Wrong user name or password.");
		/* one guess per address, however many of its requests sent it */
		for (guint i = 0; i < k->waiters->len; i++) {
			const char *peer = g_array_index(k->waiters, check_waiter, i).peer;
			bool seen = false;
			for (guint j = 0; j < i && !seen; j++)
				seen = strcmp(g_array_index(k->waiters, check_waiter, j).peer, peer) == 0;
			if (!seen)
				note_failure(c, peer, k->started_us);
		}
	}
	for (guint i = 0; i < k->waiters->len; i++)
		c->done(g_array_index(k->waiters, check_waiter, i).waiter, k->ok ? k->user : NULL, err);
	check_free(k);
}

/* ------------------------------------------------------------------ */
/* The interface                                                       */

static http_credentials_result refuse(GError **error, herd_error_code code, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

static http_credentials_result refuse(GError **error, herd_error_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_propagate_error(error, g_error_new_valist(HERD_ERROR, (gint)code, fmt, ap));
	va_end(ap);
	return HTTP_CREDENTIALS_REFUSED;
}

/* Has @peer failed too often of late?  Then refused, with why in @error. */
static bool too_many_failures(http_credentials *c, const char *peer, gint64 now_us, GError **error)
{
	peer_record *r = g_hash_table_lookup(c->peers, peer);
	if (r && failures_now(c, r, now_us) >= c->cfg.max_failures) {
		refuse(error, HERD_ERR_UNAUTHORIZED, "Too many failed logins from %s; wait a minute.",
		       peer);
		return true;
	}
	return false;
}

/*
 * The rest of a check, with the user's stored hash in @l: remembered, or
 * joining a check under way, or starting one, or refused.  Takes what it
 * keeps from @l.
 */
static http_credentials_result check_with_hash(http_credentials *c, lookup *l, char **user,
					       GError **error)
{
	if (!l->hash && l->error) {
		g_propagate_error(error, g_steal_pointer(&l->error));
		return HTTP_CREDENTIALS_REFUSED;
	}
	/* again: failures may have come while the hash was looked up */
	if (too_many_failures(c, l->peer, l->now_us, error))
		return HTTP_CREDENTIALS_REFUSED;

	remembered *m = g_hash_table_lookup(c->remembered, l->key);
	if (m && l->hash && strcmp(m->hash, l->hash) == 0 &&
	    l->now_us - m->verified_us < c->cfg.cache_ttl_us) {
		*user = g_steal_pointer(&l->user);
		return HTTP_CREDENTIALS_ACCEPTED;
	}
	if (m) /* the password changed, the user is gone, or it is too old */
		g_hash_table_remove(c->remembered, l->key);

	check *k = g_hash_table_lookup(c->joinable, l->key);
	if (k && g_strcmp0(k->hash, l->hash) == 0) {
		add_waiter(k, l->waiter, l->peer);
		return HTTP_CREDENTIALS_PENDING;
	}
	if (g_hash_table_size(c->checks) >= c->cfg.threads + c->cfg.queue_max)
		return refuse(error, HERD_ERR_UNAVAILABLE,
			      "The server is busy checking other passwords; try again in a moment.");
	/* Checks under way count against the address's failures to come, so
	 * that it cannot try more guesses at once than it may fail. */
	peer_record *r = peer_record_for(c, l->peer, l->now_us);
	if (failures_now(c, r, l->now_us) + r->checking >= c->cfg.max_failures)
		return refuse(error, HERD_ERR_UNAVAILABLE,
			      "Too many passwords from %s are being checked at once; "
			      "try again in a moment.", l->peer);
	k = g_new0(check, 1);
	k->key = g_steal_pointer(&l->key);
	k->user = g_steal_pointer(&l->user);
	k->password = g_steal_pointer(&l->password);
	k->hash = g_steal_pointer(&l->hash);
	k->peer = g_strdup(l->peer);
	k->started_us = l->now_us;
	k->waiters = g_array_new(FALSE, FALSE, sizeof(check_waiter));
	add_waiter(k, l->waiter, l->peer);
	r->checking++;
	g_hash_table_add(c->checks, k);
	g_hash_table_replace(c->joinable, k->key, k);
	g_thread_pool_push(c->pool, k, NULL);
	return HTTP_CREDENTIALS_PENDING;
}

/* On the lookup context: the application's answer, back to the checker. */
static void lookup_run(gpointer item, gpointer data)
{
	http_credentials *c = data;
	lookup *l = item;
	if (l->token)
		l->user = c->cfg.token_user(l->token, c->lookup_data, &l->error);
	else
		l->hash = c->lookup(l->user, c->lookup_data, &l->error);
	mailbox_post(c->looked_up, l);
}

/* The hash is in: the rest of the check, its outcome told to the waiter
 * unless a password check is to tell it. */
static void lookup_over(gpointer item, gpointer data)
{
	http_credentials *c = data;
	g_autoptr(lookup) l = item;
	g_autoptr(GError) err = NULL;
	g_autofree char *user = NULL;
	if (l->token) {
		c->done(l->waiter, l->user, l->user ? NULL : l->error);
		return;
	}
	switch (check_with_hash(c, l, &user, &err)) {
	case HTTP_CREDENTIALS_ACCEPTED:
		c->done(l->waiter, user, NULL);
		break;
	case HTTP_CREDENTIALS_REFUSED:
		c->done(l->waiter, NULL, err);
		break;
	case HTTP_CREDENTIALS_PENDING:
		break;
	}
}

/* A session token: its user, from the application. */
static http_credentials_result check_token(http_credentials *c, const char *token, gpointer waiter,
					   char **user, GError **error)
{
	if (!*token)
		return refuse(error, HERD_ERR_UNAUTHORIZED, "The session token is empty.");
	g_autoptr(lookup) l = g_new0(lookup, 1);
	l->token = g_strdup(token);
	l->waiter = waiter;
	if (c->lookups) {
		mailbox_post(c->lookups, g_steal_pointer(&l));
		return HTTP_CREDENTIALS_PENDING;
	}
	char *name = c->cfg.token_user(l->token, c->lookup_data, error);
	if (!name)
		return HTTP_CREDENTIALS_REFUSED;
	*user = name;
	return HTTP_CREDENTIALS_ACCEPTED;
}

char *http_csrf_token(const char *token)
{
	return g_compute_hmac_for_string(G_CHECKSUM_SHA256, (const guchar *)"herd csrf", 9, token, -1);
}

unsigned http_credentials_peers(http_credentials *c)
{
	return g_hash_table_size(c->peers);
}

http_credentials_result http_credentials_check(http_credentials *c, const char *authorization,
					       const char *peer, gint64 now_us, gpointer waiter,
					       char **user, GError **error)
{
	if (c->cfg.token_user && authorization && g_ascii_strncasecmp(authorization, "Bearer ", 7) == 0)
		return check_token(c, authorization + 7, waiter, user, error);
	if (!authorization || g_ascii_strncasecmp(authorization, "Basic ", 6) != 0)
		return refuse(error, HERD_ERR_UNAUTHORIZED, "This API needs a user name and password "
			      "(HTTP Basic authentication)%s.",
			      c->cfg.token_user ? " or a session token (herd login)" : "");
	if (too_many_failures(c, peer, now_us, error))
		return HTTP_CREDENTIALS_REFUSED;

	gsize len = 0;
	guchar *text = g_base64_decode(authorization + 6, &len);
	const guchar *colon = text ? memchr(text, ':', len) : NULL;
	if (!colon || memchr(text, '\0', len)) {
		/* Not counted as a failure: no password was tried. */
		wipe_free(text, len);
		return refuse(error, HERD_ERR_UNAUTHORIZED,
			      "The Authorization header holds no user name and password.");
	}
	g_autoptr(lookup) l = g_new0(lookup, 1);
	l->user = g_strndup((const char *)text, (gsize)(colon - text));
	l->key = credential_key(c, text, len);
	l->password = g_strndup((const char *)colon + 1, len - (gsize)(colon - text) - 1);
	wipe_free(text, len);
	l->peer = g_strdup(peer);
	l->now_us = now_us;
	l->waiter = waiter;
	if (c->lookups) {
		mailbox_post(c->lookups, g_steal_pointer(&l));
		return HTTP_CREDENTIALS_PENDING;
	}
	l->hash = c->lookup(l->user, c->lookup_data, &l->error);
	return check_with_hash(c, l, user, error);
}

http_credentials *http_credentials_new(const http_credentials_config *config,
				       http_password_hash_fn lookup_fn, gpointer lookup_data,
				       GMainContext *lookup_context, http_credentials_done_fn done)
{
	http_credentials *c = g_new0(http_credentials, 1);
	if (config)
		c->cfg = *config;
	if (!c->cfg.threads)
		c->cfg.threads = DEFAULT_THREADS;
	if (!c->cfg.queue_max)
		c->cfg.queue_max = DEFAULT_QUEUE_MAX;
	if (!c->cfg.cache_max)
		c->cfg.cache_max = DEFAULT_CACHE_MAX;
	if (!c->cfg.cache_ttl_us)
		c->cfg.cache_ttl_us = DEFAULT_CACHE_TTL_US;
	if (!c->cfg.max_failures)
		c->cfg.max_failures = DEFAULT_MAX_FAILURES;
	if (!c->cfg.failure_window_us)
		c->cfg.failure_window_us = DEFAULT_FAILURE_WINDOW_US;
	if (!c->cfg.verify)
		c->cfg.verify = herd_password_verify;
	if (!c->cfg.peers_max)
		c->cfg.peers_max = HTTP_CREDENTIALS_PEERS_MAX;
	c->lookup = lookup_fn;
	c->lookup_data = lookup_data;
	c->done = done;
	ssize_t n;
	do
		n = getrandom(c->hmac_key, sizeof(c->hmac_key), 0);
	while (n < 0 && errno == EINTR);
	g_assert(n == (ssize_t)sizeof(c->hmac_key));
	c->remembered = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, remembered_free);
	c->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	c->checks = g_hash_table_new(g_direct_hash, g_direct_equal);
	c->joinable = g_hash_table_new(g_str_hash, g_str_equal);
	c->context = g_main_context_ref_thread_default();
	c->verdicts = mailbox_new(c->context, "password verdicts", 0, check_over, c);
	if (lookup_context) {
		c->lookups = mailbox_new(lookup_context, "password hash lookups",
					 LOOKUPS_PER_ITERATION, lookup_run, c);
		/* Clients' work: after the application's own, as its idle work. */
		mailbox_set_priority(c->lookups, G_PRIORITY_DEFAULT_IDLE);
		c->looked_up = mailbox_new(c->context, "password hashes", 0, lookup_over, c);
	}
	c->pool = g_thread_pool_new(check_in_thread, c, (gint)c->cfg.threads, FALSE, NULL);
	return c;
}

/* Tell the waiter of every lookup in @box that it is over. */
static void lookups_cancel(http_credentials *c, mailbox *box)
{
	lookup *l;
	while (box && (l = mailbox_take(box))) {
		c->done(l->waiter, NULL, NULL);
		lookup_free(l);
	}
}

void http_credentials_free(http_credentials *c)
{
	if (!c)
		return;
	/* Checks not started are dropped; those under way are waited for. */
	g_thread_pool_free(c->pool, TRUE, TRUE);
	while (mailbox_take(c->verdicts))
		; /* each is in c->checks too */
	lookups_cancel(c, c->lookups);
	lookups_cancel(c, c->looked_up);
	GList *left = g_hash_table_get_keys(c->checks);
	for (GList *l = left; l; l = l->next) {
		check *k = l->data;
		for (guint i = 0; i < k->waiters->len; i++)
			c->done(g_array_index(k->waiters, check_waiter, i).waiter, NULL, NULL);
		check_free(k);
	}
	g_list_free(left);
	mailbox_free(c->verdicts);
	mailbox_free(c->lookups);
	mailbox_free(c->looked_up);
	g_main_context_unref(c->context);
	g_hash_table_unref(c->remembered);
	g_hash_table_unref(c->peers);
	g_hash_table_unref(c->checks);
	g_hash_table_unref(c->joinable);
	explicit_bzero(c->hmac_key, sizeof(c->hmac_key));
	g_free(c);
}
