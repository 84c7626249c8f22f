/*
 * The libvirt driver's pure tables (see libvirt_state.h): libvirt's domain
 * states, lifecycle events, error codes and close reasons as herd's states,
 * reasons and error codes, and the QEMU start time from /proc text.  Only
 * libvirt's headers are used here, for their constants; nothing here calls
 * libvirt, reads a clock or a file.
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

herd_vm_state lv_map_domain_state(const lv_vm_context *vm, int state, int reason, char *out,
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
			/* QEMU's CPUs wait until libvirt lets them run: a list
			 * taken then is a start, and the RESUMED that follows
			 * says "started", not "resumed". */
			g_strlcpy(out, "starting", len);
			return HERD_VM_STARTING;
		case VIR_DOMAIN_PAUSED_MIGRATION: g_strlcpy(out, "paused for migration", len); break;
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

bool lv_map_event(const lv_vm_context *vm, int event, int detail, herd_vm_state *st, char *out,
		  size_t len)
{
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		*st = HERD_VM_RUNNING;
		switch (detail) {
		case VIR_DOMAIN_EVENT_STARTED_MIGRATED: g_strlcpy(out, "migrated in", len); break;
		case VIR_DOMAIN_EVENT_STARTED_RESTORED: g_strlcpy(out, "restored", len); break;
		case VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT: g_strlcpy(out, "started from a snapshot", len); break;
		case VIR_DOMAIN_EVENT_STARTED_WAKEUP: g_strlcpy(out, "woken up", len); break;
		default: g_strlcpy(out, "started", len); break;
		}
		return true;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		*st = HERD_VM_PAUSED;
		switch (detail) {
		case VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED: g_strlcpy(out, "paused for migration", len); break;
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
		/* libvirt's QEMU driver starts QEMU with its CPUs stopped and
		 * sends RESUMED before STARTED when it lets them run. */
		if (vm->state == HERD_VM_STARTING || vm->state == HERD_VM_STOPPED ||
		    vm->state == HERD_VM_CRASHED) {
			g_strlcpy(out, "started", len);
			return true;
		}
		switch (detail) {
		case VIR_DOMAIN_EVENT_RESUMED_MIGRATED: g_strlcpy(out, "migrated in", len); break;
		case VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT: g_strlcpy(out, "resumed from a snapshot", len); break;
		default: g_strlcpy(out, "resumed", len); break;
		}
		return true;
	case VIR_DOMAIN_EVENT_STOPPED:
		*st = HERD_VM_STOPPED;
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
