/*
 * The activity log in the plugin (the shell of san/activity_log.h): its
 * file (al=PATH: two 4 KiB blocks, written with pwrite and fdatasync), the
 * write path's side of it, and a thread that drops quiet extents.
 *
 * A local write first enters the log: if its extents are active it goes at
 * once; else one thread writes a transaction (the others that need one
 * meanwhile wait for it: one fdatasync for all of them) and the write goes
 * when it is stable.  With the set full and nothing clean to evict, the
 * entering thread flushes both replicas (san_stable_flush) and tries again.
 * A write made alone (the peer recorded outdated) skips the log: its
 * region is in the persistent dirty bitmap before it is written, which
 * says more than the log would.
 *
 * Fixed here: 4 MiB extents, at most 256 active (1 GiB in doubt after a
 * crash at most), an extent quiet for 5 s after a flush of both replicas
 * covered its last write is dropped from the log.
 */
#include "san/plugin.h"

#include "san/activity_log.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define AL_EXTENT (4ull << 20)
#define AL_CAPACITY 256u
#define AL_QUIET_US (5 * G_USEC_PER_SEC)
#define AL_TICK_US G_USEC_PER_SEC
/* After a flush that could not free room (the peer away): wait this long. */
#define AL_RETRY_US (100 * G_TIME_SPAN_MILLISECOND)

static struct {
	GMutex lock;            /* everything below */
	GCond cond;             /* broadcast when a transaction ends, a write leaves, a flush ends */
	san_al *al;
	int fd;
	bool writing;           /* a thread writes a transaction */
	bool flushing;          /* a thread flushes for room */
	GCond tick_cond;        /* the tick thread's: broadcast to stop it */
	GThread *thread;
	bool stop;
} A = { .fd = -1 };

static int write_block(const uint8_t *block, uint64_t off)
{
	size_t done = 0;
	while (done < SAN_AL_BLOCK) {
		ssize_t n = pwrite(A.fd, block + done, SAN_AL_BLOCK - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return fdatasync(A.fd) < 0 ? -errno : 0;
}

/* Under A.lock: until transaction @need is stable (writing one if no one is). */
static int persist_until_locked(uint64_t need)
{
	while (san_al_durable(A.al) < need) {
		if (A.writing) {
			g_cond_wait(&A.cond, &A.lock);
			continue;
		}
		uint8_t block[SAN_AL_BLOCK];
		uint64_t seq, off;
		A.writing = true;
		san_al_encode_next(A.al, block, &seq, &off);
		g_mutex_unlock(&A.lock);
		int r = write_block(block, off);
		g_mutex_lock(&A.lock);
		A.writing = false;
		if (r == 0)
			san_al_persisted(A.al, seq);
		g_cond_broadcast(&A.cond);
		if (r < 0) {
			san_log("cannot write the activity log %s: %s", vol.al_path, g_strerror(-r));
			return r;
		}
	}
	return 0;
}

bool san_activity_open(GError **error)
{
	A.fd = open(vol.al_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (A.fd < 0) {
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot open the activity log %s: %s",
			    vol.al_path, g_strerror(errno));
		return false;
	}
	A.al = san_al_new(AL_CAPACITY, AL_EXTENT, AL_QUIET_US);
	return true;
}

bool san_activity_recover(uint64_t al_id, GArray *extents, uint64_t *extent, GError **error)
{
	uint8_t data[SAN_AL_BLOCKS * SAN_AL_BLOCK];
	size_t len = 0;
	while (len < sizeof data) {
		ssize_t n = pread(A.fd, data + len, sizeof data - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
				    "the activity log cannot be read: %s", g_strerror(errno));
			return false;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	return san_al_read(data, len, al_id, extents, extent, error);
}

int san_activity_session(uint64_t *al_id)
{
	*al_id = san_random_id();
	g_mutex_lock(&A.lock);
	while (A.writing)
		g_cond_wait(&A.cond, &A.lock);
	san_al_reset(A.al, *al_id);
	int r = persist_until_locked(san_al_durable(A.al) + 1);
	g_mutex_unlock(&A.lock);
	return r;
}

int san_activity_enter(uint64_t off, uint64_t len)
{
	if (san_writes_alone())
		return 1;
	g_mutex_lock(&A.lock);
	for (;;) {
		uint64_t need = 0;
		int r;
		switch (san_al_begin(A.al, off, len, g_get_monotonic_time(), &need)) {
		case SAN_AL_GO:
			g_mutex_unlock(&A.lock);
			return 0;
		case SAN_AL_PERSIST:
			r = persist_until_locked(need);
			if (r < 0)
				san_al_end(A.al, off, len, g_get_monotonic_time());
			g_mutex_unlock(&A.lock);
			return r;
		case SAN_AL_WAIT:
			g_cond_wait(&A.cond, &A.lock);
			continue;
		case SAN_AL_FLUSH:
			if (A.flushing) {
				g_cond_wait(&A.cond, &A.lock);
				continue;
			}
			A.flushing = true;
			g_mutex_unlock(&A.lock);
			r = san_stable_flush();
			if (r < 0 && san_writes_alone()) {
				/* the peer went away meanwhile: the dirty bitmap takes over */
				g_mutex_lock(&A.lock);
				A.flushing = false;
				g_cond_broadcast(&A.cond);
				g_mutex_unlock(&A.lock);
				return 1;
			}
			g_mutex_lock(&A.lock);
			A.flushing = false;
			g_cond_broadcast(&A.cond);
			if (r < 0)
				g_cond_wait_until(&A.cond, &A.lock, g_get_monotonic_time() + AL_RETRY_US);
			if (vol.stopping) {
				g_mutex_unlock(&A.lock);
				return -ESHUTDOWN;
			}
			continue;
		}
	}
}

void san_activity_leave(uint64_t off, uint64_t len)
{
	g_mutex_lock(&A.lock);
	san_al_end(A.al, off, len, g_get_monotonic_time());
	g_cond_broadcast(&A.cond);
	g_mutex_unlock(&A.lock);
}

uint64_t san_activity_flush_begin(void)
{
	g_mutex_lock(&A.lock);
	uint64_t t = san_al_flush_begin(A.al);
	g_mutex_unlock(&A.lock);
	return t;
}

void san_activity_flush_done(uint64_t ticket)
{
	g_mutex_lock(&A.lock);
	san_al_flush_done(A.al, ticket);
	g_cond_broadcast(&A.cond);
	g_mutex_unlock(&A.lock);
}

/* Once a second: quiet clean extents leave the log, on disk too. */
static gpointer tick_thread(gpointer unused)
{
	g_mutex_lock(&A.lock);
	while (!A.stop) {
		g_cond_wait_until(&A.tick_cond, &A.lock, g_get_monotonic_time() + AL_TICK_US);
		if (A.stop)
			break;
		if ((san_al_tick(A.al, g_get_monotonic_time()) || san_al_changed(A.al)) && !A.writing)
			persist_until_locked(san_al_durable(A.al) + 1);
	}
	g_mutex_unlock(&A.lock);
	return NULL;
}

void san_activity_start(void)
{
	A.thread = g_thread_new("san-al", tick_thread, NULL);
}

void san_activity_stop(void)
{
	if (!A.thread)
		return;
	g_mutex_lock(&A.lock);
	A.stop = true;
	g_cond_broadcast(&A.tick_cond);
	g_mutex_unlock(&A.lock);
	g_thread_join(A.thread);
	A.thread = NULL;
}
