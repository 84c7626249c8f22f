#include "ha/notify.h"

#include "store/alert.h"
#include "store/cluster.h"
#include "store/command.h"
#include "store/group.h"
#include "store/settings.h"
#include "store/user.h"

#include <stdlib.h>
#include <string.h>

struct herd_notify {
	herd_notice *current;     /* being delivered or retried */
	unsigned attempts;        /* failed attempts of the current one */
	int64_t retry_at_ms;
	uint64_t next_id;
	GHashTable *last_sent;    /* kind -> int64_t* (ms) */
	/* Delivered, its mark not in the store yet: uuid -> herd_notify_mark*. */
	GHashTable *sent;
};

typedef struct event {
	const store_object *o;
	const store_alert *a;
	bool cleared;
	bool worse;   /* its severity went up after its raising was notified */
	int64_t at_ms;
} event;

static void mark_free(gpointer p)
{
	herd_notify_mark *m = p;
	g_free(m->uuid);
	g_free(m);
}

void herd_notice_free(herd_notice *n)
{
	if (!n)
		return;
	g_free(n->kind);
	g_free(n->subject);
	g_free(n->text);
	json_decref(n->json);
	for (guint i = 0; n->marks && i < n->marks->len; i++)
		g_free(g_array_index(n->marks, herd_notify_mark, i).uuid);
	if (n->marks)
		g_array_free(n->marks, TRUE);
	g_free(n);
}

herd_notify *herd_notify_new(void)
{
	herd_notify *n = g_new0(herd_notify, 1);
	n->next_id = 1;
	n->last_sent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	n->sent = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, mark_free);
	return n;
}

void herd_notify_free(herd_notify *n)
{
	if (!n)
		return;
	herd_notice_free(n->current);
	g_hash_table_destroy(n->last_sent);
	g_hash_table_destroy(n->sent);
	g_free(n);
}

void herd_notify_reset(herd_notify *n)
{
	g_clear_pointer(&n->current, herd_notice_free);
	n->attempts = 0;
	g_hash_table_remove_all(n->sent);
}

static gint oldest_first(gconstpointer x, gconstpointer y)
{
	const event *a = x, *b = y;
	if (a->at_ms != b->at_ms)
		return a->at_ms < b->at_ms ? -1 : 1;
	return strcmp(a->o->uuid, b->o->uuid);
}

/* Forget sent marks the store has caught up with (or whose record went). */
static void prune_sent(herd_notify *n, store_state *st)
{
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, n->sent);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		herd_notify_mark *m = v;
		store_object *o = store_state_get(st, STORE_KIND_ALERT, k);
		const store_alert *a = o ? store_alert_of(o) : NULL;
		if (!a || ((!m->raised || (a->notified_ms && a->notified_severity >= m->severity)) &&
			   (!m->cleared || a->cleared_notified_ms)))
			g_hash_table_iter_remove(&it);
	}
}

/* The events not notified yet, oldest first. */
static GArray *pending_events(herd_notify *n, store_state *st, int64_t now_ms)
{
	GArray *out = g_array_new(FALSE, FALSE, sizeof(event));
	g_autoptr(GPtrArray) records = store_alert_list(st);
	for (guint i = 0; i < records->len; i++) {
		const store_object *o = records->pdata[i];
		const store_alert *a = store_alert_of(o);
		const herd_notify_mark *m = g_hash_table_lookup(n->sent, o->uuid);
		if (!a->notified_ms && !(m && m->raised) && a->first_ms >= now_ms - NOTIFY_MAX_AGE_MS)
			g_array_append_val(out, ((event){ o, a, false, false, a->first_ms }));
		/* Worse since its raising was notified (and not cleared yet). */
		else if (a->notified_ms && !a->cleared_ms && a->severity > a->notified_severity &&
			 !(m && m->raised && m->severity >= a->severity) &&
			 a->last_ms >= now_ms - NOTIFY_MAX_AGE_MS)
			g_array_append_val(out, ((event){ o, a, false, true, a->last_ms }));
		/* An event (a fence, a failover) is over as it is recorded: its
		 * one message says it, no "cleared" after it. */
		if (a->cleared_ms && a->cleared_ms != a->first_ms && !a->cleared_notified_ms &&
		    !(m && m->cleared) && a->cleared_ms >= now_ms - NOTIFY_MAX_AGE_MS)
			g_array_append_val(out, ((event){ o, a, true, false, a->cleared_ms }));
	}
	g_array_sort(out, oldest_first);
	return out;
}

