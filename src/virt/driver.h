/*
 * The VM driver: what a node agent needs from the hypervisor on its own node.
 *
 * Two implementations: libvirt (virt/libvirt.c, talking to the node's
 * libvirtd, qemu:///system by default) and the simulator's fake.  Every
 * operation is asynchronous and its completion, like every fact the driver
 * learns (a VM started, stopped, crashed, was paused; libvirt's lifecycle
 * events), is reported on the main loop, so the agent never blocks on a
 * hypervisor that is slow or gone.
 *
 * VMs run as transient libvirt domains, created from the XML in the cluster's
 * configuration: a node that reboots comes back with nothing defined, and the
 * cluster, not the node, decides what runs where.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum {
	HERD_VM_STOPPED = 0,  /* not running on this node (or unknown to it) */
	HERD_VM_STARTING,     /* a start is under way */
	HERD_VM_RUNNING,
	HERD_VM_PAUSED,       /* suspended by an operator, or by libvirt (I/O error…) */
	HERD_VM_STOPPING,     /* a shutdown or destroy is under way */
	HERD_VM_CRASHED,      /* the guest crashed (libvirt reported it) */
	HERD_VM_MIGRATING,    /* it runs here and is being migrated away, live */
	HERD_VM_INCOMING,     /* a live migration into this node: paused, waiting for
			       * the guest's state (not a copy that runs: it is
			       * destroyed if the migration fails) */
	HERD_VM__STATES
} herd_vm_state;

/* "stopped", "starting", "running"… (stable names, used in the API). */
const char *herd_vm_state_name(herd_vm_state s);
/* Is a VM in state @s a copy of the guest that runs, or may run, on its
 * node?  Everything but stopped and an incoming migration (C6: never two). */
static inline bool herd_vm_state_runs(herd_vm_state s)
{
	return s != HERD_VM_STOPPED && s != HERD_VM_INCOMING;
}

/* What the driver knows about one VM on this node. */
typedef struct herd_vm_fact {
	char uuid[37];
	herd_vm_state state;
	int64_t since_ms;      /* wall clock when it entered this state */
	char reason[64];       /* why it last changed: "shutdown by guest", "crashed", "destroyed"… */
} herd_vm_fact;

/* A copy of each fact of @vms (uuid -> herd_vm_fact*), in an array to free,
 * as facts() answers. */
GArray *herd_vm_facts_of_table(GHashTable *vms);

/* This node's capacity for VMs. */
typedef struct herd_node_resources {
	uint64_t memory_mib;   /* total RAM */
	uint64_t free_mib;     /* RAM free now */
	unsigned cpus;         /* logical CPUs */
	bool load_known;       /* the host's load average was read: */
	unsigned load_x100;    /* its 1-minute load average, × 100 (/proc/loadavg;
				* common/loadavg.h): shown, never decided on */
} herd_node_resources;

typedef struct herd_virt herd_virt;

/* A live migration (herd_virt_ops.migrate). */
typedef struct herd_migrate_params {
	const char *to;            /* the destination node's name (for messages) */
	const char *address;       /* its address on the cluster network: its
				    * hypervisor's (qemu+tls://) and the memory's */
	bool tls;                  /* the guest's memory encrypted on the wire */
	unsigned timeout_s;        /* cancelled after this long (the VM stays here) */
	unsigned port_min, port_max; /* the range the destination receives the
				      * memory on (the cluster's settings, which
				      * herdd wrote into its qemu.conf: its
				      * hypervisor picks a free port there; here
				      * for messages only) */
	unsigned bandwidth_mib_s;  /* the most the memory may use of the network,
				    * in MiB/s (0: no limit) */
} herd_migrate_params;

/* How far a live migration is (herd_virt_ops.migrate_progress), as the
 * hypervisor last said (libvirt's job statistics); 0 where not known yet. */
