/*
 * GET /api/v1/vms written in slices (api/vm_list.h): the answer is the
 * list of every VM as it was when the request came, in name order, however
 * the store and the VMs change while it is written; a server freed, or a
 * client gone, while a list is under way is neither a crash nor a leak
 * (the sanitizer build checks).  The lists here are written a few VMs a
 * slice, so that they are under way for many main-loop iterations.
 */
#include "api/vm_json.h"
#include "api/vm_list.h"
#include "store/command.h"
#include "test_api.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define VMS 120

/* n1's VM of number @i as its store has it. */
static store_object *vm_number(fixture *f, unsigned i)
{
	char uuid[37];
	testcluster_vm_uuid(i, uuid);
	return store_state_get(herd_cluster_state(f->n[1]->cluster), STORE_KIND_VM, uuid);
}

/* Run @cmd of VM number @i through n1. */
typedef json_t *(*vm_cmd_fn)(const store_object *vm);
static json_t *cmd_of(fixture *f, unsigned i, vm_cmd_fn fn)
{
	store_object *vm = vm_number(f, i);
	g_assert_nonnull(vm);
	return fn(vm);
}

/* @fn's commands for VMs @first to @last, appended to @ops. */
static void cmds_of(json_t *ops, fixture *f, unsigned first, unsigned last, vm_cmd_fn fn)
{
	for (unsigned i = first; i <= last; i++)
		json_array_append_new(ops, cmd_of(f, i, fn));
}

static json_t *cmd_stop(const store_object *vm)
{
	return store_vm_cmd_stop(vm, true);
}

static json_t *cmd_prefer_n3(const store_object *vm)
{
	store_vm_attrs attrs = { .set = STORE_VM_SET_PREFERRED, .preferred = "n3" };
	return store_vm_cmd_set(vm, &attrs);
}

/* The list's entries by name; fails unless it is a list in name order
 * without a name twice. */
static GHashTable *by_name(json_t *list)
{
	g_assert_true(json_is_array(list));
	GHashTable *out = g_hash_table_new(g_str_hash, g_str_equal);
	const char *last = "";
	size_t i;
	json_t *vm;
	json_array_foreach(list, i, vm) {
		const char *name = json_string_value(json_object_get(vm, "name"));
		g_assert_nonnull(name);
		g_assert_cmpstr(last, <, name);
		g_hash_table_insert(out, (gpointer)name, vm);
		last = name;
	}
	return out;
}

/* Start a list from n1, written @per_slice VMs a slice; under way when it returns. */
static test_call *list_start(fixture *f, unsigned per_slice)
{
	api_vm_lists_set_slice_limit(&f->n[1]->ctx, per_slice);
	test_call *c = test_call_start(f->n[1], "GET", "/api/v1/vms", NULL);
	TEST_WAIT(api_vm_lists_under_way(&f->n[1]->ctx) == 1);
	return c;
}

/* Every VM, as the store has it, written slice by slice as at once. */
static void test_every_vm(fixture *f, gconstpointer data)
{
	testcluster_define_vms(f->tc, 0, VMS);
	vm_start(f, 1, "vm00001", "n1");
	g_autoptr(test_answer) at_once = test_request(f->n[1], "GET", "/api/v1/vms", NULL);
	g_assert_cmpuint(api_vm_lists_under_way(&f->n[1]->ctx), ==, 0);
	g_autoptr(test_answer) sliced = test_call_finish(list_start(f, 7));
	json_t *list = test_expect(sliced, 200);
	g_assert_cmpuint(json_array_size(list), ==, VMS);
	g_autoptr(GHashTable) names = by_name(list);
	g_autoptr(GPtrArray) stored = store_state_list(herd_cluster_state(f->n[1]->cluster), STORE_KIND_VM);
	g_assert_cmpuint(stored->len, ==, VMS);
	for (guint i = 0; i < stored->len; i++) {
		store_object *vm = stored->pdata[i];
		json_t *shown = g_hash_table_lookup(names, vm->name);
		g_assert_nonnull(shown);
		g_assert_cmpstr(json_string_value(json_object_get(shown, "uuid")), ==, vm->uuid);
		g_assert_cmpint(json_integer_value(json_object_get(shown, "version")), ==, (json_int_t)vm->version);
		g_assert_cmpstr(json_string_value(json_object_get(shown, "state")), ==,
				i == 0 ? "running" : "shut off");
	}
	/* The same text as a list written at once (but for uptimes). */
	json_t *whole = test_expect(at_once, 200);
	g_assert_cmpuint(json_array_size(whole), ==, VMS);
	for (size_t i = 0; i < VMS; i++) {
		json_t *a = json_array_get(whole, i), *b = json_array_get(list, i);
		json_object_del(a, "uptime_s");
		json_object_del(b, "uptime_s");
		g_assert_true(json_equal(a, b));
	}
}

