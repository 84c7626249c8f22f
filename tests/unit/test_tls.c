/* Certificates: CA, CA-signed and self-signed certificates, verification,
 * fingerprints, certificate requests. */
#include "common/error.h"
#include "common/tls.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <arpa/inet.h>
#include <string.h>
#include <time.h>

typedef struct {
	char *cert, *key;
} pair;

static pair ca, other_ca;

static void pair_clear(pair *p)
{
	g_clear_pointer(&p->cert, g_free);
	g_clear_pointer(&p->key, g_free);
}

static pair make(const char *cn, const char *const *sans, const pair *issuer, bool is_ca)
{
	pair p = { 0 };
	g_autoptr(GError) error = NULL;
	g_assert_true(herd_tls_generate(cn, sans, issuer ? issuer->cert : NULL,
					issuer ? issuer->key : NULL, is_ca, 30, &p.cert, &p.key,
					&error));
	g_assert_no_error(error);
	return p;
}

static gnutls_x509_crt_t load(const char *pem)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t d = { (unsigned char *)pem, (unsigned)strlen(pem) };
	g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), ==, 0);
	return crt;
}

static char *common_name(const char *pem)
{
	gnutls_x509_crt_t crt = load(pem);
	char cn[256];
	size_t n = sizeof(cn);
	g_assert_cmpint(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &n),
			==, 0);
	gnutls_x509_crt_deinit(crt);
	return g_strdup(cn);
}

/* The subject alternative names as "ip:…"/"dns:…" joined by spaces. */
static char *alt_names(const char *pem)
{
	gnutls_x509_crt_t crt = load(pem);
	GString *out = g_string_new(NULL);
	for (unsigned i = 0;; i++) {
		char buf[256];
		size_t n = sizeof(buf);
		int type = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &n, NULL);
		if (type < 0)
			break;
		if (out->len)
			g_string_append_c(out, ' ');
		if (type == GNUTLS_SAN_IPADDRESS) {
			char text[INET6_ADDRSTRLEN];
			g_assert_nonnull(inet_ntop(n == 4 ? AF_INET : AF_INET6, buf, text, sizeof(text)));
			g_string_append_printf(out, "ip:%s", text);
		} else if (type == GNUTLS_SAN_DNSNAME) {
			g_string_append_printf(out, "dns:%.*s", (int)n, buf);
		} else {
			g_string_append(out, "other");
		}
	}
	gnutls_x509_crt_deinit(crt);
	return g_string_free(out, FALSE);
}

