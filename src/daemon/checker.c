#define G_LOG_DOMAIN "check"
#include "daemon/checker.h"

#include "cluster/corosync_conf.h"
#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "daemon/check_probe.h"
#include "ha/check.h"
#include "ha/fence.h"
#include "store/cluster.h"
#include "store/fence_device.h"
#include "store/node.h"
#include "store/settings.h"
#include "store/storage.h"
#include "store/wire.h"

#include <string.h>

/* How often the coordinator looks whether a periodic round is due. */
#define CHECK_PERIOD_LOOK_S 30

typedef struct waiter {
	void (*done)(json_t *report, gpointer user);
	gpointer user;
} waiter;

/* A round this node runs. */
typedef struct round {
	uint64_t id;
	json_t *probes;            /* {node: probe} */
	json_t *fence;             /* [{"device","node","plug","ok","detail"}] */
	GPtrArray *expected;       /* node names that were in the group */
	guint fences_pending;
	bool starting;           /* being set up: not complete, whatever answered already */
	guint deadline;
	GArray *waiters;           /* waiter */
} round;

struct herd_checker {
	herd_cluster *cluster;
	herd_ha *ha;
	char *corosync_dir;
	char *libvirt_uri;
	uint64_t seq;
	round *round;              /* under way, or NULL */
	bool probing;              /* this node's probe runs */
	json_t *asked;             /* requests waiting for it: [{"id","from"}] */
	gint64 last_results_us;    /* monotonic: the latest results from any node */
	guint look;
	struct life *life;         /* for the fence agents and the probe, which may answer after
				    * it is freed */
};

/* The checker, or NULL once it is freed; one reference of its own and one
 * per fence agent or probe under way (all on the main loop). */
typedef struct life {
	herd_checker *c;
	guint refs;
} life;

static life *life_ref(life *l)
{
	l->refs++;
	return l;
}

static void life_unref(life *l)
{
	if (--l->refs == 0)
		g_free(l);
}

static int64_t wall_ms(void)
{
	return g_get_real_time() / 1000;
}

static void send_json(herd_checker *c, json_t *msg)
{
	g_autofree char *text = json_dumps(msg, JSON_COMPACT);
	if (!herd_cluster_send(c->cluster, HERD_MSG_CHECK, text, strlen(text)))
		log_warn("cannot send a check message: not connected to the group");
}

/* ---- this node's probe ------------------------------------------------------------------- */

static herd_check_probe_spec *probe_spec(herd_checker *c)
{
	store_state *st = herd_cluster_state(c->cluster);
	herd_check_probe_spec *s = g_new0(herd_check_probe_spec, 1);
	s->targets = json_array();
	s->mtu = 1500;
	s->corosync_conf = g_build_filename(c->corosync_dir, "corosync.conf", NULL);
	s->libvirt_uri = g_strdup(c->libvirt_uri);
	if (!st || !store_state_cluster(st))
		return s;
	s->mtu = (unsigned)store_settings_of(st)->check_mtu;
	const char *me = herd_cluster_node_name(c->cluster);
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(st);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		if (strcmp(n->name, me) == 0)
			continue;
		const store_node *sn = store_node_of(n);
		for (size_t l = 0; l < sn->n_links; l++)
			json_array_append_new(s->targets, json_pack("{s:s,s:i,s:s}", "peer", n->name, "link", (int)l,
								    "address", sn->links[l]));
	}
	return s;
}

static void on_probed(json_t *probe, gpointer user)
{
	life *l = user;
	herd_checker *c = l->c;
	life_unref(l);
	if (!c)
		return;
	c->probing = false;
	size_t i;
	json_t *a;
	json_array_foreach(c->asked, i, a) {
		g_autoptr(json_t) reply = json_pack("{s:s,s:O,s:O,s:s,s:I,s:O}", "op", "reply", "id",
						    json_object_get(a, "id"), "to", json_object_get(a, "from"),
						    "node", herd_cluster_node_name(c->cluster), "wall_ms",
						    (json_int_t)wall_ms(), "probe", probe);
		send_json(c, reply);
	}
	json_array_clear(c->asked);
}

static void on_request(herd_checker *c, json_t *msg)
{
	/* One probe at a time: requests while it runs get its answer. */
	if (json_array_size(c->asked) >= 16)
		json_array_remove(c->asked, 0);
	json_array_append_new(c->asked, json_pack("{s:O,s:O}", "id", json_object_get(msg, "id"), "from",
						  json_object_get(msg, "from")));
	if (c->probing)
		return;
	c->probing = true;
	herd_check_probe(probe_spec(c), on_probed, life_ref(c->life));
}

/* ---- the round this node runs ------------------------------------------------------------ */

