/*
 * The API's VMs (src/api/vm.c, vm_history.c) in a cluster of three nodes
 * in this process (tests/lib): define, list, show, dump the XML, change
 * herd's attributes, undefine; start (the answer waits until a hypervisor
 * runs it), shut down, destroy, reboot, reset, suspend, resume where the VM
 * runs (over the bus when that is another node), release, switch a node's
 * VMs over; the history and its restore.  Good input and bad.
 */
#include "cluster/service.h"
#include "store/command.h"
#include "store/db.h"
#include "store/replica.h"
#include "test_api.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

static void test_define(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 2, "web1", "{s:b,s:s,s:i,s:s}", "ha", 0, "preferred", "n3",
					  "shutdown_timeout_s", 30, "group", "front");
	g_autoptr(test_answer) keep = NULL;
	json_t *j = get_vm(f, 1, "web1", &keep);
	g_assert_cmpstr(str(j, "uuid"), ==, uuid);
	g_assert_cmpstr(str(j, "state"), ==, "shut off");
	g_assert_cmpstr(str(j, "target"), ==, "stopped");
	g_assert_cmpstr(str(j, "preferred"), ==, "n3");
	g_assert_cmpstr(str(j, "group"), ==, "front");
	g_assert_cmpstr(str(j, "type"), ==, "qemu");
	g_assert_true(json_is_null(json_object_get(j, "assigned")));
	g_assert_true(json_is_null(json_object_get(j, "node")));
	g_assert_cmpint(json_integer_value(json_object_get(j, "memory_mib")), ==, 64);
	g_assert_cmpint(json_integer_value(json_object_get(j, "shutdown_timeout_s")), ==, 30);
	g_assert_cmpint(json_integer_value(json_object_get(j, "version")), ==, 1);
	g_autofree char *xml = vm_xml("web1", uuid, 64);
	g_assert_cmpstr(str(j, "xml"), ==, xml);
	/* By UUID too. */
	g_autoptr(test_answer) keep2 = NULL;
	g_assert_cmpstr(str(get_vm(f, 3, uuid, &keep2), "name"), ==, "web1");

	g_autoptr(test_answer) dump = test_request(f->n[3], "GET", "/api/v1/vms/web1/xml", NULL);
	j = test_expect(dump, 200);
	g_assert_cmpstr(str(j, "name"), ==, "web1");
	g_assert_cmpstr(str(j, "xml"), ==, xml);

	g_autofree char *uuid2 = vm_define(f, 1, "web2", NULL);
	g_autoptr(test_answer) list = test_request(f->n[2], "GET", "/api/v1/vms", NULL);
	j = test_expect(list, 200);
	g_assert_cmpuint(json_array_size(j), ==, 2);
	/* The list has no XML (it can be large). */
	g_assert_null(json_object_get(json_array_get(j, 0), "xml"));

	/* Define again (virsh semantics): the same VM, new XML. */
	g_autofree char *bigger = vm_xml("web1", uuid, 128);
	g_autoptr(test_answer) redefined = test_requestf(f->n[1], "POST", "/api/v1/vms", "{s:s}", "xml", bigger);
	j = test_expect(redefined, 200);
	g_assert_cmpint(json_integer_value(json_object_get(j, "memory_mib")), ==, 128);
	g_assert_cmpint(json_integer_value(json_object_get(j, "version")), ==, 2);
	g_assert_cmpstr(str(j, "preferred"), ==, "n3"); /* herd's attributes stay */

	/* Bad input. */
	char other_uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(other_uuid);
	g_autofree char *same_name = vm_xml("web1", other_uuid, 64);
	g_autofree char *fresh = vm_xml("web3", other_uuid, 64);
	g_autofree char *bad_name = vm_xml("web 3/x", other_uuid, 64);
	static const char *const broken = "<domain type='qemu'><name>x</name>";
	const struct {
		json_t *body;
		long status;
		const char *error;
	} bad[] = {
		{ json_pack("{}"), 400, "Field 'xml' (the libvirt domain XML) is missing." },
		{ json_pack("{s:i}", "xml", 5), 400, "Field 'xml' must be a string." },
		{ json_pack("{s:s}", "xml", broken), 400, "" },
		{ json_pack("{s:s}", "xml", bad_name), 400, "" },
		{ json_pack("{s:s,s:s}", "xml", fresh, "colour", "red"), 400, "Unknown field 'colour'" },
		{ json_pack("{s:s,s:s}", "xml", fresh, "ha", "yes"), 400, "Field 'ha' must be true or false." },
		{ json_pack("{s:s,s:s}", "xml", fresh, "preferred", "n9"), 400,
		  "Preferred node 'n9' is not a node of this cluster." },
		{ json_pack("{s:s,s:i}", "xml", fresh, "preferred", 2), 400,
		  "Field 'preferred' must be a node name or null." },
		{ json_pack("{s:s,s:i}", "xml", fresh, "shutdown_timeout_s", 0), 400,
		  "Field 'shutdown_timeout_s' must be a whole number from 1 to 86400." },
		{ json_pack("{s:s}", "xml", same_name), 409, "VM 'web1' already exists with UUID" },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(test_answer) a = test_request(f->n[1], "POST", "/api/v1/vms", bad[i].body);
		json_decref(bad[i].body);
		test_expect_error(a, bad[i].status, bad[i].error);
	}
	g_autoptr(test_answer) not_object = test_call_finish(test_call_start_raw(
		f->n[1], "POST", "/api/v1/vms", "[\"<domain/>\"]", "admin", TESTNODE_PASSWORD));
	test_expect_error(not_object, 400, "");
	g_autoptr(test_answer) after = test_request(f->n[2], "GET", "/api/v1/vms", NULL);
	g_assert_cmpuint(json_array_size(test_expect(after, 200)), ==, 2);

	g_autoptr(test_answer) unknown = test_request(f->n[1], "GET", "/api/v1/vms/web9", NULL);
	test_expect_error(unknown, 404, "VM 'web9' is not defined.");
	g_autoptr(test_answer) unknown_xml = test_request(f->n[1], "GET", "/api/v1/vms/web9/xml", NULL);
	test_expect_error(unknown_xml, 404, "VM 'web9' is not defined.");
}

