/*
 * nbdkit-herd-plugin: one eSAN volume's replica on this node, served to the
 * local QEMU (export UUID, AF_UNIX only) and to the peer's plugin (exports
 * `data` and `meta`, TLS only), with every local write mirrored to the peer
 * (DRBD's protocol C: answered when both answered).  Thread model PARALLEL.
 *
 * Parameters (nbdkit KEY=VALUE):
 *   file=PATH        the replica (made sparse if missing and size= given)
 *   meta=PATH        its metadata block (made if missing)
 *   bitmap=PATH      its dirty bitmap (made if missing)
 *   al=PATH          its activity log (made if missing)
 *   control=PATH     the unix socket herd-san talks to (JSON lines)
 *   uuid=UUID        the volume: the local export's name
 *   peer=HOST:PORT   the peer's nbdkit (TLS); [v6]:PORT for IPv6
 *   tls-dir=DIR      ca.crt, node.crt, node.key for the link to the peer
 *   size=BYTES       make the replica file if missing
 *   initial-gen=HEX  the generation a new meta starts with if uptodate=true
 *   uptodate=BOOL    the store says this replica is up to date (default false)
 *   timeout-ms=MS    a peer request unanswered this long: peer lost (5000)
 *   resync-rate=B/S  resync bandwidth, 0 unlimited (default 0)
 *
 * The write path, a local write:
 *   link in sync (or resyncing from here): to the peer (libnbd, async) and
 *   the local file in parallel; answered when both answered.  If the peer
 *   fails or times out, the write is held: a new data generation is made
 *   (once per outage), the region marked dirty and persisted, `peer-lost`
 *   sent, and the answer waits for `outdated` (or for the peer to be back in
 *   sync, its region resynced).  With `outdated` received, writes go alone:
 *   bits set and persisted before the local write.
 * Regions written to the peer since its last flush are kept in memory and
 * marked dirty when the peer is lost (it may lose them in a power cut).
 * Before any of this, a local write enters the activity log (plugin_al.c):
 * after a crash of this node with a writer open, only the extents the log
 * names (and the dirty bitmap) are resynchronised.
 *
 * Limits (later work): a write beyond the peer's old size in the second after
 * both grew is held like a lost peer's; nbdkit 1.32 waits on SIGTERM for its
 * clients (QEMU, the peer's link) to go, so herd-san must SIGKILL after a
 * grace period.
 */
#include "san/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileutil.h"
#include "common/json.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* A sync target starts writing a resync's region to its disk as it
 * arrives from this size on (data_write). */
#define RESYNC_WRITE_EARLY_MIN (64u * 1024u)

san_volume vol = { .fd = -1, .bitmap_fd = -1, .timeout_ms = 5000, .synced_told = -1 };

typedef enum { EXPORT_LOCAL, EXPORT_DATA, EXPORT_META } export_kind;

typedef struct {
	export_kind kind;
	uint64_t seq;           /* data, meta: which connection of the peer's to it this is */
	uint64_t epoch;         /* data, meta: vol.role_epoch when it was opened */
} handle;

/* The peer's connections to the data and meta exports, counted: only the
 * newest of each may write (stale()). */
static uint64_t peer_connections[3];

void san_log(const char *fmt, ...)
{
	va_list ap;
	g_autofree char *msg = NULL;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_autoptr(GDateTime) now = g_date_time_new_now_utc();
	g_autofree char *ts = g_date_time_format(now, "%H:%M:%S.%f");
	fprintf(stderr, "%.12s herd-plugin %s: %s\n", ts, vol.uuid ? vol.uuid : "?", msg);
}

uint64_t san_random_id(void)
{
	uint64_t id = 0;
	while (id == 0)
		if (getrandom(&id, sizeof id, 0) != sizeof id)
			id = (uint64_t)g_random_int() << 32 | g_random_int();
	return id;
}

