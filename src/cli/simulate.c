/* herd simulate: what if nodes went down or into standby?  Changes nothing. */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>

static char **opt_down, **opt_standby;
static gboolean opt_rebalance;

static GOptionEntry simulate_options[] = {
	{ "node-down", 'd', 0, G_OPTION_ARG_STRING_ARRAY, &opt_down,
	  "A node whose power is cut (repeat)", "NODE" },
	{ "standby", 's', 0, G_OPTION_ARG_STRING_ARRAY, &opt_standby,
	  "A node put in standby (repeat)", "NODE" },
	{ "rebalance", 'r', 0, G_OPTION_ARG_NONE, &opt_rebalance,
	  "What an automatic rebalance would move now (whether or not it is on)", NULL },
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

/* herd simulate --rebalance */
static int run_rebalance(cli_ctx *ctx)
{
	g_autoptr(json_t) body = json_pack("{s:b}", "rebalance", 1);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/simulate", body, &rc);
	if (!r)
		return rc;
	double spread = json_number_value(json_object_get(r, "imbalance_pct"));
	const char *fullest = json_string_value(json_object_get(r, "fullest"));
	long long threshold = json_integer_value(json_object_get(r, "threshold_pct"));
	if (!fullest) {
		printf("Fewer than two nodes take VMs: there is nothing to balance.\n");
		return CLI_OK;
	}
	printf("The nodes' fullness spreads %.1f points (%s fullest, %s emptiest); rebalance starts at %lld "
	       "points held %lld s, and is %s.\n", spread, fullest,
	       json_string_value(json_object_get(r, "emptiest")), threshold,
	       (long long)json_integer_value(json_object_get(r, "hold_s")),
	       json_is_true(json_object_get(r, "enabled")) ? "on" : "off (herd cluster set rebalance=yes)");
	json_t *moves = json_object_get(r, "moves");
	if (!json_is_true(json_object_get(r, "settled")))
		printf("The scheduler has something to do first: no rebalance until it is done.\n");
	else if (spread < (double)threshold)
		printf("Below the threshold: nothing would move.\n");
	else if (json_array_size(moves) == 0)
		printf("No move would lower the spread enough (rebalance_min_gain_pct) within the rules.\n");
	if (json_array_size(moves) == 0)
		return CLI_OK;
	cli_table *t = cli_table_new("VM", "FROM", "TO", "SPREAD AFTER", NULL);
	size_t i;
	json_t *m;
	json_array_foreach(moves, i, m) {
		g_autofree char *after = g_strdup_printf("%.1f", json_number_value(json_object_get(m, "after_pct")));
		cli_table_add(t, json_string_value(json_object_get(m, "vm")), json_string_value(json_object_get(m, "from")),
			      json_string_value(json_object_get(m, "to")), after);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_simulate(cli_ctx *ctx, int argc, char **argv)
{
	if (opt_rebalance && (opt_down || opt_standby)) {
		fprintf(stderr, "herd simulate: --rebalance goes alone (it looks at the cluster as it is).\n");
		return CLI_USAGE;
	}
	if (opt_rebalance)
		return run_rebalance(ctx);
	if (!opt_down && !opt_standby) {
		fprintf(stderr, "herd simulate: give at least one --node-down NODE or --standby NODE, or --rebalance.\n");
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
	  "each VM would go or why it would stay down, and whether N+1 would still hold.  With --rebalance: "
	  "what an automatic rebalance would move now (docs/ha.md), whether or not it is on.",
	  simulate_options, 0, 0, run_simulate },
	{ NULL },
};