static void round_free(round *r)
{
	if (!r)
		return;
	json_decref(r->probes);
	json_decref(r->fence);
	g_ptr_array_free(r->expected, TRUE);
	g_clear_handle_id(&r->deadline, g_source_remove);
	g_array_free(r->waiters, TRUE);
	g_free(r);
}

static void answer_waiters(GArray *waiters, json_t *report)
{
	for (guint i = 0; i < waiters->len; i++) {
		waiter *w = &g_array_index(waiters, waiter, i);
		w->done(report, w->user);
	}
}

/* {storage name: {node: {"ok","problem"?}}}, from the nodes' reports. */
static json_t *reach_json(herd_checker *c, store_state *st)
{
	json_t *out = json_object();
	g_autoptr(GPtrArray) storages = store_state_list(st, STORE_KIND_STORAGE);
	for (guint i = 0; i < storages->len; i++) {
		store_object *s = storages->pdata[i];
		json_object_set_new(out, s->name, herd_ha_reach(c->ha, s->uuid));
	}
	return out;
}

static void round_finish(herd_checker *c)
{
	round *r = g_steal_pointer(&c->round);
	store_state *st = herd_cluster_state(c->cluster);
	g_autoptr(json_t) report = NULL;
	if (!st || !store_state_cluster(st)) {
		report = json_pack("{s:i,s:s}", "code", HERD_ERR_CONFLICT, "error", "This node is not in a cluster.");
		answer_waiters(r->waiters, report);
		round_free(r);
		return;
	}
	/* Plugs whose agent has not answered by now. */
	g_autoptr(GPtrArray) devs = store_state_list(st, STORE_KIND_FENCE_DEVICE);
	for (guint i = 0; r->fences_pending && i < devs->len; i++) {
		store_object *dev = devs->pdata[i];
		const store_fence_device *fd = store_fence_device_of(dev);
		for (size_t p = 0; p < fd->n_plugs; p++) {
			bool answered = false;
			size_t k;
			json_t *f;
			json_array_foreach(r->fence, k, f)
				answered |= g_strcmp0(json_string_value(json_object_get(f, "device")), dev->name) == 0 &&
					    g_strcmp0(json_string_value(json_object_get(f, "node")), fd->plugs[p].node) == 0;
			if (!answered)
				json_array_append_new(r->fence, json_pack("{s:s,s:s,s:s,s:b,s:s}", "device", dev->name,
									  "node", fd->plugs[p].node, "plug",
									  fd->plugs[p].plug, "ok", 0, "detail",
									  "its agent did not answer within the check's time"));
		}
	}
	g_autofree char *conf = herd_corosync_conf_render(st, NULL);
	g_autofree char *conf_sha = conf ? g_compute_checksum_for_string(G_CHECKSUM_SHA256, conf, -1) : NULL;
	g_autoptr(json_t) reach = reach_json(c, st);
	g_autoptr(json_t) status = herd_ha_cluster_status(c->ha);
	json_t *n1 = json_object_get(status, "n_plus_1");
	herd_check_input in = {
		.st = st,
		.asker = herd_cluster_node_name(c->cluster),
		.probes = r->probes,
		.fence = r->fence,
		.reach = reach,
		.corosync_conf = conf_sha,
		.n_plus_1_known = json_is_boolean(n1),
		.n_plus_1 = json_is_true(n1),
		.at_risk = json_object_get(status, "at_risk"),
		.mtu = (unsigned)store_settings_of(st)->check_mtu,
		.answer_s = CHECK_ANSWER_S,
	};
	json_t *results = herd_check_evaluate(&in);
	report = json_pack("{s:s,s:I,s:o}", "node", in.asker, "time_ms", (json_int_t)wall_ms(), "results",
			   results);
	unsigned failed = 0;
	size_t i;
	json_t *res;
	json_array_foreach(results, i, res)
		if (g_strcmp0(json_string_value(json_object_get(res, "status")), "fail") == 0)
			failed++;
	log_info("check %" G_GUINT64_FORMAT ": %u of %zu results failed", r->id, failed,
		 json_array_size(results));
	/* Every node keeps them (the coordinator's alerts), this one too. */
	g_autoptr(json_t) msg = json_deep_copy(report);
	json_object_set_new(msg, "op", json_string("results"));
	send_json(c, msg);
	answer_waiters(r->waiters, report);
	round_free(r);
}

static bool round_complete(round *r)
{
	if (r->fences_pending || r->starting)
		return false;
	for (guint i = 0; i < r->expected->len; i++)
		if (!json_object_get(r->probes, r->expected->pdata[i]))
			return false;
	return true;
}

