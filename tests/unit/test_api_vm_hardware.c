/*
 * VMs made from their hardware (src/api/vm_hardware.c) and virtual switches
 * (src/api/network.c), in a cluster of three nodes in this process
 * (tests/lib): create, set (each a new version), the XML made, live CD-ROM
 * changes and pending changes of a running VM; and every refusal, which
 * changes nothing.
 */
#include "test_api.h"

#include "store/disk.h"
#include "store/storage.h"

#include <string.h>

#define SHARE "/srv/share"

/* A cluster share with disks d1, d2 (qcow2) and ISOs cd1, cd2. */
static void objects(fixture *f)
{
	char sid[STORE_UUID_LEN + 1];
	store_uuid_generate(sid);
	g_autoptr(json_t) fields = json_pack("{s:s,s:s,s:b}", "type", "dir", "path", SHARE, "cluster_share", 1);
	g_autoptr(json_t) cmd = store_storage_cmd_create(sid, "share", fields);
	testnode_commit(f->n[1], cmd);
	store_object *share = store_state_get(herd_cluster_state(f->n[1]->cluster), STORE_KIND_STORAGE, sid);
	g_assert_nonnull(share);
	static const char *const disks[] = { "d1", "d2", "d3" };
	for (unsigned i = 0; i < G_N_ELEMENTS(disks); i++) {
		char uuid[STORE_UUID_LEN + 1];
		store_uuid_generate(uuid);
		g_autofree char *file = store_disk_file_for(disks[i], STORE_DISK_QCOW2);
		g_autoptr(json_t) c = store_disk_cmd_create(uuid, disks[i], share, STORE_DISK_QCOW2, 1 << 30, file, -1);
		testnode_commit(f->n[1], c);
	}
	for (unsigned i = 1; i <= 2; i++) {
		char uuid[STORE_UUID_LEN + 1], name[16];
		store_uuid_generate(uuid);
		g_snprintf(name, sizeof(name), "cd%u", i);
		g_autoptr(json_t) c = store_iso_cmd_create(uuid, name, share, 4096,
							   "0000000000000000000000000000000000000000000000000000000000000000");
		testnode_commit(f->n[1], c);
	}
	g_autoptr(test_answer) net = test_requestf(f->n[2], "POST", "/api/v1/networks", "{s:s,s:s}", "name", "lan",
						   "bridge", "vmbr0");
	test_expect(net, 201);
	g_autoptr(test_answer) tagged = test_requestf(f->n[2], "POST", "/api/v1/networks", "{s:s,s:s,s:i}", "name",
						      "dmz", "bridge", "ovs0", "vlan", 42);
	test_expect(tagged, 201);
}

static const char *xml_of(json_t *vm)
{
	return json_string_value(json_object_get(vm, "xml"));
}

static json_t *hw_of(json_t *vm)
{
	return json_object_get(vm, "hardware");
}

