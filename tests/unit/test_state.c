/*
 * The replicated state machine and its database: every operation, its
 * conflicts and errors, atomicity of failed commands and batches, the
 * position, VM history, persistence, state transfer and disk failures.
 *
 * "Changes nothing" is checked thoroughly: the database dump, the in-memory
 * maps (by UUID and by name) and the position before and after must match.
 */
#include "common/error.h"
#include "common/json.h"
#include "store/command.h"
#include "store/db.h"
#include "store/group.h"
#include "store/node.h"
#include "store/refs.h"
#include "store/state.h"
#include "store/user.h"
#include "store/vm.h"

#include <glib/gstdio.h>
#include <stdarg.h>
#include <string.h>

#define VM1 "11111111-1111-4111-8111-111111111111"
#define VM2 "22222222-2222-4222-8222-222222222222"
#define VM3 "33333333-3333-4333-8333-333333333333"
#define CL1 "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
#define CL2 "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
#define ND1 "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"

/* An object's data, kept until the end of the run (a VM's is parsed from
 * its text each time: store_object_data()). */
static GPtrArray *kept_data;
static json_t *data_of(const store_object *o)
{
	if (!kept_data)
		kept_data = g_ptr_array_new_with_free_func((GDestroyNotify)json_decref);
	json_t *d = store_object_data(o, NULL);
	g_ptr_array_add(kept_data, d);
	return d;
}

typedef struct {
	store_db *db;
	store_state *s;
	int64_t clock_ms;
} fixture;

static void fx_open(fixture *f, const char *path)
{
	g_autoptr(GError) error = NULL;
	f->db = store_db_open(path, &error);
	g_assert_no_error(error);
	g_assert_nonnull(f->db);
	f->s = store_state_new(f->db);
	g_assert_true(store_state_load(f->s, &error));
	f->clock_ms = 1000;
}

static void fx_close(fixture *f)
{
	g_clear_pointer(&f->s, store_state_free);
	g_clear_pointer(&f->db, store_db_close);
}

static json_t *parse_v(const char *fmt, va_list ap) G_GNUC_PRINTF(1, 0);
static json_t *parse_v(const char *fmt, va_list ap)
{
	g_autofree char *text = g_strdup_vprintf(fmt, ap);
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		g_error("fixture is not JSON: %s: %s", text, jerr.text);
	return j;
}

/* End a delivery burst as a replica does: the position into the
 * transaction, then commit. */
static void end_burst(fixture *f)
{
	g_autoptr(GError) error = NULL;
	g_assert_true(store_state_write_position(f->s, &error));
	g_assert_true(store_db_commit(f->db, &error));
	g_assert_no_error(error);
	/* As the replica: what is durable may go cold (every test here then
	 * reads VMs' texts back from the database). */
	store_state_settle(f->s);
}

/* Apply @cmd (envelope added unless present) in its own transaction, as a
 * replica does for one delivery burst.  Returns the result or NULL. */
static json_t *apply_json(fixture *f, json_t *cmd, GPtrArray *changes, GError **error)
{
	if (!json_object_get(cmd, "time_ms"))
		json_object_set_new(cmd, "time_ms", json_integer(++f->clock_ms));
	if (!json_object_get(cmd, "origin"))
		json_object_set_new(cmd, "origin", json_string("n1"));
	if (!json_object_get(cmd, "user"))
		json_object_set_new(cmd, "user", json_string("alice"));
	g_autofree char *bytes = json_dumps(cmd, JSON_COMPACT | JSON_SORT_KEYS);
	g_assert_true(store_db_begin(f->db, NULL));
	json_t *r = store_state_apply(f->s, cmd, bytes, strlen(bytes), changes, error);
	end_burst(f);
	return r;
}

/* Apply, and it must succeed. */
static json_t *ok(fixture *f, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static json_t *ok(fixture *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autoptr(json_t) cmd = parse_v(fmt, ap);
	va_end(ap);
	g_autoptr(GError) error = NULL;
	json_t *r = apply_json(f, cmd, NULL, &error);
	if (!r)
		g_error("command failed: %s", error->message);
	return r;
}

/* Everything observable about the store, as text. */
static char *memory_text(store_state *s)
{
	GString *out = g_string_new(NULL);
	char hash[65];
	store_position_hash_hex(&s->pos, hash);
	g_string_append_printf(out, "pos %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " %s\n",
			       s->pos.gen, s->pos.index, s->pos.current_gen, hash);
	for (int k = 0; k < STORE_KIND__COUNT; k++) {
		g_autoptr(GPtrArray) list = store_state_list(s, (store_kind)k);
		/* the name map holds exactly the objects of the UUID map */
		g_assert_cmpuint(g_hash_table_size(s->by_name[k]), ==, list->len);
		guint assigned = 0;
		for (guint i = 0; i < list->len; i++) {
			store_object *o = list->pdata[i];
			g_assert_true(store_state_get(s, (store_kind)k, o->uuid) == o);
			g_assert_true(store_state_get_by_name(s, (store_kind)k, o->name) == o);
			/* the VMs by node hold exactly the assigned ones */
			const char *node = k == STORE_KIND_VM ? store_vm_of(o)->node : NULL;
			if (node) {
				GHashTable *set = store_vms_assigned_to(s, node);
				g_assert_true(set && g_hash_table_lookup(set, o->uuid) == o);
				assigned++;
			}
			g_autoptr(json_t) j = store_object_to_json(o);
			g_autofree char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
			g_string_append_printf(out, "%s\n", t);
		}
		if (k == STORE_KIND_VM) {
			guint indexed = 0;
			GHashTableIter it;
			gpointer set;
			g_hash_table_iter_init(&it, s->vms_by_node);
			while (g_hash_table_iter_next(&it, NULL, &set)) {
				g_assert_cmpuint(g_hash_table_size(set), >, 0);
				indexed += g_hash_table_size(set);
			}
			g_assert_cmpuint(indexed, ==, assigned);
		}
	}
	return g_string_free(out, FALSE);
}

static char *db_text(store_db *db)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) dump = store_db_dump(db, &error);
	g_assert_no_error(error);
	return json_dumps(dump, JSON_INDENT(1) | JSON_SORT_KEYS);
}

typedef struct {
	char *memory, *db;
} snapshot;

static snapshot take(fixture *f)
{
	return (snapshot){ memory_text(f->s), db_text(f->db) };
}

static void same_as(fixture *f, snapshot *before)
{
	g_autofree char *m = memory_text(f->s), *d = db_text(f->db);
	g_assert_cmpstr(m, ==, before->memory);
	g_assert_cmpstr(d, ==, before->db);
	g_clear_pointer(&before->memory, g_free);
	g_clear_pointer(&before->db, g_free);
}

/* The database holds what memory holds: a fresh load gives the same. */
static void check_consistent(fixture *f)
{
	g_autoptr(store_state) fresh = store_state_new(f->db);
	g_autoptr(GError) error = NULL;
	g_assert_true(store_state_load(fresh, &error));
	g_autofree char *a = memory_text(f->s), *b = memory_text(fresh);
	g_assert_cmpstr(a, ==, b);
}

/* The command fails with @code and a message containing @needle, and
 * changes nothing. */
static void fails(fixture *f, int code, const char *needle, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void fails(fixture *f, int code, const char *needle, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autoptr(json_t) cmd = parse_v(fmt, ap);
	va_end(ap);
	snapshot before = take(f);
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	g_autoptr(json_t) r = apply_json(f, cmd, changes, &error);
	if (r) {
		g_autofree char *t = json_dumps(cmd, 0);
		g_error("command succeeded, expected an error: %s", t);
	}
	g_assert_error(error, HERD_ERROR, code);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
	g_assert_cmpuint(changes->len, ==, 0);
	same_as(f, &before);
}

static uint64_t version_of(fixture *f, store_kind kind, const char *uuid)
{
	store_object *o = store_state_get(f->s, kind, uuid);
	g_assert_nonnull(o);
	return o->version;
}

static void setup_cluster(fixture *f)
{
	json_decref(ok(f, "{\"op\":\"batch\",\"ops\":["
			  "{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"" CL1 "\",\"name\":\"c1\",\"data\":{\"settings\":{}}},"
			  "{\"op\":\"create\",\"kind\":\"node\",\"uuid\":\"" ND1 "\",\"name\":\"n1\",\"data\":{\"nodeid\":1}}]}"));
}

/* ------------------------------------------------------------------ */

static void test_empty(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	g_assert_cmpuint(f.s->pos.index, ==, 0);
	g_assert_cmpuint(f.s->pos.gen, ==, 0);
	g_assert_null(store_state_cluster(f.s));
	for (int k = 0; k < STORE_KIND__COUNT; k++)
		g_assert_cmpuint(store_state_count(f.s, (store_kind)k), ==, 0);
	g_assert_null(store_state_lookup(f.s, STORE_KIND_VM, NULL));
	g_assert_null(store_state_lookup(f.s, STORE_KIND_VM, "web1"));
	g_assert_null(store_state_lookup(f.s, STORE_KIND_VM, VM1));
	check_consistent(&f);
	fx_close(&f);
}

static void test_create(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	store_position before = f.s->pos;
	g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:s,s:{s:s}}", "op", "create", "kind", "vm",
					  "uuid", VM1, "name", "web1", "data", "xml", "<domain/>");
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = apply_json(&f, cmd, changes, &error);
	g_assert_no_error(error);
	g_autoptr(json_t) want = json_pack("{s:s,s:s,s:s,s:i}", "kind", "vm", "uuid", VM1, "name",
					   "web1", "version", 1);
	g_assert_true(json_equal(r, want));

	/* one change: nothing before, the new object after */
	g_assert_cmpuint(changes->len, ==, 1);
	store_change *c = changes->pdata[0];
	g_assert_cmpint(c->kind, ==, STORE_KIND_VM);
	g_assert_cmpstr(c->uuid, ==, VM1);
	g_assert_null(c->before);
	g_assert_nonnull(c->after);

	store_object *o = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_true(o == c->after);
	g_assert_true(store_state_get_by_name(f.s, STORE_KIND_VM, "web1") == o);
	g_assert_true(store_state_lookup(f.s, STORE_KIND_VM, "web1") == o);
	g_assert_true(store_state_lookup(f.s, STORE_KIND_VM, VM1) == o);
	g_assert_null(store_state_get_by_name(f.s, STORE_KIND_NODE, "web1")); /* per kind */
	g_assert_cmpuint(o->version, ==, 1);
	g_assert_cmpint(o->created_ms, ==, f.clock_ms);
	g_assert_cmpint(o->modified_ms, ==, f.clock_ms);
	g_assert_cmpstr(json_string_value(json_object_get(data_of(o), "xml")), ==, "<domain/>");
	g_assert_cmpuint(store_state_count(f.s, STORE_KIND_VM), ==, 1);

	/* the position moved by one, the hash changed */
	g_assert_cmpuint(f.s->pos.index, ==, before.index + 1);
	g_assert_true(memcmp(f.s->pos.hash, before.hash, 32) != 0);
	g_assert_cmpint(store_position_compare(&before, &f.s->pos), <, 0);
	check_consistent(&f);

	/* the same name in another kind is fine */
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"host\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));
	g_assert_cmpuint(store_state_count(f.s, STORE_KIND_HOST), ==, 1);

	/* sorted by name */
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"app\",\"data\":{}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"zed\",\"data\":{}}"));
	g_autoptr(GPtrArray) list = store_state_list(f.s, STORE_KIND_VM);
	g_assert_cmpuint(list->len, ==, 3);
	g_assert_cmpstr(((store_object *)list->pdata[0])->name, ==, "app");
	g_assert_cmpstr(((store_object *)list->pdata[1])->name, ==, "web1");
	g_assert_cmpstr(((store_object *)list->pdata[2])->name, ==, "zed");
	check_consistent(&f);
	fx_close(&f);
}

