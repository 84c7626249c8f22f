/*
 * What operators and tools hand herd about storage, before anything is
 * stored: sizes as written (common/size.h), a new storage's fields
 * (store_storage_check), a VM's hardware fields (store_vm_validate), and
 * iscsi-ls's output (virt/iscsi.h).
 */
#include "common/error.h"
#include "common/json.h"
#include "common/size.h"
#include "store/db.h"
#include "store/disk.h"
#include "store/state.h"
#include "store/storage.h"
#include "store/vm.h"
#include "virt/iscsi.h"

#include <string.h>

static void test_size_parse(void)
{
	const struct {
		const char *in;
		uint64_t bytes;
	} ok[] = {
		{ "4096", 4096 },	      { "20G", UINT64_C(20) << 30 },  { "20g", UINT64_C(20) << 30 },
		{ "20GiB", UINT64_C(20) << 30 }, { "20GB", UINT64_C(20) << 30 }, { "512M", UINT64_C(512) << 20 },
		{ "1.5T", UINT64_C(3) << 39 }, { "64T", STORE_DISK_SIZE_MAX }, { "1K", 1024 },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(ok); i++) {
		uint64_t v = 0;
		g_autoptr(GError) error = NULL;
		if (!herd_size_parse(ok[i].in, STORE_DISK_SIZE_MAX, "disk size", &v, &error))
			g_error("'%s' refused: %s", ok[i].in, error->message);
		g_assert_cmpuint(v, ==, ok[i].bytes);
	}
	const struct {
		const char *in, *needle;
	} bad[] = {
		{ "", "not a size" },	  { "G", "not a size" },      { "20X", "not a size" },
		{ "-1G", "not a size" },   { "20 G", "not a size" },   { "1.G", "not a size" },
		{ "1.5", "not a size" },   { "0", "more than nothing" }, { "65T", "too large: at most 64 TiB" },
		{ "99999999999999999999E", "too large" }, { "20Gx", "not a size" },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		uint64_t v = 7;
		g_autoptr(GError) error = NULL;
		g_assert_false(herd_size_parse(bad[i].in, STORE_DISK_SIZE_MAX, "disk size", &v, &error));
		g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
		if (!strstr(error->message, bad[i].needle) || !strstr(error->message, "disk size"))
			g_error("'%s': '%s' does not mention '%s'", bad[i].in, error->message, bad[i].needle);
		g_assert_cmpuint(v, ==, 7);
	}
	const struct {
		uint64_t in;
		const char *out;
	} fmt[] = { { 300, "300 B" }, { 1024, "1 KiB" }, { UINT64_C(20) << 30, "20 GiB" }, { UINT64_C(3) << 39, "1.5 TiB" } };
	for (unsigned i = 0; i < G_N_ELEMENTS(fmt); i++) {
		g_autofree char *s = herd_size_format(fmt[i].in);
		g_assert_cmpstr(s, ==, fmt[i].out);
	}
}

static void expect_storage(store_state *st, const char *fields, const char *needle)
{
	g_autoptr(json_t) f = json_loads(fields, 0, NULL);
	g_assert_nonnull(f);
	g_autoptr(GError) error = NULL;
	bool ok = store_storage_check(st, f, &error);
	if (!needle) {
		if (!ok)
			g_error("%s refused: %s", fields, error->message);
		return;
	}
	if (ok)
		g_error("%s accepted, expected '%s'", fields, needle);
	if (!strstr(error->message, needle))
		g_error("%s: '%s' does not mention '%s'", fields, error->message, needle);
}

