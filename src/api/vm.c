/*
 * VMs as a resource: define (from libvirt domain XML), show, dumpxml,
 * change herd's attributes, undefine; and their life: start, shutdown,
 * destroy, reboot, reset, suspend, resume where they run, release a sticky
 * binding.  A start or stop is a change of the VM's wanted state; the HA
 * engine carries it out, and the request waits until it has.  How a VM
 * looks in the API: vm_json.c; the list of all: vm_list.c.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/permission.h"
#include "api/routes.h"
#include "api/vm_hardware.h"
#include "api/vm_wait.h"

#include "common/error.h"
#include "common/json.h"
#include "store/cluster.h"
#include "store/fence_device.h"
#include "store/node.h"
#include "store/vm.h"
#include "virt/domxml.h"

#include <string.h>

#define START_WAIT_S 60
#define DESTROY_WAIT_S 30

/*
 * A preferred node is the simplest node set: a VM has one or the other, so
 * that what draws it is never two things.  @vm: the VM they change, or NULL
 * (a new one, or only @at).
 */
static bool vm_attributes_consistent(const store_vm *vm, const store_vm_attrs *at, GError **error)
{
	const char *preferred = (at->set & STORE_VM_SET_PREFERRED) ? at->preferred : vm ? vm->preferred : NULL;
	bool has_set = (at->set & STORE_VM_SET_NODESET) ? json_array_size(at->nodeset) > 0 : vm && vm->n_nodeset > 0;
	if (preferred && has_set) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A VM has a preferred node or a node set, not both (a preferred node is a node set of one node): clear one of them ('herd vm set --no-preferred' or '--no-nodes'; \"preferred\": null or \"nodes\": null).");
		return false;
	}
	bool restricted = (at->set & STORE_VM_SET_RESTRICTED) ? at->restricted : vm && vm->restricted;
	if (restricted && !has_set) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "'restricted' needs a node set ('nodes') to restrict the VM to.");
		return false;
	}
	return true;
}

/* Herd's VM attributes in @body, checked against the store. */
static bool vm_attributes_parse(api_ctx *a, json_t *body, store_vm_attrs *at, GError **error)
{
	static const struct {
		const char *key;
		unsigned bit;
		const char *what;
	} strings[] = {
		{ "preferred", STORE_VM_SET_PREFERRED, "a node name" },
		{ "sticky", STORE_VM_SET_STICKY, "a node of this cluster" },
		{ "group", STORE_VM_SET_GROUP, "a group name" },
		{ "pool", STORE_VM_SET_POOL, "a pool name" },
		{ "start_after", STORE_VM_SET_START_AFTER, "a VM's name or UUID" },
	};
	long long n;
	*at = (store_vm_attrs){ 0 };
	if (json_object_get(body, "ha")) {
		if (!api_get_bool(body, "ha", &at->ha, error))
			return false;
		at->set |= STORE_VM_SET_HA;
	}
	if (json_object_get(body, "failback")) {
		if (!api_get_bool(body, "failback", &at->failback, error))
			return false;
		at->set |= STORE_VM_SET_FAILBACK;
	}
	if (json_object_get(body, "shutdown_timeout_s")) {
		if (!api_get_int(body, "shutdown_timeout_s", 1, STORE_VM_SHUTDOWN_TIMEOUT_MAX_S, &n, error))
			return false;
		at->shutdown_timeout_s = (unsigned)n;
		at->set |= STORE_VM_SET_SHUTDOWN_TIMEOUT;
	}
	if (json_object_get(body, "restricted")) {
		if (!api_get_bool(body, "restricted", &at->restricted, error))
			return false;
		at->set |= STORE_VM_SET_RESTRICTED;
	}
	json_t *set = json_object_get(body, "nodes");
	if (set && !json_is_null(set)) {
		/* Kept in @body, which outlives @at (a define parses again). */
		json_t *parsed = store_vm_nodeset_parse(set, error);
		if (!parsed)
			return false;
		json_object_set_new(body, "nodes", parsed);
		at->nodeset = parsed;
	}
	if (set)
		at->set |= STORE_VM_SET_NODESET;
	if (json_object_get(body, "start_wait_s")) {
		if (!api_get_int(body, "start_wait_s", 0, STORE_VM_START_WAIT_MAX_S, &n, error))
			return false;
		at->start_wait_s = (unsigned)n;
		at->set |= STORE_VM_SET_START_WAIT;
	}
	json_t *prio = json_object_get(body, "restart_priority");
	if (prio) {
		if (!store_vm_priority_parse(json_string_value(prio), &at->restart_priority)) {
			g_set_error_literal(error, HERD_ERROR, HERD_ERR_INVALID,
					    "Field 'restart_priority' must be high, medium, low or disabled.");
			return false;
		}
		at->set |= STORE_VM_SET_PRIORITY;
	}
	for (unsigned i = 0; i < G_N_ELEMENTS(strings); i++) {
		json_t *v = json_object_get(body, strings[i].key);
		if (!v)
			continue;
		if (!json_is_null(v) && !json_is_string(v)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Field '%s' must be %s or null.",
				    strings[i].key, strings[i].what);
			return false;
		}
		const char *value = json_string_value(v);
		if (strings[i].bit == STORE_VM_SET_PREFERRED)
			at->preferred = value;
		else if (strings[i].bit == STORE_VM_SET_STICKY)
			at->sticky = value;
		else if (strings[i].bit == STORE_VM_SET_START_AFTER)
			at->start_after = value;
		else if (strings[i].bit == STORE_VM_SET_POOL)
			at->pool = value;
		else
			at->group = value;
		at->set |= strings[i].bit;
	}
	if (!store_vm_attrs_check(api_state(a), at, error))
		return false;
	/* Kept as the VM's UUID: it may be renamed. */
	if (at->start_after)
		at->start_after = store_vm_attrs_start_after(api_state(a), at->start_after);
	return true;
}

