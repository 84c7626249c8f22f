#include "virt/host_config.h"

#include "common/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Port sets                                                           */

#define PORT_MAX 65535u

void herd_portset_add(herd_portset *s, unsigned lo, unsigned hi)
{
	for (unsigned p = lo; p <= hi && p <= PORT_MAX; p++)
		s->bits[p / 64] |= UINT64_C(1) << (p % 64);
}

void herd_portset_remove(herd_portset *s, unsigned lo, unsigned hi)
{
	for (unsigned p = lo; p <= hi && p <= PORT_MAX; p++)
		s->bits[p / 64] &= ~(UINT64_C(1) << (p % 64));
}

bool herd_portset_has(const herd_portset *s, unsigned port)
{
	return port <= PORT_MAX && (s->bits[port / 64] >> (port % 64)) & 1;
}

/* A port number of @text[0..len): digits only, at most PORT_MAX. */
static bool parse_port(const char *text, size_t len, unsigned *out)
{
	if (len == 0 || len > 5)
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!g_ascii_isdigit(text[i]))
			return false;
		v = v * 10 + (unsigned)(text[i] - '0');
	}
	*out = v;
	return v <= PORT_MAX;
}

bool herd_portset_parse(herd_portset *s, const char *text, GError **error)
{
	memset(s, 0, sizeof(*s));
	g_autofree char *copy = g_strstrip(g_strdup(text ? text : ""));
	if (!*copy)
		return true;
	g_auto(GStrv) parts = g_strsplit(copy, ",", -1);
	for (char **part = parts; *part; part++) {
		char *t = g_strstrip(*part);
		const char *dash = strchr(t, '-');
		unsigned lo, hi;
		bool ok = dash ? parse_port(t, (size_t)(dash - t), &lo) &&
					 parse_port(dash + 1, strlen(dash + 1), &hi) && lo <= hi
			       : parse_port(t, strlen(t), &lo) && (hi = lo, true);
		if (!ok) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "'%s' is not a port or a range of ports (as in 8080,49152-49215).",
				    t);
			return false;
		}
		herd_portset_add(s, lo, hi);
	}
	return true;
}

char *herd_portset_format(const herd_portset *s)
{
	GString *out = g_string_new(NULL);
	for (unsigned p = 0; p <= PORT_MAX; p++) {
		if (!herd_portset_has(s, p))
			continue;
		unsigned end = p;
		while (end < PORT_MAX && herd_portset_has(s, end + 1))
			end++;
		if (out->len)
			g_string_append_c(out, ',');
		if (end == p)
			g_string_append_printf(out, "%u", p);
		else
			g_string_append_printf(out, "%u-%u", p, end);
		p = end;
	}
	return g_string_free(out, FALSE);
}

bool herd_reserved_ports_merge(const char *current, const char *added_before, unsigned min,
			       unsigned max, char **value, char **added, GError **error)
{
	herd_portset now, before, mine;
	if (min > max || max > PORT_MAX) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "%u-%u is not a range of ports.",
			    min, max);
		return false;
	}
	g_autoptr(GError) local = NULL;
	if (!herd_portset_parse(&now, current, &local)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The kernel's reserved ports cannot be read: %s", local->message);
		return false;
	}
	/* herd's own record: if it is damaged, herd forgets what it added
	 * (an old range then stays reserved) rather than drop another
	 * program's ports. */
	if (!herd_portset_parse(&before, added_before, NULL))
		memset(&before, 0, sizeof(before));
	for (size_t i = 0; i < G_N_ELEMENTS(now.bits); i++)
		now.bits[i] &= ~before.bits[i];
	memset(&mine, 0, sizeof(mine));
	for (unsigned p = min; p <= max; p++)
		if (!herd_portset_has(&now, p))
			herd_portset_add(&mine, p, p);
	herd_portset_add(&now, min, max);
	*value = herd_portset_format(&now);
	*added = herd_portset_format(&mine);
	return true;
}

#define SYSCTL_KEY "net.ipv4.ip_local_reserved_ports"
#define ADDED_MARK "# herd-added:"

char *herd_sysctl_file_render(const char *value, const char *added)
{
	return g_strdup_printf(
		"# Written by herdd: the cluster's live migration ports (settings\n"
		"# migration_port_min/max) reserved from the kernel's ephemeral ports,\n"
		"# together with the ports reserved otherwise when herdd wrote it.  herdd\n"
		"# rewrites this file and sets the kernel's value itself at start and\n"
		"# when the range changes; this file keeps it from boot on.  The next\n"
		"# line says which ports herd added (it frees only those again).\n"
		ADDED_MARK " %s\n"
		SYSCTL_KEY " = %s\n",
		added, value);
}

char *herd_sysctl_file_added(const char *text)
{
	g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
	for (char **l = lines; *l; l++)
		if (g_str_has_prefix(*l, ADDED_MARK))
			return g_strstrip(g_strdup(*l + strlen(ADDED_MARK)));
	return NULL;
}

/* ------------------------------------------------------------------ */
/* qemu.conf                                                           */

