#define G_LOG_DOMAIN "corosync"
#include "cluster/corosync.h"

#include "cluster/links_turn.h"

#include "common/error.h"
#include "common/log.h"

#include <corosync/cfg.h>
#include <corosync/cmap.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <glib-unix.h>
#include <string.h>

/* Messages waiting for corosync to take them, at most this many bytes. */
#define SEND_QUEUE_MAX_BYTES (256u * 1024 * 1024)

/* How often the cached answers of corosync (quorum details, link state)
 * are asked for again; also at once when the quorum changes. */
#define QUERY_PERIOD_MS 1000

/*
 * The links are read only once corosync's ring has not changed for this
 * long, not even those of a node that just joined.  corosync answers
 * corosync_cfg_node_status_get() on its main thread from knet
 * (knet_link_get_status(), which takes knet's global lock for writing and
 * restarts a path MTU discovery under way), and while a membership change
 * syncs it takes no cfg request at all.  With every node asking for every
 * peer's links every second through the joins of a 32-node formation on
 * the 2-core test machine, a join's membership change never ended in 7
 * of 8 runs ("Corosync main process was not scheduled" for seconds on
 * every node); without questions near the changes 32 nodes formed in all
 * 6 runs (bench/README.md, 2026-12-07).  A link's state matters between
 * members that stay: after a join or a loss its alert can wait until the
 * ring has settled.
 *
 * A loss comes unannounced, and the ring's change is told only once it has
 * ended: so before each question the worker looks at corosync's own
 * statistics (its stats map, answered from counters without knet's lock)
 * and asks no more, and waits LINKS_SETTLE_MS again, once the token has
 * not come for half the token timeout or a membership round (gather)
 * began since its last look (ring_quiet()); and a round asks about a few
 * peers only, in turn (links_turn.h).  At 32 nodes on the test machine a
 * power cut broke the ring in 5 of 6 runs with every peer asked every
 * second, in 1 of 6 with both (bench/README.md, 2026-12-07, third).
 */
#define LINKS_SETTLE_MS 5000

/*
 * Why a worker thread: corosync answers a library's request only when it
 * takes the request, and while its membership syncs (after a split or a
 * join, and with a quorum device until the device's poll, up to 3 s) it
 * takes none for CPG, cfg or cmap (flow control in corosync's ipc_glue.c,
 * QB_IPCS_RATE_OFF_2 for every service but votequorum).  libcorosync waits
 * for the answer with no timeout (CS_IPC_TIMEOUT_MS -1), so a call such as
 * corosync_cfg_node_status_get() or cpg_join() on the main loop stalls it
 * for the whole sync.  What the main loop itself calls never waits for an
 * answer: cpg_dispatch()/votequorum_dispatch() with CS_DISPATCH_ALL (they
 * read what is there, timeout 0) and cpg_mcast_joined() (it only writes to
 * the shared ring, and says CS_ERR_TRY_AGAIN under flow control; the message
 * is queued and sent later).  Everything else (connecting, joining,
 * leaving, finalizing, the quorum and link queries, the reload of the
 * configuration when a node joins or leaves) runs on one worker
 * thread, one job at a time, in the order asked: libqb's handle tables are
 * not safe for two threads creating or destroying handles at once, so all
 * creation and destruction happens there.  Results come back to the main
 * loop, which keeps the last answers and serves them at once.
 */
typedef struct herd_corosync herd_corosync;

/* A job's way back to its bus, which may be freed while the job runs. */
typedef struct bus_ref {
	gint refs;
	herd_corosync *c;            /* NULL once the bus is freed */
	GMainContext *context;       /* the main loop's */
} bus_ref;

typedef enum { JOB_CONNECT, JOB_QUERY, JOB_CLOSE, JOB_RELOAD } job_kind;

/* The handles of one connection (the main loop's or the worker's own). */
typedef struct handles {
	cpg_handle_t cpg;
	bool cpg_ok;
	votequorum_handle_t vq;
	bool vq_ok;
	corosync_cfg_handle_t cfg;
	bool cfg_ok;
	/* the worker's query handles only: corosync's settings and statistics */
	cmap_handle_t icmap, stats;
	bool stats_ok;
	uint32_t token_ms;           /* the token timeout in use */
	uint64_t gathers;            /* stats.srp.gather_entered, last look */
} handles;

