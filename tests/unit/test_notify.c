/* ha/notify: which alert events are notified when — gathered, one notice
 * per kind and interval, retried with a bounded backoff, bounded, marked
 * in the store so that nothing is sent twice or skipped — and the mail. */
#include "common/json.h"
#include "ha/alert_journal.h"
#include "ha/notify.h"
#include "store/alert.h"
#include "store/cluster.h"
#include "store/settings.h"
#include "teststore.h"

#include <string.h>

#define CLUSTER "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
#define T0 1700000000000LL
/* notify_interval_s's default, in ms */
#define KIND_INTERVAL_MS 60000

static test_store *cluster_store(void)
{
	test_store *t = test_store_new();
	test_store_apply_text(t, "{\"op\":\"create\",\"kind\":\"cluster\",\"uuid\":\"" CLUSTER
				 "\",\"name\":\"c\",\"data\":{}}");
	return t;
}

/* The coordinator's alerts are @active_json at @now. */
static void alerts_are(test_store *t, const char *active_json, int64_t now)
{
	g_autoptr(json_t) active = json_loads(active_json, 0, NULL);
	g_assert_nonnull(active);
	g_autoptr(json_t) cmd = herd_alert_journal(t->st, active, NULL, now, 500);
	if (!cmd)
		return;
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) r = test_store_apply(t, cmd, &err);
	g_assert_no_error(err);
}

/* Deliver the current notice at @now and apply its marks (@apply). */
static void delivered(test_store *t, herd_notify *n, int64_t now, bool apply)
{
	g_autoptr(json_t) mark = herd_notify_delivered(n, t->st, now);
	g_assert_nonnull(mark);
	if (!apply)
		return;
	g_autoptr(GError) err = NULL;
	g_autoptr(json_t) r = test_store_apply(t, mark, &err);
	g_assert_no_error(err);
}

static const herd_notice *next(test_store *t, herd_notify *n, int64_t now, int64_t *wake)
{
	int64_t w = -1;
	const herd_notice *out = herd_notify_next(n, t->st, "c", now, &w);
	if (wake)
		*wake = w;
	return out;
}

static json_t *events(const herd_notice *n)
{
	return json_object_get(n->json, "events");
}

#define LINK1 "{\"kind\":\"link_down\",\"severity\":\"warning\",\"node\":\"n1\",\"nodes\":[\"n1\",\"n2\"]," \
	      "\"message\":\"Link 1 between nodes n1 and n2 is down\"}"
#define LINK2 "{\"kind\":\"link_down\",\"severity\":\"warning\",\"node\":\"n2\",\"nodes\":[\"n2\",\"n1\"]," \
	      "\"message\":\"Link 1 between nodes n2 and n1 is down\"}"
#define FENCE "{\"kind\":\"fence_failed\",\"severity\":\"critical\",\"node\":\"n3\"," \
	      "\"message\":\"Fencing node n3 failed\"}"

static void test_raise_and_clear(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(herd_notify) n = herd_notify_new();
	int64_t wake;
	g_assert_null(next(t, n, T0, &wake));
	g_assert_cmpint(wake, ==, 0); /* nothing waits */

	alerts_are(t, "[" LINK1 "]", T0);
	/* Gathered first: what happens with it goes out with it. */
	g_assert_null(next(t, n, T0 + 1000, &wake));
	g_assert_cmpint(wake, ==, NOTIFY_GATHER_MS - 1000);
	alerts_are(t, "[" LINK1 "," LINK2 "]", T0 + 1500);
	const herd_notice *x = next(t, n, T0 + NOTIFY_GATHER_MS, NULL);
	g_assert_nonnull(x);
	g_assert_cmpstr(x->kind, ==, "link_down");
	g_assert_cmpuint(json_array_size(events(x)), ==, 2);
	g_assert_nonnull(strstr(x->text, "Link 1 between nodes n1 and n2 is down"));
	g_assert_nonnull(strstr(x->text, "node n1"));
	g_assert_nonnull(strstr(x->subject, "2 alerts link_down (2 raised, 0 cleared)"));
	/* The same notice while it is under way. */
	g_assert_true(next(t, n, T0 + NOTIFY_GATHER_MS + 10, NULL) == x);
	delivered(t, n, T0 + 4000, true);
	g_assert_cmpint(store_alert_of(store_state_get_by_name(t->st, STORE_KIND_ALERT, "1"))->notified_ms,
			==, T0 + 4000);
	g_assert_null(next(t, n, T0 + 5000, &wake));
	g_assert_cmpint(wake, ==, 0);

	/* Healed: one "cleared" notice, not before the kind's interval. */
	alerts_are(t, "[]", T0 + 10000);
	g_assert_null(next(t, n, T0 + 20000, &wake));
	g_assert_cmpint(wake, ==, T0 + 4000 + KIND_INTERVAL_MS - (T0 + 20000));
	x = next(t, n, T0 + 4000 + KIND_INTERVAL_MS, NULL);
	g_assert_nonnull(x);
	g_assert_cmpuint(json_array_size(events(x)), ==, 2);
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(events(x), 0), "event")), ==,
			"cleared");
	g_assert_nonnull(strstr(x->text, "CLEARED"));
	delivered(t, n, T0 + 70000, true);
	g_assert_null(next(t, n, T0 + 200000, &wake));
	g_assert_cmpint(wake, ==, 0);
	g_assert_cmpint(store_alert_of(store_state_get_by_name(t->st, STORE_KIND_ALERT, "2"))
				->cleared_notified_ms, ==, T0 + 70000);
}

