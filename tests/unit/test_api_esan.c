/* eSAN disks through the API (/api/v1/disks with "esan") on a cluster of
 * three nodes in this process: what is refused, what a disk shows of its
 * replicas and of the herd-san reports, and where its VM may run (only on
 * a replica node whose replica the store records up to date). */
#include "test_api.h"

#include "ha/esan.h"
#include "ha/ha.h"
#include "store/disk.h"

#include <string.h>

static json_t *disk_get(fixture *f, unsigned node, const char *name, test_answer **keep)
{
	g_autofree char *path = g_strdup_printf("/api/v1/disks/%s", name);
	*keep = test_request(f->n[node], "GET", path, NULL);
	return test_expect(*keep, 200);
}

static json_t *replica_of(json_t *disk, unsigned i)
{
	return json_array_get(json_object_get(json_object_get(disk, "esan"), "replicas"), i);
}

/* Does n@node show n3's herd-san report of @name as connection @conn? */
static bool shows_conn(fixture *f, unsigned node, const char *name, const char *conn)
{
	g_autoptr(test_answer) keep = NULL;
	json_t *d = disk_get(f, node, name, &keep);
	return g_strcmp0(str(json_object_get(replica_of(d, 1), "herd_san"), "conn"), conn) == 0;
}

/* Does n@node show n3's herd-san report of @name's local disk as @state? */
static bool shows_disk(fixture *f, unsigned node, const char *name, const char *state)
{
	g_autoptr(test_answer) keep = NULL;
	json_t *d = disk_get(f, node, name, &keep);
	json_t *disk = json_object_get(json_object_get(replica_of(d, 1), "herd_san"), "disk");
	return g_strcmp0(str(disk, "state"), state) == 0;
}

static void stop(fixture *f, const char *vm)
{
	g_autoptr(test_answer) a = vm_action(f, 1, vm, "destroy", NULL);
	test_expect(a, 200);
}

/* Does GET /api/v1/vms/db show an alert that says @needle? */
static bool alert_says(fixture *f, const char *needle)
{
	g_autoptr(test_answer) keep = NULL;
	const char *alert = str(get_vm(f, 2, "db", &keep), "alert");
	return alert && strstr(alert, needle);
}

