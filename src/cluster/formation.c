#define G_LOG_DOMAIN "cluster"
#include "cluster/formation_priv.h"

#include "cluster/corosync_conf.h"
#include "common/client.h"
#include "common/error.h"
#include "common/fileutil.h"
#include "common/json.h"
#include "common/log.h"
#include "common/password.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/guard.h"
#include "store/node.h"
#include "store/wire.h"

#include <gio/gio.h>
#include <string.h>

#define AUTHKEY_BYTES 256

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

void formation_refuse(herd_formation_done done, gpointer data, herd_error_code code,
		      const char *format, ...)
{
	va_list ap;
	va_start(ap, format);
	g_autoptr(GError) err = g_error_new_valist(HERD_ERROR, code, format, ap);
	va_end(ap);
	done(NULL, err, data);
}

store_object *formation_member_cluster(herd_formation *f, herd_formation_done done, gpointer data)
{
	store_object *c = store_state_cluster(herd_cluster_state(f->cluster));
	if (!c)
		formation_refuse(done, data, HERD_ERR_CONFLICT, "This node is not part of a cluster.");
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
	admission_start(f);
	return f;
}

void herd_formation_free(herd_formation *f)
{
	if (!f)
		return;
	admission_stop(f);
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

const char **formation_sans_for(const char *name, const char *const *links, size_t n_links)
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
	g_autofree const char **sans = formation_sans_for(k->node_name, (const char *const *)k->links, n_links);
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
		formation_refuse(done, data, HERD_ERR_CONFLICT, "A cluster is already being created on this node.");
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
	store_object *c = formation_member_cluster(f, done, data);
	if (!c)
		return;
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, f->node_name);
	guint nodes = store_state_count(st, STORE_KIND_NODE);
	if (me && nodes <= 1 && !force) {
		formation_refuse(done, data, HERD_ERR_CONFLICT,
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
		formation_refuse(done, data, HERD_ERR_CONFLICT,
		       "Node '%s' is this node; run 'herd cluster leave' on it, or remove it from another node.",
		       node->name);
		return;
	}
	if (herd_cluster_is_member(f->cluster, store_node_of(node)->nodeid)) {
		formation_refuse(done, data, HERD_ERR_CONFLICT,
		       "Node '%s' is online; run 'herd cluster leave' on it, or power it off first.",
		       node->name);
		return;
	}
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) cmd = store_node_cmd_remove(node, node->version);
	if (!herd_cluster_submit(f->cluster, cmd, user, done, data, &err))
		done(NULL, err, data);
}
