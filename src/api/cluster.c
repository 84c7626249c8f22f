/*
 * Forming and changing the cluster: create, join (the new node's side and the
 * member's side), leave, node remove, status and settings.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "cluster/corosync_conf.h"
#include "common/client.h"
#include "common/error.h"
#include "common/fileutil.h"
#include "common/json.h"
#include "common/log.h"
#include "common/password.h"
#include "common/tls.h"
#include "daemon/membership.h"
#include "ha/ha.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/wire.h"

#include <gio/gio.h>
#include <string.h>

#define AUTHKEY_BYTES 256
#define CERT_DAYS 3650
/* How long a create or join may take to reach a synced, quorate store. */
#define FORM_TIMEOUT_MS 60000

static bool require_local_root(http_request *req)
{
	if (http_request_is_local_root(req))
		return true;
	http_respond_errorf(req, HERD_ERR_FORBIDDEN,
			    "Only root on this node's own socket may do this (use 'herd' on the node).");
	return false;
}

static bool require_no_cluster(http_request *req, herdd *d)
{
	if (!herd_cluster_exists(d->cluster) && !herd_cluster_started(d->cluster))
		return true;
	store_object *c = store_state_cluster(herd_cluster_state(d->cluster));
	http_respond_errorf(req, HERD_ERR_CONFLICT,
			    "This node is already a member of cluster '%s'; leave it first with 'herd cluster leave'.",
			    c ? c->name : "(joining)");
	return false;
}

/* Check the "links" field: 1 to 8 distinct IP addresses. */
static json_t *parse_links(json_t *body, GError **error)
{
	json_t *links = json_object_get(body, "links");
	if (!json_is_array(links) || json_array_size(links) < 1 || json_array_size(links) > 8) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Give one to eight link addresses (--link ADDR), one per network the cluster's heartbeat uses.");
		return NULL;
	}
	size_t i, j;
	json_t *a, *b;
	json_array_foreach(links, i, a) {
		const char *s = json_string_value(a);
		if (!api_valid_address(s)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Link %zu address '%s' is not an IPv4 or IPv6 address.", i,
				    s ? s : "(not a string)");
			return NULL;
		}
		json_array_foreach(links, j, b) {
			if (j < i && strcmp(s, json_string_value(b)) == 0) {
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
					    "Address %s is given for two links.", s);
				return NULL;
			}
		}
	}
	return links;
}

/* The addresses of @links (checked by parse_links()), NULL-terminated; free the array. */
static const char **link_addresses(json_t *links)
{
	const char **out = g_new0(const char *, json_array_size(links) + 1);
	for (size_t i = 0; i < json_array_size(links); i++)
		out[i] = json_string_value(json_array_get(links, i));
	return out;
}

static const char **sans_for(const char *name, json_t *links)
{
	const char **sans = g_new0(const char *, json_array_size(links) + 2);
	sans[0] = name;
	for (size_t i = 0; i < json_array_size(links); i++)
		sans[i + 1] = json_string_value(json_array_get(links, i));
	return sans;
}

/* ------------------------------------------------------------------ */
/* Create                                                              */

typedef struct {
	http_request *req;
	herdd *d;
	char *name;
	bool force;              /* leave: leave locally whatever the cluster says */
} form_ctx;

static void form_ctx_free(form_ctx *f)
{
	g_free(f->name);
	g_free(f);
}

/* Undo a create or join that failed after this node took on cluster files. */
static void undo_membership(herdd *d)
{
	g_autoptr(GError) err = NULL;
	herd_cluster_stop(d->cluster);
	herd_corosync_conf_remove(d->cfg->corosync_dir);
	if (!herd_cluster_reset(d->cluster, &err) || !herdd_reset_tls(d, &err))
		log_err("cleaning up after a failed cluster change: %s", err->message);
}

static void on_form_service_stop(herdd *d, const GError *error, gpointer user)
{
	/* corosync stopped (or was not running): nothing more to undo. */
}

