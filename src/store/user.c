#include "store/user.h"

#include "store/command.h"
#include "store/fields.h"

void *store_user_parse(json_t *d)
{
	store_user *u = g_new0(store_user, 1);
	u->password_hash = field_text(d, "password_hash");
	u->role = field_text(d, "role");
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

bool store_user_validate(json_t *d, GError **error)
{
	return check_string(d, "user", "password_hash", error) && check_string(d, "user", "role", error);
}

json_t *store_user_cmd_create(const char *uuid, const char *name, const char *password_hash,
			      const char *role)
{
	return store_cmd_create(STORE_KIND_USER, uuid, name,
				json_pack("{s:s,s:s}", "password_hash", password_hash, "role", role));
}
