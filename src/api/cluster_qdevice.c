/*
 * The cluster's quorum device: corosync-qnetd on an outside host, whose vote
 * decides which half of an even cluster goes on after a split.  The client
 * (herd cluster qdevice add) talks to the qnetd host and brings qnetd's CA
 * and the cluster's certificate signed by it; this stores them, and every
 * node's herdd writes corosync.conf's device section and its NSS database
 * from the store (daemon/qdevice_setup.c).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "common/tls.h"
#include "store/cluster.h"
#include "store/node.h"

#include <string.h>

json_t *api_cluster_qdevice_json(api_ctx *a)
{
	store_state *st = api_state(a);
	store_object *c = store_state_cluster(st);
	if (!c || !store_cluster_of(c)->qdevice.host)
		return json_null();
	const store_cluster *sc = store_cluster_of(c);
	const char *algorithm = store_cluster_qdevice_algorithm(st);
	json_t *out = json_pack("{s:s,s:I,s:s?,s:b}", "host", sc->qdevice.host, "port",
				(json_int_t)sc->qdevice.port, "algorithm", algorithm, "active",
				algorithm != NULL);
	g_autofree char *fp = herd_tls_fingerprint(sc->qdevice.ca_cert, NULL);
	json_object_set_new(out, "ca_fingerprint", json_string(fp ? fp : ""));
	/* This node's corosync-qdevice, as its votequorum sees it. */
	g_autoptr(json_t) status = herd_cluster_status_json(a->cluster);
	json_t *q = json_object_get(json_object_get(status, "quorum"), "qdevice");
	json_object_set(out, "local", q ? q : json_null());
	return out;
}

/* Every node of the cluster in this node's membership; else an error naming
 * the first that is not. */
static bool all_nodes_up(api_ctx *a, GError **error)
{
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(api_state(a));
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		if (!herd_cluster_is_member(a->cluster, store_node_of(n)->nodeid)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
				    "Node %s is not up: every node must be up to set up the qdevice (each one starts its own corosync-qdevice).",
				    n->name);
			return false;
		}
	}
	return true;
}

/* The checks of an add that the store's state decides (also the CLI's
 * dry run before it contacts the qnetd host). */
static bool check_add(api_ctx *a, store_object *c, GError **error)
{
	const store_cluster *sc = store_cluster_of(c);
	if (sc->qdevice.host) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The cluster already has a qdevice (%s); remove it first with 'herd cluster qdevice remove'.",
			    sc->qdevice.host);
		return false;
	}
	g_autoptr(GPtrArray) nodes = store_state_list(api_state(a), STORE_KIND_NODE);
	if (nodes->len % 2) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The cluster has %u nodes: herd sets up a qdevice for an even number of nodes only (an odd number already has a majority on one side of every split).",
			    nodes->len);
		return false;
	}
	return all_nodes_up(a, error);
}

static store_object *cluster_or_answer(http_request *req, api_ctx *a)
{
	if (!api_require_store(req, a))
		return NULL;
	store_object *c = store_state_cluster(api_state(a));
	if (!c)
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "This node is not part of a cluster.");
	return c;
}

void api_cluster_qdevice_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *c = cluster_or_answer(req, a);
	if (!c)
		return;
	if (!store_cluster_of(c)->qdevice.host) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "The cluster has no qdevice.");
		return;
	}
	http_respond_json(req, 200, api_cluster_qdevice_json(a));
}

static json_t *render_qdevice(api_ctx *a, json_t *result)
{
	return api_cluster_qdevice_json(a);
}

void api_cluster_qdevice_add(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "host", "port", "ca_cert", "p12", "check", NULL };
	g_autoptr(GError) err = NULL;
	store_object *c = cluster_or_answer(req, a);
	if (!c)
		return;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *host = json_string_value(json_object_get(body, "host"));
	const char *ca = json_string_value(json_object_get(body, "ca_cert"));
	const char *p12 = json_string_value(json_object_get(body, "p12"));
	long long port = STORE_QDEVICE_PORT_DEFAULT;
	bool check_only = false;
	if (!body || !api_get_int(body, "port", 1, 65535, &port, &err) ||
	    !api_get_bool(body, "check", &check_only, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!api_valid_host(host)) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "The qdevice host '%s' is not a host name or an IP address.",
				    host ? host : "(none)");
		return;
	}
	g_autofree char *ca_fp = ca ? herd_tls_fingerprint(ca, NULL) : NULL;
	if (!check_only && !ca_fp) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "ca_cert is not qnetd's CA certificate (PEM, as in /etc/corosync/qnetd/nssdb/qnetd-cacert.crt).");
		return;
	}
	gsize der_len = 0;
	g_autofree guchar *der = p12 && *p12 ? g_base64_decode(p12, &der_len) : NULL;
	/* PKCS#12 is a DER SEQUENCE; qdevice's own import (pk12util) on every
	 * node is the real check. */
	if (!check_only && (!der || der_len < 64 || der[0] != 0x30)) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "p12 is not the cluster's certificate and key (PKCS#12, base64) as corosync-qdevice-net-certutil -M exports them.");
		return;
	}
	if (!check_add(a, c, &err)) {
		http_respond_error(req, err);
		return;
	}
	/* A dry run: the client asks before it has qnetd sign anything. */
	if (check_only) {
		http_respond_json(req, 200, json_pack("{s:s}", "host", host));
		return;
	}
	g_autoptr(json_t) cmd = store_cluster_cmd_qdevice_set(c, host, (uint64_t)port, ca, p12);
	api_commit(req, a, cmd, 201, render_qdevice);
}

void api_cluster_qdevice_remove(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *c = cluster_or_answer(req, a);
	if (!c)
		return;
	const char *host = store_cluster_of(c)->qdevice.host;
	if (!host) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "The cluster has no qdevice.");
		return;
	}
	/* A node down now (or for good) reads the change from the store when
	 * it is back. */
	g_autoptr(json_t) answer = json_pack("{s:s}", "removed", host);
	g_autoptr(json_t) cmd = store_cluster_cmd_qdevice_remove(c);
	api_commit_answer(req, a, cmd, 200, answer);
}
