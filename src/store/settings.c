#include "store/settings.h"

#include "common/error.h"
#include "common/json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define F(field) offsetof(store_settings, field)

static bool check_host(const char *key, const char *v, GError **error);
static bool check_address(const char *key, const char *v, GError **error);
static bool check_addresses(const char *key, const char *v, GError **error);
static bool check_ping_nodes(const char *key, const char *v, GError **error);
static bool check_url(const char *key, const char *v, GError **error);
static bool check_path(const char *key, const char *v, GError **error);

const cluster_setting cluster_settings[] = {
	{ "token_ms", SETTING_INT, 100, 60000, NULL, "1000",
	  "corosync totem token timeout: how long until a silent node is declared lost", true, F(token_ms) },
	{ "token_coefficient_ms", SETTING_INT, 0, 60000, NULL, "650",
	  "added to the token timeout for every node beyond two", true, F(token_coefficient_ms) },
	{ "knet_ping_interval_ms", SETTING_INT, 0, 60000, NULL, "0",
	  "knet heartbeat interval per link (0: corosync derives it from the token)", true, F(knet_ping_interval_ms) },
	{ "knet_ping_timeout_ms", SETTING_INT, 0, 60000, NULL, "0",
	  "knet link timeout (0: derived; below 500 with a 300 ms token makes links flap)", true, F(knet_ping_timeout_ms) },
	{ "vm_history_limit", SETTING_INT, 1, 100000, NULL, "100",
	  "configuration versions kept per VM", false, F(vm_history_limit) },
	{ "lab_mode", SETTING_BOOL, 0, 0, NULL, "no",
	  "no fencing: a lost node counts as dead at once (UNSAFE: a VM may run twice; tests only)",
	  false, F(lab_mode) },
	{ "admission_control", SETTING_ENUM, 0, 0, "off|warn|refuse", "warn",
	  "N+1: warn, or refuse starting HA VMs, when losing any one node would leave some without room",
	  false, F(admission_control) },
	{ "vcpu_overcommit", SETTING_INT, 1, 64, NULL, "4",
	  "vCPUs a node may carry per CPU it has", false, F(vcpu_overcommit) },
	{ "memory_reserve_mib", SETTING_INT, 0, 1048576, NULL, "0",
	  "RAM kept free on every node for the host itself", false, F(memory_reserve_mib) },
	{ "fence_delay_ms", SETTING_INT, 0, 600000, NULL, "3000",
	  "two-node clusters: how long every node but the first waits before fencing its peer, so one wins a split",
	  false, F(fence_delay_ms) },
	{ "fence_action", SETTING_ENUM, 0, 0, "reboot|off", "reboot",
	  "what fencing does to a lost node: reboot (off, verified off, then on again) or off (it stays off)",
	  false, F(fence_action) },
	{ "failback_after_s", SETTING_INT, 0, 86400, NULL, "10",
	  "how long a VM runs before it may move back to its preferred node", false, F(failback_after_s) },
	{ "return_after_maintenance", SETTING_BOOL, 0, 0, NULL, "yes",
	  "VMs moved away from a node by standby or maintenance go back to it, live, once it is online again",
	  false, F(return_after_maintenance) },
	{ "join_timeout_s", SETTING_INT, 0, 3600, NULL, "120",
	  "after the cluster starts: how long a node not seen yet may take to join before it is fenced",
	  false, F(join_timeout_s) },
	{ "start_failures_max", SETTING_INT, 1, 100, NULL, "3",
	  "failed starts of a VM on one node before herd places it on another (until an operator starts, stops or defines it again)",
	  false, F(start_failures_max) },
	{ "migration_timeout_min_s", SETTING_INT, 10, 86400, NULL, "60",
	  "live migration: the least time it may take before it is cancelled (the VM keeps running on its source)",
	  false, F(migration_timeout_min_s) },
	{ "migration_timeout_per_gib_s", SETTING_INT, 0, 3600, NULL, "30",
	  "live migration: time allowed per GiB of the VM's RAM, on top of migration_timeout_min_s",
	  false, F(migration_timeout_per_gib_s) },
	{ "migration_tls", SETTING_BOOL, 0, 0, NULL, "yes",
	  "live migration: encrypt the VM's memory on the wire (QEMU TLS with the cluster's certificates); no only on a trusted network",
	  false, F(migration_tls) },
	{ "migration_port_min", SETTING_INT, 1024, 65535, NULL, "49152",
	  "live migration: the first port of the range a node receives VMs' memory on (a busy port is skipped)",
	  false, F(migration_port_min) },
	{ "migration_port_max", SETTING_INT, 1024, 65535, NULL, "49215",
	  "live migration: the last port of that range (at least migration_port_min)",
	  false, F(migration_port_max) },
	{ "migration_bandwidth_mibs", SETTING_INT, 0, 1000000, NULL, "0",
	  "live migration: the most MiB/s one migration may send (0: as fast as the network goes)",
	  false, F(migration_bandwidth_mibs) },
	{ "esan_link", SETTING_INT, 0, 7, NULL, "0",
	  "eSAN: the link (0-7, as corosync numbers them) whose address each node replicates eSAN disks on; a node without that link uses its first",
	  false, F(esan_link) },
	{ "esan_resync_mibs", SETTING_INT, 0, 100000, NULL, "100",
	  "eSAN: the most MiB/s a resynchronisation copies, leaving the rest of the disk to the guests (0: no limit)",
	  false, F(esan_resync_mibs) },
	{ "esan_timeout_ms", SETTING_INT, 100, 600000, NULL, "5000",
	  "eSAN: how long a replica waits for its peer to answer a write before it takes the peer for away",
	  false, F(esan_timeout_ms) },
	{ "migration_parallel", SETTING_INT, 1, 16, NULL, "2",
	  "live migration: how many VMs a node migrates away at once (standby, switchover, failback)",
	  false, F(migration_parallel) },
	{ "shutdown_policy", SETTING_ENUM, 0, 0, "migrate|failover", "migrate",
	  "a host shut down or rebooted without maintenance: migrate (its node goes into maintenance, its VMs move away live, then it leaves: no fence) or failover (it is lost: fenced, its HA VMs restarted elsewhere)",
	  false, F(shutdown_policy) },
	{ "shutdown_timeout_s", SETTING_INT, 0, STORE_SHUTDOWN_TIMEOUT_MAX_S, NULL, "240",
	  "shutdown_policy migrate: how long a host's shutdown waits for its VMs to leave; what is still there then stays, down until the host is back",
	  false, F(shutdown_timeout_s) },
	{ "vm_domain_type", SETTING_ENUM, 0, 0, "kvm|qemu", "kvm",
	  "the libvirt domain type of VMs herd makes (herd vm create): kvm, or qemu (emulated, for hosts without KVM such as nested test nodes); taken when a VM's configuration is made",
	  false, F(vm_domain_type) },
	{ "ha_paused", SETTING_BOOL, 0, 0, NULL, "no",
	  "HA paused (herd cluster ha pause|resume): the coordinator fences no node and starts, moves or fails over no VM; VMs stay as they are",
	  false, F(ha_paused) },
	{ "fence_idle_nodes", SETTING_BOOL, 0, 0, NULL, "yes",
	  "a lost node that runs no HA VM is fenced too (as Pacemaker); no: only nodes with HA VMs (or an HA VM's eSAN replica) are (as Proxmox)",
	  false, F(fence_idle_nodes) },
	{ "rebalance", SETTING_BOOL, 0, 0, NULL, "no",
	  "move VMs live from the fullest nodes when the load stays uneven (rebalance_threshold_pct for rebalance_hold_s); 'herd simulate --rebalance' shows what it would do",
	  false, F(rebalance) },
	{ "rebalance_threshold_pct", SETTING_INT, 1, 100, NULL, "20",
	  "rebalance: the spread of the nodes' fullness (fullest less emptiest, in points) that starts the hold",
	  false, F(rebalance_threshold_pct) },
	{ "rebalance_hold_s", SETTING_INT, 0, 86400, NULL, "300",
	  "rebalance: how long the spread must stay at or above the threshold before VMs move",
	  false, F(rebalance_hold_s) },
	{ "rebalance_min_gain_pct", SETTING_INT, 1, 100, NULL, "5",
	  "rebalance: the least a move must lower the spread by (points), or it is not made",
	  false, F(rebalance_min_gain_pct) },
	{ "rebalance_max_moves", SETTING_INT, 1, 16, NULL, "2",
	  "rebalance: how many VMs move at a time; the next ones once those are done and the spread is still high",
	  false, F(rebalance_max_moves) },
	{ "ping_nodes", SETTING_TEXT, 0, 0, NULL, "",
	  "ping nodes: IP addresses outside the cluster (a gateway, a core switch), separated by commas; a node that reaches none of them while another node reaches one gives its HA VMs up to nodes that do (empty: none)",
	  false, 0, check_ping_nodes },
	{ "ping_interval_ms", SETTING_INT, 100, 60000, NULL, "1000",
	  "ping nodes: how often every node sends each of them an ICMP echo request",
	  false, F(ping_interval_ms) },
	{ "ping_dampen_ms", SETTING_INT, 0, 3600000, NULL, "5000",
	  "ping nodes: how long a ping node must stay silent (or answer again) before a node's verdict changes, so that a lost ping moves nothing (at least twice ping_interval_ms)",
	  false, F(ping_dampen_ms) },
	{ "check_mtu", SETTING_INT, 576, 65535, NULL, "1500",
	  "pre-flight checks: the MTU every heartbeat link must carry (9000 for jumbo frames); herd check sends don't-fragment pings of that size between every two nodes on every link",
	  false, F(check_mtu) },
	{ "check_interval_s", SETTING_INT, 0, 604800, NULL, "3600",
	  "pre-flight checks: how often the coordinator runs herd check by itself, its failures becoming alerts (0: only on demand)",
	  false, F(check_interval_s) },
	{ "notify_smtp_host", SETTING_TEXT, 0, 0, NULL, "",
	  "notifications: the SMTP relay's host name or address that alert mails go through (empty: no mail)",
	  false, 0, check_host },
	{ "notify_smtp_port", SETTING_INT, 1, 65535, NULL, "25",
	  "notifications: the SMTP relay's port (25, 587 for submission, 465 for tls)", false,
	  F(notify_smtp_port) },
	{ "notify_smtp_tls", SETTING_ENUM, 0, 0, "none|starttls|tls", "starttls",
	  "notifications: starttls (required, the relay's certificate verified), tls (from the first byte), or none (plain text)",
	  false, F(notify_smtp_tls) },
	{ "notify_smtp_ca", SETTING_TEXT, 0, 0, NULL, "",
	  "notifications: a CA certificate file (PEM, the same path on every node) that the relay's certificate is verified with (empty: the system's CAs)",
	  false, 0, check_path },
	{ "notify_smtp_user", SETTING_TEXT, 0, 0, NULL, "",
	  "notifications: the user herd authenticates as at the relay (empty: no authentication)", false, 0 },
	{ "notify_smtp_password", SETTING_TEXT, 0, 0, NULL, "",
	  "notifications: that user's password (never shown back)", false, 0, NULL, true },
	{ "notify_from", SETTING_TEXT, 0, 0, NULL, "",
	  "notifications: the sender address of alert mails (empty: herd@ the relay's host)", false, 0,
	  check_address },
	{ "notify_to", SETTING_TEXT, 0, 0, NULL, "",
	  "notifications: addresses alert mails also go to, separated by commas (besides the monitor group's members, else the admins: docs/users.md)",
	  false, 0, check_addresses },
	{ "notify_interval_s", SETTING_INT, 0, 86400, NULL, "60",
	  "notifications: a kind of alert (fences, a storage filling up…) is mailed and POSTed at most once per this many seconds, what comes meanwhile gathered into its next notice (0: each after the 3 s gathering)",
	  false, F(notify_interval_s) },
	{ "notify_webhook", SETTING_TEXT, 0, 0, NULL, "",
	  "notifications: an http(s) URL every alert notification is POSTed to as JSON (empty: none)",
	  false, 0, check_url },
	{ NULL },
};

