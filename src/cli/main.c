/* herd's entry point: global options, finding a command by its words, --help
 * and the hidden "__complete" that bash completion asks. */
#include "cli/cli.h"
#include "cli/prompt.h"

#include "herd-config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

/* In the order 'herd --help' lists them. */
static const cli_command *const command_tables[] = {
	cli_status_commands,
	cli_cluster_commands,
	cli_cluster_qdevice_commands,
	cli_node_commands,
	cli_vm_commands,
	cli_network_commands,
	cli_alert_commands,
	cli_job_commands,
	cli_rule_commands,
	cli_notify_commands,
	cli_check_commands,
	cli_vm_migrate_commands,
	cli_fence_device_commands,
	cli_storage_commands,
	cli_disk_commands,
	cli_iso_commands,
	cli_simulate_commands,
	cli_user_commands,
	cli_group_commands,
	cli_session_commands,
	cli_audit_commands,
};

#define FOR_EACH_COMMAND(c)                                                     \
	for (unsigned t_ = 0; t_ < G_N_ELEMENTS(command_tables); t_++)          \
		for (const cli_command *c = command_tables[t_]; c->words; c++)

/* The command whose words are the longest prefix of @argv, or NULL. */
static const cli_command *find_command(int argc, char **argv, guint *n_words)
{
	const cli_command *best = NULL;
	guint best_n = 0;
	FOR_EACH_COMMAND(c)
	{
		g_auto(GStrv) w = g_strsplit(c->words, " ", -1);
		guint n = g_strv_length(w);
		if (n > (guint)argc || n <= best_n)
			continue;
		bool match = true;
		for (guint i = 0; i < n && match; i++)
			match = strcmp(w[i], argv[i]) == 0;
		if (match) {
			best = c;
			best_n = n;
		}
	}
	*n_words = best_n;
	return best;
}

static void print_commands(FILE *out, const char *prefix)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	int width = 0;
	FOR_EACH_COMMAND(c)
	{
		if (!plen || strncmp(c->words, prefix, plen) == 0)
			width = MAX(width, (int)(g_utf8_strlen(c->words, -1) + 1 +
						 (c->args ? g_utf8_strlen(c->args, -1) : 0)));
	}
	FOR_EACH_COMMAND(c)
	{
		if (plen && strncmp(c->words, prefix, plen) != 0)
			continue;
		g_autofree char *synopsis = g_strdup_printf("%s%s%s", c->words, c->args ? " " : "",
							    c->args ? c->args : "");
		/* Pad by characters: "…" is one column but three bytes. */
		int pad = width - (int)g_utf8_strlen(synopsis, -1);
		fprintf(out, "  %s%*s  %s\n", synopsis, pad, "", c->summary);
	}
}

static void print_usage(FILE *out)
{
	fprintf(out,
		"Usage: herd [--socket PATH | --host HOST[:PORT]] [--json] COMMAND [ARGS…]\n"
		"\n"
		"Administer a herd cluster through the local herdd (or --host).\n"
		"\n"
		"Commands:\n");
	print_commands(out, NULL);
	fprintf(out,
		"\n"
		"Global options:\n"
		"  --socket PATH   local API socket (default " HERD_RUNDIR "/herd.sock, or $HERD_SOCKET)\n"
		"  --host HOST     a node's API over HTTPS (port 8001 unless HOST:PORT)\n"
		"  --ca FILE       CA certificate to verify --host with\n"
		"  --insecure      do not verify --host's certificate\n"
		"  --json          print read commands' results as JSON\n"
		"  --timeout SEC   give up after SEC seconds\n"
		"  --user NAME, --password-file FILE   credentials for --host ($HERD_PASSWORD)\n"
		"  $HERD_TOKEN                         a session of 'herd login', instead of them\n"
		"\n"
		"'herd COMMAND --help' explains a command. Exit status: 0 ok, 1 error, 2 usage.\n");
}

