#include "testnode.h"

#include "api/routes.h"
#include "cluster/formation.h"
#include "common/error.h"
#include "common/json.h"
#include "common/password.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/command.h"
#include "store/settings.h"
#include "store/vm.h"
#include "testloop.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct testcluster {
	char *dir;               /* everything of this cluster: removed at the end */
	char *fence_dir;         /* fence_test's state: off-PLUG files, its log */
	char *power_fifo;        /* fence_test writes "off PLUG" / "on PLUG" here */
	int power_fd;
	guint power_watch;
	GString *power_buf;
	testbus *bus;
	unsigned n;
	testnode *nodes[TESTCLUSTER_MAX_NODES];
	char *ca_cert;
	char *ca_key;
};

/* fence_test: herd's standard agent interface (key=value lines on stdin;
 * exit 0, or for status 0 on and 2 off); plugs are node ids. */
static const char FENCE_AGENT[] =
	"#!/bin/sh\n"
	"action= plug= state= power= mode=\n"
	"while IFS='=' read -r k v; do\n"
	"  case $k in action) action=$v;; plug) plug=$v;; state) state=$v;; power) power=$v;;\n"
	"  mode) mode=$v;; esac\n"
	"done\n"
	"echo \"$action $plug\" >>\"$state/log\"\n"
	"trap 'echo \"done $action $plug\" >>\"$state/log\"' EXIT\n"
	"[ \"$mode\" = broken ] && { echo 'Failed: the test PDU does not answer' >&2; exit 1; }\n"
	"case $action in\n"
	"list) for i in 1 2 3 4 5 6 7 8; do echo \"$i,n$i\"; done; exit 0;;\n"
	"monitor) exit 0;;\n"
	"status) [ -e \"$state/off-$plug\" ] && { echo 'Status: OFF'; exit 2; }; echo 'Status: ON'; exit 0;;\n"
	"off) : >\"$state/off-$plug\"; echo \"off $plug\" >\"$power\"; echo 'Success: Powered OFF'; exit 0;;\n"
	"on) rm -f \"$state/off-$plug\"; echo \"on $plug\" >\"$power\"; echo 'Success: Powered ON'; exit 0;;\n"
	/* fencing.py's reboot: off (verified), then on */
	"reboot) echo \"off $plug\" >\"$power\"; rm -f \"$state/off-$plug\"; echo \"on $plug\" >\"$power\";\n"
	"  echo 'Success: Rebooted'; exit 0;;\n"
	"esac\n"
	"echo \"fence_test: unknown action '$action'\" >&2\n"
	"exit 1\n";

/* ------------------------------------------------------------------ */
/* Formation's I/O: no certificates to install, no service manager    */

static bool fio_install_tls(gpointer user, const char *ca_pem, const char *cert_pem,
			    const char *key_pem, GError **error)
{
	return true;
}

static bool fio_reset_tls(gpointer user, GError **error)
{
	return true;
}

static char *fio_ca_pem(gpointer user)
{
	testnode *n = user;
	return herd_cluster_exists(n->cluster) ? g_strdup(n->tc->ca_cert) : NULL;
}

typedef struct {
	herd_formation_service_done done;
	gpointer data;
} service_call;

static gboolean on_service_done(gpointer p)
{
	service_call *s = p;
	s->done(NULL, s->data);
	g_free(s);
	return G_SOURCE_REMOVE;
}

void testnode_service_done_later(herd_formation_service_done done, gpointer data)
{
	service_call *s = g_new0(service_call, 1);
	s->done = done;
	s->data = data;
	g_idle_add(on_service_done, s);
}

static void fio_service(gpointer user, const char *action, const char *service,
			herd_formation_service_done done, gpointer data)
{
	testnode_service_done_later(done, data);
}

static const herd_formation_io formation_io = {
	.install_tls = fio_install_tls,
	.reset_tls = fio_reset_tls,
	.ca_pem = fio_ca_pem,
	.service = fio_service,
};

/* ------------------------------------------------------------------ */
/* Power, as fence_test switches it                                    */

static gboolean on_power(gint fd, GIOCondition cond, gpointer data)
{
	testcluster *tc = data;
	char buf[256];
	ssize_t got;
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		g_string_append_len(tc->power_buf, buf, got);
	char *nl;
	while ((nl = strchr(tc->power_buf->str, '\n'))) {
		*nl = '\0';
		unsigned plug = 0;
		char what[8] = "";
		if (sscanf(tc->power_buf->str, "%7s %u", what, &plug) == 2 && plug >= 1 && plug <= tc->n)
			testcluster_power(tc, plug, strcmp(what, "on") == 0);
		g_string_erase(tc->power_buf, 0, nl + 1 - tc->power_buf->str);
	}
	return G_SOURCE_CONTINUE;
}

