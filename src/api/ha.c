/*
 * The HA engine's part of the API: VM lifecycle (start, shutdown, destroy,
 * reboot, reset, suspend, resume, release), node modes and switchover,
 * fencing (node fence, confirm-down) and fence devices.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "ha/coordinator.h"
#include "ha/fence.h"
#include "ha/ha.h"
#include "store/cluster.h"
#include "store/fence_device.h"
#include "store/node.h"
#include "store/vm.h"

#include <string.h>

#define START_WAIT_S 60
#define DESTROY_WAIT_S 30

/* ------------------------------------------------------------------ */
/* Waiting for the cluster to get there                                */

typedef bool (*vm_condition)(herdd *d, const char *uuid);

typedef struct {
	http_request *req;
	herdd *d;
	char uuid[37];
	vm_condition cond;
	gint64 deadline_us;
	const char *what;
} vm_wait;

static gboolean on_vm_wait(gpointer data)
{
	vm_wait *w = data;
	herdd *d = w->d;
	store_object *vm = store_state_get(herd_cluster_state(d->cluster), STORE_KIND_VM, w->uuid);
	if (!vm) {
		http_respond_errorf(w->req, HERD_ERR_NOT_FOUND, "VM %s was undefined meanwhile.", w->uuid);
	} else if (w->cond(d, w->uuid)) {
		http_respond_json(w->req, 200, api_vm_json(d, vm, false));
	} else if (g_get_monotonic_time() >= w->deadline_us) {
		herd_vm_runtime rt;
		herd_ha_vm_runtime(d->ha, vm, &rt);
		const char *why = rt.alert ? rt.alert : rt.error;
		http_respond_errorf(w->req, HERD_ERR_TIMEOUT, "VM %s is not %s yet%s%s", vm->name, w->what,
				    why ? ": " : ".", why ? why : "");
	} else {
		return G_SOURCE_CONTINUE;
	}
	g_free(w);
	return G_SOURCE_REMOVE;
}

/* Answer the (suspended) request once @cond holds, or after @timeout_s. */
static void wait_for(http_request *req, herdd *d, const char *uuid, vm_condition cond,
		     const char *what, unsigned timeout_s)
{
	vm_wait *w = g_new0(vm_wait, 1);
	w->req = req;
	w->d = d;
	g_strlcpy(w->uuid, uuid, sizeof(w->uuid));
	w->cond = cond;
	w->what = what;
	w->deadline_us = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
	g_timeout_add(20, on_vm_wait, w);
}

static bool vm_is_running(herdd *d, const char *uuid)
{
	store_object *vm = store_state_get(herd_cluster_state(d->cluster), STORE_KIND_VM, uuid);
	herd_vm_runtime rt;
	herd_ha_vm_runtime(d->ha, vm, &rt);
	return rt.node && g_strcmp0(rt.node, store_vm_of(vm)->node) == 0 &&
	       (strcmp(rt.state, "running") == 0 || strcmp(rt.state, "paused") == 0);
}

static bool vm_is_stopped(herdd *d, const char *uuid)
{
	return !herd_ha_vm_active(d->ha, uuid, NULL);
}

/* Commit @cmd, then wait until @cond holds (or answer at once if NULL). */
typedef struct {
	http_request *req;
	herdd *d;
	char uuid[37];
	vm_condition cond;
	const char *what;
	unsigned timeout_s;
} commit_wait;

static void on_commit_then_wait(json_t *result, const GError *error, gpointer user)
{
	commit_wait *c = user;
	store_object *vm = store_state_get(herd_cluster_state(c->d->cluster), STORE_KIND_VM, c->uuid);
	if (error) {
		http_respond_error(c->req, error);
	} else if (!c->cond || !vm) {
		http_respond_json(c->req, 200, vm ? api_vm_json(c->d, vm, false) : json_incref(result));
	} else {
		herd_ha_kick(c->d->ha);
		wait_for(c->req, c->d, c->uuid, c->cond, c->what, c->timeout_s);
	}
	g_free(c);
}