static void test_set(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", NULL);
	g_autoptr(test_answer) a = test_requestf(f->n[2], "PUT", "/api/v1/vms/web1", "{s:b,s:s,s:b,s:s}",
						 "ha", 1, "preferred", "n2", "failback", 0, "sticky", "n2");
	json_t *j = test_expect(a, 200);
	g_assert_true(json_is_true(json_object_get(j, "ha")));
	g_assert_true(json_is_false(json_object_get(j, "failback")));
	g_assert_cmpstr(str(j, "sticky"), ==, "n2");
	g_assert_cmpint(json_integer_value(json_object_get(j, "version")), ==, 2);
	/* null clears */
	g_autoptr(test_answer) cleared = test_requestf(f->n[3], "PUT", "/api/v1/vms/web1", "{s:n}", "preferred");
	g_assert_true(json_is_null(json_object_get(test_expect(cleared, 200), "preferred")));
	g_assert_null(vm_stored(f, 1, uuid)->preferred);

#define BAD_SET(vm, body, status, error) { 1, "PUT", "/api/v1/vms/" vm, body, status, error }
	static const refusal bad[] = {
		BAD_SET("web9", "{\"ha\":true}", 404, "VM 'web9' is not defined."),
		BAD_SET("web1", "{}", 400,
			"Nothing to change: give ha, preferred, failback, shutdown_timeout_s, sticky, group, pool, nodes, restricted, "
			"restart_priority, start_after, start_wait_s, memory, vcpus or hardware."),
		BAD_SET("web1", "{\"xml\":\"<domain/>\"}", 400, "Unknown field 'xml'"),
		BAD_SET("web1", "{\"restart_priority\":\"urgent\"}", 400,
			"Field 'restart_priority' must be high, medium, low or disabled."),
		BAD_SET("web1", "{\"start_after\":\"nope\"}", 400,
			"Field 'start_after' must be a VM of this cluster or null: there is no VM 'nope'."),
		BAD_SET("web1", "{\"sticky\":3}", 400, "Field 'sticky' must be a node of this cluster or null."),
		BAD_SET("web1", "{\"sticky\":\"n7\"}", 400, "Field 'sticky' must be a node of this cluster or null."),
		BAD_SET("web1", "{\"preferred\":\"n7\"}", 400, "Preferred node 'n7' is not a node of this cluster."),
		BAD_SET("web1", "{\"failback\":\"no\"}", 400, "Field 'failback' must be true or false."),
		BAD_SET("web1", "{\"shutdown_timeout_s\":86401}", 400,
			"Field 'shutdown_timeout_s' must be a whole number from 1 to 86400."),
		BAD_SET("web1", "{\"group\":\"not a group!\"}", 400, ""),
	};
#undef BAD_SET
	EXPECT_REFUSALS(f, bad);
	g_assert_cmpuint(store_state_get(herd_cluster_state(f->n[2]->cluster), STORE_KIND_VM, uuid)->version,
			 ==, 3);
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                      */

/* The start's answer waits until the node's hypervisor runs the VM. */
static void test_start_waits(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	testvirt_hold(f->n[2]->virt, true);
	test_call *call = test_call_start(f->n[3], "POST", "/api/v1/vms/web1/start", NULL);
	TEST_WAIT(testvirt_pending(f->n[2]->virt) == 1);
	g_autoptr(test_answer) keep = NULL;
	json_t *j = get_vm(f, 1, "web1", &keep);
	g_assert_cmpstr(str(j, "target"), ==, "running");
	g_assert_cmpstr(str(j, "assigned"), ==, "n2");
	g_assert_false(test_call_answered(call));

	testvirt_hold(f->n[2]->virt, false);
	g_autoptr(test_answer) a = test_call_finish(call);
	j = test_expect(a, 200);
	g_assert_cmpstr(str(j, "state"), ==, "running");
	g_assert_cmpstr(str(j, "node"), ==, "n2");
	g_assert_true(vm_runs_on(f, uuid, 2));
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "start", uuid), ==, 1);
	g_autoptr(test_answer) keep2 = NULL;
	j = get_vm(f, 1, "web1", &keep2);
	g_assert_cmpint(json_integer_value(json_object_get(j, "uptime_s")), >=, 0);

	g_autoptr(test_answer) again = vm_action(f, 1, "web1", "start", NULL);
	test_expect_error(again, 409, "VM web1 is already running on node n2.");
	g_autoptr(test_answer) unknown = vm_action(f, 1, "web9", "start", NULL);
	test_expect_error(unknown, 404, "VM 'web9' is not defined.");
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "start", uuid), ==, 1);
}

