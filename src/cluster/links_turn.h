/*
 * Which peers a node asks corosync about in one round of link questions
 * (the pure core of corosync.c's link queries: no I/O).
 *
 * Each question (corosync_cfg_node_status_get()) takes knet's global lock
 * for writing on corosync's main thread and aborts a path MTU discovery
 * under way there; every node asking for every peer every second is N*N
 * questions a second, a thousand at 32 nodes, and on the 2-core test
 * machine a power cut at 32 nodes then broke corosync's ring more often
 * than not (bench/README.md, 2026-12-07, third).  So a round asks about
 * LINKS_TURN_PEERS peers at most, in turn by node id: every peer every
 * second up to 5 nodes, every 8 s at 32.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define LINKS_TURN_PEERS 4

/*
 * The peers of this round: from @ids (@n of them, each once, in any order)
 * up to @max in ascending order from the lowest id not below *@next, going
 * round to the lowest after the highest; written to @out, the count
 * returned.  *@next becomes the id after the last one taken, where the
 * next round starts.
 */
size_t links_turn(const uint32_t *ids, size_t n, uint32_t *next, size_t max, uint32_t *out);
