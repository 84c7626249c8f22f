/*
 * Runs the files given (or every file under the directories given, in
 * name order) through the target's LLVMFuzzerTestOneInput(), as libFuzzer
 * would replay them.  Fails if there was no input at all, so a wrong
 * corpus path cannot pass unnoticed.
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gint by_name(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static unsigned run_path(const char *path)
{
	if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
		GDir *dir = g_dir_open(path, 0, NULL);
		if (!dir)
			return 0;
		GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
		const char *n;
		while ((n = g_dir_read_name(dir)))
			g_ptr_array_add(names, g_build_filename(path, n, NULL));
		g_dir_close(dir);
		g_ptr_array_sort(names, by_name);
		unsigned count = 0;
		for (guint i = 0; i < names->len; i++)
			count += run_path(names->pdata[i]);
		g_ptr_array_free(names, TRUE);
		return count;
	}
	gchar *data = NULL;
	gsize len = 0;
	GError *error = NULL;
	if (!g_file_get_contents(path, &data, &len, &error)) {
		fprintf(stderr, "replay: %s\n", error->message);
		g_error_free(error);
		exit(1);
	}
	/* named before it runs: a crash leaves the culprit on the last line */
	fprintf(stderr, "replay: %s (%zu bytes)\n", path, (size_t)len);
	/* an exact-size copy, so that reads past the end are caught */
	uint8_t *copy = g_memdup2(data, len);
	LLVMFuzzerTestOneInput(copy, len);
	g_free(copy);
	g_free(data);
	return 1;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	for (int i = 1; i < argc; i++)
		count += run_path(argv[i]);
	printf("replayed %u inputs\n", count);
	return count > 0 ? 0 : 1;
}