/* A start waiting for its VM when the node stops is answered that it shuts
 * down; its poll ends with the API (no poll later on freed state). */
static void test_start_wait_server_freed(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	testvirt_hold(f->n[2]->virt, true);
	test_call *call = test_call_start(f->n[3], "POST", "/api/v1/vms/web1/start", NULL);
	TEST_WAIT(f->n[3]->ctx.vm_waits && g_hash_table_size(f->n[3]->ctx.vm_waits) == 1);
	g_clear_pointer(&f->tc, testcluster_free);
	g_autoptr(test_answer) a = test_call_finish(call);
	test_expect_error(a, 503, "shutting down");
	/* Longer than the poll's 20 ms: a poll left behind would run now. */
	(void)test_loop_until(false, 100);
}

/* An HA VM is started only where a fence device could cut its node off. */
static void test_start_needs_fencing(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "db1", "{s:b,s:s}", "ha", 1, "preferred", "n3");
	g_autoptr(test_answer) refused = vm_action(f, 1, "db1", "start", NULL);
	test_expect_error(refused, 409, "VM db1 is an HA VM, but no fence device covers node(s) n1, n2, n3");
	g_autoptr(test_answer) partly = fence_device_add(f, 2, "pdu1", "{s:s,s:s}", "n1", "1", "n3", "3");
	test_expect(partly, 201);
	g_autoptr(test_answer) still = vm_action(f, 1, "db1", "start", NULL);
	test_expect_error(still, 409, "no fence device covers node(s) n2 that it may run on");
	g_assert_null(vm_runs_where(f, uuid));
	/* Sticky to a covered node: nothing uncovered is left. */
	g_autoptr(test_answer) sticky = test_requestf(f->n[1], "PUT", "/api/v1/vms/db1", "{s:s}", "sticky", "n3");
	test_expect(sticky, 200);
	vm_start(f, 2, "db1", "n3");
}

static void test_start_lab_mode(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "db1", "{s:b,s:s}", "ha", 1, "preferred", "n1");
	vm_start(f, 3, "db1", "n1");
}

/* A start the hypervisor refuses: the VM shows the error, the agent tries
 * again, the answer comes when it runs. */
static void test_start_failure(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	testvirt_fail_start(f->n[2]->virt, uuid, "Cannot access storage file '/var/lib/herd/web1.img'");
	test_call *call = test_call_start(f->n[1], "POST", "/api/v1/vms/web1/start", NULL);
	TEST_WAIT(testvirt_count(f->n[2]->virt, "start", uuid) == 1 && testvirt_pending(f->n[2]->virt) == 0);
	/* The next try waits until the error was seen. */
	testvirt_hold(f->n[2]->virt, true);
	TEST_WAIT(vm_shows(f, 3, "web1", "error",
			   "start failed: Cannot access storage file '/var/lib/herd/web1.img'"));
	g_assert_false(test_call_answered(call));
	testvirt_hold(f->n[2]->virt, false);
	g_autoptr(test_answer) a = test_call_finish(call);
	json_t *j = test_expect(a, 200);
	g_assert_cmpstr(str(j, "state"), ==, "running");
	g_assert_null(json_object_get(j, "error"));
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "start", uuid), ==, 2);
}

/* n2's disk no longer reads a VM's configuration (herd keeps it only in
 * SQLite once durable: store/state.h, "Cold texts").  What needs it there
 * fails and says why, and herdd goes on: a GET answers 500 there (200
 * elsewhere); a start there is a failed start, tried again; a change of
 * the VM, which n2 cannot apply, stops n2's store, which rejoins once the
 * disk reads again. */