json_t *api_render_vm(api_ctx *a, json_t *result)
{
	store_object *vm = store_state_get(api_state(a), STORE_KIND_VM,
					   json_string_value(json_object_get(result, "uuid")));
	return vm ? api_vm_json(a, vm, NULL) : json_incref(result);
}

/* A define whose XML libvirt checks on a thread of its own: its schema
 * validation takes tens of milliseconds, too long for the main loop. */
typedef struct {
	http_request *req;
	api_ctx *a;
	json_t *body;
	char *xml;
	herd_domxml *dom;
	GError *error;
} define_job;

static void define_job_free(define_job *j)
{
	json_decref(j->body);
	g_free(j->xml);
	herd_domxml_free(j->dom);
	g_clear_error(&j->error);
	g_free(j);
}

/* The define goes on with the XML parsed: check it against the store as
 * it is now (the attributes again: it may have changed), and commit. */
static void define_finish(http_request *req, api_ctx *a, json_t *body, herd_domxml *dom,
			  const GError *parse_error)
{
	g_autoptr(GError) err = NULL;
	if (!dom) {
		http_respond_error(req, parse_error);
		return;
	}
	if (!store_name_validate(STORE_KIND_VM, dom->name, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!api_require_store(req, a))
		return;
	store_state *st = api_state(a);
	store_object *same = store_state_get(st, STORE_KIND_VM, dom->uuid);
	store_object *named = store_state_get_by_name(st, STORE_KIND_VM, dom->name);
	if (named && named != same) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM '%s' already exists with UUID %s; the XML has UUID %s.",
				    dom->name, named->uuid, dom->uuid);
		return;
	}
	store_vm_attrs attrs;
	if (!vm_attributes_parse(a, body, &attrs, &err) ||
	    !vm_attributes_consistent(same ? store_vm_of(same) : NULL, &attrs, &err)) {
		http_respond_error(req, err);
		return;
	}
	/* virsh semantics: define on an existing VM replaces its XML. */
	store_vm_domain sd = { dom->uuid, dom->name, dom->xml, dom->type, dom->memory_mib, dom->vcpus,
			       (const char *const *)dom->files, (const char *const *)dom->bridges };
	g_autoptr(json_t) cmd = store_vm_cmd_define(same, &sd, &attrs, &err);
	if (!cmd) {
		http_respond_error(req, err);
		return;
	}
	api_commit(req, a, cmd, same ? 200 : 201, api_render_vm);
}

static gboolean on_define_parsed(gpointer data)
{
	define_job *j = data;
	define_finish(j->req, j->a, j->body, j->dom, j->error);
	define_job_free(j);
	return G_SOURCE_REMOVE;
}

/* On the define thread. */
static void define_parse(gpointer data, gpointer unused)
{
	define_job *j = data;
	j->dom = herd_domxml_parse(j->xml, &j->error);
	g_idle_add(on_define_parsed, j);
}