static void on_formed(herdd *d, const GError *error, gpointer user)
{
	form_ctx *f = user;
	if (error) {
		http_respond_error(f->req, error);
		form_ctx_free(f);
		return;
	}
	store_object *c = store_state_cluster(herd_cluster_state(d->cluster));
	g_autofree char *fp = NULL;
	g_autofree char *ca = herdd_ca_pem(d);
	if (ca)
		fp = herd_tls_fingerprint(ca, NULL);
	log_info("this node is now a member of cluster '%s'", c->name);
	http_respond_json(f->req, 200,
			  json_pack("{s:s,s:s,s:s,s:s?}", "cluster", c->name, "uuid", c->uuid, "node",
				    d->cfg->node_name, "fingerprint", fp));
	form_ctx_free(f);
}

static void on_corosync_started(herdd *d, const GError *error, gpointer user)
{
	form_ctx *f = user;
	if (error) {
		undo_membership(d);
		herdd_service(d, "stop", "corosync", on_form_service_stop, NULL);
		g_autoptr(GError) e = g_error_new(HERD_ERROR, HERD_ERR_IO,
						  "corosync did not start, nothing was changed: %s",
						  error->message);
		http_respond_error(f->req, e);
		form_ctx_free(f);
		return;
	}
	herd_cluster_start(d->cluster, true);
	herdd_wait_synced(d, FORM_TIMEOUT_MS, on_formed, f);
}

/* Seed the store of a new cluster and take on its files; undone on failure. */
static bool seed_cluster(herdd *d, const char *user, const char *name, json_t *links,
			 json_t *settings, const char *password_hash, GError **error)
{
	g_autofree char *ca_cert = NULL, *ca_key = NULL, *cert = NULL, *key = NULL;
	g_autofree const char **sans = sans_for(d->cfg->node_name, links);
	g_autofree char *ca_cn = g_strdup_printf("herd cluster %s CA", name);
	guchar authkey[AUTHKEY_BYTES];
	if (!herd_tls_generate(ca_cn, NULL, NULL, NULL, true, CERT_DAYS, &ca_cert, &ca_key, error) ||
	    !herd_tls_generate(d->cfg->node_name, sans, ca_cert, ca_key, false, CERT_DAYS, &cert,
			       &key, error))
		return false;
	if (!herd_tls_random(authkey, sizeof(authkey))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL, "Cannot make a corosync key.");
		return false;
	}
	g_autofree char *authkey_b64 = g_base64_encode(authkey, sizeof(authkey));
	g_autofree const char **addresses = link_addresses(links);
	g_autoptr(json_t) cmd = store_cluster_cmd_bootstrap(name, settings, ca_cert, ca_key, authkey_b64,
							    d->cfg->node_name, addresses,
							    json_array_size(links), password_hash);
	g_autoptr(json_t) result = herd_cluster_bootstrap(d->cluster, cmd, user, error);
	if (!result)
		return false;
	bool conf_changed;
	if (!herdd_install_tls(d, ca_cert, cert, key, error) ||
	    !herd_corosync_conf_write(herd_cluster_state(d->cluster), d->cfg->corosync_dir,
				      &conf_changed, error)) {
		undo_membership(d);
		return false;
	}
	return true;
}

void api_cluster_create(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "name", "links", "password", "settings", NULL };
	g_autoptr(GError) err = NULL;
	if (!require_local_root(req) || !require_no_cluster(req, d))
		return;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *password = json_string_value(json_object_get(body, "password"));
	json_t *links = body ? parse_links(body, &err) : NULL;
	json_t *requested = json_object_get(body, "settings");
	g_autoptr(json_t) settings = NULL;
	g_autofree char *hash = NULL;
	if (links && store_name_validate(STORE_KIND_CLUSTER, name, &err))
		settings = requested && json_object_size(requested) > 0
				   ? cluster_settings_validate(requested, &err)
				   : json_object();
	if (settings)
		hash = herd_password_hash(password, &err);
	if (!hash || !seed_cluster(d, http_request_user(req), name, links, settings, hash, &err)) {
		http_respond_error(req, err);
		return;
	}
	log_info("created cluster '%s'; starting corosync", name);
	form_ctx *f = g_new0(form_ctx, 1);
	f->req = req;
	f->d = d;
	http_request_suspend(req);
	herdd_service(d, "start", "corosync", on_corosync_started, f);
}

