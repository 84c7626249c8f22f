/*
 * The HA engine's insides (ha/engine.h), shared by its files: engine.c (the
 * run, messages, membership, operators' requests, the agent's and the
 * coordinator's callbacks), engine_fence.c (the walks over fencing
 * levels), engine_shutdown.c (the host's shutdown and the node's return)
 * and engine_view.c (the queries).  Not for use outside src/ha/engine*.c.
 */
#pragma once

#include "ha/agent.h"
#include "ha/coordinator.h"
#include "ha/engine.h"
#include "ha/facts.h"
#include "ha/fencer.h"

#include <glib.h>
#include <stdint.h>

/* An operator's request on a VM of another node, waiting for its answer. */
typedef struct {
	uint64_t id;
	int64_t deadline_ms;
	herd_virt_done done;
	gpointer user;
} vm_request;

/* Fencing one node from here: after its delay, the walk over its levels. */
typedef struct {
	herd_engine *e;
	char *node;
	int64_t start_at_ms;          /* the two-node tie-break delay ends */
	int64_t started_ms;
	herd_fencer *fencer;          /* NULL until it starts */
	herd_engine_fence_done done;  /* an operator's (herd node fence), or NULL */
	gpointer user;
	unsigned returns_at_off;      /* the node's returns when its last "off" or "reboot" was asked for */
	bool finished;
} fence_walk;

/* What the engine looked at in its last full run (herd_engine_run). */
typedef struct {
	store_state *st;
	store_position pos;
	uint32_t *ring;               /* n_ring ids */
	size_t n_ring;
	uint32_t *group;              /* n_group ids */
	size_t n_group;
	uint32_t self;
	bool synced, primary, durable, quorate;
	GHashTable *departures;       /* a copy of the view's (NULL: none) */
} seen_view;

/* A fence agent run under way: whose, and which of its steps. */
typedef struct {
	fence_walk *walk;
	unsigned step;
} agent_run;

struct herd_engine {
	char *node;
	herd_virt *virt;
	herd_engine_io io;
	gpointer user;
	herd_facts *facts;
	herd_agent *agent;
	herd_coord *coord;
	int64_t now_ms;               /* of the event being handled */
	bool status_due;
	/* The group grew and nobody left it: the STATUS that asks for waits
	 * for the store's sync, until status_hold_ms at most (0: not set yet). */
	bool status_after_sync;
	int64_t status_hold_ms;
	uint32_t *last_group;         /* the group at its last change (n_last_group ids) */
	size_t n_last_group;
	int64_t status_sent_ms;       /* 0: never */
	herd_node_resources resources_sent;
	GHashTable *requests;         /* id -> vm_request* */
	uint64_t next_request;
	GPtrArray *walks;             /* fence_walk* */
	GHashTable *runs;             /* run id -> agent_run* */
	uint64_t next_run;
	herd_engine_view view;        /* of the event being handled */
	GHashTable *in_ring;          /* node ids in the ring at the last look */
	GHashTable *returns;          /* node id -> times it came (back) into the ring */
	GHashTable *synced_with;      /* node ids whose herd had the same store as this one since it started */
	char *refused;                /* why the coordinator's last change was refused */
	json_t *migration;            /* this node's readiness for live migration, or NULL */
	json_t *reach;                /* what this node found of the storages and switches, or NULL */
	json_t *usage;                /* its dir storages' size and free space, or NULL */
	json_t *esan;                 /* its herd-san's state of each eSAN volume, or NULL */
	json_t *fence_standby;        /* its waiting fence agents (ha/fence_pool.h), or NULL */
	json_t *links;                /* its knet links to each peer (ha/links.h), or NULL */
	int64_t links_due_ms;         /* they changed: in a STATUS by then; 0: sent */
	json_t *ping;                 /* what it makes of the ping nodes (ha/ping.h), or NULL */
	json_t *check_alerts;         /* the alerts of the latest herd check (ha/check.h), or NULL */
	json_t *check_results;        /* that check's report ({"node","time_ms","results"}), or NULL */
	/* A run reconciles and coordinates only if something happened since
	 * the last that did (an event, a wakeup asked for by the agent or the
	 * coordinator, another view): with 10,000 VMs each costs milliseconds,
	 * and the 30 s refresh of the facts changes nothing. */
	bool happened;                /* an event since the last full run */
	int64_t due_ms;               /* the agent's or coordinator's earliest wakeup; 0: none */
	seen_view seen;
	/* Only changes of inert VMs (engine.c: changes_inert()) came since
	 * the last full run, which saw the store durable: the durable flag's
	 * dip and return while they are confirmed start nothing. */
	bool absorbing;
	uint64_t full_runs;           /* herd_engine_full_runs() */
	/* Live migrations: every member's last PROGRESS (node id -> its
	 * {uuid: progress} object), and when this node last sent its own. */
	GHashTable *progress;
	int64_t progress_sent_ms;     /* 0: its last said that none runs */
	/* The host's shutdown (herd_engine_shutdown()). */
	struct {
		int64_t since_ms;     /* 0: it does not shut down */
		int64_t deadline_ms;  /* shutdown_timeout_s from then */
		bool marked;          /* the node is in maintenance for it */
		unsigned attempts;    /* of the change that marks it */
		bool over;            /* io.leave() was called */
		GHashTable *here;     /* uuids of the VMs here when it was marked */
		char *waiting;        /* what was logged last as still leaving */
	} shutdown;
	/* This node's own changes under way (HERD_SUBMIT_NODE), in the order
	 * submitted, which is the order their answers come in: node_change. */
	GQueue *node_changes;
	int64_t return_retry_ms;      /* ending the shutdown mark failed: again then */
};

/* Something happened that the next run must act on: run soon. */
static inline void run_soon(herd_engine *e)
{
	e->happened = true;
	e->io.wakeup(e->user, 0);
}

static inline void status_soon(herd_engine *e)
{
	e->status_due = true;
	run_soon(e);
}

static inline store_state *state(herd_engine *e)
{
	return e->view.st;
}

/* Look at the cluster (engine.c): at every event, before anything else. */
void engine_look(herd_engine *e);
/* How many times node @node came (back) into corosync's ring. */
unsigned engine_returns_of(herd_engine *e, const char *node);
/* The store's name of node @nodeid, or NULL. */
const char *engine_name_of(herd_engine *e, uint32_t nodeid);
/* The coordinator's (and the scheduler's) view of the cluster now. */
herd_coord_view engine_coord_view(herd_engine *e);

/* engine_fence.c: fence @node from here (@done: an operator's, or NULL). */
void engine_start_fence(herd_engine *e, const char *node, herd_engine_fence_done done,
			gpointer user);
/* Start the walks whose delay is over; forget the finished ones; the next
 * delay to wake up for, or 0. */
int64_t engine_walks_step(herd_engine *e);
void engine_walk_free(fence_walk *w);

/* engine_shutdown.c: at every run. */
void engine_shutdown_check(herd_engine *e);
void engine_shutdown_return(herd_engine *e);
/* A change of this node's own (HERD_SUBMIT_NODE) was committed, or failed. */
void engine_node_change_done(herd_engine *e, const GError *error);
