/*
 * The API's HTTP layer and the CLI's client, end to end: a real
 * http_server in this process (its own thread for the HTTP work, the
 * handlers on this thread's GLib main loop), on a unix socket and on TCP
 * (plain and TLS), with a small route table; requests come from libcurl
 * (and herd_client) in other threads while the main thread runs the loop.
 */
#include "api/http.h"
#include "common/client.h"
#include "common/error.h"
#include "common/json.h"
#include "common/password.h"
#include "common/tls.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The server under test                                               */

typedef struct {
	http_server *srv;
	char *dir;
	char *sock;
	int port;         /* plain HTTP on 127.0.0.1 */
	int tls_port;     /* HTTPS on 127.0.0.1 */
	char *ca_cert, *ca_key, *cert, *key;
	http_request *hanging;
	GPtrArray *held;    /* every request h_hang holds */
	unsigned handled;
	GHashTable *users;  /* user name -> stored password hash */
	char *files;        /* the web UI's directory served, or NULL */
	http_feed *feed;    /* the last one h_feed made */
} server_fixture;

static server_fixture S;
static GThread *main_thread;  /* the one running the main loop */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void h_ping(http_request *req, gpointer user_data)
{
	g_assert_true(user_data == &S);
	S.handled++;
	http_respond_json(req, 200, json_pack("{s:b,s:o,s:s,s:s,s:s}", "pong", 1, "user",
					      str_or_null(http_request_user(req)), "peer",
					      http_request_peer(req), "method", http_request_method(req),
					      "path", http_request_path(req)));
}

static void h_vm_get(http_request *req, gpointer user_data)
{
	S.handled++;
	http_respond_json(req, 200, json_pack("{s:s,s:o}", "vm", http_request_param(req, "vm"),
					      "user", str_or_null(http_request_user(req))));
}

static void h_vm_put(http_request *req, gpointer user_data)
{
	g_autoptr(GError) err = NULL;
	json_t *body = http_request_json(req, &err);
	if (!body) {
		http_respond_error(req, err);
		return;
	}
	http_respond_json(req, 200, json_pack("{s:s,s:o}", "vm", http_request_param(req, "vm"),
					      "body", body));
}

static void h_vm_delete(http_request *req, gpointer user_data)
{
	http_respond_json(req, 200, json_pack("{s:s}", "deleted", http_request_param(req, "vm")));
}

static void h_disk_get(http_request *req, gpointer user_data)
{
	http_respond_json(req, 200, json_pack("{s:s,s:s,s:o}", "vm", http_request_param(req, "vm"),
					      "disk", http_request_param(req, "disk"), "none",
					      str_or_null(http_request_param(req, "nope"))));
}

static gboolean answer_later(gpointer data)
{
	http_respond_json(data, 202, json_pack("{s:b}", "late", 1));
	return G_SOURCE_REMOVE;
}

static void h_slow(http_request *req, gpointer user_data)
{
	http_request_suspend(req);
	g_timeout_add(30, answer_later, req);
}

static void h_hang(http_request *req, gpointer user_data)
{
	http_request_suspend(req);
	S.hanging = req;
	if (S.held)
		g_ptr_array_add(S.held, req);
}

/* Where handlers run: on the thread of the main loop, in its dispatch. */
static void h_where(http_request *req, gpointer user_data)
{
	S.handled++;
	http_respond_json(req, 200, json_pack("{s:b,s:b}", "main_thread",
					      g_thread_self() == main_thread, "in_main_loop",
					      g_main_context_is_owner(g_main_context_default())));
}

static void h_query(http_request *req, gpointer user_data)
{
	http_respond_json(req, 200, json_pack("{s:o,s:o,s:o}", "a", str_or_null(http_request_query(req, "a")),
					      "b", str_or_null(http_request_query(req, "b")), "c",
					      str_or_null(http_request_query(req, "c"))));
}

static void h_error(http_request *req, gpointer user_data)
{
	http_respond_errorf(req, HERD_ERR_CONFLICT, "VM '%s' exists.", "x");
}

static void h_odd_error(http_request *req, gpointer user_data)
{
	const char *kind = http_request_query(req, "kind");
	if (g_strcmp0(kind, "unknown-code") == 0)
		http_respond_json(req, 418, json_pack("{s:{s:s,s:s}}", "error", "code", "teapot",
						      "message", "I am a teapot."));
	else if (g_strcmp0(kind, "no-message") == 0)
		http_respond_json(req, 500, json_pack("{s:i}", "x", 1));
	else if (g_strcmp0(kind, "data-with-error") == 0)
		/* a VM whose last start failed: its "error" is data */
		http_respond_json(req, 200, json_pack("{s:s,s:s}", "name", "web1", "error",
						      "Cannot start: no such disk."));
	else if (g_strcmp0(kind, "foreign") == 0) {
		g_autoptr(GError) e = g_error_new_literal(G_FILE_ERROR, G_FILE_ERROR_FAILED, "Foreign.");
		http_respond_error(req, e);
	} else
		http_respond_bytes(req, 200, "text/plain", "hello", 5);
}

static void h_noanswer(http_request *req, gpointer user_data)
{
}

static void h_header(http_request *req, gpointer user_data)
{
	http_respond_json(req, 200, json_pack("{s:o}", "x", str_or_null(http_request_header(req, "X-Test"))));
}

static void h_echo(http_request *req, gpointer user_data)
{
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	http_respond_json(req, 200, json_pack("{s:I,s:b}", "len", (json_int_t)len, "starts_x",
					      len > 0 && body[0] == 'x'));
}

static void h_count(http_request *req, gpointer user_data)
{
	S.handled++;
	h_echo(req, user_data);
}

static void h_bad_message(http_request *req, gpointer user_data)
{
	/* a message that is not valid UTF-8 (e.g. made from raw input) */
	http_respond_errorf(req, HERD_ERR_INVALID, "Bad byte \xff in the request.");
}

/* A streamed body (HTTP_ROUTE_STREAM): PUT /api/v1/upload/{name}.  Name
 * "taken" is refused before the body; "gated" writes only while the gate
 * of the password checks (below) is open; "bad-write" fails its first
 * write. */
static void gate_pass(void);
static struct {
	gint bytes_seen;       /* for the main thread to poll */
	GChecksum *sha256;
	guint64 bytes;
	unsigned writes, finishes, dones;
	bool complete;         /* what finish() heard */
	char *done_error;      /* what done() heard */
	guint64 announced;     /* Content-Length as the handler saw it */
} up;

static bool up_write(gpointer user, const void *data, size_t len, GError **error)
{
	g_assert_false(g_thread_self() == main_thread);
	if (strcmp(user, "gated") == 0)
		gate_pass();
	up.writes++;
	g_checksum_update(up.sha256, data, (gssize)len);
	up.bytes += len;
	g_atomic_int_add(&up.bytes_seen, (gint)len);
	if (strcmp(user, "bad-write") == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "The disk is full.");
		return false;
	}
	return true;
}

static bool up_finish(gpointer user, bool complete, GError **error)
{
	g_assert_false(g_thread_self() == main_thread);
	up.finishes++;
	up.complete = complete;
	return true;
}

static void up_done(http_request *req, gpointer user, const GError *error)
{
	g_assert_true(g_thread_self() == main_thread);
	up.dones++;
	g_free(up.done_error);
	up.done_error = error ? g_strdup(error->message) : NULL;
	if (error)
		http_respond_error(req, error);
	else
		http_respond_json(req, 201, json_pack("{s:I,s:s}", "bytes", (json_int_t)up.bytes, "sha256",
						      g_checksum_get_string(up.sha256)));
	g_free(user);
}

static const http_body_sink up_sink = { up_write, up_finish, up_done };

static void h_upload(http_request *req, gpointer user_data)
{
	S.handled++;
	const char *name = http_request_param(req, "name");
	up.announced = http_request_content_length(req);
	if (strcmp(name, "taken") == 0) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Upload %s exists already.", name);
		return;
	}
	if (up.sha256)
		g_checksum_free(up.sha256);
	up.sha256 = g_checksum_new(G_CHECKSUM_SHA256);
	up.bytes = 0;
	g_atomic_int_set(&up.bytes_seen, 0);
	up.writes = up.finishes = 0;
	http_request_stream_body(req, &up_sink, g_strdup(name));
}

/* An upgraded connection's application: echoes what comes in upper case
 * until "quit" or the end, then gives the connection back. */
static gint upgrades_ended, upgrades_dropped;

typedef struct {
	http_upgraded *up;
	int fd;
} echo_app;

