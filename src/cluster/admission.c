#define G_LOG_DOMAIN "cluster"
/* The member's side of a join: herd_formation_add_node() (formation.h). */
#include "cluster/formation_priv.h"

#include "cluster/corosync_conf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/guard.h"
#include "store/node.h"
#include "store/wire.h"

#include <string.h>

/* A join through this member. */
typedef struct add_request add_request;
struct add_request {
	herd_formation *f;       /* NULL once the formation is freed */
	herd_formation_done done;
	gpointer data;
	char *name;
	char **links;            /* NULL-terminated */
	size_t n_links;
	char *user;
	char *cert;              /* its certificate, signed on arrival */
	uint32_t nodeid;
	int64_t queued_ms, deadline_ms;
	char *refusal;           /* the store's last refusal, tried again after */
	char *conf;              /* corosync.conf as answered */
};

/*
 * Joins through this member wait their turn in f->joins (cluster/
 * join_queue.h says when a node may be added); one at a time is committed
 * and answered (f->adding).  A join the store refuses for a reason that
 * passes (another member's join is not durable yet, a node added and not
 * up yet counts as lost, quorum until the node added last is up) goes
 * back to the head of the queue and is tried again until its deadline.
 */
#define JOIN_POLL_MS 100


static void add_request_free(add_request *r)
{
	if (!r)
		return;
	g_free(r->name);
	g_strfreev(r->links);
	g_free(r->user);
	g_free(r->cert);
	g_free(r->refusal);
	g_free(r->conf);
	g_free(r);
}

static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

static void joins_pump(herd_formation *f);

static gboolean on_joins_tick(gpointer data)
{
	joins_pump(data);
	return G_SOURCE_CONTINUE;
}

static gboolean on_joins_idle(gpointer data)
{
	herd_formation *f = data;
	f->joins_idle = 0;
	joins_pump(f);
	return G_SOURCE_REMOVE;
}

/* Look at the queue again soon (from the main loop, not inside a callback). */
static void joins_kick(herd_formation *f)
{
	if (!f->joins_idle)
		f->joins_idle = g_idle_add(on_joins_idle, f);
}

/* Answer @r and let the next join have its turn. */
static void add_finish(add_request *r, json_t *result, const GError *error)
{
	herd_formation *f = r->f;
	if (f && f->adding == r) {
		f->adding = NULL;
		joins_kick(f);
	}
	if (f)
		r->done(result, error, r->data);
	add_request_free(r);
}

typedef enum { ADD_NEW, ADD_AGAIN, ADD_REFUSED } add_check;

/*
 * Node @had of the same name asks to join again: its earlier join was
 * committed but the answer was lost (a herdd restart, a timeout), so it
 * never started corosync.  The same links, and not in corosync's ring
 * now: it is that host, and gets its answer again (a certificate for its
 * new key, the same node id), with nothing changed in the store.  (A node
 * of the cluster that is off and joins again from a fresh install is
 * answered alike: the same host, the same address.)
 */
static bool join_again(herd_formation *f, store_object *had, const char *const *links, size_t n_links)
{
	const store_node *sn = store_node_of(had);
	if (sn->n_links != n_links)
		return false;
	for (size_t l = 0; l < n_links; l++)
		if (strcmp(sn->links[l], links[l]) != 0)
			return false;
	uint32_t ring[512];
	size_t n = herd_cluster_ring(f->cluster, ring, G_N_ELEMENTS(ring));
	for (size_t i = 0; i < n; i++)
		if (ring[i] == sn->nodeid)
			return false;
	return true;
}

/*
 * May node @name on @links be added to the store as it is now?  ADD_NEW
 * with the lowest free node id in *@nodeid, ADD_AGAIN (join_again(), its
 * id in *@nodeid), or ADD_REFUSED with @error.  Checked on arrival and
 * again when its turn comes: other joins may have come first.
 */