static void commit_and_wait(http_request *req, herdd *d, store_object *vm, json_t *cmd,
			    vm_condition cond, const char *what, unsigned timeout_s)
{
	g_autoptr(GError) err = NULL;
	commit_wait *c = g_new0(commit_wait, 1);
	c->req = req;
	c->d = d;
	g_strlcpy(c->uuid, vm->uuid, sizeof(c->uuid));
	c->cond = cond;
	c->what = what;
	c->timeout_s = timeout_s;
	if (!herd_cluster_submit(d->cluster, cmd, http_request_user(req), on_commit_then_wait, c, &err)) {
		g_free(c);
		http_respond_error(req, err);
		return;
	}
	http_request_suspend(req);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

/* The nodes @vm may run on that no fence device covers, as "n2, n3"; NULL if none. */
static char *uncovered_nodes(herdd *d, store_object *vm)
{
	store_state *st = herd_cluster_state(d->cluster);
	const char *sticky = store_vm_of(vm)->sticky;
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	GString *s = g_string_new(NULL);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		if (sticky && strcmp(sticky, n->name) != 0)
			continue;
		if (store_node_of(n)->mode == STORE_NODE_MAINTENANCE)
			continue;
		if (!store_fence_covers(st, n->name))
			g_string_append_printf(s, "%s%s", s->len ? ", " : "", n->name);
	}
	return g_string_free(s, s->len == 0);
}

/* Refuse a start the cluster cannot do, with the reason; false if refused. */
static bool start_allowed(http_request *req, herdd *d, store_object *vm)
{
	const store_settings *settings = store_settings_of(herd_cluster_state(d->cluster));
	bool ha = store_vm_of(vm)->ha;
	if (ha && !settings->lab_mode) {
		g_autofree char *missing = uncovered_nodes(d, vm);
		if (missing) {
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "VM %s is an HA VM, but no fence device covers node(s) %s that it may run on: without fencing herd could not restart it safely. Add one with 'herd fence-device add', or (tests only) 'herd cluster set lab_mode=yes'.",
					    vm->name, missing);
			return false;
		}
	}
	/* N+1, when the cluster is set to refuse what would break it. */
	if (ha && settings->admission_control == STORE_ADMISSION_REFUSE) {
		g_autofree char *detail = NULL;
		if (!herd_ha_admission(d->ha, vm->uuid, &detail)) {
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "VM %s is not started: %s The cluster's admission_control setting refuses it.",
					    vm->name, detail ? detail : "");
			return false;
		}
	}
	return true;
}

void api_vm_start(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	if (!vm) {
		http_respond_error(req, err);
		return;
	}
	const char *where = NULL;
	if (herd_ha_vm_active(d->ha, vm->uuid, &where) && store_vm_of(vm)->target_running) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is already running on node %s.",
				    vm->name, where ? where : "?");
		return;
	}
	if (!start_allowed(req, d, vm))
		return;
	g_autoptr(json_t) cmd = store_vm_cmd_start(vm);
	commit_and_wait(req, d, vm, cmd, vm_is_running, "running", START_WAIT_S);
}

static void stop_vm(http_request *req, gpointer user_data, bool force)
{
	herdd *d = user_data;
	static const char *const fields[] = { "wait", NULL };
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	size_t len;
	http_request_body(req, &len);
	g_autoptr(json_t) body = vm && len ? api_body(req, fields, &err) : json_object();
	bool wait = force;
	if (!vm || !body || !api_get_bool(body, "wait", &wait, &err)) {
		http_respond_error(req, err);
		return;
	}
	bool active = herd_ha_vm_active(d->ha, vm->uuid, NULL);
	if (!active && !store_vm_of(vm)->target_running) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is not running.", vm->name);
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_stop(vm, force);
	commit_and_wait(req, d, vm, cmd, wait ? vm_is_stopped : NULL, "stopped",
			force ? DESTROY_WAIT_S : store_vm_of(vm)->shutdown_timeout_s + 30);
}

void api_vm_shutdown(http_request *req, gpointer user_data)
{
	stop_vm(req, user_data, false);
}

void api_vm_destroy(http_request *req, gpointer user_data)
{
	stop_vm(req, user_data, true);
}

typedef struct {
	http_request *req;
	herdd *d;
	char uuid[37];
} op_ctx;

