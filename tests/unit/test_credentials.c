/*
 * The HTTP credential checker on its own: remembered credentials and what
 * forgets them, requests joining one check, the bounded queue, the limits
 * per address, malformed headers, and stopping with checks under way.  The
 * password check is a fake ("plain:PASSWORD" hashes) behind a gate, and the
 * clock is an argument, so nothing here waits for time to pass.
 */
#include "api/credentials.h"
#include "common/error.h"

#include <string.h>

#define SEC (G_USEC_PER_SEC)

/* ------------------------------------------------------------------ */
/* The fake application and password check                            */

static GHashTable *users;      /* name -> "plain:PASSWORD" */
static unsigned lookups;       /* how many times the application was asked */

static char *lookup(const char *user, gpointer user_data, GError **error)
{
	g_assert_true(user_data == &users);
	lookups++;
	if (strcmp(user, "nocluster") == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED, "No users here.");
		return NULL;
	}
	return g_strdup(g_hash_table_lookup(users, user));
}

static struct {
	GMutex lock;
	GCond cond;
	bool closed;
	unsigned inside;
	gint checks;
	char *last_hash;   /* what the last check was against */
} gate;

static bool fake_verify(const char *password, const char *hash)
{
	g_atomic_int_inc(&gate.checks);
	g_mutex_lock(&gate.lock);
	g_free(gate.last_hash);
	gate.last_hash = g_strdup(hash);
	gate.inside++;
	g_cond_broadcast(&gate.cond);
	while (gate.closed)
		g_cond_wait(&gate.cond, &gate.lock);
	gate.inside--;
	g_mutex_unlock(&gate.lock);
	return g_str_has_prefix(hash, "plain:") && strcmp(hash + 6, password) == 0;
}

static void gate_set(bool closed)
{
	g_mutex_lock(&gate.lock);
	gate.closed = closed;
	g_cond_broadcast(&gate.cond);
	g_mutex_unlock(&gate.lock);
}

static void wait_at_gate(unsigned n)
{
	g_mutex_lock(&gate.lock);
	while (gate.inside < n)
		g_cond_wait(&gate.cond, &gate.lock);
	g_mutex_unlock(&gate.lock);
}

/* ------------------------------------------------------------------ */
/* Verdicts                                                            */

typedef struct {
	int waiter;
	char *user;        /* NULL if refused or cancelled */
	int code;          /* error code, -1 without an error */
} verdict;

static GArray *verdicts;   /* of verdict, in the order they came */

static void on_done(gpointer waiter, const char *user, const GError *error)
{
	verdict v = { GPOINTER_TO_INT(waiter), g_strdup(user), error ? error->code : -1 };
	g_array_append_val(verdicts, v);
}

static void wait_verdicts(guint n)
{
	while (verdicts->len < n)
		g_main_context_iteration(NULL, TRUE);
}

static verdict *verdict_of(int waiter)
{
	for (guint i = 0; i < verdicts->len; i++)
		if (g_array_index(verdicts, verdict, i).waiter == waiter)
			return &g_array_index(verdicts, verdict, i);
	g_error("no verdict for waiter %d", waiter);
}

static char *basic(const char *user, const char *password)
{
	g_autofree char *cred = g_strdup_printf("%s:%s", user, password);
	g_autofree char *b64 = g_base64_encode((const guchar *)cred, strlen(cred));
	return g_strdup_printf("Basic %s", b64);
}

static http_credentials *checker(const http_credentials_config *cfg)
{
	http_credentials_config c = cfg ? *cfg : (http_credentials_config){ 0 };
	c.verify = fake_verify;
	return http_credentials_new(&c, lookup, &users, NULL, on_done);
}

/* Check @user:@password from @peer at @now_us as @waiter. */
static http_credentials_result check(http_credentials *c, const char *user, const char *password,
				     const char *peer, gint64 now_us, int waiter, GError **error)
{
	g_autofree char *header = basic(user, password);
	g_autofree char *who = NULL;
	http_credentials_result r = http_credentials_check(c, header, peer, now_us,
							   GINT_TO_POINTER(waiter), &who, error);
	if (r == HTTP_CREDENTIALS_ACCEPTED)
		g_assert_cmpstr(who, ==, user);
	else
		g_assert_null(who);
	return r;
}

