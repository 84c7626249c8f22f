/*
 * Validation of libvirt domain XML before it enters the cluster's
 * configuration.  libvirt's own parser does the work: the XML is defined in
 * the in-process "test" driver with schema validation, so what herd accepts
 * is what libvirtd will accept on every node, and errors read as libvirt's.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct herd_domxml {
	char *xml;          /* the XML as stored: the input, with a <uuid> if it had none */
	char *name;
	char uuid[37];
	char *type;         /* "kvm", "qemu", "lxc", "xen"… */
	uint64_t memory_mib;
	unsigned vcpus;
	char **files;       /* its disks' source files (<disk><source file=…>), NULL-terminated */
	char **bridges;     /* its interfaces' bridges (<interface><source bridge=…>), likewise */
} herd_domxml;

/* Parse and validate @xml; NULL with an INVALID error naming the problem.
 * Any thread may call it; it takes tens of milliseconds (libvirt loads its
 * schema each time). */
herd_domxml *herd_domxml_parse(const char *xml, GError **error);

/* @xml without the passwords of its graphics (VNC, SPICE): every
 * passwd='…' attribute removed, as libvirt shows a domain to a read-only
 * connection (without VIR_DOMAIN_XML_SECURE).  NULL when it has none. */
char *herd_domxml_without_passwords(const char *xml);
void herd_domxml_free(herd_domxml *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_domxml, herd_domxml_free)
