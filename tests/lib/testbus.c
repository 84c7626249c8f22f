#include "testbus.h"

#include "common/error.h"
#include "simbus.h"
#include "store/wire.h"

#include <stddef.h>
#include <string.h>

/* Rounds of delivery that let what is in flight arrive before a
 * configuration changes (replies to replies…); what is left then takes
 * simbus's (seeded) prefix. */
#define FLUSH_ROUNDS_MAX 100

typedef struct member {
	herd_bus bus;           /* first: a member is a herd_bus */
	simbus_member sm;       /* its partition and configuration */
	testbus *net;
	uint32_t nodeid;
	bool started;           /* between the owner's start and stop */
	bool powered;
	bool connected;         /* told connected, not told disconnected since */
	bool got;               /* delivered to since the last burst_end */
	bool ring_dirty;        /* its ring or quorum changed, not told yet */
	uint32_t ring[SIMBUS_MAX_MEMBERS];
	size_t n_ring;
	bool quorate;
	bool links_unread;      /* testbus_links_unread() */
} member;

struct testbus {
	simbus sb;
	GRand *rng;
	member *members[SIMBUS_MAX_MEMBERS]; /* NULL once freed */
	unsigned created;
	unsigned expected_votes;     /* 0: created */
	int next_partition;
	guint idle;
	bool dispatching;            /* delivering: membership changes wait */
	bool membership_dirty;
	unsigned reloads;
	uint32_t watched;            /* testbus_watch(): its deliveries go to watch_log */
	GArray *watch_log;
};

#define MEMBER_OF(smp) ((member *)((char *)(smp) - offsetof(member, sm)))

static bool up(const member *m)
{
	return m && m->started && m->powered;
}

static member *find(testbus *net, uint32_t nodeid)
{
	for (unsigned i = 0; i < net->created; i++)
		if (net->members[i] && net->members[i]->nodeid == nodeid)
			return net->members[i];
	g_error("testbus: no member with node id %u", nodeid);
	return NULL;
}

static unsigned expected_votes(testbus *net)
{
	return net->expected_votes ? net->expected_votes : net->created;
}

static gboolean on_dispatch(gpointer data);

static void kick(testbus *net)
{
	if (!net->idle)
		net->idle = g_idle_add(on_dispatch, net);
}

/* ------------------------------------------------------------------ */
/* Delivery                                                            */

static void on_simbus_deliver(simbus_member *sm, const simbus_msg *msg, gpointer user)
{
	member *m = MEMBER_OF(sm);
	if (!up(m))
		return; /* powered off or stopped: it hears nothing more */
	m->got = true;
	gsize len = 0;
	const void *data = msg->bytes ? g_bytes_get_data(msg->bytes, &len) : NULL;
	if (m->net->watch_log && m->nodeid == m->net->watched) {
		testbus_delivery d = { .sender = msg->bytes ? msg->sender : 0,
				       .type = msg->bytes ? herd_wire_type_of(data, len) : 0 };
		g_array_append_val(m->net->watch_log, d);
	}
	if (!msg->bytes) {
		m->bus.cb.confchg(m->bus.user, msg->members, msg->n_members);
		return;
	}
	m->bus.cb.deliver(m->bus.user, msg->sender, data, len);
}

/* Deliver what each configuration has in flight now (not what this sends
 * meanwhile), then end the burst of every member that got something. */
static void deliver_round(testbus *net)
{
	bool was = net->dispatching;
	net->dispatching = true;
	for (guint k = 0; k < net->sb.groups->len; k++) {
		simbus_group *g = net->sb.groups->pdata[k];
		for (guint n = g_queue_get_length(g->inflight); n > 0; n--)
			simbus_deliver_next(&net->sb, g);
	}
	for (unsigned i = 0; i < net->created; i++) {
		member *m = net->members[i];
		if (m && m->got) {
			m->got = false;
			if (up(m))
				m->bus.cb.burst_end(m->bus.user);
		}
	}
	net->dispatching = was;
}

static void tell_rings(testbus *net)
{
	for (unsigned i = 0; i < net->created; i++) {
		member *m = net->members[i];
		if (!up(m) || !m->ring_dirty)
			continue;
		m->ring_dirty = false;
		m->bus.cb.ring_changed(m->bus.user, m->ring, m->n_ring);
		m->bus.cb.quorum_changed(m->bus.user, m->quorate);
	}
}

