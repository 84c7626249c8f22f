/*
 * Live migration through the API (src/api/vm_migrate.c) in a cluster of
 * three nodes in this process (tests/lib; the fake hypervisors hand a
 * migrating VM over between them): to a node named, or where the scheduler
 * places it; its progress while it runs; a failed migration leaves the VM
 * where it ran; what is refused (and changes nothing), the store's rule
 * that a live move keeps its destination included.
 */
#include "test_api.h"

#include "store/cluster.h"

#include <string.h>

/* Does GET /api/v1/vms/@vm on n@node show a migration under way? */
static bool migration_shown(fixture *f, unsigned node, const char *vm)
{
	g_autoptr(test_answer) keep = NULL;
	return json_object_get(get_vm(f, node, vm, &keep), "migration") != NULL;
}

/* Put node @name in standby through n1. */
static void standby(fixture *f, const char *name)
{
	g_autofree char *path = g_strdup_printf("/api/v1/nodes/%s/mode", name);
	g_autoptr(test_answer) a = test_requestf(f->n[1], "POST", path, "{s:s}", "mode", "standby");
	test_expect(a, 200);
}

/* Migrate web1 from n2 to n3, waiting, asked on n1: the answer comes once
 * it runs on n3, assigned there, the move over; never on two nodes. */
static void test_migrate_to_node(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	testvirt_hold(f->n[2]->virt, true);
	g_autoptr(json_t) body = json_pack("{s:s,s:b}", "node", "n3", "wait", 1);
	test_call *call = test_call_start(f->n[1], "POST", "/api/v1/vms/web1/migrate", body);
	/* Under way: the VM shows its move and how far it is. */
	TEST_WAIT(testvirt_state(f->n[2]->virt, uuid) == HERD_VM_MIGRATING &&
		  testvirt_state(f->n[3]->virt, uuid) == HERD_VM_INCOMING);
	TEST_WAIT(vm_shows(f, 1, "web1", "move_to", "n3") && migration_shown(f, 3, "web1"));
	g_autoptr(test_answer) keep = NULL;
	json_t *j = get_vm(f, 3, "web1", &keep);
	json_t *m = json_object_get(j, "migration");
	g_assert_cmpstr(str(j, "move"), ==, "live");
	g_assert_cmpstr(str(j, "state"), ==, "migrating");
	g_assert_cmpstr(str(j, "node"), ==, "n2");
	g_assert_cmpstr(str(m, "from"), ==, "n2");
	g_assert_cmpstr(str(m, "to"), ==, "n3");
	g_assert_cmpint(json_integer_value(json_object_get(m, "memory_total")), ==, 64 << 20);
	g_assert_cmpint(json_integer_value(json_object_get(m, "timeout_s")), >=, 60);
	g_assert_cmpstr(vm_runs_where(f, uuid), ==, "n2");
	g_assert_false(test_call_answered(call));

	testvirt_hold(f->n[2]->virt, false);
	g_autoptr(test_answer) a = test_call_finish(call);
	j = test_expect(a, 200);
	g_assert_cmpstr(str(j, "node"), ==, "n3");
	g_assert_cmpstr(str(j, "assigned"), ==, "n3");
	g_assert_cmpstr(str(j, "state"), ==, "running");
	g_assert_null(json_object_get(j, "move_to"));
	g_assert_cmpstr(vm_runs_where(f, uuid), ==, "n3");
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", uuid), ==, 1);
	g_assert_cmpuint(testvirt_count(f->n[3]->virt, "start", uuid), ==, 0);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "shutdown", uuid), ==, 0);
	/* The progress is gone with the migration. */
	TEST_WAIT(!migration_shown(f, 1, "web1"));
}

/* Powered off while its live move runs, the move ending meanwhile: the
 * destination, where it arrived and is then assigned, powers it off (a
 * destroy, not a guest shutdown that a guest may ignore); it ends stopped,
 * nowhere running, and the waiting answer comes. */
