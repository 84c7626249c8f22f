/* herd storage add|list|show|remove. */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"
#include "common/size.h"

#include <stdio.h>
#include <string.h>

static char *opt_type, *opt_path, *opt_portal, *opt_target;
static gboolean opt_share;

static GOptionEntry storage_add_options[] = {
	{ "type", 't', 0, G_OPTION_ARG_STRING, &opt_type, "dir (a directory every node mounts) or iscsi", "TYPE" },
	{ "path", 'p', 0, G_OPTION_ARG_STRING, &opt_path, "dir: the directory, the same path on every node", "PATH" },
	{ "cluster-share", 0, 0, G_OPTION_ARG_NONE, &opt_share, "dir: the cluster share (images/, isos/, templates/, snapshots/)", NULL },
	{ "portal", 0, 0, G_OPTION_ARG_STRING, &opt_portal, "iscsi: the target's portal", "HOST[:PORT]" },
	{ "target", 0, 0, G_OPTION_ARG_STRING, &opt_target, "iscsi: the target's IQN", "IQN" },
	{ NULL },
};

static int run_storage_add(cli_ctx *ctx, int argc, char **argv)
{
	if (!opt_type) {
		fprintf(stderr, "herd storage add: give --type dir --path PATH, or --type iscsi --portal HOST --target IQN.\n");
		return CLI_USAGE;
	}
	/* Whatever was given goes to the API, which says what is wrong with it. */
	g_autoptr(json_t) body = json_pack("{s:s,s:s}", "name", argv[0], "type", opt_type);
	if (opt_path)
		json_object_set_new(body, "path", json_string(opt_path));
	if (opt_portal)
		json_object_set_new(body, "portal", json_string(opt_portal));
	if (opt_target)
		json_object_set_new(body, "target", json_string(opt_target));
	if (opt_share)
		json_object_set_new(body, "cluster_share", json_true());
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/storage", body, &rc);
	if (!r)
		return rc;
	printf("Storage %s added; 'herd storage list' shows which nodes reach it.\n", argv[0]);
	return CLI_OK;
}

static char *where_text(json_t *s)
{
	const char *path = json_string_value(json_object_get(s, "path"));
	if (path)
		return g_strdup(path);
	return g_strdup_printf("%s %s", json_string_value(json_object_get(s, "portal")),
			       json_string_value(json_object_get(s, "target")));
}

static char *size_text(json_t *r, const char *key)
{
	json_t *v = json_object_get(r, key);
	return json_is_integer(v) ? herd_size_format((uint64_t)json_integer_value(v)) : NULL;
}

/* One row per node of storage @s: reachable (with its usage) or why not. */
static void add_rows(cli_table *t, json_t *s)
{
	g_autofree char *where = where_text(s);
	const char *type = json_string_value(json_object_get(s, "type"));
	g_autofree char *kind = json_is_true(json_object_get(s, "cluster_share")) ?
		g_strdup_printf("%s (share)", type) : g_strdup(type);
	const char *node;
	json_t *r;
	bool first = true;
	json_object_foreach(json_object_get(s, "nodes"), node, r) {
		bool ok = json_is_true(json_object_get(r, "ok"));
		g_autofree char *state = ok ? g_strdup("reachable") :
			g_strdup_printf("unreachable: %s", json_string_value(json_object_get(r, "problem")));
		g_autofree char *size = size_text(r, "size"), *free_text = size_text(r, "free");
		g_autofree char *used = NULL;
		json_t *sz = json_object_get(r, "size"), *fr = json_object_get(r, "free");
		if (json_is_integer(sz) && json_is_integer(fr) && json_integer_value(sz) >= json_integer_value(fr))
			used = herd_size_format((uint64_t)(json_integer_value(sz) - json_integer_value(fr)));
		cli_table_add(t, first ? json_string_value(json_object_get(s, "name")) : "",
			      first ? kind : "", first ? where : "", node, state, size, used, free_text);
		first = false;
	}
	if (first)
		cli_table_add(t, json_string_value(json_object_get(s, "name")), kind, where, NULL, NULL, NULL,
			      NULL, NULL);
}

static int run_storage_list(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", "/api/v1/storage", NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("NAME", "TYPE", "WHERE", "NODE", "REACH", "SIZE", "USED", "FREE", NULL);
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s)
		add_rows(t, s);
	cli_table_print(t);
	return CLI_OK;
}

static int run_storage_show(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("storage", argv[0], NULL);
	int rc;
	g_autoptr(json_t) s = cli_request(ctx, "GET", path, NULL, &rc);
	if (!s)
		return rc;
	g_autofree char *where = where_text(s);
	printf("Name:          %s\n", json_string_value(json_object_get(s, "name")));
	printf("UUID:          %s\n", json_string_value(json_object_get(s, "uuid")));
	printf("Type:          %s\n", json_string_value(json_object_get(s, "type")));
	printf("Where:         %s\n", where);
	printf("Cluster share: %s\n", json_is_true(json_object_get(s, "cluster_share")) ? "yes" : "no");
	cli_table *t = cli_table_new("NAME", "TYPE", "WHERE", "NODE", "REACH", "SIZE", "USED", "FREE", NULL);
	add_rows(t, s);
	printf("\n");
	cli_table_print(t);
	return CLI_OK;
}

static int run_storage_remove(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("storage", argv[0], NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", path, NULL, &rc);
	if (!r)
		return rc;
	printf("Storage %s removed (its files and marker stay where they are).\n", argv[0]);
	return CLI_OK;
}

const cli_command cli_storage_commands[] = {
	{ "storage add", "NAME", "Add a storage: a directory every node mounts, or an iSCSI target",
	  "A dir storage's directory must exist on the node that runs the command; herd marks it as\n"
	  "this cluster's storage (a file .herd-storage in it), and every node then checks that it\n"
	  "sees the same directory.  --cluster-share makes images/, isos/, templates/ and snapshots/.",
	  storage_add_options, 1, 1, run_storage_add },
	{ "storage list", NULL, "List the storages and whether each node reaches them", NULL, NULL, 0, 0, run_storage_list },
	{ "storage show", "NAME", "Show a storage and what every node finds of it", NULL, NULL, 1, 1, run_storage_show },
	{ "storage remove", "NAME", "Remove a storage (refused while disks or ISOs are on it)", NULL, NULL, 1, 1, run_storage_remove },
	{ NULL },
};