static add_check check_add(herd_formation *f, const char *name, const char *const *links,
			   size_t n_links, uint32_t *nodeid, GError **error)
{
	store_state *st = herd_cluster_state(f->cluster);
	store_object *had = store_state_get_by_name(st, STORE_KIND_NODE, name);
	if (had && join_again(f, had, links, n_links)) {
		*nodeid = store_node_of(had)->nodeid;
		return ADD_AGAIN;
	}
	if (had) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The cluster already has a node named '%s'; remove it first ('herd node remove %s') or give the new node another name.",
			    name, name);
		return ADD_REFUSED;
	}
	/* Every node has an address on every link; no address twice. */
	g_autoptr(GHashTable) used = g_hash_table_new(g_direct_hash, g_direct_equal);
	size_t cluster_links = 0;
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		const store_node *sn = store_node_of(n);
		cluster_links = MAX(cluster_links, sn->n_links);
		g_hash_table_add(used, GUINT_TO_POINTER(sn->nodeid));
		for (size_t l = 0; l < sn->n_links; l++)
			for (size_t k = 0; k < n_links; k++)
				if (!strcmp(sn->links[l], links[k])) {
					g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
						    "Address %s is already used by node %s.", links[k], n->name);
					return ADD_REFUSED;
				}
	}
	if (cluster_links && n_links != cluster_links) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The cluster uses %zu link(s); give the new node exactly %zu --link address(es), not %zu.",
			    cluster_links, cluster_links, n_links);
		return ADD_REFUSED;
	}
	*nodeid = 1;
	while (g_hash_table_contains(used, GUINT_TO_POINTER(*nodeid)))
		(*nodeid)++;
	return ADD_NEW;
}

static void on_join_reloaded(const GError *error, gpointer data)
{
	add_request *r = data;
	herd_formation *f = r->f;
	if (!f) {
		add_finish(r, NULL, NULL); /* herdd stops: nobody to answer */
		return;
	}
	if (error) {
		add_finish(r, NULL, error);
		return;
	}
	store_state *st = herd_cluster_state(f->cluster);
	store_object *c = store_state_cluster(st);
	if (!c) {
		g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_CONFLICT,
						    "This node left the cluster while node '%s' joined.", r->name);
		add_finish(r, NULL, err);
		return;
	}
	log_info("added node %s as node %u", r->name, r->nodeid);
	g_autoptr(json_t) answer = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s}", "cluster", c->name, "nodeid",
					     (json_int_t)r->nodeid, "ca_cert", store_cluster_of(c)->ca_cert,
					     "node_cert", r->cert, "corosync_conf", r->conf, "authkey",
					     store_cluster_of(c)->authkey);
	add_finish(r, answer, NULL);
}

/* Node @r is in the store, durable on every member, and so in every
 * member's corosync.conf (written at the change: corosync_conf.c): one
 * reload, on corosync's worker thread, lets every member's corosync know it
 * before it knocks; then @r is answered. */
static void answer_join(add_request *r)
{
	herd_formation *f = r->f;
	g_autoptr(GError) err = NULL;
	store_state *st = herd_cluster_state(f->cluster);
	bool changed;
	r->conf = herd_corosync_conf_render(st, &err);
	if (!r->conf || !herd_corosync_conf_write(st, f->corosync_dir, &changed, &err)) {
		add_finish(r, NULL, err);
		return;
	}
	herd_cluster_reload(f->cluster, on_join_reloaded, r);
}

/* The end of a sentence, without its full stop (g_free). */
static char *clause(const char *sentence)
{
	size_t n = strlen(sentence);
	while (n > 0 && (sentence[n - 1] == '.' || sentence[n - 1] == ' '))
		n--;
	char *out = g_strndup(sentence, n);
	if (out[0])
		out[0] = g_ascii_tolower(out[0]);
	return out;
}

/* Forget the new nodes that are in the group now (their herd is up). */
static void new_nodes_seen(herd_formation *f)
{
	uint32_t members[512];
	size_t n = MIN(herd_cluster_group(f->cluster, members, G_N_ELEMENTS(members)),
		       G_N_ELEMENTS(members));
	store_state *st = herd_cluster_state(f->cluster);
	for (size_t i = 0; i < n; i++) {
		store_object *o = store_node_by_id(st, members[i]);
		if (o)
			g_hash_table_remove(f->new_nodes, o->uuid);
	}
}

