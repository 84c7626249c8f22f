#include "store/command.h"

#include <glib.h>

json_t *store_cmd_create(store_kind kind, const char *uuid, const char *name, json_t *data)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:o}", "op", "create", "kind", store_kind_name(kind),
			 "uuid", uuid, "name", name, "data", data);
}

json_t *store_cmd_patch(store_kind kind, const char *uuid, json_t *data)
{
	return json_pack("{s:s,s:s,s:s,s:o}", "op", "patch", "kind", store_kind_name(kind), "uuid",
			 uuid, "data", data);
}

json_t *store_cmd_update(store_kind kind, const char *uuid, const char *name, json_t *data,
			 uint64_t if_version)
{
	json_t *cmd = json_pack("{s:s,s:s,s:s,s:o}", "op", "update", "kind", store_kind_name(kind),
				"uuid", uuid, "data", data);
	if (name)
		json_object_set_new(cmd, "name", json_string(name));
	store_cmd_if_version(cmd, if_version);
	return cmd;
}

json_t *store_cmd_delete(store_kind kind, const char *uuid, uint64_t if_version)
{
	json_t *cmd = json_pack("{s:s,s:s,s:s}", "op", "delete", "kind", store_kind_name(kind), "uuid",
				uuid);
	if (if_version)
		store_cmd_if_version(cmd, if_version);
	return cmd;
}

json_t *store_cmd_batch(json_t *ops)
{
	return json_pack("{s:s,s:o}", "op", "batch", "ops", ops);
}

void store_cmd_append(json_t *ops, json_t *cmd)
{
	json_t *inner = json_object_get(cmd, "ops");
	if (json_is_array(inner) && g_strcmp0(json_string_value(json_object_get(cmd, "op")), "batch") == 0) {
		json_array_extend(ops, inner);
		json_decref(cmd);
		return;
	}
	json_array_append_new(ops, cmd);
}

void store_cmd_if_version(json_t *cmd, uint64_t version)
{
	json_object_set_new(cmd, "if_version", json_integer((json_int_t)version));
}
