/*
 * nbdkit-herd-plugin: the state its parts share (one volume per nbdkit
 * process).  plugin.c holds the nbdkit callbacks, plugin_write.c the write
 * path, plugin_peer.c the libnbd link to the peer's plugin, plugin_sync.c
 * what happens when the link comes up (the decision, resync, verify),
 * plugin_control.c the control socket for herd-san, plugin_al.c the
 * activity log's file, plugin_detach.c a failing local disk's detach.  What
 * they keep true is in docs/esan.md ("How it is built"); the pure parts are
 * san/meta.h, san/bitmap.h and san/activity_log.h.
 */
#pragma once

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "san/bitmap.h"
#include "san/disk_health.h"
#include "san/meta.h"

/* The link to the peer, as the write path sees it. */
typedef enum {
	LINK_DOWN,      /* no connection (or not decided yet) */
	LINK_INSYNC,    /* connected, replicas identical: writes go to both */
	LINK_SOURCE,    /* connected, this side resyncs the peer: writes go to both */
	LINK_TARGET,    /* connected, the peer resyncs this side: no local writer */
	LINK_REFUSED,   /* split brain, unrelated, or a writer on the older side */
	LINK_PEER_DISKLESS,  /* connected, the peer's local disk is detached (it serves
			      * its guest from here): local writes go here only, and
			      * the peer's writes are its guest's (plugin_detach.c) */
} san_link;

typedef struct {
	/* configuration (plugin parameters, then `config` messages) */
	char *file, *meta_path, *bitmap_path, *al_path, *control_path, *tls_dir, *uuid;
	char *peer_host, *peer_port;
	uint64_t create_size;          /* size=: make the file if missing */
	uint64_t initial_gen;          /* initial-gen=: current of a new meta */
	bool uptodate;                 /* uptodate=: the store's word at start */
	unsigned timeout_ms;           /* a peer request not answered by then: peer lost */
	uint64_t resync_rate;          /* bytes/s, 0: unlimited */
	char *libnbd_tls_dir;          /* the names libnbd wants, linked to tls_dir */

	int fd;                        /* the replica */
	int bitmap_fd;
	san_bitmap *bitmap;            /* persistent: regions the peer lacks */
	san_bitmap *unflushed;         /* memory only: written to the peer since its last flush */

	/* everything below under lock; cond is broadcast on every change */
	GMutex lock;
	GCond cond;
	GMutex meta_io;                /* one writer of the meta file at a time */
	san_meta meta;
	bool local_uptodate;           /* herd-san (or uptodate=) says the store has it up to date */
	san_link link;
	san_sync decision;             /* the last one taken on connect */
	char *refused_why;
	bool alone_ok;                 /* `outdated` came: writes go alone */
	bool peer_lost_sent;
	uint64_t lost_seq;             /* numbers the peer-lost events (an `outdated` may echo it) */
	bool alone_gen;                /* this outage's new generation is made */
	uint64_t role_epoch;           /* bumped when this replica changes its role: it
				        * goes on alone, is promoted or discarded (plugin.c,
				        * stale()) */
	uint64_t insync_epoch;         /* bumped on every return to in-sync */
	unsigned writers;              /* local exports open */
	bool syncing;
	bool sync_full;
	uint64_t sync_epoch;           /* which resync thread is the current one */
	bool peer_outdated;            /* herd-san says the store has the peer not up to date */
	uint64_t sync_done, sync_total, resynced;
	int64_t synced_told;           /* resynced of the last `synced` (-1: none yet)... */
	uint64_t synced_epoch;         /* ...told in this in-sync spell (insync_epoch) */
	uint64_t peer_writes_unflushed;  /* peer writes answered since the last flush began */
	bool stopping;
	char *crash_why;               /* why a crash means a full sync (the log was not trusted) */
	san_disk disk;                 /* the local disk: healthy, or detached after an error */
	char *disk_why;                /* the error that detached it */
	bool detach_recorded;          /* herdd said `detached`: the store has it outdated */
	bool peer_discarded;           /* herd-san says the store has the peer discarded */
} san_volume;

extern san_volume vol;

/* Under vol.lock: the peer's connections opened before now write nothing
 * more here (plugin.c, stale()). */
void san_role_changed_locked(void);

/* Send `synced` with @resynced bytes, and remember it for the control
 * clients that connect while the replicas stay in sync (plugin_sync.c). */
void san_sync_emit_synced(uint64_t resynced);
/* Under vol.lock: tell a new control client the last `synced` again if
 * the replicas are still in the sync it ended. */
void san_sync_retell_synced_locked(void);

