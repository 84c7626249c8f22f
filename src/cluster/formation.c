#define G_LOG_DOMAIN "cluster"
#include "cluster/formation.h"

#include "cluster/corosync_conf.h"
#include "cluster/join_queue.h"
#include "common/client.h"
#include "common/error.h"
#include "common/fileutil.h"
#include "common/json.h"
#include "common/log.h"
#include "common/password.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/guard.h"
#include "store/guard.h"
#include "store/node.h"
#include "store/wire.h"

#include <gio/gio.h>
#include <string.h>

#define AUTHKEY_BYTES 256
#define CERT_DAYS 3650

struct herd_formation {
	herd_cluster *cluster;
	char *node_name;
	char *corosync_dir;
	herd_formation_io io;
	gpointer user;
	bool creating;           /* a create's keys are being made (worker thread) */
	/* The member's side of joins (below) */
	join_queue *joins;       /* add_request*, waiting their turn */
	struct add_request *adding; /* the one being committed and answered */
	unsigned join_wait_ms;   /* how long one may wait for its turn */
	char *joins_waiting_for; /* why the head of the queue waited, last look */
	guint joins_timer, joins_idle;
	GHashTable *new_nodes;   /* uuids of nodes added (through any member) since
				  * this herd started, not yet in the group */
};

/* A join through this member (the member's side of a join, below). */
typedef struct add_request add_request;
struct add_request {
	herd_formation *f;       /* NULL once the formation is freed */
	herd_formation_done done;
	gpointer data;
	char *name;
	char **links;            /* NULL-terminated */
	size_t n_links;
	char *user;
	char *cert;              /* its certificate, signed on arrival */
	uint32_t nodeid;
	int64_t queued_ms, deadline_ms;
	char *refusal;           /* the store's last refusal, tried again after */
	char *conf;              /* corosync.conf as answered */
};
static void add_request_free(add_request *r);
static void on_node_list_changed(gpointer user, GPtrArray *changes);
static void on_membership(gpointer user, bool group);
static void on_durable(gpointer user);

/* One create, join or leave under way. */
typedef struct {
	herd_formation *f;
	herd_formation_done done;
	gpointer data;
	char *name;              /* leave: the cluster's name */
	bool force;              /* leave: leave locally whatever the cluster says */
	gint64 deadline_us;      /* waiting for the first sync */
	guint sync_timer, sync_idle;
} step;

static step *step_new(herd_formation *f, herd_formation_done done, gpointer data)
{
	step *s = g_new0(step, 1);
	s->f = f;
	s->done = done;
	s->data = data;
	return s;
}

static void step_finish(step *s, json_t *result, const GError *error)
{
	s->done(result, error, s->data);
	g_free(s->name);
	g_free(s);
}

/* Refuse a request before anything is under way: @done gets the error. */
G_GNUC_PRINTF(4, 5)
static void refuse(herd_formation_done done, gpointer data, herd_error_code code,
		   const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	g_autoptr(GError) err = g_error_new_valist(HERD_ERROR, code, format, ap);
	va_end(ap);
	done(NULL, err, data);
}

/* The cluster this node is a member of; NULL after refusing the request
 * (adding a node, leaving) that needs one. */
static store_object *member_cluster(herd_formation *f, herd_formation_done done, gpointer data)
{
	store_object *c = store_state_cluster(herd_cluster_state(f->cluster));
	if (!c)
		refuse(done, data, HERD_ERR_CONFLICT, "This node is not part of a cluster.");
	return c;
}

herd_formation *herd_formation_new(herd_cluster *cluster, const char *node_name,
				   const char *corosync_dir, const herd_formation_io *io,
				   gpointer user)
{
	herd_formation *f = g_new0(herd_formation, 1);
	f->cluster = cluster;
	f->node_name = g_strdup(node_name);
	f->corosync_dir = g_strdup(corosync_dir);
	f->io = *io;
	f->user = user;
	f->joins = join_queue_new();
	f->join_wait_ms = HERD_JOIN_WAIT_MS;
	f->new_nodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	herd_cluster_listen(cluster, on_node_list_changed, f);
	herd_cluster_on_membership(cluster, on_membership, f);
	herd_cluster_on_durable(cluster, on_durable, f);
	return f;
}

void herd_formation_free(herd_formation *f)
{
	if (!f)
		return;
	/* herdd stops (its API server is gone): the joins waiting are dropped
	 * unanswered; the one being added is answered to nobody. */
	herd_cluster_unlisten(f->cluster, f);
	g_clear_handle_id(&f->joins_timer, g_source_remove);
	g_clear_handle_id(&f->joins_idle, g_source_remove);
	g_hash_table_unref(f->new_nodes);
	g_autoptr(GPtrArray) queued = g_ptr_array_new_with_free_func((GDestroyNotify)add_request_free);
	join_queue_expire(f->joins, INT64_MAX, queued);
	join_queue_free(f->joins);
	if (f->adding) {
		/* Its commit is answered to nobody; a reload under way answers
		 * it, finds no formation and frees it (or never: the bus goes
		 * next). */
		herd_cluster_forget(f->cluster, f->adding);
		f->adding->f = NULL;
	}
	g_free(f->joins_waiting_for);
	g_free(f->node_name);
	g_free(f->corosync_dir);
	g_free(f);
}

bool herd_formation_joining(herd_formation *f)
{
	g_autofree char *conf = g_build_filename(f->corosync_dir, "corosync.conf", NULL);
	g_autofree char *ca = f->io.ca_pem(f->user);
	return !herd_cluster_exists(f->cluster) && g_file_test(conf, G_FILE_TEST_EXISTS) && ca;
}

