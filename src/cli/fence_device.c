/* herd fence-device add|list|test|remove. */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>

static char *opt_agent;
static char **opt_params, **opt_plugs;
static int opt_level = 1;

static GOptionEntry fence_add_options[] = {
	{ "agent", 'a', 0, G_OPTION_ARG_STRING, &opt_agent, "The fence agent, e.g. fence_apc_snmp, fence_ipmilan", "AGENT" },
	{ "param", 'p', 0, G_OPTION_ARG_STRING_ARRAY, &opt_params, "An agent parameter (repeat), e.g. ip=10.0.0.9", "KEY=VALUE" },
	{ "plug", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_plugs, "Which outlet/port cuts which node (repeat)", "NODE=PLUG" },
	{ "level", 'l', 0, G_OPTION_ARG_INT, &opt_level, "Fencing level: 1 is tried first, 2 if 1 failed… (default 1)", "N" },
	{ NULL },
};

/* Each --param or --plug (@what) of @args, KEY=VALUE with neither empty, into
 * @object; false, after saying which one is wrong, at the first that is not. */
static bool add_key_values(json_t *object, char **args, const char *what)
{
	for (char **a = args; a && *a; a++) {
		const char *value;
		g_autofree char *key = cli_key_value(*a, &value);
		if (!key || !*value) {
			fprintf(stderr, "herd fence-device add: %s needs KEY=VALUE, not '%s'.\n", what, *a);
			return false;
		}
		json_object_set_new(object, key, json_string(value));
	}
	return true;
}

/* "KEY=VALUE KEY=VALUE…" of a device's plugs or params, as 'add' takes
 * them (@sep '='), or another @sep. */
static char *key_values_text(json_t *object, char sep)
{
	GString *s = g_string_new(NULL);
	const char *key;
	json_t *value;
	json_object_foreach(object, key, value)
		g_string_append_printf(s, "%s%s%c%s", s->len ? " " : "", key, sep, json_string_value(value));
	return g_string_free(s, FALSE);
}

static int run_fd_add(cli_ctx *ctx, int argc, char **argv)
{
	if (!opt_agent || !opt_plugs) {
		fprintf(stderr, "herd fence-device add: give --agent AGENT and at least one --plug NODE=PLUG.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) params = json_object(), plugs = json_object();
	if (!add_key_values(params, opt_params, "--param") ||
	    !add_key_values(plugs, opt_plugs, "--plug"))
		return CLI_USAGE;
	g_autoptr(json_t) body = json_pack("{s:s,s:s,s:O,s:O,s:i}", "name", argv[0], "agent", opt_agent,
					   "params", params, "plugs", plugs, "level", opt_level);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/fence-devices", body, &rc);
	if (!r)
		return rc;
	printf("Fence device %s added; 'herd fence-device test %s' checks it.\n", argv[0], argv[0]);
	return CLI_OK;
}

/* The agents waiting for a fence, per node: "n1:2 n2:2", or "-". */
static char *waiting_text(json_t *waiting)
{
	g_autoptr(json_t) counts = json_object();
	const char *node;
	json_t *pids;
	json_object_foreach(waiting, node, pids)
		json_object_set_new(counts, node, json_sprintf("%zu", json_array_size(pids)));
	return json_object_size(counts) ? key_values_text(counts, ':') : g_strdup("-");
}

static int run_fd_list(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", "/api/v1/fence-devices", NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("NAME", "AGENT", "LEVEL", "PLUGS", "WAITING", "PARAMETERS", NULL);
	size_t i;
	json_t *d;
	json_array_foreach(list, i, d) {
		g_autofree char *plugs = key_values_text(json_object_get(d, "plugs"), '=');
		g_autofree char *params = key_values_text(json_object_get(d, "params"), '=');
		g_autofree char *level = g_strdup_printf("%lld", (long long)json_integer_value(json_object_get(d, "level")));
		g_autofree char *waiting = waiting_text(json_object_get(d, "waiting"));
		cli_table_add(t, json_string_value(json_object_get(d, "name")),
			      json_string_value(json_object_get(d, "agent")), level, plugs, waiting, params);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_fd_test(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("fence-devices", argv[0], "test");
	g_autoptr(json_t) body = json_object();
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", path, body, &rc);
	if (!r)
		return rc;
	cli_table *t = cli_table_new("NODE", "PLUG", "RESULT", "SECONDS", NULL);
	size_t i;
	json_t *x;
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
	g_autofree char *path = cli_api_path("fence-devices", argv[0], NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", path, NULL, &rc);
	if (!r)
		return rc;
	printf("Fence device %s removed.\n", argv[0]);
	return CLI_OK;
}

const cli_command cli_fence_device_commands[] = {
	{ "fence-device add", "NAME", "Add a fence device (switched PDU, IPMI…)", NULL, fence_add_options, 1, 1, run_fd_add },
	{ "fence-device list", NULL, "List the fence devices", NULL, NULL, 0, 0, run_fd_list },
	{ "fence-device test", "NAME", "Ask a fence device the power state of every node it covers", NULL, NULL, 1, 1, run_fd_test },
	{ "fence-device remove", "NAME", "Remove a fence device", NULL, NULL, 1, 1, run_fd_remove },
	{ NULL },
};
