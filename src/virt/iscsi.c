#include "virt/iscsi.h"

#include <string.h>

char **herd_iscsi_ls_argv(const char *portal)
{
	char **argv = g_new0(char *, 4);
	argv[0] = g_strdup("iscsi-ls");
	argv[1] = g_strdup("-s");
	argv[2] = g_strdup_printf("iscsi://%s", portal);
	return argv;
}

bool herd_iscsi_ls_parse(const char *output, const char *target, GArray **luns)
{
	g_auto(GStrv) lines = g_strsplit(output ? output : "", "\n", -1);
	bool found = false, in_target = false;
	GArray *out = g_array_new(FALSE, TRUE, sizeof(herd_iscsi_lun));
	for (char **l = lines; *l; l++) {
		const char *line = g_strstrip(*l);
		if (g_str_has_prefix(line, "Target:")) {
			const char *name = line + strlen("Target:");
			size_t n = strcspn(name, " \t");
			in_target = n == strlen(target) && strncmp(name, target, n) == 0;
			found = found || in_target;
			continue;
		}
		guint64 lun;
		const char *rest;
		if (!in_target || !g_str_has_prefix(line, "Lun:"))
			continue;
		rest = line + strlen("Lun:");
		size_t digits = strspn(rest, "0123456789");
		g_autofree char *num = g_strndup(rest, digits);
		if (!digits || !g_ascii_string_to_unsigned(num, 10, 0, 16383, &lun, NULL))
			continue;
		herd_iscsi_lun e = { .lun = (unsigned)lun, .disk = strstr(rest, "Type:DIRECT_ACCESS") != NULL };
		const char *size = strstr(rest, "(Size:");
		if (size) {
			size += strlen("(Size:");
			size_t n = strcspn(size, ")");
			g_strlcpy(e.size, size, MIN(n + 1, sizeof(e.size)));
		}
		g_array_append_val(out, e);
	}
	if (luns && found)
		*luns = out;
	else
		g_array_free(out, TRUE);
	return found;
}

char *herd_iscsi_ls_error(const char *stderr_text, int exit_status)
{
	/* libiscsi prints "…: socket error No route to host(113)." and the like:
	 * the last line that says something. */
	g_auto(GStrv) lines = g_strsplit(stderr_text ? stderr_text : "", "\n", -1);
	const char *last = NULL;
	for (char **l = lines; *l; l++)
		if (*g_strstrip(*l))
			last = *l;
	if (!last)
		return g_strdup_printf("iscsi-ls failed (exit status %d)", exit_status);
	const char *err = strstr(last, "error ");
	const char *msg = err ? err + strlen("error ") : last;
	char *out = g_strdup(msg);
	char *paren = strrchr(out, '(');
	if (paren && paren > out && g_ascii_isdigit(paren[1]))
		*paren = '\0';
	g_strchomp(out);
	size_t n = strlen(out);
	if (n && out[n - 1] == '.')
		out[n - 1] = '\0';
	return out;
}

char *herd_iscsi_url(const char *portal, const char *target, unsigned lun)
{
	return g_strdup_printf("iscsi://%s/%s/%u", portal, target, lun);
}
