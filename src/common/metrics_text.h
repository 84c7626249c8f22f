/*
 * Prometheus's text exposition format (version 0.0.4), written: metric
 * families with their HELP and TYPE once, then their samples, labels
 * escaped.  Pure; api/metrics.c fills it.
 *
 *   metrics_text *m = metrics_text_new();
 *   metrics_family(m, "herd_node_online", "gauge", "1 if …");
 *   metrics_sample(m, 1, "node", "n1", NULL);
 *   GString *text = metrics_text_free(m);   (the text, for the answer)
 */
#pragma once

#include <glib.h>

typedef struct metrics_text metrics_text;

metrics_text *metrics_text_new(void);
/* Begin family @name (herd_…, base units: _bytes, _seconds, _total for
 * counters) of @type "gauge" or "counter"; its samples follow.  A family
 * begun twice is a bug (the format wants its samples together). */
void metrics_family(metrics_text *m, const char *name, const char *type, const char *help);
/* A sample of the current family: @value with label pairs (name, value…,
 * NULL); a label whose value is NULL is left out. */
void metrics_sample(metrics_text *m, double value, ...) G_GNUC_NULL_TERMINATED;
/* The same with the labels in an array of @n names and values. */
void metrics_sample_v(metrics_text *m, double value, const char *const *labels, size_t n);
/* The text written; frees the writer. */
GString *metrics_text_free(metrics_text *m);