static void test_poweroff_during_move(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	testvirt_hold(f->n[2]->virt, true);
	g_autoptr(test_answer) m = vm_action(f, 1, "web1", "migrate", "{s:s}", "node", "n3");
	test_expect(m, 200);
	TEST_WAIT(testvirt_state(f->n[2]->virt, uuid) == HERD_VM_MIGRATING &&
		  testvirt_state(f->n[3]->virt, uuid) == HERD_VM_INCOMING);
	g_autoptr(json_t) body = json_pack("{s:b}", "wait", 1);
	test_call *call = test_call_start(f->n[1], "POST", "/api/v1/vms/web1/destroy", body);
	TEST_WAIT(!vm_stored(f, 1, uuid)->target_running);
	g_assert_true(vm_stored(f, 1, uuid)->stop_force);
	testvirt_hold(f->n[2]->virt, false);
	g_autoptr(test_answer) a = test_call_finish(call);
	json_t *j = test_expect(a, 200);
	g_assert_cmpstr(str(j, "state"), ==, "shut off");
	g_assert_cmpstr(str(j, "target"), ==, "stopped");
	for (unsigned i = 1; i <= 3; i++)
		g_assert_cmpint(testvirt_state(f->n[i]->virt, uuid), ==, HERD_VM_STOPPED);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", uuid), ==, 1);
	g_assert_cmpuint(testvirt_count(f->n[3]->virt, "destroy", uuid), ==, 1);
	for (unsigned i = 1; i <= 3; i++)
		g_assert_cmpuint(testvirt_count(f->n[i]->virt, "shutdown", uuid), ==, 0);
	for (unsigned i = 1; i <= 3; i++)
		g_assert_cmpuint(testvirt_count(f->n[i]->virt, "start", uuid), ==, i == 2);
}

/* Without a node, the scheduler chooses: never the VM's own, and the one
 * with room (n1 is in standby).  Without "wait" the answer comes at once. */
static void test_migrate_scheduler_chooses(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	standby(f, "n1");
	g_autoptr(test_answer) a = vm_action(f, 2, "web1", "migrate", NULL);
	json_t *j = test_expect(a, 200);
	g_assert_cmpstr(str(j, "move_to"), ==, "n3");
	g_assert_cmpstr(str(j, "move"), ==, "live");
	TEST_WAIT(vm_runs_on(f, uuid, 3) && vm_stored(f, 1, uuid)->node &&
		  strcmp(vm_stored(f, 1, uuid)->node, "n3") == 0 && !vm_stored(f, 1, uuid)->move_to);
	g_assert_cmpuint(testvirt_count(f->n[3]->virt, "start", uuid), ==, 0);
}

/* The hypervisor fails the migration: the move is given up, the VM runs on
 * where it was, and the waiting answer says why. */
static void test_migrate_fails(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	testvirt_fail_migrate(f->n[2]->virt, uuid, "operation aborted: migration out job: canceled by client");
	g_autoptr(test_answer) a = test_requestf(f->n[3], "POST", "/api/v1/vms/web1/migrate", "{s:s,s:b}",
						 "node", "n1", "wait", 1);
	test_expect_error(a, 409,
			  "VM web1 was not migrated to node n1: migrate failed: operation aborted: migration out "
			  "job: canceled by client; it runs on node n2.");
	g_assert_cmpstr(vm_runs_where(f, uuid), ==, "n2");
	const store_vm *v = vm_stored(f, 1, uuid);
	g_assert_cmpstr(v->node, ==, "n2");
	g_assert_null(v->move_to);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "shutdown", uuid), ==, 0);
	g_assert_cmpuint(testvirt_count(f->n[1]->virt, "start", uuid), ==, 0);
	/* A new attempt goes ahead. */
	g_autoptr(test_answer) again = test_requestf(f->n[3], "POST", "/api/v1/vms/web1/migrate", "{s:s,s:b}",
						     "node", "n1", "wait", 1);
	test_expect(again, 200);
	g_assert_cmpstr(vm_runs_where(f, uuid), ==, "n1");
}

