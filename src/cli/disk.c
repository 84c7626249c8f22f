/* herd disk create|list|show|resize|delete, and an eSAN disk's
 * promote|resolve|verify|attach. */
#include "cli/cli.h"
#include "cli/table.h"

#include "common/json.h"
#include "common/size.h"

#include <stdio.h>
#include <string.h>

static char *opt_size, *opt_storage, *opt_format, *opt_esan, *opt_node, *opt_keep;
static gboolean opt_force;
static gint opt_timeout = 3600;
static gint opt_lun = -1;

static GOptionEntry disk_create_options[] = {
	{ "size", 's', 0, G_OPTION_ARG_STRING, &opt_size, "The size the guest sees, e.g. 20G (binary units)", "SIZE" },
	{ "storage", 0, 0, G_OPTION_ARG_STRING, &opt_storage, "The storage it goes on", "STORAGE" },
	{ "format", 'f', 0, G_OPTION_ARG_STRING, &opt_format, "qcow2 (default) or raw (a sparse file)", "FORMAT" },
	{ "esan", 0, 0, G_OPTION_ARG_STRING, &opt_esan, "An eSAN disk: one replica on each of these two nodes, kept identical (on no storage)", "NODE1,NODE2" },
	{ "lun", 0, 0, G_OPTION_ARG_INT, &opt_lun, "On an iSCSI storage: the target's LUN that is the disk (its size is the target's)", "N" },
	{ NULL },
};

static GOptionEntry disk_resize_options[] = {
	{ "size", 's', 0, G_OPTION_ARG_STRING, &opt_size, "The new size (30G), or how much more (+10G)", "SIZE" },
	{ NULL },
};

static GOptionEntry disk_promote_options[] = {
	{ "force", 0, 0, G_OPTION_ARG_NONE, &opt_force, "Accept that what the other replica holds beyond this one is lost", NULL },
	{ "node", 0, 0, G_OPTION_ARG_STRING, &opt_node, "The replica to promote (default: the outdated one)", "NODE" },
	{ NULL },
};

static GOptionEntry disk_resolve_options[] = {
	{ "keep", 0, 0, G_OPTION_ARG_STRING, &opt_keep, "The node whose replica is kept; the other's writes since the split are lost", "NODE" },
	{ NULL },
};

static GOptionEntry disk_attach_options[] = {
	{ "node", 0, 0, G_OPTION_ARG_STRING, &opt_node, "The node whose replica is attached (default: the detached one)", "NODE" },
	{ NULL },
};

static GOptionEntry disk_verify_options[] = {
	{ "timeout", 0, 0, G_OPTION_ARG_INT, &opt_timeout, "Give up waiting for the result after this many seconds (default 3600)", "S" },
	{ NULL },
};

/* A size field of the API as people read it, "-" if there is none. */
static char *size_text(json_t *v)
{
	return json_is_integer(v) ? herd_size_format((uint64_t)json_integer_value(v)) : g_strdup("-");
}

static const char *text_or_dash(json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "-";
}

/* POST /api/v1/disks/@name/@action with @body (may be NULL): the answer,
 * or NULL (printed) with *@rc. */
static json_t *disk_post(cli_ctx *ctx, const char *name, const char *action, json_t *body, int *rc)
{
	g_autofree char *path = cli_api_path("disks", name, action);
	return cli_request(ctx, "POST", path, body, rc);
}

static int run_disk_create(cli_ctx *ctx, int argc, char **argv)
{
	if ((!opt_storage && !opt_esan) || (!opt_size && opt_lun < 0)) {
		fprintf(stderr, "herd disk create: give --size SIZE and --storage STORAGE (on iSCSI: --lun N), "
				"or --size SIZE and --esan NODE1,NODE2.\n");
		return CLI_USAGE;
	}
	/* The server says what fits the storage (a size and a format, or a LUN). */
	g_autoptr(json_t) body = json_pack("{s:s}", "name", argv[0]);
	if (opt_storage)
		json_object_set_new(body, "storage", json_string(opt_storage));
	if (opt_esan)
		json_object_set_new(body, "esan", json_string(opt_esan));
	if (opt_size)
		json_object_set_new(body, "size", json_string(opt_size));
	if (opt_format)
		json_object_set_new(body, "format", json_string(opt_format));
	if (opt_lun >= 0)
		json_object_set_new(body, "lun", json_integer(opt_lun));
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/disks", body, &rc);
	if (!r)
		return rc;
	g_autofree char *size = size_text(json_object_get(r, "size"));
	json_t *esan = json_object_get(r, "esan");
	if (esan)
		printf("eSAN disk %s created: %s, replicas on %s and %s.\n", argv[0], size,
		       text_or_dash(json_object_get(json_array_get(json_object_get(esan, "replicas"), 0), "node")),
		       text_or_dash(json_object_get(json_array_get(json_object_get(esan, "replicas"), 1), "node")));
	else if (json_is_integer(json_object_get(r, "lun")))
		printf("Disk %s registered: %s, LUN %" JSON_INTEGER_FORMAT " of storage %s.\n", argv[0], size,
		       json_integer_value(json_object_get(r, "lun")), text_or_dash(json_object_get(r, "storage")));
	else
		printf("Disk %s created: %s, %s, %s.\n", argv[0], size,
		       text_or_dash(json_object_get(r, "format")), text_or_dash(json_object_get(r, "path")));
	cli_print_job_line(r);
	return CLI_OK;
}

