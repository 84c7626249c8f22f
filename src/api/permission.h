/*
 * Who may do what.  Every route of the API declares the permission it
 * needs (routes.c, the route table's last column); the HTTP server asks
 * api_authorize() before each handler, so that no handler checks, or
 * forgets to check, on its own.  A user's access is its own role together
 * with the roles of the groups it belongs to (store/user.h, store/group.h);
 * the part that decides is pure (store state in, verdict out).
 */
#pragma once

#include "api/http.h"
#include "store/state.h"

#include <glib.h>
#include <stdbool.h>

typedef enum {
	API_PERM_UNDECLARED = 0, /* a route that declares nothing: refused */
	API_PERM_PUBLIC,         /* anyone (the route is HTTP_ROUTE_PUBLIC) */
	API_PERM_SESSION,        /* any user: its own session (login, logout, who am I) */
	API_PERM_READ,           /* admin, operator, auditor, monitor */
	API_PERM_VM_OPERATE,     /* admin; operator (of the {vm}'s pool, if its group names pools) */
	API_PERM_SELF,           /* admin; or the user that {user} names (its own password) */
	API_PERM_OWNER,          /* admin; or the user that started the {job} (herd job cancel) */
	API_PERM_ADMIN,          /* admin */
	API_PERM__COUNT
} api_perm;

/* "read", "admin"…, for messages and tests. */
const char *api_perm_name(api_perm perm);

/* What one user may do. */
typedef struct api_access {
	bool admin;
	bool read;
	bool monitor;            /* gets notification mails */
	bool operate_all;        /* operator of every VM */
	GPtrArray *pools;        /* operator of these pools' VMs (char*) */
	GPtrArray *roles;        /* every role it has, own and groups' (char*, sorted) */
} api_access;

/* The access of @user (a stored user) in @st. */
void api_access_of(store_state *st, const store_object *user, api_access *out);
/* The stored user named @name (NULL: none) and, if there is one, its
 * access into @out (api_access_clear() it); NULL, @out untouched, if no
 * such user exists (any more).  The one lookup behind api_authorize()
 * and api_request_may(). */
store_object *api_user_access(store_state *st, const char *name, api_access *out);
void api_access_clear(api_access *ac);

/*
 * May @ac (user @user) do what @perm asks, on VM @vm (for VM_OPERATE; NULL
 * if the path names none that exists) or for the user @target (SELF; for
 * OWNER: the owner of the job the path names, NULL if none)?  Else
 * false with a FORBIDDEN @error, a whole sentence naming the user, @what
 * (the request, "POST /api/v1/vms/x/start") and what it lacks.
 */
bool api_access_allows(const api_access *ac, const char *user, api_perm perm, const char *what,
		       const store_object *vm, const char *target, GError **error);

/* Has the user of @req (root on the local socket: every permission)
 * @perm, on VM @vm for VM_OPERATE?  (For what a handler shows, not for
 * the route: api_authorize() decided that.) */
bool api_request_may(http_request *req, store_state *st, api_perm perm, const store_object *vm);

/* The HTTP server's authorizer (http_authorize_fn); user data: api_ctx. */
bool api_authorize(http_request *req, gpointer user_data, GError **error);
