/*
 * Who may do what (api/permission.h): every route declares a permission,
 * and a user's roles -- its own and its groups' -- decide; session tokens
 * (api/session_token.h); the stored users' and groups' checks; and whom the
 * notification mails go to (ha/notify.h).
 */
#include "api/permission.h"
#include "api/routes.h"
#include "api/session_token.h"
#include "common/error.h"
#include "ha/notify.h"
#include "store/command.h"
#include "store/group.h"
#include "store/user.h"

#include "teststore.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* The route table                                                     */

static void test_every_route_declares(void)
{
	g_assert_cmpuint(herd_api_n_routes, >, 50);
	for (size_t i = 0; i < herd_api_n_routes; i++) {
		const http_route *r = &herd_api_routes[i];
		g_autofree char *what = g_strdup_printf("%s %s", r->method, r->pattern);
		if (r->perm == API_PERM_UNDECLARED || r->perm >= API_PERM__COUNT)
			g_error("%s declares no permission", what);
		/* Public exactly where the server lets anyone in. */
		if ((r->perm == API_PERM_PUBLIC) != ((r->flags & HTTP_ROUTE_PUBLIC) != 0))
			g_error("%s: permission %s but flags %u", what, api_perm_name(r->perm), r->flags);
		/* A read never needs more than READ: auditors read everything. */
		if (strcmp(r->method, "GET") == 0 && r->perm != API_PERM_READ &&
		    r->perm != API_PERM_PUBLIC && r->perm != API_PERM_SESSION)
			g_error("%s: a read that needs %s", what, api_perm_name(r->perm));
		/* Whatever changes something needs more than READ (a what-if
		 * simulation changes nothing). */
		if (strcmp(r->method, "GET") != 0 && r->perm == API_PERM_READ &&
		    strcmp(r->pattern, "/api/v1/simulate") != 0)
			g_error("%s changes something with the permission to read", what);
		/* Operating a VM names it. */
		if (r->perm == API_PERM_VM_OPERATE)
			g_assert_nonnull(strstr(r->pattern, "{vm}"));
		if (r->perm == API_PERM_SELF)
			g_assert_nonnull(strstr(r->pattern, "{user}"));
		if (r->perm == API_PERM_OWNER)
			g_assert_nonnull(strstr(r->pattern, "{job}"));
	}
}

