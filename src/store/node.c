#include "store/node.h"
#include "store/vm.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"

#include <arpa/inet.h>
#include <string.h>

static const char *const mode_names[] = { "online", "standby", "maintenance" };

const char *store_node_mode_name(store_node_mode m)
{
	return (unsigned)m < G_N_ELEMENTS(mode_names) ? mode_names[m] : "?";
}

bool store_node_mode_parse(const char *s, store_node_mode *out)
{
	for (unsigned i = 0; s && i < G_N_ELEMENTS(mode_names); i++) {
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (store_node_mode)i;
			return true;
		}
	}
	return false;
}

typedef struct {
	store_node node;
	const char **links;
	store_fence_record *history;
} node_typed;

void *store_node_parse(json_t *d)
{
	node_typed *t = g_new0(node_typed, 1);
	store_node *n = &t->node;
	n->nodeid = (uint32_t)field_uint(d, "nodeid", 0);
	json_t *links = json_object_get(d, "links");
	t->links = g_new0(const char *, json_array_size(links) + 1);
	size_t i;
	json_t *v;
	json_array_foreach(links, i, v)
		if (json_is_string(v))
			t->links[n->n_links++] = json_string_value(v);
	n->links = t->links;
	n->storage_address = field_str(d, "storage_address");
	n->switchover_to = field_str(d, "switchover_to");
	if (!store_node_mode_parse(field_str(d, "mode"), &n->mode))
		n->mode = STORE_NODE_ONLINE;
	n->allow_cold = field_bool(d, "allow_cold", false);
	json_t *shutdown = json_object_get(d, "shutdown");
	n->shutdown = json_is_object(shutdown);
	if (n->shutdown) {
		n->shutdown_time_ms = (int64_t)field_uint(shutdown, "time_ms", 0);
		if (!store_node_mode_parse(field_str(shutdown, "mode"), &n->shutdown_mode))
			n->shutdown_mode = STORE_NODE_ONLINE;
		n->shutdown_allow_cold = field_bool(shutdown, "allow_cold", false);
	}
	json_t *down = json_object_get(d, "down");
	n->down = json_is_object(down);
	if (n->down) {
		n->down_how = field_text(down, "how");
		n->down_time_ms = (int64_t)field_uint(down, "time_ms", 0);
		n->down_by = field_text(down, "by");
	}
	json_t *history = json_object_get(d, "fence_history");
	t->history = g_new0(store_fence_record, json_array_size(history) + 1);
	json_array_foreach(history, i, v) {
		if (!json_is_object(v))
			continue;
		store_fence_record *r = &t->history[n->n_fence_history++];
		r->time_ms = (int64_t)field_uint(v, "time_ms", 0);
		r->ok = field_bool(v, "ok", false);
		r->by = field_text(v, "by");
		r->device = field_text(v, "device");
		r->detail = field_text(v, "detail");
	}
	n->fence_history = t->history;
	return t;
}

void store_node_free(void *typed)
{
	node_typed *t = typed;
	if (!t)
		return;
	g_free(t->links);
	g_free(t->history);
	g_free(t);
}

const store_node *store_node_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_NODE);
	return &((const node_typed *)o->typed)->node;
}

bool store_node_validate(json_t *d, GError **error)
{
	if (!check_uint(d, "node", "nodeid", 1, G_MAXUINT32, error) ||
	    !check_choice(d, "node", "mode", "online|standby|maintenance", error) ||
	    !check_bool(d, "node", "allow_cold", error) ||
	    !check_string(d, "node", "switchover_to", error))
		return false;
	json_t *links = json_object_get(d, "links");
	size_t i;
	json_t *v;
	if (links && !json_is_array(links)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The node's field 'links' must be a list of addresses.");
		return false;
	}
	json_array_foreach(links, i, v) {
		if (!json_is_string(v)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The node's field 'links' must be a list of addresses.");
			return false;
		}
	}
	json_t *sa = json_object_get(d, "storage_address");
	if (sa && !json_is_null(sa) && (!json_is_string(sa) || !store_node_storage_address_check(json_string_value(sa), error))) {
		if (!json_is_string(sa))
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The node's field 'storage_address' must be an IP address.");
		return false;
	}
	json_t *down = json_object_get(d, "down");
	if (down && (!json_is_object(down) || !check_choice(down, "node's down mark", "how",
							     "fenced|confirmed", error))) {
		if (!json_is_object(down))
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The node's field 'down' must be an object {how, time_ms, by}.");
		return false;
	}
	json_t *shutdown = json_object_get(d, "shutdown");
	if (shutdown && !json_is_null(shutdown) &&
	    (!json_is_object(shutdown) ||
	     !check_uint(shutdown, "node's shutdown mark", "time_ms", 0, INT64_MAX, error) ||
	     !check_choice(shutdown, "node's shutdown mark", "mode", "online|standby|maintenance", error) ||
	     !check_bool(shutdown, "node's shutdown mark", "allow_cold", error))) {
		if (!json_is_object(shutdown))
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The node's field 'shutdown' must be an object {time_ms, mode, allow_cold}.");
		return false;
	}
	json_t *history = json_object_get(d, "fence_history");
	if (history && !json_is_array(history)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The node's field 'fence_history' must be a list.");
		return false;
	}
	return true;
}

