/*
 * A fake VM driver (virt/driver.h) for unit tests, on the GLib main loop:
 * every operation completes from an idle callback, as libvirt's would
 * from its event loop, with the facts a driver reports (starting, running,
 * stopping, stopped, paused, crashed).  Like the libvirt driver it reports
 * its connection once open() has "connected", then a fact for every VM it
 * knows.
 *
 * A live migration reaches the driver of its destination node (by name,
 * in this process): migrating here and incoming there while it is under
 * way (held), running there once it is answered.
 *
 * Test controls: hold operations (they wait until released), make a start
 * or a migration fail, crash a guest, lose the hypervisor, cut the node's power (every
 * guest is gone); and what it did: a VM's state, operations counted.
 */
#pragma once

#include "virt/driver.h"

#include <glib.h>
#include <stdbool.h>

typedef struct testvirt testvirt;

/* A driver for node @node_name (for messages) with @memory_mib of RAM and
 * @cpus CPUs; the node's herd_ha sets its callbacks. */
testvirt *testvirt_new(const char *node_name, uint64_t memory_mib, unsigned cpus);
/* Free (after the herd_ha that uses it): what is under way is dropped. */
void testvirt_free(testvirt *v);
herd_virt *testvirt_driver(testvirt *v);

/* Hold operations: they wait, unanswered, until released. */
void testvirt_hold(testvirt *v, bool hold);
/* The next start of @uuid fails with @message (libvirt's words). */
void testvirt_fail_start(testvirt *v, const char *uuid, const char *message);
/* The next live migration of @uuid from here fails with @message (it runs
 * on here; nothing is left at the destination). */
void testvirt_fail_migrate(testvirt *v, const char *uuid, const char *message);
/* The guest @uuid crashes (it must be running or paused). */
void testvirt_crash(testvirt *v, const char *uuid);
/* The hypervisor connection is lost (@lost) or back; back, every VM's fact
 * is reported again. */
void testvirt_connection(testvirt *v, bool lost);
/* The node's power is cut: every guest is gone at once, without a fact
 * to herd (whose node is off too); what is under way fails.  Power comes
 * back with testvirt_connection(v, false). */
void testvirt_power_off(testvirt *v);

/* The state of @uuid here (HERD_VM_STOPPED if unknown). */
herd_vm_state testvirt_state(testvirt *v, const char *uuid);
/* How many times @op ("start", "shutdown", "destroy", "reboot", "reset",
 * "suspend", "resume", "change_media") was asked for @uuid. */
unsigned testvirt_count(testvirt *v, const char *op, const char *uuid);
/* The drive XML of the last live media change of @uuid ("change_media"), or NULL. */
const char *testvirt_media(testvirt *v, const char *uuid);
/* Operations asked and not answered yet. */
unsigned testvirt_pending(testvirt *v);