/* An event (raised and over at once: a fence, a failover) is one message;
 * its marks say both, so no "cleared" follows. */
/* notify_interval_s: the kind's interval is the setting's (0: none, the
 * gathering only). */
static void test_interval_setting(void)
{
	for (long long secs = 0; secs <= 10; secs += 10) {
		g_autoptr(test_store) t = cluster_store();
		g_autoptr(json_t) change = json_pack("{s:I}", "notify_interval_s", (json_int_t)secs);
		g_autoptr(json_t) cmd = store_cluster_cmd_settings(store_state_cluster(t->st), change);
		g_autoptr(GError) err = NULL;
		g_autoptr(json_t) r = test_store_apply(t, cmd, &err);
		g_assert_no_error(err);
		g_assert_cmpint(store_settings_of(t->st)->notify_interval_s, ==, secs);
		g_autoptr(herd_notify) n = herd_notify_new();
		int64_t wake;
		alerts_are(t, "[" LINK1 "]", T0);
		g_assert_nonnull(next(t, n, T0 + NOTIFY_GATHER_MS, NULL));
		delivered(t, n, T0 + 4000, true);
		/* Healed at T0 + 5000: "cleared" after the gathering, and not
		 * before the interval from the last notice of the kind. */
		alerts_are(t, "[]", T0 + 5000);
		int64_t due = MAX(T0 + 5000 + NOTIFY_GATHER_MS, T0 + 4000 + secs * 1000);
		g_assert_null(next(t, n, due - 1, &wake));
		g_assert_cmpint(wake, ==, 1);
		const herd_notice *x = next(t, n, due, NULL);
		g_assert_nonnull(x);
		g_assert_cmpstr(json_string_value(json_object_get(json_array_get(events(x), 0), "event")), ==,
				"cleared");
	}
}

static void test_event(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(herd_notify) n = herd_notify_new();
	g_autoptr(json_t) active = json_array();
	g_autoptr(json_t) ev = json_loads("[{\"kind\":\"fenced\",\"severity\":\"warning\",\"node\":\"n3\","
					  "\"message\":\"Node n3 was fenced by fence device pdu\"}]", 0, NULL);
	g_autoptr(json_t) cmd = herd_alert_journal(t->st, active, ev, T0, 500);
	g_autoptr(json_t) r = test_store_apply(t, cmd, NULL);
	g_assert_nonnull(r);
	const herd_notice *x = next(t, n, T0 + NOTIFY_GATHER_MS, NULL);
	g_assert_nonnull(x);
	g_assert_cmpuint(json_array_size(events(x)), ==, 1);
	g_assert_null(strstr(x->text, "CLEARED"));
	delivered(t, n, T0 + NOTIFY_GATHER_MS, true);
	const store_alert *a = store_alert_of(store_state_get_by_name(t->st, STORE_KIND_ALERT, "1"));
	g_assert_cmpint(a->notified_ms, !=, 0);
	g_assert_cmpint(a->cleared_notified_ms, !=, 0);
	int64_t wake;
	g_assert_null(next(t, n, T0 + 10 * KIND_INTERVAL_MS, &wake));
	g_assert_cmpint(wake, ==, 0);
}

