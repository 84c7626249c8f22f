#include "virt/hardware.h"

#include "store/refs.h"

#include "common/error.h"
#include "store/disk.h"
#include "store/network.h"
#include "store/storage.h"

#include <stdlib.h>
#include <string.h>

/* IDE on i440fx: two buses of two units. */
#define IDE_UNITS 4
/* sda…sdz, vda…vdz: target names in one letter. */
#define LETTERS 26

static const char *own(herd_hw_domain *d, char *s)
{
	g_ptr_array_add(d->owned, s);
	return s;
}

void herd_hw_domain_clear(herd_hw_domain *d)
{
	if (d->owned)
		g_ptr_array_free(d->owned, TRUE);
	memset(d, 0, sizeof(*d));
}

/* "host" or "host:port" of an iSCSI portal. */
static void split_portal(herd_hw_domain *d, const char *portal, herd_hw_disk *k)
{
	const char *colon = strrchr(portal, ':');
	/* "[v6]:port" and "v4:port"; a bare IPv6 address has no port. */
	bool has_port = colon && (portal[0] == '[' ? colon > strchr(portal, ']') : strchr(portal, ':') == colon);
	k->iscsi_port = has_port ? (unsigned)strtoul(colon + 1, NULL, 10) : STORE_ISCSI_PORT;
	char *host = has_port ? g_strndup(portal, (gsize)(colon - portal)) : g_strdup(portal);
	if (host[0] == '[') {
		char *bare = g_strndup(host + 1, strcspn(host + 1, "]"));
		g_free(host);
		host = bare;
	}
	k->iscsi_host = own(d, host);
}

static bool resolve_disk(store_state *st, herd_hw_domain *d, const store_vm_disk *vd, herd_hw_disk *k,
			 GError **error)
{
	store_object *o = store_state_get(st, STORE_KIND_DISK, vd->disk);
	if (!o)
		return herd_refuse(error, HERD_ERR_NOT_FOUND, "Disk %s does not exist.", vd->disk);
	const store_disk *disk = store_disk_of(o);
	if (disk->esan) {
		/* Served by this node's herd-san over NBD (src/san). */
		k->name = o->name;
		k->bus = vd->bus;
		k->format = "raw";
		k->lun = -1;
		k->nbd_socket = own(d, store_esan_socket(o->uuid));
		k->nbd_export = o->uuid;
		return true;
	}
	store_object *so = store_state_get(st, STORE_KIND_STORAGE, disk->storage);
	if (!so)
		return herd_refuse(error, HERD_ERR_NOT_FOUND, "The storage of disk %s does not exist.", o->name);
	const store_storage *sto = store_storage_of(so);
	k->name = o->name;
	k->bus = vd->bus;
	k->format = store_disk_format_name(disk->format);
	k->lun = -1;
	if (sto->type == STORE_STORAGE_DIR) {
		k->file = own(d, store_file_path(st, disk->storage, disk->file));
		if (!k->file)
			return herd_refuse(error, HERD_ERR_INVALID, "Disk %s has no file on storage %s.", o->name, so->name);
	} else {
		split_portal(d, sto->portal, k);
		k->iscsi_target = sto->target;
		k->lun = disk->lun;
		/* A LUN is a raw block device; qcow2 on it is not herd's to make. */
		k->format = "raw";
	}
	return true;
}

static const char *resolve_iso(store_state *st, herd_hw_domain *d, const char *uuid, const char *what,
			       GError **error)
{
	store_object *o = store_state_get(st, STORE_KIND_ISO, uuid);
	if (!o) {
		herd_refuse(error, HERD_ERR_NOT_FOUND, "The %s %s does not exist.", what, uuid);
		return NULL;
	}
	char *path = store_file_path(st, store_iso_of(o)->storage, store_iso_of(o)->file);
	if (!path)
		herd_refuse(error, HERD_ERR_INVALID, "The %s %s is not on the cluster share.", what, o->name);
	return path ? own(d, path) : NULL;
}

