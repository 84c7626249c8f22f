/*
 * corosync.conf and authkey from the replicated configuration.
 *
 * Every node writes its own corosync.conf from the store whenever nodes or
 * corosync settings change (so the files never disagree); once every member
 * has written it, one of them asks corosync to reload it, on every node at
 * once.  The authkey travels in the store as a secret of the cluster object.
 */
#pragma once

#include "cluster/service.h"
#include "store/state.h"

#include <glib.h>
#include <stdbool.h>

/* The corosync.conf text for @st, or NULL with an error if it has no cluster. */
char *herd_corosync_conf_render(store_state *st, GError **error);

/*
 * Write @dir/corosync.conf and @dir/authkey from @st if they differ from
 * what is there; *@changed tells whether corosync.conf changed.
 */
bool herd_corosync_conf_write(store_state *st, const char *dir, bool *changed, GError **error);

/* Remove this node's corosync.conf and authkey (after leaving the cluster). */
void herd_corosync_conf_remove(const char *dir);

/* Do @changes (of store_change*; NULL: everything) touch what corosync.conf
 * is made of (the nodes, the cluster object)? */
bool herd_corosync_conf_relevant(GPtrArray *changes);

/* Keep @dir's files in step with @cluster, reloading corosync on change. */
void herd_corosync_conf_follow(herd_cluster *cluster, const char *dir);
