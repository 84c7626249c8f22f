/*
 * herd group: groups of users and the roles they give (add, list, show,
 * set, remove).
 */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>

static char *opt_roles, *opt_pools, *opt_members, *opt_add_member, *opt_remove_member;
static gboolean opt_no_pools;

static GOptionEntry add_options[] = {
	{ "roles", 'r', 0, G_OPTION_ARG_STRING, &opt_roles, "Roles the members get: admin, operator, auditor, monitor", "ROLE,…" },
	{ "pools", 'p', 0, G_OPTION_ARG_STRING, &opt_pools, "Limit the operator role to the VMs of these pools (herd vm set --pool)", "POOL,…" },
	{ "members", 'm', 0, G_OPTION_ARG_STRING, &opt_members, "Its members", "USER,…" },
	{ NULL },
};

static GOptionEntry set_options[] = {
	{ "roles", 'r', 0, G_OPTION_ARG_STRING, &opt_roles, "Roles the members get (replacing them)", "ROLE,…" },
	{ "pools", 'p', 0, G_OPTION_ARG_STRING, &opt_pools, "VM pools the operator role is limited to (replacing them)", "POOL,…" },
	{ "no-pools", 0, 0, G_OPTION_ARG_NONE, &opt_no_pools, "The operator role applies to every VM", NULL },
	{ "members", 'm', 0, G_OPTION_ARG_STRING, &opt_members, "Its members (replacing them)", "USER,…" },
	{ "add-member", 0, 0, G_OPTION_ARG_STRING, &opt_add_member, "Add members", "USER,…" },
	{ "remove-member", 0, 0, G_OPTION_ARG_STRING, &opt_remove_member, "Take members out", "USER,…" },
	{ NULL },
};

/* "a,b" as a JSON list (an empty string: an empty list). */
static json_t *list_of(const char *text)
{
	json_t *list = json_array();
	g_auto(GStrv) parts = g_strsplit(text, ",", -1);
	for (char **p = parts; *p; p++) {
		g_strstrip(*p);
		if (**p)
			json_array_append_new(list, json_string(*p));
	}
	return list;
}

static int run_add(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_pack("{s:s}", "name", argv[0]);
	if (opt_roles)
		json_object_set_new(body, "roles", list_of(opt_roles));
	if (opt_pools)
		json_object_set_new(body, "pools", list_of(opt_pools));
	if (opt_members)
		json_object_set_new(body, "members", list_of(opt_members));
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/groups", body, &rc);
	if (!r)
		return rc;
	g_autofree char *roles = cli_list_text(json_object_get(r, "roles"));
	printf("Group %s added (roles %s).\n", argv[0], roles);
	return CLI_OK;
}

static int run_list(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", "/api/v1/groups", NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("NAME", "ROLES", "POOLS", "MEMBERS", NULL);
	size_t i;
	json_t *g;
	json_array_foreach(list, i, g) {
		g_autofree char *roles = cli_list_text(json_object_get(g, "roles"));
		g_autofree char *pools = cli_list_text(json_object_get(g, "pools"));
		g_autofree char *members = cli_list_text(json_object_get(g, "members"));
		cli_table_add(t, json_string_value(json_object_get(g, "name")), roles, pools, members);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_show(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("groups", argv[0], NULL);
	int rc;
	g_autoptr(json_t) g = cli_request(ctx, "GET", path, NULL, &rc);
	if (!g)
		return rc;
	g_autofree char *roles = cli_list_text(json_object_get(g, "roles"));
	g_autofree char *pools = cli_list_text(json_object_get(g, "pools"));
	g_autofree char *members = cli_list_text(json_object_get(g, "members"));
	printf("name     %s\nuuid     %s\nroles    %s\npools    %s\nmembers  %s\n",
	       json_string_value(json_object_get(g, "name")), json_string_value(json_object_get(g, "uuid")),
	       roles, pools, members);
	return CLI_OK;
}

static int run_set(cli_ctx *ctx, int argc, char **argv)
{
	if (opt_pools && opt_no_pools) {
		fprintf(stderr, "herd group set: contradicting options.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) body = json_object();
	if (opt_roles)
		json_object_set_new(body, "roles", list_of(opt_roles));
	if (opt_pools || opt_no_pools)
		json_object_set_new(body, "pools", list_of(opt_pools ? opt_pools : ""));
	if (opt_members)
		json_object_set_new(body, "members", list_of(opt_members));
	if (opt_add_member)
		json_object_set_new(body, "add_members", list_of(opt_add_member));
	if (opt_remove_member)
		json_object_set_new(body, "remove_members", list_of(opt_remove_member));
	if (!json_object_size(body)) {
		fprintf(stderr, "herd group set: nothing to change: give --roles, --pools, --no-pools, "
				"--members, --add-member or --remove-member.\n");
		return CLI_USAGE;
	}
	g_autofree char *path = cli_api_path("groups", argv[0], NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "PUT", path, body, &rc);
	if (!r)
		return rc;
	g_autofree char *members = cli_list_text(json_object_get(r, "members"));
	printf("Group %s changed (members %s).\n", argv[0], members);
	return CLI_OK;
}

static int run_remove(cli_ctx *ctx, int argc, char **argv)
{
	return cli_remove(ctx, "groups", "Group", argv[0], "removed");
}

const cli_command cli_group_commands[] = {
	{ "group add", "NAME", "Add a group of users and the roles it gives them",
	  "Members get the group's roles besides their own.  With --pools the operator role\n"
	  "covers only the VMs of those pools (herd vm set VM --pool POOL).  The members of a\n"
	  "group with the monitor role get the notification mails (docs/alerts.md).",
	  add_options, 1, 1, run_add },
	{ "group list", NULL, "List the groups", NULL, NULL, 0, 0, run_list },
	{ "group show", "NAME|UUID", "Show a group", NULL, NULL, 1, 1, run_show },
	{ "group set", "NAME|UUID", "Change a group's roles, pools or members", NULL, set_options, 1, 1, run_set },
	{ "group remove", "NAME|UUID", "Remove a group (its members stay users)", NULL, NULL, 1, 1, run_remove },
	{ NULL },
};
