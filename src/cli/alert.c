/*
 * herd alert: what the coordinator raised, with its history (list, show,
 * ack).  herd status shows the alerts of this moment; these are their
 * records, the same on every node (docs/alerts.md).
 */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>

static gboolean opt_all;

static GOptionEntry list_options[] = {
	{ "all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, "Also the alerts that cleared (the history)", NULL },
	{ NULL },
};

/* What the alert is about: "vm web1", "node n2", "disk d1", or "-". */
static char *about(json_t *a)
{
	static const char *const keys[] = { "vm", "disk", "storage", "node" };
	for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
		const char *v = json_string_value(json_object_get(a, keys[i]));
		if (v)
			return g_strdup_printf("%s %s", keys[i], v);
	}
	return g_strdup("-");
}

static char *state_text(json_t *a)
{
	json_t *cleared = json_object_get(a, "cleared_ms");
	const char *acked = json_string_value(json_object_get(a, "acked_by"));
	g_autofree char *when = json_is_integer(cleared) ? cli_format_time(json_integer_value(cleared)) : NULL;
	return g_strdup_printf("%s%s%s", when ? "cleared " : "ACTIVE", when ? when : "",
			       acked ? " (acked)" : "");
}

static int run_list(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) list = cli_call(ctx, "GET", opt_all ? "/api/v1/alerts?all=true" : "/api/v1/alerts",
					  NULL, &error);
	if (!list)
		return cli_report(error);
	if (ctx->json) {
		cli_print_json(list);
		return CLI_OK;
	}
	if (!json_array_size(list)) {
		printf(opt_all ? "No alerts recorded.\n" : "No alerts hold now.\n");
		return CLI_OK;
	}
	cli_table *t = cli_table_new("ID", "SEVERITY", "RAISED", "STATE", "ABOUT", "MESSAGE", NULL);
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a) {
		g_autofree char *raised = cli_format_time(json_integer_value(json_object_get(a, "first_ms")));
		g_autofree char *state = state_text(a);
		g_autofree char *what = about(a);
		cli_table_add(t, json_string_value(json_object_get(a, "name")),
			      json_string_value(json_object_get(a, "severity")), raised, state, what,
			      json_string_value(json_object_get(a, "message")));
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_show(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("alerts", argv[0], NULL);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) a = cli_call(ctx, "GET", path, NULL, &error);
	if (!a)
		return cli_report(error);
	if (ctx->json) {
		cli_print_json(a);
		return CLI_OK;
	}
	g_autofree char *raised = cli_format_time(json_integer_value(json_object_get(a, "first_ms")));
	g_autofree char *changed = cli_format_time(json_integer_value(json_object_get(a, "last_ms")));
	g_autofree char *state = state_text(a);
	g_autofree char *what = about(a);
	printf("Alert:     %s (%s)\n", json_string_value(json_object_get(a, "name")),
	       json_string_value(json_object_get(a, "kind")));
	printf("Severity:  %s\n", json_string_value(json_object_get(a, "severity")));
	printf("About:     %s\n", what);
	printf("Raised:    %s\n", raised);
	printf("Changed:   %s\n", changed);
	printf("State:     %s\n", state);
	const char *acked = json_string_value(json_object_get(a, "acked_by"));
	if (acked) {
		g_autofree char *when = cli_format_time(json_integer_value(json_object_get(a, "acked_ms")));
		printf("Acked:     by %s at %s\n", acked, when);
	}
	printf("Message:   %s\n", json_string_value(json_object_get(a, "message")));
	return CLI_OK;
}

static int run_ack(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("alerts", argv[0], "ack");
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", path, NULL, &rc);
	if (!r)
		return rc;
	printf("Alert %s acknowledged.\n", argv[0]);
	return CLI_OK;
}

const cli_command cli_alert_commands[] = {
	{ "alert list", NULL, "List the alerts that hold now (--all: with their history)",
	  "Each alert is a record from when the coordinator raised it until it cleared; the\n"
	  "history keeps the 500 newest cleared ones.  herd status shows the alerts of this moment.",
	  list_options, 0, 0, run_list },
	{ "alert show", "ID", "Show an alert", NULL, NULL, 1, 1, run_show },
	{ "alert ack", "ID", "Acknowledge an alert (it stays until its cause is gone)", NULL, NULL, 1, 1,
	  run_ack },
	{ NULL },
};
