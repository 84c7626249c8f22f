#define G_LOG_DOMAIN "daemon"
#include "daemon/certificate.h"

#include "common/fileutil.h"
#include "common/log.h"
#include "common/tls.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

bool herdd_tls_load(herdd *d, GError **error)
{
	g_autofree char *cert_path = g_build_filename(d->tls_dir, "node.crt", NULL);
	g_autofree char *key_path = g_build_filename(d->tls_dir, "node.key", NULL);
	g_autofree char *cert = NULL, *key = NULL;

	if (!herd_mkdir_p(d->tls_dir, 0700, error))
		return false;
	if (!g_file_test(cert_path, G_FILE_TEST_EXISTS) || !g_file_test(key_path, G_FILE_TEST_EXISTS)) {
		/* Until this node is part of a cluster it has no CA to sign its
		 * certificate: a self-signed one keeps the API off plain text. */
		const char *sans[] = { d->cfg->node_name, NULL };
		if (!herd_tls_generate(d->cfg->node_name, sans, NULL, NULL, false, 3650, &cert, &key,
				       error))
			return false;
		if (!herd_file_write_atomic(key_path, key, strlen(key), 0600, error) ||
		    !herd_file_write_atomic(cert_path, cert, strlen(cert), 0644, error))
			return false;
		log_info("made a self-signed API certificate in %s", cert_path);
	} else if (!g_file_get_contents(cert_path, &cert, NULL, error) ||
		   !g_file_get_contents(key_path, &key, NULL, error)) {
		return false;
	}
	g_autofree char *fp = herd_tls_fingerprint(cert, error);
	if (!fp)
		return false;
	g_free(d->tls_cert_pem);
	g_free(d->tls_key_pem);
	g_free(d->tls_fingerprint);
	d->tls_cert_pem = g_steal_pointer(&cert);
	d->tls_key_pem = g_steal_pointer(&key);
	d->tls_fingerprint = g_steal_pointer(&fp);
	d->node_info.tls_fingerprint = d->tls_fingerprint;
	return true;
}

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
