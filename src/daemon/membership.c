#define G_LOG_DOMAIN "daemon"
#include "daemon/membership.h"

#include "cluster/service.h"
#include "common/error.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "daemon/tls_setup.h"

#include <string.h>
#include <unistd.h>

bool herdd_install_tls(herdd *d, const char *ca_pem, const char *cert_pem, const char *key_pem,
		       GError **error)
{
	g_autofree char *ca = g_build_filename(d->tls_dir, "ca.crt", NULL);
	g_autofree char *cert = g_build_filename(d->tls_dir, "node.crt", NULL);
	g_autofree char *key = g_build_filename(d->tls_dir, "node.key", NULL);
	return herd_mkdir_p(d->tls_dir, 0700, error) &&
	       herd_file_write_atomic(ca, ca_pem, strlen(ca_pem), 0644, error) &&
	       herd_file_write_atomic(key, key_pem, strlen(key_pem), 0600, error) &&
	       herd_file_write_atomic(cert, cert_pem, strlen(cert_pem), 0644, error) &&
	       herdd_tls_load(d, error) && herdd_restart_tcp(d, error);
}

bool herdd_reset_tls(herdd *d, GError **error)
{
	const char *files[] = { "ca.crt", "node.crt", "node.key" };
	for (unsigned i = 0; i < G_N_ELEMENTS(files); i++) {
		g_autofree char *p = g_build_filename(d->tls_dir, files[i], NULL);
		unlink(p);
	}
	return herdd_tls_load(d, error) && herdd_restart_tcp(d, error);
}

char *herdd_ca_pem(herdd *d)
{
	g_autofree char *ca = g_build_filename(d->tls_dir, "ca.crt", NULL);
	char *pem = NULL;
	return g_file_get_contents(ca, &pem, NULL, NULL) ? pem : NULL;
}

typedef struct {
	herdd *d;
	herdd_synced_fn fn;
	gpointer user;
	gint64 deadline_us;
} sync_wait;

static gboolean on_sync_poll(gpointer data)
{
	sync_wait *w = data;
	replica *r = herd_cluster_replica(w->d->cluster);
	bool ready = herd_cluster_exists(w->d->cluster) && replica_get_phase(r) == REPLICA_SYNCED &&
		     replica_is_primary(r);
	if (!ready && g_get_monotonic_time() < w->deadline_us)
		return G_SOURCE_CONTINUE;
	g_autoptr(GError) err = NULL;
	if (!ready) {
		herd_error_code code;
		const char *why = replica_refusal(r, &code);
		err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
				  "corosync runs, but this node did not get in sync with a quorate cluster in time%s%s",
				  why ? ": " : ".", why ? why : "");
	}
	w->fn(w->d, err, w->user);
	g_free(w);
	return G_SOURCE_REMOVE;
}

void herdd_wait_synced(herdd *d, unsigned timeout_ms, herdd_synced_fn fn, gpointer user)
{
	sync_wait *w = g_new0(sync_wait, 1);
	w->d = d;
	w->fn = fn;
	w->user = user;
	w->deadline_us = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	g_timeout_add(50, on_sync_poll, w);
}