bool herd_formation_member(herd_formation *f)
{
	return herd_cluster_exists(f->cluster) || herd_cluster_started(f->cluster);
}

char *herd_formation_joining_name(herd_formation *f)
{
	if (herd_cluster_exists(f->cluster) || !herd_cluster_started(f->cluster))
		return NULL;
	/* corosync.conf, as the member rendered it: "cluster_name: NAME". */
	g_autofree char *path = g_build_filename(f->corosync_dir, "corosync.conf", NULL);
	g_autofree char *conf = NULL;
	if (g_file_get_contents(path, &conf, NULL, NULL)) {
		char *save = NULL;
		for (char *line = strtok_r(conf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			line = g_strstrip(line);
			if (g_str_has_prefix(line, "cluster_name:"))
				return g_strdup(g_strstrip(line + strlen("cluster_name:")));
		}
	}
	return g_strdup("(name unknown)");
}

static const char **sans_for(const char *name, const char *const *links, size_t n_links)
{
	const char **sans = g_new0(const char *, n_links + 2);
	sans[0] = name;
	for (size_t i = 0; i < n_links; i++)
		sans[i + 1] = links[i];
	return sans;
}

/* Undo a create or join that failed after this node took on cluster files. */
static void undo_membership(herd_formation *f)
{
	g_autoptr(GError) err = NULL;
	herd_cluster_stop(f->cluster);
	herd_corosync_conf_remove(f->corosync_dir);
	if (!herd_cluster_reset(f->cluster, &err) || !f->io.reset_tls(f->user, &err))
		log_err("cleaning up after a failed cluster change: %s", err->message);
}

/* ------------------------------------------------------------------ */
/* Create and join: corosync up, then the first sync                   */

static void on_formed(step *s)
{
	herd_formation *f = s->f;
	store_object *c = store_state_cluster(herd_cluster_state(f->cluster));
	g_autofree char *fp = NULL;
	g_autofree char *ca = f->io.ca_pem(f->user);
	if (ca)
		fp = herd_tls_fingerprint(ca, NULL);
	log_info("this node is now a member of cluster '%s'", c->name);
	g_autoptr(json_t) result = json_pack("{s:s,s:s,s:s,s:s?}", "cluster", c->name, "uuid", c->uuid,
					     "node", f->node_name, "fingerprint", fp);
	step_finish(s, result, NULL);
}

/*
 * Wait until this node is in sync with a quorate cluster: looked at once
 * the store says something may have changed (the sync confirmed on every
 * member, a change applied, a membership), from the main loop right after
 * that callback, and every SYNC_CHECK_MS besides.  (A 50 ms poll alone cost
 * a join 25 ms on average, and up to 50, after its store was in sync.)
 */
#define SYNC_CHECK_MS 500

static void sync_wait_end(step *s)
{
	herd_cluster_unlisten(s->f->cluster, s);
	g_clear_handle_id(&s->sync_timer, g_source_remove);
	g_clear_handle_id(&s->sync_idle, g_source_remove);
}

/* true: the step is over (and freed). */
static bool sync_check(step *s)
{
	herd_cluster *c = s->f->cluster;
	replica *r = herd_cluster_replica(c);
	bool ready = herd_cluster_exists(c) && replica_get_phase(r) == REPLICA_SYNCED &&
		     replica_is_primary(r);
	if (!ready && g_get_monotonic_time() < s->deadline_us)
		return false;
	sync_wait_end(s);
	if (ready) {
		on_formed(s);
		return true;
	}
	herd_error_code code;
	const char *why = replica_refusal(r, &code);
	g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
					    "corosync runs, but this node did not get in sync with a quorate cluster in time%s%s%s It keeps trying: 'herd status' shows when it is in; 'herd cluster leave' gives the join up.",
					    why ? ": " : ".", why ? why : "",
					    why && !g_str_has_suffix(why, ".") ? "." : "");
	step_finish(s, NULL, err);
	return true;
}

static gboolean on_sync_idle(gpointer data)
{
	step *s = data;
	s->sync_idle = 0;
	(void)sync_check(s);
	return G_SOURCE_REMOVE;
}

/* In the store's callbacks: look once they are over (the listeners go
 * with the step, which must not be done inside their own call). */
static void sync_look_soon(step *s)
{
	if (!s->sync_idle)
		s->sync_idle = g_idle_add_full(G_PRIORITY_DEFAULT, on_sync_idle, s, NULL);
}

static void on_sync_durable(gpointer data) { sync_look_soon(data); }
static void on_sync_changed(gpointer data, GPtrArray *changes) { sync_look_soon(data); }
static void on_sync_membership(gpointer data, bool group) { sync_look_soon(data); }

static gboolean on_sync_timer(gpointer data)
{
	step *s = data;
	guint id = s->sync_timer;
	s->sync_timer = 0; /* this source ends with the step */
	if (sync_check(s))
		return G_SOURCE_REMOVE;
	s->sync_timer = id;
	return G_SOURCE_CONTINUE;
}

static void on_service_stopped(const GError *error, gpointer data)
{
	/* corosync stopped (or was not running): nothing more to undo. */
}

