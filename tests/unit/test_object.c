/* Store objects: kinds, names, UUIDs and their JSON form. */
#include "common/error.h"
#include "common/json.h"
#include "store/db.h"
#include "store/object.h"
#include "store/vm.h"

#include <string.h>

#define UUID1 "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab"
#define UUID2 "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ac"

/* @name is refused with INVALID, in a valid UTF-8 sentence (it ends up in
 * JSON answers) that contains @needle. */
static void expect_bad_name(store_kind kind, const char *name, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_assert_false(store_name_validate(kind, name, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
	if (!g_utf8_validate(error->message, -1, NULL))
		g_error("the message for a bad name is not valid UTF-8: '%s'", error->message);
}

static void test_kinds(void)
{
	for (int k = 0; k < STORE_KIND__COUNT; k++) {
		store_kind back;
		g_assert_true(store_kind_parse(store_kind_name((store_kind)k), &back));
		g_assert_cmpint(back, ==, k);
	}
	store_kind out = STORE_KIND_HOST;
	g_assert_false(store_kind_parse("VM", &out));   /* names are lower case */
	g_assert_false(store_kind_parse("", &out));
	g_assert_false(store_kind_parse(NULL, &out));
	g_assert_cmpint(out, ==, STORE_KIND_HOST);      /* untouched on failure */
	g_assert_cmpstr(store_kind_name(STORE_KIND_FENCE_DEVICE), ==, "fence_device");
	g_assert_cmpstr(store_kind_label(STORE_KIND_FENCE_DEVICE), ==, "fence device");
	g_assert_cmpstr(store_kind_label(STORE_KIND_VM), ==, "VM");
	g_assert_cmpstr(store_kind_name(STORE_KIND__COUNT), ==, "?");
}

static void test_name_valid(void)
{
	static const char *const good[] = {
		"a", "A", "7", "web1", "Web-1_x.y", "0-leading-digit", "a.b.c", "x-",
		/* 63 characters, the maximum */
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123",
		/* UUID-like but not canonical: wrong group lengths or a non-hex letter */
		"6f1c2d3e-4a5b-4c6d-8e7f-0123456789a", "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ag",
		"6f1c2d3e4a5b4c6d8e7f0123456789ab",
		NULL,
	};
	for (const char *const *n = good; *n; n++) {
		g_autoptr(GError) error = NULL;
		if (!store_name_validate(STORE_KIND_VM, *n, &error))
			g_error("'%s' refused: %s", *n, error->message);
	}
}

static void test_name_invalid(void)
{
	expect_bad_name(STORE_KIND_VM, "", "VM name must not be empty");
	expect_bad_name(STORE_KIND_NODE, NULL, "node name must not be empty");
	/* 64 characters: one too many */
	expect_bad_name(STORE_KIND_VM,
			"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234",
			"longer than 63 characters");
	expect_bad_name(STORE_KIND_VM, "-web", "'-web' must start with a letter or digit");
	expect_bad_name(STORE_KIND_VM, "_web", "must start with a letter or digit");
	expect_bad_name(STORE_KIND_VM, ".hidden", "must start with a letter or digit");
	expect_bad_name(STORE_KIND_VM, "web 1", "contains a character other than");
	expect_bad_name(STORE_KIND_VM, "web/1", "contains a character other than");
	expect_bad_name(STORE_KIND_VM, "web:1", "contains a character other than");
	expect_bad_name(STORE_KIND_VM, "web'1", "contains a character other than");
	/* control bytes are shown escaped, never raw */
	expect_bad_name(STORE_KIND_VM, "web\n1", "'web\\n1'");
	expect_bad_name(STORE_KIND_VM, "web\t1", "'web\\t1'");
	expect_bad_name(STORE_KIND_VM, "web\x7f", "contains a character other than");
	expect_bad_name(STORE_KIND_VM, "web\x1b[31m", "contains a character other than");
	/* non-ASCII letters are not letters here */
	expect_bad_name(STORE_KIND_VM, "caf\xc3\xa9", "contains a character other than");
	expect_bad_name(STORE_KIND_VM, "\xc3\xa9t\xc3\xa9", "must start with a letter or digit");
	expect_bad_name(STORE_KIND_VM, "web\xff", "contains a character other than");
	/* UUID-shaped names, in either case, would make NAME|UUID ambiguous */
	expect_bad_name(STORE_KIND_VM, UUID1, "looks like a UUID");
	expect_bad_name(STORE_KIND_VM, "6F1C2D3E-4A5B-4C6D-8E7F-0123456789AB", "looks like a UUID");
	expect_bad_name(STORE_KIND_HOST, "6F1C2D3E-4a5b-4c6d-8e7f-0123456789ab",
			"The host name '6F1C2D3E-4a5b-4c6d-8e7f-0123456789ab' looks like a UUID");
	/* the kind's label is in the message */
	expect_bad_name(STORE_KIND_FENCE_DEVICE, "", "fence device name");
}

/* A name too long is shown shortened: the shortening must not cut a UTF-8
 * character in two, since the message goes into a JSON answer (jansson
 * refuses invalid UTF-8). */
static void test_name_too_long_utf8(void)
{
	GString *name = g_string_new("a");
	for (int i = 0; i < 40; i++)
		g_string_append(name, "\xc3\xa9"); /* é */
	expect_bad_name(STORE_KIND_VM, name->str, "longer than 63 characters");
	g_string_free(name, TRUE);
}

static void test_uuid(void)
{
	g_assert_true(store_uuid_is_valid(UUID1));
	g_assert_true(store_uuid_is_valid("00000000-0000-0000-0000-000000000000"));
	static const char *const bad[] = {
		"", "6F1C2D3E-4A5B-4C6D-8E7F-0123456789AB",          /* upper case */
		"6f1c2d3e-4a5b-4c6d-8e7f-0123456789a",               /* short */
		"6f1c2d3e-4a5b-4c6d-8e7f-0123456789abc",             /* long */
		"6f1c2d3e4a5b-4c6d-8e7f-0123456789ab-",              /* dashes misplaced */
		"6f1c2d3e-4a5b-4c6d-8e7f-0123456789ag",              /* not hex */
		"{6f1c2d3e-4a5b-4c6d-8e7f-0123456789}",
		"6f1c2d3e-4a5b-4c6d-8e7f\n0123456789ab",
		NULL,
	};
	for (const char *const *u = bad; *u; u++)
		if (store_uuid_is_valid(*u))
			g_error("'%s' accepted as a UUID", *u);
	g_assert_false(store_uuid_is_valid(NULL));
	/* embedded NUL: the bytes after it do not count */
	g_assert_false(store_uuid_is_valid("6f1c2d3e-4a5b-4c6d-8e7f-0123456789a\0b"));

	char a[STORE_UUID_LEN + 1], b[STORE_UUID_LEN + 1];
	store_uuid_generate(a);
	store_uuid_generate(b);
	g_assert_true(store_uuid_is_valid(a));
	g_assert_true(store_uuid_is_valid(b));
	g_assert_cmpstr(a, !=, b);
	g_assert_cmpint(a[14], ==, '4'); /* version 4 */
}

static void test_object_refcount(void)
{
	g_autoptr(json_t) data = json_pack("{s:s}", "address", "10.0.0.1");
	store_object *o = store_object_new(STORE_KIND_NODE, UUID1, "web1", 3, 10, 20, data);
	g_assert_true(o->data == data);               /* referenced, not copied */
	g_assert_cmpint(data->refcount, ==, 2);
	g_assert_true(store_object_ref(o) == o);
	store_object_unref(o);
	g_assert_cmpstr(o->name, ==, "web1");
	store_object_unref(o);
	g_assert_cmpint(data->refcount, ==, 1);
	store_object_unref(NULL);

	g_autoptr(store_object) empty = store_object_new(STORE_KIND_NODE, UUID1, "n1", 1, 0, 0, NULL);
	g_assert_true(json_is_object(empty->data));   /* never NULL */
	g_assert_cmpuint(json_object_size(empty->data), ==, 0);
}

/* A VM keeps its data as store_db_encode()'s text, packed, no tree; its
 * typed view owns its strings and reads its XML from the text. */
static void test_object_vm_text(void)
{
	const char *xml = "<domain type='kvm'>\n  <name>a \"b\" \\ é\t</name>\n</domain>";
	g_autoptr(json_t) data = json_pack("{s:s,s:s,s:s,s:[s],s:[{s:s,s:i}],s:b,s:I}", "xml", xml,
					   "type", "kvm", "preferred", "n1", "xml_files",
					   "/var/lib/x.qcow2", "nodes", "node", "n2", "priority", 5,
					   "ha", 1, "memory_mib", (json_int_t)2048);
	store_object *o = store_object_new(STORE_KIND_VM, UUID1, "web1", 3, 10, 20, data);
	g_assert_null(o->data);
	g_autofree char *want = store_db_encode(data);
	g_autofree char *held = store_packed_text(o->text);
	g_assert_cmpstr(held, ==, want);
	g_assert_cmpuint(store_packed_text_len(o->text), ==, strlen(want));
	g_autofree char *enc = store_object_encode(o, NULL);
	g_assert_cmpstr(enc, ==, want);
	json_object_set_new(data, "type", json_string("changed")); /* not the view's */
	g_assert_cmpint(data->refcount, ==, 1);                     /* not kept */
	const store_vm *vm = store_vm_of(o);
	g_assert_cmpstr(vm->type, ==, "kvm");
	g_assert_cmpstr(vm->preferred, ==, "n1");
	g_assert_cmpstr(vm->xml_files[0], ==, "/var/lib/x.qcow2");
	g_assert_null(vm->xml_files[1]);
	g_assert_cmpuint(vm->n_nodeset, ==, 1);
	g_assert_cmpstr(vm->nodeset[0].node, ==, "n2");
	g_assert_true(vm->ha);
	g_assert_cmpuint(vm->memory_mib, ==, 2048);
	g_autofree char *back = store_vm_xml(vm, NULL);
	g_assert_cmpstr(back, ==, xml);
	g_autoptr(json_t) parsed = store_object_data(o, NULL);
	json_object_set_new(data, "type", json_string("kvm"));
	g_assert_true(json_equal(parsed, data));
	g_autoptr(json_t) j = store_object_to_json(o);
	g_assert_true(json_equal(json_object_get(j, "data"), data));

	/* Same XML, another object: the same bytes; another XML: not. */
	store_object *same = store_object_new(STORE_KIND_VM, UUID1, "web1", 4, 10, 30, data);
	g_assert_true(store_packed_equal(o->text, same->text));
	g_assert_true(store_vm_same_xml(vm, store_vm_of(same)));
	/* ... and with its state changed (another text, unpacked to compare). */
	json_object_set_new(data, "target", json_string("running"));
	store_object *started = store_object_new(STORE_KIND_VM, UUID1, "web1", 4, 10, 30, data);
	g_assert_false(store_packed_equal(o->text, started->text));
	g_assert_true(store_vm_same_xml(vm, store_vm_of(started)));
	store_object_unref(started);
	json_object_del(data, "target");
	json_object_set_new(data, "xml", json_string("<domain/>"));
	store_object *other = store_object_new(STORE_KIND_VM, UUID1, "web1", 5, 10, 40, data);
	g_assert_false(store_vm_same_xml(vm, store_vm_of(other)));
	json_object_del(data, "xml");
	store_object *none = store_object_new(STORE_KIND_VM, UUID1, "web1", 6, 10, 50, data);
	g_autofree char *empty = store_vm_xml(store_vm_of(none), NULL);
	g_assert_cmpstr(empty, ==, "");
	g_assert_null(store_vm_of(none)->xml_macs);
	g_assert_false(store_vm_xml_may_have_mac(store_vm_of(none), "52:54:00:00:00:01"));
	json_object_set_new(data, "xml", json_string(""));
	store_object *blank = store_object_new(STORE_KIND_VM, UUID1, "web1", 7, 10, 60, data);
	g_assert_true(store_vm_same_xml(store_vm_of(none), store_vm_of(blank)));
	g_assert_false(store_vm_same_xml(vm, store_vm_of(blank)));
	store_object_unref(blank);
	store_object_unref(none);
	store_object_unref(other);
	store_object_unref(same);
	store_object_unref(o);
}

/* Packed texts come back as they were, whatever their size (beyond
 * deflate's window too) and bytes; the same text packs to the same bytes;
 * a VM's text with a usual domain XML takes less than half its size. */
static void test_packed(void)
{
	GString *big = g_string_new("{\"xml\":\"");
	for (unsigned i = 0; big->len < 40000; i++)
		g_string_append_printf(big, "<disk n='%u'/>\\n", i * 7919u);
	g_string_append(big, "\"}");
	const char *texts[] = { "", "{}", "{\"a\":\"\\u0000 é \\\"\"}", big->str };
	for (unsigned i = 0; i < G_N_ELEMENTS(texts); i++) {
		store_packed *p = store_packed_new(texts[i], strlen(texts[i]));
		store_packed *again = store_packed_new(texts[i], strlen(texts[i]));
		g_autofree char *back = store_packed_text(p);
		g_assert_cmpstr(back, ==, texts[i]);
		g_assert_cmpuint(store_packed_text_len(p), ==, strlen(texts[i]));
		g_assert_true(store_packed_equal(p, again));
		store_packed_free(again);
		store_packed_free(p);
	}
	store_packed *a = store_packed_new("{\"a\":1}", 7), *b = store_packed_new("{\"a\":2}", 7);
	g_assert_false(store_packed_equal(a, b));
	store_packed_free(a);
	store_packed_free(b);
	g_string_free(big, TRUE);
	store_packed_free(NULL);

	const char *xml =
		"<domain type='kvm'>\n  <name>web1</name>\n  <uuid>6f1c2b1e-8a53-4c1e-9f7a-3d2e1b0c9a87</uuid>\n"
		"  <memory unit='KiB'>4194304</memory>\n  <vcpu placement='static'>2</vcpu>\n"
		"  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n"
		"  <features>\n    <acpi/>\n    <apic/>\n  </features>\n"
		"  <cpu mode='host-passthrough' check='none' migratable='on'/>\n"
		"  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n"
		"  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n"
		"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
		"    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n"
		"      <source file='/var/lib/libvirt/images/web1.qcow2'/>\n"
		"      <target dev='vda' bus='virtio'/>\n    </disk>\n"
		"    <interface type='bridge'>\n      <mac address='52:54:00:3a:7c:19'/>\n"
		"      <source bridge='br0'/>\n      <model type='virtio'/>\n    </interface>\n"
		"    <serial type='pty'>\n      <target port='0'/>\n    </serial>\n"
		"    <console type='pty'>\n      <target type='serial' port='0'/>\n    </console>\n"
		"    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>\n"
		"    <video>\n      <model type='virtio' heads='1' primary='yes'/>\n    </video>\n"
		"    <memballoon model='virtio'/>\n  </devices>\n</domain>\n";
	g_autoptr(json_t) data = json_pack("{s:s,s:s,s:I,s:i,s:[s],s:[s],s:s}", "xml", xml, "type", "kvm",
					   "memory_mib", (json_int_t)4096, "vcpus", 2, "xml_files",
					   "/var/lib/libvirt/images/web1.qcow2", "xml_bridges", "br0",
					   "preferred", "n1");
	g_autoptr(store_object) o = store_object_new(STORE_KIND_VM, UUID1, "web1", 1, 0, 0, data);
	g_assert_cmpuint(store_packed_size(o->text) * 2, <, store_packed_text_len(o->text));
}

/* A VM's view tells the XMLs that cannot hold a MAC address from those
 * that may (then store_vm_xml() looks), with no unpacking. */
static void test_vm_xml_macs(void)
{
	g_autoptr(json_t) data = json_pack(
		"{s:s}", "xml",
		"<domain><uuid>6f1c2b1e-8a53-4c1e-9f7a-3d2e1b0c9a87</uuid><interface type='bridge'>"
		"<mac address='52:54:00:AB:cd:0f'/></interface><interface type='bridge'>"
		"<mac address=\"52:54:00:11:22:33\"/></interface><x>aa:bb:cc:dd:ee:ff:00:11</x></domain>");
	g_autoptr(store_object) o = store_object_new(STORE_KIND_VM, UUID1, "web1", 1, 0, 0, data);
	const store_vm *vm = store_vm_of(o);
	g_assert_cmpstr(vm->xml_macs, ==, "52:54:00:AB:cd:0f 52:54:00:11:22:33 aa:bb:cc:dd:ee:ff:00:11");
	g_assert_true(store_vm_xml_may_have_mac(vm, "52:54:00:ab:cd:0f"));
	g_assert_true(store_vm_xml_may_have_mac(vm, "52:54:00:11:22:33"));
	g_assert_true(store_vm_xml_may_have_mac(vm, "cc:dd:ee:ff:00:11"));
	g_assert_false(store_vm_xml_may_have_mac(vm, "52:54:00:ab:cd:0e"));
	/* No MAC's shape: only the XML tells. */
	g_assert_true(store_vm_xml_may_have_mac(vm, "52-54-00-ab-cd-0e"));
	g_autoptr(json_t) plain = json_pack("{s:s}", "xml", "<domain><name>a</name></domain>");
	g_autoptr(store_object) p = store_object_new(STORE_KIND_VM, UUID2, "web2", 1, 0, 0, plain);
	g_assert_null(store_vm_of(p)->xml_macs);
	g_assert_false(store_vm_xml_may_have_mac(store_vm_of(p), "52:54:00:ab:cd:0f"));
}

/* store_text_next() walks the members of an encoded object, values of every
 * kind and strings with what looks like structure in them. */
static void test_text_members(void)
{
	g_autoptr(json_t) data = json_pack("{s:s,s:{s:[i,{s:s}],s:s},s:[s,[]],s:n,s:b,s:i,s:f,s:{}}",
					   "a", "x\"}],{\\", "b", "c", 1, "d", "]}\"", "e", "{[",
					   "f", "g[", "h", "t", 1, "u", -12, "v", 1.5, "w");
	g_autofree char *text = store_db_encode(data);
	const char *keys[] = { "a", "b", "f", "h", "t", "u", "v", "w" };
	const char *cursor = text;
	store_text_member m;
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_assert_true(store_text_next(&cursor, &m));
		g_autofree char *key = g_strndup(m.key, m.key_len);
		g_assert_cmpstr(key, ==, keys[i]);
		/* Each value's text is that value. */
		g_autoptr(json_t) v = json_loadb(m.value, m.value_len, JSON_DECODE_ANY, NULL);
		g_assert_nonnull(v);
		g_assert_true(json_equal(v, json_object_get(data, keys[i])));
	}
	g_assert_false(store_text_next(&cursor, &m));
	g_assert_true(store_text_member_get(text, "u", &m));
	g_assert_cmpint(m.value_len, ==, 3);
	g_assert_false(store_text_member_get(text, "c", &m));  /* nested, not a member */
	const char *empty = "{}";
	g_assert_false(store_text_next(&empty, &m));
}

static void test_json_round_trip(void)
{
	g_autoptr(json_t) data = json_pack("{s:s,s:{s:i},s:[i,i]}", "xml", "<domain>é</domain>",
					   "settings", "a", 1, "list", 1, 2);
	g_autoptr(store_object) o =
		store_object_new(STORE_KIND_FENCE_DEVICE, UUID1, "pdu.1", 42, 1700000000000,
				 1700000000123, data);
	g_autoptr(json_t) j = store_object_to_json(o);
	g_assert_cmpstr(json_string_value(json_object_get(j, "kind")), ==, "fence_device");
	g_assert_cmpint(json_integer_value(json_object_get(j, "version")), ==, 42);

	g_autoptr(GError) error = NULL;
	g_autoptr(store_object) back = store_object_from_json(j, &error);
	g_assert_no_error(error);
	g_assert_cmpint(back->kind, ==, STORE_KIND_FENCE_DEVICE);
	g_assert_cmpstr(back->uuid, ==, UUID1);
	g_assert_cmpstr(back->name, ==, "pdu.1");
	g_assert_cmpuint(back->version, ==, 42);
	g_assert_cmpint(back->created_ms, ==, 1700000000000);
	g_assert_cmpint(back->modified_ms, ==, 1700000000123);
	g_assert_true(json_equal(back->data, data));
	g_autoptr(json_t) again = store_object_to_json(back);
	g_assert_true(json_equal(again, j));
}

static void expect_malformed(const char *text, const char *needle)
{
	json_error_t jerr;
	g_autoptr(json_t) j = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!j)
		g_error("fixture is not JSON: %s: %s", text, jerr.text);
	g_autoptr(GError) error = NULL;
	g_autoptr(store_object) o = store_object_from_json(j, &error);
	g_assert_null(o);
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s' (input %s)", error->message, needle, text);
}

