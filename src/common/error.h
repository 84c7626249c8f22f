/*
 * herd's error domain.
 *
 * Errors travel as GError inside a process and as
 * {"error":{"code":"<name>","message":"<sentence>"}} over the API; the code
 * decides the HTTP status and the CLI's exit code, the message is the
 * whole sentence the user reads ("VM 'web1' is not defined.").
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

#define HERD_ERROR (herd_error_quark())
GQuark herd_error_quark(void);

typedef enum {
	HERD_ERR_INTERNAL = 0,   /* 500: a bug or an unexpected failure */
	HERD_ERR_INVALID,        /* 400: bad input, nothing changed */
	HERD_ERR_NOT_FOUND,      /* 404 */
	HERD_ERR_METHOD,         /* 405 */
	HERD_ERR_CONFLICT,       /* 409: exists already, or the state forbids it */
	HERD_ERR_TOO_LARGE,      /* 413 */
	HERD_ERR_UNAUTHORIZED,   /* 401: no or wrong credentials */
	HERD_ERR_FORBIDDEN,      /* 403 */
	HERD_ERR_NO_QUORUM,      /* 503: this partition has no quorum */
	HERD_ERR_UNAVAILABLE,    /* 503: busy (sync running), or a component down */
	HERD_ERR_TIMEOUT,        /* 504 */
	HERD_ERR_IO,             /* 500: disk or component I/O failed */
	HERD_ERR__COUNT
} herd_error_code;

/* The stable name of @code used on the wire ("invalid", "not_found"…). */
const char *herd_error_name(herd_error_code code);

/* Map a wire name back to a code; unknown names map to HERD_ERR_INTERNAL. */
herd_error_code herd_error_from_name(const char *name);

/* Set *@error (HERD_ERROR, @code, the formatted sentence) and return false:
 * for checks that refuse in one expression. */
bool herd_refuse(GError **error, herd_error_code code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* The HTTP status that carries @code. */
unsigned herd_error_http_status(herd_error_code code);