static void on_corosync_started(const GError *error, gpointer data)
{
	step *s = data;
	herd_formation *f = s->f;
	if (error) {
		undo_membership(f);
		f->io.service(f->user, "stop", "corosync", on_service_stopped, NULL);
		g_autoptr(GError) e = g_error_new(HERD_ERROR, HERD_ERR_IO,
						  "corosync did not start, nothing was changed: %s",
						  error->message);
		step_finish(s, NULL, e);
		return;
	}
	herd_cluster_start(f->cluster, true);
	s->deadline_us = g_get_monotonic_time() + (gint64)HERD_FORMATION_TIMEOUT_MS * 1000;
	herd_cluster_on_durable(f->cluster, on_sync_durable, s);
	herd_cluster_listen(f->cluster, on_sync_changed, s);
	herd_cluster_on_membership(f->cluster, on_sync_membership, s);
	s->sync_timer = g_timeout_add(SYNC_CHECK_MS, on_sync_timer, s);
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

/* A create: what its worker thread gets and makes.  The password's hash
 * (yescrypt, tens of milliseconds of CPU) and the CA and certificate keys
 * are made off the main loop: on a busy host that CPU time stretched the
 * loop past herdd's watchdog. */
typedef struct {
	step *s;
	/* inputs */
	char *name;
	char *password;
	char **links;            /* NULL-terminated */
	json_t *settings;
	char *user;
	char *node_name;
	/* outputs */
	char *password_hash;
	char *ca_cert, *ca_key, *cert, *key;
	char *authkey_b64;
	GError *error;
} create_ctx;

static void create_ctx_free(create_ctx *k)
{
	g_free(k->name);
	if (k->password)
		explicit_bzero(k->password, strlen(k->password));
	g_free(k->password);
	g_strfreev(k->links);
	json_decref(k->settings);
	g_free(k->user);
	g_free(k->node_name);
	g_free(k->password_hash);
	g_free(k->ca_cert);
	g_free(k->ca_key);
	g_free(k->cert);
	g_free(k->key);
	g_free(k->authkey_b64);
	g_clear_error(&k->error);
	g_free(k);
}

static void create_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	create_ctx *k = data;
	guint n_links = g_strv_length(k->links);
	g_autofree const char **sans = sans_for(k->node_name, (const char *const *)k->links, n_links);
	g_autofree char *ca_cn = g_strdup_printf("herd cluster %s CA", k->name);
	guchar authkey[AUTHKEY_BYTES];
	k->password_hash = herd_password_hash(k->password, &k->error);
	if (!k->password_hash ||
	    !herd_tls_generate(ca_cn, NULL, NULL, NULL, true, CERT_DAYS, &k->ca_cert, &k->ca_key,
			       &k->error) ||
	    !herd_tls_generate(k->node_name, sans, k->ca_cert, k->ca_key, false, CERT_DAYS, &k->cert,
			       &k->key, &k->error)) {
		g_task_return_boolean(task, FALSE);
		return;
	}
	if (!herd_tls_random(authkey, sizeof(authkey))) {
		g_set_error(&k->error, HERD_ERROR, HERD_ERR_INTERNAL, "Cannot make a corosync key.");
		g_task_return_boolean(task, FALSE);
		return;
	}
	k->authkey_b64 = g_base64_encode(authkey, sizeof(authkey));
	explicit_bzero(authkey, sizeof(authkey));
	g_task_return_boolean(task, TRUE);
}

/* Seed the store of a new cluster and take on its files; undone on failure. */
static bool seed_cluster(herd_formation *f, create_ctx *k, GError **error)
{
	guint n_links = g_strv_length(k->links);
	g_autoptr(json_t) cmd = store_cluster_cmd_bootstrap(k->name, k->settings, k->ca_cert, k->ca_key,
							    k->authkey_b64, f->node_name,
							    (const char *const *)k->links, n_links,
							    k->password_hash);
	g_autoptr(json_t) result = herd_cluster_bootstrap(f->cluster, cmd, k->user, error);
	if (!result)
		return false;
	bool conf_changed;
	if (!f->io.install_tls(f->user, k->ca_cert, k->cert, k->key, error) ||
	    !herd_corosync_conf_write(herd_cluster_state(f->cluster), f->corosync_dir, &conf_changed,
				      error)) {
		undo_membership(f);
		return false;
	}
	return true;
}

static void on_create_made(GObject *source, GAsyncResult *res, gpointer data)
{
	create_ctx *k = data;
	step *s = k->s;
	herd_formation *f = s->f;
	f->creating = false;
	g_autoptr(GError) err = NULL;
	if (k->error || !seed_cluster(f, k, &err)) {
		step_finish(s, NULL, k->error ? k->error : err);
		create_ctx_free(k);
		return;
	}
	log_info("created cluster '%s'; starting corosync", k->name);
	create_ctx_free(k);
	f->io.service(f->user, "start", "corosync", on_corosync_started, s);
}

void herd_formation_create(herd_formation *f, const char *name, const char *const *links,
			   size_t n_links, const char *password, json_t *settings,
			   const char *user, herd_formation_done done, gpointer data)
{
	if (f->creating) {
		refuse(done, data, HERD_ERR_CONFLICT, "A cluster is already being created on this node.");
		return;
	}
	create_ctx *k = g_new0(create_ctx, 1);
	k->s = step_new(f, done, data);
	k->name = g_strdup(name);
	k->password = g_strdup(password);
	k->links = g_new0(char *, n_links + 1);
	for (size_t i = 0; i < n_links; i++)
		k->links[i] = g_strdup(links[i]);
	k->settings = json_incref(settings);
	k->user = g_strdup(user);
	k->node_name = g_strdup(f->node_name);
	f->creating = true;
	/* The main loop goes on (and feeds the watchdog) meanwhile. */
	GTask *task = g_task_new(NULL, NULL, on_create_made, k);
	g_task_set_task_data(task, k, NULL);
	g_task_run_in_thread(task, create_worker);
	g_object_unref(task);
}

/* ------------------------------------------------------------------ */
/* Join: the new node's side                                           */