static void test_esan(fixture *f, gconstpointer data)
{
	const refusal bad[] = {
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1G\",\"esan\":\"n2,n2\"}", 400, "two different nodes, not both on n2" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1G\",\"esan\":\"n2,n9\"}", 404, "Node n9 is not a node" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1G\",\"esan\":[\"n1\",\"n2\",\"n3\"]}", 400, "names the two nodes" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1G\",\"esan\":\"n2\"}", 400, "names the two nodes" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1G\",\"esan\":7}", 400, "names the two nodes" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"esan\":\"n2,n3\"}", 400, "Field 'size'" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1000\",\"esan\":\"n2,n3\"}", 400, "512-byte sectors" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"65T\",\"esan\":\"n2,n3\"}", 400, "too large" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1G\",\"esan\":\"n2,n3\",\"storage\":\"s\"}", 400, "no field 'storage'" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1G\",\"esan\":\"n2,n3\",\"format\":\"qcow2\"}", 400, "no field 'format'" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"disk\",\"size\":\"1G\",\"esan\":\"n2,n3\"}", 400, "reserved word" },
		{ 1, "POST", "/api/v1/disks", "{\"name\":\"a/b\",\"size\":\"1G\",\"esan\":\"n2,n3\"}", 400, "contains a character" },
	};
	EXPECT_REFUSALS(f, bad);
	{
		g_autoptr(test_answer) none = test_request(f->n[2], "GET", "/api/v1/disks", NULL);
		g_assert_cmpuint(json_array_size(test_expect(none, 200)), ==, 0);
	}

	/* Made through n1, on n2 and n3: raw, on no storage, both up to date,
	 * no herd-san has reported yet. */
	g_autoptr(test_answer) made = test_requestf(f->n[1], "POST", "/api/v1/disks", "{s:s,s:s,s:s}", "name",
						    "db0", "size", "64M", "esan", "n2,n3");
	json_t *d = test_expect(made, 201);
	g_assert_cmpstr(str(d, "format"), ==, "raw");
	g_assert_true(json_is_null(json_object_get(d, "storage")));
	g_assert_cmpint(json_integer_value(json_object_get(d, "size")), ==, 64 << 20);
	g_assert_cmpint(json_integer_value(json_object_get(json_object_get(d, "esan"), "port")), ==, STORE_ESAN_PORT_MIN);
	g_assert_cmpstr(str(replica_of(d, 0), "node"), ==, "n2");
	g_assert_cmpstr(str(replica_of(d, 1), "node"), ==, "n3");
	g_assert_cmpstr(str(replica_of(d, 1), "state"), ==, "uptodate");
	g_assert_true(json_is_null(json_object_get(replica_of(d, 1), "herd_san")));
	const char *uuid = str(d, "uuid");
	const refusal again[] = {
		{ 2, "POST", "/api/v1/disks", "{\"name\":\"db0\",\"size\":\"1G\",\"esan\":\"n1,n3\"}", 409, "Disk db0 exists already" },
	};
	EXPECT_REFUSALS(f, again);

	/* n3's herd-san reports: every node shows it. */
	g_autoptr(json_t) report = json_pack("{s:{s:s,s:I}}", uuid, "conn", "standalone", "dirty", (json_int_t)4096);
	herd_ha_set_esan(f->n[3]->ha, report);
	TEST_WAIT(shows_conn(f, 1, "db0", "standalone") && shows_conn(f, 2, "db0", "standalone"));

	/* Its VM runs on a replica node only (n1 would do otherwise: the same
	 * room, the first name), over NBD from herd-san's socket. */
	g_autoptr(test_answer) vm = test_requestf(f->n[1], "POST", "/api/v1/vms", "{s:s,s:s,s:{s:[s]}}", "name",
						  "db", "memory", "64M", "hardware", "disks", "db0");
	const char *vm_uuid = str(test_expect(vm, 201), "uuid");
	g_autoptr(test_answer) keep = NULL;
	const char *xml = json_string_value(json_object_get(get_vm(f, 2, "db", &keep), "xml"));
	g_autofree char *source = g_strdup_printf("<source protocol='nbd' name='%s'>", uuid);
	g_autofree char *host = g_strdup_printf("<host transport='unix' socket='" HERD_SAN_RUN_DIR "/%s.sock'/>", uuid);
	g_assert_nonnull(strstr(xml, source));
	g_assert_nonnull(strstr(xml, host));
	vm_start(f, 1, "db", "n2");
	const refusal in_use[] = {
		{ 1, "DELETE", "/api/v1/disks/db0", NULL, 409, "Disk db0 is in use by VM db" },
	};
	EXPECT_REFUSALS(f, in_use);
	stop(f, "db");

	/* n2 outdated: only n3. */
	esan_set_states(f, "db0", STORE_REPLICA_OUTDATED, STORE_REPLICA_UPTODATE);
	vm_start(f, 1, "db", "n3");
	stop(f, "db");

	/* Neither up to date: nowhere, and the answer says how to go on. */
	esan_set_states(f, "db0", STORE_REPLICA_OUTDATED, STORE_REPLICA_INCONSISTENT);
	store_object *o = store_state_get(herd_cluster_state(f->n[1]->cluster), STORE_KIND_VM, vm_uuid);
	g_autoptr(json_t) start = store_vm_cmd_start(o);
	testnode_commit(f->n[1], start);
	TEST_WAIT(alert_says(f, "herd disk promote db0 --force"));
	g_assert_null(vm_runs_where(f, vm_uuid));
	stop(f, "db");

	/* Grown: both replicas (by their herd-sans), never shrunk. */
	{
		g_autoptr(test_answer) grown = test_requestf(f->n[2], "POST", "/api/v1/disks/db0/resize", "{s:s}", "size", "+64M");
		g_assert_cmpint(json_integer_value(json_object_get(test_expect(grown, 200), "size")), ==, 128 << 20);
		g_assert_nonnull(json_object_get(grown->json, "esan"));
	}

	/* n2 wrote alone (n3 outdated): the sync gate keeps n2 in service. */
	esan_set_states(f, "db0", STORE_REPLICA_UPTODATE, STORE_REPLICA_OUTDATED);
	const refusal gated[] = {
		{ 1, "POST", "/api/v1/disks/db0/resize", "{\"size\":\"64M\"}", 400, "never shrinks" },
		{ 1, "POST", "/api/v1/nodes/n2/mode", "{\"mode\":\"standby\"}", 409,
		  "Node n2 holds the only up-to-date replica of eSAN disk(s) db0" },
		{ 1, "POST", "/api/v1/nodes/n2/mode", "{\"mode\":\"maintenance\"}", 409, "until the other replica is in sync" },
		{ 1, "POST", "/api/v1/disks/db0/promote", "{\"node\":\"n3\"}", 400, "say so with force" },
		{ 1, "POST", "/api/v1/disks/db0/promote", "{\"force\":true,\"node\":\"n1\"}", 400, "Node n1 holds no replica" },
		{ 1, "POST", "/api/v1/disks/db0/promote", "{\"force\":true,\"node\":\"n2\"}", 409, "up to date already" },
		{ 1, "POST", "/api/v1/disks/db0/promote", "{\"force\":\"yes\"}", 400, "force" },
		{ 1, "POST", "/api/v1/disks/db0/resolve", "{\"keep\":\"n2\"}", 409, "not in split brain" },
		{ 1, "POST", "/api/v1/disks/db0/resolve", "{}", 400, "which node's replica" },
		{ 1, "POST", "/api/v1/disks/db0/verify", NULL, 409, "not connected" },
	};
	EXPECT_REFUSALS(f, gated);
	{
		g_autoptr(test_answer) n3 = test_requestf(f->n[1], "POST", "/api/v1/nodes/n3/mode", "{s:s}", "mode", "standby");
		test_expect(n3, 200);
		g_autoptr(test_answer) back = test_requestf(f->n[1], "POST", "/api/v1/nodes/n3/mode", "{s:s}", "mode", "online");
		test_expect(back, 200);
	}

	/* Its VM on n2 while n3's replica is synchronised: a live migration to
	 * n3 is refused with what the replica is doing (the source's progress),
	 * named or where the scheduler would place it; nothing moves. */
	vm_start(f, 1, "db", "n2");
	{
		g_autoptr(json_t) src = json_pack("{s:{s:s,s:{s:s,s:I,s:I}}}", uuid, "conn", "connected", "sync", "role",
						  "source", "done", (json_int_t)40, "total", (json_int_t)100);
		g_autoptr(json_t) dst = json_pack("{s:{s:s,s:{s:s,s:I,s:I}}}", uuid, "conn", "connected", "sync", "role",
						  "target", "done", (json_int_t)0, "total", (json_int_t)0);
		herd_ha_set_esan(f->n[2]->ha, src);
		herd_ha_set_esan(f->n[3]->ha, dst);
		TEST_WAIT(shows_conn(f, 1, "db0", "connected"));
		const refusal syncing[] = {
			{ 1, "POST", "/api/v1/vms/db/migrate", "{\"node\":\"n3\"}", 409,
			  "VM db cannot be migrated to node n3: its eSAN disk db0 is not up to date there (the replica on "
			  "n3 is outdated, being synchronised from n2, 40 %), and a VM runs only on an up-to-date replica. "
			  "Wait until the sync has ended ('herd disk list' shows n3's replica uptodate), then migrate it." },
			{ 1, "POST", "/api/v1/vms/db/migrate", "{}", 409, "cannot be migrated to node n3: its eSAN disk db0 "
			  "is not up to date there (the replica on n3 is outdated, being synchronised from n2, 40 %)" },
		};
		EXPECT_REFUSALS(f, syncing);
		/* up to date in the store but a sync target as its herd-san says
		 * (a resync of a crash's regions): refused too */
		esan_set_states(f, "db0", STORE_REPLICA_UPTODATE, STORE_REPLICA_UPTODATE);
		const refusal target[] = {
			{ 1, "POST", "/api/v1/vms/db/migrate", "{\"node\":\"n3\"}", 409,
			  "VM db cannot be migrated to node n3: its eSAN disk db0 is not up to date there (the replica on "
			  "n3 is being synchronised from n2, 40 %), and a VM runs only on an up-to-date replica." },
		};
		EXPECT_REFUSALS(f, target);
		esan_set_states(f, "db0", STORE_REPLICA_UPTODATE, STORE_REPLICA_OUTDATED);
		g_autoptr(test_answer) kept = NULL;
		g_assert_null(json_object_get(get_vm(f, 1, "db", &kept), "move_to"));
		g_autoptr(json_t) none = json_object();
		herd_ha_set_esan(f->n[2]->ha, none);
		herd_ha_set_esan(f->n[3]->ha, none);
	}
	stop(f, "db");

	/* n2 died, say: the outdated n3 is promoted as it is; n2's is discarded. */
	{
		g_autoptr(test_answer) p = test_requestf(f->n[3], "POST", "/api/v1/disks/db0/promote", "{s:b}", "force", 1);
		json_t *pd = test_expect(p, 200);
		g_assert_cmpstr(str(replica_of(pd, 1), "state"), ==, "uptodate");
		g_assert_cmpstr(str(replica_of(pd, 0), "state"), ==, "outdated");
		g_assert_true(json_is_true(json_object_get(replica_of(pd, 0), "discard")));
	}

	/* A split brain that n3's herd-san reports is resolved by keeping one. */
	g_autoptr(json_t) split = json_pack("{s:{s:s}}", uuid, "conn", "splitbrain");
	herd_ha_set_esan(f->n[3]->ha, split);
	TEST_WAIT(shows_conn(f, 1, "db0", "splitbrain"));
	{
		g_autoptr(test_answer) r = test_requestf(f->n[1], "POST", "/api/v1/disks/db0/resolve", "{s:s}", "keep", "n2");
		json_t *rd = test_expect(r, 200);
		g_assert_cmpstr(str(replica_of(rd, 0), "state"), ==, "uptodate");
		g_assert_true(json_is_true(json_object_get(replica_of(rd, 1), "discard")));
	}

	/* Verified by a replica node whose herd-san is connected. */
	g_autoptr(json_t) connected = json_pack("{s:{s:s}}", uuid, "conn", "connected");
	herd_ha_set_esan(f->n[3]->ha, connected);
	TEST_WAIT(shows_conn(f, 2, "db0", "connected"));
	{
		g_autoptr(test_answer) v = test_request(f->n[2], "POST", "/api/v1/disks/db0/verify", NULL);
		json_t *ver = json_object_get(json_object_get(test_expect(v, 202), "esan"), "verify");
		g_assert_cmpint(json_integer_value(json_object_get(ver, "id")), ==, 1);
		g_assert_cmpstr(str(ver, "node"), ==, "n3");
		g_assert_true(json_is_false(json_object_get(ver, "done")));
	}

	/* Attach: only a replica that its herd-san reports detached. */
	const refusal attach_bad[] = {
		{ 1, "POST", "/api/v1/disks/db0/attach", "{\"node\":\"n9\"}", 404, "Node n9 is not a node" },
		{ 1, "POST", "/api/v1/disks/db0/attach", "{\"node\":\"n1\"}", 400, "Node n1 holds no replica" },
		{ 1, "POST", "/api/v1/disks/db0/attach", "{\"node\":7}", 400, "node" },
		{ 1, "POST", "/api/v1/disks/db0/attach", "{\"nodes\":\"n3\"}", 400, "nodes" },
		{ 1, "POST", "/api/v1/disks/db0/attach", "{}", 409, "No replica of eSAN disk db0 is detached" },
		{ 1, "POST", "/api/v1/disks/db0/attach", "{\"node\":\"n3\"}", 409, "on node n3 is not detached" },
		{ 1, "POST", "/api/v1/disks/db0/attach", "{\"node\":\"n2\"}", 409, "Node n2's herd-san reports nothing" },
	};
	EXPECT_REFUSALS(f, attach_bad);
	g_autoptr(json_t) detaching = json_pack("{s:{s:s,s:{s:s,s:s}}}", uuid, "conn", "connected", "disk", "state",
						"detaching", "why", "EIO");
	herd_ha_set_esan(f->n[3]->ha, detaching);
	TEST_WAIT(shows_disk(f, 1, "db0", "detaching"));
	const refusal attach_early[] = {
		{ 1, "POST", "/api/v1/disks/db0/attach", "{}", 409, "is being detached" },
	};
	EXPECT_REFUSALS(f, attach_early);
	g_autoptr(json_t) detached = json_pack("{s:{s:s,s:{s:s,s:s}}}", uuid, "conn", "connected", "disk", "state",
					       "detached", "why", "EIO");
	herd_ha_set_esan(f->n[3]->ha, detached);
	TEST_WAIT(shows_disk(f, 1, "db0", "detached"));
	{
		g_autoptr(test_answer) a = test_requestf(f->n[1], "POST", "/api/v1/disks/db0/attach", "{}");
		test_expect(a, 202);
	}

	/* Deleted once no VM uses it. */
	g_autoptr(test_answer) gone_vm = test_request(f->n[1], "DELETE", "/api/v1/vms/db", NULL);
	test_expect(gone_vm, 200);
	g_autoptr(test_answer) gone = test_request(f->n[2], "DELETE", "/api/v1/disks/db0", NULL);
	test_expect(gone, 200);
	g_autoptr(test_answer) none = test_request(f->n[3], "GET", "/api/v1/disks", NULL);
	g_assert_cmpuint(json_array_size(test_expect(none, 200)), ==, 0);
}

