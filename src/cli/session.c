/*
 * herd login, logout, whoami: sessions, so that scripts need no password
 * after the first request (docs/users.md).
 */
#include "cli/cli.h"

#include "common/json.h"

#include <stdio.h>

static int opt_ttl;

static GOptionEntry login_options[] = {
	{ "ttl", 0, 0, G_OPTION_ARG_INT, &opt_ttl, "The session's life in seconds (default 12 hours, at most 7 days)", "SEC" },
	{ NULL },
};

static int run_login(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_object();
	if (opt_ttl)
		json_object_set_new(body, "ttl_s", json_integer(opt_ttl));
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/login", body, &rc);
	if (!r)
		return rc;
	g_autofree char *until = cli_format_time(json_integer_value(json_object_get(r, "expires_s")) * 1000);
	/* The token on stdout alone, for $(herd login); the rest on stderr. */
	printf("%s\n", json_string_value(json_object_get(r, "token")));
	fprintf(stderr, "Logged in as %s until %s; use the token as HERD_TOKEN.\n",
		json_string_value(json_object_get(r, "user")), until);
	return CLI_OK;
}

static int run_logout(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/logout", NULL, &rc);
	if (!r)
		return rc;
	printf("Logged out: every session of %s has ended.\n", json_string_value(json_object_get(r, "user")));
	return CLI_OK;
}

static int run_whoami(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "GET", "/api/v1/session", NULL, &rc);
	if (!r)
		return rc;
	json_t *roles = json_object_get(r, "roles");
	g_autofree char *text = cli_list_text(roles);
	printf("%s (%s)\n", json_string_value(json_object_get(r, "user")),
	       json_array_size(roles) ? text : "no role");
	return CLI_OK;
}

const cli_command cli_session_commands[] = {
	{ "login", NULL, "Start a session: print a token for HERD_TOKEN",
	  "Checks the password once (--user, --password-file) and prints a token that any node\n"
	  "accepts until it expires, the user logs out, its password changes or it is removed:\n"
	  "  export HERD_TOKEN=$(herd --host n1 --user alice login)",
	  login_options, 0, 0, run_login },
	{ "logout", NULL, "End every session of the user", NULL, NULL, 0, 0, run_logout },
	{ "whoami", NULL, "Show the user and its roles", NULL, NULL, 0, 0, run_whoami },
	{ NULL },
};
