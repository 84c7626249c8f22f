/*
 * The rules every change obeys, whoever submits it (API, CLI, the HA
 * engine, the simulator): there is no way around them.
 *
 * Invariant 1 while a VM migrates live: its destination stays what it is
 * until the migration has ended (or is given up).
 *
 * Invariant 2 for what a lost node leaves uncertain.  A node that corosync
 * lost, and that is neither fenced nor confirmed down, may still run VMs
 * and may come back: until it is fenced or confirmed down, nothing about
 * that node or the VMs assigned (or moving) to it changes, and no node joins
 * or leaves the cluster (that changes the quorum).  What resolves the loss
 * (fencing records, confirm-down, fence devices, cluster settings),
 * stopping VMs, and changes that concern other nodes and VMs go on.
 *
 * Invariant 3: a cluster that has an administrator keeps one.  A change
 * that would leave no user with the admin role (its own or a group's) --
 * removing the last admin, taking the role from it, taking it out of the
 * admin group or removing that group -- is refused where it is applied,
 * so two such changes made at once on two nodes cannot both pass.  (Root
 * on a node's local socket may still do everything: that is how a lost
 * admin password is reset.)
 *
 * replica_submit() asks this of every change.
 */
#pragma once

#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

/*
 * May @cmd be submitted while the nodes named in @lost (a set of names;
 * NULL or empty: none) are lost and not fenced?  False with an UNAVAILABLE
 * error naming the node and what waits for it, or a CONFLICT error naming
 * the VM whose live migration it would redirect.
 */
bool store_guard_check(store_state *st, json_t *cmd, GHashTable *lost, GError **error);

/*
 * The part of those rules that depends only on the state, checked again
 * where the change is applied, in the cluster's agreed order: a change
 * submitted on a node whose store was behind (a coordinator's move and an
 * operator's migrate of the same VM at the same moment) is refused there
 * on every node alike, never applied over the move that won.  False with a
 * CONFLICT error, as above.
 */
bool store_guard_apply(store_state *st, json_t *op, GError **error);

/*
 * Invariant 3, where a change of user or group @old (any other kind:
 * true) is applied: @data is what @old becomes (NULL: it is deleted).
 * False with a CONFLICT error, a sentence naming the last administrator,
 * if the cluster had an administrator and would have none.
 */
bool store_guard_admins(store_state *st, const store_object *old, json_t *data, GError **error);
