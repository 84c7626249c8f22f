/*
 * herd cluster qdevice add|remove|status: the quorum device.
 *
 * As Proxmox's 'pvecm qdevice setup' does, the add goes to the qnetd host
 * over ssh as root (with the operator's keys, agent and known hosts, or
 * the --ssh-option given): one connection, in which qnetd signs the
 * cluster's certificate request and hands back its CA.  The request and
 * the cluster's key are made here, in a temporary NSS database that is
 * removed afterwards; the API gets qnetd's CA and the cluster's certificate
 * with its key (PKCS#12), and every node installs them from the store.
 */
#include "cli/cli.h"

#include "common/error.h"
#include "common/json.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>

static char **opt_ssh_options;
static gint opt_port;

static GOptionEntry add_options[] = {
	{ "port", 'p', 0, G_OPTION_ARG_INT, &opt_port, "qnetd's TCP port (default 5403)", "PORT" },
	{ "ssh-option", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &opt_ssh_options,
	  "An ssh option for the connection to HOST (repeatable), e.g. IdentityFile=/root/.ssh/qnetd",
	  "KEY=VALUE" },
	{ NULL },
};

/* What the qnetd host runs: sign the request (base64 in $2) for cluster $1
 * and print qnetd's CA (PEM), a mark, and the certificate (DER, base64).
 * Exit 3 and 4 say what is missing there, in a sentence on stderr. */
static const char remote_script[] =
	"set -e\n"
	"command -v corosync-qnetd-certutil >/dev/null || "
	"{ echo 'corosync-qnetd is not installed there (apt install corosync-qnetd).' >&2; exit 3; }\n"
	"corosync-qnetd-tool -s >/dev/null 2>&1 || "
	"{ echo 'corosync-qnetd is not running there (systemctl start corosync-qnetd).' >&2; exit 4; }\n"
	"tmp=$(mktemp -d); trap 'rm -rf \"$tmp\"' EXIT\n"
	"echo \"$2\" | base64 -d >\"$tmp/req.crq\"\n"
	"corosync-qnetd-certutil -s -c \"$tmp/req.crq\" -n \"$1\" >/dev/null\n"
	"cat /etc/corosync/qnetd/nssdb/qnetd-cacert.crt\n"
	"echo '--- herd: cluster certificate'\n"
	"base64 </etc/corosync/qnetd/nssdb/\"cluster-$1.crt\"\n";

#define CERT_MARK "--- herd: cluster certificate\n"

/* Run @argv; its stdout in *@out (may be NULL), else an error with its stderr. */
static bool run(const char *const *argv, char **out, const char *what, int *status, GError **error)
{
	g_autofree char *so = NULL, *se = NULL;
	int st = 0;
	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &so, &se, &st,
			  error))
		return false;
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (!g_spawn_check_wait_status(st, NULL)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL, "%s failed: %s", what,
			    g_strstrip(se ? se : g_strdup("")));
		return false;
	}
	if (out)
		*out = g_steal_pointer(&so);
	return true;
}

static bool write_file(const char *dir, const char *name, const void *data, gssize len, GError **error)
{
	g_autofree char *p = g_build_filename(dir, name, NULL);
	return g_file_set_contents(p, data, len, error);
}

/* Ask qnetd at @host (over ssh) to sign @req_der for @cluster: its CA (PEM)
 * and the certificate (DER). */
