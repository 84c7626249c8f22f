#include "store/object.h"

#include "common/error.h"
#include "common/json.h"
#include "store/alert.h"
#include "store/cluster.h"
#include "store/db.h"
#include "store/disk.h"
#include "store/network.h"
#include "store/storage.h"
#include "store/fence_device.h"
#include "store/group.h"
#include "store/job.h"
#include "store/node.h"
#include "store/rule.h"
#include "store/state.h"
#include "store/user.h"
#include "store/vm.h"

#include <string.h>
#include <zlib.h>

/* Each kind's names and, where it has one, its typed view and its check. */
static const struct {
	const char *name;
	const char *label;
	void *(*parse)(json_t *data);
	void (*free)(void *typed);
	bool (*validate)(json_t *data, GError **error);
} kinds[STORE_KIND__COUNT] = {
	[STORE_KIND_CLUSTER] = { "cluster", "cluster", store_cluster_parse, store_cluster_free,
				 store_cluster_validate },
	[STORE_KIND_NODE] = { "node", "node", store_node_parse, store_node_free, store_node_validate },
	[STORE_KIND_VM] = { "vm", "VM", store_vm_parse, store_vm_free, store_vm_validate },
	[STORE_KIND_DISK] = { "disk", "disk", store_disk_parse, store_disk_free, store_disk_validate },
	[STORE_KIND_STORAGE] = { "storage", "storage", store_storage_parse, store_storage_free,
				 store_storage_validate },
	[STORE_KIND_FENCE_DEVICE] = { "fence_device", "fence device", store_fence_device_parse,
				      store_fence_device_free, store_fence_device_validate },
	[STORE_KIND_HOST] = { "host", "host" },
	[STORE_KIND_USER] = { "user", "user", store_user_parse, store_user_free, store_user_validate },
	[STORE_KIND_GROUP] = { "group", "group", store_group_parse, store_group_free,
			       store_group_validate },
	[STORE_KIND_ISO] = { "iso", "ISO", store_iso_parse, store_iso_free, store_iso_validate },
	[STORE_KIND_NETWORK] = { "network", "virtual switch", store_network_parse, store_network_free,
				 store_network_validate },
	[STORE_KIND_ALERT] = { "alert", "alert", store_alert_parse, store_alert_free, store_alert_validate },
	[STORE_KIND_RULE] = { "rule", "rule", store_rule_parse, store_rule_free, store_rule_validate },
	[STORE_KIND_JOB] = { "job", "job", store_job_parse, store_job_free, store_job_validate },
};

bool store_object_validate(store_kind kind, json_t *data, GError **error)
{
	return !kinds[kind].validate || kinds[kind].validate(data, error);
}

const char *store_kind_name(store_kind kind)
{
	return (unsigned)kind < STORE_KIND__COUNT ? kinds[kind].name : "?";
}

const char *store_kind_label(store_kind kind)
{
	return (unsigned)kind < STORE_KIND__COUNT ? kinds[kind].label : "object";
}

bool store_kind_parse(const char *name, store_kind *out)
{
	for (unsigned i = 0; name && i < STORE_KIND__COUNT; i++) {
		if (strcmp(kinds[i].name, name) == 0) {
			*out = (store_kind)i;
			return true;
		}
	}
	return false;
}

store_object *store_object_new(store_kind kind, const char *uuid, const char *name,
			       uint64_t version, int64_t created_ms, int64_t modified_ms,
			       json_t *data)
{
	/* Its name in its block: a block of its own was 32 bytes of heap
	 * more an object. */
	size_t name_size = name ? strlen(name) + 1 : 0;
	store_object *o = g_malloc0(sizeof(*o) + name_size);
	o->refcount = 1;
	o->kind = kind;
	g_strlcpy(o->uuid, uuid, sizeof(o->uuid));
	o->name = name ? memcpy((char *)(o + 1), name, name_size) : NULL;
	o->version = version;
	o->created_ms = created_ms;
	o->modified_ms = modified_ms;
	g_autoptr(json_t) d = data ? json_incref(data) : json_object();
	if (kinds[kind].parse)
		o->typed = kinds[kind].parse(d);
	if (kind == STORE_KIND_VM) {
		/* The view's strings are copied out of the tree, which goes. */
		g_autofree char *text = store_db_encode(d);
		if (!text)
			g_error("a VM's data could not be encoded");
		size_t len = strlen(text);
		o->text = store_packed_new(text, len);
		o->digest = store_object_text_digest(text, len);
		o->typed = store_vm_own(o->typed, text, o);
	} else {
		o->data = g_steal_pointer(&d);
	}
	return o;
}

