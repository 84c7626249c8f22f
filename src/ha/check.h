/*
 * Pre-flight checks (requirement C28, docs/check.md): what `herd check`
 * finds, the pure part.  Every node probes its own part on request (its
 * clock, don't-fragment pings to every peer on every link, its corosync.conf,
 * libvirt's and QEMU's versions, its CPU) — daemon/check_probe.h — and the
 * node that asked adds what it can see from where it is (the fence devices'
 * answers to `status`, every node's reach of the storages, N+1).  This turns
 * those facts into results: one per check, or per check and node, each
 * "pass", "warn" or "fail" with a sentence that says what was found and,
 * when it is not a pass, what to fix.  And the failures into alerts
 * ("clock_skew", "check_failed") for the coordinator's list.
 *
 * Pure: JSON and the store in, JSON out; times are passed in.
 */
#pragma once

#include "store/state.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Clocks further apart than this fail. */
#define CHECK_CLOCK_MAX_MS 1000
/* Pings per link and peer, of each size. */
#define CHECK_PINGS 3

/*
 * What the checks are given:
 * - @asker: the node that ran the check;
 * - @probes: {node: probe} of the nodes that answered, each probe
 *   {"offset_ms": its clock less the asker's when its answer came,
 *    "corosync_conf": SHA-256 hex | "corosync_conf_error": "…",
 *    "libvirt": "9.0.0", "qemu": "7.2.0" | "virt_error": "…",
 *    "cpu_model": "…", "cpu_flags": SHA-256 hex of the flags,
 *    "pings": [{"peer","link","address","size","sent","received",
 *               "df_sent","df_received","error"?}…]};
 * - @fence: [{"device","node","plug","ok","detail"}…], each plug's answer
 *   to "status";
 * - @reach: {storage name: {node: {"ok"[,"problem"]}}};
 * - @corosync_conf: SHA-256 hex of the corosync.conf the store gives;
 * - @n_plus_1 and @at_risk ({node: HA VMs that could not restart}), as the
 *   coordinator sees them (@n_plus_1_known false: no coordinator said).
 */
typedef struct herd_check_input {
	store_state *st;
	const char *asker;
	json_t *probes;
	json_t *fence;
	json_t *reach;
	const char *corosync_conf;
	bool n_plus_1_known;
	bool n_plus_1;
	json_t *at_risk;
	unsigned mtu;
	unsigned answer_s;        /* how long the nodes had to answer */
} herd_check_input;

/* The results: [{"check","status":"pass"|"warn"|"fail","node"?,"message"}…],
 * the checks in a fixed order, nodes by name. */
json_t *herd_check_evaluate(const herd_check_input *in);

/* Does @results hold a failure? */
bool herd_check_failed(json_t *results);

/* Append to @alerts the alerts of @results' failures: a "clock_skew" per
 * node whose clock is off (or one for the pair of a two-node cluster), and
 * a "check_failed" per node (and one for the cluster) with the sentences of
 * the other failures. */
void herd_check_alerts(json_t *alerts, json_t *results);

/* The bytes of a don't-fragment ping's payload for @mtu to @address (less
 * the IP and ICMP headers: 28 for IPv4, 48 for IPv6). */
unsigned herd_check_ping_size(unsigned mtu, const char *address);

/* From ping's summary ("3 packets transmitted, 0 received, …"): false if
 * @output has none. */
bool herd_check_parse_ping(const char *output, unsigned *sent, unsigned *received);

/* From /proc/cpuinfo: the first processor's "model name" and "flags"
 * (g_free); false if it has none. */
bool herd_check_parse_cpuinfo(const char *text, char **model, char **flags);

/* From `virsh version`: "Running against daemon: 9.0.0" and "Running
 * hypervisor: QEMU 7.2.0" (g_free); false if either is missing. */
bool herd_check_parse_virsh_version(const char *text, char **libvirt, char **qemu);
