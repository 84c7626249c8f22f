#include "ha/fencer.h"

#include "common/log.h"
#include "store/fence_device.h"

#include <string.h>

herd_fence_target *herd_fence_target_new(const store_object *dev, const char *plug)
{
	const store_fence_device *d = store_fence_device_of(dev);
	herd_fence_target *t = g_new0(herd_fence_target, 1);
	t->device = g_strdup(dev->name);
	t->agent = g_strdup(d->agent);
	t->params = g_new0(char *, d->n_params + 1);
	for (size_t i = 0; i < d->n_params; i++)
		t->params[i] = g_strdup_printf("%s=%s", d->params[i].key, d->params[i].value);
	t->plug = g_strdup(plug);
	t->level = d->level;
	return t;
}

herd_fence_target *herd_fence_target_copy(const herd_fence_target *t)
{
	herd_fence_target *c = g_new0(herd_fence_target, 1);
	*c = (herd_fence_target){ g_strdup(t->device), g_strdup(t->agent), g_strdupv(t->params),
				  g_strdup(t->plug), t->level };
	return c;
}

void herd_fence_target_free(herd_fence_target *t)
{
	if (!t)
		return;
	g_free(t->device);
	g_free(t->agent);
	g_strfreev(t->params);
	g_free(t->plug);
	g_free(t);
}

static gint by_level(gconstpointer a, gconstpointer b)
{
	const herd_fence_target *x = *(herd_fence_target *const *)a, *y = *(herd_fence_target *const *)b;
	if (x->level != y->level)
		return x->level < y->level ? -1 : 1;
	return strcmp(x->device, y->device);
}

GPtrArray *herd_fence_targets(store_state *st, const char *node)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)herd_fence_target_free);
	g_autoptr(GPtrArray) devices = store_state_list(st, STORE_KIND_FENCE_DEVICE);
	for (guint i = 0; i < devices->len; i++) {
		const char *plug = store_fence_device_plug(store_fence_device_of(devices->pdata[i]), node);
		if (plug)
			g_ptr_array_add(out, herd_fence_target_new(devices->pdata[i], plug));
	}
	g_ptr_array_sort(out, by_level);
	return out;
}

static char *last_line(const char *s)
{
	g_autofree char *copy = g_strstrip(g_strdup(s ? s : ""));
	char *nl = strrchr(copy, '\n');
	return g_strdup(nl ? nl + 1 : copy);
}

/*
 * fencing.py, on which Debian's agents are built, prints "Success: Powered
 * OFF" only after its status read shows the plug off (or after the device's
 * synchronous "off" call returned success), and "Success: Already OFF" after
 * a status read that showed it off.
 */
bool herd_fence_off_verified(const char *out)
{
	g_autofree char *line = last_line(out);
	return strcmp(line, "Success: Powered OFF") == 0 || strcmp(line, "Success: Already OFF") == 0;
}

GHashTable *herd_fence_parse_list(const char *out)
{
	GHashTable *plugs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_auto(GStrv) lines = g_strsplit(out ? out : "", "\n", -1);
	for (char **l = lines; *l; l++) {
		/* fencing.py's answers for a device without plugs (a BMC: "N/A")
		 * and for an agent that cannot list ("NOTICE: List option is not
		 * working on this device yet"): no list, not a list of one. */
		g_autofree char *line = g_strstrip(g_strdup(*l));
		if (strcmp(line, "N/A") == 0 || g_str_has_prefix(line, "NOTICE:"))
			continue;
		char *comma = strchr(line, ',');
		g_autofree char *plug = g_strstrip(comma ? g_strndup(line, (gsize)(comma - line)) : g_strdup(line));
		if (*plug)
			g_hash_table_add(plugs, g_steal_pointer(&plug));
	}
	if (g_hash_table_size(plugs) == 0) {
		g_hash_table_destroy(plugs);
		return NULL;
	}
	return plugs;
}

/* ------------------------------------------------------------------ */

/* The runs of one device: "off" and meanwhile "list", then maybe "status". */
enum { RUN_OFF, RUN_LIST, RUN_STATUS, RUNS };

struct herd_fencer {
	char *node;
	herd_fencer_io io;
	gpointer user;
	GPtrArray *targets;   /* sorted by level */
	guint next;           /* index of the next target to run */
	guint current;        /* index of the target under way */
	unsigned level;       /* level in progress; 0 between levels */
	bool level_ok;
	GString *devices;     /* devices that switched it off in this level */
	GString *errors;
	double agent_seconds;
	bool finished;
	/* the target under way */
	unsigned pending;
	bool off;             /* switched off and verified off */
	bool unlisted;        /* the device lists its plugs, not this one */
	char *error;
};

static void step(herd_fencer *f);

