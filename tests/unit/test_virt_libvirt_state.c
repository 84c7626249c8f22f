/* The libvirt driver's pure tables (src/virt/libvirt_state.c), without a
 * connection: every libvirt domain state and reason, lifecycle event and
 * detail, error code and close reason the driver maps, each with herd's
 * state and reason text or error code, also during a migration (herd's
 * own, someone else's, one arriving); a migration's job statistics as
 * herd's progress; and the QEMU start time from /proc text.  One row a case: a wrong entry in the driver's tables fails the row
 * that names it. */
#include "virt/libvirt_state.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

/* The context of a VM herd is doing nothing to, in state @s. */
#define IDLE(s) { .state = (s) }
#define ASKED { .state = HERD_VM_STOPPING, .shutdown_asked = true }
#define FORCED { .state = HERD_VM_STOPPING, .shutdown_asked = true, .forced = true, \
		 .forced_timeout_s = 30 }
/* herd migrates it away. */
#define MIGRATING { .state = HERD_VM_MIGRATING, .migrating = true }
/* Listed with libvirt's job on it, in herd's state @s. */
#define JOB(s, op) { .state = (s), .job_operation = VIR_DOMAIN_JOB_OPERATION_##op }

/* ---- domain states (virDomainGetState, lists) ---- */

typedef struct {
	lv_vm_context vm;
	int state, reason;
	herd_vm_state want;
	const char *reason_text;
} state_case;

