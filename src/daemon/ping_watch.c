#define G_LOG_DOMAIN "ping"
#include "daemon/ping_watch.h"

#include "common/json.h"
#include "common/log.h"
#include "ha/ping.h"
#include "store/cluster.h"
#include "store/settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib-unix.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Without ping nodes: how often the settings are looked at again. */
#define IDLE_PERIOD_MS 1000

typedef struct {
	int family;
	struct sockaddr_storage addr;
	socklen_t len;
	bool answered;           /* in this round */
} peer;

struct herd_ping_watch {
	herd_cluster *cluster;
	herd_ha *ha;
	herd_ping *core;
	GArray *peers;           /* peer, in the order of the core's targets */
	int fd4, fd6;            /* -1 until needed */
	guint src4, src6, timer;
	uint16_t id, seq;
	bool round_open;         /* echoes of this round are out */
	bool blind;              /* ... but not all: a socket could not be opened */
	char *warned;            /* the last socket problem logged */
};

static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

static uint16_t checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static void warn_once(herd_ping_watch *w, const char *what)
{
	if (g_strcmp0(w->warned, what) == 0)
		return;
	g_free(w->warned);
	w->warned = g_strdup(what);
	log_warn("%s", what);
}

/* A reply from @from with our id and this round's sequence number. */
static void answered(herd_ping_watch *w, int family, const void *from, uint16_t id, uint16_t seq)
{
	if (id != w->id || seq != w->seq || !w->round_open)
		return;
	for (guint i = 0; i < w->peers->len; i++) {
		peer *p = &g_array_index(w->peers, peer, i);
		if (p->family != family)
			continue;
		bool same = family == AF_INET
				    ? memcmp(&((struct sockaddr_in *)&p->addr)->sin_addr, from, 4) == 0
				    : memcmp(&((struct sockaddr_in6 *)&p->addr)->sin6_addr, from, 16) == 0;
		if (same)
			p->answered = true;
	}
}

static gboolean on_readable(int fd, GIOCondition cond, gpointer user)
{
	herd_ping_watch *w = user;
	(void)cond;
	for (int n = 0; n < 64; n++) {
		uint8_t buf[1500];
		struct sockaddr_storage from;
		socklen_t flen = sizeof(from);
		ssize_t got = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		if (got < 0)
			break;
		if (fd == w->fd4) {
			/* The IP header comes first on a raw IPv4 socket. */
			const struct iphdr *ip = (const struct iphdr *)buf;
			size_t hl = (size_t)ip->ihl * 4;
			if ((size_t)got < sizeof(*ip) || (size_t)got < hl + sizeof(struct icmphdr))
				continue;
			const struct icmphdr *icmp = (const struct icmphdr *)(buf + hl);
			if (icmp->type == ICMP_ECHOREPLY)
				answered(w, AF_INET, &ip->saddr, ntohs(icmp->un.echo.id),
					 ntohs(icmp->un.echo.sequence));
		} else {
			const struct icmp6_hdr *icmp = (const struct icmp6_hdr *)buf;
			if ((size_t)got >= sizeof(*icmp) && icmp->icmp6_type == ICMP6_ECHO_REPLY &&
			    from.ss_family == AF_INET6)
				answered(w, AF_INET6, &((struct sockaddr_in6 *)&from)->sin6_addr,
					 ntohs(icmp->icmp6_id), ntohs(icmp->icmp6_seq));
		}
	}
	return G_SOURCE_CONTINUE;
}

static int open_socket(herd_ping_watch *w, int family, guint *src)
{
	int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
			family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	if (fd < 0) {
		g_autofree char *what = g_strdup_printf(
			"cannot open a raw ICMP%s socket for the ping nodes: %s (herdd needs CAP_NET_RAW)",
			family == AF_INET ? "" : "v6", g_strerror(errno));
		warn_once(w, what);
		return -1;
	}
	if (family == AF_INET6) {
		struct icmp6_filter filter;
		ICMP6_FILTER_SETBLOCKALL(&filter);
		ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
		setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter));
	}
	*src = g_unix_fd_add(fd, G_IO_IN, on_readable, w);
	return fd;
}

static void send_echo(herd_ping_watch *w, peer *p)
{
	int *fd = p->family == AF_INET ? &w->fd4 : &w->fd6;
	if (*fd < 0)
		*fd = open_socket(w, p->family, p->family == AF_INET ? &w->src4 : &w->src6);
	if (*fd < 0) {
		w->blind = true;
		return;
	}
	uint8_t packet[16] = { 0 };
	if (p->family == AF_INET) {
		struct icmphdr *h = (struct icmphdr *)packet;
		h->type = ICMP_ECHO;
		h->un.echo.id = htons(w->id);
		h->un.echo.sequence = htons(w->seq);
		memcpy(packet + sizeof(*h), "herd", 4);
		h->checksum = checksum(packet, sizeof(packet));
	} else {
		/* The kernel fills in an ICMPv6 checksum. */
		struct icmp6_hdr *h = (struct icmp6_hdr *)packet;
		h->icmp6_type = ICMP6_ECHO_REQUEST;
		h->icmp6_id = htons(w->id);
		h->icmp6_seq = htons(w->seq);
		memcpy(packet + sizeof(*h), "herd", 4);
	}
	if (sendto(*fd, packet, sizeof(packet), 0, (struct sockaddr *)&p->addr, p->len) < 0)
		log_debug("echo request not sent: %s", g_strerror(errno));
}

