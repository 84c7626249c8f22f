#include "store/disk.h"

#include "common/error.h"
#include "common/size.h"
#include "store/command.h"
#include "store/fields.h"
#include "store/storage.h"

#include <string.h>

static const char *const format_names[] = { [STORE_DISK_QCOW2] = "qcow2", [STORE_DISK_RAW] = "raw" };

const char *store_disk_format_name(store_disk_format f)
{
	return (unsigned)f < G_N_ELEMENTS(format_names) ? format_names[f] : "?";
}

bool store_disk_format_parse(const char *s, store_disk_format *out)
{
	for (unsigned i = 0; s && i < G_N_ELEMENTS(format_names); i++)
		if (strcmp(s, format_names[i]) == 0) {
			*out = (store_disk_format)i;
			return true;
		}
	return false;
}

static const char *const replica_state_names[] = {
	[STORE_REPLICA_UPTODATE] = "uptodate",
	[STORE_REPLICA_OUTDATED] = "outdated",
	[STORE_REPLICA_INCONSISTENT] = "inconsistent",
};

const char *store_replica_state_name(store_replica_state s)
{
	return (unsigned)s < G_N_ELEMENTS(replica_state_names) ? replica_state_names[s] : "?";
}

bool store_replica_state_parse(const char *s, store_replica_state *out)
{
	for (unsigned i = 0; s && i < G_N_ELEMENTS(replica_state_names); i++)
		if (strcmp(s, replica_state_names[i]) == 0) {
			*out = (store_replica_state)i;
			return true;
		}
	return false;
}

static void parse_esan(store_disk *k, json_t *e)
{
	k->esan = true;
	k->port = (int)field_uint(e, "port", 0);
	k->gen = field_text(e, "gen");
	json_t *r = json_object_get(e, "replicas");
	for (unsigned i = 0; i < 2; i++) {
		json_t *one = json_array_get(r, i);
		k->replicas[i].node = field_text(one, "node");
		if (!store_replica_state_parse(field_str(one, "state"), &k->replicas[i].state))
			k->replicas[i].state = STORE_REPLICA_INCONSISTENT;
		k->replicas[i].discard = field_bool(one, "discard", false);
	}
	k->sync_by = field_str(e, "sync_by");
	json_t *at = json_object_get(e, "attach");
	if (json_is_object(at)) {
		k->attach.id = (int64_t)field_uint(at, "id", 0);
		k->attach.node = field_str(at, "node");
	}
	json_t *v = json_object_get(e, "verify");
	store_esan_verify *ver = &k->verify;
	ver->first = -1;
	if (json_is_object(v)) {
		ver->id = (int64_t)field_uint(v, "id", 0);
		ver->node = field_str(v, "node");
		json_t *res = json_object_get(v, "result");
		if (json_is_object(res)) {
			ver->done = true;
			ver->equal = field_bool(res, "equal", false);
			ver->differ = field_uint(res, "differ", 0);
			ver->first = json_is_integer(json_object_get(res, "first")) ? (int64_t)field_uint(res, "first", 0) : -1;
			ver->compared = field_uint(res, "compared", 0);
			ver->time_ms = (int64_t)field_uint(res, "time_ms", 0);
			ver->error = field_str(res, "error");
		}
	}
}

void *store_disk_parse(json_t *d)
{
	store_disk *k = g_new0(store_disk, 1);
	k->storage = field_str(d, "storage");
	if (!store_disk_format_parse(field_str(d, "format"), &k->format))
		k->format = STORE_DISK_RAW;
	k->size = field_uint(d, "size", 0);
	k->file = field_str(d, "file");
	k->lun = json_is_integer(json_object_get(d, "lun")) ? (int)field_uint(d, "lun", 0) : -1;
	if (json_is_object(json_object_get(d, "esan")))
		parse_esan(k, json_object_get(d, "esan"));
	return k;
}

void store_disk_free(void *typed)
{
	g_free(typed);
}

const store_disk *store_disk_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_DISK);
	return o->typed;
}

