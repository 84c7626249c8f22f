/*
 * What herdd does when it is asked to stop.  SIGTERM comes from the service
 * manager, for two very different reasons: herdd alone is restarted or
 * stopped (its VMs run on, and the next herdd takes them over), or the host
 * shuts down or reboots (its VMs die with it).  herdd asks the service
 * manager which ("systemctl is-system-running" says "stopping" during a
 * shutdown or reboot) through its service_command.  A restart exits at
 * once, as herdd always did.  A shutdown follows the cluster's
 * shutdown_policy (herd_ha_shutdown()): with "migrate" the node goes into
 * maintenance and herdd keeps running while its VMs move away, extending
 * the unit's stop timeout as it goes (EXTEND_TIMEOUT_USEC: TimeoutStopSec
 * stays short for a herdd that hangs; shutdown_timeout_s bounds the wait,
 * see settings.h), then leaves the cluster saying why: the others do not
 * fence a node in maintenance.
 */
#define G_LOG_DOMAIN "daemon"
#include "daemon/herdd.h"

#include "common/log.h"
#include "common/sd_notify.h"
#include "ha/ha.h"

#include <string.h>

/* How long the service manager has to say whether the host stops: well
 * within the unit's TimeoutStopSec (60 s). */
#define ASK_TIMEOUT_S 10
/* While its VMs leave, herdd asks for this much more time every
 * EXTEND_EVERY_S: a herdd that hangs is killed that long after its last. */
#define EXTEND_USEC (30 * G_USEC_PER_SEC)
#define EXTEND_EVERY_S 10

void herdd_quit(herdd *d)
{
	d->stop_phase = HERDD_EXITING;
	g_clear_handle_id(&d->extend_timer, g_source_remove);
	g_main_loop_quit(d->loop);
}

static gboolean on_extend(gpointer data)
{
	herdd *d = data;
	herdd_notify_extend_timeout(d->notify, EXTEND_USEC, "moving its VMs away: the host shuts down");
	return G_SOURCE_CONTINUE;
}

/* The engine is done with the host's shutdown: leave. */
static void on_leave(const char *summary, gpointer user)
{
	herdd *d = user;
	g_free(d->leave_reason);
	d->leave_reason = g_strdup_printf("its host shuts down: %s", summary);
	herdd_quit(d);
}

static void on_system_state(const char *state, const GError *error, gpointer user)
{
	herdd *d = user;
	if (d->stop_phase != HERDD_ASKING)
		return; /* stopped meanwhile (a second signal) */
	if (error) {
		log_warn("cannot tell whether the host shuts down (%s): exiting as at a restart of herdd; "
			 "its VMs run on, and should the host go down the others fence it", error->message);
		herdd_quit(d);
		return;
	}
	if (strcmp(state, "stopping") != 0) {
		log_info("shutting down on signal (the system is %s: herdd alone stops; its VMs run on)",
			 state);
		herdd_quit(d);
		return;
	}
	g_autofree char *why = NULL;
	if (!herd_ha_shutdown(d->ha, on_leave, d, &why)) {
		log_warn("the host shuts down, and herd leaves at once: %s", why);
		herdd_quit(d);
		return;
	}
	d->stop_phase = HERDD_EVACUATING;
	herdd_notify_stopping(d->notify);
	on_extend(d);
	d->extend_timer = g_timeout_add_seconds(EXTEND_EVERY_S, on_extend, d);
}

void herdd_stop_requested(herdd *d)
{
	switch (d->stop_phase) {
	case HERDD_RUNNING:
		break;
	case HERDD_ASKING:
	case HERDD_EVACUATING:
		log_warn("asked to stop again: exiting now%s",
			 d->stop_phase == HERDD_EVACUATING ? " (VMs still here stay, down if the host goes down)"
							   : "");
		herdd_quit(d);
		return;
	case HERDD_EXITING:
		return;
	}
	/* Not in a cluster: nothing to move, nobody to tell. */
	if (!herd_cluster_exists(d->cluster) || !herd_cluster_started(d->cluster)) {
		log_info("shutting down on signal");
		herdd_quit(d);
		return;
	}
	log_info("asked to stop: is it a restart of herdd, or does the host shut down?");
	d->stop_phase = HERDD_ASKING;
	herdd_service_ask(d, "is-system-running", ASK_TIMEOUT_S, on_system_state, d);
}

void herdd_stop_finish(herdd *d)
{
	if (!d->leave_reason)
		return;
	log_info("leaving the cluster: %s", d->leave_reason);
	herd_cluster_say_leaving(d->cluster, d->leave_reason);
}
