/*
 * A user of the cluster's API as the replicated store holds it: the
 * password hash (yescrypt, crypt(3) format), its own role, a mail address
 * for notifications, and the key its sessions are signed with (a new key
 * ends every session of the user: logout, a new password).  Groups
 * (store/group.h) give users further roles.
 */
#pragma once

#include "store/object.h"

#include <glib.h>
#include <jansson.h>

/* The roles, from most to least: "admin" changes everything; "operator"
 * starts, stops and migrates VMs (a group may limit it to VM pools) and
 * reads; "auditor" reads; "monitor" reads and gets the notification
 * mails.  "" (none): only what the user's groups give. */
#define STORE_ROLES "admin|operator|auditor|monitor"

/* A session key: 32 random bytes as 64 hex digits. */
#define STORE_SESSION_KEY_LEN 64

typedef struct store_user {
	const char *password_hash;  /* "" if none: no password matches */
	const char *role;           /* one of STORE_ROLES, or "" */
	const char *email;          /* "" if none */
	const char *session_key;    /* "" until the first login */
} store_user;

const store_user *store_user_of(const store_object *o);

/* Is @role one of STORE_ROLES?  ("" is not.) */
bool store_role_valid(const char *role);
/* A rough check of a mail address: local@domain, no spaces or commas. */
bool store_email_valid(const char *email);

json_t *store_user_cmd_create(const char *uuid, const char *name, const char *password_hash,
			      const char *role);
/* Merge @fields (stolen: "password_hash", "role", "email", "session_key";
 * null removes one) into @user. */
json_t *store_user_cmd_patch(const store_object *user, json_t *fields);
/* A new random session key (g_free). */
char *store_session_key_new(void);

bool store_user_validate(json_t *data, GError **error);
void *store_user_parse(json_t *data);
void store_user_free(void *typed);
