#include "ha/fence_standby.h"

#include "store/fence_device.h"
#include "store/node.h"

#include <string.h>

void herd_standby_want_free(herd_standby_want *w)
{
	if (!w)
		return;
	g_free(w->device);
	g_free(w->agent);
	g_free(w->key);
	g_free(w);
}

size_t herd_standby_would_fence(const uint32_t *group, size_t n_group, uint32_t self, uint32_t *out)
{
	/* The lowest and second lowest of the group. */
	uint32_t first = UINT32_MAX, second = UINT32_MAX;
	bool member = false;
	for (size_t i = 0; i < n_group; i++) {
		uint32_t id = group[i];
		member = member || id == self;
		if (id < first) {
			second = first;
			first = id;
		} else if (id < second && id != first) {
			second = id;
		}
	}
	size_t n = 0;
	if (!member)
		return 0;
	if (self == first) {
		for (size_t i = 0; i < n_group; i++) {
			bool seen = group[i] == self;
			for (size_t k = 0; k < n && !seen; k++)
				seen = out[k] == group[i];
			if (!seen)
				out[n++] = group[i];
		}
	} else if (self == second) {
		out[n++] = first;
	}
	return n;
}

static gint by_level_name(gconstpointer a, gconstpointer b)
{
	const herd_standby_device *x = *(const herd_standby_device *const *)a;
	const herd_standby_device *y = *(const herd_standby_device *const *)b;
	if (x->level != y->level)
		return x->level < y->level ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool covers(const herd_standby_device *d, const char *const *fenced, size_t n_fenced)
{
	for (size_t i = 0; i < d->n_nodes; i++)
		for (size_t k = 0; k < n_fenced; k++)
			if (strcmp(d->nodes[i], fenced[k]) == 0)
				return true;
	return false;
}

GPtrArray *herd_standby_choose(const herd_standby_device *devices, size_t n_devices,
			       const char *const *fenced, size_t n_fenced, unsigned max)
{
	g_autoptr(GPtrArray) chosen = g_ptr_array_new();
	for (size_t i = 0; i < n_devices; i++)
		if (covers(&devices[i], fenced, n_fenced))
			g_ptr_array_add(chosen, (gpointer)&devices[i]);
	g_ptr_array_sort(chosen, by_level_name);
	GPtrArray *wants = g_ptr_array_new_with_free_func((GDestroyNotify)herd_standby_want_free);
	for (guint i = 0; i < chosen->len; i++) {
		const herd_standby_device *d = chosen->pdata[i];
		herd_standby_want *w = g_new0(herd_standby_want, 1);
		*w = (herd_standby_want){ g_strdup(d->name), g_strdup(d->agent), g_strdup(d->key), 0 };
		g_ptr_array_add(wants, w);
	}
	/* Round by round: every device's first agent before any second. */
	unsigned left = max;
	for (unsigned round = 0; round < HERD_STANDBY_PER_DEVICE && left > 0; round++)
		for (guint i = 0; i < wants->len && left > 0; i++, left--)
			((herd_standby_want *)wants->pdata[i])->count++;
	for (guint i = 0; i < wants->len;) {
		if (((herd_standby_want *)wants->pdata[i])->count == 0)
			g_ptr_array_remove_index(wants, i);
		else
			i++;
	}
	return wants;
}

GPtrArray *herd_standby_wants(store_state *st, const uint32_t *group, size_t n_group, uint32_t self)
{
	g_autofree uint32_t *ids = g_new0(uint32_t, MAX(n_group, 1));
	size_t n_ids = herd_standby_would_fence(group, n_group, self, ids);
	g_autoptr(GPtrArray) names = g_ptr_array_new();
	for (size_t i = 0; i < n_ids; i++) {
		store_object *n = store_node_by_id(st, ids[i]);
		if (n)
			g_ptr_array_add(names, n->name);
	}
	/* The coordinator fences any node of the store that is lost, also
	 * one whose herd was not in the group (or a lone node of two). */
	bool lowest = false;
	for (size_t i = 0; i < n_group; i++)
		lowest = lowest || group[i] == self;
	for (size_t i = 0; i < n_group && lowest; i++)
		lowest = group[i] >= self;
	if (lowest) {
		g_ptr_array_set_size(names, 0);
		g_autoptr(GPtrArray) nodes = store_state_list(st, STORE_KIND_NODE);
		for (guint i = 0; i < nodes->len; i++) {
			store_object *n = nodes->pdata[i];
			if (store_node_of(n)->nodeid != self)
				g_ptr_array_add(names, n->name);
		}
	}
	g_autoptr(GPtrArray) objs = store_state_list(st, STORE_KIND_FENCE_DEVICE);
	g_autofree herd_standby_device *devs = g_new0(herd_standby_device, MAX(objs->len, 1));
	g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < objs->len; i++) {
		const store_object *o = objs->pdata[i];
		const store_fence_device *d = store_fence_device_of(o);
		const char **nodes = g_new0(const char *, d->n_plugs + 1);
		for (size_t k = 0; k < d->n_plugs; k++)
			nodes[k] = d->plugs[k].node;
		char *key = g_strdup_printf("%s:%" G_GUINT64_FORMAT, o->uuid, o->version);
		g_ptr_array_add(keep, nodes);
		g_ptr_array_add(keep, key);
		devs[i] = (herd_standby_device){ o->name, d->agent, key, d->level, nodes, d->n_plugs };
	}
	return herd_standby_choose(devs, objs->len, (const char *const *)names->pdata, names->len,
				   HERD_STANDBY_MAX);
}

