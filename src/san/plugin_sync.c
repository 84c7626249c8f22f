/*
 * What the plugin does once the link to the peer is up: the decision
 * (san_meta_decide, with each side's live writer flag), then in sync, a
 * resync from here, waiting for the peer to resync us, or a refusal (split
 * brain, unrelated) reported to herd-san.  Both sides decide alone and
 * agree, since the decision is symmetric.
 *
 * The resync, on the source: the target's meta is made inconsistent first;
 * then batch by batch (regions of 4 KiB to 1 MiB, up to 16 MiB in all;
 * less at a low rate): lock the batch's regions against local writes, read
 * them and send them all to the peer at once (zeros as zero requests, no
 * FUA), wait for the answers, flush the peer once, and only then clear
 * their bits and unlock; at the configured rate.  The next batch is locked,
 * read and sent while the previous one's flush is in flight (two batches
 * at most; before a pause for the rate the one in flight ends, so that
 * no region stays locked against the guest's writes while it waits).  The
 * target starts writing a resync's region of 64 KiB or more to its disk as
 * it arrives (plugin.c, data_write), so a flush waits only for the last
 * ones; small scattered regions are left to the flush.  A
 * crash or a lost link mid-batch leaves the bits set and the target
 * inconsistent.  At the end the target gets the source's generation
 * through its meta export, the source's bitmap generation goes to history,
 * and `synced` is sent.  A full sync marks the whole volume dirty first, so
 * it is the same loop; after a crash of a writer's node, the crash extents
 * of both replicas' metadata (what their activity logs named) are marked
 * dirty first instead.
 */
#include "san/plugin.h"

#include "common/json.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define CHUNK (1024u * 1024u)          /* a region copied, at most */
#define BATCH_BYTES (16u * CHUNK)       /* a batch of regions in flight together, at most */
/* A batch is bounded by its bytes: a region is at least one bitmap grain
 * (but the volume's clipped last one), so this many regions hold a full
 * batch whatever their sizes (4,096, 96 KiB of region entries a batch),
 * and scattered 4 KiB regions share one flush of the peer per 16 MiB
 * instead of one per 512 of them; batch_send checks the count all the
 * same. */
#define BATCH_REGIONS (BATCH_BYTES / SAN_BITMAP_GRAIN)

static bool verifying;      /* under vol.lock */
static int64_t verify_id;    /* the running verification's id (herdd's), under vol.lock */

static const char *conn_name_locked(void)
{
	switch (vol.link) {
	case LINK_INSYNC:
	case LINK_SOURCE:
	case LINK_TARGET:
	case LINK_PEER_DISKLESS:
		return "connected";
	case LINK_REFUSED:
		return vol.decision == SAN_SYNC_UNRELATED ? "unrelated"
		       : vol.decision == SAN_SYNC_SPLIT_BRAIN ? "splitbrain" : "standalone";
	case LINK_DOWN:
		break;
	}
	return vol.alone_ok ? "standalone" : "connecting";
}

void san_emit_state_locked(void)
{
	g_autofree char *sync = NULL, *crash = NULL, *disk = NULL;
	if (vol.disk != SAN_DISK_HEALTHY) {
		g_autoptr(json_t) dj = json_pack("{s:s,s:s}", "state", san_disk_name(vol.disk), "why",
						 vol.disk_why ? vol.disk_why : "?");
		disk = json_dumps(dj, JSON_COMPACT);
	}
	if (vol.meta.flags & SAN_META_CRASHED) {
		g_autoptr(json_t) c = json_pack("{s:s}", "resync", san_meta_crash_listed(&vol.meta) ? "listed" : "full");
		if (!san_meta_crash_listed(&vol.meta))
			json_object_set_new(c, "why", json_string(vol.crash_why ? vol.crash_why
								  : "an earlier crash was not covered by the activity log"));
		crash = json_dumps(c, JSON_COMPACT);
	}
	if (vol.link == LINK_SOURCE || vol.link == LINK_TARGET)
		sync = g_strdup_printf("{\"role\":\"%s\",\"done\":%" PRIu64 ",\"total\":%" PRIu64 "}",
				       vol.link == LINK_SOURCE ? "source" : "target", vol.sync_done,
				       vol.sync_total);
	san_control_emit(g_strdup_printf(
		"{\"ev\":\"state\",\"uuid\":\"%s\",\"conn\":\"%s\",\"writer\":%s,\"sync\":%s,"
		"\"dirty\":%" PRIu64 ",\"resynced\":%" PRIu64 ",\"decision\":\"%s\","
		"\"consistent\":%s,\"size\":%" PRIu64 ",\"peer_size\":%" PRIu64 ",\"crash\":%s,"
		"\"disk\":%s,\"peer_diskless\":%s}",
		vol.uuid, conn_name_locked(), vol.writers ? "true" : "false", sync ? sync : "null",
		san_bitmap_dirty_bytes(vol.bitmap), vol.resynced, san_sync_name(vol.decision),
		(vol.meta.flags & SAN_META_CONSISTENT) && vol.meta.current ? "true" : "false",
		vol.meta.size, san_peer_size(), crash ? crash : "null", disk ? disk : "null",
		vol.link == LINK_PEER_DISKLESS ? "true" : "false"));
}

