/*
 * Golden tests of the HA scheduler, as Pacemaker's scheduler regression
 * tests: each NAME.json of a folder holds {"description", "input", "expect"};
 * the scheduler's decisions for "input" must equal "expect".  A case that
 * also holds "whatif": {"node_down":[…],"standby":[…]} is a what-if: the
 * hypothetical is played forward on "input" (src/ha/whatif.h) and the
 * outcome must equal "expect".  A case that holds "rebalance" (settings,
 * see ha/sched_json.h) is a rebalance: its result must equal "expect".  A plan case whose "expect" has
 * "unsafe_if_lost" also compares the plan's risk per node (opt-in: the
 * older files do not show it).
 *
 *   sched-golden DIR            run every case; fails on none or any mismatch
 *   sched-golden --update DIR   rewrite "expect" from what the scheduler says
 *                               (review the diff before committing!)
 *   sched-golden --show FILE    print the result for one case or input file
 */
#include "ha/sched_json.h"

#include <stdio.h>
#include <string.h>

static gint by_name(gconstpointer a, gconstpointer b)
{
	const sched_vm *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : strcmp(x->uuid, y->uuid);
}

/* The result for @c's "input" (and "whatif", if any); @risk adds the plan's
 * unsafe_if_lost. */
static json_t *decide(json_t *c, bool risk, GError **error)
{
	json_t *input = json_object_get(c, "input") ? json_object_get(c, "input") : c;
	g_autoptr(sched_json_input) ji = sched_json_parse(input, error);
	if (!ji)
		return NULL;
	const sched_input *in = sched_json_input_get(ji);
	json_t *rebalance = json_object_get(c, "rebalance");
	if (rebalance) {
		rebalance_settings rs;
		rebalance_state st;
		bool has_state;
		int64_t now_ms;
		if (!sched_json_rebalance_parse(rebalance, &rs, &st, &has_state, &now_ms, error))
			return NULL;
		g_autoptr(sched_plan) plan = sched_plan_compute(in);
		g_autoptr(rebalance_plan) rp = rebalance_compute(in, &rs, has_state ? &st : NULL, now_ms,
								 plan->actions->len == 0);
		json_t *out = sched_json_rebalance(rp);
		if (has_state)
			json_object_set_new(out, "above_since_ms", json_integer(st.above_since_ms));
		return out;
	}
	json_t *whatif = json_object_get(c, "whatif");
	if (whatif) {
		g_autoptr(sched_json_hypothesis) jh = sched_json_hypothesis_parse(whatif, error);
		if (!jh)
			return NULL;
		g_autoptr(sched_whatif_result) r = sched_whatif(in, sched_json_hypothesis_get(jh), error);
		return r ? sched_json_whatif(r) : NULL;
	}
	g_autoptr(sched_plan) plan = sched_plan_compute(in);
	json_t *out = sched_json_plan(in, plan);
	if (risk)
		json_object_set_new(out, "unsafe_if_lost", sched_json_plan_unsafe_if_lost(in, plan));
	/* The same VMs given in name order, as herd's store gives them, and
	 * said so (vms_by_name): the same plan. */
	g_autoptr(GArray) sorted = g_array_new(FALSE, FALSE, sizeof(sched_vm));
	g_array_append_vals(sorted, in->vms, (guint)in->n_vms);
	g_array_sort(sorted, by_name);
	sched_input by_name_in = *in;
	by_name_in.vms = (const sched_vm *)sorted->data;
	by_name_in.vms_by_name = true;
	g_autoptr(sched_plan) plan2 = sched_plan_compute(&by_name_in);
	json_t *out2 = sched_json_plan(&by_name_in, plan2);
	if (risk)
		json_object_set_new(out2, "unsafe_if_lost", sched_json_plan_unsafe_if_lost(&by_name_in, plan2));
	bool same = json_equal(out, out2);
	if (!same) {
		g_autofree char *a = json_dumps(out, JSON_INDENT(1)), *b = json_dumps(out2, JSON_INDENT(1));
		g_set_error(error, g_quark_from_static_string("sched-golden"), 1,
			    "the plan differs when the VMs are given by name (vms_by_name):\n%s\n%s", a, b);
		json_decref(out);
	}
	json_decref(out2);
	return same ? out : NULL;
}

static char *dump(json_t *j)
{
	return j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : g_strdup("(nothing)");
}