/* Log a line to nbdkit's stderr (herd-san's log). */
void san_log(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* Persist vol.meta (under vol.lock or not: it copies it first); 0 or -errno. */
int san_meta_save(void);
/* A fresh random generation identifier. */
uint64_t san_random_id(void);

/* Region locks between local writes and the resync (plugin_write.c): begin takes
 * the one holder's token, lock adds a range (local writes to it wait; it
 * waits for those running), release drops the @n ranges locked first,
 * end releases every range and the token. */
void san_resync_begin(void);
void san_resync_lock(uint64_t off, uint64_t len);
void san_resync_release(unsigned n);
void san_resync_end(void);

/* Flush both replicas (plugin_write.c) for the activity log: 0 if everything
 * written before is stable on both (the log's extents are clean), else
 * -errno (-ENOTCONN: the peer is away). */
int san_stable_flush(void);
/* True if local writes go alone now (the peer recorded outdated, no link):
 * the dirty bitmap records them before they are made. */
bool san_writes_alone(void);

/* Local file I/O (plugin_write.c): 0 or -errno. */
int san_file_read(void *buf, uint32_t count, uint64_t off);
int san_file_write(const void *buf, uint32_t count, uint64_t off);
int san_file_sync(void);

/* A non-blocking eventfd to wake a thread's poll(); -1 with @error. */
int san_eventfd(GError **error);

/* Under vol.lock: tell control clients the volume's state. */
void san_emit_state_locked(void);

/* ---- plugin_peer.c: the libnbd link to the peer's `data` and `meta` */
typedef struct san_peer_req san_peer_req;
bool san_peer_start(GError **error);
void san_peer_stop(void);
/* Requests on the `data` export; NULL if the link is not up. */
san_peer_req *san_peer_pwrite(const void *buf, uint32_t count, uint64_t off, uint32_t flags);
san_peer_req *san_peer_zero(uint32_t count, uint64_t off, uint32_t flags);
san_peer_req *san_peer_pread(void *buf, uint32_t count, uint64_t off);
san_peer_req *san_peer_flush(void);
/* Wait for a request's answer (NULL: not sent, -ENOTCONN); a request not
 * answered within the timeout drops the link.  0 or -errno; frees @r.
 * Returns only when libnbd no longer uses the request's buffer. */
int san_peer_wait(san_peer_req *r);
/* The size of the peer's data export as the link sees it (0: no link). */
uint64_t san_peer_size(void);
/* Drop the link now (peer-down, timeout, error); it reconnects by itself. */
void san_peer_drop(const char *why);
/* Ask the link to take the decision again (meta changed on either side). */
void san_peer_redecide(void);
/* The peer's metadata through its `meta` export; 0 or -errno. */
int san_peer_meta_read(san_meta *m);
int san_peer_meta_write(const san_meta *m);

/* A local write's kind (plugin.c, plugin_write.c, plugin_detach.c). */
typedef enum { OP_WRITE, OP_ZERO } write_op;

/* ---- plugin_write.c: the write path */
/* Its region locks' state, made once at start (get_ready). */
void san_write_init(void);
/* A write or zero of the local file alone (@flags: nbdkit's FUA,
 * MAY_TRIM); 0 or -errno. */
int san_local_io(write_op op, const void *buf, uint32_t count, uint64_t off, uint32_t flags);
/* A local client's write or zero: to both replicas (protocol C), alone
 * once the peer is recorded outdated, held until then, or to the peer only
 * while the local disk is detached; 0 or -errno. */
int san_replicated_write(write_op op, const void *buf, uint32_t count, uint64_t off,
			 uint32_t flags);
/* A local client's flush, the same ways; 0 or -errno. */
int san_replicated_flush(void);

/* ---- plugin_detach.c: a failing local disk */
/* Where local I/O goes (san/disk_health.h); waits while the store is asked. */
san_route san_disk_route_wait(void);
/* A local read, write or flush (@what) failed with @err: the local replica
 * is detached if the peer is connected and in sync, else it fails. */
void san_local_failed(int err, const char *what);
/* herdd's "detached": the store has this replica outdated after its disk
 * failed; I/O that waited goes to the peer. */
void san_disk_recorded(void);
/* Detached: a write or read of the peer only (a write answered when the
 * peer answered it, with FUA stable there); 0 or -EIO. */
int san_peer_only_write(write_op op, const void *buf, uint32_t count, uint64_t off, uint32_t flags);
int san_peer_read(void *buf, uint32_t count, uint64_t off);

/* ---- plugin_sync.c */
/* The link is up with the peer's meta read: decide and act. */
void san_sync_connected(const san_meta *peer);
/* The link went down. */
void san_sync_link_lost(void);
/* In sync without a resync while the store records the peer outdated:
 * send `synced` (resynced 0) so that herd records it up to date. */
void san_sync_announce_synced(void);
/* Compare both replicas in a thread; the result comes as a "verify" event
 * that carries @id (herdd's, from the op). */
bool san_verify_start(int64_t id, GError **error);

/* ---- plugin_al.c: the activity log (san/activity_log.h) in a file */
/* Open (or make) al=PATH; false with @error. */
bool san_activity_open(GError **error);
/* After a crash with a writer open: the extents session @al_id's log says
 * were active; false with an error saying why the log cannot be trusted. */
bool san_activity_recover(uint64_t al_id, GArray *extents, uint64_t *extent, GError **error);
/* A first local open: a new session, its empty log stable; 0 or -errno. */
int san_activity_session(uint64_t *al_id);
/* Before a local write: 0 once its extents are active and persisted, 1 if
 * it goes alone without the log (san_writes_alone), or -errno. */
int san_activity_enter(uint64_t off, uint64_t len);
/* After a local write that entered with 0. */
void san_activity_leave(uint64_t off, uint64_t len);
/* A flush of both replicas begins (its ticket) / succeeded. */
uint64_t san_activity_flush_begin(void);
void san_activity_flush_done(uint64_t ticket);
/* The thread that drops quiet extents. */
void san_activity_start(void);
void san_activity_stop(void);

/* ---- plugin_control.c */
bool san_control_start(GError **error);
void san_control_stop(void);
/* Queue a JSON line (without newline) for every control client. */
void san_control_emit(char *line);
