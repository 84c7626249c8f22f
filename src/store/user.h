/*
 * A user of the cluster's API as the replicated store holds it: the
 * password hash (yescrypt, crypt(3) format) and the role.
 */
#pragma once

#include "store/object.h"

#include <glib.h>
#include <jansson.h>

typedef struct store_user {
	const char *password_hash;  /* "" if none: no password matches */
	const char *role;           /* "admin" */
} store_user;

const store_user *store_user_of(const store_object *o);

json_t *store_user_cmd_create(const char *uuid, const char *name, const char *password_hash,
			      const char *role);

bool store_user_validate(json_t *data, GError **error);
void *store_user_parse(json_t *data);
void store_user_free(void *typed);
