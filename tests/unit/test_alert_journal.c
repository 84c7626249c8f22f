/* ha/alert_journal: the store's alert records follow the coordinator's
 * alerts — raised, changed, cleared, pruned — and apply as a batch. */
#include "common/json.h"
#include "ha/alert_journal.h"
#include "store/alert.h"
#include "teststore.h"

#include <string.h>

#define CLUSTER "cccccccc-cccc-4ccc-8ccc-cccccccccccc"

static test_store *cluster_store(void)
{
	test_store *t = test_store_new();
	test_store_apply_text(t, "{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"" CLUSTER
				 "\",\"name\":\"c\",\"data\":{}}");
	return t;
}

/* Journal @active_json at @now into @t; returns whether there was anything. */
static bool journal(test_store *t, const char *active_json, int64_t now, unsigned keep)
{
	g_autoptr(json_t) active = json_loads(active_json, 0, NULL);
	g_assert_nonnull(active);
	g_autoptr(json_t) cmd = herd_alert_journal(t->st, active, NULL, now, keep);
	if (!cmd)
		return false;
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) r = test_store_apply(t, cmd, &err);
	g_assert_no_error(err);
	return true;
}

static bool exists(test_store *t, const char *name)
{
	return store_state_get_by_name(t->st, STORE_KIND_ALERT, name) != NULL;
}

static const store_alert *alert(test_store *t, const char *name)
{
	store_object *o = store_state_get_by_name(t->st, STORE_KIND_ALERT, name);
	if (!o)
		g_error("no alert %s", name);
	return store_alert_of(o);
}

#define LINK "{\"kind\":\"link_last\",\"severity\":\"warning\",\"node\":\"n1\",\"nodes\":[\"n1\",\"n2\"]," \
	     "\"message\":\"Only link 1 is left\"}"
#define VM(msg, sev) "{\"severity\":\"" sev "\",\"vm\":\"web\",\"message\":\"" msg "\"}"

static void test_raise_change_clear(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_assert_false(journal(t, "[]", 1000, 10));
	g_assert_true(journal(t, "[" LINK "," VM("web waits: no room", "warning") "]", 1000, 10));
	g_assert_cmpuint(store_state_count(t->st, STORE_KIND_ALERT), ==, 2);
	const store_alert *a1 = alert(t, "1"), *a2 = alert(t, "2");
	g_assert_cmpstr(a1->kind, ==, "link_last");
	g_assert_cmpstr(a1->key, ==, "link_last node=n1 nodes=n1,n2");
	g_assert_cmpstr(a1->node, ==, "n1");
	g_assert_cmpint(a1->first_ms, ==, 1000);
	g_assert_cmpint(a1->cleared_ms, ==, 0);
	g_assert_cmpstr(a2->kind, ==, "vm");
	g_assert_cmpstr(a2->vm, ==, "web");
	/* The same again: nothing to write. */
	g_assert_false(journal(t, "[" LINK "," VM("web waits: no room", "warning") "]", 2000, 10));
	/* Reworded within a minute: not written; after it, written. */
	g_assert_false(journal(t, "[" LINK "," VM("web waits: still no room", "warning") "]", 3000, 10));
	g_assert_true(journal(t, "[" LINK "," VM("web waits: still no room", "warning") "]", 61000, 10));
	g_assert_cmpstr(alert(t, "2")->message, ==, "web waits: still no room");
	g_assert_cmpint(alert(t, "2")->last_ms, ==, 61000);
	/* A new severity is written at once. */
	g_assert_true(journal(t, "[" LINK "," VM("web cannot run", "critical") "]", 62000, 10));
	g_assert_cmpint(alert(t, "2")->severity, ==, STORE_ALERT_CRITICAL);
	/* The link is back: its record clears, the VM's holds. */
	g_assert_true(journal(t, "[" VM("web cannot run", "critical") "]", 70000, 10));
	g_assert_cmpint(alert(t, "1")->cleared_ms, ==, 70000);
	g_assert_cmpint(alert(t, "2")->cleared_ms, ==, 0);
	/* Lost again: a new record, number 3; the old one stays cleared. */
	g_assert_true(journal(t, "[" LINK "," VM("web cannot run", "critical") "]", 80000, 10));
	g_assert_cmpint(alert(t, "3")->first_ms, ==, 80000);
	g_assert_cmpint(alert(t, "1")->cleared_ms, ==, 70000);
	/* Identical records from two herds for the same: one holds. */
	g_assert_false(journal(t, "[" LINK "," LINK "," VM("web cannot run", "critical") "]", 81000, 10));
	/* Malformed entries are ignored. */
	g_assert_false(journal(t, "[" LINK "," VM("web cannot run", "critical") ",{\"severity\":\"bad\","
				  "\"message\":\"x\"},{\"severity\":\"info\"},7]",
			       82000, 10));
}

