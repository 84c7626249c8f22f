/*
 * Nodes as a resource: list and show them (with their links, mode, down
 * mark, fence history and facts), remove one that is gone for good, change
 * a node's mode, move all its VMs (switchover), fence it, or confirm that
 * it is down.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"
#include "ha/esan.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/command.h"
#include "store/disk.h"
#include "store/fence_device.h"
#include "store/job.h"
#include "store/node.h"
#include "store/refs.h"
#include "store/vm.h"

#include <string.h>

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

json_t *api_node_json(api_ctx *a, store_object *n)
{
	const store_node *sn = store_node_of(n);
	uint32_t nodeid = sn->nodeid;
	bool local = strcmp(n->name, a->node->name) == 0;
	bool online = herd_cluster_is_member(a->cluster, nodeid);
	json_t *links = json_array();
	json_t *state = local ? NULL : herd_cluster_links(a->cluster, nodeid);
	for (size_t i = 0; i < sn->n_links; i++) {
		json_t *l = json_pack("{s:i,s:s}", "link", (int)i, "address", sn->links[i]);
		if (local) {
			json_object_set_new(l, "state", json_string("local"));
		} else {
			/* Not read yet (corosync is asked once its ring has
			 * settled): "unknown" for a node in the group, whose
			 * links carry it; "down" for one that is not. */
			const char *s = state || !online ? "down" : "unknown";
			size_t k;
			json_t *st;
			json_array_foreach(state, k, st)
				if (json_integer_value(json_object_get(st, "link")) == (json_int_t)i)
					s = json_is_true(json_object_get(st, "connected")) ? "up" : "down";
			json_object_set_new(l, "state", json_string(s));
		}
		json_array_append_new(links, l);
	}
	json_decref(state);
	json_t *out = json_pack("{s:s,s:s,s:I,s:I,s:b,s:b,s:o}", "name", n->name, "uuid", n->uuid,
				"nodeid", (json_int_t)nodeid, "version", (json_int_t)n->version,
				"online", online, "local", local, "links", links);
	json_object_set_new(out, "mode", json_string(store_node_mode_name(sn->mode)));
	json_object_set_new(out, "storage_address",
			    sn->storage_address ? json_string(sn->storage_address) : json_null());
	/* Its herd put it in maintenance because its host shut down: the mode
	 * it gets back when herd starts there again. */
	json_object_set_new(out, "shutdown",
			    sn->shutdown ? json_pack("{s:I,s:s,s:b}", "time_ms", (json_int_t)sn->shutdown_time_ms,
						     "mode", store_node_mode_name(sn->shutdown_mode),
						     "allow_cold", sn->shutdown_allow_cold)
					 : json_null());
	json_object_set_new(out, "down",
			    sn->down ? json_pack("{s:s,s:I,s:s}", "how", sn->down_how, "time_ms",
						 (json_int_t)sn->down_time_ms, "by", sn->down_by)
				     : json_null());
	json_object_set_new(out, "fence_history", fence_history_json(sn));
	uint32_t ring[256];
	size_t n_ring = MIN(herd_cluster_ring(a->cluster, ring, 256), 256);
	bool alive = false;
	for (size_t k = 0; k < n_ring; k++)
		alive |= ring[k] == nodeid;
	json_object_set_new(out, "alive", json_boolean(alive));
	json_t *facts = herd_ha_node_status(a->ha, nodeid);
	json_object_set_new(out, "herd", facts ? facts : json_null());
	return out;
}

json_t *api_nodes_json(api_ctx *a)
{
	g_autoptr(GPtrArray) nodes = store_node_list_by_id(api_state(a));
	json_t *list = json_array();
	for (guint i = 0; i < nodes->len; i++)
		json_array_append_new(list, api_node_json(a, nodes->pdata[i]));
	return list;
}

void api_node_remove(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *node = api_lookup_param(req, a, STORE_KIND_NODE, "node");
	if (!node)
		return;
	http_request_suspend(req);
	herd_formation_remove_node(a->formation, node, http_request_user(req), api_answer, req);
}

void api_nodes_list(http_request *req, gpointer user_data)
{
	if (!api_require_store(req, user_data))
		return;
	http_respond_json(req, 200, api_nodes_json(user_data));
}

