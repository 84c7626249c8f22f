/* ha/reach (what a node finds of a storage or virtual switch, through a
 * fake host) and ha/needs (what a VM needs of its node, from the store). */
#include "common/json.h"
#include "ha/needs.h"
#include "ha/reach.h"
#include "store/db.h"
#include "store/storage.h"
#include "store/vm.h"
#include "teststore.h"

#include <errno.h>
#include <string.h>

#define CLUSTER "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
#define ST1 "51111111-1111-4111-8111-111111111111"
#define ST2 "52222222-2222-4222-8222-222222222222"
#define NET1 "61111111-1111-4111-8111-111111111111"
#define DISK1 "71111111-1111-4111-8111-111111111111"
#define DISK2 "72222222-2222-4222-8222-222222222222"
#define ISO1 "81111111-1111-4111-8111-111111111111"

/* A host of a few paths and bridges. */
typedef struct {
	GHashTable *dirs;      /* path -> -errno or 0 */
	GHashTable *files;     /* path -> content */
	GHashTable *bridges;   /* name -> -errno or 0 */
	int usage_error;
	int iscsi_status;      /* what iscsi-ls exits with (or -errno: it cannot run) */
	const char *iscsi_out, *iscsi_err;
} fake_host;

static int fake_dir_exists(gpointer user, const char *path)
{
	fake_host *h = user;
	gpointer v;
	return g_hash_table_lookup_extended(h->dirs, path, NULL, &v) ? GPOINTER_TO_INT(v) : -ENOENT;
}

static int fake_read_file(gpointer user, const char *path, size_t max, char **content)
{
	fake_host *h = user;
	const char *c = g_hash_table_lookup(h->files, path);
	if (!c)
		return -ENOENT;
	*content = g_strndup(c, max);
	return 0;
}

static int fake_fs_usage(gpointer user, const char *path, uint64_t *size, uint64_t *free_bytes)
{
	fake_host *h = user;
	if (h->usage_error)
		return h->usage_error;
	*size = 1000;
	*free_bytes = 250;
	return 0;
}

/* h->bridges: name -> -errno, 0 (a Linux bridge) or 1 (an Open vSwitch one). */
static int fake_bridge_exists(gpointer user, const char *name, bool *ovs)
{
	fake_host *h = user;
	gpointer v;
	int r = g_hash_table_lookup_extended(h->bridges, name, NULL, &v) ? GPOINTER_TO_INT(v) : -ENOENT;
	*ovs = r == 1;
	return r > 0 ? 0 : r;
}

static int fake_iscsi_list(gpointer user, const char *portal, char **output, char **error)
{
	fake_host *h = user;
	g_assert_cmpstr(portal, ==, "10.0.0.5:3260");
	*output = g_strdup(h->iscsi_out ? h->iscsi_out : "");
	*error = g_strdup(h->iscsi_err ? h->iscsi_err : "");
	return h->iscsi_status;
}

static const herd_reach_host fake_ops = { fake_dir_exists, fake_read_file, fake_fs_usage,
					  fake_bridge_exists, fake_iscsi_list };

typedef struct {
	fake_host h;
	herd_reach_target dir, net, iscsi;
	herd_reach_result r;
} fixture;

static void setup(fixture *x, gconstpointer data)
{
	x->h.dirs = g_hash_table_new(g_str_hash, g_str_equal);
	x->h.files = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	x->h.bridges = g_hash_table_new(g_str_hash, g_str_equal);
	x->dir = (herd_reach_target){ .uuid = ST1, .name = "data1", .type = STORE_STORAGE_DIR, .path = "/srv/data1" };
	x->net = (herd_reach_target){ .uuid = NET1, .name = "lan", .network = true, .bridge = "br0" };
	x->iscsi = (herd_reach_target){ .uuid = ST2, .name = "san", .type = STORE_STORAGE_ISCSI,
					.portal = "10.0.0.5:3260", .target = "iqn.2026-01.org.example:san" };
}

