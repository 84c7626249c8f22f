/*
 * The libvirt driver's pure tables (see libvirt_state.h): libvirt's domain
 * states, lifecycle events, error codes and close reasons as herd's states,
 * reasons and error codes, a migration's job statistics as herd's progress,
 * and the QEMU start time from /proc text.  Of libvirt only the constants
 * and the typed-parameter accessors are used here (functions of their
 * arguments); nothing here calls libvirtd, reads a clock or a file.
 */
#include "virt/libvirt_state.h"

#include <glib.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdlib.h>
#include <string.h>

herd_error_code lv_error_code(int vir_code)
{
	switch (vir_code) {
	case VIR_ERR_NO_DOMAIN:
		return HERD_ERR_NOT_FOUND;
	case VIR_ERR_XML_ERROR:
	case VIR_ERR_XML_DETAIL:
	case VIR_ERR_XML_INVALID_SCHEMA:
	case VIR_ERR_INVALID_ARG:
	case VIR_ERR_CONFIG_UNSUPPORTED:
	case VIR_ERR_NO_SUPPORT:
		return HERD_ERR_INVALID;
	case VIR_ERR_OPERATION_INVALID:
	case VIR_ERR_DOM_EXIST:
		return HERD_ERR_CONFLICT;
	case VIR_ERR_OPERATION_TIMEOUT:
	case VIR_ERR_AGENT_UNRESPONSIVE:
		return HERD_ERR_TIMEOUT;
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_INVALID_CONN:
	case VIR_ERR_RPC:
		return HERD_ERR_UNAVAILABLE;
	default:
		return HERD_ERR_INTERNAL;
	}
}

/* Without trailing dots or newlines: the sentence around it ends it. */
char *lv_error_text(const char *message)
{
	/* One line: XML errors come with a copy of the line and a "----^"
	 * marker under it, which mean nothing once joined. */
	g_auto(GStrv) lines = g_strsplit(message, "\n", -1);
	GString *joined = g_string_new(NULL);
	for (char **l = lines; *l; l++) {
		g_strstrip(*l);
		if (!**l || strspn(*l, "-^") == strlen(*l))
			continue;
		if (joined->len)
			g_string_append_c(joined, ' ');
		g_string_append(joined, *l);
	}
	char *msg = g_string_free(joined, FALSE);
	size_t n = strlen(msg);
	while (n > 0 && msg[n - 1] == '.')
		msg[--n] = '\0';
	return msg;
}

const char *lv_close_reason_text(int reason)
{
	switch (reason) {
	case VIR_CONNECT_CLOSE_REASON_EOF:
		return "libvirtd closed the connection";
	case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
		return "libvirtd did not answer keepalive probes";
	case VIR_CONNECT_CLOSE_REASON_CLIENT:
		return "closed by herd";
	default:
		return "connection error";
	}
}

bool lv_domain_active(int state)
{
	return state != VIR_DOMAIN_SHUTOFF && state != VIR_DOMAIN_NOSTATE;
}

bool lv_domain_crashed(int state, int reason)
{
	return state == VIR_DOMAIN_CRASHED ||
	       (state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_CRASHED);
}

bool lv_state_is_down(herd_vm_state s)
{
	return s == HERD_VM_STOPPED;
}