static gpointer echo_run(gpointer p)
{
	echo_app *a = p;
	char buf[256];
	for (;;) {
		struct pollfd pfd = { a->fd, POLLIN, 0 };
		if (poll(&pfd, 1, 30000) <= 0)
			break;
		ssize_t n = recv(a->fd, buf, sizeof(buf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0 || (n >= 4 && memcmp(buf, "quit", 4) == 0))
			break;
		for (ssize_t i = 0; i < n; i++)
			buf[i] = g_ascii_toupper(buf[i]);
		g_assert_cmpint(send(a->fd, buf, (size_t)n, MSG_NOSIGNAL), ==, n);
	}
	close(a->fd);
	http_upgraded_close(a->up);
	g_free(a);
	g_atomic_int_inc(&upgrades_ended);
	g_main_context_wakeup(NULL);
	return NULL;
}

static void echo_upgraded(http_upgraded *handle, int fd, const void *extra, size_t extra_len,
			  gpointer user)
{
	g_assert_cmpuint(extra_len, ==, 0);
	echo_app *a = g_new0(echo_app, 1);
	a->up = handle;
	a->fd = fd;
	g_thread_unref(g_thread_new("echo", echo_run, a));
}

static void echo_drop(gpointer user)
{
	g_atomic_int_inc(&upgrades_dropped);
}

static void h_upgrade(http_request *req, gpointer user_data)
{
	http_request_add_answer_header(req, "Upgrade", "echo");
	http_request_add_answer_header(req, "Connection", "Upgrade");
	http_respond_upgrade(req, echo_upgraded, NULL, echo_drop);
}

/* A feed (server-sent events' transport) of at most 64 bytes queued. */
static void h_feed(http_request *req, gpointer user_data)
{
	S.handled++;
	S.feed = http_respond_feed(req, "text/event-stream", 64);
	g_assert_true(http_feed_push(S.feed, "hello\n", 6));
}

static const http_route routes[] = {
	{ "GET", "/api/v1/feed", h_feed, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/ping", h_ping, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/me", h_ping, 0 },
	{ "GET", "/api/v1/vms/{vm}", h_vm_get, 0 },
	{ "PUT", "/api/v1/vms/{vm}", h_vm_put, 0 },
	{ "DELETE", "/api/v1/vms/{vm}", h_vm_delete, 0 },
	{ "GET", "/api/v1/vms/{vm}/disks/{disk}", h_disk_get, 0 },
	{ "GET", "/api/v1/vms/special", h_vm_get, 0 },       /* shadowed by {vm} */
	{ "POST", "/api/v1/slow", h_slow, HTTP_ROUTE_PUBLIC },
	{ "POST", "/api/v1/hang", h_hang, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/query", h_query, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/error", h_error, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/odd", h_odd_error, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/noanswer", h_noanswer, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/header", h_header, HTTP_ROUTE_PUBLIC },
	{ "POST", "/api/v1/echo", h_echo, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/bad-message", h_bad_message, HTTP_ROUTE_PUBLIC },
	{ "PUT", "/api/v1/count", h_count, 0 },
	{ "GET", "/api/v1/where", h_where, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/where-private", h_where, 0 },
	{ "PUT", "/api/v1/upload/{name}", h_upload, HTTP_ROUTE_STREAM },
	{ "GET", "/api/v1/upgrade", h_upgrade, HTTP_ROUTE_PUBLIC },
};

/* ------------------------------------------------------------------ */
/* Users and password checks                                           */

/* Made once (a yescrypt hash costs as much as a check). */
static char *alice_hash;       /* "secret-alice" */
static char *alice_new_hash;   /* "new-secret-alice" */
#define N_CROWD 4              /* crowd0..3, passwords "crowd-password-N" */
static char *crowd_hash[N_CROWD];

/* The "Authorization: Basic …" header of @user:@password. */
static char *basic(const char *user, const char *password)
{
	g_autofree char *cred = g_strdup_printf("%s:%s", user, password);
	g_autofree char *b64 = g_base64_encode((const guchar *)cred, strlen(cred));
	return g_strdup_printf("Authorization: Basic %s", b64);
}

/* The application's side: S.users; "banned" is refused whatever its password. */
static char *lookup(const char *user, gpointer user_data, GError **error)
{
	g_assert_true(user_data == &S);
	/* the application's data is read where the application runs */
	g_assert_true(g_thread_self() == main_thread);
	if (strcmp(user, "banned") == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_FORBIDDEN, "User 'banned' may not use the API.");
		return NULL;
	}
	return g_strdup(g_hash_table_lookup(S.users, user));
}

/* Every password check goes through here: counted, and held while the
 * gate is closed. */
static struct {
	GMutex lock;
	GCond cond;
	bool closed;
	unsigned inside;   /* checks held at the gate */
	gint checks;
} gate;

/* Wait while the gate is closed. */
static void gate_pass(void)
{
	g_mutex_lock(&gate.lock);
	gate.inside++;
	while (gate.closed)
		g_cond_wait(&gate.cond, &gate.lock);
	gate.inside--;
	g_mutex_unlock(&gate.lock);
	g_main_context_wakeup(NULL);
}

static bool verify_at_gate(const char *password, const char *hash)
{
	g_atomic_int_inc(&gate.checks);
	gate_pass();
	return herd_password_verify(password, hash);
}

static void gate_set(bool closed)
{
	g_mutex_lock(&gate.lock);
	gate.closed = closed;
	g_cond_broadcast(&gate.cond);
	g_mutex_unlock(&gate.lock);
}

static unsigned gate_inside(void)
{
	g_mutex_lock(&gate.lock);
	unsigned n = gate.inside;
	g_mutex_unlock(&gate.lock);
	return n;
}

static const http_credentials_config test_checker = { .verify = verify_at_gate };

/* The Authorization header of crowd user @i. */
static char *crowd_header(int i)
{
	g_autofree char *user = g_strdup_printf("crowd%d", i);
	g_autofree char *password = g_strdup_printf("crowd-password-%d", i);
	return basic(user, password);
}

/* A failed login is logged as a warning (fatal in tests unless expected). */
static void expect_failed_login(void)
{
	g_test_expect_message("api", G_LOG_LEVEL_WARNING, "failed login from *");
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* with_files(): the server also serves a web UI's files from S.files. */
static bool serve_files;

static void put_file(const char *rel, const char *text)
{
	g_autofree char *path = g_build_filename(S.dir, rel, NULL);
	g_autofree char *dir = g_path_get_dirname(path);
	g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
	g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* ui/index.html, ui/assets/app-ABCD1234.js, and beside ui/ a secret that
 * no path may reach (also not through ui/link.txt, a symlink to it). */
static void files_setup(void)
{
	put_file("ui/index.html", "<!doctype html><title>herd</title>");
	put_file("ui/assets/app-ABCD1234.js", "console.log(1);");
	put_file("ui/assets/style-ABCD1234.css", "body{}");
	put_file("ui/.hidden", "hidden");
	put_file("secret.txt", "root:secret");
	S.files = g_build_filename(S.dir, "ui", NULL);
	g_autofree char *link = g_build_filename(S.files, "link.txt", NULL);
	g_assert_cmpint(symlink("../secret.txt", link), ==, 0);
	http_server_set_files(S.srv, S.files);
}

static void server_start(void)
{
	g_autoptr(GError) error = NULL;
	S.dir = g_dir_make_tmp("herd-http-XXXXXX", &error);
	g_assert_no_error(error);
	S.sock = g_build_filename(S.dir, "run", "herd.sock", NULL); /* "run" made by listen */
	gate_set(false);
	g_atomic_int_set(&gate.checks, 0);
	S.users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_hash_table_insert(S.users, g_strdup("alice"), g_strdup(alice_hash));
	for (int i = 0; i < N_CROWD; i++)
		g_hash_table_insert(S.users, g_strdup_printf("crowd%d", i), g_strdup(crowd_hash[i]));
	S.srv = http_server_new(routes, G_N_ELEMENTS(routes), &S);
	http_server_set_auth(S.srv, lookup, &test_checker);
	if (serve_files)
		files_setup();
	g_assert_true(http_server_listen_unix(S.srv, S.sock, &error));
	g_assert_no_error(error);
	S.port = free_port();
	g_assert_true(http_server_listen_tcp(S.srv, "127.0.0.1", S.port, NULL, NULL, &error));
	g_assert_no_error(error);
	g_assert_true(herd_tls_generate("test CA", NULL, NULL, NULL, true, 30, &S.ca_cert, &S.ca_key, &error));
	const char *const sans[] = { "127.0.0.1", NULL };
	g_assert_true(herd_tls_generate("n1", sans, S.ca_cert, S.ca_key, false, 30, &S.cert, &S.key, &error));
	S.tls_port = free_port();
	g_assert_true(http_server_listen_tcp(S.srv, "127.0.0.1", S.tls_port, S.cert, S.key, &error));
	g_assert_no_error(error);
}

static void rm_rf(const char *path)
{
	GDir *d = g_dir_open(path, 0, NULL);
	if (!d) {
		g_unlink(path);
		return;
	}
	const char *n;
	while ((n = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(path, n, NULL);
		rm_rf(p);
	}
	g_dir_close(d);
	g_rmdir(path);
}

static void server_stop(void)
{
	g_clear_pointer(&S.srv, http_server_free);
	g_clear_pointer(&S.users, g_hash_table_unref);
	rm_rf(S.dir);
	g_free(S.dir);
	g_free(S.sock);
	g_free(S.ca_cert);
	g_free(S.ca_key);
	g_free(S.cert);
	g_free(S.key);
	g_free(S.files);
	memset(&S, 0, sizeof(S));
}

/* ------------------------------------------------------------------ */
/* A client in another thread                                          */

/* Run @fn(@data) in a thread while this thread runs the main loop. */
typedef struct {
	GThreadFunc fn;
	gpointer data;
	gint done;
} blocking;

static gpointer blocking_thread(gpointer p)
{
	blocking *b = p;
	b->fn(b->data);
	g_atomic_int_set(&b->done, 1);
	g_main_context_wakeup(NULL);
	return NULL;
}

static void run_blocking(GThreadFunc fn, gpointer data)
{
	blocking b = { fn, data, 0 };
	GThread *t = g_thread_new("client", blocking_thread, &b);
	while (!g_atomic_int_get(&b.done))
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(t);
}

typedef enum { VIA_UNIX, VIA_TCP } via;

typedef struct {
	via via;
	const char *method;
	char *url;
	const char *body;
	size_t body_len;
	const char *header;   /* one extra request header, or NULL */
	/* answer */
	CURLcode rc;
	long status;
	GString *text;
	GString *headers;
	json_t *json;
} call;

static size_t append(char *d, size_t size, size_t n, void *user)
{
	g_string_append_len(user, d, (gssize)(size * n));
	return size * n;
}

static gpointer do_call(gpointer p)
{
	call *c = p;
	CURL *curl = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	curl_easy_setopt(curl, CURLOPT_URL, c->url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, c->text);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, append);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, c->headers);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	if (c->via == VIA_UNIX)
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, S.sock);
	if (c->body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
	}
	if (c->header)
		hdrs = curl_slist_append(hdrs, c->header);
	/* the body goes out at once unless the call asks to wait for 100 */
	if (!c->header || !g_str_has_prefix(c->header, "Expect:"))
		hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	c->rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &c->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	return NULL;
}

static void call_free(call *c)
{
	g_free(c->url);
	g_string_free(c->text, TRUE);
	g_string_free(c->headers, TRUE);
	json_decref(c->json);
	g_free(c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(call, call_free)

static call *request_full(via v, const char *method, const char *path, const char *body,
			  size_t body_len, const char *header)
{
	call *c = g_new0(call, 1);
	c->via = v;
	c->method = method;
	c->url = v == VIA_UNIX ? g_strdup_printf("http://localhost%s", path)
			       : g_strdup_printf("http://127.0.0.1:%d%s", S.port, path);
	c->body = body;
	c->body_len = body ? (body_len ? body_len : strlen(body)) : 0;
	c->header = header;
	c->text = g_string_new(NULL);
	c->headers = g_string_new(NULL);
	run_blocking(do_call, c);
	g_assert_cmpint(c->rc, ==, CURLE_OK);
	c->json = json_loadb(c->text->str, c->text->len, 0, NULL);
	return c;
}

static char *alice_header;  /* basic("alice", "secret-alice") */

/* As the unix socket's client: root when the tests run as root, else
 * alice. */
static const char *local_auth(void)
{
	return getuid() == 0 ? NULL : alice_header;
}

static call *request(const char *method, const char *path, const char *body)
{
	return request_full(VIA_UNIX, method, path, body, 0, local_auth());
}

/* The response header @name, or NULL. */
static char *header_of(call *c, const char *name)
{
	g_auto(GStrv) lines = g_strsplit(c->headers->str, "\r\n", -1);
	for (char **l = lines; *l; l++) {
		size_t n = strlen(name);
		if (g_ascii_strncasecmp(*l, name, n) == 0 && (*l)[n] == ':')
			return g_strstrip(g_strdup(*l + n + 1));
	}
	return NULL;
}

/* The answer is {"error":{"code":@code,"message":…@needle…}} with @status. */
static void expect_error(call *c, unsigned status, const char *code, const char *needle)
{
	g_assert_cmpint(c->status, ==, status);
	if (!c->json)
		g_error("error answer is not JSON: '%s'", c->text->str);
	g_autofree char *ct = header_of(c, "Content-Type");
	g_assert_cmpstr(ct, ==, "application/json");
	json_t *e = json_object_get(c->json, "error");
	g_assert_true(json_is_object(e));
	g_assert_cmpuint(json_object_size(e), ==, 2);
	g_assert_cmpuint(json_object_size(c->json), ==, 1);
	g_assert_cmpstr(json_string_value(json_object_get(e, "code")), ==, code);
	const char *msg = json_string_value(json_object_get(e, "message"));
	g_assert_nonnull(msg);
	if (!strstr(msg, needle))
		g_error("'%s' does not mention '%s'", msg, needle);
}

static const char *str(call *c, const char *key)
{
	return json_string_value(json_object_get(c->json, key));
}

/* GET /api/v1/me over TCP with @header: a failed login (logged), 401. */
static call *wrong_login(const char *header)
{
	expect_failed_login();
	call *c = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, header);
	g_test_assert_expected_messages();
	expect_error(c, 401, "unauthorized", "Wrong user name or password.");
	return c;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

static void test_routing(void)
{
	g_autoptr(call) ping = request("GET", "/api/v1/ping", NULL);
	g_assert_cmpint(ping->status, ==, 200);
	g_assert_true(json_is_true(json_object_get(ping->json, "pong")));
	g_assert_cmpstr(str(ping, "peer"), ==, "unix");
	g_assert_cmpstr(str(ping, "method"), ==, "GET");
	g_assert_cmpstr(str(ping, "path"), ==, "/api/v1/ping");
	g_assert_true(json_is_null(json_object_get(ping->json, "user"))); /* public: nobody asked */
	g_autofree char *ct = header_of(ping, "Content-Type");
	g_assert_cmpstr(ct, ==, "application/json");
	g_autofree char *cache = header_of(ping, "Cache-Control");
	g_assert_cmpstr(cache, ==, "no-store");

	/* {param} matches one segment, whatever it holds */
	g_autoptr(call) vm = request("GET", "/api/v1/vms/web1", NULL);
	g_assert_cmpint(vm->status, ==, 200);
	g_assert_cmpstr(str(vm, "vm"), ==, "web1");
	g_assert_cmpstr(str(vm, "user"), ==, getuid() == 0 ? "root" : "alice");
	g_autoptr(call) uuid = request("GET", "/api/v1/vms/6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab", NULL);
	g_assert_cmpstr(str(uuid, "vm"), ==, "6f1c2d3e-4a5b-4c6d-8e7f-0123456789ab");
	g_autoptr(call) escaped = request("GET", "/api/v1/vms/a%20b", NULL);
	g_assert_cmpstr(str(escaped, "vm"), ==, "a b");
	g_autoptr(call) disk = request("GET", "/api/v1/vms/web1/disks/vda", NULL);
	g_assert_cmpstr(str(disk, "vm"), ==, "web1");
	g_assert_cmpstr(str(disk, "disk"), ==, "vda");
	g_assert_true(json_is_null(json_object_get(disk->json, "none")));
	/* a trailing slash is tolerated */
	g_autoptr(call) slash = request("GET", "/api/v1/vms/web1/", NULL);
	g_assert_cmpint(slash->status, ==, 200);
	g_assert_cmpstr(str(slash, "vm"), ==, "web1");
	/* the method picks the route */
	g_autoptr(call) del = request("DELETE", "/api/v1/vms/web1", NULL);
	g_assert_cmpstr(str(del, "deleted"), ==, "web1");
	g_autoptr(call) put = request("PUT", "/api/v1/vms/web1", "{\"ha\":true}");
	g_assert_cmpint(put->status, ==, 200);
	g_assert_true(json_is_true(json_object_get(json_object_get(put->json, "body"), "ha")));
	/* headers reach the handler */
	g_autoptr(call) hdr = request_full(VIA_UNIX, "GET", "/api/v1/header", NULL, 0, "X-Test: yes");
	g_assert_cmpstr(str(hdr, "x"), ==, "yes");
	/* TCP peers are named by address */
	g_autoptr(call) tcp = request_full(VIA_TCP, "GET", "/api/v1/ping", NULL, 0, NULL);
	g_assert_cmpint(tcp->status, ==, 200);
	g_assert_cmpstr(str(tcp, "peer"), ==, "127.0.0.1");
}

static void test_not_found(void)
{
	static const char *const paths[] = {
		"/", "/api", "/api/v1", "/api/v1/", "/api/v1/nope", "/api/v1/vms",
		"/api/v1/vms/", "/api/v1/vms//disks/vda", "/api/v1/vms/web1/disks",
		"/api/v1/vms/web1/disks/vda/extra", "/API/v1/ping", "/api/v1/ping/x",
		"//api/v1/ping",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
		g_autoptr(call) c = request("GET", paths[i], NULL);
		g_autofree char *want = g_strdup_printf("There is no API resource at %s.", paths[i]);
		expect_error(c, 404, "not_found", want);
	}
}

/* A path segment is a name: an encoded NUL would cut it short (libmicrohttpd
 * hands the decoded path over as a C string) and an encoded '/' would split
 * it, so both are refused, in any case and on any route.  Other escapes are
 * decoded. */
static void test_path_escapes(void)
{
	static const struct { const char *path, *needle; } bad[] = {
		{ "/api/v1/vms/ca%00", "%00" },
		{ "/api/v1/vms/ca%00/disks/vda", "%00" },
		{ "/api/v1/vms/web1%00x", "an encoded NUL byte" },
		{ "/api/v1/vms/a%2Fdisks%2Fvda", "%2F" },
		{ "/api/v1/vms/a%2fdisks%2fvda", "an encoded '/'" },
		{ "/api/v1/vms/web1%2F", "/api/v1/vms/web1%2F" },
		{ "/api/v1/ping%00", "%00" },
		{ "/api/v1/nope%2F", "%2F" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(call) c = request("GET", bad[i].path, NULL);
		expect_error(c, 400, "invalid", bad[i].needle);
		/* also before authentication */
		g_autoptr(call) anon = request_full(VIA_TCP, "GET", bad[i].path, NULL, 0, NULL);
		expect_error(anon, 400, "invalid", bad[i].needle);
	}
	/* other escapes are decoded; "%252F" is a name holding "%2F" */
	g_autoptr(call) space = request("GET", "/api/v1/vms/a%20b", NULL);
	g_assert_cmpstr(str(space, "vm"), ==, "a b");
	g_autoptr(call) pct = request("GET", "/api/v1/vms/a%252Fb", NULL);
	g_assert_cmpint(pct->status, ==, 200);
	g_assert_cmpstr(str(pct, "vm"), ==, "a%2Fb");
	g_autoptr(call) pct0 = request("GET", "/api/v1/vms/%2500", NULL);
	g_assert_cmpstr(str(pct0, "vm"), ==, "%00");
	/* escapes in the query are the query's business */
	g_autoptr(call) q = request("GET", "/api/v1/query?a=x%2Fy", NULL);
	g_assert_cmpint(q->status, ==, 200);
	g_assert_cmpstr(str(q, "a"), ==, "x/y");
}

static void test_method_not_allowed(void)
{
	g_autoptr(call) c = request("POST", "/api/v1/vms/web1", "{}");
	expect_error(c, 405, "method_not_allowed",
		     "POST is not allowed on /api/v1/vms/web1 (allowed: GET, PUT, DELETE).");
	g_autofree char *allow = header_of(c, "Allow");
	g_assert_cmpstr(allow, ==, "GET, PUT, DELETE");

	/* each method once, even when several routes allow it */
	g_autoptr(call) twice = request("POST", "/api/v1/vms/special", "{}");
	g_autofree char *allow3 = header_of(twice, "Allow");
	g_assert_cmpstr(allow3, ==, "GET, PUT, DELETE");

	g_autoptr(call) p = request("DELETE", "/api/v1/ping", NULL);
	expect_error(p, 405, "method_not_allowed", "(allowed: GET)");
	g_autofree char *allow2 = header_of(p, "Allow");
	g_assert_cmpstr(allow2, ==, "GET");

	g_autoptr(call) odd = request("PATCH", "/api/v1/slow", NULL);
	expect_error(odd, 405, "method_not_allowed", "PATCH is not allowed");
	/* a 405 is decided before authentication: it tells nothing private */
	g_autoptr(call) anon = request_full(VIA_TCP, "POST", "/api/v1/vms/web1", "{}", 0, NULL);
	expect_error(anon, 405, "method_not_allowed", "allowed: GET, PUT, DELETE");
}

static void test_errors(void)
{
	g_autoptr(call) c = request("GET", "/api/v1/error", NULL);
	expect_error(c, 409, "conflict", "VM 'x' exists.");
	/* an error of another domain is an internal error */
	g_autoptr(call) f = request("GET", "/api/v1/odd?kind=foreign", NULL);
	expect_error(f, 500, "internal", "Foreign.");

	/* the body: not JSON, not an object, empty, duplicate keys */
	g_autoptr(call) bad = request("PUT", "/api/v1/vms/web1", "{\"ha\":");
	expect_error(bad, 400, "invalid", "The request body is not valid JSON");
	expect_error(bad, 400, "invalid", "line 1");
	g_autoptr(call) arr = request("PUT", "/api/v1/vms/web1", "[1,2]");
	expect_error(arr, 400, "invalid", "The request body must be a JSON object.");
	g_autoptr(call) empty = request("PUT", "/api/v1/vms/web1", "");
	expect_error(empty, 400, "invalid", "The request needs a JSON object as its body.");
	g_autoptr(call) none = request("PUT", "/api/v1/vms/web1", NULL);
	expect_error(none, 400, "invalid", "The request needs a JSON object as its body.");
	g_autoptr(call) dup = request("PUT", "/api/v1/vms/web1", "{\"a\":1,\"a\":2}");
	expect_error(dup, 400, "invalid", "not valid JSON");
	g_autoptr(call) nul = request_full(VIA_UNIX, "PUT", "/api/v1/vms/web1", "{\"a\":\"\0\"}", 9, local_auth());
	expect_error(nul, 400, "invalid", "not valid JSON");
	g_autoptr(call) utf = request("PUT", "/api/v1/vms/web1", "{\"a\":\"\xff\"}");
	expect_error(utf, 400, "invalid", "not valid JSON");

	/* a handler that forgets to answer: the server answers for it */
	g_test_expect_message("api", G_LOG_LEVEL_CRITICAL, "*returned without answering*");
	g_autoptr(call) silent = request("GET", "/api/v1/noanswer", NULL);
	g_test_assert_expected_messages();
	expect_error(silent, 500, "internal", "The request was not answered.");
	/* and the server goes on */
	g_autoptr(call) ping = request("GET", "/api/v1/ping", NULL);
	g_assert_cmpint(ping->status, ==, 200);
}

static void test_body_limit(void)
{
	gsize n = HTTP_MAX_BODY_BYTES;
	g_autofree char *body = g_malloc(n + 1);
	memset(body, 'x', n + 1);
	g_autoptr(call) at = request_full(VIA_UNIX, "POST", "/api/v1/echo", body, n, NULL);
	g_assert_cmpint(at->status, ==, 200);
	g_assert_cmpint(json_integer_value(json_object_get(at->json, "len")), ==, (json_int_t)n);
	/* A body announced too large is refused before it is read.  The client
	 * waits for "100 Continue" as curl does for large bodies: one that sends
	 * it all at once may see the connection reset instead of the answer. */
	g_autoptr(call) over = request_full(VIA_UNIX, "POST", "/api/v1/echo", body, n + 1,
					    "Expect: 100-continue");
	expect_error(over, 413, "too_large", "The request body is larger than 8388608 bytes.");
	/* also before authentication and routing */
	g_autoptr(call) anon = request_full(VIA_TCP, "PUT", "/api/v1/vms/x", body, n + 1,
					    "Expect: 100-continue");
	expect_error(anon, 413, "too_large", "larger than");
	/* one sent in chunks announces no size: counted as it comes */
	g_autoptr(call) chunked = request_full(VIA_UNIX, "POST", "/api/v1/echo", body, n + 1,
					       "Transfer-Encoding: chunked");
	expect_error(chunked, 413, "too_large", "The request body is larger than 8388608 bytes.");
	/* the server goes on */
	g_autoptr(call) small = request_full(VIA_UNIX, "POST", "/api/v1/echo", "xy", 2, NULL);
	g_assert_cmpint(json_integer_value(json_object_get(small->json, "len")), ==, 2);
}

/* Send @head (and no more) to the plain TCP port; what comes back before
 * the server closes or @timeout_s passes. */
typedef struct {
	const char *head;
	int timeout_s;
	GString *answer;
	bool to_end;        /* read until the server closes, whatever came */
} raw_call;

static gpointer do_raw_call(gpointer p)
{
	raw_call *r = p;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)S.port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	struct timeval tv = { .tv_sec = r->timeout_s };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	g_assert_cmpint(write(fd, r->head, strlen(r->head)), ==, (ssize_t)strlen(r->head));
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		g_string_append_len(r->answer, buf, n);
		if (!r->to_end && strstr(r->answer->str, "\r\n\r\n") && strstr(r->answer->str, "}"))
			break;
	}
	close(fd);
	return NULL;
}

static char *raw_exchange(const char *head)
{
	raw_call r = { head, 5, g_string_new(NULL) };
	run_blocking(do_raw_call, &r);
	return g_string_free(r.answer, FALSE);
}

/* PUT /api/v1/count with @header (or none) announcing a body of @length
 * bytes, of which only a few come: the answer, which must have @status. */
static char *answered_before_body(const char *header, unsigned long length, unsigned status)
{
	g_autofree char *head = g_strdup_printf("PUT /api/v1/count HTTP/1.1\r\nHost: x\r\n%s%s"
						"Content-Length: %lu\r\n\r\n{\"a\":",
						header ? header : "", header ? "\r\n" : "", length);
	char *answer = raw_exchange(head);
	g_autofree char *want = g_strdup_printf("HTTP/1.1 %u ", status);
	if (!g_str_has_prefix(answer, want))
		g_error("expected %u before the body, got '%s'", status, answer);
	return answer;
}

/* Credentials are checked when the headers are in: a request that will be
 * refused is refused before its body is read (here: never sent). */
static void test_credentials_before_body(void)
{
	unsigned before = S.handled;
	g_autofree char *anon = answered_before_body(NULL, 8000000, 401);
	g_assert_nonnull(strstr(anon, "WWW-Authenticate: Basic realm=\"herd\""));
	g_assert_nonnull(strstr(anon, "needs a user name and password"));
	/* a wrong password is checked while the request waits, and that wait
	 * reads no body either */
	g_autofree char *wrong_hdr = basic("alice", "wrong-password");
	expect_failed_login();
	g_autofree char *wrong = answered_before_body(wrong_hdr, 8000000, 401);
	g_test_assert_expected_messages();
	g_assert_nonnull(strstr(wrong, "Wrong user name or password."));
	g_autofree char *banned_hdr = basic("banned", "whatever-it-is");
	g_autofree char *banned = answered_before_body(banned_hdr, 8000000, 403);
	/* a body announced too large is refused before it comes, too */
	g_autofree char *large = answered_before_body(alice_header, HTTP_MAX_BODY_BYTES + 1, 413);
	g_assert_cmpuint(S.handled, ==, before);
	/* an unauthenticated client that waits for "100 Continue" gets none */
	g_autofree char *cont = raw_exchange("PUT /api/v1/count HTTP/1.1\r\nHost: x\r\n"
					     "Expect: 100-continue\r\n"
					     "Content-Length: 10\r\n\r\n");
	if (!g_str_has_prefix(cont, "HTTP/1.1 401 "))
		g_error("expected a 401 instead of 100 Continue, got '%s'", cont);
	/* with the right credentials the body is read and the handler runs */
	g_autoptr(call) good = request_full(VIA_TCP, "PUT", "/api/v1/count", "{\"a\":1}", 0,
					    alice_header);
	g_assert_cmpint(good->status, ==, 200);
	g_assert_cmpuint(S.handled, ==, before + 1);
}

static void test_query(void)
{
	g_autoptr(call) c = request("GET", "/api/v1/query?a=1&b=x%20y%26z", NULL);
	g_assert_cmpint(c->status, ==, 200);
	g_assert_cmpstr(str(c, "a"), ==, "1");
	g_assert_cmpstr(str(c, "b"), ==, "x y&z");
	g_assert_true(json_is_null(json_object_get(c->json, "c")));
	g_autoptr(call) none = request("GET", "/api/v1/query", NULL);
	g_assert_true(json_is_null(json_object_get(none->json, "a")));
	g_autoptr(call) empty = request("GET", "/api/v1/query?a=&c", NULL);
	g_assert_cmpstr(str(empty, "a"), ==, "");
	/* the query is not part of the path that routes */
	g_autoptr(call) vm = request("GET", "/api/v1/vms/web1?x=1", NULL);
	g_assert_cmpstr(str(vm, "vm"), ==, "web1");
}

static void test_suspended(void)
{
	g_autoptr(call) c = request_full(VIA_UNIX, "POST", "/api/v1/slow", "", 0, NULL);
	g_assert_cmpint(c->status, ==, 202);
	g_assert_true(json_is_true(json_object_get(c->json, "late")));
	/* again, to see that the listener resumes properly each time */
	g_autoptr(call) d = request_full(VIA_TCP, "POST", "/api/v1/slow", "", 0, NULL);
	g_assert_cmpint(d->status, ==, 202);
}

static void test_auth(void)
{
	/* public routes need nobody */
	g_autoptr(call) pub = request_full(VIA_TCP, "GET", "/api/v1/ping", NULL, 0, NULL);
	g_assert_cmpint(pub->status, ==, 200);
	/* protected ones need HTTP Basic credentials: 401 with a challenge */
	unsigned before = S.handled;
	g_autoptr(call) anon = request_full(VIA_TCP, "GET", "/api/v1/vms/web1", NULL, 0, NULL);
	expect_error(anon, 401, "unauthorized",
		     "This API needs a user name and password (HTTP Basic authentication).");
	g_autofree char *challenge = header_of(anon, "WWW-Authenticate");
	g_assert_cmpstr(challenge, ==, "Basic realm=\"herd\"");
	g_assert_cmpuint(S.handled, ==, before); /* the handler never ran */
	g_autoptr(call) bearer = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, "Authorization: Bearer x");
	expect_error(bearer, 401, "unauthorized", "needs a user name and password");
	g_autofree char *no_colon = g_strdup_printf("Authorization: Basic %s", "YWxpY2U="); /* "alice" */
	g_autoptr(call) malformed = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, no_colon);
	expect_error(malformed, 401, "unauthorized", "The Authorization header holds no user name and password.");
	g_autofree char *nul = g_strdup_printf("Authorization: Basic %s", "YWxpY2U6c2VjcmV0LWFsaWNlAHg="); /* "alice:secret-alice\0x" */
	g_autoptr(call) with_nul = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, nul);
	expect_error(with_nul, 401, "unauthorized", "holds no user name and password");
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 0); /* none of those checked a password */
	/* a wrong password, and an unknown user: the same answer, each after a check */
	g_autofree char *wrong_hdr = basic("alice", "wrong-password");
	g_autoptr(call) wrong = wrong_login(wrong_hdr);
	g_autofree char *wrong_challenge = header_of(wrong, "WWW-Authenticate");
	g_assert_nonnull(wrong_challenge);
	g_autofree char *nobody_hdr = basic("nobody", "secret-alice");
	g_autoptr(call) nobody = wrong_login(nobody_hdr);
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 2);
	/* what the application refuses, it refuses whatever the password: 403, no challenge */
	g_autofree char *banned_hdr = basic("banned", "whatever-it-is");
	g_autoptr(call) banned = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, banned_hdr);
	expect_error(banned, 403, "forbidden", "User 'banned' may not use the API.");
	g_autofree char *no_challenge = header_of(banned, "WWW-Authenticate");
	g_assert_null(no_challenge);
	/* the right credentials: the handler sees the user */
	g_autoptr(call) good = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, alice_header);
	g_assert_cmpint(good->status, ==, 200);
	g_assert_cmpstr(str(good, "user"), ==, "alice");
	/* the scheme's name is case-insensitive */
	g_autofree char *lower = g_strdup_printf("Authorization: basic %s", alice_header + strlen("Authorization: Basic "));
	g_autoptr(call) lc = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, lower);
	g_assert_cmpint(lc->status, ==, 200);
	/* local root on the unix socket needs no credentials */
	if (getuid() == 0) {
		g_autoptr(call) root = request_full(VIA_UNIX, "GET", "/api/v1/me", NULL, 0, NULL);
		g_assert_cmpint(root->status, ==, 200);
		g_assert_cmpstr(str(root, "user"), ==, "root");
	}
}