/* Form the configurations anew after a member came, went, or moved: what
 * is in flight reaches its configuration first. */
static void membership_update(testbus *net)
{
	if (net->dispatching) {
		net->membership_dirty = true;
		kick(net);
		return;
	}
	do {
		net->membership_dirty = false;
		for (int r = 0; r < FLUSH_ROUNDS_MAX && !simbus_quiet(&net->sb); r++)
			deliver_round(net);
		simbus_member *ups[SIMBUS_MAX_MEMBERS];
		unsigned n = 0;
		/* Members are kept in the order of their creation; simbus wants
		 * them sorted by node id. */
		for (uint32_t id = 0; n < net->created && id <= 255; id++)
			for (unsigned i = 0; i < net->created; i++)
				if (up(net->members[i]) && net->members[i]->nodeid == id)
					ups[n++] = &net->members[i]->sm;
		simbus_recompute(&net->sb, ups, n);
		for (unsigned i = 0; i < net->created; i++) {
			member *m = net->members[i];
			if (!up(m))
				continue;
			uint32_t ring[SIMBUS_MAX_MEMBERS];
			size_t n_ring = 0;
			for (unsigned j = 0; j < n; j++)
				if (ups[j]->partition == m->sm.partition)
					ring[n_ring++] = MEMBER_OF(ups[j])->nodeid;
			bool quorate = 2 * n_ring > expected_votes(net);
			if (n_ring != m->n_ring || memcmp(ring, m->ring, n_ring * sizeof(*ring)) != 0 ||
			    quorate != m->quorate) {
				memcpy(m->ring, ring, n_ring * sizeof(*ring));
				m->n_ring = n_ring;
				m->quorate = quorate;
				m->ring_dirty = true;
			}
		}
	} while (net->membership_dirty);
	kick(net);
}

