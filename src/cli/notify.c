/*
 * herd notify test: send a test message now, by mail and to the webhook
 * the notify_* cluster settings name, and say what happened on each
 * (docs/alerts.md, Notifications).
 */
#include "cli/cli.h"

#include "common/json.h"

#include <stdio.h>

/* One channel's line. */
static void print_channel(const char *label, json_t *r)
{
	if (!json_is_object(r)) {
		printf("%-8s not set up\n", label);
		return;
	}
	bool sent = json_is_true(json_object_get(r, "sent"));
	GString *to = g_string_new(NULL);
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(r, "to"), i, a)
		g_string_append_printf(to, "%s%s", i ? ", " : " to ", json_string_value(a));
	if (sent)
		printf("%-8s delivered%s\n", label, to->str);
	else
		printf("%-8s NOT delivered%s: %s\n", label, to->str,
		       json_string_value(json_object_get(r, "error")));
	g_string_free(to, TRUE);
}

static int run_test(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = cli_call(ctx, "POST", "/api/v1/notify/test", NULL, &error);
	if (!r)
		return cli_report(error);
	if (ctx->json)
		cli_print_json(r);
	json_t *mail = json_object_get(r, "mail"), *webhook = json_object_get(r, "webhook");
	bool ok = (!json_is_object(mail) || json_is_true(json_object_get(mail, "sent"))) &&
		  (!json_is_object(webhook) || json_is_true(json_object_get(webhook, "sent")));
	if (!ctx->json) {
		print_channel("mail", mail);
		print_channel("webhook", webhook);
	}
	return ok ? CLI_OK : CLI_ERROR;
}

const cli_command cli_notify_commands[] = {
	{ "notify test", NULL, "Send a test notification now (mail and webhook) and say what happened",
	  "Uses the notify_* cluster settings (herd cluster settings).  Alerts' notifications go out\n"
	  "from the coordinator's node; this one from the node asked.",
	  NULL, 0, 0, run_test },
	{ NULL },
};