static void test_create_errors(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));

	fails(&f, HERD_ERR_CONFLICT, "A VM with UUID " VM1 " already exists.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web2\",\"data\":{}}");
	fails(&f, HERD_ERR_CONFLICT, "A VM named 'web1' already exists.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web1\",\"data\":{}}");
	fails(&f, HERD_ERR_CONFLICT, "The cluster exists already.",
	      "{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"" CL2 "\",\"name\":\"c2\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "The VM name '-x' must start with a letter or digit",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"-x\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "VM name must not be empty",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "looks like a UUID",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"" VM3 "\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "A new VM needs a valid UUID and a data object.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"22222222-2222-4222-8222-22222222222G\",\"name\":\"x\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "A new VM needs a valid UUID and a data object.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"name\":\"x\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "A new VM needs a valid UUID and a data object.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"x\",\"data\":[]}");
	fails(&f, HERD_ERR_INVALID, "A new VM needs a valid UUID and a data object.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"x\"}");
	fails(&f, HERD_ERR_INVALID, "Unknown object kind 'vms'.",
	      "{\"op\":\"create\",\"kind\":\"vms\",\"uuid\":\"" VM2 "\",\"name\":\"x\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "Unknown object kind '(none)'.",
	      "{\"op\":\"create\",\"uuid\":\"" VM2 "\",\"name\":\"x\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "Unknown operation 'upsert'.", "{\"op\":\"upsert\"}");
	fails(&f, HERD_ERR_INVALID, "A command needs an 'op'.", "{\"kind\":\"vm\"}");
	fails(&f, HERD_ERR_INVALID, "A command needs an 'op'.", "{\"op\":7}");
	/* the envelope */
	fails(&f, HERD_ERR_INVALID, "A command needs time_ms, origin and user.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"x\",\"data\":{},\"time_ms\":0}");
	fails(&f, HERD_ERR_INVALID, "A command needs time_ms, origin and user.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"x\",\"data\":{},\"time_ms\":\"5\"}");
	fails(&f, HERD_ERR_INVALID, "A command needs time_ms, origin and user.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"x\",\"data\":{},\"origin\":1}");
	fails(&f, HERD_ERR_INVALID, "A command needs time_ms, origin and user.",
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"x\",\"data\":{},\"user\":null}");

	/* a command that is not an object at all */
	g_autoptr(json_t) arr = json_array();
	g_autoptr(GError) error = NULL;
	snapshot before = take(&f);
	g_assert_true(store_db_begin(f.db, NULL));
	g_assert_null(store_state_apply(f.s, arr, "[]", 2, NULL, &error));
	end_burst(&f);
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	same_as(&f, &before);
	check_consistent(&f);
	fx_close(&f);
}

static void test_update(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{\"a\":1,\"b\":2}}"));
	int64_t created = f.clock_ms;
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"db1\",\"data\":{}}"));

	g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:{s:i}}", "op", "update", "kind", "vm",
					  "uuid", VM1, "data", "c", 3);
	g_autoptr(json_t) r = apply_json(&f, cmd, changes, NULL);
	g_assert_cmpint(json_integer_value(json_object_get(r, "version")), ==, 2);
	g_assert_cmpuint(changes->len, ==, 1);
	store_change *c = changes->pdata[0];
	g_assert_cmpuint(c->before->version, ==, 1);
	g_assert_cmpuint(c->after->version, ==, 2);
	store_object *o = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_true(o == c->after);
	/* update replaces the data; created stays, modified moves */
	g_assert_cmpuint(json_object_size(data_of(o)), ==, 1);
	g_assert_cmpint(json_integer_value(json_object_get(data_of(o), "c")), ==, 3);
	g_assert_cmpint(o->created_ms, ==, created);
	g_assert_cmpint(o->modified_ms, ==, f.clock_ms);
	/* the old object is untouched: readers may hold it */
	g_assert_cmpint(json_integer_value(json_object_get(data_of(c->before), "a")), ==, 1);

	/* without data the data stays; a rename frees the old name */
	json_decref(ok(&f, "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web2\"}"));
	o = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_cmpuint(o->version, ==, 3);
	g_assert_cmpstr(o->name, ==, "web2");
	g_assert_cmpint(json_integer_value(json_object_get(data_of(o), "c")), ==, 3);
	g_assert_null(store_state_get_by_name(f.s, STORE_KIND_VM, "web1"));
	g_assert_true(store_state_get_by_name(f.s, STORE_KIND_VM, "web2") == o);
	/* ...so another VM may take it */
	json_decref(ok(&f, "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web1\"}"));
	/* renaming to its own name is no conflict */
	json_decref(ok(&f, "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web2\",\"if_version\":3}"));
	g_assert_cmpuint(version_of(&f, STORE_KIND_VM, VM1), ==, 4);
	check_consistent(&f);

	fails(&f, HERD_ERR_CONFLICT, "A VM named 'web1' already exists.",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\"}");
	fails(&f, HERD_ERR_CONFLICT,
	      "VM 'web2' was changed meanwhile (it is at version 4, the change was made for version 3)",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{},\"if_version\":3}");
	fails(&f, HERD_ERR_CONFLICT, "was changed meanwhile",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{},\"if_version\":5}");
	fails(&f, HERD_ERR_CONFLICT, "was changed meanwhile",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{},\"if_version\":\"4\"}");
	fails(&f, HERD_ERR_CONFLICT, "was changed meanwhile",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{},\"if_version\":null}");
	fails(&f, HERD_ERR_NOT_FOUND, "There is no VM with UUID " VM3 ".",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"data\":{}}");
	fails(&f, HERD_ERR_NOT_FOUND, "There is no VM with UUID (none).",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"data\":{}}");
	/* the UUID is looked up within the kind */
	fails(&f, HERD_ERR_NOT_FOUND, "There is no host with UUID " VM1 ".",
	      "{\"op\":\"update\",\"kind\":\"host\",\"uuid\":\"" VM1 "\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "The VM's data must be an object.",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":[1]}");
	fails(&f, HERD_ERR_INVALID, "must start with a letter or digit",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\".x\"}");
	fails(&f, HERD_ERR_INVALID, "must not be empty",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":5}");
	/* the version check comes first: a stale client learns it is stale */
	fails(&f, HERD_ERR_CONFLICT, "was changed meanwhile",
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"if_version\":1}");
	check_consistent(&f);
	fx_close(&f);
}

/* The list by name stays right while it is kept between changes: a change
 * that keeps the name puts the new object in the old one's place, a
 * rename, a creation or a deletion sorts again.  So does the index of VMs
 * by node.  check_consistent() holds both against a store loaded afresh. */
static void test_list_order(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	GRand *rnd = g_rand_new_with_seed(7);
	char uuids[40][37];
	for (int i = 0; i < 40; i++) {
		g_snprintf(uuids[i], sizeof(uuids[i]), "%08x-0000-4000-8000-000000000000", 0x100 + i);
		json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"%s\",\"name\":\"vm%u\",\"data\":{}}",
			       uuids[i], g_rand_int_range(rnd, 0, 1000000) * 100 + i));
	}
	for (int step = 0; step < 200; step++) {
		g_autoptr(GPtrArray) before = store_state_list(f.s, STORE_KIND_VM); /* kept: the cache */
		const char *uuid = uuids[g_rand_int_range(rnd, 0, 40)];
		store_object *o = store_state_get(f.s, STORE_KIND_VM, uuid);
		int what = g_rand_int_range(rnd, 0, 10);
		if (what < 4) {
			json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"%s\",\"data\":{\"n\":%d}}", uuid, step));
		} else if (what < 7) {
			/* assigned to a node, another, or none (store_vms_assigned_to) */
			static const char *const nodes[] = { "\"n1\"", "\"n2\"", "null" };
			json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"%s\",\"data\":{\"node\":%s}}", uuid,
				       nodes[g_rand_int_range(rnd, 0, 3)]));
		} else if (what < 9 && o) {
			json_decref(ok(&f, "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"%s\",\"name\":\"r%u-%d\"}", uuid,
				       g_rand_int_range(rnd, 0, 1000), step));
		} else if (o) {
			json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"%s\"}", uuid));
			json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"%s\",\"name\":\"n%d\",\"data\":{}}", uuid, step));
		}
		g_autoptr(GPtrArray) after = store_state_list(f.s, STORE_KIND_VM);
		g_assert_cmpuint(after->len, ==, 40);
		for (guint i = 1; i < after->len; i++)
			g_assert_cmpint(strcmp(((store_object *)after->pdata[i - 1])->name,
					       ((store_object *)after->pdata[i])->name), <, 0);
		/* The copy taken before is the objects as they were. */
		g_assert_cmpuint(before->len, ==, 40);
		if (step % 20 == 0)
			check_consistent(&f);
	}
	check_consistent(&f);
	g_rand_free(rnd);
	fx_close(&f);
}

static void test_patch(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\","
			   "\"data\":{\"a\":1,\"b\":2,\"settings\":{\"x\":1,\"y\":{\"deep\":1}}}}"));
	g_autoptr(json_t) r = ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\","
				   "\"data\":{\"a\":10,\"b\":null,\"c\":3,\"settings\":{\"x\":null,\"z\":2,\"y\":{\"other\":1}}}}");
	g_assert_cmpint(json_integer_value(json_object_get(r, "version")), ==, 2);
	store_object *o = store_state_get(f.s, STORE_KIND_VM, VM1);
	json_error_t jerr;
	/* one level deep: "settings" is merged, "y" inside it replaced */
	g_autoptr(json_t) want = json_loads("{\"a\":10,\"c\":3,\"settings\":{\"z\":2,\"y\":{\"other\":1}}}", 0, &jerr);
	if (!json_equal(data_of(o), want)) {
		g_autofree char *got = json_dumps(data_of(o), JSON_SORT_KEYS);
		g_error("patched data is %s", got);
	}
	/* a patch keeps the name */
	g_assert_cmpstr(o->name, ==, "web1");
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{},\"if_version\":2}"));
	g_assert_cmpuint(version_of(&f, STORE_KIND_VM, VM1), ==, 3);
	/* a scalar replaced by an object and back */
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"a\":{\"k\":1}}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"a\":5}}"));
	g_assert_cmpint(json_integer_value(json_object_get(data_of(store_state_get(f.s, STORE_KIND_VM, VM1)), "a")), ==, 5);
	check_consistent(&f);

	fails(&f, HERD_ERR_INVALID, "A patch needs a data object.",
	      "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}");
	fails(&f, HERD_ERR_INVALID, "A patch needs a data object.",
	      "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":\"a=1\"}");
	fails(&f, HERD_ERR_CONFLICT, "was changed meanwhile",
	      "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{},\"if_version\":1}");
	fails(&f, HERD_ERR_NOT_FOUND, "There is no VM with UUID " VM2,
	      "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"data\":{}}");
	fails(&f, HERD_ERR_INVALID, "Unknown object kind", "{\"op\":\"patch\",\"uuid\":\"" VM1 "\",\"data\":{}}");

	/* the cluster's settings, as the API changes them */
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"cluster\",\"uuid\":\"" CL1 "\",\"data\":{\"settings\":{\"token_ms\":300}}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"cluster\",\"uuid\":\"" CL1 "\",\"data\":{\"settings\":{\"vm_history_limit\":5}}}"));
	json_t *settings = json_object_get(data_of(store_state_cluster(f.s)), "settings");
	g_assert_cmpint(json_integer_value(json_object_get(settings, "token_ms")), ==, 300);
	g_assert_cmpint(json_integer_value(json_object_get(settings, "vm_history_limit")), ==, 5);
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"cluster\",\"uuid\":\"" CL1 "\",\"data\":{\"settings\":{\"token_ms\":null}}}"));
	settings = json_object_get(data_of(store_state_cluster(f.s)), "settings");
	g_assert_null(json_object_get(settings, "token_ms"));
	g_assert_nonnull(json_object_get(settings, "vm_history_limit"));
	check_consistent(&f);
	fx_close(&f);
}

