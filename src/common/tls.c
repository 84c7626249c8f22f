#include "tls.h"

#include "error.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <time.h>

/*
 * The key usage of a node certificate (gnutls marks it critical).  Key
 * encipherment means nothing for an ECDSA key, but libvirt 9.0 refuses a
 * certificate whose critical key usage lacks it ("usage does not permit key
 * encipherment"), and node certificates also authenticate the nodes'
 * libvirtds to each other (herd_tls_check_virt()).
 */
#define NODE_KEY_USAGE \
	(GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT | GNUTLS_KEY_KEY_AGREEMENT)

static bool tls_fail(GError **error, const char *what, int rc)
{
	g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL, "%s: %s.", what, gnutls_strerror(rc));
	return false;
}

static char *export_pem(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
	gnutls_datum_t out = { 0 };
	int rc = crt ? gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out)
		     : gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out);
	if (rc < 0)
		return NULL;
	char *s = g_strndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	return s;
}

static int import_crt(gnutls_x509_crt_t crt, const char *pem)
{
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)strlen(pem) };
	return gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
}

bool herd_tls_generate(const char *common_name, const char *const *sans,
		       const char *issuer_cert_pem, const char *issuer_key_pem, bool is_ca,
		       unsigned days, char **cert_pem, char **key_pem, GError **error)
{
	gnutls_x509_privkey_t key = NULL, ikey = NULL;
	gnutls_x509_crt_t crt = NULL, icrt = NULL;
	bool ok = false;
	int rc;

	if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
	    (rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0) {
		tls_fail(error, "Cannot generate a key", rc);
		goto out;
	}
	if ((rc = gnutls_x509_crt_init(&crt)) < 0)
		goto crt_fail;
	unsigned char serial[16];
	gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	serial[0] &= 0x7f; /* keep it positive */
	time_t now = time(NULL);
	if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (rc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400)) < 0 ||
	    (rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, common_name,
						(unsigned)strlen(common_name))) < 0 ||
	    (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (rc = gnutls_x509_crt_set_basic_constraints(crt, is_ca, -1)) < 0)
		goto crt_fail;
	if (is_ca)
		rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
						   GNUTLS_KEY_DIGITAL_SIGNATURE);
	else
		rc = gnutls_x509_crt_set_key_usage(crt, NODE_KEY_USAGE);
	if (rc < 0)
		goto crt_fail;
	if (!is_ca && ((rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
		       (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0))
		goto crt_fail;
	for (const char *const *s = sans; s && *s; s++) {
		unsigned char ip[16];
		if (inet_pton(AF_INET, *s, ip) == 1)
			rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
								  GNUTLS_FSAN_APPEND);
		else if (inet_pton(AF_INET6, *s, ip) == 1)
			rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
								  GNUTLS_FSAN_APPEND);
		else
			rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, *s,
								  (unsigned)strlen(*s),
								  GNUTLS_FSAN_APPEND);
		if (rc < 0)
			goto crt_fail;
	}
	unsigned char keyid[64];
	size_t keyid_size = sizeof(keyid);
	if ((rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, keyid, &keyid_size)) < 0 ||
	    (rc = gnutls_x509_crt_set_subject_key_id(crt, keyid, keyid_size)) < 0)
		goto crt_fail;

	if (issuer_cert_pem && issuer_key_pem) {
		gnutls_datum_t kd = { (unsigned char *)issuer_key_pem, (unsigned)strlen(issuer_key_pem) };
		if ((rc = gnutls_x509_crt_init(&icrt)) < 0 || (rc = import_crt(icrt, issuer_cert_pem)) < 0 ||
		    (rc = gnutls_x509_privkey_init(&ikey)) < 0 ||
		    (rc = gnutls_x509_privkey_import(ikey, &kd, GNUTLS_X509_FMT_PEM)) < 0) {
			tls_fail(error, "Cannot read the issuing CA", rc);
			goto out;
		}
		keyid_size = sizeof(keyid);
		if (gnutls_x509_crt_get_subject_key_id(icrt, keyid, &keyid_size, NULL) >= 0)
			gnutls_x509_crt_set_authority_key_id(crt, keyid, keyid_size);
		rc = gnutls_x509_crt_sign2(crt, icrt, ikey, GNUTLS_DIG_SHA256, 0);
	} else {
		rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
	}
	if (rc < 0)
		goto crt_fail;
	*cert_pem = export_pem(crt, NULL);
	*key_pem = export_pem(NULL, key);
	ok = *cert_pem && *key_pem;
	if (!ok)
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL, "Cannot export the certificate.");
	goto out;
crt_fail:
	tls_fail(error, "Cannot make the certificate", rc);
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (icrt)
		gnutls_x509_crt_deinit(icrt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	if (ikey)
		gnutls_x509_privkey_deinit(ikey);
	return ok;
}