static bool qnetd_sign(const char *host, const char *cluster, const guchar *req, gsize req_len,
		       char **ca_pem, guchar **crt, gsize *crt_len, GError **error)
{
	g_autofree char *req_b64 = g_base64_encode(req, req_len);
	g_autofree char *q_script = g_shell_quote(remote_script);
	g_autofree char *q_cluster = g_shell_quote(cluster);
	g_autofree char *remote = g_strdup_printf("sh -c %s herd-qdevice %s %s", q_script, q_cluster,
						  req_b64);
	g_autofree char *target = g_strdup_printf("root@%s", host);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(argv, g_strdup("ssh"));
	/* ssh keeps the first value of an option: the operator's come first. */
	for (char **o = opt_ssh_options; o && *o; o++)
		g_ptr_array_add(argv, g_strdup_printf("-o%s", *o));
	g_ptr_array_add(argv, g_strdup("-oConnectTimeout=10"));
	g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(target));
	g_ptr_array_add(argv, g_strdup(remote));
	g_ptr_array_add(argv, NULL);
	g_autofree char *so = NULL, *se = NULL;
	int st = 0;
	/* stdin stays the terminal's: ssh may ask for a password or to accept
	 * the host's key. */
	if (!g_spawn_sync(NULL, (char **)argv->pdata, NULL,
			  G_SPAWN_SEARCH_PATH | G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, &so, &se, &st,
			  error))
		return false;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	g_strstrip(se);
	if (code == 255) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE,
			    "Cannot reach %s over ssh as root: %s", host, *se ? se : "ssh failed.");
		return false;
	}
	if (code == 3 || code == 4) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "%s: %s", host, se);
		return false;
	}
	char *mark = so ? strstr(so, CERT_MARK) : NULL;
	if (code != 0 || !mark) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL,
			    "qnetd on %s did not sign the cluster's certificate (exit %d): %s", host, code, se);
		return false;
	}
	*mark = '\0';
	*ca_pem = g_strdup(so);
	*crt = g_base64_decode(mark + strlen(CERT_MARK), crt_len);
	return true;
}

/*
 * The cluster's key and certificate request, signed by qnetd, exported with
 * the key as PKCS#12 (base64) -- corosync-qdevice-net-certutil's -i, -r and
 * -M, in @dir instead of the node's database.
 */
static bool make_certificates(const char *dir, const char *host, const char *cluster,
			      char **ca_pem, char **p12_b64, GError **error)
{
	guchar noise[64];
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (guchar)g_random_int();
	g_autofree char *subject = g_strdup_printf("CN=%s", cluster);
	g_autofree char *pwd = g_build_filename(dir, "pwdfile.txt", NULL);
	g_autofree char *noise_file = g_build_filename(dir, "noise.txt", NULL);
	g_autofree char *req_file = g_build_filename(dir, "req.crq", NULL);
	g_autofree char *ca_file = g_build_filename(dir, "qnetd-cacert.crt", NULL);
	g_autofree char *crt_file = g_build_filename(dir, "cluster.crt", NULL);
	g_autofree char *p12_file = g_build_filename(dir, "qdevice-net-node.p12", NULL);
	const char *init[] = { "certutil", "-N", "-d", dir, "-f", pwd, NULL };
	const char *request[] = { "certutil", "-R", "-s", subject, "-o", req_file, "-d", dir,
				  "-f", pwd, "-z", noise_file, NULL };
	const char *add_ca[] = { "certutil", "-A", "-d", dir, "-t", "CT,c,c", "-n", "QNet CA",
				 "-f", pwd, "-i", ca_file, NULL };
	const char *add_crt[] = { "certutil", "-A", "-d", dir, "-t", "u,u,u", "-n", "Cluster Cert",
				  "-f", pwd, "-i", crt_file, NULL };
	const char *export[] = { "pk12util", "-d", dir, "-o", p12_file, "-W", "", "-k", pwd,
				 "-n", "Cluster Cert", NULL };
	g_autofree char *req = NULL, *p12 = NULL;
	gsize req_len = 0, p12_len = 0, crt_len = 0;
	g_autofree guchar *crt = NULL;
	if (!write_file(dir, "pwdfile.txt", "", 0, error) ||
	    !write_file(dir, "noise.txt", (const char *)noise, sizeof(noise), error) ||
	    !run(init, NULL, "certutil -N (NSS database)", NULL, error) ||
	    !run(request, NULL, "certutil -R (certificate request)", NULL, error) ||
	    !g_file_get_contents(req_file, &req, &req_len, error) ||
	    !qnetd_sign(host, cluster, (guchar *)req, req_len, ca_pem, &crt, &crt_len, error) ||
	    !write_file(dir, "qnetd-cacert.crt", *ca_pem, -1, error) ||
	    !write_file(dir, "cluster.crt", (const char *)crt, crt_len, error) ||
	    !run(add_ca, NULL, "certutil -A (qnetd's CA)", NULL, error) ||
	    !run(add_crt, NULL, "certutil -A (the cluster's certificate)", NULL, error) ||
	    !run(export, NULL, "pk12util -o", NULL, error) ||
	    !g_file_get_contents(p12_file, &p12, &p12_len, error))
		return false;
	*p12_b64 = g_base64_encode((guchar *)p12, p12_len);
	return true;
}

