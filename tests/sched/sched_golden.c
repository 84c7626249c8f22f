/*
 * Golden tests of the HA scheduler, as Pacemaker's scheduler regression
 * tests: each cases/NAME.json holds {"description", "input", "expect"}; the
 * scheduler's decisions for "input" must equal "expect".
 *
 *   sched-golden DIR            run every case
 *   sched-golden --update DIR   rewrite "expect" from what the scheduler says
 *                               (review the diff before committing!)
 *   sched-golden --show FILE    print the decisions for one input file
 */
#include "ha/sched_json.h"

#include <stdio.h>
#include <string.h>

static json_t *decide(json_t *input, GError **error)
{
	g_autoptr(sched_json_input) ji = sched_json_parse(input, error);
	if (!ji)
		return NULL;
	g_autoptr(sched_plan) plan = sched_plan_compute(sched_json_input_get(ji));
	return sched_json_plan(sched_json_input_get(ji), plan);
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
	g_autoptr(GError) err = NULL;
	json_t *got = decide(json_object_get(c, "input"), &err);
	if (!got) {
		fprintf(stderr, "%s: %s\n", path, err->message);
		json_decref(c);
		return 1;
	}
	int rc = 0;
	if (update) {
		json_object_set_new(c, "expect", got);
		json_dump_file(c, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("updated %s\n", path);
	} else if (!json_equal(got, json_object_get(c, "expect"))) {
		char *want = json_dumps(json_object_get(c, "expect"), JSON_INDENT(2));
		char *have = json_dumps(got, JSON_INDENT(2));
		fprintf(stderr, "FAIL %s: %s\n--- expected\n%s\n--- got\n%s\n", path,
			json_string_value(json_object_get(c, "description")), want, have);
		free(want);
		free(have);
		json_decref(got);
		rc = 1;
	} else {
		printf("ok   %s\n", path);
		json_decref(got);
	}
	json_decref(c);
	return rc;
}

int main(int argc, char **argv)
{
	bool update = argc > 2 && strcmp(argv[1], "--update") == 0;
	if (argc == 3 && strcmp(argv[1], "--show") == 0) {
		json_error_t jerr;
		json_t *in = json_load_file(argv[2], 0, &jerr);
		if (!in) {
			fprintf(stderr, "%s: %s\n", argv[2], jerr.text);
			return 1;
		}
		json_t *input = json_object_get(in, "input") ? json_object_get(in, "input") : in;
		g_autoptr(GError) err = NULL;
		json_t *got = decide(input, &err);
		if (!got) {
			fprintf(stderr, "%s\n", err->message);
			return 1;
		}
		char *s = json_dumps(got, JSON_INDENT(2));
		puts(s);
		free(s);
		return 0;
	}
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
	g_ptr_array_free(files, TRUE);
	return failed ? 1 : 0;
}