/* A check that has to go to a worker. */
static void start(http_credentials *c, const char *user, const char *password, const char *peer,
		  gint64 now_us, int waiter)
{
	g_autoptr(GError) error = NULL;
	g_assert_cmpint(check(c, user, password, peer, now_us, waiter, &error), ==,
			HTTP_CREDENTIALS_PENDING);
	g_assert_no_error(error);
}

/* …and what it says. */
static verdict *check_through(http_credentials *c, const char *user, const char *password,
			      const char *peer, gint64 now_us, int waiter)
{
	start(c, user, password, peer, now_us, waiter);
	wait_verdicts(verdicts->len + 1);
	return verdict_of(waiter);
}

static void expect_failed_login(void)
{
	g_test_expect_message("api", G_LOG_LEVEL_WARNING, "failed login from *");
}

/* A check that says the credentials are wrong (a failed login, logged). */
static void check_fails(http_credentials *c, const char *user, const char *password,
			const char *peer, gint64 now_us, int waiter)
{
	expect_failed_login();
	verdict *v = check_through(c, user, password, peer, now_us, waiter);
	g_test_assert_expected_messages();
	g_assert_null(v->user);
	g_assert_cmpint(v->code, ==, HERD_ERR_UNAUTHORIZED);
}

static void setup(void)
{
	users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_hash_table_insert(users, g_strdup("alice"), g_strdup("plain:secret-alice"));
	g_hash_table_insert(users, g_strdup("bob"), g_strdup("plain:secret-bob"));
	g_hash_table_insert(users, g_strdup("carol"), g_strdup("plain:secret-carol"));
	verdicts = g_array_new(FALSE, FALSE, sizeof(verdict));
	gate_set(false);
	g_atomic_int_set(&gate.checks, 0);
	lookups = 0;
}