/* Five failures within a minute from an address: it must wait, even with
 * the right password; other addresses go on. */
static void test_auth_failure_limit(void)
{
	g_autofree char *wrong_hdr = basic("alice", "wrong-password");
	for (int i = 0; i < 5; i++)
		call_free(wrong_login(wrong_hdr));
	int checks = g_atomic_int_get(&gate.checks);
	g_autoptr(call) right = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, alice_header);
	expect_error(right, 401, "unauthorized", "Too many failed logins from 127.0.0.1; wait a minute.");
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, checks); /* refused unchecked */
	/* the unix socket is another address */
	g_autoptr(call) local = request_full(VIA_UNIX, "GET", "/api/v1/me", NULL, 0, alice_header);
	g_assert_cmpint(local->status, ==, 200);
}

/* A call in its own thread, while this one runs the main loop. */
typedef struct {
	call c;
	blocking b;
	GThread *thread;
} async_call;

static async_call *call_start(int port, const char *path, const char *header)
{
	async_call *a = g_new0(async_call, 1);
	a->c = (call){ .via = VIA_TCP, .method = "GET",
		       .url = g_strdup_printf("http://127.0.0.1:%d%s", port, path),
		       .header = header, .text = g_string_new(NULL), .headers = g_string_new(NULL) };
	a->b = (blocking){ do_call, &a->c, 0 };
	a->thread = g_thread_new("client", blocking_thread, &a->b);
	return a;
}

