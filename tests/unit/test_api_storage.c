/* The storage API (/api/v1/storage) on a cluster of three nodes in this
 * process, and the reach the nodes report (injected here as herdd's reach
 * checker would hand it over) deciding where a VM on the storage runs. */
#include "test_api.h"

#include "common/fileutil.h"
#include "ha/ha.h"

#include <glib/gstdio.h>
#include <string.h>

/* A directory of the test's own, removed at the end. */
static char *tmp_dir(void)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp("herd-storage-XXXXXX", &error);
	g_assert_no_error(error);
	return dir;
}

static void rm_rf(const char *path)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", path);
	g_assert_cmpint(system(cmd), ==, 0);
}

/* What node @node's reach checker would report: @ok nodes reach @uuid. */
static void report(fixture *f, unsigned node, const char *uuid, bool ok)
{
	g_autoptr(json_t) reach = ok ? json_pack("{s:{s:b}}", uuid, "ok", 1) :
				       json_pack("{s:{s:b,s:s}}", uuid, "ok", 0, "problem",
						 "/srv/x has no marker file");
	g_autoptr(json_t) usage = ok ? json_pack("{s:{s:I,s:I}}", uuid, "size", (json_int_t)1000,
						 "free", (json_int_t)400) : json_object();
	herd_ha_set_reach(f->n[node]->ha, reach, usage);
}

/* Does n@from show @uuid on every node as @want ("ok ok no")? */
static bool shows(fixture *f, unsigned from, const char *uuid, const char *want)
{
	g_autofree char *path = g_strdup_printf("/api/v1/storage/%s", uuid);
	g_autoptr(test_answer) a = test_request(f->n[from], "GET", path, NULL);
	json_t *nodes = json_object_get(test_expect(a, 200), "nodes");
	GString *got = g_string_new(NULL);
	for (unsigned i = 1; i <= 3; i++) {
		char name[8];
		g_snprintf(name, sizeof(name), "n%u", i);
		g_string_append_printf(got, "%s%s", i > 1 ? " " : "",
				       json_is_true(json_object_get(json_object_get(nodes, name), "ok")) ? "ok" : "no");
	}
	bool same = strcmp(got->str, want) == 0;
	g_string_free(got, TRUE);
	return same;
}