static void teardown(void)
{
	for (guint i = 0; i < verdicts->len; i++)
		g_free(g_array_index(verdicts, verdict, i).user);
	g_array_free(verdicts, TRUE);
	g_hash_table_unref(users);
	g_clear_pointer(&gate.last_hash, g_free);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

/* Checked once, then remembered while the stored hash is the same and
 * for the time it may be; then checked again. */
static void test_remembered(void)
{
	g_autoptr(http_credentials) c = checker(NULL);
	g_autoptr(GError) error = NULL;
	gint64 t0 = 1000 * SEC;

	verdict *v = check_through(c, "alice", "secret-alice", "10.0.0.1", t0, 1);
	g_assert_cmpstr(v->user, ==, "alice");
	g_assert_cmpint(v->code, ==, -1);
	g_assert_cmpint(gate.checks, ==, 1);
	/* from anywhere, for ten minutes */
	g_assert_cmpint(check(c, "alice", "secret-alice", "10.0.0.1", t0 + 1, 2, &error), ==,
			HTTP_CREDENTIALS_ACCEPTED);
	g_assert_cmpint(check(c, "alice", "secret-alice", "10.0.0.2", t0 + 599 * SEC, 3, &error), ==,
			HTTP_CREDENTIALS_ACCEPTED);
	g_assert_no_error(error);
	g_assert_cmpint(gate.checks, ==, 1);
	/* then it is checked again */
	v = check_through(c, "alice", "secret-alice", "10.0.0.1", t0 + 600 * SEC, 4);
	g_assert_cmpstr(v->user, ==, "alice");
	g_assert_cmpint(gate.checks, ==, 2);
	gint64 t1 = t0 + 600 * SEC;
	g_assert_cmpint(check(c, "alice", "secret-alice", "10.0.0.1", t1 + 1, 5, &error), ==,
			HTTP_CREDENTIALS_ACCEPTED);

	/* another password of the same user is another credential */
	check_fails(c, "alice", "secret-bob", "10.0.0.1", t1 + 2, 6);

	/* the password changes: the old one is checked against the new hash */
	g_hash_table_insert(users, g_strdup("alice"), g_strdup("plain:new-secret"));
	check_fails(c, "alice", "secret-alice", "10.0.0.1", t1 + 3, 7);
	g_assert_cmpstr(gate.last_hash, ==, "plain:new-secret");
	v = check_through(c, "alice", "new-secret", "10.0.0.1", t1 + 4, 8);
	g_assert_cmpstr(v->user, ==, "alice");
	g_assert_cmpint(check(c, "alice", "new-secret", "10.0.0.1", t1 + 5, 9, &error), ==,
			HTTP_CREDENTIALS_ACCEPTED);
	/* ... and changes back: what was remembered of the old one is gone */
	g_hash_table_insert(users, g_strdup("alice"), g_strdup("plain:secret-alice"));
	int before = gate.checks;
	v = check_through(c, "alice", "secret-alice", "10.0.0.1", t1 + 6, 10);
	g_assert_cmpstr(v->user, ==, "alice");
	g_assert_cmpint(gate.checks, ==, before + 1);

	/* the user is removed: refused, after a check like any unknown user's */
	g_hash_table_remove(users, "alice");
	check_fails(c, "alice", "secret-alice", "10.0.0.3", t1 + 7, 11);
	g_assert_cmpint(gate.checks, ==, before + 2);
	/* checked against a real-looking hash, not the user's (there is none) */
	g_assert_true(g_str_has_prefix(gate.last_hash, "$y$"));
	/* the same user name added again with the same password: checked anew */
	g_hash_table_insert(users, g_strdup("alice"), g_strdup("plain:secret-alice"));
	v = check_through(c, "alice", "secret-alice", "10.0.0.3", t1 + 8, 12);
	g_assert_cmpstr(v->user, ==, "alice");
}

/* Failures are never remembered. */
static void test_failures_checked_each_time(void)
{
	g_autoptr(http_credentials) c = checker(NULL);
	for (int i = 0; i < 3; i++)
		check_fails(c, "bob", "guess", "10.0.0.1", SEC + i, i);
	g_assert_cmpint(gate.checks, ==, 3);
}

/* Requests with the same credentials while they are checked wait on that
 * one check; a wrong password so tried is one failure for its address. */
static void test_joined(void)
{
	g_autoptr(http_credentials) c = checker(NULL);
	g_autoptr(GError) error = NULL;
	gate_set(true);
	for (int i = 0; i < 4; i++)
		start(c, "bob", "secret-bob", i < 2 ? "10.0.0.1" : "10.0.0.2", SEC, i);
	for (int i = 10; i < 17; i++)
		start(c, "carol", "typo", "10.0.0.3", SEC, i);
	wait_at_gate(1);
	gate_set(false);
	expect_failed_login();
	wait_verdicts(11);
	g_test_assert_expected_messages();
	g_assert_cmpint(gate.checks, ==, 2);
	for (int i = 0; i < 4; i++)
		g_assert_cmpstr(verdict_of(i)->user, ==, "bob");
	for (int i = 10; i < 17; i++)
		g_assert_cmpint(verdict_of(i)->code, ==, HERD_ERR_UNAUTHORIZED);
	/* carol's address failed once, not seven times: four more may come */
	for (int i = 0; i < 4; i++)
		check_fails(c, "carol", "typo2", "10.0.0.3", 2 * SEC + i, 20 + i);
	g_assert_cmpint(check(c, "carol", "secret-carol", "10.0.0.3", 3 * SEC, 30, &error), ==,
			HTTP_CREDENTIALS_REFUSED);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	g_assert_cmpstr(error->message, ==, "Too many failed logins from 10.0.0.3; wait a minute.");
}

/* Beyond the threads and the queue, a check is refused at once. */
static void test_busy(void)
{
	const http_credentials_config cfg = { .threads = 1, .queue_max = 1 };
	g_autoptr(http_credentials) c = checker(&cfg);
	g_autoptr(GError) error = NULL;
	gate_set(true);
	start(c, "alice", "secret-alice", "10.0.0.1", SEC, 1);
	wait_at_gate(1);
	start(c, "bob", "secret-bob", "10.0.0.2", SEC, 2);
	g_assert_cmpint(check(c, "carol", "secret-carol", "10.0.0.3", SEC, 3, &error), ==,
			HTTP_CREDENTIALS_REFUSED);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_cmpstr(error->message, ==,
			"The server is busy checking other passwords; try again in a moment.");
	g_clear_error(&error);
	/* joining a check under way needs no room */
	start(c, "bob", "secret-bob", "10.0.0.4", SEC, 4);
	gate_set(false);
	wait_verdicts(3);
	g_assert_cmpstr(verdict_of(1)->user, ==, "alice");
	g_assert_cmpstr(verdict_of(2)->user, ==, "bob");
	g_assert_cmpstr(verdict_of(4)->user, ==, "bob");
	/* room again */
	verdict *v = check_through(c, "carol", "secret-carol", "10.0.0.3", SEC, 5);
	g_assert_cmpstr(v->user, ==, "carol");
}

/* An address may not have more checks under way than failures left, so
 * that it cannot try more guesses at once than it may fail; after five
 * failures it waits a minute, whatever it sends. */
static void test_per_address(void)
{
	g_autoptr(http_credentials) c = checker(NULL);
	g_autoptr(GError) error = NULL;
	for (int i = 0; i < 3; i++)
		check_fails(c, "alice", "guess", "10.0.0.1", SEC, i);
	/* three failures: two checks at once, not three */
	gate_set(true);
	start(c, "bob", "guess-1", "10.0.0.1", SEC, 10);
	start(c, "bob", "guess-2", "10.0.0.1", SEC, 11);
	g_assert_cmpint(check(c, "bob", "guess-3", "10.0.0.1", SEC, 12, &error), ==,
			HTTP_CREDENTIALS_REFUSED);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE);
	g_assert_cmpstr(error->message, ==, "Too many passwords from 10.0.0.1 are being checked "
					    "at once; try again in a moment.");
	g_clear_error(&error);
	/* another address is not held up */
	start(c, "carol", "secret-carol", "10.0.0.2", SEC, 13);
	gate_set(false);
	g_test_expect_message("api", G_LOG_LEVEL_WARNING, "failed login from 10.0.0.1 (4 *");
	g_test_expect_message("api", G_LOG_LEVEL_WARNING, "failed login from 10.0.0.1 (5 *");
	wait_verdicts(3 + 3);
	g_test_assert_expected_messages();
	g_assert_cmpstr(verdict_of(13)->user, ==, "carol");
	/* five: even the right password waits, and is not checked */
	int checks = gate.checks;
	g_assert_cmpint(check(c, "alice", "secret-alice", "10.0.0.1", 30 * SEC, 20, &error), ==,
			HTTP_CREDENTIALS_REFUSED);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	g_assert_cmpstr(error->message, ==, "Too many failed logins from 10.0.0.1; wait a minute.");
	g_clear_error(&error);
	/* remembered credentials too */
	g_assert_cmpint(check(c, "carol", "secret-carol", "10.0.0.1", 30 * SEC, 21, &error), ==,
			HTTP_CREDENTIALS_REFUSED);
	g_clear_error(&error);
	g_assert_cmpint(gate.checks, ==, checks);
	/* a minute after the first failure */
	verdict *v = check_through(c, "alice", "secret-alice", "10.0.0.1", 62 * SEC, 22);
	g_assert_cmpstr(v->user, ==, "alice");
}