static void emit_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void emit_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	san_log("%s", msg);
	g_autoptr(GString) j = g_string_new(NULL);
	g_string_append_printf(j, "{\"ev\":\"error\",\"uuid\":\"%s\",\"message\":\"", vol.uuid);
	for (const char *p = msg; *p; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_c(j, '\\');
		if ((unsigned char)*p >= 0x20)
			g_string_append_c(j, *p);
	}
	g_string_append(j, "\"}");
	san_control_emit(g_string_free(g_steal_pointer(&j), FALSE));
}

/* Under vol.lock: back in sync (held writes may go: their regions are on both). */
static void set_insync_locked(void)
{
	vol.link = LINK_INSYNC;
	vol.decision = SAN_SYNC_NONE;
	vol.insync_epoch++;
	vol.alone_ok = false;
	vol.peer_lost_sent = false;
	vol.alone_gen = false;
	vol.syncing = false;
	g_cond_broadcast(&vol.cond);
	san_emit_state_locked();
}

static gpointer resync(gpointer epoch);

void san_sync_announce_synced(void)
{
	g_mutex_lock(&vol.lock);
	vol.peer_outdated = false;
	g_mutex_unlock(&vol.lock);
	san_log("in sync with the peer: `synced`");
	san_sync_emit_synced(0);
}

static void emit_synced_locked(uint64_t resynced)
{
	san_control_emit(g_strdup_printf("{\"ev\":\"synced\",\"uuid\":\"%s\",\"resynced\":%" PRIu64 "}",
					 vol.uuid, resynced));
}

void san_sync_emit_synced(uint64_t resynced)
{
	g_mutex_lock(&vol.lock);
	vol.synced_told = (int64_t)resynced;
	vol.synced_epoch = vol.insync_epoch;
	emit_synced_locked(resynced);
	g_mutex_unlock(&vol.lock);
}

/* A client that connects after the sync ended (herd-san back, a test that
 * started this replica a moment ago) would otherwise never hear of it. */
void san_sync_retell_synced_locked(void)
{
	if (vol.link == LINK_INSYNC && vol.synced_told >= 0 && vol.synced_epoch == vol.insync_epoch)
		emit_synced_locked((uint64_t)vol.synced_told);
}