bool herd_tls_make_csr(const char *common_name, char **csr_pem, char **key_pem, GError **error)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crq_t crq = NULL;
	gnutls_datum_t out = { 0 };
	bool ok = false;
	int rc;
	if ((rc = gnutls_x509_privkey_init(&key)) < 0 ||
	    (rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
					       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0 ||
	    (rc = gnutls_x509_crq_init(&crq)) < 0 ||
	    (rc = gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, common_name,
						(unsigned)strlen(common_name))) < 0 ||
	    (rc = gnutls_x509_crq_set_key(crq, key)) < 0 ||
	    (rc = gnutls_x509_crq_sign2(crq, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (rc = gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &out)) < 0) {
		tls_fail(error, "Cannot make a certificate request", rc);
		goto out;
	}
	*csr_pem = g_strndup((const char *)out.data, out.size);
	*key_pem = export_pem(NULL, key);
	ok = *key_pem != NULL;
out:
	gnutls_free(out.data);
	if (crq)
		gnutls_x509_crq_deinit(crq);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return ok;
}

char *herd_tls_sign_csr(const char *csr_pem, const char *expect_cn, const char *const *sans,
			const char *ca_cert_pem, const char *ca_key_pem, unsigned days,
			GError **error)
{
	gnutls_x509_crq_t crq = NULL;
	gnutls_x509_crt_t crt = NULL, ca = NULL;
	gnutls_x509_privkey_t ca_key = NULL;
	char *result = NULL;
	char cn[256];
	size_t cn_size = sizeof(cn);
	int rc;
	gnutls_datum_t d = { (unsigned char *)csr_pem, (unsigned)strlen(csr_pem) };
	gnutls_datum_t kd = { (unsigned char *)ca_key_pem, (unsigned)strlen(ca_key_pem) };
	if ((rc = gnutls_x509_crq_init(&crq)) < 0 ||
	    (rc = gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_PEM)) < 0 ||
	    (rc = gnutls_x509_crq_verify(crq, 0)) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The certificate request is malformed or not self-signed: %s.",
			    gnutls_strerror(rc));
		goto out;
	}
	if (gnutls_x509_crq_get_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_size) < 0 ||
	    strcmp(cn, expect_cn) != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The certificate request is not for node '%s'.", expect_cn);
		goto out;
	}
	if ((rc = gnutls_x509_crt_init(&ca)) < 0 || (rc = import_crt(ca, ca_cert_pem)) < 0 ||
	    (rc = gnutls_x509_privkey_init(&ca_key)) < 0 ||
	    (rc = gnutls_x509_privkey_import(ca_key, &kd, GNUTLS_X509_FMT_PEM)) < 0) {
		tls_fail(error, "Cannot read the cluster's CA", rc);
		goto out;
	}
	unsigned char serial[16];
	gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	serial[0] &= 0x7f;
	time_t now = time(NULL);
	if ((rc = gnutls_x509_crt_init(&crt)) < 0 ||
	    (rc = gnutls_x509_crt_set_crq(crt, crq)) < 0 ||
	    (rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (rc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400)) < 0 ||
	    (rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (rc = gnutls_x509_crt_set_key_usage(crt, NODE_KEY_USAGE)) < 0 ||
	    (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0)
		goto crt_fail;
	for (const char *const *s = sans; s && *s; s++) {
		unsigned char ip[16];
		if (inet_pton(AF_INET, *s, ip) == 1)
			rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4,
								  GNUTLS_FSAN_APPEND);
		else if (inet_pton(AF_INET6, *s, ip) == 1)
			rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16,
								  GNUTLS_FSAN_APPEND);
		else
			rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, *s,
								  (unsigned)strlen(*s), GNUTLS_FSAN_APPEND);
		if (rc < 0)
			goto crt_fail;
	}
	if ((rc = gnutls_x509_crt_sign2(crt, ca, ca_key, GNUTLS_DIG_SHA256, 0)) < 0)
		goto crt_fail;
	result = export_pem(crt, NULL);
	goto out;
crt_fail:
	tls_fail(error, "Cannot sign the certificate", rc);
out:
	if (crq)
		gnutls_x509_crq_deinit(crq);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (ca)
		gnutls_x509_crt_deinit(ca);
	if (ca_key)
		gnutls_x509_privkey_deinit(ca_key);
	return result;
}

bool herd_tls_random(void *buf, size_t n)
{
	return gnutls_rnd(GNUTLS_RND_KEY, buf, n) == 0;
}

static char *format_fingerprint(const unsigned char *d, size_t n)
{
	GString *s = g_string_sized_new(n * 3);
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, "%s%02X", i ? ":" : "", d[i]);
	return g_string_free(s, FALSE);
}