static void on_vm_op_done(const GError *error, gpointer user)
{
	op_ctx *o = user;
	store_object *vm = store_state_get(herd_cluster_state(o->d->cluster), STORE_KIND_VM, o->uuid);
	if (error)
		http_respond_error(o->req, error);
	else
		http_respond_json(o->req, 200, vm ? api_vm_json(o->d, vm, false) : json_object());
	g_free(o);
}

void api_vm_op(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	herd_vm_op op;
	if (!vm) {
		http_respond_error(req, err);
		return;
	}
	if (!herd_vm_op_parse(http_request_param(req, "op"), &op)) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "There is no VM action '%s'.",
				    http_request_param(req, "op"));
		return;
	}
	op_ctx *o = g_new0(op_ctx, 1);
	o->req = req;
	o->d = d;
	g_strlcpy(o->uuid, vm->uuid, sizeof(o->uuid));
	http_request_suspend(req);
	herd_ha_vm_request(d->ha, vm->uuid, op, on_vm_op_done, o);
}

void api_vm_release(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(d, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	if (!vm) {
		http_respond_error(req, err);
		return;
	}
	if (!store_vm_of(vm)->sticky) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is not bound to a node.", vm->name);
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_release_sticky(vm);
	commit_and_wait(req, d, vm, cmd, NULL, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Nodes                                                               */

void api_node_mode(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "mode", NULL };
	g_autoptr(GError) err = NULL;
	store_object *node = api_lookup(d, STORE_KIND_NODE, http_request_param(req, "node"), &err);
	g_autoptr(json_t) body = node ? api_body(req, fields, &err) : NULL;
	const char *mode = json_string_value(json_object_get(body, "mode"));
	store_node_mode m;
	if (!body) {
		http_respond_error(req, err);
		return;
	}
	if (!store_node_mode_parse(mode, &m)) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Mode '%s' is not online, standby or maintenance.",
				    mode ? mode : "");
		return;
	}
	g_autoptr(json_t) cmd = store_node_cmd_mode(node, m);
	api_commit(req, d, cmd, 200, NULL);
}

void api_node_switchover(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "to", NULL };
	g_autoptr(GError) err = NULL;
	store_object *from = api_lookup(d, STORE_KIND_NODE, http_request_param(req, "node"), &err);
	g_autoptr(json_t) body = from ? api_body(req, fields, &err) : NULL;
	store_object *to = body ? api_lookup(d, STORE_KIND_NODE, json_string_value(json_object_get(body, "to")) ?: "", &err) : NULL;
	if (!to) {
		http_respond_error(req, err);
		return;
	}
	if (from == to) {
		http_respond_errorf(req, HERD_ERR_INVALID, "A switchover needs two different nodes.");
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_switchover(herd_cluster_state(d->cluster), from->name, to->name);
	if (!cmd) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Node %s runs no VMs.", from->name);
		return;
	}
	api_commit(req, d, cmd, 200, NULL);
}

void api_node_confirm_down(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *node = api_lookup(d, STORE_KIND_NODE, http_request_param(req, "node"), &err);
	if (!node) {
		http_respond_error(req, err);
		return;
	}
	uint32_t ring[256];
	size_t n = MIN(herd_cluster_ring(d->cluster, ring, 256), 256);
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
	api_commit(req, d, cmd, 200, NULL);
}

typedef struct {
	http_request *req;
	herdd *d;
	char *node;
} fence_api_ctx;

static void on_manual_fence(bool ok, const char *device, const char *detail, double secs,
			    gpointer user)
{
	fence_api_ctx *f = user;
	if (!ok) {
		http_respond_errorf(f->req, HERD_ERR_IO, "Fencing node %s failed: %s", f->node, detail);
	} else {
		store_object *node = store_state_get_by_name(herd_cluster_state(f->d->cluster),
							     STORE_KIND_NODE, f->node);
		g_autoptr(json_t) cmd = node ? store_node_cmd_fence_record(node, http_request_user(f->req), true,
									  true, device, detail,
									  g_get_real_time() / 1000)
					     : NULL;
		if (cmd)
			api_commit(f->req, f->d, cmd, 200, NULL);
		else
			http_respond_json(f->req, 200, json_pack("{s:s,s:b}", "node", f->node, "fenced", 1));
	}
	g_free(f->node);
	g_free(f);
}

