/*
 * herd user: the cluster's users (add, list, show, set, passwd, remove).
 * Root on a node's local socket may do all of it without a password: that
 * is how a lost admin password is reset (herd user passwd admin).
 */
#include "cli/cli.h"
#include "cli/prompt.h"
#include "cli/table.h"

#include "common/json.h"

#include <stdio.h>
#include <string.h>

static char *opt_role, *opt_email, *opt_new_password_file;
static gboolean opt_no_role, opt_no_email;

static GOptionEntry add_options[] = {
	{ "role", 'r', 0, G_OPTION_ARG_STRING, &opt_role, "The user's own role: admin, operator, auditor or monitor (default none: its groups' roles only)", "ROLE" },
	{ "email", 'e', 0, G_OPTION_ARG_STRING, &opt_email, "Mail address (notifications go to monitors', else admins' addresses)", "ADDRESS" },
	{ "new-password-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_new_password_file, "Read the user's password from FILE instead of asking", "FILE" },
	{ NULL },
};

static GOptionEntry set_options[] = {
	{ "role", 'r', 0, G_OPTION_ARG_STRING, &opt_role, "The user's own role: admin, operator, auditor or monitor", "ROLE" },
	{ "no-role", 0, 0, G_OPTION_ARG_NONE, &opt_no_role, "No role of its own (its groups' roles only)", NULL },
	{ "email", 'e', 0, G_OPTION_ARG_STRING, &opt_email, "Mail address", "ADDRESS" },
	{ "no-email", 0, 0, G_OPTION_ARG_NONE, &opt_no_email, "No mail address", NULL },
	{ NULL },
};

static GOptionEntry passwd_options[] = {
	{ "new-password-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_new_password_file, "Read the new password from FILE instead of asking", "FILE" },
	{ NULL },
};

/* The new password of @user, from --new-password-file or asked twice. */
static char *new_password(const char *user)
{
	g_autoptr(GError) err = NULL;
	g_autofree char *prompt = g_strdup_printf("Password of %s", user);
	char *password = cli_password(opt_new_password_file, prompt, true, &err);
	if (!password)
		fprintf(stderr, "herd: %s\n", err->message);
	return password;
}

static void wipe(char *password)
{
	if (password)
		memset(password, 0, strlen(password));
}

static int run_add(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *password = new_password(argv[0]);
	if (!password)
		return CLI_USAGE;
	g_autoptr(json_t) body = json_pack("{s:s,s:s}", "name", argv[0], "password", password);
	wipe(password);
	if (opt_role)
		json_object_set_new(body, "role", json_string(opt_role));
	if (opt_email)
		json_object_set_new(body, "email", json_string(opt_email));
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/users", body, &rc);
	json_object_set_new(body, "password", json_string(""));
	if (!r)
		return rc;
	printf("User %s added%s%s.\n", argv[0], opt_role ? " with role " : "", opt_role ? opt_role : "");
	return CLI_OK;
}

static const char *or_dash(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s && *s ? s : "-";
}

static int run_list(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", "/api/v1/users", NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("NAME", "ROLE", "ROLES", "GROUPS", "EMAIL", NULL);
	size_t i;
	json_t *u;
	json_array_foreach(list, i, u) {
		g_autofree char *roles = cli_list_text(json_object_get(u, "roles"));
		g_autofree char *groups = cli_list_text(json_object_get(u, "groups"));
		cli_table_add(t, or_dash(u, "name"), or_dash(u, "role"), roles, groups, or_dash(u, "email"));
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_show(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("users", argv[0], NULL);
	int rc;
	g_autoptr(json_t) u = cli_request(ctx, "GET", path, NULL, &rc);
	if (!u)
		return rc;
	g_autofree char *roles = cli_list_text(json_object_get(u, "roles"));
	g_autofree char *groups = cli_list_text(json_object_get(u, "groups"));
	printf("name     %s\nuuid     %s\nrole     %s\nroles    %s\ngroups   %s\nemail    %s\n",
	       or_dash(u, "name"), or_dash(u, "uuid"), or_dash(u, "role"), roles, groups,
	       or_dash(u, "email"));
	return CLI_OK;
}

static int run_set(cli_ctx *ctx, int argc, char **argv)
{
	if ((opt_role && opt_no_role) || (opt_email && opt_no_email)) {
		fprintf(stderr, "herd user set: contradicting options.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) body = json_object();
	if (opt_role || opt_no_role)
		json_object_set_new(body, "role", opt_role ? json_string(opt_role) : json_null());
	if (opt_email || opt_no_email)
		json_object_set_new(body, "email", opt_email ? json_string(opt_email) : json_null());
	if (!json_object_size(body)) {
		fprintf(stderr, "herd user set: nothing to change: give --role, --no-role, --email or --no-email.\n");
		return CLI_USAGE;
	}
	g_autofree char *path = cli_api_path("users", argv[0], NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "PUT", path, body, &rc);
	if (!r)
		return rc;
	printf("User %s changed.\n", argv[0]);
	return CLI_OK;
}

static int run_passwd(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *password = new_password(argv[0]);
	if (!password)
		return CLI_USAGE;
	g_autoptr(json_t) body = json_pack("{s:s}", "password", password);
	wipe(password);
	g_autofree char *path = cli_api_path("users", argv[0], "password");
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "PUT", path, body, &rc);
	json_object_set_new(body, "password", json_string(""));
	if (!r)
		return rc;
	printf("Password of %s changed; its sessions have ended.\n", argv[0]);
	return CLI_OK;
}

static int run_remove(cli_ctx *ctx, int argc, char **argv)
{
	return cli_remove(ctx, "users", "User", argv[0], "removed; its sessions have ended");
}

const cli_command cli_user_commands[] = {
	{ "user add", "NAME", "Add a user of the cluster (asks for its password)",
	  "A user has a role of its own (--role) and those of the groups it is in (herd group).\n"
	  "Roles: admin (everything), operator (start, stop, migrate VMs; a group may limit it to\n"
	  "VM pools), auditor (reads everything, changes nothing), monitor (reads, and gets the\n"
	  "notification mails).",
	  add_options, 1, 1, run_add },
	{ "user list", NULL, "List the users, their roles and groups", NULL, NULL, 0, 0, run_list },
	{ "user show", "NAME|UUID", "Show a user", NULL, NULL, 1, 1, run_show },
	{ "user set", "NAME|UUID", "Change a user's own role or mail address", NULL, set_options, 1, 1, run_set },
	{ "user passwd", "NAME|UUID", "Set a user's password (ends its sessions)",
	  "A user may set its own; an admin anyone's.  Root on a node's local socket needs no\n"
	  "password: 'herd user passwd admin' there resets a lost admin password.",
	  passwd_options, 1, 1, run_passwd },
	{ "user remove", "NAME|UUID", "Remove a user (and end its sessions)", NULL, NULL, 1, 1, run_remove },
	{ NULL },
};