/* One replica as people read it: "n1 uptodate", with what its herd-san
 * says when that adds something ("n1 uptodate syncing 42%" on the sync's
 * source, "n2 inconsistent being synced" on its target, which does not
 * count). */
static void replica_text(GString *out, json_t *r)
{
	g_string_append_printf(out, "%s %s", text_or_dash(json_object_get(r, "node")),
			       text_or_dash(json_object_get(r, "state")));
	json_t *san = json_object_get(r, "herd_san");
	json_t *sync = json_object_get(san, "sync");
	const char *conn = json_string_value(json_object_get(san, "conn"));
	if (json_is_object(sync) &&
	    g_strcmp0(json_string_value(json_object_get(sync, "role")), "target") == 0) {
		g_string_append(out, " being synced");
	} else if (json_is_object(sync)) {
		json_int_t done = json_integer_value(json_object_get(sync, "done"));
		json_int_t total = json_integer_value(json_object_get(sync, "total"));
		g_string_append_printf(out, " syncing %d%%", total > 0 ? (int)(done * 100 / total) : 0);
	} else if (conn && strcmp(conn, "connected") != 0) {
		g_string_append_printf(out, " %s", conn);
	} else if (!san || json_is_null(san)) {
		g_string_append(out, " (no herd-san report)");
	}
}

/* An eSAN disk's replicas ("n1 uptodate, n2 outdated standalone"), "-" for another disk. */
static char *replicas_text(json_t *esan)
{
	json_t *replicas = json_object_get(esan, "replicas");
	if (!json_array_size(replicas))
		return g_strdup("-");
	GString *out = g_string_new(NULL);
	size_t i;
	json_t *r;
	json_array_foreach(replicas, i, r) {
		if (i)
			g_string_append(out, ", ");
		replica_text(out, r);
	}
	return g_string_free(out, FALSE);
}

static int run_disk_list(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) list = cli_request(ctx, "GET", "/api/v1/disks", NULL, &rc);
	if (!list)
		return rc;
	cli_table *t = cli_table_new("NAME", "STORAGE", "FORMAT", "SIZE", "USED", "VM", "REPLICAS", NULL);
	size_t i;
	json_t *d;
	json_array_foreach(list, i, d) {
		g_autofree char *size = size_text(json_object_get(d, "size"));
		g_autofree char *used = size_text(json_object_get(d, "used"));
		g_autofree char *replicas = replicas_text(json_object_get(d, "esan"));
		cli_table_add(t, json_string_value(json_object_get(d, "name")),
			      json_object_get(d, "esan") ? "eSAN" : text_or_dash(json_object_get(d, "storage")),
			      text_or_dash(json_object_get(d, "format")), size, used,
			      text_or_dash(json_object_get(d, "vm")), replicas);
	}
	cli_table_print(t);
	return CLI_OK;
}