#define FULL(sev, pct) "[{\"kind\":\"storage_full\",\"severity\":\"" sev "\",\"storage\":\"s1\"," \
		       "\"message\":\"Storage s1 is " pct " % full\"}]"

/* A storage past 80 % (warning), then past 90 % (critical): one notice
 * each.  A reworded message, the severity going down and up again, a
 * delivery the store has not caught up with: nothing more. */
static void test_worse(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(herd_notify) n = herd_notify_new();
	int64_t wake, now = T0;
	alerts_are(t, FULL("warning", "81"), now);
	const herd_notice *x = next(t, n, now + NOTIFY_GATHER_MS, NULL);
	g_assert_nonnull(x);
	g_assert_nonnull(strstr(x->subject, "warning: Storage s1 is 81 % full"));
	delivered(t, n, now += NOTIFY_GATHER_MS, true);
	const store_alert *a = store_alert_of(store_state_get_by_name(t->st, STORE_KIND_ALERT, "1"));
	g_assert_cmpint(a->notified_severity, ==, STORE_ALERT_WARNING);
	now += 600000;
	alerts_are(t, FULL("warning", "85"), now);
	g_assert_null(next(t, n, now + KIND_INTERVAL_MS, &wake));
	g_assert_cmpint(wake, ==, 0);
	/* Critical: one notice, not held back by the gathering time more
	 * than any event. */
	alerts_are(t, FULL("critical", "91"), now += 1000);
	g_assert_null(next(t, n, now, &wake));
	g_assert_cmpint(wake, ==, NOTIFY_GATHER_MS);
	x = next(t, n, now += NOTIFY_GATHER_MS, NULL);
	g_assert_nonnull(x);
	g_assert_nonnull(strstr(x->subject, "critical: Storage s1 is 91 % full"));
	g_assert_nonnull(strstr(x->text, "WORSE"));
	g_assert_cmpstr(json_string_value(json_object_get(json_array_get(events(x), 0), "event")), ==,
			"worse");
	/* Delivered, its mark not in the store yet: not again. */
	delivered(t, n, now, false);
	g_assert_null(next(t, n, now + 10 * KIND_INTERVAL_MS, &wake));
	g_assert_cmpint(wake, ==, 0);
	herd_notify_reset(n); /* a new coordinator: the store says it all */
	alerts_are(t, FULL("critical", "91"), now);
	g_assert_nonnull(next(t, n, now + 10 * KIND_INTERVAL_MS, NULL));
	delivered(t, n, now, true);
	a = store_alert_of(store_state_get_by_name(t->st, STORE_KIND_ALERT, "1"));
	g_assert_cmpint(a->notified_severity, ==, STORE_ALERT_CRITICAL);
	/* Down to a warning and up again: the critical was said. */
	alerts_are(t, FULL("warning", "89"), now += 600000);
	g_assert_null(next(t, n, now + KIND_INTERVAL_MS, &wake));
	alerts_are(t, FULL("critical", "90"), now += 600000);
	g_assert_null(next(t, n, now + KIND_INTERVAL_MS, &wake));
	g_assert_cmpint(wake, ==, 0);
	/* Cleared: one notice. */
	alerts_are(t, "[]", now += 1000);
	x = next(t, n, now + KIND_INTERVAL_MS, NULL);
	g_assert_nonnull(x);
	g_assert_nonnull(strstr(x->text, "CLEARED"));
}

static void test_one_alert_subject(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(herd_notify) n = herd_notify_new();
	alerts_are(t, "[" FENCE "]", T0);
	const herd_notice *x = next(t, n, T0 + NOTIFY_GATHER_MS, NULL);
	g_assert_nonnull(x);
	g_assert_cmpstr(x->subject, ==, "[herd c] critical: Fencing node n3 failed");
	json_t *e = json_array_get(events(x), 0);
	g_assert_cmpstr(json_string_value(json_object_get(e, "node")), ==, "n3");
	g_assert_cmpstr(json_string_value(json_object_get(e, "alert")), ==, "1");
	g_assert_cmpint(json_integer_value(json_object_get(e, "time_ms")), ==, T0);
}

