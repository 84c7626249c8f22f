/*
 * The hardware options of herd vm create and herd vm set (vm_hardware.c):
 * memory, vCPUs, disks, NICs, CD-ROM, floppy, firmware, boot order, as the
 * API's "memory", "vcpus" and "hardware" fields (api/vm_hardware.c).
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct cli_vm_hw_opts {
	char *memory, *cdrom, *floppy, *firmware, *boot;
	int vcpus;
	char **disks, **networks, **add_disks, **remove_disks, **add_networks, **remove_networks;
	gboolean eject, no_floppy;
} cli_vm_hw_opts;

extern cli_vm_hw_opts cli_vm_hw;

#define CLI_VM_HARDWARE_OPTIONS                                                                    \
	{ "memory", 'm', 0, G_OPTION_ARG_STRING, &cli_vm_hw.memory, "RAM, such as 2G or 512M", "SIZE" }, \
	{ "vcpus", 'c', 0, G_OPTION_ARG_INT, &cli_vm_hw.vcpus, "Virtual CPUs", "N" },               \
	{ "disk", 'd', 0, G_OPTION_ARG_STRING_ARRAY, &cli_vm_hw.disks, "A disk (herd disk list), in boot order; bus virtio (default), scsi, sata or ide. Repeat for more", "DISK[,bus=BUS]" }, \
	{ "network", 'n', 0, G_OPTION_ARG_STRING_ARRAY, &cli_vm_hw.networks, "A NIC on a virtual switch (herd network list); model virtio (default), e1000 or rtl8139; a MAC (default: a new 52:54:00:… one). Repeat for more", "SWITCH[,model=M][,mac=MAC]" }, \
	{ "cdrom", 0, 0, G_OPTION_ARG_STRING, &cli_vm_hw.cdrom, "The ISO in the CD-ROM drive (herd iso list)", "ISO" }, \
	{ "floppy", 0, 0, G_OPTION_ARG_STRING, &cli_vm_hw.floppy, "A floppy image (an uploaded ISO-store file, e.g. virtio drivers)", "IMAGE" }, \
	{ "firmware", 0, 0, G_OPTION_ARG_STRING, &cli_vm_hw.firmware, "bios (SeaBIOS, machine pc; default) or uefi (OVMF, machine q35)", "bios|uefi" }, \
	{ "boot", 0, 0, G_OPTION_ARG_STRING, &cli_vm_hw.boot, "Boot order of disk, cdrom, network, floppy (default: disk)", "LIST" }

#define CLI_VM_HARDWARE_SET_OPTIONS                                                                \
	{ "add-disk", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cli_vm_hw.add_disks, "Attach a disk (after the others)", "DISK[,bus=BUS]" }, \
	{ "remove-disk", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cli_vm_hw.remove_disks, "Detach a disk (it is kept)", "DISK" }, \
	{ "add-network", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cli_vm_hw.add_networks, "Add a NIC", "SWITCH[,model=M][,mac=MAC]" }, \
	{ "remove-network", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cli_vm_hw.remove_networks, "Remove the NIC with this MAC, or the NICs on this switch", "MAC|SWITCH" }, \
	{ "eject", 0, 0, G_OPTION_ARG_NONE, &cli_vm_hw.eject, "Empty the CD-ROM drive (live on a running VM)", NULL }, \
	{ "no-floppy", 0, 0, G_OPTION_ARG_NONE, &cli_vm_hw.no_floppy, "Remove the floppy drive", NULL }

/* Add the hardware options given into @body ("memory", "vcpus",
 * "hardware"); false after printing a usage error. */
bool cli_vm_hardware_body(json_t *body, bool for_set);
/* Print a VM's "hardware" and "pending" as herd vm info does. */
void cli_vm_hardware_print(json_t *vm);