/* One line per difference, named by its path ("vms[1].to"). */
static void diff(const char *path, json_t *want, json_t *got, GString *out)
{
	if (want && got && json_equal(want, got))
		return;
	if (json_is_object(want) && json_is_object(got)) {
		const char *key;
		json_t *v;
		json_object_foreach(want, key, v) {
			g_autofree char *p = g_strdup_printf("%s%s%s", path, *path ? "." : "", key);
			diff(p, v, json_object_get(got, key), out);
		}
		json_object_foreach(got, key, v) {
			g_autofree char *p = g_strdup_printf("%s%s%s", path, *path ? "." : "", key);
			if (!json_object_get(want, key))
				diff(p, NULL, v, out);
		}
		return;
	}
	if (json_is_array(want) && json_is_array(got)) {
		size_t n = MAX(json_array_size(want), json_array_size(got));
		for (size_t i = 0; i < n; i++) {
			g_autofree char *p = g_strdup_printf("%s[%zu]", path, i);
			diff(p, json_array_get(want, i), json_array_get(got, i), out);
		}
		return;
	}
	char *w = dump(want), *g = dump(got);
	g_string_append_printf(out, "  %s:\n    expected %s\n    got      %s\n", *path ? path : "(all)", w, g);
	free(w);
	free(g);
}

static gint by_path(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_case(const char *path, bool update)
{
	json_error_t jerr;
	json_t *c = json_load_file(path, 0, &jerr);
	if (!c) {
		fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
		return 1;
	}
	json_t *want = json_object_get(c, "expect");
	if (!json_object_get(c, "input") || (!want && !update)) {
		fprintf(stderr, "FAIL %s: a case needs \"input\" and \"expect\".\n", path);
		json_decref(c);
		return 1;
	}
	g_autoptr(GError) err = NULL;
	json_t *got = decide(c, json_object_get(want, "unsafe_if_lost") != NULL, &err);
	if (!got) {
		fprintf(stderr, "FAIL %s: %s\n", path, err->message);
		json_decref(c);
		return 1;
	}
	int rc = 0;
	if (update) {
		json_object_set_new(c, "expect", got);
		json_dump_file(c, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("updated %s\n", path);
	} else if (!json_equal(got, want)) {
		g_autoptr(GString) d = g_string_new(NULL);
		diff("", want, got, d);
		fprintf(stderr, "FAIL %s: %s\n%s  (sched-golden --show %s prints the whole result)\n", path,
			json_string_value(json_object_get(c, "description")), d->str, path);
		json_decref(got);
		rc = 1;
	} else {
		printf("ok   %s\n", path);
		json_decref(got);
	}
	json_decref(c);
	return rc;
}

static int show(const char *path)
{
	json_error_t jerr;
	json_t *c = json_load_file(path, 0, &jerr);
	if (!c) {
		fprintf(stderr, "%s: %s\n", path, jerr.text);
		return 1;
	}
	g_autoptr(GError) err = NULL;
	json_t *got = decide(c, true, &err);
	json_decref(c);
	if (!got) {
		fprintf(stderr, "%s\n", err->message);
		return 1;
	}
	char *s = json_dumps(got, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	puts(s);
	free(s);
	json_decref(got);
	return 0;
}

int main(int argc, char **argv)
{
	bool update = argc > 2 && strcmp(argv[1], "--update") == 0;
	if (argc == 3 && strcmp(argv[1], "--show") == 0)
		return show(argv[2]);
	const char *dir = argc > 1 ? argv[argc - 1] : NULL;
	if (!dir) {
		fprintf(stderr, "usage: sched-golden [--update] DIR | --show FILE\n");
		return 2;
	}
	GDir *d = g_dir_open(dir, 0, NULL);
	if (!d) {
		fprintf(stderr, "cannot open %s\n", dir);
		return 2;
	}
	GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
	const char *name;
	while ((name = g_dir_read_name(d)))
		if (g_str_has_suffix(name, ".json"))
			g_ptr_array_add(files, g_build_filename(dir, name, NULL));
	g_dir_close(d);
	if (files->len == 0) {
		/* A wrong path or a lost cases/ must not pass as "0 cases, 0 failed". */
		fprintf(stderr, "%s: no cases (*.json) in this directory\n", dir);
		g_ptr_array_free(files, TRUE);
		return 1;
	}
	g_ptr_array_sort(files, by_path);
	int failed = 0;
	for (guint i = 0; i < files->len; i++)
		failed += run_case(files->pdata[i], update);
	printf("%u cases, %d failed\n", files->len, failed);
	bool none = files->len == 0;
	g_ptr_array_free(files, TRUE);
	if (none) {
		fprintf(stderr, "FAIL %s holds no case (*.json): nothing was tested.\n", dir);
		return 1;
	}
	return failed ? 1 : 0;
}
