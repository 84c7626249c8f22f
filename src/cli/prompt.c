#include "cli/prompt.h"
#include "cli/cli.h"

#include "common/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static FILE *open_tty(GError **error, const char *hint)
{
	FILE *tty = fopen("/dev/tty", "r+");
	if (!tty)
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "There is no terminal to ask on; use %s.", hint);
	return tty;
}

static char *read_line(FILE *tty, bool echo)
{
	struct termios old, quiet;
	bool restore = false;
	if (!echo && tcgetattr(fileno(tty), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
	}
	char buf[1024];
	char *line = fgets(buf, sizeof(buf), tty) ? g_strdup(buf) : NULL;
	if (restore) {
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
		fputc('\n', tty);
	}
	memset(buf, 0, sizeof(buf));
	if (line)
		line[strcspn(line, "\r\n")] = '\0';
	return line;
}

char *cli_password(const char *file, const char *prompt, bool confirm, GError **error)
{
	if (file) {
		g_autofree char *content = NULL;
		if (!g_file_get_contents(file, &content, NULL, NULL)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Cannot read password file %s: %s.",
				    file, g_strerror(errno));
			return NULL;
		}
		content[strcspn(content, "\r\n")] = '\0';
		if (!*content) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Password file %s is empty.", file);
			return NULL;
		}
		return g_steal_pointer(&content);
	}
	FILE *tty = open_tty(error, "--password-file FILE");
	if (!tty)
		return NULL;
	fprintf(tty, "%s: ", prompt);
	fflush(tty);
	char *pw = read_line(tty, false);
	if (pw && confirm) {
		fprintf(tty, "Again: ");
		fflush(tty);
		g_autofree char *again = read_line(tty, false);
		if (!again || strcmp(pw, again) != 0) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The two passwords differ.");
			g_free(pw);
			pw = NULL;
		}
	}
	fclose(tty);
	if (!pw && error && !*error)
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "No password was given.");
	return pw;
}

bool cli_confirm(const char *question, const char *option_hint, const char *refusal)
{
	g_autoptr(GError) error = NULL;
	FILE *tty = open_tty(&error, option_hint);
	if (!tty) {
		cli_report(error);
		return false;
	}
	fprintf(tty, "%s [y/N] ", question);
	fflush(tty);
	g_autofree char *answer = read_line(tty, true);
	fclose(tty);
	if (answer && (g_ascii_strcasecmp(answer, "y") == 0 || g_ascii_strcasecmp(answer, "yes") == 0))
		return true;
	fprintf(stderr, "herd: %s\n", refusal);
	return false;
}