static void expect_not_verified(const char *cert, const char *ca_pem)
{
	g_autoptr(GError) error = NULL;
	g_assert_false(herd_tls_verify(cert, ca_pem, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	g_assert_nonnull(strstr(error->message, "not signed by the cluster's CA"));
}

static void test_generate_and_verify(void)
{
	const char *const sans[] = { "10.99.0.1", "fe80::1", "n1.example", NULL };
	pair node = make("n1", sans, &ca, false);
	g_assert_true(g_str_has_prefix(node.cert, "-----BEGIN CERTIFICATE-----"));
	g_assert_nonnull(strstr(node.key, "PRIVATE KEY-----"));
	g_autofree char *cn = common_name(node.cert);
	g_assert_cmpstr(cn, ==, "n1");
	g_autofree char *alts = alt_names(node.cert);
	g_assert_cmpstr(alts, ==, "ip:10.99.0.1 ip:fe80::1 dns:n1.example");

	gnutls_x509_crt_t c = load(node.cert), a = load(ca.cert);
	unsigned critical;
	g_assert_cmpint(gnutls_x509_crt_get_ca_status(c, &critical), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_get_ca_status(a, &critical), >, 0);
	g_assert_true(gnutls_x509_crt_check_issuer(c, a));
	gnutls_x509_crt_deinit(c);
	gnutls_x509_crt_deinit(a);

	g_autoptr(GError) error = NULL;
	g_assert_true(herd_tls_verify(node.cert, ca.cert, &error));
	g_assert_no_error(error);
	/* another cluster's CA */
	expect_not_verified(node.cert, other_ca.cert);
	/* a self-signed certificate of the same name */
	pair self = make("n1", NULL, NULL, false);
	expect_not_verified(self.cert, ca.cert);
	/* signed by a node certificate (not a CA) */
	pair leaf = make("n2", NULL, &node, false);
	expect_not_verified(leaf.cert, node.cert);
	expect_not_verified(leaf.cert, ca.cert);
	pair_clear(&leaf);
	pair_clear(&self);
	pair_clear(&node);
}

static void test_verify_garbage(void)
{
	g_autoptr(GError) error = NULL;
	g_assert_false(herd_tls_verify("not a certificate", ca.cert, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "Cannot read the certificate"));
	g_clear_error(&error);
	g_assert_false(herd_tls_verify(ca.cert, "", &error));
	g_assert_nonnull(strstr(error->message, "Cannot read the certificate"));
	g_clear_error(&error);
	/* a PEM block with a corrupted body */
	g_autofree char *bad = g_strdup(ca.cert);
	char *mid = bad + strlen(bad) / 2;
	*mid = *mid == 'A' ? 'B' : 'A';
	g_assert_false(herd_tls_verify(bad, ca.cert, &error));
	g_assert_nonnull(error);
}

static void test_generate_bad_issuer(void)
{
	char *cert = NULL, *key = NULL;
	g_autoptr(GError) error = NULL;
	g_assert_false(herd_tls_generate("n1", NULL, ca.cert, "garbage", false, 30, &cert, &key,
					 &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "Cannot read the issuing CA"));
	g_assert_null(cert);
	g_assert_null(key);
	g_clear_error(&error);
	g_assert_false(herd_tls_generate("n1", NULL, "garbage", ca.key, false, 30, &cert, &key,
					 &error));
	g_assert_nonnull(strstr(error->message, "Cannot read the issuing CA"));
	g_assert_null(cert);
}

/* The fingerprint is the SHA-256 of the certificate's DER bytes. */
static void test_fingerprint(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *fp = herd_tls_fingerprint(ca.cert, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(strlen(fp), ==, 32 * 3 - 1);
	for (int i = 0; i < 32 * 3 - 1; i++) {
		if (i % 3 == 2)
			g_assert_cmpint(fp[i], ==, ':');
		else
			g_assert_true(g_ascii_isdigit(fp[i]) || (fp[i] >= 'A' && fp[i] <= 'F'));
	}
	/* independently: base64 body of the PEM, hashed */
	const char *begin = strstr(ca.cert, "-----\n") + 6;
	const char *end = strstr(begin, "-----END");
	g_autofree char *b64 = g_strndup(begin, (gsize)(end - begin));
	gsize der_len;
	g_autofree guchar *der = g_base64_decode(b64, &der_len);
	g_autofree char *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, der, der_len);
	g_autofree char *up = g_ascii_strup(hex, -1);
	g_auto(GStrv) bytes = g_strsplit(fp, ":", -1);
	g_autofree char *joined = g_strjoinv("", bytes);
	g_assert_cmpstr(joined, ==, up);

	/* the same certificate, the same fingerprint; another, another */
	g_autofree char *again = herd_tls_fingerprint(ca.cert, NULL);
	g_assert_cmpstr(fp, ==, again);
	g_autofree char *other = herd_tls_fingerprint(other_ca.cert, NULL);
	g_assert_cmpstr(fp, !=, other);

	g_assert_null(herd_tls_fingerprint("garbage", &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "Cannot read the certificate"));
}

static void expect_normalized(const char *in, const char *want)
{
	g_autofree char *got = herd_tls_fingerprint_normalize(in);
	if (g_strcmp0(got, want) != 0)
		g_error("normalize('%s') = '%s', expected '%s'", in, got ? got : "(null)",
			want ? want : "(null)");
}

#define FP "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
#define HEX "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

static void test_fingerprint_normalize(void)
{
	expect_normalized(FP, FP);
	expect_normalized(HEX, FP);
	expect_normalized("sha256:" HEX, FP);
	expect_normalized("SHA256:" FP, FP);
	expect_normalized("ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89", FP);
	/* spaces as typed or pasted */
	expect_normalized("AB CD EF 01 23 45 67 89 AB CD EF 01 23 45 67 89 AB CD EF 01 23 45 67 89 AB CD EF 01 23 45 67 89", FP);
	/* what herd_tls_fingerprint gives is already normal */
	g_autofree char *fp = herd_tls_fingerprint(ca.cert, NULL);
	expect_normalized(fp, fp);

	/* wrong length */
	expect_normalized("", NULL);
	expect_normalized("sha256:", NULL);
	expect_normalized("AB:CD", NULL);
	expect_normalized("AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67", NULL); /* 31 bytes */
	expect_normalized(HEX "ab", NULL);                /* 33 bytes */
	expect_normalized(FP ":AB", NULL);
	expect_normalized("abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678", NULL); /* odd */
	/* a half byte split by a colon */
	expect_normalized("A:BCD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89", NULL);
	/* not hex */
	expect_normalized("gbcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", NULL);
	expect_normalized("abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678z", NULL);
	expect_normalized("sha1:" HEX, NULL);
	expect_normalized("sha256:sha256:" HEX, NULL);
	expect_normalized("sha256" HEX, NULL);
	expect_normalized(HEX "\n", NULL);
	expect_normalized("\xc3\xa9" HEX, NULL);
}

static void test_csr(void)
{
	g_autofree char *csr = NULL, *key = NULL;
	g_autoptr(GError) error = NULL;
	g_assert_true(herd_tls_make_csr("n2", &csr, &key, &error));
	g_assert_no_error(error);
	g_assert_true(g_str_has_prefix(csr, "-----BEGIN NEW CERTIFICATE REQUEST-----"));
	g_assert_nonnull(strstr(key, "PRIVATE KEY-----"));

	const char *const sans[] = { "10.99.0.2", NULL };
	g_autofree char *cert = herd_tls_sign_csr(csr, "n2", sans, ca.cert, ca.key, 30, &error);
	g_assert_no_error(error);
	g_assert_nonnull(cert);
	g_assert_true(herd_tls_verify(cert, ca.cert, NULL));
	g_assert_false(herd_tls_verify(cert, other_ca.cert, NULL));
	g_autofree char *cn = common_name(cert);
	g_assert_cmpstr(cn, ==, "n2");
	g_autofree char *alts = alt_names(cert);
	g_assert_cmpstr(alts, ==, "ip:10.99.0.2");
	gnutls_x509_crt_t c = load(cert);
	unsigned critical;
	g_assert_cmpint(gnutls_x509_crt_get_ca_status(c, &critical), ==, 0); /* not a CA */
	gnutls_x509_crt_deinit(c);

	/* the certificate carries the request's key: it pairs with @key */
	gnutls_certificate_credentials_t cred;
	gnutls_certificate_allocate_credentials(&cred);
	gnutls_datum_t cd = { (unsigned char *)cert, (unsigned)strlen(cert) };
	gnutls_datum_t kd = { (unsigned char *)key, (unsigned)strlen(key) };
	g_assert_cmpint(gnutls_certificate_set_x509_key_mem(cred, &cd, &kd, GNUTLS_X509_FMT_PEM), >=, 0);
	gnutls_datum_t okd = { (unsigned char *)ca.key, (unsigned)strlen(ca.key) };
	g_assert_cmpint(gnutls_certificate_set_x509_key_mem(cred, &cd, &okd, GNUTLS_X509_FMT_PEM), <, 0);
	gnutls_certificate_free_credentials(cred);
}

static void expect_sign_refused(const char *csr, const char *cn, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *cert = herd_tls_sign_csr(csr, cn, NULL, ca.cert, ca.key, 30, &error);
	g_assert_null(cert);
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
}

/* A request made by hand with @cn given as @cn_len raw bytes. */
static char *raw_csr(const char *cn, size_t cn_len)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crq_t crq;
	gnutls_datum_t out = { 0 };
	g_assert_cmpint(gnutls_x509_privkey_init(&key), ==, 0);
	g_assert_cmpint(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
						     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), ==, 0);
	g_assert_cmpint(gnutls_x509_crq_init(&crq), ==, 0);
	g_assert_cmpint(gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
						      (unsigned)cn_len), ==, 0);
	g_assert_cmpint(gnutls_x509_crq_set_key(crq, key), ==, 0);
	g_assert_cmpint(gnutls_x509_crq_sign2(crq, key, GNUTLS_DIG_SHA256, 0), ==, 0);
	g_assert_cmpint(gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &out), ==, 0);
	char *pem = g_strndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	gnutls_x509_crq_deinit(crq);
	gnutls_x509_privkey_deinit(key);
	return pem;
}

