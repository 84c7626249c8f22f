/* common/metrics_text: Prometheus's text format as herd writes it. */
#include "common/metrics_text.h"

#include <math.h>

static void test_format(void)
{
	metrics_text *m = metrics_text_new();
	metrics_family(m, "herd_x_bytes", "gauge", "a help\nwith a \\ and a newline");
	metrics_sample(m, 1073741824, "node", "n1", NULL);
	metrics_sample(m, 0.25, "node", "n\"2\\\n", "left", NULL, "link", "0", NULL);
	metrics_sample(m, NAN, NULL);
	metrics_family(m, "herd_y_total", "counter", "y");
	metrics_sample(m, INFINITY, NULL);
	metrics_sample(m, -3, NULL);
	metrics_sample(m, 1e20, NULL);
	GString *t = metrics_text_free(m);
	g_assert_cmpstr(t->str, ==,
			"# HELP herd_x_bytes a help\\nwith a \\\\ and a newline\n"
			"# TYPE herd_x_bytes gauge\n"
			"herd_x_bytes{node=\"n1\"} 1073741824\n"
			"herd_x_bytes{node=\"n\\\"2\\\\\\n\",link=\"0\"} 0.25\n"
			"herd_x_bytes NaN\n"
			"# HELP herd_y_total y\n"
			"# TYPE herd_y_total counter\n"
			"herd_y_total +Inf\n"
			"herd_y_total -3\n"
			"herd_y_total 1e+20\n");
	g_string_free(t, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/metrics-text/format", test_format);
	return g_test_run();
}
