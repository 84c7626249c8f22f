#define G_LOG_DOMAIN "san"
#include "daemon/storage_cert.h"

#include "common/error.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/node.h"

#include <string.h>

/* As a node's certificate from its join (CERT_DAYS, cluster/formation_priv.h). */
#define STORAGE_CERT_DAYS 3650

/* Does @dir hold a certificate for @address signed by @ca_pem, with its CA
 * and key? */
static bool covers(const char *dir, const char *ca_pem, const char *address)
{
	g_autofree char *ca = g_build_filename(dir, "ca.crt", NULL);
	g_autofree char *crt = g_build_filename(dir, "node.crt", NULL);
	g_autofree char *key = g_build_filename(dir, "node.key", NULL);
	g_autofree char *ca_text = NULL, *crt_text = NULL;
	return g_file_get_contents(ca, &ca_text, NULL, NULL) && strcmp(ca_text, ca_pem) == 0 &&
	       g_file_test(key, G_FILE_TEST_EXISTS) && g_file_get_contents(crt, &crt_text, NULL, NULL) &&
	       herd_tls_check_virt(crt_text, ca_pem, address, NULL);
}

char *herd_storage_cert_dir(store_state *st, const char *node_name, const char *tls_dir, GError **error)
{
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, node_name);
	const store_node *n = me ? store_node_of(me) : NULL;
	if (!n || !n->storage_address)
		return g_strdup(tls_dir);
	store_object *cluster = store_state_cluster(st);
	const store_cluster *c = cluster ? store_cluster_of(cluster) : NULL;
	if (!c || !c->ca_cert || !c->ca_key) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "No cluster CA in the store to sign a certificate for storage address %s.",
			    n->storage_address);
		return NULL;
	}
	g_autofree char *dir = g_build_filename(tls_dir, "esan", NULL);
	if (covers(dir, c->ca_cert, n->storage_address))
		return g_steal_pointer(&dir);
	g_autoptr(GPtrArray) sans = g_ptr_array_new();
	g_ptr_array_add(sans, (gpointer)node_name);
	for (size_t i = 0; i < n->n_links; i++)
		g_ptr_array_add(sans, (gpointer)n->links[i]);
	g_ptr_array_add(sans, (gpointer)n->storage_address);
	g_ptr_array_add(sans, NULL);
	g_autofree char *cert = NULL, *key = NULL;
	g_autofree char *ca = g_build_filename(dir, "ca.crt", NULL);
	g_autofree char *crt = g_build_filename(dir, "node.crt", NULL);
	g_autofree char *key_path = g_build_filename(dir, "node.key", NULL);
	if (!herd_tls_generate(node_name, (const char *const *)sans->pdata, c->ca_cert, c->ca_key, false,
			       STORAGE_CERT_DAYS, &cert, &key, error) ||
	    !herd_mkdir_p(dir, 0700, error) ||
	    !herd_file_write_atomic(key_path, key, strlen(key), 0600, error) ||
	    !herd_file_write_atomic(crt, cert, strlen(cert), 0644, error) ||
	    !herd_file_write_atomic(ca, c->ca_cert, strlen(c->ca_cert), 0644, error))
		return NULL;
	log_info("made a certificate for this node's storage address %s in %s", n->storage_address, dir);
	return g_steal_pointer(&dir);
}