store_object *store_node_by_id(store_state *st, uint32_t nodeid)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_NODE]);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (store_node_of(v)->nodeid == nodeid)
			return v;
	return NULL;
}

uint32_t store_node_id(store_state *st, const char *name)
{
	store_object *n = name ? store_state_get_by_name(st, STORE_KIND_NODE, name) : NULL;
	return n ? store_node_of(n)->nodeid : 0;
}

static gint by_id(gconstpointer a, gconstpointer b)
{
	uint32_t x = store_node_of(*(store_object *const *)a)->nodeid;
	uint32_t y = store_node_of(*(store_object *const *)b)->nodeid;
	return x < y ? -1 : x > y;
}

GPtrArray *store_node_list_by_id(store_state *st)
{
	GPtrArray *nodes = store_state_list(st, STORE_KIND_NODE);
	g_ptr_array_sort(nodes, by_id);
	return nodes;
}

bool store_node_storage_address_check(const char *s, GError **error)
{
	unsigned char ip[16];
	bool v4 = inet_pton(AF_INET, s, ip) == 1;
	if (!v4 && inet_pton(AF_INET6, s, ip) != 1) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Storage address '%s' is not an IP address (such as 10.0.1.5 or fd00::5).", s);
		return false;
	}
	static const unsigned char zero[16], loop6[16] = { [15] = 1 };
	const char *what = v4 && memcmp(ip, zero, 4) == 0	      ? "unspecified"
			   : v4 && ip[0] == 127			      ? "a loopback address"
			   : v4 && ip[0] >= 224			      ? "multicast or reserved"
			   : !v4 && memcmp(ip, zero, 16) == 0	      ? "unspecified"
			   : !v4 && memcmp(ip, loop6, 16) == 0	      ? "a loopback address"
			   : !v4 && ip[0] == 0xff		      ? "multicast"
									      : NULL;
	if (what) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Storage address %s is %s: the peer node must reach it.", s, what);
		return false;
	}
	return true;
}

json_t *store_node_cmd_switchover(const store_object *node, const char *to)
{
	return store_cmd_patch(STORE_KIND_NODE, node->uuid,
			       json_pack("{s:o}", "switchover_to", to ? json_string(to) : json_null()));
}

json_t *store_node_cmd_storage_address(const store_object *node, const char *address)
{
	return store_cmd_patch(STORE_KIND_NODE, node->uuid,
			       json_pack("{s:o}", "storage_address", address ? json_string(address) : json_null()));
}

json_t *store_node_cmd_create(const char *uuid, const char *name, uint32_t nodeid,
			      const char *const *links, size_t n_links)
{
	json_t *l = json_array();
	for (size_t i = 0; i < n_links; i++)
		json_array_append_new(l, json_string(links[i]));
	return store_cmd_create(STORE_KIND_NODE, uuid, name,
				json_pack("{s:I,s:o}", "nodeid", (json_int_t)nodeid, "links", l));
}

/* @patch (stolen) for @node, with the clearing of the live_failed marks
 * of its VMs that every mode change brings: one command. */
