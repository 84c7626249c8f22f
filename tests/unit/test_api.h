/*
 * What the API tests (test_api*.c) share: a fresh cluster of three nodes
 * per test (tests/lib/testnode.h), and the steps many tests take through
 * the API — define a VM, start it, add a fence device — with the checks
 * that they worked.
 */
#pragma once

#include "common/json.h"
#include "store/disk.h"
#include "store/vm.h"
#include "testcall.h"
#include "testloop.h"
#include "testnode.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct {
	testcluster *tc;
	testnode *n[4];   /* n[1], n[2], n[3] */
} fixture;

typedef void (*api_test_fn)(fixture *f, gconstpointer data);

/* Add test @path: @fn on a new cluster of three nodes whose first
 * settings are @settings (JSON text, or NULL). */
void api_test_add(const char *path, api_test_fn fn, const char *settings);
/* The settings of a cluster in lab mode (HA VMs start without fencing). */
#define LAB_MODE "{\"lab_mode\": true}"

/* A valid domain XML (libvirt's test driver checks it). */
char *vm_xml(const char *name, const char *uuid, unsigned memory_mib);
/* Define VM @name through node n@node with herd's attributes json_pack(@fmt, …)
 * (NULL: none); its UUID. */
char *vm_define(fixture *f, unsigned node, const char *name, const char *fmt, ...)
	G_GNUC_WARN_UNUSED_RESULT;
/* Start it through n@node: the answer says it runs on node @where, and
 * that node's hypervisor runs it. */
void vm_start(fixture *f, unsigned node, const char *name, const char *where);
/* Every node reports that it reaches every storage and virtual switch the
 * store has now, as herdd's reach checker would (daemon/reach_check.h). */
void reach_all(fixture *f);
/* The VM as node n@node's store has it (NULL if undefined). */
const store_vm *vm_stored(fixture *f, unsigned node, const char *uuid);
/* Does n@node's hypervisor run it? */
bool vm_runs_on(fixture *f, const char *uuid, unsigned node);
/* Where a VM runs, by the hypervisors: "n2", or NULL if nowhere; fails the
 * test if it runs on two. */
const char *vm_runs_where(fixture *f, const char *uuid);

/* Add fence device @name (agent fence_test, a password among its
 * parameters) through n@node, with plugs json_pack(@plugs_fmt, …). */
test_answer *fence_device_add(fixture *f, unsigned node, const char *name, const char *plugs_fmt, ...);

/* A request that must be refused, and how. */
typedef struct {
	unsigned node;        /* sent to n@node */
	const char *method;
	const char *path;
	const char *body;     /* as sent (JSON text, or not), or NULL */
	long status;
	const char *error;    /* in the error's message */
} refusal;
/* Send each of @refusals: each must get its error. */
void expect_refusals(fixture *f, const refusal *refusals, size_t n);
#define EXPECT_REFUSALS(f, table) expect_refusals((f), (table), G_N_ELEMENTS(table))

/* What a node that joins sends a member (POST /api/v1/cluster/nodes):
 * node @name on one link @link, with a certificate request of its own. */
json_t *join_request(const char *name, const char *link, long long protocol);

/* Submitting @cmd (borrowed) through n@node is refused by the store as a
 * conflict, with exactly @message. */
void expect_submit_conflict(fixture *f, unsigned node, json_t *cmd, const char *message);

/* Does n@node's HA engine take exactly @names ("n3", "n3,n4"; NULL: none)
 * for lost and not fenced? */
bool lost_nodes_are(fixture *f, unsigned node, const char *names);
/* Is node @name's down mark cleared in every powered node's store? */
bool node_down_cleared(fixture *f, const char *name);

/* GET /api/v1/vms/@ref on n@node: the VM (valid while *@keep lives). */
json_t *get_vm(fixture *f, unsigned node, const char *ref, test_answer **keep);
/* POST /api/v1/vms/@vm/@action with body json_pack(@fmt, …) (NULL: none). */
test_answer *vm_action(fixture *f, unsigned node, const char *vm, const char *action,
		       const char *fmt, ...);
/* The string @key of object @j, or NULL. */
const char *str(json_t *j, const char *key);
/* Does GET /api/v1/vms/@vm on n@node show @key as @want now? */
bool vm_shows(fixture *f, unsigned node, const char *vm, const char *key, const char *want);
/* Record the replica states of eSAN disk @name (n1 commits). */
void esan_set_states(fixture *f, const char *name, store_replica_state a, store_replica_state b);
