/*
 * References between stored objects, kept sound by apply for every caller:
 * a VM's hardware names disks, ISOs and virtual switches that exist, a disk
 * is attached to one VM at most, a disk or ISO lies on a storage that
 * exists and fits it, a node id or link address is one node's, and
 * nothing is deleted while something uses it.
 * Deterministic (reads only the state), like the rest of apply.
 */
#pragma once

#include "store/state.h"

#include <glib.h>
#include <stdbool.h>

/* May @o (a new version of an object, not yet in @st) be stored?  False
 * with an error naming the missing or taken object. */
bool store_refs_check(store_state *st, const store_object *o, GError **error);
/* May @o be deleted?  False with a CONFLICT error naming what uses it. */
bool store_refs_check_delete(store_state *st, const store_object *o, GError **error);
/* The VM that uses disk or ISO @o, or NULL: in its hardware, or a VM
 * defined from XML whose XML names the file's path. */
store_object *store_refs_user(store_state *st, const store_object *o);
/* The VM other than the one with UUID @self (NULL: any) whose hardware has
 * disk @disk (a UUID), or NULL. */
store_object *store_refs_disk_user(store_state *st, const char *disk, const char *self);
/* The VM other than @self that has a NIC with MAC @mac (in its hardware,
 * or named in its XML), or NULL. */
store_object *store_refs_mac_user(store_state *st, const char *mac, const char *self);