/* A relative path below a storage: "DIR/NAME" with DIR one of the share's
 * directories and NAME a store name (no '/', no leading '.'). */
static bool file_ok(const char *file, const char *dir)
{
	if (!file || !g_str_has_prefix(file, dir) || file[strlen(dir)] != '/')
		return false;
	const char *base = file + strlen(dir) + 1;
	if (!*base || *base == '.' || strlen(base) > 80)
		return false;
	for (const char *c = base; *c; c++)
		if (!g_ascii_isalnum(*c) && !strchr("-_.", *c))
			return false;
	return true;
}

static bool need(bool ok, const char *what, GError **error)
{
	if (!ok)
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "%s", what);
	return ok;
}

static bool gen_ok(const char *s)
{
	if (!s || strlen(s) != 16)
		return false;
	for (const char *c = s; *c; c++)
		if (!g_ascii_isxdigit(*c))
			return false;
	return strspn(s, "0") != 16;
}

static bool validate_esan(json_t *d, GError **error)
{
	json_t *e = json_object_get(d, "esan");
	json_t *r = json_object_get(e, "replicas");
	if (!json_is_object(e) || !need(json_object_get(d, "storage") == NULL && json_object_get(d, "file") == NULL &&
					       json_object_get(d, "lun") == NULL,
				       "An eSAN disk is on no storage: no field 'storage', 'file' or 'lun'.", error) ||
	    !need(g_strcmp0(field_str(d, "format"), "raw") == 0, "An eSAN disk's format is raw.", error) ||
	    !check_uint(e, "eSAN disk", "port", STORE_ESAN_PORT_MIN, STORE_ESAN_PORT_MAX, error) ||
	    !need(json_is_integer(json_object_get(e, "port")), "An eSAN disk needs a port.", error) ||
	    !need(gen_ok(field_str(e, "gen")),
		  "An eSAN disk's field 'gen' must be 16 hex digits, not all zero.", error) ||
	    !need(json_is_array(r) && json_array_size(r) == 2, "An eSAN disk has exactly two replicas.", error))
		return false;
	for (unsigned i = 0; i < 2; i++) {
		json_t *one = json_array_get(r, i);
		store_replica_state st;
		if (!need(json_is_object(one) && store_uuid_is_valid(field_str(one, "node")),
			  "An eSAN replica's field 'node' must be a node's UUID.", error) ||
		    !need(store_replica_state_parse(field_str(one, "state"), &st),
			  "An eSAN replica's state is uptodate, outdated or inconsistent.", error) ||
		    !check_bool(one, "eSAN replica", "discard", error) ||
		    !need(!(st == STORE_REPLICA_UPTODATE && field_bool(one, "discard", false)),
			  "An up-to-date eSAN replica is not discarded.", error))
			return false;
	}
	json_t *v = json_object_get(e, "verify");
	if (v && !(json_is_object(v) && json_is_integer(json_object_get(v, "id")) &&
		   store_uuid_is_valid(field_str(v, "node")) &&
		   (!json_object_get(v, "result") || json_is_object(json_object_get(v, "result"))))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "An eSAN disk's field 'verify' has an id, a node's UUID and maybe a result.");
		return false;
	}
	json_t *at = json_object_get(e, "attach");
	if (at && !(json_is_object(at) && json_is_integer(json_object_get(at, "id")) &&
		    store_uuid_is_valid(field_str(at, "node")))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "An eSAN disk's field 'attach' has an id and a node's UUID.");
		return false;
	}
	if (!check_string(e, "eSAN disk", "sync_by", error))
		return false;
	return need(strcmp(field_str(json_array_get(r, 0), "node"), field_str(json_array_get(r, 1), "node")) != 0,
		    "An eSAN disk's two replicas are on two different nodes.", error);
}

