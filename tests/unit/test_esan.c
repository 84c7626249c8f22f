/*
 * eSAN disks in the store (store/disk.h: two replicas, their states, a
 * port, a first generation identifier; what apply refuses), what herdd
 * derives from them (ha/esan.h: the volumes a node serves, recording a peer
 * outdated before writing alone and up to date after a resync) and what the
 * scheduler gets (ha/needs.h: only nodes with an up-to-date replica).
 */
#include "common/error.h"
#include "common/json.h"
#include "ha/esan.h"
#include "ha/facts.h"
#include "ha/needs.h"
#include "store/disk.h"
#include "store/command.h"
#include "store/node.h"
#include "store/vm.h"
#include "teststore.h"

#include <string.h>

#define N1 "a1111111-1111-4111-8111-111111111111"
#define N2 "a2222222-2222-4222-8222-222222222222"
#define N3 "a3333333-3333-4333-8333-333333333333"
#define DISK "d1111111-1111-4111-8111-111111111111"
#define DISK2 "d2222222-2222-4222-8222-222222222222"
#define GEN "0123456789abcdef"

static test_store *cluster(void)
{
	test_store *t = test_store_new();
	const char *uuids[] = { N1, N2, N3 };
	for (unsigned i = 0; i < 3; i++) {
		g_autofree char *name = g_strdup_printf("n%u", i + 1);
		g_autofree char *addr = g_strdup_printf("10.99.0.%u", i + 1);
		const char *links[] = { addr };
		g_autoptr(json_t) cmd = store_node_cmd_create(uuids[i], name, i + 1, links, 1);
		g_autoptr(GError) error = NULL;
		g_autoptr(json_t) r = test_store_apply(t, cmd, &error);
		g_assert_no_error(error);
	}
	return t;
}

static void create_disk(test_store *t)
{
	const char *nodes[] = { N1, N2 };
	g_autoptr(json_t) cmd = store_disk_cmd_create_esan(DISK, "db0", 1 << 20, nodes, STORE_ESAN_PORT_MIN, GEN);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = test_store_apply(t, cmd, &error);
	g_assert_no_error(error);
}

static store_object *disk(test_store *t)
{
	return store_state_get(t->st, STORE_KIND_DISK, DISK);
}

/* Apply @cmd (stolen): refused with @code and a message saying @needle. */
static void expect_refused(test_store *t, json_t *cmd, int code, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = test_store_apply(t, cmd, &error);
	json_decref(cmd);
	g_assert_null(r);
	g_assert_error(error, HERD_ERROR, code);
	if (!strstr(error->message, needle))
		g_error("'%s' does not say '%s'", error->message, needle);
}

static void test_create(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	const store_disk *d = store_disk_of(disk(t));
	g_assert_true(d->esan);
	g_assert_null(d->storage);
	g_assert_cmpint(d->port, ==, STORE_ESAN_PORT_MIN);
	g_assert_cmpstr(d->gen, ==, GEN);
	g_assert_cmpstr(store_disk_replica(d, N2)->node, ==, N2);
	g_assert_cmpint(store_disk_replica(d, N2)->state, ==, STORE_REPLICA_UPTODATE);
	g_assert_cmpstr(store_disk_peer(d, N2)->node, ==, N1);
	g_assert_null(store_disk_replica(d, N3));
	g_assert_null(store_disk_peer(d, N3));
	g_assert_cmpint(store_esan_free_port(t->st), ==, STORE_ESAN_PORT_MIN + 1);
	g_autofree char *sock = store_esan_socket(DISK);
	g_assert_cmpstr(sock, ==, HERD_SAN_RUN_DIR "/" DISK ".sock");
}

