/*
 * virt/hardware.h: golden tests.  Each tests/unit/hardware/NAME.json is a
 * VM's resolved hardware; its domain XML must equal NAME.xml byte for byte
 * and pass libvirt's own validation (virt/domxml.h), keeping name, UUID,
 * memory, vCPUs and type.  HERD_UPDATE_GOLDEN=1 rewrites the .xml files
 * (review the diff).  And what the machine cannot have is refused.
 */
#include "common/error.h"
#include "common/json.h"
#include "virt/domxml.h"
#include "virt/hardware.h"

#include <jansson.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* @j as a herd_hw_domain (borrowing @j's strings). */
static void domain_of(json_t *j, herd_hw_domain *d)
{
	memset(d, 0, sizeof(*d));
	d->name = str(j, "name");
	d->uuid = str(j, "uuid");
	d->type = str(j, "type");
	d->memory_mib = (uint64_t)json_integer_value(json_object_get(j, "memory_mib"));
	d->vcpus = (unsigned)json_integer_value(json_object_get(j, "vcpus"));
	d->firmware = str(j, "firmware");
	d->boot = str(j, "boot");
	d->cdrom = str(j, "cdrom");
	d->floppy = str(j, "floppy");
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(j, "disks"), i, e)
		d->disks[d->n_disks++] = (herd_hw_disk){
			str(e, "name"), str(e, "bus"), str(e, "format"), str(e, "file"), str(e, "iscsi_host"),
			(unsigned)json_integer_value(json_object_get(e, "iscsi_port")), str(e, "iscsi_target"),
			json_object_get(e, "lun") ? (int)json_integer_value(json_object_get(e, "lun")) : -1,
		};
	json_array_foreach(json_object_get(j, "nics"), i, e)
		d->nics[d->n_nics++] = (herd_hw_nic){ str(e, "bridge"),
						      (unsigned)json_integer_value(json_object_get(e, "vlan")),
						      str(e, "model"), str(e, "mac") };
}

static void test_golden(gconstpointer data)
{
	const char *base = data;
	g_autofree char *in = g_strdup_printf("%s/%s.json", HARDWARE_GOLDEN_DIR, base);
	g_autofree char *out = g_strdup_printf("%s/%s.xml", HARDWARE_GOLDEN_DIR, base);
	json_error_t jerr;
	g_autoptr(json_t) j = json_load_file(in, 0, &jerr);
	if (!j)
		g_error("%s: %s", in, jerr.text);
	herd_hw_domain d;
	domain_of(j, &d);
	g_autoptr(GError) error = NULL;
	g_autofree char *xml = herd_hw_domain_xml(&d, &error);
	g_assert_no_error(error);
	if (g_getenv("HERD_UPDATE_GOLDEN"))
		g_assert_true(g_file_set_contents(out, xml, -1, NULL));
	g_autofree char *expected = NULL;
	g_assert_true(g_file_get_contents(out, &expected, NULL, NULL));
	g_assert_cmpstr(xml, ==, expected);

	g_autoptr(herd_domxml) parsed = herd_domxml_parse(xml, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(parsed->name, ==, d.name);
	g_assert_cmpstr(parsed->uuid, ==, d.uuid);
	g_assert_cmpstr(parsed->type, ==, d.type);
	g_assert_cmpuint(parsed->memory_mib, ==, d.memory_mib);
	g_assert_cmpuint(parsed->vcpus, ==, d.vcpus);

	/* The CD-ROM drive alone is the one in the domain. */
	g_autofree char *cdrom = herd_hw_cdrom_xml(&d);
	g_assert_nonnull(strstr(xml, cdrom));
}

static void test_refused(void)
{
	herd_hw_domain d = { .name = "a", .uuid = "11111111-2222-4333-8444-555555555555", .type = "kvm",
			     .memory_mib = 64, .vcpus = 1, .firmware = "uefi", .boot = "disk" };
	d.disks[d.n_disks++] = (herd_hw_disk){ "old", "ide", "raw", "/x/images/old.raw", NULL, 0, NULL, -1 };
	g_autoptr(GError) error = NULL;
	g_assert_null(herd_hw_domain_xml(&d, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	g_assert_nonnull(strstr(error->message, "Disk old: firmware uefi uses machine q35, which has no IDE bus"));
	g_clear_error(&error);

	/* pc: three IDE disks and the CD-ROM drive fill the IDE bus. */
	d.firmware = "bios";
	for (int i = 0; i < 3; i++)
		d.disks[d.n_disks++] = d.disks[0];
	g_assert_null(herd_hw_domain_xml(&d, &error));
	g_assert_nonnull(strstr(error->message, "The IDE bus takes four devices"));
	g_clear_error(&error);
	d.n_disks = 3;
	g_autofree char *xml = herd_hw_domain_xml(&d, &error);
	g_assert_no_error(error);
	g_assert_nonnull(strstr(xml, "<target dev='hdd' bus='ide'/>\n      <readonly/>"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	static const char *const cases[] = { "bios-virtio", "uefi-iscsi-vlan", "bios-ide-scsi-floppy" };
	for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree char *path = g_strdup_printf("/hardware/golden/%s", cases[i]);
		g_test_add_data_func(path, cases[i], test_golden);
	}
	g_test_add_func("/hardware/refused", test_refused);
	return g_test_run();
}