/* Kinds are limited each on its own; the oldest due kind goes first. */
static void test_kinds(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(herd_notify) n = herd_notify_new();
	alerts_are(t, "[" FENCE "]", T0);
	alerts_are(t, "[" FENCE "," LINK1 "]", T0 + 100);
	const herd_notice *x = next(t, n, T0 + 5000, NULL);
	g_assert_cmpstr(x->kind, ==, "fence_failed");
	delivered(t, n, T0 + 5000, true);
	x = next(t, n, T0 + 5000, NULL);
	g_assert_nonnull(x);
	g_assert_cmpstr(x->kind, ==, "link_down");
	delivered(t, n, T0 + 5000, true);
	/* A fence fails again: its kind waits out its interval, batched. */
	alerts_are(t, "[" LINK1 "]", T0 + 6000);
	alerts_are(t, "[" LINK1 "," FENCE "]", T0 + 7000);
	int64_t wake;
	g_assert_null(next(t, n, T0 + 20000, &wake));
	g_assert_cmpint(wake, ==, T0 + 5000 + KIND_INTERVAL_MS - (T0 + 20000));
	x = next(t, n, T0 + 65000, NULL);
	g_assert_nonnull(x);
	g_assert_cmpuint(json_array_size(events(x)), ==, 2); /* cleared and raised again */
}

/* While the relay is down: the same notice, after a backoff that doubles
 * up to its bound. */
static void test_retry(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(herd_notify) n = herd_notify_new();
	alerts_are(t, "[" FENCE "]", T0);
	int64_t now = T0 + NOTIFY_GATHER_MS;
	const herd_notice *x = next(t, n, now, NULL);
	uint64_t id = x->id;
	int64_t backoff = NOTIFY_RETRY_FIRST_MS;
	for (int i = 0; i < 8; i++) {
		herd_notify_failed(n, now);
		int64_t wake;
		g_assert_null(next(t, n, now + backoff - 1, &wake));
		g_assert_cmpint(wake, ==, 1);
		now += backoff;
		x = next(t, n, now, NULL);
		g_assert_nonnull(x);
		g_assert_cmpuint(x->id, ==, id);
		backoff = MIN(backoff * 2, NOTIFY_RETRY_MAX_MS);
	}
	g_assert_cmpint(backoff, ==, NOTIFY_RETRY_MAX_MS);
	delivered(t, n, now, true);
	g_assert_null(next(t, n, now + 1000000, NULL));
}

/* Delivered, the marks not in the store yet: not sent again.  A new
 * coordinator sends what the store does not mark, and only that. */
static void test_marks(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(herd_notify) n = herd_notify_new();
	alerts_are(t, "[" FENCE "]", T0);
	g_assert_nonnull(next(t, n, T0 + 5000, NULL));
	delivered(t, n, T0 + 5000, false);
	g_assert_null(next(t, n, T0 + 500000, NULL));
	/* Another node takes over: the store has no mark, so it sends. */
	g_autoptr(herd_notify) other = herd_notify_new();
	const herd_notice *x = next(t, other, T0 + 500000, NULL);
	g_assert_nonnull(x);
	delivered(t, other, T0 + 500000, true);
	/* And a third one after that: nothing. */
	g_autoptr(herd_notify) third = herd_notify_new();
	g_assert_null(next(t, third, T0 + 600000, NULL));
	/* Stepping down forgets the notice under way. */
	alerts_are(t, "[]", T0 + 600000);
	g_assert_nonnull(next(t, third, T0 + 700000, NULL));
	herd_notify_reset(third);
	g_assert_null(herd_notify_current(third));
	/* Too old to notify: a day later it is not sent any more. */
	g_assert_null(next(t, third, T0 + 600000 + NOTIFY_MAX_AGE_MS + 1, NULL));
}

/* More than the queue holds: the oldest are dropped, counted, and marked
 * with the next notice. */
