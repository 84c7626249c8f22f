#include "ha/esan.h"

#include "common/error.h"
#include "store/disk.h"
#include "store/node.h"
#include "store/cluster.h"

#include <string.h>

const char *herd_esan_address(store_state *st, store_object *node)
{
	const store_node *n = store_node_of(node);
	if (n->storage_address)
		return n->storage_address;
	size_t link = (size_t)store_settings_of(st)->esan_link;
	return link < n->n_links ? n->links[link] : n->n_links ? n->links[0] : NULL;
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
		json_object_set_new(json_object_get(out, o->uuid), "discard", json_boolean(mine->discard));
		json_object_set_new(json_object_get(out, o->uuid), "peer_discard", json_boolean(peer->discard));
	}
	return out;
}

/* esan_disk(), with *@already false and an error if there is no such disk. */
static store_object *node_disk(store_state *st, const char *disk_uuid, const char *node_name,
			       const store_replica **mine, const store_replica **peer, bool *already,
			       GError **error)
{
	store_object *disk = esan_disk(st, disk_uuid, node_name, mine, peer);
	*already = false;
	if (!disk)
		g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND,
			    "Node %s holds no replica of an eSAN disk %s.", node_name, disk_uuid);
	return disk;
}

json_t *herd_esan_outdate_cmd(store_state *st, const char *disk_uuid, const char *node_name,
			      bool *already, GError **error)
{
	const store_replica *mine = NULL, *peer = NULL;
	store_object *disk = node_disk(st, disk_uuid, node_name, &mine, &peer, already, error);
	if (!disk)
		return NULL;
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

json_t *herd_esan_detach_cmd(store_state *st, const char *disk_uuid, const char *node_name,
			     bool *already, GError **error)
{
	const store_replica *mine = NULL, *peer = NULL;
	store_object *disk = node_disk(st, disk_uuid, node_name, &mine, &peer, already, error);
	if (!disk)
		return NULL;
	if (mine->state != STORE_REPLICA_UPTODATE && mine->discard) {
		*already = true;
		return NULL;
	}
	if (peer->state != STORE_REPLICA_UPTODATE) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The other replica of eSAN disk %s is %s: the failed one on %s cannot be detached.",
			    disk->name, store_replica_state_name(peer->state), node_name);
		return NULL;
	}
	return store_disk_cmd_keep(disk, &store_disk_of(disk)->replicas[0] == peer ? 0 : 1);
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

/* The name of replica @i's node. */
static const char *replica_node(store_state *st, const store_disk *d, unsigned i)
{
	store_object *n = store_state_get(st, STORE_KIND_NODE, d->replicas[i].node);
	return n ? n->name : d->replicas[i].node;
}

/* Which replica (0 or 1) is on node @name, or -1. */
static int replica_on(store_state *st, const store_disk *d, const char *name)
{
	for (unsigned i = 0; i < 2; i++)
		if (strcmp(replica_node(st, d, i), name) == 0)
			return (int)i;
	return -1;
}

json_t *herd_esan_promote_cmd(store_state *st, const store_object *disk, const char *node_name,
			      const char *vm_runs, GError **error)
{
	const store_disk *d = store_disk_of(disk);
	if (!d->esan) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Disk %s is not an eSAN disk.", disk->name);
		return NULL;
	}
	if (vm_runs) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "VM %s runs on eSAN disk %s: its replica is written now; promoting another would throw "
			    "those writes away.", vm_runs, disk->name);
		return NULL;
	}
	int pick = -1;
	if (node_name) {
		pick = replica_on(st, d, node_name);
		if (pick < 0) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Node %s holds no replica of eSAN disk %s (its replicas are on %s and %s).",
				    node_name, disk->name, replica_node(st, d, 0), replica_node(st, d, 1));
			return NULL;
		}
	} else {
		for (unsigned i = 0; i < 2; i++)
			if (d->replicas[i].state == STORE_REPLICA_OUTDATED && !d->replicas[i].discard)
				pick = pick < 0 ? (int)i : -2;
		if (pick < 0) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "eSAN disk %s: say which replica to promote (--node %s or --node %s).", disk->name,
				    replica_node(st, d, 0), replica_node(st, d, 1));
			return NULL;
		}
	}
	const store_replica *r = &d->replicas[pick];
	if (r->state == STORE_REPLICA_UPTODATE) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "The replica of eSAN disk %s on %s is up to date already.",
			    disk->name, replica_node(st, d, (unsigned)pick));
		return NULL;
	}
	if (r->state == STORE_REPLICA_INCONSISTENT || r->discard) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The replica of eSAN disk %s on %s is %s: it holds no whole disk and cannot be promoted.",
			    disk->name, replica_node(st, d, (unsigned)pick),
			    r->discard ? "being discarded" : "inconsistent (a synchronisation did not end)");
		return NULL;
	}
	return store_disk_cmd_keep(disk, (unsigned)pick);
}