static void test_refused(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	const char *same[] = { N1, N1 }, *gone[] = { N1, "a9999999-9999-4999-8999-999999999999" };
	const char *ok[] = { N1, N3 };
	expect_refused(t, store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, same, 7800, GEN), HERD_ERR_INVALID,
		       "two different nodes");
	expect_refused(t, store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, gone, 7800, GEN), HERD_ERR_NOT_FOUND,
		       "node");
	expect_refused(t, store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, ok, STORE_ESAN_PORT_MIN, GEN),
		       HERD_ERR_CONFLICT, "eSAN disk db0 uses port");
	expect_refused(t, store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, ok, 80, GEN), HERD_ERR_INVALID, "port");
	expect_refused(t, store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, ok, 7800, "0000000000000000"),
		       HERD_ERR_INVALID, "16 hex digits");
	expect_refused(t, store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, ok, 7800, "xyz"), HERD_ERR_INVALID,
		       "16 hex digits");
	/* A storage too, three replicas, qcow2, a state herd does not know. */
	json_t *cmd = store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, ok, 7800, GEN);
	json_object_set_new(json_object_get(cmd, "data"), "storage", json_string(N3));
	expect_refused(t, cmd, HERD_ERR_INVALID, "on no storage");
	cmd = store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, ok, 7800, GEN);
	json_t *replicas = json_object_get(json_object_get(json_object_get(cmd, "data"), "esan"), "replicas");
	json_array_append_new(replicas, json_pack("{s:s,s:s}", "node", N2, "state", "uptodate"));
	expect_refused(t, cmd, HERD_ERR_INVALID, "exactly two replicas");
	cmd = store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, ok, 7800, GEN);
	json_object_set_new(json_object_get(cmd, "data"), "format", json_string("qcow2"));
	expect_refused(t, cmd, HERD_ERR_INVALID, "raw");
	cmd = store_disk_cmd_create_esan(DISK2, "db1", 1 << 20, ok, 7800, GEN);
	replicas = json_object_get(json_object_get(json_object_get(cmd, "data"), "esan"), "replicas");
	json_object_set_new(json_array_get(replicas, 1), "state", json_string("fine"));
	expect_refused(t, cmd, HERD_ERR_INVALID, "uptodate, outdated or inconsistent");
	/* Nothing of it was stored. */
	g_assert_null(store_state_get(t->st, STORE_KIND_DISK, DISK2));
	/* A node holding a replica stays. */
	store_object *n2 = store_state_get(t->st, STORE_KIND_NODE, N2);
	expect_refused(t, store_cmd_delete(STORE_KIND_NODE, N2, n2->version), HERD_ERR_CONFLICT,
		       "Node n2 holds a replica of eSAN disk db0");
}

static void test_names(void)
{
	static const char *const reserved[] = { "disk", "DISK", "esan", "all", "list", NULL };
	for (unsigned i = 0; reserved[i]; i++) {
		g_autoptr(GError) error = NULL;
		g_assert_false(store_name_validate(STORE_KIND_DISK, reserved[i], &error));
		g_assert_nonnull(strstr(error->message, "reserved word"));
	}
	g_assert_true(store_name_validate(STORE_KIND_DISK, "disk1", NULL));
	/* Only disks: a VM may be called "list" (its name is its own). */
	g_assert_true(store_name_validate(STORE_KIND_VM, "all", NULL));
}

static void test_volumes(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	g_autoptr(json_t) v1 = herd_esan_volumes(t->st, "n1");
	json_t *op = json_object_get(v1, DISK);
	g_assert_nonnull(op);
	g_assert_cmpstr(json_string_value(json_object_get(op, "op")), ==, "volume");
	g_assert_cmpstr(json_string_value(json_object_get(op, "name")), ==, "db0");
	g_assert_cmpint(json_integer_value(json_object_get(op, "size")), ==, 1 << 20);
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(op, "listen"), "address")), ==, "10.99.0.1");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(op, "peer"), "address")), ==, "10.99.0.2");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(op, "peer"), "node")), ==, "n2");
	g_assert_cmpint(json_integer_value(json_object_get(json_object_get(op, "peer"), "port")), ==,
			STORE_ESAN_PORT_MIN);
	g_assert_cmpstr(json_string_value(json_object_get(op, "local")), ==, "uptodate");
	g_assert_cmpstr(json_string_value(json_object_get(op, "initial_gen")), ==, GEN);
	g_autoptr(json_t) v3 = herd_esan_volumes(t->st, "n3");
	g_assert_cmpuint(json_object_size(v3), ==, 0);
	g_autoptr(json_t) none = herd_esan_volumes(t->st, "nx");
	g_assert_cmpuint(json_object_size(none), ==, 0);
}

static void apply_ok(test_store *t, json_t *cmd)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = test_store_apply(t, cmd, &error);
	g_assert_no_error(error);
	json_decref(cmd);
}