static void teardown(fixture *x, gconstpointer data)
{
	herd_reach_result_clear(&x->r);
	g_hash_table_destroy(x->h.dirs);
	g_hash_table_destroy(x->h.files);
	g_hash_table_destroy(x->h.bridges);
}

static void marker(fixture *x, const char *cluster, const char *storage)
{
	g_hash_table_insert(x->h.files, "/srv/data1/" STORE_STORAGE_MARKER,
			    g_strdup_printf("{\"cluster\":\"%s\",\"name\":\"data1\",\"storage\":\"%s\"}\n", cluster,
					    storage));
}

static void check(fixture *x, const herd_reach_target *t)
{
	herd_reach_check(t, CLUSTER, &fake_ops, &x->h, &x->r);
}

static void test_dir(fixture *x, gconstpointer data)
{
	check(x, &x->dir);
	g_assert_false(x->r.ok);
	g_assert_cmpstr(x->r.problem, ==, "/srv/data1 does not exist");
	g_hash_table_insert(x->h.dirs, "/srv/data1", GINT_TO_POINTER(-ENOTDIR));
	check(x, &x->dir);
	g_assert_cmpstr(x->r.problem, ==, "/srv/data1 is not a directory");
	/* An empty mount point: there, but not the storage. */
	g_hash_table_insert(x->h.dirs, "/srv/data1", GINT_TO_POINTER(0));
	check(x, &x->dir);
	g_assert_false(x->r.ok);
	g_assert_cmpstr(x->r.problem, ==,
			"/srv/data1 has no marker file .herd-storage: not this storage (a mount missing?)");
	marker(x, "dddddddd-dddd-4ddd-8ddd-dddddddddddd", ST1);
	check(x, &x->dir);
	g_assert_false(x->r.ok);
	g_assert_true(strstr(x->r.problem, "another cluster's (dddddddd-"));
	marker(x, CLUSTER, ST2);
	check(x, &x->dir);
	g_assert_false(x->r.ok);
	g_assert_true(strstr(x->r.problem, "another storage's (" ST2 ")"));
	g_hash_table_insert(x->h.files, "/srv/data1/" STORE_STORAGE_MARKER, g_strdup("garbage"));
	check(x, &x->dir);
	g_assert_false(x->r.ok);
	g_assert_true(strstr(x->r.problem, "another cluster's (unreadable)"));
	marker(x, CLUSTER, ST1);
	check(x, &x->dir);
	g_assert_true(x->r.ok);
	g_assert_null(x->r.problem);
	g_assert_true(x->r.has_usage);
	g_assert_cmpuint(x->r.size, ==, 1000);
	g_assert_cmpuint(x->r.free, ==, 250);
	/* Reached, only its usage unknown. */
	x->h.usage_error = -EIO;
	check(x, &x->dir);
	g_assert_true(x->r.ok);
	g_assert_false(x->r.has_usage);
}

static void test_bridge(fixture *x, gconstpointer data)
{
	check(x, &x->net);
	g_assert_false(x->r.ok);
	g_assert_cmpstr(x->r.problem, ==, "bridge br0 does not exist on this node");
	g_hash_table_insert(x->h.bridges, "br0", GINT_TO_POINTER(-ENOTDIR));
	check(x, &x->net);
	g_assert_cmpstr(x->r.problem, ==, "br0 is an interface of this node but not a bridge");
	g_hash_table_insert(x->h.bridges, "br0", GINT_TO_POINTER(0));
	check(x, &x->net);
	g_assert_true(x->r.ok);
	g_assert_false(x->r.has_usage);
	/* A VLAN: only on Open vSwitch (libvirt tags no Linux bridge port). */
	x->net.vlan = 10;
	check(x, &x->net);
	g_assert_false(x->r.ok);
	g_assert_cmpstr(x->r.problem, ==, "VLAN 10 needs an Open vSwitch bridge, and br0 is a Linux bridge");
	g_hash_table_insert(x->h.bridges, "br0", GINT_TO_POINTER(1));
	check(x, &x->net);
	g_assert_true(x->r.ok);
}

