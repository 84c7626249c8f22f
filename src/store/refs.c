#include "store/refs.h"

#include "common/error.h"
#include "store/disk.h"
#include "store/network.h"
#include "store/node.h"
#include "store/rule.h"
#include "store/storage.h"
#include "store/vm.h"

#include <string.h>

static bool missing(GError **error, const char *what, const char *uuid)
{
	g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND, "The %s %s does not exist.", what, uuid);
	return false;
}

store_object *store_refs_disk_user(store_state *st, const char *disk, const char *self)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_VM]);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const store_vm_hardware *hw = store_vm_of(v)->hw;
		for (size_t i = 0; hw && i < hw->n_disks; i++)
			if (strcmp(hw->disks[i].disk, disk) == 0 && g_strcmp0(((store_object *)v)->uuid, self) != 0)
				return v;
	}
	return NULL;
}

store_object *store_refs_mac_user(store_state *st, const char *mac, const char *self)
{
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	for (guint i = 0; i < vms->len; i++) {
		store_object *o = vms->pdata[i];
		const store_vm *vm = store_vm_of(o);
		if (self && strcmp(o->uuid, self) == 0)
			continue;
		for (size_t j = 0; vm->hw && j < vm->hw->n_nics; j++)
			if (g_ascii_strcasecmp(vm->hw->nics[j].mac, mac) == 0)
				return o;
		/* An operator's XML may name it too (its view tells which
		 * XMLs could: no unpacking of the others). */
		if (!vm->hw && store_vm_xml_may_have_mac(vm, mac)) {
			g_autofree char *xml = store_vm_xml(vm, NULL);
			if (!xml || strcasestr(xml, mac))
				return o; /* unreadable (a disk error): taken as a user */
		}
	}
	return NULL;
}

static bool check_vm(store_state *st, const store_object *o, GError **error)
{
	const store_vm_hardware *hw = store_vm_of(o)->hw;
	if (!hw)
		return true;
	for (size_t i = 0; i < hw->n_disks; i++) {
		if (!store_state_get(st, STORE_KIND_DISK, hw->disks[i].disk))
			return missing(error, "disk", hw->disks[i].disk);
		for (size_t j = 0; j < i; j++)
			if (strcmp(hw->disks[j].disk, hw->disks[i].disk) == 0) {
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "VM %s has disk %s twice.",
					    o->name, store_state_get(st, STORE_KIND_DISK, hw->disks[i].disk)->name);
				return false;
			}
		store_object *other = store_refs_disk_user(st, hw->disks[i].disk, o->uuid);
		if (other) {
			g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "Disk %s is VM %s's already.",
				    store_state_get(st, STORE_KIND_DISK, hw->disks[i].disk)->name, other->name);
			return false;
		}
	}
	for (size_t i = 0; i < hw->n_nics; i++) {
		if (!store_state_get(st, STORE_KIND_NETWORK, hw->nics[i].network))
			return missing(error, "virtual switch", hw->nics[i].network);
		/* One MAC on one NIC of the cluster, also between two changes
		 * that each node's API let through at the same time. */
		store_object *other = store_refs_mac_user(st, hw->nics[i].mac, o->uuid);
		for (size_t j = 0; !other && j < i; j++)
			if (g_ascii_strcasecmp(hw->nics[j].mac, hw->nics[i].mac) == 0)
				other = (store_object *)o;
		if (other) {
			g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "MAC address %s is in use already (VM %s).",
				    hw->nics[i].mac, other->name);
			return false;
		}
	}
	if (hw->cdrom && !store_state_get(st, STORE_KIND_ISO, hw->cdrom))
		return missing(error, "ISO", hw->cdrom);
	if (hw->floppy && !store_state_get(st, STORE_KIND_ISO, hw->floppy))
		return missing(error, "floppy image", hw->floppy);
	return true;
}