static void finish(herd_fencer *f, bool ok, const char *detail)
{
	f->finished = true;
	f->io.done(f->user, ok, f->devices->str, detail, f->agent_seconds);
}

static const herd_fence_target *current(herd_fencer *f)
{
	return f->targets->pdata[f->current];
}

/* Ask for run @kind of the current target (f->pending counts it already:
 * its result may come back before io.run() returns). */
static void run(herd_fencer *f, unsigned kind)
{
	static const char *const actions[RUNS] = { "off", "list", "status" };
	f->io.run(f->user, f->current * RUNS + kind, current(f), actions[kind]);
}

/* Every run of the current target is back: count it, go on. */
static void target_done(herd_fencer *f)
{
	const herd_fence_target *t = current(f);
	if (f->off && !f->unlisted) {
		g_string_append_printf(f->devices, "%s%s", f->devices->len ? ", " : "", t->device);
	} else {
		f->level_ok = false;
		g_autofree char *why = f->error ? g_strdup(f->error)
			: g_strdup_printf("%s: plug %s is not an outlet of the device; its power state means nothing",
					  t->device, t->plug);
		g_string_append_printf(f->errors, "%s%s", f->errors->len ? "; " : "", why);
	}
	g_clear_pointer(&f->error, g_free);
	step(f);
}

void herd_fencer_result(herd_fencer *f, unsigned id, bool ok, const char *detail, double secs)
{
	unsigned kind = id % RUNS;
	if (f->finished || id / RUNS != f->current || f->pending == 0)
		return; /* not a run of the target under way */
	f->pending--;
	switch (kind) {
	case RUN_OFF:
		f->agent_seconds += secs;
		if (!ok) {
			f->error = g_strdup(detail);
		} else if (herd_fence_off_verified(detail)) {
			f->off = true;
		} else {
			/* Verified by asking: a second agent run costs a
			 * fencing.py agent about as long as the "off", and the
			 * node's VMs wait for it. */
			f->pending++;
			run(f, RUN_STATUS);
			return;
		}
		break;
	case RUN_STATUS:
		f->agent_seconds += secs;
		f->off = ok && g_strcmp0(detail, "off") == 0;
		if (!f->off)
			f->error = ok ? g_strdup_printf("%s: switched off, but reports the outlet still on",
							current(f)->device)
				      : g_strdup(detail);
		break;
	case RUN_LIST: {
		g_autoptr(GHashTable) plugs = ok ? herd_fence_parse_list(detail) : NULL;
		f->unlisted = plugs && !g_hash_table_contains(plugs, current(f)->plug);
		break;
	}
	}
	if (f->pending == 0)
		target_done(f);
}

static void step(herd_fencer *f)
{
	/* The level just run (all its devices tried) decides first. */
	bool level_done = f->next >= f->targets->len ||
			  ((herd_fence_target *)f->targets->pdata[f->next])->level != f->level;
	if (f->level && level_done) {
		if (f->level_ok) {
			g_autofree char *detail = g_strdup_printf("switched off and verified off by %s",
								  f->devices->str);
			finish(f, true, detail);
			return;
		}
		g_string_set_size(f->devices, 0);
		f->level = 0;
	}
	if (f->next >= f->targets->len) {
		finish(f, false, f->errors->len ? f->errors->str : "no fence device covers the node");
		return;
	}
	f->current = f->next++;
	const herd_fence_target *t = current(f);
	if (!f->level) {
		f->level = t->level;
		f->level_ok = true;
	}
	log_info("fencing %s: %s (%s, plug %s, level %u)", f->node, t->device, t->agent, t->plug,
		 t->level);
	f->off = f->unlisted = false;
	unsigned target = f->current;
	f->pending = 2;
	run(f, RUN_OFF);
	if (f->current == target && !f->finished)
		run(f, RUN_LIST);
}

herd_fencer *herd_fencer_new(const char *node, GPtrArray *targets, const herd_fencer_io *io,
			     gpointer user)
{
	herd_fencer *f = g_new0(herd_fencer, 1);
	f->node = g_strdup(node);
	f->io = *io;
	f->user = user;
	f->targets = targets;
	g_ptr_array_sort(f->targets, by_level);
	f->devices = g_string_new(NULL);
	f->errors = g_string_new(NULL);
	return f;
}

void herd_fencer_begin(herd_fencer *f)
{
	step(f);
}

void herd_fencer_free(herd_fencer *f)
{
	if (!f)
		return;
	g_ptr_array_free(f->targets, TRUE);
	g_string_free(f->devices, TRUE);
	g_string_free(f->errors, TRUE);
	g_free(f->error);
	g_free(f->node);
	g_free(f);
}

bool herd_fencer_finished(const herd_fencer *f)
{
	return f->finished;
}

const char *herd_fencer_node(const herd_fencer *f)
{
	return f->node;
}