/* What holds no user name and password is refused unchecked, and is no
 * failure (no password was tried). */
static void test_malformed(void)
{
	g_autoptr(http_credentials) c = checker(NULL);
	static const struct { const char *header, *message; } cases[] = {
		{ NULL, "This API needs a user name and password (HTTP Basic authentication)." },
		{ "", "needs a user name and password" },
		{ "Bearer abc", "needs a user name and password" },
		{ "Basic", "needs a user name and password" },
		{ "Basic ", "holds no user name and password" },
		{ "Basic YWxpY2U=", "holds no user name and password" },          /* "alice" */
		{ "Basic YWxpY2U6c2VjcmV0LWFsaWNlAHg=", "holds no user name" },  /* "alice:secret-alice\0x" */
		{ "Basic !!!!", "holds no user name and password" },
	};
	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
			g_autoptr(GError) error = NULL;
			g_autofree char *user = NULL;
			g_assert_cmpint(http_credentials_check(c, cases[i].header, "10.0.0.1", SEC, NULL,
							       &user, &error),
					==, HTTP_CREDENTIALS_REFUSED);
			g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
			if (!strstr(error->message, cases[i].message))
				g_error("'%s': '%s' does not say '%s'", cases[i].header,
					error->message, cases[i].message);
		}
	}
	g_assert_cmpint(gate.checks, ==, 0);
	/* "basic" in any case, and an empty password is a password */
	g_autofree char *lower = basic("alice", "secret-alice");
	lower[0] = 'b';
	g_autofree char *user = NULL;
	g_autoptr(GError) error = NULL;
	g_assert_cmpint(http_credentials_check(c, lower, "10.0.0.1", SEC, GINT_TO_POINTER(1), &user,
					       &error), ==, HTTP_CREDENTIALS_PENDING);
	wait_verdicts(1);
	g_assert_cmpstr(verdict_of(1)->user, ==, "alice");
	check_fails(c, "alice", "", "10.0.0.1", SEC, 2);
}