json_t *store_object_data(const store_object *o, GError **error)
{
	if (o->data)
		return json_incref(o->data);
	json_error_t jerr;
	g_autofree char *text = store_object_encode(o, error);
	if (!text)
		return NULL;
	json_t *d = json_loads(text, JSON_ALLOW_NUL, &jerr);
	/* The text is what store_db_encode() made of a JSON object. */
	if (!json_is_object(d))
		g_error("a %s's kept text does not parse: %s", store_kind_label(o->kind), jerr.text);
	return d;
}

char *store_object_encode(const store_object *o, GError **error)
{
	if (o->text)
		return store_packed_text(o->text);
	if (o->cold)
		return store_state_cold_text(o->cold, o, error);
	if (!o->data) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO,
			    "The configuration of %s %s (version %llu) is lost: its store went while it was not in memory.",
			    store_kind_label(o->kind), o->uuid, (unsigned long long)o->version);
		return NULL;
	}
	return store_db_encode(o->data);
}

uint64_t store_object_text_digest(const char *text, size_t len)
{
	/* A check against a wrong row (a bug), not against an adversary: the
	 * rows are herd's own.  zlib's CRC-32 and Adler-32 side by side, a
	 * few µs less than a SHA-256 for each object made. */
	uLong crc = crc32(0L, Z_NULL, 0), adler = adler32(0L, Z_NULL, 0);
	crc = crc32(crc, (const Bytef *)text, (uInt)len);
	adler = adler32(adler, (const Bytef *)text, (uInt)len);
	return ((uint64_t)crc << 32) | (uint64_t)(adler & 0xffffffffu);
}

void store_object_set_cold(store_object *o, struct store_state *home)
{
	g_assert(o->kind == STORE_KIND_VM && home);
	g_clear_pointer(&o->text, store_packed_free);
	o->cold = home;
}

void store_object_set_warm(store_object *o, const char *text)
{
	g_assert(o->kind == STORE_KIND_VM && !o->text);
	o->text = store_packed_new(text, strlen(text));
	o->cold = NULL;
}

static const char *skip_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && p[1])
			p++;
	return *p ? p + 1 : p;
}

static const char *skip_value(const char *p)
{
	if (*p == '"')
		return skip_string(p);
	if (*p == '{' || *p == '[') {
		int depth = 0;
		while (*p) {
			if (*p == '"') {
				p = skip_string(p);
				continue;
			}
			if (*p == '{' || *p == '[')
				depth++;
			else if ((*p == '}' || *p == ']') && --depth == 0)
				return p + 1;
			p++;
		}
		return p;
	}
	while (*p && *p != ',' && *p != '}' && *p != ']')
		p++;
	return p;
}

bool store_text_next(const char **cursor, store_text_member *m)
{
	const char *p = *cursor;
	if (*p == '{' || *p == ',')
		p++;
	if (*p != '"')
		return false;
	const char *key = p;
	p = skip_string(p);
	if (*p != ':' || p - key < 2)
		return false;
	m->key = key + 1;
	m->key_len = (size_t)(p - key) - 2;
	m->value = ++p;
	p = skip_value(p);
	m->value_len = (size_t)(p - m->value);
	*cursor = p;
	return true;
}

bool store_text_member_get(const char *text, const char *key, store_text_member *m)
{
	size_t len = strlen(key);
	while (store_text_next(&text, m))
		if (m->key_len == len && memcmp(m->key, key, len) == 0)
			return true;
	return false;
}

store_object *store_object_ref(store_object *o)
{
	g_atomic_int_inc(&o->refcount);
	return o;
}

