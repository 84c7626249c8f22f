#include "ha/links.h"

#include <glib.h>
#include <stdbool.h>
#include <string.h>

#define MAX_LINKS 8

typedef struct {
	const char *a, *b;              /* a < b */
	bool known[MAX_LINKS];          /* reported by either */
	bool down[MAX_LINKS];           /* not connected as one of them sees it */
	bool seen_down[2][MAX_LINKS];   /* [0]: by a, [1]: by b */
} link_pair;

static void take_view(link_pair *p, int side, json_t *links)
{
	size_t i;
	json_t *l;
	json_array_foreach(links, i, l) {
		json_t *id = json_object_get(l, "link");
		if (!json_is_integer(id) || json_integer_value(id) < 0 ||
		    json_integer_value(id) >= MAX_LINKS)
			continue;
		int k = (int)json_integer_value(id);
		p->known[k] = true;
		if (!json_is_true(json_object_get(l, "connected"))) {
			p->down[k] = true;
			p->seen_down[side][k] = true;
		}
	}
}

/* "link 1", "links 0 and 2", "links 0, 1 and 2" of the links in @set. */
static char *links_text(const bool set[MAX_LINKS])
{
	int ids[MAX_LINKS], n = 0;
	for (int k = 0; k < MAX_LINKS; k++)
		if (set[k])
			ids[n++] = k;
	GString *s = g_string_new(n == 1 ? "link" : "links");
	for (int i = 0; i < n; i++)
		g_string_append_printf(s, "%s%d", i == 0 ? " " : i == n - 1 ? " and " : ", ", ids[i]);
	return g_string_free(s, FALSE);
}

static json_t *pair_alert(const link_pair *p)
{
	bool up[MAX_LINKS] = { false };
	int n_up = 0, n_down = 0;
	bool by_a = false, by_b = false;
	json_t *down = json_array();
	for (int k = 0; k < MAX_LINKS; k++) {
		if (!p->known[k])
			continue;
		if (p->down[k]) {
			n_down++;
			json_array_append_new(down, json_integer(k));
		} else {
			up[k] = true;
			n_up++;
		}
		by_a |= p->seen_down[0][k];
		by_b |= p->seen_down[1][k];
	}
	if (!n_down) {
		json_decref(down);
		return NULL;
	}
	g_autofree char *down_text = links_text(p->down);
	g_autofree char *up_text = links_text(up);
	g_autofree char *seen = by_a && by_b ? g_strdup_printf("%s and %s see", p->a, p->b)
					     : g_strdup_printf("%s sees", by_a ? p->a : p->b);
	const char *kind, *severity;
	g_autofree char *message = NULL;
	if (n_up == 0) {
		kind = "links_down";
		severity = "critical";
		message = g_strdup_printf("No heartbeat link connects nodes %s and %s (%s down, as %s "
					  "it): they lose each other at the next membership change, "
					  "and one of them is fenced.",
					  p->a, p->b, down_text, seen);
	} else if (n_up == 1) {
		kind = "link_last";
		severity = "warning";
		message = g_strdup_printf("Only %s is left between nodes %s and %s (%s down, as %s "
					  "it): the heartbeat has no spare; one more failure there "
					  "and one of the two is fenced.",
					  up_text, p->a, p->b, down_text, seen);
	} else {
		kind = "link_down";
		severity = "warning";
		message = g_strdup_printf("Heartbeat %s between nodes %s and %s %s down, as %s it; "
					  "the heartbeat goes on over %s.",
					  down_text, p->a, p->b, n_down == 1 ? "is" : "are", seen, up_text);
	}
	return json_pack("{s:s,s:s,s:s,s:[s,s],s:o,s:s}", "kind", kind, "severity", severity,
			 "node", p->a, "nodes", p->a, p->b, "links", down, "message", message);
}

static gint by_pair(gconstpointer x, gconstpointer y)
{
	const link_pair *a = *(link_pair *const *)x, *b = *(link_pair *const *)y;
	int c = strcmp(a->a, b->a);
	return c ? c : strcmp(a->b, b->b);
}

json_t *herd_link_alerts(json_t *views)
{
	g_autoptr(GHashTable) pairs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	const char *node, *peer;
	json_t *view, *links;
	json_object_foreach(views, node, view) {
		json_object_foreach(view, peer, links) {
			int c = strcmp(node, peer);
			if (c == 0 || !json_is_object(json_object_get(views, peer)))
				continue;
			g_autofree char *key = c < 0 ? g_strconcat(node, "\n", peer, NULL)
						     : g_strconcat(peer, "\n", node, NULL);
			link_pair *p = g_hash_table_lookup(pairs, key);
			if (!p) {
				p = g_new0(link_pair, 1);
				p->a = c < 0 ? node : peer;
				p->b = c < 0 ? peer : node;
				g_hash_table_insert(pairs, g_steal_pointer(&key), p);
			}
			take_view(p, c < 0 ? 0 : 1, links);
		}
	}
	g_autoptr(GPtrArray) sorted = g_ptr_array_new();
	GHashTableIter it;
	gpointer p;
	g_hash_table_iter_init(&it, pairs);
	while (g_hash_table_iter_next(&it, NULL, &p))
		g_ptr_array_add(sorted, p);
	g_ptr_array_sort(sorted, by_pair);
	json_t *out = json_array();
	for (guint i = 0; i < sorted->len; i++) {
		json_t *a = pair_alert(sorted->pdata[i]);
		if (a)
			json_array_append_new(out, a);
	}
	return out;
}