static void test_create(fixture *f, gconstpointer data)
{
	objects(f);
	g_autoptr(json_t) body =
		json_pack("{s:s,s:s,s:i,s:{s:[{s:s},s],s:[s,{s:s,s:s,s:s}],s:s,s:s,s:s},s:b}", "name", "web1",
			  "memory", "1G", "vcpus", 2, "hardware", "disks", "disk", "d1", "d2", "nics", "lan",
			  "network", "dmz", "model", "e1000", "mac", "52:54:00:AB:00:01", "cdrom", "cd1",
			  "firmware", "uefi", "boot", "cdrom,disk", "ha", 0);
	g_autoptr(test_answer) made = test_request(f->n[1], "POST", "/api/v1/vms", body);
	json_t *vm = test_expect(made, 201);
	g_assert_cmpint(json_integer_value(json_object_get(vm, "memory_mib")), ==, 1024);
	g_assert_cmpint(json_integer_value(json_object_get(vm, "vcpus")), ==, 2);
	g_assert_cmpstr(str(vm, "type"), ==, "kvm");
	json_t *hw = hw_of(vm);
	g_assert_cmpstr(str(hw, "cdrom"), ==, "cd1");
	g_assert_cmpstr(str(hw, "firmware"), ==, "uefi");
	g_assert_cmpstr(str(json_array_get(json_object_get(hw, "disks"), 1), "name"), ==, "d2");
	json_t *nics = json_object_get(hw, "nics");
	g_assert_true(g_regex_match_simple("^52:54:00(:[0-9a-f]{2}){3}$", str(json_array_get(nics, 0), "mac"), 0, 0));
	g_assert_cmpstr(str(json_array_get(nics, 1), "mac"), ==, "52:54:00:ab:00:01");
	g_assert_cmpstr(str(json_array_get(nics, 1), "network_name"), ==, "dmz");
	g_autoptr(test_answer) keep = NULL;
	const char *xml = xml_of(get_vm(f, 3, "web1", &keep));
	g_assert_nonnull(strstr(xml, "<source file='" SHARE "/images/d1.qcow2'/>"));
	g_assert_nonnull(strstr(xml, "<source file='" SHARE "/isos/cd1'/>"));
	g_assert_nonnull(strstr(xml, "<os firmware='efi'>"));
	g_assert_nonnull(strstr(xml, "<tag id='42'/>"));
	g_assert_nonnull(strstr(xml, "<target dev='sda' bus='sata'/>")); /* the CD-ROM on q35 */

	/* The switch list shows who uses them; one in use cannot go. */
	g_autoptr(test_answer) list = test_request(f->n[3], "GET", "/api/v1/networks", NULL);
	json_t *nets = test_expect(list, 200);
	g_assert_cmpuint(json_array_size(nets), ==, 2);
	g_assert_cmpstr(json_string_value(json_array_get(json_object_get(json_array_get(nets, 1), "vms"), 0)), ==,
			"web1");

	g_autofree char *mac = g_strdup(str(json_array_get(nics, 0), "mac"));
	g_autofree char *mac_body = g_strdup_printf(
		"{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"nics\":[{\"network\":\"lan\",\"mac\":\"%s\"}]}}", mac);
	const refusal bad[] = {
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"12Q\",\"hardware\":{}}", 400, "'12Q' is not a size" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"hardware\":{}}", 400, "Field 'memory'" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"8M\",\"hardware\":{}}", 400, "at least 16 MiB" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"vcpus\":0,\"hardware\":{}}", 400, "vcpus" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"a b\",\"memory\":\"64M\",\"hardware\":{}}", 400, "name" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"web1\",\"memory\":\"64M\",\"hardware\":{}}", 409, "VM web1 exists already" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"disks\":[\"d1\"]}}", 409, "Disk d1 is used by VM web1 already" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"disks\":[\"nope\"]}}", 404, "There is no disk 'nope'" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"disks\":[\"d3\",\"d3\"]}}", 400, "Disk d3 is given twice" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"disks\":[{\"disk\":\"d3\",\"bus\":\"usb\"}]}}", 400, "disk bus \"usb\"" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"nics\":[\"wan\"]}}", 404, "There is no virtual switch 'wan'" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"nics\":[{\"network\":\"lan\",\"model\":\"ne2k\"}]}}", 400, "NIC model" },
		{ 1, "POST", "/api/v1/vms", mac_body, 409, "is in use already" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"cdrom\":\"nope\"}}", 404, "There is no ISO 'nope'" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"floppy\":\"nope\"}}", 404, "There is no floppy image 'nope'" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"boot\":\"hd\"}}", 400, "boot order" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"firmware\":\"coreboot\"}}", 400, "firmware" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"gpu\":1}}", 400, "no field 'gpu'" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"add_disks\":[\"d3\"]}}", 400, "not additions" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"xml\":\"<domain/>\",\"hardware\":{}}", 400, "not both" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\"}", 400, "'hardware'" },
		{ 1, "POST", "/api/v1/vms", "{\"name\":\"x\",\"memory\":\"64M\",\"hardware\":{\"firmware\":\"uefi\",\"disks\":[{\"disk\":\"d3\",\"bus\":\"ide\"}]}}", 400, "no IDE bus" },
		{ 1, "POST", "/api/v1/networks", "{\"name\":\"lan\",\"bridge\":\"vmbr1\"}", 409, "exists already" },
		{ 1, "POST", "/api/v1/networks", "{\"name\":\"lan2\",\"bridge\":\"vmbr0\"}", 409, "Virtual switch lan is bridge vmbr0 already" },
		{ 1, "POST", "/api/v1/networks", "{\"name\":\"x\",\"bridge\":\"a/b\"}", 400, "not an interface name" },
		{ 1, "POST", "/api/v1/networks", "{\"name\":\"x\"}", 400, "Field 'bridge'" },
		{ 1, "POST", "/api/v1/networks", "{\"name\":\"x\",\"bridge\":\"b\",\"vlan\":4095}", 400, "vlan" },
		{ 1, "DELETE", "/api/v1/networks/dmz", NULL, 409, "Virtual switch dmz is in use by VM web1" },
	};
	EXPECT_REFUSALS(f, bad);
	g_autoptr(test_answer) vms = test_request(f->n[2], "GET", "/api/v1/vms", NULL);
	g_assert_cmpuint(json_array_size(test_expect(vms, 200)), ==, 1);
}

