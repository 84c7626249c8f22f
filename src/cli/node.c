/* herd node list|show|set|remove|standby|online|maintenance|switchover|fence|confirm-down. */
#include "cli/cli.h"
#include "cli/prompt.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>

static gboolean opt_wait, opt_yes, opt_allow_cold;
static char *opt_storage_address;

static GOptionEntry node_set_options[] = {
	{ "storage-address", 0, 0, G_OPTION_ARG_STRING, &opt_storage_address,
	  "The address its eSAN disks replicate on (a dedicated storage link); none: the esan_link setting's link",
	  "ADDRESS|none" },
	{ NULL },
};

static GOptionEntry node_mode_options[] = {
	{ "wait", 'w', 0, G_OPTION_ARG_NONE, &opt_wait,
	  "Wait until its eSAN disks are in sync (the sync gate), then until no VM is left on the node, showing how the moves go", NULL },
	{ "allow-cold", 0, 0, G_OPTION_ARG_NONE, &opt_allow_cold,
	  "A VM that cannot migrate live moves with a restart (it is shut down and started there)", NULL },
	{ NULL },
};

static GOptionEntry fence_options[] = {
	{ "yes", 'y', 0, G_OPTION_ARG_NONE, &opt_yes, "Do not ask for confirmation", NULL },
	{ NULL },
};

/* Its links, and its storage address if it has one. */
static char *links_text(json_t *node)
{
	GString *s = g_string_new(NULL);
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(node, "links"), i, l)
		g_string_append_printf(s, "%s%lld:%s %s", i ? ", " : "",
				       (long long)json_integer_value(json_object_get(l, "link")),
				       json_string_value(json_object_get(l, "address")),
				       json_string_value(json_object_get(l, "state")));
	const char *storage = json_string_value(json_object_get(node, "storage_address"));
	if (storage)
		g_string_append_printf(s, "%sstorage:%s", s->len ? ", " : "", storage);
	return g_string_free(s, FALSE);
}

void cli_print_nodes(json_t *nodes)
{
	cli_table *t = cli_table_new("NAME", "ID", "STATE", "MODE", "VMS", "LINKS", NULL);
	size_t i;
	json_t *n;
	json_array_foreach(nodes, i, n) {
		g_autofree char *id = g_strdup_printf("%lld", (long long)json_integer_value(json_object_get(n, "nodeid")));
		g_autofree char *links = links_text(n);
		json_t *down = json_object_get(n, "down");
		/* A node in maintenance that is gone is not lost: herd leaves it alone. */
		bool maintenance = g_strcmp0(json_string_value(json_object_get(n, "mode")), "maintenance") == 0;
		const char *state = json_is_true(json_object_get(n, "online"))  ? "online"
				    : json_is_object(down)                      ? (g_strcmp0(json_string_value(json_object_get(down, "how")), "fenced") == 0 ? "fenced" : "confirmed down")
				    : json_is_true(json_object_get(n, "alive")) ? "herd down"
				    : maintenance				? "away"
										: "LOST";
		json_t *herd = json_object_get(n, "herd");
		g_autofree char *vms = json_is_object(herd) ? g_strdup_printf("%zu", json_array_size(json_object_get(herd, "vms"))) : NULL;
		/* Put in maintenance by its herd because its host shut down. */
		g_autofree char *mode = g_strdup_printf("%s%s", json_string_value(json_object_get(n, "mode")),
							json_is_object(json_object_get(n, "shutdown")) ? " (shutdown)" : "");
		cli_table_add(t, json_string_value(json_object_get(n, "name")), id, state, mode, vms, links);
	}
	cli_table_print(t);
}

static int run_node_list(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) nodes = cli_request(ctx, "GET", "/api/v1/nodes", NULL, &rc);
	if (!nodes)
		return rc;
	cli_print_nodes(nodes);
	return CLI_OK;
}

