/*
 * The cluster as a resource: create, join (the new node's side and the
 * member's side), leave (src/cluster/formation.c and admission.c do the work), its status,
 * its CA and its settings.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "common/tls.h"
#include "store/cluster.h"

#include <string.h>

/* Root on the node's socket, or its page with the setup code (a blank
 * node's only: cluster_setup.c). */
static bool require_root_or_setup(http_request *req)
{
	if (http_request_is_local_root(req) || api_setup_user(http_request_user(req)))
		return true;
	http_respond_errorf(req, HERD_ERR_FORBIDDEN,
			    "Only root on this node's own socket (use 'herd' on the node), or its page with the setup code, may do this.");
	return false;
}

static bool require_no_cluster(http_request *req, api_ctx *a)
{
	if (!herd_formation_member(a->formation))
		return true;
	g_autofree char *joining = herd_formation_joining_name(a->formation);
	if (joining) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "This node is joining cluster '%s' and is not in sync with it yet (corosync runs; 'herd status' says what it waits for). Wait for it, or give the join up with 'herd cluster leave' and join again.",
				    joining);
		return false;
	}
	store_object *c = store_state_cluster(api_state(a));
	http_respond_errorf(req, HERD_ERR_CONFLICT,
			    "This node is already a member of cluster '%s'; leave it first with 'herd cluster leave'.",
			    c ? c->name : "(name unknown)");
	return false;
}

/*
 * The "links" field: 1 to 8 distinct IP addresses, as a NULL-terminated
 * array borrowed from @body (free the array), *@n of them.
 */
static const char **parse_links(json_t *body, size_t *n, GError **error)
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
	const char **out = g_new0(const char *, json_array_size(links) + 1);
	json_array_foreach(links, i, a)
		out[i] = json_string_value(a);
	*n = json_array_size(links);
	return out;
}

void api_cluster_create(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "links", "password", "settings", NULL };
	g_autoptr(GError) err = NULL;
	if (!require_root_or_setup(req) || !require_no_cluster(req, a))
		return;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *password = json_string_value(json_object_get(body, "password"));
	size_t n_links = 0;
	g_autofree const char **links = body ? parse_links(body, &n_links, &err) : NULL;
	json_t *requested = json_object_get(body, "settings");
	g_autoptr(json_t) settings = NULL;
	if (links && store_name_validate(STORE_KIND_CLUSTER, name, &err))
		settings = requested && json_object_size(requested) > 0
				   ? cluster_settings_validate(requested, &err)
				   : json_object();
	if (settings && !cluster_settings_check_change(NULL, settings, &err))
		g_clear_pointer(&settings, json_decref);
	if (!settings) {
		http_respond_error(req, err);
		return;
	}
	http_request_suspend(req);
	herd_formation_create(a->formation, name, links, n_links, password, settings,
			      http_request_user(req), api_answer, req);
}

void api_cluster_join(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "address", "fingerprint", "password", "links", NULL };
	g_autoptr(GError) err = NULL;
	if (!require_root_or_setup(req) || !require_no_cluster(req, a))
		return;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *address = json_string_value(json_object_get(body, "address"));
	const char *fingerprint = json_string_value(json_object_get(body, "fingerprint"));
	const char *password = json_string_value(json_object_get(body, "password"));
	size_t n_links = 0;
	g_autofree const char **links = body ? parse_links(body, &n_links, &err) : NULL;
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
	http_request_suspend(req);
	herd_formation_join(a->formation, address, fp, password, links, n_links, api_answer, req);
}

static void on_node_added(json_t *result, const GError *error, gpointer req)
{
	if (error)
		http_respond_error(req, error);
	else
		http_respond_json(req, 201, json_incref(result));
}

void api_cluster_add_node(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "links", "csr", "protocol", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *csr = json_string_value(json_object_get(body, "csr"));
	json_int_t protocol = json_integer_value(json_object_get(body, "protocol"));
	size_t n_links = 0;
	g_autofree const char **links = body ? parse_links(body, &n_links, &err) : NULL;
	if (!links || !store_name_validate(STORE_KIND_NODE, name, &err)) {
		http_respond_error(req, err);
		return;
	}
	http_request_suspend(req);
	herd_formation_add_node(a->formation, name, links, n_links, csr, protocol,
				http_request_user(req), on_node_added, req);
}