static void install_fence_agent(testcluster *tc)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *agents = g_build_filename(tc->dir, "agents", NULL);
	g_autofree char *agent = g_build_filename(agents, "fence_test", NULL);
	g_assert_cmpint(g_mkdir(agents, 0755), ==, 0);
	g_assert_true(g_file_set_contents(agent, FENCE_AGENT, -1, &err));
	g_assert_cmpint(g_chmod(agent, 0755), ==, 0);
	/* Read by herd's agent runner on the main thread only. */
	g_setenv("HERD_FENCE_AGENT_DIR", agents, TRUE);
	tc->fence_dir = g_build_filename(tc->dir, "fence", NULL);
	g_assert_cmpint(g_mkdir(tc->fence_dir, 0755), ==, 0);
	tc->power_fifo = g_build_filename(tc->fence_dir, "power", NULL);
	g_assert_cmpint(mkfifo(tc->power_fifo, 0600), ==, 0);
	/* Read and write: the FIFO never reports end of file, and an agent
	 * that writes never waits for a reader. */
	tc->power_fd = open(tc->power_fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	g_assert_cmpint(tc->power_fd, >=, 0);
	tc->power_buf = g_string_new(NULL);
	tc->power_watch = g_unix_fd_add(tc->power_fd, G_IO_IN, on_power, tc);
}

json_t *testcluster_fence_params(testcluster *tc)
{
	return json_pack("{s:s,s:s}", "state", tc->fence_dir, "power", tc->power_fifo);
}

/* fence_test's log: "ACTION PLUG" when a run starts, "done ACTION PLUG" when it ends. */
unsigned testcluster_fence_count(testcluster *tc, const char *action)
{
	g_autofree char *log = g_build_filename(tc->fence_dir, "log", NULL);
	g_autofree char *text = NULL;
	if (!g_file_get_contents(log, &text, NULL, NULL))
		return 0;
	unsigned n = 0;
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++) {
		g_auto(GStrv) words = g_strsplit(*l, " ", 2);
		n += words[0] && strcmp(words[0], action) == 0;
	}
	return n;
}

unsigned testcluster_fence_running(testcluster *tc)
{
	return testcluster_fence_count(tc, "list") + testcluster_fence_count(tc, "status") +
	       testcluster_fence_count(tc, "off") + testcluster_fence_count(tc, "on") +
	       testcluster_fence_count(tc, "reboot") + testcluster_fence_count(tc, "monitor") -
	       testcluster_fence_count(tc, "done");
}

/* ------------------------------------------------------------------ */
/* Nodes                                                               */

static bool store_on_disk;

void testcluster_store_on_disk(bool on_disk)
{
	store_on_disk = on_disk;
}

static testnode *node_new(testcluster *tc, unsigned i)
{
	g_autoptr(GError) err = NULL;
	testnode *n = g_new0(testnode, 1);
	n->tc = tc;
	n->nodeid = i;
	n->powered = true;
	g_snprintf(n->name, sizeof(n->name), "n%u", i);
	n->dir = g_build_filename(tc->dir, n->name, NULL);
	g_assert_cmpint(g_mkdir(n->dir, 0700), ==, 0);
	n->socket_path = g_build_filename(n->dir, "herd.sock", NULL);
	g_autofree char *corosync_dir = g_build_filename(n->dir, "corosync", NULL);
	/* As herdd wires them (src/daemon/main.c). */
	n->virt = testvirt_new(n->name, TESTNODE_MEMORY_MIB, TESTNODE_CPUS);
	n->cluster = herd_cluster_new(store_on_disk ? n->dir : ":memory:", n->name,
				      testbus_member_new(tc->bus, i), &err);
	g_assert_no_error(err);
	n->ha = herd_ha_new(n->cluster, n->name, testvirt_driver(n->virt));
	n->formation = herd_formation_new(n->cluster, n->name, corosync_dir, &formation_io, n);
	n->info = (api_node_info){
		.name = n->name,
		.started_us = g_get_monotonic_time(),
		.started_wall_s = g_get_real_time() / G_USEC_PER_SEC,
		.tls_fingerprint = NULL,
		.corosync_version = "testbus",
		.libvirt_version = "testvirt",
	};
	n->ctx = (api_ctx){ n->cluster, n->ha, n->formation, &n->info };
	n->http = http_server_new(herd_api_routes, herd_api_n_routes, &n->ctx);
	http_server_set_auth(n->http, api_user_password_hash, NULL);
	g_assert_true(http_server_listen_unix(n->http, n->socket_path, &err));
	g_assert_no_error(err);
	return n;
}

