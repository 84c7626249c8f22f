#include "store/packed.h"

#include "common/json.h"
#include "store/db.h"

#include <string.h>
#include <zlib.h>

/* Deflate's window: the dictionary and a VM's text (a few kB) fit. */
#define WINDOW_BITS 13
#define MEM_LEVEL 8

struct store_packed {
	guint32 text_len;
	guint32 len;
	guint8 bytes[];
};

/*
 * The dictionary: a VM's data as store_db_encode() writes it, its XML made
 * of what libvirt domain XML is usually made of — an operator's (virsh
 * dumpxml's shapes) and herd's own (virt/hardware.c's).  Deflate finds a
 * text's strings here as if they came earlier in the text; the nearer the
 * end, the cheaper, so herd's own shapes come last.
 */
static const char dictionary_xml[] =
	"<domain type='kvm'>\n"
	"  <name></name>\n  <uuid></uuid>\n"
	"  <metadata>\n"
	"    <libosinfo:libosinfo xmlns:libosinfo=\"http://libosinfo.org/xmlns/libvirt/domain/1.0\">\n"
	"      <libosinfo:os id=\"http://debian.org/debian/12\"/>\n"
	"    </libosinfo:libosinfo>\n"
	"  </metadata>\n"
	"  <memory unit='KiB'>1048576</memory>\n"
	"  <currentMemory unit='KiB'>1048576</currentMemory>\n"
	"  <vcpu placement='static'>2</vcpu>\n"
	"  <resource>\n    <partition>/machine</partition>\n  </resource>\n"
	"  <os>\n    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n"
	"  <features>\n    <acpi/>\n    <apic/>\n    <vmport state='off'/>\n  </features>\n"
	"  <cpu mode='host-passthrough' check='none' migratable='on'/>\n"
	"  <pm>\n    <suspend-to-mem enabled='no'/>\n    <suspend-to-disk enabled='no'/>\n  </pm>\n"
	"  <devices>\n"
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='qcow2' discard='unmap'/>\n"
	"      <source file='/var/lib/libvirt/images/.qcow2'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>\n"
	"    </disk>\n"
	"    <disk type='block' device='disk'>\n"
	"      <source dev='/dev/'/>\n"
	"      <target dev='sda' bus='sata'/>\n"
	"      <address type='drive' controller='0' bus='0' target='0' unit='0'/>\n"
	"    </disk>\n"
	"    <controller type='pci' index='0' model='pcie-root'/>\n"
	"    <controller type='pci' index='1' model='pcie-root-port'>\n"
	"      <model name='pcie-root-port'/>\n"
	"      <target chassis='1' port='0x10'/>\n"
	"      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0' multifunction='on'/>\n"
	"    </controller>\n"
	"    <controller type='sata' index='0'>\n"
	"    <controller type='virtio-serial' index='0'>\n"
	"    <interface type='network'>\n"
	"      <mac address='52:54:00:'/>\n"
	"      <source network='default'/>\n"
	"      <model type='virtio'/>\n"
	"    </interface>\n"
	"    <channel type='unix'>\n"
	"      <target type='virtio' name='org.qemu.guest_agent.0'/>\n"
	"      <address type='virtio-serial' controller='0' bus='0' port='1'/>\n"
	"    </channel>\n"
	"    <input type='mouse' bus='ps2'/>\n"
	"    <input type='keyboard' bus='ps2'/>\n"
	"    <graphics type='spice' autoport='yes'>\n"
	"      <listen type='address'/>\n      <image compression='off'/>\n"
	"    </graphics>\n"
	"    <sound model='ich9'>\n    <audio id='1' type='none'/>\n"
	"    <video>\n      <model type='qxl' ram='65536' vram='65536' vgamem='16384' heads='1' primary='yes'/>\n"
	"    </video>\n"
	"    <redirdev bus='usb' type='spicevmc'>\n"
	"    <serial type='file'>\n"
	"      <source path='/var/log/' append='on'/>\n"
	"    </serial>\n"
	"  </devices>\n"
	"</domain>\n"
	"<domain type='qemu'>\n"
	"  <name></name>\n"
	"  <uuid></uuid>\n"
	"  <description></description>\n"
	"  <memory unit='MiB'>1024</memory>\n"
	"  <currentMemory unit='MiB'>1024</currentMemory>\n"
	"  <vcpu placement='static'>1</vcpu>\n"
	"  <os firmware='efi'>\n"
	"    <type arch='x86_64' machine='q35'>hvm</type>\n"
	"    <firmware>\n      <feature enabled='no' name='secure-boot'/>\n    </firmware>\n"
	"  </os>\n"
	"  <os>\n"
	"    <type arch='x86_64' machine='pc'>hvm</type>\n"
	"    <boot dev='hd'/>\n"
	"  </os>\n"
	"  <features>\n    <acpi/>\n    <apic/>\n  </features>\n"
	"  <clock offset='utc'>\n"
	"    <timer name='rtc' tickpolicy='catchup'/>\n"
	"    <timer name='pit' tickpolicy='delay'/>\n"
	"    <timer name='hpet' present='no'/>\n"
	"  </clock>\n"
	"  <on_poweroff>destroy</on_poweroff>\n"
	"  <on_reboot>restart</on_reboot>\n"
	"  <on_crash>destroy</on_crash>\n"
	"  <devices>\n"
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
	"    <disk type='network' device='disk'>\n"
	"      <driver name='qemu' type='raw' cache='none' discard='unmap'/>\n"
	"      <source protocol='nbd' name=''>\n"
	"        <host transport='unix' socket='/run/herd/'/>\n"
	"      </source>\n"
	"    <disk type='file' device='cdrom'>\n"
	"      <driver name='qemu' type='raw'/>\n"
	"      <target dev='sdb' bus='sata'/>\n"
	"      <readonly/>\n"
	"    </disk>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='raw' cache='none' io='native' discard='unmap'/>\n"
	"      <source file='/var/lib/herd/'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"      <boot order='1'/>\n"
	"    </disk>\n"
	"    <controller type='usb' model='none'/>\n"
	"    <controller type='usb' index='0' model='qemu-xhci'/>\n"
	"    <interface type='bridge'>\n"
	"      <mac address='52:54:00:'/>\n"
	"      <source bridge='br0'/>\n"
	"      <model type='virtio'/>\n"
	"    </interface>\n"
	"    <serial type='file'>\n"
	"      <source path='' append='on'/>\n"
	"      <target port='0'/>\n"
	"    </serial>\n"
	"    <console type='file'>\n"
	"      <source path='' append='on'/>\n"
	"      <target type='serial' port='0'/>\n"
	"    </console>\n"
	"    <serial type='pty'>\n"
	"      <log file='/var/log/libvirt/qemu/-serial0.log' append='on'/>\n"
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
	"    <memballoon model='none'/>\n"
	"    <memballoon model='virtio'/>\n"
	"  </devices>\n"
	"</domain>\n";

