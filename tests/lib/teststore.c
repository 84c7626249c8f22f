#include "teststore.h"

#include "common/json.h"

#include <string.h>

test_store *test_store_new(void)
{
	g_autoptr(GError) error = NULL;
	test_store *t = g_new0(test_store, 1);
	t->db = store_db_open(":memory:", &error);
	g_assert_no_error(error);
	t->st = store_state_new(t->db);
	g_assert_true(store_state_load(t->st, &error));
	return t;
}

void test_store_free(test_store *t)
{
	if (!t)
		return;
	store_state_free(t->st);
	store_db_close(t->db);
	g_free(t);
}

json_t *test_store_apply(test_store *t, json_t *cmd, GError **error)
{
	g_autoptr(json_t) env = json_deep_copy(cmd);
	json_object_set_new(env, "time_ms", json_integer(1000));
	json_object_set_new(env, "origin", json_string("n1"));
	json_object_set_new(env, "user", json_string("alice"));
	g_autofree char *bytes = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
	g_assert_true(store_db_begin(t->db, NULL));
	json_t *r = store_state_apply(t->st, env, bytes, strlen(bytes), NULL, error);
	if (!r) {
		store_db_rollback(t->db);
		return NULL;
	}
	g_assert_true(store_state_write_position(t->st, NULL));
	g_assert_true(store_db_commit(t->db, NULL));
	return r;
}

void test_store_apply_new(test_store *t, json_t *cmd)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = test_store_apply(t, cmd, &error);
	g_assert_no_error(error);
	json_decref(cmd);
}

void test_store_apply_text(test_store *t, const char *text)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) cmd = json_loads(text, 0, NULL);
	g_assert_nonnull(cmd);
	g_autoptr(json_t) r = test_store_apply(t, cmd, &error);
	g_assert_no_error(error);
}
