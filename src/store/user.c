#include "store/user.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

void *store_user_parse(json_t *d)
{
	store_user *u = g_new0(store_user, 1);
	u->password_hash = field_text(d, "password_hash");
	u->role = field_text(d, "role");
	u->email = field_text(d, "email");
	u->session_key = field_text(d, "session_key");
	return u;
}

void store_user_free(void *typed)
{
	g_free(typed);
}

const store_user *store_user_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_USER);
	return o->typed;
}

bool store_role_valid(const char *role)
{
	if (!role || !*role)
		return false;
	g_auto(GStrv) roles = g_strsplit(STORE_ROLES, "|", -1);
	return g_strv_contains((const char *const *)roles, role);
}

bool store_email_valid(const char *email)
{
	const char *at = email ? strchr(email, '@') : NULL;
	if (!at || at == email || !at[1] || strchr(at + 1, '@') || strlen(email) > 254)
		return false;
	for (const char *c = email; *c; c++)
		if ((unsigned char)*c <= ' ' || strchr(",;<>\"()[]\\", *c))
			return false;
	return true;
}

/* @key, if present, is a string (empty: none). */
static bool check_text(json_t *d, const char *key, GError **error)
{
	json_t *v = json_object_get(d, key);
	if (v && !json_is_string(v)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The user's field '%s' must be a string.",
			    key);
		return false;
	}
	return true;
}

bool store_user_validate(json_t *d, GError **error)
{
	if (!check_string(d, "user", "password_hash", error) || !check_text(d, "role", error) ||
	    !check_text(d, "email", error) || !check_text(d, "session_key", error))
		return false;
	const char *role = field_str(d, "role");
	if (role && *role && !store_role_valid(role)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A user's role must be one of %s (or none), not '%s'.", STORE_ROLES, role);
		return false;
	}
	const char *email = field_str(d, "email");
	if (email && *email && !store_email_valid(email)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "'%s' is not a mail address (name@domain, without spaces or commas).", email);
		return false;
	}
	const char *key = field_str(d, "session_key");
	if (key && *key && strlen(key) != STORE_SESSION_KEY_LEN) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A user's session key must be %d hex digits.", STORE_SESSION_KEY_LEN);
		return false;
	}
	return true;
}

json_t *store_user_cmd_create(const char *uuid, const char *name, const char *password_hash,
			      const char *role)
{
	return store_cmd_create(STORE_KIND_USER, uuid, name,
				json_pack("{s:s,s:s}", "password_hash", password_hash, "role", role));
}

json_t *store_user_cmd_patch(const store_object *user, json_t *fields)
{
	return store_cmd_patch(STORE_KIND_USER, user->uuid, fields);
}

char *store_session_key_new(void)
{
	guint8 raw[STORE_SESSION_KEY_LEN / 2];
	ssize_t n;
	do
		n = getrandom(raw, sizeof(raw), 0);
	while (n < 0 && errno == EINTR);
	g_assert(n == (ssize_t)sizeof(raw));
	char *hex = g_malloc(STORE_SESSION_KEY_LEN + 1);
	for (size_t i = 0; i < sizeof(raw); i++)
		g_snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	explicit_bzero(raw, sizeof(raw));
	return hex;
}
