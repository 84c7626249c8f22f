#include "store/fence_device.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"

#include <string.h>

typedef struct {
	store_fence_device dev;
	store_fence_param *params;
	store_fence_plug *plugs;
} device_typed;

static gint by_key(gconstpointer a, gconstpointer b)
{
	return strcmp(((const store_fence_param *)a)->key, ((const store_fence_param *)b)->key);
}

static gint by_node(gconstpointer a, gconstpointer b)
{
	return strcmp(((const store_fence_plug *)a)->node, ((const store_fence_plug *)b)->node);
}

void *store_fence_device_parse(json_t *d)
{
	device_typed *t = g_new0(device_typed, 1);
	store_fence_device *dev = &t->dev;
	dev->agent = field_text(d, "agent");
	json_t *params = json_object_get(d, "params");
	json_t *plugs = json_object_get(d, "plugs");
	t->params = g_new0(store_fence_param, json_object_size(params) + 1);
	t->plugs = g_new0(store_fence_plug, json_object_size(plugs) + 1);
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v)
		if (json_is_string(v))
			t->params[dev->n_params++] = (store_fence_param){ k, json_string_value(v) };
	json_object_foreach(plugs, k, v)
		if (json_is_string(v))
			t->plugs[dev->n_plugs++] = (store_fence_plug){ k, json_string_value(v) };
	qsort(t->params, dev->n_params, sizeof(*t->params), by_key);
	qsort(t->plugs, dev->n_plugs, sizeof(*t->plugs), by_node);
	dev->params = t->params;
	dev->plugs = t->plugs;
	dev->level = (unsigned)CLAMP(field_uint(d, "level", 1), 1, STORE_FENCE_LEVEL_MAX);
	return t;
}

void store_fence_device_free(void *typed)
{
	device_typed *t = typed;
	if (!t)
		return;
	g_free(t->params);
	g_free(t->plugs);
	g_free(t);
}

const store_fence_device *store_fence_device_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_FENCE_DEVICE);
	return &((const device_typed *)o->typed)->dev;
}

const char *store_fence_device_plug(const store_fence_device *d, const char *node)
{
	for (size_t i = 0; node && i < d->n_plugs; i++)
		if (strcmp(d->plugs[i].node, node) == 0)
			return d->plugs[i].plug;
	return NULL;
}

bool store_fence_covers(store_state *st, const char *node)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_FENCE_DEVICE]);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (store_fence_device_plug(store_fence_device_of(v), node))
			return true;
	return false;
}

bool store_fence_param_is_secret(const char *key)
{
	return strstr(key, "passw") || strstr(key, "secret") || strcmp(key, "community") == 0 ||
	       strstr(key, "key");
}

bool store_fence_device_validate(json_t *d, GError **error)
{
	if (!check_string(d, "fence device", "agent", error) ||
	    !check_string_map(d, "fence device", "params", error) ||
	    !check_string_map(d, "fence device", "plugs", error) ||
	    !check_uint(d, "fence device", "level", 1, STORE_FENCE_LEVEL_MAX, error))
		return false;
	return true;
}

static bool one_line(const char *s)
{
	return s && !strchr(s, '\n');
}

bool store_fence_device_check(store_state *st, json_t *params, json_t *plugs, GError **error)
{
	if (params && !json_is_object(params)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field 'params' must be an object of KEY: VALUE.");
		return false;
	}
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v) {
		bool key_ok = *k && strlen(k) < 64;
		for (const char *p = k; key_ok && *p; p++)
			key_ok = g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '_';
		if (!key_ok || !json_is_string(v) || !one_line(json_string_value(v))) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Fence parameter '%s' must be lower-case letters, digits and '_', with a one-line text value.",
				    k);
			return false;
		}
		if (!strcmp(k, "action") || !strcmp(k, "plug") || !strcmp(k, "port")) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Fence parameter '%s' is set by herd itself; give plugs with --plug NODE=PLUG.", k);
			return false;
		}
	}
	if (!json_is_object(plugs) || json_object_size(plugs) == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A fence device needs at least one plug: which outlet or port cuts which node (NODE=PLUG).");
		return false;
	}
	json_object_foreach(plugs, k, v) {
		if (!store_state_get_by_name(st, STORE_KIND_NODE, k)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Plug for '%s': there is no such node.", k);
			return false;
		}
		if (!json_is_string(v) || !*json_string_value(v) || !one_line(json_string_value(v))) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The plug of node %s must be a one-line text.", k);
			return false;
		}
	}
	return true;
}

json_t *store_fence_device_cmd_create(const char *uuid, const char *name, const char *agent,
				      json_t *params, json_t *plugs, unsigned level)
{
	return store_cmd_create(STORE_KIND_FENCE_DEVICE, uuid, name,
				json_pack("{s:s,s:o,s:O,s:i}", "agent", agent, "params",
					  params ? json_incref(params) : json_object(), "plugs", plugs, "level",
					  (int)level));
}

json_t *store_fence_device_cmd_remove(const store_object *dev)
{
	return store_cmd_delete(STORE_KIND_FENCE_DEVICE, dev->uuid, 0);
}