static void test_csr_refused(void)
{
	g_autofree char *csr = NULL, *key = NULL;
	g_assert_true(herd_tls_make_csr("n2", &csr, &key, NULL));
	/* a request for another node */
	expect_sign_refused(csr, "n3", "not for node 'n3'");
	expect_sign_refused(csr, "n", "not for node 'n'");
	expect_sign_refused(csr, "n22", "not for node 'n22'");
	/* garbage, empty, a certificate instead of a request */
	expect_sign_refused("garbage", "n2", "malformed or not self-signed");
	expect_sign_refused("", "n2", "malformed");
	expect_sign_refused(ca.cert, "n2", "malformed");
	/* a request whose signature does not match its content */
	g_autofree char *tampered = g_strdup(csr);
	char *sig = strstr(tampered, "-----END") - 10;
	*sig = *sig == 'A' ? 'B' : 'A';
	expect_sign_refused(tampered, "n2", "malformed or not self-signed");
	/* a NUL inside the common name must not pass for the name before it */
	g_autofree char *nul = raw_csr("n2\0evil", 7);
	expect_sign_refused(nul, "n2", "");
	/* the same made by hand for the right name is signed */
	g_autofree char *ok = raw_csr("n2", 2);
	g_autofree char *good = herd_tls_sign_csr(ok, "n2", NULL, ca.cert, ca.key, 30, NULL);
	g_assert_nonnull(good);

	/* a broken CA is reported, not a certificate made */
	g_autoptr(GError) error = NULL;
	g_assert_null(herd_tls_sign_csr(csr, "n2", NULL, ca.cert, "garbage", 30, &error));
	g_assert_nonnull(strstr(error->message, "Cannot read the cluster's CA"));
}

