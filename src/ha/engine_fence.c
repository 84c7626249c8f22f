/* Fencing from one node's engine: the walks over a node's fencing levels,
 * after the two-node tie-break delay, and their fence agent runs. */
#include "ha/engine_private.h"

#include "common/log.h"
#include "store/cluster.h"
#include "store/node.h"

#include <string.h>


/* In a two-node cluster every node but the lowest waits a little before
 * fencing, so that of two nodes fencing each other the first one wins.
 * With a quorum device every node waits until a stale vote of the device
 * has expired (STORE_QDEVICE_FENCE_WAIT_MS): only the partition qnetd chose
 * is quorate then, and a walk begins only while its node is. */
static int64_t fence_delay_ms(herd_engine *e)
{
	store_state *st = state(e);
	if (store_cluster_qdevice_algorithm(st))
		return STORE_QDEVICE_FENCE_WAIT_MS;
	if (store_state_count(st, STORE_KIND_NODE) != 2)
		return 0;
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++)
		if (store_node_of(nodes->pdata[i])->nodeid < e->view.self)
			return store_settings_of(st)->fence_delay_ms;
	return 0;
}

static void walk_run(gpointer user, unsigned step, const herd_fence_target *t, const char *action)
{
	fence_walk *w = user;
	herd_engine *e = w->e;
	uint64_t id = e->next_run++;
	agent_run *r = g_new0(agent_run, 1);
	r->walk = w;
	r->step = step;
	g_hash_table_insert(e->runs, g_memdup2(&id, sizeof(id)), r);
	/* A reboot cuts the power too.  The node it switches on again may
	 * be back in the ring before the walk ends: that fails the walk, as
	 * a return after an "off" does (back before its fence is in the
	 * store, it may start its VMs while they start elsewhere). */
	if (strcmp(action, "off") == 0 || strcmp(action, "reboot") == 0)
		w->returns_at_off = engine_returns_of(e, w->node);
	e->io.fence_agent(e->user, id, t, action);
}

static void walk_done(gpointer user, bool ok, const char *devices, const char *detail,
		      double agent_seconds)
{
	fence_walk *w = user;
	herd_engine *e = w->e;
	w->finished = true;
	g_autofree char *stale = NULL;
	if (ok && engine_returns_of(e, w->node) != w->returns_at_off) {
		ok = false;
		detail = stale = g_strdup_printf("node %s came back while it was being fenced (%s)", w->node,
						 detail);
	}
	log_info("fencing node %s %s after %.3f s (fence agents %.3f s): %s", w->node,
		 ok ? "succeeded" : "FAILED", (double)(e->now_ms - w->started_ms) / 1000, agent_seconds,
		 detail);
	herd_coord_fenced(e->coord, w->node, ok, devices, detail, e->now_ms);
	/* A lone node of two that fenced its peer may change the store. */
	e->io.fenced(e->user);
	if (w->done)
		w->done(ok, devices, detail, agent_seconds, w->user);
	run_soon(e);
}

static const herd_fencer_io fencer_io = {
	.run = walk_run,
	.done = walk_done,
};

static void walk_begin(fence_walk *w)
{
	herd_engine *e = w->e;
	GPtrArray *targets = herd_fence_targets(state(e), w->node);
	if (targets->len == 0) {
		g_ptr_array_free(targets, TRUE);
		g_autofree char *detail = g_strdup_printf("no fence device has a plug for node %s", w->node);
		walk_done(w, false, "", detail, 0);
		return;
	}
	w->fencer = herd_fencer_new(w->node, targets, store_settings_of(state(e))->fence_action,
				    &fencer_io, w);
	herd_fencer_begin(w->fencer);
}

void engine_walk_free(fence_walk *w)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, w->e->runs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (((agent_run *)v)->walk == w)
			g_hash_table_iter_remove(&it);
	herd_fencer_free(w->fencer);
	g_free(w->node);
	g_free(w);
}

int64_t engine_walks_step(herd_engine *e)
{
	int64_t next = 0;
	for (guint i = 0; i < e->walks->len;) {
		fence_walk *w = e->walks->pdata[i];
		/* The coordinator's fence, delayed: its partition may have lost
		 * quorum meanwhile (a qdevice's vote that expired), and then
		 * the lost node may be the one that goes on. */
		if (!w->fencer && !w->finished && w->start_at_ms <= e->now_ms && !w->done &&
		    !e->view.quorate)
			walk_done(w, false, "",
				  "not fenced: this node's partition lost quorum before the fence began", 0);
		else if (!w->fencer && !w->finished && w->start_at_ms <= e->now_ms)
			walk_begin(w);
		if (w->finished) {
			g_ptr_array_remove_index(e->walks, i);
			continue;
		}
		if (!w->fencer) {
			int64_t left = w->start_at_ms - e->now_ms;
			next = next ? MIN(next, left) : left;
		}
		i++;
	}
	return next;
}

void engine_start_fence(herd_engine *e, const char *node, herd_engine_fence_done done, gpointer user)
{
	/* One walk per node at a time: an operator's fence and the
	 * coordinator's would switch it twice and report each other's end. */
	for (guint i = 0; i < e->walks->len; i++) {
		fence_walk *under_way = e->walks->pdata[i];
		if (!under_way->finished && strcmp(under_way->node, node) == 0) {
			if (done && !under_way->done) {
				under_way->done = done;
				under_way->user = user;
			} else if (done) {
				done(false, "", "A fence of this node is under way already.", 0, user);
			}
			return;
		}
	}
	fence_walk *w = g_new0(fence_walk, 1);
	w->e = e;
	w->node = g_strdup(node);
	w->started_ms = e->now_ms;
	w->done = done;
	w->user = user;
	int64_t delay = done ? 0 : fence_delay_ms(e);
	w->start_at_ms = e->now_ms + delay;
	if (delay > 0)
		log_info("fencing %s after a delay of %" G_GINT64_FORMAT " ms (%s)", node, delay,
			 store_cluster_qdevice_algorithm(state(e)) ? "until a stale qdevice vote expired"
								    : "two-node tie-break");
	g_ptr_array_add(e->walks, w);
	engine_walks_step(e);
	if (!w->finished && !w->fencer)
		e->io.wakeup(e->user, delay);
}

void herd_engine_agent_done(herd_engine *e, uint64_t run, bool ok, const char *detail, double secs,
			    int64_t now_ms)
{
	e->now_ms = now_ms;
	e->happened = true;
	engine_look(e);
	agent_run *r = g_hash_table_lookup(e->runs, &run);
	if (!r)
		return; /* its walk was abandoned */
	fence_walk *w = r->walk;
	unsigned step = r->step;
	g_hash_table_remove(e->runs, &run);
	herd_fencer_result(w->fencer, step, ok, detail, secs);
	engine_walks_step(e);
}

void herd_engine_fence_now(herd_engine *e, const char *node, herd_engine_fence_done done,
			   gpointer user, int64_t now_ms)
{
	e->now_ms = now_ms;
	e->happened = true;
	engine_look(e);
	engine_start_fence(e, node, done, user);
}