static GBytes *dictionary_get(void)
{
	static GBytes *dictionary;
	if (g_once_init_enter(&dictionary)) {
		/* A VM's data: every key a VM has, in store_db_encode()'s order
		 * and with its escapes (the XML's quotes and newlines). */
		g_autoptr(json_t) hw = json_pack(
			"{s:s,s:[{s:s,s:s}],s:s,s:[{s:s,s:s,s:s}]}", "boot", "disk", "disks", "bus",
			"virtio", "disk", "", "firmware", "bios", "nics", "mac", "52:54:00:", "model",
			"virtio", "network", "");
		g_autoptr(json_t) data = json_pack(
			"{s:b,s:{s:{s:i,s:s}},s:b,s:O,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:[{s:s,s:i}],"
			"s:s,s:s,s:b,s:s,s:i,s:s,s:i,s:s,s:s,s:i,s:s,s:[s],s:[s]}",
			"failback", 1, "failed", "", "count", 1, "error", "", "ha", 1, "hw", hw,
			"live_failed", "", "memory_mib", (json_int_t)1024, "move", "live", "move_to", "",
			"node", "", "pool", "", "preferred", "", "restart_priority", "medium",
			"return_to", "", "nodes", "node", "", "priority", 0, "group", "", "sticky", "",
			"restricted", 0, "start_after", "", "start_wait_s", 60, "stop", "force",
			"shutdown_timeout_s", 360, "target", "running", "type", "kvm", "vcpus", 2,
			"xml", dictionary_xml, "xml_bridges", "br0", "xml_files", "/var/lib/libvirt/images/");
		char *text = store_db_encode(data);
		if (!text)
			g_error("the VM texts' dictionary could not be encoded");
		g_once_init_leave(&dictionary, g_bytes_new_take(text, strlen(text)));
	}
	return dictionary;
}