static void test_storage_check(void)
{
	g_autoptr(GError) error = NULL;
	store_db *db = store_db_open(":memory:", &error);
	g_assert_nonnull(db);
	store_state *st = store_state_new(db);
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/vm\"}", NULL);
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/vm\",\"cluster_share\":true}", NULL);
	expect_storage(st, "{\"type\":\"iscsi\",\"portal\":\"10.0.0.9:3260\",\"target\":\"iqn.2026-12.org.example:san\"}", NULL);
	expect_storage(st, "{\"type\":\"iscsi\",\"portal\":\"[fd00::9]:3260\",\"target\":\"eui.0123456789abcdef\"}", NULL);
	expect_storage(st, "{\"path\":\"/srv/vm\"}", "needs a type");
	expect_storage(st, "{\"type\":\"nfs\",\"path\":\"/srv/vm\"}", "one of dir|iscsi");
	expect_storage(st, "{\"type\":\"dir\"}", "absolute path");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"srv/vm\"}", "absolute path");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/../etc\"}", "absolute path");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/vm/\"}", "absolute path");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/\"}", "absolute path");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/my vms\"}", "absolute path");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/vm\",\"portal\":\"x\"}", "no field 'portal'");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/vm\",\"size\":1}", "Unknown storage field 'size'");
	expect_storage(st, "{\"type\":\"iscsi\",\"portal\":\"10.0.0.9:99999\",\"target\":\"iqn.2026-12.org.example:san\"}", "HOST:PORT");
	expect_storage(st, "{\"type\":\"iscsi\",\"portal\":\"a b\",\"target\":\"iqn.2026-12.org.example:san\"}", "HOST:PORT");
	expect_storage(st, "{\"type\":\"iscsi\",\"portal\":\"10.0.0.9\",\"target\":\"iqn.26-12.org\"}", "iSCSI name");
	expect_storage(st, "{\"type\":\"iscsi\",\"portal\":\"10.0.0.9\",\"target\":\"IQN.2026-12.org.example\"}", "iSCSI name");
	expect_storage(st, "{\"type\":\"iscsi\",\"portal\":\"10.0.0.9\",\"target\":\"iqn.2026-12.org.example:san\",\"cluster_share\":true}",
		       "must be a dir storage");
	expect_storage(st, "{\"type\":\"iscsi\",\"path\":\"/srv\",\"portal\":\"10.0.0.9\",\"target\":\"iqn.2026-12.org.example:san\"}",
		       "no field 'path'");

	/* Against what exists: one share, no overlapping paths, no target twice. */
	g_assert_true(store_db_begin(db, NULL));
	const char *cmds[] = {
		"{\"op\":\"create\",\"kind\":\"storage\",\"uuid\":\"51111111-1111-4111-8111-111111111111\",\"name\":\"share\","
		"\"data\":{\"type\":\"dir\",\"path\":\"/srv/vm\",\"cluster_share\":true},\"time_ms\":1,\"origin\":\"n1\",\"user\":\"a\"}",
		"{\"op\":\"create\",\"kind\":\"storage\",\"uuid\":\"52222222-2222-4222-8222-222222222222\",\"name\":\"san\","
		"\"data\":{\"type\":\"iscsi\",\"portal\":\"10.0.0.9\",\"target\":\"iqn.2026-12.org.example:san\"},\"time_ms\":2,\"origin\":\"n1\",\"user\":\"a\"}",
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(cmds); i++) {
		g_autoptr(json_t) cmd = json_loads(cmds[i], 0, NULL);
		g_autoptr(json_t) r = store_state_apply(st, cmd, cmds[i], strlen(cmds[i]), NULL, &error);
		g_assert_no_error(error);
	}
	g_assert_true(store_db_commit(db, NULL));
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/other\",\"cluster_share\":true}", "cluster share already");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/vm/sub\"}", "may not overlap");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv\"}", "may not overlap");
	expect_storage(st, "{\"type\":\"dir\",\"path\":\"/srv/vm2\"}", NULL);
	expect_storage(st, "{\"type\":\"iscsi\",\"portal\":\"10.0.0.8\",\"target\":\"iqn.2026-12.org.example:san\"}", "target iqn.2026-12.org.example:san already");
	store_state_free(st);
	store_db_close(db);
}

static void expect_hw(const char *hw, const char *needle)
{
	g_autofree char *text = g_strdup_printf("{\"xml\":\"<domain/>\",\"hw\":%s}", hw);
	g_autoptr(json_t) d = json_loads(text, 0, NULL);
	g_assert_nonnull(d);
	g_autoptr(GError) error = NULL;
	bool ok = store_vm_validate(d, &error);
	if (!needle) {
		if (!ok)
			g_error("%s refused: %s", hw, error->message);
		return;
	}
	if (ok)
		g_error("%s accepted, expected '%s'", hw, needle);
	if (!strstr(error->message, needle))
		g_error("%s: '%s' does not mention '%s'", hw, error->message, needle);
}

#define U "d1111111-1111-4111-8111-111111111111"

