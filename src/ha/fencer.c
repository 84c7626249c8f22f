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

/* fencing.py's "cycle" method (-m, method=cycle): the device's own power
 * cycle, for agents that have one (fence_ipmilan, fence_ilo*, fence_idrac,
 * fence_amt…); fencing.py takes its value in any case. */
static bool uses_cycle(const herd_fence_target *t)
{
	for (char **p = t->params; p && *p; p++) {
		if (!g_str_has_prefix(*p, "method="))
			continue;
		g_autofree char *v = g_strstrip(g_strdup(*p + strlen("method=")));
		if (g_ascii_strcasecmp(v, "cycle") == 0)
			return true;
	}
	return false;
}

/*
 * What "Success: Rebooted" means, from fencing.py's fence_action() (Debian's
 * fence-agents 4.12, /usr/share/fence/fencing.py), its "reboot" branch:
 *
 *  - Method onoff (the default): the power state is read first
 *    (get_multi_power_fn); if it is not "off", the plug is switched off with
 *    set_multi_power_fn(), the same call as for action=off, and if that
 *    fails the agent fails ("Failed: Timed out waiting to power OFF", exit
 *    1).  For an agent with a status read, set_multi_power_fn() succeeds
 *    only once a status read shows the plug off (within power_timeout); for
 *    one without, once its synchronous off call succeeded — the guarantee
 *    behind "Success: Powered OFF" too.  Only then is the plug switched on;
 *    if that fails (a timeout or an exception), fencing.py logs "Timed out
 *    waiting to power ON" on stderr and still prints "Success: Rebooted"
 *    and exits 0 ("this should not fail as node was fenced succesfully").
 *  - Method cycle, where the agent has a reboot_cycle_fn: one power-cycle
 *    command to the device, and nothing reads the plug back as off; it
 *    prints the same "Success: Rebooted".
 *
 * So "Success: Rebooted" is a verified off only without method=cycle; for a
 * device with method=cycle herd does not ask for a reboot but for off, then
 * on (see step()).  Any other answer is no verification either: herd then
 * switches the node off (verified as for fence_action off) and on again.
 */
