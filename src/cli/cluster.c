/* herd cluster create|join|leave|status|settings|set. */
#include "cli/cli.h"
#include "cli/prompt.h"
#include "cli/table.h"

#include "common/json.h"
#include "common/tls.h"

#include <stdio.h>
#include <string.h>

static char **opt_links;
static char *opt_password_file;

/* --password-file is also a global option (for --host), which takes it wherever
 * it stands; the command's own entry is there for its --help. */
static const char *password_file(cli_ctx *ctx)
{
	return opt_password_file ? opt_password_file : ctx->password_file;
}
static char *opt_fingerprint;
static char **opt_settings;
static gboolean opt_force;

static GOptionEntry create_options[] = {
	{ "link", 'l', 0, G_OPTION_ARG_STRING_ARRAY, &opt_links,
	  "This node's address on a heartbeat link (repeat for up to 8 links)", "ADDR" },
	{ "password-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_password_file,
	  "Read the new admin password from FILE instead of asking", "FILE" },
	{ "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_settings,
	  "A cluster setting (see 'herd cluster settings'), e.g. token_ms=300", "KEY=VALUE" },
	{ NULL },
};

static GOptionEntry join_options[] = {
	{ "link", 'l', 0, G_OPTION_ARG_STRING_ARRAY, &opt_links,
	  "This node's address on a heartbeat link, one per link of the cluster (default: the address that reaches ADDR)",
	  "ADDR" },
	{ "fingerprint", 0, 0, G_OPTION_ARG_STRING, &opt_fingerprint,
	  "The cluster certificate's SHA-256 fingerprint, as 'herd cluster status' shows it on a member",
	  "SHA256" },
	{ "password-file", 0, 0, G_OPTION_ARG_FILENAME, &opt_password_file,
	  "Read the admin password from FILE instead of asking", "FILE" },
	{ NULL },
};

static GOptionEntry leave_options[] = {
	{ "force", 'f', 0, G_OPTION_ARG_NONE, &opt_force,
	  "Leave even as the last node (this deletes the cluster)", NULL },
	{ NULL },
};

static json_t *links_json(void)
{
	json_t *a = json_array();
	for (char **l = opt_links; l && *l; l++)
		json_array_append_new(a, json_string(*l));
	return a;
}