/* The application's refusal is the answer, whatever the password. */
static void test_lookup_error(void)
{
	g_autoptr(http_credentials) c = checker(NULL);
	g_autoptr(GError) error = NULL;
	g_assert_cmpint(check(c, "nocluster", "whatever", "10.0.0.1", SEC, 1, &error), ==,
			HTTP_CREDENTIALS_REFUSED);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	g_assert_cmpstr(error->message, ==, "No users here.");
	g_assert_cmpint(gate.checks, ==, 0);
}

/* At most cache_max credentials are remembered: the oldest goes first. */
static void test_bounded(void)
{
	const http_credentials_config cfg = { .cache_max = 2 };
	g_autoptr(http_credentials) c = checker(&cfg);
	g_autoptr(GError) error = NULL;
	check_through(c, "alice", "secret-alice", "10.0.0.1", 1 * SEC, 1);
	check_through(c, "bob", "secret-bob", "10.0.0.1", 2 * SEC, 2);
	check_through(c, "carol", "secret-carol", "10.0.0.1", 3 * SEC, 3);
	g_assert_cmpint(gate.checks, ==, 3);
	g_assert_cmpint(check(c, "carol", "secret-carol", "10.0.0.1", 4 * SEC, 4, &error), ==,
			HTTP_CREDENTIALS_ACCEPTED);
	g_assert_cmpint(check(c, "bob", "secret-bob", "10.0.0.1", 4 * SEC, 5, &error), ==,
			HTTP_CREDENTIALS_ACCEPTED);
	start(c, "alice", "secret-alice", "10.0.0.1", 4 * SEC, 6);
	wait_verdicts(4);
	g_assert_cmpint(gate.checks, ==, 4);
}

/* Freed with checks under way and queued: it waits for the one under way,
 * and every waiter hears once that it is over, with neither user nor
 * error. */
static void test_free_while_checking(void)
{
	const http_credentials_config cfg = { .threads = 1 };
	http_credentials *c = checker(&cfg);
	gate_set(true);
	start(c, "alice", "secret-alice", "10.0.0.1", SEC, 1);
	wait_at_gate(1);
	start(c, "alice", "secret-alice", "10.0.0.2", SEC, 2);
	start(c, "bob", "secret-bob", "10.0.0.1", SEC, 3);
	gate_set(false);
	http_credentials_free(c);
	g_assert_cmpuint(verdicts->len, ==, 3);
	for (int i = 1; i <= 3; i++) {
		g_assert_null(verdict_of(i)->user);
		g_assert_cmpint(verdict_of(i)->code, ==, -1);
	}
	/* and nothing comes later */
	while (g_main_context_iteration(NULL, FALSE))
		;
	g_assert_cmpuint(verdicts->len, ==, 3);
	http_credentials_free(NULL);
}