static bool call_done(async_call *a)
{
	return g_atomic_int_get(&a->b.done);
}

static void call_finish(async_call *a)
{
	while (!call_done(a))
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(a->thread);
	g_assert_cmpint(a->c.rc, ==, CURLE_OK);
	a->c.json = json_loadb(a->c.text->str, a->c.text->len, 0, NULL);
}

static void async_call_free(async_call *a)
{
	g_free(a->c.url);
	g_string_free(a->c.text, TRUE);
	g_string_free(a->c.headers, TRUE);
	json_decref(a->c.json);
	g_free(a);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(async_call, async_call_free)

/* Run the main loop until @n checks wait at the closed gate. */
static void wait_at_gate(unsigned n)
{
	while (gate_inside() < n) {
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
	}
}

/* Close the gate and send a call whose check then waits there. */
static async_call *call_held_at_gate(int port, const char *header)
{
	gate_set(true);
	async_call *a = call_start(port, "/api/v1/me", header);
	wait_at_gate(1);
	return a;
}

/* The main loop's lateness: how much later than asked a 2 ms timer runs. */
#define TICK_MS 2
typedef struct {
	gint64 last_us, worst_us;
} lateness;

static gboolean on_tick(gpointer p)
{
	lateness *l = p;
	gint64 now = g_get_monotonic_time();
	if (l->last_us && now - l->last_us - TICK_MS * 1000 > l->worst_us)
		l->worst_us = now - l->last_us - TICK_MS * 1000;
	l->last_us = now;
	return G_SOURCE_CONTINUE;
}

#define CROWD_THREADS 8
#define CROWD_REQUESTS 4

typedef struct {
	int index;
	int right;     /* answers that were right */
	gint *done;
} crowd_client;

static gpointer crowd_thread(gpointer p)
{
	crowd_client *cc = p;
	for (int i = 0; i < CROWD_REQUESTS; i++) {
		int u = (cc->index + i) % N_CROWD;
		g_autofree char *user = g_strdup_printf("crowd%d", u);
		g_autofree char *hdr = crowd_header(u);
		call c = { .via = VIA_TCP, .method = "GET",
			   .url = g_strdup_printf("http://127.0.0.1:%d/api/v1/me", S.port),
			   .header = hdr, .text = g_string_new(NULL), .headers = g_string_new(NULL) };
		do_call(&c);
		json_t *j = json_loadb(c.text->str, c.text->len, 0, NULL);
		if (c.rc == CURLE_OK && c.status == 200 &&
		    g_strcmp0(json_string_value(json_object_get(j, "user")), user) == 0)
			cc->right++;
		json_decref(j);
		g_free(c.url);
		g_string_free(c.text, TRUE);
		g_string_free(c.headers, TRUE);
	}
	g_atomic_int_inc(cc->done);
	g_main_context_wakeup(NULL);
	return NULL;
}

/*
 * Many clients at once, each user's password checked (yescrypt, tens of
 * milliseconds) on a worker thread, while a main-loop timer measures how
 * late it runs: every answer names the right user, each password is checked
 * once (requests with the same credentials wait on one check, later ones
 * find them remembered).  The lateness is printed, not asserted.
 */
static void test_auth_off_main_loop(void)
{
	lateness l = { 0, 0 };
	guint timer = g_timeout_add(TICK_MS, on_tick, &l);
	crowd_client cc[CROWD_THREADS];
	GThread *t[CROWD_THREADS];
	gint done = 0;
	gint64 start_us = g_get_monotonic_time();
	for (int i = 0; i < CROWD_THREADS; i++) {
		cc[i] = (crowd_client){ i, 0, &done };
		t[i] = g_thread_new("crowd", crowd_thread, &cc[i]);
	}
	while (g_atomic_int_get(&done) < CROWD_THREADS)
		g_main_context_iteration(NULL, TRUE);
	gint64 took_us = g_get_monotonic_time() - start_us;
	g_source_remove(timer);
	int right = 0;
	for (int i = 0; i < CROWD_THREADS; i++) {
		g_thread_join(t[i]);
		right += cc[i].right;
	}
	g_assert_cmpint(right, ==, CROWD_THREADS * CROWD_REQUESTS);
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, N_CROWD);
	g_test_message("%d requests, %d password checks, in %.0f ms; worst main-loop lateness %.1f ms",
		       CROWD_THREADS * CROWD_REQUESTS, g_atomic_int_get(&gate.checks),
		       took_us / 1000.0, l.worst_us / 1000.0);
}

/* A verified credential is remembered while the user's stored hash is the
 * one it was verified against; failures never are. */
static void test_auth_remembered(void)
{
	g_autoptr(call) first = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, alice_header);
	g_assert_cmpint(first->status, ==, 200);
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 1);
	g_autoptr(call) again = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, alice_header);
	g_assert_cmpint(again->status, ==, 200);
	g_assert_cmpstr(str(again, "user"), ==, "alice");
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 1);
	/* the password changes: the old one is checked again, and wrong */
	g_hash_table_insert(S.users, g_strdup("alice"), g_strdup(alice_new_hash));
	call_free(wrong_login(alice_header));
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 2);
	g_autofree char *new_header = basic("alice", "new-secret-alice");
	g_autoptr(call) changed = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, new_header);
	g_assert_cmpint(changed->status, ==, 200);
	g_autoptr(call) changed2 = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, new_header);
	g_assert_cmpint(changed2->status, ==, 200);
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 3);
	/* the user is removed: refused (after a check, as for any unknown user) */
	g_hash_table_remove(S.users, "alice");
	call_free(wrong_login(new_header));
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 4);
	/* failures are checked every time */
	g_autofree char *wrong = basic("crowd0", "wrong-password");
	for (int i = 0; i < 2; i++)
		call_free(wrong_login(wrong));
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 6);
}

/* A server whose checker has @threads threads and room for one check
 * waiting. */
static http_server *tiny_checker_server(unsigned threads, int *port)
{
	const http_credentials_config tiny = { .threads = threads, .queue_max = 1,
					       .verify = verify_at_gate };
	g_autoptr(GError) error = NULL;
	http_server *srv = http_server_new(routes, G_N_ELEMENTS(routes), &S);
	http_server_set_auth(srv, lookup, &tiny);
	*port = free_port();
	g_assert_true(http_server_listen_tcp(srv, "127.0.0.1", *port, NULL, NULL, &error));
	g_assert_no_error(error);
	return srv;
}

/* Checks beyond the threads and the queue are refused with 503 at once. */
static void test_auth_busy(void)
{
	int port;
	g_autoptr(http_server) srv = tiny_checker_server(1, &port);
	g_autofree char *h0 = crowd_header(0), *h1 = crowd_header(1), *h2 = crowd_header(2);
	g_autoptr(async_call) a = call_held_at_gate(port, h0);
	/* one of these waits in the queue, the other is refused */
	g_autoptr(async_call) b = call_start(port, "/api/v1/me", h1);
	g_autoptr(async_call) c = call_start(port, "/api/v1/me", h2);
	while (!call_done(b) && !call_done(c))
		g_main_context_iteration(NULL, TRUE);
	async_call *refused = call_done(b) ? b : c, *queued = refused == b ? c : b;
	call_finish(refused);
	expect_error(&refused->c, 503, "unavailable",
		     "The server is busy checking other passwords; try again in a moment.");
	g_assert_false(call_done(a));
	gate_set(false);
	call_finish(a);
	call_finish(queued);
	g_assert_cmpint(a->c.status, ==, 200);
	g_assert_cmpint(queued->c.status, ==, 200);
	g_assert_cmpint(g_atomic_int_get(&gate.checks), ==, 2);
}