bool herd_hw_resolve(store_state *st, const char *name, const char *uuid, uint64_t memory_mib,
		     unsigned vcpus, const char *type, const store_vm_hardware *hw,
		     herd_hw_domain *out, GError **error)
{
	herd_hw_domain *d = out;
	memset(d, 0, sizeof(*d));
	d->owned = g_ptr_array_new_with_free_func(g_free);
	d->name = name;
	d->uuid = uuid;
	d->type = type;
	d->memory_mib = memory_mib;
	d->vcpus = vcpus;
	d->firmware = hw->firmware;
	d->boot = hw->boot;
	if (hw->n_disks > STORE_VM_DISKS_MAX || hw->n_nics > STORE_VM_NICS_MAX)
		return herd_refuse(error, HERD_ERR_INVALID, "A VM has at most %d disks and %d NICs.",
			      STORE_VM_DISKS_MAX, STORE_VM_NICS_MAX);
	for (size_t i = 0; i < hw->n_disks; i++)
		if (!resolve_disk(st, d, &hw->disks[i], &d->disks[d->n_disks++], error))
			return false;
	for (size_t i = 0; i < hw->n_nics; i++) {
		store_object *o = store_state_get(st, STORE_KIND_NETWORK, hw->nics[i].network);
		if (!o)
			return herd_refuse(error, HERD_ERR_NOT_FOUND, "Virtual switch %s does not exist.",
				      hw->nics[i].network);
		d->nics[d->n_nics++] = (herd_hw_nic){ store_network_of(o)->bridge, store_network_of(o)->vlan,
						      hw->nics[i].model, hw->nics[i].mac };
	}
	if (hw->cdrom && !(d->cdrom = resolve_iso(st, d, hw->cdrom, "ISO", error)))
		return false;
	if (hw->floppy && !(d->floppy = resolve_iso(st, d, hw->floppy, "floppy image", error)))
		return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* The XML                                                             */

static void attr(GString *x, const char *name, const char *value)
{
	g_autofree char *esc = g_markup_escape_text(value, -1);
	g_string_append_printf(x, " %s='%s'", name, esc);
}

static bool is_q35(const herd_hw_domain *d)
{
	return g_strcmp0(d->firmware, "uefi") == 0;
}

/* The bus of the CD-ROM drive: IDE on pc, SATA on q35 (which has no IDE). */
static const char *cdrom_bus(const herd_hw_domain *d)
{
	return is_q35(d) ? "sata" : "ide";
}

/* Target names: vdX for virtio, sdX for scsi and sata (one namespace in
 * libvirt), hdX for ide; the CD-ROM after the disks of its bus. */
typedef struct {
	char dev[STORE_VM_DISKS_MAX + 1][8];  /* the disks', then the CD-ROM's */
	unsigned boot_disk, boot_cdrom, boot_nic, boot_floppy; /* <boot order>, 0: none */
} layout;

static char prefix_of(const char *bus)
{
	return strcmp(bus, "virtio") == 0 ? 'v' : strcmp(bus, "ide") == 0 ? 'h' : 's';
}

static bool make_layout(const herd_hw_domain *d, layout *l, GError **error)
{
	unsigned used[3] = { 0 }; /* v, s, h */
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i <= d->n_disks; i++) {
		const char *bus = i < d->n_disks ? d->disks[i].bus : cdrom_bus(d);
		if (strcmp(bus, "ide") == 0 && is_q35(d))
			return herd_refuse(error, HERD_ERR_INVALID,
				      "Disk %s: firmware uefi uses machine q35, which has no IDE bus; use bus virtio, scsi or sata.",
				      d->disks[i].name);
		char p = prefix_of(bus);
		unsigned *n = &used[p == 'v' ? 0 : p == 's' ? 1 : 2];
		if (p == 'h' && *n >= IDE_UNITS)
			return herd_refuse(error, HERD_ERR_INVALID,
				      "The IDE bus takes four devices, the CD-ROM drive one of them; put the other disks on virtio, scsi or sata.");
		if (*n >= LETTERS)
			return herd_refuse(error, HERD_ERR_INVALID, "Too many disks on bus %s.", bus);
		g_snprintf(l->dev[i], sizeof(l->dev[i]), "%cd%c", p, 'a' + (*n)++);
	}
	g_auto(GStrv) order = g_strsplit(d->boot ? d->boot : "disk", ",", -1);
	unsigned next = 1;
	for (char **b = order; *b; b++) {
		if (strcmp(*b, "disk") == 0 && d->n_disks)
			l->boot_disk = next++;
		else if (strcmp(*b, "cdrom") == 0)
			l->boot_cdrom = next++;
		else if (strcmp(*b, "network") == 0 && d->n_nics)
			l->boot_nic = next++;
		else if (strcmp(*b, "floppy") == 0 && d->floppy)
			l->boot_floppy = next++;
		else if (!store_vm_boot_ok(*b))
			return herd_refuse(error, HERD_ERR_INVALID,
				      "Boot device '%s' is not one of disk, cdrom, network and floppy.", *b);
	}
	return true;
}

static void boot_order(GString *x, unsigned order)
{
	if (order)
		g_string_append_printf(x, "      <boot order='%u'/>\n", order);
}

