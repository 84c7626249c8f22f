/*
 * Node sets through the API (src/api/vm.c, store/vm.c): a VM's "nodes" in
 * Proxmox HA groups' syntax or as a list, "restricted", shown highest
 * priority first; the preferred node as its simple case (one or the
 * other); bad input refused with a sentence and nothing changed.  And the
 * engine of an in-process cluster placing by them.  The HA pause setting
 * as herd status shows it.
 */
#include "test_api.h"

#include <string.h>

/* A request with the body @text (JSON). */
static test_answer *send_text(testnode *n, const char *method, const char *path, const char *text)
{
	g_autoptr(json_t) body = json_loads(text, 0, NULL);
	g_assert_nonnull(body);
	return test_request(n, method, path, body);
}

/* "n2:2,n3:2,n1:1" from a VM's JSON. */
static char *set_text(json_t *vm)
{
	GString *s = g_string_new(NULL);
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(vm, "nodes"), i, e)
		g_string_append_printf(s, "%s%s:%lld", i ? "," : "", str(e, "node"),
				       (long long)json_integer_value(json_object_get(e, "priority")));
	return g_string_free(s, FALSE);
}

static void test_set_and_show(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "nodes", "n1:1, n3:2,n2:2");
	g_autoptr(test_answer) keep = NULL;
	json_t *j = get_vm(f, 2, "web1", &keep);
	g_autofree char *text = set_text(j);
	/* Highest priority first; a tier keeps the order it was given in. */
	g_assert_cmpstr(text, ==, "n3:2,n2:2,n1:1");
	g_assert_true(json_is_false(json_object_get(j, "restricted")));
	const store_vm *v = vm_stored(f, 3, uuid);
	g_assert_cmpuint(v->n_nodeset, ==, 3);
	g_assert_cmpstr(v->nodeset[0].node, ==, "n3");
	g_assert_cmpuint(v->nodeset[2].priority, ==, 1);

	/* The list form, restricted; a node without a priority has 0. */
	g_autoptr(test_answer) a = send_text(f->n[2], "PUT", "/api/v1/vms/web1",
						"{\"nodes\":[{\"node\":\"n2\"},{\"node\":\"n1\",\"priority\":5}],\"restricted\":true}");
	j = test_expect(a, 200);
	g_autofree char *text2 = set_text(j);
	g_assert_cmpstr(text2, ==, "n1:5,n2:0");
	g_assert_true(json_is_true(json_object_get(j, "restricted")));

	/* The restriction alone, on the VM's set: off and on again. */
	g_autoptr(test_answer) off = send_text(f->n[1], "PUT", "/api/v1/vms/web1", "{\"restricted\":false}");
	g_assert_true(json_is_false(json_object_get(test_expect(off, 200), "restricted")));
	g_autoptr(test_answer) on = send_text(f->n[1], "PUT", "/api/v1/vms/web1", "{\"restricted\":true}");
	g_assert_true(json_is_true(json_object_get(test_expect(on, 200), "restricted")));

	/* Clearing the set takes the restriction with it (the CLI sends both). */
	g_autoptr(test_answer) c = send_text(f->n[3], "PUT", "/api/v1/vms/web1",
						"{\"nodes\":null,\"restricted\":false}");
	j = test_expect(c, 200);
	g_assert_cmpuint(json_array_size(json_object_get(j, "nodes")), ==, 0);
	g_assert_cmpuint(vm_stored(f, 1, uuid)->n_nodeset, ==, 0);
	g_assert_false(vm_stored(f, 1, uuid)->restricted);
}

