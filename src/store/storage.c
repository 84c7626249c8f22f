#include "store/storage.h"

#include "common/error.h"
#include "common/json.h"
#include "store/command.h"
#include "store/fields.h"

#include <stdarg.h>
#include <string.h>

const char *const store_share_dirs[] = { "images", "isos", "templates", "snapshots", NULL };

static const char *const type_names[] = { [STORE_STORAGE_DIR] = "dir", [STORE_STORAGE_ISCSI] = "iscsi" };

const char *store_storage_type_name(store_storage_type t)
{
	return (unsigned)t < G_N_ELEMENTS(type_names) ? type_names[t] : "?";
}

bool store_storage_type_parse(const char *s, store_storage_type *out)
{
	for (unsigned i = 0; s && i < G_N_ELEMENTS(type_names); i++)
		if (strcmp(s, type_names[i]) == 0) {
			*out = (store_storage_type)i;
			return true;
		}
	return false;
}

void *store_storage_parse(json_t *d)
{
	store_storage *s = g_new0(store_storage, 1);
	if (!store_storage_type_parse(field_str(d, "type"), &s->type))
		s->type = STORE_STORAGE_DIR;
	s->path = s->type == STORE_STORAGE_DIR ? field_text(d, "path") : NULL;
	s->portal = s->type == STORE_STORAGE_ISCSI ? field_text(d, "portal") : NULL;
	s->target = s->type == STORE_STORAGE_ISCSI ? field_text(d, "target") : NULL;
	s->cluster_share = s->type == STORE_STORAGE_DIR && field_bool(d, "cluster_share", false);
	return s;
}

void store_storage_free(void *typed)
{
	g_free(typed);
}

const store_storage *store_storage_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_STORAGE);
	return o->typed;
}

store_object *store_storage_share(store_state *st)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_STORAGE]);
	while (g_hash_table_iter_next(&it, NULL, &v))
		if (store_storage_of(v)->cluster_share)
			return v;
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */

static bool fail(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool fail(GError **error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error_literal(error, HERD_ERROR, HERD_ERR_INVALID, msg);
	return false;
}

/* An absolute path in its plain form: no "//", ".", ".." or trailing '/',
 * printable characters without spaces, and not "/" itself. */
static bool path_ok(const char *p)
{
	if (!p || p[0] != '/' || !p[1] || strlen(p) > 1024 || p[strlen(p) - 1] == '/')
		return false;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '\\' || *c == ',')
			return false;
	g_auto(GStrv) parts = g_strsplit(p + 1, "/", -1);
	for (char **e = parts; *e; e++)
		if (!**e || strcmp(*e, ".") == 0 || strcmp(*e, "..") == 0)
			return false;
	return true;
}

/* host[:port]: a DNS name, an IPv4 address or [IPv6]; port 1–65535. */
static bool portal_ok(const char *p)
{
	if (!p || !*p || strlen(p) > 255)
		return false;
	const char *host_end;
	if (p[0] == '[') {
		host_end = strchr(p, ']');
		if (!host_end || host_end == p + 1)
			return false;
		for (const char *c = p + 1; c < host_end; c++)
			if (!g_ascii_isxdigit(*c) && *c != ':' && *c != '.')
				return false;
		host_end++;
	} else {
		host_end = p;
		while (*host_end && *host_end != ':') {
			if (!g_ascii_isalnum(*host_end) && *host_end != '-' && *host_end != '.')
				return false;
			host_end++;
		}
		if (host_end == p)
			return false;
	}
	if (!*host_end)
		return true;
	if (*host_end != ':' || !host_end[1])
		return false;
	guint64 port;
	return g_ascii_string_to_unsigned(host_end + 1, 10, 1, 65535, &port, NULL);
}

/* An iSCSI name (RFC 3720 3.2.6): iqn.YYYY-MM.reversed.domain[:anything],
 * eui.<16 hex digits> or naa.<16 or 32 hex digits>; lower case. */
static bool iqn_ok(const char *t)
{
	if (!t || strlen(t) > 223)
		return false;
	for (const char *c = t; *c; c++)
		if (!(g_ascii_islower(*c) || g_ascii_isdigit(*c) || strchr("-.:", *c)))
			return false;
	if (g_str_has_prefix(t, "eui.") || g_str_has_prefix(t, "naa.")) {
		size_t n = strlen(t + 4);
		for (const char *c = t + 4; *c; c++)
			if (!g_ascii_isxdigit(*c))
				return false;
		return n == 16 || (t[0] == 'n' && n == 32);
	}
	return g_str_has_prefix(t, "iqn.") && strlen(t) > 12 && g_ascii_isdigit(t[4]) &&
	       g_ascii_isdigit(t[5]) && g_ascii_isdigit(t[6]) && g_ascii_isdigit(t[7]) && t[8] == '-' &&
	       g_ascii_isdigit(t[9]) && g_ascii_isdigit(t[10]) && t[11] == '.' && g_ascii_isalnum(t[12]);
}