typedef struct {
	step *s;
	/* inputs of the worker thread */
	char *address;
	char *fingerprint;
	char *password;
	json_t *links;
	char *csr;
	char *key;
	/* its output */
	json_t *answer;
	char *ca_pem;
} join_ctx;

static void join_ctx_free(join_ctx *j)
{
	g_free(j->address);
	g_free(j->fingerprint);
	if (j->password)
		memset(j->password, 0, strlen(j->password));
	g_free(j->password);
	json_decref(j->links);
	g_free(j->csr);
	g_free(j->key);
	json_decref(j->answer);
	g_free(j->ca_pem);
	g_free(j);
}

/* In a worker thread: check the member's CA against the fingerprint the
 * operator confirmed, then ask to be added, over TLS pinned to that CA. */
static void join_worker(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	join_ctx *j = data;
	g_autoptr(GError) err = NULL;
	herd_client_options probe_opts = { .host = j->address, .insecure = true, .timeout_s = 20 };
	g_autoptr(herd_client) probe = herd_client_new(&probe_opts);
	g_autoptr(json_t) ca = herd_client_call(probe, "GET", "/api/v1/cluster/ca", NULL, &err);
	const char *pem = json_string_value(json_object_get(ca, "ca_cert"));
	if (!ca || !pem) {
		if (!err)
			err = g_error_new(HERD_ERROR, HERD_ERR_INVALID,
					  "%s did not send the cluster's certificate.", j->address);
		g_task_return_error(task, g_steal_pointer(&err));
		return;
	}
	g_autofree char *fp = herd_tls_fingerprint(pem, &err);
	if (!fp) {
		g_task_return_error(task, g_steal_pointer(&err));
		return;
	}
	if (strcmp(fp, j->fingerprint) != 0) {
		g_task_return_new_error(task, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
					"The cluster certificate of %s has fingerprint %s, not %s as confirmed; nothing was changed.",
					j->address, fp, j->fingerprint);
		return;
	}
	j->ca_pem = g_strdup(pem);
	herd_client_options opts = { .host = j->address, .ca_pem = j->ca_pem, .user = "admin",
				     .password = j->password,
				     /* the member may keep it waiting for its turn */
				     .timeout_s = HERD_JOIN_WAIT_MS / 1000 + 60 };
	g_autoptr(herd_client) member = herd_client_new(&opts);
	g_autoptr(json_t) req = json_pack("{s:s,s:O,s:s,s:i}", "name", j->s->f->node_name, "links",
					  j->links, "csr", j->csr, "protocol", HERD_WIRE_VERSION);
	j->answer = herd_client_call(member, "POST", "/api/v1/cluster/nodes", req, &err);
	if (!j->answer) {
		g_task_return_error(task, g_steal_pointer(&err));
		return;
	}
	g_task_return_boolean(task, TRUE);
}

static void on_join_answer(GObject *source, GAsyncResult *res, gpointer data)
{
	join_ctx *j = data;
	step *s = j->s;
	herd_formation *f = s->f;
	g_autoptr(GError) err = NULL;
	if (!g_task_propagate_boolean(G_TASK(res), &err)) {
		step_finish(s, NULL, err);
		join_ctx_free(j);
		return;
	}
	const char *cert = json_string_value(json_object_get(j->answer, "node_cert"));
	const char *conf = json_string_value(json_object_get(j->answer, "corosync_conf"));
	const char *authkey = json_string_value(json_object_get(j->answer, "authkey"));
	const char *cluster = json_string_value(json_object_get(j->answer, "cluster"));
	if (!cert || !conf || !authkey || !cluster) {
		err = g_error_new(HERD_ERROR, HERD_ERR_INVALID,
				  "%s answered the join without the certificate, corosync.conf or key; nothing was changed here.",
				  j->address);
		step_finish(s, NULL, err);
		join_ctx_free(j);
		return;
	}
	if (!herd_tls_verify(cert, j->ca_pem, &err)) {
		step_finish(s, NULL, err);
		join_ctx_free(j);
		return;
	}
	gsize key_len;
	g_autofree guchar *key = g_base64_decode(authkey, &key_len);
	g_autofree char *conf_path = g_build_filename(f->corosync_dir, "corosync.conf", NULL);
	g_autofree char *key_path = g_build_filename(f->corosync_dir, "authkey", NULL);
	if (!f->io.install_tls(f->user, j->ca_pem, cert, j->key, &err) ||
	    !herd_mkdir_p(f->corosync_dir, 0755, &err) ||
	    !herd_file_write_atomic(key_path, key, key_len, 0400, &err) ||
	    !herd_file_write_atomic(conf_path, conf, strlen(conf), 0644, &err)) {
		undo_membership(f);
		step_finish(s, NULL, err);
		join_ctx_free(j);
		return;
	}
	log_info("cluster '%s' accepted this node as node %lld; starting corosync", cluster,
		 (long long)json_integer_value(json_object_get(j->answer, "nodeid")));
	join_ctx_free(j);
	f->io.service(f->user, "start", "corosync", on_corosync_started, s);
}

void herd_formation_join(herd_formation *f, const char *address, const char *fingerprint,
			 const char *password, const char *const *links, size_t n_links,
			 herd_formation_done done, gpointer data)
{
	g_autoptr(GError) err = NULL;
	join_ctx *j = g_new0(join_ctx, 1);
	if (!herd_tls_make_csr(f->node_name, &j->csr, &j->key, &err)) {
		join_ctx_free(j);
		done(NULL, err, data);
		return;
	}
	j->s = step_new(f, done, data);
	j->address = g_strdup(address);
	j->fingerprint = g_strdup(fingerprint);
	j->password = g_strdup(password);
	j->links = json_array();
	for (size_t i = 0; i < n_links; i++)
		json_array_append_new(j->links, json_string(links[i]));
	GTask *task = g_task_new(NULL, NULL, on_join_answer, j);
	g_task_set_task_data(task, j, NULL);
	g_task_run_in_thread(task, join_worker);
	g_object_unref(task);
}