static void test_bad_input(fixture *f, gconstpointer data)
{
	g_autofree char *uuid = vm_define(f, 1, "web1", "{s:s}", "nodes", "n2:2,n3");
	g_autofree char *other = vm_define(f, 1, "web2", "{s:s}", "preferred", "n2");
#define BAD_SET(vm, body, error) { 1, "PUT", "/api/v1/vms/" vm, body, 400, error }
	static const refusal bad[] = {
		BAD_SET("web1", "{\"nodes\":\"n2:x\"}", "The node set is invalid: 'x' after node n2 is not a priority from 0 to 1000."),
		BAD_SET("web1", "{\"nodes\":\"n2:1001\"}", "'1001' after node n2 is not a priority"),
		BAD_SET("web1", "{\"nodes\":\"n2:-1\"}", "'-1' after node n2 is not a priority"),
		BAD_SET("web1", "{\"nodes\":\"n2,,n3\"}", "The node set is invalid: entry 2 is empty."),
		BAD_SET("web1", "{\"nodes\":\"n2:1,n2:2\"}", "The node set is invalid: node n2 is named twice."),
		BAD_SET("web1", "{\"nodes\":\"n 2\"}", "The node set is invalid: entry 1:"),
		BAD_SET("web1", "{\"nodes\":\"n7:1\"}", "Node 'n7' of the node set is not a node of this cluster."),
		BAD_SET("web1", "{\"nodes\":5}", "The node set is invalid: it is neither a text nor a list."),
		BAD_SET("web1", "{\"nodes\":[{\"node\":\"n2\",\"prio\":1}]}", "entry 1 has fields other than 'node' and 'priority'"),
		BAD_SET("web1", "{\"nodes\":[{\"node\":\"n2\",\"priority\":\"1\"}]}", "node n2's priority is not a whole number"),
		BAD_SET("web1", "{\"restricted\":\"yes\"}", "Field 'restricted' must be true or false."),
		/* One or the other: a preferred node is the set of that node. */
		BAD_SET("web1", "{\"preferred\":\"n3\"}", "A VM has a preferred node or a node set, not both"),
		BAD_SET("web2", "{\"nodes\":\"n3\"}", "A VM has a preferred node or a node set, not both"),
		BAD_SET("web2", "{\"restricted\":true}", "'restricted' needs a node set ('nodes')"),
	};
#undef BAD_SET
	EXPECT_REFUSALS(f, bad);
	/* Nothing changed. */
	g_assert_cmpuint(store_state_get(herd_cluster_state(f->n[2]->cluster), STORE_KIND_VM, uuid)->version, ==, 1);
	g_assert_cmpuint(store_state_get(herd_cluster_state(f->n[2]->cluster), STORE_KIND_VM, other)->version, ==, 1);
	/* Define refuses both at once too, and a define with a bad set. */
	char fresh_uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(fresh_uuid);
	g_autofree char *fresh = vm_xml("web3", fresh_uuid, 64);
	g_autoptr(test_answer) both = test_requestf(f->n[1], "POST", "/api/v1/vms", "{s:s,s:s,s:s}", "xml",
						    fresh, "preferred", "n2", "nodes", "n2");
	test_expect_error(both, 400, "A VM has a preferred node or a node set, not both");
	/* Switching from preferred to a set in one change is fine. */
	g_autoptr(test_answer) sw = send_text(f->n[1], "PUT", "/api/v1/vms/web2", "{\"preferred\":null,\"nodes\":\"n3:1,n2\"}");
	json_t *j = test_expect(sw, 200);
	g_autofree char *text = set_text(j);
	g_assert_cmpstr(text, ==, "n3:1,n2:0");
}

/* The engine places by the set: the highest tier, or only the set. */
static void test_placement(fixture *f, gconstpointer data)
{
	g_autofree char *a = vm_define(f, 1, "a", "{s:s}", "nodes", "n3:2,n1:1");
	vm_start(f, 1, "a", "n3");
	g_autofree char *b = vm_define(f, 1, "b", "{s:s,s:b}", "nodes", "n2", "restricted", 1);
	vm_start(f, 2, "b", "n2");
	/* A restricted VM is not migrated out of its set. */
	g_autoptr(test_answer) m = send_text(f->n[1], "POST", "/api/v1/vms/b/migrate", "{\"node\":\"n1\"}");
	test_expect_error(m, 409, "restricted to its node set");
}

/* herd cluster ha pause: a setting, shown by herd status. */
static void test_pause_status(fixture *f, gconstpointer data)
{
	g_autoptr(test_answer) before = test_request(f->n[1], "GET", "/api/v1/status", NULL);
	g_assert_true(json_is_false(json_object_get(test_expect(before, 200), "ha_paused")));
	g_autoptr(test_answer) p = send_text(f->n[2], "PUT", "/api/v1/cluster/settings", "{\"ha_paused\":true}");
	test_expect(p, 200);
	g_autoptr(test_answer) after = test_request(f->n[3], "GET", "/api/v1/status", NULL);
	g_assert_true(json_is_true(json_object_get(test_expect(after, 200), "ha_paused")));
	g_autoptr(test_answer) bad = send_text(f->n[2], "PUT", "/api/v1/cluster/settings", "{\"ha_paused\":\"maybe\"}");
	test_expect_error(bad, 400, "ha_paused");
	/* A start would be held by the coordinator: refused at once, unchanged. */
	g_autofree char *uuid = vm_define(f, 1, "web1", NULL);
	g_autoptr(test_answer) start = test_request(f->n[1], "POST", "/api/v1/vms/web1/start", NULL);
	test_expect_error(start, 409, "VM web1 is not started: HA is paused, and herd starts no VM until 'herd cluster ha resume'.");
	g_assert_false(vm_stored(f, 2, uuid)->target_running);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	api_test_add("/api/vms/nodeset/set-show", test_set_and_show, NULL);
	api_test_add("/api/vms/nodeset/bad-input", test_bad_input, NULL);
	api_test_add("/api/vms/nodeset/placement", test_placement, LAB_MODE);
	api_test_add("/api/cluster/ha-pause-status", test_pause_status, NULL);
	return g_test_run();
}
