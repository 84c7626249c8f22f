#include "simbus.h"

#include "common/log.h"

#include <stdio.h>
#include <string.h>

static unsigned rnd(simbus *b, unsigned n)
{
	return n ? (unsigned)g_rand_int_range(b->rng, 0, (gint32)n) : 0;
}

static void msg_free(simbus_msg *m)
{
	if (m->bytes)
		g_bytes_unref(m->bytes);
	g_free(m);
}

static void group_free(simbus_group *g)
{
	g_ptr_array_unref(g->members);
	g_queue_free_full(g->inflight, (GDestroyNotify)msg_free);
	g_free(g);
}

void simbus_init(simbus *b, GRand *rng, gpointer user)
{
	b->rng = rng;
	b->groups = g_ptr_array_new();
	b->cfg_counter = 0;
	b->user = user;
}

void simbus_clear(simbus *b)
{
	for (guint k = 0; k < b->groups->len; k++)
		group_free(b->groups->pdata[k]);
	g_ptr_array_unref(b->groups);
	b->groups = NULL;
}

bool simbus_send(simbus_member *m, const void *msg, size_t len)
{
	if (!m->grp)
		return false;
	simbus_msg *s = g_new0(simbus_msg, 1);
	s->sender = m->id;
	s->bytes = g_bytes_new(msg, len);
	g_queue_push_tail(m->grp->inflight, s);
	return true;
}

void simbus_recompute(simbus *b, simbus_member **up, unsigned n)
{
	GPtrArray *next = g_ptr_array_new();
	for (unsigned i = 0; i < n; i++) {
		simbus_group *g = NULL;
		for (guint k = 0; k < next->len && !g; k++) {
			simbus_group *c = next->pdata[k];
			if (((simbus_member *)c->members->pdata[0])->partition == up[i]->partition)
				g = c;
		}
		if (!g) {
			g = g_new0(simbus_group, 1);
			g->members = g_ptr_array_new();
			g->inflight = g_queue_new();
			g_ptr_array_add(next, g);
		}
		g_ptr_array_add(g->members, up[i]);
	}
	/* A new configuration equal to an old one is that one, unchanged. */
	for (guint k = 0; k < next->len; k++) {
		simbus_group *g = next->pdata[k];
		for (guint o = 0; o < b->groups->len; o++) {
			simbus_group *old = b->groups->pdata[o];
			if (!old || old->members->len != g->members->len)
				continue;
			bool same = true;
			for (guint i = 0; i < g->members->len && same; i++)
				same = old->members->pdata[i] == g->members->pdata[i];
			if (same) {
				group_free(g);
				next->pdata[k] = old;
				b->groups->pdata[o] = NULL;
				break;
			}
		}
	}
	/* Old configurations that ended: those moving on together into a new
	 * configuration deliver the same prefix of the in-flight messages. */
	for (guint o = 0; o < b->groups->len; o++) {
		simbus_group *old = b->groups->pdata[o];
		if (!old)
			continue;
		for (guint k = 0; k < next->len; k++) {
			simbus_group *g = next->pdata[k];
			GPtrArray *together = g_ptr_array_new();
			for (guint i = 0; i < g->members->len; i++) {
				simbus_member *m = g->members->pdata[i];
				if (m->grp == old)
					g_ptr_array_add(together, m);
			}
			if (together->len) {
				unsigned prefix = rnd(b, g_queue_get_length(old->inflight) + 1);
				for (unsigned j = 0; j < prefix; j++) {
					simbus_msg *msg = g_queue_peek_nth(old->inflight, j);
					for (guint i = 0; i < together->len; i++)
						b->deliver(together->pdata[i], msg, b->user);
				}
			}
			g_ptr_array_unref(together);
		}
		/* Whoever is not up is in no configuration now. */
		for (guint i = 0; i < old->members->len; i++) {
			simbus_member *m = old->members->pdata[i];
			bool is_up = false;
			for (unsigned j = 0; j < n && !is_up; j++)
				is_up = up[j] == m;
			if (!is_up && m->grp == old)
				m->grp = NULL;
		}
		group_free(old);
	}
	g_ptr_array_set_size(b->groups, 0);
	for (guint k = 0; k < next->len; k++) {
		simbus_group *g = next->pdata[k];
		g_ptr_array_add(b->groups, g);
		bool changed = false;
		for (guint i = 0; i < g->members->len; i++)
			changed |= ((simbus_member *)g->members->pdata[i])->grp != g;
		if (!changed)
			continue;
		simbus_msg *c = g_new0(simbus_msg, 1);
		g_assert_cmpuint(g->members->len, <=, SIMBUS_MAX_MEMBERS);
		for (guint i = 0; i < g->members->len; i++)
			c->members[i] = ((simbus_member *)g->members->pdata[i])->id;
		c->n_members = g->members->len;
		c->cfg_id = g->id = ++b->cfg_counter;
		g_queue_push_head(g->inflight, c);
		for (guint i = 0; i < g->members->len; i++)
			((simbus_member *)g->members->pdata[i])->grp = g;
		if (b->formed)
			b->formed(g, b->user);
	}
	g_ptr_array_unref(next);
}