/* Changes committed while a list is written are not in it: neither VMs
 * defined or undefined, nor new versions, nor a VM's stop. */
static void test_one_snapshot(fixture *f, gconstpointer data)
{
	testcluster_define_vms(f->tc, 0, VMS);
	vm_start(f, 1, "vm00001", "n1");
	json_int_t version2 = (json_int_t)vm_number(f, 2)->version;
	/* Taken, not written until the changes are in. */
	api_vm_lists_hold(&f->n[1]->ctx, true);
	test_call *c = list_start(f, 1);
	json_t *ops = json_array();
	cmds_of(ops, f, 2, 11, cmd_prefer_n3);
	cmds_of(ops, f, 12, 21, store_vm_cmd_undefine);
	json_array_append_new(ops, cmd_of(f, 1, cmd_stop));
	g_autoptr(json_t) batch = store_cmd_batch(ops);
	testnode_commit(f->n[1], batch);
	testcluster_define_vms(f->tc, VMS, 10);
	/* The stop reaches n1's hypervisor, and the facts every node has. */
	char uuid1[37];
	testcluster_vm_uuid(1, uuid1);
	TEST_WAIT(!herd_ha_vm_active(f->n[1]->ha, uuid1, NULL));
	g_assert_cmpuint(api_vm_lists_under_way(&f->n[1]->ctx), ==, 1);
	api_vm_lists_hold(&f->n[1]->ctx, false);

	g_autoptr(test_answer) a = test_call_finish(c);
	json_t *list = test_expect(a, 200);
	g_assert_cmpuint(json_array_size(list), ==, VMS);
	g_autoptr(GHashTable) names = by_name(list);
	g_assert_null(g_hash_table_lookup(names, "vm00121"));
	g_assert_nonnull(g_hash_table_lookup(names, "vm00012"));
	json_t *vm1 = g_hash_table_lookup(names, "vm00001");
	g_assert_cmpstr(json_string_value(json_object_get(vm1, "state")), ==, "running");
	g_assert_cmpstr(json_string_value(json_object_get(vm1, "target")), ==, "running");
	json_t *vm2 = g_hash_table_lookup(names, "vm00002");
	g_assert_cmpint(json_integer_value(json_object_get(vm2, "version")), ==, version2);
	g_assert_cmpstr(json_string_value(json_object_get(vm2, "preferred")), ==, "n2");

	/* The next list has it all. */
	api_vm_lists_set_slice_limit(&f->n[1]->ctx, 0);
	g_autoptr(test_answer) after = test_request(f->n[1], "GET", "/api/v1/vms", NULL);
	g_autoptr(GHashTable) now = by_name(test_expect(after, 200));
	g_assert_cmpuint(g_hash_table_size(now), ==, VMS);
	g_assert_nonnull(g_hash_table_lookup(now, "vm00121"));
	g_assert_null(g_hash_table_lookup(now, "vm00012"));
	g_assert_cmpstr(json_string_value(json_object_get(g_hash_table_lookup(now, "vm00001"), "state")),
			==, "shut off");
	g_assert_cmpstr(json_string_value(json_object_get(g_hash_table_lookup(now, "vm00002"), "preferred")),
			==, "n3");
}

/* Lists under way when the node stops are answered that it shuts down. */
static void test_server_freed(fixture *f, gconstpointer data)
{
	testcluster_define_vms(f->tc, 0, VMS);
	vm_start(f, 1, "vm00001", "n1");
	api_vm_lists_hold(&f->n[1]->ctx, true);
	test_call *first = test_call_start(f->n[1], "GET", "/api/v1/vms", NULL);
	test_call *second = test_call_start(f->n[1], "GET", "/api/v1/vms", NULL);
	TEST_WAIT(api_vm_lists_under_way(&f->n[1]->ctx) == 2);
	g_clear_pointer(&f->tc, testcluster_free);
	g_autoptr(test_answer) a = test_call_finish(first);
	g_autoptr(test_answer) b = test_call_finish(second);
	test_expect_error(a, 503, "shutting down");
	test_expect_error(b, 503, "shutting down");
}

/* A client that goes away while its list is written: the list is written
 * to the end and goes nowhere; the next one is whole. */