/* ------------------------------------------------------------------ */
/* Join: the new node's side                                           */

typedef struct {
	form_ctx form;
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
	g_autoptr(json_t) req = json_pack("{s:s,s:O,s:s,s:i}", "name", j->form.name, "links",
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
	herdd *d = j->form.d;
	g_autoptr(GError) err = NULL;
	if (!g_task_propagate_boolean(G_TASK(res), &err)) {
		http_respond_error(j->form.req, err);
		join_ctx_free(j);
		return;
	}
	const char *cert = json_string_value(json_object_get(j->answer, "node_cert"));
	const char *conf = json_string_value(json_object_get(j->answer, "corosync_conf"));
	const char *authkey = json_string_value(json_object_get(j->answer, "authkey"));
	const char *cluster = json_string_value(json_object_get(j->answer, "cluster"));
	if (!cert || !conf || !authkey || !cluster) {
		http_respond_errorf(j->form.req, HERD_ERR_INVALID,
				    "%s answered the join without the certificate, corosync.conf or key; nothing was changed here.",
				    j->address);
		join_ctx_free(j);
		return;
	}
	if (!herd_tls_verify(cert, j->ca_pem, &err)) {
		http_respond_error(j->form.req, err);
		join_ctx_free(j);
		return;
	}
	gsize key_len;
	g_autofree guchar *key = g_base64_decode(authkey, &key_len);
	g_autofree char *conf_path = g_build_filename(d->cfg->corosync_dir, "corosync.conf", NULL);
	g_autofree char *key_path = g_build_filename(d->cfg->corosync_dir, "authkey", NULL);
	if (!herdd_install_tls(d, j->ca_pem, cert, j->key, &err) ||
	    !herd_mkdir_p(d->cfg->corosync_dir, 0755, &err) ||
	    !herd_file_write_atomic(key_path, key, key_len, 0400, &err) ||
	    !herd_file_write_atomic(conf_path, conf, strlen(conf), 0644, &err)) {
		undo_membership(d);
		http_respond_error(j->form.req, err);
		join_ctx_free(j);
		return;
	}
	log_info("cluster '%s' accepted this node as node %lld; starting corosync", cluster,
		 (long long)json_integer_value(json_object_get(j->answer, "nodeid")));
	form_ctx *f = g_new0(form_ctx, 1);
	*f = j->form;
	j->form.name = NULL;
	join_ctx_free(j);
	herdd_service(d, "start", "corosync", on_corosync_started, f);
}

void api_cluster_join(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "address", "fingerprint", "password", "links", NULL };
	g_autoptr(GError) err = NULL;
	if (!require_local_root(req) || !require_no_cluster(req, d))
		return;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *address = json_string_value(json_object_get(body, "address"));
	const char *fingerprint = json_string_value(json_object_get(body, "fingerprint"));
	const char *password = json_string_value(json_object_get(body, "password"));
	json_t *links = body ? parse_links(body, &err) : NULL;
	if (!links) {
		http_respond_error(req, err);
		return;
	}
	g_autofree char *fp = fingerprint ? herd_tls_fingerprint_normalize(fingerprint) : NULL;
	if (!address || !*address || !fp || !password) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "A join needs the member's address, the confirmed certificate fingerprint (32 hex bytes) and the admin password.");
		return;
	}
	join_ctx *j = g_new0(join_ctx, 1);
	if (!herd_tls_make_csr(d->cfg->node_name, &j->csr, &j->key, &err)) {
		join_ctx_free(j);
		http_respond_error(req, err);
		return;
	}
	j->form.req = req;
	j->form.d = d;
	j->form.name = g_strdup(d->cfg->node_name);
	j->address = g_strdup(address);
	j->fingerprint = g_steal_pointer(&fp);
	j->password = g_strdup(password);
	j->links = json_incref(links);
	http_request_suspend(req);
	GTask *task = g_task_new(NULL, NULL, on_join_answer, j);
	g_task_set_task_data(task, j, NULL);
	g_task_run_in_thread(task, join_worker);
	g_object_unref(task);
}