/* iSCSI: the portal answers and offers the target (iscsi-ls, faked). */
static void test_iscsi(fixture *x, gconstpointer data)
{
	g_assert_true(herd_reach_type_checked(STORE_STORAGE_DIR));
	g_assert_true(herd_reach_type_checked(STORE_STORAGE_ISCSI));
	x->h.iscsi_out = "Target:iqn.2026-01.org.example:san Portal:10.0.0.5:3260,1\n"
			 "Lun:0    Type:STORAGE_ARRAY_CONTROLLER\nLun:1    Type:DIRECT_ACCESS (Size:1G)\n";
	check(x, &x->iscsi);
	g_assert_true(x->r.ok);
	g_assert_false(x->r.has_usage);
	x->h.iscsi_out = "Target:iqn.2026-01.org.example:other Portal:10.0.0.5:3260,1\n";
	check(x, &x->iscsi);
	g_assert_false(x->r.ok);
	g_assert_cmpstr(x->r.problem, ==, "portal 10.0.0.5:3260 does not offer target iqn.2026-01.org.example:san to this node");
	x->h.iscsi_status = 10;
	x->h.iscsi_err = "discoveryconnect_cb: connection failed : iscsi_service: socket error Connection refused(111).\n";
	check(x, &x->iscsi);
	g_assert_cmpstr(x->r.problem, ==, "portal 10.0.0.5:3260: Connection refused");
	x->h.iscsi_status = -ENOENT;
	check(x, &x->iscsi);
	g_assert_cmpstr(x->r.problem, ==, "iscsi-ls cannot run: No such file or directory");
}

static void test_json(fixture *x, gconstpointer data)
{
	g_autoptr(GHashTable) results = g_hash_table_new(g_str_hash, g_str_equal);
	herd_reach_result a = { .ok = true, .has_usage = true, .size = 10, .free = 4 };
	herd_reach_result b = { .ok = false, .problem = (char *)"gone" };
	g_hash_table_insert(results, (gpointer)ST2, &b);
	g_hash_table_insert(results, (gpointer)ST1, &a);
	json_t *reach, *usage;
	herd_reach_json(results, &reach, &usage);
	g_autofree char *r = json_dumps(reach, JSON_COMPACT), *u = json_dumps(usage, JSON_COMPACT);
	g_assert_cmpstr(r, ==, "{\"" ST1 "\":{\"ok\":true},\"" ST2 "\":{\"ok\":false,\"problem\":\"gone\"}}");
	g_assert_cmpstr(u, ==, "{\"" ST1 "\":{\"size\":10,\"free\":4}}");
	json_decref(reach);
	json_decref(usage);
}

/* ------------------------------------------------------------------ */
/* Needs, from a store                                                 */

