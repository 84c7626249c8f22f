#include "password.h"

#include "error.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

char *herd_password_hash(const char *password, GError **error)
{
	if (password && !g_utf8_validate(password, -1, NULL)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The password is not valid UTF-8 text.");
		return NULL;
	}
	if (!password || g_utf8_strlen(password, -1) < HERD_PASSWORD_MIN) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The password must have at least %d characters.", HERD_PASSWORD_MIN);
		return NULL;
	}
	if (strchr(password, '\n')) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The password must not contain a line break.");
		return NULL;
	}
	char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (!salt) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL, "Cannot make a password salt.");
		return NULL;
	}
	struct crypt_data data;
	memset(&data, 0, sizeof(data));
	const char *h = crypt_r(password, salt, &data);
	free(salt);
	if (!h || h[0] == '*') {
		g_set_error(error, HERD_ERROR, HERD_ERR_INTERNAL, "Cannot hash the password.");
		return NULL;
	}
	return g_strdup(h);
}

bool herd_password_verify(const char *password, const char *hash)
{
	if (!password || !hash || !*hash)
		return false;
	struct crypt_data data;
	memset(&data, 0, sizeof(data));
	const char *h = crypt_r(password, hash, &data);
	if (!h || strlen(h) != strlen(hash))
		return false;
	unsigned char diff = 0;
	for (size_t i = 0; hash[i]; i++)
		diff |= (unsigned char)(h[i] ^ hash[i]);
	return diff == 0;
}

bool herd_secret_equal(const char *a, const char *b)
{
	if (!a || !b || strlen(a) != strlen(b))
		return false;
	unsigned char diff = 0;
	for (size_t i = 0; a[i]; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}