static void node_free(testnode *n)
{
	/* In herdd's order: the engine first, its answers go out through the
	 * API server. */
	herd_ha_free(n->ha);
	testvirt_free(n->virt);
	http_server_free(n->http);
	api_ctx_clear(&n->ctx);
	herd_formation_free(n->formation);
	herd_cluster_free(n->cluster);
	g_free(n->socket_path);
	g_free(n->dir);
	g_free(n);
}

/* One hash for the whole process: yescrypt takes a while. */
static const char *admin_password_hash(void)
{
	static char *hash;
	if (!hash) {
		g_autoptr(GError) err = NULL;
		hash = herd_password_hash(TESTNODE_PASSWORD, &err);
		g_assert_no_error(err);
	}
	return hash;
}

/* n1 creates the cluster; n2… are in it as their joins would have put them. */
static void bootstrap(testcluster *tc, json_t *settings)
{
	g_autoptr(GError) err = NULL;
	guchar key[32];
	g_assert_true(herd_tls_random(key, sizeof(key)));
	g_autofree char *authkey = g_base64_encode(key, sizeof(key));
	g_autoptr(json_t) checked = settings ? cluster_settings_validate(settings, &err) : json_object();
	g_assert_no_error(err);
	const char *links[TESTCLUSTER_MAX_NODES][1];
	char addr[TESTCLUSTER_MAX_NODES][16];
	for (unsigned i = 0; i < tc->n; i++) {
		g_snprintf(addr[i], sizeof(addr[i]), "10.99.0.%u", i + 1);
		links[i][0] = addr[i];
	}
	g_autoptr(json_t) cmd = store_cluster_cmd_bootstrap("test", checked, tc->ca_cert, tc->ca_key,
							    authkey, "n1", links[0], 1,
							    admin_password_hash());
	json_t *ops = json_object_get(cmd, "ops");
	for (unsigned i = 1; i < tc->n; i++) {
		char uuid[STORE_UUID_LEN + 1];
		store_uuid_generate(uuid);
		json_array_append_new(ops, store_node_cmd_create(uuid, tc->nodes[i]->name, i + 1,
								 links[i], 1));
	}
	g_autoptr(json_t) result = herd_cluster_bootstrap(tc->nodes[0]->cluster, cmd, "root", &err);
	g_assert_no_error(err);
}

testcluster *testcluster_new(unsigned n, json_t *settings)
{
	g_autoptr(GError) err = NULL;
	g_assert_cmpuint(n, >=, 1);
	g_assert_cmpuint(n, <=, TESTCLUSTER_MAX_NODES);
	testcluster *tc = g_new0(testcluster, 1);
	tc->dir = g_dir_make_tmp("herd-api-XXXXXX", &err);
	g_assert_no_error(err);
	install_fence_agent(tc);
	tc->bus = testbus_new(0);
	tc->n = n;
	g_assert_true(herd_tls_generate("herd cluster test CA", NULL, NULL, NULL, true, 30, &tc->ca_cert,
					&tc->ca_key, &err));
	g_assert_no_error(err);
	for (unsigned i = 0; i < n; i++)
		tc->nodes[i] = node_new(tc, i + 1);
	bootstrap(tc, settings);
	herd_cluster_start(tc->nodes[0]->cluster, false);
	for (unsigned i = 1; i < n; i++)
		herd_cluster_start(tc->nodes[i]->cluster, true);
	TEST_WAIT(testcluster_settled(tc));
	return tc;
}

