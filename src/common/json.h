/* jansson with GLib's automatic cleanup: g_autoptr(json_t) j = …; */
#pragma once

#include <glib.h>
#include <jansson.h>

static inline void herd_json_decref(json_t *j)
{
	json_decref(j);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, herd_json_decref)

static inline gint herd_json_key_cmp(gconstpointer a, gconstpointer b)
{
	return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of object @obj in byte order (borrowed from it; free the array):
 * the same object gives the same order. */
static inline GPtrArray *herd_json_sorted_keys(json_t *obj)
{
	GPtrArray *keys = g_ptr_array_new();
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
		g_ptr_array_add(keys, (gpointer)k);
	g_ptr_array_sort(keys, herd_json_key_cmp);
	return keys;
}
