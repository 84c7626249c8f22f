/*
 * herd audit: who changed what from which node.
 */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>

static int opt_limit;

static GOptionEntry audit_options[] = {
	{ "limit", 'n', 0, G_OPTION_ARG_INT, &opt_limit, "Show the newest N changes (default 100)", "N" },
	{ NULL },
};

static int run_audit(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = opt_limit ? g_strdup_printf("/api/v1/audit?limit=%d", opt_limit)
					  : g_strdup("/api/v1/audit");
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", path, NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("TIME", "USER", "NODE", "CHANGE", "KIND", "NAME", NULL);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		g_autofree char *when = cli_format_time(json_integer_value(json_object_get(e, "time_ms")));
		cli_table_add(t, when, json_string_value(json_object_get(e, "user")),
			      json_string_value(json_object_get(e, "node")),
			      json_string_value(json_object_get(e, "change")),
			      json_string_value(json_object_get(e, "kind")),
			      json_string_value(json_object_get(e, "name")));
	}
	cli_table_print(t);
	return CLI_OK;
}

const cli_command cli_audit_commands[] = {
	{ "audit", NULL, "Show who changed what, from which node (newest first)", NULL, audit_options,
	  0, 0, run_audit },
	{ NULL },
};