/* ------------------------------------------------------------------ */
/* Join: the member's side                                             */

/*
 * Joins through this member wait their turn in f->joins (cluster/
 * join_queue.h says when a node may be added); one at a time is committed
 * and answered (f->adding).  A join the store refuses for a reason that
 * passes (another member's join is not durable yet, a node added and not
 * up yet counts as lost, quorum until the node added last is up) goes
 * back to the head of the queue and is tried again until its deadline.
 */
#define JOIN_POLL_MS 100


static void add_request_free(add_request *r)
{
	if (!r)
		return;
	g_free(r->name);
	g_strfreev(r->links);
	g_free(r->user);
	g_free(r->cert);
	g_free(r->refusal);
	g_free(r->conf);
	g_free(r);
}

static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

static void joins_pump(herd_formation *f);

static gboolean on_joins_tick(gpointer data)
{
	joins_pump(data);
	return G_SOURCE_CONTINUE;
}

static gboolean on_joins_idle(gpointer data)
{
	herd_formation *f = data;
	f->joins_idle = 0;
	joins_pump(f);
	return G_SOURCE_REMOVE;
}

/* Look at the queue again soon (from the main loop, not inside a callback). */
static void joins_kick(herd_formation *f)
{
	if (!f->joins_idle)
		f->joins_idle = g_idle_add(on_joins_idle, f);
}

/* Answer @r and let the next join have its turn. */
static void add_finish(add_request *r, json_t *result, const GError *error)
{
	herd_formation *f = r->f;
	if (f && f->adding == r) {
		f->adding = NULL;
		joins_kick(f);
	}
	if (f)
		r->done(result, error, r->data);
	add_request_free(r);
}

typedef enum { ADD_NEW, ADD_AGAIN, ADD_REFUSED } add_check;

/*
 * Node @had of the same name asks to join again: its earlier join was
 * committed but the answer was lost (a herdd restart, a timeout), so it
 * never started corosync.  The same links, and not in corosync's ring
 * now: it is that host, and gets its answer again (a certificate for its
 * new key, the same node id), with nothing changed in the store.  (A node
 * of the cluster that is off and joins again from a fresh install is
 * answered alike: the same host, the same address.)
 */
static bool join_again(herd_formation *f, store_object *had, const char *const *links, size_t n_links)
{
	const store_node *sn = store_node_of(had);
	if (sn->n_links != n_links)
		return false;
	for (size_t l = 0; l < n_links; l++)
		if (strcmp(sn->links[l], links[l]) != 0)
			return false;
	uint32_t ring[512];
	size_t n = herd_cluster_ring(f->cluster, ring, G_N_ELEMENTS(ring));
	for (size_t i = 0; i < n; i++)
		if (ring[i] == sn->nodeid)
			return false;
	return true;
}

/*
 * May node @name on @links be added to the store as it is now?  ADD_NEW
 * with the lowest free node id in *@nodeid, ADD_AGAIN (join_again(), its
 * id in *@nodeid), or ADD_REFUSED with @error.  Checked on arrival and
 * again when its turn comes: other joins may have come first.
 */
static add_check check_add(herd_formation *f, const char *name, const char *const *links,
			   size_t n_links, uint32_t *nodeid, GError **error)
{
	store_state *st = herd_cluster_state(f->cluster);
	store_object *had = store_state_get_by_name(st, STORE_KIND_NODE, name);
	if (had && join_again(f, had, links, n_links)) {
		*nodeid = store_node_of(had)->nodeid;
		return ADD_AGAIN;
	}
	if (had) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The cluster already has a node named '%s'; remove it first ('herd node remove %s') or give the new node another name.",
			    name, name);
		return ADD_REFUSED;
	}
	/* Every node has an address on every link; no address twice. */
	g_autoptr(GHashTable) used = g_hash_table_new(g_direct_hash, g_direct_equal);
	size_t cluster_links = 0;
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		const store_node *sn = store_node_of(n);
		cluster_links = MAX(cluster_links, sn->n_links);
		g_hash_table_add(used, GUINT_TO_POINTER(sn->nodeid));
		for (size_t l = 0; l < sn->n_links; l++)
			for (size_t k = 0; k < n_links; k++)
				if (!strcmp(sn->links[l], links[k])) {
					g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
						    "Address %s is already used by node %s.", links[k], n->name);
					return ADD_REFUSED;
				}
	}
	if (cluster_links && n_links != cluster_links) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The cluster uses %zu link(s); give the new node exactly %zu --link address(es), not %zu.",
			    cluster_links, cluster_links, n_links);
		return ADD_REFUSED;
	}
	*nodeid = 1;
	while (g_hash_table_contains(used, GUINT_TO_POINTER(*nodeid)))
		(*nodeid)++;
	return ADD_NEW;
}