static void on_node_list_changed(gpointer user, GPtrArray *changes)
{
	herd_formation *f = user;
	for (guint i = 0; changes && i < changes->len; i++) {
		store_change *c = changes->pdata[i];
		if (c->kind != STORE_KIND_NODE)
			continue;
		if (!c->before && c->after)
			g_hash_table_add(f->new_nodes, g_strdup(c->uuid));
		else if (!c->after)
			g_hash_table_remove(f->new_nodes, c->uuid);
	}
	new_nodes_seen(f);
}

/* Joins waiting their turn look again at once when what they wait for
 * may have come (the node added last in the group, the change durable on
 * every member), not only at the next JOIN_POLL_MS. */
static void joins_look_again(herd_formation *f)
{
	if (!f->adding && join_queue_length(f->joins) > 0)
		joins_kick(f);
}

static void on_membership(gpointer user, bool group)
{
	new_nodes_seen(user);
	if (group)
		joins_look_again(user);
}

static void on_durable(gpointer user)
{
	joins_look_again(user);
}

/*
 * Would the store refuse @cmd (a node's create) now because a node that was up
 * (not one added lately and not up yet) is lost and not fenced?  Then it
 * does until an operator acts (store/guard.c), so the join is refused at
 * once, with the store's words, rather than kept waiting.
 */
static bool refused_for_lost(herd_formation *f, json_t *cmd, GError **error)
{
	g_autoptr(GHashTable) lost = herd_cluster_lost(f->cluster);
	if (!lost)
		return false;
	new_nodes_seen(f);
	store_state *st = herd_cluster_state(f->cluster);
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, f->new_nodes);
	while (g_hash_table_iter_next(&it, &v, NULL)) {
		store_object *o = store_state_get(st, STORE_KIND_NODE, v);
		if (o)
			g_hash_table_remove(lost, o->name);
	}
	return g_hash_table_size(lost) > 0 && !store_guard_check(st, cmd, lost, error);
}

/* The store command that adds @r as node r->nodeid (a new uuid each try). */
static json_t *add_cmd(add_request *r)
{
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	return store_node_cmd_create(uuid, r->name, r->nodeid, (const char *const *)r->links, r->n_links);
}

/* Refused by the store for @error (where it was applied: @applied):
 * back to the head of the queue if the reason passes and there is time,
 * else answered. */
static void add_refused(add_request *r, const GError *error, bool applied)
{
	herd_formation *f = r->f;
	bool passes = error->domain == HERD_ERROR &&
		      (error->code == HERD_ERR_UNAVAILABLE || error->code == HERD_ERR_NO_QUORUM ||
		       /* another member's join took the node id first: the
			* next try picks another (or says what else clashed) */
		       (applied && error->code == HERD_ERR_CONFLICT));
	if (f->adding == r)
		f->adding = NULL;
	g_autoptr(GError) lost = NULL;
	g_autoptr(json_t) cmd = passes ? add_cmd(r) : NULL;
	if (cmd && refused_for_lost(f, cmd, &lost)) {
		add_finish(r, NULL, lost);
		return;
	}
	if (!passes || now_ms() >= r->deadline_ms) {
		add_finish(r, NULL, error);
		return;
	}
	if (g_strcmp0(r->refusal, error->message) != 0)
		log_info("the join of node %s waits: %s", r->name, error->message);
	g_free(r->refusal);
	r->refusal = g_strdup(error->message);
	g_clear_pointer(&f->joins_waiting_for, g_free);
	join_queue_push_front(f->joins, r, r->deadline_ms);
}

static void on_node_added(json_t *result, const GError *error, gpointer data)
{
	add_request *r = data;
	herd_formation *f = r->f;
	if (error) {
		add_refused(r, error, true);
		joins_kick(f);
		return;
	}
	answer_join(r);
}