static const state_case state_cases[] = {
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_UNKNOWN, HERD_VM_RUNNING, "running" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_BOOTED, HERD_VM_RUNNING, "started" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATED, HERD_VM_RUNNING, "migrated in" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_RESTORED, HERD_VM_RUNNING, "restored" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_FROM_SNAPSHOT, HERD_VM_RUNNING, "started from a snapshot" },
	{ IDLE(HERD_VM_PAUSED), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_UNPAUSED, HERD_VM_RUNNING, "resumed" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATION_CANCELED, HERD_VM_RUNNING, "migration cancelled" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_SAVE_CANCELED, HERD_VM_RUNNING, "running" },
	{ IDLE(HERD_VM_PAUSED), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_WAKEUP, HERD_VM_RUNNING, "woken up" },
	{ IDLE(HERD_VM_CRASHED), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_CRASHED, HERD_VM_RUNNING, "running after a crash" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_POSTCOPY, HERD_VM_RUNNING, "running" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_BLOCKED, VIR_DOMAIN_BLOCKED_UNKNOWN, HERD_VM_RUNNING, "running" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_NOSTATE, VIR_DOMAIN_NOSTATE_UNKNOWN, HERD_VM_RUNNING, "running" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_UNKNOWN, HERD_VM_PAUSED, "paused" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER, HERD_VM_PAUSED, "paused" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_PAUSED, "paused for migration" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_SAVE, HERD_VM_PAUSED, "paused for saving" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_DUMP, HERD_VM_PAUSED, "paused for a core dump" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_IOERROR, HERD_VM_PAUSED, "paused: disk I/O error" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_WATCHDOG, HERD_VM_PAUSED, "paused by the watchdog" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_FROM_SNAPSHOT, HERD_VM_PAUSED, "paused" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_SHUTTING_DOWN, HERD_VM_PAUSED, "paused while shutting down" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_SNAPSHOT, HERD_VM_PAUSED, "paused for a snapshot" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_CRASHED, HERD_VM_CRASHED, "guest crashed (kept paused)" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_STARTING_UP, HERD_VM_STARTING, "starting" },
	/* Either end of a migration, told apart by libvirt's job, else by
	 * what herd knew of the VM; one not known stays a copy that runs. */
	{ JOB(HERD_VM_STOPPED, START), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_STARTING_UP, HERD_VM_STARTING, "starting" },
	{ JOB(HERD_VM_STOPPED, MIGRATION_IN), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_STARTING_UP, HERD_VM_INCOMING, "migration arriving" },
	{ JOB(HERD_VM_STOPPED, MIGRATION_IN), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_INCOMING, "migration arriving" },
	{ JOB(HERD_VM_RUNNING, MIGRATION_IN), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_INCOMING, "migration arriving" },
	{ JOB(HERD_VM_STOPPED, MIGRATION_OUT), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_MIGRATING, "paused for migration" },
	{ JOB(HERD_VM_INCOMING, MIGRATION_OUT), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_MIGRATING, "paused for migration" },
	{ IDLE(HERD_VM_INCOMING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_INCOMING, "migration arriving" },
	{ IDLE(HERD_VM_MIGRATING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_MIGRATING, "paused for migration" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_PAUSED, "paused for migration" },
	{ IDLE(HERD_VM_INCOMING), VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATED, HERD_VM_RUNNING, "migrated in" },
	/* herd's own migration: MIGRATING until it is off here or crashed. */
	{ MIGRATING, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_BOOTED, HERD_VM_MIGRATING, "migrating" },
	{ MIGRATING, VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATION_CANCELED, HERD_VM_MIGRATING, "migrating" },
	{ MIGRATING, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION, HERD_VM_MIGRATING, "paused for migration" },
	{ MIGRATING, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER, HERD_VM_MIGRATING, "migrating" },
	{ MIGRATING, VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_CRASHED, HERD_VM_CRASHED, "guest crashed (kept paused)" },
	{ MIGRATING, VIR_DOMAIN_CRASHED, VIR_DOMAIN_CRASHED_PANICKED, HERD_VM_CRASHED, "guest panicked" },
	{ MIGRATING, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_MIGRATED, HERD_VM_STOPPED, "migrated away" },
	{ MIGRATING, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_DESTROYED, HERD_VM_STOPPED, "destroyed" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_POSTCOPY, HERD_VM_PAUSED, "paused in post-copy migration" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_POSTCOPY_FAILED, HERD_VM_PAUSED, "paused: post-copy migration failed" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_PMSUSPENDED, VIR_DOMAIN_PMSUSPENDED_UNKNOWN, HERD_VM_PAUSED, "suspended by the guest" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTDOWN, VIR_DOMAIN_SHUTDOWN_USER, HERD_VM_STOPPING, "shutting down" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_CRASHED, VIR_DOMAIN_CRASHED_PANICKED, HERD_VM_CRASHED, "guest panicked" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_CRASHED, VIR_DOMAIN_CRASHED_UNKNOWN, HERD_VM_CRASHED, "crashed" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_UNKNOWN, HERD_VM_STOPPED, "not running" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_SHUTDOWN, HERD_VM_STOPPED, "shut down by guest" },
	{ ASKED, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_SHUTDOWN, HERD_VM_STOPPED, "shut down on request" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_DESTROYED, HERD_VM_STOPPED, "destroyed" },
	{ ASKED, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_DESTROYED, HERD_VM_STOPPED, "destroyed" },
	{ FORCED, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_DESTROYED, HERD_VM_STOPPED, "forced off after 30 s shutdown timeout" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_CRASHED, HERD_VM_STOPPED, "crashed" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_MIGRATED, HERD_VM_STOPPED, "migrated away" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_SAVED, HERD_VM_STOPPED, "saved" },
	{ IDLE(HERD_VM_STARTING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_FAILED, HERD_VM_STOPPED, "failed to start" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT, HERD_VM_STOPPED, "stopped by a snapshot revert" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_DAEMON, HERD_VM_STOPPED, "stopped by libvirtd" },
	/* A state libvirt may add later reads as off, with no reason known. */
	{ IDLE(HERD_VM_RUNNING), 99, 0, HERD_VM_STOPPED, "not running" },
};

static void test_domain_states(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(state_cases); i++) {
		const state_case *c = &state_cases[i];
		char reason[64] = "";
		herd_vm_state got = lv_map_domain_state(&c->vm, c->state, c->reason, reason,
							sizeof(reason));
		if (got != c->want || strcmp(reason, c->reason_text) != 0)
			g_error("row %zu: state %d reason %d: got %s \"%s\", want %s \"%s\"", i,
				c->state, c->reason, herd_vm_state_name(got), reason,
				herd_vm_state_name(c->want), c->reason_text);
	}
}

/* ---- lifecycle events ---- */

typedef struct {
	lv_vm_context vm;
	int event, detail;
	bool changes;           /* false: no change of state, @want unused */
	herd_vm_state want;
	const char *reason_text;
} event_case;

static const event_case event_cases[] = {
	{ IDLE(HERD_VM_STARTING), VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED, true, HERD_VM_RUNNING, "started" },
	/* A migration arriving: QEMU waits, paused, for the guest's state. */
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_MIGRATED, true, HERD_VM_INCOMING, "migration arriving" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_RESTORED, true, HERD_VM_RUNNING, "restored" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT, true, HERD_VM_RUNNING, "started from a snapshot" },
	{ IDLE(HERD_VM_PAUSED), VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_WAKEUP, true, HERD_VM_RUNNING, "woken up" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_PAUSED, true, HERD_VM_PAUSED, "paused" },
	/* Someone else's migration away at its switch-over: still runs here. */
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED, true, HERD_VM_MIGRATING, "paused for migration" },
	{ IDLE(HERD_VM_INCOMING), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED, true, HERD_VM_INCOMING, "migration arriving" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_IOERROR, true, HERD_VM_PAUSED, "paused: disk I/O error" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG, true, HERD_VM_PAUSED, "paused by the watchdog" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_RESTORED, true, HERD_VM_PAUSED, "restored paused" },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT, true, HERD_VM_PAUSED, "paused from a snapshot" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR, true, HERD_VM_PAUSED, "paused after a libvirt error" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY, true, HERD_VM_PAUSED, "paused in post-copy migration" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED, true, HERD_VM_PAUSED, "paused: post-copy migration failed" },
	{ IDLE(HERD_VM_PAUSED), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED, true, HERD_VM_RUNNING, "resumed" },
	{ IDLE(HERD_VM_PAUSED), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED, true, HERD_VM_RUNNING, "migrated in" },
	{ IDLE(HERD_VM_INCOMING), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED, true, HERD_VM_RUNNING, "migrated in" },
	/* …and the source of someone else's migration that failed. */
	{ IDLE(HERD_VM_MIGRATING), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED, true, HERD_VM_RUNNING, "migration cancelled" },
	{ IDLE(HERD_VM_PAUSED), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT, true, HERD_VM_RUNNING, "resumed from a snapshot" },
	{ IDLE(HERD_VM_PAUSED), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_POSTCOPY, true, HERD_VM_RUNNING, "resumed" },
	/* QEMU's CPUs let run for the first time: RESUMED comes before STARTED. */
	{ IDLE(HERD_VM_STARTING), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED, true, HERD_VM_RUNNING, "started" },
	/* (the STARTED of a migration arriving was missed) */
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED, true, HERD_VM_RUNNING, "migrated in" },
	{ IDLE(HERD_VM_CRASHED), VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED, true, HERD_VM_RUNNING, "started" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN, true, HERD_VM_STOPPED, "shut down by guest" },
	{ ASKED, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN, true, HERD_VM_STOPPED, "shut down on request" },
	{ IDLE(HERD_VM_STOPPING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED, true, HERD_VM_STOPPED, "destroyed" },
	{ FORCED, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED, true, HERD_VM_STOPPED, "forced off after 30 s shutdown timeout" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_CRASHED, true, HERD_VM_STOPPED, "crashed" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED, true, HERD_VM_STOPPED, "migrated away" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SAVED, true, HERD_VM_STOPPED, "saved" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_FAILED, true, HERD_VM_STOPPED, "failed: hypervisor process ended" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT, true, HERD_VM_STOPPED, "stopped by a snapshot revert" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_STOPPED, 99, true, HERD_VM_STOPPED, "stopped" },
	/* A migration arriving here ends without the guest. */
	{ IDLE(HERD_VM_INCOMING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_FAILED, true, HERD_VM_STOPPED, "incoming migration failed" },
	{ IDLE(HERD_VM_INCOMING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED, true, HERD_VM_STOPPED, "incoming migration destroyed" },
	{ IDLE(HERD_VM_INCOMING), VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN, true, HERD_VM_STOPPED, "incoming migration ended" },
	/* herd's own migration away: MIGRATING until it is off here. */
	{ MIGRATING, VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED, true, HERD_VM_MIGRATING, "paused for migration" },
	{ MIGRATING, VIR_DOMAIN_EVENT_SUSPENDED, VIR_DOMAIN_EVENT_SUSPENDED_IOERROR, true, HERD_VM_MIGRATING, "migrating" },
	{ MIGRATING, VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_MIGRATED, true, HERD_VM_MIGRATING, "migrating" },
	{ MIGRATING, VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED, true, HERD_VM_MIGRATING, "migrating" },
	{ MIGRATING, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED, true, HERD_VM_STOPPED, "migrated away" },
	{ MIGRATING, VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_FAILED, true, HERD_VM_STOPPED, "failed: hypervisor process ended" },
	{ MIGRATING, VIR_DOMAIN_EVENT_CRASHED, VIR_DOMAIN_EVENT_CRASHED_PANICKED, true, HERD_VM_CRASHED, "guest panicked" },
	{ MIGRATING, VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_ADDED, false, 0, NULL },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_PMSUSPENDED, VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY, true, HERD_VM_PAUSED, "suspended by the guest" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_PMSUSPENDED, VIR_DOMAIN_EVENT_PMSUSPENDED_DISK, true, HERD_VM_PAUSED, "suspended by the guest" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_CRASHED, VIR_DOMAIN_EVENT_CRASHED_PANICKED, true, HERD_VM_CRASHED, "guest panicked" },
	{ IDLE(HERD_VM_RUNNING), VIR_DOMAIN_EVENT_CRASHED, VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED, true, HERD_VM_RUNNING, "crashed, running its crash kernel" },
	/* No change of state: the definition changed, or STOPPED follows. */
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_EVENT_DEFINED, VIR_DOMAIN_EVENT_DEFINED_ADDED, false, 0, NULL },
	{ IDLE(HERD_VM_STOPPED), VIR_DOMAIN_EVENT_UNDEFINED, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED, false, 0, NULL },
	{ IDLE(HERD_VM_STOPPING), VIR_DOMAIN_EVENT_SHUTDOWN, VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED, false, 0, NULL },
	{ IDLE(HERD_VM_RUNNING), 99, 0, false, 0, NULL },
};