static void on_join_reloaded(const GError *error, gpointer data)
{
	add_request *r = data;
	herd_formation *f = r->f;
	if (!f) {
		add_finish(r, NULL, NULL); /* herdd stops: nobody to answer */
		return;
	}
	if (error) {
		add_finish(r, NULL, error);
		return;
	}
	store_state *st = herd_cluster_state(f->cluster);
	store_object *c = store_state_cluster(st);
	if (!c) {
		g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_CONFLICT,
						    "This node left the cluster while node '%s' joined.", r->name);
		add_finish(r, NULL, err);
		return;
	}
	log_info("added node %s as node %u", r->name, r->nodeid);
	g_autoptr(json_t) answer = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s}", "cluster", c->name, "nodeid",
					     (json_int_t)r->nodeid, "ca_cert", store_cluster_of(c)->ca_cert,
					     "node_cert", r->cert, "corosync_conf", r->conf, "authkey",
					     store_cluster_of(c)->authkey);
	add_finish(r, answer, NULL);
}

/* Node @r is in the store, durable on every member, and so in every
 * member's corosync.conf (written at the change: corosync_conf.c): one
 * reload, on corosync's worker thread, lets every member's corosync know it
 * before it knocks; then @r is answered. */
static void answer_join(add_request *r)
{
	herd_formation *f = r->f;
	g_autoptr(GError) err = NULL;
	store_state *st = herd_cluster_state(f->cluster);
	bool changed;
	r->conf = herd_corosync_conf_render(st, &err);
	if (!r->conf || !herd_corosync_conf_write(st, f->corosync_dir, &changed, &err)) {
		add_finish(r, NULL, err);
		return;
	}
	herd_cluster_reload(f->cluster, on_join_reloaded, r);
}

/* The end of a sentence, without its full stop (g_free). */
static char *clause(const char *sentence)
{
	size_t n = strlen(sentence);
	while (n > 0 && (sentence[n - 1] == '.' || sentence[n - 1] == ' '))
		n--;
	char *out = g_strndup(sentence, n);
	if (out[0])
		out[0] = g_ascii_tolower(out[0]);
	return out;
}

/* Forget the new nodes that are in the group now (their herd is up). */
static void new_nodes_seen(herd_formation *f)
{
	uint32_t members[512];
	size_t n = MIN(herd_cluster_group(f->cluster, members, G_N_ELEMENTS(members)),
		       G_N_ELEMENTS(members));
	store_state *st = herd_cluster_state(f->cluster);
	for (size_t i = 0; i < n; i++) {
		store_object *o = store_node_by_id(st, members[i]);
		if (o)
			g_hash_table_remove(f->new_nodes, o->uuid);
	}
}

static void on_node_list_changed(gpointer user, GPtrArray *changes)
{
	herd_formation *f = user;
	for (guint i = 0; changes && i < changes->len; i++) {
		store_change *c = changes->pdata[i];
		if (c->kind != STORE_KIND_NODE)
			continue;
		if (!c->before && c->after)
			g_hash_table_add(f->new_nodes, g_strdup(c->uuid));
		else if (!c->after)
			g_hash_table_remove(f->new_nodes, c->uuid);
	}
	new_nodes_seen(f);
}

/* Joins waiting their turn look again at once when what they wait for
 * may have come (the node added last in the group, the change durable on
 * every member), not only at the next JOIN_POLL_MS. */
static void joins_look_again(herd_formation *f)
{
	if (!f->adding && join_queue_length(f->joins) > 0)
		joins_kick(f);
}

static void on_membership(gpointer user, bool group)
{
	new_nodes_seen(user);
	if (group)
		joins_look_again(user);
}

static void on_durable(gpointer user)
{
	joins_look_again(user);
}

/*
 * Would the store refuse @cmd (a node's create) now because a node that was up
 * (not one added lately and not up yet) is lost and not fenced?  Then it
 * does until an operator acts (store/guard.c), so the join is refused at
 * once, with the store's words, rather than kept waiting.
 */
static bool refused_for_lost(herd_formation *f, json_t *cmd, GError **error)
{
	g_autoptr(GHashTable) lost = herd_cluster_lost(f->cluster);
	if (!lost)
		return false;
	new_nodes_seen(f);
	store_state *st = herd_cluster_state(f->cluster);
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, f->new_nodes);
	while (g_hash_table_iter_next(&it, &v, NULL)) {
		store_object *o = store_state_get(st, STORE_KIND_NODE, v);
		if (o)
			g_hash_table_remove(lost, o->name);
	}
	return g_hash_table_size(lost) > 0 && !store_guard_check(st, cmd, lost, error);
}

/* The store command that adds @r as node r->nodeid (a new uuid each try). */
static json_t *add_cmd(add_request *r)
{
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	return store_node_cmd_create(uuid, r->name, r->nodeid, (const char *const *)r->links, r->n_links);
}

/* Refused by the store for @error (where it was applied: @applied):
 * back to the head of the queue if the reason passes and there is time,
 * else answered. */
static void add_refused(add_request *r, const GError *error, bool applied)
{
	herd_formation *f = r->f;
	bool passes = error->domain == HERD_ERROR &&
		      (error->code == HERD_ERR_UNAVAILABLE || error->code == HERD_ERR_NO_QUORUM ||
		       /* another member's join took the node id first: the
			* next try picks another (or says what else clashed) */
		       (applied && error->code == HERD_ERR_CONFLICT));
	if (f->adding == r)
		f->adding = NULL;
	g_autoptr(GError) lost = NULL;
	g_autoptr(json_t) cmd = passes ? add_cmd(r) : NULL;
	if (cmd && refused_for_lost(f, cmd, &lost)) {
		add_finish(r, NULL, lost);
		return;
	}
	if (!passes || now_ms() >= r->deadline_ms) {
		add_finish(r, NULL, error);
		return;
	}
	if (g_strcmp0(r->refusal, error->message) != 0)
		log_info("the join of node %s waits: %s", r->name, error->message);
	g_free(r->refusal);
	r->refusal = g_strdup(error->message);
	g_clear_pointer(&f->joins_waiting_for, g_free);
	join_queue_push_front(f->joins, r, r->deadline_ms);
}