/* ------------------------------------------------------------------ */
/* Join: the member's side                                             */

typedef struct {
	http_request *req;
	herdd *d;
	char *cert;
	long long nodeid;
} add_ctx;

/* The answer to a joining node, once its node object is committed. */
static json_t *join_answer(add_ctx *a, GError **error)
{
	herdd *d = a->d;
	store_state *st = herd_cluster_state(d->cluster);
	const store_cluster *c = store_cluster_of(store_state_cluster(st));
	bool changed;
	g_autofree char *conf = herd_corosync_conf_render(st, error);
	/* Our corosync must know the new node before it knocks. */
	if (!conf || !herd_corosync_conf_write(st, d->cfg->corosync_dir, &changed, error) ||
	    !herd_corosync_reload(herd_cluster_corosync(d->cluster), error))
		return NULL;
	return json_pack("{s:s,s:I,s:s,s:s,s:s,s:s}", "cluster", store_state_cluster(st)->name,
			 "nodeid", (json_int_t)a->nodeid, "ca_cert", c->ca_cert, "node_cert", a->cert,
			 "corosync_conf", conf, "authkey", c->authkey);
}

static void on_node_added(json_t *result, const GError *error, gpointer user)
{
	add_ctx *a = user;
	g_autoptr(GError) err = NULL;
	json_t *answer = error ? NULL : join_answer(a, &err);
	if (answer) {
		log_info("added node %s as node %lld",
			 json_string_value(json_object_get(result, "name")), a->nodeid);
		http_respond_json(a->req, 201, answer);
	} else {
		http_respond_error(a->req, error ? error : err);
	}
	g_free(a->cert);
	g_free(a);
}

void api_cluster_add_node(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "name", "links", "csr", "protocol", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *csr = json_string_value(json_object_get(body, "csr"));
	json_int_t protocol = json_integer_value(json_object_get(body, "protocol"));
	json_t *links = body ? parse_links(body, &err) : NULL;
	store_state *st = herd_cluster_state(d->cluster);
	store_object *c = store_state_cluster(st);
	if (!links || !store_name_validate(STORE_KIND_NODE, name, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!c) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "This node is not part of a cluster.");
		return;
	}
	if (protocol < HERD_WIRE_VERSION_MIN || protocol > HERD_WIRE_ACCEPT_MAX) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "The new node speaks protocol %lld; this cluster speaks %d to %d. Install a matching herd.",
				    (long long)protocol, HERD_WIRE_VERSION_MIN, HERD_WIRE_ACCEPT_MAX);
		return;
	}
	if (store_state_get_by_name(st, STORE_KIND_NODE, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "The cluster already has a node named '%s'; remove it first ('herd node remove %s') or give the new node another name.",
				    name, name);
		return;
	}
	/* Every node has an address on every link; no address twice. */
	GHashTableIter it;
	gpointer v;
	g_autoptr(GHashTable) used = g_hash_table_new(g_direct_hash, g_direct_equal);
	size_t n_links = 0;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_NODE]);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		store_object *n = v;
		const store_node *sn = store_node_of(n);
		n_links = MAX(n_links, sn->n_links);
		g_hash_table_add(used, GUINT_TO_POINTER(sn->nodeid));
		for (size_t i = 0; i < sn->n_links; i++)
			for (size_t k = 0; k < json_array_size(links); k++)
				if (!strcmp(sn->links[i], json_string_value(json_array_get(links, k)))) {
					http_respond_errorf(req, HERD_ERR_CONFLICT,
							    "Address %s is already used by node %s.",
							    json_string_value(json_array_get(links, k)),
							    n->name);
					return;
				}
	}
	if (n_links && json_array_size(links) != n_links) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "The cluster uses %zu link(s); give the new node exactly %zu --link address(es), not %zu.",
				    n_links, n_links, json_array_size(links));
		return;
	}
	uint32_t nodeid = 1;
	while (g_hash_table_contains(used, GUINT_TO_POINTER(nodeid)))
		nodeid++;
	g_autofree const char **sans = sans_for(name, links);
	g_autofree char *cert = herd_tls_sign_csr(csr ? csr : "", name, sans, store_cluster_of(c)->ca_cert,
						  store_cluster_of(c)->ca_key, CERT_DAYS, &err);
	if (!cert) {
		http_respond_error(req, err);
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	g_autofree const char **addresses = link_addresses(links);
	g_autoptr(json_t) cmd = store_node_cmd_create(uuid, name, nodeid, addresses, json_array_size(links));
	add_ctx *a = g_new0(add_ctx, 1);
	a->req = req;
	a->d = d;
	a->cert = g_steal_pointer(&cert);
	a->nodeid = nodeid;
	if (!herd_cluster_submit(d->cluster, cmd, http_request_user(req), on_node_added, a, &err)) {
		g_free(a->cert);
		g_free(a);
		http_respond_error(req, err);
		return;
	}
	http_request_suspend(req);
}