static void test_events(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(event_cases); i++) {
		const event_case *c = &event_cases[i];
		herd_vm_state got = HERD_VM__STATES;
		char reason[64] = "";
		bool changes = lv_map_event(&c->vm, c->event, c->detail, &got, reason, sizeof(reason));
		if (changes != c->changes)
			g_error("row %zu: event %d detail %d: %s a change of state", i, c->event,
				c->detail, changes ? "is" : "is not");
		if (!changes)
			continue;
		if (got != c->want || strcmp(reason, c->reason_text) != 0)
			g_error("row %zu: event %d detail %d: got %s \"%s\", want %s \"%s\"", i,
				c->event, c->detail, herd_vm_state_name(got), reason,
				herd_vm_state_name(c->want), c->reason_text);
	}
}

/* The reason is cut to the buffer, never overrun. */
static void test_short_buffer(void)
{
	lv_vm_context vm = FORCED;
	char reason[8];
	memset(reason, 'x', sizeof(reason));
	g_assert_cmpint(lv_map_domain_state(&vm, VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_DESTROYED,
					    reason, sizeof(reason)), ==, HERD_VM_STOPPED);
	g_assert_cmpstr(reason, ==, "forced ");
	herd_vm_state st;
	g_assert_true(lv_map_event(&vm, VIR_DOMAIN_EVENT_CRASHED,
				   VIR_DOMAIN_EVENT_CRASHED_CRASHLOADED, &st, reason, sizeof(reason)));
	g_assert_cmpstr(reason, ==, "crashed");
}