static void on_node_added(json_t *result, const GError *error, gpointer data)
{
	add_request *r = data;
	herd_formation *f = r->f;
	if (error) {
		add_refused(r, error, true);
		joins_kick(f);
		return;
	}
	answer_join(r);
}

/* @r's turn: check it again, and add it. */
static void add_try(add_request *r)
{
	herd_formation *f = r->f;
	g_autoptr(GError) err = NULL;
	uint32_t nodeid;
	const char *const *links = (const char *const *)r->links;
	switch (check_add(f, r->name, links, r->n_links, &nodeid, &err)) {
	case ADD_REFUSED:
		add_finish(r, NULL, err);
		return;
	case ADD_AGAIN:
		/* Its own try, which the store seemed to refuse (caught in a
		 * membership change), was applied after all. */
		r->nodeid = nodeid;
		f->adding = r;
		answer_join(r);
		return;
	case ADD_NEW:
		break;
	}
	r->nodeid = nodeid;
	g_autoptr(json_t) cmd = add_cmd(r);
	f->adding = r;
	if (!herd_cluster_submit(f->cluster, cmd, r->user, on_node_added, r, &err))
		add_refused(r, err, false);
}

/* What a member knows now for join_admission(). */
static join_facts joins_facts(herd_formation *f)
{
	replica *rp = herd_cluster_replica(f->cluster);
	join_facts facts = {
		.store_ready = replica_get_phase(rp) == REPLICA_SYNCED && replica_is_primary(rp),
		.busy = f->adding != NULL,
	};
	g_autoptr(GPtrArray) nodes = store_state_list(herd_cluster_state(f->cluster), STORE_KIND_NODE);
	facts.nodes = nodes->len;
	new_nodes_seen(f);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *o = nodes->pdata[i];
		if (herd_cluster_is_member(f->cluster, store_node_of(o)->nodeid))
			facts.present++;
		else if (!store_node_of(o)->down && g_hash_table_contains(f->new_nodes, o->uuid))
			facts.new_absent++;
	}
	return facts;
}

/* Why the head of the queue waits now (g_free). */
static char *joins_waiting_for(herd_formation *f, join_verdict v, const join_facts *facts)
{
	if (v != JOIN_WAIT_STORE)
		return join_wait_reason(v, facts);
	herd_error_code code;
	const char *why = replica_refusal(herd_cluster_replica(f->cluster), &code);
	return why ? clause(why) : g_strdup("this node's store was not in sync with the cluster");
}

static void on_expired(herd_formation *f, add_request *r)
{
	/* Why the queue waited last, or else why the store refused it last. */
	g_autofree char *why = f->joins_waiting_for ? g_strdup(f->joins_waiting_for)
			       : r->refusal	    ? clause(r->refusal)
						    : NULL;
	g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
					    "Node '%s' was not added: it waited %lld s for its turn to join through this node (%s). Nothing was changed; run the join again once the joins under way are done.",
					    r->name, (long long)((now_ms() - r->queued_ms + 500) / 1000),
					    why ? why : "the joins before it were not done");
	add_finish(r, NULL, err);
}

static void joins_pump(herd_formation *f)
{
	g_autoptr(GPtrArray) expired = g_ptr_array_new();
	join_queue_expire(f->joins, now_ms(), expired);
	for (guint i = 0; i < expired->len; i++)
		on_expired(f, expired->pdata[i]);
	if (!f->adding && join_queue_length(f->joins) > 0) {
		join_facts facts = joins_facts(f);
		join_verdict why;
		int64_t deadline;
		/* One try per look: a refusal puts it back for the next. */
		add_request *r = join_queue_next(f->joins, &facts, &deadline, &why);
		if (r && why == JOIN_REFUSE_MAJORITY) {
			g_autofree char *reason = join_wait_reason(why, &facts);
			g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_NO_QUORUM,
							    "Node '%s' was not added: %s. Start the nodes that are down, or remove those gone for good ('herd node remove NAME'), then join again.",
							    r->name, reason);
			add_finish(r, NULL, err);
		} else if (r) {
			r->deadline_ms = deadline;
			g_clear_pointer(&f->joins_waiting_for, g_free);
			add_try(r);
		} else {
			g_free(f->joins_waiting_for);
			f->joins_waiting_for = joins_waiting_for(f, why, &facts);
		}
	}
	bool waiting = f->adding || join_queue_length(f->joins) > 0;
	if (waiting && !f->joins_timer)
		f->joins_timer = g_timeout_add(JOIN_POLL_MS, on_joins_tick, f);
	else if (!waiting)
		g_clear_handle_id(&f->joins_timer, g_source_remove);
}

