/*
 * A failing local disk (san/disk_health.h holds the rules): a local read,
 * write or flush that fails while the peer is connected and in sync
 * detaches the local replica (a new generation on both sides, so its
 * metadata on the failed disk is older than the peer's); once herdd has it
 * outdated in the store, the local export's I/O goes to the peer only.
 * Without a peer in sync, I/O fails.
 */
#include "san/plugin.h"

#include <errno.h>

#include "common/json.h"

/* Where local I/O goes (san/disk_health.h); waits while the store is asked. */
san_route san_disk_route_wait(void)
{
	g_mutex_lock(&vol.lock);
	san_route route;
	while ((route = san_disk_route(vol.disk)) == SAN_ROUTE_WAIT && !vol.stopping)
		g_cond_wait(&vol.cond, &vol.lock);
	g_mutex_unlock(&vol.lock);
	return route == SAN_ROUTE_WAIT ? SAN_ROUTE_FAIL : route;
}

/* Detaching: the peer and, in memory, this replica go on in a new
 * generation, so that this replica's metadata on its disk (no longer
 * written) is older than the peer's.  This side first: the peer decides
 * again when its meta changes and must find both equal. */
static int detach_generation(void)
{
	san_meta pm;
	int r = san_peer_meta_read(&pm);
	if (r < 0)
		return r;
	uint64_t id = san_random_id();
	g_mutex_lock(&vol.lock);
	bool same = pm.current == vol.meta.current;
	if (same)
		san_meta_detach_generation(&vol.meta, id);
	g_mutex_unlock(&vol.lock);
	if (!same)
		return -ESTALE;
	san_meta_detach_generation(&pm, id);
	return san_peer_meta_write(&pm);
}

static void emit_disk_failed(void)
{
	g_mutex_lock(&vol.lock);
	g_autoptr(json_t) ev = json_pack("{s:s,s:s,s:s,s:s}", "ev", "disk-failed", "uuid", vol.uuid, "state",
					 san_disk_name(vol.disk), "why", vol.disk_why);
	san_emit_state_locked();
	g_mutex_unlock(&vol.lock);
	san_control_emit(json_dumps(ev, JSON_COMPACT));
}

/* A local read, write or flush (@what) failed with @err: the local replica
 * is detached if the peer is connected and in sync, else it fails. */
void san_local_failed(int err, const char *what)
{
	g_mutex_lock(&vol.lock);
	san_disk before = vol.disk;
	vol.disk = san_disk_on_error(vol.disk, vol.link == LINK_INSYNC);
	bool changed = vol.disk != before;
	if (changed) {
		g_free(vol.disk_why);
		vol.disk_why = g_strdup_printf("%s on the local replica failed: %s", what, g_strerror(-err));
	}
	bool detaching = vol.disk == SAN_DISK_DETACHING;
	g_mutex_unlock(&vol.lock);
	if (!changed)
		return;
	if (!detaching) {
		san_log("%s; the peer is not in sync: I/O fails", vol.disk_why);
		emit_disk_failed();
		return;
	}
	san_log("%s: detaching it; the peer serves the disk once the store has this replica outdated",
		vol.disk_why);
	int r = detach_generation();
	if (r < 0) {
		san_log("cannot give the peer a new generation (%s): I/O fails", g_strerror(-r));
		g_mutex_lock(&vol.lock);
		vol.disk = SAN_DISK_FAILED;
		g_cond_broadcast(&vol.cond);
		g_mutex_unlock(&vol.lock);
	}
	emit_disk_failed();
}

void san_disk_recorded(void)
{
	g_mutex_lock(&vol.lock);
	san_disk before = vol.disk;
	vol.disk = san_disk_on_recorded(vol.disk);
	if (vol.disk != before) {
		/* the `meta` export tells the peer now (SAN_META_DISKLESS_NOW): it
		 * writes alone from here on, the store having this replica outdated */
		vol.detach_recorded = true;
		san_log("the store has this replica outdated: detached, the peer serves the disk");
		g_cond_broadcast(&vol.cond);
		san_emit_state_locked();
	}
	g_mutex_unlock(&vol.lock);
}

/* Detached: a write to the peer only, answered when the peer answered it
 * (with FUA, stable there), as a write alone is when the peer is away. */
int san_peer_only_write(write_op op, const void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	uint32_t pf = flags & (NBDKIT_FLAG_FUA | NBDKIT_FLAG_MAY_TRIM);
	san_peer_req *req = op == OP_WRITE ? san_peer_pwrite(buf, count, off, pf) : san_peer_zero(count, off, pf);
	int r = san_peer_wait(req);
	if (r < 0) {
		nbdkit_error("the local replica is detached and the peer failed a write: %s", g_strerror(-r));
		san_peer_drop("the peer failed a write of a detached replica");
		return -EIO;
	}
	return 0;
}

int san_peer_read(void *buf, uint32_t count, uint64_t off)
{
	int r = san_peer_wait(san_peer_pread(buf, count, off));
	if (r < 0) {
		nbdkit_error("the local replica is detached and the peer failed a read: %s", g_strerror(-r));
		return -EIO;
	}
	return 0;
}
