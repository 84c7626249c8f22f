#include "error.h"

#include <string.h>

G_DEFINE_QUARK(herd-error-quark, herd_error)

static const struct {
	const char *name;
	unsigned http_status;
} error_table[HERD_ERR__COUNT] = {
	[HERD_ERR_INTERNAL]     = { "internal", 500 },
	[HERD_ERR_INVALID]      = { "invalid", 400 },
	[HERD_ERR_NOT_FOUND]    = { "not_found", 404 },
	[HERD_ERR_METHOD]       = { "method_not_allowed", 405 },
	[HERD_ERR_CONFLICT]     = { "conflict", 409 },
	[HERD_ERR_TOO_LARGE]    = { "too_large", 413 },
	[HERD_ERR_UNAUTHORIZED] = { "unauthorized", 401 },
	[HERD_ERR_FORBIDDEN]    = { "forbidden", 403 },
	[HERD_ERR_NO_QUORUM]    = { "no_quorum", 503 },
	[HERD_ERR_UNAVAILABLE]  = { "unavailable", 503 },
	[HERD_ERR_TIMEOUT]      = { "timeout", 504 },
	[HERD_ERR_IO]           = { "io", 500 },
};

const char *herd_error_name(herd_error_code code)
{
	if ((unsigned)code >= HERD_ERR__COUNT)
		return "internal";
	return error_table[code].name;
}

herd_error_code herd_error_from_name(const char *name)
{
	for (unsigned i = 0; name && i < HERD_ERR__COUNT; i++)
		if (strcmp(error_table[i].name, name) == 0)
			return (herd_error_code)i;
	return HERD_ERR_INTERNAL;
}

unsigned herd_error_http_status(herd_error_code code)
{
	if ((unsigned)code >= HERD_ERR__COUNT)
		return 500;
	return error_table[code].http_status;
}

bool herd_refuse(GError **error, herd_error_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error_literal(error, HERD_ERROR, (gint)code, msg);
	return false;
}