/* @r's turn: check it again, and add it. */
static void add_try(add_request *r)
{
	herd_formation *f = r->f;
	g_autoptr(GError) err = NULL;
	uint32_t nodeid;
	const char *const *links = (const char *const *)r->links;
	switch (check_add(f, r->name, links, r->n_links, &nodeid, &err)) {
	case ADD_REFUSED:
		add_finish(r, NULL, err);
		return;
	case ADD_AGAIN:
		/* Its own try, which the store seemed to refuse (caught in a
		 * membership change), was applied after all. */
		r->nodeid = nodeid;
		f->adding = r;
		answer_join(r);
		return;
	case ADD_NEW:
		break;
	}
	r->nodeid = nodeid;
	g_autoptr(json_t) cmd = add_cmd(r);
	f->adding = r;
	if (!herd_cluster_submit(f->cluster, cmd, r->user, on_node_added, r, &err))
		add_refused(r, err, false);
}

/* What a member knows now for join_admission(). */
static join_facts joins_facts(herd_formation *f)
{
	replica *rp = herd_cluster_replica(f->cluster);
	join_facts facts = {
		.store_ready = replica_get_phase(rp) == REPLICA_SYNCED && replica_is_primary(rp),
		.busy = f->adding != NULL,
	};
	g_autoptr(GPtrArray) nodes = store_state_list(herd_cluster_state(f->cluster), STORE_KIND_NODE);
	facts.nodes = nodes->len;
	new_nodes_seen(f);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *o = nodes->pdata[i];
		if (herd_cluster_is_member(f->cluster, store_node_of(o)->nodeid))
			facts.present++;
		else if (!store_node_of(o)->down && g_hash_table_contains(f->new_nodes, o->uuid))
			facts.new_absent++;
	}
	return facts;
}

/* Why the head of the queue waits now (g_free). */
static char *joins_waiting_for(herd_formation *f, join_verdict v, const join_facts *facts)
{
	if (v != JOIN_WAIT_STORE)
		return join_wait_reason(v, facts);
	herd_error_code code;
	const char *why = replica_refusal(herd_cluster_replica(f->cluster), &code);
	return why ? clause(why) : g_strdup("this node's store was not in sync with the cluster");
}

static void on_expired(herd_formation *f, add_request *r)
{
	/* Why the queue waited last, or else why the store refused it last. */
	g_autofree char *why = f->joins_waiting_for ? g_strdup(f->joins_waiting_for)
			       : r->refusal	    ? clause(r->refusal)
						    : NULL;
	g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
					    "Node '%s' was not added: it waited %lld s for its turn to join through this node (%s). Nothing was changed; run the join again once the joins under way are done.",
					    r->name, (long long)((now_ms() - r->queued_ms + 500) / 1000),
					    why ? why : "the joins before it were not done");
	add_finish(r, NULL, err);
}

static void joins_pump(herd_formation *f)
{
	g_autoptr(GPtrArray) expired = g_ptr_array_new();
	join_queue_expire(f->joins, now_ms(), expired);
	for (guint i = 0; i < expired->len; i++)
		on_expired(f, expired->pdata[i]);
	if (!f->adding && join_queue_length(f->joins) > 0) {
		join_facts facts = joins_facts(f);
		join_verdict why;
		int64_t deadline;
		/* One try per look: a refusal puts it back for the next. */
		add_request *r = join_queue_next(f->joins, &facts, &deadline, &why);
		if (r && why == JOIN_REFUSE_MAJORITY) {
			g_autofree char *reason = join_wait_reason(why, &facts);
			g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_NO_QUORUM,
							    "Node '%s' was not added: %s. Start the nodes that are down, or remove those gone for good ('herd node remove NAME'), then join again.",
							    r->name, reason);
			add_finish(r, NULL, err);
		} else if (r) {
			r->deadline_ms = deadline;
			g_clear_pointer(&f->joins_waiting_for, g_free);
			add_try(r);
		} else {
			g_free(f->joins_waiting_for);
			f->joins_waiting_for = joins_waiting_for(f, why, &facts);
		}
	}
	bool waiting = f->adding || join_queue_length(f->joins) > 0;
	if (waiting && !f->joins_timer)
		f->joins_timer = g_timeout_add(JOIN_POLL_MS, on_joins_tick, f);
	else if (!waiting)
		g_clear_handle_id(&f->joins_timer, g_source_remove);
}