/* What is refused, with the reason, and changes nothing. */
static void test_migrate_refused(fixture *f, gconstpointer data)
{
	g_autofree char *stopped = vm_define(f, 1, "idle1", NULL);
	g_autofree char *bound = vm_define(f, 1, "db1", "{s:s}", "sticky", "n1");
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "db1", "n1");
	vm_start(f, 1, "web1", "n2");
	standby(f, "n3");
	g_autoptr(test_answer) before = NULL;
	json_int_t version = json_integer_value(json_object_get(get_vm(f, 1, "web1", &before), "version"));

#define BAD_MIGRATE(vm, body, status, error) \
	{ 1, "POST", "/api/v1/vms/" vm "/migrate", body, status, error }
	static const refusal bad[] = {
		BAD_MIGRATE("idle1", "{}", 409, "VM idle1 is not running on its node (it is shut off); only a running VM migrates live."),
		BAD_MIGRATE("web9", "{}", 404, "VM 'web9' is not defined."),
		BAD_MIGRATE("web1", "{\"node\":\"n9\"}", 404, "Node 'n9' is not defined."),
		BAD_MIGRATE("web1", "{\"node\":\"n2\"}", 409, "VM web1 cannot be migrated to node n2: the VM is there already."),
		BAD_MIGRATE("web1", "{\"node\":\"n3\"}", 409, "VM web1 cannot be migrated to node n3: not online."),
		BAD_MIGRATE("db1", "{\"node\":\"n2\"}", 409, "VM db1 cannot be migrated to node n2: the VM is bound to another node (sticky)."),
		BAD_MIGRATE("db1", "{}", 409, "VM db1 has nowhere to migrate to from node n1: its sticky node cannot take it now."),
		BAD_MIGRATE("web1", "{\"node\":3}", 400, "node"),
		BAD_MIGRATE("web1", "{\"wait\":\"soon\"}", 400, "wait"),
		BAD_MIGRATE("web1", "{\"to\":\"n1\"}", 400, "Unknown field 'to' (known: node, wait)"),
		BAD_MIGRATE("web1", "[1]", 400, ""),
	};
#undef BAD_MIGRATE
	EXPECT_REFUSALS(f, bad);
	g_assert_cmpstr(vm_runs_where(f, uuid), ==, "n2");
	g_assert_cmpstr(vm_runs_where(f, bound), ==, "n1");
	g_assert_null(vm_runs_where(f, stopped));
	g_assert_null(vm_stored(f, 1, uuid)->move_to);
	g_autoptr(test_answer) keep = NULL;
	g_assert_cmpint(json_integer_value(json_object_get(get_vm(f, 1, "web1", &keep), "version")), ==, version);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", uuid), ==, 0);
}

/* While a live move runs, its destination stays: a second migrate is
 * refused by the API, and a change that would redirect it by the store
 * (for every caller: here a switchover, which moves every VM of n2). */
static void test_migrate_destination_kept(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	testvirt_hold(f->n[2]->virt, true);
	g_autoptr(test_answer) a = vm_action(f, 1, "web1", "migrate", "{s:s}", "node", "n3");
	test_expect(a, 200);
	TEST_WAIT(testvirt_state(f->n[2]->virt, uuid) == HERD_VM_MIGRATING);
	g_autoptr(test_answer) again = vm_action(f, 2, "web1", "migrate", "{s:s}", "node", "n1");
	test_expect_error(again, 409, "VM web1 is being moved to node n3 already (live); wait until that move has ended.");
	g_autoptr(json_t) redirect = store_vm_cmd_migrate(uuid, "n1", false);
	expect_submit_conflict(f, 1, redirect,
			       "VM web1 is being migrated live to node n3: it gets no other destination until that migration has ended.");
	g_autoptr(test_answer) sw = test_requestf(f->n[1], "POST", "/api/v1/nodes/n2/switchover", "{s:s}", "to", "n1");
	test_expect_error(sw, 409, "VM web1 is being migrated live to node n3");
	g_assert_cmpstr(vm_stored(f, 3, uuid)->move_to, ==, "n3");
	testvirt_hold(f->n[2]->virt, false);
	TEST_WAIT(vm_runs_on(f, uuid, 3) && !vm_stored(f, 1, uuid)->move_to);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", uuid), ==, 1);
}

