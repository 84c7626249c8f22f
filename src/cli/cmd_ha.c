/*
 * herd vm start|shutdown|destroy|reboot|reset|suspend|resume|release,
 * herd node standby|online|maintenance|switchover|fence|confirm-down,
 * herd fence-device add|list|test|remove.
 */
#include "cli/cli.h"
#include "cli/prompt.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gboolean opt_wait, opt_yes;
static char *opt_agent;
static char **opt_params, **opt_plugs;
static int opt_level = 1;

static GOptionEntry wait_options[] = {
	{ "wait", 'w', 0, G_OPTION_ARG_NONE, &opt_wait, "Wait until it has stopped", NULL },
	{ NULL },
};

static GOptionEntry node_mode_options[] = {
	{ "wait", 'w', 0, G_OPTION_ARG_NONE, &opt_wait, "Wait until no VM is left on the node", NULL },
	{ NULL },
};

static GOptionEntry fence_options[] = {
	{ "yes", 'y', 0, G_OPTION_ARG_NONE, &opt_yes, "Do not ask for confirmation", NULL },
	{ NULL },
};

static GOptionEntry fence_add_options[] = {
	{ "agent", 'a', 0, G_OPTION_ARG_STRING, &opt_agent, "The fence agent, e.g. fence_apc_snmp, fence_ipmilan", "AGENT" },
	{ "param", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &opt_params, "An agent parameter (repeat), e.g. ip=10.0.0.9", "KEY=VALUE" },
	{ "plug", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_plugs, "Which outlet/port cuts which node (repeat)", "NODE=PLUG" },
	{ "level", 'l', 0, G_OPTION_ARG_INT, &opt_level, "Fencing level: 1 is tried first, 2 if 1 failed… (default 1)", "N" },
	{ NULL },
};

static void print_vm_line(json_t *vm, const char *verb)
{
	const char *node = json_string_value(json_object_get(vm, "node"));
	printf("VM %s %s%s%s.\n", json_string_value(json_object_get(vm, "name")), verb,
	       node ? " on node " : "", node ? node : "");
}

static int vm_post(cli_ctx *ctx, const char *ref, const char *action, json_t *body, const char *verb)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = cli_api_path("vms", ref, action);
	g_autoptr(json_t) vm = cli_call(ctx, "POST", path, body, &error);
	if (!vm)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(vm);
	else
		print_vm_line(vm, verb);
	return CLI_OK;
}

static int run_start(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_object();
	return vm_post(ctx, argv[0], "start", body, "is running");
}

static int run_shutdown(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_pack("{s:b}", "wait", opt_wait);
	return vm_post(ctx, argv[0], "shutdown", body, opt_wait ? "is shut down" : "is shutting down");
}

static int run_destroy(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_object();
	return vm_post(ctx, argv[0], "destroy", body, "is powered off");
}

static int run_op(cli_ctx *ctx, const char *op, const char *ref, const char *verb)
{
	g_autoptr(json_t) body = json_object();
	return vm_post(ctx, ref, op, body, verb);
}

static int run_reboot(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "reboot", argv[0], "is rebooting"); }
static int run_reset(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "reset", argv[0], "was reset"); }
static int run_suspend(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "suspend", argv[0], "is suspended"); }
static int run_resume(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "resume", argv[0], "is running again"); }
static int run_release(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = cli_api_path("vms", argv[0], "release");
	g_autoptr(json_t) body = json_object();
	g_autoptr(json_t) vm = cli_call(ctx, "POST", path, body, &error);
	if (!vm)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(vm);
	else /* not "… on node N": it is no longer bound there */
		printf("VM %s is no longer bound to a node.\n", json_string_value(json_object_get(vm, "name")));
	return CLI_OK;
}

/* ------------------------------------------------------------------ */

/* Poll until no VM runs on, or is assigned to, @node. */
static int wait_node_empty(cli_ctx *ctx, const char *node)
{
	for (int i = 0; i < 7200; i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(json_t) vms = cli_call(ctx, "GET", "/api/v1/vms", NULL, &error);
		if (!vms)
			return cli_report(error);
		unsigned left = 0;
		size_t k;
		json_t *v;
		json_array_foreach(vms, k, v)
			left += g_strcmp0(json_string_value(json_object_get(v, "node")), node) == 0 ||
				g_strcmp0(json_string_value(json_object_get(v, "assigned")), node) == 0;
		if (left == 0) {
			if (!ctx->json)
				printf("No VM is left on node %s.\n", node);
			return CLI_OK;
		}
		usleep(250000);
	}
	fprintf(stderr, "herd: VMs are still on node %s after 30 minutes; see 'herd status'.\n", node);
	return CLI_ERROR;
}

