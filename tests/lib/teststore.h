/*
 * A replicated store's state in memory for unit tests: commands applied as
 * the replica applies them (an envelope of time, origin and user added),
 * in a transaction of an in-memory database.
 */
#pragma once

#include "store/db.h"
#include "store/state.h"

#include <glib.h>
#include "common/json.h"

#include <jansson.h>

typedef struct test_store {
	store_db *db;
	store_state *st;
} test_store;

/* An empty store (free with test_store_free). */
test_store *test_store_new(void);
void test_store_free(test_store *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(test_store, test_store_free)

/* Apply command @cmd (not stolen); its result, or NULL with @error (and
 * nothing changed). */
json_t *test_store_apply(test_store *t, json_t *cmd, GError **error);
/* Apply the command written as JSON text @text; it must succeed. */
void test_store_apply_text(test_store *t, const char *text);
/* Apply @cmd (stolen: a builder's result); it must succeed. */
void test_store_apply_new(test_store *t, json_t *cmd);