typedef struct job {
	job_kind kind;
	bus_ref *ref;
	/* JOB_CONNECT: in, the group; out, the handles and what they say */
	char *group;
	bool first;                  /* the first attempt since start */
	handles h;
	uint32_t nodeid;
	int cpg_fd, vq_fd;
	char *problem;               /* why not connected (NULL: corosync not reachable) */
	/* JOB_QUERY: in, the nodes whose links are wanted; out, the answers */
	GArray *nodeids;             /* uint32_t */
	char *unsettled;             /* links not asked: why the ring seems to change */
	json_t *quorum;              /* votequorum_getinfo() as JSON, or NULL */
	GHashTable *links;           /* nodeid -> json_t array */
	/* JOB_CLOSE: leave the group first */
	bool leave;
	/* JOB_RELOAD: who hears the outcome, and the outcome */
	herd_bus_reload_done reload_done;
	gpointer reload_user;
	GError *reload_error;
} job;

struct herd_corosync {
	herd_bus bus;              /* first: a herd_corosync is a herd_bus */
	char *group;
	bool running;

	GThreadPool *worker;       /* one thread: every call that waits for corosync */
	GQueue *pending;           /* jobs for the worker, handed over from an idle */
	guint pending_idle;
	bus_ref *ref;
	bool connecting;           /* a JOB_CONNECT is under way */
	bool first_connect;

	cpg_handle_t cpg;
	bool cpg_ok;
	guint cpg_watch;
	uint32_t nodeid;

	votequorum_handle_t vq;
	bool vq_ok;
	guint vq_watch;
	bool quorate;

	corosync_cfg_handle_t cfg;
	bool cfg_ok;

	/* The last answers of the worker's queries, for the main loop. */
	handles query;             /* the worker's own handles, used only there */
	bool querying, query_again;
	guint query_timer;
	json_t *quorum_cache;      /* votequorum_getinfo(), or NULL */
	GHashTable *links_cache;   /* nodeid -> json_t array */
	GHashTable *links_wanted;  /* nodeids asked about, kept fresh */
	uint32_t links_next;       /* the next round starts at this node id */
	gint64 ring_changed_us;    /* monotonic time of the last change of the ring,
				    * or of the worker's sign of one (ring_quiet()) */

	guint retry_timer;
	GQueue *send_queue;        /* GBytes* */
	size_t send_queue_bytes;
	guint send_timer;
};

/* The callbacks of the C API carry no user pointer we can set per handle
 * besides the context; herdd has one connection, so a static is enough. */
static herd_corosync *the_corosync;

static void disconnect(herd_corosync *c, const char *why);
static void query_start(herd_corosync *c);

static void on_cpg_deliver(cpg_handle_t handle, const struct cpg_name *group_name,
			   uint32_t nodeid, uint32_t pid, void *msg, size_t msg_len)
{
	herd_corosync *c = the_corosync;
	if (c && c->bus.cb.deliver)
		c->bus.cb.deliver(c->bus.user, nodeid, msg, msg_len);
}

static void on_cpg_confchg(cpg_handle_t handle, const struct cpg_name *group_name,
			   const struct cpg_address *member_list, size_t member_list_entries,
			   const struct cpg_address *left_list, size_t left_list_entries,
			   const struct cpg_address *joined_list, size_t joined_list_entries)
{
	herd_corosync *c = the_corosync;
	if (!c)
		return;
	g_autofree uint32_t *ids = g_new(uint32_t, member_list_entries + 1);
	size_t n = 0;
	for (size_t i = 0; i < member_list_entries; i++) {
		bool dup = false;
		for (size_t k = 0; k < n; k++)
			dup |= ids[k] == member_list[i].nodeid;
		if (!dup)
			ids[n++] = member_list[i].nodeid;
	}
	GString *s = g_string_new(NULL);
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(s, " %u", ids[i]);
	log_info("CPG membership:%s (%zu left, %zu joined)", s->str, left_list_entries,
		 joined_list_entries);
	g_string_free(s, TRUE);
	if (c->bus.cb.confchg)
		c->bus.cb.confchg(c->bus.user, ids, n);
}

static void on_totem_confchg(cpg_handle_t handle, struct cpg_ring_id ring_id,
			     uint32_t member_list_entries, const uint32_t *member_list)
{
	herd_corosync *c = the_corosync;
	if (c)
		c->ring_changed_us = g_get_monotonic_time();
	if (c && c->bus.cb.ring_changed)
		c->bus.cb.ring_changed(c->bus.user, member_list, member_list_entries);
}

