#include "store/network.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"

#include <string.h>

void *store_network_parse(json_t *d)
{
	store_network *n = g_new0(store_network, 1);
	n->bridge = field_text(d, "bridge");
	n->vlan = (unsigned)field_uint(d, "vlan", 0);
	return n;
}

void store_network_free(void *typed)
{
	g_free(typed);
}

const store_network *store_network_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_NETWORK);
	return o->typed;
}

bool store_bridge_name_ok(const char *name)
{
	if (!name || !*name || strlen(name) > 15 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	for (const char *c = name; *c; c++)
		if (!g_ascii_isalnum(*c) && !strchr("-_.", *c))
			return false;
	return true;
}

bool store_network_validate(json_t *d, GError **error)
{
	if (!check_string(d, "virtual switch", "bridge", error) ||
	    !check_uint(d, "virtual switch", "vlan", 1, STORE_VLAN_MAX, error))
		return false;
	if (!store_bridge_name_ok(field_str(d, "bridge"))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A virtual switch's bridge must be an interface name: 1 to 15 letters, digits, '-', '_' or '.'.");
		return false;
	}
	return true;
}

json_t *store_network_cmd_create(const char *uuid, const char *name, const char *bridge, unsigned vlan)
{
	json_t *d = json_pack("{s:s}", "bridge", bridge);
	if (vlan)
		json_object_set_new(d, "vlan", json_integer(vlan));
	return store_cmd_create(STORE_KIND_NETWORK, uuid, name, d);
}

json_t *store_network_cmd_delete(const store_object *net)
{
	return store_cmd_delete(STORE_KIND_NETWORK, net->uuid, net->version);
}