static gboolean on_deadline(gpointer data)
{
	herd_checker *c = data;
	if (!c->round)
		return G_SOURCE_REMOVE;
	c->round->deadline = 0;
	log_warn("check %" G_GUINT64_FORMAT ": not every node answered within %d s", c->round->id,
		 CHECK_ANSWER_S);
	round_finish(c);
	return G_SOURCE_REMOVE;
}

static void on_reply(herd_checker *c, json_t *msg)
{
	round *r = c->round;
	int64_t now = wall_ms();
	const char *node = json_string_value(json_object_get(msg, "node"));
	json_t *probe = json_object_get(msg, "probe");
	json_t *at = json_object_get(msg, "wall_ms");
	if (!r || (uint64_t)json_integer_value(json_object_get(msg, "id")) != r->id || !node ||
	    !json_is_object(probe) || !json_is_integer(at))
		return;
	json_t *p = json_deep_copy(probe);
	/* Its clock less ours, as its answer arrives: off by the message's
	 * way through the group, milliseconds. */
	json_object_set_new(p, "offset_ms", json_integer(json_integer_value(at) - now));
	json_object_set_new(r->probes, node, p);
	if (round_complete(r))
		round_finish(c);
}

typedef struct fence_ask {
	life *life;
	uint64_t id;
	char *device;              /* its UUID */
	size_t index;              /* of its plug, of n */
	size_t n;
	char *node, *plug;
	herd_fence_target *target; /* the agent's, until it answers */
} fence_ask;

static void on_fence_status(bool ok, const char *device, const char *detail, double secs, gpointer user);

/* Ask plug @index of device @dev its status.  A device's plugs are asked
 * one after the other: a PDU or a management board often takes one
 * session at a time, and a real fence may need it meanwhile. */
static void ask_plug(herd_checker *c, uint64_t id, store_object *dev, size_t index)
{
	const store_fence_device *fd = store_fence_device_of(dev);
	fence_ask *f = g_new0(fence_ask, 1);
	f->life = life_ref(c->life);
	f->id = id;
	f->device = g_strdup(dev->uuid);
	f->index = index;
	f->n = fd->n_plugs;
	f->node = g_strdup(fd->plugs[index].node);
	f->plug = g_strdup(fd->plugs[index].plug);
	f->target = herd_fence_target_new(dev, fd->plugs[index].plug);
	herd_fence_agent_action(f->target, "status", on_fence_status, f);
}

static void on_fence_status(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	fence_ask *f = user;
	herd_checker *c = f->life->c;
	if (c && c->round && c->round->id == f->id) {
		round *r = c->round;
		json_array_append_new(r->fence, json_pack("{s:s,s:s,s:s,s:b,s:s}", "device", device, "node", f->node,
							  "plug", f->plug, "ok", ok, "detail", detail ? detail : ""));
		r->fences_pending--;
		/* The device's next plug, as it is now (gone, or fewer plugs:
		 * those are not waited for). */
		store_state *st = herd_cluster_state(c->cluster);
		store_object *dev = st ? store_state_get(st, STORE_KIND_FENCE_DEVICE, f->device) : NULL;
		size_t now_n = dev ? store_fence_device_of(dev)->n_plugs : 0;
		size_t left = f->n - f->index - 1;
		if (left && f->index + 1 < now_n) {
			ask_plug(c, r->id, dev, f->index + 1);
		} else {
			r->fences_pending -= MIN(left, r->fences_pending);
			if (round_complete(r))
				round_finish(c);
		}
	}
	life_unref(f->life);
	g_free(f->device);
	herd_fence_target_free(f->target);
	g_free(f->node);
	g_free(f->plug);
	g_free(f);
}

static void ask_fence_devices(herd_checker *c, round *r, store_state *st)
{
	g_autoptr(GPtrArray) devs = store_state_list(st, STORE_KIND_FENCE_DEVICE);
	for (guint i = 0; i < devs->len; i++) {
		store_object *dev = devs->pdata[i];
		size_t n = store_fence_device_of(dev)->n_plugs;
		if (!n)
			continue;
		r->fences_pending += (guint)n;
		ask_plug(c, r->id, dev, 0);
	}
}

