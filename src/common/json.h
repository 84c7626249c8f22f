/* jansson with GLib's automatic cleanup: g_autoptr(json_t) j = …; */
#pragma once

#include <glib.h>
#include <jansson.h>

static inline void herd_json_decref(json_t *j)
{
	json_decref(j);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, herd_json_decref)