static void test_delete(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));
	json_decref(ok(&f, "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"v\":2}}"));

	fails(&f, HERD_ERR_CONFLICT, "was changed meanwhile",
	      "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"if_version\":1}");
	g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:i}", "op", "delete", "kind", "vm", "uuid",
					  VM1, "if_version", 2);
	g_autoptr(json_t) r = apply_json(&f, cmd, changes, NULL);
	g_autoptr(json_t) want = json_pack("{s:s,s:s,s:s,s:i,s:b}", "kind", "vm", "uuid", VM1, "name",
					   "web1", "version", 3, "deleted", 1);
	g_assert_true(json_equal(r, want));
	g_assert_cmpuint(changes->len, ==, 1);
	store_change *c = changes->pdata[0];
	g_assert_nonnull(c->before);
	g_assert_null(c->after);
	g_assert_null(store_state_get(f.s, STORE_KIND_VM, VM1));
	g_assert_null(store_state_get_by_name(f.s, STORE_KIND_VM, "web1"));
	g_assert_cmpuint(store_state_count(f.s, STORE_KIND_VM), ==, 0);
	check_consistent(&f);

	fails(&f, HERD_ERR_NOT_FOUND, "There is no VM with UUID " VM1 ".",
	      "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}");
	fails(&f, HERD_ERR_INVALID, "The cluster object cannot be deleted.",
	      "{\"op\":\"delete\",\"kind\":\"cluster\",\"uuid\":\"" CL1 "\"}");
	/* the name is free again */
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web1\",\"data\":{}}"));
	/* other kinds delete the same way (and keep no history) */
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"name\":\"h\",\"data\":{}}"));
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"host\",\"uuid\":\"" VM3 "\"}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"name\":\"h\",\"data\":{}}"));
	g_assert_cmpuint(version_of(&f, STORE_KIND_HOST, VM3), ==, 1);
	g_autoptr(json_t) hist = store_db_history_list(f.db, STORE_KIND_HOST, NULL, NULL, false, NULL);
	g_assert_cmpuint(json_array_size(hist), ==, 0);
	check_consistent(&f);
	fx_close(&f);
}

/* History entries of @uuid as "version:change" from newest, joined by spaces. */
/* Apply a command a builder made; NULL with @error if refused. */
static json_t *apply_built(fixture *f, json_t *cmd, GError **error)
{
	g_autoptr(json_t) copy = json_deep_copy(cmd);
	return apply_json(f, copy, NULL, error);
}

static const store_node *node_n1(fixture *f)
{
	return store_node_of(store_state_get(f->s, STORE_KIND_NODE, ND1));
}

/* The shutdown mark: maintenance with allow_cold, the mode from before
 * kept and given back (only while nobody changed the node since); an
 * operator's mode ends it; a malformed mark is refused. */
static void test_node_shutdown(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	g_autoptr(GError) err = NULL;
	store_object *n1 = store_state_get(f.s, STORE_KIND_NODE, ND1);
	g_assert_null(store_node_cmd_shutdown_over(f.s, n1));
	g_autoptr(json_t) standby = store_node_cmd_mode(f.s, n1, STORE_NODE_STANDBY, false);
	json_decref(apply_built(&f, standby, &err));
	g_assert_no_error(err);

	g_autoptr(json_t) down = store_node_cmd_shutdown(f.s, store_state_get(f.s, STORE_KIND_NODE, ND1), 5000);
	json_decref(apply_built(&f, down, &err));
	g_assert_no_error(err);
	const store_node *sn = node_n1(&f);
	g_assert_cmpint(sn->mode, ==, STORE_NODE_MAINTENANCE);
	g_assert_true(sn->allow_cold);
	g_assert_true(sn->shutdown);
	g_assert_cmpint(sn->shutdown_time_ms, ==, 5000);
	g_assert_cmpint(sn->shutdown_mode, ==, STORE_NODE_STANDBY);
	g_assert_false(sn->shutdown_allow_cold);
	/* Marked again: the first mark's mode stays the one to go back to. */
	g_autoptr(json_t) again = store_node_cmd_shutdown(f.s, store_state_get(f.s, STORE_KIND_NODE, ND1), 9000);
	json_decref(apply_built(&f, again, &err));
	g_assert_no_error(err);
	g_assert_cmpint(node_n1(&f)->shutdown_mode, ==, STORE_NODE_STANDBY);
	g_assert_cmpint(node_n1(&f)->shutdown_time_ms, ==, 5000);

	/* Back: standby as before, no mark. */
	g_autoptr(json_t) over = store_node_cmd_shutdown_over(f.s, store_state_get(f.s, STORE_KIND_NODE, ND1));
	g_assert_nonnull(over);
	/* ... but not once someone changed the node since the command was made. */
	g_autoptr(json_t) touch = store_node_cmd_shutdown(f.s, store_state_get(f.s, STORE_KIND_NODE, ND1), 9000);
	json_decref(apply_built(&f, touch, &err));
	g_assert_no_error(err);
	g_autoptr(json_t) refused = apply_built(&f, over, &err);
	g_assert_null(refused);
	g_assert_error(err, HERD_ERROR, HERD_ERR_CONFLICT);
	g_clear_error(&err);
	g_autoptr(json_t) over2 = store_node_cmd_shutdown_over(f.s, store_state_get(f.s, STORE_KIND_NODE, ND1));
	json_decref(apply_built(&f, over2, &err));
	g_assert_no_error(err);
	sn = node_n1(&f);
	g_assert_cmpint(sn->mode, ==, STORE_NODE_STANDBY);
	g_assert_false(sn->allow_cold);
	g_assert_false(sn->shutdown);
	g_assert_null(json_object_get(data_of(store_state_get(f.s, STORE_KIND_NODE, ND1)), "shutdown"));

	/* An operator's mode ends the mark: it stays in that mode. */
	g_autoptr(json_t) down2 = store_node_cmd_shutdown(f.s, store_state_get(f.s, STORE_KIND_NODE, ND1), 12000);
	json_decref(apply_built(&f, down2, &err));
	g_assert_true(node_n1(&f)->shutdown);
	g_autoptr(json_t) maint = store_node_cmd_mode(f.s, store_state_get(f.s, STORE_KIND_NODE, ND1),
						      STORE_NODE_MAINTENANCE, false);
	json_decref(apply_built(&f, maint, &err));
	g_assert_no_error(err);
	g_assert_false(node_n1(&f)->shutdown);
	g_assert_cmpint(node_n1(&f)->mode, ==, STORE_NODE_MAINTENANCE);
	g_assert_null(store_node_cmd_shutdown_over(f.s, store_state_get(f.s, STORE_KIND_NODE, ND1)));

	fails(&f, HERD_ERR_INVALID, "The node's field 'shutdown' must be an object {time_ms, mode, allow_cold}.",
	      "{\"op\":\"patch\",\"kind\":\"node\",\"uuid\":\"" ND1 "\",\"data\":{\"shutdown\":5}}");
	fails(&f, HERD_ERR_INVALID, "mode",
	      "{\"op\":\"patch\",\"kind\":\"node\",\"uuid\":\"" ND1 "\",\"data\":{\"shutdown\":{\"mode\":\"asleep\"}}}");
	fails(&f, HERD_ERR_INVALID, "time_ms",
	      "{\"op\":\"patch\",\"kind\":\"node\",\"uuid\":\"" ND1 "\",\"data\":{\"shutdown\":{\"time_ms\":-1}}}");
	check_consistent(&f);
	fx_close(&f);
}

static char *history_text(fixture *f, const char *uuid)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) list = store_db_history_list(f->db, STORE_KIND_VM, uuid, NULL, true, &error);
	g_assert_no_error(error);
	GString *out = g_string_new(NULL);
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		g_string_append_printf(out, "%s%lld:%s", i ? " " : "",
				       (long long)json_integer_value(json_object_get(e, "version")),
				       json_string_value(json_object_get(e, "change")));
		g_assert_cmpstr(json_string_value(json_object_get(e, "uuid")), ==, uuid);
		g_assert_cmpstr(json_string_value(json_object_get(e, "kind")), ==, "vm");
		g_assert_cmpstr(json_string_value(json_object_get(e, "origin")), ==, "n1");
		g_assert_cmpstr(json_string_value(json_object_get(e, "user")), ==, "alice");
		g_assert_cmpint(json_integer_value(json_object_get(e, "time_ms")), >, 0);
		json_t *data = json_object_get(e, "data");
		if (strcmp(json_string_value(json_object_get(e, "change")), "undefined") == 0)
			g_assert_true(json_is_null(data));
		else
			g_assert_true(json_is_object(data));
	}
	return g_string_free(out, FALSE);
}

static void test_history_and_restore(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{\"v\":1}}"));
	int64_t created = f.clock_ms;
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"v\":2}}"));
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}"));
	g_autofree char *h1 = history_text(&f, VM1);
	g_assert_cmpstr(h1, ==, "3:undefined 2:updated 1:defined");

	/* each version's entry, with its data */
	g_autoptr(json_t) v1 = store_db_history_get(f.db, STORE_KIND_VM, VM1, 1);
	g_assert_cmpint(json_integer_value(json_object_get(json_object_get(v1, "data"), "v")), ==, 1);
	g_assert_cmpstr(json_string_value(json_object_get(v1, "name")), ==, "web1");
	g_assert_null(store_db_history_get(f.db, STORE_KIND_VM, VM1, 4));
	g_assert_null(store_db_history_get(f.db, STORE_KIND_VM, VM2, 1));
	g_assert_null(store_db_history_get(f.db, STORE_KIND_HOST, VM1, 1));
	g_assert_cmpuint(store_db_history_max_version(f.db, STORE_KIND_VM, VM1), ==, 3);
	g_assert_cmpuint(store_db_history_max_version(f.db, STORE_KIND_VM, VM2), ==, 0);

	/* restore continues the numbering */
	g_autoptr(json_t) r = ok(&f, "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":1}");
	g_assert_cmpint(json_integer_value(json_object_get(r, "version")), ==, 4);
	store_object *o = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_cmpuint(o->version, ==, 4);
	g_assert_cmpstr(o->name, ==, "web1");
	g_assert_cmpint(json_integer_value(json_object_get(data_of(o), "v")), ==, 1);
	g_assert_cmpint(o->created_ms, ==, f.clock_ms); /* a new incarnation */
	g_assert_cmpint(o->created_ms, >, created);
	g_autofree char *h2 = history_text(&f, VM1);
	g_assert_cmpstr(h2, ==, "4:restored from version 1 3:undefined 2:updated 1:defined");

	/* restoring over the existing VM needs force, and keeps its creation time */
	fails(&f, HERD_ERR_CONFLICT, "VM 'web1' exists; restoring version 2 would overwrite it (use force).",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":2}");
	int64_t incarnation = o->created_ms;
	json_decref(ok(&f, "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":2,\"force\":true}"));
	o = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_cmpuint(o->version, ==, 5);
	g_assert_cmpint(json_integer_value(json_object_get(data_of(o), "v")), ==, 2);
	g_assert_cmpint(o->created_ms, ==, incarnation);

	/* recreating a deleted VM's UUID continues its history too */
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));
	g_assert_cmpuint(version_of(&f, STORE_KIND_VM, VM1), ==, 7);

	/* a version whose name another VM has taken meanwhile */
	json_decref(ok(&f, "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web9\"}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web1\",\"data\":{}}"));
	fails(&f, HERD_ERR_CONFLICT, "VM 'web9' exists",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":1}");
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}"));
	fails(&f, HERD_ERR_CONFLICT, "Another VM named 'web1' exists (" VM2 "); restoring would overwrite it (use force).",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":1}");
	/* with force the other VM goes (with a tombstone), this one comes back */
	g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	g_autoptr(json_t) cmd = json_pack("{s:s,s:s,s:s,s:i,s:b}", "op", "restore", "kind", "vm",
					  "uuid", VM1, "version", 1, "force", 1);
	json_decref(apply_json(&f, cmd, changes, NULL));
	g_assert_cmpuint(changes->len, ==, 2);
	g_assert_null(store_state_get(f.s, STORE_KIND_VM, VM2));
	g_assert_cmpstr(store_state_get_by_name(f.s, STORE_KIND_VM, "web1")->uuid, ==, VM1);
	g_autofree char *h3 = history_text(&f, VM2);
	g_assert_cmpstr(h3, ==, "2:undefined 1:defined");
	check_consistent(&f);

	fails(&f, HERD_ERR_NOT_FOUND, "VM " VM1 " has no stored configuration version 99.",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":99}");
	/* a tombstone is no configuration */
	fails(&f, HERD_ERR_NOT_FOUND, "has no stored configuration version 3.",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":3,\"force\":true}");
	fails(&f, HERD_ERR_NOT_FOUND, "VM " VM3 " has no stored configuration version 1.",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"version\":1}");
	fails(&f, HERD_ERR_INVALID, "Restore needs a VM's UUID and a version number.",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":0}");
	fails(&f, HERD_ERR_INVALID, "Restore needs a VM's UUID and a version number.",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":\"1\"}");
	fails(&f, HERD_ERR_INVALID, "Restore needs a VM's UUID and a version number.",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"web1\",\"version\":1}");
	fails(&f, HERD_ERR_INVALID, "Restore needs a VM's UUID and a version number.",
	      "{\"op\":\"restore\",\"kind\":\"host\",\"uuid\":\"" VM1 "\",\"version\":1}");
	check_consistent(&f);
	fx_close(&f);
}

