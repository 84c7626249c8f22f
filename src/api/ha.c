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
#include "store/settings.h"

#include <string.h>

#define START_WAIT_S 60
#define DESTROY_WAIT_S 30

static json_t *settings_of(herdd *d)
{
	store_object *c = store_state_cluster(herd_cluster_state(d->cluster));
	return c ? json_object_get(c->data, "settings") : NULL;
}

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
		g_autoptr(json_t) rt = herd_ha_vm_runtime(d->ha, vm);
		const char *why = json_string_value(json_object_get(rt, "alert"));
		if (!why)
			why = json_string_value(json_object_get(rt, "error"));
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
	g_autoptr(json_t) rt = herd_ha_vm_runtime(d->ha, vm);
	const char *node = json_string_value(json_object_get(rt, "node"));
	const char *state = json_string_value(json_object_get(rt, "state"));
	return node && g_strcmp0(node, json_string_value(json_object_get(vm->data, "node"))) == 0 &&
	       (g_strcmp0(state, "running") == 0 || g_strcmp0(state, "paused") == 0);
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

static void commit_and_wait(http_request *req, herdd *d, store_object *vm, json_t *data,
			    vm_condition cond, const char *what, unsigned timeout_s)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:O}", "op", "patch", "kind", "vm", "uuid",
					  vm->uuid, "data", data);
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
	const char *sticky = json_string_value(json_object_get(vm->data, "sticky"));
	g_autoptr(GPtrArray) nodes = store_state_list(herd_cluster_state(d->cluster), STORE_KIND_NODE);
	GString *s = g_string_new(NULL);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		if (sticky && strcmp(sticky, n->name) != 0)
			continue;
		if (g_strcmp0(json_string_value(json_object_get(n->data, "mode")), "maintenance") == 0)
			continue;
		g_autoptr(GPtrArray) t = herd_ha_fence_targets(d->ha, n->name);
		if (t->len == 0)
			g_string_append_printf(s, "%s%s", s->len ? ", " : "", n->name);
	}
	return g_string_free(s, s->len == 0);
}