/* Control characters would end a header or an SMTP command early. */
static bool has_control(const char *v)
{
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

static bool check_host(const char *key, const char *v, GError **error)
{
	size_t n = strlen(v);
	bool ok = n <= 253;
	for (const char *p = v; ok && *p; p++)
		ok = g_ascii_isalnum(*p) || *p == '.' || *p == '-' || *p == ':' || *p == '_';
	if (!ok)
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Setting %s must be a host name or an IP address, not '%s'.", key, v);
	return ok;
}

/* local@domain: no spaces, brackets or control characters, one @, a
 * domain with a dot or an address literal. */
static bool address_ok(const char *v)
{
	const char *at = strchr(v, '@');
	if (!at || at == v || strchr(at + 1, '@') || !at[1] || strlen(v) > 254)
		return false;
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("<>()[],;:\\\"", *p))
			return false;
	return true;
}

static bool check_address(const char *key, const char *v, GError **error)
{
	if (address_ok(v))
		return true;
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
		    "Setting %s must be a mail address such as ops@example.com, not '%s'.", key, v);
	return false;
}

#define NOTIFY_TO_MAX 32

char **cluster_setting_addresses(const char *key, const char *value, GError **error)
{
	g_auto(GStrv) parts = g_strsplit_set(value ? value : "", ", ", -1);
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
	for (char **p = parts; *p; p++) {
		if (!**p)
			continue;
		if (!check_address(key, *p, error))
			return NULL;
		g_ptr_array_add(out, g_strdup(*p));
	}
	if (out->len == 0 || out->len > NOTIFY_TO_MAX) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Setting %s must hold from 1 to %d mail addresses separated by commas, not %u.",
			    key, NOTIFY_TO_MAX, out->len);
		return NULL;
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