/* ------------------------------------------------------------------ */
/* Leave and remove                                                    */

static void on_left_stopped(herdd *d, const GError *error, gpointer user)
{
	form_ctx *f = user;
	if (error)
		log_warn("stopping corosync after leaving: %s", error->message);
	undo_membership(d);
	log_info("this node left cluster '%s'", f->name);
	http_respond_json(f->req, 200, json_pack("{s:s,s:b}", "cluster", f->name, "left", 1));
	form_ctx_free(f);
}

/* Leave locally: stop corosync, then drop the cluster's files and store. */
static void leave_locally(form_ctx *f)
{
	herd_cluster_stop(f->d->cluster);
	herdd_service(f->d, "stop", "corosync", on_left_stopped, f);
}

static void on_self_removed(json_t *result, const GError *error, gpointer user)
{
	form_ctx *f = user;
	store_state *st = herd_cluster_state(f->d->cluster);
	/* The removal can take effect here and still be reported failed: it
	 * changes the ring, and a member may drop out before it acknowledged. */
	bool gone = !store_state_get_by_name(st, STORE_KIND_NODE, f->d->cfg->node_name);
	if (error && !gone && !f->force) {
		http_respond_error(f->req, error);
		form_ctx_free(f);
		return;
	}
	if (error && !gone)
		log_warn("the cluster did not take this node's removal (%s); leaving anyway (--force)",
			 error->message);
	leave_locally(f);
}

void api_cluster_leave(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "force", NULL };
	g_autoptr(GError) err = NULL;
	if (!require_local_root(req))
		return;
	size_t body_len;
	http_request_body(req, &body_len);
	g_autoptr(json_t) body = body_len ? api_body(req, fields, &err) : json_object();
	bool force = false;
	if (!body || !api_get_bool(body, "force", &force, &err)) {
		http_respond_error(req, err);
		return;
	}
	store_state *st = herd_cluster_state(d->cluster);
	store_object *c = store_state_cluster(st);
	if (!c) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "This node is not part of a cluster.");
		return;
	}
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, d->cfg->node_name);
	if (me && store_state_count(st, STORE_KIND_NODE) <= 1 && !force) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "This is the only node of cluster '%s': leaving would delete the cluster. Use --force to do so.",
				    c->name);
		return;
	}
	form_ctx *f = g_new0(form_ctx, 1);
	f->req = req;
	f->d = d;
	f->name = g_strdup(c->name);
	f->force = force;
	http_request_suspend(req);
	if (!me || store_state_count(st, STORE_KIND_NODE) <= 1) {
		/* Already removed by the others (while it was off), or the last
		 * node: nobody else to tell. */
		leave_locally(f);
		return;
	}
	g_autoptr(json_t) cmd = store_node_cmd_remove(me, 0);
	if (!herd_cluster_submit(d->cluster, cmd, http_request_user(req), on_self_removed, f, &err))
		on_self_removed(NULL, err, f);
}

