/* herd storage add (dir storage; the smallest version, for disks and ISOs). */
#include "cli/cli.h"

#include "common/json.h"

#include <stdio.h>

static char *opt_type, *opt_path;
static gboolean opt_share;

static GOptionEntry storage_add_options[] = {
	{ "type", 't', 0, G_OPTION_ARG_STRING, &opt_type, "dir (a directory every node mounts)", "TYPE" },
	{ "path", 0, 0, G_OPTION_ARG_STRING, &opt_path, "The directory, the same on every node", "PATH" },
	{ "cluster-share", 0, 0, G_OPTION_ARG_NONE, &opt_share, "The cluster share: images/, isos/, templates/, snapshots/", NULL },
	{ NULL },
};

static int run_storage_add(cli_ctx *ctx, int argc, char **argv)
{
	if (!opt_path) {
		fprintf(stderr, "herd storage add: give --path PATH.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) body = json_pack("{s:s,s:s,s:s,s:b}", "name", argv[0], "type",
					   opt_type ? opt_type : "dir", "path", opt_path, "cluster_share",
					   opt_share);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/storage", body, &rc);
	if (!r)
		return rc;
	printf("Storage %s added%s.\n", argv[0], opt_share ? " as the cluster share" : "");
	return CLI_OK;
}

const cli_command cli_storage_commands[] = {
	{ "storage add", "NAME", "Add a storage (a directory that every node mounts)", NULL, storage_add_options, 1, 1, run_storage_add },
	{ NULL },
};