static void test_client_gone(fixture *f, gconstpointer data)
{
	testcluster_define_vms(f->tc, 0, VMS);
	api_vm_lists_set_slice_limit(&f->n[1]->ctx, 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(fd, >=, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	g_strlcpy(addr.sun_path, f->n[1]->socket_path, sizeof(addr.sun_path));
	g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
	const char *cred = "admin:" TESTNODE_PASSWORD;
	g_autofree char *b64 = g_base64_encode((const guchar *)cred, strlen(cred));
	g_autofree char *request = g_strdup_printf(
		"GET /api/v1/vms HTTP/1.1\r\nHost: herd\r\nAuthorization: Basic %s\r\n\r\n", b64);
	g_assert_cmpint(write(fd, request, strlen(request)), ==, (ssize_t)strlen(request));
	TEST_WAIT(api_vm_lists_under_way(&f->n[1]->ctx) == 1);
	close(fd);
	TEST_WAIT(api_vm_lists_under_way(&f->n[1]->ctx) == 0);
	g_autoptr(test_answer) a = test_request(f->n[1], "GET", "/api/v1/vms", NULL);
	g_assert_cmpuint(json_array_size(test_expect(a, 200)), ==, VMS);
}

/* The list keeps each VM's configuration with keys of one byte: written
 * out, the same bytes as written as JSON, whatever the VM has (a node
 * set, failures, a move under way, strings that need escaping). */
static void test_kept_text(fixture *f, gconstpointer data)
{
	testcluster_define_vms(f->tc, 0, 6);
	json_t *ops = json_array();
	g_autoptr(json_t) nodeset = json_pack("[{s:s,s:i},{s:s,s:i}]", "node", "n2", "priority", 2,
					      "node", "n3", "priority", 1);
	store_vm_attrs attrs = { .set = STORE_VM_SET_NODESET | STORE_VM_SET_GROUP | STORE_VM_SET_PREFERRED |
					STORE_VM_SET_RESTRICTED | STORE_VM_SET_PRIORITY,
				 .nodeset = nodeset, .group = "web", .preferred = "n3", .restricted = true,
				 .restart_priority = STORE_VM_PRIORITY_HIGH };
	json_array_append_new(ops, store_vm_cmd_set(vm_number(f, 2), &attrs));
	char uuid[37];
	store_vm_failure failed = { .node = "n1", .count = 2, .error = "no \"memory\"\n\ttab {x}" };
	testcluster_vm_uuid(3, uuid);
	json_array_append_new(ops, store_vm_cmd_assign(uuid, "n2", &failed));
	testcluster_vm_uuid(4, uuid);
	json_array_append_new(ops, store_vm_cmd_assign(uuid, "n1", NULL));
	json_array_append_new(ops, store_vm_cmd_migrate(uuid, "n3", true));
	testcluster_vm_uuid(5, uuid);
	json_array_append_new(ops, store_vm_cmd_assign(uuid, "n1", NULL));
	json_array_append_new(ops, store_vm_cmd_move(uuid, "n2"));
	g_autoptr(json_t) batch = store_cmd_batch(ops);
	testnode_commit(f->n[1], batch);

	json_keys keys;
	api_vm_config_keys_init(&keys);
	g_autoptr(GPtrArray) vms = store_state_list(herd_cluster_state(f->n[1]->cluster), STORE_KIND_VM);
	g_assert_cmpuint(vms->len, ==, 6);
	unsigned with_nodes = 0, with_failed = 0, moving = 0;
	for (guint i = 0; i < vms->len; i++) {
		g_autoptr(GString) plain = g_string_new(NULL), keyed = g_string_new(NULL);
		g_autoptr(GString) want = g_string_new(NULL), got = g_string_new(NULL);
		json_writer w;
		json_writer_init(&w, want);
		json_writer_object_begin(&w);
		api_vm_config_write(&w, vms->pdata[i]);
		json_writer_object_end(&w);
		json_writer_init_keyed(&w, keyed, &keys);
		api_vm_config_write(&w, vms->pdata[i]);
		g_assert_cmpuint(keyed->len, <, want->len / 2);
		json_writer_init(&w, got);
		json_writer_object_begin(&w);
		json_writer_members_keyed(&w, keyed->str, keyed->len,
					  json_keyed_len(keyed->str, keyed->len, &keys), &keys);
		json_writer_object_end(&w);
		g_assert_cmpstr(got->str, ==, want->str);
		with_nodes += strstr(want->str, "\"priority\":2") != NULL;
		with_failed += strstr(want->str, "\"count\":2") != NULL;
		moving += strstr(want->str, "\"move_to\"") != NULL;
	}
	g_assert_cmpuint(with_nodes, ==, 1);
	g_assert_cmpuint(with_failed, ==, 1);
	g_assert_cmpuint(moving, ==, 2);
}

/* The texts a list keeps serve the next one only for the same objects:
 * after changes, undefines, VMs defined again under their old names and
 * new ones, a list shows each VM as the store has it. */
static void test_kept_across_changes(fixture *f, gconstpointer data)
{
	testcluster_define_vms(f->tc, 0, 30);
	g_autoptr(test_answer) first = test_call_finish(list_start(f, 4));
	g_assert_cmpuint(json_array_size(test_expect(first, 200)), ==, 30);
	json_t *ops = json_array();
	cmds_of(ops, f, 5, 8, cmd_prefer_n3);
	cmds_of(ops, f, 1, 2, store_vm_cmd_undefine);
	cmds_of(ops, f, 10, 12, store_vm_cmd_undefine);
	cmds_of(ops, f, 30, 30, store_vm_cmd_undefine);
	g_autoptr(json_t) batch = store_cmd_batch(ops);
	testnode_commit(f->n[1], batch);
	/* vm00010…12 again (new objects, the old names), vm00031…33 new. */
	testcluster_define_vms(f->tc, 9, 3);
	testcluster_define_vms(f->tc, 30, 3);
	for (int round = 0; round < 2; round++) {
		g_autoptr(test_answer) again = test_call_finish(list_start(f, round ? 1 : 5));
		json_t *list = test_expect(again, 200);
		g_autoptr(GPtrArray) stored = store_state_list(herd_cluster_state(f->n[1]->cluster), STORE_KIND_VM);
		g_assert_cmpuint(stored->len, ==, 30 - 6 + 6);
		g_assert_cmpuint(json_array_size(list), ==, stored->len);
		for (guint i = 0; i < stored->len; i++) {
			g_autoptr(GString) text = g_string_new(NULL);
			json_writer w;
			json_writer_init(&w, text);
			json_writer_object_begin(&w);
			api_vm_config_write(&w, stored->pdata[i]);
			json_writer_object_end(&w);
			g_autoptr(json_t) want = json_loads(text->str, 0, NULL);
			json_t *shown = json_deep_copy(json_array_get(list, i));
			const char *runtime[] = { "state", "node", "since_ms", "error", "alert", "uptime_s" };
			for (guint r = 0; r < G_N_ELEMENTS(runtime); r++)
				json_object_del(shown, runtime[r]);
			g_assert_true(json_equal(shown, want));
			json_decref(shown);
		}
	}
}

/* The texts a list keeps hold their VMs' objects: once the store has
 * replaced or dropped one, the sweep lets it go. */
static void test_kept_swept(fixture *f, gconstpointer data)
{
	testcluster_define_vms(f->tc, 0, 20);
	g_autoptr(test_answer) first = test_request(f->n[1], "GET", "/api/v1/vms", NULL);
	g_assert_cmpuint(json_array_size(test_expect(first, 200)), ==, 20);
	g_assert_cmpuint(api_vm_lists_sweep(&f->n[1]->ctx), ==, 20);
	store_object *old = store_object_ref(vm_number(f, 3));
	json_t *ops = json_array();
	cmds_of(ops, f, 3, 6, cmd_prefer_n3);
	cmds_of(ops, f, 7, 7, store_vm_cmd_undefine);
	g_autoptr(json_t) batch = store_cmd_batch(ops);
	testnode_commit(f->n[1], batch);
	g_assert_true(vm_number(f, 3) != old);
	/* Replaced in the store, held by the kept texts (and us)... */
	g_assert_cmpint(g_atomic_int_get(&old->refcount), >=, 2);
	g_assert_cmpuint(api_vm_lists_sweep(&f->n[1]->ctx), ==, 20 - 5);
	/* ... and then by us alone. */
	g_assert_cmpint(g_atomic_int_get(&old->refcount), ==, 1);
	store_object_unref(old);
	/* The next list is whole and as the store has it. */
	g_autoptr(test_answer) again = test_call_finish(list_start(f, 3));
	json_t *list = test_expect(again, 200);
	g_assert_cmpuint(json_array_size(list), ==, 19);
	g_autoptr(GHashTable) names = by_name(list);
	g_assert_cmpstr(json_string_value(json_object_get(g_hash_table_lookup(names, "vm00003"), "preferred")),
			==, "n3");
	g_assert_cmpuint(api_vm_lists_sweep(&f->n[1]->ctx), ==, 19);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/vm-list/every-vm", test_every_vm, NULL);
	api_test_add("/api/vm-list/one-snapshot", test_one_snapshot, NULL);
	api_test_add("/api/vm-list/server-freed", test_server_freed, NULL);
	api_test_add("/api/vm-list/client-gone", test_client_gone, NULL);
	api_test_add("/api/vm-list/kept-text", test_kept_text, NULL);
	api_test_add("/api/vm-list/kept-across-changes", test_kept_across_changes, NULL);
	api_test_add("/api/vm-list/kept-swept", test_kept_swept, NULL);
	return g_test_run();
}