int san_meta_save(void)
{
	uint8_t block[SAN_META_BLOCK];
	g_autoptr(GError) error = NULL;
	g_mutex_lock(&vol.meta_io);
	g_mutex_lock(&vol.lock);
	if (vol.disk != SAN_DISK_HEALTHY) {
		/* a detached replica's metadata stays as it was on its disk: older
		 * than the peer's (san_meta_detach_generation), a full sync */
		g_mutex_unlock(&vol.lock);
		g_mutex_unlock(&vol.meta_io);
		return 0;
	}
	san_meta_encode(&vol.meta, false, block);
	g_mutex_unlock(&vol.lock);
	bool ok = herd_file_write_atomic(vol.meta_path, block, sizeof block, 0600, &error);
	g_mutex_unlock(&vol.meta_io);
	if (!ok) {
		san_log("cannot save the metadata: %s", error->message);
		return -EIO;
	}
	return 0;
}

/* ------------------------------------------------------- nbdkit callbacks */

static int plugin_config(const char *key, const char *value)
{
	if (strcmp(key, "file") == 0)
		vol.file = nbdkit_absolute_path(value);
	else if (strcmp(key, "meta") == 0)
		vol.meta_path = nbdkit_absolute_path(value);
	else if (strcmp(key, "bitmap") == 0)
		vol.bitmap_path = nbdkit_absolute_path(value);
	else if (strcmp(key, "al") == 0)
		vol.al_path = nbdkit_absolute_path(value);
	else if (strcmp(key, "control") == 0)
		vol.control_path = nbdkit_absolute_path(value);
	else if (strcmp(key, "tls-dir") == 0)
		vol.tls_dir = nbdkit_absolute_path(value);
	else if (strcmp(key, "uuid") == 0)
		vol.uuid = g_strdup(value);
	else if (strcmp(key, "peer") == 0) {
		const char *colon = strrchr(value, ':');
		if (!colon || colon == value || !colon[1]) {
			nbdkit_error("peer=%s: expected HOST:PORT", value);
			return -1;
		}
		g_free(vol.peer_host);
		vol.peer_host = value[0] == '[' && colon[-1] == ']'
			? g_strndup(value + 1, (gsize)(colon - value - 2))
			: g_strndup(value, (gsize)(colon - value));
		g_free(vol.peer_port);
		vol.peer_port = g_strdup(colon + 1);
	} else if (strcmp(key, "size") == 0) {
		int64_t s = nbdkit_parse_size(value);
		if (s < 0)
			return -1;
		vol.create_size = (uint64_t)s;
	} else if (strcmp(key, "initial-gen") == 0) {
		char *end = NULL;
		vol.initial_gen = g_ascii_strtoull(value, &end, 16);
		if (!*value || *end || vol.initial_gen == 0) {
			nbdkit_error("initial-gen=%s: expected a non-zero hexadecimal number", value);
			return -1;
		}
	} else if (strcmp(key, "uptodate") == 0) {
		int b = nbdkit_parse_bool(value);
		if (b < 0)
			return -1;
		vol.uptodate = b;
	} else if (strcmp(key, "timeout-ms") == 0) {
		if (nbdkit_parse_unsigned("timeout-ms", value, &vol.timeout_ms) < 0)
			return -1;
		if (vol.timeout_ms == 0) {
			nbdkit_error("timeout-ms must be above 0");
			return -1;
		}
	} else if (strcmp(key, "resync-rate") == 0) {
		if (nbdkit_parse_uint64_t("resync-rate", value, &vol.resync_rate) < 0)
			return -1;
	} else {
		nbdkit_error("unknown parameter '%s'", key);
		return -1;
	}
	return 0;
}

static int plugin_config_complete(void)
{
	const char *missing = !vol.file ? "file" : !vol.meta_path ? "meta" : !vol.bitmap_path ? "bitmap"
		: !vol.al_path ? "al" : !vol.control_path ? "control" : !vol.uuid ? "uuid" : !vol.peer_host ? "peer"
		: !vol.tls_dir ? "tls-dir" : NULL;
	if (missing) {
		nbdkit_error("the parameter %s= is missing", missing);
		return -1;
	}
	if (strcmp(vol.uuid, "data") == 0 || strcmp(vol.uuid, "meta") == 0 || !*vol.uuid) {
		nbdkit_error("uuid=%s: not a volume's UUID", vol.uuid);
		return -1;
	}
	return 0;
}

