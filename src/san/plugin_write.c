/*
 * nbdkit-herd-plugin's write path (plugin.c has the overview): the local
 * replica file's I/O, the region locks between local writes and the
 * resync, and a local write or flush mirrored to the peer (protocol C),
 * alone once the peer is recorded outdated, or held until it is.
 */
#include "san/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ local file */

/* Read or write the whole range (a sparse file reads zeros past its end). */
static int file_rw(bool write, char *p, uint32_t count, uint64_t off)
{
	while (count) {
		ssize_t n = write ? pwrite(vol.fd, p, count, (off_t)off) : pread(vol.fd, p, count, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			if (write)
				return -EIO;
			memset(p, 0, count);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		count -= (uint32_t)n;
	}
	return 0;
}

int san_file_read(void *buf, uint32_t count, uint64_t off)
{
	return file_rw(false, buf, count, off);
}

int san_file_write(const void *buf, uint32_t count, uint64_t off)
{
	return file_rw(true, (char *)buf, count, off);
}

static int file_zero(uint32_t count, uint64_t off, bool may_trim)
{
	int mode = may_trim ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_ZERO_RANGE;
	if (fallocate(vol.fd, mode, (off_t)off, count) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return -errno;
	static const char zeros[65536];
	while (count) {
		uint32_t n = MIN(count, (uint32_t)sizeof zeros);
		int r = san_file_write(zeros, n, off);
		if (r < 0)
			return r;
		off += n;
		count -= n;
	}
	return 0;
}

int san_file_sync(void)
{
	return fdatasync(vol.fd) < 0 ? -errno : 0;
}

/* ------------------------------------------------------- region locking */

/* Local writes in flight register their range.  The resync (or a verify)
 * holds the one resync token and locks ranges under it, several at a time
 * (regions in flight together, two batches of them in the resync): writes
 * to a locked range wait, and locking waits for the writes already running
 * in it.  The resync releases its ranges batch by batch, oldest first. */
typedef struct {
	uint64_t off, len;
} range;

static GMutex range_mutex;
static GCond range_cond;
static GArray *active_ranges;
static GArray *resync_ranges;
static bool resync_held;

void san_write_init(void)
{
	active_ranges = g_array_new(FALSE, FALSE, sizeof(range));
	resync_ranges = g_array_new(FALSE, FALSE, sizeof(range));
}

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static bool overlaps_any(GArray *ranges, uint64_t off, uint64_t len)
{
	for (guint i = 0; i < ranges->len; i++) {
		range *r = &g_array_index(ranges, range, i);
		if (overlap(off, len, r->off, r->len))
			return true;
	}
	return false;
}

static void range_enter(uint64_t off, uint64_t len)
{
	range r = { off, len };
	g_mutex_lock(&range_mutex);
	while (overlaps_any(resync_ranges, off, len))
		g_cond_wait(&range_cond, &range_mutex);
	g_array_append_val(active_ranges, r);
	g_mutex_unlock(&range_mutex);
}

static void range_leave(uint64_t off, uint64_t len)
{
	g_mutex_lock(&range_mutex);
	for (guint i = 0; i < active_ranges->len; i++) {
		range *r = &g_array_index(active_ranges, range, i);
		if (r->off == off && r->len == len) {
			g_array_remove_index_fast(active_ranges, i);
			break;
		}
	}
	g_cond_broadcast(&range_cond);
	g_mutex_unlock(&range_mutex);
}

void san_resync_begin(void)
{
	g_mutex_lock(&range_mutex);
	/* one holder at a time (a resync, a verify, an earlier resync ending) */
	while (resync_held)
		g_cond_wait(&range_cond, &range_mutex);
	resync_held = true;
	g_mutex_unlock(&range_mutex);
}

void san_resync_lock(uint64_t off, uint64_t len)
{
	range r = { off, len };
	g_mutex_lock(&range_mutex);
	g_array_append_val(resync_ranges, r);
	while (overlaps_any(active_ranges, off, len))
		g_cond_wait(&range_cond, &range_mutex);
	g_mutex_unlock(&range_mutex);
}

void san_resync_release(unsigned n)
{
	g_mutex_lock(&range_mutex);
	g_array_remove_range(resync_ranges, 0, MIN(n, resync_ranges->len));
	g_cond_broadcast(&range_cond);
	g_mutex_unlock(&range_mutex);
}

void san_resync_end(void)
{
	g_mutex_lock(&range_mutex);
	g_array_set_size(resync_ranges, 0);
	resync_held = false;
	g_cond_broadcast(&range_cond);
	g_mutex_unlock(&range_mutex);
}

/* ------------------------------------------------------------ the write path */

/* Under vol.lock: the first write of an outage starts a new data
 * generation and marks what the peer may have lost (written since its last
 * flush) dirty, both persisted before any write is answered alone. */
static int begin_outage_locked(void)
{
	if (vol.alone_gen)
		return 0;
	san_meta_go_alone(&vol.meta, san_random_id());
	g_mutex_unlock(&vol.lock);
	int r = san_meta_save();
	uint64_t off = 0, len;
	while (r == 0 && san_bitmap_next_dirty(vol.unflushed, off, 1ull << 30, &off, &len)) {
		r = san_bitmap_mark(vol.bitmap, off, len);
		off += len;
	}
	g_mutex_lock(&vol.lock);
	if (r < 0)
		return r;
	san_bitmap_clear_all(vol.unflushed);
	vol.alone_gen = true;
	san_role_changed_locked();
	g_autofree char *d = san_meta_describe(&vol.meta);
	san_log("peer away: new data generation %s, changes tracked", d);
	return 0;
}

static bool link_up(san_link l)
{
	return l == LINK_INSYNC || l == LINK_SOURCE;
}

/* Mark a region the peer lacks; under vol.lock on entry and exit. */
static int mark_dirty_locked(uint64_t off, uint64_t len)
{
	int r = begin_outage_locked();
	if (r < 0)
		return r;
	g_mutex_unlock(&vol.lock);
	r = san_bitmap_mark(vol.bitmap, off, len);
	g_mutex_lock(&vol.lock);
	return r;
}

/* Under vol.lock: hold until `outdated` or the peer is back in sync. */
static void hold_locked(void)
{
	uint64_t epoch = vol.insync_epoch;
	if (!vol.peer_lost_sent) {
		vol.peer_lost_sent = true;
		san_log("peer lost: writes wait for `outdated`");
		vol.lost_seq++;
		san_control_emit(g_strdup_printf("{\"ev\":\"peer-lost\",\"uuid\":\"%s\",\"seq\":%" PRIu64 "}",
						 vol.uuid, vol.lost_seq));
		san_emit_state_locked();
	}
	while (!vol.alone_ok && vol.insync_epoch == epoch && !vol.stopping)
		g_cond_wait(&vol.cond, &vol.lock);
}

int san_local_io(write_op op, const void *buf, uint32_t count, uint64_t off, uint32_t flags)
{
	int r = op == OP_WRITE ? san_file_write(buf, count, off)
			       : file_zero(count, off, flags & NBDKIT_FLAG_MAY_TRIM);
	if (r == 0 && (flags & NBDKIT_FLAG_FUA))
		r = san_file_sync();
	return r;
}

bool san_writes_alone(void)
{
	g_mutex_lock(&vol.lock);
	bool alone = (vol.alone_ok && !link_up(vol.link)) || vol.link == LINK_PEER_DISKLESS;
	g_mutex_unlock(&vol.lock);
	return alone;
}

/* mirrored_write: the link came back since the write skipped the log. */
#define ENTER_LOG_AGAIN 1

/* A local write, to both replicas (or alone, or held); @logged: its
 * extents are active in the activity log (else it was alone when it
 * began, and returns ENTER_LOG_AGAIN if it no longer is). */
static int mirrored_write(write_op op, const void *buf, uint32_t count, uint64_t off,
			  uint32_t flags, bool logged)
{
	int r;
	range_enter(off, count);
	g_mutex_lock(&vol.lock);
	for (;;) {
		if (vol.link == LINK_TARGET) {
			g_mutex_unlock(&vol.lock);
			range_leave(off, count);
			nbdkit_error("the local replica is a sync target: no local writes");
			return -EROFS;
		}
		if (vol.link == LINK_PEER_DISKLESS) {
			/* the peer's disk is detached and the store has its replica
			 * outdated (a full sync when it is back): this replica is the
			 * disk, for the peer's guest (through the data export) and a
			 * guest here (a live migration from the peer) alike */
			g_mutex_unlock(&vol.lock);
			r = san_local_io(op, buf, count, off, flags);
			range_leave(off, count);
			return r;
		}
		if (link_up(vol.link) && !logged) {
			/* to both, where only the log tells a crash's regions */
			g_mutex_unlock(&vol.lock);
			range_leave(off, count);
			return ENTER_LOG_AGAIN;
		}
		if (link_up(vol.link))
			break;
		if (vol.alone_ok) {
			/* alone: the bit is stable before the data is written */
			r = mark_dirty_locked(off, count);
			g_mutex_unlock(&vol.lock);
			if (r == 0)
				r = san_local_io(op, buf, count, off, flags);
			range_leave(off, count);
			return r;
		}
		if (vol.link == LINK_DOWN && !vol.peer_lost_sent) {
			/* not connected yet (start, reconnect): wait for it a while */
			gint64 deadline = g_get_monotonic_time() + vol.timeout_ms * G_TIME_SPAN_MILLISECOND;
			while (vol.link == LINK_DOWN && !vol.alone_ok && !vol.peer_lost_sent &&
			       !vol.stopping && g_cond_wait_until(&vol.cond, &vol.lock, deadline))
				;
			if (link_up(vol.link) || vol.alone_ok)
				continue;
		}
		/* the peer is away: hold */
		r = mark_dirty_locked(off, count);
		g_mutex_unlock(&vol.lock);
		if (r == 0)
			r = san_local_io(op, buf, count, off, flags);
		range_leave(off, count);
		if (r < 0)
			return r;
		g_mutex_lock(&vol.lock);
		hold_locked();
		g_mutex_unlock(&vol.lock);
		return vol.stopping ? -ESHUTDOWN : 0;
	}
	g_mutex_unlock(&vol.lock);

	/* protocol C: both in parallel */
	uint32_t peer_flags = flags & (NBDKIT_FLAG_FUA | NBDKIT_FLAG_MAY_TRIM);
	san_peer_req *req = op == OP_WRITE ? san_peer_pwrite(buf, count, off, peer_flags & NBDKIT_FLAG_FUA)
					   : san_peer_zero(count, off, peer_flags);
	int lr = san_local_io(op, buf, count, off, flags);
	int pr = san_peer_wait(req);
	if (pr == 0 && !(flags & NBDKIT_FLAG_FUA)) {
		san_bitmap_set(vol.unflushed, off, count);
		g_mutex_lock(&vol.lock);
		vol.peer_writes_unflushed++;
		g_mutex_unlock(&vol.lock);
	}
	range_leave(off, count);
	if (pr < 0) {
		/* lost, timed out (dropped already), or it answered an error: either
		 * way this side goes on without it, after `outdated` */
		g_autofree char *why = g_strdup_printf("the peer failed a write: %s", g_strerror(-pr));
		san_peer_drop(why);
	}
	if (lr < 0) {
		/* the local disk failed: detached, the write is answered once the
		 * store has this replica outdated if the peer holds it; else not
		 * answered (the replicas may differ in its region as after a crash) */
		san_local_failed(lr, op == OP_WRITE ? "a write" : "a zero");
		if (pr == 0 && san_disk_route_wait() == SAN_ROUTE_PEER)
			return 0;
		nbdkit_error("local write failed: %s", g_strerror(-lr));
		return lr;
	}
	if (pr == 0)
		return 0;
	/* the peer failed: hold this one (its local part is done) */
	g_mutex_lock(&vol.lock);
	r = mark_dirty_locked(off, count);
	if (r < 0) {
		g_mutex_unlock(&vol.lock);
		nbdkit_error("cannot mark a region dirty: %s", g_strerror(-r));
		return r;
	}
	if (!vol.alone_ok)
		hold_locked();
	g_mutex_unlock(&vol.lock);
	return vol.stopping ? -ESHUTDOWN : 0;
}

int san_replicated_write(write_op op, const void *buf, uint32_t count, uint64_t off,
			    uint32_t flags)
{
	int r;
	do {
		switch (san_disk_route_wait()) {
		case SAN_ROUTE_PEER:
			return san_peer_only_write(op, buf, count, off, flags);
		case SAN_ROUTE_FAIL:
			nbdkit_error("the local replica failed (%s) and no peer serves it", vol.disk_why);
			return -EIO;
		default:
			break;
		}
		r = san_activity_enter(off, count);
		if (r < 0) {
			/* the log is on the local disk too */
			san_local_failed(r, "a write of the activity log");
			if (san_disk_route_wait() == SAN_ROUTE_PEER)
				return san_peer_only_write(op, buf, count, off, flags);
			nbdkit_error("the activity log cannot be written: %s", g_strerror(-r));
			return r;
		}
		bool logged = r == 0;
		r = mirrored_write(op, buf, count, off, flags, logged);
		if (logged)
			san_activity_leave(off, count);
	} while (r == ENTER_LOG_AGAIN);
	return r;
}

int san_stable_flush(void)
{
	uint64_t ticket = san_activity_flush_begin();
	g_mutex_lock(&vol.lock);
	bool up = link_up(vol.link), alone = vol.link == LINK_PEER_DISKLESS;
	g_mutex_unlock(&vol.lock);
	san_peer_req *req = up ? san_peer_flush() : NULL;
	int lr = san_file_sync();
	int pr = up ? san_peer_wait(req) : alone ? 0 : -ENOTCONN;
	if (lr < 0)
		return lr;
	if (pr < 0)
		return pr;
	san_activity_flush_done(ticket);
	return 0;
}

int san_replicated_flush(void)
{
	switch (san_disk_route_wait()) {
	case SAN_ROUTE_PEER: {
		int r = san_peer_wait(san_peer_flush());
		if (r < 0) {
			nbdkit_error("the local replica is detached and the peer failed a flush: %s", g_strerror(-r));
			san_peer_drop("the peer failed a flush of a detached replica");
			return -EIO;
		}
		return 0;
	}
	case SAN_ROUTE_FAIL:
		nbdkit_error("the local replica failed (%s) and no peer serves it", vol.disk_why);
		return -EIO;
	default:
		break;
	}
	uint64_t ticket = san_activity_flush_begin();
	g_mutex_lock(&vol.lock);
	bool up = link_up(vol.link), peer_diskless = vol.link == LINK_PEER_DISKLESS;
	uint64_t before = vol.peer_writes_unflushed;
	g_mutex_unlock(&vol.lock);
	san_peer_req *req = up ? san_peer_flush() : NULL;
	int lr = san_file_sync();
	int pr = up ? san_peer_wait(req) : -ENOTCONN;
	if (lr == 0 && peer_diskless) {
		/* the peer's disk is detached: stable here is stable on the disk */
		san_activity_flush_done(ticket);
		return 0;
	}
	if (lr < 0) {
		/* detached: everything answered is on the peer, which flushed */
		san_local_failed(lr, "a flush");
		if (pr == 0 && san_disk_route_wait() == SAN_ROUTE_PEER)
			return 0;
		nbdkit_error("local flush failed: %s", g_strerror(-lr));
		return lr;
	}
	if (pr == 0) {
		/* everything the peer answered before the flush is stable there */
		san_activity_flush_done(ticket);
		g_mutex_lock(&vol.lock);
		if (vol.peer_writes_unflushed == before) {
			san_bitmap_clear_all(vol.unflushed);
			vol.peer_writes_unflushed = 0;
		}
		g_mutex_unlock(&vol.lock);
		return 0;
	}
	/* peer away: stable here; alone, or held until it may be */
	if (up) {
		g_autofree char *why = g_strdup_printf("the peer failed a flush: %s", g_strerror(-pr));
		san_peer_drop(why);
	}
	g_mutex_lock(&vol.lock);
	if (!vol.alone_ok && !link_up(vol.link)) {
		int r = begin_outage_locked();
		if (r < 0) {
			g_mutex_unlock(&vol.lock);
			return r;
		}
		hold_locked();
	}
	g_mutex_unlock(&vol.lock);
	return vol.stopping ? -ESHUTDOWN : 0;
}