/* Refuse a start the cluster cannot do, with the reason; false if refused. */
static bool start_allowed(http_request *req, herdd *d, store_object *vm)
{
	json_t *settings = settings_of(d);
	bool ha = json_is_true(json_object_get(vm->data, "ha"));
	if (ha && !cluster_setting_bool(settings, "lab_mode")) {
		g_autofree char *missing = uncovered_nodes(d, vm);
		if (missing) {
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "VM %s is an HA VM, but no fence device covers node(s) %s that it may run on: without fencing herd could not restart it safely. Add one with 'herd fence-device add', or (tests only) 'herd cluster set lab_mode=yes'.",
					    vm->name, missing);
			return false;
		}
	}
	/* N+1, when the cluster is set to refuse what would break it. */
	if (ha && g_strcmp0(cluster_setting_string(settings, "admission_control"), "refuse") == 0) {
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
	if (herd_ha_vm_active(d->ha, vm->uuid, &where) &&
	    g_strcmp0(json_string_value(json_object_get(vm->data, "target")), "running") == 0) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is already running on node %s.",
				    vm->name, where ? where : "?");
		return;
	}
	if (api_refuse_if_unfenced(req, d, NULL, vm))
		return;
	if (!start_allowed(req, d, vm))
		return;
	g_autoptr(json_t) data = json_pack("{s:s,s:n}", "target", "running", "stop");
	commit_and_wait(req, d, vm, data, vm_is_running, "running", START_WAIT_S);
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
	bool target_running = g_strcmp0(json_string_value(json_object_get(vm->data, "target")), "running") == 0;
	if (!active && !target_running) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is not running.", vm->name);
		return;
	}
	json_int_t timeout = json_integer_value(json_object_get(vm->data, "shutdown_timeout_s"));
	g_autoptr(json_t) data = json_pack("{s:s,s:s}", "target", "stopped", "stop",
					   force ? "force" : "graceful");
	commit_and_wait(req, d, vm, data, wait ? vm_is_stopped : NULL, "stopped",
			force ? DESTROY_WAIT_S : (unsigned)(timeout > 0 ? timeout : 360) + 30);
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
	if (!json_string_value(json_object_get(vm->data, "sticky"))) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is not bound to a node.", vm->name);
		return;
	}
	if (api_refuse_if_unfenced(req, d, NULL, vm))
		return;
	g_autoptr(json_t) data = json_pack("{s:n}", "sticky");
	commit_and_wait(req, d, vm, data, NULL, NULL, 0);
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
	sched_node_mode m;
	if (!body) {
		http_respond_error(req, err);
		return;
	}
	if (!sched_node_mode_parse(mode, &m)) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Mode '%s' is not online, standby or maintenance.",
				    mode ? mode : "");
		return;
	}
	if (api_refuse_if_unfenced(req, d, node->name, NULL))
		return;
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:{s:s}}", "op", "patch", "kind", "node", "uuid",
					  node->uuid, "data", "mode", mode);
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
	if (api_refuse_if_unfenced(req, d, from->name, NULL) ||
	    api_refuse_if_unfenced(req, d, to->name, NULL))
		return;
	json_t *ops = json_array();
	g_autoptr(GPtrArray) vms = store_state_list(herd_cluster_state(d->cluster), STORE_KIND_VM);
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		if (g_strcmp0(json_string_value(json_object_get(vm->data, "node")), from->name) == 0)
			json_array_append_new(ops, json_pack("{s:s,s:s,s:s,s:{s:s}}", "op", "patch", "kind",
							     "vm", "uuid", vm->uuid, "data", "move_to",
							     to->name));
	}
	if (json_array_size(ops) == 0) {
		json_decref(ops);
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Node %s runs no VMs.", from->name);
		return;
	}
	g_autoptr(json_t) cmd = json_pack("{s:s,s:o}", "op", "batch", "ops", ops);
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
	uint32_t id = (uint32_t)json_integer_value(json_object_get(node->data, "nodeid"));
	for (size_t i = 0; i < n; i++) {
		if (ring[i] == id) {
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "Node %s is alive (corosync sees it); confirm-down is only for a node that is powered off.",
					    node->name);
			return;
		}
	}
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:{s:{s:s,s:I,s:s}}}", "op", "patch", "kind",
					  "node", "uuid", node->uuid, "data", "down", "how", "confirmed",
					  "time_ms", (json_int_t)(g_get_real_time() / 1000), "by",
					  http_request_user(req));
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
		g_autoptr(json_t) cmd = node ? herd_fence_record_cmd(node, http_request_user(f->req), true,
								     true, device, detail, g_get_real_time() / 1000)
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
	g_autoptr(GPtrArray) targets = herd_ha_fence_targets(d->ha, node->name);
	if (targets->len == 0) {
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

static bool secret_key(const char *key)
{
	return strstr(key, "passw") || strstr(key, "secret") || strcmp(key, "community") == 0 ||
	       strstr(key, "key");
}

static json_t *fence_device_json(store_object *dev)
{
	json_t *params = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(dev->data, "params"), k, v)
		json_object_set_new(params, k, secret_key(k) ? json_string("********") : json_incref(v));
	return json_pack("{s:s,s:s,s:O,s:o,s:O,s:O}", "name", dev->name, "uuid", dev->uuid, "agent",
			 json_object_get(dev->data, "agent"), "params", params, "plugs",
			 json_object_get(dev->data, "plugs"), "level",
			 json_object_get(dev->data, "level"));
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
	herd_fence_target *lister;
} add_ctx;

/* Plugs the device does not list are refused: over SNMP such a plug
 * switches "off" with success, and fencing through it would cut nothing.
 * A device that cannot be reached (or cannot list) is taken as given. */
