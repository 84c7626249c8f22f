/*
 * herdd gives freed memory back to the system once a burst of work is
 * over (issue 14: ≤ 40 MB RSS a node with 10,000 VMs).
 *
 * The replica trims after each MiB of commands it applies (store/replica.c),
 * but what a burst freed after its last such trim stays resident: on the
 * node whose API took 10,000 defines, the define thread's arena kept ~4 MB
 * of free pages that libvirt's schema validation touches on every define;
 * on every node the main heap kept 1–3 MB; and SQLite's page cache stays
 * full (up to its 1 MiB).
 *
 * Every CHECK_S seconds this looks at herdd's CPU time (getrusage).  A
 * period in which herdd worked more than BUSY_PERMILLE of a core marks a
 * burst; the first period after it that is quieter releases SQLite's
 * unused pages (store_db_release_memory()) and trims the heaps
 * (herd_malloc_release(): about a millisecond).  At rest (herdd takes
 * ~0.2 % of a core) and under steady light work (a UI listing the VMs
 * every few seconds) it never trims; under steady heavy work only the
 * replica's trims run, and this one once the work stops.  Never in a
 * request's path.
 */
#pragma once

#include "cluster/service.h"

typedef struct herdd_memory_trim herdd_memory_trim;

herdd_memory_trim *herdd_memory_trim_new(herd_cluster *cluster);
void herdd_memory_trim_free(herdd_memory_trim *t);