static void on_quorum(votequorum_handle_t handle, uint64_t context, uint32_t quorate,
		      uint32_t node_list_entries, votequorum_node_t node_list[])
{
	herd_corosync *c = the_corosync;
	if (!c)
		return;
	bool q = quorate != 0;
	if (q != c->quorate)
		log_info("votequorum: this partition is %s", q ? "quorate" : "NOT quorate");
	c->quorate = q;
	query_start(c);
	if (c->bus.cb.quorum_changed)
		c->bus.cb.quorum_changed(c->bus.user, q);
}

static gboolean on_cpg_ready(gint fd, GIOCondition cond, gpointer data)
{
	herd_corosync *c = data;
	cs_error_t rc = cpg_dispatch(c->cpg, CS_DISPATCH_ALL);
	if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
		c->cpg_watch = 0;
		disconnect(c, "CPG dispatch failed");
		return G_SOURCE_REMOVE;
	}
	if (c->bus.cb.burst_end)
		c->bus.cb.burst_end(c->bus.user);
	return G_SOURCE_CONTINUE;
}

static gboolean on_vq_ready(gint fd, GIOCondition cond, gpointer data)
{
	herd_corosync *c = data;
	cs_error_t rc = votequorum_dispatch(c->vq, CS_DISPATCH_ALL);
	if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
		c->vq_watch = 0;
		disconnect(c, "votequorum dispatch failed");
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* The worker thread                                                   */

static void bus_ref_unref(bus_ref *r)
{
	if (r && g_atomic_int_dec_and_test(&r->refs)) {
		g_main_context_unref(r->context);
		g_free(r);
	}
}

/* Finalize what @h holds (on the worker thread, or once it has stopped). */
static void handles_close(handles *h, const char *leave_group)
{
	if (h->cpg_ok && leave_group) {
		struct cpg_name name = { .length = (uint32_t)strlen(leave_group) };
		memcpy(name.value, leave_group, name.length);
		cpg_leave(h->cpg, &name);
	}
	if (h->cpg_ok)
		cpg_finalize(h->cpg);
	if (h->vq_ok)
		votequorum_finalize(h->vq);
	if (h->cfg_ok)
		corosync_cfg_finalize(h->cfg);
	if (h->stats_ok) {
		cmap_finalize(h->stats);
		cmap_finalize(h->icmap);
	}
	h->cpg_ok = h->vq_ok = h->cfg_ok = h->stats_ok = false;
}

static void job_free(job *j)
{
	if (!j)
		return;
	bus_ref_unref(j->ref);
	g_free(j->group);
	g_free(j->problem);
	g_free(j->unsettled);
	if (j->nodeids)
		g_array_unref(j->nodeids);
	json_decref(j->quorum);
	if (j->links)
		g_hash_table_unref(j->links);
	g_clear_error(&j->reload_error);
	g_free(j);
}

static job *job_new(herd_corosync *c, job_kind kind)
{
	job *j = g_new0(job, 1);
	j->kind = kind;
	j->ref = c->ref;
	g_atomic_int_inc(&c->ref->refs);
	return j;
}

/* votequorum_getinfo()'s answer as herd shows it; "quorate" is filled in
 * from the tracking callback when asked (corosync_quorum_info()). */
static json_t *quorum_json(const struct votequorum_info *info)
{
	json_t *out = json_pack("{s:b,s:i,s:i,s:i,s:i,s:b,s:b}", "quorate", 0, "votes",
				info->node_votes, "expected_votes", info->node_expected_votes,
				"total_votes", info->total_votes, "quorum", info->quorum, "two_node",
				(info->flags & VOTEQUORUM_INFO_TWONODE) != 0, "wait_for_all",
				(info->flags & VOTEQUORUM_INFO_WAIT_FOR_ALL) != 0);
	/* This node's corosync-qdevice as votequorum sees it: registered, alive
	 * (polling), and casting its vote for this partition. */
	if (info->flags & VOTEQUORUM_INFO_QDEVICE_REGISTERED)
		json_object_set_new(out, "qdevice",
				    json_pack("{s:i,s:b,s:b}", "votes", info->qdevice_votes, "alive",
					      (info->flags & VOTEQUORUM_INFO_QDEVICE_ALIVE) != 0, "cast_vote",
					      (info->flags & VOTEQUORUM_INFO_QDEVICE_CAST_VOTE) != 0));
	return out;
}

/* Ask @h's votequorum for this node's view; NULL if it cannot answer
 * (a broken connection is closed, and made again next time). */
static json_t *query_quorum(handles *h)
{
	if (!h->vq_ok && votequorum_initialize(&h->vq, NULL) == CS_OK)
		h->vq_ok = true;
	if (!h->vq_ok)
		return NULL;
	struct votequorum_info info = { 0 };
	cs_error_t rc = votequorum_getinfo(h->vq, 0, &info);
	if (rc == CS_OK)
		return quorum_json(&info);
	if (rc != CS_ERR_TRY_AGAIN) {
		votequorum_finalize(h->vq);
		h->vq_ok = false;
	}
	return NULL;
}

/*
 * Is corosync's ring quiet enough to be asked about links (LINKS_SETTLE_MS)?
 * Not once its token has not come for half the token timeout, nor once a
 * membership round began since the last look (@first: the first look of a
 * round of questions, which only notes the count: a change of the ring
 * before it is told by corosync, and waited for in query_start()).
 * Unknown (corosync too old for a statistic, or not answering): quiet, as
 * before this check.  Not quiet: *@why says why (g_free).
 */
static bool ring_quiet(handles *h, bool first, char **why)
{
	if (!h->stats_ok) {
		if (cmap_initialize(&h->icmap) != CS_OK)
			return true;
		if (cmap_initialize_map(&h->stats, CMAP_MAP_STATS) != CS_OK) {
			cmap_finalize(h->icmap);
			return true;
		}
		h->stats_ok = true;
	}
	/* with token_coefficient: a reload may change it */
	if (first && cmap_get_uint32(h->icmap, "runtime.config.totem.token", &h->token_ms) != CS_OK)
		h->token_ms = 0;
	uint64_t gathers = 0, since_token_ms = 0;
	cs_error_t rc = cmap_get_uint64(h->stats, "stats.srp.gather_entered", &gathers);
	if (rc == CS_OK && gathers != h->gathers) {
		h->gathers = gathers;
		if (!first) {
			*why = g_strdup("a membership round began");
			return false;
		}
	}
	if (rc == CS_OK && h->token_ms &&
	    cmap_get_uint64(h->stats, "stats.srp.time_since_token_last_received", &since_token_ms) == CS_OK &&
	    since_token_ms > h->token_ms / 2) {
		*why = g_strdup_printf("its token came %llu ms ago, token timeout %u ms",
				       (unsigned long long)since_token_ms, h->token_ms);
		return false;
	}
	if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN && rc != CS_ERR_NOT_EXIST) {
		cmap_finalize(h->stats);
		cmap_finalize(h->icmap);
		h->stats_ok = false;
	}
	return true;
}