static void on_add_listed(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	add_ctx *a = user;
	g_autoptr(GHashTable) listed = ok ? herd_fence_parse_list(detail) : NULL;
	json_t *plugs = json_object_get(json_object_get(a->cmd, "data"), "plugs");
	const char *node;
	json_t *plug;
	if (!ok)
		log_warn("fence device %s: its plugs could not be checked: %s", device, detail);
	json_object_foreach(plugs, node, plug) {
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
	if (params && !json_is_object(params)) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Field 'params' must be an object of KEY: VALUE.");
		return;
	}
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v) {
		bool key_ok = *k && strlen(k) < 64;
		for (const char *p = k; key_ok && *p; p++)
			key_ok = g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '_';
		if (!key_ok || !json_is_string(v) || strchr(json_string_value(v), '\n')) {
			http_respond_errorf(req, HERD_ERR_INVALID,
					    "Fence parameter '%s' must be lower-case letters, digits and '_', with a one-line text value.",
					    k);
			return;
		}
		if (!strcmp(k, "action") || !strcmp(k, "plug") || !strcmp(k, "port")) {
			http_respond_errorf(req, HERD_ERR_INVALID,
					    "Fence parameter '%s' is set by herd itself; give plugs with --plug NODE=PLUG.", k);
			return;
		}
	}
	if (!json_is_object(plugs) || json_object_size(plugs) == 0) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "A fence device needs at least one plug: which outlet or port cuts which node (NODE=PLUG).");
		return;
	}
	json_object_foreach(plugs, k, v) {
		if (!store_state_get_by_name(herd_cluster_state(d->cluster), STORE_KIND_NODE, k)) {
			http_respond_errorf(req, HERD_ERR_INVALID, "Plug for '%s': there is no such node.", k);
			return;
		}
		if (!json_is_string(v) || !*json_string_value(v) || strchr(json_string_value(v), '\n')) {
			http_respond_errorf(req, HERD_ERR_INVALID, "The plug of node %s must be a one-line text.", k);
			return;
		}
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	add_ctx *a = g_new0(add_ctx, 1);
	a->req = req;
	a->d = d;
	a->cmd = json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:o,s:O,s:I}}", "op", "create", "kind",
			   "fence_device", "uuid", uuid, "name", name, "data", "agent", agent, "params",
			   params ? json_incref(params) : json_object(), "plugs", plugs, "level",
			   (json_int_t)level);
	a->lister = g_new0(herd_fence_target, 1);
	a->lister->device = g_strdup(name);
	a->lister->agent = g_strdup(agent);
	a->lister->params = params ? json_deep_copy(params) : json_object();
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
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s}", "op", "delete", "kind", "fence_device",
					  "uuid", dev->uuid);
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

static herd_fence_target *test_target(store_object *dev, const char *plug)
{
	herd_fence_target *t = g_new0(herd_fence_target, 1);
	t->device = g_strdup(dev->name);
	t->agent = g_strdup(json_string_value(json_object_get(dev->data, "agent")));
	t->params = json_deep_copy(json_object_get(dev->data, "params"));
	if (!t->params)
		t->params = json_object();
	t->plug = g_strdup(plug);
	return t;
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
	json_t *plugs = json_object_get(dev->data, "plugs");
	if (json_object_size(plugs) == 0) {
		http_respond_json(req, 200, json_array());
		return;
	}
	test_ctx *c = g_new0(test_ctx, 1);
	c->req = req;
	c->results = json_array();
	c->targets = g_ptr_array_new_with_free_func((GDestroyNotify)herd_fence_target_free);
	c->nodes = g_ptr_array_new_with_free_func(g_free);
	const char *node;
	json_t *plug;
	json_object_foreach(plugs, node, plug) {
		g_ptr_array_add(c->targets, test_target(dev, json_string_value(plug)));
		g_ptr_array_add(c->nodes, g_strdup(node));
	}
	c->lister = test_target(dev, NULL);
	http_request_suspend(req);
	herd_fence_agent_action(c->lister, "list", on_test_list, c);
}