/* Iterate the checker's context @own and the application's (the default
 * one) until @n verdicts are in. */
static void wait_verdicts_on(GMainContext *own, guint n)
{
	while (verdicts->len < n) {
		gboolean any = g_main_context_iteration(own, FALSE);
		any |= g_main_context_iteration(NULL, FALSE);
		if (!any)
			g_usleep(1000);
	}
}

/* The checker on one context, the application's lookups on another (as
 * the HTTP server's thread and herdd's main loop): everything that needs
 * the stored hash waits for the application's loop to look it up, and
 * comes as a verdict, even remembered credentials and the application's
 * refusal; what needs no hash is refused at once; freed with a lookup on
 * its way, its waiter hears that it is over. */
static void test_lookup_elsewhere(void)
{
	GMainContext *own = g_main_context_new();
	g_main_context_push_thread_default(own);
	const http_credentials_config cfg = { .verify = fake_verify };
	http_credentials *c = http_credentials_new(&cfg, lookup, &users, g_main_context_default(),
						   on_done);
	g_main_context_pop_thread_default(own);

	start(c, "alice", "secret-alice", "10.0.0.1", SEC, 1);
	while (g_main_context_iteration(own, FALSE))
		;
	g_assert_cmpuint(lookups, ==, 0);
	g_assert_true(g_main_context_iteration(NULL, FALSE));
	g_assert_cmpuint(lookups, ==, 1);
	wait_verdicts_on(own, 1);
	g_assert_cmpstr(verdict_of(1)->user, ==, "alice");
	g_assert_cmpint(gate.checks, ==, 1);
	/* remembered: looked up, then accepted unchecked */
	start(c, "alice", "secret-alice", "10.0.0.2", SEC + 1, 2);
	wait_verdicts_on(own, 2);
	g_assert_cmpstr(verdict_of(2)->user, ==, "alice");
	g_assert_cmpint(verdict_of(2)->code, ==, -1);
	g_assert_cmpint(gate.checks, ==, 1);
	g_assert_cmpuint(lookups, ==, 2);
	/* the application's refusal */
	start(c, "nocluster", "whatever", "10.0.0.1", SEC + 2, 3);
	wait_verdicts_on(own, 3);
	g_assert_null(verdict_of(3)->user);
	g_assert_cmpint(verdict_of(3)->code, ==, HERD_ERR_UNAUTHORIZED);
	g_assert_cmpint(gate.checks, ==, 1);
	/* no credentials at all: refused without asking */
	g_autoptr(GError) error = NULL;
	g_autofree char *user = NULL;
	g_assert_cmpint(http_credentials_check(c, "Bearer x", "10.0.0.1", SEC, NULL, &user, &error),
			==, HTTP_CREDENTIALS_REFUSED);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	g_assert_cmpuint(lookups, ==, 3);
	/* freed with a lookup on its way */
	start(c, "bob", "secret-bob", "10.0.0.1", SEC + 3, 4);
	http_credentials_free(c);
	g_assert_cmpuint(verdicts->len, ==, 4);
	g_assert_null(verdict_of(4)->user);
	g_assert_cmpint(verdict_of(4)->code, ==, -1);
	while (g_main_context_iteration(NULL, FALSE) || g_main_context_iteration(own, FALSE))
		;
	g_assert_cmpuint(verdicts->len, ==, 4);
	g_assert_cmpuint(lookups, ==, 3);
	g_main_context_unref(own);
}

/* However many addresses fail, at most peers_max are on record; an address
 * that failed too often stays refused while the table churns below it. */