static void stopped_reason(const lv_vm_context *vm, int shutoff_reason, char *out, size_t len)
{
	switch (shutoff_reason) {
	case VIR_DOMAIN_SHUTOFF_SHUTDOWN:
		g_strlcpy(out, vm->shutdown_asked ? "shut down on request" : "shut down by guest", len);
		break;
	case VIR_DOMAIN_SHUTOFF_DESTROYED:
		if (vm->forced)
			g_snprintf(out, len, "forced off after %u s shutdown timeout",
				   vm->forced_timeout_s);
		else
			g_strlcpy(out, "destroyed", len);
		break;
	case VIR_DOMAIN_SHUTOFF_CRASHED:
		g_strlcpy(out, "crashed", len);
		break;
	case VIR_DOMAIN_SHUTOFF_MIGRATED:
		g_strlcpy(out, "migrated away", len);
		break;
	case VIR_DOMAIN_SHUTOFF_SAVED:
		g_strlcpy(out, "saved", len);
		break;
	case VIR_DOMAIN_SHUTOFF_FAILED:
		g_strlcpy(out, "failed to start", len);
		break;
	case VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT:
		g_strlcpy(out, "stopped by a snapshot revert", len);
		break;
	case VIR_DOMAIN_SHUTOFF_DAEMON:
		g_strlcpy(out, "stopped by libvirtd", len);
		break;
	default:
		g_strlcpy(out, "not running", len);
		break;
	}
}

/* A domain's state as herd's, without regard to a migration of herd's. */
static herd_vm_state domain_state(const lv_vm_context *vm, int state, int reason, char *out,
				  size_t len)
{
	switch (state) {
	case VIR_DOMAIN_RUNNING:
		switch (reason) {
		case VIR_DOMAIN_RUNNING_BOOTED: g_strlcpy(out, "started", len); break;
		case VIR_DOMAIN_RUNNING_MIGRATED: g_strlcpy(out, "migrated in", len); break;
		case VIR_DOMAIN_RUNNING_RESTORED: g_strlcpy(out, "restored", len); break;
		case VIR_DOMAIN_RUNNING_FROM_SNAPSHOT: g_strlcpy(out, "started from a snapshot", len); break;
		case VIR_DOMAIN_RUNNING_UNPAUSED: g_strlcpy(out, "resumed", len); break;
		case VIR_DOMAIN_RUNNING_MIGRATION_CANCELED: g_strlcpy(out, "migration cancelled", len); break;
		case VIR_DOMAIN_RUNNING_WAKEUP: g_strlcpy(out, "woken up", len); break;
		case VIR_DOMAIN_RUNNING_CRASHED: g_strlcpy(out, "running after a crash", len); break;
		default: g_strlcpy(out, "running", len); break;
		}
		return HERD_VM_RUNNING;
	case VIR_DOMAIN_BLOCKED:
	case VIR_DOMAIN_NOSTATE:
		g_strlcpy(out, "running", len);
		return HERD_VM_RUNNING;
	case VIR_DOMAIN_PAUSED:
		switch (reason) {
		case VIR_DOMAIN_PAUSED_CRASHED:
			g_strlcpy(out, "guest crashed (kept paused)", len);
			return HERD_VM_CRASHED;
		case VIR_DOMAIN_PAUSED_STARTING_UP:
			/* libvirt starts QEMU this way for an incoming
			 * migration too (then it is paused "for migration"
			 * once QEMU listens): no copy that runs. */
			if (vm->job_operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN) {
				g_strlcpy(out, "migration arriving", len);
				return HERD_VM_INCOMING;
			}
			/* QEMU's CPUs wait until libvirt lets them run: a list
			 * taken then is a start, and the RESUMED that follows
			 * says "started", not "resumed". */
			g_strlcpy(out, "starting", len);
			return HERD_VM_STARTING;
		case VIR_DOMAIN_PAUSED_MIGRATION:
			/* Either end of a migration: the destination waits
			 * for the guest's state, the source is paused for
			 * the switch-over (or for all of a migration that is
			 * not live).  libvirt's job tells which; without it,
			 * what herd knew of the VM. */
			if (vm->job_operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN ||
			    (vm->job_operation == 0 && vm->state == HERD_VM_INCOMING)) {
				g_strlcpy(out, "migration arriving", len);
				return HERD_VM_INCOMING;
			}
			g_strlcpy(out, "paused for migration", len);
			if (vm->job_operation == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT ||
			    (vm->job_operation == 0 && vm->state == HERD_VM_MIGRATING))
				return HERD_VM_MIGRATING;
			return HERD_VM_PAUSED;
		case VIR_DOMAIN_PAUSED_SAVE: g_strlcpy(out, "paused for saving", len); break;
		case VIR_DOMAIN_PAUSED_DUMP: g_strlcpy(out, "paused for a core dump", len); break;
		case VIR_DOMAIN_PAUSED_IOERROR: g_strlcpy(out, "paused: disk I/O error", len); break;
		case VIR_DOMAIN_PAUSED_WATCHDOG: g_strlcpy(out, "paused by the watchdog", len); break;
		case VIR_DOMAIN_PAUSED_SHUTTING_DOWN: g_strlcpy(out, "paused while shutting down", len); break;
		case VIR_DOMAIN_PAUSED_SNAPSHOT: g_strlcpy(out, "paused for a snapshot", len); break;
		case VIR_DOMAIN_PAUSED_POSTCOPY: g_strlcpy(out, "paused in post-copy migration", len); break;
		case VIR_DOMAIN_PAUSED_POSTCOPY_FAILED: g_strlcpy(out, "paused: post-copy migration failed", len); break;
		default: g_strlcpy(out, "paused", len); break;
		}
		return HERD_VM_PAUSED;
	case VIR_DOMAIN_PMSUSPENDED:
		g_strlcpy(out, "suspended by the guest", len);
		return HERD_VM_PAUSED;
	case VIR_DOMAIN_SHUTDOWN:
		g_strlcpy(out, "shutting down", len);
		return HERD_VM_STOPPING;
	case VIR_DOMAIN_CRASHED:
		g_strlcpy(out, reason == VIR_DOMAIN_CRASHED_PANICKED ? "guest panicked" : "crashed", len);
		return HERD_VM_CRASHED;
	case VIR_DOMAIN_SHUTOFF:
	default:
		stopped_reason(vm, reason, out, len);
		return HERD_VM_STOPPED;
	}
}