void api_node_remove(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *node = api_lookup(d, STORE_KIND_NODE, http_request_param(req, "node"), &err);
	if (!node) {
		http_respond_error(req, err);
		return;
	}
	if (strcmp(node->name, d->cfg->node_name) == 0) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "Node '%s' is this node; run 'herd cluster leave' on it, or remove it from another node.",
				    node->name);
		return;
	}
	if (herd_cluster_is_member(d->cluster, store_node_of(node)->nodeid)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "Node '%s' is online; run 'herd cluster leave' on it, or power it off first.",
				    node->name);
		return;
	}
	g_autoptr(json_t) cmd = store_node_cmd_remove(node, node->version);
	api_commit(req, d, cmd, 200, NULL);
}

/* ------------------------------------------------------------------ */
/* Status, CA, settings, nodes                                         */

static json_t *fence_history_json(const store_node *sn)
{
	json_t *out = json_array();
	for (size_t i = 0; i < sn->n_fence_history; i++) {
		const store_fence_record *r = &sn->fence_history[i];
		json_array_append_new(out, json_pack("{s:I,s:b,s:s,s:s,s:s}", "time_ms",
						     (json_int_t)r->time_ms, "ok", r->ok, "by", r->by,
						     "device", r->device, "detail", r->detail));
	}
	return out;
}

json_t *api_node_json(herdd *d, store_object *n)
{
	const store_node *sn = store_node_of(n);
	uint32_t nodeid = sn->nodeid;
	bool local = strcmp(n->name, d->cfg->node_name) == 0;
	bool online = herd_cluster_is_member(d->cluster, nodeid);
	json_t *links = json_array();
	json_t *state = local ? NULL : herd_corosync_links(herd_cluster_corosync(d->cluster), nodeid);
	for (size_t i = 0; i < sn->n_links; i++) {
		json_t *l = json_pack("{s:i,s:s}", "link", (int)i, "address", sn->links[i]);
		if (local) {
			json_object_set_new(l, "state", json_string("local"));
		} else {
			const char *s = "down";
			size_t k;
			json_t *st;
			json_array_foreach(state, k, st)
				if (json_integer_value(json_object_get(st, "link")) == (json_int_t)i)
					s = json_is_true(json_object_get(st, "connected")) ? "up" : "down";
			json_object_set_new(l, "state", json_string(online || state ? s : "down"));
		}
		json_array_append_new(links, l);
	}
	json_decref(state);
	json_t *out = json_pack("{s:s,s:s,s:I,s:I,s:b,s:b,s:o}", "name", n->name, "uuid", n->uuid,
				"nodeid", (json_int_t)nodeid, "version", (json_int_t)n->version,
				"online", online, "local", local, "links", links);
	json_object_set_new(out, "mode", json_string(store_node_mode_name(sn->mode)));
	json_object_set_new(out, "down",
			    sn->down ? json_pack("{s:s,s:I,s:s}", "how", sn->down_how, "time_ms",
						 (json_int_t)sn->down_time_ms, "by", sn->down_by)
				     : json_null());
	json_object_set_new(out, "fence_history", fence_history_json(sn));
	uint32_t ring[256];
	size_t n_ring = MIN(herd_cluster_ring(d->cluster, ring, 256), 256);
	bool alive = false;
	for (size_t k = 0; k < n_ring; k++)
		alive |= ring[k] == nodeid;
	json_object_set_new(out, "alive", json_boolean(alive));
	json_t *facts = d->ha ? herd_ha_node_status(d->ha, nodeid) : NULL;
	json_object_set_new(out, "herd", facts ? facts : json_null());
	return out;
}