static void test_outdate(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	bool already = true;
	g_autoptr(GError) error = NULL;
	/* n1 writes alone: n2 is recorded outdated first. */
	json_t *cmd = herd_esan_outdate_cmd(t->st, DISK, "n1", &already, &error);
	g_assert_no_error(error);
	g_assert_false(already);
	/* Computed on the version before: refused once the disk changed. */
	json_t *stale = herd_esan_outdate_cmd(t->st, DISK, "n1", &already, &error);
	apply_ok(t, cmd);
	const store_disk *d = store_disk_of(disk(t));
	g_assert_cmpint(store_disk_replica(d, N1)->state, ==, STORE_REPLICA_UPTODATE);
	g_assert_cmpint(store_disk_replica(d, N2)->state, ==, STORE_REPLICA_OUTDATED);
	expect_refused(t, stale, HERD_ERR_CONFLICT, "version");
	/* Asked again: it is so already. */
	g_assert_null(herd_esan_outdate_cmd(t->st, DISK, "n1", &already, &error));
	g_assert_no_error(error);
	g_assert_true(already);
	/* The outdated side may never write alone. */
	g_assert_null(herd_esan_outdate_cmd(t->st, DISK, "n2", &already, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "is outdated: it may not be written alone"));
	g_clear_error(&error);
	g_assert_false(already);
	/* No replica there, no such disk. */
	g_assert_null(herd_esan_outdate_cmd(t->st, DISK, "n3", &already, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND);
	g_clear_error(&error);
	g_assert_null(herd_esan_synced_cmd(t->st, DISK, "n2"));
	g_assert_null(herd_esan_synced_cmd(t->st, DISK2, "n1"));
	/* The resync from n1 ended: both up to date. */
	apply_ok(t, herd_esan_synced_cmd(t->st, DISK, "n1"));
	d = store_disk_of(disk(t));
	g_assert_cmpint(store_disk_replica(d, N2)->state, ==, STORE_REPLICA_UPTODATE);
	g_assert_null(herd_esan_synced_cmd(t->st, DISK, "n1"));
}

static void test_needs(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	const store_vm_disk disks[] = { { DISK, "virtio" } };
	store_vm_hardware hw = { disks, 1, NULL, 0, NULL, NULL, "bios", "disk" };
	store_vm vm = { .hw = &hw };
	herd_needs *n = herd_needs_new(t->st);
	size_t count;
	g_autofree sched_need *needs = herd_needs_of(n, &vm, &count);
	g_assert_cmpuint(count, ==, 1);
	g_assert_cmpstr(needs[0].id, ==, DISK);
	g_assert_cmpstr(needs[0].only[0], ==, "n1");
	g_assert_cmpstr(needs[0].only[1], ==, "n2");
	g_assert_null(needs[0].only[2]);
	g_assert_cmpstr(needs[0].unreached, ==, "eSAN disk db0 has its replicas on n1 and n2 only");
	herd_needs_free(n);

	bool already;
	apply_ok(t, herd_esan_outdate_cmd(t->st, DISK, "n1", &already, NULL));
	n = herd_needs_new(t->st);
	g_autofree sched_need *after = herd_needs_of(n, &vm, &count);
	g_assert_cmpstr(after[0].only[0], ==, "n1");
	g_assert_null(after[0].only[1]);
	g_assert_cmpstr(after[0].unreached, ==,
			"eSAN disk db0 is up to date only on n1 (n1 uptodate, n2 outdated; should n1 be lost for "
			"good, 'herd disk promote db0 --force' accepts the other as it is)");
	herd_needs_free(n);

	/* Neither up to date (promote's case): nowhere, and the sentence says how on. */
	store_replica_state states[2] = { STORE_REPLICA_OUTDATED, STORE_REPLICA_INCONSISTENT };
	apply_ok(t, store_disk_cmd_replicas(disk(t), states));
	n = herd_needs_new(t->st);
	g_autofree sched_need *none = herd_needs_of(n, &vm, &count);
	g_assert_null(none[0].only[0]);
	g_assert_nonnull(strstr(none[0].unreached, "'herd disk promote db0 --force'"));
	herd_needs_free(n);
}

static void test_promote(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	g_autoptr(GError) error = NULL;
	/* Both up to date: nothing to promote without a node; on a node, it is already. */
	g_assert_null(herd_esan_promote_cmd(t->st, disk(t), NULL, NULL, &error));
	g_assert_nonnull(strstr(error->message, "say which replica to promote (--node n1 or --node n2)"));
	g_clear_error(&error);
	g_assert_null(herd_esan_promote_cmd(t->st, disk(t), "n2", NULL, &error));
	g_assert_nonnull(strstr(error->message, "on n2 is up to date already"));
	g_clear_error(&error);
	g_assert_null(herd_esan_promote_cmd(t->st, disk(t), "n3", NULL, &error));
	g_assert_nonnull(strstr(error->message, "Node n3 holds no replica of eSAN disk db0 (its replicas are on n1 and n2)"));
	g_clear_error(&error);
	/* n1 wrote alone (n2 outdated), then n1 died: n2 is promoted, n1 discarded. */
	bool already;
	apply_ok(t, herd_esan_outdate_cmd(t->st, DISK, "n1", &already, NULL));
	g_assert_null(herd_esan_promote_cmd(t->st, disk(t), NULL, "db", &error));
	g_assert_nonnull(strstr(error->message, "VM db runs on eSAN disk db0"));
	g_clear_error(&error);
	apply_ok(t, herd_esan_promote_cmd(t->st, disk(t), NULL, NULL, &error));
	g_assert_no_error(error);
	const store_disk *d = store_disk_of(disk(t));
	g_assert_cmpint(store_disk_replica(d, N2)->state, ==, STORE_REPLICA_UPTODATE);
	g_assert_false(store_disk_replica(d, N2)->discard);
	g_assert_cmpint(store_disk_replica(d, N1)->state, ==, STORE_REPLICA_OUTDATED);
	g_assert_true(store_disk_replica(d, N1)->discard);
	/* n1's herd-san is told to throw its replica away. */
	g_autoptr(json_t) v1 = herd_esan_volumes(t->st, "n1");
	g_assert_true(json_is_true(json_object_get(json_object_get(v1, DISK), "discard")));
	g_autoptr(json_t) v2 = herd_esan_volumes(t->st, "n2");
	g_assert_true(json_is_false(json_object_get(json_object_get(v2, DISK), "discard")));
	/* A discarded replica is no candidate; the resync ends it. */
	g_assert_null(herd_esan_promote_cmd(t->st, disk(t), "n1", NULL, &error));
	g_assert_nonnull(strstr(error->message, "being discarded"));
	g_clear_error(&error);
	apply_ok(t, herd_esan_synced_cmd(t->st, DISK, "n2"));
	d = store_disk_of(disk(t));
	g_assert_cmpint(store_disk_replica(d, N1)->state, ==, STORE_REPLICA_UPTODATE);
	g_assert_false(store_disk_replica(d, N1)->discard);
	/* An inconsistent replica (a sync that did not end) is no disk. */
	store_replica_state states[2] = { STORE_REPLICA_INCONSISTENT, STORE_REPLICA_UPTODATE };
	apply_ok(t, store_disk_cmd_replicas(disk(t), states));
	g_assert_null(herd_esan_promote_cmd(t->st, disk(t), "n1", NULL, &error));
	g_assert_nonnull(strstr(error->message, "inconsistent"));
	g_clear_error(&error);
	/* A discarded replica marked up to date: apply refuses it. */
	json_t *bad = store_disk_cmd_keep(disk(t), 0);
	json_t *r0 = json_array_get(json_object_get(json_object_get(json_object_get(bad, "data"), "esan"), "replicas"), 0);
	json_object_set_new(r0, "discard", json_true());
	expect_refused(t, bad, HERD_ERR_INVALID, "An up-to-date eSAN replica is not discarded");
}

static void test_resolve(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	g_autoptr(GError) error = NULL;
	g_assert_null(herd_esan_resolve_cmd(t->st, disk(t), "n1", false, NULL, &error));
	g_assert_nonnull(strstr(error->message, "not in split brain"));
	g_clear_error(&error);
	g_assert_null(herd_esan_resolve_cmd(t->st, disk(t), "n3", true, NULL, &error));
	g_assert_nonnull(strstr(error->message, "Node n3 holds no replica"));
	g_clear_error(&error);
	g_assert_null(herd_esan_resolve_cmd(t->st, disk(t), "n1", true, "n2", &error));
	g_assert_nonnull(strstr(error->message, "runs on n2, whose replica would be discarded"));
	g_clear_error(&error);
	apply_ok(t, herd_esan_resolve_cmd(t->st, disk(t), "n2", true, "n2", &error));
	const store_disk *d = store_disk_of(disk(t));
	g_assert_true(store_disk_replica(d, N1)->discard);
	g_assert_cmpint(store_disk_replica(d, N2)->state, ==, STORE_REPLICA_UPTODATE);
}

/* "peer-down" for a replica only on a ring that shows this node: an
 * empty one (herdd just started, corosync not heard yet; or corosync
 * lost) says nothing of the peer. */
static void test_peer_gone(void)
{
	const uint32_t both[] = { 1, 2 }, me_only[] = { 1 }, other[] = { 2, 3 };
	g_assert_cmpint(herd_esan_peer_gone(both, 2, 1, 2), ==, 0);
	g_assert_cmpint(herd_esan_peer_gone(me_only, 1, 1, 2), ==, 1);
	g_assert_cmpint(herd_esan_peer_gone(NULL, 0, 1, 2), ==, -1);
	g_assert_cmpint(herd_esan_peer_gone(other, 2, 1, 2), ==, -1);
	g_assert_cmpint(herd_esan_peer_gone(both, 2, 0, 2), ==, -1);
	g_assert_cmpint(herd_esan_peer_gone(both, 2, 1, 0), ==, -1);
}

static void test_sync_gate(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	g_assert_null(herd_esan_sync_gate(t->st, "n1"));
	bool already;
	apply_ok(t, herd_esan_outdate_cmd(t->st, DISK, "n1", &already, NULL));
	g_autofree char *gate = herd_esan_sync_gate(t->st, "n1");
	g_assert_nonnull(gate);
	g_assert_nonnull(strstr(gate, "Node n1 holds the only up-to-date replica of eSAN disk(s) db0"));
	g_assert_null(herd_esan_sync_gate(t->st, "n2"));
	g_assert_null(herd_esan_sync_gate(t->st, "n3"));
	apply_ok(t, herd_esan_synced_cmd(t->st, DISK, "n1"));
	g_assert_null(herd_esan_sync_gate(t->st, "n1"));
}

static void test_verify(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	g_assert_cmpint(store_disk_of(disk(t))->verify.id, ==, 0);
	apply_ok(t, store_disk_cmd_verify(disk(t), N2));
	const store_esan_verify *v = &store_disk_of(disk(t))->verify;
	g_assert_cmpint(v->id, ==, 1);
	g_assert_cmpstr(v->node, ==, N2);
	g_assert_false(v->done);
	/* A result for another verification is not recorded. */
	g_assert_null(store_disk_cmd_verified(disk(t), 2, true, 0, -1, 1 << 20, NULL, 5000));
	apply_ok(t, store_disk_cmd_verified(disk(t), 1, false, 8192, 4096, 1 << 20, NULL, 5000));
	v = &store_disk_of(disk(t))->verify;
	g_assert_true(v->done);
	g_assert_false(v->equal);
	g_assert_cmpuint(v->differ, ==, 8192);
	g_assert_cmpint(v->first, ==, 4096);
	g_assert_null(store_disk_cmd_verified(disk(t), 1, true, 0, -1, 1 << 20, NULL, 6000));
	/* Asked again: the old result goes. */
	apply_ok(t, store_disk_cmd_verify(disk(t), N1));
	v = &store_disk_of(disk(t))->verify;
	g_assert_cmpint(v->id, ==, 2);
	g_assert_false(v->done);
	g_assert_cmpint(v->first, ==, -1);
}

/* A result that a change of the disk (a replica's state) overtook is made
 * again from the disk as it is, and recorded; one for a verification that
 * was asked again since is not. */
static void test_verify_overtaken(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	apply_ok(t, store_disk_cmd_verify(disk(t), N2));
	g_autoptr(json_t) ev = json_pack("{s:s,s:I,s:b,s:I,s:n,s:I}", "ev", "verify", "id", (json_int_t)1, "equal", 1,
					 "differ", (json_int_t)0, "first", "compared", (json_int_t)(1 << 20));
	json_t *first = herd_esan_verified_cmd(t->st, DISK, ev, 7000);
	g_assert_nonnull(first);
	store_replica_state states[2] = { STORE_REPLICA_UPTODATE, STORE_REPLICA_OUTDATED };
	apply_ok(t, store_disk_cmd_replicas(disk(t), states));
	expect_refused(t, first, HERD_ERR_CONFLICT, "version");
	g_assert_false(store_disk_of(disk(t))->verify.done);
	apply_ok(t, herd_esan_verified_cmd(t->st, DISK, ev, 7000));
	const store_esan_verify *v = &store_disk_of(disk(t))->verify;
	g_assert_true(v->done);
	g_assert_true(v->equal);
	g_assert_cmpint(v->first, ==, -1);
	g_assert_cmpuint(v->compared, ==, 1 << 20);
	g_assert_cmpint(v->time_ms, ==, 7000);
	/* The replica states stayed as the change made them. */
	g_assert_cmpint(store_disk_peer(store_disk_of(disk(t)), N1)->state, ==, STORE_REPLICA_OUTDATED);
	/* Recorded: nothing more to record; asked again: not this result. */
	g_assert_null(herd_esan_verified_cmd(t->st, DISK, ev, 8000));
	apply_ok(t, store_disk_cmd_verify(disk(t), N1));
	g_assert_null(herd_esan_verified_cmd(t->st, DISK, ev, 8000));
	g_assert_null(herd_esan_verified_cmd(t->st, DISK2, ev, 8000));
}

/* A volume herd-san serves whose disk the store no longer gives the node. */
static void test_orphans(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	g_autoptr(json_t) reported = json_pack("{s:b,s:b,s:b}", DISK, 1, DISK2, 1, "../etc", 1);
	g_autoptr(json_t) n1 = herd_esan_orphans(t->st, "n1", reported);
	g_assert_cmpuint(json_array_size(n1), ==, 1);
	g_assert_cmpstr(json_string_value(json_array_get(n1, 0)), ==, DISK2);
	/* Only a disk the store does not hold: db0's on n3 (which holds no
	 * replica of it) is not removed on the store's word. */
	g_autoptr(json_t) n3 = herd_esan_orphans(t->st, "n3", reported);
	g_assert_cmpuint(json_array_size(n3), ==, 1);
	g_assert_cmpstr(json_string_value(json_array_get(n3, 0)), ==, DISK2);
	/* A store that does not know the node says nothing. */
	g_autoptr(json_t) nx = herd_esan_orphans(t->st, "nx", reported);
	g_assert_cmpuint(json_array_size(nx), ==, 0);
	/* Deleted: its volume is one. */
	apply_ok(t, store_disk_cmd_delete(disk(t)));
	g_autoptr(json_t) gone = herd_esan_orphans(t->st, "n1", reported);
	g_assert_cmpuint(json_array_size(gone), ==, 2);
	g_assert_cmpstr(json_string_value(json_array_get(gone, 0)), ==, DISK);
}

/* A node's storage address: validated; the volume ops of both replica
 * nodes take it (its own listen address, its peer's address). */
static void test_storage_address(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	const char *bad[][2] = {
		{ "storage", "is not an IP address" },   { "10.0.0", "is not an IP address" },
		{ "10.0.0.1:7790", "is not an IP address" }, { "0.0.0.0", "unspecified" },
		{ "127.0.0.2", "loopback" },             { "::1", "loopback" },
		{ "224.0.0.1", "multicast" },            { "ff02::1", "multicast" },
		{ "::", "unspecified" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_assert_false(store_node_storage_address_check(bad[i][0], &error));
		if (!strstr(error->message, bad[i][1]))
			g_error("'%s': '%s' does not say '%s'", bad[i][0], error->message, bad[i][1]);
	}
	store_object *n2 = store_state_get(t->st, STORE_KIND_NODE, N2);
	g_autoptr(json_t) patch = store_cmd_patch(STORE_KIND_NODE, N2, json_pack("{s:s}", "storage_address", "nowhere"));
	expect_refused(t, g_steal_pointer(&patch), HERD_ERR_INVALID, "is not an IP address");
	g_autoptr(json_t) number = store_cmd_patch(STORE_KIND_NODE, N2, json_pack("{s:i}", "storage_address", 5));
	expect_refused(t, g_steal_pointer(&number), HERD_ERR_INVALID, "must be an IP address");
	g_assert_null(store_node_of(n2)->storage_address);

	apply_ok(t, store_node_cmd_storage_address(n2, "fd00::2"));
	n2 = store_state_get(t->st, STORE_KIND_NODE, N2);
	g_assert_cmpstr(store_node_of(n2)->storage_address, ==, "fd00::2");
	g_autoptr(json_t) v1 = herd_esan_volumes(t->st, "n1");
	g_autoptr(json_t) v2 = herd_esan_volumes(t->st, "n2");
	json_t *op1 = json_object_get(v1, DISK), *op2 = json_object_get(v2, DISK);
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(op1, "listen"), "address")), ==, "10.99.0.1");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(op1, "peer"), "address")), ==, "fd00::2");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(op2, "listen"), "address")), ==, "fd00::2");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(op2, "peer"), "address")), ==, "10.99.0.1");

	/* None again: the link's address. */
	apply_ok(t, store_node_cmd_storage_address(n2, NULL));
	n2 = store_state_get(t->st, STORE_KIND_NODE, N2);
	g_assert_null(store_node_of(n2)->storage_address);
	g_autoptr(json_t) back = herd_esan_volumes(t->st, "n2");
	g_assert_cmpstr(json_string_value(json_object_get(json_object_get(json_object_get(back, DISK), "listen"), "address")),
			==, "10.99.0.2");
}