static int set_mode(cli_ctx *ctx, const char *node, const char *mode)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = cli_api_path("nodes", node, "mode");
	g_autoptr(json_t) body = json_pack("{s:s}", "mode", mode);
	g_autoptr(json_t) r = cli_call(ctx, "POST", path, body, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(r);
	else
		printf("Node %s is in %s mode%s.\n", node, mode,
		       strcmp(mode, "online") ? "; its VMs move to other nodes" : "");
	return opt_wait && strcmp(mode, "online") ? wait_node_empty(ctx, node) : CLI_OK;
}

static int run_standby(cli_ctx *ctx, int argc, char **argv) { return set_mode(ctx, argv[0], "standby"); }
static int run_online(cli_ctx *ctx, int argc, char **argv) { return set_mode(ctx, argv[0], "online"); }
static int run_maintenance(cli_ctx *ctx, int argc, char **argv) { return set_mode(ctx, argv[0], "maintenance"); }

static int run_switchover(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = cli_api_path("nodes", argv[0], "switchover");
	g_autoptr(json_t) body = json_pack("{s:s}", "to", argv[1]);
	g_autoptr(json_t) r = cli_call(ctx, "POST", path, body, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(r);
	else
		printf("The VMs of node %s move to node %s.\n", argv[0], argv[1]);
	return opt_wait ? wait_node_empty(ctx, argv[0]) : CLI_OK;
}

static int run_fence(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	if (!opt_yes) {
		g_autofree char *q = g_strdup_printf("Cut the power of node %s now?", argv[0]);
		if (!cli_confirm(q, "--yes", "not fencing."))
			return CLI_ERROR;
	}
	g_autofree char *path = cli_api_path("nodes", argv[0], "fence");
	g_autoptr(json_t) body = json_object();
	g_autoptr(json_t) r = cli_call(ctx, "POST", path, body, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(r);
	else
		printf("Node %s is fenced (powered off and verified off); its VMs restart elsewhere.\n", argv[0]);
	return CLI_OK;
}

static int run_confirm_down(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	if (!opt_yes) {
		g_autofree char *q = g_strdup_printf(
			"Is node %s really powered off? Its VMs will be started elsewhere; if it still runs them, they run twice.",
			argv[0]);
		if (!cli_confirm(q, "--yes", "not confirmed."))
			return CLI_ERROR;
	}
	g_autofree char *path = cli_api_path("nodes", argv[0], "confirm-down");
	g_autoptr(json_t) body = json_object();
	g_autoptr(json_t) r = cli_call(ctx, "POST", path, body, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(r);
	else
		printf("Node %s is confirmed down; its VMs restart elsewhere.\n", argv[0]);
	return CLI_OK;
}

/* ------------------------------------------------------------------ */

/* cli_key_value() for --param and --plug, which take no empty VALUE. */
static char *fd_key_value(const char *arg, const char *what, const char **value)
{
	g_autofree char *key = cli_key_value(arg, value);
	if (!key || !**value) {
		fprintf(stderr, "herd fence-device add: %s needs KEY=VALUE, not '%s'.\n", what, arg);
		return NULL;
	}
	return g_steal_pointer(&key);
}

static int run_fd_add(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	if (!opt_agent || !opt_plugs) {
		fprintf(stderr, "herd fence-device add: give --agent AGENT and at least one --plug NODE=PLUG.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) params = json_object(), plugs = json_object();
	for (char **p = opt_params; p && *p; p++) {
		const char *v;
		g_autofree char *k = fd_key_value(*p, "--param", &v);
		if (!k)
			return CLI_USAGE;
		json_object_set_new(params, k, json_string(v));
	}
	for (char **p = opt_plugs; p && *p; p++) {
		const char *v;
		g_autofree char *k = fd_key_value(*p, "--plug", &v);
		if (!k)
			return CLI_USAGE;
		json_object_set_new(plugs, k, json_string(v));
	}
	g_autoptr(json_t) body = json_pack("{s:s,s:s,s:O,s:O,s:i}", "name", argv[0], "agent", opt_agent,
					   "params", params, "plugs", plugs, "level", opt_level);
	g_autoptr(json_t) r = cli_call(ctx, "POST", "/api/v1/fence-devices", body, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(r);
	else
		printf("Fence device %s added; 'herd fence-device test %s' checks it.\n", argv[0], argv[0]);
	return CLI_OK;
}

static int run_fd_list(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) list = cli_call(ctx, "GET", "/api/v1/fence-devices", NULL, &error);
	if (!list)
		return cli_report(error);
	if (ctx->json) {
		cli_print_json(list);
		return CLI_OK;
	}
	cli_table *t = cli_table_new("NAME", "AGENT", "LEVEL", "PLUGS", "PARAMETERS", NULL);
	size_t i;
	json_t *d;
	json_array_foreach(list, i, d) {
		GString *plugs = g_string_new(NULL), *params = g_string_new(NULL);
		const char *k;
		json_t *v;
		json_object_foreach(json_object_get(d, "plugs"), k, v)
			g_string_append_printf(plugs, "%s%s=%s", plugs->len ? " " : "", k, json_string_value(v));
		json_object_foreach(json_object_get(d, "params"), k, v)
			g_string_append_printf(params, "%s%s=%s", params->len ? " " : "", k, json_string_value(v));
		g_autofree char *level = g_strdup_printf("%lld", (long long)json_integer_value(json_object_get(d, "level")));
		cli_table_add(t, json_string_value(json_object_get(d, "name")),
			      json_string_value(json_object_get(d, "agent")), level, plugs->str, params->str);
		g_string_free(plugs, TRUE);
		g_string_free(params, TRUE);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_fd_test(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = cli_api_path("fence-devices", argv[0], "test");
	g_autoptr(json_t) body = json_object();
	g_autoptr(json_t) r = cli_call(ctx, "POST", path, body, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json) {
		cli_print_json(r);
		return CLI_OK;
	}
	cli_table *t = cli_table_new("NODE", "PLUG", "RESULT", "SECONDS", NULL);
	size_t i;
	json_t *x;
	int rc = CLI_OK;
	json_array_foreach(r, i, x) {
		bool ok = json_is_true(json_object_get(x, "ok"));
		g_autofree char *res = ok ? g_strdup_printf("power %s", json_string_value(json_object_get(x, "power")))
					  : g_strdup(json_string_value(json_object_get(x, "error")));
		g_autofree char *secs = g_strdup_printf("%.2f", json_real_value(json_object_get(x, "seconds")));
		cli_table_add(t, json_string_value(json_object_get(x, "node")),
			      json_string_value(json_object_get(x, "plug")), res, secs);
		if (!ok)
			rc = CLI_ERROR;
	}
	cli_table_print(t);
	return rc;
}

static int run_fd_remove(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = cli_api_path("fence-devices", argv[0], NULL);
	g_autoptr(json_t) r = cli_call(ctx, "DELETE", path, NULL, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(r);
	else
		printf("Fence device %s removed.\n", argv[0]);
	return CLI_OK;
}

const cli_command cli_ha_commands[] = {
	{ "vm start", "NAME|UUID", "Start a VM where the cluster places it; waits until it runs", NULL, NULL, 1, 1, run_start },
	{ "vm shutdown", "NAME|UUID", "Shut a VM down (ACPI; forced off after its shutdown timeout)", NULL, wait_options, 1, 1, run_shutdown },
	{ "vm destroy", "NAME|UUID", "Power a VM off at once", NULL, NULL, 1, 1, run_destroy },
	{ "vm reboot", "NAME|UUID", "Reboot a VM (ACPI)", NULL, NULL, 1, 1, run_reboot },
	{ "vm reset", "NAME|UUID", "Reset a VM (hard)", NULL, NULL, 1, 1, run_reset },
	{ "vm suspend", "NAME|UUID", "Pause a VM", NULL, NULL, 1, 1, run_suspend },
	{ "vm resume", "NAME|UUID", "Continue a paused VM", NULL, NULL, 1, 1, run_resume },
	{ "vm release", "NAME|UUID", "Unbind a sticky VM from its node", NULL, NULL, 1, 1, run_release },
	{ "node standby", "NAME", "Move a node's VMs away; it takes no new ones", NULL, node_mode_options, 1, 1, run_standby },
	{ "node online", "NAME", "Let a node run VMs again", NULL, NULL, 1, 1, run_online },
	{ "node maintenance", "NAME", "Move a node's VMs away and stop managing it (for updates)", NULL, node_mode_options, 1, 1, run_maintenance },
	{ "node switchover", "FROM TO", "Move all VMs of node FROM to node TO", NULL, node_mode_options, 2, 2, run_switchover },
	{ "node fence", "NAME", "Cut a node's power through its fence devices", NULL, fence_options, 1, 1, run_fence },
	{ "node confirm-down", "NAME", "Tell herd a lost node is powered off (when fencing cannot)", NULL, fence_options, 1, 1, run_confirm_down },
	{ "fence-device add", "NAME", "Add a fence device (switched PDU, IPMI…)", NULL, fence_add_options, 1, 1, run_fd_add },
	{ "fence-device list", NULL, "List the fence devices", NULL, NULL, 0, 0, run_fd_list },
	{ "fence-device test", "NAME", "Ask a fence device the power state of every node it covers", NULL, NULL, 1, 1, run_fd_test },
	{ "fence-device remove", "NAME", "Remove a fence device", NULL, NULL, 1, 1, run_fd_remove },
	{ NULL },
};
