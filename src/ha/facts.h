/*
 * What every node knows about what actually runs: the facts each herdd
 * multicasts about its own node (STATUS messages: its VMs as its hypervisor
 * reports them, its capacity, errors, and — from the coordinator — alerts),
 * kept per node.  Soft state: never persisted, re-sent by every member after
 * every membership change, so a fact older than the last change is not
 * trusted.
 */
#pragma once

#include "store/state.h"
#include "virt/driver.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct herd_node_facts {
	char *name;
	uint32_t nodeid;
	uint64_t round;            /* membership round the facts belong to */
	uint64_t index;            /* the store position the node had applied when it sent them */
	int64_t received_ms;
	GHashTable *vms;           /* uuid -> herd_vm_fact* */
	herd_node_resources resources;
	bool virt_ok;              /* its hypervisor connection works */
	json_t *errors;            /* {uuid: "start failed: …"} */
	json_t *start_failures;    /* {uuid: failed starts in a row there} */
	json_t *handed;            /* {uuid: node} migrated away, not reported there yet */
	json_t *pending;           /* {uuid: ["memory"…]}: configuration its VMs do not run
				    * with yet (herd_agent_pending) */
	json_t *coordinator;       /* alerts etc. if it coordinates, else NULL */
	json_t *migration;         /* {"ready":bool[,"problem":"…"]}: its host set up for live
				    * migration (daemon/virt_setup.c), or NULL if it does
				    * not say (yet) */
	GHashTable *alerts_by_vm;  /* its coordinator alerts: VM uuid -> message (borrowed
				    * from @coordinator), or NULL */
	GHashTable *seen;          /* node ids (GUINT_TO_POINTER) its herd has seen in
				    * the ring since it started (see herd_coord_joins) */
	json_t *reach;             /* {uuid: {"ok":bool[,"problem":"…"]}}: what it found of
				    * each storage and virtual switch (daemon/reach_check.h);
				    * empty if it does not say */
	json_t *usage;             /* {uuid: {"size":bytes,"free":bytes}}: its dir storages'
				    * filesystems as it last saw them (shown, never decided on) */
	GHashTable *reached;       /* the uuids of @reach that are ok (borrowed keys) */
	json_t *fence_standby;     /* {device: {"agent":…,"pids":[…]}}: its waiting fence
				    * agents (ha/fence_pool.h); empty if it has none */
	json_t *links;             /* {node: [{"link":L,"connected":bool}…]}: corosync's
				    * knet links to each other node as it sees them
				    * (ha/links.h); empty if it does not say */
	json_t *ping;              /* {"lost":bool,"targets":{address:bool}}: what it makes of
				    * the ping nodes (ha/ping.h), or NULL: none configured,
				    * or it does not say */
	bool ping_lost;            /* ... it reaches none of them */
	GBytes *payload;           /* the STATUS they were read from */
	gint refcount;
} herd_node_facts;

/* A node's facts are replaced, not changed, when it sends new ones (only
 * its round and received_ms move on): a reference keeps them as they are
 * for whoever reads them later (herd_runtime_view). */
herd_node_facts *herd_node_facts_ref(herd_node_facts *n);
void herd_node_facts_unref(herd_node_facts *n);

typedef struct herd_facts {
	GHashTable *nodes;         /* nodeid -> herd_node_facts* */
	uint64_t round;            /* bumped at every membership change */
} herd_facts;

herd_facts *herd_facts_new(void);
void herd_facts_free(herd_facts *f);

/* A membership change: every node's facts become stale until it resends. */
void herd_facts_new_round(herd_facts *f);
/* Forget a node (it left the group). */
void herd_facts_forget(herd_facts *f, uint32_t nodeid);

