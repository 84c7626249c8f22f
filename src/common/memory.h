#pragma once

/*
 * malloc's settings for a long-running daemon, and giving freed memory back
 * to the system after a burst (glibc; elsewhere both do nothing).
 *
 * herd_malloc_init(), first thing in main(): allocations of 1 MiB or more
 * (the API's list texts, a store transfer's bytes) get pages of their own
 * and return them when freed.  glibc's default raises that threshold to
 * the largest block freed so far (up to 32 MiB) and keeps up to twice it
 * free on top of the heap: a herdd that once answered `herd vm list` with
 * 10,000 VMs (4.4 MB of text) then held some 16 MB it did not use.
 *
 * herd_malloc_release(): malloc_trim(0), the free pages inside the heaps
 * back to the system.  It walks every free block (about a millisecond for
 * 100 MB of heap): after a whole-store transfer or a large batch of
 * changes, not after each change.
 */
void herd_malloc_init(void);
void herd_malloc_release(void);
