/*
 * Running fence agents (Debian's fence-agents: fence_apc_snmp,
 * fence_ipmilan…) with their standard interface: no arguments, "key=value"
 * lines on stdin (action=off, plug=…, ip=…), exit status 0 for success;
 * for action=status 0 means on and 2 off.  Every run has a time limit.
 * Asynchronous on the GLib main loop.  What the results mean for fencing a
 * node is ha/fencer.c's business.
 */
#pragma once

#include "ha/fence_pool.h"
#include "ha/fencer.h"

#include <gio/gio.h>
#include <glib.h>
#include <stdbool.h>

/* Done: @ok, the device, a sentence (or the output; see below) and how long it ran. */
typedef void (*herd_fence_done)(bool ok, const char *device, const char *detail,
				double agent_seconds, gpointer user);

/* Run one agent action ("status", "monitor", "list", "on", "off",
 * "reboot") for @t.  @done gets ok and a detail; for "status" ok means
 * "answered", and *detail says "on" or "off"; for "list" *detail is the
 * agent's whole output (a "plug,alias" line per outlet); else its last
 * line — for a successful "reboot" followed, on a second line, by the last
 * line it logged on stderr, if any (herd_fence_reboot_verified()). */
void herd_fence_agent_action(const herd_fence_target *t, const char *action,
			     herd_fence_done done, gpointer user);
/* The same through a waiting agent of @t's device from @pool when there is
 * one (its start-up then does not count: the run's time is from the
 * hand-over); else, or when the waiting agent turns out to be gone before
 * it took its options, through a fresh one. */
void herd_fence_agent_run(herd_fence_pool *pool, const herd_fence_target *t, const char *action,
			  herd_fence_done done, gpointer user);

/*
 * Python agents run without pexpect's fixed pause.  fence-agents' SNMP
 * agents (fence_apc_snmp and its kin) run every net-snmp command through
 * pexpect.run(), whose close() sleeps 0.1 s "to give the kernel time to
 * update process status" before it reads the command's exit status: four
 * commands, 0.4 s, for every "off" of fence_apc_snmp, against about 2 ms
 * that the PDU takes to answer (bench/README.md).  pexpect.run() has read
 * EOF by then, and after EOF ptyprocess reads the status with a blocking
 * waitpid(): the pause buys nothing on Linux.  Writes @dir/sitecustomize.py,
 * which sets that pause to 0 and then runs the system's own sitecustomize,
 * and puts @dir first on the PYTHONPATH of every agent started after it.
 * Nothing else of an agent changes; agents that are not Python ignore it.
 * False, and agents run as they are, when the file cannot be written.
 */
bool herd_fence_agent_python_setup(const char *dir, GError **error);

/* Start @agent with pipes for stdin, stdout and stderr (and the setting
 * above): it waits for its options on stdin. */
GSubprocess *herd_fence_agent_spawn(const char *agent, GError **error);

/* Where @agent is installed (the agents' directory, default /usr/sbin). */
char *herd_fence_agent_path(const char *agent);

/* Is @agent the name of an installed fence agent?  (fence_[a-z0-9_]+ in
 * the agents' directory, default /usr/sbin.) */
bool herd_fence_agent_valid(const char *agent, GError **error);
