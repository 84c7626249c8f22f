/*
 * Fencing a node (the walk of src/ha/fencer.c, run by the agent runner of
 * src/ha/fence.c, as herdd does), against scripted agents
 * in a directory of their own (HERD_FENCE_AGENT_DIR): what herd runs, in
 * which order, when it counts a node as off, and what it says when not.
 *
 * Each fake agent is a shell script that appends its action to a log and
 * answers as its "mode" parameter says, the way fencing.py-based agents
 * answer (exit 0 / 1, and for status 0 on, 2 off).
 */
#include "ha/fence.h"

#include "common/json.h"

#include <glib/gstdio.h>
#include <jansson.h>
#include <signal.h>
#include <string.h>

static char *agent_dir;

/* The fake agent: key=value lines on stdin; actions are logged to the file
 * named by its "log" parameter. */
static const char AGENT[] =
	"#!/bin/sh\n"
	"action= plug= mode= log=\n"
	"while IFS='=' read -r k v; do\n"
	"  case $k in action) action=$v;; plug) plug=$v;; mode) mode=$v;; log) log=$v;; esac\n"
	"done\n"
	"echo \"$action $plug\" >>\"$log\"\n"
	"case $action in\n"
	"list)\n"
	"  [ \"$mode\" = nolist ] && { echo 'NOTICE: List option is not working on this device yet'; exit 0; }\n"
	"  echo '1,n1'; echo '2,n2'; echo '3,n3'; exit 0;;\n"
	"off)\n"
	"  case $mode in\n"
	"  fencingpy|nolist|noon) echo 'Success: Powered OFF'; exit 0;;\n"
	"  already) echo 'Success: Already OFF'; exit 0;;\n"
	"  quiet|stayson) echo 'done'; exit 0;;\n"
	"  broken)\n"
	"    echo '2026-12-02 09:21:24,287 ERROR: Failed: Unable to obtain correct plug status or plug is not available' >&2\n"
	"    echo '2026-12-02 09:21:24,288 ERROR: Please use '\\''-h'\\'' for usage' >&2\n"
	"    exit 1;;\n"
	"  esac;;\n"
	/* fencing.py: off (verified), then on; a failed on is logged and
	 * still "Success: Rebooted", exit 0. */
	"reboot)\n"
	"  case $mode in\n"
	"  fencingpy|nolist|already) echo 'Success: Rebooted'; exit 0;;\n"
	"  noon)\n"
	"    printf '2026-12-02 09:21:25,101 ERROR: Timed out waiting to power ON\\n\\n' >&2\n"
	"    echo 'Success: Rebooted'; exit 0;;\n"
	"  quiet|stayson) echo 'done'; exit 0;;\n"
	"  broken)\n"
	"    echo '2026-12-02 09:21:24,287 ERROR: Failed: Timed out waiting to power OFF' >&2\n"
	"    exit 1;;\n"
	"  esac;;\n"
	"on)\n"
	"  case $mode in\n"
	"  noon) echo '2026-12-02 09:21:26,001 ERROR: Failed: Timed out waiting to power ON' >&2; exit 1;;\n"
	"  *) echo 'Success: Powered ON'; exit 0;;\n"
	"  esac;;\n"
	"status)\n"
	"  case $mode in stayson) echo 'Status: ON'; exit 0;; *) echo 'Status: OFF'; exit 2;; esac;;\n"
	"esac\n"
	"exit 1\n";

typedef struct {
	GMainLoop *loop;
	bool done;
	bool ok;
	char *device;
	char *detail;
} result;

static void on_done(bool ok, const char *device, const char *detail, double agent_seconds, gpointer user)
{
	result *r = user;
	g_assert_cmpfloat(agent_seconds, >=, 0);
	r->done = true;
	r->ok = ok;
	r->device = g_strdup(device);
	r->detail = g_strdup(detail);
	g_main_loop_quit(r->loop);
}

static herd_fence_target *target(const char *device, const char *mode, const char *plug, int level,
				 const char *log)
{
	herd_fence_target *t = g_new0(herd_fence_target, 1);
	t->device = g_strdup(device);
	t->agent = g_strdup("fence_fake");
	t->params = g_new0(char *, 3);
	t->params[0] = g_strdup_printf("mode=%s", mode);
	t->params[1] = g_strdup_printf("log=%s", log);
	t->plug = g_strdup(plug);
	t->level = level;
	return t;
}

