/*
 * What a blank node (herdd running, in no cluster yet) offers its web page
 * before there is a cluster with users: the setup code, and a look at the
 * certificate of a member it is to join (docs/cluster.md, "Forming from the
 * web UI").
 *
 * The setup code is a password of the pseudo-user API_SETUP_USER that only
 * a blank node knows (auth.c), made at random when it is first asked for
 * and shown only to root on the node's own socket (herd cluster
 * setup-code).  It lets in cluster create, join and the look at a member's
 * certificate (permission.c), nothing else; once the node is a member it
 * is forgotten, and a node that leaves its cluster gets a new one.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/client.h"
#include "common/error.h"
#include "common/json.h"
#include "common/password.h"
#include "common/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gio/gio.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <unistd.h>

bool api_setup_user(const char *user)
{
	return g_strcmp0(user, API_SETUP_USER) == 0;
}

/* 12 letters and digits that cannot be taken for one another (32 of them:
 * 60 bits), shown as XXXX-XXXX-XXXX. */
static char *code_new(void)
{
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	guint8 r[12];
	ssize_t n;
	do
		n = getrandom(r, sizeof(r), 0);
	while (n < 0 && errno == EINTR);
	g_assert(n == (ssize_t)sizeof(r));
	GString *s = g_string_new(NULL);
	for (size_t i = 0; i < sizeof(r); i++) {
		if (i && i % 4 == 0)
			g_string_append_c(s, '-');
		g_string_append_c(s, alphabet[r[i] % 32]);
	}
	return g_string_free(s, FALSE);
}

void api_setup_code_forget(api_ctx *a)
{
	if (a->setup_code)
		explicit_bzero(a->setup_code, strlen(a->setup_code));
	g_clear_pointer(&a->setup_code, g_free);
	g_clear_pointer(&a->setup_code_hash, g_free);
}

/* The code, made if there is none; NULL if it cannot be hashed. */
static const char *setup_code(api_ctx *a, GError **error)
{
	if (!a->setup_code) {
		g_autofree char *code = code_new();
		char *hash = herd_password_hash(code, error);
		if (!hash)
			return NULL;
		a->setup_code = g_steal_pointer(&code);
		a->setup_code_hash = hash;
	}
	return a->setup_code;
}

static bool blank(api_ctx *a)
{
	return a->formation && !herd_formation_member(a->formation);
}

char *api_setup_code_hash(api_ctx *a, GError **error)
{
	if (!blank(a)) {
		api_setup_code_forget(a);
		return NULL;
	}
	return setup_code(a, error) ? g_strdup(a->setup_code_hash) : NULL;
}

void api_cluster_setup_code_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	g_autoptr(GError) err = NULL;
	if (!http_request_is_local_root(req)) {
		http_respond_errorf(req, HERD_ERR_FORBIDDEN,
				    "Only root on this node's own socket may see its setup code (use 'herd cluster setup-code' on the node).");
		return;
	}
	if (!blank(a)) {
		api_setup_code_forget(a);
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "This node is a member of a cluster: it has no setup code; log in to its page as a user of the cluster.");
		return;
	}
	const char *code = setup_code(a, &err);
	if (!code) {
		http_respond_error(req, err);
		return;
	}
	http_respond_json(req, 200, json_pack("{s:s,s:s,s:s}", "code", code, "node", a->node->name,
					      "tls_fingerprint",
					      a->node->tls_fingerprint ? a->node->tls_fingerprint : ""));
}

/* ------------------------------------------------------------------ */
/* A look at a member before joining it                                */

typedef struct {
	char *address;
	json_t *answer;  /* the member's GET /cluster/ca */
	char *local;     /* this node's address towards it, or NULL */
} probe;

static void probe_free(gpointer p)
{
	probe *pr = p;
	g_free(pr->address);
	json_decref(pr->answer);
	g_free(pr->local);
	g_free(pr);
}

/* The local address that reaches @host, "HOST" or "HOST:PORT" (the
 * kernel's route choice); NULL if there is none. */