static int run_node_show(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("nodes", argv[0], NULL);
	int rc;
	g_autoptr(json_t) n = cli_request(ctx, "GET", path, NULL, &rc);
	if (!n)
		return rc;
	g_autofree char *links = links_text(n);
	const char *storage = json_string_value(json_object_get(n, "storage_address"));
	printf("Name:            %s\n", json_string_value(json_object_get(n, "name")));
	printf("UUID:            %s\n", json_string_value(json_object_get(n, "uuid")));
	printf("Node ID:         %lld\n", (long long)json_integer_value(json_object_get(n, "nodeid")));
	printf("Mode:            %s%s\n", json_string_value(json_object_get(n, "mode")),
	       json_is_object(json_object_get(n, "shutdown")) ? " (its host shut down)" : "");
	printf("Online:          %s\n", json_is_true(json_object_get(n, "online")) ? "yes" : "no");
	printf("Links:           %s\n", links);
	printf("Storage address: %s\n", storage ? storage : "none (eSAN replicates on the esan_link setting's link)");
	return CLI_OK;
}

static int run_node_set(cli_ctx *ctx, int argc, char **argv)
{
	if (!opt_storage_address) {
		fprintf(stderr, "Nothing to change: give --storage-address ADDRESS|none.\n");
		return CLI_USAGE;
	}
	bool none = strcmp(opt_storage_address, "none") == 0;
	g_autofree char *path = cli_api_path("nodes", argv[0], NULL);
	g_autoptr(json_t) body = json_pack("{s:o}", "storage_address",
					   none ? json_null() : json_string(opt_storage_address));
	int rc;
	g_autoptr(json_t) n = cli_request(ctx, "PUT", path, body, &rc);
	if (!n)
		return rc;
	if (none)
		printf("Node %s replicates its eSAN disks on the esan_link setting's link again.\n", argv[0]);
	else
		printf("Node %s replicates its eSAN disks on %s.\n", argv[0], opt_storage_address);
	return CLI_OK;
}

