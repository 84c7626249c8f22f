/* herd iso upload|list|delete. */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"
#include "common/size.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *opt_name;

static GOptionEntry iso_upload_options[] = {
	{ "name", 'n', 0, G_OPTION_ARG_STRING, &opt_name, "The ISO's name in herd (default: the file's name)", "NAME" },
	{ NULL },
};

static int run_iso_upload(cli_ctx *ctx, int argc, char **argv)
{
	const char *file = argv[0];
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "herd: Cannot upload %s: %s.\n", file,
			fd < 0 ? g_strerror(errno) : "it is not a regular file");
		if (fd >= 0)
			close(fd);
		return CLI_ERROR;
	}
	g_autofree char *base = g_path_get_basename(file);
	const char *name = opt_name ? opt_name : base;
	g_autofree char *path = cli_api_path("isos", name, NULL);
	g_autoptr(GError) err = NULL;
	g_autofree char *sent_sha256 = NULL;
	g_autoptr(json_t) r = herd_client_upload(cli_client(ctx), path, fd, (guint64)st.st_size,
						 &sent_sha256, &err);
	close(fd);
	if (!r)
		return cli_report(err);
	const char *stored = json_string_value(json_object_get(r, "sha256"));
	if (g_strcmp0(stored, sent_sha256) != 0) {
		fprintf(stderr, "herd: ISO %s was stored with SHA-256 %s, but %s was sent: delete it and upload it again.\n",
			name, stored ? stored : "?", sent_sha256);
		return CLI_ERROR;
	}
	if (ctx->json) {
		cli_print_json(r);
		return CLI_OK;
	}
	g_autofree char *size = herd_size_format((guint64)st.st_size);
	printf("ISO %s uploaded: %s, SHA-256 %s\n", name, size, stored);
	cli_print_job_line(r);
	return CLI_OK;
}

static int run_iso_list(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", "/api/v1/isos", NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("NAME", "SIZE", "SHA-256", "VM", NULL);
	size_t i;
	json_t *x;
	json_array_foreach(list, i, x) {
		g_autofree char *size = herd_size_format((guint64)json_integer_value(json_object_get(x, "size")));
		const char *vm = json_string_value(json_object_get(x, "vm"));
		cli_table_add(t, json_string_value(json_object_get(x, "name")), size,
			      json_string_value(json_object_get(x, "sha256")), vm ? vm : "-");
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_iso_delete(cli_ctx *ctx, int argc, char **argv)
{
	return cli_delete_with_file(ctx, "isos", "ISO", argv[0]);
}

const cli_command cli_iso_commands[] = {
	{ "iso upload", "FILE", "Upload an ISO image into the cluster share",
	  "Streams FILE through the API into isos/ of the cluster share and prints its SHA-256. "
	  "The upload is a job ('herd job list' shows its progress; 'herd job cancel' stops it). "
	  "An upload that fails, is cut off or cancelled leaves nothing behind.",
	  iso_upload_options, 1, 1, run_iso_upload },
	{ "iso list", NULL, "List the ISOs: size, SHA-256, the VM using each", NULL, NULL, 0, 0, run_iso_list },
	{ "iso delete", "NAME", "Delete an ISO and its file (refused while a VM uses it)", NULL, NULL, 1, 1, run_iso_delete },
	{ NULL },
};