static bool read_whole(const char *path, char **data, gsize *len, bool *missing)
{
	g_autoptr(GError) error = NULL;
	*missing = false;
	if (g_file_get_contents(path, data, len, &error))
		return true;
	if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
		*missing = true;
		return false;
	}
	nbdkit_error("cannot read %s: %s", path, error->message);
	return false;
}

/*
 * The replica's last writer did not close it: this node crashed with the
 * guest writing.  Where its writes were in flight the replicas may differ;
 * the activity log says where (its extents join the crash extents of the
 * metadata, kept until a sync ends).  A log that cannot be trusted, or an
 * earlier crash that was not listed, leaves a full sync, and says why.
 */
static void note_crash(void)
{
	g_autoptr(GArray) ext = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_autoptr(GError) error = NULL;
	uint64_t extent = 0;
	bool earlier_full = (vol.meta.flags & SAN_META_CRASHED) && !san_meta_crash_listed(&vol.meta);
	vol.meta.flags &= ~(uint32_t)SAN_META_WRITER;
	bool trusted = san_activity_recover(vol.meta.al_id, ext, &extent, &error);
	if (trusted && san_meta_crash_add(&vol.meta, extent, (const uint32_t *)ext->data, ext->len)) {
		san_log("the last writer did not close the replica (crash): its activity log names %u extent(s) "
			"of %" PRIu64 " MiB (%u in all since the last sync); the next sync copies those and the "
			"dirty regions, not everything", ext->len, extent >> 20, vol.meta.crash_count);
		return;
	}
	san_meta_crash_full(&vol.meta);
	g_free(vol.crash_why);
	vol.crash_why = g_strdup(!trusted ? error->message
				 : earlier_full ? "an earlier crash was not covered by the activity log"
				 : "the crashed regions cannot all be listed");
	san_log("the last writer did not close the replica (crash) and %s: the next sync copies everything",
		vol.crash_why);
}