static void test_unreadable_config(fixture *f, gconstpointer data)
{
	test_log_allow_error("cannot be read");
	test_log_allow_error("configuration store stopped");
	test_log_allow_error("could not be read back");
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	testvirt_fail_start(f->n[2]->virt, uuid, "Cannot access storage file '/var/lib/herd/web1.img'");
	test_call *call = test_call_start(f->n[1], "POST", "/api/v1/vms/web1/start", NULL);
	TEST_WAIT(testvirt_count(f->n[2]->virt, "start", uuid) == 1 && testvirt_pending(f->n[2]->virt) == 0);
	TEST_WAIT(vm_stored(f, 2, uuid)->object->cold);
	store_db *db2 = replica_state(herd_cluster_replica(f->n[2]->cluster))->db;
	store_db_fail_reads(db2, true);
	g_autofree char *why = g_strdup_printf("The configuration of VM web1 (version %" G_GUINT64_FORMAT
					       ") cannot be read: The configuration database failed to read",
					       vm_stored(f, 2, uuid)->object->version);
	g_autoptr(test_answer) there = test_request(f->n[2], "GET", "/api/v1/vms/web1", NULL);
	test_expect_error(there, 500, why);
	g_autoptr(test_answer) xml = test_request(f->n[2], "GET", "/api/v1/vms/web1/xml", NULL);
	test_expect_error(xml, 500, why);
	g_autoptr(test_answer) elsewhere = test_request(f->n[1], "GET", "/api/v1/vms/web1", NULL);
	test_expect(elsewhere, 200);
	/* The agent's next try fails before libvirt is asked. */
	g_autofree char *failed = g_strdup_printf("starting VM web1 failed (2 time(s) in a row): %s", why);
	TEST_WAIT(test_log_count(failed) == 1);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "start", uuid), ==, 1);
	/* The disk reads again: the try after starts it. */
	store_db_fail_reads(db2, false);
	g_autoptr(test_answer) started = test_call_finish(call);
	g_assert_cmpstr(str(test_expect(started, 200), "state"), ==, "running");
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "start", uuid), ==, 2);
	g_assert_cmpstr(vm_runs_where(f, uuid), ==, "n2");

	/* A change of it while n2 cannot read it: n2's store stops and says
	 * why, the others go on; once it reads again, n2 catches up. */
	TEST_WAIT(vm_stored(f, 2, uuid)->object->cold);
	store_db_fail_reads(db2, true);
	g_autoptr(test_answer) set = test_requestf(f->n[1], "PUT", "/api/v1/vms/web1", "{s:i}",
						   "shutdown_timeout_s", 77);
	test_expect(set, 200);
	TEST_WAIT(!testnode_synced(f->n[2]));
	g_autoptr(GError) err = NULL;
	g_assert_false(herd_cluster_store_check(f->n[2]->cluster, &err));
	g_assert_nonnull(strstr(err->message, "cannot be read"));
	store_db_fail_reads(db2, false);
	TEST_WAIT(testnode_synced(f->n[2]) && vm_stored(f, 2, uuid)->shutdown_timeout_s == 77);
	g_assert_cmpstr(vm_runs_where(f, uuid), ==, "n2");
}

/* A guest that crashes while it should run is started again. */
static void test_crash(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n3");
	vm_start(f, 1, "web1", "n3");
	testvirt_crash(f->n[3]->virt, uuid);
	TEST_WAIT(testvirt_count(f->n[3]->virt, "start", uuid) == 2 && vm_runs_on(f, uuid, 3));
}

static void test_shutdown_destroy(fixture *f, gconstpointer data)
{
	g_autofree char *uuid1 = vm_define(f, 1, "web1", "{s:s}", "preferred", "n1");
	g_autofree char *uuid2 = vm_define(f, 1, "web2", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n1");
	vm_start(f, 1, "web2", "n2");

	/* --wait: the answer comes once it is off. */
	g_autoptr(test_answer) a = vm_action(f, 2, "web1", "shutdown", "{s:b}", "wait", 1);
	json_t *j = test_expect(a, 200);
	g_assert_cmpstr(str(j, "state"), ==, "shut off");
	g_assert_cmpstr(str(j, "target"), ==, "stopped");
	g_assert_null(vm_runs_where(f, uuid1));
	g_assert_cmpuint(testvirt_count(f->n[1]->virt, "shutdown", uuid1), ==, 1);
	g_autoptr(test_answer) again = vm_action(f, 2, "web1", "shutdown", NULL);
	test_expect_error(again, 409, "VM web1 is not running.");

	/* Without --wait: at once; it stops meanwhile. */
	vm_start(f, 1, "web1", "n1");
	g_autoptr(test_answer) nowait = vm_action(f, 3, "web1", "shutdown", NULL);
	g_assert_cmpstr(str(test_expect(nowait, 200), "target"), ==, "stopped");
	TEST_WAIT(vm_runs_where(f, uuid1) == NULL);

	/* destroy waits by default, on another node too. */
	g_autoptr(test_answer) destroyed = vm_action(f, 1, "web2", "destroy", NULL);
	g_assert_cmpstr(str(test_expect(destroyed, 200), "state"), ==, "shut off");
	g_assert_null(vm_runs_where(f, uuid2));
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "destroy", uuid2), ==, 1);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "shutdown", uuid2), ==, 0);
	g_autoptr(test_answer) destroy_again = vm_action(f, 1, "web2", "destroy", NULL);
	test_expect_error(destroy_again, 409, "VM web2 is not running.");

	vm_start(f, 1, "web2", "n2");
	g_autoptr(test_answer) bad_wait = vm_action(f, 1, "web2", "shutdown", "{s:s}", "wait", "yes");
	test_expect_error(bad_wait, 400, "Field 'wait' must be true or false.");
	g_autoptr(test_answer) bad_field = vm_action(f, 1, "web2", "destroy", "{s:b}", "force", 1);
	test_expect_error(bad_field, 400, "Unknown field 'force' (known: wait)");
	g_autoptr(test_answer) unknown = vm_action(f, 1, "web9", "shutdown", NULL);
	test_expect_error(unknown, 404, "VM 'web9' is not defined.");
	g_assert_true(vm_runs_on(f, uuid2, 2));
}