/* A route that declares nothing is refused, whoever asks. */
static void test_undeclared_refused(void)
{
	g_autoptr(GError) error = NULL;
	g_assert_false(api_access_allows(NULL, NULL, API_PERM_UNDECLARED, "GET /x", NULL, NULL, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_FORBIDDEN);
	g_assert_nonnull(strstr(error->message, "GET /x declares no permission"));
}

/* ------------------------------------------------------------------ */
/* Roles                                                               */

#define U_ADMIN "00000000-0000-4000-8000-000000000001"
#define U_AUD "00000000-0000-4000-8000-000000000002"
#define U_OP "00000000-0000-4000-8000-000000000003"
#define U_MON "00000000-0000-4000-8000-000000000004"
#define U_NONE "00000000-0000-4000-8000-000000000005"
#define U_OPALL "00000000-0000-4000-8000-000000000006"

static void add_user(test_store *t, const char *uuid, const char *name, const char *role,
		     const char *email)
{
	g_autoptr(json_t) cmd = store_cmd_create(STORE_KIND_USER, uuid, name,
						 json_pack("{s:s,s:s,s:s}", "password_hash", "x", "role",
							   role, "email", email));
	g_autoptr(GError) error = NULL;
	g_autoptr(json_t) r = test_store_apply(t, cmd, &error);
	g_assert_no_error(error);
}

static void add_group(test_store *t, const char *name, const char *roles, const char *pools,
		      const char *members)
{
	g_autofree char *uuid = g_uuid_string_random();
	g_autofree char *text = g_strdup_printf(
		"{\"op\":\"create\",\"kind\":\"group\",\"uuid\":\"%s\",\"name\":\"%s\","
		"\"data\":{\"roles\":%s,\"pools\":%s,\"members\":%s}}",
		uuid, name, roles, pools, members);
	test_store_apply_text(t, text);
}

static void add_vm(test_store *t, const char *name, const char *pool)
{
	g_autofree char *uuid = g_uuid_string_random();
	g_autofree char *text = g_strdup_printf(
		"{\"op\":\"create\",\"kind\":\"vm\",\"uuid\":\"%s\",\"name\":\"%s\","
		"\"data\":{\"xml\":\"<domain/>\"%s%s%s}}",
		uuid, name, pool ? ",\"pool\":\"" : "", pool ? pool : "", pool ? "\"" : "");
	test_store_apply_text(t, text);
}

static test_store *cluster(void)
{
	test_store *t = test_store_new();
	add_user(t, U_ADMIN, "admin", "admin", "root@example.com");
	add_user(t, U_AUD, "aud", "", "aud@example.com");
	add_user(t, U_OP, "op", "", "");
	add_user(t, U_MON, "mon", "", "mon@example.com");
	add_user(t, U_NONE, "nobody", "", "nobody@example.com");
	add_user(t, U_OPALL, "opall", "operator", "");
	add_group(t, "auditors", "[\"auditor\"]", "[]", "[\"" U_AUD "\"]");
	add_group(t, "webops", "[\"operator\"]", "[\"web\"]", "[\"" U_OP "\"]");
	add_group(t, "oncall", "[\"monitor\"]", "[]", "[\"" U_MON "\"]");
	add_vm(t, "web1", "web");
	add_vm(t, "db1", "db");
	add_vm(t, "plain", NULL);
	return t;
}

/* May user @name do @perm (on VM @vm)?  The refusal's sentence in *@why. */
static bool may(test_store *t, const char *name, api_perm perm, const char *vm, const char *target,
		char **why)
{
	store_object *v = vm ? store_state_get_by_name(t->st, STORE_KIND_VM, vm) : NULL;
	api_access ac;
	store_object *u = api_user_access(t->st, name, &ac);
	g_assert_nonnull(u);
	g_assert_cmpstr(u->name, ==, name);
	g_autoptr(GError) error = NULL;
	bool ok = api_access_allows(&ac, name, perm, "POST /api/v1/x", v, target, &error);
	api_access_clear(&ac);
	if (!ok) {
		g_assert_error(error, HERD_ERROR, HERD_ERR_FORBIDDEN);
		g_assert_nonnull(strstr(error->message, name));
		g_assert_true(g_str_has_suffix(error->message, "."));
	}
	if (why)
		*why = ok ? NULL : g_strdup(error->message);
	return ok;
}

static void test_roles(void)
{
	g_autoptr(test_store) t = cluster();
	g_autofree char *why = NULL;

	for (api_perm p = API_PERM_SESSION; p < API_PERM__COUNT; p++)
		g_assert_true(may(t, "admin", p, "db1", "aud", NULL));

	/* The one lookup: a user that is not (any more) has no access at all,
	 * and its access is left as it was. */
	api_access none = { .admin = true };
	g_assert_null(api_user_access(t->st, "gone", &none));
	g_assert_null(api_user_access(t->st, NULL, &none));
	g_assert_true(none.admin && !none.roles);

	/* The auditor (a group's role) reads, changes nothing. */
	g_assert_true(may(t, "aud", API_PERM_READ, NULL, NULL, NULL));
	g_assert_false(may(t, "aud", API_PERM_ADMIN, NULL, NULL, &why));
	g_assert_nonnull(strstr(why, "role auditor"));
	g_assert_nonnull(strstr(why, "needs the admin role"));
	g_clear_pointer(&why, g_free);
	g_assert_false(may(t, "aud", API_PERM_VM_OPERATE, "web1", NULL, NULL));
	g_assert_true(may(t, "aud", API_PERM_SELF, NULL, "aud", NULL));
	g_assert_false(may(t, "aud", API_PERM_SELF, NULL, "admin", NULL));
	/* A job's owner (@target) cancels it; nobody else but an admin. */
	g_assert_true(may(t, "aud", API_PERM_OWNER, NULL, "aud", NULL));
	g_assert_false(may(t, "aud", API_PERM_OWNER, NULL, "op", &why));
	g_assert_nonnull(strstr(why, "may cancel only the jobs it started"));
	g_assert_nonnull(strstr(why, "user 'op''s job"));
	g_clear_pointer(&why, g_free);
	g_assert_false(may(t, "aud", API_PERM_OWNER, NULL, NULL, &why));
	g_assert_nonnull(strstr(why, "no job of its own"));
	g_clear_pointer(&why, g_free);

	/* The operator limited to pool web: its VMs, no others. */
	g_assert_true(may(t, "op", API_PERM_READ, NULL, NULL, NULL));
	g_assert_true(may(t, "op", API_PERM_VM_OPERATE, "web1", NULL, NULL));
	g_assert_false(may(t, "op", API_PERM_VM_OPERATE, "db1", NULL, &why));
	g_assert_nonnull(strstr(why, "only the VMs of pool 'web'"));
	g_assert_nonnull(strstr(why, "in pool 'db'"));
	g_clear_pointer(&why, g_free);
	g_assert_false(may(t, "op", API_PERM_VM_OPERATE, "plain", NULL, &why));
	g_assert_nonnull(strstr(why, "in no pool"));
	g_clear_pointer(&why, g_free);
	g_assert_false(may(t, "op", API_PERM_ADMIN, NULL, NULL, NULL));

	/* An operator role of its own covers every VM. */
	g_assert_true(may(t, "opall", API_PERM_VM_OPERATE, "db1", NULL, NULL));
	g_assert_true(may(t, "opall", API_PERM_VM_OPERATE, "plain", NULL, NULL));
	g_assert_false(may(t, "opall", API_PERM_ADMIN, NULL, NULL, NULL));

	/* The monitor reads. */
	g_assert_true(may(t, "mon", API_PERM_READ, NULL, NULL, NULL));
	g_assert_false(may(t, "mon", API_PERM_VM_OPERATE, "web1", NULL, NULL));

	/* No role: its own session only. */
	g_assert_true(may(t, "nobody", API_PERM_SESSION, NULL, NULL, NULL));
	g_assert_false(may(t, "nobody", API_PERM_READ, NULL, NULL, &why));
	g_assert_nonnull(strstr(why, "no role"));
}

/* ------------------------------------------------------------------ */
/* Session tokens                                                      */

#define KEY1 "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY2 "2222222222222222222222222222222222222222222222222222222222222222"

static void expect_refused(const char *token, const char *key, gint64 now_s, const char *says)
{
	g_autoptr(GError) error = NULL;
	g_assert_false(session_token_check(token, key, now_s, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_UNAUTHORIZED);
	if (!strstr(error->message, says))
		g_error("'%s' does not say '%s'", error->message, says);
}

static void test_session_token(void)
{
	g_autofree char *tok = session_token_make("alice.b-c_d", KEY1, 2000);
	g_autofree char *user = session_token_user(tok);
	g_assert_cmpstr(user, ==, "alice.b-c_d");
	g_assert_true(session_token_check(tok, KEY1, 1999, NULL));
	/* Cookie- and header-safe. */
	for (const char *c = tok; *c; c++)
		g_assert_true(g_ascii_isalnum(*c) || strchr("-_.", *c));
	expect_refused(tok, KEY1, 2000, "has expired");
	/* Another key: logged out, a new password, or another cluster. */
	expect_refused(tok, KEY2, 1000, "has ended");
	expect_refused(tok, "", 1000, "has ended");
	expect_refused(tok, NULL, 1000, "has ended");
	/* A later expiry or another user breaks the signature. */
	g_autofree char *longer = g_strdup(tok);
	char *dot = strchr(longer, '.');
	dot[1] = '9';
	expect_refused(longer, KEY1, 1000, "has ended");
	g_autofree char *other = session_token_make("bob", KEY1, 2000);
	g_autofree char *forged = g_strconcat("Ym9i", strchr(tok, '.'), NULL); /* "bob" + alice's */
	expect_refused(forged, KEY1, 1000, "has ended");
	g_assert_true(session_token_check(other, KEY1, 1000, NULL));
	/* Malformed. */
	const char *bad[] = { "", "abc", "a.b", "YWxpY2U.x.y", "YWxpY2U..ff", "AA.100.ff", ".100.ff" };
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_assert_null(session_token_user(bad[i]));
		expect_refused(bad[i], KEY1, 1000, "malformed");
	}
}

/* ------------------------------------------------------------------ */
/* Stored users and groups                                             */

static void expect_invalid(store_kind kind, const char *data_text, const char *says)
{
	g_autoptr(json_t) d = json_loads(data_text, 0, NULL);
	g_assert_nonnull(d);
	g_autoptr(GError) error = NULL;
	g_assert_false(store_object_validate(kind, d, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, says))
		g_error("'%s' does not say '%s'", error->message, says);
}

static void test_validation(void)
{
	expect_invalid(STORE_KIND_USER, "{\"role\":\"boss\"}", "role must be one of");
	expect_invalid(STORE_KIND_USER, "{\"email\":\"no-at-sign\"}", "is not a mail address");
	expect_invalid(STORE_KIND_USER, "{\"email\":\"a@b, c@d\"}", "is not a mail address");
	expect_invalid(STORE_KIND_USER, "{\"session_key\":\"short\"}", "64 hex digits");
	expect_invalid(STORE_KIND_GROUP, "{\"roles\":[\"admin\",\"root\"]}", "entry 2");
	expect_invalid(STORE_KIND_GROUP, "{\"roles\":\"admin\"}", "must be a list");
	expect_invalid(STORE_KIND_GROUP, "{\"members\":[\"alice\"]}", "user UUIDs");
	expect_invalid(STORE_KIND_GROUP, "{\"pools\":[\"a b\"]}", "VM pool names");
	g_autoptr(json_t) ok = json_pack("{s:[s,s],s:[s],s:[s]}", "roles", "operator", "monitor", "pools",
					 "web", "members", U_OP);
	g_assert_true(store_object_validate(STORE_KIND_GROUP, ok, NULL));
	g_autofree char *key = store_session_key_new();
	g_autofree char *key2 = store_session_key_new();
	g_assert_cmpuint(strlen(key), ==, STORE_SESSION_KEY_LEN);
	g_assert_cmpstr(key, !=, key2);
}

/* ------------------------------------------------------------------ */
/* Notification recipients                                             */

static char *joined(char **v)
{
	return g_strjoinv(" ", v);
}

static void test_recipients(void)
{
	g_autoptr(test_store) t = cluster();
	g_autoptr(GError) error = NULL;
	/* The monitor group's members with an address. */
	g_auto(GStrv) r1 = herd_notify_recipients(t->st, NULL, &error);
	g_autofree char *s1 = joined(r1);
	g_assert_cmpstr(s1, ==, "mon@example.com");
	/* notify_to's addresses as well, each once. */
	g_auto(GStrv) r2 = herd_notify_recipients(t->st, "ticket@example.com, mon@example.com", &error);
	g_autofree char *s2 = joined(r2);
	g_assert_cmpstr(s2, ==, "mon@example.com ticket@example.com");
	/* The group empty: the administrators. */
	store_object *g = store_state_get_by_name(t->st, STORE_KIND_GROUP, "oncall");
	g_autoptr(json_t) cmd = store_group_cmd_patch(g, json_pack("{s:[]}", "members"));
	g_autoptr(json_t) res = test_store_apply(t, cmd, &error);
	g_assert_no_error(error);
	g_auto(GStrv) r3 = herd_notify_recipients(t->st, "", &error);
	g_autofree char *s3 = joined(r3);
	g_assert_cmpstr(s3, ==, "root@example.com");
	/* A bad notify_to is an error that names it. */
	g_assert_null(herd_notify_recipients(t->st, "not an address", &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "notify_to"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/permission/every-route-declares", test_every_route_declares);
	g_test_add_func("/permission/undeclared-refused", test_undeclared_refused);
	g_test_add_func("/permission/roles", test_roles);
	g_test_add_func("/permission/session-token", test_session_token);
	g_test_add_func("/permission/validation", test_validation);
	g_test_add_func("/permission/recipients", test_recipients);
	return g_test_run();
}
