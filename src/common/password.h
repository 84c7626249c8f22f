/* Password hashes (yescrypt through libxcrypt) for API users. */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* A new hash of @password; NULL with an error if it is unacceptable. */
char *herd_password_hash(const char *password, GError **error);

/* True if @password matches @hash (constant time in the comparison). */
bool herd_password_verify(const char *password, const char *hash);

/* Passwords shorter than this are refused. */
#define HERD_PASSWORD_MIN 8

/* Are the secrets @a and @b (tokens, MACs) equal?  In time that depends on
 * their length only; NULL equals nothing. */
bool herd_secret_equal(const char *a, const char *b);
