/*
 * herdd's bus (cluster/bus.h): corosync's CPG (the group "herd", agreed
 * order), votequorum (is this partition quorate, votes) and cfg (link
 * state, config reload).  The connection is made, and remade after corosync
 * restarts, on a worker thread; every callback runs on the main thread,
 * which never waits for an answer of corosync's (the quorum details and
 * link state it serves are the worker's last answers, at most a second
 * old, and a reload is answered through a callback; see corosync.c for
 * why).
 *
 * Sending keeps order: a message that corosync cannot take now
 * (CS_ERR_TRY_AGAIN, flow control) waits in a bounded queue, and everything
 * sent after it waits behind it.
 */
#pragma once

#include "cluster/bus.h"
