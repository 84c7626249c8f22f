#define G_LOG_DOMAIN "virt"
#include "virt/domxml.h"

#include "common/error.h"
#include "common/log.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

/* Largest domain XML accepted (libvirt's own limit is far higher; VMs
 * with hundreds of devices stay well below this). */
#define DOMXML_MAX_BYTES (1024 * 1024)

/* One domain at a time in the test driver: parses from several threads
 * take turns. */
static GMutex test_lock;
static virConnectPtr test_conn;

static void silent_error(void *data, virErrorPtr err)
{
}

/* The test driver's connection, opened once, without its sample domain. */
static virConnectPtr test_driver(GError **error)
{
	if (test_conn)
		return test_conn;
	virSetErrorFunc(NULL, silent_error);
	test_conn = virConnectOpen("test:///default");
	if (!test_conn) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL,
			    "Cannot open libvirt's test driver to validate domain XML.");
		return NULL;
	}
	virDomainPtr sample = virDomainLookupByName(test_conn, "test");
	if (sample) {
		virDomainDestroy(sample);
		virDomainUndefine(sample);
		virDomainFree(sample);
	}
	return test_conn;
}

static char *last_libvirt_error(void)
{
	virErrorPtr e = virGetLastError();
	char *msg = g_strdup(e && e->message ? e->message : "unknown error");
	virResetLastError();
	g_strchomp(msg);
	return msg;
}

/* Put <uuid>@uuid</uuid> after the domain's <name> element. */
static char *insert_uuid(const char *xml, const char *uuid)
{
	const char *end = strstr(xml, "</name>");
	if (!end)
		return NULL;
	end += strlen("</name>");
	return g_strdup_printf("%.*s\n  <uuid>%s</uuid>%s", (int)(end - xml), xml, uuid, end);
}

/* What the disks and interfaces of a domain use on the host, read from
 * libvirt's own rendering of it (GMarkup: well-formed, no comments to fool
 * a text search). */
typedef struct {
	GPtrArray *files, *bridges;
	int in_disk, in_interface;   /* depth inside <disk> / <interface>, 0 outside */
} uses_ctx;

static void uses_start(GMarkupParseContext *pc, const char *element, const char **names,
		       const char **values, gpointer user, GError **error)
{
	uses_ctx *u = user;
	if (u->in_disk)
		u->in_disk++;
	if (u->in_interface)
		u->in_interface++;
	if (strcmp(element, "disk") == 0 && !u->in_disk)
		u->in_disk = 1;
	else if (strcmp(element, "interface") == 0 && !u->in_interface)
		u->in_interface = 1;
	if (strcmp(element, "source") != 0 || (u->in_disk != 2 && u->in_interface != 2))
		return;
	for (int i = 0; names[i]; i++) {
		GPtrArray *to = u->in_disk == 2 && strcmp(names[i], "file") == 0 ? u->files :
				u->in_interface == 2 && strcmp(names[i], "bridge") == 0 ? u->bridges : NULL;
		if (to && *values[i] && !g_ptr_array_find_with_equal_func(to, values[i], g_str_equal, NULL))
			g_ptr_array_add(to, g_strdup(values[i]));
	}
}

static void uses_end(GMarkupParseContext *pc, const char *element, gpointer user, GError **error)
{
	uses_ctx *u = user;
	if (u->in_disk)
		u->in_disk--;
	if (u->in_interface)
		u->in_interface--;
}

static void read_uses(const char *desc, herd_domxml *d)
{
	static const GMarkupParser parser = { uses_start, uses_end, NULL, NULL, NULL };
	uses_ctx u = { g_ptr_array_new(), g_ptr_array_new(), 0, 0 };
	GMarkupParseContext *pc = g_markup_parse_context_new(&parser, 0, &u, NULL);
	g_markup_parse_context_parse(pc, desc, -1, NULL);
	g_markup_parse_context_free(pc);
	g_ptr_array_add(u.files, NULL);
	g_ptr_array_add(u.bridges, NULL);
	g_strfreev(d->files);
	g_strfreev(d->bridges);
	d->files = (char **)g_ptr_array_free(u.files, FALSE);
	d->bridges = (char **)g_ptr_array_free(u.bridges, FALSE);
}