static void remove_dir(const char *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const char *name;
	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, name, NULL);
		g_unlink(p);
	}
	g_rmdir(dir);
}

static int run_add(cli_ctx *ctx, int argc, char **argv)
{
	const char *host = argv[0];
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) cluster = cli_call(ctx, "GET", "/api/v1/cluster", NULL, &err);
	if (!cluster)
		return cli_report(err);
	const char *name = json_string_value(json_object_get(cluster, "name"));
	json_int_t port = opt_port ? opt_port : 5403;
	/* The cluster's own checks first (a qdevice already set, an odd node
	 * count, a node down): nothing is asked of qnetd before they pass. */
	g_autoptr(json_t) check = json_pack("{s:s,s:I,s:b}", "host", host, "port", port, "check", 1);
	g_autoptr(json_t) ok = cli_call(ctx, "POST", "/api/v1/cluster/qdevice", check, &err);
	if (!ok)
		return cli_report(err);
	g_autofree char *dir = g_dir_make_tmp("herd-qdevice-XXXXXX", &err);
	if (!dir)
		return cli_report(err);
	g_autofree char *ca = NULL, *p12 = NULL;
	bool made = make_certificates(dir, host, name, &ca, &p12, &err);
	remove_dir(dir);
	if (!made)
		return cli_report(err);
	g_autoptr(json_t) body = json_pack("{s:s,s:I,s:s,s:s}", "host", host, "port", port, "ca_cert",
					   ca, "p12", p12);
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "POST", "/api/v1/cluster/qdevice", body, &rc);
	if (!r)
		return rc;
	if (ctx->json)
		cli_print_json(r);
	else
		printf("The qdevice at %s:%lld is set (algorithm %s): every node starts corosync-qdevice now; 'herd cluster status' shows its vote.\n",
		       host, (long long)port,
		       json_string_value(json_object_get(r, "algorithm")) ?: "none while the node count is odd");
	return CLI_OK;
}

static int run_remove(cli_ctx *ctx, int argc, char **argv)
{
	int rc;
	g_autoptr(json_t) r = cli_request(ctx, "DELETE", "/api/v1/cluster/qdevice", NULL, &rc);
	if (!r)
		return rc;
	if (ctx->json)
		cli_print_json(r);
	else
		printf("The qdevice at %s is removed: every node stops corosync-qdevice%s.\n",
		       json_string_value(json_object_get(r, "removed")),
		       " (a two-node cluster is in corosync's two_node mode again)");
	return CLI_OK;
}

const cli_command cli_cluster_qdevice_commands[] = {
	{ "cluster qdevice add", "HOST", "Add a quorum device: corosync-qnetd on HOST breaks ties",
	  "Connects to HOST over ssh as root (one connection: your keys or agent, or a password),\n"
	  "where corosync-qnetd must be installed and running. qnetd signs a certificate for the\n"
	  "cluster; every node then runs corosync-qdevice with algorithm ffsplit. Only for an even\n"
	  "number of nodes, all of them up. On the qnetd host nothing else changes.",
	  add_options, 1, 1, run_add },
	{ "cluster qdevice remove", NULL, "Remove the quorum device", NULL, NULL, 0, 0, run_remove },
	{ NULL },
};