static int run_create(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	if (!opt_links) {
		fprintf(stderr, "herd cluster create: give this node's address with --link ADDR.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) settings = json_object();
	for (char **s = opt_settings; s && *s; s++) {
		const char *value;
		g_autofree char *key = cli_key_value(*s, &value);
		if (!key) {
			fprintf(stderr, "herd cluster create: --set needs KEY=VALUE, not '%s'.\n", *s);
			return CLI_USAGE;
		}
		json_object_set_new(settings, key, json_string(value));
	}
	g_autofree char *password = cli_password(password_file(ctx), "New admin password", true,
						 &error);
	if (!password)
		return cli_report(error);
	g_autoptr(json_t) body = json_pack("{s:s,s:o,s:s,s:O}", "name", argv[0], "links", links_json(),
					   "password", password, "settings", settings);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/cluster", body, &rc);
	memset(password, 0, strlen(password));
	if (!r)
		return rc;
	printf("Created cluster '%s' with node %s.\n", json_string_value(json_object_get(r, "cluster")),
	       json_string_value(json_object_get(r, "node")));
	printf("Certificate fingerprint: %s\n", json_string_value(json_object_get(r, "fingerprint")));
	printf("Join more nodes with: herd cluster join ADDRESS-OF-THIS-NODE --fingerprint <the fingerprint>\n");
	return CLI_OK;
}

static int run_join(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	const char *address = argv[0];
	g_autofree char *fingerprint = NULL;
	if (opt_fingerprint) {
		fingerprint = herd_tls_fingerprint_normalize(opt_fingerprint);
		if (!fingerprint) {
			fprintf(stderr, "herd cluster join: --fingerprint needs 32 hex bytes (AB:CD:…), not '%s'.\n",
				opt_fingerprint);
			return CLI_USAGE;
		}
	}
	g_autoptr(json_t) links = links_json();
	if (!fingerprint || json_array_size(links) == 0) {
		/* What the member presents, and this node's address towards it:
		 * herdd looks (as for the web UI's join). */
		g_autoptr(json_t) q = json_pack("{s:s}", "address", address);
		g_autoptr(json_t) seen = cli_call(ctx, "POST", "/api/v1/cluster/probe", q, &error);
		if (!seen)
			return cli_report(error);
		if (json_array_size(links) == 0) {
			json_t *mine = json_array_get(json_object_get(seen, "links"), 0);
			if (!mine) {
				fprintf(stderr, "herd cluster join: cannot tell this node's address towards %s; give --link ADDR.\n",
					address);
				return CLI_USAGE;
			}
			json_array_append(links, mine);
		}
		if (!fingerprint) {
			/* Let the operator compare it with 'herd cluster status'
			 * on a member. */
			fingerprint = g_strdup(json_string_value(json_object_get(seen, "fingerprint")));
			fprintf(stderr, "Cluster '%s' at %s has certificate fingerprint\n  %s\n",
				json_string_value(json_object_get(seen, "cluster")), address, fingerprint);
			if (!cli_confirm("Is this the fingerprint 'herd cluster status' shows on a member?",
					 "--fingerprint SHA256", "not joining."))
				return CLI_ERROR;
		}
	}
	g_autofree char *password = cli_password(password_file(ctx), "Admin password of the cluster",
						 false, &error);
	if (!password)
		return cli_report(error);
	g_autoptr(json_t) body = json_pack("{s:s,s:s,s:s,s:O}", "address", address, "fingerprint",
					   fingerprint, "password", password, "links", links);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/cluster/join", body, &rc);
	memset(password, 0, strlen(password));
	if (!r)
		return rc;
	printf("Joined cluster '%s' as node %s.\n", json_string_value(json_object_get(r, "cluster")),
	       json_string_value(json_object_get(r, "node")));
	return CLI_OK;
}

static int run_setup_code(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "GET", "/api/v1/cluster/setup-code", NULL, &rc);
	if (!r)
		return rc;
	printf("Setup code:   %s\n", json_string_value(json_object_get(r, "code")));
	printf("Certificate:  %s\n", json_string_value(json_object_get(r, "tls_fingerprint")));
	printf("Open https://%s:8001/ (or this node's address), compare the certificate's SHA-256\n"
	       "fingerprint the browser shows with the line above, and give the setup code there\n"
	       "to create a cluster or join one.\n",
	       json_string_value(json_object_get(r, "node")));
	return CLI_OK;
}

static int run_leave(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_pack("{s:b}", "force", opt_force);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/cluster/leave", body, &rc);
	if (!r)
		return rc;
	printf("This node left cluster '%s'.\n", json_string_value(json_object_get(r, "cluster")));
	return CLI_OK;
}

/* The state of link @id between @a and @b as both see it: "0 up",
 * "1 DOWN (n1)", "1 DOWN (n1, n2)"; NULL if neither says. */
static char *link_cell(json_t *views, const char *a, const char *b, json_int_t id)
{
	const char *sides[2] = { a, b };
	const char *peers[2] = { b, a };
	bool known = false;
	GString *down = g_string_new(NULL);
	for (int s = 0; s < 2; s++) {
		size_t i;
		json_t *l;
		json_array_foreach(json_object_get(json_object_get(views, sides[s]), peers[s]), i, l) {
			if (json_integer_value(json_object_get(l, "link")) != id)
				continue;
			known = true;
			if (!json_is_true(json_object_get(l, "connected")))
				g_string_append_printf(down, "%s%s", down->len ? ", " : "", sides[s]);
		}
	}
	char *out = !known ? NULL
		    : down->len ? g_strdup_printf("%lld DOWN (%s)", (long long)id, down->str)
				: g_strdup_printf("%lld up", (long long)id);
	g_string_free(down, TRUE);
	return out;
}

/* Every pair of nodes that both say how they see their links (up to 8
 * nodes; beyond, only pairs with a link down). */
static void print_links(json_t *views)
{
	if (!json_object_size(views))
		return;
	g_autoptr(GPtrArray) names = herd_json_sorted_keys(views);
	cli_table *t = cli_table_new("NODES", "HEARTBEAT LINKS", NULL);
	unsigned shown = 0, hidden = 0;
	for (guint i = 0; i < names->len; i++) {
		for (guint k = i + 1; k < names->len; k++) {
			const char *a = names->pdata[i], *b = names->pdata[k];
			GString *cells = g_string_new(NULL);
			bool any_down = false;
			for (json_int_t id = 0; id < 8; id++) {
				g_autofree char *cell = link_cell(views, a, b, id);
				if (!cell)
					continue;
				any_down |= strstr(cell, "DOWN") != NULL;
				g_string_append_printf(cells, "%s%s", cells->len ? ", " : "", cell);
			}
			if (cells->len && (names->len <= 8 || any_down)) {
				g_autofree char *pair = g_strdup_printf("%s - %s", a, b);
				cli_table_add(t, pair, cells->str);
				shown++;
			} else if (cells->len) {
				hidden++;
			}
			g_string_free(cells, TRUE);
		}
	}
	printf("\n");
	if (shown)
		cli_table_print(t);
	else
		cli_table_free(t);
	if (hidden)
		printf("%s%u pairs of nodes with every heartbeat link up\n", shown ? "and " : "", hidden);
}

/* Each node's verdict on the ping nodes: "192.0.2.1 reached, 192.0.2.9 LOST". */
static void print_ping(json_t *views)
{
	if (!json_object_size(views))
		return;
	g_autoptr(GPtrArray) names = herd_json_sorted_keys(views);
	cli_table *t = cli_table_new("NODE", "PING NODES", "VERDICT", NULL);
	for (guint i = 0; i < names->len; i++) {
		json_t *view = json_object_get(views, names->pdata[i]);
		GString *cells = g_string_new(NULL);
		const char *target;
		json_t *ok;
		json_object_foreach(json_object_get(view, "targets"), target, ok)
			g_string_append_printf(cells, "%s%s %s", cells->len ? ", " : "", target,
					       json_is_true(ok) ? "reached" : "LOST");
		cli_table_add(t, names->pdata[i], cells->str,
			      json_is_true(json_object_get(view, "lost")) ? "CUT OFF" : "ok");
		g_string_free(cells, TRUE);
	}
	printf("\n");
	cli_table_print(t);
}

/* The quorum device (cluster_qdevice.c), if the cluster has one. */
static void print_qdevice(json_t *q)
{
	if (!json_is_object(q))
		return;
	json_t *local = json_object_get(q, "local");
	const char *algorithm = json_string_value(json_object_get(q, "algorithm"));
	printf("Qdevice:      %s:%lld, ", json_string_value(json_object_get(q, "host")),
	       (long long)json_integer_value(json_object_get(q, "port")));
	if (!algorithm)
		printf("not used while the node count is odd\n");
	else if (!json_is_object(local))
		printf("%s, corosync-qdevice not running on this node\n", algorithm);
	else
		printf("%s, %s, %s\n", algorithm,
		       json_is_true(json_object_get(local, "alive")) ? "alive" : "NOT ALIVE",
		       json_is_true(json_object_get(local, "cast_vote")) ? "votes for this partition"
									  : "no vote for this partition");
}

static int run_status(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) c = cli_request(ctx, "GET", "/api/v1/cluster", NULL, &rc);
	if (!c)
		return rc;
	json_t *q = json_object_get(c, "quorum");
	json_t *pos = json_object_get(c, "position");
	printf("Cluster:      %s (%s)\n", json_string_value(json_object_get(c, "name")),
	       json_string_value(json_object_get(c, "uuid")));
	printf("Fingerprint:  %s\n", json_string_value(json_object_get(c, "fingerprint")));
	printf("Quorum:       %s, %lld of %lld votes (%lld needed)%s\n",
	       json_is_true(json_object_get(q, "quorate")) ? "quorate" : "NOT QUORATE",
	       (long long)json_integer_value(json_object_get(q, "total_votes")),
	       (long long)json_integer_value(json_object_get(q, "expected_votes")),
	       (long long)json_integer_value(json_object_get(q, "quorum")),
	       json_is_true(json_object_get(q, "two_node")) ? ", two-node mode" : "");
	printf("Store:        %s%s, generation %lld, change %lld\n",
	       json_string_value(json_object_get(c, "phase")),
	       json_is_true(json_object_get(c, "primary")) ? "" : " (changes refused)",
	       (long long)json_integer_value(json_object_get(pos, "generation")),
	       (long long)json_integer_value(json_object_get(pos, "index")));
	const char *refusal = json_string_value(json_object_get(c, "refusal"));
	if (refusal)
		printf("              %s\n", refusal);
	print_qdevice(json_object_get(c, "qdevice"));
	printf("This node:    %s\n\n", json_string_value(json_object_get(c, "local_node")));
	cli_print_nodes(json_object_get(c, "nodes"));
	print_links(json_object_get(c, "links"));
	print_ping(json_object_get(c, "ping"));
	return CLI_OK;
}