static void write_disk(GString *x, const herd_hw_disk *k, const char *dev, unsigned boot)
{
	if (k->file) {
		g_string_append(x, "    <disk type='file' device='disk'>\n      <driver name='qemu'");
		attr(x, "type", k->format);
		g_string_append(x, " cache='none' io='native' discard='unmap'/>\n      <source");
		attr(x, "file", k->file);
		g_string_append(x, "/>\n");
	} else if (k->nbd_socket) {
		g_string_append(x, "    <disk type='network' device='disk'>\n"
				   "      <driver name='qemu' type='raw' cache='none' discard='unmap'/>\n"
				   "      <source protocol='nbd'");
		attr(x, "name", k->nbd_export);
		g_string_append(x, ">\n        <host transport='unix'");
		attr(x, "socket", k->nbd_socket);
		g_string_append(x, "/>\n      </source>\n");
	} else {
		g_string_append(x, "    <disk type='network' device='disk'>\n"
				   "      <driver name='qemu' type='raw' cache='none' discard='unmap'/>\n"
				   "      <source protocol='iscsi'");
		g_autofree char *name = g_strdup_printf("%s/%d", k->iscsi_target, k->lun);
		attr(x, "name", name);
		g_string_append(x, ">\n        <host");
		attr(x, "name", k->iscsi_host);
		g_string_append_printf(x, " port='%u'/>\n      </source>\n", k->iscsi_port);
	}
	g_string_append(x, "      <target");
	attr(x, "dev", dev);
	attr(x, "bus", k->bus);
	g_string_append(x, "/>\n");
	boot_order(x, boot);
	g_string_append(x, "    </disk>\n");
}

static void write_cdrom(GString *x, const herd_hw_domain *d, const char *dev, unsigned boot)
{
	g_string_append(x, "    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n");
	if (d->cdrom) {
		g_string_append(x, "      <source");
		attr(x, "file", d->cdrom);
		g_string_append(x, "/>\n");
	}
	g_string_append(x, "      <target");
	attr(x, "dev", dev);
	attr(x, "bus", cdrom_bus(d));
	g_string_append(x, "/>\n      <readonly/>\n");
	boot_order(x, boot);
	g_string_append(x, "    </disk>\n");
}

static void write_nic(GString *x, const herd_hw_nic *n, unsigned boot)
{
	g_string_append(x, "    <interface type='bridge'>\n      <mac");
	attr(x, "address", n->mac);
	g_string_append(x, "/>\n      <source");
	attr(x, "bridge", n->bridge);
	g_string_append(x, "/>\n");
	if (n->vlan)
		g_string_append_printf(x, "      <virtualport type='openvswitch'/>\n"
					  "      <vlan>\n        <tag id='%u'/>\n      </vlan>\n",
				       n->vlan);
	g_string_append(x, "      <model");
	attr(x, "type", n->model);
	g_string_append(x, "/>\n");
	boot_order(x, boot);
	g_string_append(x, "    </interface>\n");
}

