/*
 * herd network: virtual switches (add, list, remove).
 */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>

static char *opt_bridge;
static int opt_vlan;

static GOptionEntry add_options[] = {
	{ "bridge", 'b', 0, G_OPTION_ARG_STRING, &opt_bridge, "The bridge every node has for the switch (vmbr0…)", "BRIDGE" },
	{ "vlan", 0, 0, G_OPTION_ARG_INT, &opt_vlan, "VMs' ports in this VLAN (1-4094): needs an Open vSwitch bridge", "N" },
	{ NULL },
};

static int run_add(cli_ctx *ctx, int argc, char **argv)
{
	if (!opt_bridge) {
		fprintf(stderr, "herd network add: --bridge is required.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) body = json_pack("{s:s,s:s}", "name", argv[0], "bridge", opt_bridge);
	if (opt_vlan)
		json_object_set_new(body, "vlan", json_integer(opt_vlan));
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/networks", body, &rc);
	if (!r)
		return rc;
	if (opt_vlan)
		printf("Virtual switch %s added (bridge %s, VLAN %d).\n", argv[0], opt_bridge, opt_vlan);
	else
		printf("Virtual switch %s added (bridge %s).\n", argv[0], opt_bridge);
	return CLI_OK;
}

/* Per node, whether it has the bridge: "n1 n2 n3(missing)" (missing also
 * when its herd does not report), or "?" from a herd that does not say. */
static char *nodes_text(json_t *nodes)
{
	if (!json_is_object(nodes))
		return g_strdup("?");
	GString *s = g_string_new(NULL);
	const char *node;
	json_t *v;
	json_object_foreach(nodes, node, v) {
		bool ok = json_is_true(json_object_get(v, "ok"));
		g_string_append_printf(s, "%s%s%s", s->len ? " " : "", node, ok ? "" : "(missing)");
	}
	return g_string_free(s, FALSE);
}

static int run_list(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) list = cli_call(ctx, "GET", "/api/v1/networks", NULL, &error);
	if (!list)
		return cli_report(error);
	if (ctx->json) {
		cli_print_json(list);
		return CLI_OK;
	}
	cli_table *t = cli_table_new("NAME", "BRIDGE", "VLAN", "VMS", "NODES", NULL);
	size_t i;
	json_t *n;
	json_array_foreach(list, i, n) {
		json_t *vlan = json_object_get(n, "vlan");
		g_autofree char *vlan_s = json_is_integer(vlan) ? g_strdup_printf("%lld", (long long)json_integer_value(vlan)) :
								  g_strdup("-");
		g_autofree char *vms = g_strdup_printf("%zu", json_array_size(json_object_get(n, "vms")));
		g_autofree char *nodes = nodes_text(json_object_get(n, "nodes"));
		cli_table_add(t, json_string_value(json_object_get(n, "name")),
			      json_string_value(json_object_get(n, "bridge")), vlan_s, vms, nodes);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_remove(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("networks", argv[0], NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", path, NULL, &rc);
	if (!r)
		return rc;
	printf("Virtual switch %s removed.\n", argv[0]);
	return CLI_OK;
}

const cli_command cli_network_commands[] = {
	{ "network add", "NAME", "Add a virtual switch: a bridge that every node has",
	  "VMs' NICs name the switch, never the bridge.  With --vlan the bridge must be an Open\n"
	  "vSwitch bridge; for a VLAN on a Linux bridge, make a bridge on the VLAN's interface\n"
	  "(vmbr0v100 on eth0.100) on every node and add it without --vlan.",
	  add_options, 1, 1, run_add },
	{ "network list", NULL, "List the virtual switches", NULL, NULL, 0, 0, run_list },
	{ "network remove", "NAME|UUID", "Remove a virtual switch (refused while a VM uses it)", NULL, NULL, 1,
	  1, run_remove },
	{ NULL },
};