static int run_settings(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", "/api/v1/cluster/settings", NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("SETTING", "VALUE", "DEFAULT", "MEANING", NULL);
	size_t i;
	json_t *s;
	json_array_foreach(list, i, s) {
		/* As the defaults read and as 'cluster set' takes them. */
		json_t *value = json_object_get(s, "value");
		g_autofree char *v = json_is_string(value) ? g_strdup(json_string_value(value))
				     : json_is_boolean(value) ? g_strdup(json_is_true(value) ? "yes" : "no")
				     : json_dumps(value, JSON_ENCODE_ANY);
		cli_table_add(t, json_string_value(json_object_get(s, "key")), v,
			      json_string_value(json_object_get(s, "default")),
			      json_string_value(json_object_get(s, "help")));
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_set(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_object();
	for (int i = 0; i < argc; i++) {
		const char *value;
		g_autofree char *key = cli_key_value(argv[i], &value);
		if (!key) {
			fprintf(stderr, "herd cluster set: give KEY=VALUE (or KEY= to reset), not '%s'.\n", argv[i]);
			return CLI_USAGE;
		}
		json_object_set_new(body, key, *value ? json_string(value) : json_null());
	}
	/* No sentence of its own: only --json shows the answer. */
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "PUT", "/api/v1/cluster/settings", body, &rc);
	return rc;
}

/* herd cluster ha pause|resume: the ha_paused setting, said in a sentence. */
static int set_ha_paused(cli_ctx *ctx, bool paused)
{
	g_autoptr(json_t) body = json_pack("{s:b}", "ha_paused", paused);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "PUT", "/api/v1/cluster/settings", body, &rc);
	if (!r)
		return rc;
	if (ctx->json)
		cli_print_json(r);
	else if (paused)
		printf("HA is paused: herd fences no node and starts, moves or fails over no VM until 'herd cluster ha resume'.\n");
	else
		printf("HA is resumed: herd fences lost nodes and places VMs again.\n");
	return CLI_OK;
}

