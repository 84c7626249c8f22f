/*
 * A VM as the replicated store holds it: its configuration (libvirt domain
 * XML and herd's attributes — HA, preferred node, failback, sticky node,
 * anti-affinity group, shutdown timeout) and its state (what the cluster
 * does with it: the operator's start or stop, and where the HA engine put
 * it).  Every reader outside src/store goes through store_vm_of(); the
 * defaults live here and nowhere else; the command builders are the only
 * way the rest of herd writes a VM.
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define STORE_VM_SHUTDOWN_TIMEOUT_DEFAULT_S 360
#define STORE_VM_SHUTDOWN_TIMEOUT_MAX_S 86400
/* How long a VM waits at most for what it starts after (start_wait_s). */
#define STORE_VM_START_WAIT_DEFAULT_S 60
#define STORE_VM_START_WAIT_MAX_S 3600
#define STORE_VM_DISKS_MAX 16
#define STORE_VM_NICS_MAX 8
/* Disk files or bridges of an operator's XML that herd keeps. */
#define STORE_VM_XML_USES_MAX 256

/* A start that failed on a node, as the coordinator recorded it. */
/* A node of a VM's node set and its priority: a VM runs on the nodes of
 * the highest priority that can take it (Proxmox HA groups' semantics). */
typedef struct store_vm_node_priority {
	const char *node;
	unsigned priority;       /* 0..STORE_VM_NODESET_PRIORITY_MAX; higher first */
} store_vm_node_priority;

#define STORE_VM_NODESET_PRIORITY_MAX 1000
#define STORE_VM_NODESET_MAX 32

typedef struct store_vm_failure {
	const char *node;
	unsigned count;          /* failed starts in a row there */
	const char *error;       /* the hypervisor's last error */
} store_vm_failure;

/* The hardware of a VM that herd made (herd vm create), not an operator's
 * XML: the XML is then generated from it (virt/hardware.h). */
typedef struct store_vm_disk {
	const char *disk;        /* the disk's UUID */
	const char *bus;         /* "virtio", "scsi", "sata", "ide" */
} store_vm_disk;

typedef struct store_vm_nic {
	const char *network;     /* the virtual switch's UUID */
	const char *model;       /* "virtio", "e1000", "rtl8139" */
	const char *mac;         /* "52:54:00:xx:xx:xx" */
} store_vm_nic;

typedef struct store_vm_hardware {
	const store_vm_disk *disks;
	size_t n_disks;
	const store_vm_nic *nics;
	size_t n_nics;
	const char *cdrom;       /* the ISO's UUID in the CD-ROM drive, or NULL (empty) */
	const char *floppy;      /* the ISO (image) in the floppy drive, or NULL (none) */
	const char *firmware;    /* "bios" or "uefi" */
	const char *boot;        /* "cdrom,disk"…: the boot order, devices among
				  * disk, cdrom, network, floppy */
} store_vm_hardware;

/* In which order VMs are started when many start at once (a failover, a
 * cold start of the cluster, an evacuation): every VM of a higher priority
 * that is to start runs before one of a lower priority starts (or the
 * lower one's start_wait_s is over).  Disabled: not restarted elsewhere when
 * its node fails (it waits for its node, as a VM without HA does). */
typedef enum {
	STORE_VM_PRIORITY_HIGH = 0,
	STORE_VM_PRIORITY_MEDIUM,        /* the default */
	STORE_VM_PRIORITY_LOW,
	STORE_VM_PRIORITY_DISABLED,
} store_vm_priority;
/* "high", "medium", "low", "disabled". */
const char *store_vm_priority_name(store_vm_priority p);
bool store_vm_priority_parse(const char *name, store_vm_priority *out);