void herd_formation_add_node(herd_formation *f, const char *name, const char *const *links,
			     size_t n_links, const char *csr, long long protocol, const char *user,
			     herd_formation_done done, gpointer data)
{
	store_object *c = formation_member_cluster(f, done, data);
	if (!c)
		return;
	if (protocol < HERD_WIRE_VERSION_MIN || protocol > HERD_WIRE_ACCEPT_MAX) {
		formation_refuse(done, data, HERD_ERR_CONFLICT,
		       "The new node speaks protocol %lld; this cluster speaks %d to %d. Install a matching herd.",
		       protocol, HERD_WIRE_VERSION_MIN, HERD_WIRE_ACCEPT_MAX);
		return;
	}
	g_autoptr(GError) err = NULL;
	uint32_t nodeid;
	add_check k = check_add(f, name, links, n_links, &nodeid, &err);
	if (k == ADD_REFUSED) {
		done(NULL, err, data);
		return;
	}
	g_autofree const char **sans = formation_sans_for(name, links, n_links);
	g_autofree char *cert = herd_tls_sign_csr(csr ? csr : "", name, sans, store_cluster_of(c)->ca_cert,
						  store_cluster_of(c)->ca_key, CERT_DAYS, &err);
	if (!cert) {
		done(NULL, err, data);
		return;
	}
	add_request *r = g_new0(add_request, 1);
	r->nodeid = nodeid;
	r->f = f;
	r->done = done;
	r->data = data;
	r->name = g_strdup(name);
	r->links = g_new0(char *, n_links + 1);
	for (size_t i = 0; i < n_links; i++)
		r->links[i] = g_strdup(links[i]);
	r->n_links = n_links;
	r->user = g_strdup(user);
	r->cert = g_steal_pointer(&cert);
	r->queued_ms = now_ms();
	g_autoptr(json_t) cmd = k == ADD_NEW ? add_cmd(r) : NULL;
	if (cmd && refused_for_lost(f, cmd, &err)) {
		add_request_free(r);
		done(NULL, err, data);
		return;
	}
	if (k == ADD_AGAIN) {
		/* Nothing to add: answered at once, beside the queue. */
		r->nodeid = nodeid;
		log_info("node %s asks to join again (its answer was lost): answering as node %u", name,
			 nodeid);
		answer_join(r);
		return;
	}
	if (!join_queue_push(f->joins, r, r->queued_ms + f->join_wait_ms)) {
		add_request_free(r);
		formation_refuse(done, data, HERD_ERR_UNAVAILABLE,
		       "%d joins already wait for their turn on this node; join through another member, or retry later.",
		       JOIN_QUEUE_MAX);
		return;
	}
	joins_pump(f);
}

void herd_formation_set_join_wait(herd_formation *f, unsigned wait_ms)
{
	f->join_wait_ms = wait_ms;
}

void admission_start(herd_formation *f)
{
	f->joins = join_queue_new();
	f->join_wait_ms = HERD_JOIN_WAIT_MS;
	f->new_nodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	herd_cluster_listen(f->cluster, on_node_list_changed, f);
	herd_cluster_on_membership(f->cluster, on_membership, f);
	herd_cluster_on_durable(f->cluster, on_durable, f);
}

void admission_stop(herd_formation *f)
{
	/* herdd stops (its API server is gone): the joins waiting are dropped
	 * unanswered; the one being added is answered to nobody. */
	herd_cluster_unlisten(f->cluster, f);
	g_clear_handle_id(&f->joins_timer, g_source_remove);
	g_clear_handle_id(&f->joins_idle, g_source_remove);
	g_hash_table_unref(f->new_nodes);
	g_autoptr(GPtrArray) queued = g_ptr_array_new_with_free_func((GDestroyNotify)add_request_free);
	join_queue_expire(f->joins, INT64_MAX, queued);
	join_queue_free(f->joins);
	if (f->adding) {
		/* Its commit is answered to nobody; a reload under way answers
		 * it, finds no formation and frees it (or never: the bus goes
		 * next). */
		herd_cluster_forget(f->cluster, f->adding);
		f->adding->f = NULL;
	}
	g_free(f->joins_waiting_for);
}