static json_t *query_links(handles *h, uint32_t nodeid)
{
	if (!h->cfg_ok && corosync_cfg_initialize(&h->cfg, NULL) == CS_OK)
		h->cfg_ok = true;
	if (!h->cfg_ok)
		return NULL;
	struct corosync_cfg_node_status_v1 st;
	memset(&st, 0, sizeof(st));
	cs_error_t rc = corosync_cfg_node_status_get(h->cfg, nodeid, CFG_NODE_STATUS_V1, &st);
	if (rc != CS_OK) {
		if (rc != CS_ERR_TRY_AGAIN && rc != CS_ERR_NOT_EXIST) {
			corosync_cfg_finalize(h->cfg);
			h->cfg_ok = false;
		}
		return rc == CS_ERR_NOT_EXIST ? json_array() : NULL;
	}
	json_t *links = json_array();
	for (int i = 0; i < CFG_MAX_LINKS; i++) {
		struct corosync_knet_link_status_v1 *l = &st.link_status[i];
		if (!l->enabled)
			continue;
		json_array_append_new(links, json_pack("{s:i,s:b,s:b,s:i,s:s,s:s}", "link", i,
						       "enabled", l->enabled != 0, "connected",
						       l->connected != 0, "mtu", (int)l->mtu,
						       "src", l->src_ipaddr, "dst", l->dst_ipaddr));
	}
	return links;
}

/* Ask every node's corosync to read corosync.conf again, through @h's cfg
 * connection (made if needed); NULL, or why not. */
static GError *reload_config(handles *h)
{
	if (!h->cfg_ok && corosync_cfg_initialize(&h->cfg, NULL) == CS_OK)
		h->cfg_ok = true;
	if (!h->cfg_ok)
		return g_error_new(HERD_ERROR, HERD_ERR_UNAVAILABLE,
				   "Cannot reload corosync's configuration: corosync does not answer.");
	cs_error_t rc = corosync_cfg_reload_config(h->cfg);
	if (rc == CS_OK)
		return NULL;
	if (rc != CS_ERR_TRY_AGAIN) {
		corosync_cfg_finalize(h->cfg);
		h->cfg_ok = false;
	}
	return g_error_new(HERD_ERROR, HERD_ERR_IO,
			   "corosync refused to reload its configuration (error %d); see its log.", rc);
}