static void test_storage(fixture *f, gconstpointer data)
{
	g_autofree char *tmp = tmp_dir();
	g_autofree char *dir = g_build_filename(tmp, "data1", NULL);
	g_autofree char *file = g_build_filename(tmp, "a-file", NULL);
	g_autofree char *foreign = g_build_filename(tmp, "foreign", NULL);
	g_autofree char *foreign_marker = g_build_filename(foreign, ".herd-storage", NULL);
	g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
	g_assert_cmpint(g_mkdir(foreign, 0755), ==, 0);
	g_assert_true(g_file_set_contents(file, "x", -1, NULL));
	const char *theirs = "{\"cluster\":\"dddddddd-dddd-4ddd-8ddd-dddddddddddd\",\"storage\":\"x\"}\n";
	g_assert_true(g_file_set_contents(foreign_marker, theirs, -1, NULL));

	/* Bad input: refused, nothing changed. */
	g_autofree char *missing = g_strdup_printf("{\"name\":\"s\",\"type\":\"dir\",\"path\":\"%s/none\"}", tmp);
	g_autofree char *not_dir = g_strdup_printf("{\"name\":\"s\",\"type\":\"dir\",\"path\":\"%s\"}", file);
	g_autofree char *other = g_strdup_printf("{\"name\":\"s\",\"type\":\"dir\",\"path\":\"%s\"}", foreign);
	g_autofree char *unknown = g_strdup_printf("{\"name\":\"s\",\"type\":\"dir\",\"path\":\"%s\",\"size\":1}", dir);
	const refusal bad[] = {
		{ 1, "POST", "/api/v1/storage", "{\"type\":\"dir\",\"path\":\"/srv\"}", 400, "name" },
		{ 1, "POST", "/api/v1/storage", "{\"name\":\"s\"}", 400, "needs a type" },
		{ 1, "POST", "/api/v1/storage", "{\"name\":\"s\",\"type\":\"nfs\"}", 400, "'type' must be one of dir|iscsi" },
		{ 1, "POST", "/api/v1/storage", "{\"name\":\"s\",\"type\":\"dir\",\"path\":\"x/y\"}", 400, "absolute path" },
		{ 1, "POST", "/api/v1/storage", "{\"name\":\"s\",\"type\":\"dir\",\"path\":3}", 400, "path" },
		{ 1, "POST", "/api/v1/storage", "{\"name\":\"s\",\"type\":\"dir\",\"cluster_share\":\"yes\"}", 400, "cluster_share" },
		{ 2, "POST", "/api/v1/storage", missing, 400, "does not exist on node n2." },
		{ 3, "POST", "/api/v1/storage", not_dir, 400, "is not a directory on node n3." },
		{ 1, "POST", "/api/v1/storage", other, 409, "a storage of another cluster" },
		{ 1, "POST", "/api/v1/storage", unknown, 400, "size" },
		{ 1, "GET", "/api/v1/storage/none", NULL, 404, "none" },
		{ 1, "DELETE", "/api/v1/storage/none", NULL, 404, "none" },
	};
	EXPECT_REFUSALS(f, bad);
	g_autofree char *still = NULL;
	g_assert_true(g_file_get_contents(foreign_marker, &still, NULL, NULL));
	g_assert_cmpstr(still, ==, theirs);
	g_autofree char *marker_path = g_build_filename(dir, ".herd-storage", NULL);
	g_assert_false(g_file_test(marker_path, G_FILE_TEST_EXISTS));
	{
		g_autoptr(test_answer) none = test_request(f->n[3], "GET", "/api/v1/storage", NULL);
		g_assert_cmpuint(json_array_size(test_expect(none, 200)), ==, 0);
	}

	/* Added on n2: the marker and the share's directories are there; no
	 * node has reported it yet. */
	g_autoptr(test_answer) added = test_requestf(f->n[2], "POST", "/api/v1/storage",
						     "{s:s,s:s,s:s,s:b}", "name", "data1", "type", "dir",
						     "path", dir, "cluster_share", 1);
	json_t *s = test_expect(added, 201);
	const char *uuid = str(s, "uuid");
	g_assert_cmpstr(str(s, "path"), ==, dir);
	g_assert_true(json_is_true(json_object_get(s, "cluster_share")));
	g_autofree char *marker = NULL;
	g_assert_true(g_file_get_contents(marker_path, &marker, NULL, NULL));
	g_assert_nonnull(strstr(marker, uuid));
	for (const char *const *d = (const char *const[]){ "images", "isos", "templates", "snapshots", NULL }; *d; d++) {
		g_autofree char *sub = g_build_filename(dir, *d, NULL);
		g_assert_true(g_file_test(sub, G_FILE_TEST_IS_DIR));
	}
	g_assert_true(shows(f, 1, uuid, "no no no"));
	g_autofree char *dup = g_strdup_printf("{\"name\":\"data1\",\"type\":\"dir\",\"path\":\"%s\"}", tmp);
	g_autofree char *inside = g_strdup_printf("{\"name\":\"d2\",\"type\":\"dir\",\"path\":\"%s/images\"}", dir);
	const refusal again[] = {
		{ 1, "POST", "/api/v1/storage", dup, 409, "Storage data1 exists already." },
		{ 3, "POST", "/api/v1/storage", inside, 409, "storages may not overlap" },
	};
	EXPECT_REFUSALS(f, again);

	/* What the nodes report, on every node. */
	report(f, 1, uuid, false);
	report(f, 2, uuid, false);
	report(f, 3, uuid, true);
	TEST_WAIT(shows(f, 1, uuid, "no no ok") && shows(f, 2, uuid, "no no ok"));
	{
		g_autoptr(test_answer) n3 = test_request(f->n[1], "GET", "/api/v1/nodes/n3", NULL);
		json_t *r = json_object_get(json_object_get(json_object_get(test_expect(n3, 200), "herd"), "reach"), uuid);
		g_assert_true(json_is_true(json_object_get(r, "ok")));
		g_assert_cmpint(json_integer_value(json_object_get(r, "free")), ==, 400);
		g_autoptr(test_answer) n1 = test_request(f->n[3], "GET", "/api/v1/nodes/n1", NULL);
		r = json_object_get(json_object_get(json_object_get(test_expect(n1, 200), "herd"), "reach"), uuid);
		g_assert_cmpstr(str(r, "problem"), ==, "/srv/x has no marker file");
	}

	/* A VM whose disk is on it runs only where it is reached: n3 (the
	 * scheduler would take n1 otherwise: the same room, the first name). */
	char vm_uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(vm_uuid);
	g_autofree char *xml = g_strdup_printf(
		"<domain type='qemu'><name>s1</name><uuid>%s</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
		"<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk type='file' device='disk'>"
		"<source file='%s/images/s1.img'/><target dev='vda' bus='virtio'/></disk></devices></domain>",
		vm_uuid, dir);
	g_autoptr(test_answer) def = test_requestf(f->n[1], "POST", "/api/v1/vms", "{s:s}", "xml", xml);
	test_expect(def, 201);
	vm_start(f, 1, "s1", "n3");
	/* n3 loses it: the VM stays where it runs. */
	report(f, 3, uuid, false);
	TEST_WAIT(shows(f, 2, uuid, "no no no"));
	test_loop_until(false, 300);
	g_assert_cmpstr(vm_runs_where(f, vm_uuid), ==, "n3");

	/* Removed: gone from every node's list; the marker stays. */
	g_autoptr(test_answer) removed = test_request(f->n[3], "DELETE", "/api/v1/storage/data1", NULL);
	test_expect(removed, 200);
	g_autoptr(test_answer) empty = test_request(f->n[1], "GET", "/api/v1/storage", NULL);
	g_assert_cmpuint(json_array_size(test_expect(empty, 200)), ==, 0);
	g_assert_true(g_file_test(marker_path, G_FILE_TEST_EXISTS));
	rm_rf(tmp);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/storage", test_storage, NULL);
	return g_test_run();
}