char *herd_domxml_without_passwords(const char *xml)
{
	static GRegex *passwd;
	if (!xml || !strstr(xml, "passwd"))
		return NULL;
	if (g_once_init_enter(&passwd)) {
		/* An attribute value holds no raw quote of its own kind. */
		GRegex *re = g_regex_new("\\s+passwd\\s*=\\s*(\"[^\"]*\"|'[^']*')", G_REGEX_OPTIMIZE, 0, NULL);
		g_once_init_leave(&passwd, re);
	}
	char *out = g_regex_replace_literal(passwd, xml, -1, 0, "", 0, NULL);
	if (out && strcmp(out, xml) == 0) {
		g_free(out);
		return NULL;
	}
	return out;
}

static bool define_and_read(virConnectPtr conn, const char *xml, herd_domxml *d, GError **error)
{
	virDomainPtr dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (!dom) {
		g_autofree char *msg = last_libvirt_error();
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The domain XML is invalid: %s", msg);
		return false;
	}
	bool ok = false;
	virDomainInfo info;
	const char *name = virDomainGetName(dom);
	g_autofree char *desc = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
	if (!name || virDomainGetUUIDString(dom, d->uuid) < 0 || virDomainGetInfo(dom, &info) < 0 ||
	    !desc) {
		g_autofree char *msg = last_libvirt_error();
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The domain XML is invalid: %s", msg);
		goto out;
	}
	d->name = g_strdup(name);
	d->memory_mib = info.maxMem / 1024;
	d->vcpus = info.nrVirtCpu;
	read_uses(desc, d);
	const char *t = strstr(desc, "<domain type='");
	if (t) {
		t += strlen("<domain type='");
		d->type = g_strndup(t, strcspn(t, "'"));
	}
	ok = true;
out:
	virDomainUndefine(dom);
	virDomainFree(dom);
	return ok;
}

static herd_domxml *parse(const char *xml, GError **error)
{
	if (!xml || !*xml) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The domain XML is empty.");
		return NULL;
	}
	if (strlen(xml) > DOMXML_MAX_BYTES) {
		g_set_error(error, HERD_ERROR, HERD_ERR_TOO_LARGE,
			    "The domain XML is larger than %d bytes.", DOMXML_MAX_BYTES);
		return NULL;
	}
	if (!g_utf8_validate(xml, -1, NULL)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The domain XML is not valid UTF-8.");
		return NULL;
	}
	virConnectPtr conn = test_driver(error);
	if (!conn)
		return NULL;
	g_autoptr(herd_domxml) d = g_new0(herd_domxml, 1);
	if (!define_and_read(conn, xml, d, error))
		return NULL;
	/* Without a <uuid> libvirt makes one up, a new one each time: define it
	 * once more and compare (a text search would be fooled by a comment).
	 * Then keep the UUID in the stored XML so every node defines the VM
	 * under the same one. */
	herd_domxml twice = { 0 };
	bool has_uuid = define_and_read(conn, xml, &twice, NULL) && strcmp(twice.uuid, d->uuid) == 0;
	g_free(twice.name);
	g_free(twice.type);
	g_strfreev(twice.files);
	g_strfreev(twice.bridges);
	if (!has_uuid) {
		char uuid[37];
		memcpy(uuid, d->uuid, sizeof(uuid));
		g_autofree char *with_uuid = insert_uuid(xml, uuid);
		herd_domxml check = { 0 };
		if (!with_uuid || !define_and_read(conn, with_uuid, &check, NULL) ||
		    strcmp(check.uuid, uuid) != 0) {
			g_free(check.name);
			g_free(check.type);
			g_strfreev(check.files);
			g_strfreev(check.bridges);
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The domain XML has no <uuid> and herd could not add one; add <uuid>…</uuid> after <name>.");
			return NULL;
		}
		g_free(check.name);
		g_free(check.type);
		g_strfreev(check.files);
		g_strfreev(check.bridges);
		d->xml = g_steal_pointer(&with_uuid);
	} else {
		d->xml = g_strdup(xml);
	}
	if (!d->type || (strcmp(d->type, "kvm") && strcmp(d->type, "qemu") && strcmp(d->type, "lxc") &&
			 strcmp(d->type, "xen"))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Domain type '%s' is not supported; use kvm, qemu, lxc or xen.",
			    d->type ? d->type : "?");
		return NULL;
	}
	return g_steal_pointer(&d);
}

herd_domxml *herd_domxml_parse(const char *xml, GError **error)
{
	g_autoptr(GMutexLocker) locked = g_mutex_locker_new(&test_lock);
	return parse(xml, error);
}

void herd_domxml_free(herd_domxml *d)
{
	if (!d)
		return;
	g_free(d->xml);
	g_free(d->name);
	g_free(d->type);
	g_strfreev(d->files);
	g_strfreev(d->bridges);
	g_free(d);
}