static void test_set(fixture *f, gconstpointer data)
{
	objects(f);
	g_autoptr(test_answer) made = test_requestf(f->n[1], "POST", "/api/v1/vms", "{s:s,s:s,s:{s:[s],s:s}}",
						    "name", "db", "memory", "256M", "hardware", "disks", "d1",
						    "cdrom", "cd1");
	test_expect(made, 201);
	g_autoptr(test_answer) a = test_requestf(f->n[2], "PUT", "/api/v1/vms/db", "{s:{s:[s],s:n,s:s},s:i}",
						 "hardware", "add_disks", "d2", "cdrom", "boot", "disk,network",
						 "vcpus", 4);
	json_t *vm = test_expect(a, 200);
	g_assert_cmpint(json_integer_value(json_object_get(vm, "version")), ==, 2);
	g_assert_cmpint(json_integer_value(json_object_get(vm, "vcpus")), ==, 4);
	g_assert_null(str(hw_of(vm), "cdrom"));
	g_assert_cmpuint(json_array_size(json_object_get(hw_of(vm), "disks")), ==, 2);
	g_autoptr(test_answer) b = test_requestf(f->n[3], "PUT", "/api/v1/vms/db", "{s:{s:[s],s:[s]}}", "hardware",
						 "remove_disks", "d1", "add_nics", "lan");
	vm = test_expect(b, 200);
	g_assert_cmpint(json_integer_value(json_object_get(vm, "version")), ==, 3);
	g_assert_cmpstr(str(json_array_get(json_object_get(hw_of(vm), "disks"), 0), "name"), ==, "d2");
	g_autoptr(test_answer) keep = NULL;
	const char *xml = xml_of(get_vm(f, 1, "db", &keep));
	g_assert_null(strstr(xml, "d1.qcow2"));
	g_assert_nonnull(strstr(xml, "<source bridge='vmbr0'/>"));
	g_assert_nonnull(strstr(xml, "<vcpu placement='static'>4</vcpu>"));
	/* d1 is free again. */
	g_autoptr(test_answer) other = test_requestf(f->n[1], "POST", "/api/v1/vms", "{s:s,s:s,s:{s:[s]}}", "name",
						     "db2", "memory", "64M", "hardware", "disks", "d1");
	test_expect(other, 201);
	/* Every change is a version in the history. */
	g_autoptr(test_answer) hist = test_request(f->n[2], "GET", "/api/v1/vms/db/history", NULL);
	g_assert_cmpuint(json_array_size(test_expect(hist, 200)), ==, 3);

	g_autofree char *xml_uuid = vm_define(f, 1, "fromxml", NULL);
	const refusal bad[] = {
		{ 1, "PUT", "/api/v1/vms/fromxml", "{\"memory\":\"1G\"}", 409, "was defined from libvirt domain XML" },
		{ 1, "PUT", "/api/v1/vms/db", "{\"hardware\":{\"remove_disks\":[\"d3\"]}}", 400, "The VM has no disk 'd3'" },
		{ 1, "PUT", "/api/v1/vms/db", "{\"hardware\":{\"add_disks\":[\"d1\"]}}", 409, "Disk d1 is used by VM db2 already" },
		{ 1, "PUT", "/api/v1/vms/db", "{\"hardware\":{\"add_disks\":[\"d2\"]}}", 400, "Disk d2 is given twice" },
		{ 1, "PUT", "/api/v1/vms/db", "{\"hardware\":{\"disks\":[],\"add_disks\":[\"d3\"]}}", 400, "not both" },
		{ 1, "PUT", "/api/v1/vms/db", "{\"hardware\":{\"remove_nics\":[\"52:54:00:00:00:99\"]}}", 400, "The VM has no NIC" },
		{ 1, "PUT", "/api/v1/vms/db", "{\"memory\":\"lots\"}", 400, "not a size" },
		{ 1, "PUT", "/api/v1/vms/db", "{\"hardware\":{\"disks\":\"d3\"}}", 400, "must be a list" },
	};
	EXPECT_REFUSALS(f, bad);
	g_autoptr(test_answer) after = NULL;
	g_assert_cmpint(json_integer_value(json_object_get(get_vm(f, 2, "db", &after), "version")), ==, 3);
	/* Removing a NIC by its switch's name. */
	g_autoptr(test_answer) c = test_requestf(f->n[1], "PUT", "/api/v1/vms/db", "{s:{s:[s]}}", "hardware",
						 "remove_nics", "lan");
	g_assert_cmpuint(json_array_size(json_object_get(hw_of(test_expect(c, 200)), "nics")), ==, 0);
}