static void run_connect(job *j)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = on_cpg_deliver,
		.cpg_confchg_fn = on_cpg_confchg,
		.cpg_totem_confchg_fn = on_totem_confchg,
		.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
	};
	handles *h = &j->h;
	if (cpg_model_initialize(&h->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&model, NULL) != CS_OK)
		return;
	h->cpg_ok = true;
	unsigned int nodeid = 0;
	if (cpg_local_get(h->cpg, &nodeid) != CS_OK) {
		handles_close(h, NULL);
		return;
	}
	struct cpg_name name = { .length = (uint32_t)strlen(j->group) };
	memcpy(name.value, j->group, name.length);
	/* CS_ERR_TRY_AGAIN while corosync syncs its membership: retry, bounded. */
	cs_error_t rc;
	for (int i = 0; i < 100; i++) {
		rc = cpg_join(h->cpg, &name);
		if (rc != CS_ERR_TRY_AGAIN)
			break;
		g_usleep(10000);
	}
	if (rc != CS_OK) {
		j->problem = g_strdup_printf("cannot join CPG group %s: error %d", j->group, rc);
		handles_close(h, NULL);
		return;
	}
	cpg_fd_get(h->cpg, &j->cpg_fd);
	votequorum_callbacks_t vcb = { .votequorum_quorum_notify_fn = on_quorum };
	if (votequorum_initialize(&h->vq, &vcb) == CS_OK) {
		h->vq_ok = true;
		votequorum_trackstart(h->vq, 0, CS_TRACK_CHANGES | CS_TRACK_CURRENT);
		votequorum_fd_get(h->vq, &j->vq_fd);
	}
	if (corosync_cfg_initialize(&h->cfg, NULL) == CS_OK)
		h->cfg_ok = true;
	j->nodeid = nodeid;
}

static gboolean on_job_done(gpointer data);

/* The worker thread's one function: run @data, then hand it back to the
 * main loop.  @pool_data: the worker's own query handles. */
static void run_job(gpointer data, gpointer pool_data)
{
	job *j = data;
	switch (j->kind) {
	case JOB_CONNECT:
		run_connect(j);
		/* the first answers to serve, before the first refresh */
		if (j->h.cpg_ok)
			j->quorum = query_quorum(pool_data);
		break;
	case JOB_QUERY:
		j->quorum = query_quorum(pool_data);
		j->links = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
						 (GDestroyNotify)json_decref);
		for (guint i = 0; i < j->nodeids->len; i++) {
			uint32_t id = g_array_index(j->nodeids, uint32_t, i);
			if (!ring_quiet(pool_data, i == 0, &j->unsettled))
				break;
			json_t *l = query_links(pool_data, id);
			if (l)
				g_hash_table_insert(j->links, GUINT_TO_POINTER(id), l);
		}
		break;
	case JOB_CLOSE:
		handles_close(&j->h, j->leave ? j->group : NULL);
		break;
	case JOB_RELOAD:
		j->reload_error = reload_config(pool_data);
		break;
	}
	/* Always through a source: g_main_context_invoke() would run it here,
	 * on this thread, whenever the main thread does not hold its context
	 * (before the loop runs, or between a test's iterations). */
	GSource *back = g_idle_source_new();
	g_source_set_priority(back, G_PRIORITY_DEFAULT);
	g_source_set_callback(back, on_job_done, j, NULL);
	g_source_attach(back, j->ref->context);
	g_source_unref(back);
}

/* Hand every pending job to the worker, in the order asked. */
static void flush_jobs(herd_corosync *c)
{
	job *j;
	while ((j = g_queue_pop_head(c->pending)))
		g_thread_pool_push(c->worker, j, NULL);
}

static gboolean on_pending(gpointer data)
{
	herd_corosync *c = data;
	c->pending_idle = 0;
	flush_jobs(c);
	return G_SOURCE_REMOVE;
}

/* Jobs reach the worker from an idle, never from inside a callback: a stop
 * asked for during cpg_dispatch() must not have the worker finalize the
 * handle that cpg_dispatch() is still reading. */
static void push_job(herd_corosync *c, job *j)
{
	g_queue_push_tail(c->pending, j);
	if (!c->pending_idle)
		c->pending_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_pending, c, NULL);
}

/* Hand @h to the worker to finalize (leaving @group first if set): it
 * waits behind the jobs asked for before. */