/* The live-move rule holds where a change is applied, in the agreed order:
 * a migrate that a node with a stale store let through at submit (the
 * coordinator's move won) is refused by every replica alike. */
static void test_live_move_at_apply(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{\"ha\":true}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"node\":\"n1\",\"move_to\":null}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"move_to\":\"n2\",\"move\":\"live\"}}"));
	uint64_t before = version_of(&f, STORE_KIND_VM, VM1);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) redirect = json_loads("{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\","
						"\"data\":{\"move_to\":\"n3\",\"move\":\"live\"}}", 0, NULL);
	g_assert_null(apply_json(&f, redirect, NULL, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_CONFLICT);
	g_assert_nonnull(strstr(error->message, "is being migrated live to node n2"));
	g_assert_cmpuint(version_of(&f, STORE_KIND_VM, VM1), ==, before);
	/* its end (placed where it arrived) goes on */
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"node\":\"n2\",\"move_to\":null,\"move\":null}}"));
	fx_close(&f);
}

/* A VM's state (desired state, placement) is no configuration: changes of
 * it alone stay out of the history, and a restore keeps it as it is. */
static void test_history_state_apart(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{\"ha\":true}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"target\":\"running\",\"stop\":null}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"node\":\"n1\",\"move_to\":null}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"shutdown_timeout_s\":60}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"move_to\":\"n2\",\"move\":\"live\",\"move_cold_ok\":true}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"move_to\":null,\"move\":null,\"move_cold_ok\":null,\"live_failed\":\"timeout\"}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"move_to\":\"n2\"}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"node\":\"n2\",\"move_to\":null,\"live_failed\":null}}"));
	g_assert_cmpuint(version_of(&f, STORE_KIND_VM, VM1), ==, 8);
	g_autofree char *h1 = history_text(&f, VM1);
	g_assert_cmpstr(h1, ==, "4:updated 1:defined");
	/* a rename is a configuration change */
	json_decref(ok(&f, "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web2\"}"));
	g_autofree char *h2 = history_text(&f, VM1);
	g_assert_cmpstr(h2, ==, "9:updated 4:updated 1:defined");

	/* restore version 1 over the running VM: its configuration comes back,
	 * it stays where it runs (no "node": n1 of version 4's time) */
	json_decref(ok(&f, "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":1,\"force\":true}"));
	store_object *o = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_cmpuint(o->version, ==, 10);
	g_assert_cmpstr(o->name, ==, "web1");
	g_autoptr(json_t) want = json_pack("{s:b,s:s,s:s}", "ha", 1, "target", "running", "node", "n2");
	g_assert_true(json_equal(data_of(o), want));
	g_autofree char *h3 = history_text(&f, VM1);
	g_assert_cmpstr(h3, ==, "10:restored from version 1 9:updated 4:updated 1:defined");
	/* undefined and restored: back stopped, on no node */
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}"));
	json_decref(ok(&f, "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":10}"));
	o = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_cmpuint(o->version, ==, 12);
	g_autoptr(json_t) want2 = json_pack("{s:b}", "ha", 1);
	g_assert_true(json_equal(data_of(o), want2));
	check_consistent(&f);
	fx_close(&f);
}

static void test_history_list(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{\"x\":1}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web2\",\"data\":{}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"db\",\"data\":{}}"));
	json_decref(ok(&f, "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"app\"}"));
	g_autoptr(GError) error = NULL;

	g_autoptr(json_t) all = store_db_history_list(f.db, STORE_KIND_VM, NULL, NULL, false, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(json_array_size(all), ==, 4);
	/* by name, then UUID, newest first; without data */
	static const char *const order[] = { "app", "db", "web1", "web2" };
	for (size_t i = 0; i < 4; i++) {
		json_t *e = json_array_get(all, i);
		g_assert_cmpstr(json_string_value(json_object_get(e, "name")), ==, order[i]);
		g_assert_null(json_object_get(e, "data"));
	}
	/* a pattern matches the name at that version */
	g_autoptr(json_t) web = store_db_history_list(f.db, STORE_KIND_VM, NULL, "web*", true, &error);
	g_assert_cmpuint(json_array_size(web), ==, 2);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(web, 0), "uuid")), ==, VM1);
	g_assert_cmpint(json_integer_value(json_object_get(json_object_get(json_array_get(web, 0), "data"), "x")), ==, 1);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(web, 1), "uuid")), ==, VM2);
	g_autoptr(json_t) exact = store_db_history_list(f.db, STORE_KIND_VM, NULL, "db", false, &error);
	g_assert_cmpuint(json_array_size(exact), ==, 1);
	g_autoptr(json_t) none = store_db_history_list(f.db, STORE_KIND_VM, NULL, "WEB*", false, &error);
	g_assert_cmpuint(json_array_size(none), ==, 0);
	g_autoptr(json_t) q = store_db_history_list(f.db, STORE_KIND_VM, NULL, "web?", false, &error);
	g_assert_cmpuint(json_array_size(q), ==, 2);
	/* by UUID: every version, whatever its name */
	g_autoptr(json_t) one = store_db_history_list(f.db, STORE_KIND_VM, VM1, "nomatch", false, &error);
	g_assert_cmpuint(json_array_size(one), ==, 2);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(one, 0), "name")), ==, "app");
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(one, 1), "name")), ==, "web1");
	/* other kinds keep none */
	g_autoptr(json_t) nodes = store_db_history_list(f.db, STORE_KIND_NODE, NULL, NULL, false, &error);
	g_assert_cmpuint(json_array_size(nodes), ==, 0);
	g_assert_no_error(error);
	fx_close(&f);
}

/* Make @n versions of VM1 beyond the first, one command each. */
static void make_versions(fixture *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		json_decref(ok(f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"i\":%u}}", i));
}

static void test_history_limit_default(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));
	make_versions(&f, STORE_HISTORY_LIMIT_DEFAULT + 4);
	g_autoptr(json_t) list = store_db_history_list(f.db, STORE_KIND_VM, VM1, NULL, false, NULL);
	g_assert_cmpuint(json_array_size(list), ==, STORE_HISTORY_LIMIT_DEFAULT);
	g_assert_cmpint(json_integer_value(json_object_get(json_array_get(list, 0), "version")), ==,
			STORE_HISTORY_LIMIT_DEFAULT + 5);
	g_assert_cmpint(json_integer_value(json_object_get(json_array_get(list, STORE_HISTORY_LIMIT_DEFAULT - 1), "version")),
			==, 6);
	/* the pruned versions cannot be restored, the kept ones can */
	fails(&f, HERD_ERR_NOT_FOUND, "has no stored configuration version 5.",
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":5,\"force\":true}");
	json_decref(ok(&f, "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":6,\"force\":true}"));
	/* and numbering goes on past the pruned ones */
	g_assert_cmpuint(version_of(&f, STORE_KIND_VM, VM1), ==, STORE_HISTORY_LIMIT_DEFAULT + 6);
	/* one position per successful command: setup, create, patches, restore */
	g_assert_cmpuint(f.s->pos.index, ==, 1 + 1 + STORE_HISTORY_LIMIT_DEFAULT + 4 + 1);
	fx_close(&f);
}

/* vm_history_limit, set as the API sets cluster settings: a patch of the
 * cluster's "settings" object (api_cluster_settings_put). */
static void test_history_limit_setting(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"cluster\",\"uuid\":\"" CL1 "\",\"data\":{\"settings\":{\"vm_history_limit\":3}}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));
	make_versions(&f, 5);
	g_autofree char *h = history_text(&f, VM1);
	g_assert_cmpstr(h, ==, "6:updated 5:updated 4:updated");
	/* a delete keeps the tombstone within the limit */
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}"));
	g_autofree char *h2 = history_text(&f, VM1);
	g_assert_cmpstr(h2, ==, "7:undefined 6:updated 5:updated");
	fx_close(&f);
}

static void test_batch(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));

	g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	g_autoptr(json_t) cmd = json_loads(
		"{\"op\":\"batch\",\"ops\":["
		"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web2\",\"data\":{}},"
		"{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web3\"},"
		"{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}]}", 0, NULL);
	uint64_t index = f.s->pos.index;
	g_autoptr(json_t) r = apply_json(&f, cmd, changes, NULL);
	g_assert_nonnull(r);
	json_t *results = json_object_get(r, "results");
	g_assert_cmpuint(json_array_size(results), ==, 3);
	g_assert_cmpint(json_integer_value(json_object_get(json_array_get(results, 1), "version")), ==, 2);
	g_assert_true(json_is_true(json_object_get(json_array_get(results, 2), "deleted")));
	g_assert_cmpuint(changes->len, ==, 3);
	/* one command: the position moves by one */
	g_assert_cmpuint(f.s->pos.index, ==, index + 1);
	g_assert_cmpstr(store_state_get(f.s, STORE_KIND_VM, VM2)->name, ==, "web3");
	g_assert_null(store_state_get(f.s, STORE_KIND_VM, VM1));
	check_consistent(&f);

	/* a failing op anywhere undoes the ops before it, in memory and on disk:
	 * creates, renames, deletes, patches and restores */
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));
	fails(&f, HERD_ERR_CONFLICT, "A VM named 'web5' already exists.",
	      "{\"op\":\"batch\",\"ops\":["
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"web4\",\"data\":{}},"
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"web5\"},"
	      "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"},"
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{\"again\":1}},"
	      "{\"op\":\"patch\",\"kind\":\"cluster\",\"uuid\":\"" CL1 "\",\"data\":{\"x\":1}},"
	      "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"version\":1,\"force\":true},"
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" ND1 "\",\"name\":\"web5\",\"data\":{}}]}");
	/* names swapped within a batch, then a failure */
	fails(&f, HERD_ERR_NOT_FOUND, "There is no node",
	      "{\"op\":\"batch\",\"ops\":["
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"tmp\"},"
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web1\"},"
	      "{\"op\":\"update\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web3\"},"
	      "{\"op\":\"delete\",\"kind\":\"node\",\"uuid\":\"" VM3 "\"}]}");
	fails(&f, HERD_ERR_INVALID, "A batch needs a non-empty list of operations and cannot be nested.",
	      "{\"op\":\"batch\",\"ops\":[]}");
	fails(&f, HERD_ERR_INVALID, "A batch needs a non-empty list",
	      "{\"op\":\"batch\"}");
	fails(&f, HERD_ERR_INVALID, "A batch needs a non-empty list",
	      "{\"op\":\"batch\",\"ops\":{\"op\":\"create\"}}");
	fails(&f, HERD_ERR_INVALID, "cannot be nested",
	      "{\"op\":\"batch\",\"ops\":["
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"web4\",\"data\":{}},"
	      "{\"op\":\"batch\",\"ops\":[{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}]}]}");
	fails(&f, HERD_ERR_INVALID, "A command needs an 'op'.",
	      "{\"op\":\"batch\",\"ops\":["
	      "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"web4\",\"data\":{}}, 5]}");
	check_consistent(&f);
	fx_close(&f);
}

/* The same commands, failures included, give the same position and the
 * same database on every replica; a failure does not move the position. */