void api_vm_define(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "xml", "ha", "preferred", "failback",
					      "shutdown_timeout_s", "sticky", "group", "pool", "nodes", "restricted",
					      "restart_priority", "start_after", "start_wait_s", "name",
					      "memory", "vcpus", "hardware", NULL };
	store_vm_attrs attrs;
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *xml = NULL;
	if (body && json_object_get(body, "hardware")) {
		/* herd vm create: a VM made from its hardware (vm_hardware.c). */
		if (!vm_attributes_parse(a, body, &attrs, &err) || !vm_attributes_consistent(NULL, &attrs, &err))
			http_respond_error(req, err);
		else
			api_vm_create(req, a, body, &attrs);
		return;
	}
	if (body && (json_object_get(body, "name") || api_vm_hardware_requested(body))) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "A VM is defined from 'xml' (herd vm define) or made from 'name', 'memory', 'vcpus' and 'hardware' (herd vm create).");
		return;
	}
	if (!body || !api_get_string(body, "xml", &xml, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!xml) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Field 'xml' (the libvirt domain XML) is missing.");
		return;
	}
	/* What can be refused without libvirt is, before it is asked. */
	if (!vm_attributes_parse(a, body, &attrs, &err)) {
		http_respond_error(req, err);
		return;
	}
	define_job *j = g_new0(define_job, 1);
	j->req = req;
	j->a = a;
	j->body = g_steal_pointer(&body);
	j->xml = g_strdup(xml);
	/* One thread: libvirt's test driver holds one domain at a time. */
	static GThreadPool *pool;
	if (!pool)
		pool = g_thread_pool_new(define_parse, NULL, 1, FALSE, NULL);
	http_request_suspend(req);
	g_thread_pool_push(pool, j, NULL);
}

/* @vm's XML as @req's user may see it: the graphics' passwords only for
 * those who may operate it (they may open its console anyway), as libvirt
 * shows them only to read-write connections.  NULL if it cannot be read
 * (answered). */
static char *vm_xml_for(http_request *req, api_ctx *a, store_object *vm)
{
	g_autoptr(GError) err = NULL;
	char *xml = store_vm_xml(store_vm_of(vm), &err);
	if (!xml) {
		http_respond_error(req, err);
		return NULL;
	}
	char *without = api_request_may(req, api_state(a), API_PERM_VM_OPERATE, vm)
				? NULL : herd_domxml_without_passwords(xml);
	if (!without)
		return xml;
	g_free(xml);
	return without;
}

void api_vm_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *vm = api_lookup_param(req, a, STORE_KIND_VM, "vm");
	if (!vm)
		return;
	g_autofree char *xml = vm_xml_for(req, a, vm);
	if (xml)
		http_respond_json(req, 200, api_vm_json(a, vm, xml));
}

void api_vm_xml(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *vm = api_lookup_param(req, a, STORE_KIND_VM, "vm");
	if (!vm)
		return;
	g_autofree char *xml = vm_xml_for(req, a, vm);
	if (xml)
		http_respond_json(req, 200, json_pack("{s:s,s:s}", "name", vm->name, "xml", xml));
}