static bool check_on_storage(store_state *st, const store_object *o, const char *storage_uuid,
			     GError **error)
{
	store_object *s = store_state_get(st, STORE_KIND_STORAGE, storage_uuid);
	if (!s)
		return missing(error, "storage", storage_uuid);
	const store_storage *sto = store_storage_of(s);
	if (o->kind == STORE_KIND_ISO && !sto->cluster_share) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "ISO %s must be on the cluster share, and storage %s is not.", o->name, s->name);
		return false;
	}
	if (o->kind == STORE_KIND_DISK) {
		const store_disk *d = store_disk_of(o);
		if ((sto->type == STORE_STORAGE_DIR) != (d->file != NULL)) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    sto->type == STORE_STORAGE_DIR ? "Disk %s on dir storage %s must be a file." :
								     "Disk %s on iSCSI storage %s must be a LUN.",
				    o->name, s->name);
			return false;
		}
	}
	/* No two disks at the same place. */
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[o->kind]);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const store_object *other = v;
		if (strcmp(other->uuid, o->uuid) == 0)
			continue;
		bool same = o->kind == STORE_KIND_DISK ?
				    g_strcmp0(store_disk_of(other)->storage, storage_uuid) == 0 &&
					    g_strcmp0(store_disk_of(other)->file, store_disk_of(o)->file) == 0 &&
					    store_disk_of(other)->lun == store_disk_of(o)->lun :
				    strcmp(store_iso_of(other)->file, store_iso_of(o)->file) == 0;
		if (same) {
			g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "%s %s is at that place already.",
				    o->kind == STORE_KIND_DISK ? "Disk" : "ISO", other->name);
			return false;
		}
	}
	return true;
}

/* An eSAN disk's replicas are on nodes that exist; its port is its own. */
static bool check_esan(store_state *st, const store_object *o, GError **error)
{
	const store_disk *d = store_disk_of(o);
	for (unsigned i = 0; i < 2; i++)
		if (!store_state_get(st, STORE_KIND_NODE, d->replicas[i].node))
			return missing(error, "node", d->replicas[i].node);
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_DISK]);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const store_object *other = v;
		if (strcmp(other->uuid, o->uuid) != 0 && store_disk_of(other)->esan &&
		    store_disk_of(other)->port == d->port) {
			g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
				    "eSAN disk %s uses port %d already.", other->name, d->port);
			return false;
		}
	}
	return true;
}

/* A rule's VMs exist. */
static bool check_rule(store_state *st, const store_object *o, GError **error)
{
	const store_rule *r = store_rule_of(o);
	for (size_t i = 0; i < r->n_vms; i++)
		if (!store_state_get(st, STORE_KIND_VM, r->vms[i]))
			return missing(error, "VM", r->vms[i]);
	return true;
}

/*
 * Node ids and link addresses are the node's alone.  The member that adds a
 * node picks a free id and checks the addresses, but two members adding
 * nodes at the same time each pick from what they knew: the later change
 * is refused here, alike on every member, and its member tries again.
 */
static bool check_node(store_state *st, const store_object *o, GError **error)
{
	const store_node *me = store_node_of(o);
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_NODE]);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const store_object *other = v;
		if (strcmp(other->uuid, o->uuid) == 0)
			continue;
		const store_node *sn = store_node_of(other);
		if (sn->nodeid == me->nodeid) {
			g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
				    "Node id %u is node %s's already.", me->nodeid, other->name);
			return false;
		}
		for (size_t i = 0; i < sn->n_links; i++)
			for (size_t k = 0; k < me->n_links; k++)
				if (strcmp(sn->links[i], me->links[k]) == 0) {
					g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
						    "Address %s is already used by node %s.", me->links[k],
						    other->name);
					return false;
				}
	}
	return true;
}

bool store_refs_check(store_state *st, const store_object *o, GError **error)
{
	switch (o->kind) {
	case STORE_KIND_RULE:
		return check_rule(st, o, error);
	case STORE_KIND_VM:
		return check_vm(st, o, error);
	case STORE_KIND_DISK:
		if (store_disk_of(o)->esan)
			return check_esan(st, o, error);
		return check_on_storage(st, o, store_disk_of(o)->storage, error);
	case STORE_KIND_ISO:
		return check_on_storage(st, o, store_iso_of(o)->storage, error);
	case STORE_KIND_NODE:
		return check_node(st, o, error);
	default:
		return true;
	}
}

/* Does @xml name @path as a file (in quotes, as an attribute value)? */
static bool xml_names(const char *xml, const char *path)
{
	size_t n = strlen(path);
	for (const char *p = strstr(xml, path); p; p = strstr(p + 1, path))
		if (p > xml && (p[-1] == '\'' || p[-1] == '"') && p[n] == p[-1])
			return true;
	return false;
}