static int run_node_remove(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("nodes", argv[0], NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", path, NULL, &rc);
	if (!r)
		return rc;
	printf("Removed node %s from the cluster.\n", argv[0]);
	return CLI_OK;
}

/* How long --wait waits for a node to be empty at most. */
#define WAIT_EMPTY_MAX_S 3600
/* Polls in a row in which every VM left stays put, with a reason, before
 * --wait gives up on them. */
#define WAIT_STUCK_POLLS 5

/* Print @vm's live migration's progress if it changed since @shown
 * (uuid -> last line printed). */
static void show_move(cli_ctx *ctx, json_t *vm, GHashTable *shown)
{
	const char *uuid = json_string_value(json_object_get(vm, "uuid"));
	g_autofree char *path = cli_api_path("vms", uuid, NULL);
	g_autoptr(json_t) full = cli_call(ctx, "GET", path, NULL, NULL);
	g_autofree char *text = cli_migration_text(json_object_get(full, "migration"));
	g_autofree char *line =
		text ? g_strdup_printf("VM %s: %s", json_string_value(json_object_get(vm, "name")), text)
		     : g_strdup_printf("VM %s: moving to node %s (%s)", json_string_value(json_object_get(vm, "name")),
				       json_string_value(json_object_get(vm, "move_to")),
				       json_string_value(json_object_get(vm, "move")));
	if (g_strcmp0(g_hash_table_lookup(shown, uuid), line) == 0)
		return;
	printf("  %s\n", line);
	fflush(stdout);
	g_hash_table_replace(shown, g_strdup(uuid), g_steal_pointer(&line));
}

/* Poll until no VM runs on, or is assigned to, @node, but those named in
 * @staying (VM names, or NULL); show how the moves go.  Gives up when every
 * VM left stays there for a reason it names. */
static int wait_node_empty(cli_ctx *ctx, const char *node, GHashTable *staying)
{
	g_autoptr(GHashTable) shown = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	gint64 began = g_get_monotonic_time();
	unsigned stuck = 0;
	while (g_get_monotonic_time() - began < (gint64)WAIT_EMPTY_MAX_S * G_USEC_PER_SEC) {
		g_autoptr(GError) error = NULL;
		g_autoptr(json_t) vms = cli_call(ctx, "GET", "/api/v1/vms", NULL, &error);
		if (!vms)
			return cli_report(error);
		g_autoptr(GPtrArray) left = g_ptr_array_new();
		bool moving = false;
		size_t k;
		json_t *v;
		json_array_foreach(vms, k, v) {
			if (g_strcmp0(json_string_value(json_object_get(v, "node")), node) != 0 &&
			    g_strcmp0(json_string_value(json_object_get(v, "assigned")), node) != 0)
				continue;
			if (staying && g_hash_table_contains(staying, json_string_value(json_object_get(v, "name"))))
				continue;
			g_ptr_array_add(left, v);
			if (json_object_get(v, "move_to")) {
				moving = true;
				if (!ctx->json)
					show_move(ctx, v, shown);
			}
		}
		if (left->len == 0) {
			if (!ctx->json)
				printf(staying && g_hash_table_size(staying) ? "No VM that moves is left on node %s (%.1f s).\n"
									       : "No VM is left on node %s (%.1f s).\n",
				       node,
				       (double)(g_get_monotonic_time() - began) / G_USEC_PER_SEC);
			return CLI_OK;
		}
		/* Every VM left stays, each for a reason the cluster gives. */
		bool all_held = !moving;
		for (guint i = 0; all_held && i < left->len; i++)
			all_held = json_object_get(left->pdata[i], "alert") || json_object_get(left->pdata[i], "error");
		stuck = all_held ? stuck + 1 : 0;
		if (stuck >= WAIT_STUCK_POLLS) {
			fprintf(stderr, "herd: %u VM(s) stay on node %s:\n", left->len, node);
			for (guint i = 0; i < left->len; i++) {
				json_t *vm = left->pdata[i];
				const char *why = json_string_value(json_object_get(vm, "alert"));
				fprintf(stderr, "  %s: %s\n", json_string_value(json_object_get(vm, "name")),
					why ? why : json_string_value(json_object_get(vm, "error")));
			}
			return CLI_ERROR;
		}
		g_usleep(G_USEC_PER_SEC);
	}
	fprintf(stderr, "herd: VMs are still on node %s after %d minutes; see 'herd status'.\n", node,
		WAIT_EMPTY_MAX_S / 60);
	return CLI_ERROR;
}

/* The eSAN disks whose only up-to-date replica is on @node, with their
 * sync progress ("db0 (syncing 42%)"), or NULL: what the sync gate waits for. */
static char *gated_disks(json_t *disks, const char *node)
{
	GString *out = g_string_new(NULL);
	size_t i;
	json_t *d;
	json_array_foreach(disks, i, d) {
		json_t *r = json_object_get(json_object_get(d, "esan"), "replicas");
		for (size_t k = 0; k < json_array_size(r); k++) {
			json_t *mine = json_array_get(r, k), *peer = json_array_get(r, 1 - k);
			if (g_strcmp0(json_string_value(json_object_get(mine, "node")), node) != 0 ||
			    g_strcmp0(json_string_value(json_object_get(mine, "state")), "uptodate") != 0 ||
			    g_strcmp0(json_string_value(json_object_get(peer, "state")), "uptodate") == 0)
				continue;
			json_t *sync = json_object_get(json_object_get(mine, "herd_san"), "sync");
			json_int_t done = json_integer_value(json_object_get(sync, "done"));
			json_int_t total = json_integer_value(json_object_get(sync, "total"));
			g_string_append_printf(out, "%s%s", out->len ? ", " : "", json_string_value(json_object_get(d, "name")));
			if (total > 0)
				g_string_append_printf(out, " (syncing %d%%)", (int)(done * 100 / total));
		}
	}
	return g_string_free(out, out->len == 0);
}

/* --wait: until no eSAN disk keeps @node in service (the server refuses
 * the mode change meanwhile: the sync gate). */
static int wait_sync_gate(cli_ctx *ctx, const char *node)
{
	g_autofree char *said = NULL;
	for (int s = 0; s < WAIT_EMPTY_MAX_S; s++) {
		int rc;
		g_autoptr(json_t) disks = cli_request(ctx, "GET", "/api/v1/disks", NULL, &rc);
		if (!disks)
			return rc;
		g_autofree char *gated = gated_disks(disks, node);
		if (!gated)
			return CLI_OK;
		if (g_strcmp0(gated, said) != 0) {
			printf("Waiting: node %s holds the only up-to-date replica of eSAN disk(s) %s.\n", node, gated);
			fflush(stdout);
			g_free(said);
			said = g_strdup(gated);
		}
		g_usleep(G_USEC_PER_SEC);
	}
	fprintf(stderr, "herd: eSAN disks keep node %s in service after %d minutes; see 'herd disk list'.\n",
		node, WAIT_EMPTY_MAX_S / 60);
	return CLI_ERROR;
}

static int set_mode(cli_ctx *ctx, const char *node, const char *mode)
{
	if (opt_wait && strcmp(mode, "online") != 0) {
		int gate = wait_sync_gate(ctx, node);
		if (gate != CLI_OK)
			return gate;
	}
	g_autofree char *path = cli_api_path("nodes", node, "mode");
	g_autoptr(json_t) body = json_pack("{s:s}", "mode", mode);
	if (opt_allow_cold)
		json_object_set_new(body, "allow_cold", json_true());
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", path, body, &rc);
	if (rc != CLI_OK)
		return rc;
	if (r) /* else --json printed it */
		printf("Node %s is in %s mode%s.\n", node, mode,
		       strcmp(mode, "online") == 0 ? ""
		       : opt_allow_cold ? "; its VMs move to other nodes, live where they can, else with a restart"
					: "; its VMs move to other nodes, live");
	const char *job = json_string_value(json_object_get(json_object_get(r, "job"), "name"));
	if (job)
		printf("Job %s follows the VMs leaving it ('herd job show %s'; 'herd job cancel %s' puts the "
		       "node back online).\n", job, job, job);
	fflush(stdout);
	return opt_wait && strcmp(mode, "online") ? wait_node_empty(ctx, node, NULL) : CLI_OK;
}

static int run_standby(cli_ctx *ctx, int argc, char **argv) { return set_mode(ctx, argv[0], "standby"); }
static int run_online(cli_ctx *ctx, int argc, char **argv) { return set_mode(ctx, argv[0], "online"); }
static int run_maintenance(cli_ctx *ctx, int argc, char **argv) { return set_mode(ctx, argv[0], "maintenance"); }

static int run_switchover(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("nodes", argv[0], "switchover");
	g_autoptr(json_t) body = json_pack("{s:s,s:b}", "to", argv[1], "allow_cold", opt_allow_cold);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = cli_call(ctx, "POST", path, body, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(r);
	/* VMs bound to their node (sticky) stay: named, and not waited for. */
	g_autoptr(GHashTable) staying = g_hash_table_new(g_str_hash, g_str_equal);
	size_t k;
	json_t *v;
	json_array_foreach(json_object_get(r, "staying"), k, v) {
		const char *name = json_string_value(json_object_get(v, "vm"));
		if (name)
			g_hash_table_add(staying, (gpointer)name);
	}
	if (!ctx->json) {
		printf("The VMs of node %s move to node %s, live%s.\n", argv[0], argv[1],
		       opt_allow_cold ? " where they can, else with a restart" : "");
		json_array_foreach(json_object_get(r, "staying"), k, v) {
			const char *name = json_string_value(json_object_get(v, "vm"));
			printf("VM %s stays on node %s: %s ('herd vm release %s' lets it move).\n", name,
			       argv[0], json_string_value(json_object_get(v, "reason")), name);
		}
	}
	fflush(stdout);
	return opt_wait ? wait_node_empty(ctx, argv[0], staying) : CLI_OK;
}

/* POST @action of @node once the operator has said yes to @question (or
 * given --yes): cli_request()'s answer and *@rc; NULL with CLI_ERROR after
 * "herd: @refusal" when not. */
static json_t *post_confirmed(cli_ctx *ctx, const char *node, const char *action,
			      const char *question, const char *refusal, int *rc)
{
	if (!opt_yes && !cli_confirm(question, "--yes", refusal)) {
		*rc = CLI_ERROR;
		return NULL;
	}
	g_autofree char *path = cli_api_path("nodes", node, action);
	g_autoptr(json_t) body = json_object();
	return cli_request(ctx, "POST", path, body, rc);
}

static int run_fence(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *q = g_strdup_printf("Cut the power of node %s now?", argv[0]);
	int rc;
	g_autoptr(json_t) r = post_confirmed(ctx, argv[0], "fence", q, "not fencing.", &rc);
	if (!r)
		return rc;
	printf("Node %s is fenced (powered off and verified off); its VMs restart elsewhere.\n", argv[0]);
	return CLI_OK;
}

static int run_confirm_down(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *q = g_strdup_printf(
		"Is node %s really powered off? Its VMs will be started elsewhere; if it still runs them, they run twice.",
		argv[0]);
	int rc;
	g_autoptr(json_t) r = post_confirmed(ctx, argv[0], "confirm-down", q, "not confirmed.", &rc);
	if (!r)
		return rc;
	printf("Node %s is confirmed down; its VMs restart elsewhere.\n", argv[0]);
	return CLI_OK;
}

const cli_command cli_node_commands[] = {
	{ "node list", NULL, "List the cluster's nodes", NULL, NULL, 0, 0, run_node_list },
	{ "node show", "NAME", "Show a node: its mode, links and storage address", NULL, NULL, 1, 1, run_node_show },
	{ "node set", "NAME", "Change a node's attributes: its eSAN storage address",
	  "--storage-address gives the node's eSAN replication an address of its own (a dedicated\n"
	  "storage link; an IP address of the node that its replicas' peers reach); 'none' goes back\n"
	  "to the esan_link setting's link.  The node's eSAN disks reconnect on the new address;\n"
	  "refused while a VM runs on one of them.",
	  node_set_options, 1, 1, run_node_set },
	{ "node remove", "NAME", "Remove a node that is powered off from the cluster", NULL, NULL,
	  1, 1, run_node_remove },
	{ "node standby", "NAME", "Move a node's VMs away, live; it takes no new ones",
	  "Its running VMs migrate live to other nodes, a few at a time (migration_parallel); a VM\n"
	  "that cannot migrate is named with the reason and stays unless --allow-cold is given.\n"
	  "Its VMs come back live when it is online again (failback to their preferred node).",
	  node_mode_options, 1, 1, run_standby },
	{ "node online", "NAME", "Let a node run VMs again", NULL, NULL, 1, 1, run_online },
	{ "node maintenance", "NAME", "Move a node's VMs away, live, and stop managing it (for updates)",
	  "As standby; then herd leaves the node alone (it is not fenced when it goes away).",
	  node_mode_options, 1, 1, run_maintenance },
	{ "node switchover", "FROM TO", "Move all VMs of node FROM to node TO, live", NULL,
	  node_mode_options, 2, 2, run_switchover },
	{ "node fence", "NAME", "Cut a node's power through its fence devices", NULL, fence_options, 1, 1, run_fence },
	{ "node confirm-down", "NAME", "Tell herd a lost node is powered off (when fencing cannot)", NULL, fence_options, 1, 1, run_confirm_down },
	{ NULL },
};