void herd_formation_add_node(herd_formation *f, const char *name, const char *const *links,
			     size_t n_links, const char *csr, long long protocol, const char *user,
			     herd_formation_done done, gpointer data)
{
	store_object *c = member_cluster(f, done, data);
	if (!c)
		return;
	if (protocol < HERD_WIRE_VERSION_MIN || protocol > HERD_WIRE_ACCEPT_MAX) {
		refuse(done, data, HERD_ERR_CONFLICT,
		       "The new node speaks protocol %lld; this cluster speaks %d to %d. Install a matching herd.",
		       protocol, HERD_WIRE_VERSION_MIN, HERD_WIRE_ACCEPT_MAX);
		return;
	}
	g_autoptr(GError) err = NULL;
	uint32_t nodeid;
	add_check k = check_add(f, name, links, n_links, &nodeid, &err);
	if (k == ADD_REFUSED) {
		done(NULL, err, data);
		return;
	}
	g_autofree const char **sans = sans_for(name, links, n_links);
	g_autofree char *cert = herd_tls_sign_csr(csr ? csr : "", name, sans, store_cluster_of(c)->ca_cert,
						  store_cluster_of(c)->ca_key, CERT_DAYS, &err);
	if (!cert) {
		done(NULL, err, data);
		return;
	}
	add_request *r = g_new0(add_request, 1);
	r->nodeid = nodeid;
	r->f = f;
	r->done = done;
	r->data = data;
	r->name = g_strdup(name);
	r->links = g_new0(char *, n_links + 1);
	for (size_t i = 0; i < n_links; i++)
		r->links[i] = g_strdup(links[i]);
	r->n_links = n_links;
	r->user = g_strdup(user);
	r->cert = g_steal_pointer(&cert);
	r->queued_ms = now_ms();
	g_autoptr(json_t) cmd = k == ADD_NEW ? add_cmd(r) : NULL;
	if (cmd && refused_for_lost(f, cmd, &err)) {
		add_request_free(r);
		done(NULL, err, data);
		return;
	}
	if (k == ADD_AGAIN) {
		/* Nothing to add: answered at once, beside the queue. */
		r->nodeid = nodeid;
		log_info("node %s asks to join again (its answer was lost): answering as node %u", name,
			 nodeid);
		answer_join(r);
		return;
	}
	if (!join_queue_push(f->joins, r, r->queued_ms + f->join_wait_ms)) {
		add_request_free(r);
		refuse(done, data, HERD_ERR_UNAVAILABLE,
		       "%d joins already wait for their turn on this node; join through another member, or retry later.",
		       JOIN_QUEUE_MAX);
		return;
	}
	joins_pump(f);
}

void herd_formation_set_join_wait(herd_formation *f, unsigned wait_ms)
{
	f->join_wait_ms = wait_ms;
}

/* ------------------------------------------------------------------ */
/* Leave and remove                                                    */

static void on_left_stopped(const GError *error, gpointer data)
{
	step *s = data;
	if (error)
		log_warn("stopping corosync after leaving: %s", error->message);
	undo_membership(s->f);
	log_info("this node left cluster '%s'", s->name);
	g_autoptr(json_t) result = json_pack("{s:s,s:b}", "cluster", s->name, "left", 1);
	step_finish(s, result, NULL);
}

/* Leave locally: stop corosync, then drop the cluster's files and store. */
static void leave_locally(step *s)
{
	herd_cluster_stop(s->f->cluster);
	s->f->io.service(s->f->user, "stop", "corosync", on_left_stopped, s);
}

static void on_self_removed(json_t *result, const GError *error, gpointer data)
{
	step *s = data;
	herd_formation *f = s->f;
	store_state *st = herd_cluster_state(f->cluster);
	/* The removal can take effect here and still be reported failed: it
	 * changes the ring, and a member may drop out before it acknowledged. */
	bool gone = !store_state_get_by_name(st, STORE_KIND_NODE, f->node_name);
	if (error && !gone && !s->force) {
		step_finish(s, NULL, error);
		return;
	}
	if (error && !gone)
		log_warn("the cluster did not take this node's removal (%s); leaving anyway (--force)",
			 error->message);
	leave_locally(s);
}

void herd_formation_leave(herd_formation *f, bool force, const char *user,
			  herd_formation_done done, gpointer data)
{
	store_state *st = herd_cluster_state(f->cluster);
	g_autofree char *joining = herd_formation_joining_name(f);
	if (joining) {
		/* Half-way through a join: corosync runs, the store never came.
		 * Nobody to tell (it cannot submit); the members may list it. */
		step *s = step_new(f, done, data);
		s->name = g_steal_pointer(&joining);
		log_warn("giving up the join of cluster '%s' before this node got in sync", s->name);
		leave_locally(s);
		return;
	}
	store_object *c = member_cluster(f, done, data);
	if (!c)
		return;
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, f->node_name);
	guint nodes = store_state_count(st, STORE_KIND_NODE);
	if (me && nodes <= 1 && !force) {
		refuse(done, data, HERD_ERR_CONFLICT,
		       "This is the only node of cluster '%s': leaving would delete the cluster. Use --force to do so.",
		       c->name);
		return;
	}
	step *s = step_new(f, done, data);
	s->name = g_strdup(c->name);
	s->force = force;
	if (!me || nodes <= 1) {
		/* Already removed by the others (while it was off), or the last
		 * node: nobody else to tell. */
		leave_locally(s);
		return;
	}
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) cmd = store_node_cmd_remove(me, 0);
	if (!herd_cluster_submit(f->cluster, cmd, user, on_self_removed, s, &err))
		on_self_removed(NULL, err, s);
}

void herd_formation_remove_node(herd_formation *f, store_object *node, const char *user,
				herd_formation_done done, gpointer data)
{
	if (strcmp(node->name, f->node_name) == 0) {
		refuse(done, data, HERD_ERR_CONFLICT,
		       "Node '%s' is this node; run 'herd cluster leave' on it, or remove it from another node.",
		       node->name);
		return;
	}
	if (herd_cluster_is_member(f->cluster, store_node_of(node)->nodeid)) {
		refuse(done, data, HERD_ERR_CONFLICT,
		       "Node '%s' is online; run 'herd cluster leave' on it, or power it off first.",
		       node->name);
		return;
	}
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) cmd = store_node_cmd_remove(node, node->version);
	if (!herd_cluster_submit(f->cluster, cmd, user, done, data, &err))
		done(NULL, err, data);
}
