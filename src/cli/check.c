/*
 * herd check: the pre-flight checks, now, from the node asked (clocks,
 * links' MTU and loss, fencing, storage reach, corosync.conf, versions and
 * CPUs, N+1); a line per result, what to fix in its sentence
 * (docs/check.md).  Exit status 1 if one failed.  --last: the latest report
 * any node shared (a run of herd check, or the coordinator's periodic round),
 * without running the checks (the web UI's "Last check").
 */
#include "cli/cli.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>

static gboolean opt_last;

static GOptionEntry check_options[] = {
	{ "last", 'l', 0, G_OPTION_ARG_NONE, &opt_last,
	  "Show the latest results (the coordinator's periodic round, or any node's herd check) without running the checks",
	  NULL },
	{ NULL },
};

static int run_check(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = cli_call(ctx, opt_last ? "GET" : "POST", "/api/v1/check", NULL, &error);
	if (!r)
		return cli_report(error);
	json_t *results = json_object_get(r, "results");
	bool failed = false;
	size_t i;
	json_t *res;
	json_array_foreach(results, i, res)
		failed |= g_strcmp0(json_string_value(json_object_get(res, "status")), "fail") == 0;
	if (ctx->json) {
		cli_print_json(r);
		return failed ? CLI_ERROR : CLI_OK;
	}
	unsigned counts[3] = { 0 };
	json_array_foreach(results, i, res) {
		const char *status = json_string_value(json_object_get(res, "status"));
		const char *node = json_string_value(json_object_get(res, "node"));
		counts[g_strcmp0(status, "pass") == 0 ? 0 : g_strcmp0(status, "warn") == 0 ? 1 : 2]++;
		g_autofree char *label = g_ascii_strup(status ? status : "?", -1);
		printf("%-4s  %-9s %-8s %s\n", label, json_string_value(json_object_get(res, "check")),
		       node ? node : "-", json_string_value(json_object_get(res, "message")));
	}
	if (opt_last) {
		g_autofree char *when = cli_format_time(json_integer_value(json_object_get(r, "time_ms")));
		printf("\n%u passed, %u warnings, %u failed (checked from node %s, %s).\n", counts[0], counts[1],
		       counts[2], json_string_value(json_object_get(r, "node")), when);
	} else {
		printf("\n%u passed, %u warnings, %u failed (checked from node %s).\n", counts[0], counts[1],
		       counts[2], json_string_value(json_object_get(r, "node")));
	}
	return failed ? CLI_ERROR : CLI_OK;
}

const cli_command cli_check_commands[] = {
	{ "check", NULL, "Run the pre-flight checks now: clocks, links and MTU, fencing, storage, versions",
	  "Every node probes its own part (its clock, don't-fragment pings of the cluster's check_mtu to\n"
	  "every other node on every link, its corosync.conf, libvirt's and QEMU's versions, its CPU);\n"
	  "the node asked adds the fence devices' answers to 'status', the storages' reach and N+1.\n"
	  "A line per result: PASS, WARN or FAIL, the check, the node, and what to fix.  Failures also\n"
	  "become alerts (clock_skew, check_failed) until a later check passes.  Exit status 1 if one\n"
	  "failed.  The coordinator runs the checks by itself every check_interval_s; --last shows the\n"
	  "latest results without running the checks.",
	  check_options, 0, 0, run_check },
	{ NULL },
};
