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