static bool check_addresses(const char *key, const char *v, GError **error)
{
	g_auto(GStrv) list = cluster_setting_addresses(key, v, error);
	return list != NULL;
}

#define PING_NODES_MAX 8

/* Is @v an IPv4 or IPv6 address one can send an echo request to (not
 * 0.0.0.0, ::, or multicast)?  @text: as inet_ntop() writes it. */
static bool ip_literal(const char *v, char text[INET6_ADDRSTRLEN])
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, v, &a4) == 1) {
		uint32_t h = ntohl(a4.s_addr);
		return h != 0 && (h >> 28) != 0xe && inet_ntop(AF_INET, &a4, text, INET6_ADDRSTRLEN);
	}
	if (inet_pton(AF_INET6, v, &a6) == 1)
		return !IN6_IS_ADDR_UNSPECIFIED(&a6) && !IN6_IS_ADDR_MULTICAST(&a6) &&
		       inet_ntop(AF_INET6, &a6, text, INET6_ADDRSTRLEN);
	return false;
}

char **cluster_setting_ping_nodes(const char *key, const char *value, GError **error)
{
	g_auto(GStrv) parts = g_strsplit_set(value ? value : "", ", ", -1);
	g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
	for (char **p = parts; *p; p++) {
		if (!**p)
			continue;
		char text[INET6_ADDRSTRLEN];
		if (!ip_literal(*p, text)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Setting %s takes IP addresses such as 192.0.2.1 or 2001:db8::1 (no host names: a ping node must not depend on DNS), not '%s'.",
				    key, *p);
			return NULL;
		}
		for (guint i = 0; i < out->len; i++)
			if (strcmp(out->pdata[i], text) == 0) {
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
					    "Setting %s names %s twice.", key, text);
				return NULL;
			}
		g_ptr_array_add(out, g_strdup(text));
	}
	if (out->len == 0 || out->len > PING_NODES_MAX) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Setting %s must hold from 1 to %d IP addresses separated by commas, not %u.", key,
			    PING_NODES_MAX, out->len);
		return NULL;
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

