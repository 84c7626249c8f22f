/* herd simulate: what if nodes went down or into standby?  Changes nothing. */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>

static char **opt_down, **opt_standby;

static GOptionEntry simulate_options[] = {
	{ "node-down", 'd', 0, G_OPTION_ARG_STRING_ARRAY, &opt_down,
	  "A node whose power is cut (repeat)", "NODE" },
	{ "standby", 's', 0, G_OPTION_ARG_STRING_ARRAY, &opt_standby,
	  "A node put in standby (repeat)", "NODE" },
	{ NULL },
};

static json_t *names(char **list)
{
	json_t *a = json_array();
	for (char **p = list; p && *p; p++)
		json_array_append_new(a, json_string(*p));
	return a;
}

static void print_list(const char *title, json_t *list)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		printf("%s%s", i ? ", " : title, json_string_value(v));
	if (json_array_size(list))
		printf("\n");
}

static int run_simulate(cli_ctx *ctx, int argc, char **argv)
{
	if (!opt_down && !opt_standby) {
		fprintf(stderr, "herd simulate: give at least one --node-down NODE or --standby NODE.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) body = json_pack("{s:o,s:o}", "node_down", names(opt_down), "standby",
					   names(opt_standby));
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/simulate", body, &rc);
	if (!r)
		return rc;
	print_list("Fenced: ", json_object_get(r, "fenced"));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(r, "node_alerts"), i, v)
		printf("%s\n", json_string_value(v));
	json_t *vms = json_object_get(r, "vms");
	if (json_array_size(vms) == 0) {
		printf("No VM would move or stay down.\n");
	} else {
		/* In the order they would start: by restart priority. */
		cli_table *t = cli_table_new("VM", "PRIORITY", "FROM", "TO", "WHY", NULL);
		json_array_foreach(vms, i, v)
			cli_table_add(t, json_string_value(json_object_get(v, "vm")),
				      json_string_value(json_object_get(v, "restart_priority")) ?: "medium",
				      json_string_value(json_object_get(v, "from")),
				      json_string_value(json_object_get(v, "to")),
				      json_string_value(json_object_get(v, "reason")));
		cli_table_print(t);
	}
	if (!json_is_true(json_object_get(r, "settled")))
		printf("The scheduler did not settle: %s\n",
		       json_string_value(json_object_get(r, "unsettled")));
	if (json_is_true(json_object_get(r, "n_plus_1")))
		printf("N+1 would still hold: every HA VM would find room if one more node failed.\n");
	else
		printf("N+1 would not hold: %s\n", json_string_value(json_object_get(r, "n_plus_1_detail")));
	return CLI_OK;
}

const cli_command cli_simulate_commands[] = {
	{ "simulate", NULL, "What if nodes went down or into standby? (changes nothing)",
	  "Runs herd's own scheduler on the cluster as it is now, with the given nodes' power cut "
	  "(fenced, if a fence device covers them) and the given nodes in standby, and prints where "
	  "each VM would go or why it would stay down, and whether N+1 would still hold.",
	  simulate_options, 0, 0, run_simulate },
	{ NULL },
};