/* ---- error codes, close reasons, error text ---- */

static const struct {
	int vir_code;
	herd_error_code want;
} error_cases[] = {
	{ VIR_ERR_NO_DOMAIN, HERD_ERR_NOT_FOUND },
	{ VIR_ERR_XML_ERROR, HERD_ERR_INVALID },
	{ VIR_ERR_XML_DETAIL, HERD_ERR_INVALID },
	{ VIR_ERR_XML_INVALID_SCHEMA, HERD_ERR_INVALID },
	{ VIR_ERR_INVALID_ARG, HERD_ERR_INVALID },
	{ VIR_ERR_CONFIG_UNSUPPORTED, HERD_ERR_INVALID },
	{ VIR_ERR_NO_SUPPORT, HERD_ERR_INVALID },
	{ VIR_ERR_OPERATION_INVALID, HERD_ERR_CONFLICT },
	{ VIR_ERR_DOM_EXIST, HERD_ERR_CONFLICT },
	{ VIR_ERR_OPERATION_TIMEOUT, HERD_ERR_TIMEOUT },
	{ VIR_ERR_AGENT_UNRESPONSIVE, HERD_ERR_TIMEOUT },
	{ VIR_ERR_NO_CONNECT, HERD_ERR_UNAVAILABLE },
	{ VIR_ERR_INVALID_CONN, HERD_ERR_UNAVAILABLE },
	{ VIR_ERR_RPC, HERD_ERR_UNAVAILABLE },
	{ VIR_ERR_OK, HERD_ERR_INTERNAL },
	{ VIR_ERR_INTERNAL_ERROR, HERD_ERR_INTERNAL },
	{ VIR_ERR_OPERATION_FAILED, HERD_ERR_INTERNAL },
	{ VIR_ERR_SYSTEM_ERROR, HERD_ERR_INTERNAL },
};