static void close_on_worker(herd_corosync *c, handles *h, const char *leave_group)
{
	if (!h->cpg_ok && !h->vq_ok && !h->cfg_ok)
		return;
	job *j = job_new(c, JOB_CLOSE);
	j->h = *h;
	j->leave = leave_group != NULL;
	j->group = g_strdup(leave_group);
	memset(h, 0, sizeof(*h));
	push_job(c, j);
}

/* ------------------------------------------------------------------ */
/* The main loop's side                                                */

/* Once a second (QUERY_PERIOD_MS), and at a change of the quorum: the
 * quorum's details, and the links of a few peers in turn (links_turn.h). */
static void query_start(herd_corosync *c)
{
	if (!c->cpg_ok)
		return;
	if (c->querying) {
		c->query_again = true;
		return;
	}
	job *j = job_new(c, JOB_QUERY);
	j->nodeids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	/* Until then a node that just joined has no links read (api/node.c
	 * shows them unknown). */
	bool settled = g_get_monotonic_time() - c->ring_changed_us >= LINKS_SETTLE_MS * 1000;
	g_autoptr(GArray) all = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, c->links_wanted);
	while (settled && g_hash_table_iter_next(&it, &key, NULL)) {
		uint32_t id = GPOINTER_TO_UINT(key);
		g_array_append_val(all, id);
	}
	uint32_t turn[LINKS_TURN_PEERS];
	size_t n = links_turn((const uint32_t *)(void *)all->data, all->len, &c->links_next,
			      LINKS_TURN_PEERS, turn);
	g_array_append_vals(j->nodeids, turn, (guint)n);
	c->querying = true;
	push_job(c, j);
}

static gboolean on_query_timer(gpointer data)
{
	herd_corosync *c = data;
	if (!c->querying)
		query_start(c);
	return G_SOURCE_CONTINUE;
}

static void connected(herd_corosync *c, job *j)
{
	c->cpg = j->h.cpg;
	c->cpg_ok = true;
	c->vq = j->h.vq;
	c->vq_ok = j->h.vq_ok;
	c->cfg = j->h.cfg;
	c->cfg_ok = j->h.cfg_ok;
	memset(&j->h, 0, sizeof(j->h));
	c->nodeid = j->nodeid;
	c->cpg_watch = g_unix_fd_add(j->cpg_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_cpg_ready, c);
	if (c->vq_ok)
		c->vq_watch = g_unix_fd_add(j->vq_fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_vq_ready, c);
	else
		log_warn("cannot connect to votequorum; treating this partition as not quorate");
	json_decref(c->quorum_cache);
	c->quorum_cache = j->quorum;
	j->quorum = NULL;
	log_info("connected to corosync as node %u, joined group %s", c->nodeid, c->group);
	if (c->bus.cb.connected)
		c->bus.cb.connected(c->bus.user, c->nodeid);
	query_start(c);
}

static gboolean on_job_done(gpointer data)
{
	job *j = data;
	herd_corosync *c = j->ref->c;
	switch (j->kind) {
	case JOB_CONNECT:
		if (c)
			c->connecting = false;
		if (c && c->running && j->h.cpg_ok && !c->cpg_ok) {
			connected(c, j);
		} else if (c && c->running && !j->h.cpg_ok) {
			if (j->problem)
				log_warn("%s", j->problem);
			else if (j->first)
				log_info("corosync is not reachable yet; retrying every second");
		}
		/* stopped meanwhile: what it made goes */
		if (c)
			close_on_worker(c, &j->h, NULL);
		else
			handles_close(&j->h, NULL);
		break;
	case JOB_QUERY:
		if (!c)
			break;
		c->querying = false;
		if (j->unsettled) {
			log_info("corosync's ring seems to change (%s): its links are asked about again once it has not changed for %d s",
				 j->unsettled, LINKS_SETTLE_MS / 1000);
			c->ring_changed_us = g_get_monotonic_time();
		}
		if (c->cpg_ok) {
			if (j->quorum) {
				json_decref(c->quorum_cache);
				c->quorum_cache = j->quorum;
				j->quorum = NULL;
			}
			GHashTableIter it;
			gpointer key, value;
			g_hash_table_iter_init(&it, j->links);
			while (g_hash_table_iter_next(&it, &key, &value)) {
				g_hash_table_iter_steal(&it);
				g_hash_table_replace(c->links_cache, key, value);
			}
		}
		if (c->query_again) {
			c->query_again = false;
			query_start(c);
		}
		break;
	case JOB_CLOSE:
		break;
	case JOB_RELOAD:
		/* Its asker may be gone with the bus: nobody to tell. */
		if (c)
			j->reload_done(j->reload_error, j->reload_user);
		break;
	}
	job_free(j);
	return G_SOURCE_REMOVE;
}

