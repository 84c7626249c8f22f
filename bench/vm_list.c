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
 * the first is shown apart.  Then the same for GET /api/v1/status (herd
 * status: counts, nodes, the coordinator's view), the other request that
 * bench/api's clients send.
 *
 * bench/api measures the same on test nodes, over HTTPS too; this one
 * needs no root and takes seconds, for working on the list's cost.
 *
 * Before the lists it leaves the cluster alone for IDLE_S seconds and
 * prints the longest main-loop stretch meanwhile: what herdd does with
 * 10,000 VMs when nobody asks (the engine's runs, the facts every node
 * re-sends every 30 s), against the same 10 ms.  Last, what a change of
 * one VM costs: every node applies it and runs its engine over 10,000 VMs
 * (unless the VM is stopped and unassigned: then no node's engine looks),
 * and what a define of one more VM costs.
 *
 *     vm-list [--disk] [--guest-xml] [VMS [REQUESTS [IDLE_S]]]
 *                                  (default 10000 VMs, 50 requests, 35 s)
 *
 * --disk: each node's store in a file (WAL, synchronous=FULL, as herdd
 * has it) instead of in memory; SQLite then holds only its page cache, as
 * in a real herdd, so the memory figures are the ones to compare with a
 * herdd's (the in-memory store holds the whole database, some 9 MB a node
 * at 10,000 VMs).
 *
 * --guest-xml: each VM's domain XML shaped like the test guest's (1.3 kB,
 * as bench/scale defines them on test nodes) instead of 180 bytes.
 */
#include "common/json.h"
#include "common/loop_monitor.h"
#include "common/memory.h"
#include "store/command.h"
#include "store/vm.h"
#include "testcall.h"
#include "testloop.h"
#include "testnode.h"

#include <malloc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every tenth VM runs (the fake nodes have 8 CPUs, 16 GiB each). */
#define RUN_EVERY 10

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
	testcluster_define_vms(tc, 0, n);
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
	testnode_commit(n1, batch);
	if (!test_loop_until(all_running(n1, uuids), 120 * 1000))
		g_error("the VMs did not all start");
}

/* The longest main-loop stretch in @seconds of nobody asking, in ms, once
 * the starts have settled. */
static double idle_stall(testcluster *tc, unsigned seconds)
{
	if (!test_loop_until(testcluster_settled(tc), 60 * 1000))
		g_error("the cluster did not settle");
	test_loop_until(false, 1000);
	loop_monitor *monitor = loop_monitor_start(NULL, NULL);
	gint64 until = g_get_monotonic_time() + (gint64)seconds * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < until)
		test_loop_iterate(until);
	double ms = loop_monitor_stalls(monitor)->max_ever_us / 1000.0;
	loop_monitor_free(monitor);
	return ms;
}

/* This process's resident memory and what malloc holds in use, in MB:
 * three nodes' herdd state (and the test bus's) in one process; of it,
 * what SQLite holds (the three nodes' page caches, or with an in-memory
 * store their whole databases). */
static void print_memory(const char *when)
{
	double rss_mb = 0;
	g_autofree char *status = NULL;
	if (g_file_get_contents("/proc/self/status", &status, NULL, NULL)) {
		const char *p = strstr(status, "VmRSS:");
		if (p)
			rss_mb = g_ascii_strtod(p + 6, NULL) / 1024.0;
	}
	struct mallinfo2 mi = mallinfo2();
	sqlite3_int64 sql_now = 0, sql_peak = 0;
	sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &sql_now, &sql_peak, 0);
	printf("memory %s: RSS %.1f MB, malloc in use %.1f MB (SQLite %.1f MB), free in its heaps "
	       "%.1f MB (three nodes in one process)\n",
	       when, rss_mb, (mi.uordblks + mi.hblkhd) / 1e6, sql_now / 1e6, mi.fordblks / 1e6);
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* What @requests calls of GET @path cost, one after the other (the first
 * one apart: it may fill caches). */
typedef struct {
	double p50_ms, p99_ms, cpu_ms, stall_ms, first_ms, first_stall_ms;
	size_t bytes;
} measured;

