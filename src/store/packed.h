/*
 * A VM's data text as herdd keeps it in memory: deflated (zlib's raw
 * deflate) against a preset dictionary of what VM texts are made of (the
 * keys of a VM's data, libvirt domain XML as operators and herd write it).
 * A VM's text is mostly its domain XML, 1–3 kB; 10,000 VMs held plain were
 * most of a herdd's heap.  The packed form never leaves the process: SQLite,
 * the wire and the hash chain see the text itself, so the dictionary and
 * the settings may change from one release to the next.  Deflate is
 * deterministic: within a process the same text packs to the same bytes.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct store_packed store_packed;

/* @text (@len bytes, no NUL needed) packed; never NULL (aborts if zlib
 * fails, which it does only out of memory). */
store_packed *store_packed_new(const char *text, size_t len);
/* The text again, NUL-terminated (g_free it). */
char *store_packed_text(const store_packed *p);
/* Its length, without unpacking. */
size_t store_packed_text_len(const store_packed *p);
/* Do @a and @b hold the same text?  (Equal bytes: no unpacking.) */
bool store_packed_equal(const store_packed *a, const store_packed *b);
/* The bytes it holds (its header included). */
size_t store_packed_size(const store_packed *p);
void store_packed_free(store_packed *p);
