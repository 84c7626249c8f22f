/*
 * herd vm: its configuration (list, define, set, undefine, dumpxml, info,
 * history, restore) and its life (start, shutdown, destroy, reboot, reset,
 * suspend, resume, release).
 */
#include "cli/cli.h"
#include "cli/table.h"
#include "cli/vm_console.h"
#include "cli/vm_hardware.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static gboolean opt_all, opt_ha, opt_no_ha, opt_no_preferred, opt_failback, opt_no_failback,
	opt_force;
static char *opt_preferred, *opt_pattern, *opt_sticky, *opt_group, *opt_pool, *opt_nodes;
static gboolean opt_no_group, opt_restricted, opt_no_restricted, opt_no_nodes, opt_no_start_after;
static char *opt_priority, *opt_start_after;
static int opt_start_wait = -1;
static int opt_shutdown_timeout = -1, opt_version;
static gboolean opt_wait;

static GOptionEntry list_options[] = {
	{ "all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, "Also VMs that are not running", NULL },
	{ NULL },
};

#define ATTRIBUTE_OPTIONS                                                                          \
	{ "ha", 0, 0, G_OPTION_ARG_NONE, &opt_ha, "Keep the VM running (restart it elsewhere when its node dies)", NULL }, \
	{ "preferred", 'p', 0, G_OPTION_ARG_STRING, &opt_preferred, "The node the VM runs on when it can", "NODE" }, \
	{ "nodes", 0, 0, G_OPTION_ARG_STRING, &opt_nodes, "Node set: the nodes the VM prefers, with priorities (higher first), as Proxmox HA groups: n2:2,n3:2,n1:1", "NODE[:PRIO],…" }, \
	{ "restricted", 0, 0, G_OPTION_ARG_NONE, &opt_restricted, "Run only on the nodes of the node set (wait, with an alert, when none can take it)", NULL }, \
	{ "no-failback", 0, 0, G_OPTION_ARG_NONE, &opt_no_failback, "Do not move back to the preferred node, or a higher priority of the node set, when it returns", NULL }, \
	{ "shutdown-timeout", 0, 0, G_OPTION_ARG_INT, &opt_shutdown_timeout, "Seconds a shutdown may take before the VM is forced off (default 360)", "SEC" }, \
	{ "sticky", 0, 0, G_OPTION_ARG_STRING, &opt_sticky, "Bind the VM to this node: it is not restarted elsewhere", "NODE" }, \
	{ "group", 'g', 0, G_OPTION_ARG_STRING, &opt_group, "Anti-affinity group: VMs of one group run on different nodes", "NAME" }, \
	{ "pool", 0, 0, G_OPTION_ARG_STRING, &opt_pool, "VM pool: the operators of groups limited to it may start, stop and migrate the VM (herd group)", "NAME" }, \
	{ "restart-priority", 0, 0, G_OPTION_ARG_STRING, &opt_priority, "Start order when many start at once (failover, cold start, evacuation): high, medium (default), low; disabled: not restarted elsewhere", "PRIO" }, \
	{ "start-after", 0, 0, G_OPTION_ARG_STRING, &opt_start_after, "Start only once this VM runs (or --start-wait is over)", "VM" }, \
	{ "start-wait", 0, 0, G_OPTION_ARG_INT, &opt_start_wait, "Seconds a start waits at most for --start-after and for VMs of a higher priority (default 60)", "SEC" }

static GOptionEntry define_options[] = {
	ATTRIBUTE_OPTIONS,
	{ NULL },
};

static GOptionEntry create_options[] = {
	CLI_VM_HARDWARE_OPTIONS,
	ATTRIBUTE_OPTIONS,
	{ NULL },
};

static GOptionEntry set_options[] = {
	ATTRIBUTE_OPTIONS,
	CLI_VM_HARDWARE_OPTIONS,
	CLI_VM_HARDWARE_SET_OPTIONS,
	{ "no-ha", 0, 0, G_OPTION_ARG_NONE, &opt_no_ha, "Stop keeping the VM running", NULL },
	{ "no-preferred", 0, 0, G_OPTION_ARG_NONE, &opt_no_preferred, "Forget the preferred node", NULL },
	{ "failback", 0, 0, G_OPTION_ARG_NONE, &opt_failback, "Move back to the preferred node when it returns", NULL },
	{ "no-group", 0, 0, G_OPTION_ARG_NONE, &opt_no_group, "Leave its anti-affinity group", NULL },
	{ "no-nodes", 0, 0, G_OPTION_ARG_NONE, &opt_no_nodes, "Forget the node set (and its restriction)", NULL },
	{ "no-restricted", 0, 0, G_OPTION_ARG_NONE, &opt_no_restricted, "The node set is a preference again, not a restriction", NULL },
	{ "no-start-after", 0, 0, G_OPTION_ARG_NONE, &opt_no_start_after, "Start without waiting for another VM", NULL },
	{ NULL },
};

static GOptionEntry history_options[] = {
	{ "pattern", 'p', 0, G_OPTION_ARG_STRING, &opt_pattern, "Only VMs whose name matches GLOB (e.g. '*web*')", "GLOB" },
	{ NULL },
};

static GOptionEntry restore_options[] = {
	{ "version", 0, 0, G_OPTION_ARG_INT, &opt_version, "The version to restore (default: the newest before the current one)", "N" },
	{ "force", 'f', 0, G_OPTION_ARG_NONE, &opt_force, "Overwrite a VM that exists with that name or UUID", NULL },
	{ NULL },
};

static GOptionEntry wait_options[] = {
	{ "wait", 'w', 0, G_OPTION_ARG_NONE, &opt_wait, "Wait until it has stopped", NULL },
	{ NULL },
};

static bool attributes(json_t *body, bool for_set)
{
	if (opt_ha && opt_no_ha) {
		fprintf(stderr, "herd vm: --ha and --no-ha contradict each other.\n");
		return false;
	}
	if ((opt_preferred && opt_no_preferred) || (opt_failback && opt_no_failback)) {
		fprintf(stderr, "herd vm: contradicting options.\n");
		return false;
	}
	if (opt_ha || opt_no_ha)
		json_object_set_new(body, "ha", json_boolean(opt_ha));
	if (opt_preferred)
		json_object_set_new(body, "preferred", json_string(opt_preferred));
	if (opt_no_preferred)
		json_object_set_new(body, "preferred", json_null());
	if (opt_failback || opt_no_failback)
		json_object_set_new(body, "failback", json_boolean(opt_failback));
	if (opt_shutdown_timeout != -1)
		json_object_set_new(body, "shutdown_timeout_s", json_integer(opt_shutdown_timeout));
	if (opt_sticky)
		json_object_set_new(body, "sticky", json_string(opt_sticky));
	if (opt_group && opt_no_group) {
		fprintf(stderr, "herd vm: contradicting options.\n");
		return false;
	}
	if (opt_group)
		json_object_set_new(body, "group", json_string(opt_group));
	if (opt_no_group)
		json_object_set_new(body, "group", json_null());
	if (opt_pool)
		json_object_set_new(body, "pool", *opt_pool ? json_string(opt_pool) : json_null());
	if ((opt_nodes && opt_no_nodes) || (opt_restricted && opt_no_restricted) || (opt_no_nodes && opt_restricted)) {
		fprintf(stderr, "herd vm: contradicting options.\n");
		return false;
	}
	if (opt_nodes)
		json_object_set_new(body, "nodes", json_string(opt_nodes));
	if (opt_no_nodes) {
		json_object_set_new(body, "nodes", json_null());
		json_object_set_new(body, "restricted", json_false());
	}
	if (opt_restricted || opt_no_restricted)
		json_object_set_new(body, "restricted", json_boolean(opt_restricted));
	if (opt_priority)
		json_object_set_new(body, "restart_priority", json_string(opt_priority));
	if (opt_start_after && opt_no_start_after) {
		fprintf(stderr, "herd vm: contradicting options.\n");
		return false;
	}
	if (opt_start_after)
		json_object_set_new(body, "start_after", json_string(opt_start_after));
	if (opt_no_start_after)
		json_object_set_new(body, "start_after", json_null());
	if (opt_start_wait != -1)
		json_object_set_new(body, "start_wait_s", json_integer(opt_start_wait));
	return true;
}

/* A VM's node set as it is written: "n2:2,n3:2,n1:1"; NULL if none. */
static char *cli_vm_nodeset_text(json_t *vm)
{
	json_t *set = json_object_get(vm, "nodes"), *e;
	if (!json_array_size(set))
		return NULL;
	GString *s = g_string_new(NULL);
	size_t i;
	json_array_foreach(set, i, e)
		g_string_append_printf(s, "%s%s:%lld", i ? "," : "", json_string_value(json_object_get(e, "node")),
				       (long long)json_integer_value(json_object_get(e, "priority")));
	return g_string_free(s, FALSE);
}

static int run_list(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) vms = cli_call(ctx, "GET", "/api/v1/vms", NULL, &error);
	if (!vms)
		return cli_report(error);
	if (!opt_all) {
		json_t *running = json_array();
		size_t i;
		json_t *v;
		json_array_foreach(vms, i, v)
			if (strcmp(json_string_value(json_object_get(v, "state")), "shut off") != 0)
				json_array_append(running, v);
		json_decref(vms);
		vms = running;
	}
	if (ctx->json) {
		cli_print_json(vms);
		return CLI_OK;
	}
	cli_table *t = cli_table_new("NAME", "STATE", "NODE", "UPTIME", "HA", "PREFERRED", "MEMORY",
				     "VCPUS", "CONFIG", NULL);
	size_t i;
	json_t *v;
	json_array_foreach(vms, i, v) {
		g_autofree char *mem = g_strdup_printf("%lld MiB", (long long)json_integer_value(json_object_get(v, "memory_mib")));
		g_autofree char *cpus = g_strdup_printf("%lld", (long long)json_integer_value(json_object_get(v, "vcpus")));
		g_autofree char *ver = g_strdup_printf("v%lld", (long long)json_integer_value(json_object_get(v, "version")));
		json_t *up = json_object_get(v, "uptime_s");
		g_autofree char *uptime = up ? cli_format_duration(json_integer_value(up)) : NULL;
		const char *sticky = json_string_value(json_object_get(v, "sticky"));
		const char *ha = !json_is_true(json_object_get(v, "ha")) ? "no" : sticky ? "yes/sticky" : "yes";
		/* The preferred node, or the node set (the preferred node's general case). */
		g_autofree char *set = cli_vm_nodeset_text(v);
		cli_table_add(t, json_string_value(json_object_get(v, "name")),
			      json_string_value(json_object_get(v, "state")),
			      json_string_value(json_object_get(v, "node")), uptime, ha,
			      set ? set : json_string_value(json_object_get(v, "preferred")), mem, cpus, ver);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_define(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *xml = NULL;
	if (!g_file_get_contents(argv[0], &xml, NULL, &error)) {
		fprintf(stderr, "herd: cannot read %s: %s\n", argv[0], error->message);
		return CLI_ERROR;
	}
	g_autoptr(json_t) body = json_pack("{s:s}", "xml", xml);
	if (!json_object_get(body, "xml")) {
		fprintf(stderr, "herd: %s is not UTF-8 text.\n", argv[0]);
		return CLI_ERROR;
	}
	if (!attributes(body, false))
		return CLI_USAGE;
	int rc;
	g_autoptr(json_t) vm = cli_request(ctx, "POST", "/api/v1/vms", body, &rc);
	if (!vm)
		return rc;
	printf("VM %s defined (configuration version %lld).\n",
	       json_string_value(json_object_get(vm, "name")),
	       (long long)json_integer_value(json_object_get(vm, "version")));
	return CLI_OK;
}

static int run_create(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_pack("{s:s}", "name", argv[0]);
	if (!attributes(body, false) || !cli_vm_hardware_body(body, false))
		return CLI_USAGE;
	int rc;
	g_autoptr(json_t) vm = cli_request(ctx, "POST", "/api/v1/vms", body, &rc);
	if (!vm)
		return rc;
	printf("VM %s created (configuration version %lld); 'herd vm start %s' starts it.\n",
	       json_string_value(json_object_get(vm, "name")),
	       (long long)json_integer_value(json_object_get(vm, "version")),
	       json_string_value(json_object_get(vm, "name")));
	return CLI_OK;
}

static int run_set(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_object();
	if (!attributes(body, true) || !cli_vm_hardware_body(body, true))
		return CLI_USAGE;
	if (json_object_size(body) == 0) {
		fprintf(stderr, "herd vm set: nothing to change; see 'herd vm set --help'.\n");
		return CLI_USAGE;
	}
	g_autofree char *path = cli_api_path("vms", argv[0], NULL);
	int rc;
	g_autoptr(json_t) vm = cli_request(ctx, "PUT", path, body, &rc);
	if (!vm)
		return rc;
	printf("VM %s changed (configuration version %lld).\n",
	       json_string_value(json_object_get(vm, "name")),
	       (long long)json_integer_value(json_object_get(vm, "version")));
	const char *state = json_string_value(json_object_get(vm, "state"));
	bool hw = json_object_get(body, "hardware") || json_object_get(body, "memory") ||
		  json_object_get(body, "vcpus");
	if (hw && state && strcmp(state, "shut off") != 0)
		printf("It runs: a CD-ROM change is made now, the others at its next start ('herd vm info %s' shows what is pending).\n",
		       json_string_value(json_object_get(vm, "name")));
	return CLI_OK;
}

static int run_undefine(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("vms", argv[0], NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", path, NULL, &rc);
	if (!r)
		return rc;
	printf("VM %s undefined; 'herd vm restore %s' brings it back.\n",
	       json_string_value(json_object_get(r, "name")), json_string_value(json_object_get(r, "uuid")));
	return CLI_OK;
}

static int run_dumpxml(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("vms", argv[0], "xml");
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "GET", path, NULL, &rc);
	if (!r)
		return rc;
	const char *xml = json_string_value(json_object_get(r, "xml"));
	fputs(xml, stdout);
	if (*xml && xml[strlen(xml) - 1] != '\n')
		fputc('\n', stdout);
	return CLI_OK;
}

/* A one-time ticket for the VM's console, and where its websocket is (as
 * `virsh vncdisplay` says where a display is; the browser, or a noVNC
 * client, opens it). */
static int opt_console_port;
static GOptionEntry console_options[] = {
	{ "port", 0, 0, G_OPTION_ARG_INT, &opt_console_port,
	  "Forward this TCP port of 127.0.0.1 to the console, for a VNC viewer (5901: display :1)", "PORT" },
	{ NULL }
};

static int run_console(cli_ctx *ctx, int argc, char **argv)
{
	if (opt_console_port) {
		if (opt_console_port < 1 || opt_console_port > 65535) {
			fprintf(stderr, "herd: --port must be a TCP port, 1-65535.\n");
			return CLI_USAGE;
		}
		return cli_vm_console_forward(ctx, argv[0], opt_console_port);
	}
	g_autofree char *path = cli_api_path("vms", argv[0], "console");
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", path, NULL, &rc);
	if (!r)
		return rc;
	const char *ws_path = json_string_value(json_object_get(r, "path"));
	printf("VM %s runs on node %s. Its console, for one websocket (subprotocol binary) opened within %d s:\n",
	       json_string_value(json_object_get(r, "vm")), json_string_value(json_object_get(r, "node")),
	       (int)json_integer_value(json_object_get(r, "expires_s")));
	printf("  ticket  %s\n", json_string_value(json_object_get(r, "ticket")));
	if (ctx->client_opts.host)
		printf("  url     wss://%s%s\n", herd_client_target(cli_client(ctx)), ws_path);
	else
		printf("  path    %s (on this node's API, https://THIS-NODE:8001)\n", ws_path);
	return CLI_OK;
}

static int run_info(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *path = cli_api_path("vms", argv[0], NULL);
	g_autoptr(json_t) vm = cli_call(ctx, "GET", path, NULL, &error);
	if (!vm)
		return cli_report(error);
	json_object_del(vm, "xml");
	if (ctx->json) {
		cli_print_json(vm);
		return CLI_OK;
	}
	g_autofree char *when = cli_format_time(json_integer_value(json_object_get(vm, "modified_ms")));
	printf("Name:              %s\n", json_string_value(json_object_get(vm, "name")));
	printf("UUID:              %s\n", json_string_value(json_object_get(vm, "uuid")));
	printf("State:             %s\n", json_string_value(json_object_get(vm, "state")));
	printf("Node:              %s\n", json_string_value(json_object_get(vm, "node")) ?: "-");
	printf("Desired state:     %s\n", json_string_value(json_object_get(vm, "target")));
	if (json_integer_value(json_object_get(vm, "uptime_s")) > 0) {
		g_autofree char *up = cli_format_duration(json_integer_value(json_object_get(vm, "uptime_s")));
		printf("Uptime:            %s\n", up);
	}
	if (json_string_value(json_object_get(vm, "sticky")))
		printf("Sticky to:         %s ('herd vm release' unbinds it)\n",
		       json_string_value(json_object_get(vm, "sticky")));
	if (json_string_value(json_object_get(vm, "group")))
		printf("Anti-affinity:     %s\n", json_string_value(json_object_get(vm, "group")));
	if (json_string_value(json_object_get(vm, "pool")))
		printf("Pool:              %s\n", json_string_value(json_object_get(vm, "pool")));
	if (json_string_value(json_object_get(vm, "return_to")))
		printf("Returns to:        %s (left it for maintenance; back once it is online)\n",
		       json_string_value(json_object_get(vm, "return_to")));
	if (json_string_value(json_object_get(vm, "move_to")))
		printf("Moving to:         %s (%s)\n", json_string_value(json_object_get(vm, "move_to")),
		       json_string_value(json_object_get(vm, "move")));
	g_autofree char *migration = cli_migration_text(json_object_get(vm, "migration"));
	if (migration)
		printf("Migration:         %s\n", migration);
	if (json_string_value(json_object_get(vm, "alert")))
		printf("Waiting:           %s\n", json_string_value(json_object_get(vm, "alert")));
	if (json_string_value(json_object_get(vm, "error")))
		printf("Error:             %s\n", json_string_value(json_object_get(vm, "error")));
	printf("Type:              %s\n", json_string_value(json_object_get(vm, "type")));
	printf("Memory:            %lld MiB\n", (long long)json_integer_value(json_object_get(vm, "memory_mib")));
	printf("vCPUs:             %lld\n", (long long)json_integer_value(json_object_get(vm, "vcpus")));
	printf("HA:                %s\n", json_is_true(json_object_get(vm, "ha")) ? "yes" : "no");
	printf("Preferred node:    %s%s\n", json_string_value(json_object_get(vm, "preferred")) ?: "-",
	       json_is_true(json_object_get(vm, "failback")) ? "" : " (no failback)");
	g_autofree char *set = cli_vm_nodeset_text(vm);
	if (set)
		printf("Node set:          %s%s%s\n", set,
		       json_is_true(json_object_get(vm, "restricted")) ? " (restricted: nowhere else)" : "",
		       json_is_true(json_object_get(vm, "failback")) ? "" : " (no failback)");
	printf("Shutdown timeout:  %lld s\n", (long long)json_integer_value(json_object_get(vm, "shutdown_timeout_s")));
	printf("Restart priority:  %s\n", json_string_value(json_object_get(vm, "restart_priority")) ?: "medium");
	if (json_string_value(json_object_get(vm, "start_after")))
		printf("Starts after:      %s (waits at most %lld s)\n",
		       json_string_value(json_object_get(vm, "start_after_name")) ?:
		       json_string_value(json_object_get(vm, "start_after")),
		       (long long)json_integer_value(json_object_get(vm, "start_wait_s")));
	printf("Configuration:     version %lld of %s\n", (long long)json_integer_value(json_object_get(vm, "version")), when);
	cli_vm_hardware_print(vm);
	return CLI_OK;
}

static int run_history(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = NULL;
	if (argc == 1) {
		if (opt_pattern) {
			fprintf(stderr, "herd vm history: give a VM or --pattern, not both.\n");
			return CLI_USAGE;
		}
		path = cli_api_path("vms", argv[0], "history");
	} else {
		g_autofree char *esc = opt_pattern ? g_uri_escape_string(opt_pattern, NULL, FALSE) : NULL;
		path = g_strdup_printf("/api/v1/history/vms%s%s", esc ? "?pattern=" : "", esc ? esc : "");
	}
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", path, NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("NAME", "UUID", "VERSION", "DATE", "CHANGE", "BY", NULL);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		g_autofree char *ver = g_strdup_printf("%lld", (long long)json_integer_value(json_object_get(e, "version")));
		g_autofree char *when = cli_format_time(json_integer_value(json_object_get(e, "time_ms")));
		g_autofree char *by = g_strdup_printf("%s@%s", json_string_value(json_object_get(e, "user")),
						      json_string_value(json_object_get(e, "origin")));
		cli_table_add(t, json_string_value(json_object_get(e, "name")),
			      json_string_value(json_object_get(e, "uuid")), ver, when,
			      json_string_value(json_object_get(e, "change")), by);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_restore(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_pack("{s:b}", "force", opt_force);
	if (opt_version < 0) {
		fprintf(stderr, "herd vm restore: --version must be positive.\n");
		return CLI_USAGE;
	}
	if (opt_version > 0)
		json_object_set_new(body, "version", json_integer(opt_version));
	g_autofree char *path = cli_api_path("vms", argv[0], "restore");
	int rc;
	g_autoptr(json_t) vm = cli_request(ctx, "POST", path, body, &rc);
	if (!vm)
		return rc;
	printf("VM %s restored (now configuration version %lld).\n",
	       json_string_value(json_object_get(vm, "name")),
	       (long long)json_integer_value(json_object_get(vm, "version")));
	return CLI_OK;
}

/* ------------------------------------------------------------------ */

static void print_vm_line(json_t *vm, const char *verb)
{
	const char *node = json_string_value(json_object_get(vm, "node"));
	printf("VM %s %s%s%s.\n", json_string_value(json_object_get(vm, "name")), verb,
	       node ? " on node " : "", node ? node : "");
}

static int vm_post(cli_ctx *ctx, const char *ref, const char *action, json_t *body, const char *verb)
{
	g_autofree char *path = cli_api_path("vms", ref, action);
	int rc;
	g_autoptr(json_t) vm = cli_request(ctx, "POST", path, body, &rc);
	if (!vm)
		return rc;
	print_vm_line(vm, verb);
	return CLI_OK;
}

/* vm_post() of an action that takes no options. */
static int run_op(cli_ctx *ctx, const char *op, const char *ref, const char *verb)
{
	g_autoptr(json_t) body = json_object();
	return vm_post(ctx, ref, op, body, verb);
}

static int run_shutdown(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_pack("{s:b}", "wait", opt_wait);
	return vm_post(ctx, argv[0], "shutdown", body, opt_wait ? "is shut down" : "is shutting down");
}

static int run_start(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "start", argv[0], "is running"); }
static int run_destroy(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "destroy", argv[0], "is powered off"); }
static int run_reboot(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "reboot", argv[0], "is rebooting"); }
static int run_reset(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "reset", argv[0], "was reset"); }
static int run_suspend(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "suspend", argv[0], "is suspended"); }
static int run_resume(cli_ctx *ctx, int argc, char **argv) { return run_op(ctx, "resume", argv[0], "is running again"); }
static int run_release(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("vms", argv[0], "release");
	g_autoptr(json_t) body = json_object();
	int rc;
	g_autoptr(json_t) vm = cli_request(ctx, "POST", path, body, &rc);
	if (!vm)
		return rc;
	/* Not "… on node N": it is no longer bound there. */
	printf("VM %s is no longer bound to a node.\n", json_string_value(json_object_get(vm, "name")));
	return CLI_OK;
}