void herd_standby_plan_make(herd_standby_plan *plan, GPtrArray *wants, const herd_standby_have *have,
			    size_t n_have, GHashTable *not_before, int64_t now_ms)
{
	plan->kill = g_array_new(FALSE, FALSE, sizeof(guint));
	plan->spawn = g_ptr_array_new();
	plan->next_ms = 0;
	g_autofree unsigned *kept = g_new0(unsigned, MAX(wants->len, 1));
	for (guint i = 0; i < n_have; i++) {
		bool keep = false;
		for (guint k = 0; k < wants->len && !keep; k++) {
			const herd_standby_want *w = wants->pdata[k];
			if (strcmp(w->device, have[i].device) == 0 && strcmp(w->key, have[i].key) == 0 &&
			    kept[k] < w->count) {
				kept[k]++;
				keep = true;
			}
		}
		if (!keep)
			g_array_append_val(plan->kill, i);
	}
	for (guint k = 0; k < wants->len; k++) {
		herd_standby_want *w = wants->pdata[k];
		if (kept[k] >= w->count)
			continue;
		const int64_t *at = not_before ? g_hash_table_lookup(not_before, w->device) : NULL;
		if (at && *at > now_ms) {
			plan->next_ms = plan->next_ms ? MIN(plan->next_ms, *at) : *at;
			continue;
		}
		for (unsigned n = kept[k]; n < w->count; n++)
			g_ptr_array_add(plan->spawn, w);
	}
}

void herd_standby_plan_clear(herd_standby_plan *plan)
{
	g_clear_pointer(&plan->kill, g_array_unref);
	g_clear_pointer(&plan->spawn, g_ptr_array_unref);
}

int64_t herd_standby_backoff_ms(unsigned deaths)
{
	if (deaths == 0)
		return 0;
	if (deaths > 16)
		return HERD_STANDBY_BACKOFF_MAX_MS;
	return MIN((int64_t)1000 << (deaths - 1), HERD_STANDBY_BACKOFF_MAX_MS);
}

char *herd_fence_agent_input(const herd_fence_target *t, const char *action)
{
	GString *in = g_string_new(NULL);
	g_string_append_printf(in, "action=%s\n", action);
	if (t->plug && *t->plug)
		g_string_append_printf(in, "plug=%s\n", t->plug);
	for (char **p = t->params; p && *p; p++)
		g_string_append_printf(in, "%s\n", *p);
	return g_string_free(in, FALSE);
}