static void run_script(fixture *f)
{
	static const char *const script[] = {
		"{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"" CL1 "\",\"name\":\"c\",\"data\":{}}",
		"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"a\",\"data\":{\"k\":[1,2]}}",
		"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"a\",\"data\":{}}", /* fails */
		"{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"z\":1,\"a\":2}}",
		"{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}",
		"{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":2}",
		"{\"op\":\"bogus\"}", /* fails */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(script); i++) {
		json_error_t jerr;
		g_autoptr(json_t) cmd = json_loads(script[i], 0, &jerr);
		json_object_set_new(cmd, "time_ms", json_integer(1000 + (json_int_t)i));
		json_object_set_new(cmd, "origin", json_string("n2"));
		json_object_set_new(cmd, "user", json_string("bob"));
		g_autofree char *bytes = json_dumps(cmd, JSON_COMPACT | JSON_SORT_KEYS);
		store_position before = f->s->pos;
		g_assert_true(store_db_begin(f->db, NULL));
		g_autoptr(GError) error = NULL;
		g_autoptr(json_t) r = store_state_apply(f->s, cmd, bytes, strlen(bytes), NULL, &error);
		end_burst(f);
		if (r) {
			g_assert_cmpuint(f->s->pos.index, ==, before.index + 1);
			g_assert_true(memcmp(f->s->pos.hash, before.hash, 32) != 0);
		} else {
			g_assert_cmpuint(f->s->pos.index, ==, before.index);
			g_assert_cmpmem(f->s->pos.hash, 32, before.hash, 32);
		}
	}
}

static void test_determinism(void)
{
	fixture a, b;
	fx_open(&a, ":memory:");
	fx_open(&b, ":memory:");
	run_script(&a);
	run_script(&b);
	g_assert_cmpuint(a.s->pos.index, ==, 5);
	char ha[65], hb[65];
	store_position_hash_hex(&a.s->pos, ha);
	store_position_hash_hex(&b.s->pos, hb);
	g_assert_cmpuint(strlen(ha), ==, 64);
	g_assert_cmpstr(ha, ==, hb);
	g_autofree char *da = db_text(a.db), *db = db_text(b.db);
	g_assert_cmpstr(da, ==, db);
	g_autofree char *ma = memory_text(a.s), *mb = memory_text(b.s);
	g_assert_cmpstr(ma, ==, mb);

	/* the hash covers the command's bytes: different bytes, different hash */
	json_decref(ok(&a, "{\"op\":\"create\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"name\":\"h\",\"data\":{}}"));
	json_decref(ok(&b, "{\"op\":\"create\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"name\":\"h\",\"data\":{} }"));
	g_assert_cmpuint(a.s->pos.index, ==, b.s->pos.index);
	/* (ok() re-serialises, so make the bytes differ through the envelope) */
	json_decref(ok(&a, "{\"op\":\"patch\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"data\":{},\"user\":\"x\"}"));
	json_decref(ok(&b, "{\"op\":\"patch\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"data\":{},\"user\":\"y\"}"));
	store_position_hash_hex(&a.s->pos, ha);
	store_position_hash_hex(&b.s->pos, hb);
	g_assert_cmpstr(ha, !=, hb);
	/* ...and it is chained: the same command after different histories
	 * gives different hashes */
	json_decref(ok(&a, "{\"op\":\"patch\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"data\":{},\"time_ms\":7,\"user\":\"z\"}"));
	json_decref(ok(&b, "{\"op\":\"patch\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"data\":{},\"time_ms\":7,\"user\":\"z\"}"));
	store_position_hash_hex(&a.s->pos, ha);
	store_position_hash_hex(&b.s->pos, hb);
	g_assert_cmpstr(ha, !=, hb);
	fx_close(&a);
	fx_close(&b);
}

static void test_position_compare(void)
{
	store_position a = { .gen = 2, .index = 10 }, b = { .gen = 3, .index = 1 };
	g_assert_cmpint(store_position_compare(&a, &b), <, 0);  /* generation first */
	g_assert_cmpint(store_position_compare(&b, &a), >, 0);
	b.gen = 2;
	g_assert_cmpint(store_position_compare(&a, &b), >, 0);
	b.index = 10;
	b.hash[0] = 1;                                           /* hash does not order */
	g_assert_cmpint(store_position_compare(&a, &b), ==, 0);
	a.current_gen = 9;                                       /* nor current_gen */
	g_assert_cmpint(store_position_compare(&a, &b), ==, 0);
	char hex[65];
	store_position_hash_hex(&b, hex);
	g_assert_cmpstr(hex, ==, "0100000000000000000000000000000000000000000000000000000000000000");
}

static char *tmp_dir(void)
{
	g_autoptr(GError) error = NULL;
	char *dir = g_dir_make_tmp("herd-state-XXXXXX", &error);
	g_assert_no_error(error);
	return dir;
}

static void rm_dir(const char *dir)
{
	GDir *d = g_dir_open(dir, 0, NULL);
	const char *n;
	while (d && (n = g_dir_read_name(d))) {
		g_autofree char *p = g_build_filename(dir, n, NULL);
		g_unlink(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(dir);
}

static void test_persistence(void)
{
	g_autofree char *dir = tmp_dir();
	g_autofree char *path = g_build_filename(dir, "store.db", NULL);
	fixture f;
	fx_open(&f, path);
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{\"x\":\"\xc3\xa9\"}}"));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"y\":1}}"));
	f.s->pos.gen = 4;
	f.s->pos.current_gen = 5;
	g_assert_true(store_db_begin(f.db, NULL));
	g_assert_true(store_db_set_position(f.db, &f.s->pos, NULL));
	g_assert_true(store_db_commit(f.db, NULL));
	g_autofree char *mem = memory_text(f.s), *disk = db_text(f.db);
	/* a change in an open transaction is lost with the process */
	g_assert_true(store_db_begin(f.db, NULL));
	g_assert_true(store_db_in_transaction(f.db));
	g_autoptr(json_t) cmd = json_loads("{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\","
					   "\"time_ms\":5,\"origin\":\"n1\",\"user\":\"u\"}", 0, NULL);
	g_autoptr(json_t) r = store_state_apply(f.s, cmd, "x", 1, NULL, NULL);
	g_assert_nonnull(r);
	fx_close(&f);

	fx_open(&f, path);
	g_autofree char *mem2 = memory_text(f.s), *disk2 = db_text(f.db);
	g_assert_cmpstr(mem2, ==, mem);
	g_assert_cmpstr(disk2, ==, disk);
	g_assert_cmpuint(f.s->pos.gen, ==, 4);
	g_assert_cmpuint(f.s->pos.current_gen, ==, 5);
	g_assert_cmpuint(f.s->pos.index, ==, 3);
	g_assert_false(store_db_in_transaction(f.db));
	/* and it goes on from there */
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"z\":1}}"));
	g_assert_cmpuint(version_of(&f, STORE_KIND_VM, VM1), ==, 3);
	g_autofree char *h = history_text(&f, VM1);
	g_assert_cmpstr(h, ==, "3:updated 2:updated 1:defined");
	fx_close(&f);
	rm_dir(dir);
}

/* store_state_changed_at(): the index of the command that made an object's
 * current version; unknown (0) after a load, a delete, or a failed command. */
static void test_changed_at(void)
{
	g_autofree char *dir = tmp_dir();
	g_autofree char *path = g_build_filename(dir, "store.db", NULL);
	fixture f;
	fx_open(&f, path);
	setup_cluster(&f);
	g_assert_cmpuint(store_state_changed_at(f.s, CL1), ==, 1);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web2\",\"data\":{}}"));
	g_assert_cmpuint(store_state_changed_at(f.s, VM1), ==, 2);
	g_assert_cmpuint(store_state_changed_at(f.s, VM2), ==, 3);
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"y\":1}}"));
	g_assert_cmpuint(store_state_changed_at(f.s, VM1), ==, 4);
	g_assert_cmpuint(store_state_changed_at(f.s, VM2), ==, 3);
	/* a command that fails changes nothing, this neither */
	fails(&f, HERD_ERR_CONFLICT, "was changed meanwhile",
	      "{\"op\":\"batch\",\"ops\":[{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"data\":{\"y\":2}},"
	      "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"if_version\":1}]}");
	g_assert_cmpuint(store_state_changed_at(f.s, VM2), ==, 3);
	g_assert_cmpuint(store_state_changed_at(f.s, VM1), ==, 4);
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\"}"));
	g_assert_cmpuint(store_state_changed_at(f.s, VM2), ==, 0);
	g_assert_cmpuint(store_state_changed_at(f.s, VM3), ==, 0);
	fx_close(&f);
	/* loaded from disk: not known */
	fx_open(&f, path);
	g_assert_cmpuint(store_state_changed_at(f.s, VM1), ==, 0);
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"z\":1}}"));
	g_assert_cmpuint(store_state_changed_at(f.s, VM1), ==, f.s->pos.index);
	fx_close(&f);
	rm_dir(dir);
}

static void test_open_errors(void)
{
	g_autoptr(GError) error = NULL;
	g_assert_null(store_db_open("/nonexistent-dir/x/store.db", &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_assert_nonnull(strstr(error->message, "/nonexistent-dir/x/store.db"));
	g_clear_error(&error);

	g_autofree char *dir = tmp_dir();
	g_autofree char *path = g_build_filename(dir, "garbage.db", NULL);
	GString *junk = g_string_new(NULL);
	for (int i = 0; i < 512; i++)
		g_string_append(junk, "not a database ");
	g_assert_true(g_file_set_contents(path, junk->str, (gssize)junk->len, NULL));
	g_string_free(junk, TRUE);
	g_assert_null(store_db_open(path, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_assert_nonnull(strstr(error->message, "not a database"));
	rm_dir(dir);
}

/* A state transfer: the dump of one store, restored into another. */
static void test_dump_restore(void)
{
	fixture a, b;
	fx_open(&a, ":memory:");
	run_script(&a);
	json_decref(ok(&a, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"b\",\"data\":{}}"));
	json_decref(ok(&a, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\"}"));
	g_autoptr(json_t) dump = store_db_dump(a.db, NULL);
	g_assert_nonnull(dump);

	fx_open(&b, ":memory:");
	/* b has something else that the transfer replaces */
	json_decref(ok(&b, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"old\",\"data\":{}}"));
	g_autoptr(GError) error = NULL;
	g_assert_true(store_db_begin(b.db, NULL));
	g_assert_true(store_db_restore_dump(b.db, dump, &error));
	g_assert_no_error(error);
	g_assert_true(store_db_commit(b.db, NULL));
	g_assert_true(store_state_load(b.s, &error));
	g_autofree char *ma = memory_text(a.s), *mb = memory_text(b.s);
	g_assert_cmpstr(ma, ==, mb);
	g_autofree char *da = db_text(a.db), *db = db_text(b.db);
	g_assert_cmpstr(da, ==, db);
	g_assert_null(store_state_get(b.s, STORE_KIND_VM, VM3));
	/* the audit log came along (db_text() has it too), b's own gone */
	g_autoptr(json_t) audit_a = store_db_audit_list(a.db, 100, NULL);
	g_autoptr(json_t) audit_b = store_db_audit_list(b.db, 100, NULL);
	g_assert_cmpuint(json_array_size(audit_b), ==, json_array_size(audit_a));
	g_assert_cmpuint(json_array_size(audit_b), >=, 2);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(audit_b, 0), "name")), ==, "b");
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(audit_b, 0), "change")), ==, "undefined");
	for (size_t i = 0; i < json_array_size(audit_b); i++)
		g_assert_cmpstr(json_string_value(json_object_get(json_array_get(audit_b, i), "name")), !=, "old");
	/* history came along: b can restore what a could */
	json_decref(ok(&a, "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"version\":1,\"time_ms\":5000}"));
	json_decref(ok(&b, "{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"version\":1,\"time_ms\":5000}"));
	g_free(ma);
	g_free(mb);
	ma = memory_text(a.s);
	mb = memory_text(b.s);
	g_assert_cmpstr(ma, ==, mb);
	fx_close(&a);
	fx_close(&b);
}