typedef struct store_vm {
	/* Configuration (a change is a new version in the VM's history). */
	/* Its libvirt domain XML is in its object's text (@object: the object
	 * whose view this is, NULL in a view of no object), not here:
	 * store_vm_xml() reads it (1–3 kB a VM).  xml_macs: that XML's runs
	 * of hex digits and colons long enough to hold a MAC address,
	 * space-separated, or NULL if none (store_vm_xml_may_have_mac()). */
	const store_object *object;
	const char *xml_macs;
	const store_vm_hardware *hw; /* what the XML was made from, or NULL if an
				      * operator wrote the XML (herd vm define) */
	const char *type;        /* the domain type ("kvm", "qemu"…), "" if unknown */
	const char *preferred;   /* node it returns to, or NULL */
	const char *sticky;      /* bound to this node, or NULL */
	const char *group;       /* anti-affinity group, or NULL */
	const char *pool;        /* VM pool (whose operators may run it: store/group.h), or NULL */
	/* Its node set: the nodes it prefers, highest priority first (ties
	 * in the order given); n_nodeset 0: none.  With restricted (below)
	 * it never runs on any other node.  failback applies to it as to
	 * preferred. */
	const store_vm_node_priority *nodeset;
	size_t n_nodeset;
	const char *start_after; /* the UUID of a VM that runs before this one starts, or NULL */
	/* What an operator's XML uses on the hosts (no hw): its disks' source
	 * files and the bridges of its interfaces, as libvirt read them at
	 * define time; NULL-terminated, empty if none (or defined before herd
	 * kept them).  The scheduler maps them to storages and virtual
	 * switches when it plans, so that one added later counts. */
	const char *const *xml_files;
	const char *const *xml_bridges;
	/* The numbers and flags together, of configuration and then of
	 * state: no padding between pointers (10,000 views). */
	uint64_t memory_mib;
	unsigned vcpus;
	unsigned shutdown_timeout_s; /* ACPI shutdown, then forced off */
	store_vm_priority restart_priority;
	unsigned start_wait_s;   /* how long its start waits at most for start_after
				  * and for VMs of a higher priority */
	bool ha;                 /* restarted elsewhere when its node dies */
	bool failback;           /* returns to its preferred node (default true) */
	bool restricted;         /* runs on the nodes of its node set only */
	/* State (not configuration: kept out of the history). */
	bool target_running;     /* the operator's start (true) or stop */
	bool stop_force;         /* a stop powers it off at once */
	bool move_live;          /* move_to: by live migration from its node; else
				  * its node stops it, then it is started there */
	bool move_cold_ok;       /* ... and if the live migration fails, cold */
	const char *node;        /* the one node that may run it, or NULL */
	const char *move_to;     /* it goes there from its node; or NULL */
	const char *live_failed; /* why its last live move was given up (the
				  * hypervisor's error), or NULL: moves that
				  * herd decides itself are not tried live again
				  * until an operator acts on it or its node */
	const store_vm_failure *failures; /* nodes where it failed to start */
	size_t n_failures;
	const char *return_to;   /* the node it was moved away from when that node
				  * left service (standby, maintenance): it goes
				  * back there once that node is online again
				  * (return_after_maintenance); or NULL */
} store_vm;

/* Is @boot a boot order: disk, cdrom, network, floppy, each at most once,
 * comma-separated? */
bool store_vm_boot_ok(const char *boot);

/* The typed view of a VM object (@o must be of kind VM). */
const store_vm *store_vm_of(const store_object *o);
/* @vm's libvirt domain XML ("" if it has none; g_free it).  Unpacked
 * from its object's text, or read from SQLite if it is cold (store/state.h):
 * a few µs, not for a loop over every VM. */
char *store_vm_xml(const store_vm *vm, GError **error);
/* Do @a and @b have the same domain XML? */
bool store_vm_same_xml(const store_vm *a, const store_vm *b);
/* Might @vm's domain XML contain MAC address @mac (any case)?  False only
 * when it does not; true asks for a look at store_vm_xml().  No unpacking
 * for a @mac of hex digits and colons: the view keeps the XML's runs of
 * those that are long enough to hold one. */
bool store_vm_xml_may_have_mac(const store_vm *vm, const char *mac);

/* The failure record for @node, or NULL. */
const store_vm_failure *store_vm_failure_on(const store_vm *vm, const char *node);

/* The VMs assigned to @node (store_vm's node): uuid -> store_object*,
 * borrowed and valid until the next change of the state; NULL if none.
 * Kept up to date by every change, for a node's agent that must not look
 * at each of 10,000 VMs of the cluster to find its own. */
GHashTable *store_vms_assigned_to(store_state *st, const char *node);

