#define G_LOG_DOMAIN "corosync"
#include "cluster/corosync.h"

#include "common/error.h"
#include "common/log.h"

#include <corosync/cfg.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <glib-unix.h>
#include <string.h>

/* Messages waiting for corosync to take them, at most this many bytes. */
#define SEND_QUEUE_MAX_BYTES (256u * 1024 * 1024)

typedef struct herd_corosync {
	herd_bus bus;              /* first: a herd_corosync is a herd_bus */
	char *group;
	bool running;

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

	guint retry_timer;
	GQueue *send_queue;        /* GBytes* */
	size_t send_queue_bytes;
	guint send_timer;
} herd_corosync;

/* The callbacks of the C API carry no user pointer we can set per handle
 * besides the context; herdd has one connection, so a static is enough. */
static herd_corosync *the_corosync;

static void disconnect(herd_corosync *c, const char *why);

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

static bool try_connect(herd_corosync *c)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = on_cpg_deliver,
		.cpg_confchg_fn = on_cpg_confchg,
		.cpg_totem_confchg_fn = on_totem_confchg,
		.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
	};
	cs_error_t rc = cpg_model_initialize(&c->cpg, CPG_MODEL_V1, (cpg_model_data_t *)&model, NULL);
	if (rc != CS_OK)
		return false;
	c->cpg_ok = true;
	unsigned int nodeid = 0;
	if (cpg_local_get(c->cpg, &nodeid) != CS_OK) {
		disconnect(c, NULL);
		return false;
	}
	struct cpg_name name = { .length = (uint32_t)strlen(c->group) };
	memcpy(name.value, c->group, name.length);
	/* CS_ERR_TRY_AGAIN while corosync syncs its membership: retry, bounded. */
	for (int i = 0; i < 100; i++) {
		rc = cpg_join(c->cpg, &name);
		if (rc != CS_ERR_TRY_AGAIN)
			break;
		g_usleep(10000);
	}
	if (rc != CS_OK) {
		log_warn("cannot join CPG group %s: error %d", c->group, rc);
		disconnect(c, NULL);
		return false;
	}
	int fd = -1;
	cpg_fd_get(c->cpg, &fd);
	c->cpg_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_cpg_ready, c);

	votequorum_callbacks_t vcb = { .votequorum_quorum_notify_fn = on_quorum };
	if (votequorum_initialize(&c->vq, &vcb) == CS_OK) {
		c->vq_ok = true;
		votequorum_trackstart(c->vq, 0, CS_TRACK_CHANGES | CS_TRACK_CURRENT);
		votequorum_fd_get(c->vq, &fd);
		c->vq_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_vq_ready, c);
	} else {
		log_warn("cannot connect to votequorum; treating this partition as not quorate");
	}
	if (corosync_cfg_initialize(&c->cfg, NULL) == CS_OK)
		c->cfg_ok = true;
	c->nodeid = nodeid;
	log_info("connected to corosync as node %u, joined group %s", nodeid, c->group);
	if (c->bus.cb.connected)
		c->bus.cb.connected(c->bus.user, nodeid);
	return true;
}

static gboolean on_retry(gpointer data)
{
	herd_corosync *c = data;
	if (c->cpg_ok || !c->running)
		return G_SOURCE_CONTINUE;
	try_connect(c);
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

static void disconnect(herd_corosync *c, const char *why)
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
	if (c->cpg_ok)
		cpg_finalize(c->cpg);
	if (c->vq_ok)
		votequorum_finalize(c->vq);
	if (c->cfg_ok)
		corosync_cfg_finalize(c->cfg);
	c->cpg_ok = c->vq_ok = c->cfg_ok = false;
	c->quorate = false;
	clear_queue(c);
	if (was && why)
		log_warn("lost the connection to corosync (%s); retrying every second", why);
	if (was && c->bus.cb.disconnected)
		c->bus.cb.disconnected(c->bus.user);
}

static void corosync_stop(herd_bus *b);

static void corosync_free(herd_bus *b)
{
	herd_corosync *c = (herd_corosync *)b;
	corosync_stop(b);
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
	if (!try_connect(c))
		log_info("corosync is not reachable yet; retrying every second");
	c->retry_timer = g_timeout_add(1000, on_retry, c);
}

static void corosync_stop(herd_bus *b)
{
	herd_corosync *c = (herd_corosync *)b;
	if (!c->running)
		return;
	c->running = false;
	if (c->retry_timer) {
		g_source_remove(c->retry_timer);
		c->retry_timer = 0;
	}
	if (c->cpg_ok) {
		struct cpg_name name = { .length = (uint32_t)strlen(c->group) };
		memcpy(name.value, c->group, name.length);
		cpg_leave(c->cpg, &name);
	}
	disconnect(c, NULL);
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

static json_t *corosync_quorum_info(herd_bus *b)
{
	herd_corosync *c = (herd_corosync *)b;
	struct votequorum_info info = { 0 };
	if (!c->vq_ok || votequorum_getinfo(c->vq, 0, &info) != CS_OK)
		return json_pack("{s:b}", "quorate", 0);
	json_t *out = json_pack("{s:b,s:i,s:i,s:i,s:i,s:b,s:b}", "quorate", c->quorate,
				"votes", info.node_votes, "expected_votes", info.node_expected_votes,
				"total_votes", info.total_votes, "quorum", info.quorum,
				"two_node", (info.flags & VOTEQUORUM_INFO_TWONODE) != 0,
				"wait_for_all", (info.flags & VOTEQUORUM_INFO_WAIT_FOR_ALL) != 0);
	/* This node's corosync-qdevice as votequorum sees it: registered, alive
	 * (polling), and casting its vote for this partition. */
	if (info.flags & VOTEQUORUM_INFO_QDEVICE_REGISTERED)
		json_object_set_new(out, "qdevice",
				    json_pack("{s:i,s:b,s:b}", "votes", info.qdevice_votes, "alive",
					      (info.flags & VOTEQUORUM_INFO_QDEVICE_ALIVE) != 0, "cast_vote",
					      (info.flags & VOTEQUORUM_INFO_QDEVICE_CAST_VOTE) != 0));
	return out;
}

static json_t *corosync_links(herd_bus *b, uint32_t nodeid)
{
	herd_corosync *c = (herd_corosync *)b;
	struct corosync_cfg_node_status_v1 st;
	json_t *links = json_array();
	if (!c->cfg_ok)
		return links;
	memset(&st, 0, sizeof(st));
	if (corosync_cfg_node_status_get(c->cfg, nodeid, CFG_NODE_STATUS_V1, &st) != CS_OK)
		return links;
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

static bool corosync_reload(herd_bus *b, GError **error)
{
	herd_corosync *c = (herd_corosync *)b;
	if (!c->cfg_ok) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Cannot reload corosync's configuration: not connected to corosync.");
		return false;
	}
	cs_error_t rc = corosync_cfg_reload_config(c->cfg);
	if (rc != CS_OK) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO,
			    "corosync refused to reload its configuration (error %d); see its log.", rc);
		return false;
	}
	return true;
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
	the_corosync = c;
	return &c->bus;
}