char *herd_tls_fingerprint(const char *cert_pem, GError **error)
{
	gnutls_x509_crt_t crt;
	unsigned char digest[32];
	size_t size = sizeof(digest);
	int rc;
	if ((rc = gnutls_x509_crt_init(&crt)) < 0) {
		tls_fail(error, "Cannot read the certificate", rc);
		return NULL;
	}
	rc = import_crt(crt, cert_pem);
	if (rc >= 0)
		rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, digest, &size);
	gnutls_x509_crt_deinit(crt);
	if (rc < 0) {
		tls_fail(error, "Cannot read the certificate", rc);
		return NULL;
	}
	return format_fingerprint(digest, size);
}

char *herd_tls_fingerprint_normalize(const char *text)
{
	unsigned char d[32];
	size_t n = 0;
	if (g_ascii_strncasecmp(text, "sha256:", 7) == 0)
		text += 7;
	for (const char *p = text; *p; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (!g_ascii_isxdigit(p[0]) || !g_ascii_isxdigit(p[1]) || n == sizeof(d))
			return NULL;
		d[n++] = (unsigned char)(g_ascii_xdigit_value(p[0]) * 16 + g_ascii_xdigit_value(p[1]));
		p++;
	}
	return n == sizeof(d) ? format_fingerprint(d, n) : NULL;
}

bool herd_tls_verify(const char *cert_pem, const char *ca_pem, GError **error)
{
	gnutls_x509_crt_t crt = NULL, ca = NULL;
	unsigned status = 0;
	int rc;
	bool ok = false;
	if ((rc = gnutls_x509_crt_init(&crt)) < 0 || (rc = import_crt(crt, cert_pem)) < 0 ||
	    (rc = gnutls_x509_crt_init(&ca)) < 0 || (rc = import_crt(ca, ca_pem)) < 0) {
		tls_fail(error, "Cannot read the certificate", rc);
		goto out;
	}
	rc = gnutls_x509_crt_list_verify(&crt, 1, &ca, 1, NULL, 0, 0, &status);
	if (rc < 0 || status != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "The certificate is not signed by the cluster's CA or not valid now.");
		goto out;
	}
	ok = true;
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (ca)
		gnutls_x509_crt_deinit(ca);
	return ok;
}

/* The key purposes of @crt allow a TLS server and a TLS client (no key
 * purpose extension at all allows every use). */
static bool purposes_allow_server_and_client(gnutls_x509_crt_t crt, bool *server, bool *client)
{
	*server = *client = false;
	for (unsigned i = 0;; i++) {
		char oid[128];
		size_t size = sizeof(oid);
		int rc = gnutls_x509_crt_get_key_purpose_oid(crt, i, oid, &size, NULL);
		if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
			if (i == 0)
				*server = *client = true;
			break;
		}
		if (rc < 0)
			return false;
		if (strcmp(oid, GNUTLS_KP_TLS_WWW_SERVER) == 0)
			*server = true;
		else if (strcmp(oid, GNUTLS_KP_TLS_WWW_CLIENT) == 0)
			*client = true;
		else if (strcmp(oid, GNUTLS_KP_ANY) == 0)
			*server = *client = true;
	}
	return *server && *client;
}

bool herd_tls_check_virt(const char *cert_pem, const char *ca_pem, const char *host,
			 GError **error)
{
	gnutls_x509_crt_t crt = NULL;
	unsigned usage = 0, critical = 0;
	bool server, client, ok = false;
	int rc;

	if (!host || !*host) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "No host name to check the certificate against.");
		return false;
	}
	if (!herd_tls_verify(cert_pem, ca_pem, error))
		return false;
	if ((rc = gnutls_x509_crt_init(&crt)) < 0 || (rc = import_crt(crt, cert_pem)) < 0) {
		tls_fail(error, "Cannot read the certificate", rc);
		goto out;
	}
	if (gnutls_x509_crt_get_basic_constraints(crt, NULL, NULL, NULL) > 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The certificate is a CA's; libvirt and QEMU want a node's certificate.");
		goto out;
	}
	rc = gnutls_x509_crt_get_key_usage(crt, &usage, &critical);
	if (rc < 0 && rc != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE) {
		tls_fail(error, "Cannot read the certificate's key usage", rc);
		goto out;
	}
	if (rc >= 0 && critical && !(usage & GNUTLS_KEY_DIGITAL_SIGNATURE)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The certificate's key usage does not permit digital signatures, which libvirt and QEMU require.");
		goto out;
	}
	if (rc >= 0 && critical && !(usage & GNUTLS_KEY_KEY_ENCIPHERMENT)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The certificate's key usage does not permit key encipherment, which libvirt requires.");
		goto out;
	}
	if (!purposes_allow_server_and_client(crt, &server, &client)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The certificate's key purposes do not allow a TLS %s; a node's libvirtd and QEMU are both.",
			    !server ? "server" : "client");
		goto out;
	}
	if (!gnutls_x509_crt_check_hostname(crt, host)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The certificate is not for '%s': it is neither among its alternative names nor its common name.",
			    host);
		goto out;
	}
	ok = true;
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	return ok;
}
