/*
 * A group of users as the replicated store holds it: the roles it gives
 * its members (store/user.h's STORE_ROLES), the VM pools an operator role
 * is limited to (none: all VMs), and its members, by user UUID (a renamed
 * user stays a member; a removed one is taken out by the same change).
 */
#pragma once

#include "store/object.h"

#include <glib.h>
#include <jansson.h>

typedef struct store_group {
	const char *const *roles;    /* NULL-terminated */
	const char *const *pools;    /* NULL-terminated; empty: every VM */
	const char *const *members;  /* user UUIDs, NULL-terminated */
} store_group;

const store_group *store_group_of(const store_object *o);
/* Does @g have @role / the member @user_uuid? */
bool store_group_has_role(const store_group *g, const char *role);
bool store_group_has_member(const store_group *g, const char *user_uuid);

/* Has the stored @user the role @role, its own or one of its groups'? */
struct store_state;
bool store_user_has_role(struct store_state *st, const store_object *user, const char *role);

/* @roles, @pools, @members: arrays of strings (stolen). */
json_t *store_group_cmd_create(const char *uuid, const char *name, json_t *roles, json_t *pools,
			       json_t *members);
/* Merge @fields (stolen: "roles", "pools", "members") into @group. */
json_t *store_group_cmd_patch(const store_object *group, json_t *fields);

bool store_group_validate(json_t *data, GError **error);
void *store_group_parse(json_t *data);
void store_group_free(void *typed);