/* The replica file, its meta (made or loaded; a crash noted), its bitmap. */
static int plugin_get_ready(void)
{
	struct stat st;
	g_autofree char *mdata = NULL, *bdata = NULL;
	gsize mlen = 0, blen = 0;
	bool missing;

	vol.fd = open(vol.file, O_RDWR | O_CLOEXEC | (vol.create_size ? O_CREAT : 0), 0600);
	if (vol.fd < 0) {
		nbdkit_error("cannot open the replica %s: %m", vol.file);
		return -1;
	}
	if (fstat(vol.fd, &st) < 0) {
		nbdkit_error("cannot stat %s: %m", vol.file);
		return -1;
	}
	if ((uint64_t)st.st_size < vol.create_size && ftruncate(vol.fd, (off_t)vol.create_size) < 0) {
		nbdkit_error("cannot size %s: %m", vol.file);
		return -1;
	}
	uint64_t size = MAX((uint64_t)st.st_size, vol.create_size);

	if (read_whole(vol.meta_path, &mdata, &mlen, &missing)) {
		g_autoptr(GError) error = NULL;
		if (!san_meta_decode((const uint8_t *)mdata, mlen, &vol.meta, &error)) {
			nbdkit_error("%s: %s", vol.meta_path, error->message);
			return -1;
		}
		vol.meta.flags &= SAN_META_DISK_FLAGS;
		vol.meta.size = MAX(vol.meta.size, size);
	} else if (missing) {
		san_meta_init(&vol.meta, size, vol.uptodate ? vol.initial_gen : 0, san_random_id());
		if (vol.uptodate && !vol.initial_gen) {
			nbdkit_error("uptodate=true for a new replica needs initial-gen=");
			return -1;
		}
	} else {
		return -1;
	}
	g_autoptr(GError) al_error = NULL;
	if (!san_activity_open(&al_error)) {
		nbdkit_error("%s", al_error->message);
		return -1;
	}
	if (vol.meta.flags & SAN_META_WRITER)
		note_crash();
	if (san_meta_save() < 0) {
		nbdkit_error("cannot write %s", vol.meta_path);
		return -1;
	}

	vol.bitmap_fd = open(vol.bitmap_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (vol.bitmap_fd < 0) {
		nbdkit_error("cannot open the bitmap %s: %m", vol.bitmap_path);
		return -1;
	}
	san_bitmap_io io = san_bitmap_io_fd(&vol.bitmap_fd);
	vol.bitmap = san_bitmap_new(vol.meta.size, &io);
	san_bitmap_io none = { 0 };
	vol.unflushed = san_bitmap_new(vol.meta.size, &none);
	bool trusted = false;
	if (read_whole(vol.bitmap_path, &bdata, &blen, &missing) && blen > 0) {
		g_autoptr(GError) error = NULL;
		trusted = san_bitmap_load(vol.bitmap, bdata, blen, &error);
		if (!trusted)
			san_log("%s: %s", vol.bitmap_path, error->message);
	}
	if (!trusted && vol.meta.bitmap) {
		/* changes were tracked and the record is gone: assume everything changed */
		san_log("the dirty bitmap is lost: the whole volume counts as changed");
		if (san_bitmap_mark_all(vol.bitmap) < 0)
			return -1;
	}
	if (!trusted && san_bitmap_write_all(vol.bitmap) < 0) {
		nbdkit_error("cannot write %s: %m", vol.bitmap_path);
		return -1;
	}
	vol.local_uptodate = vol.uptodate;
	/* peer-lost numbers differ across runs too (an answer to an old run's is stale) */
	vol.lost_seq = (uint64_t)g_get_real_time();
	san_write_init();
	g_autofree char *d = san_meta_describe(&vol.meta);
	san_log("replica %s, %" PRIu64 " bytes, generations %s, %" PRIu64 " bytes dirty", vol.file,
		vol.meta.size, d, san_bitmap_dirty_bytes(vol.bitmap));
	return 0;
}

int san_eventfd(GError **error)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "eventfd: %s",
			    g_strerror(errno));
	return fd;
}

static int plugin_after_fork(void)
{
	g_autoptr(GError) error = NULL;
	if (!san_control_start(&error) || !san_peer_start(&error)) {
		nbdkit_error("%s", error->message);
		return -1;
	}
	san_activity_start();
	return 0;
}

static void plugin_cleanup(void)
{
	g_mutex_lock(&vol.lock);
	vol.stopping = true;
	g_cond_broadcast(&vol.cond);
	g_mutex_unlock(&vol.lock);
	san_activity_stop();
	san_peer_stop();
	san_control_stop();
}

static int plugin_list_exports(int readonly, int is_tls, struct nbdkit_exports *exports)
{
	if (is_tls)
		return nbdkit_add_export(exports, "data", "the replica, for the peer") < 0 ||
		       nbdkit_add_export(exports, "meta", "the replica's metadata, for the peer") < 0 ? -1 : 0;
	return nbdkit_add_export(exports, vol.uuid, "the volume, for the local QEMU");
}

static const char *plugin_default_export(int readonly, int is_tls)
{
	return NULL;    /* a client names what it wants */
}

/* Under vol.lock: why the local export may not be written now, or NULL. */
static const char *local_refusal_locked(void)
{
	if (!vol.local_uptodate)
		return "herd has not declared the local replica up to date";
	if (!(vol.meta.flags & SAN_META_CONSISTENT) || !vol.meta.current)
		return "the local replica is inconsistent (a sync target)";
	if (vol.link == LINK_TARGET)
		return "the peer is resyncing the local replica";
	return NULL;
}