static bool busy(simbus *b, guint k)
{
	return !g_queue_is_empty(((simbus_group *)b->groups->pdata[k])->inflight);
}

simbus_group *simbus_busy_group(simbus *b)
{
	/* One draw among the busy ones (called once per delivery: no allocation). */
	unsigned n = 0;
	for (guint k = 0; k < b->groups->len; k++)
		n += busy(b, k);
	if (n == 0)
		return NULL;
	unsigned pick = rnd(b, n);
	for (guint k = 0; k < b->groups->len; k++)
		if (busy(b, k) && pick-- == 0)
			return b->groups->pdata[k];
	return NULL;
}

void simbus_deliver_next(simbus *b, simbus_group *g)
{
	simbus_msg *m = g_queue_pop_head(g->inflight);
	if (!m)
		return;
	for (guint i = 0; i < g->members->len; i++)
		b->deliver(g->members->pdata[i], m, b->user);
	msg_free(m);
}

bool simbus_quiet(simbus *b)
{
	for (guint k = 0; k < b->groups->len; k++)
		if (!g_queue_is_empty(((simbus_group *)b->groups->pdata[k])->inflight))
			return false;
	return true;
}

bool sim_print_each = true;

int sim_main(int argc, char **argv, const char *name, const char *what,
	     int (*run)(guint64 seed, unsigned steps, bool verbose), int verbose_level)
{
	gint64 seed = -1, first = 1;
	gint seeds = 20, steps = 3000;
	gboolean verbose = FALSE;
	GOptionEntry entries[] = {
		{ "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Run only this seed", "N" },
		{ "seeds", 'n', 0, G_OPTION_ARG_INT, &seeds, "Run N seeds (default 20)", "N" },
		{ "first", 0, 0, G_OPTION_ARG_INT64, &first, "The first of them (default 1)", "S" },
		{ "steps", 0, 0, G_OPTION_ARG_INT, &steps, "Steps per seed (default 3000)", "N" },
		{ "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Trace every event", NULL },
		{ NULL },
	};
	g_autofree char *param = g_strdup_printf("- %s", what);
	g_autoptr(GOptionContext) ctx = g_option_context_new(param);
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_autoptr(GError) err = NULL;
	if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
		fprintf(stderr, "%s: %s\n", name, err->message);
		return 2;
	}
	if (steps < 1 || seeds < 1 || first < 0) {
		fprintf(stderr, "%s: --steps and --seeds must be at least 1, --first at least 0\n", name);
		return 2;
	}
	herd_log_init(verbose ? (herd_log_level)verbose_level : HERD_LOG_ERROR + 1, false);
	if (verbose)
		setvbuf(stdout, NULL, _IONBF, 0);
	if (seed >= 0)
		return run((guint64)seed, (unsigned)steps, verbose);
	sim_print_each = seeds <= 100;
	gint64 t0 = g_get_monotonic_time();
	for (gint i = 0; i < seeds; i++)
		run((guint64)(first + i), (unsigned)steps, verbose);
	double secs = (double)(g_get_monotonic_time() - t0) / 1e6;
	printf("%s: seeds %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT " (%d), %d steps each: 0 invariant violations, %.1f s (%.0f seeds/s)\n",
	       name, first, first + seeds - 1, seeds, steps, secs, seeds / MAX(secs, 1e-6));
	return 0;
}