bool store_disk_validate(json_t *d, GError **error)
{
	if (json_object_get(d, "esan"))
		return check_uint(d, "disk", "size", 1, STORE_DISK_SIZE_MAX, error) &&
		       need(json_object_get(d, "size") != NULL, "A disk needs a size.", error) &&
		       validate_esan(d, error);
	return check_string(d, "disk", "storage", error) &&
	       check_choice(d, "disk", "format", "qcow2|raw", error) &&
	       check_uint(d, "disk", "size", 1, STORE_DISK_SIZE_MAX, error) &&
	       check_string(d, "disk", "file", error) &&
	       check_uint(d, "disk", "lun", 0, STORE_DISK_LUN_MAX, error) &&
	       need(store_uuid_is_valid(field_str(d, "storage")),
		    "A disk's field 'storage' must be a storage's UUID.", error) &&
	       need(json_object_get(d, "size") != NULL, "A disk needs a size.", error) &&
	       need((json_object_get(d, "file") != NULL) != (json_object_get(d, "lun") != NULL),
		    "A disk is either a file (on a dir storage) or a LUN (on iSCSI).", error) &&
	       need(!json_object_get(d, "file") || file_ok(field_str(d, "file"), "images"),
		    "A disk's field 'file' must be images/NAME.", error);
}

#define SECTOR_BYTES UINT64_C(512)

bool store_disk_size_parse(const char *s, uint64_t *out, GError **error)
{
	uint64_t v;
	if (!herd_size_parse(s, STORE_DISK_SIZE_MAX, "disk size", &v, error))
		return false;
	if (v % SECTOR_BYTES) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The disk size '%s' is not a whole number of 512-byte sectors.", s);
		return false;
	}
	*out = v;
	return true;
}

bool store_disk_grow_parse(const char *name, const char *s, uint64_t current, uint64_t *out,
			   GError **error)
{
	bool relative = s && *s == '+';
	uint64_t v;
	if (!store_disk_size_parse(relative ? s + 1 : s, &v, error))
		return false;
	if (relative) {
		if (v > STORE_DISK_SIZE_MAX - MIN(current, STORE_DISK_SIZE_MAX)) {
			g_autofree char *m = herd_size_format(STORE_DISK_SIZE_MAX);
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Disk %s cannot grow by %s: a disk has at most %s.", name, s + 1, m);
			return false;
		}
		v += current;
	}
	if (v <= current) {
		g_autofree char *now = herd_size_format(current), *asked = herd_size_format(v);
		if (v == current)
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Disk %s is %s already.", name, now);
		else
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Disk %s is %s; herd grows disks but never shrinks them (%s asked), "
				    "as shrinking would cut off what the guest wrote at its end.",
				    name, now, asked);
		return false;
	}
	*out = v;
	return true;
}

char *store_disk_file_for(const char *name, store_disk_format format)
{
	return g_strdup_printf("images/%s.%s", name, store_disk_format_name(format));
}

json_t *store_disk_cmd_create(const char *uuid, const char *name, const store_object *storage,
			      store_disk_format format, uint64_t size, const char *file, int lun)
{
	json_t *d = json_pack("{s:s,s:s,s:I}", "storage", storage->uuid, "format",
			      store_disk_format_name(format), "size", (json_int_t)size);
	if (file)
		json_object_set_new(d, "file", json_string(file));
	else
		json_object_set_new(d, "lun", json_integer(lun));
	return store_cmd_create(STORE_KIND_DISK, uuid, name, d);
}

json_t *store_disk_cmd_create_esan(const char *uuid, const char *name, uint64_t size,
				   const char *const nodes[2], int port, const char *gen)
{
	json_t *replicas = json_array();
	for (unsigned i = 0; i < 2; i++)
		json_array_append_new(replicas, json_pack("{s:s,s:s}", "node", nodes[i], "state",
							  store_replica_state_name(STORE_REPLICA_UPTODATE)));
	return store_cmd_create(STORE_KIND_DISK, uuid, name,
				json_pack("{s:s,s:I,s:{s:i,s:s,s:o}}", "format", "raw", "size", (json_int_t)size,
					  "esan", "port", port, "gen", gen, "replicas", replicas));
}

/* A patch of the disk's "esan" object (its members named are replaced
 * whole, the others stay), if the disk is still at the version the caller
 * saw. */
