/*
 * The HA engine in herdd: the node agent, the coordinator, the cluster-wide
 * facts and fencing, wired to corosync (STATUS and VM request messages,
 * membership), the replicated store and the node's hypervisor.
 *
 * Everything reacts to events — a store change, a fact, a membership
 * change, a fence result — by one "run" on the main loop right after, which
 * lets the agent reconcile and the coordinator decide.
 */
#pragma once

#include "cluster/service.h"
#include "ha/agent.h"
#include "ha/fence.h"
#include "virt/driver.h"

#include <glib.h>
#include <jansson.h>

typedef struct herd_ha herd_ha;

/* The engine of node @node_name over @cluster, running VMs with @virt (the
 * caller's; it must outlive the engine). */
herd_ha *herd_ha_new(herd_cluster *cluster, const char *node_name, herd_virt *virt);
void herd_ha_free(herd_ha *h);

/* Where a VM is and how it is: {"state","node","since_ms","error"}. */
json_t *herd_ha_vm_runtime(herd_ha *h, store_object *vm);
/* Is the VM reported anywhere but stopped? *@node gets where (borrowed). */
bool herd_ha_vm_active(herd_ha *h, const char *uuid, const char **node);

/* The coordinator's alerts and N+1 state, from whichever node coordinates:
 * {"coordinator":"n1","alerts":[…],"n_plus_1":…,"fencing":[…]} or null. */
json_t *herd_ha_cluster_status(herd_ha *h);
/* A node's facts as the API shows them ({"herd_up","resources","vms"}), or NULL. */
json_t *herd_ha_node_status(herd_ha *h, uint32_t nodeid);

/* Reboot/reset/suspend/resume a VM where it runs; @done on the main loop. */
void herd_ha_vm_request(herd_ha *h, const char *uuid, herd_vm_op op, herd_virt_done done,
			gpointer user);

/* The fence targets (devices with a plug) for @node; empty if none. */
GPtrArray *herd_ha_fence_targets(herd_ha *h, const char *node);

/* Fence @node now from this node (herd node fence); the result is recorded
 * in the store like the coordinator's. */
void herd_ha_fence_now(herd_ha *h, const char *node, herd_fence_done done, gpointer user);

/* Lost nodes not yet fenced or confirmed down (names; free the array). */
GPtrArray *herd_ha_unfenced_lost(herd_ha *h);

/* N+1: would every HA VM still find room after any one node fails, with
 * @uuid running too?  *@detail says why not (g_free). */
bool herd_ha_admission(herd_ha *h, const char *uuid, char **detail);

/* Run the engine soon (after a change the API made). */
void herd_ha_kick(herd_ha *h);
