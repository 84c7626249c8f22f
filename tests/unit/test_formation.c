/*
 * `herd cluster create` on one node, over the test bus (tests/lib/testbus:
 * CPG played on the main loop) with the service manager and the daemon's
 * certificate played here: the password's hash and the CA's and node's keys
 * are made on a worker thread while the main loop goes on (it feeds herdd's
 * watchdog); the create then seeds the store and comes back once synced.
 * (With corosync and a real herdd: every cluster test's set-up.)
 */
#include "cluster/formation.h"
#include "cluster/service.h"
#include "common/error.h"
#include "common/json.h"
#include "common/password.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/replica.h"
#include "testbus.h"
#include "testnode.h"

#include <glib/gstdio.h>
#include <string.h>

typedef struct {
	char *ca_pem, *cert_pem;
	unsigned services;           /* corosync starts asked for */
	bool done;
	json_t *result;
	GError *error;
} world;

static bool io_install_tls(gpointer user, const char *ca_pem, const char *cert_pem,
			   const char *key_pem, GError **error)
{
	world *w = user;
	w->ca_pem = g_strdup(ca_pem);
	w->cert_pem = g_strdup(cert_pem);
	return true;
}

static bool io_reset_tls(gpointer user, GError **error) { return true; }
static char *io_ca_pem(gpointer user) { return g_strdup(((world *)user)->ca_pem); }

static void io_service(gpointer user, const char *action, const char *service,
		       herd_formation_service_done done, gpointer data)
{
	world *w = user;
	w->services++;
	testnode_service_done_later(done, data);
}

static const herd_formation_io io = {
	.install_tls = io_install_tls,
	.reset_tls = io_reset_tls,
	.ca_pem = io_ca_pem,
	.service = io_service,
};

static void on_done(json_t *result, const GError *error, gpointer data)
{
	world *w = data;
	w->done = true;
	w->result = json_incref(result);
	w->error = error ? g_error_copy(error) : NULL;
}

typedef struct {
	bool done;
} refusal;

static void on_refused(json_t *result, const GError *error, gpointer data)
{
	refusal *r = data;
	r->done = true;
	g_assert_nonnull(error);
	g_assert_cmpstr(error->message, ==, "A cluster is already being created on this node.");
}

/* One node's formation over the test bus, in a directory of its own. */
typedef struct {
	char *dir, *corosync_dir;
	testbus *bus;
	herd_cluster *c;
	herd_formation *f;
	world w;
} bed;

static bed *bed_new(void)
{
	g_autoptr(GError) err = NULL;
	bed *b = g_new0(bed, 1);
	b->dir = g_dir_make_tmp("herd-formation-XXXXXX", &err);
	g_assert_no_error(err);
	b->corosync_dir = g_build_filename(b->dir, "corosync", NULL);
	g_assert_cmpint(g_mkdir(b->corosync_dir, 0700), ==, 0);
	b->bus = testbus_new(1);
	b->c = herd_cluster_new(":memory:", "n1", testbus_member_new(b->bus, 1), &err);
	g_assert_no_error(err);
	b->f = herd_formation_new(b->c, "n1", b->corosync_dir, &io, &b->w);
	return b;
}

static void bed_free(bed *b)
{
	json_decref(b->w.result);
	g_clear_error(&b->w.error);
	g_free(b->w.ca_pem);
	g_free(b->w.cert_pem);
	herd_formation_free(b->f);
	herd_cluster_free(b->c);
	testbus_free(b->bus);
	g_autofree char *conf = g_build_filename(b->corosync_dir, "corosync.conf", NULL);
	g_unlink(conf);
	g_autofree char *key = g_build_filename(b->corosync_dir, "authkey", NULL);
	g_unlink(key);
	g_rmdir(b->corosync_dir);
	g_rmdir(b->dir);
	g_free(b->corosync_dir);
	g_free(b->dir);
	g_free(b);
}

static void test_create(void)
{
	g_autoptr(GError) err = NULL;
	bed *b = bed_new();
	world *w = &b->w;
	herd_cluster *c = b->c;

	const char *links[] = { "10.98.0.1" };
	g_autoptr(json_t) settings = json_object();
	herd_formation_create(b->f, "alpha", links, 1, "long-enough-pw", settings, "root", on_done, w);
	/* Back at once: the hash and keys are being made on a worker, the main
	 * loop is free, and nothing is seeded yet; a second create meanwhile
	 * is refused. */
	g_assert_false(w->done);
	g_assert_false(herd_cluster_exists(c));
	g_assert_null(w->ca_pem);
	refusal r = { 0 };
	herd_formation_create(b->f, "beta", links, 1, "long-enough-pw", settings, "root", on_refused, &r);
	g_assert_true(r.done);

	gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
	while (!w->done && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_assert_true(w->done);
	g_assert_no_error(w->error);
	g_assert_true(herd_cluster_exists(c));
	g_assert_cmpuint(w->services, ==, 1);
	/* what the worker made: a CA, this node's certificate under it, and
	 * the admin's password hash that the store keeps */
	g_assert_nonnull(w->ca_pem);
	g_assert_true(herd_tls_verify(w->cert_pem, w->ca_pem, &err));
	g_assert_no_error(err);
	const store_cluster *sc = store_cluster_of(store_state_cluster(herd_cluster_state(c)));
	g_assert_cmpstr(store_state_cluster(herd_cluster_state(c))->name, ==, "alpha");
	g_assert_cmpstr(sc->ca_cert, ==, w->ca_pem);
	bed_free(b);
}

static bool synced(herd_cluster *c)
{
	replica *r = herd_cluster_replica(c);
	return herd_cluster_exists(c) && replica_get_phase(r) == REPLICA_SYNCED && replica_is_primary(r);
}

/* A create (and a join alike) is answered as soon as its store is in sync
 * with a quorate cluster: the events of the store's sync end the wait, as
 * soon as the main loop is back from them, not a timer's next tick. */
static void test_answered_at_sync(void)
{
	bed *b = bed_new();
	const char *links[] = { "10.98.0.1" };
	g_autoptr(json_t) settings = json_object();
	herd_formation_create(b->f, "alpha", links, 1, "long-enough-pw", settings, "root", on_done,
			      &b->w);
	gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
	while (!synced(b->c) && !b->w.done && g_get_monotonic_time() < deadline)
		g_main_context_iteration(NULL, TRUE);
	g_assert_true(synced(b->c));
	/* What is ready to run now, without waiting for any timer */
	while (!b->w.done && g_main_context_iteration(NULL, FALSE))
		;
	g_assert_true(b->w.done);
	g_assert_no_error(b->w.error);
	g_assert_cmpstr(json_string_value(json_object_get(b->w.result, "cluster")), ==, "alpha");
	bed_free(b);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/formation/create", test_create);
	g_test_add_func("/formation/answered-at-sync", test_answered_at_sync);
	return g_test_run();
}
