/*
 * herd job: the long operations of the cluster (live migrations,
 * evacuations, disk creates and resizes, ISO uploads) with
 * their owner, node, state, progress and log (list, show, cancel;
 * docs/jobs.md).  Every node shows the same jobs.
 */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>

static gboolean opt_all;
static gboolean opt_wait;

static GOptionEntry list_options[] = {
	{ "all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, "Also the jobs that have ended", NULL },
	{ NULL },
};

static GOptionEntry cancel_options[] = {
	{ "wait", 'w', 0, G_OPTION_ARG_NONE, &opt_wait, "Wait until the job has ended", NULL },
	{ NULL },
};

static const char *str(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* "migrate web1 -> n2" */
static char *what_text(json_t *j)
{
	const char *to = str(j, "to");
	return g_strdup_printf("%s %s%s%s", str(j, "kind"), str(j, "target"), to ? " -> " : "", to ? to : "");
}

void cli_print_job_line(json_t *answer)
{
	const char *job = str(json_object_get(answer, "job"), "name");
	if (job)
		printf("Job %s ('herd job show %s' shows its log).\n", job, job);
}

static int run_list(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", opt_all ? "/api/v1/jobs?all=true" : "/api/v1/jobs", NULL,
					     &rc);
	if (!list)
		return rc;
	if (!json_array_size(list)) {
		printf(opt_all ? "No jobs recorded.\n" : "No job runs now ('herd job list --all' shows the ended ones).\n");
		return CLI_OK;
	}
	cli_table *t = cli_table_new("ID", "JOB", "OWNER", "NODE", "STARTED", "STATE", "LAST", NULL);
	size_t i;
	json_t *j;
	json_array_foreach(list, i, j) {
		g_autofree char *started = cli_format_time(json_integer_value(json_object_get(j, "created_ms")));
		g_autofree char *what = what_text(j);
		g_autofree char *state = strcmp(str(j, "state"), "running") == 0
						 ? g_strdup_printf("running %lld%%",
								   (long long)json_integer_value(json_object_get(j, "progress")))
						 : g_strdup(str(j, "state"));
		cli_table_add(t, str(j, "name"), what, str(j, "owner"), str(j, "node"), started, state,
			      str(j, "last") ? str(j, "last") : "");
	}
	cli_table_print(t);
	return CLI_OK;
}

static void print_log_from(json_t *job, size_t from)
{
	size_t i;
	json_t *line;
	json_array_foreach(json_object_get(job, "log"), i, line) {
		if (i < from)
			continue;
		g_autofree char *when = cli_format_time(json_integer_value(json_object_get(line, "ms")));
		printf("  %s  %s\n", when, str(line, "text"));
	}
}

static int run_show(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("jobs", argv[0], NULL);
	int rc;
	g_autoptr(json_t) j = cli_request(ctx, "GET", path, NULL, &rc);
	if (!j)
		return rc;
	g_autofree char *what = what_text(j);
	g_autofree char *started = cli_format_time(json_integer_value(json_object_get(j, "created_ms")));
	printf("Job:       %s (%s)\n", str(j, "name"), str(j, "uuid"));
	printf("What:      %s\n", what);
	printf("Owner:     %s\n", str(j, "owner"));
	printf("Node:      %s\n", str(j, "node"));
	printf("Started:   %s\n", started);
	printf("State:     %s, %lld %%\n", str(j, "state"),
	       (long long)json_integer_value(json_object_get(j, "progress")));
	json_t *finished = json_object_get(j, "finished_ms");
	if (json_is_integer(finished)) {
		g_autofree char *when = cli_format_time(json_integer_value(finished));
		printf("Ended:     %s\n", when);
	}
	if (str(j, "error"))
		printf("Error:     %s\n", str(j, "error"));
	if (str(j, "cancel_by") && strcmp(str(j, "state"), "running") == 0)
		printf("Cancel:    asked by %s\n", str(j, "cancel_by"));
	printf("Log:\n");
	print_log_from(j, 0);
	return CLI_OK;
}

/* Follow job @path until it has ended, printing its new log lines; its
 * end state as the exit code (done: CLI_OK). */
static int follow(cli_ctx *ctx, const char *path)
{
	size_t shown = SIZE_MAX;
	for (;;) {
		g_autoptr(GError) error = NULL;
		g_autoptr(json_t) j = cli_call(ctx, "GET", path, NULL, &error);
		if (!j)
			return cli_report(error);
		size_t n = json_array_size(json_object_get(j, "log"));
		if (shown == SIZE_MAX)
			shown = n;
		/* Lines dropped at the front (the log is bounded) shift it. */
		print_log_from(j, MIN(shown, n));
		fflush(stdout);
		shown = n;
		if (strcmp(str(j, "state"), "running") != 0) {
			printf("Job %s is %s.\n", str(j, "name"), str(j, "state"));
			return strcmp(str(j, "state"), "done") == 0 ? CLI_OK : CLI_ERROR;
		}
		g_usleep(G_USEC_PER_SEC / 2);
	}
}

static int run_cancel(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("jobs", argv[0], "cancel");
	int rc;
	g_autoptr(json_t) j = cli_request(ctx, "POST", path, NULL, &rc);
	if (!j || ctx->json)
		return rc;
	printf("Job %s is being cancelled (its node aborts it).\n", str(j, "name"));
	if (!opt_wait) {
		printf("'herd job show %s' shows when it has ended.\n", str(j, "name"));
		return CLI_OK;
	}
	g_autofree char *job_path = cli_api_path("jobs", str(j, "uuid"), NULL);
	int end = follow(ctx, job_path);
	return end == CLI_ERROR ? CLI_OK : end; /* cancelled is what was asked */
}

const cli_command cli_job_commands[] = {
	{ "job list", NULL, "List the jobs that run now (--all: also those that have ended)",
	  "A job is a long operation (a live migration, an evacuation, a disk's create or resize,\n"
	  "an ISO upload) with its owner, the node that runs it,\n"
	  "its state (running, done, failed, cancelled), progress and log.  Ended jobs are kept\n"
	  "for a week, the newest 200 of them.",
	  list_options, 0, 0, run_list },
	{ "job show", "ID|UUID", "Show a job with its log", NULL, NULL, 1, 1, run_show },
	{ "job cancel", "ID|UUID", "Cancel a running job (its owner or an admin)",
	  "A live migration is aborted and the VM runs on where it was.  An evacuation stops:\n"
	  "the node goes back online and the VMs that have not left stay.  An ISO upload stops\n"
	  "and keeps nothing.  A disk's create or resize runs to its end.",
	  cancel_options, 1, 1, run_cancel },
	{ NULL },
};