void api_node_show(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *node = api_lookup_param(req, a, STORE_KIND_NODE, "node");
	if (node)
		http_respond_json(req, 200, api_node_json(a, node));
}

static json_t *render_node(api_ctx *a, json_t *result)
{
	const char *uuid = json_string_value(json_object_get(result, "uuid"));
	store_object *o = uuid ? store_state_get(api_state(a), STORE_KIND_NODE, uuid) : NULL;
	return o ? api_node_json(a, o) : json_incref(result);
}

/* The node other than @node that uses @address already (a link or its
 * storage address), or NULL. */
static store_object *address_user(store_state *st, const store_object *node, const char *address)
{
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		const store_node *sn = store_node_of(n);
		if (n == node)
			continue;
		if (g_strcmp0(sn->storage_address, address) == 0)
			return n;
		for (size_t k = 0; k < sn->n_links; k++)
			if (strcmp(sn->links[k], address) == 0)
				return n;
	}
	return NULL;
}

/* A VM that runs on an eSAN disk with a replica on @node (its name in
 * *@disk_name), or NULL: both replicas' nbdkits start again on a new
 * storage address, which would cut its disk. */
static store_object *esan_vm_running(api_ctx *a, const store_object *node, const char **disk_name)
{
	g_autoptr(GPtrArray) disks = store_state_list(api_state(a), STORE_KIND_DISK);
	for (guint i = 0; i < disks->len; i++) {
		store_object *d = disks->pdata[i];
		store_object *vm = store_disk_replica(store_disk_of(d), node->uuid)
					   ? store_refs_user(api_state(a), d) : NULL;
		if (vm && herd_ha_vm_active(a->ha, vm->uuid, NULL)) {
			*disk_name = d->name;
			return vm;
		}
	}
	return NULL;
}

/* PUT /nodes/{node} {"storage_address": ADDRESS|null}: the address its
 * herd-san replicates eSAN disks on (a dedicated storage link); null: the
 * esan_link setting's link again. */
void api_node_set(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "storage_address", NULL };
	g_autoptr(GError) err = NULL;
	store_object *node = api_lookup(a, STORE_KIND_NODE, http_request_param(req, "node"), &err);
	g_autoptr(json_t) body = node ? api_body(req, fields, &err) : NULL;
	if (!body) {
		http_respond_error(req, err);
		return;
	}
	json_t *v = json_object_get(body, "storage_address");
	if (!v) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Nothing to change: give storage_address (an IP address, or null).");
		return;
	}
	if (!json_is_null(v) && !json_is_string(v)) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Field 'storage_address' is an IP address (a string) or null (none).");
		return;
	}
	const char *address = json_string_value(v);
	if (address && !store_node_storage_address_check(address, &err)) {
		http_respond_error(req, err);
		return;
	}
	store_object *other = address ? address_user(api_state(a), node, address) : NULL;
	if (other) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Address %s is node %s's already.", address, other->name);
		return;
	}
	if (g_strcmp0(store_node_of(node)->storage_address, address) == 0) {
		http_respond_json(req, 200, api_node_json(a, node));
		return;
	}
	const char *disk = NULL;
	store_object *vm = esan_vm_running(a, node, &disk);
	if (vm) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s runs on eSAN disk %s, which has a replica on node %s: the replicas' "
				    "servers start again on a new storage address, which would cut its disk. "
				    "Stop the VM first.", vm->name, disk, node->name);
		return;
	}
	g_autoptr(json_t) cmd = store_node_cmd_storage_address(node, address);
	api_commit(req, a, cmd, 200, render_node);
}

/* The answer to a mode change that began an evacuation: the node's
 * change, with the job ("job"). */
static json_t *render_evacuation(api_ctx *a, json_t *result)
{
	json_t *results = json_object_get(result, "results");
	json_t *out = json_deep_copy(json_array_get(results, 0));
	/* The node's patch first, the job last. */
	const char *uuid = json_string_value(
		json_object_get(json_array_get(results, json_array_size(results) - 1), "uuid"));
	store_object *job = uuid ? store_state_get(api_state(a), STORE_KIND_JOB, uuid) : NULL;
	if (out && job)
		json_object_set_new(out, "job", api_job_json(a, job, false));
	return out ? out : json_incref(result);
}