#define OBJ(kind, uuid, name, version, data)                                             \
	"{\"kind\":" kind ",\"uuid\":" uuid ",\"name\":" name ",\"version\":" version       \
	",\"created_ms\":1,\"modified_ms\":2,\"data\":" data "}"
#define U "\"" UUID1 "\""

static void test_json_malformed(void)
{
	/* the fixture macro itself is fine */
	g_autoptr(json_t) ok = json_loads(OBJ("\"vm\"", U, "\"a\"", "1", "{}"), 0, NULL);
	g_autoptr(store_object) o = store_object_from_json(ok, NULL);
	g_assert_nonnull(o);

	expect_malformed("[]", "Malformed object");
	expect_malformed("\"vm\"", "Malformed object");
	expect_malformed("{}", "Malformed object");
	/* each field missing or of the wrong type */
	expect_malformed("{\"uuid\":" U ",\"name\":\"a\",\"version\":1,\"created_ms\":1,"
			 "\"modified_ms\":2,\"data\":{}}", "kind");
	expect_malformed(OBJ("\"vm\"", U, "\"a\"", "\"1\"", "{}"), "Malformed object");
	expect_malformed(OBJ("\"vm\"", U, "null", "1", "{}"), "Malformed object");
	expect_malformed(OBJ("\"vm\"", U, "7", "1", "{}"), "Malformed object");
	expect_malformed(OBJ("\"vm\"", U, "\"a\"", "1.5", "{}"), "Malformed object");
	/* unknown extra fields are refused (strict) */
	expect_malformed("{\"kind\":\"vm\",\"uuid\":" U ",\"name\":\"a\",\"version\":1,"
			 "\"created_ms\":1,\"modified_ms\":2,\"data\":{},\"x\":1}",
			 "Malformed object");
	/* well-typed but wrong values */
	expect_malformed(OBJ("\"vms\"", U, "\"a\"", "1", "{}"), "bad kind, UUID, version or data");
	expect_malformed(OBJ("\"vm\"", "\"not-a-uuid\"", "\"a\"", "1", "{}"),
			 "bad kind, UUID, version or data");
	expect_malformed(OBJ("\"vm\"", U, "\"a\"", "0", "{}"), "bad kind, UUID, version or data");
	expect_malformed(OBJ("\"vm\"", U, "\"a\"", "-3", "{}"), "bad kind, UUID, version or data");
	expect_malformed(OBJ("\"vm\"", U, "\"a\"", "1", "[]"), "bad kind, UUID, version or data");
	expect_malformed(OBJ("\"vm\"", U, "\"a\"", "1", "\"x\""), "bad kind, UUID, version or data");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/object/kinds", test_kinds);
	g_test_add_func("/object/name/valid", test_name_valid);
	g_test_add_func("/object/name/invalid", test_name_invalid);
	g_test_add_func("/object/name/too-long-utf8", test_name_too_long_utf8);
	g_test_add_func("/object/uuid", test_uuid);
	g_test_add_func("/object/refcount", test_object_refcount);
	g_test_add_func("/object/vm-text", test_object_vm_text);
	g_test_add_func("/object/packed", test_packed);
	g_test_add_func("/object/vm-xml-macs", test_vm_xml_macs);
	g_test_add_func("/object/text-members", test_text_members);
	g_test_add_func("/object/json/round-trip", test_json_round_trip);
	g_test_add_func("/object/json/malformed", test_json_malformed);
	return g_test_run();
}
