/*
 * iSCSI as herd sees it through libiscsi's tools (libiscsi-bin): what a
 * node asks to tell whether it reaches an iSCSI storage, and the URLs QEMU's
 * own initiator and qemu-img take.  Text in, text out: no I/O here (the
 * storage checker runs the tools).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* One LUN of a target, as iscsi-ls lists it. */
typedef struct herd_iscsi_lun {
	unsigned lun;
	bool disk;           /* a block device (DIRECT_ACCESS), not the controller */
	char size[16];       /* the size as iscsi-ls rounds it ("63M"), or "" */
} herd_iscsi_lun;

/* argv for listing the targets and LUNs at @portal (NULL-terminated; g_strfreev). */
char **herd_iscsi_ls_argv(const char *portal);
/*
 * Read iscsi-ls -s output: true if it lists @target; then *@luns (if not
 * NULL) gets its LUNs (GArray of herd_iscsi_lun; free it).
 */
bool herd_iscsi_ls_parse(const char *output, const char *target, GArray **luns);
/* What a failed iscsi-ls said, as one short line for people ("No route to
 * host"), from its stderr; never NULL (g_free). */
char *herd_iscsi_ls_error(const char *stderr_text, int exit_status);

/* The URL of LUN @lun of @target at @portal, as qemu-img and QEMU take it
 * (iscsi://portal/target/lun). */
char *herd_iscsi_url(const char *portal, const char *target, unsigned lun);