store_object *store_refs_user(store_state *st, const store_object *o)
{
	const char *storage = o->kind == STORE_KIND_DISK ? store_disk_of(o)->storage : store_iso_of(o)->storage;
	const char *file = o->kind == STORE_KIND_DISK ? store_disk_of(o)->file : store_iso_of(o)->file;
	g_autofree char *path = store_file_path(st, storage, file);
	/* A path without a character that JSON escapes is the same in the
	 * XML's JSON text: look there first (the text unpacked, each a few
	 * µs: a disk's or an ISO's delete), decode the XML only if it is. */
	bool plain = true;
	for (const char *c = path; c && *c && plain; c++)
		plain = (unsigned char)*c >= 0x20 && *c != '"' && *c != '\\';
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_VM]);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const store_vm *vm = store_vm_of(v);
		const store_vm_hardware *hw = vm->hw;
		if (!hw && path && vm->object) {
			/* A text that cannot be read (a disk error) is taken as
			 * a user: nothing is deleted that a VM may use. */
			g_autofree char *text = NULL, *xml = NULL;
			if (plain && !(text = store_object_encode(vm->object, NULL)))
				return v;
			if (!plain || strstr(text, path)) {
				xml = store_vm_xml(vm, NULL);
				if (!xml || xml_names(xml, path))
					return v;
			}
		}
		for (size_t i = 0; hw && o->kind == STORE_KIND_DISK && i < hw->n_disks; i++)
			if (strcmp(hw->disks[i].disk, o->uuid) == 0)
				return v;
		if (hw && o->kind == STORE_KIND_ISO &&
		    (g_strcmp0(hw->cdrom, o->uuid) == 0 || g_strcmp0(hw->floppy, o->uuid) == 0))
			return v;
	}
	return NULL;
}

static bool in_use(GError **error, const store_object *o, const char *user_kind, const char *user)
{
	g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "%s %s is in use by %s %s.",
		    o->kind == STORE_KIND_NETWORK ? "Virtual switch" :
		    o->kind == STORE_KIND_ISO	  ? "ISO" :
		    o->kind == STORE_KIND_DISK	  ? "Disk" :
						    "Storage",
		    o->name, user_kind, user);
	return false;
}

bool store_refs_check_delete(store_state *st, const store_object *o, GError **error)
{
	GHashTableIter it;
	gpointer v;
	switch (o->kind) {
	case STORE_KIND_DISK:
	case STORE_KIND_ISO: {
		store_object *vm = store_refs_user(st, o);
		return !vm || in_use(error, o, "VM", vm->name);
	}
	case STORE_KIND_NETWORK:
		g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_VM]);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			const store_vm_hardware *hw = store_vm_of(v)->hw;
			for (size_t i = 0; hw && i < hw->n_nics; i++)
				if (strcmp(hw->nics[i].network, o->uuid) == 0)
					return in_use(error, o, "VM", ((store_object *)v)->name);
		}
		return true;
	case STORE_KIND_STORAGE:
		for (unsigned i = 0; i < 2; i++) {
			store_kind k = i == 0 ? STORE_KIND_DISK : STORE_KIND_ISO;
			g_hash_table_iter_init(&it, st->by_uuid[k]);
			while (g_hash_table_iter_next(&it, NULL, &v)) {
				const char *on = k == STORE_KIND_DISK ? store_disk_of(v)->storage :
									store_iso_of(v)->storage;
				if (g_strcmp0(on, o->uuid) == 0)
					return in_use(error, o, store_kind_label(k), ((store_object *)v)->name);
			}
		}
		return true;
	case STORE_KIND_VM:
		/* A rule is deleted first: it never shrinks by itself. */
		g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_RULE]);
		while (g_hash_table_iter_next(&it, NULL, &v))
			if (store_rule_has(store_rule_of(v), o->uuid)) {
				g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
					    "VM %s is in rule %s: delete the rule first ('herd rule delete %s').",
					    o->name, ((store_object *)v)->name, ((store_object *)v)->name);
				return false;
			}
		return true;
	case STORE_KIND_NODE:
		g_hash_table_iter_init(&it, st->by_uuid[STORE_KIND_DISK]);
		while (g_hash_table_iter_next(&it, NULL, &v))
			if (store_disk_replica(store_disk_of(v), o->uuid)) {
				g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
					    "Node %s holds a replica of eSAN disk %s: delete the disk first.",
					    o->name, ((store_object *)v)->name);
				return false;
			}
		return true;
	default:
		return true;
	}
}