/* Has n@node's hypervisor been asked to put @iso (NULL: nothing) into the
 * VM's drive? */
static bool media_is(fixture *f, unsigned node, const char *uuid, const char *iso)
{
	const char *xml = testvirt_media(f->n[node]->virt, uuid);
	if (!xml)
		return false;
	if (!iso)
		return !strstr(xml, "<source");
	g_autofree char *src = g_strdup_printf("<source file='" SHARE "/isos/%s'/>", iso);
	return strstr(xml, src) != NULL;
}

/* The VM's "pending" as n@node shows it, joined: "memory,disks", "" for none. */
static char *pending(fixture *f, unsigned node, const char *vm)
{
	g_autoptr(test_answer) keep = NULL;
	json_t *p = json_object_get(get_vm(f, node, vm, &keep), "pending");
	g_assert_true(json_is_array(p));
	GString *s = g_string_new(NULL);
	size_t i;
	json_t *e;
	json_array_foreach(p, i, e)
		g_string_append_printf(s, "%s%s", i ? "," : "", json_string_value(e));
	return g_string_free(s, FALSE);
}

static bool pending_is(fixture *f, unsigned node, const char *vm, const char *want)
{
	g_autofree char *now = pending(f, node, vm);
	return strcmp(now, want) == 0;
}

static void test_running(fixture *f, gconstpointer data)
{
	objects(f);
	g_autoptr(test_answer) made = test_requestf(f->n[1], "POST", "/api/v1/vms", "{s:s,s:s,s:s,s:{s:[s],s:s}}",
						    "name", "live", "memory", "64M", "preferred", "n2",
						    "hardware", "disks", "d1", "cdrom", "cd1");
	const char *uuid = str(test_expect(made, 201), "uuid");
	reach_all(f);
	vm_start(f, 1, "live", "n2");
	g_assert_true(pending_is(f, 1, "live", ""));

	/* The CD-ROM: changed live by the node that runs it, in the drive the
	 * guest has (the first IDE unit: the disk is virtio). */
	g_autoptr(test_answer) a = test_requestf(f->n[3], "PUT", "/api/v1/vms/live", "{s:{s:s}}", "hardware",
						 "cdrom", "cd2");
	test_expect(a, 200);
	TEST_WAIT(media_is(f, 2, uuid, "cd2"));
	g_assert_nonnull(strstr(testvirt_media(f->n[2]->virt, uuid), "<target dev='hda' bus='ide'/>"));
	TEST_WAIT(pending_is(f, 1, "live", ""));
	g_autoptr(test_answer) e = test_requestf(f->n[1], "PUT", "/api/v1/vms/live", "{s:{s:n}}", "hardware", "cdrom");
	test_expect(e, 200);
	TEST_WAIT(media_is(f, 2, uuid, NULL));
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "change_media", uuid), ==, 2);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "start", uuid), ==, 1);

	/* Memory and a disk: at the next start; meanwhile pending. */
	g_autoptr(test_answer) m = test_requestf(f->n[1], "PUT", "/api/v1/vms/live", "{s:s,s:{s:[s]}}", "memory",
						 "128M", "hardware", "add_disks", "d2");
	test_expect(m, 200);
	TEST_WAIT(pending_is(f, 3, "live", "memory,disks"));
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "change_media", uuid), ==, 2);
	/* A stop and a start: it runs with the new configuration. */
	g_autoptr(test_answer) d = vm_action(f, 1, "live", "destroy", NULL);
	test_expect(d, 200);
	vm_start(f, 1, "live", "n2");
	TEST_WAIT(pending_is(f, 1, "live", ""));

	/* Migrated live: the node it arrives at changes its CD-ROM too. */
	g_autoptr(test_answer) mv = test_requestf(f->n[1], "POST", "/api/v1/vms/live/migrate", "{s:s,s:b}", "node",
						  "n3", "wait", 1);
	test_expect(mv, 200);
	TEST_WAIT(vm_runs_on(f, uuid, 3));
	g_autoptr(test_answer) c = test_requestf(f->n[1], "PUT", "/api/v1/vms/live", "{s:{s:s}}", "hardware",
						 "cdrom", "cd1");
	test_expect(c, 200);
	TEST_WAIT(media_is(f, 3, uuid, "cd1"));
	TEST_WAIT(pending_is(f, 2, "live", ""));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/vms/hardware/create", test_create, NULL);
	api_test_add("/api/vms/hardware/set", test_set, NULL);
	api_test_add("/api/vms/hardware/running", test_running, NULL);
	return g_test_run();
}