void api_node_fence(http_request *req, gpointer user_data)
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
				    "Node %s is this node; fence it from another node.", node->name);
		return;
	}
	if (!store_fence_covers(herd_cluster_state(d->cluster), node->name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "No fence device has a plug for node %s; add one with 'herd fence-device add'.",
				    node->name);
		return;
	}
	fence_api_ctx *f = g_new0(fence_api_ctx, 1);
	f->req = req;
	f->d = d;
	f->node = g_strdup(node->name);
	log_warn("fencing node %s as %s asked", node->name, http_request_user(req));
	http_request_suspend(req);
	herd_ha_fence_now(d->ha, node->name, on_manual_fence, f);
}

/* ------------------------------------------------------------------ */
/* Fence devices                                                       */

static json_t *fence_device_json(store_object *dev)
{
	const store_fence_device *d = store_fence_device_of(dev);
	json_t *params = json_object();
	for (size_t i = 0; i < d->n_params; i++) {
		const store_fence_param *p = &d->params[i];
		json_object_set_new(params, p->key,
				    json_string(store_fence_param_is_secret(p->key) ? "********" : p->value));
	}
	json_t *plugs = json_object();
	for (size_t i = 0; i < d->n_plugs; i++)
		json_object_set_new(plugs, d->plugs[i].node, json_string(d->plugs[i].plug));
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:i}", "name", dev->name, "uuid", dev->uuid, "agent",
			 d->agent, "params", params, "plugs", plugs, "level", (int)d->level);
}

void api_fence_devices_list(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GPtrArray) devs = store_state_list(herd_cluster_state(d->cluster), STORE_KIND_FENCE_DEVICE);
	json_t *list = json_array();
	for (guint i = 0; i < devs->len; i++)
		json_array_append_new(list, fence_device_json(devs->pdata[i]));
	http_respond_json(req, 200, list);
}

typedef struct {
	http_request *req;
	herdd *d;
	json_t *cmd;
	json_t *plugs;
	herd_fence_target *lister;
} add_ctx;

/* Plugs the device does not list are refused: over SNMP such a plug
 * switches "off" with success, and fencing through it would cut nothing.
 * A device that cannot be reached (or cannot list) is taken as given. */
static void on_add_listed(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	add_ctx *a = user;
	g_autoptr(GHashTable) listed = ok ? herd_fence_parse_list(detail) : NULL;
	const char *node;
	json_t *plug;
	if (!ok)
		log_warn("fence device %s: its plugs could not be checked: %s", device, detail);
	json_object_foreach(a->plugs, node, plug) {
		if (listed && !g_hash_table_contains(listed, json_string_value(plug))) {
			http_respond_errorf(a->req, HERD_ERR_INVALID,
					    "Plug %s (node %s) is not an outlet of %s: the device lists %u, and a plug it does not have would report 'off' without cutting any power.",
					    json_string_value(plug), node, device, g_hash_table_size(listed));
			goto out;
		}
	}
	api_commit(a->req, a->d, a->cmd, 201, NULL);
out:
	json_decref(a->cmd);
	json_decref(a->plugs);
	herd_fence_target_free(a->lister);
	g_free(a);
}

