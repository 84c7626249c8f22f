#include "test_api.h"

#include "common/tls.h"
#include "store/node.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* A cluster per test                                                  */

typedef struct {
	api_test_fn fn;
	const char *settings;
} api_test;

static void setup(gpointer fp, gconstpointer data)
{
	fixture *f = fp;
	const api_test *t = data;
	g_autoptr(json_t) settings = t->settings ? json_loads(t->settings, 0, NULL) : NULL;
	g_assert_true(!t->settings || settings);
	test_log_clear();
	f->tc = testcluster_new(3, settings);
	for (unsigned i = 1; i <= 3; i++)
		f->n[i] = testcluster_node(f->tc, i);
}

static void run(gpointer fp, gconstpointer data)
{
	const api_test *t = data;
	t->fn(fp, NULL);
}

static void teardown(gpointer fp, gconstpointer data)
{
	fixture *f = fp;
	g_clear_pointer(&f->tc, testcluster_free);
	test_log_clear();
}

void api_test_add(const char *path, api_test_fn fn, const char *settings)
{
	/* Lives as long as the test program. */
	static GPtrArray *tests;
	if (!tests)
		tests = g_ptr_array_new_with_free_func(g_free);
	api_test *t = g_new0(api_test, 1);
	t->fn = fn;
	t->settings = settings;
	g_ptr_array_add(tests, t);
	g_test_add_vtable(path, sizeof(fixture), t, setup, run, teardown);
}

void expect_refusals(fixture *f, const refusal *refusals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const refusal *r = &refusals[i];
		g_autoptr(test_answer) a = test_call_finish(test_call_start_raw(
			f->n[r->node], r->method, r->path, r->body, "admin", TESTNODE_PASSWORD));
		test_expect_error(a, r->status, r->error);
	}
}

/* ------------------------------------------------------------------ */
/* VMs                                                                 */

char *vm_xml(const char *name, const char *uuid, unsigned memory_mib)
{
	return g_strdup_printf("<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
			       "<memory unit='MiB'>%u</memory><vcpu>1</vcpu>"
			       "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>",
			       name, uuid, memory_mib);
}

char *vm_define(fixture *f, unsigned node, const char *name, const char *fmt, ...)
{
	g_autoptr(json_t) body = json_object();
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		json_t *attrs = json_vpack_ex(NULL, 0, fmt, ap);
		va_end(ap);
		g_assert_nonnull(attrs);
		json_object_update(body, attrs);
		json_decref(attrs);
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	g_autofree char *xml = vm_xml(name, uuid, 64);
	json_object_set_new(body, "xml", json_string(xml));
	g_autoptr(test_answer) a = test_request(f->n[node], "POST", "/api/v1/vms", body);
	json_t *j = test_expect(a, 201);
	g_assert_cmpstr(json_string_value(json_object_get(j, "name")), ==, name);
	g_assert_cmpstr(json_string_value(json_object_get(j, "uuid")), ==, uuid);
	return g_strdup(uuid);
}

void vm_start(fixture *f, unsigned node, const char *name, const char *where)
{
	g_autofree char *path = g_strdup_printf("/api/v1/vms/%s/start", name);
	g_autoptr(test_answer) a = test_request(f->n[node], "POST", path, NULL);
	json_t *j = test_expect(a, 200);
	g_assert_cmpstr(json_string_value(json_object_get(j, "state")), ==, "running");
	g_assert_cmpstr(json_string_value(json_object_get(j, "target")), ==, "running");
	g_assert_cmpstr(json_string_value(json_object_get(j, "node")), ==, where);
	g_assert_cmpstr(json_string_value(json_object_get(j, "assigned")), ==, where);
	/* The answer means it: that node's hypervisor runs it. */
	g_assert_cmpstr(vm_runs_where(f, json_string_value(json_object_get(j, "uuid"))), ==, where);
}

void reach_all(fixture *f)
{
	for (unsigned i = 1; i < G_N_ELEMENTS(f->n); i++) {
		if (!f->n[i])
			continue;
		store_state *st = herd_cluster_state(f->n[i]->cluster);
		g_autoptr(json_t) reach = json_object();
		const store_kind kinds[] = { STORE_KIND_STORAGE, STORE_KIND_NETWORK };
		for (unsigned k = 0; k < G_N_ELEMENTS(kinds); k++) {
			GHashTableIter it;
			gpointer uuid;
			g_hash_table_iter_init(&it, st->by_uuid[kinds[k]]);
			while (g_hash_table_iter_next(&it, &uuid, NULL))
				json_object_set_new(reach, uuid, json_pack("{s:b}", "ok", 1));
		}
		g_autoptr(json_t) usage = json_object();
		herd_ha_set_reach(f->n[i]->ha, reach, usage);
	}
}