char *herd_hw_domain_xml(const herd_hw_domain *d, GError **error)
{
	layout l;
	if (!make_layout(d, &l, error))
		return NULL;
	bool q35 = is_q35(d);
	GString *x = g_string_new("<domain");
	attr(x, "type", d->type && *d->type ? d->type : "kvm");
	g_string_append(x, ">\n  <name>");
	g_autofree char *name = g_markup_escape_text(d->name, -1);
	g_string_append_printf(x, "%s</name>\n  <uuid>%s</uuid>\n", name, d->uuid);
	g_string_append_printf(x,
			       "  <memory unit='MiB'>%" G_GUINT64_FORMAT "</memory>\n"
			       "  <currentMemory unit='MiB'>%" G_GUINT64_FORMAT "</currentMemory>\n"
			       "  <vcpu placement='static'>%u</vcpu>\n",
			       d->memory_mib, d->memory_mib, d->vcpus);
	if (q35)
		/* libvirt picks Debian's OVMF from QEMU's firmware descriptors
		 * (/usr/share/qemu/firmware); without secure boot, as an
		 * install medium expects by default. */
		g_string_append(x, "  <os firmware='efi'>\n"
				   "    <type arch='x86_64' machine='q35'>hvm</type>\n"
				   "    <firmware>\n      <feature enabled='no' name='secure-boot'/>\n"
				   "    </firmware>\n  </os>\n");
	else
		g_string_append(x, "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n");
	g_string_append(x, "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n"
			   "  <clock offset='utc'>\n"
			   "    <timer name='rtc' tickpolicy='catchup'/>\n"
			   "    <timer name='pit' tickpolicy='delay'/>\n"
			   "    <timer name='hpet' present='no'/>\n"
			   "  </clock>\n"
			   "  <on_poweroff>destroy</on_poweroff>\n"
			   "  <on_reboot>restart</on_reboot>\n"
			   "  <on_crash>destroy</on_crash>\n"
			   "  <devices>\n");
	bool scsi = false;
	for (size_t i = 0; i < d->n_disks; i++) {
		write_disk(x, &d->disks[i], l.dev[i], i == 0 ? l.boot_disk : 0);
		scsi |= strcmp(d->disks[i].bus, "scsi") == 0;
	}
	write_cdrom(x, d, l.dev[d->n_disks], l.boot_cdrom);
	if (d->floppy) {
		g_string_append(x, "    <disk type='file' device='floppy'>\n"
				   "      <driver name='qemu' type='raw'/>\n      <source");
		attr(x, "file", d->floppy);
		g_string_append(x, "/>\n      <target dev='fda' bus='fdc'/>\n      <readonly/>\n");
		boot_order(x, l.boot_floppy);
		g_string_append(x, "    </disk>\n");
	}
	if (scsi)
		g_string_append(x, "    <controller type='scsi' index='0' model='virtio-scsi'/>\n");
	g_string_append(x, "    <controller type='usb' index='0' model='qemu-xhci'/>\n");
	for (size_t i = 0; i < d->n_nics; i++)
		write_nic(x, &d->nics[i], i == 0 ? l.boot_nic : 0);
	g_string_append_printf(x,
			       "    <serial type='pty'>\n"
			       "      <log file='/var/log/libvirt/qemu/%s-serial0.log' append='on'/>\n"
			       "      <target port='0'/>\n"
			       "    </serial>\n"
			       "    <console type='pty'>\n"
			       "      <target type='serial' port='0'/>\n"
			       "    </console>\n"
			       "    <input type='tablet' bus='usb'/>\n"
			       "    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'>\n"
			       "      <listen type='address' address='127.0.0.1'/>\n"
			       "    </graphics>\n"
			       "    <video>\n      <model type='vga'/>\n    </video>\n"
			       "    <rng model='virtio'>\n"
			       "      <backend model='random'>/dev/urandom</backend>\n"
			       "    </rng>\n"
			       "    <memballoon model='virtio'/>\n"
			       "  </devices>\n</domain>\n",
			       name);
	return g_string_free(x, FALSE);
}

char *herd_hw_cdrom_xml(const herd_hw_domain *d)
{
	layout l;
	if (!make_layout(d, &l, NULL))
		return NULL;
	GString *x = g_string_new(NULL);
	write_cdrom(x, d, l.dev[d->n_disks], l.boot_cdrom);
	return g_string_free(x, FALSE);
}

char *herd_hw_cdrom_change_xml(store_state *st, const store_vm *started, const char *name,
			       const char *uuid, const char *iso, GError **error)
{
	const store_vm_hardware *hw = started->hw;
	/* Only what places the drive: the buses before it, the firmware's
	 * machine, and what takes boot order numbers before it (the disks'
	 * files may be gone since: they are not needed). */
	herd_hw_domain d = { .name = name, .uuid = uuid, .firmware = hw->firmware, .boot = hw->boot,
			     .owned = g_ptr_array_new_with_free_func(g_free) };
	for (size_t i = 0; i < hw->n_disks && i < STORE_VM_DISKS_MAX; i++)
		d.disks[d.n_disks++] = (herd_hw_disk){ .name = hw->disks[i].disk, .bus = hw->disks[i].bus };
	d.n_nics = MIN(hw->n_nics, (size_t)STORE_VM_NICS_MAX);
	d.floppy = hw->floppy ? "" : NULL;
	char *xml = NULL;
	if (!iso || (d.cdrom = resolve_iso(st, &d, iso, "ISO", error)))
		xml = herd_hw_cdrom_xml(&d);
	if (!xml && error && !*error)
		herd_refuse(error, HERD_ERR_INVALID, "VM %s's CD-ROM drive cannot be placed.", name);
	herd_hw_domain_clear(&d);
	return xml;
}

/* ------------------------------------------------------------------ */

char *herd_hw_mac_new(store_state *st, guint32 (*random)(void))
{
	/* 2^24 addresses: a handful of tries finds a free one in any cluster
	 * of herd's size; the bound keeps a broken random source from looping. */
	for (int tries = 0; tries < 1000; tries++) {
		guint32 r = random();
		char *mac = g_strdup_printf("52:54:00:%02x:%02x:%02x", (r >> 16) & 0xff, (r >> 8) & 0xff, r & 0xff);
		if (!store_refs_mac_user(st, mac, NULL))
			return mac;
		g_free(mac);
	}
	return NULL;
}