static void test_error_codes(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(error_cases); i++) {
		herd_error_code got = lv_error_code(error_cases[i].vir_code);
		if (got != error_cases[i].want)
			g_error("row %zu: libvirt error %d: got %s, want %s", i,
				error_cases[i].vir_code, herd_error_name(got),
				herd_error_name(error_cases[i].want));
	}
}

static void test_close_reasons(void)
{
	g_assert_cmpstr(lv_close_reason_text(VIR_CONNECT_CLOSE_REASON_EOF), ==,
			"libvirtd closed the connection");
	g_assert_cmpstr(lv_close_reason_text(VIR_CONNECT_CLOSE_REASON_KEEPALIVE), ==,
			"libvirtd did not answer keepalive probes");
	g_assert_cmpstr(lv_close_reason_text(VIR_CONNECT_CLOSE_REASON_CLIENT), ==, "closed by herd");
	g_assert_cmpstr(lv_close_reason_text(VIR_CONNECT_CLOSE_REASON_ERROR), ==, "connection error");
	g_assert_cmpstr(lv_close_reason_text(99), ==, "connection error");
}

static const struct {
	const char *message, *want;
} text_cases[] = {
	{ "Domain not found", "Domain not found" },
	{ "operation failed: domain is already running.", "operation failed: domain is already running" },
	{ "trailing dots...", "trailing dots" },
	/* libxml2's error with the line and a marker under it */
	{ "XML error: Premature end of data in tag domain line 1\n"
	  "<domain type='qemu'><name>x</name>\n"
	  "----------------------------------^\n",
	  "XML error: Premature end of data in tag domain line 1 <domain type='qemu'><name>x</name>" },
	{ "  spaced  \n\n  lines  \n", "spaced lines" },
	{ "", "" },
	{ "...", "" },
};

static void test_error_text(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(text_cases); i++) {
		g_autofree char *got = lv_error_text(text_cases[i].message);
		if (strcmp(got, text_cases[i].want) != 0)
			g_error("row %zu: got \"%s\", want \"%s\"", i, got, text_cases[i].want);
	}
}

/* ---- small predicates ---- */

static void test_predicates(void)
{
	g_assert_true(lv_domain_active(VIR_DOMAIN_RUNNING));
	g_assert_true(lv_domain_active(VIR_DOMAIN_BLOCKED));
	g_assert_true(lv_domain_active(VIR_DOMAIN_PAUSED));
	g_assert_true(lv_domain_active(VIR_DOMAIN_SHUTDOWN));
	g_assert_true(lv_domain_active(VIR_DOMAIN_CRASHED));
	g_assert_true(lv_domain_active(VIR_DOMAIN_PMSUSPENDED));
	g_assert_false(lv_domain_active(VIR_DOMAIN_SHUTOFF));
	g_assert_false(lv_domain_active(VIR_DOMAIN_NOSTATE));

	g_assert_true(lv_domain_crashed(VIR_DOMAIN_CRASHED, VIR_DOMAIN_CRASHED_PANICKED));
	g_assert_true(lv_domain_crashed(VIR_DOMAIN_CRASHED, VIR_DOMAIN_CRASHED_UNKNOWN));
	g_assert_true(lv_domain_crashed(VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_CRASHED));
	g_assert_false(lv_domain_crashed(VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER));
	g_assert_false(lv_domain_crashed(VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_CRASHED));
	g_assert_false(lv_domain_crashed(VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_CRASHED));

	for (herd_vm_state s = 0; s < HERD_VM__STATES; s++)
		g_assert_cmpint(lv_state_is_down(s), ==, s == HERD_VM_STOPPED);
}

/* ---- migrations: libvirt's job, its progress ---- */