static void expect_dump_refused(fixture *f, const char *text, const char *needle)
{
	json_error_t jerr;
	g_autoptr(json_t) dump = json_loads(text, JSON_DECODE_ANY, &jerr);
	if (!dump)
		g_error("fixture is not JSON: %s: %s", text, jerr.text);
	snapshot before = take(f);
	g_autoptr(GError) error = NULL;
	g_assert_true(store_db_begin(f->db, NULL));
	g_assert_false(store_db_restore_dump(f->db, dump, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
	/* the caller drops the transaction, as the replica does */
	store_db_rollback(f->db);
	same_as(f, &before);
}

#define HASH0 "0000000000000000000000000000000000000000000000000000000000000000"
#define POS "\"position\":{\"gen\":1,\"index\":1,\"hash\":\"" HASH0 "\",\"current_gen\":1}"

static void test_dump_malformed(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	expect_dump_refused(&f, "[]", "The state transfer is malformed.");
	expect_dump_refused(&f, "{\"objects\":[],\"history\":[]}", "The state transfer is malformed.");
	expect_dump_refused(&f, "{" POS ",\"history\":[]}", "The state transfer is malformed.");
	expect_dump_refused(&f, "{" POS ",\"objects\":{},\"history\":[]}", "malformed");
	expect_dump_refused(&f, "{\"position\":{\"hash\":\"abc\"},\"objects\":[],\"history\":[]}", "malformed");
	expect_dump_refused(&f, "{\"position\":{\"hash\":\"" "zz00000000000000000000000000000000000000000000000000000000000000" "\"},\"objects\":[],\"history\":[]}", "malformed");
	expect_dump_refused(&f, "{" POS ",\"objects\":[{\"kind\":\"vm\"}],\"history\":[]}", "Malformed object");
	expect_dump_refused(&f, "{" POS ",\"objects\":[],\"history\":[{\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}]}",
			    "The state transfer has a malformed history entry.");
	expect_dump_refused(&f, "{" POS ",\"objects\":[],\"history\":[{\"kind\":\"vm\",\"uuid\":\"" VM1 "\","
			    "\"change\":\"defined\",\"version\":1}]}", "malformed history entry");
	expect_dump_refused(&f, "{" POS ",\"objects\":[],\"history\":[{\"kind\":\"bogus\",\"uuid\":\"" VM1 "\","
			    "\"name\":\"a\",\"change\":\"defined\",\"version\":1}]}", "malformed history entry");
	expect_dump_refused(&f, "{" POS ",\"objects\":[],\"history\":[],\"audit\":{}}", "The state transfer is malformed.");
	expect_dump_refused(&f, "{" POS ",\"objects\":[],\"history\":[],\"audit\":[{\"time_ms\":1,\"origin\":\"n1\","
			    "\"user\":\"root\",\"change\":\"created\",\"kind\":\"vm\",\"name\":\"a\"}]}",
			    "The state transfer has a malformed audit entry.");
	expect_dump_refused(&f, "{" POS ",\"objects\":[],\"history\":[],\"audit\":[{\"time_ms\":\"1\",\"origin\":\"n1\","
			    "\"user\":\"root\",\"change\":\"created\",\"kind\":\"vm\",\"name\":\"a\",\"uuid\":\"" VM1 "\"}]}",
			    "malformed audit entry");
	/* a transfer without an audit log (an older herd's) leaves this one's */
	g_autoptr(json_t) audit_before = store_db_audit_list(f.db, 100, NULL);
	g_assert_cmpuint(json_array_size(audit_before), >, 0);
	/* an empty but well-formed transfer empties the store */
	g_autoptr(json_t) empty = json_loads("{" POS ",\"objects\":[],\"history\":[]}", 0, NULL);
	g_assert_true(store_db_begin(f.db, NULL));
	g_assert_true(store_db_restore_dump(f.db, empty, NULL));
	g_assert_true(store_db_commit(f.db, NULL));
	g_assert_true(store_state_load(f.s, NULL));
	g_assert_null(store_state_cluster(f.s));
	g_assert_cmpuint(f.s->pos.index, ==, 1);
	g_autoptr(json_t) audit_after = store_db_audit_list(f.db, 100, NULL);
	g_assert_true(json_equal(audit_after, audit_before));
	fx_close(&f);
}

/* The disk fails at each write of a command in turn: the command fails
 * with IO, and neither memory nor database keeps any of it. */
static void test_fault_injection(void)
{
	const char *cmd_text =
		"{\"op\":\"batch\",\"ops\":["
		"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"web2\",\"data\":{}},"
		"{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"x\":1}},"
		"{\"op\":\"delete\",\"kind\":\"host\",\"uuid\":\"" VM3 "\"},"
		"{\"op\":\"restore\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"version\":1,\"force\":true}]}";
	unsigned failures = 0;
	for (unsigned nth = 1;; nth++) {
		fixture f;
		fx_open(&f, ":memory:");
		setup_cluster(&f);
		json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\",\"data\":{}}"));
		json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"host\",\"uuid\":\"" VM3 "\",\"name\":\"h\",\"data\":{}}"));
		snapshot before = take(&f);

		g_autoptr(json_t) cmd = json_loads(cmd_text, 0, NULL);
		json_object_set_new(cmd, "time_ms", json_integer(99999));
		json_object_set_new(cmd, "origin", json_string("n1"));
		json_object_set_new(cmd, "user", json_string("u"));
		g_assert_true(store_db_begin(f.db, NULL));
		store_db_fail_after(f.db, nth);
		g_autoptr(GError) error = NULL;
		g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
		g_autoptr(json_t) r = store_state_apply(f.s, cmd, "c", 1, changes, &error);
		if (r) {
			/* nth is past the command's last write */
			g_assert_no_error(error);
			store_db_fail_after(f.db, 0);
			end_burst(&f);
			g_free(before.memory);
			g_free(before.db);
			check_consistent(&f);
			fx_close(&f);
			break;
		}
		failures++;
		g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
		g_assert_nonnull(strstr(error->message, "injected I/O error"));
		g_assert_cmpuint(changes->len, ==, 0);
		/* the savepoint is gone; the burst's transaction is still usable */
		same_as(&f, &before);
		store_db_rollback(f.db);
		/* the disk works again: commands succeed */
		json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"y\":1}}"));
		g_assert_cmpuint(version_of(&f, STORE_KIND_VM, VM1), ==, 2);
		check_consistent(&f);
		fx_close(&f);
	}
	/* at least one write per op, plus the position */
	g_assert_cmpuint(failures, >=, 5);
}

/* The disk fails at commit: everything since begin is gone on disk. */
static void test_commit_failure(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	g_autofree char *disk = db_text(f.db);
	g_assert_true(store_db_begin(f.db, NULL));
	g_autoptr(json_t) cmd = json_loads("{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"web1\","
					   "\"data\":{},\"time_ms\":5,\"origin\":\"n1\",\"user\":\"u\"}", 0, NULL);
	g_autoptr(json_t) r = store_state_apply(f.s, cmd, "c", 1, NULL, NULL);
	g_assert_nonnull(r);
	store_db_fail_after(f.db, 1);
	g_autoptr(GError) error = NULL;
	g_assert_false(store_db_commit(f.db, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_assert_false(store_db_in_transaction(f.db));
	g_autofree char *after = db_text(f.db);
	g_assert_cmpstr(after, ==, disk);
	/* reloading gives the durable state back */
	g_assert_true(store_state_load(f.s, NULL));
	g_assert_null(store_state_get(f.s, STORE_KIND_VM, VM1));
	check_consistent(&f);
	fx_close(&f);
}

/* A random JSON value for test_encode, @depth levels deep at most. */
static json_t *random_value(GRand *rnd, unsigned depth)
{
	static const char *const pieces[] = { "a", "\"", "\\", "/", "\n", "\t", "\r", "\b", "\f", "\x01",
					      "\x1f", "\x7f", "é", "€", "😀", " ", "<x a='1'/>", "\u2028" };
	switch (g_rand_int_range(rnd, 0, depth ? 8 : 6)) {
	case 0:
		return json_integer(g_rand_int_range(rnd, -1000000, 1000000) * (json_int_t)g_rand_int(rnd));
	case 1:
		return g_rand_boolean(rnd) ? json_true() : json_false();
	case 2:
		return json_null();
	case 3:
		return json_real(g_rand_double_range(rnd, -1e6, 1e6));
	case 4:
	case 5: {
		GString *str = g_string_new(NULL);
		for (int n = g_rand_int_range(rnd, 0, 12); n > 0; n--)
			g_string_append(str, pieces[g_rand_int_range(rnd, 0, G_N_ELEMENTS(pieces))]);
		if (g_rand_int_range(rnd, 0, 10) == 0)
			g_string_append_len(str, "nul\0inside", 11);
		json_t *v = json_stringn(str->str, str->len);
		g_string_free(str, TRUE);
		return v;
	}
	case 6: {
		json_t *a = json_array();
		for (int n = g_rand_int_range(rnd, 0, 5); n > 0; n--)
			json_array_append_new(a, random_value(rnd, depth - 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		for (int n = g_rand_int_range(rnd, 0, 6); n > 0; n--) {
			g_autofree char *key = g_strdup_printf("%s%d", pieces[g_rand_int_range(rnd, 0, G_N_ELEMENTS(pieces))],
							       g_rand_int_range(rnd, 0, 30));
			json_object_set_new(o, key, random_value(rnd, depth - 1));
		}
		return o;
	}
	}
}

/* The store's own encoder writes what jansson writes. */
static void test_encode(void)
{
	g_autoptr(json_t) fixed = json_loads("{\"xml\":\"<domain type='kvm'>\\n  <name>a\\\"b\\\\c</name>\\t\\u0001\\u001f</domain>\","
					"\"b\":[1,-2,true,false,null,{},[],\"\",1.5],\"a\":{\"z\":1,\"y\":{\"x\":\"é€😀\"}},"
					"\"ab\":9223372036854775807,\"aa\":-9223372036854775808}", 0, NULL);
	g_assert_nonnull(fixed);
	g_autofree char *mine = store_db_encode(fixed);
	char *theirs = json_dumps(fixed, JSON_COMPACT | JSON_SORT_KEYS);
	g_assert_cmpstr(mine, ==, theirs);
	free(theirs);
	g_autoptr(GRand) rnd = g_rand_new_with_seed(42);
	for (int i = 0; i < 2000; i++) {
		g_autoptr(json_t) v = json_object();
		json_object_set_new(v, "v", random_value(rnd, 4));
		g_autofree char *a = store_db_encode(v);
		char *b = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		g_assert_nonnull(b);
		g_assert_cmpstr(a, ==, b);
		free(b);
	}
	g_assert_null(store_db_encode(NULL));
}

/* Storage, disks, ISOs and switches: apply keeps references sound (store/refs.h). */
#define ST1 "51111111-1111-4111-8111-111111111111"
#define ST2 "52222222-2222-4222-8222-222222222222"
#define DK1 "d1111111-1111-4111-8111-111111111111"
#define DK2 "d2222222-2222-4222-8222-222222222222"
#define IS1 "e1111111-1111-4111-8111-111111111111"
#define NW1 "f1111111-1111-4111-8111-111111111111"
#define HW_VM(uuid, name, disk, mac) \
	"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" uuid "\",\"name\":\"" name "\",\"data\":{\"xml\":\"<domain/>\"," \
	"\"hw\":{\"disks\":[{\"disk\":\"" disk "\"}],\"cdrom\":\"" IS1 "\"," \
	"\"nics\":[{\"network\":\"" NW1 "\",\"mac\":\"52:54:00:00:00:" mac "\"}]}}}"

static void test_storage_refs(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	/* Nothing on a storage that does not exist. */
	fails(&f, HERD_ERR_NOT_FOUND, "storage " ST1 " does not exist",
	      "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\",\"name\":\"d1\","
	      "\"data\":{\"storage\":\"" ST1 "\",\"format\":\"qcow2\",\"size\":1048576,\"file\":\"images/d1.qcow2\"}}");
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"storage\",\"uuid\":\"" ST1 "\",\"name\":\"share\","
			   "\"data\":{\"type\":\"dir\",\"path\":\"/srv/share\",\"cluster_share\":true}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"storage\",\"uuid\":\"" ST2 "\",\"name\":\"san\","
			   "\"data\":{\"type\":\"iscsi\",\"portal\":\"10.0.0.9\",\"target\":\"iqn.2026-12.org.example:san\"}}"));
	/* A disk's kind must fit its storage's. */
	fails(&f, HERD_ERR_INVALID, "must be a LUN",
	      "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\",\"name\":\"d1\","
	      "\"data\":{\"storage\":\"" ST2 "\",\"format\":\"raw\",\"size\":1048576,\"file\":\"images/d1.raw\"}}");
	fails(&f, HERD_ERR_INVALID, "must be a file",
	      "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\",\"name\":\"d1\","
	      "\"data\":{\"storage\":\"" ST1 "\",\"format\":\"raw\",\"size\":1048576,\"lun\":1}}");
	fails(&f, HERD_ERR_INVALID, "images/NAME",
	      "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\",\"name\":\"d1\","
	      "\"data\":{\"storage\":\"" ST1 "\",\"format\":\"raw\",\"size\":1048576,\"file\":\"images/../etc\"}}");
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\",\"name\":\"d1\","
			   "\"data\":{\"storage\":\"" ST1 "\",\"format\":\"qcow2\",\"size\":1048576,\"file\":\"images/d1.qcow2\"}}"));
	fails(&f, HERD_ERR_CONFLICT, "Disk d1 is at that place already",
	      "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK2 "\",\"name\":\"d2\","
	      "\"data\":{\"storage\":\"" ST1 "\",\"format\":\"qcow2\",\"size\":1048576,\"file\":\"images/d1.qcow2\"}}");
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK2 "\",\"name\":\"d2\","
			   "\"data\":{\"storage\":\"" ST2 "\",\"format\":\"raw\",\"size\":1048576,\"lun\":1}}"));
	/* A VM's hardware names what exists. */
	fails(&f, HERD_ERR_NOT_FOUND, "virtual switch " NW1 " does not exist", HW_VM(VM1, "web1", DK1, "01"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"network\",\"uuid\":\"" NW1 "\",\"name\":\"lan\","
			   "\"data\":{\"bridge\":\"br0\",\"vlan\":10}}"));
	fails(&f, HERD_ERR_NOT_FOUND, "ISO " IS1 " does not exist", HW_VM(VM1, "web1", DK1, "01"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"iso\",\"uuid\":\"" IS1 "\",\"name\":\"boot.iso\","
			   "\"data\":{\"storage\":\"" ST1 "\",\"file\":\"isos/boot.iso\",\"size\":2048,"
			   "\"sha256\":\"0000000000000000000000000000000000000000000000000000000000000000\"}}"));
	json_decref(ok(&f, HW_VM(VM1, "web1", DK1, "01")));
	/* One VM per disk. */
	fails(&f, HERD_ERR_CONFLICT, "Disk d1 is VM web1's already", HW_VM(VM2, "web2", DK1, "02"));
	/* One NIC per MAC address. */
	fails(&f, HERD_ERR_CONFLICT, "MAC address 52:54:00:00:00:01 is in use already (VM web1)",
	      HW_VM(VM2, "web2", DK2, "01"));
	json_decref(ok(&f, HW_VM(VM2, "web2", DK2, "02")));
	/* ... an operator's XML naming one (in any case) uses it too; one
	 * only like it does not. */
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"nics\",\"data\":"
			   "{\"xml\":\"<domain><devices><interface><mac address='52:54:00:00:00:0A'/></interface>"
			   "<x>52:54:00:00:00:0b:ff</x></devices></domain>\"}}"));
	g_assert_true(store_refs_mac_user(f.s, "52:54:00:00:00:0a", NULL) == store_state_get(f.s, STORE_KIND_VM, VM3));
	g_assert_true(store_refs_mac_user(f.s, "52:54:00:00:00:0b", NULL) == store_state_get(f.s, STORE_KIND_VM, VM3));
	g_assert_null(store_refs_mac_user(f.s, "52:54:00:00:00:0c", NULL));
	g_assert_null(store_refs_mac_user(f.s, "52:54:00:00:00:0a", VM3));
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\"}"));
	/* Nothing in use goes. */
	fails(&f, HERD_ERR_CONFLICT, "Disk d1 is in use by VM web1",
	      "{\"op\":\"delete\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\"}");
	fails(&f, HERD_ERR_CONFLICT, "ISO boot.iso is in use by VM web",
	      "{\"op\":\"delete\",\"kind\":\"iso\",\"uuid\":\"" IS1 "\"}");
	fails(&f, HERD_ERR_CONFLICT, "Virtual switch lan is in use by VM web",
	      "{\"op\":\"delete\",\"kind\":\"network\",\"uuid\":\"" NW1 "\"}");
	fails(&f, HERD_ERR_CONFLICT, "Storage share is in use by",
	      "{\"op\":\"delete\",\"kind\":\"storage\",\"uuid\":\"" ST1 "\"}");
	/* Once the VMs are gone, so may the rest be, in order. */
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}"));
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\"}"));
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\"}"));
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"network\",\"uuid\":\"" NW1 "\"}"));
	fails(&f, HERD_ERR_CONFLICT, "Storage share is in use by ISO boot.iso",
	      "{\"op\":\"delete\",\"kind\":\"storage\",\"uuid\":\"" ST1 "\"}");
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"iso\",\"uuid\":\"" IS1 "\"}"));
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"storage\",\"uuid\":\"" ST1 "\"}"));
	/* A VM defined from XML uses a disk whose file its XML names. */
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"storage\",\"uuid\":\"" ST1 "\",\"name\":\"share\","
			   "\"data\":{\"type\":\"dir\",\"path\":\"/srv/share\"}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\",\"name\":\"d1\","
			   "\"data\":{\"storage\":\"" ST1 "\",\"format\":\"raw\",\"size\":1048576,\"file\":\"images/d1.raw\"}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM3 "\",\"name\":\"old\",\"data\":"
			   "{\"xml\":\"<domain><devices><disk><source file='/srv/share/images/d1.raw'/></disk></devices></domain>\"}}"));
	fails(&f, HERD_ERR_CONFLICT, "Disk d1 is in use by VM old",
	      "{\"op\":\"delete\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\"}");
	check_consistent(&f);
	fx_close(&f);
}