/* Node @nodeid (@name) reports its herd-san's states @esan in its STATUS. */
static void report(herd_facts *f, uint32_t nodeid, const char *name, json_t *esan)
{
	g_autoptr(json_t) usage = json_pack("{s:O}", "esan", esan);
	herd_node_report r = { .name = name, .index = 1, .virt_ok = true, .usage = usage };
	size_t len = 0;
	g_autofree char *payload = herd_facts_encode(&r, &len);
	g_assert_true(herd_facts_update(f, nodeid, payload, len, 0, NULL));
}

/* What the coordinator's alerts and the API read of the herd-sans: every
 * node's report of this round, by the store's node names. */
static void test_facts_esan(void)
{
	g_autoptr(test_store) t = cluster();
	herd_facts *f = herd_facts_new();
	g_autoptr(json_t) s1 = json_pack("{s:{s:s}}", DISK, "conn", "connected");
	g_autoptr(json_t) s2 = json_pack("{s:{s:s},s:{s:s},s:s}", DISK, "conn", "connecting", DISK2, "conn",
					 "splitbrain", "junk", "not a state");
	report(f, 1, "n1", s1);
	report(f, 2, "n2", s2);
	report(f, 9, "n9", s1); /* not in the store */
	g_autoptr(json_t) all = herd_facts_esan(f, t->st);
	g_autoptr(json_t) want = json_pack("{s:{s:{s:s},s:{s:s}},s:{s:{s:s}}}", DISK, "n1", "conn", "connected", "n2",
					   "conn", "connecting", DISK2, "n2", "conn", "splitbrain");
	if (!json_equal(all, want)) {
		g_autofree char *got = json_dumps(all, JSON_SORT_KEYS);
		g_error("herd_facts_esan: %s", got);
	}
	/* A new round: nothing is fresh until resent. */
	herd_facts_new_round(f);
	g_autoptr(json_t) stale = herd_facts_esan(f, t->st);
	g_assert_cmpuint(json_object_size(stale), ==, 0);
	herd_facts_free(f);
}

