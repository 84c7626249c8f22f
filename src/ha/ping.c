#include "ha/ping.h"

#include <string.h>

typedef struct {
	char *address;
	bool reached;            /* the verdict */
	bool last;               /* what the last round said */
	int64_t last_since_ms;   /* ... since when rounds have said it */
} target;

struct herd_ping {
	GPtrArray *targets;      /* target* */
	char **addresses;        /* the same, NULL-terminated, for herd_ping_targets() */
};

static void target_free(gpointer t)
{
	g_free(((target *)t)->address);
	g_free(t);
}

herd_ping *herd_ping_new(void)
{
	herd_ping *p = g_new0(herd_ping, 1);
	p->targets = g_ptr_array_new_with_free_func(target_free);
	p->addresses = g_new0(char *, 1);
	return p;
}

void herd_ping_free(herd_ping *p)
{
	if (!p)
		return;
	g_ptr_array_unref(p->targets);
	g_free(p->addresses);
	g_free(p);
}

bool herd_ping_configure(herd_ping *p, const char *const *addresses, size_t n, int64_t now_ms)
{
	bool same = n == p->targets->len;
	for (size_t i = 0; same && i < n; i++)
		same = strcmp(((target *)p->targets->pdata[i])->address, addresses[i]) == 0;
	if (same)
		return false;
	GPtrArray *next = g_ptr_array_new_with_free_func(target_free);
	for (size_t i = 0; i < n; i++) {
		target *t = NULL;
		for (guint k = 0; k < p->targets->len && !t; k++) {
			target *old = p->targets->pdata[k];
			if (old->address && strcmp(old->address, addresses[i]) == 0)
				t = g_ptr_array_steal_index(p->targets, k);
		}
		if (!t) {
			t = g_new0(target, 1);
			t->address = g_strdup(addresses[i]);
			t->reached = t->last = true;
			t->last_since_ms = now_ms;
		}
		g_ptr_array_add(next, t);
	}
	g_ptr_array_unref(p->targets);
	p->targets = next;
	g_free(p->addresses);
	p->addresses = g_new0(char *, n + 1);
	for (size_t i = 0; i < n; i++)
		p->addresses[i] = ((target *)next->pdata[i])->address;
	return true;
}

const char *const *herd_ping_targets(herd_ping *p, size_t *n)
{
	*n = p->targets->len;
	return (const char *const *)p->addresses;
}

bool herd_ping_round(herd_ping *p, const bool *answered, int64_t now_ms, int64_t dampen_ms)
{
	bool changed = false;
	for (guint i = 0; i < p->targets->len; i++) {
		target *t = p->targets->pdata[i];
		if (answered[i] != t->last) {
			t->last = answered[i];
			t->last_since_ms = now_ms;
		}
		if (t->last != t->reached && now_ms - t->last_since_ms >= dampen_ms) {
			t->reached = t->last;
			changed = true;
		}
	}
	return changed;
}

bool herd_ping_reaches(herd_ping *p)
{
	for (guint i = 0; i < p->targets->len; i++)
		if (((target *)p->targets->pdata[i])->reached)
			return true;
	return p->targets->len == 0;
}

json_t *herd_ping_json(herd_ping *p)
{
	if (!p->targets->len)
		return NULL;
	json_t *targets = json_object();
	for (guint i = 0; i < p->targets->len; i++) {
		target *t = p->targets->pdata[i];
		json_object_set_new(targets, t->address, json_boolean(t->reached));
	}
	return json_pack("{s:b,s:o}", "lost", !herd_ping_reaches(p), "targets", targets);
}