/* herdd's way: the fencer asks, the agent runner runs, the result goes back. */
typedef struct {
	herd_fencer *f;
	unsigned step;
} run_ctx;

static void on_run_done(bool ok, const char *device, const char *detail, double secs, gpointer user)
{
	run_ctx *c = user;
	herd_fencer_result(c->f, c->step, ok, detail, secs);
	g_free(c);
}

static herd_fencer *fencer_now;
/* The waiting agents the next fence() takes its agents from, or NULL. */
static herd_fence_pool *pool_now;
/* The fence_action of the next fence() (the walk's own tests: off). */
static store_fence_action fence_action = STORE_FENCE_OFF;
/* The agents' log of the last fence(), in the order they ran. */
static char *last_log;

static void fencer_run(gpointer user, unsigned step, const herd_fence_target *t, const char *action)
{
	run_ctx *c = g_new0(run_ctx, 1);
	c->f = fencer_now;
	c->step = step;
	herd_fence_agent_run(pool_now, t, action, on_run_done, c);
}

static void fencer_done(gpointer user, bool ok, const char *devices, const char *detail, double secs)
{
	on_done(ok, devices, detail, secs, user);
}

static const herd_fencer_io fencer_io = { .run = fencer_run, .done = fencer_done };

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Fence with the targets (consumed); returns the agents' log, sorted. */
static char *fence(result *r, const char *log, ...)
{
	GPtrArray *targets = g_ptr_array_new_with_free_func((GDestroyNotify)herd_fence_target_free);
	va_list ap;
	va_start(ap, log);
	for (herd_fence_target *t = va_arg(ap, herd_fence_target *); t; t = va_arg(ap, herd_fence_target *))
		g_ptr_array_add(targets, t);
	va_end(ap);
	r->loop = g_main_loop_new(NULL, FALSE);
	fencer_now = herd_fencer_new("n2", targets, fence_action, &fencer_io, r);
	herd_fencer_begin(fencer_now);
	if (!r->done)
		g_main_loop_run(r->loop);
	g_clear_pointer(&fencer_now, herd_fencer_free);
	g_main_loop_unref(r->loop);
	g_autofree char *text = NULL;
	g_clear_pointer(&last_log, g_free);
	if (!g_file_get_contents(log, &text, NULL, NULL))
		return g_strdup("");
	g_auto(GStrv) lines = g_strsplit(g_strstrip(text), "\n", -1);
	g_free(last_log);
	last_log = g_strjoinv("; ", lines);
	qsort(lines, g_strv_length(lines), sizeof(char *), by_text);
	g_unlink(log);
	return g_strjoinv("; ", lines);
}

/* In the last fence(), did every run of @first end up in the agents' log
 * before any run of @then?  (Runs of one device overlap: "list" runs
 * beside the "off".) */
static bool all_before(const char *first, const char *then)
{
	g_auto(GStrv) runs = g_strsplit(last_log ? last_log : "", "; ", -1);
	int last_first = -1, first_then = -1;
	for (int i = 0; runs[i]; i++) {
		g_auto(GStrv) words = g_strsplit(runs[i], " ", 2);
		if (strcmp(words[0], first) == 0)
			last_first = i;
		if (strcmp(words[0], then) == 0 && first_then < 0)
			first_then = i;
	}
	return last_first >= 0 && first_then > last_first;
}

static void result_clear(result *r)
{
	g_free(r->device);
	g_free(r->detail);
	memset(r, 0, sizeof(*r));
}

static char *log_path(void)
{
	return g_build_filename(agent_dir, "actions.log", NULL);
}

static void test_off_verified_by_agent(void)
{
	g_autofree char *log = log_path();
	for (int k = 0; k < 2; k++) {
		result r = { 0 };
		g_autofree char *ran = fence(&r, log, target("pdu", k ? "already" : "fencingpy", "2", 1, log), NULL);
		g_assert_true(r.ok);
		g_assert_cmpstr(r.device, ==, "pdu");
		g_assert_cmpstr(r.detail, ==, "switched off and verified off by pdu");
		/* The agent's read-back is the verification: no second run. */
		g_assert_cmpstr(ran, ==, "list 2; off 2");
		result_clear(&r);
	}
}