void san_sync_connected(const san_meta *peer)
{
	g_mutex_lock(&vol.lock);
	if (vol.disk != SAN_DISK_HEALTHY) {
		/* a detached (or failed) replica is neither a sync source nor a target */
		g_mutex_unlock(&vol.lock);
		return;
	}
	san_meta self = vol.meta;
	if (vol.writers)
		self.flags |= SAN_META_WRITER_NOW;
	san_sync d = san_meta_decide(&self, peer);
	san_link before = vol.link;
	san_sync before_d = vol.decision;
	vol.decision = d;
	g_autofree char *ds = san_meta_describe(&self), *dp = san_meta_describe(peer);
	if (before == LINK_DOWN || before_d != d)
		san_log("decision %s (self %s, peer %s)", san_sync_name(d), ds, dp);

	if ((peer->flags & SAN_META_DISKLESS_NOW) && (d == SAN_SYNC_NONE || san_sync_is_source(d))) {
		/* The peer's local disk failed and is detached, with the store
		 * having its replica outdated: it serves its guest from here.
		 * Nothing goes to its disk (no mirror, no resync: it gets a full
		 * sync when its server starts again); local writes go here alone
		 * (those made while the link is down too), and the peer's writes,
		 * its guest's, land here even with a writer here — both guests
		 * of a live migration away from it have this replica as their
		 * only disk. */
		vol.link = LINK_PEER_DISKLESS;
		vol.syncing = false;
		vol.alone_ok = true;
		g_cond_broadcast(&vol.cond);
		san_emit_state_locked();
		g_mutex_unlock(&vol.lock);
		if (before != LINK_PEER_DISKLESS)
			san_log("the peer's local disk is detached: this replica is the disk, written alone");
		return;
	}

	if (san_sync_is_target(d) && vol.writers) {
		vol.link = LINK_REFUSED;
		g_free(vol.refused_why);
		vol.refused_why = g_strdup("the peer is newer but a local writer is open here");
		g_mutex_unlock(&vol.lock);
		if (before != LINK_REFUSED)
			emit_error("refusing to connect: %s", "the peer's replica is newer but a local "
				   "writer has this one open");
		g_mutex_lock(&vol.lock);
		san_emit_state_locked();
		g_mutex_unlock(&vol.lock);
		return;
	}
	switch (d) {
	case SAN_SYNC_NONE: {
		bool leftover = vol.meta.bitmap || san_bitmap_count(vol.bitmap);
		bool was_behind = vol.meta.flags & SAN_META_OUTDATED;
		if (before == LINK_INSYNC && !leftover) {
			g_mutex_unlock(&vol.lock);
			return;
		}
		if (leftover || was_behind) {
			/* a sync that ended before its source noted it: the same generation */
			san_meta_sync_end_source(&vol.meta);
			g_mutex_unlock(&vol.lock);
			san_bitmap_clear_all(vol.bitmap);
			san_bitmap_flush(vol.bitmap);
			san_meta_save();
			g_mutex_lock(&vol.lock);
		}
		set_insync_locked();
		/* a discarded peer is up to date only after its full sync */
		bool tell = vol.peer_outdated && !vol.peer_discarded;
		g_mutex_unlock(&vol.lock);
		if (tell)
			san_sync_announce_synced();
		return;
	}
	case SAN_SYNC_SOURCE_BITMAP:
	case SAN_SYNC_SOURCE_FULL:
		if (before == LINK_SOURCE) {
			g_mutex_unlock(&vol.lock);
			return;
		}
		vol.link = LINK_SOURCE;
		vol.sync_full = d == SAN_SYNC_SOURCE_FULL;
		vol.syncing = true;
		/* not an earlier sync's figures: its size follows once known */
		vol.sync_done = 0;
		vol.sync_total = 0;
		/* a resync thread of an earlier link stops at its next step */
		uint64_t epoch = ++vol.sync_epoch;
		san_emit_state_locked();
		g_mutex_unlock(&vol.lock);
		/* not joined: an earlier one may wait for this thread's link */
		g_thread_unref(g_thread_new("san-resync", resync, GSIZE_TO_POINTER(epoch)));
		return;
	case SAN_SYNC_TARGET_BITMAP:
	case SAN_SYNC_TARGET_FULL:
		if (before != LINK_TARGET) {
			vol.link = LINK_TARGET;
			vol.sync_done = 0;
			vol.sync_total = 0;
			san_emit_state_locked();
		}
		g_mutex_unlock(&vol.lock);
		return;
	case SAN_SYNC_SPLIT_BRAIN:
	case SAN_SYNC_UNRELATED:
		vol.link = LINK_REFUSED;
		g_free(vol.refused_why);
		vol.refused_why = g_strdup(san_sync_name(d));
		if (before != LINK_REFUSED || before_d != d) {
			san_emit_state_locked();
			g_mutex_unlock(&vol.lock);
			emit_error(d == SAN_SYNC_SPLIT_BRAIN
				   ? "split brain: both replicas were written since they parted; refusing to "
				     "connect until one is discarded (self %s, peer %s)"
				   : "the peer's replica is unrelated to this one; refusing to connect "
				     "(self %s, peer %s)", ds, dp);
			return;
		}
		g_mutex_unlock(&vol.lock);
		return;
	}
	g_mutex_unlock(&vol.lock);
}

