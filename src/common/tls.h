/*
 * Certificates for the API's TLS and for the TLS between the nodes'
 * libvirtds and QEMUs (live migration): key pairs, self-signed and CA-signed
 * certificates, and the SHA-256 fingerprints an operator compares when a node
 * joins.  Everything is PEM text in memory; callers decide where it is kept.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/*
 * Make a new ECDSA P-256 key and a certificate for @common_name valid @days
 * days.  @sans lists subject alternative names (IP addresses or DNS names),
 * may be NULL.  With @issuer_cert_pem/@issuer_key_pem NULL the certificate is
 * self-signed; @is_ca makes it a CA that may sign others.
 */
bool herd_tls_generate(const char *common_name, const char *const *sans,
		       const char *issuer_cert_pem, const char *issuer_key_pem, bool is_ca,
		       unsigned days, char **cert_pem, char **key_pem, GError **error);

/* The SHA-256 fingerprint of the first certificate in @cert_pem, as
 * "AB:CD:…" (32 colon-separated upper-case hex bytes). */
char *herd_tls_fingerprint(const char *cert_pem, GError **error);

/* Normalise an operator-typed fingerprint ("sha256:abcd…", "AB:CD…", with or
 * without colons) to the form herd_tls_fingerprint() returns; NULL if it is
 * not 32 hex bytes. */
char *herd_tls_fingerprint_normalize(const char *text);

/* A new ECDSA key and a certificate request for @common_name. */
bool herd_tls_make_csr(const char *common_name, char **csr_pem, char **key_pem, GError **error);

/*
 * Sign @csr_pem with the CA (@ca_cert_pem/@ca_key_pem) for @days days as a
 * node certificate.  The request must be self-consistent and name
 * @expect_cn; @sans are put in as subject alternative names.
 */
char *herd_tls_sign_csr(const char *csr_pem, const char *expect_cn, const char *const *sans,
			const char *ca_cert_pem, const char *ca_key_pem, unsigned days,
			GError **error);

/* @n random bytes from GnuTLS's key-grade generator. */
bool herd_tls_random(void *buf, size_t n);

/* True if @cert_pem was signed by the CA in @ca_pem and is currently valid. */
bool herd_tls_verify(const char *cert_pem, const char *ca_pem, GError **error);

/*
 * True if libvirt (9.0) and QEMU (7.2) accept @cert_pem as a node's TLS
 * certificate, server and client alike (libvirtd's qemu+tls:// transport,
 * QEMU's migration TLS with peer verification), when a peer reaches the node
 * as @host (a name or an IP address): signed by the CA in @ca_pem and valid
 * now, not a CA, a critical key usage that permits digital signature and
 * key encipherment, key purposes that allow a TLS server and a TLS client,
 * and @host among its alternative names (or its common name).  The error
 * names the first of these the certificate misses.  Node certificates from
 * herd_tls_generate() and herd_tls_sign_csr() pass for every name they were
 * given.
 */
bool herd_tls_check_virt(const char *cert_pem, const char *ca_pem, const char *host,
			 GError **error);