/* Each thread's streams, made once: a deflate stream's state is some
 * 100 kB, too much to set up for each of 10,000 VMs loaded. */
static void deflater_free(gpointer z)
{
	deflateEnd(z);
	g_free(z);
}

static void inflater_free(gpointer z)
{
	inflateEnd(z);
	g_free(z);
}

static GPrivate deflater = G_PRIVATE_INIT(deflater_free);
static GPrivate inflater = G_PRIVATE_INIT(inflater_free);

static z_stream *deflater_get(void)
{
	z_stream *z = g_private_get(&deflater);
	if (!z) {
		z = g_new0(z_stream, 1);
		if (deflateInit2(z, Z_BEST_COMPRESSION, Z_DEFLATED, -WINDOW_BITS, MEM_LEVEL,
				 Z_DEFAULT_STRATEGY) != Z_OK)
			g_error("zlib's deflate could not start: out of memory");
		g_private_set(&deflater, z);
	} else if (deflateReset(z) != Z_OK) {
		g_error("zlib's deflate could not be reset");
	}
	return z;
}

static z_stream *inflater_get(void)
{
	z_stream *z = g_private_get(&inflater);
	if (!z) {
		z = g_new0(z_stream, 1);
		if (inflateInit2(z, -WINDOW_BITS) != Z_OK)
			g_error("zlib's inflate could not start: out of memory");
		g_private_set(&inflater, z);
	} else if (inflateReset(z) != Z_OK) {
		g_error("zlib's inflate could not be reset");
	}
	return z;
}

store_packed *store_packed_new(const char *text, size_t len)
{
	if (len > G_MAXUINT32)
		g_error("a text of %zu bytes is too long to pack", len);
	GBytes *dict = dictionary_get();
	z_stream *z = deflater_get();
	gsize dict_len;
	const guint8 *dict_bytes = g_bytes_get_data(dict, &dict_len);
	if (deflateSetDictionary(z, dict_bytes, (uInt)dict_len) != Z_OK)
		g_error("zlib refused the VM texts' dictionary");
	uLong bound = deflateBound(z, (uLong)len);
	store_packed *p = g_malloc(sizeof(*p) + bound);
	z->next_in = (Bytef *)text;
	z->avail_in = (uInt)len;
	z->next_out = p->bytes;
	z->avail_out = (uInt)bound;
	if (deflate(z, Z_FINISH) != Z_STREAM_END)
		g_error("zlib's deflate did not finish within its own bound");
	p->text_len = (guint32)len;
	p->len = (guint32)(bound - z->avail_out);
	/* Of its size: the bound is above the text's own length. */
	return g_realloc(p, sizeof(*p) + p->len);
}

char *store_packed_text(const store_packed *p)
{
	char *out = g_malloc(p->text_len + 1);
	z_stream *z = inflater_get();
	GBytes *dict = dictionary_get();
	gsize dict_len;
	const guint8 *dict_bytes = g_bytes_get_data(dict, &dict_len);
	if (inflateSetDictionary(z, dict_bytes, (uInt)dict_len) != Z_OK)
		g_error("zlib refused the VM texts' dictionary");
	z->next_in = (Bytef *)p->bytes;
	z->avail_in = p->len;
	z->next_out = (Bytef *)out;
	z->avail_out = p->text_len;
	/* What this process packed itself: anything else is memory gone bad. */
	if (inflate(z, Z_FINISH) != Z_STREAM_END || z->avail_out != 0)
		g_error("a packed VM text does not unpack: %s", z->msg ? z->msg : "wrong length");
	out[p->text_len] = '\0';
	return out;
}

size_t store_packed_text_len(const store_packed *p)
{
	return p->text_len;
}

bool store_packed_equal(const store_packed *a, const store_packed *b)
{
	return a->text_len == b->text_len && a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

size_t store_packed_size(const store_packed *p)
{
	return sizeof(*p) + p->len;
}

void store_packed_free(store_packed *p)
{
	g_free(p);
}
