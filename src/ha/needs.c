#include "ha/needs.h"

#include "ha/reach.h"
#include "store/disk.h"
#include "store/network.h"
#include "store/storage.h"

#include <string.h>

struct herd_needs {
	store_state *st;
	GPtrArray *dirs;           /* store_object*: the dir storages (borrowed) */
	GHashTable *by_bridge;     /* bridge -> store_object* of its switch (borrowed) */
};

herd_needs *herd_needs_new(store_state *st)
{
	herd_needs *n = g_new0(herd_needs, 1);
	n->st = st;
	n->dirs = g_ptr_array_new();
	n->by_bridge = g_hash_table_new(g_str_hash, g_str_equal);
	g_autoptr(GPtrArray) storages = store_state_list(st, STORE_KIND_STORAGE);
	for (guint i = 0; i < storages->len; i++)
		if (store_storage_of(storages->pdata[i])->type == STORE_STORAGE_DIR)
			g_ptr_array_add(n->dirs, storages->pdata[i]);
	g_autoptr(GPtrArray) networks = store_state_list(st, STORE_KIND_NETWORK);
	/* An operator's XML names a bridge, not a VLAN: the untagged switch on
	 * it, if there is one, stands for the bridge. */
	for (guint i = 0; i < networks->len; i++) {
		const store_network *net = store_network_of(networks->pdata[i]);
		store_object *had = g_hash_table_lookup(n->by_bridge, net->bridge);
		if (!had || (store_network_of(had)->vlan && !net->vlan))
			g_hash_table_insert(n->by_bridge, (gpointer)net->bridge, networks->pdata[i]);
	}
	return n;
}

void herd_needs_free(herd_needs *n)
{
	if (!n)
		return;
	g_ptr_array_free(n->dirs, TRUE);
	g_hash_table_destroy(n->by_bridge);
	g_free(n);
}

/* Add @o (a storage or switch) once.  Its sentence is interned: the
 * scheduler's reasons outlive its input (sched_place()), and there are as
 * many as storages and switches were ever named. */
static void add(GArray *out, const store_object *o)
{
	if (!o)
		return;
	if (o->kind == STORE_KIND_STORAGE && !herd_reach_type_checked(store_storage_of(o)->type))
		return;
	for (guint i = 0; i < out->len; i++)
		if (strcmp(g_array_index(out, sched_need, i).id, o->uuid) == 0)
			return;
	g_autofree char *why = o->kind == STORE_KIND_STORAGE ?
		g_strdup_printf("storage %s is not reachable there", o->name) :
		g_strdup_printf("virtual switch %s is not there", o->name);
	sched_need need = { g_intern_string(o->uuid), g_intern_string(why) };
	g_array_append_val(out, need);
}

static void add_storage(herd_needs *n, GArray *out, const char *uuid)
{
	add(out, uuid ? store_state_get(n->st, STORE_KIND_STORAGE, uuid) : NULL);
}

/* The dir storage that holds @file, if any (storages do not overlap). */
static const store_object *dir_of(herd_needs *n, const char *file)
{
	for (guint i = 0; i < n->dirs->len; i++) {
		const store_object *o = n->dirs->pdata[i];
		const char *path = store_storage_of(o)->path;
		size_t len = strlen(path);
		if (strncmp(file, path, len) == 0 && file[len] == '/')
			return o;
	}
	return NULL;
}

/* An eSAN disk's need: a node with an up-to-date replica of it (store:
 * the replica states).  @only gets those nodes' names (interned). */
