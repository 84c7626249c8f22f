#include "ha/esan.h"

#include "common/error.h"
#include "store/disk.h"
#include "store/node.h"

#include <string.h>

const char *herd_esan_address(store_state *st, store_object *node)
{
	const store_node *n = store_node_of(node);
	return n->n_links ? n->links[0] : NULL;
}

/* Disk @disk_uuid and node @node_name's replica of it, or NULL. */
static store_object *esan_disk(store_state *st, const char *disk_uuid, const char *node_name,
			       const store_replica **mine, const store_replica **peer)
{
	store_object *disk = store_state_get(st, STORE_KIND_DISK, disk_uuid);
	store_object *node = store_state_get_by_name(st, STORE_KIND_NODE, node_name);
	if (!disk || !node || !store_disk_of(disk)->esan)
		return NULL;
	*mine = store_disk_replica(store_disk_of(disk), node->uuid);
	*peer = store_disk_peer(store_disk_of(disk), node->uuid);
	return *mine ? disk : NULL;
}

json_t *herd_esan_volumes(store_state *st, const char *node_name)
{
	json_t *out = json_object();
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, node_name);
	if (!me)
		return out;
	g_autoptr(GPtrArray) disks = store_state_list(st, STORE_KIND_DISK);
	for (guint i = 0; i < disks->len; i++) {
		store_object *o = disks->pdata[i];
		const store_disk *d = store_disk_of(o);
		const store_replica *mine = store_disk_replica(d, me->uuid);
		const store_replica *peer = store_disk_peer(d, me->uuid);
		store_object *pn = peer ? store_state_get(st, STORE_KIND_NODE, peer->node) : NULL;
		const char *listen = herd_esan_address(st, me);
		const char *there = pn ? herd_esan_address(st, pn) : NULL;
		if (!mine || !pn || !listen || !there)
			continue;
		json_object_set_new(
			out, o->uuid,
			json_pack("{s:s,s:s,s:s,s:I,s:{s:s,s:i},s:{s:s,s:s,s:i},s:s,s:s,s:s}", "op", "volume",
				  "uuid", o->uuid, "name", o->name, "size", (json_int_t)d->size, "listen",
				  "address", listen, "port", d->port, "peer", "node", pn->name, "address",
				  there, "port", d->port, "local", store_replica_state_name(mine->state),
				  "peer_state", store_replica_state_name(peer->state), "initial_gen", d->gen));
	}
	return out;
}

json_t *herd_esan_outdate_cmd(store_state *st, const char *disk_uuid, const char *node_name,
			      bool *already, GError **error)
{
	const store_replica *mine = NULL, *peer = NULL;
	store_object *disk = esan_disk(st, disk_uuid, node_name, &mine, &peer);
	*already = false;
	if (!disk) {
		g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND,
			    "Node %s holds no replica of an eSAN disk %s.", node_name, disk_uuid);
		return NULL;
	}
	if (mine->state != STORE_REPLICA_UPTODATE) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The replica of eSAN disk %s on %s is %s: it may not be written alone.", disk->name,
			    node_name, store_replica_state_name(mine->state));
		return NULL;
	}
	if (peer->state != STORE_REPLICA_UPTODATE) {
		*already = true;
		return NULL;
	}
	store_replica_state states[2];
	for (unsigned i = 0; i < 2; i++) {
		const store_replica *r = &store_disk_of(disk)->replicas[i];
		states[i] = r == peer ? STORE_REPLICA_OUTDATED : r->state;
	}
	return store_disk_cmd_replicas(disk, states);
}

json_t *herd_esan_synced_cmd(store_state *st, const char *disk_uuid, const char *node_name)
{
	const store_replica *mine = NULL, *peer = NULL;
	store_object *disk = esan_disk(st, disk_uuid, node_name, &mine, &peer);
	if (!disk || mine->state != STORE_REPLICA_UPTODATE || peer->state == STORE_REPLICA_UPTODATE)
		return NULL;
	store_replica_state states[2] = { STORE_REPLICA_UPTODATE, STORE_REPLICA_UPTODATE };
	return store_disk_cmd_replicas(disk, states);
}