/*
 * Herd's attributes of a VM as an operator sets them (define, set): only
 * those whose bit is in @set change; a NULL string clears the field.
 */
enum {
	STORE_VM_SET_HA = 1 << 0,
	STORE_VM_SET_PREFERRED = 1 << 1,
	STORE_VM_SET_FAILBACK = 1 << 2,
	STORE_VM_SET_SHUTDOWN_TIMEOUT = 1 << 3,
	STORE_VM_SET_STICKY = 1 << 4,
	STORE_VM_SET_GROUP = 1 << 5,
	STORE_VM_SET_NODESET = 1 << 6,
	STORE_VM_SET_RESTRICTED = 1 << 7,
	STORE_VM_SET_PRIORITY = 1 << 8,
	STORE_VM_SET_START_AFTER = 1 << 9,
	STORE_VM_SET_START_WAIT = 1 << 10,
	STORE_VM_SET_POOL = 1 << 11,
};

typedef struct store_vm_attrs {
	unsigned set;
	bool ha;
	const char *preferred;
	bool failback;
	unsigned shutdown_timeout_s;
	const char *sticky;
	const char *group;
	const char *pool;
	json_t *nodeset;         /* [{"node","priority"}…] (borrowed), or NULL: none */
	bool restricted;
	store_vm_priority restart_priority;
	const char *start_after; /* a VM's UUID or name (stored as its UUID) */
	unsigned start_wait_s;
} store_vm_attrs;

/* The attribute names an operator may set, NULL-terminated (API fields). */
extern const char *const store_vm_attr_names[];

/*
 * Check @a against @st: named nodes exist, the group is a valid name, the
 * timeout is in range.  On failure @error names the field.
 */
bool store_vm_attrs_check(store_state *st, const store_vm_attrs *a, GError **error);
/* The UUID of VM @vm (a UUID or a name) of @st, or NULL (borrowed). */
const char *store_vm_attrs_start_after(store_state *st, const char *vm);

/*
 * A node set as an operator gives it: the text of Proxmox HA groups'
 * syntax, "n2:2,n3:2,n1" — node names, each with an optional priority (0
 * when left out; higher is preferred; nodes of one priority form a tier) —
 * or the stored form, [{"node","priority"}…] in any order.  The result (a
 * new reference) is the stored form, highest priority first, ties in the
 * order given; an empty text or list gives an empty array (no set).  NULL
 * with @error naming the problem (a malformed entry, a priority out of
 * range, a node named twice, neither text nor list).
 */
json_t *store_vm_nodeset_parse(json_t *given, GError **error);
/* Is @set a stored node set (the form above, in any order)?  @error names
 * the problem. */
bool store_vm_nodeset_check(json_t *set, GError **error);
/* The priority of @node in @vm's node set, or -1: not in it (or no set). */
int store_vm_nodeset_priority(const store_vm_node_priority *set, size_t n, const char *node);

/* What libvirt's parser took from the domain XML. */
typedef struct store_vm_domain {
	const char *uuid;
	const char *name;
	const char *xml;
	const char *type;
	uint64_t memory_mib;
	unsigned vcpus;
	const char *const *files;    /* its disks' source files, NULL-terminated, or NULL */
	const char *const *bridges;  /* its interfaces' bridges, NULL-terminated, or NULL */
} store_vm_domain;

/*
 * Define: a new VM from @dom with @a, or — when @existing is the VM with
 * that UUID — a new XML for it (virsh semantics), renamed if the XML's name
 * differs.  Conditional on @existing's version.  NULL with @error only if
 * @existing's configuration cannot be read (store_object_data()).
 */
json_t *store_vm_cmd_define(const store_object *existing, const store_vm_domain *dom,
			    const store_vm_attrs *a, GError **error);
/*
 * A VM that herd makes from @hw (herd vm create): @hw is the store's "hw"
 * object (disks, nics, cdrom, floppy, firmware, boot; stolen) and @dom
 * what it makes, the XML generated from it (virt/hardware.h).
 */
json_t *store_vm_cmd_create_hw(const store_vm_domain *dom, json_t *hw, const store_vm_attrs *a);
/* A new hardware configuration of @vm (herd vm set): @hw stolen, with the
 * XML, memory and vCPUs made from it, and @a; conditional on its version. */
