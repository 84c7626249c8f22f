/*
 * One eSAN volume on this node: its replica file, its two listening
 * sockets, its nbdkit (started, adopted after a herd-san restart, started
 * again after it dies, with backoff), and the link to its plugin.  The
 * volume's files: docs/esan.md, "How it is built".
 */
#pragma once

#include "san/answer.h"
#include "san/daemon.h"
#include "san/request.h"

#include <glib.h>
#include <stdbool.h>

/* A new volume from a checked "volume" request: its replica (sparse) if
 * missing, its sockets, its saved message, its nbdkit.  NULL with @error
 * and nothing left behind. */
san_volume *san_volume_create(san_daemon *d, const san_request *req, GError **error);

/* A volume saved in the data directory, at herd-san's start: its running
 * nbdkit adopted, or a new one started (now, or once herdd's config is
 * known).  NULL with @error if the saved message is unreadable. */
san_volume *san_volume_load(san_daemon *d, const char *uuid, GError **error);

/* A "volume" request for a volume that exists: grow it if the size grew,
 * save the message and pass it on to the plugin, whose verdict fills @a.
 * False with @error (nothing changed) for a change herd-san cannot make. */
bool san_volume_update(san_volume *v, const san_request *req, san_answer *a, GError **error);

/* Grow the replica to @size and tell the plugin.  False with @error
 * (nothing changed) if @size is smaller than the replica. */
bool san_volume_resize(san_volume *v, uint64_t size, san_answer *a, GError **error);

/* Pass @req on to the plugin; its answer fills @a. */
void san_volume_relay(san_volume *v, const san_request *req, san_answer *a);

/* Ask the plugin for a "state" event (the answer is dropped); without a
 * plugin to ask, an "error" event says why there is none. */
void san_volume_status(san_volume *v);

/* herdd's config changed: start an nbdkit that waited for it, tell the plugin. */
void san_volume_config_changed(san_volume *v);
/* The node's certificates were renewed: its nbdkit starts again with them
 * (the peer's libnbd reconnects; this side's libnbd reads the files at
 * every connect) — once the local writer closes if one has it open. */
void san_volume_certs_changed(san_volume *v);

/* Stop the nbdkit, delete the volume's files, then fill @a, drop the volume
 * from the daemon and free it. */
/* herd disk attach: a replica detached after its local disk failed gets
 * its server (nbdkit) started again, this volume's only; it opens the
 * replica anew and gets a full sync from the peer.  Nothing to do for a
 * replica that is not detached; refused while a local writer (a guest)
 * has the volume open, which the restart would cut. */
bool san_volume_attach(san_volume *v, san_answer *a, GError **error);
void san_volume_remove(san_volume *v, san_answer *a);

/* herd-san exits: let go of the volume, leaving its nbdkit running. */
void san_volume_free(san_volume *v);