/* Beyond @keep cleared records, the oldest cleared go; open ones never. */
static void test_history_bound(void)
{
	g_autoptr(test_store) t = cluster_store();
	for (int i = 0; i < 6; i++) {
		g_autofree char *one = g_strdup_printf("[{\"severity\":\"info\",\"node\":\"n%d\",\"message\":\"m\"}]", i);
		g_assert_true(journal(t, one, 1000 * (i + 1), 3));
	}
	g_assert_true(journal(t, "[{\"severity\":\"info\",\"node\":\"n9\",\"message\":\"m\"}]", 9000, 3));
	/* Raised 1..6 and 7 (n9); cleared 1..6; kept: 3 cleared (the newest) and the open one. */
	/* Those cleared in the same round count as the newest: the next
	 * round prunes what they pushed out. */
	for (int round = 0; round < 3 && journal(t, "[{\"severity\":\"info\",\"node\":\"n9\",\"message\":\"m\"}]",
						 10000, 3); round++)
		;
	g_assert_cmpuint(store_state_count(t->st, STORE_KIND_ALERT), ==, 4);
	g_assert_false(exists(t, "1"));
	g_assert_false(exists(t, "3"));
	g_assert_true(exists(t, "4"));
	g_assert_true(exists(t, "6"));
	g_assert_cmpint(alert(t, "7")->cleared_ms, ==, 0);
	/* Numbers go on from the highest, also after pruning. */
	g_assert_true(journal(t, "[{\"severity\":\"info\",\"node\":\"n8\",\"message\":\"m\"}]", 11000, 3));
	g_assert_true(exists(t, "8"));
}

/* The store refuses malformed records; operators acknowledge. */
static void test_store_rules(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) bad = json_loads("{\"op\":\"create\",\"kind\":\"alert\",\"uuid\":"
					   "\"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\",\"name\":\"1\",\"data\":"
					   "{\"key\":\"k\",\"message\":\"m\",\"severity\":\"fatal\",\"first_ms\":1}}",
					   0, NULL);
	g_assert_null(test_store_apply(t, bad, &err));
	g_assert_nonnull(strstr(err->message, "severity"));
	g_clear_error(&err);
	g_autoptr(json_t) nokey = json_loads("{\"op\":\"create\",\"kind\":\"alert\",\"uuid\":"
					     "\"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\",\"name\":\"1\",\"data\":"
					     "{\"message\":\"m\",\"severity\":\"info\",\"first_ms\":1}}",
					     0, NULL);
	g_assert_null(test_store_apply(t, nokey, &err));
	g_assert_nonnull(strstr(err->message, "key"));
	g_assert_true(journal(t, "[" LINK "]", 1000, 10));
	store_object *o = store_state_get_by_name(t->st, STORE_KIND_ALERT, "1");
	g_autoptr(json_t) ack = store_alert_cmd_ack(o, "admin", 2000);
	g_autoptr(json_t) r = test_store_apply(t, ack, NULL);
	g_assert_nonnull(r);
	g_assert_cmpstr(alert(t, "1")->acked_by, ==, "admin");
	/* The same number from the same cluster is the same UUID anywhere. */
	g_autoptr(json_t) k = json_pack("{s:s}", "key", "k");
	g_autoptr(json_t) a = store_alert_cmd_raise(CLUSTER, 42, k, 1);
	g_autoptr(json_t) b = store_alert_cmd_raise(CLUSTER, 42, k, 2);
	g_assert_cmpstr(json_string_value(json_object_get(a, "uuid")), ==,
			json_string_value(json_object_get(b, "uuid")));
	g_assert_true(store_uuid_is_valid(json_string_value(json_object_get(a, "uuid"))));
}

/* Events are records over as they are written, numbered with the rest. */
static void test_events(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_assert_true(journal(t, "[" LINK "]", 1000, 10));
	g_autoptr(json_t) active = json_loads("[" LINK "]", 0, NULL);
	g_autoptr(json_t) events = json_loads(
		"[{\"kind\":\"fenced\",\"severity\":\"warning\",\"node\":\"n3\",\"message\":\"Node n3 was fenced\"},"
		"{\"kind\":\"failover\",\"severity\":\"warning\",\"vm\":\"web\",\"node\":\"n1\",\"message\":\"VM web goes\"},"
		"{\"severity\":\"bad\",\"message\":\"x\"}]", 0, NULL);
	g_autoptr(json_t) cmd = herd_alert_journal(t->st, active, events, 2000, 10);
	g_assert_nonnull(cmd);
	g_autoptr(json_t) r = test_store_apply(t, cmd, NULL);
	g_assert_nonnull(r);
	g_assert_cmpstr(alert(t, "2")->kind, ==, "fenced");
	g_assert_cmpint(alert(t, "2")->first_ms, ==, 2000);
	g_assert_cmpint(alert(t, "2")->cleared_ms, ==, 2000);
	g_assert_cmpstr(alert(t, "3")->vm, ==, "web");
	g_assert_false(exists(t, "4"));
	g_assert_cmpint(alert(t, "1")->cleared_ms, ==, 0);
	/* Nothing new: nothing to write. */
	g_assert_false(journal(t, "[" LINK "]", 3000, 10));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/alert-journal/raise-change-clear", test_raise_change_clear);
	g_test_add_func("/alert-journal/history-bound", test_history_bound);
	g_test_add_func("/alert-journal/store-rules", test_store_rules);
	g_test_add_func("/alert-journal/events", test_events);
	return g_test_run();
}