/* A node that its VMs leave (@m: standby, maintenance): the job that
 * follows them (store/job.h), unless none is assigned to it or one
 * follows them already; NULL then. */
static json_t *evacuation_job(http_request *req, api_ctx *a, store_object *node, store_node_mode m)
{
	store_state *st = api_state(a);
	GHashTable *vms = store_vms_assigned_to(st, node->name);
	unsigned n = vms ? g_hash_table_size(vms) : 0;
	if (!n || store_job_running(st, "evacuate", node->uuid))
		return NULL;
	const char *owner = api_request_owner(req);
	g_autofree char *line = g_strdup_printf("User %s put node %s in %s mode on node %s: its %u VM(s) move "
						"to other nodes.", owner, node->name, store_node_mode_name(m),
						a->node->name, n);
	char uuid[STORE_UUID_LEN + 1];
	return store_job_cmd_create("evacuate", node->name, node->uuid, NULL, n, owner, node->name, line,
				    g_get_real_time() / 1000, uuid);
}

void api_node_mode(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "mode", "allow_cold", NULL };
	g_autoptr(GError) err = NULL;
	store_object *node = api_lookup(a, STORE_KIND_NODE, http_request_param(req, "node"), &err);
	g_autoptr(json_t) body = node ? api_body(req, fields, &err) : NULL;
	const char *mode = json_string_value(json_object_get(body, "mode"));
	bool allow_cold = false;
	store_node_mode m;
	if (!body || !api_get_bool(body, "allow_cold", &allow_cold, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!store_node_mode_parse(mode, &m)) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Mode '%s' is not online, standby or maintenance.",
				    mode ? mode : "");
		return;
	}
	if (allow_cold && m == STORE_NODE_ONLINE) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "allow_cold is for a node that its VMs leave (standby, maintenance).");
		return;
	}
	/* The sync gate (C14): not out of service while it holds the only
	 * up-to-date replica of an eSAN disk. */
	g_autofree char *gate = m != STORE_NODE_ONLINE ? herd_esan_sync_gate(api_state(a), node->name) : NULL;
	if (gate) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "%s", gate);
		return;
	}
	g_autoptr(json_t) cmd = store_node_cmd_mode(api_state(a), node, m, allow_cold);
	json_t *job = m != STORE_NODE_ONLINE ? evacuation_job(req, a, node, m) : NULL;
	if (job) {
		json_t *ops = json_array();
		store_cmd_append(ops, json_incref(cmd));
		store_cmd_append(ops, job);
		g_autoptr(json_t) both = store_cmd_batch(ops);
		api_commit(req, a, both, 200, render_evacuation);
		return;
	}
	api_commit(req, a, cmd, 200, NULL);
}