static measured measure(testnode *n1, const char *path, unsigned requests, size_t expect_list)
{
	measured m = { 0 };
	g_autofree double *ms = g_new(double, requests);
	gint64 server_us = 0, stall_us = 0;
	for (int i = -1; i < (int)requests; i++) {
		gint64 start = g_get_monotonic_time();
		gint64 cpu0 = loop_monitor_thread_cpu_us();
		/* Only the loop's stretches while the request is under way count. */
		loop_monitor *monitor = loop_monitor_start(NULL, NULL);
		test_answer *a = test_call_finish(test_call_start(n1, "GET", path, NULL));
		/* This thread ran the three nodes; the client is a thread of its own. */
		gint64 cpu_us = loop_monitor_thread_cpu_us() - cpu0;
		gint64 max_stall_us = loop_monitor_stalls(monitor)->max_ever_us;
		loop_monitor_free(monitor);
		double took_ms = (a->received_us - start) / 1000.0;
		if (a->status != 200 || !a->json || (expect_list && json_array_size(a->json) != expect_list))
			g_error("GET %s: %ld %.200s", path, a->status, a->text);
		m.bytes = strlen(a->text);
		test_answer_free(a);
		if (i < 0) {
			m.first_ms = took_ms;
			m.first_stall_ms = max_stall_us / 1000.0;
			continue;
		}
		ms[i] = took_ms;
		server_us += cpu_us;
		stall_us = MAX(stall_us, max_stall_us);
	}
	qsort(ms, requests, sizeof(*ms), by_value);
	m.p50_ms = ms[requests / 2];
	m.p99_ms = ms[requests * 99 / 100];
	m.cpu_ms = server_us / 1000.0 / requests;
	m.stall_ms = stall_us / 1000.0;
	return m;
}

/* The bench's own wait for a settled cluster: testcluster_settled() has
 * each node build its status of every node (a JSON array of the UUIDs of
 * the VMs it runs: nine per call, some 3,000 small blocks allocated and
 * freed at 10,000 VMs), which herd does not do for a change or a define.
 * Its CPU is counted apart so that herd's part can be shown alone: the
 * check is half of a define's CPU here, and its cost moves with where
 * malloc finds its small blocks (16 more bytes in each store_object, and
 * nothing else changed, made it some 40 % dearer: bench/README.md, "cold
 * texts"). */
static gint64 settle_check_us;

static bool settled_timed(testcluster *tc)
{
	gint64 t0 = loop_monitor_thread_cpu_us();
	bool ok = testcluster_settled(tc);
	settle_check_us += loop_monitor_thread_cpu_us() - t0;
	return ok;
}

/* One VM's setting changed @rounds times, each committed on n1 and waited
 * for until the cluster settles: the longest main-loop stretch meanwhile
 * and the CPU time per change.  Every node applies each change and runs
 * its engine (agent and, on the coordinator, the scheduler over every VM):
 * the three nodes share this process's one loop, so a stretch may hold
 * more than one node's run. */
static void measure_changes(testcluster *tc, unsigned rounds, double *stall_ms, double *cpu_ms,
			    double *check_ms)
{
	testnode *n1 = testcluster_node(tc, 1);
	g_autoptr(GPtrArray) vms = store_state_list(herd_cluster_state(n1->cluster), STORE_KIND_VM);
	gint64 worst = 0, cpu = 0, check0 = settle_check_us;
	for (unsigned i = 0; i < rounds; i++) {
		store_object *vm = vms->pdata[(i * 7919) % vms->len];
		g_autoptr(json_t) cmd = store_cmd_patch(STORE_KIND_VM, vm->uuid,
							json_pack("{s:i}", "shutdown_timeout_s", 300 + (int)i));
		gint64 cpu0 = loop_monitor_thread_cpu_us();
		loop_monitor *monitor = loop_monitor_start(NULL, NULL);
		testnode_commit(n1, cmd);
		if (!test_loop_until(settled_timed(tc), 10000))
			g_error("the cluster did not settle after a change");
		worst = MAX(worst, loop_monitor_stalls(monitor)->max_ever_us);
		loop_monitor_free(monitor);
		cpu += loop_monitor_thread_cpu_us() - cpu0;
	}
	*stall_ms = worst / 1000.0;
	*cpu_ms = cpu / 1000.0 / rounds;
	*check_ms = (settle_check_us - check0) / 1000.0 / rounds;
}

/* @rounds VMs more defined one at a time, as `herd vm define` does, each
 * waited for until the cluster settles: the CPU time per define.  A
 * define that cost each node a look at every VM would make defining V VMs
 * cost O(V²). */
static json_int_t full_runs(testcluster *tc)
{
	json_int_t runs = 0;
	for (unsigned i = 1; i <= testcluster_size(tc); i++) {
		g_autoptr(json_t) stats = herd_ha_run_stats(testcluster_node(tc, i)->ha);
		runs += json_integer_value(json_object_get(stats, "full_runs"));
	}
	return runs;
}

