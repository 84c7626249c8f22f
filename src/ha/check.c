#include "ha/check.h"

#include "common/json.h"
#include "store/fence_device.h"
#include "store/node.h"

#include <stdlib.h>
#include <string.h>

static void add(json_t *results, const char *check, const char *status, const char *node,
		const char *message)
{
	json_t *r = json_pack("{s:s,s:s}", "check", check, "status", status);
	if (node)
		json_object_set_new(r, "node", json_string(node));
	json_object_set_new(r, "message", json_string(message));
	json_array_append_new(results, r);
}

static void addf(json_t *results, const char *check, const char *status, const char *node,
		 const char *fmt, ...) G_GNUC_PRINTF(5, 6);
static void addf(json_t *results, const char *check, const char *status, const char *node,
		 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	add(results, check, status, node, msg);
}

/* The nodes of the store by name. */
static GPtrArray *node_names(store_state *st)
{
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(st);
	GPtrArray *names = g_ptr_array_new();
	for (guint i = 0; i < nodes->len; i++)
		g_ptr_array_add(names, (gpointer)((store_object *)nodes->pdata[i])->name);
	return names;
}

static gint by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- answers ----------------------------------------------------------------------------- */

static void check_answers(json_t *out, const herd_check_input *in, GPtrArray *names)
{
	for (guint i = 0; i < names->len; i++)
		if (!json_object_get(in->probes, names->pdata[i]))
			addf(out, "answer", "fail", names->pdata[i],
			     "Node %s did not answer the check within %u s: its clock, links, corosync.conf "
			     "and versions are not checked. Make sure it is up and its herdd runs and is in the "
			     "cluster (herd cluster status).",
			     (const char *)names->pdata[i], in->answer_s);
}

/* ---- clocks ------------------------------------------------------------------------------ */