/* The server stops while requests wait for their checks: they are answered
 * 503, the checks under way are waited for, and nothing leaks.  (A check
 * still queued then is dropped: test_credentials.) */
static void test_auth_free_while_checking(void)
{
	int port;
	http_server *srv = tiny_checker_server(2, &port);
	g_autofree char *h0 = crowd_header(0), *h1 = crowd_header(1);
	g_autoptr(async_call) a = call_held_at_gate(port, h0);
	g_autoptr(async_call) b = call_start(port, "/api/v1/me", h1);
	wait_at_gate(2);
	gate_set(false);
	http_server_free(srv);
	call_finish(a);
	call_finish(b);
	expect_error(&a->c, 503, "unavailable", "The daemon is shutting down.");
	expect_error(&b->c, 503, "unavailable", "The daemon is shutting down.");
}

/* Without an auth callback only local root gets in. */
static void test_no_auth_callback(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(http_server) srv = http_server_new(routes, G_N_ELEMENTS(routes), &S);
	int port = free_port();
	g_assert_true(http_server_listen_tcp(srv, "127.0.0.1", port, NULL, NULL, &error));
	int saved = S.port;
	S.port = port;
	g_autoptr(call) c = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, alice_header);
	expect_error(c, 401, "unauthorized", "This API needs authentication.");
	g_autofree char *challenge = header_of(c, "WWW-Authenticate");
	g_assert_nonnull(challenge);
	g_autoptr(call) pub = request_full(VIA_TCP, "GET", "/api/v1/ping", NULL, 0, NULL);
	g_assert_cmpint(pub->status, ==, 200);
	S.port = saved;
}

static void test_bytes(void)
{
	g_autoptr(call) c = request("GET", "/api/v1/odd", NULL);
	g_assert_cmpint(c->status, ==, 200);
	g_assert_cmpstr(c->text->str, ==, "hello");
	g_autofree char *ct = header_of(c, "Content-Type");
	g_assert_cmpstr(ct, ==, "text/plain");
}

/* An error message must reach the client as JSON even when it holds bytes
 * that are not UTF-8 (the path of a 404 comes percent-decoded from the
 * client): jansson refuses such strings, and the answer must not be lost.
 * Run in a child: the failure mode is a crash of the whole server. */
static void test_bad_utf8_path(void)
{
	if (!g_test_subprocess()) {
		g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
		g_test_trap_assert_passed();
		return;
	}
	server_start();
	g_autoptr(call) c = request_full(VIA_TCP, "GET", "/api/v1/%ff", NULL, 0, NULL);
	g_assert_cmpint(c->status, ==, 404);
	g_assert_nonnull(c->json);
	g_assert_nonnull(json_object_get(c->json, "error"));
	g_autoptr(call) m = request_full(VIA_TCP, "POST", "/api/v1/vms/%ff", "{}", 0, NULL);
	g_assert_cmpint(m->status, ==, 405);
	g_assert_nonnull(c->json);
	server_stop();
}

static void test_bad_utf8_message(void)
{
	if (!g_test_subprocess()) {
		g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
		g_test_trap_assert_passed();
		return;
	}
	server_start();
	g_autoptr(call) c = request("GET", "/api/v1/bad-message", NULL);
	g_assert_cmpint(c->status, >=, 400);
	g_assert_nonnull(c->json);
	g_assert_nonnull(json_object_get(c->json, "error"));
	server_stop();
}