json_t *herd_esan_resolve_cmd(store_state *st, const store_object *disk, const char *keep_node,
			      bool split, const char *vm_node, GError **error)
{
	const store_disk *d = store_disk_of(disk);
	int keep = d->esan ? replica_on(st, d, keep_node) : -1;
	if (keep < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Node %s holds no replica of eSAN disk %s.", keep_node,
			    disk->name);
		return NULL;
	}
	if (!split) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "eSAN disk %s is not in split brain (no herd-san reports one): nothing to resolve.",
			    disk->name);
		return NULL;
	}
	const char *other = replica_node(st, d, keep ? 0 : 1);
	if (vm_node && strcmp(vm_node, other) == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "The VM on eSAN disk %s runs on %s, whose replica would be discarded: stop it first.",
			    disk->name, other);
		return NULL;
	}
	return store_disk_cmd_keep(disk, (unsigned)keep);
}

json_t *herd_esan_verified_cmd(store_state *st, const char *disk_uuid, json_t *event, int64_t now_ms)
{
	store_object *disk = store_state_get(st, STORE_KIND_DISK, disk_uuid);
	json_t *first = json_object_get(event, "first");
	return disk ? store_disk_cmd_verified(disk, json_integer_value(json_object_get(event, "id")),
					      json_is_true(json_object_get(event, "equal")),
					      (uint64_t)json_integer_value(json_object_get(event, "differ")),
					      json_is_integer(first) ? json_integer_value(first) : -1,
					      (uint64_t)json_integer_value(json_object_get(event, "compared")),
					      json_string_value(json_object_get(event, "error")), now_ms)
		    : NULL;
}

static gint by_string(gconstpointer a, gconstpointer b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *herd_esan_orphans(store_state *st, const char *node_name, json_t *reported)
{
	json_t *out = json_array();
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, node_name);
	if (!me)
		return out;
	g_autoptr(GPtrArray) gone = g_ptr_array_new();
	const char *uuid;
	json_t *v;
	json_object_foreach(reported, uuid, v)
		if (store_uuid_is_valid(uuid) && !store_state_get(st, STORE_KIND_DISK, uuid))
			g_ptr_array_add(gone, (gpointer)uuid);
	g_ptr_array_sort(gone, by_string);
	for (guint i = 0; i < gone->len; i++)
		json_array_append_new(out, json_string(gone->pdata[i]));
	return out;
}

char *herd_esan_unsynced(store_state *st, const char *node_name)
{
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, node_name);
	if (!me)
		return NULL;
	g_autoptr(GString) names = g_string_new(NULL);
	g_autoptr(GPtrArray) disks = store_state_list(st, STORE_KIND_DISK);
	for (guint i = 0; i < disks->len; i++) {
		store_object *o = disks->pdata[i];
		const store_replica *mine = store_disk_replica(store_disk_of(o), me->uuid);
		const store_replica *peer = store_disk_peer(store_disk_of(o), me->uuid);
		if (mine && mine->state == STORE_REPLICA_UPTODATE && peer->state != STORE_REPLICA_UPTODATE)
			g_string_append_printf(names, "%s%s", names->len ? ", " : "", o->name);
	}
	return names->len ? g_string_free(g_steal_pointer(&names), FALSE) : NULL;
}

char *herd_esan_sync_gate(store_state *st, const char *node_name)
{
	g_autofree char *names = herd_esan_unsynced(st, node_name);
	if (!names)
		return NULL;
	return g_strdup_printf("Node %s holds the only up-to-date replica of eSAN disk(s) %s: it stays in "
			       "service until the other replica is in sync ('herd disk list' shows the progress; "
			       "--wait waits for it).", node_name, names);
}

/* An alert of @kind about @disk (and the replica on @node, or NULL). */
static void alert(json_t *out, const char *kind, const char *severity, const store_object *disk,
		  const char *node, char *message)
{
	json_t *a = json_pack("{s:s,s:s,s:s,s:s}", "kind", kind, "severity", severity, "message", message,
			      "disk", disk->name);
	if (node)
		json_object_set_new(a, "node", json_string(node));
	json_array_append_new(out, a);
	g_free(message);
}

