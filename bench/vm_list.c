/*
 * Benchmark: GET /api/v1/vms in-process, with herdd's real API, store and
 * HA engine on a cluster of three nodes (tests/lib/testnode.h: the test
 * bus, a fake hypervisor).  It defines the VMs straight into the store
 * (no libvirt: the list is what is measured), has a tenth of them run,
 * then asks n1 for the list over its unix socket, one request after the
 * other, and prints the latency (until the client has the last byte), the
 * CPU time per request and the longest main-loop stretch
 * (common/loop_monitor.h) beside the targets of DESIGN.md §4: 30 ms per
 * list at 10,000 VMs, no stall over 10 ms.  The first list after a start
 * writes every VM's configuration; the later ones only those that changed:
 * the first is shown apart.
 *
 * bench/api measures the same on test nodes, over HTTPS too; this one
 * needs no root and takes seconds, for working on the list's cost.
 *
 *     vm-list [VMS [REQUESTS]]     (default 10000 VMs, 50 requests)
 */
#include "common/json.h"
#include "common/loop_monitor.h"
#include "store/command.h"
#include "store/vm.h"
#include "testcall.h"
#include "testloop.h"
#include "testnode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 500
/* Every tenth VM runs (the fake nodes have 8 CPUs, 16 GiB each). */
#define RUN_EVERY 10

static gint64 thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (gint64)ts.tv_sec * G_USEC_PER_SEC + ts.tv_nsec / 1000;
}

static void on_committed(json_t *result, const GError *error, gpointer data)
{
	if (error)
		g_error("a define was refused: %s", error->message);
	(*(unsigned *)data)--;
}

/* Does n1's engine see each VM of @uuids running? */
static bool all_running(testnode *n1, GPtrArray *uuids)
{
	for (guint i = 0; i < uuids->len; i++)
		if (!herd_ha_vm_active(n1->ha, uuids->pdata[i], NULL))
			return false;
	return true;
}

/* @n VMs named vm00001…, every RUN_EVERY-th to run, spread over the nodes. */
static void define(testcluster *tc, unsigned n)
{
	testnode *n1 = testcluster_node(tc, 1);
	unsigned pending = 0;
	for (unsigned first = 0; first < n; first += BATCH) {
		json_t *ops = json_array();
		for (unsigned i = first; i < n && i < first + BATCH; i++) {
			char uuid[37], name[32], node[8];
			g_snprintf(uuid, sizeof(uuid), "%08x-0000-4000-8000-%012x", i + 1, i + 1);
			g_snprintf(name, sizeof(name), "vm%05u", i + 1);
			g_snprintf(node, sizeof(node), "n%u", i % 3 + 1);
			g_autofree char *xml = g_strdup_printf(
				"<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>8</memory>"
				"<vcpu>1</vcpu><os><type>hvm</type></os></domain>",
				name, uuid);
			store_vm_domain dom = { uuid, name, xml, "qemu", 8, 1 };
			store_vm_attrs attrs = { .set = STORE_VM_SET_PREFERRED, .preferred = node };
			json_array_append_new(ops, store_vm_cmd_define(NULL, &dom, &attrs));
		}
		g_autoptr(json_t) batch = store_cmd_batch(ops);
		g_autoptr(GError) err = NULL;
		pending++;
		if (!herd_cluster_submit(n1->cluster, batch, "bench", on_committed, &pending, &err))
			g_error("submit: %s", err->message);
		TEST_WAIT(pending == 0);
	}
	/* Some run: the list then shows where and since when. */
	store_state *st = herd_cluster_state(n1->cluster);
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	json_t *ops = json_array();
	/* The objects change as they start: keep their UUIDs. */
	g_autoptr(GPtrArray) uuids = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < vms->len; i += RUN_EVERY) {
		json_array_append_new(ops, store_vm_cmd_start(vms->pdata[i]));
		g_ptr_array_add(uuids, g_strdup(((store_object *)vms->pdata[i])->uuid));
	}
	g_autoptr(json_t) batch = store_cmd_batch(ops);
	g_autoptr(GError) err = NULL;
	pending++;
	if (!herd_cluster_submit(n1->cluster, batch, "bench", on_committed, &pending, &err))
		g_error("submit: %s", err->message);
	TEST_WAIT(pending == 0);
	if (!test_loop_until(all_running(n1, uuids), 120 * 1000))
		g_error("the VMs did not all start");

}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
	unsigned requests = argc > 2 ? (unsigned)atoi(argv[2]) : 50;
	test_log_init();
	g_autoptr(json_t) settings = json_pack("{s:b,s:i}", "lab_mode", 1, "vcpu_overcommit", 64);
	g_autoptr(testcluster) tc = testcluster_new(3, settings);
	gint64 t0 = g_get_monotonic_time();
	define(tc, n);
	printf("%u VMs defined, a tenth running, in %.1f s\n", n, (g_get_monotonic_time() - t0) / 1e6);

	testnode *n1 = testcluster_node(tc, 1);
	g_autofree double *ms = g_new(double, requests);
	gint64 server_us = 0, stall_us = 0;
	size_t bytes = 0;
	double first_ms = 0, first_stall_ms = 0;
	for (int i = -1; i < (int)requests; i++) {
		gint64 start = g_get_monotonic_time();
		gint64 cpu0 = thread_cpu_us();
		/* Only the loop's stretches while the request is under way count. */
		loop_monitor *monitor = loop_monitor_start(NULL, NULL);
		test_answer *a = test_call_finish(test_call_start(n1, "GET", "/api/v1/vms", NULL));
		/* This thread ran the three nodes; the client is a thread of its own. */
		gint64 cpu_us = thread_cpu_us() - cpu0;
		gint64 max_stall_us = loop_monitor_stalls(monitor)->max_ever_us;
		loop_monitor_free(monitor);
		double took_ms = (a->received_us - start) / 1000.0;
		if (a->status != 200 || !a->json || json_array_size(a->json) != n)
			g_error("the list is not of %u VMs: %ld %.200s", n, a->status, a->text);
		bytes = strlen(a->text);
		test_answer_free(a);
		if (i < 0) {
			first_ms = took_ms;
			first_stall_ms = max_stall_us / 1000.0;
			continue;
		}
		ms[i] = took_ms;
		server_us += cpu_us;
		stall_us = MAX(stall_us, max_stall_us);
	}
	double cpu_ms = server_us / 1000.0 / requests;
	qsort(ms, requests, sizeof(*ms), by_value);
	double stall_ms = stall_us / 1000.0;
	printf("GET /api/v1/vms %u VMs in-process, unix: p50 %.1f ms, p99 %.1f ms (target <= 30 ms); "
	       "%u requests of %.1f MB, server CPU %.1f ms each\n",
	       n, ms[requests / 2], ms[requests * 99 / 100], requests, bytes / 1e6, cpu_ms);
	printf("longest main-loop stall while listing: %.1f ms (target <= 10 ms)\n", stall_ms);
	printf("the first list after the start: %.1f ms, main loop held %.1f ms\n", first_ms,
	       first_stall_ms);
	return 0;
}
