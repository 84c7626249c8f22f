#define G_LOG_DOMAIN "api"
#include "api/permission.h"

#include "store/job.h"

#include "api/common.h"
#include "api/routes.h"
#include "common/error.h"
#include "store/group.h"
#include "store/user.h"
#include "store/vm.h"

#include <stdarg.h>
#include <string.h>

const char *api_perm_name(api_perm perm)
{
	static const char *const names[API_PERM__COUNT] = {
		[API_PERM_UNDECLARED] = "undeclared", [API_PERM_PUBLIC] = "public",
		[API_PERM_SESSION] = "session",       [API_PERM_READ] = "read",
		[API_PERM_VM_OPERATE] = "vm-operate", [API_PERM_SELF] = "self", [API_PERM_OWNER] = "owner",
		[API_PERM_ADMIN] = "admin",
	};
	return (unsigned)perm < API_PERM__COUNT ? names[perm] : "?";
}

static void add_unique(GPtrArray *a, const char *s)
{
	for (guint i = 0; i < a->len; i++)
		if (strcmp(a->pdata[i], s) == 0)
			return;
	g_ptr_array_add(a, g_strdup(s));
}

/* Give @ac @role; @pools limits an operator role (NULL or empty: all VMs). */
static void grant(api_access *ac, const char *role, const char *const *pools)
{
	add_unique(ac->roles, role);
	if (strcmp(role, "admin") == 0) {
		ac->admin = ac->read = true;
	} else if (strcmp(role, "operator") == 0) {
		ac->read = true;
		if (!pools || !*pools)
			ac->operate_all = true;
		for (; pools && *pools; pools++)
			add_unique(ac->pools, *pools);
	} else if (strcmp(role, "auditor") == 0) {
		ac->read = true;
	} else if (strcmp(role, "monitor") == 0) {
		ac->read = ac->monitor = true;
	}
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void api_access_of(store_state *st, const store_object *user, api_access *out)
{
	*out = (api_access){ 0 };
	out->pools = g_ptr_array_new_with_free_func(g_free);
	out->roles = g_ptr_array_new_with_free_func(g_free);
	const store_user *u = store_user_of(user);
	if (*u->role)
		grant(out, u->role, NULL);
	g_autoptr(GPtrArray) groups = store_state_list(st, STORE_KIND_GROUP);
	for (guint i = 0; i < groups->len; i++) {
		const store_group *g = store_group_of(groups->pdata[i]);
		if (!store_group_has_member(g, user->uuid))
			continue;
		for (const char *const *r = g->roles; *r; r++)
			grant(out, *r, g->pools);
	}
	g_ptr_array_sort(out->roles, compare_strings);
}

store_object *api_user_access(store_state *st, const char *name, api_access *out)
{
	store_object *user = name ? store_state_get_by_name(st, STORE_KIND_USER, name) : NULL;
	if (user)
		api_access_of(st, user, out);
	return user;
}

void api_access_clear(api_access *ac)
{
	if (ac->pools)
		g_ptr_array_unref(ac->pools);
	if (ac->roles)
		g_ptr_array_unref(ac->roles);
	*ac = (api_access){ 0 };
}

/* "auditor, monitor", or "no role". */
static char *roles_text(const api_access *ac)
{
	if (!ac->roles->len)
		return g_strdup("no role");
	GString *s = g_string_new(ac->roles->len > 1 ? "roles " : "role ");
	for (guint i = 0; i < ac->roles->len; i++)
		g_string_append_printf(s, "%s%s", i ? ", " : "", (char *)ac->roles->pdata[i]);
	return g_string_free(s, FALSE);
}

static bool forbid(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool forbid(GError **error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_propagate_error(error, g_error_new_valist(HERD_ERROR, HERD_ERR_FORBIDDEN, fmt, ap));
	va_end(ap);
	return false;
}

bool api_access_allows(const api_access *ac, const char *user, api_perm perm, const char *what,
		       const store_object *vm, const char *target, GError **error)
{
	g_autofree char *has = ac ? roles_text(ac) : NULL;
	switch (perm) {
	case API_PERM_PUBLIC:
	case API_PERM_SESSION:
		return true;
	case API_PERM_READ:
		if (ac->read)
			return true;
		return forbid(error, "User '%s' (%s) may not read the cluster: %s needs one of the roles "
			      "admin, operator, auditor or monitor, its own or a group's.", user, has, what);
	case API_PERM_VM_OPERATE: {
		if (ac->admin || ac->operate_all)
			return true;
		const char *pool = vm ? store_vm_of(vm)->pool : NULL;
		for (guint i = 0; pool && i < ac->pools->len; i++)
			if (strcmp(ac->pools->pdata[i], pool) == 0)
				return true;
		if (!ac->pools->len)
			return forbid(error, "User '%s' (%s) may not start, stop or migrate VMs: %s needs "
				      "the operator or admin role.", user, has, what);
		g_autoptr(GString) pools = g_string_new(NULL);
		for (guint i = 0; i < ac->pools->len; i++)
			g_string_append_printf(pools, "%s'%s'", i ? ", " : "", (char *)ac->pools->pdata[i]);
		return forbid(error, "User '%s' operates only the VMs of pool %s; %s is refused, as %s%s%s%s.",
			      user, pools->str, what, vm ? "the VM is " : "it names no VM of such a pool",
			      vm ? (pool ? "in pool '" : "in no pool") : "", vm && pool ? pool : "",
			      vm && pool ? "'" : "");
	}
	case API_PERM_SELF:
		if (ac->admin || g_strcmp0(target, user) == 0)
			return true;
		return forbid(error, "User '%s' may change only its own password and session; %s "
			      "needs the admin role.", user, what);
	case API_PERM_OWNER:
		if (ac->admin || (target && g_strcmp0(target, user) == 0))
			return true;
		return forbid(error, "User '%s' may cancel only the jobs it started; %s is %s%s%s, and needs "
			      "the admin role.", user, what, target ? "user '" : "no job of its own",
			      target ? target : "", target ? "''s job" : "");
	case API_PERM_ADMIN:
		if (ac->admin)
			return true;
		return forbid(error, "User '%s' (%s) may not change this: %s needs the admin role.", user,
			      has, what);
	case API_PERM_UNDECLARED:
	case API_PERM__COUNT:
		break;
	}
	return forbid(error, "%s declares no permission, so no user may use it.", what);
}

bool api_request_may(http_request *req, store_state *st, api_perm perm, const store_object *vm)
{
	if (http_request_is_local_root(req))
		return true;
	const char *name = http_request_user(req);
	api_access ac;
	if (!api_user_access(st, name, &ac))
		return false;
	bool ok = api_access_allows(&ac, name, perm, "", vm, NULL, NULL);
	api_access_clear(&ac);
	return ok;
}

bool api_authorize(http_request *req, gpointer user_data, GError **error)
{
	api_ctx *a = user_data;
	const http_route *route = http_request_route(req);
	api_perm perm = (api_perm)route->perm;
	g_autofree char *what = g_strdup_printf("%s %s", http_request_method(req), http_request_path(req));
	if (perm == API_PERM_UNDECLARED || perm >= API_PERM__COUNT)
		return api_access_allows(NULL, NULL, API_PERM_UNDECLARED, what, NULL, NULL, error);
	if (perm == API_PERM_PUBLIC || http_request_is_local_root(req))
		return true;
	const char *name = http_request_user(req);
	/* A blank node's setup code (only a blank node accepts it) forms a
	 * cluster, and nothing else. */
	if (api_setup_user(name)) {
		if (route->handler == api_cluster_create || route->handler == api_cluster_join ||
		    route->handler == api_cluster_probe || route->handler == api_session_get)
			return true;
		g_set_error(error, HERD_ERROR, HERD_ERR_FORBIDDEN,
			    "The setup code creates or joins a cluster, nothing else (%s).", what);
		return false;
	}
	store_state *st = api_state(a);
	api_access ac;
	if (!api_user_access(st, name, &ac)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED, "User '%s' does not exist (any more).",
			    name ? name : "?");
		return false;
	}
	const char *vm_ref = http_request_param(req, "vm");
	store_object *vm = vm_ref ? store_state_lookup(st, STORE_KIND_VM, vm_ref) : NULL;
	/* The user a route names, by name or UUID, as its name; or the
	 * owner of the job it names. */
	const char *target = http_request_param(req, "user");
	store_object *t = target ? store_state_lookup(st, STORE_KIND_USER, target) : NULL;
	if (perm == API_PERM_OWNER) {
		const char *job_ref = http_request_param(req, "job");
		store_object *job = job_ref ? store_state_lookup(st, STORE_KIND_JOB, job_ref) : NULL;
		target = job ? store_job_of(job)->owner : NULL;
		t = NULL;
	}
	bool ok = api_access_allows(&ac, name, perm, what, vm, t ? t->name : target, error);
	/* A stolen session token must not become the password. */
	if (ok && perm == API_PERM_SELF && !ac.admin && http_request_by_token(req)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_FORBIDDEN,
			    "User '%s' changes its own password with its current password (HTTP Basic), "
			    "not with a session token.", name);
		ok = false;
	}
	api_access_clear(&ac);
	return ok;
}