json_t *herd_esan_alerts(store_state *st, json_t *reports)
{
	json_t *out = json_array();
	g_autoptr(GPtrArray) disks = store_state_list(st, STORE_KIND_DISK);
	for (guint i = 0; i < disks->len; i++) {
		store_object *o = disks->pdata[i];
		const store_disk *d = store_disk_of(o);
		if (!d->esan)
			continue;
		json_t *rep = json_object_get(reports, o->uuid);
		const char *node;
		json_t *s;
		bool split = false;
		json_object_foreach(rep, node, s) {
			const char *conn = json_string_value(json_object_get(s, "conn"));
			if (g_strcmp0(conn, "splitbrain") == 0 && !split) {
				split = true;
				alert(out, "esan_split_brain", "critical", o, NULL,
				      g_strdup_printf("eSAN disk %s is in split brain: both replicas were written on their "
						      "own. herd connects neither until 'herd disk resolve %s --keep NODE'.",
						      o->name, o->name));
			} else if (g_strcmp0(conn, "unrelated") == 0) {
				alert(out, "esan_unrelated", "critical", o, node,
				      g_strdup_printf("eSAN disk %s: the replica on %s and its peer share no history: "
						      "herd connects neither ('herd disk resolve %s --keep NODE').",
						      o->name, node, o->name));
			}
			/* a local disk that failed under its replica */
			json_t *dk = json_object_get(s, "disk");
			const char *dstate = json_string_value(json_object_get(dk, "state"));
			const char *dwhy = json_string_value(json_object_get(dk, "why"));
			if (g_strcmp0(dstate, "failed") == 0)
				alert(out, "esan_disk_failed", "critical", o, node,
				      g_strdup_printf("eSAN disk %s: the local disk under the replica on %s failed (%s) "
						      "and no up-to-date peer serves it: its I/O fails.",
						      o->name, node, dwhy ? dwhy : "?"));
			else if (dstate)
				alert(out, "esan_disk_detached", "critical", o, node,
				      g_strdup_printf("eSAN disk %s: the local disk under the replica on %s failed (%s): "
						      "the replica is %s and the peer serves the disk, which is not "
						      "redundant. Replace the disk; its replica gets a full sync when "
						      "herd-san starts again.", o->name, node, dwhy ? dwhy : "?", dstate));
			/* a crash its activity log does not cover (herd-san says why) */
			json_t *crash = json_object_get(s, "crash");
			const char *why = json_string_value(json_object_get(crash, "why"));
			if (g_strcmp0(json_string_value(json_object_get(crash, "resync")), "full") == 0)
				alert(out, "esan_crash_full_sync", "warning", o, node,
				      g_strdup_printf("eSAN disk %s: the replica on %s crashed with its guest writing and "
						      "%s: it is synchronised in full, not only where writes were in "
						      "flight.", o->name, node, why ? why : "its activity log cannot be trusted"));
		}
		const char *up = NULL;
		for (unsigned k = 0; k < 2; k++)
			if (d->replicas[k].state == STORE_REPLICA_UPTODATE)
				up = replica_node(st, d, k);
		for (unsigned k = 0; k < 2; k++) {
			const store_replica *r = &d->replicas[k];
			const char *name = replica_node(st, d, k);
			if (r->state == STORE_REPLICA_UPTODATE)
				continue;
			if (!up)
				alert(out, "esan_no_replica", "critical", o, name,
				      g_strdup_printf("eSAN disk %s has no up-to-date replica (the one on %s is %s): its VM "
						      "stays down until 'herd disk promote %s --force'.",
						      o->name, name, store_replica_state_name(r->state), o->name));
			else if (r->discard)
				alert(out, "esan_discarded", "warning", o, name,
				      g_strdup_printf("eSAN disk %s: the replica on %s is discarded; it is synchronised in "
						      "full from %s, and the disk is not redundant until then.",
						      o->name, name, up));
			else
				alert(out, "esan_behind", "warning", o, name,
				      g_strdup_printf("eSAN disk %s: the replica on %s is %s; %s holds the only up-to-date "
						      "one, and the disk is not redundant until %s is synchronised again.",
						      o->name, name, store_replica_state_name(r->state), up, name));
		}
	}
	return out;
}

int herd_esan_peer_gone(const uint32_t *ring, size_t n, uint32_t me, uint32_t peer)
{
	bool have_me = false, have_peer = false;
	for (size_t i = 0; i < n; i++) {
		have_me = have_me || ring[i] == me;
		have_peer = have_peer || ring[i] == peer;
	}
	if (!me || !peer || !have_me)
		return -1;
	return have_peer ? 0 : 1;
}