/* Hidden: "herd __complete WORD… PARTIAL" prints what may come next. */
static int complete(int argc, char **argv)
{
	/* argv: words already typed (after "herd"), last one is the partial word. */
	const char *partial = argc > 0 ? argv[argc - 1] : "";
	int typed = argc > 0 ? argc - 1 : 0;
	/* Owns copies: the words it would point into are freed each turn. */
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	guint n_words;
	const cli_command *cmd = find_command(typed, argv, &n_words);

	if (cmd && partial[0] == '-') {
		for (GOptionEntry *e = cmd->options; e && e->long_name; e++)
			printf("--%s\n", e->long_name);
		printf("--help\n--json\n");
	}
	FOR_EACH_COMMAND(c)
	{
		g_auto(GStrv) w = g_strsplit(c->words, " ", -1);
		guint n = g_strv_length(w);
		if ((guint)typed >= n)
			continue;
		bool match = true;
		for (int i = 0; i < typed && match; i++)
			match = strcmp(w[i], argv[i]) == 0;
		if (match && g_str_has_prefix(w[typed], partial) &&
		    !g_hash_table_contains(seen, w[typed])) {
			g_hash_table_add(seen, g_strdup(w[typed]));
			printf("%s\n", w[typed]);
		}
	}
	g_hash_table_destroy(seen);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	setlocale(LC_ALL, "");
	cli_ctx ctx = { 0 };
	g_autofree char *socket_path = NULL, *host = NULL, *ca = NULL;
	gboolean insecure = FALSE, json = FALSE;
	g_autofree char *user = NULL, *password_file = NULL, *password = NULL;
	int timeout_s = 0;
	GOptionEntry global[] = {
		{ "socket", 0, 0, G_OPTION_ARG_FILENAME, &socket_path, "Local API socket", "PATH" },
		{ "host", 'H', 0, G_OPTION_ARG_STRING, &host, "A node's API over HTTPS", "HOST[:PORT]" },
		{ "ca", 0, 0, G_OPTION_ARG_FILENAME, &ca, "CA certificate for --host", "FILE" },
		{ "insecure", 'k', 0, G_OPTION_ARG_NONE, &insecure, "Do not verify --host", NULL },
		{ "json", 'j', 0, G_OPTION_ARG_NONE, &json, "Print results as JSON", NULL },
		{ "timeout", 0, 0, G_OPTION_ARG_INT, &timeout_s, "Give up after SEC seconds", "SEC" },
		{ "user", 'u', 0, G_OPTION_ARG_STRING, &user, "User for --host (default admin)", "NAME" },
		{ "password-file", 0, 0, G_OPTION_ARG_FILENAME, &password_file,
		  "Read the --host user's password from FILE (else $HERD_PASSWORD, else asked)", "FILE" },
		{ NULL },
	};

	/* "herd --version" only as the first word: commands have their own
	 * --version (vm restore). */
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("herd %s\n", HERD_VERSION);
		return CLI_OK;
	}

	if (argc >= 2 && strcmp(argv[1], "__complete") == 0)
		return complete(argc - 2, argv + 2);

	/* Pass 1: global options anywhere; the command's own stay in argv. */
	g_autoptr(GError) error = NULL;
	GOptionContext *gctx = g_option_context_new(NULL);
	g_option_context_add_main_entries(gctx, global, NULL);
	g_option_context_set_help_enabled(gctx, FALSE);
	g_option_context_set_ignore_unknown_options(gctx, TRUE);
	gboolean ok = g_option_context_parse(gctx, &argc, &argv, &error);
	g_option_context_free(gctx);
	if (!ok) {
		fprintf(stderr, "herd: %s\n", error->message);
		return CLI_USAGE;
	}
	if (timeout_s < 0) {
		fprintf(stderr, "herd: --timeout must not be negative.\n");
		return CLI_USAGE;
	}
	ctx.json = json;
	ctx.client_opts.socket_path = socket_path ? socket_path : g_getenv("HERD_SOCKET");
	ctx.client_opts.host = host ? host : g_getenv("HERD_HOST");
	ctx.client_opts.ca_file = ca;
	ctx.client_opts.insecure = insecure;
	ctx.client_opts.timeout_s = timeout_s;
	ctx.password_file = password_file;
	const char *token = g_getenv("HERD_TOKEN");
	if (token && *token && !user && !password_file) {
		/* A session of herd login: no password to ask. */
		ctx.client_opts.token = token;
	} else if (ctx.client_opts.host) {
		/* Over HTTPS the API needs a user; root on the socket does not. */
		ctx.client_opts.user = user ? user : "admin";
		const char *env = g_getenv("HERD_PASSWORD");
		if (password_file || !env) {
			g_autoptr(GError) perr = NULL;
			password = cli_password(password_file, "Password", false, &perr);
			if (!password) {
				fprintf(stderr, "herd: %s\n", perr->message);
				return CLI_USAGE;
			}
		}
		ctx.client_opts.password = password ? password : env;
	}

	int n_plain = 0;
	while (n_plain + 1 < argc && argv[n_plain + 1][0] != '-')
		n_plain++;
	guint n_words = 0;
	const cli_command *cmd = find_command(n_plain, argv + 1, &n_words);
	if (!cmd) {
		bool want_help = false;
		for (int i = 1; i < argc; i++)
			want_help |= strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
		if (argc < 2 || (want_help && n_plain == 0)) {
			print_usage(want_help ? stdout : stderr);
			return want_help ? CLI_OK : CLI_USAGE;
		}
		/* "herd vm" or "herd vm frobnicate": list what "vm" offers. */
		bool group = false;
		FOR_EACH_COMMAND(c)
		group |= g_str_has_prefix(c->words, argv[1]) && c->words[strlen(argv[1])] == ' ';
		if (group) {
			if (n_plain >= 2 && !want_help)
				fprintf(stderr, "herd: '%s %s' is not a command.\n", argv[1], argv[2]);
			fprintf(want_help ? stdout : stderr, "Commands of '%s':\n", argv[1]);
			g_autofree char *prefix = g_strconcat(argv[1], " ", NULL);
			print_commands(want_help ? stdout : stderr, prefix);
			return want_help && n_plain < 2 ? CLI_OK : CLI_USAGE;
		}
		fprintf(stderr, "herd: '%s' is not a command; 'herd --help' lists them.\n", argv[1]);
		return CLI_USAGE;
	}

	/* Pass 2: the command's own options; --help comes from GOption. */
	g_autofree char *param = g_strdup_printf("%s%s%s", cmd->words, cmd->args ? " " : "",
						 cmd->args ? cmd->args : "");
	GOptionContext *cctx = g_option_context_new(param);
	g_option_context_set_summary(cctx, cmd->summary);
	if (cmd->description)
		g_option_context_set_description(cctx, cmd->description);
	if (cmd->options)
		g_option_context_add_main_entries(cctx, cmd->options, NULL);
	GOptionGroup *gg = g_option_group_new("global", "Global options:", "Show global options",
					      NULL, NULL);
	g_option_group_add_entries(gg, global);
	g_option_context_add_group(cctx, gg);
	/* argv[0] stays "herd"; the command words are dropped. */
	int cargc = argc - (int)n_words;
	char **cargv = g_new0(char *, (gsize)cargc + 1);
	cargv[0] = argv[0];
	for (int i = 1; i < cargc; i++)
		cargv[i] = argv[i + (int)n_words];
	char **cargv_orig = cargv;
	ok = g_option_context_parse(cctx, &cargc, &cargv, &error);
	if (ok && json)
		ctx.json = true;
	g_option_context_free(cctx);
	int rc;
	if (!ok) {
		fprintf(stderr, "herd %s: %s\n", cmd->words, error->message);
		rc = CLI_USAGE;
	} else if ((unsigned)(cargc - 1) < cmd->min_args || (unsigned)(cargc - 1) > cmd->max_args) {
		fprintf(stderr, "herd %s: %s.\nUsage: herd %s\n", cmd->words,
			(unsigned)(cargc - 1) < cmd->min_args ? "missing argument" : "too many arguments",
			param);
		rc = CLI_USAGE;
	} else {
		rc = cmd->run(&ctx, cargc - 1, cargv + 1);
	}
	g_free(cargv_orig);
	herd_client_free(ctx.client);
	return rc;
}
