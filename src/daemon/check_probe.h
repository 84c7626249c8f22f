/*
 * herd check's probe of this node (docs/check.md): what only the node itself
 * can find out — don't-fragment pings of the checked MTU and small pings to
 * every other node on every link, the SHA-256 of its corosync.conf, the
 * versions of libvirt and QEMU it runs, its CPU's model and features.  The
 * pings take seconds and the commands may hang, so it runs on a thread of
 * its own, every command bounded in time; what it found comes back to the
 * main loop.  ha/check.h judges it.
 */
#pragma once

#include <glib.h>
#include <jansson.h>

/* Bound of one ping run or `virsh version`. */
#define CHECK_PROBE_COMMAND_S 10

/* What to probe, copied for the thread. */
typedef struct herd_check_probe_spec {
	json_t *targets;           /* [{"peer","link","address"}…] */
	unsigned mtu;
	char *corosync_conf;       /* the file's path */
	char *libvirt_uri;
} herd_check_probe_spec;

void herd_check_probe_spec_free(herd_check_probe_spec *s);

/* @probe (see herd_check_input.probes, without "offset_ms"): borrowed. */
typedef void (*herd_check_probe_done)(json_t *probe, gpointer user);

/* Probe this node as @spec (taken) says, on a thread; @done follows on the
 * main loop. */
void herd_check_probe(herd_check_probe_spec *spec, herd_check_probe_done done, gpointer user);
