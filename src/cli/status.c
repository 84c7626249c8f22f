/* herd status, herd version. */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"
#include "herd-config.h"

#include <stdio.h>

static int run_status(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) st = cli_request(ctx, "GET", "/api/v1/status", NULL, &rc);
	if (!st)
		return rc;
	/* First, loudly: while paused, a lost node is neither fenced nor its VMs restarted. */
	if (json_is_true(json_object_get(st, "ha_paused")))
		printf("!!! HA IS PAUSED: herd fences no node and starts, moves or fails over no VM.\n"
		       "!!! 'herd cluster ha resume' ends it.\n");
	json_t *node = json_object_get(st, "node");
	g_autofree char *up = cli_format_duration(json_integer_value(json_object_get(node, "uptime_s")));
	printf("Node:     %s (herd %s, up %s)\n", json_string_value(json_object_get(node, "name")),
	       json_string_value(json_object_get(json_object_get(node, "versions"), "herd")), up);
	json_t *c = json_object_get(st, "cluster");
	if (!json_is_object(c)) {
		printf("Cluster:  none (create one with 'herd cluster create', or join one)\n");
		return CLI_OK;
	}
	json_t *q = json_object_get(c, "quorum");
	json_t *nodes = json_object_get(c, "nodes");
	size_t online = 0, i;
	json_t *n;
	json_array_foreach(nodes, i, n) online += json_is_true(json_object_get(n, "online"));
	printf("Cluster:  %s, %zu of %zu nodes online, %s\n", json_string_value(json_object_get(c, "name")),
	       online, json_array_size(nodes),
	       json_is_true(json_object_get(q, "quorate")) ? "quorate" : "NOT QUORATE");
	const char *refusal = json_string_value(json_object_get(c, "refusal"));
	if (refusal)
		printf("          %s\n", refusal);
	json_t *vms = json_object_get(st, "vms");
	printf("VMs:      %lld running of %lld defined, %lld paused; HA VMs: %lld of %lld running\n",
	       (long long)json_integer_value(json_object_get(vms, "running")),
	       (long long)json_integer_value(json_object_get(vms, "defined")),
	       (long long)json_integer_value(json_object_get(vms, "paused")),
	       (long long)json_integer_value(json_object_get(vms, "ha_running")),
	       (long long)json_integer_value(json_object_get(vms, "ha")));
	if (json_is_true(json_object_get(st, "lab_mode")))
		printf("\n!!! LAB MODE: no fencing. A lost node counts as dead at once, so a VM may run\n"
		       "!!! twice after a split. Never in production: herd cluster set lab_mode=no\n");
	json_t *lost = json_object_get(st, "unfenced_lost_nodes");
	json_array_foreach(lost, i, n)
		printf("\n!!! Node %s is lost and not fenced yet: its VMs, changes to them and to it, and\n"
		       "!!! joins and leaves wait until it is fenced or 'herd node confirm-down %s'.\n",
		       json_string_value(n), json_string_value(n));
	json_t *ha = json_object_get(st, "ha");
	if (json_is_object(ha)) {
		printf("Coordinator: %s%s\n", json_string_value(json_object_get(ha, "coordinator")),
		       json_is_true(json_object_get(ha, "n_plus_1")) ? ""
								   : " (N+1: losing a node would leave HA VMs without room)");
		/* Per node: the HA VMs that could not be restarted if it died now. */
		const char *node_name;
		json_t *count;
		GString *risk = g_string_new(NULL);
		json_object_foreach(json_object_get(ha, "at_risk"), node_name, count)
			g_string_append_printf(risk, "%s%s %lld", risk->len ? ", " : "", node_name,
					       (long long)json_integer_value(count));
		if (risk->len)
			printf("If a node died now, HA VMs that could not be restarted: %s\n", risk->str);
		g_string_free(risk, TRUE);
		json_t *alerts = json_object_get(ha, "alerts");
		if (json_array_size(alerts))
			printf("\nAlerts:\n");
		json_array_foreach(alerts, i, n)
			printf("  %-8s %s\n", json_string_value(json_object_get(n, "severity")),
			       json_string_value(json_object_get(n, "message")));
	} else {
		printf("Coordinator: none (no quorate partition, or herd is starting)\n");
	}
	return CLI_OK;
}

static int run_version(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	json_t *node = cli_call(ctx, "GET", "/api/v1/node", NULL, &error);
	if (!node) {
		if (!ctx->json)
			printf("herd CLI  %s\n", HERD_VERSION);
		return cli_report(error);
	}
	if (ctx->json) {
		json_t *out = json_pack("{s:s,s:O}", "cli", HERD_VERSION, "daemon", node);
		cli_print_json(out);
		json_decref(out);
		json_decref(node);
		return CLI_OK;
	}
	json_t *v = json_object_get(node, "versions");
	printf("herd CLI  %s\n", HERD_VERSION);
	printf("herdd     %s (protocol %lld) on node %s\n",
	       json_string_value(json_object_get(v, "herd")),
	       (long long)json_integer_value(json_object_get(v, "protocol")),
	       json_string_value(json_object_get(node, "name")));
	printf("corosync  %s\n", json_string_value(json_object_get(v, "corosync")));
	printf("libvirt   %s\n", json_string_value(json_object_get(v, "libvirt")));
	json_decref(node);
	return CLI_OK;
}

const cli_command cli_status_commands[] = {
	{ "status", NULL, "Show the state of this node and the cluster", NULL, NULL, 0, 0,
	  run_status },
	{ "version", NULL, "Show the versions of the CLI, herdd and the components", NULL, NULL,
	  0, 0, run_version },
	{ NULL },
};