static void test_undefine(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	g_autoptr(test_answer) running = test_request(f->n[3], "DELETE", "/api/v1/vms/web1", NULL);
	test_expect_error(running, 409,
			  "VM web1 is running on node n2; shut it down (or destroy it) before undefining it.");
	g_autoptr(test_answer) stopped = vm_action(f, 1, "web1", "destroy", NULL);
	test_expect(stopped, 200);
	g_autoptr(test_answer) a = test_request(f->n[3], "DELETE", "/api/v1/vms/web1", NULL);
	test_expect(a, 200);
	g_assert_null(vm_stored(f, 1, uuid));
	g_autoptr(test_answer) gone = test_request(f->n[1], "GET", "/api/v1/vms/web1", NULL);
	test_expect_error(gone, 404, "VM 'web1' is not defined.");
	g_autoptr(test_answer) again = test_request(f->n[1], "DELETE", "/api/v1/vms/web1", NULL);
	test_expect_error(again, 404, "VM 'web1' is not defined.");
}

/* ------------------------------------------------------------------ */
/* Where it runs: reboot, reset, suspend, resume                       */

/* Reboot, reset, suspend and resume VM @vm (running on n@host, UUID @uuid)
 * through n@via: each is done once, by its node's hypervisor. */
static void check_ops(fixture *f, unsigned via, const char *vm, const char *uuid, unsigned host)
{
	static const char *const ops[] = { "reboot", "reset", "suspend", "resume" };
	testvirt *v = f->n[host]->virt;
	unsigned before[G_N_ELEMENTS(ops)];
	for (unsigned i = 0; i < G_N_ELEMENTS(ops); i++)
		before[i] = testvirt_count(v, ops[i], uuid);
	g_autoptr(test_answer) reboot = vm_action(f, via, vm, "reboot", NULL);
	g_assert_cmpstr(str(test_expect(reboot, 200), "state"), ==, "running");
	g_autoptr(test_answer) reset = vm_action(f, via, vm, "reset", NULL);
	test_expect(reset, 200);
	g_autoptr(test_answer) suspend = vm_action(f, via, vm, "suspend", NULL);
	test_expect(suspend, 200);
	g_assert_cmpint(testvirt_state(v, uuid), ==, HERD_VM_PAUSED);
	TEST_WAIT(vm_shows(f, via, vm, "state", "paused"));
	g_autoptr(test_answer) resume = vm_action(f, via, vm, "resume", NULL);
	test_expect(resume, 200);
	g_assert_cmpint(testvirt_state(v, uuid), ==, HERD_VM_RUNNING);
	/* The hypervisor's refusal comes back as it said it. */
	g_autoptr(test_answer) not_paused = vm_action(f, via, vm, "resume", NULL);
	test_expect_error(not_paused, 409, "Requested operation is not valid: domain");
	for (unsigned i = 0; i < G_N_ELEMENTS(ops); i++)
		g_assert_cmpuint(testvirt_count(v, ops[i], uuid) - before[i], ==,
				 strcmp(ops[i], "resume") == 0 ? 2 : 1);
	for (unsigned i = 1; i <= 3; i++)
		if (i != host)
			g_assert_cmpuint(testvirt_count(f->n[i]->virt, "reboot", uuid), ==, 0);
}

static void test_ops_local(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n1");
	g_autoptr(test_answer) stopped = vm_action(f, 1, "web1", "reboot", NULL);
	test_expect_error(stopped, 409, "VM web1 is not running.");
	vm_start(f, 1, "web1", "n1");
	check_ops(f, 1, "web1", uuid, 1);
	g_autoptr(test_answer) unknown_op = vm_action(f, 1, "web1", "explode", NULL);
	test_expect_error(unknown_op, 404, "There is no VM action 'explode'.");
	g_autoptr(test_answer) unknown_vm = vm_action(f, 1, "web9", "reboot", NULL);
	test_expect_error(unknown_vm, 404, "VM 'web9' is not defined.");
}