static json_t *esan_patch(const store_object *disk, json_t *esan)
{
	json_t *cmd = store_cmd_patch(STORE_KIND_DISK, disk->uuid, json_pack("{s:o}", "esan", esan));
	store_cmd_if_version(cmd, disk->version);
	return cmd;
}

static json_t *replicas_json(const store_disk *d, const store_replica_state states[2], const bool discard[2])
{
	json_t *replicas = json_array();
	for (unsigned i = 0; i < 2; i++) {
		json_t *r = json_pack("{s:s,s:s}", "node", d->replicas[i].node, "state",
				      store_replica_state_name(states[i]));
		if (discard[i])
			json_object_set_new(r, "discard", json_true());
		json_array_append_new(replicas, r);
	}
	return replicas;
}

json_t *store_disk_cmd_replicas(const store_object *disk, const store_replica_state states[2])
{
	const store_disk *d = store_disk_of(disk);
	g_assert(d->esan);
	bool discard[2];
	for (unsigned i = 0; i < 2; i++)
		discard[i] = d->replicas[i].discard && states[i] != STORE_REPLICA_UPTODATE;
	return esan_patch(disk, json_pack("{s:o}", "replicas", replicas_json(d, states, discard)));
}

json_t *store_disk_cmd_keep(const store_object *disk, unsigned keep)
{
	const store_disk *d = store_disk_of(disk);
	g_assert(d->esan && keep < 2);
	store_replica_state states[2];
	bool discard[2];
	for (unsigned i = 0; i < 2; i++) {
		states[i] = i == keep ? STORE_REPLICA_UPTODATE : STORE_REPLICA_OUTDATED;
		discard[i] = i != keep;
	}
	return esan_patch(disk, json_pack("{s:o,s:s}", "replicas", replicas_json(d, states, discard), "sync_by",
					  "system"));
}

void store_disk_cmd_sync_by(json_t *cmd, const char *user)
{
	json_t *esan = json_object_get(json_object_get(cmd, "data"), "esan");
	g_assert(json_is_object(esan));
	json_object_set_new(esan, "sync_by", json_string(user));
}

json_t *store_disk_cmd_attach(const store_object *disk, const char *node_uuid, const char *user)
{
	const store_disk *d = store_disk_of(disk);
	g_assert(d->esan);
	return esan_patch(disk, json_pack("{s:{s:I,s:s},s:s}", "attach", "id", (json_int_t)(d->attach.id + 1), "node",
					  node_uuid, "sync_by", user));
}

json_t *store_disk_cmd_verify(const store_object *disk, const char *node_uuid)
{
	const store_disk *d = store_disk_of(disk);
	g_assert(d->esan);
	/* "verify" is replaced whole (apply merges two levels deep): an
	 * earlier result goes. */
	return esan_patch(disk, json_pack("{s:{s:I,s:s}}", "verify", "id", (json_int_t)(d->verify.id + 1),
					  "node", node_uuid));
}

json_t *store_disk_cmd_verified(const store_object *disk, int64_t id, bool equal, uint64_t differ,
				int64_t first, uint64_t compared, const char *error, int64_t now_ms)
{
	const store_disk *d = store_disk_of(disk);
	if (!d->esan || d->verify.id != id || d->verify.done)
		return NULL;
	json_t *r = json_pack("{s:b,s:I,s:I,s:I}", "equal", equal, "differ", (json_int_t)differ, "compared",
			      (json_int_t)compared, "time_ms", (json_int_t)now_ms);
	json_object_set_new(r, "first", first >= 0 ? json_integer(first) : json_null());
	if (error)
		json_object_set_new(r, "error", json_string(error));
	return esan_patch(disk, json_pack("{s:{s:I,s:s,s:o}}", "verify", "id", (json_int_t)id, "node", d->verify.node,
					  "result", r));
}

const store_replica *store_disk_replica(const store_disk *d, const char *node_uuid)
{
	for (unsigned i = 0; d->esan && node_uuid && i < 2; i++)
		if (strcmp(d->replicas[i].node, node_uuid) == 0)
			return &d->replicas[i];
	return NULL;
}