static void test_needs(void)
{
	test_store *t = test_store_new();
	store_state *st = t->st;
	test_store_apply_text(t, "{\"op\":\"create\",\"kind\":\"storage\",\"uuid\":\"" ST1 "\",\"name\":\"data1\","
		      "\"data\":{\"type\":\"dir\",\"path\":\"/srv/data1\",\"cluster_share\":true}}");
	test_store_apply_text(t, "{\"op\":\"create\",\"kind\":\"storage\",\"uuid\":\"" ST2 "\",\"name\":\"san\","
		      "\"data\":{\"type\":\"iscsi\",\"portal\":\"10.0.0.5\",\"target\":\"iqn.2026-01.org.example:san\"}}");
	test_store_apply_text(t, "{\"op\":\"create\",\"kind\":\"network\",\"uuid\":\"" NET1 "\",\"name\":\"lan\","
		      "\"data\":{\"bridge\":\"br0\"}}");
	test_store_apply_text(t, "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DISK1 "\",\"name\":\"d1\","
		      "\"data\":{\"storage\":\"" ST1 "\",\"format\":\"qcow2\",\"size\":1048576,\"file\":\"images/d1.qcow2\"}}");
	test_store_apply_text(t, "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DISK2 "\",\"name\":\"d2\","
		      "\"data\":{\"storage\":\"" ST2 "\",\"format\":\"raw\",\"size\":1048576,\"lun\":1}}");
	test_store_apply_text(t, "{\"op\":\"create\",\"kind\":\"iso\",\"uuid\":\"" ISO1 "\",\"name\":\"i.iso\","
		      "\"data\":{\"storage\":\"" ST1 "\",\"file\":\"isos/i.iso\",\"size\":2048,"
		      "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}}");
	g_autoptr(GPtrArray) targets = herd_reach_targets(st);
	g_assert_cmpuint(targets->len, ==, 3);
	g_assert_cmpstr(((herd_reach_target *)targets->pdata[0])->uuid, ==, ST1);
	g_assert_cmpstr(((herd_reach_target *)targets->pdata[0])->path, ==, "/srv/data1");
	g_assert_true(((herd_reach_target *)targets->pdata[2])->network);

	/* An operator's XML: files under data1 (twice, and one elsewhere),
	 * the bridge of lan and one herd does not know. */
	const char *files[] = { "/srv/data1/a.qcow2", "/srv/data1/sub/b.raw", "/srv/data10/c.raw",
				"/var/lib/libvirt/images/d.qcow2", NULL };
	const char *bridges[] = { "virbr0", "br0", NULL };
	store_vm vm = { .xml_files = files, .xml_bridges = bridges };
	herd_needs *n = herd_needs_new(st);
	size_t count;
	g_autofree sched_need *needs = herd_needs_of(n, &vm, &count);
	g_assert_cmpuint(count, ==, 2);
	g_assert_cmpstr(needs[0].id, ==, ST1);
	g_assert_cmpstr(needs[0].unreached, ==, "storage data1 is not reachable there");
	g_assert_cmpstr(needs[1].id, ==, NET1);
	g_assert_cmpstr(needs[1].unreached, ==, "virtual switch lan is not there");
	/* Nothing of the store's: no needs. */
	const char *other[] = { "/tmp/x.img", NULL };
	store_vm plain = { .xml_files = other };
	g_assert_null(herd_needs_of(n, &plain, &count));
	g_assert_cmpuint(count, ==, 0);
	store_vm none = { 0 };
	g_assert_null(herd_needs_of(n, &none, &count));
	/* A VM made by herd: its disks' storages (dir and iSCSI), its
	 * CD-ROM's, its NICs' switches; each once. */
	const store_vm_disk disks[] = { { DISK1, "virtio" }, { DISK2, "virtio" } };
	const store_vm_nic nics[] = { { NET1, "virtio", "52:54:00:00:00:01" } };
	store_vm_hardware hw = { disks, 2, nics, 1, ISO1, NULL, "bios", "disk" };
	store_vm made = { .hw = &hw };
	g_autofree sched_need *hw_needs = herd_needs_of(n, &made, &count);
	g_assert_cmpuint(count, ==, 3);
	g_assert_cmpstr(hw_needs[0].id, ==, ST1);
	g_assert_cmpstr(hw_needs[1].id, ==, ST2);
	g_assert_cmpstr(hw_needs[1].unreached, ==, "storage san is not reachable there");
	g_assert_cmpstr(hw_needs[2].id, ==, NET1);
	herd_needs_free(n);
	test_store_free(t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add("/reach/dir", fixture, NULL, setup, test_dir, teardown);
	g_test_add("/reach/bridge", fixture, NULL, setup, test_bridge, teardown);
	g_test_add("/reach/iscsi", fixture, NULL, setup, test_iscsi, teardown);
	g_test_add("/reach/json", fixture, NULL, setup, test_json, teardown);
	g_test_add_func("/reach/needs", test_needs);
	return g_test_run();
}
