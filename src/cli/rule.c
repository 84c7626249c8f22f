/*
 * herd rule: affinity rules (add, list, show, delete).  A rule keeps VMs on
 * one node (--together) or on different nodes (--apart), strictly or, with
 * --soft, as a preference (docs/ha.md).
 */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>

static gboolean opt_together, opt_apart, opt_soft;

static GOptionEntry add_options[] = {
	{ "together", 0, 0, G_OPTION_ARG_NONE, &opt_together, "Keep the VMs on one node", NULL },
	{ "apart", 0, 0, G_OPTION_ARG_NONE, &opt_apart, "Keep the VMs on different nodes", NULL },
	{ "soft", 0, 0, G_OPTION_ARG_NONE, &opt_soft,
	  "A preference that yields to capacity (default: strict, never broken by herd's placement)", NULL },
	{ NULL },
};

static int run_add(cli_ctx *ctx, int argc, char **argv)
{
	if (opt_together == opt_apart) {
		fprintf(stderr, "herd rule add: give --together or --apart.\n");
		return CLI_USAGE;
	}
	json_t *vms = json_array();
	for (int i = 1; i < argc; i++)
		json_array_append_new(vms, json_string(argv[i]));
	g_autoptr(json_t) body = json_pack("{s:s,s:s,s:b,s:o}", "name", argv[0], "kind",
					   opt_apart ? "apart" : "together", "strict", !opt_soft, "vms", vms);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/rules", body, &rc);
	if (!r)
		return rc;
	printf("Rule %s added: %s keeps %d VMs %s.\n", argv[0], opt_soft ? "a preference" : "strictly",
	       argc - 1, opt_apart ? "on different nodes" : "on one node");
	return CLI_OK;
}

/* "web1(n1) db1(n2)": the rule's VMs and where they run. */
static char *vms_text(json_t *vms)
{
	GString *s = g_string_new(NULL);
	size_t i;
	json_t *v;
	json_array_foreach(vms, i, v) {
		const char *node = json_string_value(json_object_get(v, "node"));
		g_string_append_printf(s, "%s%s(%s)", s->len ? " " : "", json_string_value(json_object_get(v, "name")),
				       node ? node : "-");
	}
	return g_string_free(s, FALSE);
}

static const char *kind_text(json_t *r)
{
	bool strict = json_is_true(json_object_get(r, "strict"));
	bool apart = g_strcmp0(json_string_value(json_object_get(r, "kind")), "apart") == 0;
	return apart ? (strict ? "apart, strict" : "apart, soft") : (strict ? "together, strict" : "together, soft");
}

static int run_list(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) list = cli_call(ctx, "GET", "/api/v1/rules", NULL, &error);
	if (!list)
		return cli_report(error);
	if (ctx->json) {
		cli_print_json(list);
		return CLI_OK;
	}
	cli_table *t = cli_table_new("NAME", "KIND", "HOLDS", "VMS (NODE)", NULL);
	size_t i;
	json_t *r;
	json_array_foreach(list, i, r) {
		g_autofree char *vms = vms_text(json_object_get(r, "vms"));
		cli_table_add(t, json_string_value(json_object_get(r, "name")), kind_text(r),
			      json_is_true(json_object_get(r, "holds")) ? "yes" : "no", vms);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_show(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = cli_api_path("rules", argv[0], NULL);
	g_autoptr(json_t) r = cli_call(ctx, "GET", path, NULL, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json) {
		cli_print_json(r);
		return CLI_OK;
	}
	printf("Rule:   %s\nUUID:   %s\nKind:   %s\nHolds:  %s\nVMs:\n", json_string_value(json_object_get(r, "name")),
	       json_string_value(json_object_get(r, "uuid")), kind_text(r),
	       json_is_true(json_object_get(r, "holds")) ? "yes" : "no (herd moves VMs live to mend it)");
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r, "vms"), i, v) {
		const char *node = json_string_value(json_object_get(v, "node"));
		printf("  %-20s %s\n", json_string_value(json_object_get(v, "name")), node ? node : "(not running)");
	}
	return CLI_OK;
}

static int run_delete(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("rules", argv[0], NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", path, NULL, &rc);
	if (!r)
		return rc;
	printf("Rule %s deleted.\n", argv[0]);
	return CLI_OK;
}

const cli_command cli_rule_commands[] = {
	{ "rule add", "NAME VM VM [VM…]", "Add an affinity rule: VMs kept on one node or on different nodes",
	  "--together keeps the VMs on one node, --apart on different nodes.  A rule is strict\n"
	  "unless --soft: herd never places a VM where it would break a strict rule (the VM waits,\n"
	  "with an alert naming the rule); a soft rule yields to capacity.  Running VMs that break\n"
	  "a rule are moved live to mend it.  A VM may be in several rules.",
	  add_options, 3, 65, run_add },
	{ "rule list", NULL, "List the affinity rules, where their VMs run and whether each holds", NULL,
	  NULL, 0, 0, run_list },
	{ "rule show", "NAME|UUID", "Show an affinity rule", NULL, NULL, 1, 1, run_show },
	{ "rule delete", "NAME|UUID", "Delete an affinity rule", NULL, NULL, 1, 1, run_delete },
	{ NULL },
};
