/* The helpers of cli.h that every command uses: the API call and its paths,
 * KEY=VALUE arguments, errors, JSON and durations. */
#include "cli/cli.h"

#include "common/json.h"

#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

herd_client *cli_client(cli_ctx *ctx)
{
	if (!ctx->client)
		ctx->client = herd_client_new(&ctx->client_opts);
	return ctx->client;
}

json_t *cli_call(cli_ctx *ctx, const char *method, const char *path, json_t *body,
		 GError **error)
{
	return herd_client_call(cli_client(ctx), method, path, body, error);
}

json_t *cli_request(cli_ctx *ctx, const char *method, const char *path, json_t *body, int *rc)
{
	g_autoptr(GError) error = NULL;
	json_t *answer = cli_call(ctx, method, path, body, &error);
	*rc = CLI_OK;
	if (!answer) {
		*rc = cli_report(error);
		return NULL;
	}
	if (ctx->json) {
		cli_print_json(answer);
		json_decref(answer);
		return NULL;
	}
	return answer;
}

char *cli_api_path(const char *collection, const char *ref, const char *action)
{
	g_autofree char *esc = g_uri_escape_string(ref, NULL, FALSE);
	return g_strdup_printf("/api/v1/%s/%s%s%s", collection, esc, action ? "/" : "",
			       action ? action : "");
}

char *cli_key_value(const char *arg, const char **value)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return NULL;
	*value = eq + 1;
	return g_strndup(arg, (gsize)(eq - arg));
}

int cli_report(const GError *error)
{
	fprintf(stderr, "herd: %s\n", error->message);
	return CLI_ERROR;
}

void cli_print_json(json_t *root)
{
	char *s = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	puts(s);
	free(s);
}

char *cli_format_duration(gint64 s)
{
	if (s < 60)
		return g_strdup_printf("%llds", (long long)s);
	if (s < 3600)
		return g_strdup_printf("%lldm %llds", (long long)(s / 60), (long long)(s % 60));
	if (s < 86400)
		return g_strdup_printf("%lldh %lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
	return g_strdup_printf("%lldd %lldh", (long long)(s / 86400), (long long)(s / 3600 % 24));
}

int cli_delete_with_file(cli_ctx *ctx, const char *collection, const char *label, const char *name)
{
	g_autofree char *path = cli_api_path(collection, name, NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", path, NULL, &rc);
	if (!r)
		return rc;
	const char *warning = json_string_value(json_object_get(r, "warning"));
	if (warning) {
		printf("%s %s deleted, but its file stays: %s\n", label, name, warning);
		return CLI_ERROR;
	}
	printf("%s %s deleted, and its file removed.\n", label, name);
	return CLI_OK;
}

int cli_remove(cli_ctx *ctx, const char *collection, const char *label, const char *name,
	       const char *done)
{
	g_autofree char *path = cli_api_path(collection, name, NULL);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", path, NULL, &rc);
	if (!r)
		return rc;
	printf("%s %s %s.\n", label, name, done);
	return CLI_OK;
}

char *cli_list_text(json_t *list)
{
	if (!json_array_size(list))
		return g_strdup("-");
	GString *s = g_string_new(NULL);
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		g_string_append_printf(s, "%s%s", i ? "," : "", json_string_value(v));
	return g_string_free(s, FALSE);
}

char *cli_format_time(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	return g_strdup(buf);
}
