/*
 * Sizes as operators write them: "20G", "512M", "1.5T", "4096" (bytes).
 * Units are binary (K = 1024) as in qemu-img, virsh and Proxmox; "GiB",
 * "GB" and "g" mean the same; no fractions of a byte.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* Parse @s into *@out bytes, at most @max; false with an INVALID error that
 * quotes @s and names @what ("disk size"…). */
bool herd_size_parse(const char *s, uint64_t max, const char *what, uint64_t *out, GError **error);
/* "20 GiB", "1.5 TiB", "512 MiB", "300 B": for people (g_free). */
char *herd_size_format(uint64_t bytes);