static void *plugin_open(int readonly)
{
	const char *name = nbdkit_export_name();
	int tls = nbdkit_is_tls();
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	handle *h;

	if (!name || tls < 0)
		return NULL;
	if (strcmp(name, vol.uuid) == 0) {
		if (nbdkit_peer_name((struct sockaddr *)&ss, &sl) < 0)
			return NULL;
		if (ss.ss_family != AF_UNIX) {
			nbdkit_error("export %s is served on the local unix socket only", name);
			return NULL;
		}
		g_mutex_lock(&vol.lock);
		const char *why = local_refusal_locked();
		if (why) {
			g_mutex_unlock(&vol.lock);
			nbdkit_error("export %s refused: %s", name, why);
			san_log("local open refused: %s", why);
			return NULL;
		}
		bool first = vol.writers++ == 0;
		bool healthy = vol.disk == SAN_DISK_HEALTHY;
		g_mutex_unlock(&vol.lock);
		/* a new activity log session, stable before the metadata names it
		 * (none on a detached replica: its writes go to the peer only) */
		uint64_t al_id = 0;
		int r = first && healthy ? san_activity_session(&al_id) : 0;
		if (r < 0) {
			/* the log is on the local disk: it failed */
			san_local_failed(r, "a write of the activity log");
			if (san_disk_route_wait() == SAN_ROUTE_PEER)
				r = 0;
		}
		g_mutex_lock(&vol.lock);
		if (r < 0) {
			vol.writers--;
			g_mutex_unlock(&vol.lock);
			nbdkit_error("export %s refused: the activity log cannot be written: %s", name,
				     g_strerror(-r));
			return NULL;
		}
		if (first) {
			vol.meta.al_id = al_id;
			vol.meta.flags |= SAN_META_WRITER;
		}
		san_emit_state_locked();
		g_mutex_unlock(&vol.lock);
		if (first && san_meta_save() < 0) {
			g_mutex_lock(&vol.lock);
			vol.writers--;
			g_mutex_unlock(&vol.lock);
			return NULL;
		}
		h = g_new0(handle, 1);
		h->kind = EXPORT_LOCAL;
		return h;
	}
	if (strcmp(name, "data") == 0 || strcmp(name, "meta") == 0) {
		if (tls != 1) {
			nbdkit_error("export %s is served over TLS only", name);
			return NULL;
		}
		h = g_new0(handle, 1);
		h->kind = name[0] == 'd' ? EXPORT_DATA : EXPORT_META;
		g_mutex_lock(&vol.lock);
		h->seq = ++peer_connections[h->kind];
		h->epoch = vol.role_epoch;
		g_mutex_unlock(&vol.lock);
		return h;
	}
	nbdkit_error("no export '%s' (the local export is the volume's UUID)", name);
	return NULL;
}

static void plugin_close(void *hp)
{
	handle *h = hp;
	if (h->kind == EXPORT_LOCAL) {
		g_mutex_lock(&vol.lock);
		bool last = --vol.writers == 0;
		g_mutex_unlock(&vol.lock);
		/* a clean close: stable, and no crash to suspect at the next start */
		if (last && san_file_sync() == 0) {
			g_mutex_lock(&vol.lock);
			if (vol.writers == 0)
				vol.meta.flags &= ~(uint32_t)SAN_META_WRITER;
			san_emit_state_locked();
			g_mutex_unlock(&vol.lock);
			san_meta_save();
			/* a refusal for a writer on the older side may be over */
			san_peer_redecide();
		}
	}
	g_free(h);
}

static int64_t plugin_get_size(void *hp)
{
	handle *h = hp;
	if (h->kind == EXPORT_META)
		return SAN_META_BLOCK;
	g_mutex_lock(&vol.lock);
	int64_t s = (int64_t)vol.meta.size;
	g_mutex_unlock(&vol.lock);
	return s;
}

static int plugin_block_size(void *hp, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
	handle *h = hp;
	*minimum = h->kind == EXPORT_META ? SAN_META_BLOCK : 1;
	*preferred = 4096;
	*maximum = h->kind == EXPORT_META ? SAN_META_BLOCK : 32 * 1024 * 1024;
	return 0;
}

