#include "store/cluster.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"
#include "store/node.h"
#include "store/user.h"

void *store_cluster_parse(json_t *d)
{
	store_cluster *c = g_new0(store_cluster, 1);
	cluster_settings_fill(json_object_get(d, "settings"), &c->settings);
	c->ca_cert = field_str(d, "ca_cert");
	c->ca_key = field_str(d, "ca_key");
	c->authkey = field_str(d, "authkey");
	json_t *q = json_object_get(d, "qdevice");
	if (json_is_object(q) && field_str(q, "host")) {
		c->qdevice.host = field_str(q, "host");
		c->qdevice.port = field_uint(q, "port", STORE_QDEVICE_PORT_DEFAULT);
		c->qdevice.ca_cert = field_text(q, "ca_cert");
		c->qdevice.p12 = field_text(q, "p12");
	}
	return c;
}

void store_cluster_free(void *typed)
{
	g_free(typed);
}

const store_cluster *store_cluster_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_CLUSTER);
	return o->typed;
}

static gpointer make_defaults(gpointer unused)
{
	store_settings *s = g_new0(store_settings, 1);
	cluster_settings_fill(NULL, s);
	return s;
}

const store_settings *store_settings_of(store_state *st)
{
	static GOnce defaults = G_ONCE_INIT;
	store_object *c = store_state_cluster(st);
	return c ? &store_cluster_of(c)->settings : g_once(&defaults, make_defaults, NULL);
}

json_t *store_cluster_stored_settings(const store_object *cluster)
{
	return cluster ? json_object_get(cluster->data, "settings") : NULL;
}

static bool check_qdevice(json_t *d, GError **error)
{
	json_t *q = json_object_get(d, "qdevice");
	if (!q)
		return true;
	if (!json_is_object(q) || !json_is_string(json_object_get(q, "host")) ||
	    !json_is_string(json_object_get(q, "ca_cert")) || !json_is_string(json_object_get(q, "p12"))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The cluster's qdevice needs a host, qnetd's CA and the cluster's certificate.");
		return false;
	}
	return check_uint(q, "qdevice", "port", 1, 65535, error);
}

bool store_cluster_validate(json_t *d, GError **error)
{
	return check_string(d, "cluster", "ca_cert", error) && check_string(d, "cluster", "ca_key", error) &&
	       check_string(d, "cluster", "authkey", error) && check_qdevice(d, error) &&
	       cluster_settings_check_stored(json_object_get(d, "settings"), error);
}

json_t *store_cluster_cmd_bootstrap(const char *name, json_t *settings, const char *ca_cert,
				    const char *ca_key, const char *authkey, const char *node_name,
				    const char *const *links, size_t n_links,
				    const char *admin_password_hash)
{
	char cluster_uuid[STORE_UUID_LEN + 1], node_uuid[STORE_UUID_LEN + 1],
		user_uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(cluster_uuid);
	store_uuid_generate(node_uuid);
	store_uuid_generate(user_uuid);
	json_t *ops = json_array();
	json_array_append_new(ops, store_cmd_create(STORE_KIND_CLUSTER, cluster_uuid, name,
						    json_pack("{s:O,s:s,s:s,s:s}", "settings", settings,
							      "ca_cert", ca_cert, "ca_key", ca_key,
							      "authkey", authkey)));
	json_array_append_new(ops, store_node_cmd_create(node_uuid, node_name, 1, links, n_links));
	json_array_append_new(ops, store_user_cmd_create(user_uuid, "admin", admin_password_hash, "admin"));
	return store_cmd_batch(ops);
}

json_t *store_cluster_cmd_settings(const store_object *cluster, json_t *changes)
{
	return store_cmd_patch(STORE_KIND_CLUSTER, cluster->uuid, json_pack("{s:O}", "settings", changes));
}

json_t *store_cluster_cmd_qdevice_set(const store_object *cluster, const char *host, uint64_t port,
				      const char *ca_cert, const char *p12)
{
	json_t *cmd = store_cmd_patch(STORE_KIND_CLUSTER, cluster->uuid,
				      json_pack("{s:{s:s,s:I,s:s,s:s}}", "qdevice", "host", host, "port",
						(json_int_t)port, "ca_cert", ca_cert, "p12", p12));
	/* Two adds at once: the second finds the first's, not a merge of both. */
	store_cmd_if_version(cmd, cluster->version);
	return cmd;
}

json_t *store_cluster_cmd_qdevice_remove(const store_object *cluster)
{
	return store_cmd_patch(STORE_KIND_CLUSTER, cluster->uuid, json_pack("{s:n}", "qdevice"));
}

const char *store_cluster_qdevice_algorithm(store_state *st)
{
	store_object *cluster = store_state_cluster(st);
	if (!cluster || !store_cluster_of(cluster)->qdevice.host)
		return NULL;
	return store_state_count(st, STORE_KIND_NODE) % 2 == 0 ? "ffsplit" : NULL;
}
