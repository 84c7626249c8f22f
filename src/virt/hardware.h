/*
 * A VM's libvirt domain XML made from its hardware (herd vm create, herd vm
 * set), so that no operator writes XML: memory, vCPUs, disks on a storage,
 * NICs on virtual switches, a CD-ROM drive, a floppy, firmware, boot order.
 *
 * Pure: herd_hw_resolve() reads what the VM's hardware references from the
 * store (disks and their storage, ISOs, switches) into a herd_hw_domain,
 * and herd_hw_domain_xml() writes the XML from that alone; the golden tests
 * (tests/unit/hardware/) feed the latter directly.
 *
 * The choices an operator of virsh or Proxmox expects (docs/vm-hardware.md):
 *   - machine pc (i440fx) with SeaBIOS for firmware bios, q35 with OVMF
 *     (libvirt's firmware autoselection, secure boot off) for uefi; IDE
 *     exists only on pc, so a uefi VM's disks use virtio, scsi or sata;
 *   - disks with cache=none (no host page cache: safe for live migration
 *     and failover on shared storage), io=native on files, discard=unmap;
 *   - an iSCSI LUN as a network disk through QEMU's own initiator;
 *   - a CD-ROM drive always (empty if no ISO), so that an ISO can be
 *     inserted into a running VM; a floppy drive only with an image;
 *   - boot order per device (<boot order>): the first disk, the CD-ROM, the
 *     first NIC, the floppy, in the order given; absent devices are skipped;
 *   - VNC on the node's localhost (a console through herd later), a serial
 *     console (a pty, logged to /var/log/libvirt/qemu/NAME-serial0.log),
 *     virtio-rng from /dev/urandom, a USB tablet, the balloon;
 *   - a NIC on a switch with a VLAN is an Open vSwitch port with that tag.
 */
#pragma once

#include "store/state.h"
#include "store/vm.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct herd_hw_disk {
	const char *name;          /* the disk's name (for messages) */
	const char *bus;           /* virtio, scsi, sata, ide */
	const char *format;        /* qcow2, raw */
	const char *file;          /* a file: its absolute path; NULL for a LUN or eSAN disk */
	const char *iscsi_host;    /* a LUN: the portal's host, port, the target's IQN, the LUN */
	unsigned iscsi_port;
	const char *iscsi_target;
	int lun;
	const char *nbd_socket;    /* an eSAN disk: herd-san's unix socket, the export (the disk's UUID) */
	const char *nbd_export;
} herd_hw_disk;

typedef struct herd_hw_nic {
	const char *bridge;
	unsigned vlan;             /* 0: untagged */
	const char *model;         /* virtio, e1000, rtl8139 */
	const char *mac;
} herd_hw_nic;

typedef struct herd_hw_domain {
	const char *name;
	const char *uuid;
	const char *type;          /* the domain type: kvm, or qemu (no KVM: test nodes) */
	uint64_t memory_mib;
	unsigned vcpus;
	const char *firmware;      /* bios, uefi */
	const char *boot;          /* "cdrom,disk"… */
	herd_hw_disk disks[STORE_VM_DISKS_MAX];
	size_t n_disks;
	herd_hw_nic nics[STORE_VM_NICS_MAX];
	size_t n_nics;
	const char *cdrom;         /* the ISO's absolute path, or NULL: an empty drive */
	const char *floppy;        /* the image's absolute path, or NULL: no floppy drive */
	GPtrArray *owned;          /* strings herd_hw_resolve() made (freed by _clear) */
} herd_hw_domain;

#define HERD_HW_MEMORY_MIN_MIB 16
#define HERD_HW_MEMORY_MAX_MIB (UINT64_C(16) << 20) /* 16 TiB */
#define HERD_HW_VCPUS_MAX 288

/*
 * Fill @out from a VM's @hw and what it references in @st: disks (with the
 * path of their file on a dir storage, or their LUN on an iSCSI target),
 * ISOs (their file on the cluster share) and switches.  False with an error
 * that names what is missing or unusable.
 */
bool herd_hw_resolve(store_state *st, const char *name, const char *uuid, uint64_t memory_mib,
		     unsigned vcpus, const char *type, const store_vm_hardware *hw,
		     herd_hw_domain *out, GError **error);
void herd_hw_domain_clear(herd_hw_domain *d);

/* The domain XML of @d (g_free), or NULL with an INVALID error for what
 * the machine cannot have (IDE on q35, more than four IDE devices…). */
char *herd_hw_domain_xml(const herd_hw_domain *d, GError **error);

/* The CD-ROM drive of @d alone, as herd_hw_domain_xml() writes it (for a
 * live change of its medium: virDomainUpdateDeviceFlags). */
char *herd_hw_cdrom_xml(const herd_hw_domain *d);

/*
 * The CD-ROM drive of a running VM started with @started's hardware, with
 * ISO @iso (NULL: empty) in it: the drive as the guest has it (bus, target
 * and boot order from @started), for a live change of the medium.  NULL
 * with an error if the ISO is not on the cluster share.
 */
char *herd_hw_cdrom_change_xml(store_state *st, const store_vm *started, const char *name,
			       const char *uuid, const char *iso, GError **error);

/* A new locally administered MAC address in QEMU's range, 52:54:00:xx:xx:xx,
 * that no NIC in @st has; @random gives 32 random bits (g_random_int). */
char *herd_hw_mac_new(store_state *st, guint32 (*random)(void));