/* A certificate for "n1" signed by the test CA with the given key usage
 * (0: no key usage extension) and key purposes (NULL-terminated OIDs). */
static char *custom_cert(unsigned usage, const char *const *purposes)
{
	gnutls_x509_privkey_t key, ca_key;
	gnutls_x509_crt_t crt, ca_crt = load(ca.cert);
	gnutls_datum_t kd = { (unsigned char *)ca.key, (unsigned)strlen(ca.key) };
	gnutls_datum_t out = { 0 };
	unsigned char serial[] = { 1, 2, 3 };
	time_t now = time(NULL);
	g_assert_cmpint(gnutls_x509_privkey_init(&ca_key), ==, 0);
	g_assert_cmpint(gnutls_x509_privkey_import(ca_key, &kd, GNUTLS_X509_FMT_PEM), ==, 0);
	g_assert_cmpint(gnutls_x509_privkey_init(&key), ==, 0);
	g_assert_cmpint(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
						     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_version(crt, 3), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_activation_time(crt, now - 60), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_expiration_time(crt, now + 86400), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "n1", 2), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "n1", 2,
							     GNUTLS_FSAN_APPEND), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_key(crt, key), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), ==, 0);
	if (usage)
		g_assert_cmpint(gnutls_x509_crt_set_key_usage(crt, usage), ==, 0);
	for (const char *const *p = purposes; p && *p; p++)
		g_assert_cmpint(gnutls_x509_crt_set_key_purpose_oid(crt, *p, 0), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_sign2(crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0), ==, 0);
	g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out), ==, 0);
	char *pem = g_strndup((const char *)out.data, out.size);
	gnutls_free(out.data);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_crt_deinit(ca_crt);
	gnutls_x509_privkey_deinit(key);
	gnutls_x509_privkey_deinit(ca_key);
	return pem;
}

static void expect_virt_ok(const char *cert, const char *host)
{
	g_autoptr(GError) error = NULL;
	if (!herd_tls_check_virt(cert, ca.cert, host, &error))
		g_error("certificate refused for '%s': %s", host, error->message);
}

static void expect_virt_refused(const char *cert, const char *ca_pem, const char *host,
				const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_assert_false(herd_tls_check_virt(cert, ca_pem, host, &error));
	g_assert_nonnull(error);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
}

/* Node certificates are what libvirt and QEMU want for their TLS between
 * nodes, for the node's name and each of its addresses, and the check names
 * what a certificate libvirt would refuse misses. */