/* Does n@node show n@of's storage address as @want (NULL: none)? */
static bool storage_shown(fixture *f, unsigned node, const char *of, const char *want)
{
	g_autofree char *path = g_strdup_printf("/api/v1/nodes/%s", of);
	g_autoptr(test_answer) a = test_request(f->n[node], "GET", path, NULL);
	return g_strcmp0(str(test_expect(a, 200), "storage_address"), want) == 0;
}

/* A node's storage address: validated, shown by every node, taken by the
 * volume ops, refused while a VM runs on one of its eSAN disks. */
static void test_storage_address(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) n1 = test_request(f->n[1], "GET", "/api/v1/nodes/n1", NULL);
	const char *n1_link = str(json_array_get(json_object_get(test_expect(n1, 200), "links"), 0), "address");
	g_autofree char *taken = g_strdup_printf("{\"storage_address\":\"%s\"}", n1_link);
	const refusal bad[] = {
		{ 1, "PUT", "/api/v1/nodes/n2", "{}", 400, "Nothing to change" },
		{ 1, "PUT", "/api/v1/nodes/n2", "{\"mode\":\"standby\"}", 400, "mode" },
		{ 1, "PUT", "/api/v1/nodes/n2", "{\"storage_address\":5}", 400, "an IP address (a string) or null" },
		{ 1, "PUT", "/api/v1/nodes/n2", "{\"storage_address\":\"storage-net\"}", 400, "is not an IP address" },
		{ 1, "PUT", "/api/v1/nodes/n2", "{\"storage_address\":\"127.0.0.1\"}", 400, "loopback" },
		{ 1, "PUT", "/api/v1/nodes/n2", taken, 409, "is node n1's already" },
		{ 1, "PUT", "/api/v1/nodes/n9", "{\"storage_address\":\"10.77.0.9\"}", 404, "n9" },
	};
	EXPECT_REFUSALS(f, bad);
	g_assert_true(storage_shown(f, 3, "n2", NULL));

	g_autoptr(test_answer) set = test_requestf(f->n[1], "PUT", "/api/v1/nodes/n2", "{s:s}", "storage_address",
						   "10.77.0.2");
	g_assert_cmpstr(str(test_expect(set, 200), "storage_address"), ==, "10.77.0.2");
	TEST_WAIT(storage_shown(f, 3, "n2", "10.77.0.2"));
	const refusal again[] = {
		{ 1, "PUT", "/api/v1/nodes/n3", "{\"storage_address\":\"10.77.0.2\"}", 409, "is node n2's already" },
	};
	EXPECT_REFUSALS(f, again);
	g_autoptr(json_t) volumes = NULL;
	g_autoptr(test_answer) made = test_requestf(f->n[1], "POST", "/api/v1/disks", "{s:s,s:s,s:s}", "name",
						    "db0", "size", "64M", "esan", "n2,n3");
	const char *uuid = str(test_expect(made, 201), "uuid");
	volumes = herd_esan_volumes(herd_cluster_state(f->n[3]->cluster), "n3");
	g_assert_cmpstr(str(json_object_get(json_object_get(volumes, uuid), "peer"), "address"), ==, "10.77.0.2");

	/* Its VM runs: both replicas' servers would start again. */
	g_autoptr(test_answer) vm = test_requestf(f->n[1], "POST", "/api/v1/vms", "{s:s,s:s,s:{s:[s]}}", "name",
						  "db", "memory", "64M", "hardware", "disks", "db0");
	test_expect(vm, 201);
	vm_start(f, 1, "db", "n2");
	const refusal running[] = {
		{ 1, "PUT", "/api/v1/nodes/n2", "{\"storage_address\":null}", 409, "VM db runs on eSAN disk db0" },
	};
	EXPECT_REFUSALS(f, running);
	stop(f, "db");
	g_autoptr(test_answer) none = test_requestf(f->n[2], "PUT", "/api/v1/nodes/n2", "{s:n}", "storage_address");
	g_assert_true(json_is_null(json_object_get(test_expect(none, 200), "storage_address")));
	TEST_WAIT(storage_shown(f, 1, "n2", NULL));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/esan", test_esan, LAB_MODE);
	api_test_add("/api/esan/storage-address", test_storage_address, LAB_MODE);
	return g_test_run();
}