const cli_command cli_vm_commands[] = {
	{ "vm list", NULL, "List running VMs (--all: every defined VM)", NULL, list_options, 0, 0,
	  run_list },
	{ "vm define", "FILE.xml", "Define a VM from libvirt domain XML, or change its XML",
	  "The XML is checked by libvirt's parser; a VM with the same UUID gets the new XML as\n"
	  "a new configuration version.",
	  define_options, 1, 1, run_define },
	{ "vm create", "NAME", "Make a VM from its hardware, without writing XML",
	  "herd makes the libvirt domain XML (docs/vm-hardware.md): for example\n"
	  "  herd vm create web1 --memory 2G --vcpus 2 --disk web1-root --cdrom debian.iso \\\n"
	  "      --network lan --boot cdrom,disk --ha",
	  create_options, 1, 1, run_create },
	{ "vm set", "NAME|UUID", "Change a VM's hardware or herd's attributes",
	  "Hardware changes are a new configuration version; on a running VM a CD-ROM change\n"
	  "(--cdrom, --eject) is made live, the others at its next start ('herd vm info' shows them).\n"
	  "--disk and --network replace the whole list; --add-… and --remove-… change it.\n"
	  "A VM defined from XML keeps its hardware in its XML: change it with 'herd vm define'.",
	  set_options, 1, 1, run_set },
	{ "vm undefine", "NAME|UUID", "Remove a VM's definition (kept in its history)", NULL, NULL,
	  1, 1, run_undefine },
	{ "vm dumpxml", "NAME|UUID", "Print a VM's domain XML", NULL, NULL, 1, 1, run_dumpxml },
	{ "vm info", "NAME|UUID", "Show a VM's attributes", NULL, NULL, 1, 1, run_info },
	{ "vm console", "NAME|UUID", "A one-time ticket for a running VM's VNC console (websocket)",
	  "The ticket opens the console's websocket once, within 30 s, on the node that gave it "
	  "(any node: it reaches the VM wherever it runs).  The web UI opens it by itself; see "
	  "docs/console.md.  With --port, a local port for a VNC viewer instead: each viewer that "
	  "connects gets a console of its own.", console_options, 1, 1, run_console },
	{ "vm history", "[NAME|UUID]", "List stored configuration versions",
	  "Without a VM, lists every VM's versions, optionally only names matching --pattern.",
	  history_options, 0, 1, run_history },
	{ "vm restore", "NAME|UUID", "Restore a stored configuration version",
	  "Refuses to overwrite an existing VM of that name or UUID unless --force is given.",
	  restore_options, 1, 1, run_restore },
	{ "vm start", "NAME|UUID", "Start a VM where the cluster places it; waits until it runs", NULL, NULL, 1, 1, run_start },
	{ "vm shutdown", "NAME|UUID", "Shut a VM down (ACPI; forced off after its shutdown timeout)", NULL, wait_options, 1, 1, run_shutdown },
	{ "vm destroy", "NAME|UUID", "Power a VM off at once", NULL, NULL, 1, 1, run_destroy },
	{ "vm reboot", "NAME|UUID", "Reboot a VM (ACPI)", NULL, NULL, 1, 1, run_reboot },
	{ "vm reset", "NAME|UUID", "Reset a VM (hard)", NULL, NULL, 1, 1, run_reset },
	{ "vm suspend", "NAME|UUID", "Pause a VM", NULL, NULL, 1, 1, run_suspend },
	{ "vm resume", "NAME|UUID", "Continue a paused VM", NULL, NULL, 1, 1, run_resume },
	{ "vm release", "NAME|UUID", "Unbind a sticky VM from its node", NULL, NULL, 1, 1, run_release },
	{ NULL },
};
