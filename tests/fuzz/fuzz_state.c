/*
 * store_state_apply() on arbitrary JSON commands.  The input is one
 * command, or a JSON array of commands applied in turn, against a small
 * store (a cluster, a node, VMs with history).  The envelope (time_ms,
 * origin, user) is added where missing, so that the operations themselves
 * get explored; a command that brings its own is taken as it is.
 *
 * Invariants: a failed command changes nothing (memory, database,
 * position) and says why in valid UTF-8; a successful one moves the
 * position by one; memory always equals what the database holds.
 */
#include "fuzz.h"

#include "common/error.h"
#include "common/json.h"
#include "store/state.h"

static store_db *db;
static store_state *st;

static const char setup[] =
	"[{\"op\":\"batch\",\"ops\":["
	"{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"cccccccc-cccc-4ccc-8ccc-cccccccccccc\",\"name\":\"c\",\"data\":{\"settings\":{\"vm_history_limit\":3}}},"
	"{\"op\":\"create\",\"kind\":\"node\",\"uuid\":\"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\",\"name\":\"n1\",\"data\":{\"nodeid\":1}}]},"
	"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"11111111-1111-4111-8111-111111111111\",\"name\":\"web1\",\"data\":{\"xml\":\"<domain/>\",\"settings\":{\"a\":1}}},"
	"{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"11111111-1111-4111-8111-111111111111\",\"data\":{\"b\":2}},"
	"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"22222222-2222-4222-8222-222222222222\",\"name\":\"db1\",\"data\":{}},"
	"{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"22222222-2222-4222-8222-222222222222\"}]";

/* Everything in memory, as text, checking the maps agree with each other. */
static char *memory_text(store_state *s)
{
	GString *out = g_string_new(NULL);
	g_string_append_printf(out, "%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "/",
			       s->pos.gen, s->pos.index, s->pos.current_gen);
	for (int i = 0; i < 32; i++)
		g_string_append_printf(out, "%02x", s->pos.hash[i]);
	for (int k = 0; k < STORE_KIND__COUNT; k++) {
		GPtrArray *list = store_state_list(s, (store_kind)k);
		FUZZ_CHECK(g_hash_table_size(s->by_name[k]) == list->len);
		for (guint i = 0; i < list->len; i++) {
			store_object *o = list->pdata[i];
			FUZZ_CHECK(store_state_get_by_name(s, (store_kind)k, o->name) == o);
			json_t *j = store_object_to_json(o);
			char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
			g_string_append_printf(out, "\n%s", t);
			free(t);
			json_decref(j);
		}
		g_ptr_array_free(list, TRUE);
	}
	return g_string_free(out, FALSE);
}

static char *db_text(void)
{
	json_t *dump = store_db_dump(db, NULL);
	FUZZ_CHECK(dump);
	char *t = json_dumps(dump, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(dump);
	return t;
}

static void apply_one(json_t *cmd, int64_t *clock)
{
	if (json_is_object(cmd)) {
		if (!json_object_get(cmd, "time_ms"))
			json_object_set_new(cmd, "time_ms", json_integer(++*clock));
		if (!json_object_get(cmd, "origin"))
			json_object_set_new(cmd, "origin", json_string("n1"));
		if (!json_object_get(cmd, "user"))
			json_object_set_new(cmd, "user", json_string("fuzz"));
	}
	char *bytes = json_dumps(cmd, JSON_COMPACT | JSON_ENCODE_ANY);
	FUZZ_CHECK(bytes);
	g_autofree char *mem_before = memory_text(st);
	char *db_before = db_text();
	uint64_t index = st->pos.index;
	GPtrArray *changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	GError *error = NULL;
	json_t *r = store_state_apply(st, cmd, bytes, strlen(bytes), changes, &error);
	if (r) {
		FUZZ_CHECK(!error);
		FUZZ_CHECK(st->pos.index == index + 1);
		FUZZ_CHECK(json_is_object(r));
		FUZZ_CHECK(store_state_write_position(st, NULL));
	} else {
		FUZZ_CHECK(error && error->domain == HERD_ERROR);
		FUZZ_CHECK(error->code != HERD_ERR_IO && error->code != HERD_ERR_INTERNAL);
		FUZZ_CHECK(g_utf8_validate(error->message, -1, NULL)); /* it goes into JSON */
		FUZZ_CHECK(changes->len == 0);
		g_autofree char *mem_after = memory_text(st);
		char *db_after = db_text();
		FUZZ_CHECK(strcmp(mem_before, mem_after) == 0);
		FUZZ_CHECK(strcmp(db_before, db_after) == 0);
		free(db_after);
	}
	free(db_before);
	json_decref(r);
	g_clear_error(&error);
	g_ptr_array_free(changes, TRUE);
	free(bytes);
}

/* Memory holds what the database holds. */
static void check_consistent(void)
{
	store_state *fresh = store_state_new(db);
	FUZZ_CHECK(store_state_load(fresh, NULL));
	g_autofree char *a = memory_text(st);
	g_autofree char *b = memory_text(fresh);
	FUZZ_CHECK(strcmp(a, b) == 0);
	store_state_free(fresh);
}

static void init(void)
{
	db = store_db_open(":memory:", NULL);
	FUZZ_CHECK(db);
	st = store_state_new(db);
	json_t *cmds = json_loads(setup, 0, NULL);
	FUZZ_CHECK(cmds);
	int64_t clock = 1000;
	FUZZ_CHECK(store_db_begin(db, NULL));
	size_t i;
	json_t *c;
	json_array_foreach(cmds, i, c) {
		uint64_t index = st->pos.index;
		apply_one(c, &clock);
		FUZZ_CHECK(st->pos.index == index + 1);
	}
	FUZZ_CHECK(store_db_commit(db, NULL));
	json_decref(cmds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!db)
		init();
	json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (!in)
		return 0;
	/* Each input starts from the same store: its changes are rolled back. */
	FUZZ_CHECK(store_db_begin(db, NULL));
	int64_t clock = 100000;
	if (json_is_array(in) && json_array_size(in) > 0) {
		size_t i;
		json_t *c;
		json_array_foreach(in, i, c) {
			if (i >= 64)
				break;
			apply_one(c, &clock);
		}
	} else {
		apply_one(in, &clock);
	}
	check_consistent();
	store_db_rollback(db);
	FUZZ_CHECK(store_state_load(st, NULL));
	json_decref(in);
	return 0;
}
