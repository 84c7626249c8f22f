/*
 * What a node's libvirt, QEMU and kernel need so that VMs migrate live to
 * and from it with the cluster's certificates and port range: the cluster's
 * CA and the node's certificate and key where libvirtd (its TLS, port
 * 16514) and QEMU (the migration stream's TLS) read them; the keys herd
 * keeps in qemu.conf (the migration port range and QEMU's certificate
 * directory), every other line left as it is; and the range reserved from
 * the kernel's ephemeral ports, merged with whatever else is reserved there.
 *
 * Pure: the caller reads the files and hands their contents in, and
 * carries out the plan it gets back (daemon/virt_setup.c is that shell).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Sets of TCP ports, as the kernel's ip_local_reserved_ports lists them */

typedef struct herd_portset {
	uint64_t bits[65536 / 64];
} herd_portset;

/* Read "8080,49152-49215" (the kernel's form; blanks and a final newline
 * allowed, empty is the empty set) into @s.  The error quotes the part that
 * is not a port or a range of ports. */
bool herd_portset_parse(herd_portset *s, const char *text, GError **error);
/* The kernel's form: ascending, ranges joined ("1000-1002,8080"); "" if
 * empty. */
char *herd_portset_format(const herd_portset *s);
/* Add, remove ports @lo..@hi (inclusive); test one. */
void herd_portset_add(herd_portset *s, unsigned lo, unsigned hi);
void herd_portset_remove(herd_portset *s, unsigned lo, unsigned hi);
bool herd_portset_has(const herd_portset *s, unsigned port);

/*
 * The kernel's reserved ports with the migration range @min..@max in them:
 * @current (what the kernel reserves now) less @added_before (the ports
 * herd added for an earlier range, from its sysctl file; may be NULL), plus
 * the range.  *@added gets the ports of the range that nothing else
 * reserved, the only ones herd takes away again when the range moves, so
 * that another program's reservations are never dropped.  Both in the
 * kernel's form.
 */
bool herd_reserved_ports_merge(const char *current, const char *added_before, unsigned min,
			       unsigned max, char **value, char **added, GError **error);

/* herd's sysctl file (sysctl.d) for @value, recording @added. */
char *herd_sysctl_file_render(const char *value, const char *added);
/* The ports herd recorded as added in its sysctl file @text (NULL if none). */
char *herd_sysctl_file_added(const char *text);

/* ------------------------------------------------------------------ */
/* qemu.conf                                                           */

/* A key herd keeps, and its value as qemu.conf spells it (49152,
 * "\"/etc/pki/qemu\""). */
typedef struct herd_conf_key {
	const char *key;
	const char *value;
} herd_conf_key;

/* The line herd writes above the keys it adds to a file. */
#define HERD_CONF_MARK \
	"# Set by herd for live migration, from the cluster's settings (herd cluster set): edits are overwritten."

/*
 * @text (a libvirt config file such as qemu.conf, may be NULL for a missing
 * one) with each of @keys set: a line that sets the key (not a comment) gets
 * the new value in place; a key set nowhere is added at the end, after
 * HERD_CONF_MARK (once).  Every other line stays as it was, byte for byte.
 * Applied to its own result it changes nothing.
 */
char *herd_conf_set_keys(const char *text, const herd_conf_key *keys, size_t n_keys);

/* ------------------------------------------------------------------ */
/* The plan                                                            */

/* Where the files are (herd.conf's [libvirt] section). */
typedef struct herd_host_paths {
	const char *qemu_conf;       /* /etc/libvirt/qemu.conf */
	const char *ca_file;         /* /etc/pki/CA/cacert.pem: libvirtd's and its clients' CA */
	const char *libvirt_pki_dir; /* /etc/pki/libvirt: servercert.pem, clientcert.pem,
				      * private/serverkey.pem, private/clientkey.pem */
	const char *qemu_pki_dir;    /* /etc/pki/qemu: ca-cert.pem, server-cert.pem,
				      * server-key.pem, client-cert.pem, client-key.pem */
	const char *sysctl_file;     /* herd's sysctl.d file */
	const char *reserved_ports;  /* /proc/sys/net/ipv4/ip_local_reserved_ports */
} herd_host_paths;

/* What herd wants on the node. */
typedef struct herd_host_want {
	/* The cluster's CA, the node's certificate and key (PEM), checked
	 * (herd_tls_check_virt()); all NULL: the certificate files are left
	 * as they are. */
	const char *ca_pem, *cert_pem, *key_pem;
	unsigned port_min, port_max; /* the cluster's migration port range */
	int qemu_key_gid;            /* group of QEMU's key files (mode 0640), so that
				      * QEMU running as that group reads them; -1:
				      * root's only (0600) */
} herd_host_want;

/* A file as it is on disk, or as herd wants it. */
typedef struct herd_host_file {
	char *path;
	char *text;
	unsigned mode;               /* permission bits */
	int gid;                     /* -1: not cared about (herd leaves root's) */
	unsigned dir_mode;           /* of its directory, if it must be made */
} herd_host_file;

void herd_host_file_free(herd_host_file *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_host_file, herd_host_file_free)

typedef struct herd_host_plan {
	GPtrArray *write;            /* herd_host_file*: files to (re)write, in order */
	char *reserved_ports;        /* write it to paths->reserved_ports, or NULL: as it is */
	bool libvirt_tls_changed;    /* libvirtd must load its certificates again */
	bool qemu_conf_changed;      /* libvirtd must restart */
	char *problem;               /* why the ports cannot be reserved (the rest of the
				      * plan holds), or NULL */
} herd_host_plan;

void herd_host_plan_free(herd_host_plan *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(herd_host_plan, herd_host_plan_free)

/* The paths of the files herd_host_plan_make() looks at (borrowed from
 * @paths or owned by the array), to read into its @current. */
GPtrArray *herd_host_paths_to_read(const herd_host_paths *paths, const herd_host_want *want);

/*
 * What to do to make the node as @want says, from @current: path ->
 * herd_host_file* as it is on disk (a path missing from it: the file does
 * not exist or cannot be read).  A file is written only when its contents,
 * mode or group differ.
 */
herd_host_plan *herd_host_plan_make(const herd_host_paths *paths, const herd_host_want *want,
				    GHashTable *current);