bool herd_fence_reboot_verified(const herd_fence_target *t, const char *out, char **not_on)
{
	*not_on = NULL;
	if (uses_cycle(t))
		return false;
	g_auto(GStrv) lines = g_strsplit(out ? out : "", "\n", 2);
	if (!lines[0] || strcmp(g_strstrip(lines[0]), "Success: Rebooted") != 0)
		return false;
	if (lines[1] && strstr(lines[1], "Timed out waiting to power ON"))
		*not_on = g_strdup(g_strstrip(lines[1]));
	return true;
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

/*
 * The runs of one device: "off" and meanwhile "list", then maybe "status";
 * with fence_action reboot, for a level of one device "reboot" in place of
 * "off" (and "off", maybe "status", after a reboot that did not verify),
 * and "on" once the whole level is verified off.
 */
enum { RUN_OFF, RUN_LIST, RUN_STATUS, RUN_REBOOT, RUN_ON, RUNS };

struct herd_fencer {
	char *node;
	store_fence_action action;
	herd_fencer_io io;
	gpointer user;
	GPtrArray *targets;   /* sorted by level */
	bool *switched_off;   /* per target: its "off" did it (reboot: switch on again) */
	guint next;           /* index of the next target to run */
	guint current;        /* index of the target under way */
	guint level_first;    /* index of the first target of the level in progress */
	unsigned level;       /* level in progress; 0 between levels */
	bool level_ok;
	bool on_phase;        /* the level is verified off; switching it on again */
	GString *devices;     /* devices that switched it off in this level */
	GString *errors;
	GString *not_on;      /* reboot: why devices did not switch it on again */
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

/* The level is verified off (and, for a reboot, switched on again as far
 * as it went). */
static void finish_fenced(herd_fencer *f)
{
	g_autofree char *detail = NULL;
	if (f->action == STORE_FENCE_OFF)
		detail = g_strdup_printf("switched off and verified off by %s", f->devices->str);
	else if (f->not_on->len == 0)
		detail = g_strdup_printf("rebooted by %s: switched off and verified off, then on again",
					 f->devices->str);
	else
		detail = g_strdup_printf("rebooted by %s: switched off and verified off; WARNING: not "
					 "switched on again: %s", f->devices->str, f->not_on->str);
	finish(f, true, detail);
}

static const herd_fence_target *current(herd_fencer *f)
{
	return f->targets->pdata[f->current];
}

static void add_line(GString *s, const char *text)
{
	g_string_append_printf(s, "%s%s", s->len ? "; " : "", text);
}

/* Ask for run @kind of the current target (f->pending counts it already:
 * its result may come back before io.run() returns). */
static void run(herd_fencer *f, unsigned kind)
{
	static const char *const actions[RUNS] = { "off", "list", "status", "reboot", "on" };
	f->io.run(f->user, f->current * RUNS + kind, current(f), actions[kind]);
}

/* Reboot, once the level is verified off: "on" through the next device of
 * the level that switched the node off; false when none is left. */
static bool switch_on_next(herd_fencer *f)
{
	for (guint i = f->on_phase ? f->current + 1 : f->level_first; i < f->next; i++) {
		if (!f->switched_off[i])
			continue;
		f->on_phase = true;
		f->current = i;
		f->pending = 1;
		log_info("fencing %s: switching it on again through %s (plug %s)", f->node,
			 current(f)->device, current(f)->plug);
		run(f, RUN_ON);
		return true;
	}
	return false;
}

/* Every run of the current target is back: count it, go on. */
static void target_done(herd_fencer *f)
{
	const herd_fence_target *t = current(f);
	if (f->off && !f->unlisted) {
		g_string_append_printf(f->devices, "%s%s", f->devices->len ? ", " : "", t->device);
	} else {
		f->level_ok = false;
		f->switched_off[f->current] = false;
		g_autofree char *why = f->error ? g_strdup(f->error)
			: g_strdup_printf("%s: plug %s is not an outlet of the device; its power state means nothing",
					  t->device, t->plug);
		add_line(f->errors, why);
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
	case RUN_REBOOT: {
		f->agent_seconds += secs;
		g_autofree char *not_on = NULL;
		if (!ok) {
			f->error = g_strdup(detail);
		} else if (herd_fence_reboot_verified(current(f), detail, &not_on)) {
			f->off = true;
			if (not_on) {
				g_autofree char *why = g_strdup_printf("%s: %s", current(f)->device, not_on);
				add_line(f->not_on, why);
			}
		} else {
			/* Not verified (another agent, or method=cycle): off,
			 * verified as for fence_action off, then on again. */
			log_info("fencing %s: %s did not verify off in its reboot (%s): off, then on", f->node,
				 current(f)->device, detail);
			f->pending++;
			run(f, RUN_OFF);
			return;
		}
		break;
	}
	case RUN_OFF:
		f->agent_seconds += secs;
		if (!ok) {
			f->error = g_strdup(detail);
		} else if (herd_fence_off_verified(detail)) {
			f->off = f->switched_off[f->current] = true;
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
		f->off = f->switched_off[f->current] = ok && g_strcmp0(detail, "off") == 0;
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
	case RUN_ON:
		/* The node was off: fenced, whether it comes on again or not. */
		f->agent_seconds += secs;
		if (!ok)
			add_line(f->not_on, detail);
		if (!switch_on_next(f))
			finish_fenced(f);
		return;
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
			if (f->action == STORE_FENCE_OFF || !switch_on_next(f))
				finish_fenced(f);
			return;
		}
		/* As Pacemaker: a device of a failed level that did switch
		 * the node off is not switched on again; the next level
		 * decides. */
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
		f->level_first = f->current;
		f->level_ok = true;
	}
	/* A level of one device reboots through the agent, unless its
	 * reboot would not verify off (herd_fence_reboot_verified()). */
	bool alone = f->current == f->level_first &&
		     (f->next >= f->targets->len ||
		      ((herd_fence_target *)f->targets->pdata[f->next])->level != f->level);
	unsigned kind = f->action == STORE_FENCE_REBOOT && alone && !uses_cycle(t) ? RUN_REBOOT : RUN_OFF;
	log_info("fencing %s: %s through %s (%s, plug %s, level %u)", f->node,
		 kind == RUN_REBOOT ? "reboot" : "off", t->device, t->agent, t->plug, t->level);
	f->off = f->unlisted = false;
	unsigned target = f->current;
	f->pending = 2;
	run(f, kind);
	if (f->current == target && !f->finished)
		run(f, RUN_LIST);
}

herd_fencer *herd_fencer_new(const char *node, GPtrArray *targets, store_fence_action action,
			     const herd_fencer_io *io, gpointer user)
{
	herd_fencer *f = g_new0(herd_fencer, 1);
	f->node = g_strdup(node);
	f->action = action;
	f->io = *io;
	f->user = user;
	f->targets = targets;
	g_ptr_array_sort(f->targets, by_level);
	f->devices = g_string_new(NULL);
	f->errors = g_string_new(NULL);
	f->not_on = g_string_new(NULL);
	f->switched_off = g_new0(bool, MAX(targets->len, 1));
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
	g_string_free(f->not_on, TRUE);
	g_free(f->switched_off);
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