void herd_checker_run(gpointer checker, void (*done)(json_t *report, gpointer user), gpointer user)
{
	herd_checker *c = checker;
	if (c->round) {
		g_array_append_val(c->round->waiters, ((waiter){ done, user }));
		return;
	}
	store_state *st = herd_cluster_state(c->cluster);
	if (!st || !store_state_cluster(st)) {
		g_autoptr(json_t) e = json_pack("{s:i,s:s}", "code", HERD_ERR_CONFLICT, "error",
						"This node is not in a cluster: there is nothing to check.");
		done(e, user);
		return;
	}
	round *r = g_new0(round, 1);
	r->probes = json_object();
	r->fence = json_array();
	r->expected = g_ptr_array_new_with_free_func(g_free);
	r->waiters = g_array_new(FALSE, FALSE, sizeof(waiter));
	g_array_append_val(r->waiters, ((waiter){ done, user }));
	uint32_t group[256];
	size_t n = MIN(herd_cluster_group(c->cluster, group, G_N_ELEMENTS(group)), G_N_ELEMENTS(group));
	for (size_t i = 0; i < n; i++) {
		store_object *node = herd_cluster_node_by_id(c->cluster, group[i]);
		if (node)
			g_ptr_array_add(r->expected, g_strdup(node->name));
	}
	c->round = r;
	/* The id is this node's and its count: unique while this herd runs. */
	uint64_t id = ((uint64_t)herd_cluster_nodeid(c->cluster) << 32) | ++c->seq;
	r->id = id;
	g_autoptr(json_t) req = json_pack("{s:s,s:I,s:I}", "op", "request", "id", (json_int_t)id, "from",
					  (json_int_t)herd_cluster_nodeid(c->cluster));
	/* A fence agent that cannot be started answers at once: the round
	 * is not over before it is set up. */
	r->starting = true;
	send_json(c, req);
	ask_fence_devices(c, r, st);
	r->starting = false;
	r->deadline = g_timeout_add_seconds(CHECK_ANSWER_S, on_deadline, c);
	log_info("check %" G_GUINT64_FORMAT ": asked %u nodes", id, r->expected->len);
	if (round_complete(r))
		round_finish(c);
}

/* ---- messages ---------------------------------------------------------------------------- */

static void on_message(gpointer user, uint32_t sender, unsigned type, const void *payload, size_t len)
{
	herd_checker *c = user;
	g_autoptr(json_t) msg = json_loadb(payload, len, 0, NULL);
	const char *op = json_string_value(json_object_get(msg, "op"));
	if (!op)
		return;
	if (strcmp(op, "request") == 0 && json_is_integer(json_object_get(msg, "id")))
		on_request(c, msg);
	else if (strcmp(op, "reply") == 0 &&
		 (uint32_t)json_integer_value(json_object_get(msg, "to")) == herd_cluster_nodeid(c->cluster))
		on_reply(c, msg);
	else if (strcmp(op, "results") == 0 && json_is_array(json_object_get(msg, "results"))) {
		json_object_del(msg, "op");
		c->last_results_us = g_get_monotonic_time();
		herd_ha_set_check(c->ha, msg);
	}
}

/* ---- the periodic round ------------------------------------------------------------------ */

static void on_periodic_done(json_t *report, gpointer user)
{
}

static gboolean on_look(gpointer data)
{
	herd_checker *c = data;
	store_state *st = herd_cluster_state(c->cluster);
	if (!st || !store_state_cluster(st) || !herd_ha_coordinates(c->ha) || c->round)
		return G_SOURCE_CONTINUE;
	long long every_s = store_settings_of(st)->check_interval_s;
	if (every_s > 0 && g_get_monotonic_time() - c->last_results_us >= every_s * G_USEC_PER_SEC) {
		log_info("a periodic check is due (check_interval_s %lld)", every_s);
		herd_checker_run(c, on_periodic_done, NULL);
	}
	return G_SOURCE_CONTINUE;
}

herd_checker *herd_checker_new(herd_cluster *cluster, herd_ha *ha, const char *corosync_dir,
			       const char *libvirt_uri)
{
	herd_checker *c = g_new0(herd_checker, 1);
	c->cluster = cluster;
	c->ha = ha;
	c->corosync_dir = g_strdup(corosync_dir);
	c->libvirt_uri = g_strdup(libvirt_uri);
	c->asked = json_array();
	/* The first periodic round one interval after start. */
	c->last_results_us = g_get_monotonic_time();
	c->life = g_new0(life, 1);
	c->life->c = c;
	c->life->refs = 1;
	c->look = g_timeout_add_seconds(CHECK_PERIOD_LOOK_S, on_look, c);
	herd_ha_set_check_handler(ha, on_message, c);
	return c;
}

void herd_checker_free(herd_checker *c)
{
	if (!c)
		return;
	herd_ha_set_check_handler(c->ha, NULL, NULL);
	g_clear_handle_id(&c->look, g_source_remove);
	if (c->round) {
		g_autoptr(json_t) e = json_pack("{s:i,s:s}", "code", HERD_ERR_UNAVAILABLE, "error",
						"herdd stops: the check was not finished.");
		answer_waiters(c->round->waiters, e);
		round_free(g_steal_pointer(&c->round));
	}
	json_decref(c->asked);
	g_free(c->corosync_dir);
	g_free(c->libvirt_uri);
	c->life->c = NULL;
	life_unref(c->life);
	g_free(c);
}