/* Put node @name in @mode through n1, @allow_cold or not. */
static void set_mode(fixture *f, const char *name, const char *mode, bool allow_cold)
{
	g_autofree char *path = g_strdup_printf("/api/v1/nodes/%s/mode", name);
	g_autoptr(test_answer) a = test_requestf(f->n[1], "POST", path, "{s:s,s:b}", "mode", mode,
						 "allow_cold", allow_cold);
	test_expect(a, 200);
}

/* How many times @op was asked of @uuid on any node. */
static unsigned ops_anywhere(fixture *f, const char *op, const char *uuid)
{
	unsigned n = 0;
	for (unsigned i = 1; i <= 3; i++)
		n += testvirt_count(f->n[i]->virt, op, uuid);
	return n;
}

/* Standby empties a node live; online brings its VMs back live (failback
 * to their preferred node): no VM is shut down or started again. */
static void test_standby_live(fixture *f, gconstpointer data)
{
	g_autofree char *web1 = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	g_autofree char *web2 = vm_define(f, 1, "web2", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	vm_start(f, 1, "web2", "n2");
	set_mode(f, "n2", "standby", false);
	TEST_WAIT(vm_runs_where(f, web1) && strcmp(vm_runs_where(f, web1), "n2") != 0 &&
		  vm_runs_where(f, web2) && strcmp(vm_runs_where(f, web2), "n2") != 0 &&
		  !vm_stored(f, 1, web1)->move_to && !vm_stored(f, 1, web2)->move_to);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", web1), ==, 1);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", web2), ==, 1);
	set_mode(f, "n2", "online", false);
	TEST_WAIT(vm_runs_on(f, web1, 2) && vm_runs_on(f, web2, 2) && !vm_stored(f, 1, web1)->move_to &&
		  !vm_stored(f, 1, web2)->move_to);
	g_assert_cmpuint(ops_anywhere(f, "migrate", web1), ==, 2);
	g_assert_cmpuint(ops_anywhere(f, "migrate", web2), ==, 2);
	g_assert_cmpuint(ops_anywhere(f, "shutdown", web1) + ops_anywhere(f, "destroy", web1), ==, 0);
	g_assert_cmpuint(ops_anywhere(f, "start", web1), ==, 1);
	g_assert_cmpuint(ops_anywhere(f, "start", web2), ==, 1);
}

/* A VM without a preferred node that left a node for maintenance goes
 * back to it, live, once it is online (return_after_maintenance): the store
 * records where it came from, and forgets it once it is back. */
static void test_maintenance_return(fixture *f, gconstpointer data)
{
	g_autofree char *web1 = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	g_autoptr(test_answer) cleared = test_requestf(f->n[1], "PUT", "/api/v1/vms/web1", "{s:n}", "preferred");
	test_expect(cleared, 200);
	set_mode(f, "n2", "maintenance", false);
	TEST_WAIT(vm_runs_where(f, web1) && strcmp(vm_runs_where(f, web1), "n2") != 0 &&
		  !vm_stored(f, 1, web1)->move_to);
	g_assert_cmpstr(vm_stored(f, 3, web1)->return_to, ==, "n2");
	set_mode(f, "n2", "online", false);
	TEST_WAIT(vm_runs_on(f, web1, 2) && !vm_stored(f, 1, web1)->move_to && !vm_stored(f, 1, web1)->return_to);
	g_assert_cmpuint(ops_anywhere(f, "migrate", web1), ==, 2);
	g_assert_cmpuint(ops_anywhere(f, "shutdown", web1) + ops_anywhere(f, "destroy", web1), ==, 0);
	g_assert_cmpuint(ops_anywhere(f, "start", web1), ==, 1);
	/* An operator's move ends a pending return. */
	set_mode(f, "n2", "standby", false);
	TEST_WAIT(vm_runs_where(f, web1) && strcmp(vm_runs_where(f, web1), "n2") != 0 &&
		  !vm_stored(f, 1, web1)->move_to);
	g_assert_cmpstr(vm_stored(f, 1, web1)->return_to, ==, "n2");
	const char *to = strcmp(vm_runs_where(f, web1), "n1") == 0 ? "n3" : "n1";
	g_autoptr(test_answer) moved = vm_action(f, 1, "web1", "migrate", "{s:s}", "node", to);
	test_expect(moved, 200);
	TEST_WAIT(vm_runs_on(f, web1, to[1] - '0') && !vm_stored(f, 1, web1)->move_to);
	g_assert_null(vm_stored(f, 1, web1)->return_to);
}

