/*
 * A cluster of herd nodes in one process, for unit tests of everything
 * above the bus: each node is what herdd wires (src/daemon/main.c) — the
 * cluster service on the test bus (testbus.h), its HA engine (herd_ha)
 * with a fake hypervisor (testvirt.h), cluster formation with a fake I/O
 * table (no corosync, no service manager), and the real API: the HTTP
 * server with herd's route table and credential check, on a unix socket
 * in a temporary directory.  No root, no corosync, no libvirtd.
 *
 * The store is seeded as a create and the joins of the others would leave
 * it: node n1 bootstraps the cluster (its CA, the admin user with
 * TESTNODE_PASSWORD, every node n1..nN with node ids 1..N), the others
 * start empty and get it from the first sync.
 *
 * A fake fence agent, fence_test, is installed in a directory of the
 * process's own (HERD_FENCE_AGENT_DIR): its plugs are node ids; "off"
 * switches that node off (testcluster_power()), "on" switches it on,
 * "reboot" both, "status" reads it.  Tests that need a fenced node to stay
 * off set fence_action=off (the default is reboot).  testcluster_fence_params() gives the parameters that
 * tie a device to this cluster's power.
 */
#pragma once

#include "api/context.h"
#include "api/http.h"
#include "cluster/formation.h"
#include "testbus.h"
#include "testvirt.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

#define TESTNODE_PASSWORD "test-password-42"
#define TESTCLUSTER_MAX_NODES 8
/* Each node's RAM and CPUs, as its fake hypervisor reports them. */
#define TESTNODE_MEMORY_MIB 16384
#define TESTNODE_CPUS 8

typedef struct testcluster testcluster;

typedef struct testnode {
	testcluster *tc;
	char name[16];            /* "n1"… */
	uint32_t nodeid;          /* 1… */
	char *dir;                /* its own: corosync/, herd.sock */
	char *socket_path;
	testvirt *virt;
	herd_cluster *cluster;
	herd_ha *ha;
	herd_formation *formation;
	api_node_info info;
	api_ctx ctx;
	http_server *http;
	bool powered;
} testnode;

/*
 * A cluster "test" of @n nodes, all started, each in sync with a quorate
 * cluster of all of them when this returns; @settings (NULL: none) are
 * its first settings (cluster_settings_validate()d).
 */
testcluster *testcluster_new(unsigned n, json_t *settings);
/*
 * Whether the clusters made from now on keep each node's store in a file
 * of its directory (config.db, WAL and synchronous=FULL as herdd has it)
 * instead of in ":memory:" (the default): SQLite then holds its page cache
 * only, not the whole database, as in a real herdd (bench/vm-list's
 * memory figures).
 */
void testcluster_store_on_disk(bool on_disk);
/* Stop and free every node, then the bus. */
void testcluster_free(testcluster *tc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(testcluster, testcluster_free)

/* Node n@i (1-based). */
testnode *testcluster_node(testcluster *tc, unsigned i);
/* How many nodes it has. */
unsigned testcluster_size(testcluster *tc);
/* The bus under them (for its counters). */
testbus *testcluster_bus(testcluster *tc);
/* The cluster's CA (PEM). */
const char *testcluster_ca(testcluster *tc);

/* Node n@i alone in a partition of its own (a lost node), or back. */
void testcluster_cut(testcluster *tc, unsigned i);
void testcluster_heal(testcluster *tc, unsigned i);
/* Node n@i's power: off, its guests and its corosync are gone at once;
 * on, they come back (herd on it never stopped: its store is kept). */
void testcluster_power(testcluster *tc, unsigned i, bool on);

/* Every node with power is in sync with the others, in one quorate
 * configuration of all of them, each has every node's facts, and the bus
 * is quiet. */
bool testcluster_settled(testcluster *tc);
/* Node @n's herd starts again: it leaves the group, and joins it again
 * with a new HA engine over the same store (as herdd's restart, or its
 * start after the host's reboot, is seen). */
void testnode_restart_ha(testnode *n);
/* Node @n is in sync with a quorate configuration (of its partition). */
bool testnode_synced(testnode *n);

/* Submit store command @cmd (not stolen) through node @n as user "test"
 * and run the main loop until it is committed; fails the test if it is
 * refused. */
void testnode_commit(testnode *n, json_t *cmd);
/* Define VMs vm00001… numbered @first + 1 to @first + @n straight into the
 * store through n1 (no libvirt: 8 MiB, 1 vCPU, preferred node n1, n2, n3…
 * in turn), in batches; UUID of number i: testcluster_vm_uuid(). */
void testcluster_define_vms(testcluster *tc, unsigned first, unsigned n);
/* With @guest, testcluster_define_vms() gives each VM a domain XML shaped
 * like the test guest's (tests/guest/guest-xml: 1.3 kB with its
 * description, comments, disk, serial port and console) instead of a
 * 180-byte one: what a VM costs herdd's memory on the test nodes. */
void testcluster_define_guest_xml(bool guest);
/* The UUID those VMs get: VM number @i's. */
void testcluster_vm_uuid(unsigned i, char out[37]);

/* fence_test's parameters for a device of this cluster: {"state": dir,
 * "power": fifo} (new reference). */
json_t *testcluster_fence_params(testcluster *tc);
/* How many times fence_test ran @action ("off", "status", "list"…). */
unsigned testcluster_fence_count(testcluster *tc, const char *action);
/* How many fence_test runs have not finished (an "off" that has not
 * finished may still switch a node off). */
unsigned testcluster_fence_running(testcluster *tc);

/* A service manager that starts or stops anything at once: @done (no
 * error) on the main loop's next iteration. */
void testnode_service_done_later(herd_formation_service_done done, gpointer data);
