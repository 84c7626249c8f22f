/*
 * Session tokens: what login gives, so that later requests need no
 * password.  A token names its user and its expiry and is signed (HMAC-
 * SHA-256) with the user's session key, which the replicated store holds:
 * any node verifies a token that any node made, and a new key (logout, a
 * new password) or the user's removal ends every token of the user at
 * once, on every node.  Pure: the time is passed in.
 *
 *   TOKEN = base64url(user) "." expires_s "." hex(HMAC(key, user "\n" expires_s))
 */
#pragma once

#include <glib.h>
#include <stdbool.h>

/* Longest and default life of a session. */
#define SESSION_TTL_MAX_S (7 * 24 * 3600)
#define SESSION_TTL_DEFAULT_S (12 * 3600)

/* A token for @user, signed with @key, valid until @expires_s (Unix time). */
char *session_token_make(const char *user, const char *key, gint64 expires_s);
/* The user a token names (g_free), or NULL if it is no token at all. */
char *session_token_user(const char *token);
/* Is @token signed with @key and not expired at @now_s?  Else false with an
 * UNAUTHORIZED @error saying which. */
bool session_token_check(const char *token, const char *key, gint64 now_s, GError **error);