static void test_off_then_status(void)
{
	g_autofree char *log = log_path();
	result r = { 0 };
	g_autofree char *ran = fence(&r, log, target("pdu", "quiet", "2", 1, log), NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(ran, ==, "list 2; off 2; status 2");
	result_clear(&r);
}

static void test_still_on_next_level(void)
{
	g_autofree char *log = log_path();
	result r = { 0 };
	g_autofree char *ran = fence(&r, log, target("ipmi", "stayson", "2", 1, log),
				     target("pdu", "fencingpy", "2", 2, log), NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(r.device, ==, "pdu");
	g_assert_cmpstr(ran, ==, "list 2; list 2; off 2; off 2; status 2");
	result_clear(&r);

	/* Alone, the device that stays on fails the fence and says so. */
	g_autofree char *ran2 = fence(&r, log, target("ipmi", "stayson", "2", 1, log), NULL);
	g_assert_false(r.ok);
	g_assert_cmpstr(r.detail, ==, "ipmi: switched off, but reports the outlet still on");
	g_assert_cmpstr(ran2, ==, "list 2; off 2; status 2");
	result_clear(&r);
}

static void test_level_needs_every_device(void)
{
	g_autofree char *log = log_path();
	result r = { 0 };
	/* Two PDUs of one level (two power supplies): one fails, so does the level. */
	g_autofree char *ran = fence(&r, log, target("pdu-a", "fencingpy", "2", 1, log),
				     target("pdu-b", "broken", "2", 1, log), NULL);
	g_assert_false(r.ok);
	g_assert_nonnull(strstr(r.detail, "pdu-b"));
	g_assert_cmpstr(ran, ==, "list 2; list 2; off 2; off 2");
	result_clear(&r);
	g_autofree char *ran2 = fence(&r, log, target("pdu-a", "fencingpy", "2", 1, log),
				      target("pdu-b", "already", "2", 1, log), NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(r.detail, ==, "switched off and verified off by pdu-a, pdu-b");
	g_assert_cmpstr(ran2, ==, "list 2; list 2; off 2; off 2");
	result_clear(&r);
}

static void test_unlisted_plug(void)
{
	g_autofree char *log = log_path();
	result r = { 0 };
	/* "Success" for an outlet the device does not have means nothing. */
	g_autofree char *ran = fence(&r, log, target("pdu", "fencingpy", "7", 1, log), NULL);
	g_assert_false(r.ok);
	g_assert_cmpstr(r.detail, ==, "pdu: plug 7 is not an outlet of the device; its power state means nothing");
	g_assert_cmpstr(ran, ==, "list 7; off 7");
	result_clear(&r);
	/* An agent that cannot list is taken at its word. */
	g_autofree char *ran2 = fence(&r, log, target("pdu", "nolist", "7", 1, log), NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(ran2, ==, "list 7; off 7");
	result_clear(&r);
}

static void test_agent_error_line(void)
{
	g_autofree char *log = log_path();
	result r = { 0 };
	g_autofree char *ran = fence(&r, log, target("pdu", "broken", "2", 1, log), NULL);
	g_assert_false(r.ok);
	g_assert_cmpstr(ran, ==, "list 2; off 2");
	/* The line that says why, without the time stamp and without
	 * fencing.py's closing "Please use '-h' for usage". */
	g_assert_cmpstr(r.detail, ==,
			"fence_fake action=off on pdu failed (exit 1): ERROR: Failed: Unable to obtain "
			"correct plug status or plug is not available");
	result_clear(&r);
}

static void test_missing_agent(void)
{
	g_autofree char *log = log_path();
	result r = { 0 };
	herd_fence_target *t = target("pdu", "fencingpy", "2", 1, log);
	g_free(t->agent);
	t->agent = g_strdup("fence_gone");
	g_autofree char *ran = fence(&r, log, t, NULL);
	g_assert_false(r.ok);
	g_assert_nonnull(strstr(r.detail, "fence_gone could not be run"));
	g_assert_cmpstr(ran, ==, "");
	result_clear(&r);
}

/* fence_action reboot: a level of one device reboots through the agent,
 * whose "Success: Rebooted" is the verification (fencing.py's onoff).  If
 * it could not switch the node on again it says so on stderr: fenced (the
 * node is off), with a warning. */
static void test_reboot_verified(void)
{
	static const struct {
		const char *mode, *detail;
	} cases[] = {
		{ "fencingpy", "rebooted by pdu: switched off and verified off, then on again" },
		{ "noon", "rebooted by pdu: switched off and verified off; WARNING: not switched on again: "
			  "pdu: ERROR: Timed out waiting to power ON" },
	};
	g_autofree char *log = log_path();
	fence_action = STORE_FENCE_REBOOT;
	for (size_t k = 0; k < G_N_ELEMENTS(cases); k++) {
		result r = { 0 };
		g_autofree char *ran = fence(&r, log, target("pdu", cases[k].mode, "2", 1, log), NULL);
		g_assert_true(r.ok);
		g_assert_cmpstr(r.device, ==, "pdu");
		g_assert_cmpstr(r.detail, ==, cases[k].detail);
		g_assert_cmpstr(ran, ==, "list 2; reboot 2");
		result_clear(&r);
	}
	fence_action = STORE_FENCE_OFF;
}

/* A reboot that does not say it verified off (another agent, or fencing.py's
 * cycle method): off, verified as for fence_action off, then on. */
static void test_reboot_unverified(void)
{
	g_autofree char *log = log_path();
	fence_action = STORE_FENCE_REBOOT;
	result r = { 0 };
	g_autofree char *ran = fence(&r, log, target("pdu", "quiet", "2", 1, log), NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(r.detail, ==, "rebooted by pdu: switched off and verified off, then on again");
	g_assert_cmpstr(ran, ==, "list 2; off 2; on 2; reboot 2; status 2");
	g_assert_true(all_before("reboot", "off") && all_before("status", "on"));
	result_clear(&r);

	/* method=cycle: "Success: Rebooted" without any read-back, so no reboot. */
	herd_fence_target *t = target("ipmi", "fencingpy", "2", 1, log);
	g_autofree char *params = g_strdup_printf("mode=fencingpy|log=%s|method=Cycle", log);
	g_strfreev(t->params);
	t->params = g_strsplit(params, "|", -1);
	g_autofree char *ran2 = fence(&r, log, t, NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(ran2, ==, "list 2; off 2; on 2");
	result_clear(&r);

	/* A reboot that fails, or says it verified nothing and reads on. */
	g_autofree char *ran3 = fence(&r, log, target("pdu", "broken", "2", 1, log), NULL);
	g_assert_false(r.ok);
	g_assert_cmpstr(r.detail, ==, "fence_fake action=reboot on pdu failed (exit 1): ERROR: Failed: Timed out "
				      "waiting to power OFF");
	g_assert_cmpstr(ran3, ==, "list 2; reboot 2");
	result_clear(&r);
	g_autofree char *ran4 = fence(&r, log, target("pdu", "stayson", "2", 1, log), NULL);
	g_assert_false(r.ok);
	g_assert_cmpstr(r.detail, ==, "pdu: switched off, but reports the outlet still on");
	g_assert_cmpstr(ran4, ==, "list 2; off 2; reboot 2; status 2");
	result_clear(&r);

	/* A reboot of an outlet the device does not have fences nothing. */
	g_autofree char *ran5 = fence(&r, log, target("pdu", "fencingpy", "7", 1, log), NULL);
	g_assert_false(r.ok);
	g_assert_cmpstr(ran5, ==, "list 7; reboot 7");
	result_clear(&r);
	fence_action = STORE_FENCE_OFF;
}

/* Two PDUs of one level (two power supplies): both off, verified, before
 * either is switched on again (Pacemaker's remapped reboot). */
static void test_reboot_two_devices(void)
{
	g_autofree char *log = log_path();
	fence_action = STORE_FENCE_REBOOT;
	result r = { 0 };
	g_autofree char *ran = fence(&r, log, target("pdu-a", "fencingpy", "2", 1, log),
				     target("pdu-b", "quiet", "2", 1, log), NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(r.device, ==, "pdu-a, pdu-b");
	g_assert_cmpstr(r.detail, ==, "rebooted by pdu-a, pdu-b: switched off and verified off, then on again");
	g_assert_cmpstr(ran, ==, "list 2; list 2; off 2; off 2; on 2; on 2; status 2");
	/* Both off, and pdu-b's off verified, before either is on again. */
	g_assert_true(all_before("off", "on") && all_before("status", "on"));
	result_clear(&r);

	/* One of them does not switch on again: fenced, with a warning; the
	 * other still switches on. */
	g_autofree char *ran2 = fence(&r, log, target("pdu-a", "noon", "2", 1, log),
				      target("pdu-b", "fencingpy", "2", 1, log), NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(r.detail, ==, "rebooted by pdu-a, pdu-b: switched off and verified off; WARNING: not "
				      "switched on again: fence_fake action=on on pdu-a failed (exit 1): ERROR: "
				      "Failed: Timed out waiting to power ON");
	g_assert_true(all_before("off", "on"));
	g_assert_true(g_str_has_suffix(ran2, "on 2; on 2"));
	result_clear(&r);

	/* One of them fails to switch off: the level fails, nothing is switched
	 * on again (as Pacemaker), the next level reboots. */
	g_autofree char *ran3 = fence(&r, log, target("pdu-a", "fencingpy", "2", 1, log),
				      target("pdu-b", "broken", "2", 1, log),
				      target("ipmi", "fencingpy", "2", 2, log), NULL);
	g_assert_true(r.ok);
	g_assert_cmpstr(r.detail, ==, "rebooted by ipmi: switched off and verified off, then on again");
	g_assert_cmpstr(ran3, ==, "list 2; list 2; list 2; off 2; off 2; reboot 2");
	result_clear(&r);
	fence_action = STORE_FENCE_OFF;
}

static void test_reboot_verified_output(void)
{
	g_autofree char *log = log_path();
	herd_fence_target *t = target("pdu", "fencingpy", "2", 1, log);
	char *not_on = NULL;
	g_assert_true(herd_fence_reboot_verified(t, "Success: Rebooted", &not_on));
	g_assert_null(not_on);
	g_assert_true(herd_fence_reboot_verified(t, "Success: Rebooted\nERROR: Timed out waiting to power ON",
						 &not_on));
	g_assert_cmpstr(not_on, ==, "ERROR: Timed out waiting to power ON");
	g_clear_pointer(&not_on, g_free);
	/* Something else logged: not about the power-on. */
	g_assert_true(herd_fence_reboot_verified(t, "Success: Rebooted\nWARNING: deprecated", &not_on));
	g_assert_null(not_on);
	g_assert_false(herd_fence_reboot_verified(t, "Success: Powered OFF", &not_on));
	g_assert_false(herd_fence_reboot_verified(t, "Success: Rebooted, maybe", &not_on));
	g_assert_false(herd_fence_reboot_verified(t, "", &not_on));
	g_assert_false(herd_fence_reboot_verified(t, NULL, &not_on));
	g_assert_null(not_on);
	/* fencing.py's cycle method prints the same line without reading back. */
	herd_fence_target *c = target("ipmi", "fencingpy", "", 1, log);
	g_free(c->params[0]);
	c->params[0] = g_strdup("method=cycle");
	g_assert_false(herd_fence_reboot_verified(c, "Success: Rebooted", &not_on));
	herd_fence_target_free(c);
	herd_fence_target_free(t);
}

static void test_off_verified(void)
{
	g_assert_true(herd_fence_off_verified("Success: Powered OFF\n"));
	g_assert_true(herd_fence_off_verified("Success: Already OFF"));
	g_assert_true(herd_fence_off_verified("some notice\nSuccess: Powered OFF\n"));
	g_assert_false(herd_fence_off_verified("Success: Powered ON"));
	g_assert_false(herd_fence_off_verified("Success: Powered OFF, maybe\n"));
	g_assert_false(herd_fence_off_verified("done"));
	g_assert_false(herd_fence_off_verified(""));
	g_assert_false(herd_fence_off_verified(NULL));
}

static void test_parse_list(void)
{
	g_autoptr(GHashTable) plugs = herd_fence_parse_list("1,n1\n 2 ,n2\nOutlet 3,\n\n");
	g_assert_nonnull(plugs);
	g_assert_cmpuint(g_hash_table_size(plugs), ==, 3);
	g_assert_true(g_hash_table_contains(plugs, "2"));
	g_assert_true(g_hash_table_contains(plugs, "Outlet 3"));
	/* fencing.py: a device without plugs (a BMC), an agent that cannot list. */
	g_assert_null(herd_fence_parse_list("N/A\n"));
	g_assert_null(herd_fence_parse_list("NOTICE: List option is not working on this device yet\n"));
	g_assert_null(herd_fence_parse_list(""));
	g_assert_null(herd_fence_parse_list(NULL));
}


/* ---- waiting agents (ha/fence_pool.h) ---- */

static void on_pool_changed(gpointer user)
{
	(*(unsigned *)user)++;
}

/* Run the main loop until @cond holds (at most 10 s). */
#define WAIT_FOR(cond)                                                                 \
	do {                                                                           \
		gint64 until_ = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;           \
		while (!(cond) && g_get_monotonic_time() < until_)                     \
			g_main_context_iteration(NULL, FALSE), g_usleep(1000);          \
		g_assert_true(cond);                                                   \
	} while (0)

/* Let the pool's last processes end and their watches run (a killed
 * agent is freed once it is reaped). */
static void settle(void)
{
	gint64 until = g_get_monotonic_time() + 300 * 1000;
	while (g_get_monotonic_time() < until)
		g_main_context_iteration(NULL, FALSE), g_usleep(1000);
}

static GPtrArray *wants_for(const char *device, const char *key, unsigned count)
{
	GPtrArray *wants = g_ptr_array_new_with_free_func((GDestroyNotify)herd_standby_want_free);
	if (count) {
		herd_standby_want *w = g_new0(herd_standby_want, 1);
		*w = (herd_standby_want){ g_strdup(device), g_strdup("fence_fake"), g_strdup(key), count };
		g_ptr_array_add(wants, w);
	}
	return wants;
}

static GArray *pids_of(herd_fence_pool *p, const char *device)
{
	g_autoptr(json_t) j = herd_fence_pool_json(p);
	GArray *out = g_array_new(FALSE, FALSE, sizeof(pid_t));
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(json_object_get(j, device), "pids"), i, v) {
		pid_t pid = (pid_t)json_integer_value(v);
		g_array_append_val(out, pid);
	}
	return out;
}

static bool alive(pid_t pid)
{
	g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
	g_autofree char *text = NULL;
	if (!g_file_get_contents(path, &text, NULL, NULL))
		return false;
	const char *paren = strrchr(text, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z';
}

/* Fence n2 through @p's waiting agents (or fresh ones) of device "pdu";
 * it must succeed with an "off" and a "list" of plug 2. */
static void fence_from_pool(herd_fence_pool *p, const char *log)
{
	pool_now = p;
	result r = { 0 };
	g_autofree char *ran = fence(&r, log, target("pdu", "fencingpy", "2", 1, log), NULL);
	pool_now = NULL;
	g_assert_true(r.ok);
	g_assert_cmpstr(ran, ==, "list 2; off 2");
	result_clear(&r);
}

/* A fence takes its agents from the waiting ones; they act only then. */
static void test_pool_fence(void)
{
	g_autofree char *log = log_path();
	unsigned changes = 0;
	herd_fence_pool *p = herd_fence_pool_new(on_pool_changed, &changes);
	herd_fence_pool_set_wants(p, wants_for("pdu", "u1:1", 2));
	/* A device newly wanted waits HERD_STANDBY_AFTER_USE_MS too. */
	g_assert_cmpuint(herd_fence_pool_count(p, "pdu"), ==, 0);
	WAIT_FOR(herd_fence_pool_count(p, "pdu") == 2);
	g_assert_cmpuint(changes, >=, 1);
	g_autoptr(GArray) pids = pids_of(p, "pdu");
	g_assert_cmpuint(pids->len, ==, 2);
	/* Waiting, they do nothing (the fake agent logs once it read EOF). */
	g_usleep(200 * 1000);
	g_main_context_iteration(NULL, FALSE);
	g_assert_false(g_file_test(log, G_FILE_TEST_EXISTS));
	g_assert_true(alive(g_array_index(pids, pid_t, 0)) && alive(g_array_index(pids, pid_t, 1)));

	fence_from_pool(p, log);
	/* Both were used ("off" and "list" at once); the replacements wait
	 * HERD_STANDBY_AFTER_USE_MS. */
	g_assert_cmpuint(herd_fence_pool_count(p, "pdu"), ==, 0);
	WAIT_FOR(!alive(g_array_index(pids, pid_t, 0)) && !alive(g_array_index(pids, pid_t, 1)));
	WAIT_FOR(herd_fence_pool_count(p, "pdu") == 2);
	g_assert_false(g_file_test(log, G_FILE_TEST_EXISTS));
	herd_fence_pool_free(p);
	settle();
}

/* Killed, or no longer wanted (device removed or changed): a waiting
 * agent is killed with nothing done, and replaced as wanted. */
static void test_pool_kill_and_change(void)
{
	/* A waiting agent that dies is worth a warning in herdd's log, not a
	 * failed test here. */
	GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
	g_autofree char *log = log_path();
	unsigned changes = 0;
	herd_fence_pool *p = herd_fence_pool_new(on_pool_changed, &changes);
	herd_fence_pool_set_wants(p, wants_for("pdu", "u1:1", 1));
	WAIT_FOR(herd_fence_pool_count(p, "pdu") == 1);
	g_autoptr(GArray) first = pids_of(p, "pdu");
	g_assert_cmpuint(first->len, ==, 1);
	pid_t victim = g_array_index(first, pid_t, 0);
	g_assert_cmpint(kill(victim, SIGKILL), ==, 0);
	WAIT_FOR(herd_fence_pool_count(p, "pdu") == 0);
	/* Replaced after its back-off (1 s for a first death). */
	WAIT_FOR(herd_fence_pool_count(p, "pdu") == 1);
	g_autoptr(GArray) second = pids_of(p, "pdu");
	g_assert_cmpint(g_array_index(second, pid_t, 0), !=, victim);
	/* A new configuration of the device: the old agent goes, a new one waits. */
	herd_fence_pool_set_wants(p, wants_for("pdu", "u1:2", 1));
	g_autoptr(GArray) third = pids_of(p, "pdu");
	g_assert_cmpuint(third->len, ==, 1);
	g_assert_cmpint(g_array_index(third, pid_t, 0), !=, g_array_index(second, pid_t, 0));
	WAIT_FOR(!alive(g_array_index(second, pid_t, 0)));
	/* The device removed: none waits. */
	herd_fence_pool_set_wants(p, wants_for("pdu", "u1:2", 0));
	g_assert_cmpuint(herd_fence_pool_count(p, NULL), ==, 0);
	WAIT_FOR(!alive(g_array_index(third, pid_t, 0)));
	g_assert_false(g_file_test(log, G_FILE_TEST_EXISTS));
	herd_fence_pool_free(p);
	settle();
	g_log_set_always_fatal(fatal);
}

/* A fence whose waiting agents are dead, noticed or not yet: fresh ones
 * do it. */
static void test_pool_dead_agents(void)
{
	g_autofree char *log = log_path();
	unsigned changes = 0;
	GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
	for (int noticed = 0; noticed < 2; noticed++) {
		herd_fence_pool *p = herd_fence_pool_new(on_pool_changed, &changes);
		herd_fence_pool_set_wants(p, wants_for("pdu", "u1:1", 2));
		WAIT_FOR(herd_fence_pool_count(p, "pdu") == 2);
		g_autoptr(GArray) pids = pids_of(p, "pdu");
		for (guint i = 0; i < pids->len; i++)
			g_assert_cmpint(kill(g_array_index(pids, pid_t, i), SIGKILL), ==, 0);
		if (noticed) {
			WAIT_FOR(!alive(g_array_index(pids, pid_t, 0)) && !alive(g_array_index(pids, pid_t, 1)));
		}
		fence_from_pool(p, log);
		herd_fence_pool_free(p);
		settle();
	}
	g_log_set_always_fatal(fatal);
}

/* A Python agent, as fence-agents' are, that runs one command through
 * pexpect.run() as fencing_snmp.py does and reports its exit status and
 * ptyprocess's pause after close. */
static const char PYTHON_AGENT[] =
	"#!/usr/bin/python3\n"
	"import sys, pexpect\n"
	"sys.stdin.read()\n"
	"out, status = pexpect.run(\"sh -c 'echo hi; exit 3'\", withexitstatus=True)\n"
	"child = pexpect.spawn('true')\n"
	"child.expect(pexpect.EOF)\n"
	"print('status=%d pause=%s' % (status, child.ptyproc.delayafterclose))\n";

static char *run_python_agent(void)
{
	herd_fence_target *t = target("pdu", "fencingpy", "1", 1, "/dev/null");
	g_free(t->agent);
	t->agent = g_strdup("fence_python");
	result r = { 0 };
	r.loop = g_main_loop_new(NULL, FALSE);
	herd_fence_agent_action(t, "monitor", on_done, &r);
	g_main_loop_run(r.loop);
	g_main_loop_unref(r.loop);
	g_assert_true(r.ok);
	char *detail = g_steal_pointer(&r.detail);
	g_free(r.device);
	herd_fence_target_free(t);
	return detail;
}

/* herdd's sitecustomize.py: no pause, and the exit status is still exact
 * (ptyprocess reads it after EOF with a blocking waitpid()). */
static void test_python_no_pause(void)
{
	g_autofree char *agent = g_build_filename(agent_dir, "fence_python", NULL);
	g_assert_true(g_file_set_contents(agent, PYTHON_AGENT, -1, NULL));
	g_assert_cmpint(g_chmod(agent, 0755), ==, 0);
	g_autofree char *before = run_python_agent();
	g_assert_cmpstr(before, ==, "status=3 pause=0.1");
	g_autoptr(GError) err = NULL;
	g_autofree char *dir = g_build_filename(agent_dir, "python", NULL);
	g_assert_true(herd_fence_agent_python_setup(dir, &err));
	g_assert_no_error(err);
	for (int i = 0; i < 5; i++) {
		g_autofree char *after = run_python_agent();
		g_assert_cmpstr(after, ==, "status=3 pause=0");
	}
	g_autofree char *file = g_build_filename(dir, "sitecustomize.py", NULL);
	g_unlink(file);
	g_rmdir(dir);
	g_unlink(agent);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	signal(SIGPIPE, SIG_IGN); /* as herdd: an agent gone before its options were written */
	g_autoptr(GError) err = NULL;
	agent_dir = g_dir_make_tmp("herd-fence-XXXXXX", &err);
	g_assert_no_error(err);
	g_autofree char *agent = g_build_filename(agent_dir, "fence_fake", NULL);
	g_assert_true(g_file_set_contents(agent, AGENT, -1, NULL));
	g_assert_cmpint(g_chmod(agent, 0755), ==, 0);
	g_setenv("HERD_FENCE_AGENT_DIR", agent_dir, TRUE);

	g_test_add_func("/fence/off-verified-by-agent", test_off_verified_by_agent);
	g_test_add_func("/fence/off-then-status", test_off_then_status);
	g_test_add_func("/fence/still-on-next-level", test_still_on_next_level);
	g_test_add_func("/fence/level-needs-every-device", test_level_needs_every_device);
	g_test_add_func("/fence/unlisted-plug", test_unlisted_plug);
	g_test_add_func("/fence/agent-error-line", test_agent_error_line);
	g_test_add_func("/fence/missing-agent", test_missing_agent);
	g_test_add_func("/fence/reboot-verified", test_reboot_verified);
	g_test_add_func("/fence/reboot-unverified", test_reboot_unverified);
	g_test_add_func("/fence/reboot-two-devices", test_reboot_two_devices);
	g_test_add_func("/fence/reboot-verified-output", test_reboot_verified_output);
	g_test_add_func("/fence/off-verified", test_off_verified);
	g_test_add_func("/fence/parse-list", test_parse_list);
	g_test_add_func("/fence/pool-fence", test_pool_fence);
	g_test_add_func("/fence/pool-kill-and-change", test_pool_kill_and_change);
	g_test_add_func("/fence/pool-dead-agents", test_pool_dead_agents);
	g_test_add_func("/fence/python-no-pause", test_python_no_pause);
	int rc = g_test_run();

	g_unlink(agent);
	g_rmdir(agent_dir);
	g_free(agent_dir);
	return rc;
}
