/*
 * The VM console (DESIGN.md C20): POST /api/v1/vms/{vm}/console gives a
 * one-time ticket (api/console_ticket.h); GET /api/v1/vms/{vm}/console
 * ?ticket=… upgrades to a websocket (RFC 6455, subprotocol "binary", as
 * noVNC asks) that the console proxy (daemon/console_proxy.h) carries to
 * the VM's VNC display, on whichever node it runs.
 *
 * The GET is a public route: a browser cannot send credentials on a
 * websocket, so the ticket, which only an authenticated user with
 * VM_OPERATE on the VM got, is its authentication.  Its Origin is checked
 * as for any change: another site's page must not open a console.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/console_ticket.h"
#include "api/routes.h"
#include "common/json.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/websocket.h"
#include "store/node.h"

#include <string.h>

#define TICKET_BYTES 24

static console_tickets *tickets_of(api_ctx *a)
{
	if (!a->console_tickets)
		a->console_tickets = console_tickets_new();
	return a->console_tickets;
}

/* The VM @vm's node, if it runs: NULL with the request answered. */
static const char *running_node(http_request *req, api_ctx *a, store_object *vm)
{
	const char *where = NULL;
	if (!a->ha || !herd_ha_vm_active(a->ha, vm->uuid, &where) || !where) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s is not running; its console opens once it runs.", vm->name);
		return NULL;
	}
	return where;
}

void api_vm_console_ticket(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *vm = api_lookup_param(req, a, STORE_KIND_VM, "vm");
	if (!vm)
		return;
	if (!a->console_ops) {
		http_respond_errorf(req, HERD_ERR_UNAVAILABLE, "Node %s serves no consoles.",
				    a->node->name);
		return;
	}
	const char *where = running_node(req, a, vm);
	if (!where)
		return;
	guint8 raw[TICKET_BYTES];
	if (!herd_tls_random(raw, sizeof(raw))) {
		http_respond_errorf(req, HERD_ERR_INTERNAL, "No random bytes for a console ticket.");
		return;
	}
	g_autofree char *ticket = g_base64_encode(raw, sizeof(raw));
	/* URL-safe: it goes into the websocket's query string. */
	g_strdelimit(ticket, "+", '-');
	g_strdelimit(ticket, "/", '_');
	g_autoptr(GError) err = NULL;
	if (!console_tickets_add(tickets_of(a), ticket, http_request_user(req), vm->uuid,
				 g_get_monotonic_time(), &err)) {
		http_respond_error(req, err);
		return;
	}
	g_autofree char *escaped = g_uri_escape_string(vm->name, NULL, FALSE);
	g_autofree char *path = g_strdup_printf("/api/v1/vms/%s/console?ticket=%s", escaped, ticket);
	log_info("console ticket for VM %s (on node %s) given to %s", vm->name, where,
		 http_request_user(req));
	http_respond_json(req, 200,
			  json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "vm", vm->name, "node", where,
				    "ticket", ticket, "path", path, "expires_s",
				    (int)(CONSOLE_TICKET_TTL_US / G_USEC_PER_SEC), "protocol", "binary"));
}

/* Does the comma-separated header value @list name @token (any case)? */
static bool lists_token(const char *list, const char *token)
{
	if (!list)
		return false;
	g_auto(GStrv) items = g_strsplit(list, ",", -1);
	for (char **p = items; *p; p++)
		if (g_ascii_strcasecmp(g_strstrip(*p), token) == 0)
			return true;
	return false;
}

/* The websocket handshake's headers: the accept key, or NULL with the
 * request answered. */
static char *websocket_accept(http_request *req)
{
	if (!lists_token(http_request_header(req, "Upgrade"), "websocket") ||
	    !lists_token(http_request_header(req, "Connection"), "upgrade")) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "This path is the console's websocket: open it with 'Connection: Upgrade' and "
				    "'Upgrade: websocket' (RFC 6455); POST to it for a ticket.");
		return NULL;
	}
	if (g_strcmp0(http_request_header(req, "Sec-WebSocket-Version"), "13") != 0) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "The console speaks WebSocket version 13 (Sec-WebSocket-Version: 13).");
		return NULL;
	}
	char *key = ws_accept_key(http_request_header(req, "Sec-WebSocket-Key"));
	if (!key) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "The websocket's Sec-WebSocket-Key is missing or not 16 bytes in base64.");
		return NULL;
	}
	const char *protocols = http_request_header(req, "Sec-WebSocket-Protocol");
	if (protocols && !lists_token(protocols, "binary")) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "The console speaks the websocket subprotocol 'binary'; the client offers only '%s'.",
				    protocols);
		g_free(key);
		return NULL;
	}
	return key;
}

void api_vm_console_open(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!http_same_origin(http_request_header(req, "Sec-Fetch-Site"),
			      http_request_header(req, "Origin"), http_request_header(req, "Host"))) {
		http_respond_errorf(req, HERD_ERR_FORBIDDEN,
				    "A console opened by another site's page is refused (its Origin is not this server).");
		return;
	}
	g_autofree char *accept_key = websocket_accept(req);
	if (!accept_key)
		return;
	store_object *vm = api_lookup_param(req, a, STORE_KIND_VM, "vm");
	if (!vm)
		return;
	g_autoptr(GError) err = NULL;
	g_autofree char *user = console_tickets_take(tickets_of(a), http_request_query(req, "ticket"),
						     vm->uuid, vm->name, g_get_monotonic_time(), &err);
	if (!user) {
		http_respond_error(req, err);
		return;
	}
	const char *where = running_node(req, a, vm);
	if (!where)
		return;
	if (!a->console_ops) {
		http_respond_errorf(req, HERD_ERR_UNAVAILABLE, "Node %s serves no consoles.",
				    a->node->name);
		return;
	}
	const char *address = NULL;
	if (strcmp(where, a->node->name) != 0) {
		store_object *node = store_state_get_by_name(api_state(a), STORE_KIND_NODE, where);
		const store_node *n = node ? store_node_of(node) : NULL;
		if (!n || n->n_links == 0) {
			http_respond_errorf(req, HERD_ERR_UNAVAILABLE,
					    "VM %s runs on node %s, whose address this node does not know.",
					    vm->name, where);
			return;
		}
		address = n->links[0];
	}
	api_console_target t = { vm->uuid, vm->name, where, address, user };
	gpointer console = a->console_ops->prepare(a->console_proxy, &t, &err);
	if (!console) {
		http_respond_error(req, err);
		return;
	}
	log_info("console of VM %s (on node %s) opened by %s from %s", vm->name, where, user,
		 http_request_peer(req));
	http_request_add_answer_header(req, "Upgrade", "websocket");
	http_request_add_answer_header(req, "Connection", "Upgrade");
	http_request_add_answer_header(req, "Sec-WebSocket-Accept", accept_key);
	if (http_request_header(req, "Sec-WebSocket-Protocol"))
		http_request_add_answer_header(req, "Sec-WebSocket-Protocol", "binary");
	http_respond_upgrade(req, a->console_ops->upgraded, console, a->console_ops->drop);
}