void san_sync_link_lost(void)
{
	g_mutex_lock(&vol.lock);
	san_disk disk = vol.disk;
	vol.disk = san_disk_on_peer_lost(vol.disk);
	if (vol.disk != disk)
		san_log("the link to the peer is lost with the local replica %s: I/O fails", san_disk_name(disk));
	if (vol.link != LINK_DOWN && vol.link != LINK_REFUSED) {
		vol.link = LINK_DOWN;
		g_cond_broadcast(&vol.cond);
		san_emit_state_locked();
	} else if (vol.disk != disk) {
		g_cond_broadcast(&vol.cond);
		san_emit_state_locked();
	}
	g_mutex_unlock(&vol.lock);
}

static __thread uint64_t my_epoch;   /* the resync thread's sync_epoch */

static bool still_source(void)
{
	g_mutex_lock(&vol.lock);
	bool ok = vol.link == LINK_SOURCE && vol.sync_epoch == my_epoch && !vol.stopping;
	g_mutex_unlock(&vol.lock);
	return ok;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[4096];
	while (n) {
		size_t k = MIN(n, sizeof z);
		if (memcmp(p, z, k) != 0)
			return false;
		p += k;
		n -= k;
	}
	return true;
}

/*
 * The resync's batches, two at a time: while one batch's flush is in
 * flight at the peer, the next one's regions are locked, read and written
 * (so the link and the peer's disk do not idle between batches).  A batch:
 * dirty regions up to the batch size in all (each at most CHUNK), locked
 * against local writes, read and sent to the peer together (no FUA); once
 * every write is answered, one flush of the peer; only when that flush
 * succeeded are their bits cleared (in memory, under the locks: a write
 * made alone after a drop sets them again and must not lose them), and
 * then the locks go.
 */
typedef struct {
	uint64_t off, len;
	san_peer_req *req;      /* NULL: not sent (its read failed) */
} region;

typedef struct {
	uint8_t *buf;           /* BATCH_BYTES */
	region *regs;           /* BATCH_REGIONS; every one's range is locked */
	unsigned n;
	uint64_t bytes;
	san_peer_req *flush;    /* sent once every write was answered, or NULL */
} batch;

/* Lock, read and send the dirty regions from @from on (at most @max_bytes);
 * the end of the last in @next (none: nothing dirty from @from on).
 * 0 or -errno (the regions sent so far stay in @b). */
static int batch_send(batch *b, uint64_t max_bytes, uint64_t from, uint64_t *next)
{
	uint64_t off = from, len;
	int r = 0;

	b->n = 0;
	b->bytes = 0;
	b->flush = NULL;
	while (b->n < BATCH_REGIONS && b->bytes < max_bytes &&
	       san_bitmap_next_dirty(vol.bitmap, off, MIN((uint64_t)CHUNK, max_bytes - b->bytes), &off, &len)) {
		if (!still_source()) {
			r = -ECANCELED;
			break;
		}
		san_resync_lock(off, len);
		uint8_t *p = b->buf + b->bytes;
		region *g = &b->regs[b->n++];
		g->off = off;
		g->len = len;
		g->req = NULL;
		r = san_file_read(p, (uint32_t)len, off);
		if (r < 0)
			break;
		g->req = all_zero(p, len) ? san_peer_zero((uint32_t)len, off, NBDKIT_FLAG_MAY_TRIM)
					  : san_peer_pwrite(p, (uint32_t)len, off, 0);
		b->bytes += len;
		off += len;
	}
	*next = off;
	return r;
}

/* Wait for every write of @b (its buffer is libnbd's until then); if all
 * succeeded and @flush, send the flush that covers them.  0 or -errno. */
static int batch_written(batch *b, bool flush)
{
	int r = 0;
	for (unsigned i = 0; i < b->n; i++) {
		int w = b->regs[i].req ? san_peer_wait(b->regs[i].req) : -EIO;
		if (r == 0)
			r = w;
	}
	if (r == 0 && flush && b->n)
		b->flush = san_peer_flush();
	return r;
}

/* Wait for @b's flush (the time waited added to @waited); if it
 * succeeded, clear its bits; release its locks (the oldest held).  0 or
 * -errno (no flush sent: -ENOTCONN). */
static int batch_done(batch *b, gint64 *waited)
{
	int r = 0;
	if (b->n) {
		gint64 t = g_get_monotonic_time();
		r = san_peer_wait(b->flush);
		*waited += g_get_monotonic_time() - t;
		b->flush = NULL;
		if (r == 0)
			for (unsigned i = 0; i < b->n; i++)
				san_bitmap_clear(vol.bitmap, b->regs[i].off, b->regs[i].len);
	}
	san_resync_release(b->n);
	b->n = 0;
	return r;
}