static json_t *mode_change(store_state *st, const store_object *node, json_t *patch,
			   uint64_t if_version)
{
	json_t *ops = json_array();
	json_t *p = store_cmd_patch(STORE_KIND_NODE, node->uuid, patch);
	if (if_version)
		store_cmd_if_version(p, if_version);
	json_array_append_new(ops, p);
	GHashTable *vms = store_vms_assigned_to(st, node->name);
	GHashTableIter it;
	gpointer v;
	if (vms)
		g_hash_table_iter_init(&it, vms);
	while (vms && g_hash_table_iter_next(&it, NULL, &v))
		if (store_vm_of(v)->live_failed)
			json_array_append_new(ops, store_cmd_patch(STORE_KIND_VM, ((store_object *)v)->uuid,
								   json_pack("{s:n}", "live_failed")));
	if (json_array_size(ops) > 1)
		return store_cmd_batch(ops);
	json_t *cmd = json_incref(json_array_get(ops, 0));
	json_decref(ops);
	return cmd;
}

json_t *store_node_cmd_mode(store_state *st, const store_object *node, store_node_mode mode,
			    bool allow_cold)
{
	return mode_change(st, node,
			   json_pack("{s:s,s:b,s:n}", "mode", store_node_mode_name(mode), "allow_cold",
				     allow_cold, "shutdown"),
			   0);
}

json_t *store_node_cmd_shutdown(store_state *st, const store_object *node, int64_t now_ms)
{
	const store_node *sn = store_node_of(node);
	json_t *patch = json_pack("{s:s,s:b}", "mode", store_node_mode_name(STORE_NODE_MAINTENANCE),
				  "allow_cold", true);
	/* Marked already (a shutdown that did not get as far as the power-off):
	 * the mode from before the first is the one to go back to. */
	if (!sn->shutdown)
		json_object_set_new(patch, "shutdown",
				    json_pack("{s:I,s:s,s:b}", "time_ms", (json_int_t)now_ms, "mode",
					      store_node_mode_name(sn->mode), "allow_cold", sn->allow_cold));
	return mode_change(st, node, patch, 0);
}

json_t *store_node_cmd_shutdown_over(store_state *st, const store_object *node)
{
	const store_node *sn = store_node_of(node);
	if (!sn->shutdown)
		return NULL;
	return mode_change(st, node,
			   json_pack("{s:s,s:b,s:n}", "mode", store_node_mode_name(sn->shutdown_mode),
				     "allow_cold", sn->shutdown_allow_cold, "shutdown"),
			   node->version);
}

static json_t *down_mark(const char *how, const char *by, int64_t now_ms)
{
	return json_pack("{s:s,s:I,s:s}", "how", how, "time_ms", (json_int_t)now_ms, "by", by);
}

json_t *store_node_cmd_confirm_down(const store_object *node, const char *by, int64_t now_ms)
{
	return store_cmd_patch(STORE_KIND_NODE, node->uuid,
			       json_pack("{s:o}", "down", down_mark("confirmed", by, now_ms)));
}

json_t *store_node_cmd_clear_down(const store_object *node)
{
	return store_cmd_patch(STORE_KIND_NODE, node->uuid, json_pack("{s:n}", "down"));
}

json_t *store_node_cmd_fence_record(const store_object *node, const char *by, bool ok,
				    bool mark_down, const char *device, const char *detail,
				    int64_t now_ms)
{
	json_t *history = json_deep_copy(json_object_get(node->data, "fence_history"));
	if (!json_is_array(history)) {
		json_decref(history);
		history = json_array();
	}
	json_array_append_new(history, json_pack("{s:I,s:b,s:s,s:s,s:s}", "time_ms", (json_int_t)now_ms,
						 "ok", ok, "by", by, "device", device ? device : "",
						 "detail", detail ? detail : ""));
	while (json_array_size(history) > STORE_NODE_FENCE_HISTORY_MAX)
		json_array_remove(history, 0);
	json_t *data = json_pack("{s:o}", "fence_history", history);
	if (ok && mark_down)
		json_object_set_new(data, "down", down_mark("fenced", by, now_ms));
	return store_cmd_patch(STORE_KIND_NODE, node->uuid, data);
}

json_t *store_node_cmd_remove(const store_object *node, uint64_t if_version)
{
	return store_cmd_delete(STORE_KIND_NODE, node->uuid, if_version);
}