static double measure_defines(testcluster *tc, unsigned first, unsigned rounds, double *passes,
			      double *check_ms)
{
	gint64 cpu = 0, check0 = settle_check_us;
	json_int_t runs0 = full_runs(tc);
	for (unsigned i = 0; i < rounds; i++) {
		gint64 cpu0 = loop_monitor_thread_cpu_us();
		testcluster_define_vms(tc, first + i, 1);
		if (!test_loop_until(settled_timed(tc), 10000))
			g_error("the cluster did not settle after a define");
		cpu += loop_monitor_thread_cpu_us() - cpu0;
	}
	*passes = (double)(full_runs(tc) - runs0) / rounds;
	*check_ms = (settle_check_us - check0) / 1000.0 / rounds;
	return cpu / 1000.0 / rounds;
}

int main(int argc, char **argv)
{
	herd_malloc_init(); /* as herdd's main() */
	for (; argc > 1 && g_str_has_prefix(argv[1], "--"); argc--, argv++) {
		if (strcmp(argv[1], "--disk") == 0)
			testcluster_store_on_disk(true);
		else if (strcmp(argv[1], "--guest-xml") == 0)
			testcluster_define_guest_xml(true);
		else
			g_error("unknown option %s (vm-list [--disk] [--guest-xml] [VMS [REQUESTS [IDLE_S]]])",
				argv[1]);
	}
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
	unsigned requests = argc > 2 ? (unsigned)atoi(argv[2]) : 50;
	unsigned idle_s = argc > 3 ? (unsigned)atoi(argv[3]) : 35;
	test_log_init();
	g_autoptr(json_t) settings = json_pack("{s:b,s:i}", "lab_mode", 1, "vcpu_overcommit", 64);
	g_autoptr(testcluster) tc = testcluster_new(3, settings);
	gint64 t0 = g_get_monotonic_time();
	define(tc, n);
	printf("%u VMs defined, a tenth running, in %.1f s\n", n, (g_get_monotonic_time() - t0) / 1e6);
	print_memory("after the defines");

	double idle_stall_ms = idle_stall(tc, idle_s);

	testnode *n1 = testcluster_node(tc, 1);
	measured list = measure(n1, "/api/v1/vms", requests, n);
	print_memory("after the lists");
	printf("GET /api/v1/vms %u VMs in-process, unix: p50 %.1f ms, p99 %.1f ms (target <= 30 ms); "
	       "%u requests of %.1f MB, server CPU %.1f ms each\n",
	       n, list.p50_ms, list.p99_ms, requests, list.bytes / 1e6, list.cpu_ms);
	printf("longest main-loop stall while listing: %.1f ms (target <= 10 ms)\n", list.stall_ms);
	printf("the first list after the start: %.1f ms, main loop held %.1f ms\n", list.first_ms,
	       list.first_stall_ms);
	/* herd status: the other request that bench/api's clients send. */
	measured status = measure(n1, "/api/v1/status", requests, 0);
	printf("GET /api/v1/status: p50 %.1f ms, p99 %.1f ms, %.1f kB, server CPU %.1f ms each; "
	       "longest main-loop stall %.1f ms (target <= 10 ms)\n",
	       status.p50_ms, status.p99_ms, status.bytes / 1e3, status.cpu_ms, status.stall_ms);
	printf("longest main-loop stall in %u s without requests: %.1f ms (target <= 10 ms)\n", idle_s,
	       idle_stall_ms);
	double change_stall_ms, change_cpu_ms, change_check_ms;
	measure_changes(tc, requests, &change_stall_ms, &change_cpu_ms, &change_check_ms);
	printf("a change to one VM, %u times: CPU %.1f ms per change for the three nodes (%.1f ms "
	       "of it the bench's settle check: herd %.1f ms); longest main-loop stall %.1f ms "
	       "(target <= 10 ms per node)\n",
	       requests, change_cpu_ms, change_check_ms, change_cpu_ms - change_check_ms,
	       change_stall_ms);
	double passes, define_check_ms;
	double define_cpu_ms = measure_defines(tc, n, requests, &passes, &define_check_ms);
	printf("a define of one more VM, %u times: CPU %.2f ms per define for the three nodes "
	       "(the cluster settled each time; %.2f ms of it the bench's settle check: herd "
	       "%.2f ms), %.1f full engine runs\n",
	       requests, define_cpu_ms, define_check_ms, define_cpu_ms - define_check_ms, passes);
	return 0;
}