static bool check_ping_nodes(const char *key, const char *v, GError **error)
{
	g_auto(GStrv) list = cluster_setting_ping_nodes(key, v, error);
	return list != NULL;
}

static bool check_url(const char *key, const char *v, GError **error)
{
	const char *rest = g_str_has_prefix(v, "https://") ? v + 8
			   : g_str_has_prefix(v, "http://") ? v + 7
							    : NULL;
	bool ok = rest && *rest && *rest != '/' && strlen(v) <= 2048;
	for (const char *p = v; ok && *p; p++)
		ok = (unsigned char)*p > 0x20 && *p != 0x7f;
	if (!ok)
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Setting %s must be an http:// or https:// URL without spaces, not '%s'.", key, v);
	return ok;
}

static bool check_path(const char *key, const char *v, GError **error)
{
	if (v[0] == '/')
		return true;
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
		    "Setting %s must be an absolute path (the same on every node), not '%s'.", key, v);
	return false;
}

long long store_settings_migration_timeout_s(const store_settings *s, uint64_t memory_mib)
{
	/* Whole GiB, rounded up: a 1.5 GiB VM gets two GiB's time. */
	uint64_t gib = (memory_mib + 1023) / 1024;
	return s->migration_timeout_min_s + (long long)gib * s->migration_timeout_per_gib_s;
}