static void test_job_operation(void)
{
	g_assert_cmpint(lv_job_operation(true, VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT, 0), ==,
			VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT);
	g_assert_cmpint(lv_job_operation(true, VIR_DOMAIN_JOB_OPERATION_START, 0), ==,
			VIR_DOMAIN_JOB_OPERATION_START);
	g_assert_cmpint(lv_job_operation(true, 0, 0), ==, 0);
	g_assert_cmpint(lv_job_operation(true, -1, 0), ==, 0);
	/* libvirt 9.0 on a migration's destination refuses, and so tells. */
	g_assert_cmpint(lv_job_operation(false, 0, VIR_ERR_OPERATION_UNSUPPORTED), ==,
			VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN);
	g_assert_cmpint(lv_job_operation(false, 0, VIR_ERR_NO_DOMAIN), ==, 0);
	g_assert_cmpint(lv_job_operation(false, 0, VIR_ERR_RPC), ==, 0);

	g_assert_true(lv_domain_may_be_incoming(VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_MIGRATION));
	g_assert_true(lv_domain_may_be_incoming(VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_STARTING_UP));
	g_assert_false(lv_domain_may_be_incoming(VIR_DOMAIN_PAUSED, VIR_DOMAIN_PAUSED_USER));
	g_assert_false(lv_domain_may_be_incoming(VIR_DOMAIN_RUNNING, VIR_DOMAIN_RUNNING_MIGRATED));
	g_assert_false(lv_domain_may_be_incoming(VIR_DOMAIN_SHUTOFF, VIR_DOMAIN_SHUTOFF_MIGRATED));
}

static void test_migrate_progress(void)
{
	virTypedParameterPtr params = NULL;
	int n = 0, max = 0;
	const struct {
		const char *field;
		unsigned long long value;
	} ull[] = {
		{ VIR_DOMAIN_JOB_TIME_ELAPSED, 4561 },
		{ VIR_DOMAIN_JOB_MEMORY_TOTAL, 33947648 },
		{ VIR_DOMAIN_JOB_MEMORY_PROCESSED, 2347810 },
		{ VIR_DOMAIN_JOB_MEMORY_REMAINING, 29635584 },
		{ VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, 247 },
		{ VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, 4096 },
		{ VIR_DOMAIN_JOB_MEMORY_BPS, 1036136 },
		{ VIR_DOMAIN_JOB_MEMORY_ITERATION, 2 },
		{ VIR_DOMAIN_JOB_DOWNTIME, 8117 },
		/* what herd does not use */
		{ VIR_DOMAIN_JOB_DATA_TOTAL, 1 },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(ull); i++)
		g_assert_cmpint(virTypedParamsAddULLong(&params, &n, &max, ull[i].field, ull[i].value),
				==, 0);
	g_assert_cmpint(virTypedParamsAddInt(&params, &n, &max, VIR_DOMAIN_JOB_OPERATION,
					     VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT), ==, 0);
	g_assert_cmpint(virTypedParamsAddInt(&params, &n, &max, VIR_DOMAIN_JOB_AUTO_CONVERGE_THROTTLE,
					     30), ==, 0);

	herd_migrate_progress p = { .started_ms = 1700000000000 };
	g_assert_true(lv_migrate_progress_of(VIR_DOMAIN_JOB_UNBOUNDED, params, n, &p));
	g_assert_cmpint(p.started_ms, ==, 1700000000000); /* not libvirt's */
	g_assert_cmpuint(p.elapsed_ms, ==, 4561);
	g_assert_cmpuint(p.memory_total, ==, 33947648);
	g_assert_cmpuint(p.memory_processed, ==, 2347810);
	g_assert_cmpuint(p.memory_remaining, ==, 29635584);
	g_assert_cmpuint(p.dirty_rate, ==, 247);
	g_assert_cmpuint(p.page_size, ==, 4096);
	g_assert_cmpuint(p.bandwidth, ==, 1036136);
	g_assert_cmpuint(p.iteration, ==, 2);
	g_assert_cmpuint(p.expected_downtime_ms, ==, 8117);
	g_assert_cmpuint(p.autoconverge_throttle, ==, 30);

	/* No job: nothing changes. */
	herd_migrate_progress none = { .memory_total = 7 };
	g_assert_false(lv_migrate_progress_of(VIR_DOMAIN_JOB_NONE, params, n, &none));
	g_assert_cmpuint(none.memory_total, ==, 7);
	virTypedParamsFree(params, n);

	/* Fields libvirt leaves out (early in a migration) keep their value;
	 * a negative throttle is none. */
	params = NULL;
	n = max = 0;
	g_assert_cmpint(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_TIME_ELAPSED, 436),
			==, 0);
	g_assert_cmpint(virTypedParamsAddInt(&params, &n, &max, VIR_DOMAIN_JOB_AUTO_CONVERGE_THROTTLE,
					     -1), ==, 0);
	herd_migrate_progress early = { .memory_total = 7, .autoconverge_throttle = 5 };
	g_assert_true(lv_migrate_progress_of(VIR_DOMAIN_JOB_UNBOUNDED, params, n, &early));
	g_assert_cmpuint(early.elapsed_ms, ==, 436);
	g_assert_cmpuint(early.memory_total, ==, 7);
	g_assert_cmpuint(early.autoconverge_throttle, ==, 5);
	virTypedParamsFree(params, n);
}