/* The alerts' messages, joined by newlines. */
static char *alert_text(test_store *t, json_t *reports)
{
	g_autoptr(json_t) alerts = herd_esan_alerts(t->st, reports);
	GString *out = g_string_new(NULL);
	size_t i;
	json_t *a;
	json_array_foreach(alerts, i, a) {
		g_assert_cmpstr(json_string_value(json_object_get(a, "disk")), ==, "db0");
		g_string_append_printf(out, "%s: %s\n", json_string_value(json_object_get(a, "severity")),
				       json_string_value(json_object_get(a, "message")));
	}
	return g_string_free(out, FALSE);
}

/* n1's local disk failed: its replica is recorded outdated and discarded,
 * n2's kept; the volume ops say so (n2's herd-san must not call n1 synced
 * by connecting in sync); herd-san's state raises the alert. */
static void test_detach(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	bool already = true;
	g_autoptr(GError) error = NULL;
	apply_ok(t, herd_esan_detach_cmd(t->st, DISK, "n1", &already, &error));
	g_assert_no_error(error);
	g_assert_false(already);
	const store_disk *d = store_disk_of(disk(t));
	g_assert_cmpint(store_disk_replica(d, N1)->state, ==, STORE_REPLICA_OUTDATED);
	g_assert_true(store_disk_replica(d, N1)->discard);
	g_assert_cmpint(store_disk_replica(d, N2)->state, ==, STORE_REPLICA_UPTODATE);
	g_autoptr(json_t) v2 = herd_esan_volumes(t->st, "n2");
	g_assert_true(json_is_true(json_object_get(json_object_get(v2, DISK), "peer_discard")));
	g_autoptr(json_t) v1 = herd_esan_volumes(t->st, "n1");
	g_assert_true(json_is_false(json_object_get(json_object_get(v1, DISK), "peer_discard")));
	/* asked again (herdd or herd-san restarted): so already */
	g_assert_null(herd_esan_detach_cmd(t->st, DISK, "n1", &already, &error));
	g_assert_no_error(error);
	g_assert_true(already);
	/* n2's disk fails too: nothing to detach to */
	g_assert_null(herd_esan_detach_cmd(t->st, DISK, "n2", &already, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "is outdated: the failed one on n2 cannot be detached"));
	g_clear_error(&error);
	g_assert_false(already);
	g_assert_null(herd_esan_detach_cmd(t->st, DISK, "n3", &already, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND);
	g_clear_error(&error);

	g_autoptr(json_t) rep = json_pack("{s:{s:{s:s,s:{s:s,s:s}}}}", DISK, "n1", "conn", "connected", "disk",
					  "state", "detached", "why",
					  "a write on the local replica failed: Input/output error");
	g_autofree char *detached = alert_text(t, rep);
	g_assert_nonnull(strstr(detached, "critical: eSAN disk db0: the local disk under the replica on n1 failed "
				 "(a write on the local replica failed: Input/output error): the replica is detached "
				 "and the peer serves the disk"));
	g_assert_nonnull(strstr(detached, "warning: eSAN disk db0: the replica on n1 is discarded"));
	g_autoptr(json_t) rep2 = json_pack("{s:{s:{s:s,s:{s:s,s:s}}}}", DISK, "n1", "conn", "connecting", "disk",
					   "state", "failed", "why", "a flush on the local replica failed: x");
	g_autofree char *failed = alert_text(t, rep2);
	g_assert_nonnull(strstr(failed, "critical: eSAN disk db0: the local disk under the replica on n1 failed "
				"(a flush on the local replica failed: x) and no up-to-date peer serves it"));
}

static void test_alerts(void)
{
	g_autoptr(test_store) t = cluster();
	create_disk(t);
	g_autoptr(json_t) none = json_object();
	g_autofree char *calm = alert_text(t, none);
	g_assert_cmpstr(calm, ==, "");
	bool already;
	apply_ok(t, herd_esan_outdate_cmd(t->st, DISK, "n1", &already, NULL));
	g_autofree char *outdated = alert_text(t, none);
	g_assert_cmpstr(outdated, ==, "warning: eSAN disk db0: the replica on n2 is outdated; n1 holds the only "
				      "up-to-date one, and the disk is not redundant until n2 is synchronised again.\n");
	g_autoptr(json_t) split = json_pack("{s:{s:{s:s},s:{s:s}}}", DISK, "n1", "conn", "splitbrain", "n2", "conn",
					    "splitbrain");
	g_autofree char *both = alert_text(t, split);
	g_assert_nonnull(strstr(both, "critical: eSAN disk db0 is in split brain"));
	g_assert_nonnull(strstr(both, "'herd disk resolve db0 --keep NODE'"));
	/* Said once, however many herd-sans report it. */
	g_assert_null(strstr(strstr(both, "split brain") + 1, "split brain:"));
	/* A crash its activity log does not cover: a full sync, and why; one it covers: no alert. */
	g_autoptr(json_t) crash = json_pack("{s:{s:{s:s,s:{s:s,s:s}},s:{s:s,s:{s:s}}}}", DISK, "n1", "conn",
					    "connected", "crash", "resync", "full", "why",
					    "the activity log is of an older session", "n2", "conn", "connected",
					    "crash", "resync", "listed");
	g_autofree char *crashed = alert_text(t, crash);
	g_assert_nonnull(strstr(crashed, "warning: eSAN disk db0: the replica on n1 crashed with its guest writing "
				 "and the activity log is of an older session: it is synchronised in full, not only "
				 "where writes were in flight.\n"));
	g_assert_null(strstr(crashed, "on n2 crashed"));
	store_replica_state states[2] = { STORE_REPLICA_OUTDATED, STORE_REPLICA_INCONSISTENT };
	apply_ok(t, store_disk_cmd_replicas(disk(t), states));
	g_autofree char *down = alert_text(t, none);
	g_assert_nonnull(strstr(down, "critical: eSAN disk db0 has no up-to-date replica (the one on n1 is outdated)"));
	g_assert_nonnull(strstr(down, "critical: eSAN disk db0 has no up-to-date replica (the one on n2 is inconsistent)"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/esan/create", test_create);
	g_test_add_func("/esan/refused", test_refused);
	g_test_add_func("/esan/names", test_names);
	g_test_add_func("/esan/volumes", test_volumes);
	g_test_add_func("/esan/outdate", test_outdate);
	g_test_add_func("/esan/detach", test_detach);
	g_test_add_func("/esan/needs", test_needs);
	g_test_add_func("/esan/promote", test_promote);
	g_test_add_func("/esan/resolve", test_resolve);
	g_test_add_func("/esan/sync-gate", test_sync_gate);
	g_test_add_func("/esan/peer-gone", test_peer_gone);
	g_test_add_func("/esan/verify", test_verify);
	g_test_add_func("/esan/verify-overtaken", test_verify_overtaken);
	g_test_add_func("/esan/orphans", test_orphans);
	g_test_add_func("/esan/storage-address", test_storage_address);
	g_test_add_func("/esan/facts", test_facts_esan);
	g_test_add_func("/esan/alerts", test_alerts);
	return g_test_run();
}