static void connect_start(herd_corosync *c)
{
	if (c->connecting || c->cpg_ok || !c->running)
		return;
	job *j = job_new(c, JOB_CONNECT);
	j->group = g_strdup(c->group);
	j->first = c->first_connect;
	c->first_connect = false;
	c->connecting = true;
	push_job(c, j);
}

static gboolean on_retry(gpointer data)
{
	connect_start(data);
	return G_SOURCE_CONTINUE;
}

static void clear_queue(herd_corosync *c)
{
	GBytes *b;
	while ((b = g_queue_pop_head(c->send_queue)))
		g_bytes_unref(b);
	c->send_queue_bytes = 0;
	if (c->send_timer) {
		g_source_remove(c->send_timer);
		c->send_timer = 0;
	}
}

/* Drop the connection; @leave_group: leave the group first (a stop). */
static void disconnect_leaving(herd_corosync *c, const char *why, const char *leave_group)
{
	bool was = c->cpg_ok;
	if (c->cpg_watch) {
		g_source_remove(c->cpg_watch);
		c->cpg_watch = 0;
	}
	if (c->vq_watch) {
		g_source_remove(c->vq_watch);
		c->vq_watch = 0;
	}
	handles h = { c->cpg, c->cpg_ok, c->vq, c->vq_ok, c->cfg, c->cfg_ok };
	close_on_worker(c, &h, leave_group);
	c->cpg_ok = c->vq_ok = c->cfg_ok = false;
	c->quorate = false;
	g_clear_pointer(&c->quorum_cache, json_decref);
	g_hash_table_remove_all(c->links_cache);
	clear_queue(c);
	if (was && why)
		log_warn("lost the connection to corosync (%s); retrying every second", why);
	if (was && c->bus.cb.disconnected)
		c->bus.cb.disconnected(c->bus.user);
}

static void disconnect(herd_corosync *c, const char *why)
{
	disconnect_leaving(c, why, NULL);
}

static void corosync_stop(herd_bus *b);

static void corosync_free(herd_bus *b)
{
	herd_corosync *c = (herd_corosync *)b;
	corosync_stop(b);
	/* Waits for the jobs asked for (the leave among them); their answers,
	 * if the main loop still runs them, find the bus gone. */
	g_clear_handle_id(&c->pending_idle, g_source_remove);
	flush_jobs(c);
	g_thread_pool_free(c->worker, FALSE, TRUE);
	g_queue_free(c->pending);
	handles_close(&c->query, NULL);
	c->ref->c = NULL;
	bus_ref_unref(c->ref);
	json_decref(c->quorum_cache);
	g_hash_table_unref(c->links_cache);
	g_hash_table_unref(c->links_wanted);
	g_queue_free(c->send_queue);
	g_free(c->group);
	if (the_corosync == c)
		the_corosync = NULL;
	g_free(c);
}

static void corosync_start(herd_bus *b)
{
	herd_corosync *c = (herd_corosync *)b;
	if (c->running)
		return;
	c->running = true;
	c->first_connect = true;
	connect_start(c);
	c->retry_timer = g_timeout_add(1000, on_retry, c);
	c->query_timer = g_timeout_add(QUERY_PERIOD_MS, on_query_timer, c);
}

static void corosync_stop(herd_bus *b)
{
	herd_corosync *c = (herd_corosync *)b;
	if (!c->running)
		return;
	c->running = false;
	g_clear_handle_id(&c->retry_timer, g_source_remove);
	g_clear_handle_id(&c->query_timer, g_source_remove);
	disconnect_leaving(c, NULL, c->group);
}

static bool corosync_connected(herd_bus *b)
{
	return ((herd_corosync *)b)->cpg_ok;
}

/* Send what waits, in order, until corosync pushes back. */
static bool drain(herd_corosync *c)
{
	GBytes *b;
	while ((b = g_queue_peek_head(c->send_queue))) {
		gsize len;
		struct iovec iov = { .iov_base = (void *)g_bytes_get_data(b, &len) };
		iov.iov_len = len;
		cs_error_t rc = cpg_mcast_joined(c->cpg, CPG_TYPE_AGREED, &iov, 1);
		if (rc == CS_ERR_TRY_AGAIN)
			return true;
		if (rc != CS_OK) {
			log_err("CPG refused a %zu-byte message: error %d", len, rc);
			disconnect(c, "CPG send failed");
			return false;
		}
		g_queue_pop_head(c->send_queue);
		c->send_queue_bytes -= len;
		g_bytes_unref(b);
	}
	return true;
}