static void test_virt(void)
{
	const char *const sans[] = { "n1", "10.99.0.1", "10.99.1.1", NULL };
	pair node = make("n1", sans, &ca, false);
	expect_virt_ok(node.cert, "n1");
	expect_virt_ok(node.cert, "10.99.0.1");
	expect_virt_ok(node.cert, "10.99.1.1");
	expect_virt_refused(node.cert, ca.cert, "n2", "not for 'n2'");
	expect_virt_refused(node.cert, ca.cert, "10.99.0.2", "not for '10.99.0.2'");
	expect_virt_refused(node.cert, ca.cert, "", "No host name");
	expect_virt_refused(node.cert, ca.cert, NULL, "No host name");
	expect_virt_refused(node.cert, other_ca.cert, "n1", "not signed by the cluster's CA");
	expect_virt_refused("garbage", ca.cert, "n1", "Cannot read the certificate");

	/* the usage libvirt checks: critical, with signature and encipherment */
	gnutls_x509_crt_t c = load(node.cert);
	unsigned usage = 0, critical = 0;
	g_assert_cmpint(gnutls_x509_crt_get_key_usage(c, &usage, &critical), >=, 0);
	g_assert_true(critical);
	g_assert_true(usage & GNUTLS_KEY_DIGITAL_SIGNATURE);
	g_assert_true(usage & GNUTLS_KEY_KEY_ENCIPHERMENT);
	gnutls_x509_crt_deinit(c);

	/* a node certificate signed from a request (herd cluster join) */
	g_autofree char *csr = NULL, *key = NULL;
	g_assert_true(herd_tls_make_csr("n2", &csr, &key, NULL));
	const char *const sans2[] = { "n2", "10.99.0.2", NULL };
	g_autofree char *joined = herd_tls_sign_csr(csr, "n2", sans2, ca.cert, ca.key, 30, NULL);
	g_assert_nonnull(joined);
	expect_virt_ok(joined, "n2");
	expect_virt_ok(joined, "10.99.0.2");
	expect_virt_refused(joined, ca.cert, "n1", "not for 'n1'");

	/* the CA itself is no node certificate */
	expect_virt_refused(ca.cert, ca.cert, "herd cluster test CA", "is a CA's");

	/* herd's node certificates before libvirt used them: no encipherment */
	const char *const both[] = { GNUTLS_KP_TLS_WWW_SERVER, GNUTLS_KP_TLS_WWW_CLIENT, NULL };
	g_autofree char *old = custom_cert(GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_AGREEMENT,
					   both);
	expect_virt_refused(old, ca.cert, "n1", "does not permit key encipherment");
	g_autofree char *nosig = custom_cert(GNUTLS_KEY_KEY_ENCIPHERMENT, both);
	expect_virt_refused(nosig, ca.cert, "n1", "does not permit digital signatures");
	/* no key usage and no key purpose at all allow everything */
	g_autofree char *bare = custom_cert(0, NULL);
	expect_virt_ok(bare, "n1");
	/* a server-only and a client-only certificate */
	const char *const server[] = { GNUTLS_KP_TLS_WWW_SERVER, NULL };
	const char *const client[] = { GNUTLS_KP_TLS_WWW_CLIENT, NULL };
	const char *const any[] = { GNUTLS_KP_ANY, NULL };
	unsigned ok_usage = GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT;
	g_autofree char *server_only = custom_cert(ok_usage, server);
	expect_virt_refused(server_only, ca.cert, "n1", "do not allow a TLS client");
	g_autofree char *client_only = custom_cert(ok_usage, client);
	expect_virt_refused(client_only, ca.cert, "n1", "do not allow a TLS server");
	g_autofree char *any_use = custom_cert(ok_usage, any);
	expect_virt_ok(any_use, "n1");
	pair_clear(&node);
}

static void test_random(void)
{
	guint8 a[32] = { 0 }, b[32] = { 0 }, zero[32] = { 0 };
	g_assert_true(herd_tls_random(a, sizeof(a)));
	g_assert_true(herd_tls_random(b, sizeof(b)));
	g_assert_true(memcmp(a, b, sizeof(a)) != 0);
	g_assert_true(memcmp(a, zero, sizeof(a)) != 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ca = make("herd cluster test CA", NULL, NULL, true);
	other_ca = make("herd cluster other CA", NULL, NULL, true);
	g_test_add_func("/tls/generate-and-verify", test_generate_and_verify);
	g_test_add_func("/tls/verify-garbage", test_verify_garbage);
	g_test_add_func("/tls/generate-bad-issuer", test_generate_bad_issuer);
	g_test_add_func("/tls/fingerprint", test_fingerprint);
	g_test_add_func("/tls/fingerprint-normalize", test_fingerprint_normalize);
	g_test_add_func("/tls/csr", test_csr);
	g_test_add_func("/tls/csr-refused", test_csr_refused);
	g_test_add_func("/tls/virt", test_virt);
	g_test_add_func("/tls/random", test_random);
	int rc = g_test_run();
	pair_clear(&ca);
	pair_clear(&other_ca);
	return rc;
}
