#define G_LOG_DOMAIN "cluster"
#include "cluster/formation.h"

#include "cluster/corosync_conf.h"
#include "common/client.h"
#include "common/error.h"
#include "common/fileutil.h"
#include "common/json.h"
#include "common/log.h"
#include "common/password.h"
#include "common/tls.h"
#include "store/cluster.h"
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
};

/* One create, join or leave under way. */
typedef struct {
	herd_formation *f;
	herd_formation_done done;
	gpointer data;
	char *name;              /* leave: the cluster's name */
	bool force;              /* leave: leave locally whatever the cluster says */
	gint64 deadline_us;      /* waiting for the first sync */
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
	return f;
}

void herd_formation_free(herd_formation *f)
{
	if (!f)
		return;
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

/* Wait until this node is in sync with a quorate cluster. */
static gboolean on_sync_poll(gpointer data)
{
	step *s = data;
	herd_cluster *c = s->f->cluster;
	replica *r = herd_cluster_replica(c);
	bool ready = herd_cluster_exists(c) && replica_get_phase(r) == REPLICA_SYNCED &&
		     replica_is_primary(r);
	if (!ready && g_get_monotonic_time() < s->deadline_us)
		return G_SOURCE_CONTINUE;
	if (ready) {
		on_formed(s);
		return G_SOURCE_REMOVE;
	}
	herd_error_code code;
	const char *why = replica_refusal(r, &code);
	g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_TIMEOUT,
					    "corosync runs, but this node did not get in sync with a quorate cluster in time%s%s",
					    why ? ": " : ".", why ? why : "");
	step_finish(s, NULL, err);
	return G_SOURCE_REMOVE;
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
	g_timeout_add(50, on_sync_poll, s);
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
				     .password = j->password, .timeout_s = 60 };
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

typedef struct {
	step *s;
	char *cert;
	uint32_t nodeid;
} add_ctx;

/* The answer to a joining node, once its node object is committed. */
static json_t *join_answer(add_ctx *a, GError **error)
{
	herd_formation *f = a->s->f;
	store_state *st = herd_cluster_state(f->cluster);
	const store_cluster *c = store_cluster_of(store_state_cluster(st));
	bool changed;
	g_autofree char *conf = herd_corosync_conf_render(st, error);
	/* Our corosync must know the new node before it knocks. */
	if (!conf || !herd_corosync_conf_write(st, f->corosync_dir, &changed, error) ||
	    !herd_cluster_reload(f->cluster, error))
		return NULL;
	return json_pack("{s:s,s:I,s:s,s:s,s:s,s:s}", "cluster", store_state_cluster(st)->name,
			 "nodeid", (json_int_t)a->nodeid, "ca_cert", c->ca_cert, "node_cert", a->cert,
			 "corosync_conf", conf, "authkey", c->authkey);
}

static void on_node_added(json_t *result, const GError *error, gpointer user)
{
	add_ctx *a = user;
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) answer = error ? NULL : join_answer(a, &err);
	if (answer)
		log_info("added node %s as node %u", json_string_value(json_object_get(result, "name")),
			 a->nodeid);
	step_finish(a->s, answer, error ? error : err);
	g_free(a->cert);
	g_free(a);
}

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

void herd_formation_add_node(herd_formation *f, const char *name, const char *const *links,
			     size_t n_links, const char *csr, long long protocol, const char *user,
			     herd_formation_done done, gpointer data)
{
	store_state *st = herd_cluster_state(f->cluster);
	store_object *c = member_cluster(f, done, data);
	if (!c)
		return;
	if (protocol < HERD_WIRE_VERSION_MIN || protocol > HERD_WIRE_ACCEPT_MAX) {
		refuse(done, data, HERD_ERR_CONFLICT,
		       "The new node speaks protocol %lld; this cluster speaks %d to %d. Install a matching herd.",
		       protocol, HERD_WIRE_VERSION_MIN, HERD_WIRE_ACCEPT_MAX);
		return;
	}
	store_object *had = store_state_get_by_name(st, STORE_KIND_NODE, name);
	if (had && join_again(f, had, links, n_links)) {
		g_autoptr(GError) err = NULL;
		g_autofree const char **sans = sans_for(name, links, n_links);
		add_ctx a = { .s = step_new(f, done, data), .nodeid = store_node_of(had)->nodeid };
		a.cert = herd_tls_sign_csr(csr ? csr : "", name, sans, store_cluster_of(c)->ca_cert,
					   store_cluster_of(c)->ca_key, CERT_DAYS, &err);
		g_autoptr(json_t) answer = a.cert ? join_answer(&a, &err) : NULL;
		if (answer)
			log_info("node %s asked to join again (its answer was lost): answered as node %u", name,
				 a.nodeid);
		step_finish(a.s, answer, err);
		g_free(a.cert);
		return;
	}
	if (had) {
		refuse(done, data, HERD_ERR_CONFLICT,
		       "The cluster already has a node named '%s'; remove it first ('herd node remove %s') or give the new node another name.",
		       name, name);
		return;
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
					refuse(done, data, HERD_ERR_CONFLICT,
					       "Address %s is already used by node %s.", links[k], n->name);
					return;
				}
	}
	if (cluster_links && n_links != cluster_links) {
		refuse(done, data, HERD_ERR_INVALID,
		       "The cluster uses %zu link(s); give the new node exactly %zu --link address(es), not %zu.",
		       cluster_links, cluster_links, n_links);
		return;
	}
	uint32_t nodeid = 1;
	while (g_hash_table_contains(used, GUINT_TO_POINTER(nodeid)))
		nodeid++;
	g_autoptr(GError) err = NULL;
	g_autofree const char **sans = sans_for(name, links, n_links);
	g_autofree char *cert = herd_tls_sign_csr(csr ? csr : "", name, sans, store_cluster_of(c)->ca_cert,
						  store_cluster_of(c)->ca_key, CERT_DAYS, &err);
	if (!cert) {
		done(NULL, err, data);
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	g_autoptr(json_t) cmd = store_node_cmd_create(uuid, name, nodeid, links, n_links);
	add_ctx *a = g_new0(add_ctx, 1);
	a->s = step_new(f, done, data);
	a->cert = g_steal_pointer(&cert);
	a->nodeid = nodeid;
	if (!herd_cluster_submit(f->cluster, cmd, user, on_node_added, a, &err)) {
		g_free(a->cert);
		g_free(a->s);
		g_free(a);
		done(NULL, err, data);
	}
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