void api_node_switchover(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "to", "allow_cold", NULL };
	g_autoptr(GError) err = NULL;
	bool allow_cold = false;
	store_object *from = api_lookup(a, STORE_KIND_NODE, http_request_param(req, "node"), &err);
	g_autoptr(json_t) body = from ? api_body(req, fields, &err) : NULL;
	store_object *to = body && api_get_bool(body, "allow_cold", &allow_cold, &err)
				   ? api_lookup(a, STORE_KIND_NODE, json_string_value(json_object_get(body, "to")) ?: "", &err)
				   : NULL;
	if (!to) {
		http_respond_error(req, err);
		return;
	}
	if (from == to) {
		http_respond_errorf(req, HERD_ERR_INVALID, "A switchover needs two different nodes.");
		return;
	}
	const store_node *dest = store_node_of(to);
	if (dest->mode != STORE_NODE_ONLINE || dest->down) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Node %s is %s: it takes no VMs.", to->name,
				    dest->down ? "down" : store_node_mode_name(dest->mode));
		return;
	}
	g_autoptr(GPtrArray) refused = g_ptr_array_new();
	g_autoptr(json_t) cmd = store_vm_cmd_switchover(api_state(a), from->name, to->name, allow_cold, refused);
	/* VMs bound to a node (sticky) stay, each named with its binding. */
	g_autoptr(GString) bound = g_string_new(NULL);
	json_t *staying = json_array();
	for (guint i = 0; i < refused->len; i++) {
		store_object *vm = refused->pdata[i];
		const char *sticky = store_vm_of(vm)->sticky;
		g_autofree char *why = g_strdup_printf("it is sticky to node %s", sticky);
		json_array_append_new(staying, json_pack("{s:s,s:s,s:s}", "vm", vm->name, "uuid", vm->uuid,
							 "reason", why));
		g_string_append_printf(bound, "%sVM %s is sticky to node %s", i ? "; " : "", vm->name, sticky);
	}
	if (!cmd) {
		json_decref(staying);
		if (refused->len)
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "No VM of node %s may move to node %s: %s ('herd vm release' lets a VM move).",
					    from->name, to->name, bound->str);
		else
			http_respond_errorf(req, HERD_ERR_CONFLICT, "Node %s runs no VMs.", from->name);
		return;
	}
	json_t *moving = json_array(), *op;
	size_t k;
	json_array_foreach(json_object_get(cmd, "ops"), k, op) {
		store_object *vm = store_state_get(api_state(a), STORE_KIND_VM,
						   json_string_value(json_object_get(op, "uuid")));
		if (vm)
			json_array_append_new(moving, json_string(vm->name));
	}
	g_autoptr(json_t) answer = json_pack("{s:s,s:s,s:o,s:o}", "from", from->name, "to", to->name,
					     "moving", moving, "staying", staying);
	/* In the same change: the coordinator tells its beginning and end. */
	json_array_append_new(json_object_get(cmd, "ops"), store_node_cmd_switchover(from, to->name));
	api_commit_answer(req, a, cmd, 200, answer);
}

void api_node_confirm_down(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *node = api_lookup_param(req, a, STORE_KIND_NODE, "node");
	if (!node)
		return;
	uint32_t ring[256];
	size_t n = MIN(herd_cluster_ring(a->cluster, ring, 256), 256);
	uint32_t id = store_node_of(node)->nodeid;
	for (size_t i = 0; i < n; i++) {
		if (ring[i] == id) {
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "Node %s is alive (corosync sees it); confirm-down is only for a node that is powered off.",
					    node->name);
			return;
		}
	}
	g_autoptr(json_t) cmd = store_node_cmd_confirm_down(node, http_request_user(req),
							    g_get_real_time() / 1000);
	log_warn("node %s confirmed down by %s", node->name, http_request_user(req));
	api_commit(req, a, cmd, 200, NULL);
}

typedef struct {
	http_request *req;
	api_ctx *a;
	char *node;
} fence_api_ctx;

static void on_manual_fence(bool ok, const char *device, const char *detail, double secs,
			    gpointer user)
{
	fence_api_ctx *f = user;
	if (!ok) {
		http_respond_errorf(f->req, HERD_ERR_IO, "Fencing node %s failed: %s", f->node, detail);
	} else {
		store_object *node = store_state_get_by_name(herd_cluster_state(f->a->cluster),
							     STORE_KIND_NODE, f->node);
		g_autoptr(json_t) cmd = node ? store_node_cmd_fence_record(node, http_request_user(f->req), true,
									  true, device, detail,
									  g_get_real_time() / 1000)
					     : NULL;
		if (cmd)
			api_commit(f->req, f->a, cmd, 200, NULL);
		else
			http_respond_json(f->req, 200, json_pack("{s:s,s:b}", "node", f->node, "fenced", 1));
	}
	g_free(f->node);
	g_free(f);
}

void api_node_fence(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *node = api_lookup_param(req, a, STORE_KIND_NODE, "node");
	if (!node)
		return;
	if (strcmp(node->name, a->node->name) == 0) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "Node %s is this node; fence it from another node.", node->name);
		return;
	}
	if (!store_fence_covers(api_state(a), node->name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "No fence device has a plug for node %s; add one with 'herd fence-device add'.",
				    node->name);
		return;
	}
	fence_api_ctx *f = g_new0(fence_api_ctx, 1);
	f->req = req;
	f->a = a;
	f->node = g_strdup(node->name);
	log_warn("fencing node %s as %s asked", node->name, http_request_user(req));
	http_request_suspend(req);
	herd_ha_fence_now(a->ha, node->name, on_manual_fence, f);
}