void api_fence_device_add(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	static const char *const fields[] = { "name", "agent", "params", "plugs", "level", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *agent = json_string_value(json_object_get(body, "agent"));
	json_t *params = json_object_get(body, "params");
	json_t *plugs = json_object_get(body, "plugs");
	long long level = 1;
	if (!body || !store_name_validate(STORE_KIND_FENCE_DEVICE, name, &err) ||
	    !herd_fence_agent_valid(agent, &err) || !api_get_int(body, "level", 1, 9, &level, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!store_fence_device_check(herd_cluster_state(d->cluster), params, plugs, &err)) {
		http_respond_error(req, err);
		return;
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	add_ctx *a = g_new0(add_ctx, 1);
	a->req = req;
	a->d = d;
	a->cmd = store_fence_device_cmd_create(uuid, name, agent, params, plugs, (unsigned)level);
	a->plugs = json_incref(plugs);
	/* The device as it will be stored, to ask its agent for its plugs. */
	g_autoptr(store_object) dev = store_object_new(STORE_KIND_FENCE_DEVICE, uuid, name, 1, 0, 0,
						       json_object_get(a->cmd, "data"));
	a->lister = herd_fence_target_new(dev, NULL);
	http_request_suspend(req);
	herd_fence_agent_action(a->lister, "list", on_add_listed, a);
}

void api_fence_device_remove(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *dev = api_lookup(d, STORE_KIND_FENCE_DEVICE, http_request_param(req, "dev"), &err);
	if (!dev) {
		http_respond_error(req, err);
		return;
	}
	g_autoptr(json_t) cmd = store_fence_device_cmd_remove(dev);
	api_commit(req, d, cmd, 200, NULL);
}

typedef struct {
	http_request *req;
	GPtrArray *targets;   /* herd_fence_target* */
	GPtrArray *nodes;     /* node name of each target */
	herd_fence_target *lister;
	GHashTable *listed;   /* plugs the device lists, or NULL if it cannot list */
	json_t *results;
	guint pending;
} test_ctx;

typedef struct {
	test_ctx *c;
	herd_fence_target *t;
	char *node;
} test_one;

static void test_ctx_free(test_ctx *c)
{
	g_ptr_array_free(c->targets, TRUE);
	g_ptr_array_free(c->nodes, TRUE);
	herd_fence_target_free(c->lister);
	if (c->listed)
		g_hash_table_destroy(c->listed);
	json_decref(c->results);
	g_free(c);
}

static void on_test_one(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	test_one *o = user;
	test_ctx *c = o->c;
	/* Over SNMP a plug the device does not have can read "off": a power
	 * state counts only for a plug the device lists. */
	if (ok && c->listed && !g_hash_table_contains(c->listed, o->t->plug)) {
		g_autofree char *why = g_strdup_printf("plug %s is not an outlet of %s (its list has %u)",
						       o->t->plug, device, g_hash_table_size(c->listed));
		json_array_append_new(c->results, json_pack("{s:s,s:s,s:b,s:s,s:f}", "node", o->node, "plug",
							    o->t->plug, "ok", 0, "error", why, "seconds", secs));
	} else {
		json_array_append_new(c->results, json_pack("{s:s,s:s,s:b,s:s,s:f}", "node", o->node, "plug",
							    o->t->plug, "ok", ok, ok ? "power" : "error", detail,
							    "seconds", secs));
	}
	g_free(o->node);
	g_free(o);
	if (--c->pending == 0) {
		http_respond_json(c->req, 200, json_incref(c->results));
		test_ctx_free(c);
	}
}

/* The device's outlets first (if its agent can list them), then the power
 * state of every plug. */
static void on_test_list(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	test_ctx *c = user;
	c->listed = ok ? herd_fence_parse_list(detail) : NULL;
	c->pending = c->targets->len;
	for (guint i = 0; i < c->targets->len; i++) {
		test_one *o = g_new0(test_one, 1);
		o->c = c;
		o->t = c->targets->pdata[i];
		o->node = g_strdup(c->nodes->pdata[i]);
		herd_fence_agent_action(o->t, "status", on_test_one, o);
	}
}

void api_fence_device_test(http_request *req, gpointer user_data)
{
	herdd *d = user_data;
	g_autoptr(GError) err = NULL;
	store_object *dev = api_lookup(d, STORE_KIND_FENCE_DEVICE, http_request_param(req, "dev"), &err);
	if (!dev) {
		http_respond_error(req, err);
		return;
	}
	const store_fence_device *fd = store_fence_device_of(dev);
	if (fd->n_plugs == 0) {
		http_respond_json(req, 200, json_array());
		return;
	}
	test_ctx *c = g_new0(test_ctx, 1);
	c->req = req;
	c->results = json_array();
	c->targets = g_ptr_array_new_with_free_func((GDestroyNotify)herd_fence_target_free);
	c->nodes = g_ptr_array_new_with_free_func(g_free);
	for (size_t i = 0; i < fd->n_plugs; i++) {
		g_ptr_array_add(c->targets, herd_fence_target_new(dev, fd->plugs[i].plug));
		g_ptr_array_add(c->nodes, g_strdup(fd->plugs[i].node));
	}
	c->lister = herd_fence_target_new(dev, NULL);
	http_request_suspend(req);
	herd_fence_agent_action(c->lister, "list", on_test_list, c);
}