static void test_vm_hardware(void)
{
	expect_hw("{}", NULL);
	expect_hw("{\"disks\":[{\"disk\":\"" U "\",\"bus\":\"sata\"}],\"nics\":[{\"network\":\"" U "\","
		  "\"model\":\"e1000\",\"mac\":\"52:54:00:ab:cd:ef\"}],\"firmware\":\"uefi\",\"boot\":\"cdrom,disk\","
		  "\"cdrom\":\"" U "\",\"floppy\":\"" U "\"}", NULL);
	expect_hw("[]", "must be an object");
	expect_hw("{\"firmware\":\"coreboot\"}", "one of bios|uefi");
	expect_hw("{\"boot\":\"disk,disk\"}", "boot order");
	expect_hw("{\"boot\":\"usb\"}", "boot order");
	expect_hw("{\"disks\":[{\"disk\":\"web1\"}]}", "disk's UUID");
	expect_hw("{\"disks\":[{\"disk\":\"" U "\",\"bus\":\"usb\"}]}", "one of virtio|scsi|sata|ide");
	expect_hw("{\"nics\":[{\"network\":\"" U "\",\"mac\":\"52:54:00:AB:CD:EF\"}]}", "unicast MAC");
	expect_hw("{\"nics\":[{\"network\":\"" U "\",\"mac\":\"53:54:00:ab:cd:ef\"}]}", "unicast MAC");
	expect_hw("{\"nics\":[{\"network\":\"" U "\",\"model\":\"ne2k\",\"mac\":\"52:54:00:ab:cd:ef\"}]}",
		  "one of virtio|e1000|rtl8139");
	GString *many = g_string_new("{\"nics\":[");
	for (int i = 0; i <= STORE_VM_NICS_MAX; i++)
		g_string_append_printf(many, "%s{\"network\":\"" U "\",\"mac\":\"52:54:00:00:00:%02x\"}", i ? "," : "", i);
	g_string_append(many, "]}");
	expect_hw(many->str, "at most 8 NICs");
	g_string_free(many, TRUE);
}

static void test_iscsi_ls(void)
{
	const char *out = "Target:iqn.2026-12.test.herd:other Portal:10.99.0.2:3260,1\n"
			  "Lun:0    Type:STORAGE_ARRAY_CONTROLLER\n"
			  "Lun:3    Type:DIRECT_ACCESS (Size:1G)\n"
			  "Target:iqn.2026-12.test.herd:store1 Portal:10.99.0.2:3260,1\n"
			  "Lun:0    Type:STORAGE_ARRAY_CONTROLLER\n"
			  "Lun:1    Type:DIRECT_ACCESS (Size:63M)\n"
			  "Lun:2    Type:DIRECT_ACCESS (Size:2G)\n";
	GArray *luns = NULL;
	g_assert_true(herd_iscsi_ls_parse(out, "iqn.2026-12.test.herd:store1", &luns));
	g_assert_cmpuint(luns->len, ==, 3);
	herd_iscsi_lun *l = (herd_iscsi_lun *)luns->data;
	g_assert_cmpuint(l[0].lun, ==, 0);
	g_assert_false(l[0].disk);
	g_assert_cmpuint(l[1].lun, ==, 1);
	g_assert_true(l[1].disk);
	g_assert_cmpstr(l[1].size, ==, "63M");
	g_assert_cmpstr(l[2].size, ==, "2G");
	g_array_free(luns, TRUE);
	luns = NULL;
	/* A prefix of a listed name is another target. */
	g_assert_false(herd_iscsi_ls_parse(out, "iqn.2026-12.test.herd:store", &luns));
	g_assert_null(luns);
	g_assert_false(herd_iscsi_ls_parse("", "iqn.2026-12.test.herd:store1", NULL));

	g_autofree char *e1 = herd_iscsi_ls_error(
		"discoveryconnect_cb: connection failed : iscsi_service: socket error No route to host(113).\n", 10);
	g_assert_cmpstr(e1, ==, "No route to host");
	g_autofree char *e2 = herd_iscsi_ls_error("", 10);
	g_assert_cmpstr(e2, ==, "iscsi-ls failed (exit status 10)");
	g_auto(GStrv) argv = herd_iscsi_ls_argv("10.99.0.2:3260");
	g_assert_cmpstr(argv[2], ==, "iscsi://10.99.0.2:3260");
	g_autofree char *url = herd_iscsi_url("10.99.0.2", "iqn.2026-12.test.herd:store1", 1);
	g_assert_cmpstr(url, ==, "iscsi://10.99.0.2/iqn.2026-12.test.herd:store1/1");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/storage-input/size", test_size_parse);
	g_test_add_func("/storage-input/storage-check", test_storage_check);
	g_test_add_func("/storage-input/vm-hardware", test_vm_hardware);
	g_test_add_func("/storage-input/iscsi-ls", test_iscsi_ls);
	return g_test_run();
}