void api_cluster_leave(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "force", NULL };
	g_autoptr(GError) err = NULL;
	/* Root on the node, or an admin on its page (the route's permission);
	 * the node gets a new setup code for its blank days. */
	api_setup_code_forget(a);
	size_t body_len;
	http_request_body(req, &body_len);
	g_autoptr(json_t) body = body_len ? api_body(req, fields, &err) : json_object();
	bool force = false;
	if (!body || !api_get_bool(body, "force", &force, &err)) {
		http_respond_error(req, err);
		return;
	}
	http_request_suspend(req);
	herd_formation_leave(a->formation, force, http_request_user(req), api_answer, req);
}

void api_cluster_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	store_object *c = store_state_cluster(api_state(a));
	if (!c) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND,
				    herd_cluster_started(a->cluster)
					    ? "This node is joining a cluster and has not received its configuration yet."
					    : "This node is not part of a cluster.");
		return;
	}
	g_autofree char *fp = herd_tls_fingerprint(store_cluster_of(c)->ca_cert, NULL);
	json_t *out = herd_cluster_status_json(a->cluster);
	json_object_set_new(out, "name", json_string(c->name));
	json_object_set_new(out, "uuid", json_string(c->uuid));
	json_object_set_new(out, "fingerprint", json_string(fp ? fp : ""));
	json_object_set_new(out, "local_node", json_string(a->node->name));
	json_object_set_new(out, "nodes", api_nodes_json(a));
	/* Every node's view of its heartbeat links (ha/links.h). */
	json_object_set_new(out, "links", herd_ha_links(a->ha));
	/* Every node's verdict on the ping nodes (ha/ping.h), if any are set. */
	json_object_set_new(out, "ping", herd_ha_ping(a->ha));
	json_object_set_new(out, "qdevice", api_cluster_qdevice_json(a));
	json_object_set_new(out, "settings", cluster_settings_shown(store_cluster_stored_settings(c)));
	http_respond_json(req, 200, out);
}

void api_cluster_ca(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *c = store_state_cluster(api_state(a));
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
	/* Secrets as whether they are set, never their value. */
	g_autoptr(json_t) eff = cluster_settings_shown(stored);
	for (const cluster_setting *s = cluster_settings; s->key; s++) {
		json_t *v = json_object_get(stored, s->key);
		json_array_append_new(list, json_pack("{s:s,s:O,s:s,s:b,s:s,s:b}", "key", s->key, "value",
						      json_object_get(eff, s->key), "default",
						      s->default_value, "changed",
						      v && !json_is_null(v), "help", s->help,
						      "secret", s->secret));
	}
	return list;
}

void api_cluster_settings_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	store_object *c = store_state_cluster(api_state(a));
	if (!c) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "This node is not part of a cluster.");
		return;
	}
	http_respond_json(req, 200, settings_json(store_cluster_stored_settings(c)));
}

static json_t *render_settings(api_ctx *a, json_t *result)
{
	store_object *c = store_state_cluster(api_state(a));
	return settings_json(store_cluster_stored_settings(c));
}

void api_cluster_settings_put(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	g_autoptr(GError) err = NULL;
	store_object *c = store_state_cluster(api_state(a));
	if (!c) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "This node is not part of a cluster.");
		return;
	}
	g_autoptr(json_t) body = http_request_json(req, &err);
	g_autoptr(json_t) changes = body ? cluster_settings_validate(body, &err) : NULL;
	/* The store checks it again where the change is applied (another
	 * change may come first); here it is refused before it goes out. */
	if (changes && !cluster_settings_check_change(store_cluster_stored_settings(c), changes, &err))
		g_clear_pointer(&changes, json_decref);
	if (!changes) {
		http_respond_error(req, err);
		return;
	}
	g_autoptr(json_t) cmd = store_cluster_cmd_settings(c, changes);
	api_commit(req, a, cmd, 200, render_settings);
}