json_t *store_vm_cmd_set_hw(const store_object *vm, const store_vm_domain *dom, json_t *hw,
			    const store_vm_attrs *a);
/* The "hw" object of @hw (a new reference): the inverse of the typed view. */
json_t *store_vm_hw_json(const store_vm_hardware *hw);

/* What differs between the hardware a VM was started with and its
 * configuration now (bits; 0: nothing). */
enum {
	STORE_VM_HW_MEMORY = 1 << 0,
	STORE_VM_HW_VCPUS = 1 << 1,
	STORE_VM_HW_DISKS = 1 << 2,
	STORE_VM_HW_NICS = 1 << 3,
	STORE_VM_HW_CDROM = 1 << 4,
	STORE_VM_HW_FLOPPY = 1 << 5,
	STORE_VM_HW_FIRMWARE = 1 << 6,
	STORE_VM_HW_BOOT = 1 << 7,
	STORE_VM_HW_XML = 1 << 8,    /* the XML otherwise (an operator's define) */
	STORE_VM_HW__COUNT = 9,
};
unsigned store_vm_hw_changes(const store_vm *started, const store_vm *now);
/* The name of one bit of store_vm_hw_changes() ("memory", "cdrom"…). */
const char *store_vm_hw_change_name(unsigned bit);

/* Change herd's attributes. */
json_t *store_vm_cmd_set(const store_object *vm, const store_vm_attrs *a);
/* Undefine (conditional on its version). */
json_t *store_vm_cmd_undefine(const store_object *vm);
/* Restore a stored configuration version (over an existing VM only with @force). */
json_t *store_vm_cmd_restore(const char *uuid, uint64_t version, bool force);

/* The operator wants it running; clears the failures of earlier starts. */
json_t *store_vm_cmd_start(const store_object *vm);
/* The operator wants it stopped: gracefully, or powered off (@force). */
json_t *store_vm_cmd_stop(const store_object *vm, bool force);
/* Lift the sticky binding. */
json_t *store_vm_cmd_release_sticky(const store_object *vm);

/* The HA engine's placements (see ha/sched.h): */
/* run on @node (a move, if any, is over); @failed records a node given up on;
 * how a stop asked is made (stop) stays */
json_t *store_vm_cmd_assign(const char *uuid, const char *node, const store_vm_failure *failed);
/* its node stops it, then it goes to @to */
json_t *store_vm_cmd_move(const char *uuid, const char *to);
/* its node migrates it to @to, live (once it runs there, an assign to @to
 * ends the move); if that fails, cold when @cold_ok */
json_t *store_vm_cmd_migrate(const char *uuid, const char *to, bool cold_ok);
/* its live move was given up: it stays on @node; @error says why */
json_t *store_vm_cmd_live_given_up(const char *uuid, const char *node, const char *error);
/* no node is assigned (it has stopped) */
json_t *store_vm_cmd_release(const char *uuid);

/* Set (or with NULL clear) where the VM of a store_vm_cmd_move(),
 * _migrate() or _assign() patch @cmd goes back to (return_to); a move
 * otherwise clears it: an operator's choice, or a move of herd's that
 * ends the return. */
void store_vm_cmd_set_return_to(json_t *cmd, const char *node);

/* Batch patches moving every VM assigned to @from to @to (switchover), live,
 * cold if that fails and @allow_cold; NULL if none.  A VM bound to another
 * node than @to (sticky) stays: added to @refused (store_object *,
 * borrowed), if given. */
json_t *store_vm_cmd_switchover(store_state *st, const char *from, const char *to, bool allow_cold,
				GPtrArray *refused);

/* Apply-time check of a VM's data (deterministic; types and ranges). */
bool store_vm_validate(json_t *data, GError **error);
/* The typed view's lifetime (object.c). */
void *store_vm_parse(json_t *data);
/* Make @typed (store_vm_parse()'s) independent of the tree it was read from,
 * and return it (it moves: @typed is gone): its strings copied into its
 * block; its XML read from @object's text (@object outlives it: the view is
 * its) when asked for; @text is that text. */
void *store_vm_own(void *typed, const char *text, const store_object *object);
void store_vm_free(void *typed);