static void test_listen_errors(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(http_server) srv = http_server_new(routes, G_N_ELEMENTS(routes), NULL);
	/* the socket file is for root only */
	struct stat st;
	g_assert_cmpint(stat(S.sock, &st), ==, 0);
	g_assert_true(S_ISSOCK(st.st_mode));
	g_assert_cmpint(st.st_mode & 0777, ==, 0600);
	/* a live daemon's socket is not taken over */
	g_assert_false(http_server_listen_unix(srv, S.sock, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_CONFLICT);
	g_assert_nonnull(strstr(error->message, S.sock));
	g_clear_error(&error);
	g_autoptr(call) still = request("GET", "/api/v1/ping", NULL);
	g_assert_cmpint(still->status, ==, 200);
	/* a stale one (no one listening) is */
	g_autofree char *stale = g_build_filename(S.dir, "stale.sock", NULL);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	g_strlcpy(sa.sun_path, stale, sizeof(sa.sun_path));
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	close(fd);
	g_assert_true(http_server_listen_unix(srv, stale, &error));
	g_assert_no_error(error);
	/* a path too long for a socket */
	g_autofree char *longer = g_strnfill(200, 'x');
	g_autofree char *too_long = g_build_filename(S.dir, longer, NULL);
	g_assert_false(http_server_listen_unix(srv, too_long, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	g_assert_nonnull(strstr(error->message, "too long"));
	g_clear_error(&error);
	/* a TCP port in use, and an address that is none */
	g_assert_false(http_server_listen_tcp(srv, "127.0.0.1", S.port, NULL, NULL, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_assert_nonnull(strstr(error->message, "127.0.0.1"));
	g_clear_error(&error);
	g_assert_false(http_server_listen_tcp(srv, "not-an-address", 1, NULL, NULL, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	g_assert_nonnull(strstr(error->message, "not-an-address"));
}

/* Stopping the server answers what waits with 503; the handler's own answer
 * that comes later goes nowhere (under ASan: no use after free, no leak). */
static void test_free_with_suspended(void)
{
	g_autoptr(GError) error = NULL;
	http_server *srv = http_server_new(routes, G_N_ELEMENTS(routes), &S);
	int port = free_port();
	g_assert_true(http_server_listen_tcp(srv, "127.0.0.1", port, NULL, NULL, &error));
	call c = { .via = VIA_TCP, .method = "POST",
		   .url = g_strdup_printf("http://127.0.0.1:%d/api/v1/hang", port),
		   .body = "", .text = g_string_new(NULL), .headers = g_string_new(NULL) };
	S.hanging = NULL;
	blocking b = { do_call, &c, 0 };
	GThread *t = g_thread_new("client", blocking_thread, &b);
	while (!S.hanging)
		g_main_context_iteration(NULL, TRUE);
	http_server_free(srv);
	while (!g_atomic_int_get(&b.done))
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(t);
	g_assert_cmpint(c.rc, ==, CURLE_OK);
	c.json = json_loadb(c.text->str, c.text->len, 0, NULL);
	expect_error(&c, 503, "unavailable", "The daemon is shutting down.");
	http_respond_json(S.hanging, 200, json_pack("{s:b}", "late", 1));
	g_free(c.url);
	g_string_free(c.text, TRUE);
	g_string_free(c.headers, TRUE);
	json_decref(c.json);
	S.hanging = NULL;
}

/* ------------------------------------------------------------------ */
/* The HTTP thread and the handlers' loop                              */

/* Handlers run on the thread of the main loop (whose context was the
 * thread-default one when the server was made), whatever the listener,
 * and so do the application's password hash lookups (lookup() asserts
 * it); the HTTP work does not need the main loop at all. */
static void test_handler_thread(void)
{
	g_autoptr(call) tcp = request_full(VIA_TCP, "GET", "/api/v1/where", NULL, 0, NULL);
	g_assert_true(json_is_true(json_object_get(tcp->json, "main_thread")));
	g_assert_true(json_is_true(json_object_get(tcp->json, "in_main_loop")));
	g_autoptr(call) local = request("GET", "/api/v1/where-private", NULL);
	g_assert_true(json_is_true(json_object_get(local->json, "main_thread")));
	g_autoptr(call) authed = request_full(VIA_TCP, "GET", "/api/v1/where-private", NULL, 0,
					      alice_header);
	g_assert_cmpint(authed->status, ==, 200);
	g_assert_true(json_is_true(json_object_get(authed->json, "main_thread")));
	/* what needs no handler is answered while the main loop does nothing */
	call c = { .via = VIA_TCP, .method = "GET",
		   .url = g_strdup_printf("http://127.0.0.1:%d/api/v1/nope", S.port),
		   .text = g_string_new(NULL), .headers = g_string_new(NULL) };
	do_call(&c);
	g_assert_cmpint(c.rc, ==, CURLE_OK);
	g_assert_cmpint(c.status, ==, 404);
	g_free(c.url);
	g_string_free(c.text, TRUE);
	g_string_free(c.headers, TRUE);
}

/* Wait, without running the main loop, until @n requests wait for their
 * handlers: the HTTP thread reads them on its own. */
static void wait_queued(http_server *srv, guint n)
{
	while (http_server_queued(srv) < n)
		g_usleep(1000);
	g_assert_cmpuint(http_server_queued(srv), ==, n);
}

#define BURST 16

/* An idle callback: how many handlers had run when it ran. */
static gboolean note_handled(gpointer data)
{
	*(unsigned *)data = S.handled;
	return G_SOURCE_REMOVE;
}

/* A burst of requests is handled one per main-loop iteration: so many
 * short stretches of the loop, never one long one.  The loop's idle work
 * (herdd's HA engine runs from an idle callback) takes its turn beside the
 * first of them, not after the backlog. */
static void test_one_handler_per_iteration(void)
{
	async_call *calls[BURST];
	for (int i = 0; i < BURST; i++)
		calls[i] = call_start(S.port, "/api/v1/where", NULL);
	wait_queued(S.srv, BURST);
	unsigned before = S.handled, at_idle = G_MAXUINT;
	g_idle_add(note_handled, &at_idle);
	for (unsigned i = 1; i <= BURST; i++) {
		g_main_context_iteration(NULL, TRUE);
		g_assert_cmpuint(S.handled, ==, before + i);
		g_assert_cmpuint(http_server_queued(S.srv), ==, BURST - i);
		g_assert_cmpuint(at_idle, <=, before + 1);
	}
	for (int i = 0; i < BURST; i++) {
		call_finish(calls[i]);
		g_assert_cmpint(calls[i]->c.status, ==, 200);
		async_call_free(calls[i]);
	}
	g_assert_cmpuint(S.handled, ==, before + BURST);
}

/* A connection to the plain TCP port that has sent @request. */
static int raw_open(int port, const char *request)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(write(fd, request, strlen(request)), ==, (ssize_t)strlen(request));
	return fd;
}

/* The client goes away while its handler holds its request, or while the
 * request waits for its handler: the handler still reads it and answers
 * (into the void), and nothing is left behind (under ASan: no use after
 * free, no leak). */
static void test_client_gone(void)
{
	S.hanging = NULL;
	int fd = raw_open(S.port, "POST /api/v1/hang?x=1 HTTP/1.1\r\nHost: x\r\nX-Test: held\r\n"
				  "Content-Length: 2\r\n\r\nab");
	while (!S.hanging)
		g_main_context_iteration(NULL, TRUE);
	close(fd);
	size_t len = 0;
	g_assert_cmpstr(http_request_header(S.hanging, "x-test"), ==, "held");
	g_assert_cmpstr(http_request_query(S.hanging, "x"), ==, "1");
	const char *body = http_request_body(S.hanging, &len);
	g_assert_cmpmem(body, len, "ab", 2);
	http_respond_json(S.hanging, 200, json_pack("{s:b}", "late", 1));
	S.hanging = NULL;

	unsigned before = S.handled;
	fd = raw_open(S.port, "GET /api/v1/where HTTP/1.1\r\nHost: x\r\n\r\n");
	wait_queued(S.srv, 1);
	close(fd);
	while (S.handled == before)
		g_main_context_iteration(NULL, TRUE);

	g_autoptr(call) ping = request("GET", "/api/v1/ping", NULL);
	g_assert_cmpint(ping->status, ==, 200);
}

/* The server stops while handlers hold requests and while others wait for
 * their handlers: every client hears 503, the waiting handlers never run,
 * and the held requests stay readable for their handlers, whose answers,
 * when they come, go nowhere. */
static void test_free_while_held(void)
{
	S.held = g_ptr_array_new();
	async_call *hung[2];
	for (int i = 0; i < 2; i++) {
		hung[i] = g_new0(async_call, 1);
		hung[i]->c = (call){ .via = VIA_TCP, .method = "POST",
				     .url = g_strdup_printf("http://127.0.0.1:%d/api/v1/hang", S.port),
				     .body = "", .header = "X-Test: held",
				     .text = g_string_new(NULL), .headers = g_string_new(NULL) };
		hung[i]->b = (blocking){ do_call, &hung[i]->c, 0 };
		hung[i]->thread = g_thread_new("client", blocking_thread, &hung[i]->b);
		while (S.held->len < (guint)i + 1)
			g_main_context_iteration(NULL, TRUE);
	}
	unsigned before = S.handled;
	async_call *queued = call_start(S.port, "/api/v1/where", NULL);
	wait_queued(S.srv, 1);
	g_clear_pointer(&S.srv, http_server_free);
	async_call *all[] = { hung[0], hung[1], queued };
	for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
		call_finish(all[i]);
		expect_error(&all[i]->c, 503, "unavailable", "The daemon is shutting down.");
		async_call_free(all[i]);
	}
	g_assert_cmpuint(S.handled, ==, before);
	for (guint i = 0; i < S.held->len; i++) {
		http_request *req = S.held->pdata[i];
		g_assert_cmpstr(http_request_path(req), ==, "/api/v1/hang");
		g_assert_cmpstr(http_request_header(req, "X-Test"), ==, "held");
		g_assert_cmpstr(http_request_peer(req), ==, "127.0.0.1");
		http_request_suspend(req);
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Too late.");
	}
	g_clear_pointer(&S.held, g_ptr_array_unref);
	S.hanging = NULL;
}

/* Restarting the TCP listeners (a new certificate, after cluster create,
 * join or leave) while a request on one of them waits for its answer: the
 * port is free at once for the new listener, the waiting request still gets
 * its handler's answer, and the server goes on.  In a child: the failure
 * mode is an abort inside libmicrohttpd. */
static void test_stop_tcp_with_suspended(void)
{
	if (!g_test_subprocess()) {
		g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
		g_test_trap_assert_passed();
		return;
	}
	server_start();
	call c = { .via = VIA_TCP, .method = "POST",
		   .url = g_strdup_printf("http://127.0.0.1:%d/api/v1/hang", S.port),
		   .body = "", .text = g_string_new(NULL), .headers = g_string_new(NULL) };
	S.hanging = NULL;
	blocking b = { do_call, &c, 0 };
	GThread *t = g_thread_new("client", blocking_thread, &b);
	while (!S.hanging)
		g_main_context_iteration(NULL, TRUE);
	http_server_stop_tcp(S.srv);
	/* the port is free for the listener with the new certificate */
	g_autoptr(GError) error = NULL;
	g_assert_true(http_server_listen_tcp(S.srv, "127.0.0.1", S.port, NULL, NULL, &error));
	g_assert_no_error(error);
	/* the request under way is answered by its handler, as if nothing happened */
	http_respond_json(S.hanging, 200, json_pack("{s:b}", "finished", 1));
	S.hanging = NULL;
	while (!g_atomic_int_get(&b.done))
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(t);
	g_assert_cmpint(c.rc, ==, CURLE_OK);
	g_assert_cmpint(c.status, ==, 200);
	c.json = json_loadb(c.text->str, c.text->len, 0, NULL);
	g_assert_true(json_is_true(json_object_get(c.json, "finished")));
	/* the new listener and the unix socket serve */
	g_autoptr(call) tcp = request_full(VIA_TCP, "GET", "/api/v1/ping", NULL, 0, NULL);
	g_assert_cmpint(tcp->status, ==, 200);
	g_autoptr(call) ping = request("GET", "/api/v1/ping", NULL);
	g_assert_cmpint(ping->status, ==, 200);
	/* and one that is still waiting when the server stops gets a 503 */
	g_string_truncate(c.text, 0);
	g_string_truncate(c.headers, 0);
	json_decref(c.json);
	c.json = NULL;
	blocking b2 = { do_call, &c, 0 };
	t = g_thread_new("client", blocking_thread, &b2);
	while (!S.hanging)
		g_main_context_iteration(NULL, TRUE);
	http_server_stop_tcp(S.srv);
	g_clear_pointer(&S.srv, http_server_free);
	while (!g_atomic_int_get(&b2.done))
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(t);
	g_assert_cmpint(c.rc, ==, CURLE_OK);
	c.json = json_loadb(c.text->str, c.text->len, 0, NULL);
	expect_error(&c, 503, "unavailable", "The daemon is shutting down.");
	/* its handler's own answer, when it comes, goes nowhere (and frees it) */
	http_respond_json(S.hanging, 200, json_pack("{s:b}", "too_late", 1));
	S.hanging = NULL;
	g_free(c.url);
	g_string_free(c.text, TRUE);
	g_string_free(c.headers, TRUE);
	json_decref(c.json);
	server_stop();
}

/* ------------------------------------------------------------------ */
/* herd_client against the same server                                */

typedef struct {
	herd_client_options opts;
	const char *method, *path;
	json_t *body;
	json_t *result;
	GError *error;
} client_call;

static gpointer do_client_call(gpointer p)
{
	client_call *c = p;
	g_autoptr(herd_client) cl = herd_client_new(&c->opts);
	c->result = herd_client_call(cl, c->method, c->path, c->body, &c->error);
	return NULL;
}

static json_t *client(const herd_client_options *opts, const char *method, const char *path,
		      json_t *body, GError **error)
{
	client_call c = { *opts, method, path, body, NULL, NULL };
	run_blocking(do_client_call, &c);
	if (c.error)
		g_propagate_error(error, c.error);
	return c.result;
}

static void expect_client_error(const herd_client_options *opts, const char *method,
				const char *path, int code, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = client(opts, method, path, NULL, &error);
	g_assert_null(r);
	g_assert_error(error, HERD_ERROR, code);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
}

static void test_client(void)
{
	if (getuid() != 0) {
		g_test_skip("the local client is root on the socket");
		return;
	}
	herd_client_options opts = { .socket_path = S.sock, .timeout_s = 30 };
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = client(&opts, "GET", "/api/v1/vms/web1", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(json_string_value(json_object_get(r, "user")), ==, "root");
	g_autoptr(json_t) body = json_pack("{s:b}", "ha", 1);
	g_autoptr(json_t) put = client(&opts, "PUT", "/api/v1/vms/web1", body, &error);
	g_assert_no_error(error);
	g_assert_true(json_equal(json_object_get(put, "body"), body));

	/* the daemon's error, code and sentence */
	expect_client_error(&opts, "GET", "/api/v1/error", HERD_ERR_CONFLICT, "VM 'x' exists.");
	expect_client_error(&opts, "GET", "/api/v1/nope", HERD_ERR_NOT_FOUND, "There is no API resource at /api/v1/nope.");
	expect_client_error(&opts, "POST", "/api/v1/vms/web1", HERD_ERR_METHOD, "POST is not allowed");
	expect_client_error(&opts, "PUT", "/api/v1/vms/web1", HERD_ERR_INVALID, "needs a JSON object");
	/* odd answers */
	expect_client_error(&opts, "GET", "/api/v1/odd?kind=unknown-code", HERD_ERR_INTERNAL, "I am a teapot.");
	expect_client_error(&opts, "GET", "/api/v1/odd?kind=no-message", HERD_ERR_INTERNAL,
			    "The daemon reported an error without a message.");
	expect_client_error(&opts, "GET", "/api/v1/odd", HERD_ERR_INTERNAL,
			    "answered HTTP 200 with something that is not JSON");
	/* a 2xx answer is data, whatever fields it has (a VM's "error") */
	g_autoptr(json_t) vm = client(&opts, "GET", "/api/v1/odd?kind=data-with-error", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(json_string_value(json_object_get(vm, "error")), ==, "Cannot start: no such disk.");
	/* nobody there */
	g_autofree char *gone = g_build_filename(S.dir, "gone.sock", NULL);
	herd_client_options nobody = { .socket_path = gone };
	expect_client_error(&nobody, "GET", "/api/v1/ping", HERD_ERR_UNAVAILABLE, "Cannot reach herdd at");
	expect_client_error(&nobody, "GET", "/api/v1/ping", HERD_ERR_UNAVAILABLE, gone);
}

static void test_client_https(void)
{
	g_autofree char *host = g_strdup_printf("127.0.0.1:%d", S.tls_port);
	herd_client_options opts = { .host = host, .ca_pem = S.ca_cert, .user = "alice",
				     .password = "secret-alice", .timeout_s = 30 };
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = client(&opts, "GET", "/api/v1/me", NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(json_string_value(json_object_get(r, "user")), ==, "alice");
	g_assert_cmpstr(json_string_value(json_object_get(r, "peer")), ==, "127.0.0.1");
	/* wrong password, no password */
	herd_client_options wrong = opts;
	wrong.password = "guess";
	expect_failed_login();
	expect_client_error(&wrong, "GET", "/api/v1/me", HERD_ERR_UNAUTHORIZED, "Wrong user name or password.");
	g_test_assert_expected_messages();
	herd_client_options anon = opts;
	anon.user = anon.password = NULL;
	expect_client_error(&anon, "GET", "/api/v1/me", HERD_ERR_UNAUTHORIZED, "needs a user name and password");
	/* another cluster's CA: the server is not trusted */
	char *other_cert = NULL, *other_key = NULL;
	g_assert_true(herd_tls_generate("other CA", NULL, NULL, NULL, true, 30, &other_cert, &other_key, NULL));
	herd_client_options other = opts;
	other.ca_pem = other_cert;
	expect_client_error(&other, "GET", "/api/v1/ping", HERD_ERR_UNAVAILABLE, "Cannot reach herdd at");
	/* ...unless told to skip verification */
	other.insecure = true;
	g_autoptr(json_t) ins = client(&other, "GET", "/api/v1/ping", NULL, &error);
	g_assert_no_error(error);
	g_assert_true(json_is_true(json_object_get(ins, "pong")));
	g_free(other_cert);
	g_free(other_key);
	/* HTTPS to the plain HTTP port fails cleanly */
	g_autofree char *plain = g_strdup_printf("127.0.0.1:%d", S.port);
	herd_client_options p = opts;
	p.host = plain;
	expect_client_error(&p, "GET", "/api/v1/ping", HERD_ERR_UNAVAILABLE, "Cannot reach herdd at 127.0.0.1");
}

static void test_client_target(void)
{
	static const struct { const char *host, *target; } cases[] = {
		{ "n1", "n1:8001" },
		{ "n1:9000", "n1:9000" },
		{ "10.0.0.1", "10.0.0.1:8001" },
		{ "10.0.0.1:9000", "10.0.0.1:9000" },
		{ "fe80::1", "[fe80::1]:8001" },
		{ "[fe80::1]", "[fe80::1]:8001" },
		{ "[fe80::1]:9000", "[fe80::1]:9000" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		herd_client_options o = { .host = cases[i].host };
		g_autoptr(herd_client) c = herd_client_new(&o);
		g_assert_cmpstr(herd_client_target(c), ==, cases[i].target);
	}
	herd_client_options local = { .socket_path = "/tmp/x.sock" };
	g_autoptr(herd_client) c = herd_client_new(&local);
	g_assert_cmpstr(herd_client_target(c), ==, "/tmp/x.sock");
	herd_client_options dflt = { 0 };
	g_autoptr(herd_client) d = herd_client_new(&dflt);
	g_assert_cmpstr(herd_client_target(d), ==, "/run/herd/herd.sock");
}

/* A file of @size bytes (a pattern, not all alike) in the server's
 * directory; its SHA-256. */
static char *make_file(const char *name, gsize size, char **sha256)
{
	char *path = g_build_filename(S.dir, name, NULL);
	FILE *f = fopen(path, "wb");
	g_assert_nonnull(f);
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
	guchar block[65536];
	for (gsize done = 0; done < size;) {
		gsize n = MIN(sizeof(block), size - done);
		for (gsize i = 0; i < n; i++)
			block[i] = (guchar)((done + i) * 7 / 3);
		g_checksum_update(sum, block, (gssize)n);
		g_assert_cmpuint(fwrite(block, 1, n, f), ==, n);
		done += n;
	}
	fclose(f);
	*sha256 = g_strdup(g_checksum_get_string(sum));
	g_checksum_free(sum);
	return path;
}

typedef struct {
	herd_client_options opts;
	const char *path;
	const char *file;
	json_t *result;
	char *sha256;
	GError *error;
	gint fd;              /* the file, while it is sent */
} upload_call;

static gpointer do_upload(gpointer p)
{
	upload_call *u = p;
	g_autoptr(herd_client) c = herd_client_new(&u->opts);
	int fd = open(u->file, O_RDONLY);
	g_atomic_int_set(&u->fd, fd);
	struct stat st;
	g_assert_cmpint(fstat(fd, &st), ==, 0);
	u->result = herd_client_upload(c, u->path, fd, (guint64)st.st_size, &u->sha256, &u->error);
	g_atomic_int_set(&u->fd, -1);
	close(fd);
	return NULL;
}

/* How far the client has read its file (what it sent, give or take
 * curl's buffer). */
static guint64 upload_position(upload_call *u)
{
	int fd = g_atomic_int_get(&u->fd);
	g_autofree char *path = g_strdup_printf("/proc/self/fdinfo/%d", fd);
	g_autofree char *text = NULL;
	if (fd < 0 || !g_file_get_contents(path, &text, NULL, NULL))
		return 0;
	return g_ascii_strtoull(text + strlen("pos:"), NULL, 10);
}

/* The local client is root only when the tests run as root. */
static bool skip_unless_root(void)
{
	if (getuid() == 0)
		return false;
	g_test_skip("the local client is root on the socket");
	return true;
}

/* Start uploading @size bytes (a file @name) to "gated" in a thread (@b
 * runs @u), the gate closed; return once the sink waits at it.  The
 * file's SHA-256 in *@sha256. */
static GThread *upload_gated(const char *name, gsize size, upload_call *u, blocking *b, char **sha256)
{
	g_autofree char *file = make_file(name, size, sha256);
	gate_set(true);
	*u = (upload_call){ .opts = { .socket_path = S.sock, .timeout_s = 60 },
			    .path = "/api/v1/upload/gated", .file = g_steal_pointer(&file) };
	*b = (blocking){ do_upload, u, 0 };
	GThread *t = g_thread_new("client", blocking_thread, b);
	while (gate_inside() == 0)
		g_main_context_iteration(NULL, FALSE);
	return t;
}

/* A body streamed to the handler's sink, on a thread of the stream's own,
 * checksummed on both sides; 24 MiB, far more than the queue holds, with
 * the sink stalled at first: the server stops reading (the client cannot
 * send it all), and reads on once the sink takes data again. */
static void test_stream_body(void)
{
	if (skip_unless_root())
		return;
	g_autofree char *want = NULL;
	upload_call u;
	blocking b;
	GThread *t = upload_gated("big", 24u << 20, &u, &b, &want);
	/* the sink is stuck: the handlers' loop still serves others */
	g_autoptr(call) ping = request("GET", "/api/v1/ping", NULL);
	g_assert_cmpint(ping->status, ==, 200);
	/* Until the client stops sending (its position stands still for a
	 * while), it never gets far past what the queue holds: not all. */
	guint64 pos = 0, last = G_MAXUINT64;
	while (pos != last) {
		last = pos;
		for (int i = 0; i < 20; i++) {
			g_main_context_iteration(NULL, FALSE);
			g_usleep(10000);
		}
		pos = upload_position(&u);
	}
	g_assert_cmpuint(pos, <, 24u << 20);
	g_assert_false(g_atomic_int_get(&b.done));
	gate_set(false);
	while (!g_atomic_int_get(&b.done))
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(t);
	g_assert_no_error(u.error);
	g_assert_cmpuint(up.announced, ==, 24u << 20);
	g_assert_cmpint(json_integer_value(json_object_get(u.result, "bytes")), ==, 24 << 20);
	g_assert_cmpstr(json_string_value(json_object_get(u.result, "sha256")), ==, want);
	g_assert_cmpstr(u.sha256, ==, want);
	g_assert_true(up.complete);
	g_assert_cmpuint(up.finishes, ==, 1);
	g_assert_null(up.done_error);
	json_decref(u.result);
	g_free(u.sha256);
	g_free((char *)u.file);

	/* a JSON body on a route that is not streamed is as before */
	g_autoptr(call) put = request_full(VIA_UNIX, "PUT", "/api/v1/vms/a", "{\"x\":1}", 0, local_auth());
	g_assert_cmpint(put->status, ==, 200);
}

/* Refused by the handler before any of the body is read: no sink at all;
 * a failed write: the rest is dropped and the client hears why. */
static void test_stream_refused(void)
{
	if (skip_unless_root())
		return;
	g_autofree char *want = NULL;
	g_autofree char *file = make_file("mid", 6u << 20, &want);
	unsigned dones = up.dones;
	upload_call u = { .opts = { .socket_path = S.sock, .timeout_s = 60 }, .path = "/api/v1/upload/taken",
			  .file = file };
	run_blocking(do_upload, &u);
	g_assert_error(u.error, HERD_ERROR, HERD_ERR_CONFLICT);
	g_assert_cmpstr(u.error->message, ==, "Upload taken exists already.");
	g_assert_cmpuint(up.dones, ==, dones);
	g_clear_error(&u.error);

	upload_call bad = { .opts = { .socket_path = S.sock, .timeout_s = 60 },
			    .path = "/api/v1/upload/bad-write", .file = file };
	run_blocking(do_upload, &bad);
	g_assert_error(bad.error, HERD_ERROR, HERD_ERR_IO);
	g_assert_cmpstr(bad.error->message, ==, "The disk is full.");
	g_assert_cmpuint(up.writes, ==, 1);
	g_assert_false(up.complete);
	g_clear_error(&bad.error);
}

/* Over TCP a streamed route needs credentials like any other, checked
 * before the body; and a length. */
static void test_stream_auth(void)
{
	unsigned before = S.handled;
	g_autofree char *anon = raw_exchange("PUT /api/v1/upload/x HTTP/1.1\r\nHost: x\r\n"
					     "Content-Length: 100000000\r\n\r\nabc");
	if (!g_str_has_prefix(anon, "HTTP/1.1 401 "))
		g_error("expected 401, got '%s'", anon);
	g_autofree char *wrong_hdr = basic("alice", "wrong-password");
	g_autofree char *head = g_strdup_printf("PUT /api/v1/upload/x HTTP/1.1\r\nHost: x\r\n%s\r\n"
						"Content-Length: 100000000\r\n\r\nabc", wrong_hdr);
	expect_failed_login();
	g_autofree char *wrong = raw_exchange(head);
	g_test_assert_expected_messages();
	if (!g_str_has_prefix(wrong, "HTTP/1.1 401 "))
		g_error("expected 401, got '%s'", wrong);
	g_assert_cmpuint(S.handled, ==, before);
	/* chunked, without a length */
	g_autofree char *chunked_head = g_strdup_printf("PUT /api/v1/upload/x HTTP/1.1\r\nHost: x\r\n%s\r\n"
							"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
							alice_header);
	g_autofree char *chunked = raw_exchange(chunked_head);
	if (!g_str_has_prefix(chunked, "HTTP/1.1 400 ") || !strstr(chunked, "Content-Length"))
		g_error("expected 400 naming Content-Length, got '%s'", chunked);
	g_assert_cmpuint(S.handled, ==, before);
	/* the right credentials: in (a small body) */
	g_autofree char *good_head = g_strdup_printf("PUT /api/v1/upload/small HTTP/1.1\r\nHost: x\r\n%s\r\n"
						     "Content-Length: 3\r\n\r\nabc", alice_header);
	g_autofree char *good = raw_exchange(good_head);
	if (!g_str_has_prefix(good, "HTTP/1.1 201 "))
		g_error("expected 201, got '%s'", good);
}

/* A client that sends less than it announced and leaves: the sink hears
 * that the body was cut off, done() says how much came. */
static void test_stream_cut(void)
{
	unsigned dones = up.dones;
	g_autofree char *head = g_strdup_printf("PUT /api/v1/upload/cut HTTP/1.1\r\nHost: x\r\n%s\r\n"
						"Content-Length: 1000000\r\n\r\nabcdef", alice_header);
	int fd = raw_open(S.port, head);
	while (g_atomic_int_get(&up.bytes_seen) < 6)
		g_main_context_iteration(NULL, FALSE);
	close(fd);
	while (up.dones == dones)
		g_main_context_iteration(NULL, TRUE);
	g_assert_false(up.complete);
	g_assert_cmpstr(up.done_error, ==, "The upload was cut off: 6 of 1000000 bytes came.");
}

/* The server stops while an upload's sink is stuck: the client hears 503
 * (or loses the connection), and once the sink goes on it hears that the
 * body was cut off; done() runs, its answer goes nowhere. */
static void test_stream_free_while_streaming(void)
{
	if (skip_unless_root())
		return;
	g_autofree char *want = NULL;
	unsigned dones = up.dones;
	upload_call u;
	blocking b;
	GThread *t = upload_gated("stop", 24u << 20, &u, &b, &want);
	g_clear_pointer(&S.srv, http_server_free);
	while (!g_atomic_int_get(&b.done))
		g_main_context_iteration(NULL, TRUE);
	g_thread_join(t);
	g_assert_null(u.result);
	g_assert_nonnull(u.error);
	g_clear_error(&u.error);
	g_free((char *)u.file);
	gate_set(false);
	while (up.dones == dones)
		g_main_context_iteration(NULL, TRUE);
	g_assert_false(up.complete);
	g_assert_nonnull(strstr(up.done_error, "The upload was cut off"));
}

/* ------------------------------------------------------------------ */
/* Upgraded connections                                                */

typedef struct {
	bool tls;
	bool keep;          /* leave the connection open after HELLO */
	int fd;
	gnutls_session_t session;
	gnutls_certificate_credentials_t cred;
	char head[512];
	char echo[16];
	ssize_t after_quit; /* what a read gave after "quit": 0 (the end) */
} upgrade_client;

static ssize_t uc_send(upgrade_client *u, const void *d, size_t n)
{
	return u->tls ? gnutls_record_send(u->session, d, n) : send(u->fd, d, n, MSG_NOSIGNAL);
}

static ssize_t uc_recv(upgrade_client *u, void *d, size_t n)
{
	return u->tls ? gnutls_record_recv(u->session, d, n) : recv(u->fd, d, n, 0);
}

static void uc_close(upgrade_client *u)
{
	if (u->session)
		gnutls_deinit(u->session);
	if (u->cred)
		gnutls_certificate_free_credentials(u->cred);
	close(u->fd);
}

static gpointer upgrade_call(gpointer p)
{
	upgrade_client *u = p;
	u->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons((uint16_t)(u->tls ? S.tls_port : S.port)) };
	g_assert_cmpint(connect(u->fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	struct timeval tv = { 30, 0 };
	setsockopt(u->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (u->tls) {
		gnutls_certificate_allocate_credentials(&u->cred);
		gnutls_datum_t ca = { (unsigned char *)S.ca_cert, (unsigned)strlen(S.ca_cert) };
		gnutls_certificate_set_x509_trust_mem(u->cred, &ca, GNUTLS_X509_FMT_PEM);
		gnutls_init(&u->session, GNUTLS_CLIENT);
		gnutls_set_default_priority(u->session);
		gnutls_credentials_set(u->session, GNUTLS_CRD_CERTIFICATE, u->cred);
		gnutls_session_set_verify_cert(u->session, "127.0.0.1", 0);
		gnutls_transport_set_int(u->session, u->fd);
		g_assert_cmpint(gnutls_handshake(u->session), ==, 0);
	}
	const char *req = "GET /api/v1/upgrade HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			  "Connection: Upgrade\r\nUpgrade: echo\r\n\r\n";
	g_assert_cmpint(uc_send(u, req, strlen(req)), ==, (ssize_t)strlen(req));
	size_t got = 0;
	while (!strstr(u->head, "\r\n\r\n") && got < sizeof(u->head) - 1) {
		ssize_t n = uc_recv(u, u->head + got, 1);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	g_assert_cmpint(uc_send(u, "hello", 5), ==, 5);
	got = 0;
	while (got < 5) {
		ssize_t n = uc_recv(u, u->echo + got, 5 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (u->keep)
		return NULL;
	g_assert_cmpint(uc_send(u, "quit", 4), ==, 4);
	char c;
	u->after_quit = uc_recv(u, &c, 1);
	uc_close(u);
	return NULL;
}

/* Wait (running the loop) until @n applications have ended. */
static void wait_upgrades_ended(int n)
{
	gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
	while (g_atomic_int_get(&upgrades_ended) < n && g_get_monotonic_time() < deadline) {
		if (!g_main_context_iteration(NULL, FALSE))
			g_usleep(10000);
	}
	g_assert_cmpint(g_atomic_int_get(&upgrades_ended), ==, n);
}

/* 101, then the application has the connection, plain and through TLS;
 * when it gives the connection back, the client sees the end. */
static void test_upgrade(void)
{
	g_atomic_int_set(&upgrades_ended, 0);
	for (int tls = 0; tls <= 1; tls++) {
		upgrade_client u = { .tls = tls };
		run_blocking(upgrade_call, &u);
		g_assert_true(g_str_has_prefix(u.head, "HTTP/1.1 101"));
		g_assert_nonnull(strcasestr(u.head, "Upgrade: echo"));
		g_assert_cmpstr(u.echo, ==, "HELLO");
		g_assert_cmpint(u.after_quit, ==, 0);
		wait_upgrades_ended(tls + 1);
	}
	g_assert_cmpint(g_atomic_int_get(&upgrades_dropped), ==, 0);
}

/* The server stops while applications hold upgraded connections: they
 * see the end of their sockets, and giving them back afterwards is
 * harmless. */
static void test_upgrade_server_stops(void)
{
	g_atomic_int_set(&upgrades_ended, 0);
	upgrade_client u[2] = { { .tls = false, .keep = true }, { .tls = true, .keep = true } };
	for (int i = 0; i < 2; i++) {
		run_blocking(upgrade_call, &u[i]);
		g_assert_cmpstr(u[i].echo, ==, "HELLO");
	}
	server_stop();
	wait_upgrades_ended(2);
	for (int i = 0; i < 2; i++) {
		char c;
		g_assert_cmpint(uc_recv(&u[i], &c, 1), <=, 0);
		uc_close(&u[i]);
	}
	server_start(); /* for with_server's stop */
}

/* ------------------------------------------------------------------ */
/* The web UI's files                                                  */

/* GET (or @method) @path sent as is (no client folds '..'): the answer. */
static char *raw_get(const char *method, const char *path)
{
	g_autofree char *head = g_strdup_printf("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
						method, path);
	raw_call r = { head, 5, g_string_new(NULL), true };
	run_blocking(do_raw_call, &r);
	return g_string_free(r.answer, FALSE);
}

static void expect_file(const char *path, const char *type, const char *cache, const char *body)
{
	g_autoptr(call) c = request_full(VIA_TCP, "GET", path, NULL, 0, NULL);
	g_assert_cmpint(c->status, ==, 200);
	g_autofree char *ct = header_of(c, "Content-Type");
	g_autofree char *cc = header_of(c, "Cache-Control");
	g_autofree char *csp = header_of(c, "Content-Security-Policy");
	g_autofree char *nosniff = header_of(c, "X-Content-Type-Options");
	g_assert_cmpstr(ct, ==, type);
	g_assert_cmpstr(cc, ==, cache);
	g_assert_nonnull(strstr(csp, "default-src 'self'"));
	g_assert_nonnull(strstr(csp, "script-src 'self'"));
	g_assert_nonnull(strstr(csp, "frame-ancestors 'none'"));
	g_assert_cmpstr(nosniff, ==, "nosniff");
	g_assert_cmpstr(c->text->str, ==, body);
}

/* Files without credentials: MIME types, caching, index.html for the UI's
 * routes; the API beside them as before. */
static void test_files(void)
{
	const char *index = "<!doctype html><title>herd</title>";
	unsigned handled = S.handled;
	expect_file("/", "text/html; charset=utf-8", "no-cache", index);
	expect_file("/vms", "text/html; charset=utf-8", "no-cache", index);
	expect_file("/vms/", "text/html; charset=utf-8", "no-cache", index);
	expect_file("/nodes/n1", "text/html; charset=utf-8", "no-cache", index);
	expect_file("/assets/app-ABCD1234.js", "text/javascript; charset=utf-8",
		    "public, max-age=31536000, immutable", "console.log(1);");
	expect_file("/assets/style-ABCD1234.css", "text/css; charset=utf-8",
		    "public, max-age=31536000, immutable", "body{}");
	g_assert_cmpuint(S.handled, ==, handled); /* the server's thread answered */
	g_autofree char *head = raw_get("HEAD", "/");
	g_assert_true(g_str_has_prefix(head, "HTTP/1.1 200 "));
	g_assert_null(strstr(head, "<title>"));
	g_autoptr(call) missing = request_full(VIA_TCP, "GET", "/assets/nosuch-ABCD1234.js", NULL, 0, NULL);
	expect_error(missing, 404, "not_found", "The web UI has no file /assets/nosuch-ABCD1234.js.");
	/* The API is not a file, and stays protected. */
	g_autoptr(call) api = request_full(VIA_TCP, "GET", "/api/v1/nosuch", NULL, 0, NULL);
	expect_error(api, 404, "not_found", "There is no API resource at /api/v1/nosuch.");
	g_autoptr(call) me = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, NULL);
	g_assert_cmpint(me->status, ==, 401);
	g_autofree char *challenge = header_of(me, "WWW-Authenticate");
	g_assert_cmpstr(challenge, ==, "Basic realm=\"herd\"");
	/* A page's script gets no challenge (the browser would ask with its
	 * own dialog): the page shows its login form. */
	g_autoptr(call) script = request_full(VIA_TCP, "GET", "/api/v1/me", NULL, 0, "Sec-Fetch-Mode: cors");
	g_assert_cmpint(script->status, ==, 401);
	g_autofree char *none = header_of(script, "WWW-Authenticate");
	g_assert_null(none);
	g_autoptr(call) post = request_full(VIA_TCP, "POST", "/", "{}", 0, NULL);
	expect_error(post, 404, "not_found", "There is no API resource at /.");
}

/* No way out of the directory, to a hidden file or through a symlink. */
static void test_files_refused(void)
{
	const char *paths[] = { "/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
				"/assets/%2E%2E/%2e%2e/secret.txt", "/./index.html", "/.hidden",
				"//secret.txt", "/assets/a\\b.js", "/assets/%2e%2e%2fsecret.txt" };
	for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
		g_autofree char *answer = raw_get("GET", paths[i]);
		if (!g_str_has_prefix(answer, "HTTP/1.1 400 ") || strstr(answer, "root:secret"))
			g_error("GET %s: expected 400, got '%s'", paths[i], answer);
	}
	g_autofree char *link = raw_get("GET", "/link.txt");
	if (!g_str_has_prefix(link, "HTTP/1.1 404 ") || strstr(link, "root:secret"))
		g_error("GET /link.txt (a symlink out): expected 404, got '%s'", link);
	g_autofree char *answer = raw_get("GET", "/../secret.txt");
	g_assert_nonnull(strstr(answer, "is not a file of the web UI"));
}

/* Without a directory set, nothing but the API is served. */
static void test_files_off(void)
{
	g_autoptr(call) c = request_full(VIA_TCP, "GET", "/", NULL, 0, NULL);
	expect_error(c, 404, "not_found", "There is no API resource at /.");
}

/* ------------------------------------------------------------------ */
/* Feeds                                                               */

/* Read @fd into @got while the main loop runs, until @needle came (true) or
 * the connection ended (false). */
static bool read_until(int fd, GString *got, const char *needle)
{
	gint64 give_up = g_get_monotonic_time() + 30 * G_USEC_PER_SEC; /* a hang, not a timing */
	while (!strstr(got->str, needle)) {
		char buf[4096];
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			g_string_append_len(got, buf, n);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return false;
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
		g_assert_cmpint(g_get_monotonic_time(), <, give_up);
	}
	return true;
}

static int feed_open(GString *got)
{
	S.feed = NULL;
	int fd = raw_open(S.port, "GET /api/v1/feed HTTP/1.1\r\nHost: x\r\n\r\n");
	g_assert_true(read_until(fd, got, "hello\n"));
	g_assert_nonnull(S.feed);
	g_assert_nonnull(strstr(got->str, "HTTP/1.1 200 "));
	g_assert_nonnull(strstr(got->str, "Content-Type: text/event-stream"));
	return fd;
}

/* Bytes pushed reach the client as they come; other requests are served
 * meanwhile; a client that falls more than the bound behind is cut off. */
static void test_feed(void)
{
	g_autoptr(GString) got = g_string_new(NULL);
	int fd = feed_open(got);
	for (int i = 0; i < 3; i++) {
		g_autoptr(call) ping = request("GET", "/api/v1/ping", NULL);
		g_assert_cmpint(ping->status, ==, 200);
		g_autofree char *line = g_strdup_printf("event %d\n", i);
		g_assert_true(http_feed_push(S.feed, line, strlen(line)));
		g_assert_true(read_until(fd, got, line));
	}
	/* Nobody reads: once the socket's buffers are full, what is pushed
	 * queues up, and a push that would queue more than the bound (64 bytes)
	 * cuts the client off.  How much the socket takes first depends on how
	 * fast the server's thread drains the queue, so push until refused; the
	 * socket holds a few MiB at most. */
	char big[41];
	memset(big, 'x', 40);
	big[40] = '\0';
	size_t pushed = 0;
	while (http_feed_push(S.feed, big, 40)) {
		pushed += 40;
		g_assert_cmpuint(pushed, <, 256u << 20);
	}
	g_assert_false(read_until(fd, got, "never"));
	g_assert_false(http_feed_push(S.feed, "more\n", 5));
	close(fd);
	http_feed_unref(S.feed);
}

/* A client that left is noticed at the next push (the connection sleeps
 * until then): pushes fail from then on. */
static void test_feed_client_gone(void)
{
	g_autoptr(GString) got = g_string_new(NULL);
	int fd = feed_open(got);
	close(fd);
	gint64 give_up = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
	while (http_feed_push(S.feed, "tick\n", 5)) {
		g_main_context_iteration(NULL, FALSE);
		g_usleep(1000);
		g_assert_cmpint(g_get_monotonic_time(), <, give_up);
	}
	http_feed_unref(S.feed);
}

/* The server stops while a feed sleeps: the stream ends, pushes fail, the
 * feed's owner frees it later. */
static void test_feed_free_server(void)
{
	g_autoptr(GString) got = g_string_new(NULL);
	int fd = feed_open(got);
	g_clear_pointer(&S.srv, http_server_free);
	g_assert_false(read_until(fd, got, "never"));
	g_assert_false(http_feed_push(S.feed, "late\n", 5));
	http_feed_close(S.feed);
	http_feed_unref(S.feed);
	close(fd);
}

static void with_server(gconstpointer test)
{
	server_start();
	((GTestFunc)test)();
	server_stop();
}

static void with_files(gconstpointer test)
{
	serve_files = true;
	with_server(test);
	serve_files = false;
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	main_thread = g_thread_self();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	alice_hash = herd_password_hash("secret-alice", NULL);
	alice_new_hash = herd_password_hash("new-secret-alice", NULL);
	for (int i = 0; i < N_CROWD; i++) {
		g_autofree char *pw = g_strdup_printf("crowd-password-%d", i);
		crowd_hash[i] = herd_password_hash(pw, NULL);
	}
	alice_header = basic("alice", "secret-alice");
	g_test_add_data_func("/http/routing", test_routing, with_server);
	g_test_add_data_func("/http/upgrade", test_upgrade, with_server);
	g_test_add_data_func("/http/upgrade-server-stops", test_upgrade_server_stops, with_server);
	g_test_add_data_func("/http/not-found", test_not_found, with_server);
	g_test_add_data_func("/http/path-escapes", test_path_escapes, with_server);
	g_test_add_data_func("/http/method-not-allowed", test_method_not_allowed, with_server);
	g_test_add_data_func("/http/errors", test_errors, with_server);
	g_test_add_data_func("/http/body-limit", test_body_limit, with_server);
	g_test_add_data_func("/http/credentials-before-body", test_credentials_before_body, with_server);
	g_test_add_data_func("/http/query", test_query, with_server);
	g_test_add_data_func("/http/suspended", test_suspended, with_server);
	g_test_add_data_func("/http/auth", test_auth, with_server);
	g_test_add_data_func("/http/auth-failure-limit", test_auth_failure_limit, with_server);
	g_test_add_data_func("/http/auth-off-main-loop", test_auth_off_main_loop, with_server);
	g_test_add_data_func("/http/auth-remembered", test_auth_remembered, with_server);
	g_test_add_data_func("/http/auth-busy", test_auth_busy, with_server);
	g_test_add_data_func("/http/auth-free-while-checking", test_auth_free_while_checking, with_server);
	g_test_add_data_func("/http/no-auth-callback", test_no_auth_callback, with_server);
	g_test_add_data_func("/http/bytes", test_bytes, with_server);
	g_test_add_data_func("/http/listen-errors", test_listen_errors, with_server);
	g_test_add_data_func("/http/free-with-suspended", test_free_with_suspended, with_server);
	g_test_add_data_func("/http/handler-thread", test_handler_thread, with_server);
	g_test_add_data_func("/http/one-handler-per-iteration", test_one_handler_per_iteration,
			     with_server);
	g_test_add_data_func("/http/client-gone", test_client_gone, with_server);
	g_test_add_data_func("/http/free-while-held", test_free_while_held, with_server);
	g_test_add_data_func("/http/stream-body", test_stream_body, with_server);
	g_test_add_data_func("/http/stream-refused", test_stream_refused, with_server);
	g_test_add_data_func("/http/stream-auth", test_stream_auth, with_server);
	g_test_add_data_func("/http/stream-cut", test_stream_cut, with_server);
	g_test_add_data_func("/http/stream-free-while-streaming", test_stream_free_while_streaming, with_server);
	g_test_add_data_func("/http/files", test_files, with_files);
	g_test_add_data_func("/http/files-refused", test_files_refused, with_files);
	g_test_add_data_func("/http/files-off", test_files_off, with_server);
	g_test_add_data_func("/http/feed", test_feed, with_server);
	g_test_add_data_func("/http/feed-client-gone", test_feed_client_gone, with_server);
	g_test_add_data_func("/http/feed-free-server", test_feed_free_server, with_server);
	g_test_add_func("/http/bad-utf8-path", test_bad_utf8_path);
	g_test_add_func("/http/bad-utf8-message", test_bad_utf8_message);
	g_test_add_data_func("/client/local", test_client, with_server);
	g_test_add_data_func("/client/https", test_client_https, with_server);
	g_test_add_func("/client/target", test_client_target);
	g_test_add_func("/http-restart/stop-tcp-with-suspended", test_stop_tcp_with_suspended);
	int rc = g_test_run();
	curl_global_cleanup();
	g_free(alice_hash);
	g_free(alice_new_hash);
	for (int i = 0; i < N_CROWD; i++)
		g_free(crowd_hash[i]);
	g_free(alice_header);
	return rc;
}