static void add_mark(GArray *marks, const event *e)
{
	/* An event's one message covers its end too. */
	bool cleared = e->cleared || (e->a->cleared_ms && e->a->cleared_ms == e->a->first_ms);
	for (guint i = 0; i < marks->len; i++) {
		herd_notify_mark *m = &g_array_index(marks, herd_notify_mark, i);
		if (strcmp(m->uuid, e->o->uuid) == 0) {
			m->raised |= !e->cleared;
			m->cleared |= cleared;
			m->severity = MAX(m->severity, e->a->severity);
			return;
		}
	}
	herd_notify_mark m = { g_strdup(e->o->uuid), !e->cleared, cleared, e->a->severity };
	g_array_append_val(marks, m);
}

static char *utc_time(int64_t ms)
{
	g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(ms / 1000);
	return t ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S UTC") : g_strdup("?");
}

static void describe_about(GString *s, const store_alert *a)
{
	if (a->node)
		g_string_append_printf(s, "  node %s", a->node);
	if (a->vm)
		g_string_append_printf(s, "  VM %s", a->vm);
	if (a->disk)
		g_string_append_printf(s, "  disk %s", a->disk);
}

/* The notice of @list (events of one kind, oldest first) and @dropped
 * (older events not listed, of any kind). */
static herd_notice *notice_of(herd_notify *n, const char *cluster_name, const char *kind,
			      GArray *list, GArray *dropped)
{
	herd_notice *out = g_new0(herd_notice, 1);
	out->id = n->next_id++;
	out->kind = g_strdup(kind);
	out->marks = g_array_new(FALSE, FALSE, sizeof(herd_notify_mark));
	out->dropped = dropped->len;
	for (guint i = 0; i < dropped->len; i++)
		add_mark(out->marks, &g_array_index(dropped, event, i));
	unsigned raised = 0, cleared = 0;
	GString *text = g_string_new(NULL);
	g_string_append_printf(text, "Cluster %s: %s\n\n", cluster_name,
			       list->len == 1 ? "an alert" : "alerts of one kind");
	json_t *events = json_array();
	for (guint i = 0; i < list->len; i++) {
		const event *e = &g_array_index(list, event, i);
		add_mark(out->marks, e);
		e->cleared ? cleared++ : raised++;
		g_autofree char *when = utc_time(e->at_ms);
		g_string_append_printf(text, "%s  %-8s  %s  alert %s",
				       e->cleared ? "CLEARED" : e->worse ? "WORSE  " : "RAISED ",
				       store_alert_severity_name(e->a->severity), when, e->o->name);
		describe_about(text, e->a);
		g_string_append_printf(text, "\n  %s\n\n", e->a->message);
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "alert", e->o->name, "event",
				      e->cleared ? "cleared" : e->worse ? "worse" : "raised", "kind", kind,
				      "severity", store_alert_severity_name(e->a->severity), "message",
				      e->a->message, "time_ms", (json_int_t)e->at_ms);
		if (e->a->node)
			json_object_set_new(j, "node", json_string(e->a->node));
		if (e->a->vm)
			json_object_set_new(j, "vm", json_string(e->a->vm));
		if (e->a->disk)
			json_object_set_new(j, "disk", json_string(e->a->disk));
		json_array_append_new(events, j);
	}
	if (dropped->len)
		g_string_append_printf(text,
				       "%u older notifications were dropped: more came than were sent.\n\n",
				       dropped->len);
	g_string_append(text, "'herd alert list --all' shows the alerts' history.\n");
	if (list->len == 1) {
		const event *e = &g_array_index(list, event, 0);
		out->subject = g_strdup_printf("[herd %s] %s: %s", cluster_name,
					       e->cleared ? "cleared"
							  : store_alert_severity_name(e->a->severity),
					       e->a->message);
	} else {
		out->subject = g_strdup_printf("[herd %s] %u alerts %s (%u raised, %u cleared)",
					       cluster_name, list->len, kind, raised, cleared);
	}
	out->text = g_string_free(text, FALSE);
	out->json = json_pack("{s:s,s:s,s:o,s:i}", "cluster", cluster_name, "kind", kind, "events",
			      events, "dropped", (int)dropped->len);
	return out;
}

static int64_t last_sent_of(herd_notify *n, const char *kind)
{
	int64_t *t = g_hash_table_lookup(n->last_sent, kind);
	return t ? *t : INT64_MIN / 2;
}