#define US1 "44444444-4444-4444-8444-444444444444"
#define US2 "55555555-5555-4555-8555-555555555555"
#define GR1 "66666666-6666-4666-8666-666666666666"

/* Apply @cmd (taken), which must be refused with a CONFLICT naming @needle. */
static void refused_built(fixture *f, json_t *cmd, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = apply_built(f, cmd, &error);
	json_decref(cmd);
	g_assert_null(r);
	g_assert_error(error, HERD_ERROR, HERD_ERR_CONFLICT);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
}

static void ok_built(fixture *f, json_t *cmd)
{
	g_autoptr(GError) error = NULL;
	json_t *r = apply_built(f, cmd, &error);
	json_decref(cmd);
	g_assert_no_error(error);
	json_decref(r);
}

/* Invariant 3 (store/guard.h): the last administrator stays one. */
static void test_last_admin(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	/* No administrator yet: nothing to keep. */
	ok_built(&f, store_user_cmd_create(US1, "alice", "$y$x", "operator"));
	ok_built(&f, store_user_cmd_patch(store_state_get(f.s, STORE_KIND_USER, US1),
					  json_pack("{s:s}", "role", "admin")));
	ok_built(&f, store_user_cmd_create(US2, "bob", "$y$x", "auditor"));
	store_object *alice = store_state_get(f.s, STORE_KIND_USER, US1);
	refused_built(&f, store_cmd_delete(STORE_KIND_USER, US1, 0),
		      "User 'alice' is the cluster's last administrator: removing it would leave none");
	refused_built(&f, store_user_cmd_patch(alice, json_pack("{s:s}", "role", "auditor")),
		      "User 'alice' is the cluster's last administrator: taking the admin role from it");
	refused_built(&f, store_user_cmd_patch(alice, json_pack("{s:n}", "role")), "last administrator");
	g_assert_cmpstr(store_user_of(store_state_get(f.s, STORE_KIND_USER, US1))->role, ==, "admin");
	/* Others change freely; a second admin (through a group) frees alice. */
	ok_built(&f, store_cmd_delete(STORE_KIND_USER, US2, 0));
	ok_built(&f, store_user_cmd_create(US2, "bob", "$y$x", ""));
	ok_built(&f, store_group_cmd_create(GR1, "admins", json_pack("[s]", "admin"), json_array(),
					    json_pack("[s]", US2)));
	ok_built(&f, store_user_cmd_patch(store_state_get(f.s, STORE_KIND_USER, US1),
					  json_pack("{s:s}", "role", "")));
	/* Now bob is the last one, through group admins. */
	store_object *admins = store_state_get(f.s, STORE_KIND_GROUP, GR1);
	refused_built(&f, store_group_cmd_patch(admins, json_pack("{s:[]}", "members")),
		      "User 'bob' is the cluster's last administrator: this change of group 'admins' would leave none");
	refused_built(&f, store_group_cmd_patch(admins, json_pack("{s:[s]}", "roles", "operator")),
		      "this change of group 'admins'");
	refused_built(&f, store_cmd_delete(STORE_KIND_GROUP, GR1, 0),
		      "removing group 'admins' would leave none");
	refused_built(&f, store_cmd_delete(STORE_KIND_USER, US2, 0), "User 'bob' is the cluster's last");
	/* Two admins through the group only: the group stays. */
	ok_built(&f, store_group_cmd_patch(admins, json_pack("{s:[s,s]}", "members", US1, US2)));
	refused_built(&f, store_cmd_delete(STORE_KIND_GROUP, GR1, 0),
		      "The cluster's 2 administrators have the admin role only through group 'admins'");
	ok_built(&f, store_cmd_delete(STORE_KIND_USER, US1, 0));
	g_assert_cmpuint(store_state_count(f.s, STORE_KIND_USER), ==, 1);
	check_consistent(&f);
	fx_close(&f);
}

#define COLD_MAC "52:54:00:12:34:56"
#define COLD_XML "<domain type='kvm'><name>a</name><devices><interface type='bridge'>" \
		 "<mac address='" COLD_MAC "'/><source bridge='br0'/></interface></devices></domain>"

/* Apply @fmt's command in an open transaction that is not committed. */
static void apply_open(fixture *f, const char *cmd_text)
{
	json_error_t jerr;
	g_autoptr(json_t) cmd = json_loads(cmd_text, 0, &jerr);
	g_assert_nonnull(cmd);
	json_object_set_new(cmd, "time_ms", json_integer(++f->clock_ms));
	json_object_set_new(cmd, "origin", json_string("n1"));
	json_object_set_new(cmd, "user", json_string("alice"));
	g_autofree char *bytes = json_dumps(cmd, JSON_COMPACT | JSON_SORT_KEYS);
	g_autoptr(GError) error = NULL;
	g_assert_true(store_db_begin(f->db, NULL));
	g_autoptr(json_t) r = store_state_apply(f->s, cmd, bytes, strlen(bytes), NULL, &error);
	g_assert_no_error(error);
	g_assert_nonnull(r);
}

/* A VM's text is dropped once durable and read back from SQLite; objects
 * that others hold keep (or take back) theirs whatever becomes of the row:
 * a new version, a rollback, an undefine, a reload, a transfer, the state's
 * end. */