static gint by_int64(gconstpointer a, gconstpointer b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static const char *const TIME_FIX =
	"have every node keep time with NTP (chrony or systemd-timesyncd) from the same servers";

static void check_clocks(json_t *out, const herd_check_input *in, GPtrArray *names)
{
	g_autoptr(GArray) offs = g_array_new(FALSE, FALSE, sizeof(int64_t));
	g_autoptr(GPtrArray) who = g_ptr_array_new();
	for (guint i = 0; i < names->len; i++) {
		json_t *o = json_object_get(json_object_get(in->probes, names->pdata[i]), "offset_ms");
		if (!json_is_integer(o))
			continue;
		int64_t v = json_integer_value(o);
		g_array_append_val(offs, v);
		g_ptr_array_add(who, names->pdata[i]);
	}
	if (offs->len < 2)
		return;
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	for (guint i = 0; i < offs->len; i++) {
		lo = MIN(lo, g_array_index(offs, int64_t, i));
		hi = MAX(hi, g_array_index(offs, int64_t, i));
	}
	if (hi - lo <= CHECK_CLOCK_MAX_MS) {
		addf(out, "clock", "pass", NULL,
		     "The clocks of the %u nodes agree within %.1f s (%lld ms apart at most).", offs->len,
		     CHECK_CLOCK_MAX_MS / 1000.0, (long long)(hi - lo));
		return;
	}
	if (offs->len == 2) {
		/* Two clocks: which one is wrong cannot be told. */
		addf(out, "clock", "fail", NULL,
		     "The clocks of nodes %s and %s are %.1f s apart (more than %.1f s): %s, and check "
		     "which of them is wrong (date on each).",
		     (const char *)who->pdata[0], (const char *)who->pdata[1], (double)(hi - lo) / 1000.0,
		     CHECK_CLOCK_MAX_MS / 1000.0, TIME_FIX);
		return;
	}
	/* The median is the cluster's time: a node far from it is the one off. */
	g_autoptr(GArray) sorted = g_array_copy(offs);
	g_array_sort(sorted, by_int64);
	int64_t median = g_array_index(sorted, int64_t, sorted->len / 2);
	for (guint i = 0; i < offs->len; i++) {
		int64_t d = g_array_index(offs, int64_t, i) - median;
		if (llabs(d) <= CHECK_CLOCK_MAX_MS)
			continue;
		addf(out, "clock", "fail", who->pdata[i],
		     "The clock of node %s is %.1f s %s the other nodes' (more than %.1f s off): %s, and "
		     "correct %s's clock.",
		     (const char *)who->pdata[i], (double)llabs(d) / 1000.0, d > 0 ? "ahead of" : "behind",
		     CHECK_CLOCK_MAX_MS / 1000.0, TIME_FIX, (const char *)who->pdata[i]);
	}
}

/* ---- links: MTU, loss, how many ---------------------------------------------------------- */

static void check_links(json_t *out, const herd_check_input *in, GPtrArray *names)
{
	unsigned checked = 0, failed = 0;
	for (guint i = 0; i < names->len; i++) {
		const char *node = names->pdata[i];
		size_t k;
		json_t *p;
		json_array_foreach(json_object_get(json_object_get(in->probes, node), "pings"), k, p) {
			const char *peer = json_string_value(json_object_get(p, "peer"));
			const char *addr = json_string_value(json_object_get(p, "address"));
			json_int_t link = json_integer_value(json_object_get(p, "link"));
			json_int_t size = json_integer_value(json_object_get(p, "size"));
			json_int_t sent = json_integer_value(json_object_get(p, "sent"));
			json_int_t recv = json_integer_value(json_object_get(p, "received"));
			json_int_t df_sent = json_integer_value(json_object_get(p, "df_sent"));
			json_int_t df_recv = json_integer_value(json_object_get(p, "df_received"));
			const char *err = json_string_value(json_object_get(p, "error"));
			if (!peer || !addr)
				continue;
			checked++;
			g_autofree char *why = err && *err ? g_strdup_printf(" (ping: %s)", err) : g_strdup("");
			if (sent == 0 || recv == 0) {
				failed++;
				addf(out, "link", "fail", node,
				     "Node %s gets no answer from node %s on link %lld (%s) to %lld pings%s: check that "
				     "link's cable, switch port, interface and address on both nodes.",
				     node, peer, (long long)link, addr, (long long)sent, why);
				continue;
			}
			if (df_recv == 0) {
				failed++;
				addf(out, "mtu", "fail", node,
				     "Don't-fragment pings of %lld bytes (for an MTU of %u) from node %s to node %s on "
				     "link %lld (%s) do not pass, though small ones do%s: set the MTU of link %lld's "
				     "interfaces (and their switch ports) to at least %u on both nodes, or lower the "
				     "cluster's check_mtu to what the network carries.",
				     (long long)size, in->mtu, node, peer, (long long)link, addr, why, (long long)link,
				     in->mtu);
			} else if (recv < sent || df_recv < df_sent) {
				unsigned lost = (unsigned)(sent - recv + df_sent - df_recv);
				addf(out, "loss", "warn", node,
				     "Node %s lost %u of %lld pings to node %s on link %lld (%s): check that link for "
				     "errors (ip -s link, the switch's counters).",
				     node, lost, (long long)(sent + df_sent), peer, (long long)link, addr);
			}
		}
	}
	if (checked && !failed)
		addf(out, "mtu", "pass", NULL,
		     "Every node reaches every other on every link with don't-fragment pings for an MTU of %u "
		     "(%u paths).", in->mtu, checked);

	/* How many links: the fewest a node has. */
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(in->st);
	size_t fewest = SIZE_MAX;
	for (guint i = 0; i < nodes->len; i++)
		fewest = MIN(fewest, store_node_of(nodes->pdata[i])->n_links);
	if (nodes->len < 2 || fewest == SIZE_MAX)
		return;
	if (fewest < 2)
		add(out, "links", "warn", NULL,
		    "The cluster has a single heartbeat link: a loss of carrier of as little as 0.1 s on a "
		    "node's only link changes the membership and gets that node fenced. Add a second link on "
		    "another network (and switch), given as a second --link to herd cluster create and join.");
	else
		addf(out, "links", "pass", NULL, "Every node has %zu heartbeat links.", fewest);
}

/* ---- fencing ----------------------------------------------------------------------------- */

static void check_fencing(json_t *out, const herd_check_input *in, GPtrArray *names)
{
	bool bad = false;
	for (guint i = 0; i < names->len; i++) {
		const char *node = names->pdata[i];
		if (store_fence_covers(in->st, node))
			continue;
		bad = true;
		addf(out, "fence", "fail", node,
		     "Node %s has no fence device: if it is lost, herd cannot fence it, and its HA VMs do not "
		     "restart elsewhere. Add one with a plug for it (herd fence-device add NAME --agent AGENT "
		     "--param … --plug %s=PLUG).", node, node);
	}
	size_t k;
	json_t *f;
	unsigned answered = 0;
	json_array_foreach(in->fence, k, f) {
		const char *dev = json_string_value(json_object_get(f, "device"));
		const char *node = json_string_value(json_object_get(f, "node"));
		const char *plug = json_string_value(json_object_get(f, "plug"));
		const char *detail = json_string_value(json_object_get(f, "detail"));
		if (!dev || !node)
			continue;
		if (json_is_true(json_object_get(f, "ok"))) {
			answered++;
			continue;
		}
		bad = true;
		addf(out, "fence", "fail", node,
		     "Fence device %s does not answer 'status' for node %s (plug %s) from node %s: %s. Check "
		     "its address, login and password: remove it and add it again with the right ones "
		     "(herd fence-device remove %s; herd fence-device add %s …), then run herd fence-device "
		     "test %s.",
		     dev, node, plug ? plug : "?", in->asker, detail && *detail ? detail : "no answer", dev, dev,
		     dev);
	}
	if (!bad && names->len)
		addf(out, "fence", "pass", NULL,
		     "Every node has a fence device, and each answers 'status' (%u plugs).", answered);
}

/* ---- storage ----------------------------------------------------------------------------- */

static void check_storage(json_t *out, const herd_check_input *in)
{
	unsigned n = 0;
	bool bad = false;
	g_autoptr(GPtrArray) storages = herd_json_sorted_keys(in->reach);
	for (guint s = 0; s < storages->len; s++) {
		const char *storage = storages->pdata[s];
		json_t *by_node = json_object_get(in->reach, storage);
		g_autoptr(GPtrArray) nodes = herd_json_sorted_keys(by_node);
		n++;
		for (guint i = 0; i < nodes->len; i++) {
			const char *node = nodes->pdata[i];
			json_t *r = json_object_get(by_node, node);
			if (json_is_true(json_object_get(r, "ok")))
				continue;
			bad = true;
			const char *problem = json_string_value(json_object_get(r, "problem"));
			addf(out, "storage", "fail", node,
			     "Node %s does not reach storage %s: %s. Every node may have to run a VM whose disks "
			     "are on it: make it reachable there (mount, network, iSCSI access for that node).",
			     node, storage, problem ? problem : "no reason given");
		}
	}
	if (!bad && n)
		addf(out, "storage", "pass", NULL, "Every node reaches each of the %u storages.", n);
}

/* ---- corosync.conf ----------------------------------------------------------------------- */

static void check_corosync_conf(json_t *out, const herd_check_input *in, GPtrArray *names)
{
	bool bad = false;
	unsigned n = 0;
	for (guint i = 0; i < names->len; i++) {
		const char *node = names->pdata[i];
		json_t *p = json_object_get(in->probes, node);
		if (!p)
			continue;
		const char *sha = json_string_value(json_object_get(p, "corosync_conf"));
		const char *err = json_string_value(json_object_get(p, "corosync_conf_error"));
		n++;
		if (!sha) {
			bad = true;
			addf(out, "corosync", "fail", node,
			     "Node %s's corosync.conf cannot be read: %s. herd writes it from the cluster's "
			     "configuration: restart herdd on %s to have it written again.",
			     node, err ? err : "?", node);
		} else if (in->corosync_conf && strcmp(sha, in->corosync_conf) != 0) {
			bad = true;
			addf(out, "corosync", "fail", node,
			     "Node %s's corosync.conf is not the one the cluster's configuration gives (that "
			     "node's corosync may run with other nodes, links or timeouts than the others'): do not "
			     "edit it by hand; restart herdd on %s to have it written again, then corosync-cfgtool "
			     "-R reloads it.",
			     node, node);
		}
	}
	if (!bad && n)
		addf(out, "corosync", "pass", NULL, "The %u nodes have the same corosync.conf.", n);
}

/* ---- versions and CPUs ------------------------------------------------------------------- */

/* "9.0.0 on n1, n2; 8.0.0 on n3" for the value of @key of each probe, or
 * NULL when every node has the same one. */
static char *differing(const herd_check_input *in, GPtrArray *names, const char *key)
{
	g_autoptr(json_t) by_value = json_object(); /* value -> [nodes] */
	for (guint i = 0; i < names->len; i++) {
		const char *v = json_string_value(json_object_get(json_object_get(in->probes, names->pdata[i]), key));
		if (!v)
			continue;
		json_t *l = json_object_get(by_value, v);
		if (!l)
			json_object_set_new(by_value, v, l = json_array());
		json_array_append_new(l, json_string(names->pdata[i]));
	}
	if (json_object_size(by_value) < 2)
		return NULL;
	GString *s = g_string_new(NULL);
	const char *v;
	json_t *l;
	json_object_foreach(by_value, v, l) {
		g_string_append_printf(s, "%s%s on ", s->len ? "; " : "", v);
		size_t i;
		json_t *n;
		json_array_foreach(l, i, n)
			g_string_append_printf(s, "%s%s", i ? ", " : "", json_string_value(n));
	}
	return g_string_free(s, FALSE);
}

static void check_virt(json_t *out, const herd_check_input *in, GPtrArray *names)
{
	bool bad = false;
	for (guint i = 0; i < names->len; i++) {
		json_t *p = json_object_get(in->probes, names->pdata[i]);
		const char *err = json_string_value(json_object_get(p, "virt_error"));
		if (!p || !err)
			continue;
		bad = true;
		addf(out, "versions", "fail", names->pdata[i],
		     "herd cannot read the versions of libvirt and QEMU on node %s: %s. Make sure libvirtd runs "
		     "there (herd node list shows whether herd reaches it).",
		     (const char *)names->pdata[i], err);
	}
	g_autofree char *libvirt = differing(in, names, "libvirt");
	g_autofree char *qemu = differing(in, names, "qemu");
	if (libvirt || qemu) {
		bad = true;
		GString *what = g_string_new(NULL);
		if (libvirt)
			g_string_append_printf(what, "libvirt (%s)", libvirt);
		if (qemu)
			g_string_append_printf(what, "%sQEMU (%s)", libvirt ? " and " : "", qemu);
		addf(out, "versions", "warn", NULL,
		     "The nodes run different versions of %s: a VM moves live only to a node with the same or a "
		     "newer QEMU and libvirt, so one may not come back. Upgrade the older nodes to match.",
		     what->str);
		g_string_free(what, TRUE);
	}
	g_autofree char *model = differing(in, names, "cpu_model");
	g_autofree char *flags = differing(in, names, "cpu_flags");
	if (model || flags) {
		bad = true;
		addf(out, "cpu", "warn", NULL,
		     "The nodes' CPUs differ (%s): a VM with the host's CPU (host-passthrough) cannot move live "
		     "between them. Give such VMs a CPU model every node has, or keep them on nodes with the same "
		     "CPU.",
		     model ? model : "the same model, with other features");
	}
	if (!bad && json_object_size(in->probes))
		addf(out, "versions", "pass", NULL,
		     "Every node runs the same libvirt and QEMU on the same CPU model: VMs can move live between "
		     "them.");
}

/* ---- N+1 --------------------------------------------------------------------------------- */

static void check_n_plus_1(json_t *out, const herd_check_input *in)
{
	if (!in->n_plus_1_known) {
		add(out, "n_plus_1", "warn", NULL,
		    "No coordinator says whether N+1 holds (no quorum?): see herd cluster status.");
		return;
	}
	if (in->n_plus_1) {
		add(out, "n_plus_1", "pass", NULL,
		    "N+1 holds: if any one node died, its HA VMs could restart on the others.");
		return;
	}
	GString *risk = g_string_new(NULL);
	const char *node;
	json_t *count;
	json_object_foreach(in->at_risk, node, count)
		if (json_integer_value(count) > 0)
			g_string_append_printf(risk, "%s%s (%lld)", risk->len ? ", " : "", node,
					       (long long)json_integer_value(count));
	addf(out, "n_plus_1", "warn", NULL,
	     "N+1 does not hold: if one of these nodes died, that many of its HA VMs could not restart "
	     "elsewhere: %s. Add memory or CPUs, a node, or make fewer VMs HA.",
	     risk->len ? risk->str : "(no node named)");
	g_string_free(risk, TRUE);
}

json_t *herd_check_evaluate(const herd_check_input *in)
{
	json_t *out = json_array();
	g_autoptr(GPtrArray) names = node_names(in->st);
	g_ptr_array_sort(names, by_name);
	check_answers(out, in, names);
	check_clocks(out, in, names);
	check_links(out, in, names);
	check_fencing(out, in, names);
	check_storage(out, in);
	check_corosync_conf(out, in, names);
	check_virt(out, in, names);
	check_n_plus_1(out, in);
	return out;
}

bool herd_check_failed(json_t *results)
{
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r)
		if (g_strcmp0(json_string_value(json_object_get(r, "status")), "fail") == 0)
			return true;
	return false;
}