/* While herd migrates a VM away it is MIGRATING, whatever libvirt says of
 * it (the switch-over pauses it, a failed one resumes it), until it is off
 * here or its guest crashed. */
static bool migration_overrides(const lv_vm_context *vm, herd_vm_state st)
{
	return vm->migrating && st != HERD_VM_STOPPED && st != HERD_VM_CRASHED;
}

herd_vm_state lv_map_domain_state(const lv_vm_context *vm, int state, int reason, char *out,
				  size_t len)
{
	herd_vm_state st = domain_state(vm, state, reason, out, len);
	if (!migration_overrides(vm, st))
		return st;
	if (state != VIR_DOMAIN_PAUSED || reason != VIR_DOMAIN_PAUSED_MIGRATION)
		g_strlcpy(out, "migrating", len);
	return HERD_VM_MIGRATING;
}

/* Why a migration arriving here ended without the guest (the domain
 * stopped while INCOMING, for libvirt's @detail). */
static void incoming_stopped_reason(int detail, char *out, size_t len)
{
	switch (detail) {
	case VIR_DOMAIN_EVENT_STOPPED_FAILED:
		/* The source gave up (failed, cancelled) and said so. */
		g_strlcpy(out, "incoming migration failed", len);
		break;
	case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
		/* libvirtd's auto-destroy when the source's connection
		 * closed, or someone's destroy. */
		g_strlcpy(out, "incoming migration destroyed", len);
		break;
	default:
		g_strlcpy(out, "incoming migration ended", len);
		break;
	}
}

