/* Plain-text tables for the CLI: columns sized to their widest cell. */
#pragma once

#include <glib.h>

typedef struct cli_table cli_table;

/* A table with the given column headers (NULL-terminated). */
cli_table *cli_table_new(const char *first_header, ...) G_GNUC_NULL_TERMINATED;
/* Append a row of as many cells as there are headers (copied; NULL prints "-"). */
void cli_table_add(cli_table *t, ...);
/* Print to stdout and free the table. */
void cli_table_print(cli_table *t);
/* Free without printing. */
void cli_table_free(cli_table *t);
