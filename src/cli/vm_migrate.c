/*
 * herd vm migrate NAME [NODE] [--wait]: live migration, and how a
 * migration under way is shown (also by vm info and the node modes).
 */
#include "cli/cli.h"
#include "common/json.h"

#include <stdio.h>
#include <string.h>

static gboolean opt_wait;

static GOptionEntry migrate_options[] = {
	{ "wait", 'w', 0, G_OPTION_ARG_NONE, &opt_wait,
	  "Wait until it runs on the destination, showing its progress every second", NULL },
	{ NULL },
};

static double mib(json_t *o, const char *key)
{
	return (double)json_integer_value(json_object_get(o, key)) / (1024.0 * 1024.0);
}

char *cli_migration_text(json_t *m)
{
	if (!json_is_object(m))
		return NULL;
	GString *s = g_string_new(NULL);
	g_string_append_printf(s, "%s -> %s, %.1f s", json_string_value(json_object_get(m, "from")) ?: "?",
			       json_string_value(json_object_get(m, "to")) ?: "?",
			       (double)json_integer_value(json_object_get(m, "elapsed_ms")) / 1000.0);
	json_int_t total = json_integer_value(json_object_get(m, "memory_total"));
	if (total > 0) {
		g_string_append_printf(s, ": %.0f MiB sent, %.0f of %.0f MiB left (pass %lld)",
				       mib(m, "memory_processed"), mib(m, "memory_remaining"),
				       mib(m, "memory_total"),
				       (long long)json_integer_value(json_object_get(m, "iteration")));
		g_string_append_printf(s, ", %.1f MiB/s", mib(m, "bandwidth"));
		json_int_t dirty = json_integer_value(json_object_get(m, "dirty_rate")) *
				   json_integer_value(json_object_get(m, "page_size"));
		if (dirty > 0)
			g_string_append_printf(s, ", guest dirties %.1f MiB/s", (double)dirty / (1024.0 * 1024.0));
		json_int_t downtime = json_integer_value(json_object_get(m, "expected_downtime_ms"));
		if (downtime > 0)
			g_string_append_printf(s, ", expected downtime %lld ms", (long long)downtime);
		json_int_t throttle = json_integer_value(json_object_get(m, "autoconverge_throttle"));
		if (throttle > 0)
			g_string_append_printf(s, ", guest CPU throttled %lld%%", (long long)throttle);
	} else {
		g_string_append(s, ": starting");
	}
	json_int_t timeout = json_integer_value(json_object_get(m, "timeout_s"));
	if (timeout > 0)
		g_string_append_printf(s, " (cancelled if not done within %lld s)", (long long)timeout);
	return g_string_free(s, FALSE);
}

/* How often --wait looks, and how often it prints the progress.  It
 * returns within POLL_US of herd assigning the VM to its destination: at
 * 200 ms that was 100 ms on average after plain virsh would have returned
 * (bench/migrate); a GET of one VM over the local socket costs herdd
 * about 0.2 ms of CPU, so 20 a second are cheap. */
#define POLL_US (G_USEC_PER_SEC / 20)
#define PRINT_US G_USEC_PER_SEC

/* Poll the VM until its live move to @to has ended; print its progress. */
static int wait_arrived(cli_ctx *ctx, const char *path, const char *name, const char *to,
			gint64 began)
{
	gint64 printed = 0;
	for (;;) {
		g_usleep(POLL_US);
		g_autoptr(GError) error = NULL;
		g_autoptr(json_t) vm = cli_call(ctx, "GET", path, NULL, &error);
		if (!vm)
			return cli_report(error);
		const char *move_to = json_string_value(json_object_get(vm, "move_to"));
		const char *assigned = json_string_value(json_object_get(vm, "assigned"));
		const char *node = json_string_value(json_object_get(vm, "node"));
		const char *state = json_string_value(json_object_get(vm, "state"));
		if (move_to && strcmp(move_to, to) == 0) {
			g_autofree char *line = cli_migration_text(json_object_get(vm, "migration"));
			if (line && g_get_monotonic_time() - printed >= PRINT_US) {
				printf("  %s\n", line);
				fflush(stdout);
				printed = g_get_monotonic_time();
			}
			continue;
		}
		if (g_strcmp0(assigned, to) == 0 && g_strcmp0(node, to) == 0 &&
		    (g_strcmp0(state, "running") == 0 || g_strcmp0(state, "paused") == 0)) {
			printf("VM %s runs on node %s now (migrated live in %.1f s).\n", name, to,
			       (double)(g_get_monotonic_time() - began) / G_USEC_PER_SEC);
			return CLI_OK;
		}
		if (g_strcmp0(assigned, to) == 0)
			continue; /* assigned there; its state follows */
		const char *why = json_string_value(json_object_get(vm, "error"));
		fprintf(stderr, "herd: VM %s was not migrated to node %s%s%s; it runs on node %s.\n", name, to,
			why ? ": " : ".", why ? why : "", node ? node : "?");
		return CLI_ERROR;
	}
}

static int run_migrate(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_object();
	if (argc > 1)
		json_object_set_new(body, "node", json_string(argv[1]));
	g_autofree char *path = cli_api_path("vms", argv[0], "migrate");
	gint64 began = g_get_monotonic_time();
	int rc;
	g_autoptr(json_t) vm = cli_request(ctx, "POST", path, body, &rc);
	if (!vm)
		return rc;
	const char *name = json_string_value(json_object_get(vm, "name"));
	const char *from = json_string_value(json_object_get(vm, "assigned"));
	const char *to = json_string_value(json_object_get(vm, "move_to"));
	if (!to) {
		/* Over already: it arrived before the answer was written. */
		printf("VM %s runs on node %s.\n", name, from ? from : "?");
		return CLI_OK;
	}
	printf("VM %s is migrating live from node %s to node %s.\n", name, from ? from : "?", to);
	const char *job = json_string_value(json_object_get(json_object_get(vm, "job"), "name"));
	if (job)
		printf("Job %s ('herd job show %s' shows its progress and log; 'herd job cancel %s' cancels it).\n",
		       job, job, job);
	if (!opt_wait) {
		printf("'herd vm info %s' shows how far it is.\n", name);
		return CLI_OK;
	}
	fflush(stdout);
	g_autofree char *vm_path = cli_api_path("vms", json_string_value(json_object_get(vm, "uuid")), NULL);
	g_autofree char *name_copy = g_strdup(name);
	g_autofree char *to_copy = g_strdup(to);
	return wait_arrived(ctx, vm_path, name_copy, to_copy, began);
}

const cli_command cli_vm_migrate_commands[] = {
	{ "vm migrate", "NAME|UUID [NODE]", "Migrate a running VM live to NODE (or where herd places it)",
	  "The VM keeps running while its memory is copied; it pauses only for the last pass.\n"
	  "The migration is cancelled after the cluster's migration timeout (migration_timeout_min_s\n"
	  "plus migration_timeout_per_gib_s per GiB of its RAM) and the VM then runs on where it was.\n"
	  "Without --wait, 'herd vm info' shows its progress.  Interrupting --wait stops the waiting,\n"
	  "not the migration.",
	  migrate_options, 1, 2, run_migrate },
	{ NULL },
};