/* A VM on another node: the request goes over the bus to its node. */
static void test_ops_remote(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web2", "{s:s}", "preferred", "n2");
	vm_start(f, 3, "web2", "n2");
	check_ops(f, 1, "web2", uuid, 2);
	check_ops(f, 3, uuid, uuid, 2); /* by UUID */
}

/* ------------------------------------------------------------------ */
/* Placement: release, switchover                                      */

static void test_release(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "sticky", "n2");
	g_autoptr(test_answer) a = vm_action(f, 3, "web1", "release", NULL);
	json_t *j = test_expect(a, 200);
	g_assert_true(json_is_null(json_object_get(j, "sticky")));
	g_assert_null(vm_stored(f, 2, uuid)->sticky);
	g_autoptr(test_answer) again = vm_action(f, 3, "web1", "release", NULL);
	test_expect_error(again, 409, "VM web1 is not bound to a node.");
	g_autoptr(test_answer) unknown = vm_action(f, 3, "web9", "release", NULL);
	test_expect_error(unknown, 404, "VM 'web9' is not defined.");
}

static void test_switchover(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) empty = test_requestf(f->n[1], "POST", "/api/v1/nodes/n2/switchover", "{s:s}",
						     "to", "n3");
	test_expect_error(empty, 409, "Node n2 runs no VMs.");
	g_autofree char *uuid1 = vm_define(f, 1, "web1", "{s:s,s:b}", "preferred", "n2", "failback", 0);
	g_autofree char *uuid2 = vm_define(f, 1, "web2", "{s:s,s:b}", "preferred", "n2", "failback", 0);
	g_autofree char *bound = vm_define(f, 1, "bound", "{s:s}", "sticky", "n2");
	vm_start(f, 1, "web1", "n2");
	vm_start(f, 1, "web2", "n2");
	vm_start(f, 1, "bound", "n2");

	g_autoptr(test_answer) a = test_requestf(f->n[1], "POST", "/api/v1/nodes/n2/switchover", "{s:s}",
						 "to", "n3");
	json_t *j = test_expect(a, 200);
	/* The VM sticky to n2 stays, named with its binding. */
	g_autofree char *said = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	g_autofree char *want = g_strdup_printf(
		"{\"from\":\"n2\",\"moving\":[\"web1\",\"web2\"],\"staying\":[{\"reason\":"
		"\"it is sticky to node n2\",\"uuid\":\"%s\",\"vm\":\"bound\"}],\"to\":\"n3\"}",
		bound);
	g_assert_cmpstr(said, ==, want);
	TEST_WAIT(vm_runs_on(f, uuid1, 3) && vm_runs_on(f, uuid2, 3) && !vm_stored(f, 1, uuid2)->move_to);
	g_assert_true(vm_runs_on(f, bound, 2));
	g_assert_null(vm_stored(f, 1, bound)->move_to);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", bound), ==, 0);
	/* Only it is left: nothing may move. */
	g_autoptr(test_answer) only_bound = test_requestf(f->n[1], "POST", "/api/v1/nodes/n2/switchover", "{s:s}",
							  "to", "n1");
	test_expect_error(only_bound, 409,
			  "No VM of node n2 may move to node n1: VM bound is sticky to node n2 ('herd vm release' lets a VM move).");
	/* Nor does any other change move it (the store's rule, whoever asks). */
	g_autoptr(json_t) away = store_vm_cmd_migrate(bound, "n1", false);
	expect_submit_conflict(f, 3, away,
			       "VM bound is sticky to node n2: it does not move to node n1 ('herd vm release bound' lets it move).");
	g_assert_true(vm_runs_on(f, bound, 2));
	/* Live: migrated, not shut down and started again. */
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", uuid1), ==, 1);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "shutdown", uuid1), ==, 0);
	g_assert_cmpuint(testvirt_count(f->n[3]->virt, "start", uuid1), ==, 0);
	g_assert_cmpstr(vm_stored(f, 1, uuid2)->node, ==, "n3");

#define BAD_SWITCHOVER(node, body, status, error) \
	{ 2, "POST", "/api/v1/nodes/" node "/switchover", body, status, error }
	static const refusal bad[] = {
		BAD_SWITCHOVER("n3", "{\"to\":\"n3\"}", 400, "A switchover needs two different nodes."),
		BAD_SWITCHOVER("n3", "{\"to\":\"n9\"}", 404, "Node 'n9' is not defined."),
		BAD_SWITCHOVER("n3", "{}", 404, "Node '' is not defined."),
		BAD_SWITCHOVER("n3", "{\"to\":\"n1\",\"now\":true}", 400, "Unknown field 'now' (known: to, allow_cold)"),
		BAD_SWITCHOVER("n3", "{\"to\":\"n1\",\"allow_cold\":1}", 400, "allow_cold"),
		BAD_SWITCHOVER("n9", "{\"to\":\"n1\"}", 404, "Node 'n9' is not defined."),
	};
#undef BAD_SWITCHOVER
	EXPECT_REFUSALS(f, bad);
	g_assert_true(vm_runs_on(f, uuid1, 3) && vm_runs_on(f, uuid2, 3));
}