static gboolean on_send_retry(gpointer data)
{
	herd_corosync *c = data;
	c->send_timer = 0;
	if (c->cpg_ok && drain(c) && !g_queue_is_empty(c->send_queue))
		c->send_timer = g_timeout_add(1, on_send_retry, c);
	return G_SOURCE_REMOVE;
}

static bool corosync_send(herd_bus *b, const void *msg, size_t len)
{
	herd_corosync *c = (herd_corosync *)b;
	if (!c->cpg_ok)
		return false;
	if (c->send_queue_bytes + len > SEND_QUEUE_MAX_BYTES) {
		log_err("the CPG send queue is full (%zu bytes); dropping the connection",
			c->send_queue_bytes);
		disconnect(c, "send queue full");
		return false;
	}
	g_queue_push_tail(c->send_queue, g_bytes_new(msg, len));
	c->send_queue_bytes += len;
	if (!drain(c))
		return false;
	if (!g_queue_is_empty(c->send_queue) && !c->send_timer)
		c->send_timer = g_timeout_add(1, on_send_retry, c);
	return true;
}

static bool corosync_quorate(herd_bus *b)
{
	herd_corosync *c = (herd_corosync *)b;
	return c->cpg_ok && c->quorate;
}

/* The last answer of votequorum_getinfo() (the worker asks every
 * QUERY_PERIOD_MS and at every quorum change), with "quorate" as the
 * tracking callback said last. */
static json_t *corosync_quorum_info(herd_bus *b)
{
	herd_corosync *c = (herd_corosync *)b;
	if (!c->cpg_ok || !c->vq_ok || !c->quorum_cache)
		return json_pack("{s:b}", "quorate", 0);
	json_t *out = json_deep_copy(c->quorum_cache);
	json_object_set_new(out, "quorate", json_boolean(c->quorate));
	return out;
}

/* The last link state towards @nodeid that the worker read, or NULL if none
 * was read yet: a node asked about for the first time is read in its turn
 * (links_turn.h) once the ring has settled (LINKS_SETTLE_MS). */
static json_t *corosync_links(herd_bus *b, uint32_t nodeid)
{
	herd_corosync *c = (herd_corosync *)b;
	if (!c->cfg_ok)
		return NULL;
	if (!g_hash_table_contains(c->links_wanted, GUINT_TO_POINTER(nodeid))) {
		g_hash_table_add(c->links_wanted, GUINT_TO_POINTER(nodeid));
		query_start(c);
	}
	json_t *l = g_hash_table_lookup(c->links_cache, GUINT_TO_POINTER(nodeid));
	return l ? json_deep_copy(l) : NULL;
}

/* On the worker: corosync answers a reload only once every node has read
 * the file, and not while its membership syncs (a join's). */
static void corosync_reload(herd_bus *b, herd_bus_reload_done done, gpointer user)
{
	herd_corosync *c = (herd_corosync *)b;
	job *j = job_new(c, JOB_RELOAD);
	j->reload_done = done;
	j->reload_user = user;
	push_job(c, j);
}

static const herd_bus_ops corosync_ops = {
	.start = corosync_start,
	.stop = corosync_stop,
	.free = corosync_free,
	.connected = corosync_connected,
	.send = corosync_send,
	.quorate = corosync_quorate,
	.quorum_info = corosync_quorum_info,
	.links = corosync_links,
	.reload = corosync_reload,
};

herd_bus *herd_corosync_bus_new(const char *group)
{
	herd_corosync *c = g_new0(herd_corosync, 1);
	c->bus.ops = &corosync_ops;
	c->group = g_strdup(group);
	c->send_queue = g_queue_new();
	c->links_cache = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					       (GDestroyNotify)json_decref);
	c->links_wanted = g_hash_table_new(g_direct_hash, g_direct_equal);
	c->ref = g_new0(bus_ref, 1);
	c->ref->refs = 1;
	c->ref->c = c;
	c->ref->context = g_main_context_ref_thread_default();
	/* one thread, exclusive: jobs run one at a time, in order */
	c->worker = g_thread_pool_new(run_job, &c->query, 1, TRUE, NULL);
	c->pending = g_queue_new();
	the_corosync = c;
	return &c->bus;
}