bool store_storage_validate(json_t *d, GError **error)
{
	if (!check_choice(d, "storage", "type", "dir|iscsi", error) ||
	    !check_string(d, "storage", "path", error) || !check_string(d, "storage", "portal", error) ||
	    !check_string(d, "storage", "target", error) ||
	    !check_bool(d, "storage", "cluster_share", error))
		return false;
	store_storage_type type = STORE_STORAGE_DIR;
	store_storage_type_parse(field_str(d, "type"), &type);
	if (type == STORE_STORAGE_DIR && !path_ok(field_str(d, "path")))
		return fail(error, "A dir storage's field '%s' must be an absolute path in plain form "
			    "(no '.', '..', '//', spaces or trailing '/').", "path");
	if (type == STORE_STORAGE_ISCSI && !portal_ok(field_str(d, "portal")))
		return fail(error, "An iSCSI storage's field '%s' must be HOST or HOST:PORT.", "portal");
	if (type == STORE_STORAGE_ISCSI && !iqn_ok(field_str(d, "target")))
		return fail(error, "An iSCSI storage's field '%s' must be an iSCSI name "
			    "(iqn.YYYY-MM.domain[:name], eui.… or naa.…, lower case).", "target");
	if (type == STORE_STORAGE_ISCSI && field_bool(d, "cluster_share", false))
		return fail(error, "The cluster share must be a dir storage, not %s.", "iscsi");
	return true;
}

/* Is one of @a and @b the other or below it? */
static bool paths_overlap(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	const char *shorter = na <= nb ? a : b, *longer = na <= nb ? b : a;
	size_t n = MIN(na, nb);
	return strncmp(shorter, longer, n) == 0 && (longer[n] == '/' || !longer[n]);
}

bool store_storage_check(store_state *st, json_t *f, GError **error)
{
	static const char *const known[] = { "type", "path", "portal", "target", "cluster_share", NULL };
	const char *key;
	json_t *v;
	json_object_foreach(f, key, v)
		if (!g_strv_contains(known, key))
			return fail(error, "Unknown storage field '%s'.", key);
	if (!json_object_get(f, "type"))
		return fail(error, "A storage needs a type: %s.", "dir or iscsi");
	store_storage_type type = STORE_STORAGE_DIR;
	store_storage_type_parse(json_string_value(json_object_get(f, "type")), &type);
	const char *wrong = type == STORE_STORAGE_DIR ? (json_object_get(f, "portal") ? "portal" :
							 json_object_get(f, "target") ? "target" : NULL) :
							json_object_get(f, "path") ? "path" : NULL;
	if (wrong) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "%s storage has no field '%s'.",
			    type == STORE_STORAGE_DIR ? "A dir" : "An iSCSI", wrong);
		return false;
	}
	if (!store_storage_validate(f, error))
		return false;
	store_object *share = store_storage_share(st);
	if (json_is_true(json_object_get(f, "cluster_share")) && share) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "Storage %s is the cluster share already; a cluster has one.", share->name);
		return false;
	}
	GHashTableIter it;
	gpointer o;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_STORAGE]);
	while (g_hash_table_iter_next(&it, NULL, &o)) {
		const store_storage *s = store_storage_of(o);
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *target = json_string_value(json_object_get(f, "target"));
		bool same = type == STORE_STORAGE_DIR ?
				    s->type == STORE_STORAGE_DIR && paths_overlap(path, s->path) :
				    s->type == STORE_STORAGE_ISCSI && g_strcmp0(s->target, target) == 0;
		if (same) {
			g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
				    type == STORE_STORAGE_DIR ?
					    "Storage %s is at %s already: storages may not overlap." :
					    "Storage %s is target %s already.",
				    ((store_object *)o)->name, type == STORE_STORAGE_DIR ? s->path : s->target);
			return false;
		}
	}
	return true;
}

json_t *store_storage_cmd_create(const char *uuid, const char *name, json_t *fields)
{
	return store_cmd_create(STORE_KIND_STORAGE, uuid, name, json_deep_copy(fields));
}

json_t *store_storage_cmd_remove(const store_object *storage)
{
	return store_cmd_delete(STORE_KIND_STORAGE, storage->uuid, storage->version);
}

char *store_storage_marker(const char *cluster_uuid, const store_object *storage)
{
	g_autoptr(json_t) j = json_pack("{s:s,s:s,s:s}", "cluster", cluster_uuid, "storage",
					storage->uuid, "name", storage->name);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	char *out = g_strconcat(s, "\n", NULL);
	free(s);
	return out;
}

bool store_storage_marker_matches(const char *content, const char *cluster_uuid,
				  const store_object *storage)
{
	g_autoptr(json_t) j = content ? json_loads(content, 0, NULL) : NULL;
	return j && g_strcmp0(json_string_value(json_object_get(j, "cluster")), cluster_uuid) == 0 &&
	       g_strcmp0(json_string_value(json_object_get(j, "storage")), storage->uuid) == 0;
}
