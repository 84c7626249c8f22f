/*
 * The herd CLI: a table of commands ("status", "vm list", …), each with its
 * own options, usage line and help.  main.c parses the global options,
 * finds the command by its words and runs it; the same table answers
 * --help and the bash completion.
 */
#pragma once

#include "common/client.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes. */
enum { CLI_OK = 0, CLI_ERROR = 1, CLI_USAGE = 2 };

typedef struct cli_ctx {
	herd_client_options client_opts;
	bool json;               /* --json: print the API's JSON */
	const char *password_file; /* --password-file, taken as a global option
				    * (cluster create/join read theirs here) */
	herd_client *client;     /* made on first use */
} cli_ctx;

typedef struct cli_command {
	const char *words;        /* "vm list" */
	const char *args;         /* positional arguments for the usage line */
	const char *summary;      /* one line for the command list */
	const char *description;  /* more text for --help, or NULL */
	GOptionEntry *options;    /* command options (NULL-terminated), or NULL */
	unsigned min_args, max_args;
	int (*run)(cli_ctx *ctx, int argc, char **argv);
} cli_command;

/* The client for this invocation (connects lazily). */
herd_client *cli_client(cli_ctx *ctx);

/* Call the API: its answer, or NULL with @error set (nothing printed). */
json_t *cli_call(cli_ctx *ctx, const char *method, const char *path, json_t *body,
		 GError **error);

/*
 * The call of a command that shows the answer: the answer, for the command
 * to print in its own words, with *@rc CLI_OK; or NULL once it is printed,
 * with *@rc the exit code: the error as cli_report() prints it, or under
 * --json the answer as cli_print_json() does (CLI_OK).
 */
json_t *cli_request(cli_ctx *ctx, const char *method, const char *path, json_t *body, int *rc);

/* "/api/v1/COLLECTION/REF[/ACTION]" with REF percent-encoded, so that a name
 * or UUID stays one path segment whatever it holds. */
char *cli_api_path(const char *collection, const char *ref, const char *action);

/* The KEY of @arg, "KEY=VALUE", split at its first '=' (a copy), with @value
 * pointing into @arg (it may be ""); NULL without '=' or with an empty KEY. */
char *cli_key_value(const char *arg, const char **value);

/* DELETE /api/v1/@collection/@name of an object with a file (a disk, an
 * ISO: @label), saying whether its file went too; the exit code. */
int cli_delete_with_file(cli_ctx *ctx, const char *collection, const char *label, const char *name);

/* DELETE /api/v1/@collection/@name and print "@label @name @done."; the
 * exit code. */
int cli_remove(cli_ctx *ctx, const char *collection, const char *label, const char *name,
	       const char *done);

/* A JSON list of strings as "a,b", or "-" if it is empty (g_free). */
char *cli_list_text(json_t *list);

/* Print @error as "herd: message" and return the exit code for it. */
int cli_report(const GError *error);

/* Print @root as pretty JSON on stdout. */
void cli_print_json(json_t *root);
/* @ms (Unix time in milliseconds) as local "YYYY-MM-DD HH:MM:SS". */
char *cli_format_time(int64_t ms);

/* Format seconds as "3d 4h", "5m 2s"… */
char *cli_format_duration(gint64 seconds);

/* The line that names the job an answer carries ("job"), as it ended:
 * "Job 3f2a09c1 ('herd job show 3f2a09c1' shows its log)."; nothing if
 * it carries none. */
void cli_print_job_line(json_t *answer);

/* A live migration's progress as the API shows it (a VM's "migration"),
 * as one line of text (g_free); NULL if @m is not one. */
char *cli_migration_text(json_t *m);

/* Print the table of nodes that 'node list' and 'cluster status' show (node.c). */
void cli_print_nodes(json_t *nodes);

/* The commands of one resource each, in the file named after it,
 * NULL-terminated by a zeroed entry. */
extern const cli_command cli_status_commands[];       /* status.c: status, version */
extern const cli_command cli_cluster_commands[];      /* cluster.c */
extern const cli_command cli_cluster_qdevice_commands[]; /* cluster_qdevice.c */
extern const cli_command cli_node_commands[];         /* node.c */
extern const cli_command cli_vm_commands[];           /* vm.c */
extern const cli_command cli_network_commands[];      /* network.c */
extern const cli_command cli_alert_commands[];        /* alert.c */
extern const cli_command cli_job_commands[];          /* job.c */
extern const cli_command cli_rule_commands[];         /* rule.c */
extern const cli_command cli_notify_commands[];       /* notify.c */
extern const cli_command cli_check_commands[];        /* check.c */
extern const cli_command cli_vm_migrate_commands[];   /* vm_migrate.c */
extern const cli_command cli_fence_device_commands[];
extern const cli_command cli_storage_commands[];      /* storage.c */
extern const cli_command cli_disk_commands[];         /* disk.c */
extern const cli_command cli_iso_commands[];          /* iso.c */
extern const cli_command cli_simulate_commands[]; /* fence_device.c */
extern const cli_command cli_user_commands[];         /* user.c */
extern const cli_command cli_group_commands[];        /* group.c */
extern const cli_command cli_session_commands[];      /* session.c: login, logout, whoami */
extern const cli_command cli_audit_commands[];        /* audit.c */