static int run_ha_pause(cli_ctx *ctx, int argc, char **argv)
{
	return set_ha_paused(ctx, true);
}

static int run_ha_resume(cli_ctx *ctx, int argc, char **argv)
{
	return set_ha_paused(ctx, false);
}

const cli_command cli_cluster_commands[] = {
	{ "cluster create", "NAME", "Create a new cluster with this node as its first member",
	  "Writes corosync.conf (knet, encrypted), makes the cluster's certificate authority and\n"
	  "this node's certificate, sets the admin password and starts corosync.",
	  create_options, 1, 1, run_create },
	{ "cluster join", "ADDR", "Join this node to the cluster a member at ADDR belongs to",
	  "Shows the cluster certificate's fingerprint to compare (or checks --fingerprint), asks\n"
	  "for the admin password, and becomes a member: corosync.conf of every node gains this node.",
	  join_options, 1, 1, run_join },
	{ "cluster setup-code", NULL, "Show the code that lets this blank node's web page form a cluster",
	  "Until the node is in a cluster its web page (https://NODE:8001/) asks for this code\n"
	  "before it creates or joins one; only root on the node sees it. It also shows the\n"
	  "fingerprint of the page's certificate, to compare with what the browser shows.",
	  NULL, 0, 0, run_setup_code },
	{ "cluster leave", NULL, "Take this node out of its cluster", NULL, leave_options, 0, 0,
	  run_leave },
	{ "cluster status", NULL, "Show the cluster: quorum, nodes, links, fingerprint", NULL, NULL,
	  0, 0, run_status },
	{ "cluster settings", NULL, "List the cluster settings with their values", NULL, NULL, 0, 0,
	  run_settings },
	{ "cluster set", "KEY=VALUE…", "Change cluster settings (KEY= resets to the default)", NULL,
	  NULL, 1, 64, run_set },
	{ "cluster ha pause", NULL, "Pause HA cluster-wide (network or corosync work): nothing is fenced or moved",
	  "While paused the coordinator fences no lost node and starts, fails over, evacuates,\n"
	  "returns or fails back no VM: VMs are left as they are. The pause is in the replicated\n"
	  "configuration (setting ha_paused), so it survives a change of coordinator.\n"
	  "'herd status' says so on its first line.",
	  NULL, 0, 0, run_ha_pause },
	{ "cluster ha resume", NULL, "End the HA pause: lost nodes are fenced and VMs placed again", NULL,
	  NULL, 0, 0, run_ha_resume },
	{ NULL },
};