const herd_notice *herd_notify_next(herd_notify *n, store_state *st, const char *cluster_name,
				    int64_t now_ms, int64_t *wake_ms)
{
	*wake_ms = 0;
	if (n->current) {
		if (now_ms >= n->retry_at_ms)
			return n->current;
		*wake_ms = n->retry_at_ms - now_ms;
		return NULL;
	}
	prune_sent(n, st);
	const int64_t interval_ms = store_settings_of(st)->notify_interval_s * 1000;
	g_autoptr(GArray) all = pending_events(n, st, now_ms);
	guint ndrop = all->len > NOTIFY_QUEUE_MAX ? all->len - NOTIFY_QUEUE_MAX : 0;
	/* The oldest pending event of each kind decides when the kind is due. */
	const char *due_kind = NULL;
	int64_t due_first = INT64_MAX, wake_at = INT64_MAX;
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	for (guint i = ndrop; i < all->len; i++) {
		const event *e = &g_array_index(all, event, i);
		if (g_hash_table_contains(seen, e->a->kind))
			continue;
		g_hash_table_add(seen, (gpointer)e->a->kind);
		int64_t at = MAX(e->at_ms + NOTIFY_GATHER_MS,
				 last_sent_of(n, e->a->kind) + interval_ms);
		if (at <= now_ms) {
			if (e->at_ms < due_first) {
				due_first = e->at_ms;
				due_kind = e->a->kind;
			}
		} else {
			wake_at = MIN(wake_at, at);
		}
	}
	if (!due_kind) {
		if (wake_at != INT64_MAX)
			*wake_ms = wake_at - now_ms;
		return NULL;
	}
	/* Listed: the newest NOTIFY_LIST_MAX of the kind; dropped: the oldest
	 * beyond the queue's bound and the kind's older ones. */
	g_autoptr(GArray) list = g_array_new(FALSE, FALSE, sizeof(event));
	g_autoptr(GArray) dropped = g_array_new(FALSE, FALSE, sizeof(event));
	for (guint i = 0; i < ndrop; i++)
		g_array_append_val(dropped, g_array_index(all, event, i));
	guint of_kind = 0;
	for (guint i = ndrop; i < all->len; i++)
		of_kind += strcmp(g_array_index(all, event, i).a->kind, due_kind) == 0;
	guint skip = of_kind > NOTIFY_LIST_MAX ? of_kind - NOTIFY_LIST_MAX : 0;
	for (guint i = ndrop; i < all->len; i++) {
		const event *e = &g_array_index(all, event, i);
		if (strcmp(e->a->kind, due_kind) != 0)
			continue;
		if (skip) {
			skip--;
			g_array_append_val(dropped, *e);
		} else {
			g_array_append_val(list, *e);
		}
	}
	n->current = notice_of(n, cluster_name, due_kind, list, dropped);
	n->attempts = 0;
	return n->current;
}

herd_notice *herd_notify_current(herd_notify *n)
{
	return n->current;
}

json_t *herd_notify_delivered(herd_notify *n, store_state *st, int64_t now_ms)
{
	if (!n->current)
		return NULL;
	int64_t *t = g_new(int64_t, 1);
	*t = now_ms;
	g_hash_table_replace(n->last_sent, g_strdup(n->current->kind), t);
	json_t *ops = json_array();
	GArray *marks = n->current->marks;
	for (guint i = 0; i < marks->len; i++) {
		const herd_notify_mark *m = &g_array_index(marks, herd_notify_mark, i);
		herd_notify_mark *kept = g_hash_table_lookup(n->sent, m->uuid);
		if (!kept) {
			kept = g_new0(herd_notify_mark, 1);
			kept->uuid = g_strdup(m->uuid);
			g_hash_table_insert(n->sent, kept->uuid, kept);
		}
		kept->raised |= m->raised;
		kept->cleared |= m->cleared;
		kept->severity = MAX(kept->severity, m->severity);
		store_object *o = store_state_get(st, STORE_KIND_ALERT, m->uuid);
		if (o)
			json_array_append_new(ops, store_alert_cmd_notified(o, m->raised, m->severity, m->cleared,
								      now_ms));
	}
	g_clear_pointer(&n->current, herd_notice_free);
	n->attempts = 0;
	if (!json_array_size(ops)) {
		json_decref(ops);
		return NULL;
	}
	return store_cmd_batch(ops);
}

