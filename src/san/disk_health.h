/*
 * The local disk under an eSAN replica, as DRBD's on-io-error detach: a
 * pure core (no I/O), the plugin's write path asks it where I/O goes.
 *
 *   healthy    both replicas (protocol C), or alone as the link allows
 *   detaching  a local read, write or flush failed while the peer was
 *              connected and in sync: I/O waits (neither failed nor
 *              answered) until herdd has committed this replica outdated
 *              and discarded in the store
 *   detached   the peer serves every read and takes every write; a write
 *              is answered when the peer answered it, a flush or FUA when
 *              it is stable there: one durable copy, as when a replica
 *              writes alone with its peer recorded outdated
 *   failed     no replica to go on with (the local disk failed with the
 *              peer away or behind, or the peer was lost while detached):
 *              every I/O fails with EIO, nothing is answered as written
 *
 * A replica leaves detached or failed only when its server (nbdkit) starts
 * again; its metadata then says it is older than the peer's (a full sync).
 */
#pragma once

#include <stdbool.h>

typedef enum {
	SAN_DISK_HEALTHY = 0,
	SAN_DISK_DETACHING,
	SAN_DISK_DETACHED,
	SAN_DISK_FAILED,
} san_disk;

typedef enum {
	SAN_ROUTE_LOCAL,        /* the usual path (both, or alone) */
	SAN_ROUTE_WAIT,         /* hold until the state changes */
	SAN_ROUTE_PEER,         /* the peer only */
	SAN_ROUTE_FAIL,         /* EIO */
} san_route;

/* A local I/O error in state @s; @peer_in_sync: the link is connected and
 * the peer holds every answered write (not a sync source or target). */
san_disk san_disk_on_error(san_disk s, bool peer_in_sync);
/* The store recorded this replica outdated (herdd's "detached"). */
san_disk san_disk_on_recorded(san_disk s);
/* The link to the peer is lost. */
san_disk san_disk_on_peer_lost(san_disk s);
/* Where I/O goes in state @s. */
san_route san_disk_route(san_disk s);
const char *san_disk_name(san_disk s);