static int plugin_can_true(void *hp)
{
	return 1;
}

static int plugin_can_fua(void *hp)
{
	return NBDKIT_FUA_NATIVE;
}

static int plugin_can_cache(void *hp)
{
	return NBDKIT_CACHE_NONE;
}

static int fail(int r)
{
	nbdkit_set_error(-r);
	return -1;
}

static int plugin_pread(void *hp, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	handle *h = hp;
	if (h->kind == EXPORT_META) {
		uint8_t block[SAN_META_BLOCK];
		g_mutex_lock(&vol.lock);
		san_meta m = vol.meta;
		if (vol.writers)
			m.flags |= SAN_META_WRITER_NOW;
		if (vol.disk != SAN_DISK_HEALTHY && vol.detach_recorded)
			m.flags |= SAN_META_DISKLESS_NOW;
		g_mutex_unlock(&vol.lock);
		san_meta_encode(&m, true, block);
		memcpy(buf, block + offset, count);
		return 0;
	}
	if (h->kind == EXPORT_LOCAL) {
		san_route route = san_disk_route_wait();
		if (route == SAN_ROUTE_PEER)
			return san_peer_read(buf, count, offset) < 0 ? fail(-EIO) : 0;
		if (route == SAN_ROUTE_FAIL)
			return fail(-EIO);
	}
	int r = san_file_read(buf, count, offset);
	if (r < 0 && h->kind == EXPORT_LOCAL) {
		san_local_failed(r, "a read");
		if (san_disk_route_wait() == SAN_ROUTE_PEER)
			return san_peer_read(buf, count, offset) < 0 ? fail(-EIO) : 0;
	}
	if (r < 0) {
		nbdkit_error("read failed: %s", g_strerror(-r));
		return fail(r);
	}
	return 0;
}

void san_role_changed_locked(void)
{
	vol.role_epoch++;
}

/*
 * Only the peer's newest connection to an export writes, and only if it
 * was opened after this replica's last change of role (it went on alone,
 * was promoted or discarded).  The peer has one
 * at a time; an older one is a connection it gave up (a link cut, a
 * timeout), and what it sent on it can still arrive after the cut heals —
 * TCP delivers what was in the peer's send buffer, even after the peer
 * closed the connection, and possibly after what the peer sent since on
 * its new connection.  Applied then, an old write would overwrite newer
 * data: found by bench/esan, where a write that `herd disk promote --force`
 * discarded reached the promoted replica after its full sync.
 */
static bool stale(const handle *h)
{
	g_mutex_lock(&vol.lock);
	bool old = h->seq != peer_connections[h->kind] || h->epoch != vol.role_epoch;
	g_mutex_unlock(&vol.lock);
	if (old)
		nbdkit_error("write from the peer refused: it came on a connection the peer has "
			     "replaced since, or that is older than this replica's last change of role");
	return old;
}

/* Under vol.lock: is @m this replica's metadata moved on to a new
 * generation by a detaching peer (plugin_detach.c): the same data, whole,
 * nothing to resynchronise on either side? */
static bool detach_generation_of(const san_meta *m)
{
	const uint32_t kept = SAN_META_CONSISTENT | SAN_META_OUTDATED | SAN_META_CRASHED;
	return vol.meta.current && m->current && m->current != vol.meta.current &&
	       m->history[0] == vol.meta.current && m->bitmap == 0 && vol.meta.bitmap == 0 &&
	       (vol.meta.flags & SAN_META_CONSISTENT) && (m->flags & kept) == (vol.meta.flags & kept);
}

