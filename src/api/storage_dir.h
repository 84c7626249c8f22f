/*
 * A dir storage's directory made ready on the node that adds it (see
 * storage_dir.c): there, marked for this cluster and storage, and for the
 * cluster share with its sub-directories.
 */
#pragma once

#include "store/state.h"
#include "store/storage.h"

#include <glib.h>

#define STORAGE_DIR_ANSWER_MS 10000

/* NULL: ready; else why not (nothing was written then, or only a marker
 * that a later add takes over). */
typedef void (*api_storage_dir_done)(const GError *error, gpointer user);

/* Make @storage's directory ready on this node, @node; @done is called
 * once, on the main loop. */
void api_storage_dir_prepare(const char *node, store_state *st, const store_object *storage,
			     api_storage_dir_done done, gpointer user);