void herd_check_alerts(json_t *alerts, json_t *results)
{
	/* The other failures' sentences by node ("" for the cluster's). */
	g_autoptr(json_t) failed = json_object();
	g_autoptr(GPtrArray) order = g_ptr_array_new();
	size_t i;
	json_t *r;
	json_array_foreach(results, i, r) {
		if (g_strcmp0(json_string_value(json_object_get(r, "status")), "fail") != 0)
			continue;
		const char *check = json_string_value(json_object_get(r, "check"));
		const char *node = json_string_value(json_object_get(r, "node"));
		const char *msg = json_string_value(json_object_get(r, "message"));
		if (!check || !msg)
			continue;
		if (strcmp(check, "clock") == 0) {
			json_t *a = json_pack("{s:s,s:s,s:s}", "kind", "clock_skew", "severity", "warning", "message",
					      msg);
			if (node)
				json_object_set_new(a, "node", json_string(node));
			json_array_append_new(alerts, a);
			continue;
		}
		const char *key = node ? node : "";
		json_t *l = json_object_get(failed, key);
		if (!l) {
			json_object_set_new(failed, key, l = json_array());
			g_ptr_array_add(order, (gpointer)json_string_value(json_object_get(r, "node")));
		}
		json_array_append_new(l, json_string(msg));
	}
	for (guint k = 0; k < order->len; k++) {
		const char *node = order->pdata[k];
		json_t *l = json_object_get(failed, node ? node : "");
		GString *s = g_string_new(NULL);
		g_string_append_printf(s, "Pre-flight check%s failed%s%s:", json_array_size(l) > 1 ? "s" : "",
				       node ? " for node " : "", node ? node : "");
		json_t *m;
		json_array_foreach(l, i, m)
			g_string_append_printf(s, " %s", json_string_value(m));
		json_t *a = json_pack("{s:s,s:s,s:s%}", "kind", "check_failed", "severity", "warning", "message",
				      s->str, s->len);
		g_string_free(s, TRUE);
		if (node)
			json_object_set_new(a, "node", json_string(node));
		json_array_append_new(alerts, a);
	}
}