/* When the resync may go on at the configured rate, @bytes sent since
 * @start; 0: at once. */
static gint64 rate_due(uint64_t bytes, gint64 start)
{
	uint64_t rate = vol.resync_rate;
	return rate ? start + (gint64)(bytes * G_USEC_PER_SEC / rate) : 0;
}

static void rate_wait(gint64 due)
{
	while (still_source()) {
		gint64 left = due - g_get_monotonic_time();
		if (left <= 0)
			break;
		g_usleep((gulong)MIN(left, 100000));
	}
}

/* A batch's bytes are on the peer: the progress, reported once a second,
 * and the cleared bits persisted as often. */
typedef struct {
	gint64 last_report, last_flush, flush_wait;
	uint64_t regions, batches;
} progress;

static void batch_progress(uint64_t bytes, progress *p)
{
	gint64 now = g_get_monotonic_time();
	g_mutex_lock(&vol.lock);
	vol.sync_done = MIN(vol.sync_done + bytes, vol.sync_total);
	vol.resynced += bytes;
	if (now - p->last_report >= G_USEC_PER_SEC) {
		san_emit_state_locked();
		p->last_report = now;
	}
	g_mutex_unlock(&vol.lock);
	if (now - p->last_flush >= G_USEC_PER_SEC) {
		san_bitmap_flush(vol.bitmap);
		p->last_flush = now;
	}
}

/* Both batches in turn until nothing is dirty; 0 or -errno (-ECANCELED:
 * no longer the current resync's source). */
static int copy_all(batch bt[2], uint64_t batch_max, gint64 start, progress *p)
{
	batch *prev = NULL, *cur = &bt[0];
	uint64_t sent = 0, from = 0, next;
	int r;
	for (;;) {
		/* this batch is sent while the previous one's flush is in flight */
		int rs = batch_send(cur, batch_max, from, &next);
		uint64_t flushed = prev ? prev->bytes : 0;
		int rp = prev ? batch_done(prev, &p->flush_wait) : 0;
		int rw = batch_written(cur, rs == 0 && rp == 0);
		prev = NULL;
		if (rp == 0 && flushed)
			batch_progress(flushed, p);
		r = rs < 0 ? rs : rp < 0 ? rp : rw;
		if (r < 0) {
			batch_done(cur, &p->flush_wait);
			return r;
		}
		if (cur->n == 0) {
			if (from == 0)
				return 0;
			from = 0;       /* one more pass: nothing may be left behind */
			continue;
		}
		from = next;
		sent += cur->bytes;
		p->regions += cur->n;
		p->batches++;
		prev = cur;
		cur = cur == &bt[0] ? &bt[1] : &bt[0];
		gint64 due = rate_due(sent, start);
		if (due > g_get_monotonic_time()) {
			/* a pause for the rate: the batch in flight ends first, so
			 * that no region stays locked against the guest meanwhile */
			flushed = prev->bytes;
			r = batch_done(prev, &p->flush_wait);
			prev = NULL;
			if (r < 0)
				return r;
			batch_progress(flushed, p);
			rate_wait(due);
		}
	}
}

/* The resync stops; the link is dropped only by the current resync (an
 * earlier one must not drop a link made since). */
static void abort_sync(const char *why)
{
	g_mutex_lock(&vol.lock);
	bool current = vol.sync_epoch == my_epoch;
	g_mutex_unlock(&vol.lock);
	if (current)
		san_peer_drop(why);
}

static void mark_inconsistent(san_meta *peer, const san_meta *self)
{
	peer->flags &= ~(uint32_t)SAN_META_CONSISTENT;
	peer->flags |= SAN_META_OUTDATED;
}

/* Read the peer's meta (unless @read has it, read just now), change it
 * with @edit (given this side's), write it back; on failure the link drops
 * (the resync stops). */
static bool edit_peer_meta(void (*edit)(san_meta *peer, const san_meta *self), const char *what,
			   const san_meta *read)
{
	san_meta peer;
	int r = 0;
	if (read)
		peer = *read;
	else
		r = san_peer_meta_read(&peer);
	if (r == 0) {
		g_mutex_lock(&vol.lock);
		san_meta self = vol.meta;
		g_mutex_unlock(&vol.lock);
		edit(&peer, &self);
		r = san_peer_meta_write(&peer);
	}
	if (r < 0) {
		san_log("resync: cannot %s: %s", what, g_strerror(-r));
		abort_sync("the peer's metadata cannot be written");
		return false;
	}
	return true;
}