void api_vm_set(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	g_autoptr(GError) err = NULL;
	static const char *const fields[] = { "ha", "preferred", "failback", "shutdown_timeout_s",
					      "sticky", "group", "pool", "nodes", "restricted", "restart_priority", "start_after",
					      "start_wait_s", "memory", "vcpus", "hardware", NULL };
	store_object *vm = api_lookup(a, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	g_autoptr(json_t) body = vm ? api_body(req, fields, &err) : NULL;
	store_vm_attrs attrs;
	if (!body || !vm_attributes_parse(a, body, &attrs, &err) ||
	    !vm_attributes_consistent(store_vm_of(vm), &attrs, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (api_vm_hardware_requested(body)) {
		api_vm_set_hardware(req, a, vm, body, &attrs);
		return;
	}
	if (attrs.set == 0) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Nothing to change: give ha, preferred, failback, shutdown_timeout_s, sticky, group, pool, nodes, restricted, "
				    "restart_priority, start_after, start_wait_s, memory, vcpus or hardware.");
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_set(vm, &attrs);
	api_commit(req, a, cmd, 200, api_render_vm);
}

void api_vm_undefine(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *vm = api_lookup_param(req, a, STORE_KIND_VM, "vm");
	if (!vm)
		return;
	/* Where it runs, also when it is to run (the usual case): the message
	 * names the node. */
	const char *where = NULL;
	bool active = a->ha && herd_ha_vm_active(a->ha, vm->uuid, &where);
	if (store_vm_of(vm)->target_running || active) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s is running%s%s; shut it down (or destroy it) before undefining it.",
				    vm->name, where ? " on node " : "", where ? where : "");
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_undefine(vm);
	api_commit(req, a, cmd, 200, NULL);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

/* The nodes @vm may run on that no fence device covers, as "n2, n3"; NULL if none. */
static char *uncovered_nodes(api_ctx *a, store_object *vm)
{
	store_state *st = api_state(a);
	const store_vm *v = store_vm_of(vm);
	const char *sticky = v->sticky;
	g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
	GString *s = g_string_new(NULL);
	for (guint i = 0; i < nodes->len; i++) {
		store_object *n = nodes->pdata[i];
		if (sticky && strcmp(sticky, n->name) != 0)
			continue;
		if (!sticky && v->restricted && store_vm_nodeset_priority(v->nodeset, v->n_nodeset, n->name) < 0)
			continue;
		if (store_node_of(n)->mode == STORE_NODE_MAINTENANCE)
			continue;
		if (!store_fence_covers(st, n->name))
			g_string_append_printf(s, "%s%s", s->len ? ", " : "", n->name);
	}
	return g_string_free(s, s->len == 0);
}

/* Refuse a start the cluster cannot do, with the reason; false if refused. */
static bool start_allowed(http_request *req, api_ctx *a, store_object *vm)
{
	const store_settings *settings = store_settings_of(api_state(a));
	bool ha = store_vm_of(vm)->ha;
	/* The coordinator would hold it: say so now rather than time out. */
	if (settings->ha_paused) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s is not started: HA is paused, and herd starts no VM until 'herd cluster ha resume'.",
				    vm->name);
		return false;
	}
	if (ha && !settings->lab_mode) {
		g_autofree char *missing = uncovered_nodes(a, vm);
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
		if (!herd_ha_admission(a->ha, vm->uuid, &detail)) {
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
	api_ctx *a = user_data;
	store_object *vm = api_lookup_param(req, a, STORE_KIND_VM, "vm");
	if (!vm)
		return;
	const char *where = NULL;
	if (herd_ha_vm_active(a->ha, vm->uuid, &where) && store_vm_of(vm)->target_running) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is already running on node %s.",
				    vm->name, where ? where : "?");
		return;
	}
	if (!start_allowed(req, a, vm))
		return;
	g_autoptr(json_t) cmd = store_vm_cmd_start(vm);
	api_vm_commit_and_wait(req, a, vm, cmd, api_vm_is_running, NULL, "running", START_WAIT_S);
}

static void stop_vm(http_request *req, gpointer user_data, bool force)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "wait", NULL };
	g_autoptr(GError) err = NULL;
	store_object *vm = api_lookup(a, STORE_KIND_VM, http_request_param(req, "vm"), &err);
	size_t len;
	http_request_body(req, &len);
	g_autoptr(json_t) body = vm && len ? api_body(req, fields, &err) : json_object();
	bool wait = force;
	if (!vm || !body || !api_get_bool(body, "wait", &wait, &err)) {
		http_respond_error(req, err);
		return;
	}
	bool active = herd_ha_vm_active(a->ha, vm->uuid, NULL);
	if (!active && !store_vm_of(vm)->target_running) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is not running.", vm->name);
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_stop(vm, force);
	api_vm_commit_and_wait(req, a, vm, cmd, wait ? api_vm_is_stopped : NULL, NULL, "stopped",
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
	api_ctx *a;
	char uuid[37];
} op_ctx;

static void on_vm_op_done(const GError *error, gpointer user)
{
	op_ctx *o = user;
	store_object *vm = store_state_get(herd_cluster_state(o->a->cluster), STORE_KIND_VM, o->uuid);
	if (error)
		http_respond_error(o->req, error);
	else
		http_respond_json(o->req, 200, vm ? api_vm_json(o->a, vm, NULL) : json_object());
	g_free(o);
}

void api_vm_op(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *vm = api_lookup_param(req, a, STORE_KIND_VM, "vm");
	herd_vm_op op;
	if (!vm)
		return;
	if (!herd_vm_op_parse(http_request_param(req, "op"), &op)) {
		http_respond_errorf(req, HERD_ERR_NOT_FOUND, "There is no VM action '%s'.",
				    http_request_param(req, "op"));
		return;
	}
	op_ctx *o = g_new0(op_ctx, 1);
	o->req = req;
	o->a = a;
	g_strlcpy(o->uuid, vm->uuid, sizeof(o->uuid));
	http_request_suspend(req);
	herd_ha_vm_request(a->ha, vm->uuid, op, on_vm_op_done, o);
}

void api_vm_release(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *vm = api_lookup_param(req, a, STORE_KIND_VM, "vm");
	if (!vm)
		return;
	if (!store_vm_of(vm)->sticky) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s is not bound to a node.", vm->name);
		return;
	}
	g_autoptr(json_t) cmd = store_vm_cmd_release_sticky(vm);
	api_vm_commit_and_wait(req, a, vm, cmd, NULL, NULL, NULL, 0);
}