unsigned herd_check_ping_size(unsigned mtu, const char *address)
{
	unsigned headers = strchr(address, ':') ? 48 : 28;
	return mtu > headers ? mtu - headers : 0;
}

bool herd_check_parse_ping(const char *output, unsigned *sent, unsigned *received)
{
	const char *p = output ? strstr(output, " packets transmitted, ") : NULL;
	if (!p)
		return false;
	const char *start = p;
	while (start > output && g_ascii_isdigit(start[-1]))
		start--;
	if (start == p)
		return false;
	*sent = (unsigned)strtoul(start, NULL, 10);
	const char *r = p + strlen(" packets transmitted, ");
	if (!g_ascii_isdigit(*r))
		return false;
	*received = (unsigned)strtoul(r, NULL, 10);
	return true;
}

/* The value of "KEY<spaces>: value" at the start of a line of @text, or NULL. */
static char *line_value(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, klen) != 0)
			continue;
		const char *p = l + klen;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ':')
			continue;
		p++;
		while (*p == ' ')
			p++;
		const char *end = strchr(p, '\n');
		return g_strstrip(g_strndup(p, end ? (size_t)(end - p) : strlen(p)));
	}
	return NULL;
}

bool herd_check_parse_cpuinfo(const char *text, char **model, char **flags)
{
	*model = line_value(text, "model name");
	*flags = line_value(text, "flags");
	if (*model && *flags)
		return true;
	g_clear_pointer(model, g_free);
	g_clear_pointer(flags, g_free);
	return false;
}

bool herd_check_parse_virsh_version(const char *text, char **libvirt, char **qemu)
{
	*libvirt = line_value(text, "Running against daemon");
	g_autofree char *hv = line_value(text, "Running hypervisor");
	if (!*libvirt)
		*libvirt = line_value(text, "Using library");
	/* "QEMU 7.2.0", "libvirt 9.0.0": the version is the last word. */
	if (*libvirt && strrchr(*libvirt, ' ')) {
		char *v = g_strdup(strrchr(*libvirt, ' ') + 1);
		g_free(*libvirt);
		*libvirt = v;
	}
	*qemu = hv && strrchr(hv, ' ') ? g_strdup(strrchr(hv, ' ') + 1) : NULL;
	if (*libvirt && *qemu)
		return true;
	g_clear_pointer(libvirt, g_free);
	g_clear_pointer(qemu, g_free);
	return false;
}