/* A VM that cannot migrate live stays on a node in standby, named with
 * the reason; with allow_cold it moves with a restart. */
static void test_standby_cannot_migrate(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	testvirt_fail_migrate(f->n[2]->virt, uuid, "Unsafe migration: Migration without shared storage is unsafe");
	set_mode(f, "n2", "standby", false);
	TEST_WAIT(vm_shows(f, 1, "web1", "alert",
			   "VM web1 cannot leave node n2 (standby mode) live: Unsafe migration: Migration without shared "
			   "storage is unsafe. 'herd node standby n2 --allow-cold' moves it with a restart."));
	g_assert_cmpstr(vm_runs_where(f, uuid), ==, "n2");
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", uuid), ==, 1);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "shutdown", uuid), ==, 0);
	testvirt_fail_migrate(f->n[2]->virt, uuid, "Unsafe migration: Migration without shared storage is unsafe");
	set_mode(f, "n2", "standby", true);
	TEST_WAIT(vm_runs_where(f, uuid) && strcmp(vm_runs_where(f, uuid), "n2") != 0 &&
		  !vm_stored(f, 1, uuid)->move_to);
	/* Tried live again first (a new mode lets it), then cold. */
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "migrate", uuid), ==, 2);
	g_assert_cmpuint(testvirt_count(f->n[2]->virt, "shutdown", uuid), ==, 1);
	g_assert_cmpuint(ops_anywhere(f, "start", uuid), ==, 2);
}

/* A migration is a job (api/job.c): its answer shows it, every node lists
 * it; cancelling it is recorded once; bad ids are refused.  A standby of a
 * node with VMs is a job too.  (herdd's job runner, which follows and ends
 * them, is not in this process: tests/cluster/test_jobs.py.) */