const char *store_vm_domain_type_name(int t)
{
	return t == STORE_VM_DOMAIN_QEMU ? "qemu" : "kvm";
}

const cluster_setting *cluster_setting_find(const char *key)
{
	for (const cluster_setting *s = cluster_settings; key && s->key; s++)
		if (strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

static json_t *typed_value(const cluster_setting *s, json_t *v, GError **error)
{
	const char *text = json_string_value(v);
	switch (s->type) {
	case SETTING_INT: {
		long long n;
		if (json_is_integer(v)) {
			n = json_integer_value(v);
		} else if (text) {
			char *end = NULL;
			errno = 0;
			n = strtoll(text, &end, 10);
			if (errno || end == text || *end)
				goto bad;
		} else {
			goto bad;
		}
		if (n < s->min || n > s->max) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Setting %s must be from %lld to %lld, not %lld.", s->key, s->min,
				    s->max, n);
			return NULL;
		}
		return json_integer(n);
	}
	case SETTING_BOOL:
		if (json_is_boolean(v))
			return json_incref(v);
		if (text && (!strcmp(text, "yes") || !strcmp(text, "true") || !strcmp(text, "on") ||
			     !strcmp(text, "1")))
			return json_true();
		if (text && (!strcmp(text, "no") || !strcmp(text, "false") || !strcmp(text, "off") ||
			     !strcmp(text, "0")))
			return json_false();
		goto bad;
	case SETTING_ENUM: {
		if (!text)
			goto bad;
		g_auto(GStrv) choices = g_strsplit(s->choices, "|", -1);
		if (g_strv_contains((const char *const *)choices, text))
			return json_string(text);
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Setting %s must be one of %s, not '%s'.",
			    s->key, s->choices, text);
		return NULL;
	}
	case SETTING_TEXT:
		if (!text)
			goto bad;
		if (strlen(text) > 4096 || has_control(text)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Setting %s must be one line of at most 4096 characters.", s->key);
			return NULL;
		}
		if (*text && s->check && !s->check(s->key, text, error))
			return NULL;
		return json_string(text);
	}
bad:;
	g_autofree char *shown = json_dumps(v, JSON_ENCODE_ANY);
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Setting %s must be %s, not %s.", s->key,
		    s->type == SETTING_INT ? "a whole number" : s->type == SETTING_BOOL ? "yes or no" : "text",
		    shown);
	return NULL;
}

json_t *cluster_settings_validate(json_t *changes, GError **error)
{
	if (!json_is_object(changes) || json_object_size(changes) == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "No settings to change were given.");
		return NULL;
	}
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(changes, key, v) {
		const cluster_setting *s = cluster_setting_find(key);
		if (!s) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Unknown cluster setting '%s'; 'herd cluster settings' lists them.", key);
			json_decref(out);
			return NULL;
		}
		if (json_is_null(v)) {
			json_object_set_new(out, key, json_null());
			continue;
		}
		json_t *typed = typed_value(s, v, error);
		if (!typed) {
			json_decref(out);
			return NULL;
		}
		json_object_set_new(out, key, typed);
	}
	return out;
}

static json_t *default_of(const cluster_setting *s)
{
	json_t *text = json_string(s->default_value);
	json_t *v = typed_value(s, text, NULL);
	json_decref(text);
	return v;
}

json_t *cluster_settings_effective(json_t *stored)
{
	json_t *out = json_object();
	for (const cluster_setting *s = cluster_settings; s->key; s++) {
		json_t *v = json_object_get(stored, s->key);
		json_object_set_new(out, s->key, v && !json_is_null(v) ? json_incref(v) : default_of(s));
	}
	return out;
}

json_t *cluster_settings_shown(json_t *stored)
{
	json_t *eff = cluster_settings_effective(stored);
	for (const cluster_setting *s = cluster_settings; s->key; s++) {
		const char *v = json_string_value(json_object_get(eff, s->key));
		if (s->secret)
			json_object_set_new(eff, s->key,
					    json_string(v && *v ? CLUSTER_SETTING_SECRET_SHOWN : ""));
	}
	return eff;
}

/* The index of @text among @s's choices, or -1. */
static int choice_index(const cluster_setting *s, const char *text)
{
	g_auto(GStrv) choices = g_strsplit(s->choices, "|", -1);
	for (int i = 0; text && choices[i]; i++)
		if (strcmp(choices[i], text) == 0)
			return i;
	return -1;
}

