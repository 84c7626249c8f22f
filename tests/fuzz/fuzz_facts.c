/*
 * herd_facts_update() on a STATUS payload, as every node receives it from
 * the others over CPG: a malformed one is refused and changes nothing; an
 * accepted one is kept as the sender's facts, and encoding those facts again
 * gives a payload that is accepted and means the same.
 */
#include "fuzz.h"

#include "ha/facts.h"

#include <jansson.h>

static GHashTable *seen_of(herd_node_facts *n)
{
	return n->seen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	herd_facts *f = herd_facts_new();
	bool ok = herd_facts_update(f, 7, data, size, 1000, NULL);
	herd_node_facts *n = herd_facts_fresh(f, 7);
	FUZZ_CHECK(ok == (n != NULL));
	if (n) {
		FUZZ_CHECK(n->name && n->nodeid == 7 && n->vms && n->errors && n->seen);
		FUZZ_CHECK(g_hash_table_size(n->seen) <= 1024);
		g_autoptr(GArray) vms = g_array_new(FALSE, FALSE, sizeof(herd_vm_fact));
		GHashTableIter it;
		gpointer v;
		g_hash_table_iter_init(&it, n->vms);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			const herd_vm_fact *fact = v;
			FUZZ_CHECK(strlen(fact->uuid) == 36);
			g_array_append_vals(vms, fact, 1);
		}
		size_t len;
		herd_node_report report = { n->name, n->index, vms, n->resources, n->virt_ok,
					    n->errors, n->start_failures, n->handed, n->coordinator,
					    n->migration, seen_of(n), n->pending };
		g_autofree char *again = herd_facts_encode(&report, &len);
		herd_facts *g = herd_facts_new();
		FUZZ_CHECK(herd_facts_update(g, 7, again, len, 1000, NULL));
		herd_node_facts *m = herd_facts_fresh(g, 7);
		FUZZ_CHECK(m && strcmp(m->name, n->name) == 0 && m->index == n->index);
		FUZZ_CHECK(g_hash_table_size(m->vms) == g_hash_table_size(n->vms));
		FUZZ_CHECK(g_hash_table_size(m->seen) == g_hash_table_size(n->seen));
		FUZZ_CHECK(m->resources.memory_mib == n->resources.memory_mib &&
			   m->resources.cpus == n->resources.cpus && m->virt_ok == n->virt_ok);
		FUZZ_CHECK(json_equal(m->migration, n->migration) || (!m->migration && !n->migration));
		herd_facts_free(g);
	}
	herd_facts_free(f);
	return 0;
}