typedef struct herd_migrate_progress {
	int64_t started_ms;        /* wall clock when the migration began */
	uint64_t elapsed_ms;
	uint64_t memory_total;     /* bytes of guest RAM */
	uint64_t memory_processed; /* bytes sent so far (all passes) */
	uint64_t memory_remaining; /* bytes still to send in this pass */
	uint64_t dirty_rate;       /* pages the guest dirties per second */
	uint64_t page_size;        /* bytes per page (for @dirty_rate) */
	uint64_t bandwidth;        /* bytes per second on the wire, lately */
	uint64_t iteration;        /* passes over memory so far */
	uint64_t expected_downtime_ms;
	unsigned autoconverge_throttle; /* % of guest CPU taken away by auto-converge */
} herd_migrate_progress;

/* Completion of an operation: @error NULL on success. */
typedef void (*herd_virt_done)(const GError *error, gpointer user);

typedef struct herd_virt_callbacks {
	/* A VM's fact changed (also for VMs herd did not start itself). */
	void (*fact)(gpointer user, const herd_vm_fact *fact);
	/* The connection to the hypervisor was lost (true) or is back (false):
	 * facts are unknown meanwhile; on return, fact() is called for every VM. */
	void (*connection)(gpointer user, bool lost);
} herd_virt_callbacks;

typedef struct herd_virt_ops {
	/* Connect (and keep reconnecting); facts for every domain follow. */
	bool (*open)(herd_virt *v, GError **error);
	void (*close)(herd_virt *v);
	/* Create and start a transient domain from @xml. */
	void (*start)(herd_virt *v, const char *uuid, const char *xml, herd_virt_done done,
		      gpointer user);
	/* Ask the guest to shut down (ACPI); destroy it if it has not stopped
	 * after @timeout_s seconds.  Done once it is stopped. */
	void (*shutdown)(herd_virt *v, const char *uuid, unsigned timeout_s, herd_virt_done done,
			 gpointer user);
	/* Migrate it live to another node's hypervisor (peer to peer) as @p
	 * says.  Done once it runs there (and no longer here), or with an
	 * error once the migration has failed or was cancelled at the timeout:
	 * then it still runs here, and nothing of it is left there. */
	void (*migrate)(herd_virt *v, const char *uuid, const struct herd_migrate_params *p,
			herd_virt_done done, gpointer user);
	/* The progress of the migration away of @uuid that migrate() began;
	 * false if none runs.  Read from what the driver last learnt (it asks
	 * the hypervisor about once a second meanwhile): never blocks. */
	bool (*migrate_progress)(herd_virt *v, const char *uuid, herd_migrate_progress *out);
	/* Cancel the migration away of @uuid that migrate() began (an
	 * operator's herd job cancel): its done follows with an error, the VM
	 * running on here.  False if none runs. */
	bool (*migrate_cancel)(herd_virt *v, const char *uuid);
	/* Power it off at once. */
	void (*destroy)(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user);
	/* ACPI reboot, hard reset, pause, resume. */
	void (*reboot)(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user);
	void (*reset)(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user);
	void (*suspend)(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user);
	void (*resume)(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user);
	/* Put another medium into a removable drive of the running VM (or
	 * empty it): @device_xml is the drive's <disk> element with the new
	 * <source> or none (libvirt's virDomainUpdateDeviceFlags, live only). */
	void (*change_media)(herd_virt *v, const char *uuid, const char *device_xml,
			     herd_virt_done done, gpointer user);
	/* Grow disk @path (its file, as the domain XML names it) of VM @uuid,
	 * running here, to @size bytes, live: the guest sees the new size. */
	void (*block_resize)(herd_virt *v, const char *uuid, const char *path, uint64_t size,
			     herd_virt_done done, gpointer user);
	/* Every VM the driver knows on this node (array of herd_vm_fact). */
	GArray *(*facts)(herd_virt *v);
	/* This node's capacity; false if unknown (not connected). */
	bool (*resources)(herd_virt *v, herd_node_resources *out);
} herd_virt_ops;

struct herd_virt {
	const herd_virt_ops *ops;
	herd_virt_callbacks cb;
	gpointer user;
};

/* The libvirt library's version ("9.0.0"; g_free), or NULL. */
char *herd_virt_libvirt_version(void);

/* The libvirt driver for @uri ("qemu:///system"). */
herd_virt *herd_virt_libvirt_new(const char *uri, const herd_virt_callbacks *cb, gpointer user);
void herd_virt_free(herd_virt *v);