static void test_cold_texts(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"a\","
			   "\"data\":{\"xml\":\"" COLD_XML "\",\"ha\":true}}"));
	store_object *v1 = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_true(v1->cold == f.s);
	g_assert_null(v1->text);
	g_assert_cmpuint(store_state_cold_count(f.s), ==, 1);
	/* Read back: the XML, the text, the data, as a warm object has them. */
	g_autofree char *xml = store_vm_xml(store_vm_of(v1), NULL);
	g_assert_cmpstr(xml, ==, COLD_XML);
	g_autofree char *text1 = store_object_encode(v1, NULL);
	g_autoptr(json_t) d1 = store_object_data(v1, NULL);
	g_autoptr(store_object) warm1 = store_object_new(STORE_KIND_VM, VM1, "a", v1->version,
							 v1->created_ms, v1->modified_ms, d1);
	g_assert_nonnull(warm1->text);
	g_autofree char *warm_text = store_object_encode(warm1, NULL);
	g_assert_cmpstr(text1, ==, warm_text);
	g_assert_true(warm1->digest == v1->digest);
	g_assert_true(store_vm_xml_may_have_mac(store_vm_of(v1), COLD_MAC));
	g_assert_true(store_refs_mac_user(f.s, COLD_MAC, NULL) == v1);
	g_assert_null(store_refs_mac_user(f.s, "52:54:00:12:34:57", NULL));

	/* A new version while the old one is held: the old one takes its
	 * text back before its row changes; the new one goes cold. */
	g_autoptr(store_object) held1 = store_object_ref(v1);
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"ha\":false}}"));
	store_object *v2 = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_true(v2 != held1);
	g_assert_null(held1->cold);
	g_assert_nonnull(held1->text);
	g_autofree char *held_text = store_object_encode(held1, NULL);
	g_assert_cmpstr(held_text, ==, text1);
	g_assert_true(v2->cold == f.s);
	g_assert_true(store_vm_same_xml(store_vm_of(held1), store_vm_of(v2)));
	g_assert_false(store_vm_of(v2)->ha);

	/* Applied, not durable, then rolled back: the applied version stays
	 * warm (its row goes); the one it replaced keeps its text; a reload
	 * gives the durable one, cold again. */
	g_autoptr(store_object) held2 = store_object_ref(v2);
	g_autofree char *text2 = store_object_encode(v2, NULL);
	apply_open(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"ha\":true}}");
	store_object *v3 = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_cmpuint(v3->version, ==, held2->version + 1);
	g_assert_nonnull(held2->text);
	store_state_settle(f.s); /* in a transaction: nothing */
	g_assert_null(v3->cold);
	store_db_rollback(f.db);
	store_state_settle(f.s); /* its row is version 2: v3 stays warm */
	g_assert_null(v3->cold);
	g_assert_true(store_vm_of(v3)->ha);
	g_autofree char *held2_text = store_object_encode(held2, NULL);
	g_assert_cmpstr(held2_text, ==, text2);
	g_autoptr(GError) error = NULL;
	g_assert_true(store_state_load(f.s, &error));
	store_object *again = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_cmpuint(again->version, ==, held2->version);
	g_assert_true(again->cold == f.s);
	g_autofree char *again_text = store_object_encode(again, NULL);
	g_assert_cmpstr(again_text, ==, text2);

	/* A row that is not the object's is refused, never given out. */
	g_assert_true(store_db_begin(f.db, NULL));
	g_autoptr(json_t) other = json_pack("{s:s,s:b}", "xml", "<domain/>", "ha", 0);
	g_autoptr(store_object) same_version = store_object_new(STORE_KIND_VM, VM1, "a", again->version,
								again->created_ms, again->modified_ms, other);
	g_assert_true(store_db_put_object(f.db, same_version, NULL, NULL));
	g_test_expect_message("store", G_LOG_LEVEL_CRITICAL, "configuration store: *another text at*");
	g_autofree char *wrong = store_state_cold_text(f.s, again, &error);
	g_assert_null(wrong);
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_clear_error(&error);
	g_assert_true(store_db_delete_object(f.db, STORE_KIND_VM, VM1, NULL));
	g_test_expect_message("store", G_LOG_LEVEL_CRITICAL, "configuration store: *no row;*");
	g_autofree char *none = store_state_cold_text(f.s, again, &error);
	g_assert_null(none);
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_clear_error(&error);
	store_db_rollback(f.db);
	g_autofree char *back = store_state_cold_text(f.s, again, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(back, ==, text2);

	/* Undefined while held. */
	g_autoptr(store_object) held3 = store_object_ref(again);
	json_decref(ok(&f, "{\"op\":\"delete\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\"}"));
	g_assert_null(store_state_get(f.s, STORE_KIND_VM, VM1));
	g_autofree char *held3_text = store_object_encode(held3, NULL);
	g_assert_cmpstr(held3_text, ==, text2);

	/* A transfer rewrites the rows: what is held is warmed first. */
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"b\","
			   "\"data\":{\"xml\":\"<domain><name>b</name></domain>\"}}"));
	g_autoptr(store_object) held4 = store_object_ref(store_state_get(f.s, STORE_KIND_VM, VM2));
	g_assert_true(held4->cold == f.s);
	g_autofree char *text4 = store_object_encode(held4, NULL);
	fixture o;
	fx_open(&o, ":memory:");
	json_decref(ok(&o, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM2 "\",\"name\":\"b\","
			   "\"data\":{\"xml\":\"<domain><name>other</name></domain>\"}}"));
	g_autoptr(json_t) dump = store_db_dump(o.db, NULL);
	fx_close(&o);
	g_assert_true(store_state_warm_all(f.s, true, NULL));
	g_assert_null(held4->cold);
	g_assert_true(store_db_begin(f.db, NULL));
	g_assert_true(store_db_restore_dump(f.db, dump, &error));
	g_assert_true(store_state_load(f.s, &error));
	end_burst(&f);
	g_assert_no_error(error);
	store_object *theirs = store_state_get(f.s, STORE_KIND_VM, VM2);
	g_assert_true(theirs->cold == f.s);
	g_autofree char *xml_theirs = store_vm_xml(store_vm_of(theirs), NULL);
	g_assert_cmpstr(xml_theirs, ==, "<domain><name>other</name></domain>");
	g_autofree char *held4_text = store_object_encode(held4, NULL);
	g_assert_cmpstr(held4_text, ==, text4);
	g_assert_false(store_vm_same_xml(store_vm_of(held4), store_vm_of(theirs)));

	/* The state goes; what is held keeps its text. */
	g_autoptr(store_object) held5 = store_object_ref(theirs);
	g_autofree char *text5 = store_object_encode(held5, NULL);
	check_consistent(&f);
	fx_close(&f);
	g_assert_null(held5->cold);
	g_autofree char *held5_text = store_object_encode(held5, NULL);
	g_assert_cmpstr(held5_text, ==, text5);
}

/* Apply @text in a burst of its own: it must fail with an I/O error that
 * says @needle (the replica then stops; here the fixture goes on). */
static void fails_io(fixture *f, const char *needle, const char *text)
{
	g_autoptr(json_t) cmd = json_loads(text, 0, NULL);
	g_assert_nonnull(cmd);
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = apply_json(f, cmd, NULL, &error);
	g_assert_null(r);
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
}

/* A cold text that the disk no longer reads: what needs it fails, with
 * another text never handed out and herdd going on; the checks for users
 * take the VM as one; once the disk reads again all is as before. */
static void test_cold_unreadable(void)
{
	fixture f;
	fx_open(&f, ":memory:");
	setup_cluster(&f);
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"storage\",\"uuid\":\"" ST1 "\",\"name\":\"share\","
			   "\"data\":{\"type\":\"dir\",\"path\":\"/srv/share\"}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"disk\",\"uuid\":\"" DK1 "\",\"name\":\"d1\","
			   "\"data\":{\"storage\":\"" ST1 "\",\"format\":\"raw\",\"size\":1048576,\"file\":\"images/d1.raw\"}}"));
	json_decref(ok(&f, "{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"name\":\"a\","
			   "\"data\":{\"xml\":\"" COLD_XML "\",\"ha\":true}}"));
	store_object *v1 = store_state_get(f.s, STORE_KIND_VM, VM1);
	store_object *d1 = store_state_get(f.s, STORE_KIND_DISK, DK1);
	g_assert_true(v1->cold == f.s);
	g_autoptr(json_t) data1 = store_object_data(v1, NULL);
	g_autoptr(store_object) warm1 = store_object_new(STORE_KIND_VM, VM1, "a", v1->version,
							 v1->created_ms, v1->modified_ms, data1);
	g_assert_null(store_refs_user(f.s, d1));
	g_assert_true(store_vm_same_xml(store_vm_of(v1), store_vm_of(warm1)));

	store_db_fail_reads(f.db, true);
	g_autoptr(GError) error = NULL;
	/* Logged once, however often asked. */
	g_test_expect_message("store", G_LOG_LEVEL_CRITICAL,
			      "configuration store: The configuration of VM a (version 1) cannot be read: *");
	g_assert_null(store_vm_xml(store_vm_of(v1), &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_assert_nonnull(strstr(error->message, "The configuration of VM a (version 1) cannot be read: "
						"The configuration database failed to read"));
	g_clear_error(&error);
	g_assert_null(store_object_data(v1, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_clear_error(&error);
	/* Its XML might name the disk: in use; and the MAC address its view
	 * says it may have.  One the view rules out needs no read. */
	g_assert_true(store_refs_user(f.s, d1) == v1);
	g_assert_true(store_refs_mac_user(f.s, COLD_MAC, NULL) == v1);
	g_assert_null(store_refs_mac_user(f.s, "52:54:00:aa:bb:cc", NULL));
	g_assert_false(store_vm_same_xml(store_vm_of(v1), store_vm_of(warm1)));
	/* A change of it fails as a disk failure (nothing changes). */
	fails_io(&f, "VM a (version 1) cannot be read",
		 "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"ha\":false}}");
	g_assert_true(store_state_get(f.s, STORE_KIND_VM, VM1) == v1);
	g_assert_true(v1->cold == f.s);
	g_test_assert_expected_messages();

	/* The disk reads again. */
	store_db_fail_reads(f.db, false);
	g_autofree char *xml = store_vm_xml(store_vm_of(v1), &error);
	g_assert_no_error(error);
	g_assert_cmpstr(xml, ==, COLD_XML);
	g_assert_null(store_refs_user(f.s, d1));
	json_decref(ok(&f, "{\"op\":\"patch\",\"kind\":\"vm\",\"uuid\":\"" VM1 "\",\"data\":{\"ha\":false}}"));
	store_object *v2 = store_state_get(f.s, STORE_KIND_VM, VM1);
	g_assert_cmpuint(v2->version, ==, 2);
	g_assert_false(store_vm_of(v2)->ha);

	/* Held while its state goes and the disk does not read: lost, said so. */
	g_autoptr(store_object) held = store_object_ref(v2);
	g_assert_true(held->cold == f.s);
	store_db_fail_reads(f.db, true);
	g_test_expect_message("store", G_LOG_LEVEL_CRITICAL, "*VM a (version 2) cannot be read*");
	fx_close(&f);
	g_test_assert_expected_messages();
	g_assert_null(held->cold);
	g_assert_null(store_object_encode(held, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_IO);
	g_assert_nonnull(strstr(error->message, "is lost"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/state/empty", test_empty);
	g_test_add_func("/state/create", test_create);
	g_test_add_func("/state/create-errors", test_create_errors);
	g_test_add_func("/state/update", test_update);
	g_test_add_func("/state/patch", test_patch);
	g_test_add_func("/state/list-order", test_list_order);
	g_test_add_func("/state/delete", test_delete);
	g_test_add_func("/state/node-shutdown", test_node_shutdown);
	g_test_add_func("/state/changed-at", test_changed_at);
	g_test_add_func("/state/history-state-apart", test_history_state_apart);
	g_test_add_func("/state/history-and-restore", test_history_and_restore);
	g_test_add_func("/state/history-list", test_history_list);
	g_test_add_func("/state/history-limit-default", test_history_limit_default);
	g_test_add_func("/state/history-limit-setting", test_history_limit_setting);
	g_test_add_func("/state/batch", test_batch);
	g_test_add_func("/state/determinism", test_determinism);
	g_test_add_func("/state/position-compare", test_position_compare);
	g_test_add_func("/state/persistence", test_persistence);
	g_test_add_func("/state/open-errors", test_open_errors);
	g_test_add_func("/state/dump-restore", test_dump_restore);
	g_test_add_func("/state/dump-malformed", test_dump_malformed);
	g_test_add_func("/state/fault-injection", test_fault_injection);
	g_test_add_func("/state/commit-failure", test_commit_failure);
	g_test_add_func("/state/encode", test_encode);
	g_test_add_func("/state/storage-refs", test_storage_refs);
	g_test_add_func("/state/live-move-at-apply", test_live_move_at_apply);
	g_test_add_func("/state/last-admin", test_last_admin);
	g_test_add_func("/state/cold-texts", test_cold_texts);
	g_test_add_func("/state/cold-unreadable", test_cold_unreadable);
	int rc = g_test_run();
	g_clear_pointer(&kept_data, g_ptr_array_unref);
	return rc;
}