/* What a node says about itself in its STATUS. */
typedef struct herd_node_report {
	const char *name;
	uint64_t index;            /* the store position it has applied */
	GArray *vm_facts;          /* herd_vm_fact, or NULL */
	herd_node_resources resources;
	bool virt_ok;
	json_t *errors;            /* {uuid: message}, or NULL */
	json_t *start_failures;    /* {uuid: count}, or NULL */
	json_t *handed;            /* {uuid: node}, or NULL */
	json_t *coordinator;       /* if it coordinates, or NULL */
	json_t *migration;         /* {"ready":…,"problem":…} once its host was looked at, or NULL */
	GHashTable *seen;          /* node ids (GUINT_TO_POINTER) seen in the ring
				    * since this herd started, or NULL */
	json_t *pending;           /* {uuid: [change…]}, or NULL */
	json_t *reach;             /* {uuid: {"ok","problem"}}, or NULL */
	json_t *usage;             /* {uuid: {"size","free"}}, or NULL */
	json_t *fence_standby;     /* {device: {"agent","pids"}}, or NULL */
	json_t *links;             /* {node: [{"link","connected"}…]}, or NULL */
	json_t *ping;              /* herd_ping_json(), or NULL */
} herd_node_report;

/* Encode @r as a STATUS payload. */
char *herd_facts_encode(const herd_node_report *r, size_t *len);
/* Take a STATUS payload from @nodeid; false if malformed (ignored then).
 * *@changed (may be NULL) says whether the node's facts are other than
 * before: not when it re-sends what it said in this round, nor when only
 * its free memory or its storages' usage moved (shown, never decided on). */
bool herd_facts_update(herd_facts *f, uint32_t nodeid, const void *payload, size_t len,
		       int64_t now_ms, bool *changed);

/* The VMs (their uuids, g_free'd by the array) that two reports of one
 * node in one round, @before and @after, may show differently where they
 * run (herd_runtime_view_get(): a VM's state, since when, an agent's error
 * about it, the coordinator's alert about it); empty if none.  NULL when
 * that cannot be said VM by VM — the node's hypervisor connection came or
 * went (its VMs' state is unknown then, or known again), the rounds differ
 * — or when more than @max VMs differ (a node's whole load starting). */
GPtrArray *herd_node_facts_vms_changed(const herd_node_facts *before, const herd_node_facts *after,
				       guint max);

/* The node's facts if they are from the current round, else NULL. */
herd_node_facts *herd_facts_fresh(herd_facts *f, uint32_t nodeid);
/* The fact about @uuid from the node that runs it (herd_vm_state_runs), else
 * from any node that knows it (stopped, or incoming), by fresh facts, or NULL. */
const herd_vm_fact *herd_facts_vm(herd_facts *f, const char *uuid, uint32_t *nodeid);

/* Every node's view of its links, by fresh facts: {node: its links}
 * (herd_node_facts.links); nodes that say nothing are left out. */
json_t *herd_facts_links(herd_facts *f);

/* What the herd-sans of nodes with fresh facts report of their eSAN volumes
 * (the "esan" member of their usage): {disk uuid: {node name: state}}, the
 * node names from @st (a node the store does not know is left out). */
json_t *herd_facts_esan(herd_facts *f, store_state *st);

/* A VM that fresh facts show anything but stopped. */
typedef struct herd_active_vm {
	const herd_vm_fact *fact;  /* as herd_facts_vm() gives it (borrowed from the facts), or
				    * NULL if it is only incoming somewhere */
	uint32_t on;               /* the node of @fact */
	uint32_t incoming_on;      /* a node with a live migration of it arriving, or 0 */
	size_t n_where;
	uint32_t where[];          /* the nodes where a copy runs (herd_vm_state_runs), @on first */
} herd_active_vm;
/* Every such VM at once: uuid (borrowed) -> herd_active_vm*, valid until
 * the facts change (or while their herd_node_facts are held); free the table.  For a pass over every VM of the
 * cluster, instead of asking every node's facts for each. */
GHashTable *herd_facts_active(herd_facts *f);