static void test_queue_bound(void)
{
	g_autoptr(test_store) t = cluster_store();
	g_autoptr(herd_notify) n = herd_notify_new();
	GString *active = g_string_new("[");
	for (int i = 0; i < NOTIFY_QUEUE_MAX + 5; i++)
		g_string_append_printf(active, "%s{\"kind\":\"vm\",\"severity\":\"warning\",\"vm\":\"v%d\","
					       "\"message\":\"VM v%d waits\"}", i ? "," : "", i, i);
	g_string_append(active, "]");
	/* One at a time, so that they are ordered. */
	for (int i = 1; i <= NOTIFY_QUEUE_MAX + 5; i++) {
		g_autofree char *some = g_strdup(active->str);
		/* the first i entries */
		char *p = some;
		for (int k = 0; k < i; k++)
			p = strchr(p + 1, '}');
		p[1] = ']';
		p[2] = '\0';
		alerts_are(t, some, T0 + i);
	}
	g_string_free(active, TRUE);
	const herd_notice *x = next(t, n, T0 + 10000, NULL);
	g_assert_nonnull(x);
	g_assert_cmpuint(x->dropped, ==, 5 + (NOTIFY_QUEUE_MAX - NOTIFY_LIST_MAX));
	g_assert_cmpuint(json_array_size(events(x)), ==, NOTIFY_LIST_MAX);
	g_assert_cmpuint(x->marks->len, ==, NOTIFY_QUEUE_MAX + 5);
	g_assert_nonnull(strstr(x->text, "older notifications were dropped"));
	/* The newest are listed. */
	g_assert_nonnull(strstr(x->text, "VM v104 waits"));
	g_assert_null(strstr(x->text, "VM v0 waits"));
	delivered(t, n, T0 + 10000, true);
	g_assert_null(next(t, n, T0 + 1000000, NULL));
}

static void test_mail(void)
{
	g_autoptr(herd_notice) x = herd_notice_test("c", "n1", T0);
	char *to[] = { "a@x.org", "b@y.org", NULL };
	g_autofree char *m = herd_notice_mail(x, "herd@x.org", to, T0);
	g_assert_true(g_str_has_prefix(m, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
	g_assert_nonnull(strstr(m, "\r\nFrom: <herd@x.org>\r\nTo: <a@x.org>, <b@y.org>\r\n"));
	g_assert_nonnull(strstr(m, "\r\nSubject: [herd c] test message from node n1\r\n"));
	g_assert_nonnull(strstr(m, "\r\n\r\nCluster c: this test message was sent by node n1"));
	/* Every line ends in CRLF. */
	for (const char *p = strchr(m, '\n'); p; p = strchr(p + 1, '\n'))
		g_assert_cmpint(p[-1], ==, '\r');
	g_assert_cmpstr(json_string_value(json_object_get(x->json, "kind")), ==, "test");

	/* Not ASCII: RFC 2047 words, cut between characters. */
	g_free(x->subject);
	x->subject = g_strdup("[herd c] warning: Only link 1 is left between nodes n1 and n2 … ünd");
	g_autofree char *m2 = herd_notice_mail(x, "herd@x.org", to, T0);
	const char *s = strstr(m2, "\r\nSubject: =?UTF-8?B?");
	g_assert_nonnull(s);
	GString *decoded = g_string_new(NULL);
	for (const char *w = strstr(s, "=?UTF-8?B?"); w && w < strstr(s, "MIME-Version");
	     w = strstr(w + 1, "=?UTF-8?B?")) {
		const char *end = strstr(w, "?=");
		g_autofree char *b64 = g_strndup(w + 10, (gsize)(end - w - 10));
		gsize len;
		g_autofree guchar *raw = g_base64_decode(b64, &len);
		g_assert_true(g_utf8_validate((const char *)raw, (gssize)len, NULL));
		g_string_append_len(decoded, (const char *)raw, (gssize)len);
	}
	g_assert_cmpstr(decoded->str, ==, x->subject);
	g_string_free(decoded, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/notify/raise-and-clear", test_raise_and_clear);
	g_test_add_func("/notify/interval-setting", test_interval_setting);
	g_test_add_func("/notify/event", test_event);
	g_test_add_func("/notify/worse", test_worse);
	g_test_add_func("/notify/one-alert-subject", test_one_alert_subject);
	g_test_add_func("/notify/kinds", test_kinds);
	g_test_add_func("/notify/retry", test_retry);
	g_test_add_func("/notify/marks", test_marks);
	g_test_add_func("/notify/queue-bound", test_queue_bound);
	g_test_add_func("/notify/mail", test_mail);
	return g_test_run();
}