/* ---- QEMU's start time from /proc text ---- */

/* A /proc/PID/stat line of @comm whose starttime (field 22) is @ticks. */
static char *stat_line(const char *comm, unsigned long long ticks)
{
	return g_strdup_printf("4242 (%s) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 "
			       "3 0 %llu 123456 789 18446744073709551615 1 1 0 0 0 0 0 4096 "
			       "0 0 0 17 1 0 0 0 0 0\n",
			       comm, ticks);
}

static void test_qemu_start(void)
{
	const int64_t now_ms = 1700000000000;
	/* Started 1000 ticks (10 s at 100 Hz) after boot, up for 70.5 s: 60.5 s ago. */
	g_autofree char *qemu = stat_line("qemu-system-x86", 1000);
	g_assert_cmpint(lv_qemu_start_ms(qemu, "70.50 120.00\n", 100, now_ms), ==, now_ms - 60500);
	/* comm may hold spaces and parentheses: fields count from the last ')'. */
	g_autofree char *odd = stat_line("qemu (a) b", 1000);
	g_assert_cmpint(lv_qemu_start_ms(odd, "70.50 120.00\n", 100, now_ms), ==, now_ms - 60500);
	/* A recycled pid is not QEMU. */
	g_autofree char *other = stat_line("bash", 1000);
	g_assert_cmpint(lv_qemu_start_ms(other, "70.50 120.00\n", 100, now_ms), ==, 0);
	/* Started "after" the uptime, or no clock rate: unknown. */
	g_assert_cmpint(lv_qemu_start_ms(qemu, "5.00 1.00\n", 100, now_ms), ==, 0);
	g_assert_cmpint(lv_qemu_start_ms(qemu, "70.50 120.00\n", 0, now_ms), ==, 0);
	/* Too few fields. */
	g_assert_cmpint(lv_qemu_start_ms("4242 (qemu-system-x86) S 1 2 3\n", "70.50\n", 100, now_ms),
			==, 0);
	g_assert_cmpint(lv_qemu_start_ms("4242 qemu-system-x86 S 1\n", "70.50\n", 100, now_ms), ==, 0);
	/* Nothing after the comm: not a byte is read past the end (a copy of
	 * its own, so that ASan sees where the text ends). */
	g_autofree char *cut = g_strdup("4242 (qemu-system-x86)");
	g_assert_cmpint(lv_qemu_start_ms(cut, "70.50\n", 100, now_ms), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* The typed-parameter functions keep libvirt's per-thread error. */
	g_assert_cmpint(virInitialize(), ==, 0);
	g_test_add_func("/virt/libvirt-state/domain-states", test_domain_states);
	g_test_add_func("/virt/libvirt-state/events", test_events);
	g_test_add_func("/virt/libvirt-state/short-buffer", test_short_buffer);
	g_test_add_func("/virt/libvirt-state/error-codes", test_error_codes);
	g_test_add_func("/virt/libvirt-state/close-reasons", test_close_reasons);
	g_test_add_func("/virt/libvirt-state/error-text", test_error_text);
	g_test_add_func("/virt/libvirt-state/predicates", test_predicates);
	g_test_add_func("/virt/libvirt-state/qemu-start", test_qemu_start);
	g_test_add_func("/virt/libvirt-state/job-operation", test_job_operation);
	g_test_add_func("/virt/libvirt-state/migrate-progress", test_migrate_progress);
	return g_test_run();
}
