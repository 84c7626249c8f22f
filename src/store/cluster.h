/*
 * The cluster object of the replicated store (there is one once the cluster
 * exists): its name, its settings, its certificate authority and corosync's
 * key.  Read through store_cluster_of() and store_settings_of().
 */
#pragma once

#include "store/object.h"
#include "store/settings.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>

typedef struct store_cluster {
	store_settings settings;  /* effective: stored values over the defaults */
	const char *ca_cert;      /* PEM */
	const char *ca_key;       /* PEM */
	const char *authkey;      /* corosync's key, base64 */
} store_cluster;

const store_cluster *store_cluster_of(const store_object *o);
/* The effective settings of @st's cluster; the defaults before there is one. */
const store_settings *store_settings_of(store_state *st);
/* The stored settings object (only what was changed), or NULL. */
json_t *store_cluster_stored_settings(const store_object *cluster);

/* The first change of a new cluster: it, its first node and its admin user. */
json_t *store_cluster_cmd_bootstrap(const char *name, json_t *settings, const char *ca_cert,
				    const char *ca_key, const char *authkey, const char *node_name,
				    const char *const *links, size_t n_links,
				    const char *admin_password_hash);
/* Change settings (@changes checked by cluster_settings_validate()). */
json_t *store_cluster_cmd_settings(const store_object *cluster, json_t *changes);

bool store_cluster_validate(json_t *data, GError **error);
void *store_cluster_parse(json_t *data);
void store_cluster_free(void *typed);