/* Does @line (without its end) set @key: blanks, the key, blanks, '='? */
static bool line_sets(const char *line, size_t len, const char *key)
{
	size_t i = 0, klen = strlen(key);
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (len - i < klen || memcmp(line + i, key, klen) != 0)
		return false;
	for (i += klen; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	return i < len && line[i] == '=';
}

char *herd_conf_set_keys(const char *text, const herd_conf_key *keys, size_t n_keys)
{
	GString *out = g_string_new(NULL);
	g_autofree bool *found = g_new0(bool, n_keys);
	bool marked = false;
	const char *p = text ? text : "";
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		size_t k;
		for (k = 0; k < n_keys && !line_sets(p, len, keys[k].key); k++)
			;
		if (k < n_keys) {
			found[k] = true;
			g_string_append_printf(out, "%s = %s", keys[k].key, keys[k].value);
		} else {
			g_string_append_len(out, p, (gssize)len);
			marked |= len == strlen(HERD_CONF_MARK) && memcmp(p, HERD_CONF_MARK, len) == 0;
		}
		if (nl)
			g_string_append_c(out, '\n');
		p = nl ? nl + 1 : p + len;
	}
	bool missing = false;
	for (size_t k = 0; k < n_keys; k++)
		missing |= !found[k];
	if (!missing)
		return g_string_free(out, FALSE);
	if (out->len && out->str[out->len - 1] != '\n')
		g_string_append_c(out, '\n');
	if (!marked) {
		if (out->len && !g_str_has_suffix(out->str, "\n\n"))
			g_string_append_c(out, '\n');
		g_string_append(out, HERD_CONF_MARK "\n");
	}
	for (size_t k = 0; k < n_keys; k++)
		if (!found[k])
			g_string_append_printf(out, "%s = %s\n", keys[k].key, keys[k].value);
	return g_string_free(out, FALSE);
}

/* ------------------------------------------------------------------ */
/* The plan                                                            */

void herd_host_file_free(herd_host_file *f)
{
	if (!f)
		return;
	g_free(f->path);
	g_free(f->text);
	g_free(f);
}

void herd_host_plan_free(herd_host_plan *p)
{
	if (!p)
		return;
	g_ptr_array_unref(p->write);
	g_free(p->reserved_ports);
	g_free(p->problem);
	g_free(p);
}

/* One of the certificate files: in @dir (or @path itself if @name is
 * NULL), with the CA, the node's certificate or its key. */
typedef struct {
	bool libvirt_server;   /* read by libvirtd's TLS listener */
	const char *name;      /* under the directory */
	char what;             /* 'a' CA, 'c' certificate, 'k' key */
} pki_file;

static const pki_file libvirt_files[] = {
	{ true, "servercert.pem", 'c' },
	{ true, "private/serverkey.pem", 'k' },
	/* The client's are read at every connection libvirtd opens to
	 * another node's (the source of a peer-to-peer migration). */
	{ false, "clientcert.pem", 'c' },
	{ false, "private/clientkey.pem", 'k' },
};

/* QEMU reads them, in the directory qemu.conf names, at every migration. */
static const pki_file qemu_files[] = {
	{ false, "ca-cert.pem", 'a' },
	{ false, "server-cert.pem", 'c' },
	{ false, "server-key.pem", 'k' },
	{ false, "client-cert.pem", 'c' },
	{ false, "client-key.pem", 'k' },
};

static bool want_pki(const herd_host_want *want)
{
	return want->ca_pem && want->cert_pem && want->key_pem;
}

GPtrArray *herd_host_paths_to_read(const herd_host_paths *paths, const herd_host_want *want)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	if (want_pki(want)) {
		g_ptr_array_add(out, g_strdup(paths->ca_file));
		for (size_t i = 0; i < G_N_ELEMENTS(libvirt_files); i++)
			g_ptr_array_add(out, g_build_filename(paths->libvirt_pki_dir,
							      libvirt_files[i].name, NULL));
		for (size_t i = 0; i < G_N_ELEMENTS(qemu_files); i++)
			g_ptr_array_add(out, g_build_filename(paths->qemu_pki_dir, qemu_files[i].name,
							      NULL));
	}
	g_ptr_array_add(out, g_strdup(paths->qemu_conf));
	g_ptr_array_add(out, g_strdup(paths->sysctl_file));
	g_ptr_array_add(out, g_strdup(paths->reserved_ports));
	return out;
}

/* Add @path with @text to the plan if it is not so on disk; true if the
 * text differs (not only the mode or group). */
static bool want_file(herd_host_plan *plan, GHashTable *current, const char *path,
		      const char *text, unsigned mode, int gid, unsigned dir_mode)
{
	const herd_host_file *cur = g_hash_table_lookup(current, path);
	bool text_differs = !cur || g_strcmp0(cur->text, text) != 0;
	if (!text_differs && (cur->mode & 07777) == mode && (gid < 0 || cur->gid == gid))
		return false;
	herd_host_file *f = g_new0(herd_host_file, 1);
	f->path = g_strdup(path);
	f->text = g_strdup(text);
	f->mode = mode;
	f->gid = gid;
	f->dir_mode = dir_mode;
	g_ptr_array_add(plan->write, f);
	return text_differs;
}