static char *local_address_towards(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	g_autofree char *bare = g_strdup(host);
	char *colon = strrchr(bare, ':');
	if (colon && strchr(bare, ':') == colon)
		*colon = '\0'; /* "host:port" */
	if (bare[0] == '[' && bare[strlen(bare) - 1] == ']') {
		memmove(bare, bare + 1, strlen(bare));
		bare[strlen(bare) - 1] = '\0';
	}
	if (getaddrinfo(bare, "5405", &hints, &res) != 0)
		return NULL;
	char *out = NULL;
	int fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[INET6_ADDRSTRLEN];
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
	    getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, len, buf, sizeof(buf), NULL, 0, NI_NUMERICHOST) == 0)
		out = g_strdup(buf);
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return out;
}

/* In a worker thread: the member's CA, as anyone may ask for it (the
 * fingerprint is what the operator compares). */
static void probe_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	probe *pr = data;
	GError *err = NULL;
	herd_client_options opts = { .host = pr->address, .insecure = true, .timeout_s = 20 };
	g_autoptr(herd_client) c = herd_client_new(&opts);
	pr->answer = herd_client_call(c, "GET", "/api/v1/cluster/ca", NULL, &err);
	if (!pr->answer) {
		g_task_return_error(task, err);
		return;
	}
	pr->local = local_address_towards(pr->address);
	g_task_return_boolean(task, TRUE);
}

static void on_probed(GObject *source, GAsyncResult *res, gpointer req)
{
	probe *pr = g_task_get_task_data(G_TASK(res));
	g_autoptr(GError) err = NULL;
	if (!g_task_propagate_boolean(G_TASK(res), &err)) {
		/* "Cannot reach herdd at …", or the member's own sentence. */
		if (err->domain == HERD_ERROR && err->code == HERD_ERR_UNAVAILABLE)
			http_respond_error(req, err);
		else
			http_respond_errorf(req, HERD_ERR_INVALID, "%s answers: %s", pr->address,
					    err->message);
		return;
	}
	const char *pem = json_string_value(json_object_get(pr->answer, "ca_cert"));
	g_autofree char *fp = pem ? herd_tls_fingerprint(pem, &err) : NULL;
	if (!fp) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "%s answered without a valid cluster certificate; it is no member of a herd cluster.",
				    pr->address);
		return;
	}
	json_t *links = json_array();
	if (pr->local)
		json_array_append_new(links, json_string(pr->local));
	http_respond_json(req, 200, json_pack("{s:s,s:s?,s:s,s:o}", "address", pr->address, "cluster",
					      json_string_value(json_object_get(pr->answer, "cluster")),
					      "fingerprint", fp, "links", links));
}

/* An address as the join takes it: a host name or IP address, perhaps with
 * ":PORT" ("[v6]:PORT"). */
static bool valid_member_address(const char *s)
{
	if (!s || strlen(s) > 261)
		return false;
	if (api_valid_address(s))
		return true;
	g_autofree char *host = g_strdup(s);
	char *colon = strrchr(host, ':');
	if (colon) {
		const char *port = colon + 1;
		if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port))
			return false;
		*colon = '\0';
	}
	size_t len = strlen(host);
	if (len > 2 && host[0] == '[' && host[len - 1] == ']') {
		host[len - 1] = '\0';
		return strchr(host + 1, ':') && api_valid_address(host + 1);
	}
	return api_valid_host(host);
}

void api_cluster_probe(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "address", NULL };
	g_autoptr(GError) err = NULL;
	if (!http_request_is_local_root(req) && !api_setup_user(http_request_user(req))) {
		http_respond_errorf(req, HERD_ERR_FORBIDDEN,
				    "Only root on this node's own socket, or its page with the setup code, may look at a cluster to join.");
		return;
	}
	if (!blank(a)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "This node is already a member of a cluster; leave it first with 'herd cluster leave'.");
		return;
	}
	g_autoptr(json_t) body = api_body(req, fields, &err);
	if (!body) {
		http_respond_error(req, err);
		return;
	}
	const char *address = json_string_value(json_object_get(body, "address"));
	if (!valid_member_address(address)) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "The member's address '%s' is not a host name or an IP address (with :PORT if its API is not on 8001).",
				    address ? address : "");
		return;
	}
	probe *pr = g_new0(probe, 1);
	pr->address = g_strdup(address);
	http_request_suspend(req);
	GTask *task = g_task_new(NULL, NULL, on_probed, req);
	g_task_set_task_data(task, pr, probe_free);
	g_task_run_in_thread(task, probe_worker);
	g_object_unref(task);
}
