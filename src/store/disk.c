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

void *store_disk_parse(json_t *d)
{
	store_disk *k = g_new0(store_disk, 1);
	k->storage = field_text(d, "storage");
	if (!store_disk_format_parse(field_str(d, "format"), &k->format))
		k->format = STORE_DISK_RAW;
	k->size = field_uint(d, "size", 0);
	k->file = field_str(d, "file");
	k->lun = json_is_integer(json_object_get(d, "lun")) ? (int)field_uint(d, "lun", 0) : -1;
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

bool store_disk_validate(json_t *d, GError **error)
{
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