static void plan_pki(herd_host_plan *plan, const herd_host_paths *paths,
		     const herd_host_want *want, GHashTable *current)
{
	plan->libvirt_tls_changed |=
		want_file(plan, current, paths->ca_file, want->ca_pem, 0644, -1, 0755);
	for (size_t i = 0; i < G_N_ELEMENTS(libvirt_files); i++) {
		const pki_file *f = &libvirt_files[i];
		g_autofree char *path = g_build_filename(paths->libvirt_pki_dir, f->name, NULL);
		bool key = f->what == 'k';
		/* private/ is root's only, as libvirt's own documentation has it. */
		bool changed = want_file(plan, current, path, key ? want->key_pem : want->cert_pem,
					 key ? 0600 : 0644, -1, key ? 0700 : 0755);
		plan->libvirt_tls_changed |= changed && f->libvirt_server;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(qemu_files); i++) {
		const pki_file *f = &qemu_files[i];
		g_autofree char *path = g_build_filename(paths->qemu_pki_dir, f->name, NULL);
		const char *text = f->what == 'a' ? want->ca_pem
				   : f->what == 'c' ? want->cert_pem
						    : want->key_pem;
		/* QEMU runs as its own user: its group reads the key. */
		bool key = f->what == 'k';
		unsigned mode = !key ? 0644 : want->qemu_key_gid >= 0 ? 0640 : 0600;
		want_file(plan, current, path, text, mode, key ? want->qemu_key_gid : -1, 0755);
	}
}

static void plan_qemu_conf(herd_host_plan *plan, const herd_host_paths *paths,
			   const herd_host_want *want, GHashTable *current)
{
	g_autofree char *min = g_strdup_printf("%u", want->port_min);
	g_autofree char *max = g_strdup_printf("%u", want->port_max);
	g_autofree char *dir = g_strdup_printf("\"%s\"", paths->qemu_pki_dir);
	herd_conf_key keys[] = {
		{ "migration_port_min", min },
		{ "migration_port_max", max },
		/* Only with the files there: libvirtd does not start when the
		 * directory it names is missing. */
		{ "migrate_tls_x509_cert_dir", dir },
		/* Each QEMU checks the other's certificate, not only the
		 * source the target's. */
		{ "migrate_tls_x509_verify", "1" },
	};
	const herd_host_file *cur = g_hash_table_lookup(current, paths->qemu_conf);
	g_autofree char *text =
		herd_conf_set_keys(cur ? cur->text : NULL, keys, want_pki(want) ? 4 : 2);
	/* The file keeps its mode and group (Debian's is root's only). */
	plan->qemu_conf_changed = want_file(plan, current, paths->qemu_conf, text,
					    cur ? cur->mode & 07777 : 0600, cur ? cur->gid : -1,
					    0755);
}

static void plan_reserved_ports(herd_host_plan *plan, const herd_host_paths *paths,
				const herd_host_want *want, GHashTable *current)
{
	const herd_host_file *kernel = g_hash_table_lookup(current, paths->reserved_ports);
	const herd_host_file *file = g_hash_table_lookup(current, paths->sysctl_file);
	if (!kernel) {
		plan->problem = g_strdup_printf(
			"The kernel's reserved ports cannot be read from %s, so the migration ports are not reserved.",
			paths->reserved_ports);
		return;
	}
	g_autofree char *before = herd_sysctl_file_added(file ? file->text : NULL);
	g_autofree char *value = NULL, *added = NULL;
	g_autoptr(GError) err = NULL;
	if (!herd_reserved_ports_merge(kernel->text, before, want->port_min, want->port_max, &value,
				       &added, &err)) {
		plan->problem = g_strdup_printf("%s The migration ports are not reserved.",
						err->message);
		return;
	}
	herd_portset now;
	g_autofree char *now_text = herd_portset_parse(&now, kernel->text, NULL)
					    ? herd_portset_format(&now)
					    : NULL;
	if (g_strcmp0(now_text, value) != 0)
		plan->reserved_ports = g_strdup(value);
	g_autofree char *text = herd_sysctl_file_render(value, added);
	want_file(plan, current, paths->sysctl_file, text, 0644, -1, 0755);
}

herd_host_plan *herd_host_plan_make(const herd_host_paths *paths, const herd_host_want *want,
				    GHashTable *current)
{
	herd_host_plan *plan = g_new0(herd_host_plan, 1);
	plan->write = g_ptr_array_new_with_free_func((GDestroyNotify)herd_host_file_free);
	/* The certificates before qemu.conf names their directory. */
	if (want_pki(want))
		plan_pki(plan, paths, want, current);
	plan_qemu_conf(plan, paths, want, current);
	plan_reserved_ports(plan, paths, want, current);
	return plan;
}