const store_vm *vm_stored(fixture *f, unsigned node, const char *uuid)
{
	store_object *vm = store_state_get(herd_cluster_state(f->n[node]->cluster), STORE_KIND_VM, uuid);
	return vm ? store_vm_of(vm) : NULL;
}

bool vm_runs_on(fixture *f, const char *uuid, unsigned node)
{
	return testvirt_state(f->n[node]->virt, uuid) == HERD_VM_RUNNING;
}

const char *vm_runs_where(fixture *f, const char *uuid)
{
	const char *where = NULL;
	for (unsigned i = 1; i <= 3; i++) {
		herd_vm_state s = testvirt_state(f->n[i]->virt, uuid);
		/* An arriving live migration is not a copy that runs. */
		if (s == HERD_VM_STOPPED || s == HERD_VM_CRASHED || s == HERD_VM_INCOMING)
			continue;
		if (where)
			g_error("VM %s is active on %s and %s", uuid, where, f->n[i]->name);
		where = f->n[i]->name;
	}
	return where;
}

/* ------------------------------------------------------------------ */
/* Fencing                                                             */

test_answer *fence_device_add(fixture *f, unsigned node, const char *name, const char *plugs_fmt, ...)
{
	va_list ap;
	va_start(ap, plugs_fmt);
	json_t *plugs = json_vpack_ex(NULL, 0, plugs_fmt, ap);
	va_end(ap);
	g_assert_nonnull(plugs);
	json_t *params = testcluster_fence_params(f->tc);
	json_object_set_new(params, "password", json_string("s3cret"));
	g_autoptr(json_t) body = json_pack("{s:s,s:s,s:o,s:o}", "name", name, "agent", "fence_test",
					   "params", params, "plugs", plugs);
	return test_request(f->n[node], "POST", "/api/v1/fence-devices", body);
}

void expect_submit_conflict(fixture *f, unsigned node, json_t *cmd, const char *message)
{
	g_autoptr(GError) err = NULL;
	g_assert_false(herd_cluster_submit(f->n[node]->cluster, cmd, NULL, NULL, NULL, &err));
	g_assert_error(err, HERD_ERROR, HERD_ERR_CONFLICT);
	g_assert_cmpstr(err->message, ==, message);
}

bool lost_nodes_are(fixture *f, unsigned node, const char *names)
{
	g_autoptr(GPtrArray) lost = herd_ha_unfenced_lost(f->n[node]->ha);
	g_ptr_array_add(lost, NULL);
	g_autofree char *joined = g_strjoinv(",", (char **)lost->pdata);
	return strcmp(joined, names ? names : "") == 0;
}

bool node_down_cleared(fixture *f, const char *name)
{
	for (unsigned i = 1; i <= 3; i++) {
		if (!f->n[i]->powered)
			continue;
		store_object *n = store_state_get_by_name(herd_cluster_state(f->n[i]->cluster),
							  STORE_KIND_NODE, name);
		if (!n || store_node_of(n)->down)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Nodes                                                               */

json_t *join_request(const char *name, const char *link, long long protocol)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *csr = NULL, *key = NULL;
	g_assert_true(herd_tls_make_csr(name, &csr, &key, &err));
	return json_pack("{s:s,s:[s],s:s,s:I}", "name", name, "links", link, "csr", csr, "protocol",
			 (json_int_t)protocol);
}

json_t *get_vm(fixture *f, unsigned node, const char *ref, test_answer **keep)
{
	g_autofree char *path = g_strdup_printf("/api/v1/vms/%s", ref);
	*keep = test_request(f->n[node], "GET", path, NULL);
	return test_expect(*keep, 200);
}

test_answer *vm_action(fixture *f, unsigned node, const char *vm, const char *action,
		       const char *fmt, ...)
{
	g_autofree char *path = g_strdup_printf("/api/v1/vms/%s/%s", vm, action);
	g_autoptr(json_t) body = NULL;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		body = json_vpack_ex(NULL, 0, fmt, ap);
		va_end(ap);
		g_assert_nonnull(body);
	}
	return test_request(f->n[node], "POST", path, body);
}

const char *str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

void esan_set_states(fixture *f, const char *name, store_replica_state a, store_replica_state b)
{
	store_object *o = store_state_get_by_name(herd_cluster_state(f->n[1]->cluster), STORE_KIND_DISK, name);
	store_replica_state states[2] = { a, b };
	g_autoptr(json_t) cmd = store_disk_cmd_replicas(o, states);
	testnode_commit(f->n[1], cmd);
}

bool vm_shows(fixture *f, unsigned node, const char *vm, const char *key, const char *want)
{
	g_autoptr(test_answer) keep = NULL;
	return g_strcmp0(str(get_vm(f, node, vm, &keep), key), want) == 0;
}