static gboolean on_dispatch(gpointer data)
{
	testbus *net = data;
	net->dispatching = true;
	tell_rings(net);
	deliver_round(net);
	net->dispatching = false;
	if (net->membership_dirty)
		membership_update(net);
	if (testbus_quiet(net)) {
		net->idle = 0;
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* The bus's operations                                                */

static void connect_member(member *m)
{
	if (m->connected || !up(m))
		return;
	m->connected = true;
	m->n_ring = 0;
	m->quorate = false;
	m->bus.cb.connected(m->bus.user, m->nodeid);
}

static void tb_start(herd_bus *b)
{
	member *m = (member *)b;
	if (m->started)
		return;
	m->started = true;
	connect_member(m);
	membership_update(m->net);
}

static void tb_stop(herd_bus *b)
{
	member *m = (member *)b;
	if (!m->started)
		return;
	m->started = false;
	m->connected = false;
	membership_update(m->net);
}

static void tb_free(herd_bus *b)
{
	member *m = (member *)b;
	testbus *net = m->net;
	g_assert_false(net->dispatching);
	tb_stop(b);
	for (unsigned i = 0; i < net->created; i++)
		if (net->members[i] == m)
			net->members[i] = NULL;
	g_free(m);
}

static bool tb_connected(herd_bus *b)
{
	return ((member *)b)->connected;
}

static bool tb_send(herd_bus *b, const void *msg, size_t len)
{
	member *m = (member *)b;
	if (!m->connected || !simbus_send(&m->sm, msg, len))
		return false;
	kick(m->net);
	return true;
}

static bool tb_quorate(herd_bus *b)
{
	member *m = (member *)b;
	return m->connected && m->quorate;
}

static json_t *tb_quorum_info(herd_bus *b)
{
	member *m = (member *)b;
	unsigned expected = expected_votes(m->net);
	return json_pack("{s:b,s:i,s:i,s:i,s:i,s:b,s:b}", "quorate", tb_quorate(b), "votes", 1,
			 "expected_votes", (int)expected, "total_votes",
			 m->connected ? (int)m->n_ring : 0, "quorum", (int)(expected / 2 + 1),
			 "two_node", 0, "wait_for_all", 0);
}

static json_t *tb_links(herd_bus *b, uint32_t nodeid)
{
	member *m = (member *)b;
	if (m->links_unread)
		return NULL;
	json_t *links = json_array();
	bool known = false, reachable = false;
	for (unsigned i = 0; i < m->net->created; i++) {
		member *peer = m->net->members[i];
		if (!peer || peer->nodeid != nodeid)
			continue;
		known = true;
		reachable = m->connected && up(peer) && peer->sm.partition == m->sm.partition;
	}
	if (known)
		json_array_append_new(links, json_pack("{s:i,s:b,s:b,s:i,s:s,s:s}", "link", 0, "enabled",
						       1, "connected", reachable, "mtu", 1500, "src",
						       "testbus", "dst", "testbus"));
	return links;
}

typedef struct {
	herd_bus_reload_done done;
	gpointer user;
	GError *error;
} tb_reload_answer;

static gboolean on_tb_reloaded(gpointer data)
{
	tb_reload_answer *r = data;
	r->done(r->error, r->user);
	g_clear_error(&r->error);
	g_free(r);
	return G_SOURCE_REMOVE;
}

/* Answered from the main loop, as corosync's bus does. */
static void tb_reload(herd_bus *b, herd_bus_reload_done done, gpointer user)
{
	member *m = (member *)b;
	tb_reload_answer *r = g_new0(tb_reload_answer, 1);
	r->done = done;
	r->user = user;
	if (!m->connected)
		r->error = g_error_new(HERD_ERROR, HERD_ERR_UNAVAILABLE,
				       "Cannot reload the configuration: node %u is not connected to the test bus.",
				       m->nodeid);
	else
		m->net->reloads++;
	g_idle_add(on_tb_reloaded, r);
}

static const herd_bus_ops testbus_ops = {
	.start = tb_start,
	.stop = tb_stop,
	.free = tb_free,
	.connected = tb_connected,
	.send = tb_send,
	.quorate = tb_quorate,
	.quorum_info = tb_quorum_info,
	.links = tb_links,
	.reload = tb_reload,
};

/* ------------------------------------------------------------------ */

testbus *testbus_new(unsigned expected_votes)
{
	testbus *net = g_new0(testbus, 1);
	/* simbus draws only where a flush left something in flight. */
	net->rng = g_rand_new_with_seed(1);
	simbus_init(&net->sb, net->rng, net);
	net->sb.deliver = on_simbus_deliver;
	net->expected_votes = expected_votes;
	return net;
}

void testbus_free(testbus *net)
{
	if (!net)
		return;
	for (unsigned i = 0; i < net->created; i++)
		g_assert_null(net->members[i]);
	if (net->idle)
		g_source_remove(net->idle);
	simbus_clear(&net->sb);
	g_rand_free(net->rng);
	g_free(net);
}

herd_bus *testbus_member_new(testbus *net, uint32_t nodeid)
{
	g_assert_cmpuint(net->created, <, SIMBUS_MAX_MEMBERS);
	g_assert_cmpuint(nodeid, >, 0);
	g_assert_cmpuint(nodeid, <=, 255);
	member *m = g_new0(member, 1);
	m->bus.ops = &testbus_ops;
	m->net = net;
	m->nodeid = nodeid;
	m->powered = true;
	m->sm.id = nodeid;
	net->members[net->created++] = m;
	return &m->bus;
}

void testbus_cut(testbus *net, uint32_t nodeid)
{
	find(net, nodeid)->sm.partition = ++net->next_partition;
	membership_update(net);
}

void testbus_heal(testbus *net, uint32_t nodeid)
{
	find(net, nodeid)->sm.partition = 0;
	membership_update(net);
}

void testbus_power(testbus *net, uint32_t nodeid, bool on)
{
	member *m = find(net, nodeid);
	if (m->powered == on)
		return;
	m->powered = on;
	if (on) {
		connect_member(m);
	} else if (m->connected) {
		m->connected = false;
		m->bus.cb.disconnected(m->bus.user);
	}
	membership_update(net);
}

bool testbus_quiet(testbus *net)
{
	if (net->membership_dirty || !simbus_quiet(&net->sb))
		return false;
	for (unsigned i = 0; i < net->created; i++)
		if (up(net->members[i]) && net->members[i]->ring_dirty)
			return false;
	return true;
}

void testbus_links_unread(testbus *net, uint32_t nodeid, bool unread)
{
	find(net, nodeid)->links_unread = unread;
}

unsigned testbus_reloads(testbus *net)
{
	return net->reloads;
}

void testbus_watch(testbus *net, uint32_t nodeid, GArray *log)
{
	net->watched = nodeid;
	net->watch_log = log;
}