void cluster_settings_fill(json_t *stored, store_settings *out)
{
	g_autoptr(json_t) eff = cluster_settings_effective(stored);
	for (const cluster_setting *s = cluster_settings; s->key; s++) {
		json_t *v = json_object_get(eff, s->key);
		void *field = (char *)out + s->offset;
		switch (s->type) {
		case SETTING_INT:
			*(long long *)field = json_integer_value(v);
			break;
		case SETTING_BOOL:
			*(bool *)field = json_is_true(v);
			break;
		case SETTING_ENUM:
			*(int *)field = MAX(choice_index(s, json_string_value(v)), 0);
			break;
		case SETTING_TEXT:
			break;
		}
	}
}

/* The rules that span settings, on the effective values @eff. */
static bool check_combined(json_t *eff, GError **error)
{
	long long lo = json_integer_value(json_object_get(eff, "migration_port_min"));
	long long hi = json_integer_value(json_object_get(eff, "migration_port_max"));
	if (lo > hi) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Setting migration_port_min (%lld) is above migration_port_max (%lld): they are the first and the last port of one range.",
			    lo, hi);
		return false;
	}
	long long interval = json_integer_value(json_object_get(eff, "ping_interval_ms"));
	long long dampen = json_integer_value(json_object_get(eff, "ping_dampen_ms"));
	if (dampen < 2 * interval) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Setting ping_dampen_ms (%lld) is below twice ping_interval_ms (%lld): one lost ping would move VMs.",
			    dampen, interval);
		return false;
	}
	if (hi - lo + 1 > CLUSTER_MIGRATION_PORTS_MAX) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The migration port range %lld-%lld holds %lld ports; at most %d may be reserved (every node takes them from its outgoing connections' ports).",
			    lo, hi, hi - lo + 1, CLUSTER_MIGRATION_PORTS_MAX);
		return false;
	}
	return true;
}

bool cluster_settings_check_change(json_t *stored, json_t *changes, GError **error)
{
	g_autoptr(json_t) after = json_is_object(stored) ? json_deep_copy(stored) : json_object();
	const char *key;
	json_t *v;
	json_object_foreach(changes, key, v) {
		if (json_is_null(v))
			json_object_del(after, key);
		else
			json_object_set(after, key, v);
	}
	g_autoptr(json_t) eff = cluster_settings_effective(after);
	return check_combined(eff, error);
}

bool cluster_settings_check_stored(json_t *stored, GError **error)
{
	if (!stored)
		return true;
	if (!json_is_object(stored)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The cluster's settings must be an object.");
		return false;
	}
	const char *key;
	json_t *v;
	json_object_foreach(stored, key, v) {
		const cluster_setting *s = cluster_setting_find(key);
		bool typed = !s || (s->type == SETTING_INT && json_is_integer(v)) ||
			     (s->type == SETTING_BOOL && json_is_boolean(v)) ||
			     ((s->type == SETTING_ENUM || s->type == SETTING_TEXT) && json_is_string(v));
		g_autoptr(json_t) checked = s && typed ? typed_value(s, v, error) : NULL;
		if (s && !checked) {
			if (!typed)
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
					    "Setting %s is stored with a value of the wrong type.", key);
			return false;
		}
	}
	g_autoptr(json_t) eff = cluster_settings_effective(stored);
	return check_combined(eff, error);
}

long long cluster_setting_int(json_t *stored, const char *key)
{
	json_t *v = json_object_get(stored, key);
	if (json_is_integer(v))
		return json_integer_value(v);
	const cluster_setting *s = cluster_setting_find(key);
	return s ? strtoll(s->default_value, NULL, 10) : 0;
}

bool cluster_setting_bool(json_t *stored, const char *key)
{
	json_t *v = json_object_get(stored, key);
	if (json_is_boolean(v))
		return json_is_true(v);
	const cluster_setting *s = cluster_setting_find(key);
	return s && strcmp(s->default_value, "yes") == 0;
}

const char *cluster_setting_string(json_t *stored, const char *key)
{
	json_t *v = json_object_get(stored, key);
	if (json_is_string(v))
		return json_string_value(v);
	const cluster_setting *s = cluster_setting_find(key);
	return s ? s->default_value : "";
}