const store_replica *store_disk_peer(const store_disk *d, const char *node_uuid)
{
	const store_replica *mine = store_disk_replica(d, node_uuid);
	return mine ? &d->replicas[mine == &d->replicas[0] ? 1 : 0] : NULL;
}

char *store_esan_socket(const char *uuid)
{
	return g_strdup_printf(HERD_SAN_RUN_DIR "/%s.sock", uuid);
}

int store_esan_free_port(store_state *st)
{
	g_autoptr(GPtrArray) disks = store_state_list(st, STORE_KIND_DISK);
	for (int port = STORE_ESAN_PORT_MIN; port <= STORE_ESAN_PORT_MAX; port++) {
		bool taken = false;
		for (guint i = 0; i < disks->len && !taken; i++) {
			const store_disk *d = store_disk_of(disks->pdata[i]);
			taken = d->esan && d->port == port;
		}
		if (!taken)
			return port;
	}
	return -1;
}

json_t *store_disk_cmd_resize(const store_object *disk, uint64_t size)
{
	json_t *cmd = store_cmd_patch(STORE_KIND_DISK, disk->uuid, json_pack("{s:I}", "size", (json_int_t)size));
	store_cmd_if_version(cmd, disk->version);
	return cmd;
}

json_t *store_disk_cmd_delete(const store_object *disk)
{
	return store_cmd_delete(STORE_KIND_DISK, disk->uuid, disk->version);
}

/* ------------------------------------------------------------------ */
/* ISOs                                                                */

void *store_iso_parse(json_t *d)
{
	store_iso *i = g_new0(store_iso, 1);
	i->storage = field_text(d, "storage");
	i->file = field_text(d, "file");
	i->size = field_uint(d, "size", 0);
	i->sha256 = field_text(d, "sha256");
	return i;
}

void store_iso_free(void *typed)
{
	g_free(typed);
}

const store_iso *store_iso_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_ISO);
	return o->typed;
}

static bool sha256_ok(const char *s)
{
	if (!s || strlen(s) != 64)
		return false;
	for (const char *c = s; *c; c++)
		if (!g_ascii_isdigit(*c) && !(*c >= 'a' && *c <= 'f'))
			return false;
	return true;
}

bool store_iso_validate(json_t *d, GError **error)
{
	return check_string(d, "ISO", "storage", error) &&
	       check_uint(d, "ISO", "size", 1, STORE_ISO_SIZE_MAX, error) &&
	       need(store_uuid_is_valid(field_str(d, "storage")),
		    "An ISO's field 'storage' must be a storage's UUID.", error) &&
	       need(file_ok(field_str(d, "file"), "isos"), "An ISO's field 'file' must be isos/NAME.", error) &&
	       need(json_object_get(d, "size") != NULL, "An ISO needs a size.", error) &&
	       need(sha256_ok(field_str(d, "sha256")),
		    "An ISO's field 'sha256' must be 64 lower-case hex digits.", error);
}

char *store_iso_file_for(const char *name)
{
	return g_strdup_printf("isos/%s", name);
}

json_t *store_iso_cmd_create(const char *uuid, const char *name, const store_object *share,
			     uint64_t size, const char *sha256)
{
	g_autofree char *file = store_iso_file_for(name);
	return store_cmd_create(STORE_KIND_ISO, uuid, name,
				json_pack("{s:s,s:s,s:I,s:s}", "storage", share->uuid, "file", file,
					  "size", (json_int_t)size, "sha256", sha256));
}

json_t *store_iso_cmd_delete(const store_object *iso)
{
	return store_cmd_delete(STORE_KIND_ISO, iso->uuid, iso->version);
}

char *store_file_path(store_state *st, const char *storage_uuid, const char *file)
{
	store_object *s = storage_uuid ? store_state_get(st, STORE_KIND_STORAGE, storage_uuid) : NULL;
	if (!s || !file || store_storage_of(s)->type != STORE_STORAGE_DIR)
		return NULL;
	return g_strdup_printf("%s/%s", store_storage_of(s)->path, file);
}