/* ------------------------------------------------------------------ */
/* Changes the engines need not look at                                */

/* The full runs of the three nodes' engines (each looks at every VM). */
static json_int_t full_runs(fixture *f)
{
	json_int_t runs = 0;
	for (unsigned i = 1; i <= 3; i++) {
		g_autoptr(json_t) stats = herd_ha_run_stats(f->n[i]->ha);
		runs += json_integer_value(json_object_get(stats, "full_runs"));
	}
	return runs;
}

/* The full runs once the cluster is quiet: settled, and no run for a
 * while (the nodes' first reports after the start come after settling). */
static json_int_t quiet_full_runs(fixture *f)
{
	json_int_t runs = -1;
	for (unsigned i = 0; i < 50 && runs != full_runs(f); i++) {
		runs = full_runs(f);
		TEST_WAIT(testcluster_settled(f->tc));
		test_loop_until(false, 200);
	}
	g_assert_cmpint(runs, ==, full_runs(f));
	return runs;
}

/* Patch VM @name's shutdown_timeout_s through n1, and wait until every
 * node has it. */
static void vm_patch(fixture *f, const char *name, int timeout_s)
{
	store_object *vm = store_state_get_by_name(herd_cluster_state(f->n[1]->cluster), STORE_KIND_VM, name);
	g_assert_nonnull(vm);
	g_autoptr(json_t) cmd = store_cmd_patch(STORE_KIND_VM, vm->uuid,
						json_pack("{s:i}", "shutdown_timeout_s", timeout_s));
	testnode_commit(f->n[1], cmd);
	TEST_WAIT(testcluster_settled(f->tc));
}

/* A define, a setting or a delete of a stopped VM that is assigned nowhere
 * costs no node's engine a run over every VM (engine.c: changes_inert());
 * a start does, and so does a change of a stopped VM an affinity rule
 * names. */
static void test_inert_changes(fixture *f, gconstpointer data)
{
	json_int_t runs = quiet_full_runs(f);
	g_autofree char *a = vm_define(f, 1, "idle1", NULL);
	g_autofree char *b = vm_define(f, 2, "idle2", "{s:s}", "preferred", "n3");
	g_autofree char *c = vm_define(f, 3, "idle3", NULL);
	TEST_WAIT(testcluster_settled(f->tc));
	vm_patch(f, "idle1", 301);
	g_autoptr(test_answer) del = test_request(f->n[2], "DELETE", "/api/v1/vms/idle3", NULL);
	test_expect(del, 200);
	TEST_WAIT(testcluster_settled(f->tc));
	g_assert_cmpint(full_runs(f), ==, runs);

	g_autoptr(test_answer) rule = test_requestf(f->n[1], "POST", "/api/v1/rules", "{s:s,s:s,s:[s,s]}", "name",
						    "apart", "kind", "apart", "vms", "idle1", "idle2");
	test_expect(rule, 201);
	runs = quiet_full_runs(f);
	vm_patch(f, "idle2", 302);
	g_assert_cmpint(full_runs(f), >, runs);

	runs = full_runs(f);
	vm_start(f, 1, "idle2", "n3");
	g_assert_cmpint(full_runs(f), >, runs);
}

/* ------------------------------------------------------------------ */
/* History and restore                                                 */

static void test_history(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "hist1", NULL);
	g_autoptr(test_answer) set = test_requestf(f->n[1], "PUT", "/api/v1/vms/hist1", "{s:b}", "ha", 1);
	test_expect(set, 200);
	g_autofree char *other = vm_define(f, 1, "other", NULL);

	g_autoptr(test_answer) a = test_request(f->n[2], "GET", "/api/v1/vms/hist1/history", NULL);
	json_t *list = test_expect(a, 200);
	g_assert_cmpuint(json_array_size(list), ==, 2);
	g_assert_cmpint(json_integer_value(json_object_get(json_array_get(list, 0), "version")), ==, 2);
	g_assert_cmpint(json_integer_value(json_object_get(json_array_get(list, 1), "version")), ==, 1);
	g_assert_cmpstr(str(json_array_get(list, 0), "name"), ==, "hist1");
	/* By UUID, the same. */
	g_autofree char *path = g_strdup_printf("/api/v1/vms/%s/history", uuid);
	g_autoptr(test_answer) by_uuid = test_request(f->n[3], "GET", path, NULL);
	g_assert_cmpuint(json_array_size(test_expect(by_uuid, 200)), ==, 2);

	g_autoptr(test_answer) all = test_request(f->n[3], "GET", "/api/v1/history/vms", NULL);
	g_assert_cmpuint(json_array_size(test_expect(all, 200)), ==, 3);
	g_autoptr(test_answer) some = test_request(f->n[3], "GET", "/api/v1/history/vms?pattern=hi*", NULL);
	g_assert_cmpuint(json_array_size(test_expect(some, 200)), ==, 2);
	g_autoptr(test_answer) none = test_request(f->n[3], "GET", "/api/v1/history/vms?pattern=zz*", NULL);
	g_assert_cmpuint(json_array_size(test_expect(none, 200)), ==, 0);

	g_autoptr(test_answer) unknown = test_request(f->n[1], "GET", "/api/v1/vms/nope/history", NULL);
	test_expect_error(unknown, 404, "No VM named 'nope' exists or is in the history.");
	g_autoptr(test_answer) unknown_uuid = test_request(
		f->n[1], "GET", "/api/v1/vms/01234567-89ab-4def-8123-456789abcdef/history", NULL);
	test_expect_error(unknown_uuid, 404, "No VM with UUID 01234567-89ab-4def-8123-456789abcdef");
}