/* A lifecycle event as herd's state, without regard to a migration of herd's. */
static bool event_state(const lv_vm_context *vm, int event, int detail, herd_vm_state *st,
			char *out, size_t len)
{
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		if (detail == VIR_DOMAIN_EVENT_STARTED_MIGRATED) {
			/* The destination's QEMU is ready for the guest's
			 * state, its CPUs stopped: RESUMED follows once the
			 * guest is here, STOPPED if the migration fails. */
			*st = HERD_VM_INCOMING;
			g_strlcpy(out, "migration arriving", len);
			return true;
		}
		*st = HERD_VM_RUNNING;
		switch (detail) {
		case VIR_DOMAIN_EVENT_STARTED_RESTORED: g_strlcpy(out, "restored", len); break;
		case VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT: g_strlcpy(out, "started from a snapshot", len); break;
		case VIR_DOMAIN_EVENT_STARTED_WAKEUP: g_strlcpy(out, "woken up", len); break;
		default: g_strlcpy(out, "started", len); break;
		}
		return true;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		if (detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED) {
			/* A source's switch-over (someone else's migration,
			 * if not herd's): it still runs here until STOPPED. */
			*st = vm->state == HERD_VM_INCOMING ? HERD_VM_INCOMING : HERD_VM_MIGRATING;
			g_strlcpy(out, *st == HERD_VM_INCOMING ? "migration arriving"
							       : "paused for migration", len);
			return true;
		}
		*st = HERD_VM_PAUSED;
		switch (detail) {
		case VIR_DOMAIN_EVENT_SUSPENDED_IOERROR: g_strlcpy(out, "paused: disk I/O error", len); break;
		case VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG: g_strlcpy(out, "paused by the watchdog", len); break;
		case VIR_DOMAIN_EVENT_SUSPENDED_RESTORED: g_strlcpy(out, "restored paused", len); break;
		case VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT: g_strlcpy(out, "paused from a snapshot", len); break;
		case VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR: g_strlcpy(out, "paused after a libvirt error", len); break;
		case VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY: g_strlcpy(out, "paused in post-copy migration", len); break;
		case VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED: g_strlcpy(out, "paused: post-copy migration failed", len); break;
		default: g_strlcpy(out, "paused", len); break;
		}
		return true;
	case VIR_DOMAIN_EVENT_RESUMED:
		*st = HERD_VM_RUNNING;
		if (detail == VIR_DOMAIN_EVENT_RESUMED_MIGRATED) {
			/* The destination lets the guest run: it is here.  Or
			 * a source resumes after a failed switch-over (libvirt
			 * says MIGRATED for both). */
			g_strlcpy(out, vm->state == HERD_VM_MIGRATING ? "migration cancelled"
								      : "migrated in", len);
			return true;
		}
		/* libvirt's QEMU driver starts QEMU with its CPUs stopped and
		 * sends RESUMED before STARTED when it lets them run. */
		if (vm->state == HERD_VM_STARTING || vm->state == HERD_VM_STOPPED ||
		    vm->state == HERD_VM_CRASHED) {
			g_strlcpy(out, "started", len);
			return true;
		}
		switch (detail) {
		case VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT: g_strlcpy(out, "resumed from a snapshot", len); break;
		default: g_strlcpy(out, "resumed", len); break;
		}
		return true;
	case VIR_DOMAIN_EVENT_STOPPED:
		*st = HERD_VM_STOPPED;
		if (vm->state == HERD_VM_INCOMING) {
			incoming_stopped_reason(detail, out, len);
			return true;
		}
		switch (detail) {
		case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
			stopped_reason(vm, VIR_DOMAIN_SHUTOFF_SHUTDOWN, out, len);
			break;
		case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
			stopped_reason(vm, VIR_DOMAIN_SHUTOFF_DESTROYED, out, len);
			break;
		case VIR_DOMAIN_EVENT_STOPPED_CRASHED: g_strlcpy(out, "crashed", len); break;
		case VIR_DOMAIN_EVENT_STOPPED_MIGRATED: g_strlcpy(out, "migrated away", len); break;
		case VIR_DOMAIN_EVENT_STOPPED_SAVED: g_strlcpy(out, "saved", len); break;
		/* QEMU died under libvirt (killed, or it crashed itself). */
		case VIR_DOMAIN_EVENT_STOPPED_FAILED: g_strlcpy(out, "failed: hypervisor process ended", len); break;
		case VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT: g_strlcpy(out, "stopped by a snapshot revert", len); break;
		default: g_strlcpy(out, "stopped", len); break;
		}
		return true;
	case VIR_DOMAIN_EVENT_PMSUSPENDED:
		*st = HERD_VM_PAUSED;
		g_strlcpy(out, "suspended by the guest", len);
		return true;
	case VIR_DOMAIN_EVENT_CRASHED:
		if (detail == VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED) {
			/* The guest's crash kernel runs: it is running. */
			*st = HERD_VM_RUNNING;
			g_strlcpy(out, "crashed, running its crash kernel", len);
		} else {
			*st = HERD_VM_CRASHED;
			g_strlcpy(out, "guest panicked", len);
		}
		return true;
	default:
		/* DEFINED, UNDEFINED, SHUTDOWN (the guest finished, STOPPED
		 * follows): no change of state. */
		return false;
	}
}

