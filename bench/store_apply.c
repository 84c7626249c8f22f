/*
 * Micro-benchmark of one node's share of a configuration change, without
 * corosync or HTTP: the replicated store applying changes as a follower does
 * (parse the command, store_state_apply() into SQLite, write the position,
 * commit with fsync once per batch).  Prints the CPU and wall time per
 * change for a few batch sizes, so that the store's cost can be told apart
 * from the rest of bench/commit's figures.
 *
 *   store-apply DIR [VMS [CHANGES]]
 *
 * DIR gets a fresh database (config.db*, removed at the end); VMS VMs are
 * defined first (default 64) with a domain XML of the test guest's size, and
 * each is then changed as bench/commit changes them (a patch of
 * shutdown_timeout_s), CHANGES times in all per batch size (default 20000),
 * so that their history is pruned as on a long-running cluster.
 */
#include "common/json.h"
#include "store/db.h"
#include "store/state.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* About the size and shape of what herd stores for the test guest. */
static const char xml_template[] =
	"<domain type='qemu'>\n  <name>%s</name>\n  <uuid>%s</uuid>\n"
	"  <description>herd test guest: prints &quot;herd-guest N&quot; on COM1 once a second</description>\n"
	"  <memory unit='KiB'>32768</memory>\n  <currentMemory unit='KiB'>32768</currentMemory>\n"
	"  <vcpu placement='static'>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n"
	"    <boot dev='hd'/>\n  </os>\n  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n"
	"  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n"
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
	"    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n"
	"      <source file='/var/lib/herd/images/herd-guest.img'/>\n"
	"      <target dev='vda' bus='virtio'/>\n      <readonly/>\n    </disk>\n"
	"    <controller type='usb' model='none'/>\n    <serial type='file'>\n"
	"      <source path='/tmp/herd-guest-%s.serial.log' append='on'/>\n"
	"      <target port='0'/>\n    </serial>\n    <console type='file'>\n"
	"      <source path='/tmp/herd-guest-%s.serial.log' append='on'/>\n"
	"      <target type='serial' port='0'/>\n    </console>\n"
	"    <memballoon model='none'/>\n  </devices>\n</domain>\n";

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes this process has written with write()/pwrite() so far. */
static double written_bytes(void)
{
	g_autofree char *io = NULL;
	if (!g_file_get_contents("/proc/self/io", &io, NULL, NULL))
		return 0;
	const char *w = strstr(io, "wchar: ");
	return w ? g_ascii_strtod(w + 7, NULL) : 0;
}

static int64_t clock_ms = 1700000000000;

/* Apply @cmd (stolen) as a delivered command is applied: from its bytes. */
static void apply(store_state *st, json_t *cmd_in)
{
	g_autoptr(json_t) cmd = cmd_in;
	json_object_set_new(cmd, "time_ms", json_integer(++clock_ms));
	json_object_set_new(cmd, "origin", json_string("n1"));
	json_object_set_new(cmd, "user", json_string("root"));
	g_autofree char *text = json_dumps(cmd, JSON_COMPACT | JSON_SORT_KEYS);
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) parsed = json_loads(text, 0, NULL);
	g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	if (!store_db_begin(st->db, &err)) {
		fprintf(stderr, "store-apply: %s\n", err->message);
		exit(1);
	}
	g_autoptr(json_t) result = store_state_apply(st, parsed, text, strlen(text), changes, &err);
	if (!result) {
		fprintf(stderr, "store-apply: %s\n", err->message);
		exit(1);
	}
}

static void commit(store_state *st)
{
	g_autoptr(GError) err = NULL;
	if (!store_state_write_position(st, &err) || !store_db_commit(st->db, &err)) {
		fprintf(stderr, "store-apply: %s\n", err->message);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: store-apply DIR [VMS [CHANGES]]\n");
		return 2;
	}
	unsigned n_vms = argc > 2 ? (unsigned)atoi(argv[2]) : 64;
	unsigned n_changes = argc > 3 ? (unsigned)atoi(argv[3]) : 20000;
	if (n_vms < 1 || n_changes < 1) {
		fprintf(stderr, "store-apply: VMS and CHANGES must be positive\n");
		return 2;
	}
	g_autofree char *path = g_build_filename(argv[1], "config.db", NULL);
	const char *suffixes[] = { "", "-wal", "-shm" };
	for (unsigned i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *p = g_strconcat(path, suffixes[i], NULL);
		g_unlink(p);
	}
	g_autoptr(GError) err = NULL;
	store_db *db = store_db_open(path, &err);
	if (!db) {
		fprintf(stderr, "store-apply: %s\n", err->message);
		return 1;
	}
	store_state *st = store_state_new(db);
	char **uuids = g_new0(char *, n_vms);
	apply(st, json_pack("{s:s,s:s,s:s,s:s,s:{s:{}}}", "op", "create", "kind", "cluster", "uuid",
			    "00000000-0000-4000-8000-000000000001", "name", "bench", "data", "settings"));
	for (unsigned i = 0; i < n_vms; i++) {
		g_autofree char *name = g_strdup_printf("b-%u", i);
		uuids[i] = g_strdup_printf("10000000-0000-4000-8000-%012u", i);
		g_autofree char *xml = g_strdup_printf(xml_template, name, uuids[i], name, name);
		apply(st, json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:i,s:i,s:s}}", "op", "create", "kind",
				    "vm", "uuid", uuids[i], "name", name, "data", "xml", xml,
				    "memory_mib", 32, "vcpus", 1, "type", "qemu"));
	}
	commit(st);
	printf("store-apply: %u VMs, %u changes per batch size, database in %s\n", n_vms, n_changes,
	       argv[1]);
	static const unsigned batches[] = { 1, 8, 32, 128 };
	unsigned k = 0;
	for (unsigned b = 0; b < G_N_ELEMENTS(batches); b++) {
		double c0 = cpu_s(), w0 = wall_s(), b0 = written_bytes();
		for (unsigned i = 0; i < n_changes; i++) {
			apply(st, json_pack("{s:s,s:s,s:s,s:{s:i}}", "op", "patch", "kind", "vm", "uuid",
					    uuids[k++ % n_vms], "data", "shutdown_timeout_s",
					    60 + (int)(i % 1000)));
			if ((i + 1) % batches[b] == 0 || i + 1 == n_changes)
				commit(st);
		}
		double cpu = cpu_s() - c0, wall = wall_s() - w0, bytes = written_bytes() - b0;
		printf("batch %4u: %6.0f us CPU, %6.0f us wall, %5.1f KiB written per change (%.0f changes/s)\n",
		       batches[b], cpu / n_changes * 1e6, wall / n_changes * 1e6, bytes / n_changes / 1024,
		       n_changes / wall);
	}
	store_state_free(st);
	store_db_close(db);
	for (unsigned i = 0; i < n_vms; i++)
		g_free(uuids[i]);
	g_free(uuids);
	for (unsigned i = 0; i < G_N_ELEMENTS(suffixes); i++) {
		g_autofree char *p = g_strconcat(path, suffixes[i], NULL);
		g_unlink(p);
	}
	return 0;
}