static int run_disk_show(cli_ctx *ctx, int argc, char **argv)
{
	g_autofree char *path = cli_api_path("disks", argv[0], NULL);
	int rc;
	g_autoptr(json_t) d = cli_request(ctx, "GET", path, NULL, &rc);
	if (!d)
		return rc;
	g_autofree char *size = size_text(json_object_get(d, "size"));
	g_autofree char *used = size_text(json_object_get(d, "used"));
	printf("Name:     %s\n", json_string_value(json_object_get(d, "name")));
	printf("UUID:     %s\n", json_string_value(json_object_get(d, "uuid")));
	printf("Storage:  %s\n", text_or_dash(json_object_get(d, "storage")));
	printf("Format:   %s\n", text_or_dash(json_object_get(d, "format")));
	printf("Size:     %s\n", size);
	printf("Used:     %s\n", used);
	if (json_object_get(d, "esan")) {
		g_autofree char *replicas = replicas_text(json_object_get(d, "esan"));
		printf("eSAN:     port %" JSON_INTEGER_FORMAT "\n",
		       json_integer_value(json_object_get(json_object_get(d, "esan"), "port")));
		printf("Replicas: %s\n", replicas);
	} else if (json_is_integer(json_object_get(d, "lun")))
		printf("LUN:      %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(d, "lun")));
	else
		printf("File:     %s\n", text_or_dash(json_object_get(d, "path")));
	printf("VM:       %s\n", text_or_dash(json_object_get(d, "vm")));
	return CLI_OK;
}

static int run_disk_resize(cli_ctx *ctx, int argc, char **argv)
{
	if (!opt_size) {
		fprintf(stderr, "herd disk resize: give --size SIZE (the new size) or --size +SIZE (that much more).\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) body = json_pack("{s:s}", "size", opt_size);
	int rc;
	g_autoptr(json_t) r = disk_post(ctx, argv[0], "resize", body, &rc);
	if (!r)
		return rc;
	g_autofree char *size = size_text(json_object_get(r, "size"));
	const char *live = json_string_value(json_object_get(r, "grown_live_in"));
	if (live)
		printf("Disk %s is %s now (grown live: VM %s sees it).\n", argv[0], size, live);
	else if (json_object_get(r, "esan"))
		printf("Disk %s is %s now (both replicas; a running guest sees it at its next start).\n", argv[0], size);
	else
		printf("Disk %s is %s now.\n", argv[0], size);
	cli_print_job_line(r);
	return CLI_OK;
}

static int run_disk_promote(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_pack("{s:b}", "force", opt_force);
	if (opt_node)
		json_object_set_new(body, "node", json_string(opt_node));
	int rc;
	g_autoptr(json_t) r = disk_post(ctx, argv[0], "promote", body, &rc);
	if (!r)
		return rc;
	g_autofree char *replicas = replicas_text(json_object_get(r, "esan"));
	printf("eSAN disk %s: %s; the discarded replica is synchronised in full from the other when its node is back.\n",
	       argv[0], replicas);
	return CLI_OK;
}

static int run_disk_resolve(cli_ctx *ctx, int argc, char **argv)
{
	if (!opt_keep) {
		fprintf(stderr, "herd disk resolve: give --keep NODE, the node whose replica is kept.\n");
		return CLI_USAGE;
	}
	g_autoptr(json_t) body = json_pack("{s:s}", "keep", opt_keep);
	int rc;
	g_autoptr(json_t) r = disk_post(ctx, argv[0], "resolve", body, &rc);
	if (!r)
		return rc;
	printf("eSAN disk %s: the replica on %s is kept; the other is synchronised in full from it.\n", argv[0],
	       opt_keep);
	return CLI_OK;
}

static int run_disk_attach(cli_ctx *ctx, int argc, char **argv)
{
	g_autoptr(json_t) body = json_object();
	if (opt_node)
		json_object_set_new(body, "node", json_string(opt_node));
	int rc;
	g_autoptr(json_t) r = disk_post(ctx, argv[0], "attach", body, &rc);
	if (!r)
		return rc;
	/* Without --node: the replica herd-san still reports detached. */
	const char *node = opt_node;
	size_t i;
	json_t *rep;
	json_array_foreach(json_object_get(json_object_get(r, "esan"), "replicas"), i, rep)
		if (!node && json_is_object(json_object_get(json_object_get(rep, "herd_san"), "disk")))
			node = json_string_value(json_object_get(rep, "node"));
	printf("eSAN disk %s: the replica on %s is attached again (its server starts anew on it); it is "
	       "synchronised in full from the other ('herd job list' shows the sync).\n", argv[0], node ? node : "?");
	return CLI_OK;
}

static int run_disk_verify(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) asked = disk_post(ctx, argv[0], "verify", NULL, &rc);
	if (!asked)
		return rc;
	json_t *v = json_object_get(json_object_get(asked, "esan"), "verify");
	json_int_t id = json_integer_value(json_object_get(v, "id"));
	printf("Comparing the replicas of %s on %s...\n", argv[0], text_or_dash(json_object_get(v, "node")));
	fflush(stdout);
	g_autofree char *get = cli_api_path("disks", argv[0], NULL);
	gint64 until = g_get_monotonic_time() + (gint64)opt_timeout * G_USEC_PER_SEC;
	while (g_get_monotonic_time() < until) {
		g_usleep(G_USEC_PER_SEC / 2);
		g_autoptr(json_t) d = cli_request(ctx, "GET", get, NULL, &rc);
		if (!d)
			return rc;
		v = json_object_get(json_object_get(d, "esan"), "verify");
		if (json_integer_value(json_object_get(v, "id")) != id) {
			fprintf(stderr, "herd disk verify: another verification of %s was asked meanwhile.\n", argv[0]);
			return CLI_ERROR;
		}
		if (!json_is_true(json_object_get(v, "done")))
			continue;
		const char *error = json_string_value(json_object_get(v, "error"));
		g_autofree char *compared = size_text(json_object_get(v, "compared"));
		if (error) {
			fprintf(stderr, "herd disk verify: %s could not be compared: %s\n", argv[0], error);
			return CLI_ERROR;
		}
		if (json_is_true(json_object_get(v, "equal"))) {
			printf("The replicas of %s are identical (%s compared).\n", argv[0], compared);
			return CLI_OK;
		}
		g_autofree char *differ = size_text(json_object_get(v, "differ"));
		printf("The replicas of %s differ: %s of %s, the first at byte %" JSON_INTEGER_FORMAT ".\n", argv[0],
		       differ, compared, json_integer_value(json_object_get(v, "first")));
		return CLI_ERROR;
	}
	fprintf(stderr, "herd disk verify: no result for %s after %d s ('herd disk show %s' shows it when it comes).\n",
		argv[0], opt_timeout, argv[0]);
	return CLI_ERROR;
}

static int run_disk_delete(cli_ctx *ctx, int argc, char **argv)
{
	return cli_delete_with_file(ctx, "disks", "Disk", argv[0]);
}

const cli_command cli_disk_commands[] = {
	{ "disk create", "NAME", "Create a disk (an image file on a storage, or an eSAN disk), or register an iSCSI LUN",
	  "Makes the image file with qemu-img on the storage (a dir storage this node reaches); "
	  "a file already at that place is never overwritten.  On an iSCSI storage, --lun N "
	  "registers that LUN of the target as the disk (made on the target, not by herd).  "
	  "--esan NODE1,NODE2 makes an eSAN disk: a replica on each of the two nodes, written "
	  "to both before the guest hears a write is done; a VM using it runs on those two nodes only.",
	  disk_create_options, 1, 1, run_disk_create },
	{ "disk list", NULL, "List the disks: size, space used, the VM using each", NULL, NULL, 0, 0, run_disk_list },
	{ "disk show", "NAME", "Show one disk", NULL, NULL, 1, 1, run_disk_show },
	{ "disk resize", "NAME", "Grow a disk (never shrinks it)",
	  "--size 30G sets the new size, --size +10G grows it by that much. A disk a running VM uses is "
	  "grown live by that VM's QEMU, on its node: the guest sees the new size at once.",
	  disk_resize_options, 1, 1, run_disk_resize },
	{ "disk delete", "NAME", "Delete a disk and its file (refused while a VM uses it)", NULL, NULL, 1, 1, run_disk_delete },
	{ "disk promote", "NAME", "Declare an eSAN disk's replica up to date as it is (--force)",
	  "When the only up-to-date replica is gone (its node dead, the other replica outdated), the VM "
	  "stays down rather than run on old data.  --force accepts the outdated replica as the disk: "
	  "what the other holds beyond it is lost; that one is synchronised in full from it when its node is back.",
	  disk_promote_options, 1, 1, run_disk_promote },
	{ "disk resolve", "NAME", "End an eSAN disk's split brain: keep one replica (--keep NODE)",
	  "Both replicas were written on their own (a split brain): herd connects neither until told which "
	  "to keep.  The other's writes since the split are lost; it is synchronised in full.",
	  disk_resolve_options, 1, 1, run_disk_resolve },
	{ "disk attach", "NAME", "Attach an eSAN disk's replica again after its local disk failed",
	  "A replica whose local disk failed is detached: the peer serves the disk alone.  Once the disk "
	  "under it is replaced or repaired, attach starts that replica's server (this volume's only) "
	  "again on it; it is synchronised in full from the other replica (a job).  Refused while a VM "
	  "runs on that node with the disk (migrate it to the peer or stop it first).",
	  disk_attach_options, 1, 1, run_disk_attach },
	{ "disk verify", "NAME", "Compare an eSAN disk's two replicas online",
	  "One replica node's herd-san reads both replicas (the guest may go on) and says whether they are identical.",
	  disk_verify_options, 1, 1, run_disk_verify },
	{ NULL },
};