static void test_restore(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "hist1", NULL);
	g_autoptr(test_answer) set = test_requestf(f->n[1], "PUT", "/api/v1/vms/hist1", "{s:b}", "ha", 1);
	test_expect(set, 200);

	/* Over the VM as it is: only with force. */
	g_autoptr(test_answer) refused = vm_action(f, 2, "hist1", "restore", NULL);
	test_expect_error(refused, 409, "VM 'hist1' exists; restoring version 1 would overwrite it (use force).");
	g_assert_true(vm_stored(f, 1, uuid)->ha);
	g_autoptr(test_answer) forced = vm_action(f, 2, "hist1", "restore", "{s:b}", "force", 1);
	json_t *j = test_expect(forced, 200);
	g_assert_true(json_is_false(json_object_get(j, "ha")));
	g_assert_cmpint(json_integer_value(json_object_get(j, "version")), ==, 3);
	g_autoptr(test_answer) v2 = vm_action(f, 3, "hist1", "restore", "{s:i,s:b}", "version", 2, "force", 1);
	g_assert_true(json_is_true(json_object_get(test_expect(v2, 200), "ha")));

	/* An undefined VM comes back by name, from its newest version. */
	g_autoptr(test_answer) undefined = test_request(f->n[1], "DELETE", "/api/v1/vms/hist1", NULL);
	test_expect(undefined, 200);
	g_assert_null(vm_stored(f, 2, uuid));
	g_autoptr(test_answer) back = vm_action(f, 2, "hist1", "restore", NULL);
	j = test_expect(back, 200);
	g_assert_cmpstr(str(j, "uuid"), ==, uuid);
	g_assert_true(json_is_true(json_object_get(j, "ha")));
	g_assert_nonnull(vm_stored(f, 3, uuid));

#define BAD_RESTORE(vm, body, status, error) { 1, "POST", "/api/v1/vms/" vm "/restore", body, status, error }
	static const refusal bad[] = {
		BAD_RESTORE("hist1", "{\"version\":\"1\"}", 400, "Field 'version' must be a whole number"),
		BAD_RESTORE("hist1", "{\"version\":0}", 400, "Field 'version' must be a whole number"),
		BAD_RESTORE("hist1", "{\"force\":\"yes\"}", 400, "Field 'force' must be true or false."),
		BAD_RESTORE("hist1", "{\"version\":1,\"dry\":true}", 400, "Unknown field 'dry' (known: version, force)"),
		BAD_RESTORE("hist1", "{\"version\":99,\"force\":true}", 404, "99"),
		BAD_RESTORE("nope", "{}", 404, "No VM named 'nope' exists or is in the history."),
	};
#undef BAD_RESTORE
	EXPECT_REFUSALS(f, bad);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/vms/define-list-show-xml", test_define, NULL);
	api_test_add("/api/vms/set", test_set, NULL);
	api_test_add("/api/vms/start-waits-for-hypervisor", test_start_waits, NULL);
	api_test_add("/api/vms/start-wait-server-freed", test_start_wait_server_freed, NULL);
	api_test_add("/api/vms/start-ha-needs-fencing", test_start_needs_fencing, NULL);
	api_test_add("/api/vms/start-ha-lab-mode", test_start_lab_mode, LAB_MODE);
	api_test_add("/api/vms/start-failure", test_start_failure, NULL);
	api_test_add("/api/vms/unreadable-config", test_unreadable_config, NULL);
	api_test_add("/api/vms/crash", test_crash, NULL);
	api_test_add("/api/vms/shutdown-destroy", test_shutdown_destroy, NULL);
	api_test_add("/api/vms/undefine", test_undefine, NULL);
	api_test_add("/api/vms/ops-local", test_ops_local, NULL);
	api_test_add("/api/vms/ops-remote", test_ops_remote, NULL);
	api_test_add("/api/vms/release", test_release, NULL);
	api_test_add("/api/nodes/switchover", test_switchover, NULL);
	api_test_add("/api/vms/inert-changes", test_inert_changes, LAB_MODE);
	api_test_add("/api/vms/history", test_history, NULL);
	api_test_add("/api/vms/restore", test_restore, NULL);
	return g_test_run();
}