static void mark_crash_region(uint64_t off, uint64_t len, void *data)
{
	int *r = data;
	if (*r == 0)
		*r = san_bitmap_mark(vol.bitmap, off, len);
}

/* The crash extents of this replica and of @peer dirty (persisted), so the
 * resync copies them: where a crashed writer's node may have left the
 * replicas differing.  The bytes they added in @added; 0 or -errno. */
static int mark_crash_extents(const san_meta *peer, uint64_t *added)
{
	int r = 0;
	uint64_t before = san_bitmap_dirty_bytes(vol.bitmap);
	g_mutex_lock(&vol.lock);
	san_meta self = vol.meta;
	g_mutex_unlock(&vol.lock);
	san_meta_crash_regions(&self, self.size, mark_crash_region, &r);
	san_meta_crash_regions(peer, self.size, mark_crash_region, &r);
	*added = san_bitmap_dirty_bytes(vol.bitmap) - before;
	return r;
}

static gpointer resync(gpointer epoch)
{
	g_autofree uint8_t *buf0 = g_malloc(BATCH_BYTES), *buf1 = g_malloc(BATCH_BYTES);
	g_autofree region *regs0 = g_new(region, BATCH_REGIONS), *regs1 = g_new(region, BATCH_REGIONS);
	uint8_t *buf[2] = { buf0, buf1 };
	region *regs[2] = { regs0, regs1 };
	int r;

	my_epoch = GPOINTER_TO_SIZE(epoch);
	g_mutex_lock(&vol.lock);
	bool full = vol.sync_full;
	g_mutex_unlock(&vol.lock);
	if (full && san_bitmap_mark_all(vol.bitmap) < 0) {
		emit_error("cannot mark the volume for a full sync");
		abort_sync("the bitmap cannot be written");
		return NULL;
	}
	uint64_t crash_bytes = 0;
	san_meta peer;
	r = san_peer_meta_read(&peer);
	if (r < 0) {
		san_log("resync: cannot read the peer's metadata: %s", g_strerror(-r));
		abort_sync("the peer's metadata cannot be read");
		return NULL;
	}
	if (!full && (r = mark_crash_extents(&peer, &crash_bytes)) < 0) {
		san_log("resync: cannot mark the crash extents: %s", g_strerror(-r));
		abort_sync("the crash extents cannot be marked");
		return NULL;
	}
	/* the target is inconsistent from the first region on (its meta as
	 * read above: a sync target has no writer to change it meanwhile) */
	if (!edit_peer_meta(mark_inconsistent, "mark the peer inconsistent", &peer))
		return NULL;

	g_mutex_lock(&vol.lock);
	vol.sync_total = san_bitmap_dirty_bytes(vol.bitmap);
	vol.sync_done = 0;
	vol.resynced = 0;
	san_emit_state_locked();
	g_mutex_unlock(&vol.lock);
	san_log("resync to the peer: %" PRIu64 " bytes (%s; %" PRIu64 " of them only in a crash's activity log)",
		vol.sync_total, full ? "full" : "dirty regions", crash_bytes);

	/* a batch is at most an eighth of a second's worth at the configured rate */
	uint64_t batch_max = BATCH_BYTES;
	if (vol.resync_rate)
		batch_max = CLAMP(vol.resync_rate / 8 / SAN_BITMAP_GRAIN * SAN_BITMAP_GRAIN,
			      (uint64_t)SAN_BITMAP_GRAIN * 16, (uint64_t)BATCH_BYTES);
	gint64 start = g_get_monotonic_time();
	batch bt[2] = { { .buf = buf[0], .regs = regs[0] }, { .buf = buf[1], .regs = regs[1] } };
	progress prog = { .last_report = start, .last_flush = start };
	san_resync_begin();
	r = copy_all(bt, batch_max, start, &prog);
	san_resync_end();
	if (r == -ECANCELED)
		return NULL;            /* the link went, or a newer resync took over */
	if (r < 0) {
		san_log("resync stopped: %s", g_strerror(-r));
		abort_sync("the resync failed");
		return NULL;
	}
	if (san_bitmap_flush(vol.bitmap) < 0) {
		abort_sync("the bitmap cannot be written");
		return NULL;
	}

	/* the end: the target takes this side's generation */
	if (!still_source())
		return NULL;
	if (!edit_peer_meta(san_meta_sync_end_target, "give the peer its generation", NULL))
		return NULL;
	g_mutex_lock(&vol.lock);
	san_meta_sync_end_source(&vol.meta);
	g_mutex_unlock(&vol.lock);
	san_meta_save();
	g_mutex_lock(&vol.lock);
	if (vol.link == LINK_SOURCE && vol.sync_epoch == my_epoch) {
		vol.sync_done = vol.sync_total;
		set_insync_locked();
	}
	vol.peer_outdated = false;
	uint64_t resynced = vol.resynced;
	g_mutex_unlock(&vol.lock);
	san_log("resync done: %" PRIu64 " bytes in %.3f s (%" PRIu64 " regions in %" PRIu64 " batches; "
		"%.3f s waiting for the peer's flushes)", resynced,
		(double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC, prog.regions, prog.batches,
		(double)prog.flush_wait / G_USEC_PER_SEC);
	san_sync_emit_synced(resynced);
	return NULL;
}

/* ------------------------------------------------------------- verify */

static void verify_run(void);

static gpointer verify(gpointer unused)
{
	verify_run();
	g_mutex_lock(&vol.lock);
	verifying = false;
	g_mutex_unlock(&vol.lock);
	return NULL;
}

static void verify_run(void)
{
	g_autofree uint8_t *mine = g_malloc(CHUNK), *theirs = g_malloc(CHUNK);
	uint64_t size, differ = 0, first = UINT64_MAX;
	int r = 0;
	g_mutex_lock(&vol.lock);
	size = vol.meta.size;
	g_mutex_unlock(&vol.lock);
	for (uint64_t off = 0; off < size && r == 0; off += CHUNK) {
		uint32_t len = (uint32_t)MIN((uint64_t)CHUNK, size - off);
		/* under the region lock: no local write changes it meanwhile */
		san_resync_begin();
		san_resync_lock(off, len);
		r = san_file_read(mine, len, off);
		if (r == 0)
			r = san_peer_wait(san_peer_pread(theirs, len, off));
		san_resync_end();
		if (r < 0)
			break;
		for (uint32_t i = 0; i < len; i += 4096) {
			uint32_t n = MIN(4096u, len - i);
			if (memcmp(mine + i, theirs + i, n) != 0) {
				differ += n;
				first = MIN(first, off + i);
			}
		}
	}
	g_mutex_lock(&vol.lock);
	int64_t id = verify_id;
	g_mutex_unlock(&vol.lock);
	if (r < 0) {
		emit_error("verify failed: %s", g_strerror(-r));
		g_autoptr(json_t) ev = json_pack("{s:s,s:s,s:I,s:s+}", "ev", "verify", "uuid", vol.uuid, "id",
						 (json_int_t)id, "error", "reading the replicas failed: ",
						 g_strerror(-r));
		san_control_emit(json_dumps(ev, JSON_COMPACT));
		return;
	}
	san_log("verify: %" PRIu64 " bytes differ", differ);
	g_autoptr(json_t) ev = json_pack("{s:s,s:s,s:I,s:b,s:I,s:I}", "ev", "verify", "uuid", vol.uuid, "id",
					 (json_int_t)id, "equal", differ == 0, "differ", (json_int_t)differ,
					 "compared", (json_int_t)size);
	json_object_set_new(ev, "first", differ ? json_integer((json_int_t)first) : json_null());
	san_control_emit(json_dumps(ev, JSON_COMPACT));
}

bool san_verify_start(int64_t id, GError **error)
{
	g_mutex_lock(&vol.lock);
	bool up = vol.link == LINK_INSYNC;
	g_mutex_unlock(&vol.lock);
	if (!up) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_AGAIN,
			    "verify needs the replicas connected and in sync");
		return false;
	}
	g_mutex_lock(&vol.lock);
	bool busy = verifying;
	verifying = true;
	if (!busy)
		verify_id = id;
	g_mutex_unlock(&vol.lock);
	if (busy) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_AGAIN, "a verify is running already");
		return false;
	}
	g_thread_unref(g_thread_new("san-verify", verify, NULL));
	return true;
}