bool lv_map_event(const lv_vm_context *vm, int event, int detail, herd_vm_state *st, char *out,
		  size_t len)
{
	if (!event_state(vm, event, detail, st, out, len))
		return false;
	if (migration_overrides(vm, *st)) {
		*st = HERD_VM_MIGRATING;
		if (!(event == VIR_DOMAIN_EVENT_SUSPENDED && detail == VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED))
			g_strlcpy(out, "migrating", len);
	}
	return true;
}

int lv_job_operation(bool ok, int operation, int vir_code)
{
	if (ok)
		return operation > 0 ? operation : 0;
	return vir_code == VIR_ERR_OPERATION_UNSUPPORTED ? VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN : 0;
}

bool lv_domain_may_be_incoming(int state, int reason)
{
	return state == VIR_DOMAIN_PAUSED &&
	       (reason == VIR_DOMAIN_PAUSED_MIGRATION || reason == VIR_DOMAIN_PAUSED_STARTING_UP);
}

bool lv_migrate_progress_of(int type, virTypedParameterPtr params, int n,
			    herd_migrate_progress *out)
{
	if (type == VIR_DOMAIN_JOB_NONE)
		return false;
	unsigned long long v;
	int throttle;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &v) == 1)
		out->elapsed_ms = v;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_TOTAL, &v) == 1)
		out->memory_total = v;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_PROCESSED, &v) == 1)
		out->memory_processed = v;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_REMAINING, &v) == 1)
		out->memory_remaining = v;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &v) == 1)
		out->dirty_rate = v;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, &v) == 1)
		out->page_size = v;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_BPS, &v) == 1)
		out->bandwidth = v;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_ITERATION, &v) == 1)
		out->iteration = v;
	if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
		out->expected_downtime_ms = v;
	if (virTypedParamsGetInt(params, n, VIR_DOMAIN_JOB_AUTO_CONVERGE_THROTTLE, &throttle) == 1 &&
	    throttle >= 0)
		out->autoconverge_throttle = (unsigned)throttle;
	return true;
}

int64_t lv_qemu_start_ms(const char *stat, const char *uptime, long hz, int64_t now_ms)
{
	/* "pid (comm) S ppid …": fields after the last ')' start at field 3;
	 * starttime is field 22.  A recycled pid would not be QEMU. */
	const char *open = strchr(stat, '('), *close = strrchr(stat, ')');
	if (!open || !close || close < open || strncmp(open + 1, "qemu", 4) != 0 ||
	    close[1] != ' ')
		return 0;
	const char *p = close + 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return 0;
	unsigned long long ticks = strtoull(p, NULL, 10);
	/* Against the uptime (10 ms resolution), not /proc/stat's btime
	 * (whole seconds). */
	if (hz <= 0)
		return 0;
	double uptime_s = g_ascii_strtod(uptime, NULL);
	double age_s = uptime_s - (double)ticks / (double)hz;
	if (age_s < 0)
		return 0;
	return now_ms - (int64_t)(age_s * 1000);
}
