/*
 * The VM console proxy (DESIGN.md C20): a browser's websocket, opened on
 * any node (api/console.c), carried to the VNC display of the VM on the
 * node that runs it.
 *
 *   browser --websocket--> this node --TLS relay--> the VM's node --> QEMU
 *
 * When the VM runs here, this node opens its display itself; otherwise it
 * connects to that node's console relay port ([api] console_port) over
 * TLS where both sides show a certificate of the cluster's CA (the node
 * certificates of <state_dir>/tls), names the VM, and the other node
 * opens the display there.  A display is opened through libvirt
 * (virDomainOpenGraphicsFD: a socket to that very QEMU, not a port number
 * another VM could have taken over since), so a console ends with its
 * QEMU.
 *
 * Each console runs on a thread of its own with bounded buffers, at most
 * HERD_CONSOLE_MAX per node (websockets and relays together), so that a
 * console never stalls the main loop or the API.  Every console of a VM
 * closes when the VM stops, is destroyed or deleted, or moves to another
 * node (a live migration's end): its QEMU's socket ends, and a check on
 * the main loop, once a second while consoles are open, closes those
 * whose VM is no longer where they found it.  Closing either end closes
 * the other.
 */
#pragma once

#include "api/context.h"
#include "ha/ha.h"

#include <glib.h>

/* Consoles one node serves at a time (websockets and relays). */
#define HERD_CONSOLE_MAX 32
/* The largest websocket frame a browser may send (noVNC's are small). */
#define HERD_CONSOLE_FRAME_MAX (128 * 1024)

typedef struct herd_console_proxy herd_console_proxy;

/*
 * The proxy of node @node_name: VMs' displays through @libvirt_uri, the
 * node's TLS files in @tls_dir (ca.crt, node.crt, node.key), the relay
 * listening on @listen_address (NULL or "": all) port @relay_port (0:
 * none: this node then opens only its own VMs' consoles, and the others
 * cannot open them), the VMs' whereabouts from @ha.  NULL with @error if
 * the relay cannot listen.
 */
herd_console_proxy *herd_console_proxy_new(const char *node_name, const char *libvirt_uri,
					   const char *tls_dir, const char *listen_address,
					   int relay_port, herd_ha *ha, herd_cluster *cluster,
					   GError **error);
/* Close every console and wait for their threads; before the API's
 * server is freed (they hold its upgraded connections). */
void herd_console_proxy_free(herd_console_proxy *p);

/* For api_ctx.console_ops (the proxy is api_ctx.console_proxy). */
extern const api_console_ops herd_console_ops;
