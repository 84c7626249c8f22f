#include "api/session_token.h"

#include "common/error.h"
#include "common/password.h"

#include <string.h>

static char *mac_of(const char *user, const char *key, gint64 expires_s)
{
	g_autofree char *text = g_strdup_printf("%s\n%" G_GINT64_FORMAT, user, expires_s);
	return g_compute_hmac_for_string(G_CHECKSUM_SHA256, (const guchar *)key, strlen(key), text, -1);
}

char *session_token_make(const char *user, const char *key, gint64 expires_s)
{
	g_autofree char *name = g_base64_encode((const guchar *)user, strlen(user));
	/* base64url: no '/' or '+' in a cookie or a header, no '=' padding */
	g_strdelimit(name, "+", '-');
	g_strdelimit(name, "/", '_');
	g_strdelimit(name, "=", '\0');
	g_autofree char *mac = mac_of(user, key, expires_s);
	return g_strdup_printf("%s.%" G_GINT64_FORMAT ".%s", name, expires_s, mac);
}

/* Split @token into its user, expiry and MAC; false if it is not shaped so. */
static bool token_parts(const char *token, char **user, gint64 *expires_s, const char **mac)
{
	const char *dot1 = token ? strchr(token, '.') : NULL;
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2 || dot1 == token || dot1 - token > 128)
		return false;
	GString *b64 = g_string_new_len(token, dot1 - token);
	g_strdelimit(b64->str, "-", '+');
	g_strdelimit(b64->str, "_", '/');
	while (b64->len % 4)
		g_string_append_c(b64, '=');
	gsize len = 0;
	guchar *raw = g_base64_decode(b64->str, &len);
	g_string_free(b64, TRUE);
	if (!raw || len == 0 || memchr(raw, '\0', len) || !g_utf8_validate((char *)raw, (gssize)len, NULL)) {
		g_free(raw);
		return false;
	}
	char *end = NULL;
	gint64 exp = g_ascii_strtoll(dot1 + 1, &end, 10);
	if (end != dot2 || exp <= 0) {
		g_free(raw);
		return false;
	}
	*user = g_strndup((char *)raw, len);
	g_free(raw);
	*expires_s = exp;
	*mac = dot2 + 1;
	return true;
}

char *session_token_user(const char *token)
{
	char *user = NULL;
	gint64 exp;
	const char *mac;
	return token_parts(token, &user, &exp, &mac) ? user : NULL;
}

bool session_token_check(const char *token, const char *key, gint64 now_s, GError **error)
{
	g_autofree char *user = NULL;
	gint64 expires_s;
	const char *mac;
	if (!token_parts(token, &user, &expires_s, &mac)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED, "The session token is malformed.");
		return false;
	}
	g_autofree char *want = key && *key ? mac_of(user, key, expires_s) : NULL;
	if (!herd_secret_equal(mac, want)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "The session of '%s' has ended (logged out, new password, or not a session "
			    "of this cluster); log in again.", user);
		return false;
	}
	if (now_s >= expires_s) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED,
			    "The session of '%s' has expired; log in again.", user);
		return false;
	}
	return true;
}
