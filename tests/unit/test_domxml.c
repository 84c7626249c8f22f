/* Validation of libvirt domain XML (through libvirt's test driver). */
#include "common/error.h"
#include "store/object.h"
#include "virt/domxml.h"

#include <string.h>

/* The test guest (tests/guest/guest-xml --name x), trimmed. */
#define GUEST_HEAD "<domain type='qemu'>\n  <name>x</name>\n"
#define GUEST_UUID "  <uuid>ba36b771-e388-5d41-a1c2-603d7a286cea</uuid>\n"
#define GUEST_BODY                                                              \
	"  <description>herd test guest</description>\n"                        \
	"  <memory unit='MiB'>32</memory>\n"                                    \
	"  <currentMemory unit='MiB'>32</currentMemory>\n"                      \
	"  <vcpu placement='static'>1</vcpu>\n"                                 \
	"  <os>\n"                                                              \
	"    <type arch='x86_64' machine='pc'>hvm</type>\n"                     \
	"    <boot dev='hd'/>\n"                                                \
	"  </os>\n"                                                             \
	"  <!-- no <features><acpi/> -->\n"                                     \
	"  <clock offset='utc'/>\n"                                             \
	"  <on_poweroff>destroy</on_poweroff>\n"                                \
	"  <devices>\n"                                                         \
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"                \
	"    <disk type='file' device='disk'>\n"                                \
	"      <driver name='qemu' type='raw'/>\n"                              \
	"      <source file='/var/lib/herd/herd-guest.img'/>\n"                 \
	"      <target dev='vda' bus='virtio'/>\n"                              \
	"      <readonly/>\n"                                                   \
	"    </disk>\n"                                                         \
	"    <controller type='usb' model='none'/>\n"                           \
	"    <serial type='file'>\n"                                            \
	"      <source path='/tmp/herd-guest-x.serial.log' append='on'/>\n"     \
	"      <target port='0'/>\n"                                            \
	"    </serial>\n"                                                       \
	"    <memballoon model='none'/>\n"                                      \
	"  </devices>\n"                                                        \
	"</domain>\n"
#define GUEST GUEST_HEAD GUEST_UUID GUEST_BODY
#define GUEST_NO_UUID GUEST_HEAD GUEST_BODY

static herd_domxml *parse_ok(const char *xml)
{
	g_autoptr(GError) error = NULL;
	herd_domxml *d = herd_domxml_parse(xml, &error);
	if (!d)
		g_error("refused: %s", error->message);
	return d;
}

static void expect_refused(const char *xml, int code, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(herd_domxml) d = herd_domxml_parse(xml, &error);
	g_assert_null(d);
	g_assert_error(error, HERD_ERROR, code);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
	/* the message goes into a JSON answer */
	g_assert_true(g_utf8_validate(error->message, -1, NULL));
}

/* @xml with @old (which must occur) replaced by @new. */
static char *edit(const char *xml, const char *old, const char *new)
{
	const char *at = strstr(xml, old);
	g_assert_nonnull(at);
	return g_strdup_printf("%.*s%s%s", (int)(at - xml), xml, new, at + strlen(old));
}

