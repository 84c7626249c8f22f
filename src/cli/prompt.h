/* Asking the operator: passwords without echo, yes/no questions. */
#pragma once

#include <glib.h>
#include <stdbool.h>

/*
 * The password from the first line of @file if given, else asked on the
 * terminal (twice when @confirm).  NULL with an error when there is no
 * terminal to ask on or the two entries differ.
 */
char *cli_password(const char *file, const char *prompt, bool confirm, GError **error);

/* Ask @question on the terminal; false unless the answer is yes, after
 * printing "herd: @refusal" on stderr, or with no terminal to ask on, an error
 * that names @option_hint, the option that answers it instead. */
bool cli_confirm(const char *question, const char *option_hint, const char *refusal);