static void add_esan(herd_needs *n, GArray *out, GPtrArray *only, const store_object *disk)
{
	const store_disk *d = store_disk_of(disk);
	const char *names[3] = { NULL, NULL, NULL };
	size_t k = 0;
	GString *states = g_string_new(NULL);
	for (unsigned i = 0; i < 2; i++) {
		store_object *node = store_state_get(n->st, STORE_KIND_NODE, d->replicas[i].node);
		const char *name = node ? node->name : d->replicas[i].node;
		if (d->replicas[i].state == STORE_REPLICA_UPTODATE)
			names[k++] = g_intern_string(name);
		g_string_append_printf(states, "%s%s %s", i ? ", " : "", name,
				       store_replica_state_name(d->replicas[i].state));
	}
	g_autofree char *states_text = g_string_free(states, FALSE);
	g_autofree char *why =
		k == 2 ? g_strdup_printf("eSAN disk %s has its replicas on %s and %s only", disk->name,
					 names[0], names[1]) :
		k == 1 ? g_strdup_printf("eSAN disk %s is up to date only on %s (%s; should %s be lost for good, "
					 "'herd disk promote %s --force' accepts the other as it is)", disk->name,
					 names[0], states_text, names[0], disk->name) :
			 g_strdup_printf("eSAN disk %s has no up-to-date replica (%s; 'herd disk promote %s "
					 "--force' accepts one as it is)", disk->name, states_text, disk->name);
	sched_need need = { g_intern_string(disk->uuid), g_intern_string(why), NULL };
	g_array_append_val(out, need);
	g_ptr_array_add(only, g_memdup2(names, sizeof(names)));
}

sched_need *herd_needs_of(herd_needs *n, const store_vm *vm, size_t *count)
{
	*count = 0;
	const store_vm_hardware *hw = vm->hw;
	bool xml_uses = (vm->xml_files && vm->xml_files[0]) || (vm->xml_bridges && vm->xml_bridges[0]);
	if (!hw && !xml_uses)
		return NULL;
	GArray *out = g_array_new(FALSE, FALSE, sizeof(sched_need));
	/* Per need, NULL or its nodes (a 3-entry array): copied below into the
	 * block the caller frees, after the needs. */
	g_autoptr(GPtrArray) only = g_ptr_array_new_with_free_func(g_free);
	if (hw) {
		for (size_t i = 0; i < hw->n_disks; i++) {
			store_object *d = store_state_get(n->st, STORE_KIND_DISK, hw->disks[i].disk);
			if (d && store_disk_of(d)->esan) {
				add_esan(n, out, only, d);
				continue;
			}
			guint before = out->len;
			add_storage(n, out, d ? store_disk_of(d)->storage : NULL);
			if (out->len > before)
				g_ptr_array_add(only, NULL);
		}
		const char *isos[] = { hw->cdrom, hw->floppy };
		for (size_t i = 0; i < G_N_ELEMENTS(isos); i++) {
			store_object *iso = isos[i] ? store_state_get(n->st, STORE_KIND_ISO, isos[i]) : NULL;
			add_storage(n, out, iso ? store_iso_of(iso)->storage : NULL);
		}
		for (size_t i = 0; i < hw->n_nics; i++)
			add(out, store_state_get(n->st, STORE_KIND_NETWORK, hw->nics[i].network));
	} else {
		for (size_t i = 0; n->dirs->len && vm->xml_files && vm->xml_files[i]; i++)
			add(out, dir_of(n, vm->xml_files[i]));
		for (size_t i = 0; vm->xml_bridges && vm->xml_bridges[i]; i++)
			add(out, g_hash_table_lookup(n->by_bridge, vm->xml_bridges[i]));
	}
	*count = out->len;
	if (!out->len) {
		g_array_free(out, TRUE);
		return NULL;
	}
	/* One block: the needs, then the node lists of the eSAN ones. */
	size_t lists = 0;
	for (guint i = 0; i < only->len; i++)
		lists += only->pdata[i] != NULL;
	size_t head = out->len * sizeof(sched_need);
	sched_need *block = g_malloc(head + lists * 3 * sizeof(const char *));
	memcpy(block, out->data, head);
	const char **next = (const char **)((char *)block + head);
	for (guint i = 0; i < only->len; i++)
		if (only->pdata[i]) {
			memcpy(next, only->pdata[i], 3 * sizeof(const char *));
			block[i].only = next;
			next += 3;
		}
	g_array_free(out, TRUE);
	return block;
}