void herd_notify_failed(herd_notify *n, int64_t now_ms)
{
	int64_t backoff = NOTIFY_RETRY_FIRST_MS;
	for (unsigned i = 0; i < n->attempts && backoff < NOTIFY_RETRY_MAX_MS; i++)
		backoff *= 2;
	n->attempts++;
	n->retry_at_ms = now_ms + MIN(backoff, NOTIFY_RETRY_MAX_MS);
}

herd_notice *herd_notice_test(const char *cluster_name, const char *node_name, int64_t now_ms)
{
	herd_notice *out = g_new0(herd_notice, 1);
	out->kind = g_strdup("test");
	out->marks = g_array_new(FALSE, FALSE, sizeof(herd_notify_mark));
	g_autofree char *when = utc_time(now_ms);
	out->subject = g_strdup_printf("[herd %s] test message from node %s", cluster_name, node_name);
	out->text = g_strdup_printf("Cluster %s: this test message was sent by node %s at %s\n"
				    "(herd notify test). Alerts reach you the same way.\n",
				    cluster_name, node_name, when);
	out->json = json_pack("{s:s,s:s,s:s,s:I,s:[]}", "cluster", cluster_name, "kind", "test",
			      "node", node_name, "time_ms", (json_int_t)now_ms, "events");
	return out;
}

static bool is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

char *herd_notice_mail(const herd_notice *n, const char *from, char *const *to, int64_t now_ms)
{
	GString *m = g_string_new(NULL);
	g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(now_ms / 1000);
	g_autofree char *date = g_date_time_format(t, "%a, %d %b %Y %H:%M:%S +0000");
	g_string_append_printf(m, "Date: %s\r\nFrom: <%s>\r\nTo: ", date, from);
	for (char *const *r = to; *r; r++)
		g_string_append_printf(m, "%s<%s>", r == to ? "" : ", ", *r);
	g_string_append(m, "\r\n");
	const char *at = strchr(from, '@');
	g_string_append_printf(m, "Message-ID: <herd.%" G_GINT64_FORMAT ".%" G_GUINT64_FORMAT "%s>\r\n",
			       now_ms, n->id, at ? at : "@herd");
	if (is_ascii(n->subject)) {
		g_string_append_printf(m, "Subject: %s\r\n", n->subject);
	} else {
		/* RFC 2047 words of at most 45 bytes of text each, cut between
		 * UTF-8 characters. */
		g_string_append(m, "Subject:");
		const char *p = n->subject;
		while (*p) {
			const char *end = p;
			while (*end && end - p < 45) {
				const char *next = g_utf8_next_char(end);
				if (next - p > 45)
					break;
				end = next;
			}
			g_autofree char *word = g_base64_encode((const guchar *)p, (gsize)(end - p));
			g_string_append_printf(m, " =?UTF-8?B?%s?=\r\n", word);
			p = end;
		}
	}
	g_string_append(m, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
			   "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n");
	for (const char *p = n->text; *p; p++) {
		if (*p == '\n')
			g_string_append(m, "\r\n");
		else if (*p != '\r')
			g_string_append_c(m, *p);
	}
	return g_string_free(m, FALSE);
}

/* Add the mail addresses of the users of @st with @role to @out. */
static void add_role_addresses(store_state *st, const char *role, GPtrArray *out)
{
	g_autoptr(GPtrArray) users = store_state_list(st, STORE_KIND_USER);
	for (guint i = 0; i < users->len; i++) {
		const char *email = store_user_of(users->pdata[i])->email;
		if (*email && store_user_has_role(st, users->pdata[i], role) &&
		    !g_ptr_array_find_with_equal_func(out, email, g_str_equal, NULL))
			g_ptr_array_add(out, g_strdup(email));
	}
}

char **herd_notify_recipients(store_state *st, const char *notify_to, GError **error)
{
	g_auto(GStrv) extra = NULL;
	if (notify_to && *notify_to) {
		extra = cluster_setting_addresses("notify_to", notify_to, error);
		if (!extra)
			return NULL;
	}
	GPtrArray *out = g_ptr_array_new();
	add_role_addresses(st, "monitor", out);
	if (!out->len)
		add_role_addresses(st, "admin", out);
	for (char **e = extra; e && *e; e++)
		if (!g_ptr_array_find_with_equal_func(out, *e, g_str_equal, NULL))
			g_ptr_array_add(out, g_strdup(*e));
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}