/* The peer (a sync source) gives this replica its identifiers. */
static int meta_write(const void *buf, uint32_t count, uint64_t offset)
{
	san_meta m;
	g_autoptr(GError) error = NULL;
	if (offset != 0 || count != SAN_META_BLOCK) {
		nbdkit_error("the meta export is written as one %u-byte block", SAN_META_BLOCK);
		return fail(-EINVAL);
	}
	if (!san_meta_decode(buf, count, &m, &error)) {
		nbdkit_error("meta written by the peer refused: %s", error->message);
		return fail(-EINVAL);
	}
	g_mutex_lock(&vol.lock);
	if (vol.writers && detach_generation_of(&m)) {
		/* the peer's disk failed: both go on in a new generation of the
		 * same data, which changes nothing under the writer here (a
		 * guest, or the destination of a live migration from the peer) */
		san_meta_detach_generation(&vol.meta, m.current);
		g_mutex_unlock(&vol.lock);
		int r = san_meta_save();
		if (r < 0)
			return fail(r);
		san_log("the peer's disk failed: a new generation for the same data, with a writer here");
		san_peer_redecide();
		return 0;
	}
	if (vol.writers) {
		g_mutex_unlock(&vol.lock);
		nbdkit_error("meta written by the peer refused: a local writer is open");
		return fail(-EBUSY);
	}
	vol.meta.current = m.current;
	vol.meta.bitmap = m.bitmap;
	vol.meta.history[0] = m.history[0];
	vol.meta.history[1] = m.history[1];
	vol.meta.flags = (vol.meta.flags & SAN_META_WRITER) |
			 (m.flags & (SAN_META_CONSISTENT | SAN_META_OUTDATED | SAN_META_CRASHED |
				     SAN_META_CRASH_LISTED));
	/* the crash extents travel with the flags (a sync's end clears both) */
	vol.meta.crash_extent = m.crash_extent;
	vol.meta.crash_count = m.crash_count;
	memcpy(vol.meta.crash, m.crash, m.crash_count * sizeof *m.crash);
	if (!(m.flags & SAN_META_CRASHED))
		g_clear_pointer(&vol.crash_why, g_free);
	bool done = (m.flags & SAN_META_CONSISTENT) && m.bitmap == 0;
	g_mutex_unlock(&vol.lock);
	if (done) {
		/* a sync to here ended: nothing here is unknown to the peer */
		san_bitmap_clear_all(vol.bitmap);
		san_bitmap_flush(vol.bitmap);
	}
	int r = san_meta_save();
	if (r < 0)
		return fail(r);
	g_autofree char *d = san_meta_describe(&m);
	san_log("the peer set this replica's generations: %s", d);
	san_peer_redecide();
	return 0;
}

/*
 * A write or flush of the peer's on this replica failed (@r < 0, the error)
 * or the local disk had failed before (@r 0): the local replica is
 * detached as after a failure of its own guest's I/O (if the peer is in
 * sync), the peer's request waiting meanwhile.  Once the store has this
 * replica outdated it is answered as done: the peer holds the data, and
 * this replica gets a full sync; the peer, which learns that this side is
 * diskless (the `meta` export), goes on alone without taking it for lost —
 * which would start a generation of its own under a guest that reads
 * through it here (a live migration from here when the disk fails).
 * Else the error.
 */
static int peer_io_failed(int r, const char *what)
{
	if (r < 0)
		san_local_failed(r, what);
	if (san_disk_route_wait() == SAN_ROUTE_PEER)
		return 0;
	return r < 0 ? r : -EIO;
}

/* A write from the peer's plugin: to the local file only. */
static int data_write(write_op op, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	g_mutex_lock(&vol.lock);
	/* A writer here (a guest, or the destination of a live migration)
	 * reads this replica: only the writes of a peer in sync may land under
	 * it, or those of a peer whose disk is detached (its guest's, which has
	 * no other disk than this replica). */
	bool refused = vol.link == LINK_REFUSED ||
		       (vol.writers && vol.link != LINK_INSYNC && vol.link != LINK_PEER_DISKLESS);
	bool target = vol.link == LINK_TARGET;
	bool healthy = vol.disk == SAN_DISK_HEALTHY;
	g_mutex_unlock(&vol.lock);
	if (refused) {
		nbdkit_error("write from the peer refused: this replica is not its target");
		return fail(-EROFS);
	}
	int r = healthy ? san_local_io(op, buf, count, offset, flags) : 0;
	if (r < 0 || !healthy) {
		r = peer_io_failed(r, "a write from the peer");
		if (r < 0) {
			nbdkit_error("write from the peer failed: %s", g_strerror(-r));
			return fail(r);
		}
		return 0;
	}
	/* A large resync write: to the disk now, not at the batch's flush, so
	 * that the disk writes while the next regions arrive.  Only a start:
	 * the flush still decides what is stable.  Not for small regions: for
	 * scattered 4 KiB regions a sync_file_range each cost as much as or
	 * more than the flush it shortened, and CPU besides (bench/README.md,
	 * "bench/esan"; bench/esan-write-early). */
	if (target && op == OP_WRITE && !(flags & NBDKIT_FLAG_FUA) && count >= RESYNC_WRITE_EARLY_MIN)
		sync_file_range(vol.fd, (off_t)offset, count, SYNC_FILE_RANGE_WRITE);
	return 0;
}