json_t *api_nodes_json(herdd *d)
{
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(herd_cluster_state(d->cluster));
	json_t *list = json_array();
	for (guint i = 0; i < nodes->len; i++)
		json_array_append_new(list, api_node_json(d, nodes->pdata[i]));
	return list;
}

void api_nodes_list(http_request *req, gpointer user_data)
{
	http_respond_json(req, 200, api_nodes_json(user_data));
}

void api_node_show(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *node = api_lookup(d, STORE_KIND_NODE, http_request_param(req, "node"), &err);
	if (!node)
		http_respond_error(req, err);
	else
		http_respond_json(req, 200, api_node_json(d, node));
}

void api_cluster_get(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	store_object *c = store_state_cluster(herd_cluster_state(d->cluster));
	if (!c) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND,
				    herd_cluster_started(d->cluster)
					    ? "This node is joining a cluster and has not received its configuration yet."
					    : "This node is not part of a cluster.");
		return;
	}
	g_autofree char *fp = herd_tls_fingerprint(store_cluster_of(c)->ca_cert, NULL);
	json_t *out = herd_cluster_status_json(d->cluster);
	json_object_set_new(out, "name", json_string(c->name));
	json_object_set_new(out, "uuid", json_string(c->uuid));
	json_object_set_new(out, "fingerprint", json_string(fp ? fp : ""));
	json_object_set_new(out, "local_node", json_string(d->cfg->node_name));
	json_object_set_new(out, "nodes", api_nodes_json(d));
	json_object_set_new(out, "settings",
			    cluster_settings_effective(store_cluster_stored_settings(c)));
	http_respond_json(req, 200, out);
}

void api_cluster_ca(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	store_object *c = store_state_cluster(herd_cluster_state(d->cluster));
	const char *ca = c ? store_cluster_of(c)->ca_cert : NULL;
	if (!ca) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "This node is not part of a cluster.");
		return;
	}
	g_autofree char *fp = herd_tls_fingerprint(ca, NULL);
	http_respond_json(req, 200, json_pack("{s:s,s:s,s:s}", "cluster", c->name, "ca_cert", ca,
					      "fingerprint", fp ? fp : ""));
}

static json_t *settings_json(json_t *stored)
{
	json_t *list = json_array();
	g_autoptr(json_t) eff = cluster_settings_effective(stored);
	for (const cluster_setting *s = cluster_settings; s->key; s++) {
		json_t *v = json_object_get(stored, s->key);
		json_array_append_new(list, json_pack("{s:s,s:O,s:s,s:b,s:s}", "key", s->key, "value",
						      json_object_get(eff, s->key), "default",
						      s->default_value, "changed",
						      v && !json_is_null(v), "help", s->help));
	}
	return list;
}

void api_cluster_settings_get(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	store_object *c = store_state_cluster(herd_cluster_state(d->cluster));
	if (!c) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "This node is not part of a cluster.");
		return;
	}
	http_respond_json(req, 200, settings_json(store_cluster_stored_settings(c)));
}

static json_t *render_settings(herdd *d, json_t *result)
{
	store_object *c = store_state_cluster(herd_cluster_state(d->cluster));
	return settings_json(store_cluster_stored_settings(c));
}

void api_cluster_settings_put(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *c = store_state_cluster(herd_cluster_state(d->cluster));
	if (!c) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "This node is not part of a cluster.");
		return;
	}
	g_autoptr(json_t) body = http_request_json(req, &err);
	g_autoptr(json_t) changes = body ? cluster_settings_validate(body, &err) : NULL;
	if (!changes) {
		http_respond_error(req, err);
		return;
	}
	g_autoptr(json_t) cmd = store_cluster_cmd_settings(c, changes);
	api_commit(req, d, cmd, 200, render_settings);
}
