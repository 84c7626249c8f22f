/*
 * What libvirt's reports mean to herd, as pure tables: a domain's state and
 * reason, a lifecycle event and its detail, an error code, a close reason,
 * each mapped to herd's VM state, a short human reason or a herd error code;
 * a migration's job statistics as herd's progress.
 * No connection, no main loop, no I/O: the libvirt driver gathers the facts
 * (what it was asked to do to the VM, libvirt's job on it, the text of /proc
 * files) and passes them in, so every mapping is tested without a hypervisor
 * (tests/unit/test_virt_libvirt_state.c).
 */
#pragma once

#include "common/error.h"
#include "virt/driver.h"

#include <libvirt/libvirt.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What herd itself is doing to a VM, which decides how some of libvirt's
 * reports read ("shut down on request" rather than "by guest"), and which
 * side of a migration libvirt's job on it is, where the driver asked. */
typedef struct lv_vm_context {
	herd_vm_state state;        /* herd's state of the VM before this report */
	bool shutdown_asked;        /* herd asked it to shut down and waits for it */
	bool forced;                /* herd destroys it because a shutdown timed out… */
	unsigned forced_timeout_s;  /* … after this many seconds */
	bool migrating;             /* herd migrates it away: it stays MIGRATING
				     * until it stops here, or the migration ends */
	int job_operation;          /* libvirt's job on it (virDomainJobOperation,
				     * see lv_job_operation), 0 if not asked */
} lv_vm_context;

/* A domain's virDomainState and its reason as herd's state, with the reason in @out. */
herd_vm_state lv_map_domain_state(const lv_vm_context *vm, int state, int reason, char *out,
				  size_t len);
/* A lifecycle event and its detail as herd's state; false if it changes no state. */
bool lv_map_event(const lv_vm_context *vm, int event, int detail, herd_vm_state *st, char *out,
		  size_t len);
/* The herd error code for libvirt's error code @vir_code (virErrorNumber). */
herd_error_code lv_error_code(int vir_code);
/* libvirt's error message as one line without trailing dots (newly allocated). */
char *lv_error_text(const char *message);
/* Why a connection closed, for its close callback's virConnectCloseReason. */
const char *lv_close_reason_text(int reason);
/* Is a domain in virDomainState @state running in some form (not off)? */
bool lv_domain_active(int state);
/* Did the guest of a domain in @state for @reason crash (and is kept for inspection)? */
bool lv_domain_crashed(int state, int reason);
/* Is herd's state @s the one in which a VM is down? */
bool lv_state_is_down(herd_vm_state s);
/* When a process started (wall clock ms), from the text of its /proc/PID/stat
 * and of /proc/uptime, @hz clock ticks a second, at @now_ms; 0 if unknown or
 * if the process is not QEMU. */
int64_t lv_qemu_start_ms(const char *stat, const char *uptime, long hz, int64_t now_ms);
/* The operation of libvirt's job on a domain (virDomainJobOperation), from
 * virDomainGetJobStats(): its "operation" field (@operation) if the call
 * succeeded (@ok), else from the error code @vir_code: libvirt 9.0 refuses
 * job statistics on a migration's destination (VIR_ERR_OPERATION_UNSUPPORTED,
 * "migration statistics are available only on the source host"), which
 * tells an incoming migration.  0 if unknown. */
int lv_job_operation(bool ok, int operation, int vir_code);
/* Is a domain in virDomainState @state for @reason one whose job should be
 * asked about (lv_job_operation): a QEMU that starts, or waits paused for a
 * migration, may be the destination of one. */
bool lv_domain_may_be_incoming(int state, int reason);
/* How far a migration is, from virDomainGetJobStats()'s @params (@n of them)
 * for a job of virDomainJobType @type; false (and @out untouched) if no job
 * runs.  Fields libvirt did not give stay as they were. */
bool lv_migrate_progress_of(int type, virTypedParameterPtr params, int n,
			    herd_migrate_progress *out);