/* The ping nodes of the store's settings, or none. */
static char **configured(herd_ping_watch *w, int64_t *interval_ms, int64_t *dampen_ms)
{
	store_state *st = herd_cluster_state(w->cluster);
	store_object *cluster = st ? store_state_cluster(st) : NULL;
	*interval_ms = IDLE_PERIOD_MS;
	*dampen_ms = 0;
	if (!cluster)
		return NULL;
	json_t *stored = store_cluster_stored_settings(cluster);
	const store_settings *s = store_settings_of(st);
	*interval_ms = s->ping_interval_ms;
	*dampen_ms = s->ping_dampen_ms;
	const char *text = cluster_setting_string(stored, "ping_nodes");
	if (!text || !*text)
		return NULL;
	g_autoptr(GError) error = NULL;
	char **list = cluster_setting_ping_nodes("ping_nodes", text, &error);
	if (!list)
		log_warn("%s", error->message);
	return list;
}

static void set_peers(herd_ping_watch *w)
{
	size_t n;
	const char *const *targets = herd_ping_targets(w->core, &n);
	g_array_set_size(w->peers, 0);
	for (size_t i = 0; i < n; i++) {
		peer p = { 0 };
		struct sockaddr_in *a4 = (struct sockaddr_in *)&p.addr;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&p.addr;
		if (inet_pton(AF_INET, targets[i], &a4->sin_addr) == 1) {
			p.family = a4->sin_family = AF_INET;
			p.len = sizeof(*a4);
		} else if (inet_pton(AF_INET6, targets[i], &a6->sin6_addr) == 1) {
			p.family = a6->sin6_family = AF_INET6;
			p.len = sizeof(*a6);
		}
		g_array_append_val(w->peers, p);
	}
}

static gboolean on_round(gpointer user);

static void schedule(herd_ping_watch *w, int64_t ms)
{
	w->timer = g_timeout_add((guint)ms, on_round, w);
}

static gboolean on_round(gpointer user)
{
	herd_ping_watch *w = user;
	int64_t now = now_ms(), interval, dampen;
	g_auto(GStrv) list = configured(w, &interval, &dampen);
	size_t n = list ? g_strv_length(list) : 0;
	/* The round that ends: what answered.  A node that could not send
	 * (no raw socket: a local fault, logged) says nothing rather than
	 * take itself for cut off. */
	if (w->round_open && w->peers->len && !w->blind) {
		g_autofree bool *got = g_new0(bool, w->peers->len);
		for (guint i = 0; i < w->peers->len; i++)
			got[i] = g_array_index(w->peers, peer, i).answered;
		if (herd_ping_round(w->core, got, now, dampen))
			log_info("ping nodes: %s", herd_ping_reaches(w->core) ? "reached" : "none reached");
	}
	w->round_open = false;
	if (herd_ping_configure(w->core, (const char *const *)list, n, now))
		set_peers(w);
	g_autoptr(json_t) verdict = w->blind ? NULL : herd_ping_json(w->core);
	herd_ha_set_ping(w->ha, verdict);
	/* The next round's echoes. */
	w->blind = false;
	if (n) {
		w->seq++;
		for (guint i = 0; i < w->peers->len; i++) {
			peer *p = &g_array_index(w->peers, peer, i);
			p->answered = false;
			if (p->family)
				send_echo(w, p);
		}
		w->round_open = true;
	}
	schedule(w, n ? interval : IDLE_PERIOD_MS);
	return G_SOURCE_REMOVE;
}

herd_ping_watch *herd_ping_watch_new(herd_cluster *cluster, herd_ha *ha)
{
	herd_ping_watch *w = g_new0(herd_ping_watch, 1);
	w->cluster = cluster;
	w->ha = ha;
	w->core = herd_ping_new();
	w->peers = g_array_new(FALSE, TRUE, sizeof(peer));
	w->fd4 = w->fd6 = -1;
	w->id = (uint16_t)g_random_int();
	schedule(w, IDLE_PERIOD_MS);
	return w;
}

void herd_ping_watch_free(herd_ping_watch *w)
{
	if (!w)
		return;
	g_clear_handle_id(&w->timer, g_source_remove);
	g_clear_handle_id(&w->src4, g_source_remove);
	g_clear_handle_id(&w->src6, g_source_remove);
	if (w->fd4 >= 0)
		close(w->fd4);
	if (w->fd6 >= 0)
		close(w->fd6);
	herd_ping_free(w->core);
	g_array_unref(w->peers);
	g_free(w->warned);
	g_free(w);
}
