/*
 * Virtual switches as a resource (herd network): list, show, add, remove.
 * A switch is a bridge that every node has (store/network.h); a VLAN makes
 * its VMs' ports Open vSwitch ports with that tag (docs/vm-hardware.md).
 * Removing one that a VM uses is refused at apply (store/refs.h).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "store/network.h"
#include "store/vm.h"

#include <string.h>

/* The VMs whose NICs are on @net, by name. */
static json_t *network_users(store_state *st, const store_object *net)
{
	json_t *users = json_array();
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		const store_vm_hardware *hw = store_vm_of(vm)->hw;
		for (size_t j = 0; hw && j < hw->n_nics; j++)
			if (strcmp(hw->nics[j].network, net->uuid) == 0) {
				json_array_append_new(users, json_string(vm->name));
				break;
			}
	}
	return users;
}

static json_t *network_json(api_ctx *a, store_object *net)
{
	store_state *st = api_state(a);
	const store_network *n = store_network_of(net);
	json_t *o = json_pack("{s:s,s:s,s:s,s:o}", "name", net->name, "uuid", net->uuid, "bridge", n->bridge,
			      "vms", network_users(st, net));
	json_object_set_new(o, "vlan", n->vlan ? json_integer(n->vlan) : json_null());
	/* Per node, whether it has the bridge, as its reach checker found. */
	json_object_set_new(o, "nodes", api_reach_json(a, net->uuid));
	return o;
}

void api_networks_list(http_request *req, gpointer user_data)
{
	api_respond_list(req, user_data, STORE_KIND_NETWORK, network_json);
}

void api_network_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *net = api_lookup_param(req, a, STORE_KIND_NETWORK, "network");
	if (net)
		http_respond_json(req, 200, network_json(a, net));
}

void api_network_add(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "name", "bridge", "vlan", NULL };
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) body = api_body(req, fields, &err);
	const char *name = NULL, *bridge = NULL;
	long long vlan = 0;
	if (!body || !api_get_string(body, "name", &name, &err) ||
	    !store_name_validate(STORE_KIND_NETWORK, name, &err) ||
	    !api_get_string(body, "bridge", &bridge, &err) ||
	    !api_get_int(body, "vlan", 1, STORE_VLAN_MAX, &vlan, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!store_bridge_name_ok(bridge)) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    bridge ? "Bridge '%s' is not an interface name: 1 to 15 letters, digits, '-', '_' or '.'." :
					     "Field 'bridge' (the bridge every node has for the switch) is missing.%s",
				    bridge ? bridge : "");
		return;
	}
	if (!api_require_store(req, a))
		return;
	store_state *st = api_state(a);
	if (store_state_get_by_name(st, STORE_KIND_NETWORK, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Virtual switch %s exists already.", name);
		return;
	}
	g_autoptr(GPtrArray) nets = store_state_list(st, STORE_KIND_NETWORK);
	for (guint i = 0; i < nets->len; i++) {
		const store_object *o = nets->pdata[i];
		const store_network *n = store_network_of(o);
		if (strcmp(n->bridge, bridge) == 0 && n->vlan == (unsigned)vlan) {
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "Virtual switch %s is bridge %s%s already.", o->name, bridge,
					    vlan ? " with that VLAN" : "");
			return;
		}
	}
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	g_autoptr(json_t) cmd = store_network_cmd_create(uuid, name, bridge, (unsigned)vlan);
	api_commit(req, a, cmd, 201, NULL);
}

void api_network_remove(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *net = api_lookup_param(req, a, STORE_KIND_NETWORK, "network");
	if (!net)
		return;
	g_autoptr(json_t) cmd = store_network_cmd_delete(net);
	api_commit(req, a, cmd, 200, NULL);
}