/* A write or a zero request, by export. */
static int write_request(handle *h, write_op op, const void *buf, uint32_t count, uint64_t offset,
			 uint32_t flags)
{
	int r;
	switch (h->kind) {
	case EXPORT_META:
		if (stale(h))
			return fail(-EROFS);
		return op == OP_WRITE ? meta_write(buf, count, offset) : fail(-EINVAL);
	case EXPORT_DATA:
		if (stale(h))
			return fail(-EROFS);
		return data_write(op, buf, count, offset, flags);
	case EXPORT_LOCAL:
		r = san_replicated_write(op, buf, count, offset, flags);
		return r < 0 ? fail(r) : 0;
	}
	return fail(-EINVAL);
}

static int plugin_pwrite(void *hp, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	return write_request(hp, OP_WRITE, buf, count, offset, flags);
}

static int plugin_zero(void *hp, uint32_t count, uint64_t offset, uint32_t flags)
{
	if (flags & NBDKIT_FLAG_FAST_ZERO)
		return fail(-ENOTSUP);
	return write_request(hp, OP_ZERO, NULL, count, offset, flags);
}

static int plugin_flush(void *hp, uint32_t flags)
{
	handle *h = hp;
	int r = 0;
	if (h->kind == EXPORT_DATA) {
		g_mutex_lock(&vol.lock);
		bool healthy = vol.disk == SAN_DISK_HEALTHY;
		g_mutex_unlock(&vol.lock);
		r = healthy ? san_file_sync() : 0;
		if (r < 0 || !healthy)
			r = peer_io_failed(r, "a flush of the peer's writes");
	} else if (h->kind == EXPORT_LOCAL)
		r = san_replicated_flush();
	return r < 0 ? fail(r) : 0;
}

static struct nbdkit_plugin plugin = {
	.name = "herd",
	.longname = "herd eSAN replica (synchronous replication to a peer)",
	.version = HERD_VERSION,
	.description = "One eSAN volume's replica: the local export for QEMU, data and meta for the peer.",
	.config = plugin_config,
	.config_complete = plugin_config_complete,
	.config_help = "file=PATH meta=PATH bitmap=PATH al=PATH control=PATH uuid=UUID peer=HOST:PORT "
		       "tls-dir=DIR [size=BYTES] [initial-gen=HEX] [uptodate=BOOL] "
		       "[timeout-ms=MS] [resync-rate=BYTES_PER_S]",
	.get_ready = plugin_get_ready,
	.after_fork = plugin_after_fork,
	.cleanup = plugin_cleanup,
	.list_exports = plugin_list_exports,
	.default_export = plugin_default_export,
	.open = plugin_open,
	.close = plugin_close,
	.get_size = plugin_get_size,
	.block_size = plugin_block_size,
	.can_write = plugin_can_true,
	.can_flush = plugin_can_true,
	.can_zero = plugin_can_true,
	.can_fua = plugin_can_fua,
	.can_cache = plugin_can_cache,
	.pread = plugin_pread,
	.pwrite = plugin_pwrite,
	.zero = plugin_zero,
	.flush = plugin_flush,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