static void rm_rf(const char *path)
{
	GDir *d = g_dir_open(path, 0, NULL);
	if (!d) {
		g_unlink(path);
		return;
	}
	const char *name;
	while ((name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(path, name, NULL);
		rm_rf(p);
	}
	g_dir_close(d);
	g_rmdir(path);
}

void testcluster_free(testcluster *tc)
{
	if (!tc)
		return;
	/* An agent still running would write to the power FIFO once nobody
	 * reads it (and wait there for ever); its answer would go to nobody. */
	if (!test_loop_until(testcluster_fence_running(tc) == 0, TEST_WAIT_MS))
		g_error("a fence agent is still running after %d ms", TEST_WAIT_MS);
	for (unsigned i = 0; i < tc->n; i++)
		node_free(tc->nodes[i]);
	testbus_free(tc->bus);
	/* What the nodes left on the loop (answers to nobody) goes now. */
	test_loop_drain();
	g_source_remove(tc->power_watch);
	close(tc->power_fd);
	g_string_free(tc->power_buf, TRUE);
	rm_rf(tc->dir);
	g_free(tc->dir);
	g_free(tc->fence_dir);
	g_free(tc->power_fifo);
	g_free(tc->ca_cert);
	g_free(tc->ca_key);
	g_free(tc);
}

testnode *testcluster_node(testcluster *tc, unsigned i)
{
	g_assert_cmpuint(i, >=, 1);
	g_assert_cmpuint(i, <=, tc->n);
	return tc->nodes[i - 1];
}

unsigned testcluster_size(testcluster *tc)
{
	return tc->n;
}

testbus *testcluster_bus(testcluster *tc)
{
	return tc->bus;
}

const char *testcluster_ca(testcluster *tc)
{
	return tc->ca_cert;
}

void testcluster_cut(testcluster *tc, unsigned i)
{
	testbus_cut(tc->bus, testcluster_node(tc, i)->nodeid);
}

void testcluster_heal(testcluster *tc, unsigned i)
{
	testbus_heal(tc->bus, testcluster_node(tc, i)->nodeid);
}

void testcluster_power(testcluster *tc, unsigned i, bool on)
{
	testnode *n = testcluster_node(tc, i);
	if (n->powered == on)
		return;
	n->powered = on;
	if (on) {
		g_autofree char *off = g_strdup_printf("%s/off-%u", tc->fence_dir, n->nodeid);
		g_unlink(off);
		testbus_power(tc->bus, n->nodeid, true);
		testvirt_connection(n->virt, false);
	} else {
		testvirt_power_off(n->virt);
		testvirt_connection(n->virt, true);
		testbus_power(tc->bus, n->nodeid, false);
	}
}

void testnode_restart_ha(testnode *n)
{
	/* It leaves the group and joins again, as a process that exits and
	 * starts does: the others then send their facts again. */
	herd_ha_free(n->ha);
	herd_cluster_stop(n->cluster);
	n->ha = herd_ha_new(n->cluster, n->name, testvirt_driver(n->virt));
	n->ctx.ha = n->ha;
	herd_cluster_start(n->cluster, false);
}

bool testnode_synced(testnode *n)
{
	replica *r = herd_cluster_replica(n->cluster);
	return replica_get_phase(r) == REPLICA_SYNCED && replica_is_primary(r) &&
	       herd_cluster_quorate(n->cluster);
}

bool testcluster_settled(testcluster *tc)
{
	if (!testbus_quiet(tc->bus))
		return false;
	unsigned powered = 0;
	for (unsigned i = 0; i < tc->n; i++)
		powered += tc->nodes[i]->powered;
	testnode *first = NULL;
	for (unsigned i = 0; i < tc->n; i++) {
		testnode *n = tc->nodes[i];
		if (!n->powered)
			continue;
		uint32_t ids[TESTCLUSTER_MAX_NODES];
		replica *r = herd_cluster_replica(n->cluster);
		if (!testnode_synced(n) || !replica_is_durable(r) ||
		    herd_cluster_ring(n->cluster, ids, G_N_ELEMENTS(ids)) != powered ||
		    herd_cluster_group(n->cluster, ids, G_N_ELEMENTS(ids)) != powered)
			return false;
		store_state *st = herd_cluster_state(n->cluster);
		const store_position *p = first ? &herd_cluster_state(first->cluster)->pos : NULL;
		if (p && (p->index != st->pos.index || memcmp(p->hash, st->pos.hash, sizeof(p->hash)) != 0))
			return false;
		first = first ? first : n;
		/* Every node's facts are in (the API shows where VMs run). */
		for (unsigned k = 0; k < tc->n; k++) {
			if (!tc->nodes[k]->powered)
				continue;
			g_autoptr(json_t) facts = herd_ha_node_status(n->ha, tc->nodes[k]->nodeid);
			if (!facts)
				return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Store changes straight through the cluster service                  */

static void on_test_committed(json_t *result, const GError *error, gpointer data)
{
	if (error)
		g_error("a test's store command was refused: %s", error->message);
	*(bool *)data = true;
}

void testnode_commit(testnode *n, json_t *cmd)
{
	bool committed = false;
	g_autoptr(GError) err = NULL;
	if (!herd_cluster_submit(n->cluster, cmd, "test", on_test_committed, &committed, &err))
		g_error("submit: %s", err->message);
	TEST_WAIT(committed);
}

void testcluster_vm_uuid(unsigned i, char out[37])
{
	g_snprintf(out, 37, "%08x-0000-4000-8000-%012x", i, i);
}

/* VMs a store command defines: the store's messages stay small. */
#define DEFINE_BATCH 500

static bool define_guest_xml;

void testcluster_define_guest_xml(bool guest)
{
	define_guest_xml = guest;
}

/* VM @name's domain XML as tests/guest/guest-xml writes it (its layout,
 * comments and paths; 1.3 kB), or a short one. */
static char *vm_xml(const char *name, const char *uuid)
{
	if (!define_guest_xml)
		return g_strdup_printf("<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>8</memory>"
				       "<vcpu>1</vcpu><os><type>hvm</type></os></domain>",
				       name, uuid);
	return g_strdup_printf(
		"<domain type='qemu'>\n"
		"  <name>%s</name>\n"
		"  <uuid>%s</uuid>\n"
		"  <description>herd test guest: prints \"herd-guest N\" on COM1 once a second</description>\n"
		"  <memory unit='MiB'>8</memory>\n"
		"  <currentMemory unit='MiB'>8</currentMemory>\n"
		"  <vcpu placement='static'>1</vcpu>\n"
		"  <os>\n"
		"    <type arch='x86_64' machine='pc'>hvm</type>\n"
		"    <boot dev='hd'/>\n"
		"  </os>\n"
		"  <!-- No <features><acpi/>: the guest has no ACPI support, so it cannot be\n"
		"       shut down gracefully (virsh shutdown); use virsh destroy. -->\n"
		"  <clock offset='utc'/>\n"
		"  <on_poweroff>destroy</on_poweroff>\n"
		"  <on_reboot>restart</on_reboot>\n"
		"  <on_crash>destroy</on_crash>\n"
		"  <devices>\n"
		"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
		"    <disk type='file' device='disk'>\n"
		"      <driver name='qemu' type='raw'/>\n"
		"      <source file=\"/usr/lib/herd/tests/guest/herd-guest.img\"/>\n"
		"      <target dev='vda' bus='virtio'/>\n"
		"      <readonly/>\n"
		"    </disk>\n"
		"    <controller type='usb' model='none'/>\n"
		"    <serial type='file'>\n"
		"      <source path=\"/tmp/herd-guest-%s.serial.log\" append='on'/>\n"
		"      <target port='0'/>\n"
		"    </serial>\n"
		"    <console type='file'>\n"
		"      <source path=\"/tmp/herd-guest-%s.serial.log\" append='on'/>\n"
		"      <target type='serial' port='0'/>\n"
		"    </console>\n"
		"    <!-- No NIC. -->\n"
		"    <memballoon model='none'/>\n"
		"  </devices>\n"
		"</domain>\n",
		name, uuid, name, name);
}

void testcluster_define_vms(testcluster *tc, unsigned first, unsigned n)
{
	unsigned nodes = testcluster_size(tc);
	for (unsigned from = first + 1; from <= first + n; from += DEFINE_BATCH) {
		json_t *ops = json_array();
		for (unsigned i = from; i <= first + n && i < from + DEFINE_BATCH; i++) {
			char uuid[37], name[32], node[16];
			testcluster_vm_uuid(i, uuid);
			g_snprintf(name, sizeof(name), "vm%05u", i);
			g_snprintf(node, sizeof(node), "n%u", (i - 1) % nodes + 1);
			g_autofree char *xml = vm_xml(name, uuid);
			/* The guest's disk, as libvirt's parser gives it to a define. */
			const char *const files[] = { "/usr/lib/herd/tests/guest/herd-guest.img", NULL };
			store_vm_domain dom = { uuid, name, xml, "qemu", 8, 1,
						define_guest_xml ? files : NULL, NULL };
			store_vm_attrs attrs = { .set = STORE_VM_SET_PREFERRED, .preferred = node };
			json_array_append_new(ops, store_vm_cmd_define(NULL, &dom, &attrs, NULL));
		}
		g_autoptr(json_t) batch = store_cmd_batch(ops);
		testnode_commit(testcluster_node(tc, 1), batch);
	}
}