static void test_guest(void)
{
	g_autoptr(herd_domxml) d = parse_ok(GUEST);
	g_assert_cmpstr(d->name, ==, "x");
	g_assert_cmpstr(d->uuid, ==, "ba36b771-e388-5d41-a1c2-603d7a286cea");
	g_assert_cmpstr(d->type, ==, "qemu");
	g_assert_cmpuint(d->memory_mib, ==, 32);
	g_assert_cmpuint(d->vcpus, ==, 1);
	/* stored as given */
	g_assert_cmpstr(d->xml, ==, GUEST);

	/* units, counts and the other supported types */
	g_autofree char *big = edit(GUEST, "<memory unit='MiB'>32</memory>\n  <currentMemory unit='MiB'>32</currentMemory>",
				    "<memory unit='GiB'>2</memory>");
	g_autofree char *big4 = edit(big, "<vcpu placement='static'>1</vcpu>", "<vcpu>4</vcpu>");
	g_autofree char *kvm = edit(big4, "type='qemu'", "type='kvm'");
	g_autoptr(herd_domxml) k = parse_ok(kvm);
	g_assert_cmpstr(k->type, ==, "kvm");
	g_assert_cmpuint(k->memory_mib, ==, 2048);
	g_assert_cmpuint(k->vcpus, ==, 4);

	static const struct { const char *xml, *type; } others[] = {
		{ "<domain type='lxc'><name>c1</name><memory>102400</memory><os><type>exe</type>"
		  "<init>/bin/sh</init></os><devices><console type='pty'/></devices></domain>", "lxc" },
		{ "<domain type='xen'><name>c2</name><memory>102400</memory>"
		  "<os><type>hvm</type></os></domain>", "xen" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(others); i++) {
		g_autoptr(herd_domxml) o = parse_ok(others[i].xml);
		g_assert_cmpstr(o->type, ==, others[i].type);
		g_assert_cmpuint(o->memory_mib, ==, 100);
	}

	/* parsing leaves nothing defined behind: the same VM parses again, and a
	 * VM named like the test driver's sample domain too */
	g_autoptr(herd_domxml) again = parse_ok(GUEST);
	g_assert_cmpstr(again->uuid, ==, d->uuid);
	g_autofree char *named_test = edit(GUEST, "<name>x</name>", "<name>test</name>");
	g_autoptr(herd_domxml) t = parse_ok(named_test);
	g_assert_cmpstr(t->name, ==, "test");
	/* the same UUID under another name is fine for the validator */
	g_autofree char *renamed = edit(GUEST, "<name>x</name>", "<name>y</name>");
	g_autoptr(herd_domxml) y = parse_ok(renamed);
	g_assert_cmpstr(y->uuid, ==, d->uuid);
}

/* What the domain uses on the host: its disks' files (a serial log's
 * path is no disk) and its interfaces' bridges, each once. */
static void test_uses(void)
{
	g_autofree char *xml = g_strdup(GUEST);
	const char *at = strstr(xml, "    <controller");
	g_autofree char *more = g_strdup_printf(
		"%.*s    <disk type='file' device='cdrom'>\n      <source file='/srv/isos/x&amp;y.iso'/>\n"
		"      <target dev='sda' bus='sata'/>\n      <readonly/>\n    </disk>\n"
		"    <interface type='bridge'>\n      <source bridge='br0'/>\n      <model type='virtio'/>\n    </interface>\n"
		"    <interface type='bridge'>\n      <source bridge='br0'/>\n      <model type='virtio'/>\n    </interface>\n"
		"    <interface type='network'>\n      <source network='default'/>\n    </interface>\n%s",
		(int)(at - xml), xml, at);
	g_autoptr(GError) error = NULL;
	g_autoptr(herd_domxml) d = herd_domxml_parse(more, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(g_strv_length(d->files), ==, 2);
	g_assert_cmpstr(d->files[0], ==, "/var/lib/herd/herd-guest.img");
	g_assert_cmpstr(d->files[1], ==, "/srv/isos/x&y.iso");
	g_assert_cmpuint(g_strv_length(d->bridges), ==, 1);
	g_assert_cmpstr(d->bridges[0], ==, "br0");
}

static void test_uuid_inserted(void)
{
	g_autoptr(herd_domxml) d = parse_ok(GUEST_NO_UUID);
	g_assert_true(store_uuid_is_valid(d->uuid));
	g_autofree char *tag = g_strdup_printf("<uuid>%s</uuid>", d->uuid);
	g_assert_nonnull(strstr(d->xml, tag));
	/* the stored XML is still valid and keeps that UUID */
	g_autoptr(herd_domxml) again = parse_ok(d->xml);
	g_assert_cmpstr(again->uuid, ==, d->uuid);
	g_assert_cmpstr(again->xml, ==, d->xml);
	g_assert_cmpstr(again->name, ==, "x");
	/* every parse of XML without a UUID makes a new one */
	g_autoptr(herd_domxml) other = parse_ok(GUEST_NO_UUID);
	g_assert_cmpstr(other->uuid, !=, d->uuid);
}

/* "<uuid>" inside a comment (or CDATA) is no <uuid> element: the stored
 * XML must still get one, or every node defines the VM under another UUID. */
static void test_uuid_in_comment(void)
{
	g_autofree char *xml = edit(GUEST_NO_UUID, "<description>", "<!-- <uuid> --><description>");
	g_autoptr(herd_domxml) d = parse_ok(xml);
	g_autoptr(herd_domxml) again = parse_ok(d->xml);
	g_assert_cmpstr(again->uuid, ==, d->uuid);
}

static void test_refused(void)
{
	expect_refused(NULL, HERD_ERR_INVALID, "The domain XML is empty.");
	expect_refused("", HERD_ERR_INVALID, "The domain XML is empty.");
	expect_refused("hello", HERD_ERR_INVALID, "The domain XML is invalid:");
	expect_refused("hello", HERD_ERR_INVALID, "Start tag expected");
	expect_refused("<domain type='qemu'><name>x</name>", HERD_ERR_INVALID, "The domain XML is invalid:");
	expect_refused("{\"name\":\"x\"}", HERD_ERR_INVALID, "The domain XML is invalid:");
	/* well-formed, but not what the schema allows */
	g_autofree char *extra = edit(GUEST, "<vcpu", "<bogus/><vcpu");
	expect_refused(extra, HERD_ERR_INVALID, "failed to validate against schema");
	expect_refused(extra, HERD_ERR_INVALID, "bogus");
	g_autofree char *bad_mem = edit(GUEST, "<memory unit='MiB'>32</memory>", "<memory unit='MiB'>lots</memory>");
	expect_refused(bad_mem, HERD_ERR_INVALID, "The domain XML is invalid:");
	g_autofree char *bad_uuid = edit(GUEST, "ba36b771-e388-5d41-a1c2-603d7a286cea", "not-a-uuid");
	expect_refused(bad_uuid, HERD_ERR_INVALID, "The domain XML is invalid:");
	g_autofree char *no_name = edit(GUEST, "<name>x</name>", "");
	expect_refused(no_name, HERD_ERR_INVALID, "The domain XML is invalid:");
	/* a type libvirt does not know, and one herd does not run */
	g_autofree char *bogus = edit(GUEST, "type='qemu'", "type='bogus'");
	expect_refused(bogus, HERD_ERR_INVALID, "The domain XML is invalid:");
	g_autofree char *test = edit(GUEST, "type='qemu'", "type='test'");
	expect_refused(test, HERD_ERR_INVALID, "Domain type 'test' is not supported; use kvm, qemu, lxc or xen.");
	g_autofree char *vmware = edit(GUEST, "type='qemu'", "type='vmware'");
	expect_refused(vmware, HERD_ERR_INVALID, "Domain type 'vmware' is not supported");
	/* not a domain at all */
	expect_refused("<network><name>x</name></network>", HERD_ERR_INVALID, "The domain XML is invalid:");
	/* an external entity is not followed */
	expect_refused("<!DOCTYPE domain [<!ENTITY e SYSTEM 'file:///etc/hostname'>]>"
		       "<domain type='qemu'><name>&e;</name><memory>1024</memory><vcpu>1</vcpu>"
		       "<os><type arch='x86_64'>hvm</type></os></domain>",
		       HERD_ERR_INVALID, "The domain XML is invalid:");
}

static void test_encoding(void)
{
	/* invalid UTF-8 anywhere */
	g_autofree char *bad = edit(GUEST, "herd test guest", "herd \xff test guest");
	expect_refused(bad, HERD_ERR_INVALID, "The domain XML is not valid UTF-8.");
	g_autofree char *cut = edit(GUEST, "herd test guest", "herd \xc3");
	expect_refused(cut, HERD_ERR_INVALID, "not valid UTF-8");
	/* valid UTF-8 is fine */
	g_autofree char *ok = edit(GUEST, "herd test guest", "herd test guest \xc3\xa9\xe2\x82\xac");
	g_autoptr(herd_domxml) d = parse_ok(ok);
	g_assert_nonnull(strstr(d->xml, "\xc3\xa9\xe2\x82\xac"));
}

#define LIMIT (1024 * 1024)

/* @xml padded with a comment to @size bytes. */
static char *padded(const char *xml, size_t size)
{
	size_t len = strlen(xml);
	const char *tail = "</domain>\n";
	const char *body_end = strstr(xml, tail);
	g_assert_nonnull(body_end);
	size_t fixed = len + strlen("<!--") + strlen("-->");
	g_assert_cmpuint(size, >, fixed);
	GString *s = g_string_sized_new(size + 1);
	g_string_append_len(s, xml, body_end - xml);
	g_string_append(s, "<!--");
	for (size_t i = 0; i < size - fixed; i++)
		g_string_append_c(s, 'p');
	g_string_append(s, "-->");
	g_string_append(s, tail);
	g_assert_cmpuint(s->len, ==, size);
	return g_string_free(s, FALSE);
}

static void test_size(void)
{
	g_autofree char *at = padded(GUEST, LIMIT);
	g_autoptr(herd_domxml) d = parse_ok(at);
	g_assert_cmpuint(strlen(d->xml), ==, LIMIT);
	g_autofree char *over = padded(GUEST, LIMIT + 1);
	expect_refused(over, HERD_ERR_TOO_LARGE, "The domain XML is larger than 1048576 bytes.");
	/* the limit counts before anything else is looked at */
	g_autofree char *junk = g_strnfill(LIMIT + 10, '\xff');
	expect_refused(junk, HERD_ERR_TOO_LARGE, "larger than");
}

/* What readers see: no password of any graphics, nothing else changed. */
static void test_without_passwords(void)
{
	g_assert_null(herd_domxml_without_passwords("<domain><devices/></domain>"));
	g_assert_null(herd_domxml_without_passwords("<domain><description>mypasswd=1</description></domain>"));
	g_autofree char *a = herd_domxml_without_passwords(
		"<domain><devices><graphics type='vnc' port='-1' passwd='s3cr\"t'/>\n"
		"<graphics type=\"spice\"\n  passwd = \"x'y\" autoport=\"yes\"/></devices></domain>");
	g_assert_cmpstr(a, ==,
			"<domain><devices><graphics type='vnc' port='-1'/>\n"
			"<graphics type=\"spice\" autoport=\"yes\"/></devices></domain>");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/domxml/guest", test_guest);
	g_test_add_func("/domxml/uses", test_uses);
	g_test_add_func("/domxml/uuid-inserted", test_uuid_inserted);
	g_test_add_func("/domxml/uuid-in-comment", test_uuid_in_comment);
	g_test_add_func("/domxml/refused", test_refused);
	g_test_add_func("/domxml/without-passwords", test_without_passwords);
	g_test_add_func("/domxml/encoding", test_encoding);
	g_test_add_func("/domxml/size", test_size);
	return g_test_run();
}