static void test_migration_job(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "preferred", "n2");
	vm_start(f, 1, "web1", "n2");
	testvirt_hold(f->n[2]->virt, true);
	g_autoptr(test_answer) a = vm_action(f, 1, "web1", "migrate", "{s:s}", "node", "n3");
	json_t *job = json_object_get(test_expect(a, 200), "job");
	g_assert_cmpstr(str(job, "kind"), ==, "migrate");
	g_assert_cmpstr(str(job, "target"), ==, "web1");
	g_assert_cmpstr(str(job, "to"), ==, "n3");
	g_assert_cmpstr(str(job, "node"), ==, "n2");
	g_assert_cmpstr(str(job, "state"), ==, "running");
	g_assert_true(json_is_true(json_object_get(job, "cancellable")));
	g_autofree char *name = g_strdup(str(job, "name"));
	g_autofree char *path = g_strdup_printf("/api/v1/jobs/%s", name);
	g_autoptr(test_answer) list = test_request(f->n[3], "GET", "/api/v1/jobs", NULL);
	json_t *jobs = test_expect(list, 200);
	g_assert_cmpuint(json_array_size(jobs), ==, 1);
	g_assert_cmpstr(str(json_array_get(jobs, 0), "name"), ==, name);
	g_autoptr(test_answer) one = test_request(f->n[2], "GET", path, NULL);
	json_t *log = json_object_get(test_expect(one, 200), "log");
	g_assert_cmpuint(json_array_size(log), ==, 1);
	g_assert_nonnull(strstr(str(json_array_get(log, 0), "text"), "to migrate VM web1 live from node n2 to node n3"));

	g_autofree char *cancel = g_strdup_printf("/api/v1/jobs/%s/cancel", name);
	g_autoptr(test_answer) c = test_request(f->n[3], "POST", cancel, NULL);
	json_t *cj = test_expect(c, 202);
	g_assert_nonnull(str(cj, "cancel_by"));
	g_autoptr(test_answer) again = test_request(f->n[1], "POST", cancel, NULL);
	test_expect_error(again, 409, "is being cancelled already");
	g_autoptr(test_answer) unknown = test_request(f->n[1], "GET", "/api/v1/jobs/nosuch", NULL);
	test_expect_error(unknown, 404, "Job 'nosuch' is not defined.");
	g_autoptr(test_answer) unknown_cancel = test_request(f->n[1], "POST", "/api/v1/jobs/nosuch/cancel", NULL);
	test_expect_error(unknown_cancel, 404, "Job 'nosuch' is not defined.");
	g_autoptr(test_answer) bad = test_request(f->n[1], "GET", "/api/v1/jobs?all=maybe", NULL);
	test_expect_error(bad, 400, "Parameter 'all' is true or false, not 'maybe'.");
	testvirt_hold(f->n[2]->virt, false);

	/* n1 has no VM: no job; n2 has web1 (assigned there still, or n3
	 * after the move): a standby of the node it is on is a job. */
	g_autoptr(test_answer) empty = test_requestf(f->n[1], "POST", "/api/v1/nodes/n1/mode", "{s:s}", "mode",
						     "standby");
	g_assert_null(json_object_get(test_expect(empty, 200), "job"));
	TEST_WAIT(vm_shows(f, 1, "web1", "assigned", "n2") || vm_shows(f, 1, "web1", "assigned", "n3"));
	g_autoptr(test_answer) keep = NULL;
	const char *on = str(get_vm(f, 1, "web1", &keep), "assigned");
	g_autofree char *mode = g_strdup_printf("/api/v1/nodes/%s/mode", on);
	g_autoptr(test_answer) s = test_requestf(f->n[1], "POST", mode, "{s:s}", "mode", "maintenance");
	json_t *ej = json_object_get(test_expect(s, 200), "job");
	g_assert_cmpstr(str(ej, "kind"), ==, "evacuate");
	g_assert_cmpstr(str(ej, "target"), ==, on);
	g_assert_cmpstr(str(ej, "node"), ==, on);
	g_autoptr(test_answer) all = test_request(f->n[2], "GET", "/api/v1/jobs?all=true", NULL);
	g_assert_cmpuint(json_array_size(test_expect(all, 200)), ==, 2);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/vms/migrate/to-node", test_migrate_to_node, NULL);
	api_test_add("/api/vms/migrate/scheduler-chooses", test_migrate_scheduler_chooses, NULL);
	api_test_add("/api/vms/migrate/fails", test_migrate_fails, NULL);
	api_test_add("/api/vms/migrate/poweroff-during-move", test_poweroff_during_move, NULL);
	api_test_add("/api/vms/migrate/refused", test_migrate_refused, NULL);
	api_test_add("/api/vms/migrate/destination-kept", test_migrate_destination_kept, NULL);
	api_test_add("/api/nodes/standby-live", test_standby_live, NULL);
	api_test_add("/api/jobs/migration", test_migration_job, NULL);
	api_test_add("/api/nodes/standby-cannot-migrate", test_standby_cannot_migrate, NULL);
	api_test_add("/api/nodes/maintenance-return", test_maintenance_return, "{\"failback_after_s\": 0}");
	return g_test_run();
}