static void test_peers_bounded(void)
{
	http_credentials_config cfg = { .peers_max = 8, .max_failures = 2 };
	g_autoptr(http_credentials) c = checker(&cfg);
	gint64 t0 = 1000 * SEC;
	check_fails(c, "alice", "wrong", "10.9.9.9", t0, 1);
	check_fails(c, "alice", "wrong", "10.9.9.9", t0 + 1, 2);
	for (int i = 0; i < 100; i++) {
		g_autofree char *peer = g_strdup_printf("10.0.%d.%d", i / 250, i % 250);
		check_fails(c, "bob", "wrong", peer, t0 + 10 + i, 10 + i);
		g_assert_cmpuint(http_credentials_peers(c), <=, 8);
	}
	/* The newest records are kept: an address that fails twice now is
	 * refused, its right password too. */
	check_fails(c, "bob", "wrong", "10.8.8.8", t0 + 300, 900);
	check_fails(c, "bob", "wrong", "10.8.8.8", t0 + 301, 901);
	g_autoptr(GError) error = NULL;
	g_assert_cmpint(check(c, "bob", "secret-bob", "10.8.8.8", t0 + 302, 902, &error), ==,
			HTTP_CREDENTIALS_REFUSED);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	g_assert_cmpuint(http_credentials_peers(c), <=, 8);
}

/* Session tokens: "Bearer …" goes to the application's token check, which
 * names the user or refuses; no password is checked, no failure counted. */
static char *token_user(const char *token, gpointer user_data, GError **error)
{
	g_assert_true(user_data == &users);
	if (strcmp(token, "good-token") == 0)
		return g_strdup("carol");
	g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED, "The session has ended.");
	return NULL;
}

static void test_tokens(void)
{
	http_credentials_config cfg = { .token_user = token_user };
	g_autoptr(http_credentials) c = checker(&cfg);
	g_autoptr(GError) error = NULL;
	g_autofree char *who = NULL;
	g_assert_cmpint(http_credentials_check(c, "Bearer good-token", "10.0.0.1", SEC, NULL, &who, &error),
			==, HTTP_CREDENTIALS_ACCEPTED);
	g_assert_cmpstr(who, ==, "carol");
	g_clear_pointer(&who, g_free);
	g_assert_cmpint(http_credentials_check(c, "Bearer bad-token", "10.0.0.1", SEC, NULL, &who, &error),
			==, HTTP_CREDENTIALS_REFUSED);
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 0);
	g_assert_cmpuint(http_credentials_peers(c), ==, 0);
	/* The CSRF token is a function of the session token alone. */
	g_autofree char *csrf1 = http_csrf_token("good-token");
	g_autofree char *csrf2 = http_csrf_token("good-token");
	g_autofree char *csrf3 = http_csrf_token("other-token");
	g_assert_cmpstr(csrf1, ==, csrf2);
	g_assert_cmpstr(csrf1, !=, csrf3);
	g_assert_null(strstr(csrf1, "good-token"));
}

static void fixture(gconstpointer test)
{
	setup();
	((GTestFunc)test)();
	teardown();
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_data_func("/credentials/remembered", test_remembered, fixture);
	g_test_add_data_func("/credentials/failures-checked-each-time",
			     test_failures_checked_each_time, fixture);
	g_test_add_data_func("/credentials/joined", test_joined, fixture);
	g_test_add_data_func("/credentials/busy", test_busy, fixture);
	g_test_add_data_func("/credentials/per-address", test_per_address, fixture);
	g_test_add_data_func("/credentials/malformed", test_malformed, fixture);
	g_test_add_data_func("/credentials/lookup-error", test_lookup_error, fixture);
	g_test_add_data_func("/credentials/bounded", test_bounded, fixture);
	g_test_add_data_func("/credentials/free-while-checking", test_free_while_checking, fixture);
	g_test_add_data_func("/credentials/lookup-elsewhere", test_lookup_elsewhere, fixture);
	g_test_add_data_func("/credentials/peers-bounded", test_peers_bounded, fixture);
	g_test_add_data_func("/credentials/tokens", test_tokens, fixture);
	return g_test_run();
}