void store_object_unref(store_object *o)
{
	if (!o || !g_atomic_int_dec_and_test(&o->refcount))
		return;
	if (kinds[o->kind].free)
		kinds[o->kind].free(o->typed);
	json_decref(o->data);
	store_packed_free(o->text);
	g_free(o);
}

json_t *store_object_to_json(const store_object *o)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:o}", "kind", store_kind_name(o->kind),
			 "uuid", o->uuid, "name", o->name, "version", (json_int_t)o->version,
			 "created_ms", (json_int_t)o->created_ms, "modified_ms",
			 (json_int_t)o->modified_ms, "data", store_object_data(o, NULL));
}

store_object *store_object_from_json(json_t *j, GError **error)
{
	const char *kind_name = NULL, *uuid = NULL, *name = NULL;
	json_int_t version = 0, created = 0, modified = 0;
	json_t *data = NULL;
	json_error_t jerr;
	store_kind kind;
	if (json_unpack_ex(j, &jerr, JSON_STRICT, "{s:s,s:s,s:s,s:I,s:I,s:I,s:o}", "kind",
			   &kind_name, "uuid", &uuid, "name", &name, "version", &version,
			   "created_ms", &created, "modified_ms", &modified, "data", &data) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Malformed object: %s.", jerr.text);
		return NULL;
	}
	if (!store_kind_parse(kind_name, &kind) || !store_uuid_is_valid(uuid) ||
	    !json_is_object(data) || version < 1) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Malformed object: bad kind, UUID, version or data.");
		return NULL;
	}
	return store_object_new(kind, uuid, name, (uint64_t)version, created, modified, data);
}

bool store_uuid_is_valid(const char *uuid)
{
	if (!uuid || strlen(uuid) != STORE_UUID_LEN)
		return false;
	for (int i = 0; i < STORE_UUID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? uuid[i] != '-' : !(g_ascii_isdigit(uuid[i]) || (uuid[i] >= 'a' && uuid[i] <= 'f')))
			return false;
	}
	return true;
}

void store_uuid_generate(char out[STORE_UUID_LEN + 1])
{
	char *u = g_uuid_string_random();
	g_strlcpy(out, u, STORE_UUID_LEN + 1);
	g_free(u);
}

bool store_name_validate(store_kind kind, const char *name, GError **error)
{
	const char *label = store_kind_label(kind);
	size_t len = name ? strlen(name) : 0;
	if (len == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "A %s name must not be empty.", label);
		return false;
	}
	if (len > STORE_NAME_MAX) {
		/* Show its start, whole characters only; escaped if not UTF-8. */
		g_autofree char *start = g_utf8_validate(name, -1, NULL) ? g_utf8_substring(name, 0, 20)
									  : g_strescape(name, NULL);
		if (strlen(start) > 80)
			start[80] = '\0';
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The %s name '%s…' is longer than %d characters.", label, start, STORE_NAME_MAX);
		return false;
	}
	if (!g_ascii_isalnum(name[0])) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The %s name '%s' must start with a letter or digit.", label, name);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!g_ascii_isalnum(c) && c != '-' && c != '_' && c != '.') {
			g_autofree char *shown = g_strescape(name, NULL);
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The %s name '%s' contains a character other than letters, digits, '-', '_' and '.'.",
				    label, shown);
			return false;
		}
	}
	g_autofree char *lower = g_ascii_strdown(name, -1);
	/* Words that name something else where disks are named (a seed
	 * product broke every replicated disk when one was called "disk"). */
	static const char *const disk_reserved[] = { "disk", "disks", "esan", "san", "all",
						     "none", "list", "new", NULL };
	if (kind == STORE_KIND_DISK && g_strv_contains(disk_reserved, lower)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The disk name '%s' is a reserved word (%s); choose another.", name,
			    "disk, disks, esan, san, all, none, list, new");
		return false;
	}
	if (store_uuid_is_valid(lower)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The %s name '%s' looks like a UUID; choose a name that does not.", label,
			    name);
		return false;
	}
	return true;
}
