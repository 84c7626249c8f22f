/* What herd keeps on a host for live migration (virt/host_config.h): port
 * sets as the kernel lists them, the merge of the migration range into the
 * kernel's reserved ports, qemu.conf's keys, and the plan. */
#include "common/error.h"
#include "virt/host_config.h"

#include <string.h>

static char *roundtrip(const char *text)
{
	herd_portset s;
	g_autoptr(GError) error = NULL;
	if (!herd_portset_parse(&s, text, &error))
		g_error("'%s' refused: %s", text, error->message);
	return herd_portset_format(&s);
}

static void expect_bad_ports(const char *text, const char *needle)
{
	herd_portset s;
	g_autoptr(GError) error = NULL;
	g_assert_false(herd_portset_parse(&s, text, &error));
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
}

static void test_portset(void)
{
	struct { const char *in, *out; } ok[] = {
		{ "", "" },
		{ "\n", "" },
		{ "8080", "8080" },
		/* what the kernel prints, with its newline */
		{ "1000-1002,8080,49152-49215\n", "1000-1002,8080,49152-49215" },
		/* in any order, overlapping, adjacent: joined */
		{ "9,5,6,7", "5-7,9" },
		{ "10-20,15-25,26", "10-26" },
		{ " 5 , 7 ", "5,7" },
		{ "0,65535", "0,65535" },
		{ "65534-65535", "65534-65535" },
		{ "3-3", "3" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		g_autofree char *got = roundtrip(ok[i].in);
		g_assert_cmpstr(got, ==, ok[i].out);
	}
	expect_bad_ports("a", "'a' is not a port or a range of ports");
	expect_bad_ports("5-3", "'5-3'");
	expect_bad_ports("65536", "'65536'");
	expect_bad_ports("1,,2", "'' is not a port");
	expect_bad_ports("1-", "'1-'");
	expect_bad_ports("-5", "'-5'");
	expect_bad_ports("1 2", "'1 2'");
	expect_bad_ports("0x50", "'0x50'");
	expect_bad_ports("123456", "'123456'");

	herd_portset s;
	g_assert_true(herd_portset_parse(&s, "100-200", NULL));
	herd_portset_remove(&s, 150, 160);
	herd_portset_add(&s, 300, 300);
	g_assert_true(herd_portset_has(&s, 149));
	g_assert_false(herd_portset_has(&s, 155));
	g_assert_false(herd_portset_has(&s, 70000));
	g_autofree char *text = herd_portset_format(&s);
	g_assert_cmpstr(text, ==, "100-149,161-200,300");
}

static void merge(const char *current, const char *before, unsigned min, unsigned max,
		  const char *want_value, const char *want_added)
{
	g_autofree char *value = NULL, *added = NULL;
	g_autoptr(GError) error = NULL;
	if (!herd_reserved_ports_merge(current, before, min, max, &value, &added, &error))
		g_error("merge of %s refused: %s", current, error->message);
	g_assert_cmpstr(value, ==, want_value);
	g_assert_cmpstr(added, ==, want_added);
}

static void test_reserved_ports(void)
{
	/* Nothing reserved yet. */
	merge("\n", NULL, 49152, 49215, "49152-49215", "49152-49215");
	/* Another program's ports stay, inside the range too; herd adds
	 * only what nobody reserved. */
	merge("8080,49160-49170\n", NULL, 49152, 49215, "8080,49152-49215",
	      "49152-49159,49171-49215");
	/* The range moves: herd frees what it added, never the others'. */
	merge("8080,49152-49215", "49152-49159,49171-49215", 50000, 50063,
	      "8080,49160-49170,50000-50063", "50000-50063");
	/* Again at the same range (herdd started again): nothing moves. */
	merge("8080,49160-49170,50000-50063", "50000-50063", 50000, 50063,
	      "8080,49160-49170,50000-50063", "50000-50063");
	/* Everything already reserved by others: herd added nothing, so
	 * moving away frees nothing. */
	merge("49000-50000", NULL, 49152, 49215, "49000-50000", "");
	merge("49000-50000", "", 50001, 50002, "49000-50002", "50001-50002");
	/* A damaged record of herd's: it frees nothing rather than guess. */
	merge("8080,49152-49215", "garbage", 50000, 50000, "8080,49152-49215,50000", "50000");

	g_autofree char *value = NULL, *added = NULL;
	g_autoptr(GError) error = NULL;
	g_assert_false(herd_reserved_ports_merge("8080,x", NULL, 1, 2, &value, &added, &error));
	g_assert_nonnull(strstr(error->message, "The kernel's reserved ports cannot be read: 'x'"));
	g_assert_null(value);
	g_clear_error(&error);
	g_assert_false(herd_reserved_ports_merge("", NULL, 5, 4, &value, &added, &error));
	g_assert_nonnull(strstr(error->message, "5-4 is not a range"));
}

static void test_sysctl_file(void)
{
	g_autofree char *text = herd_sysctl_file_render("8080,49152-49215", "49152-49215");
	g_assert_nonnull(strstr(text, "\nnet.ipv4.ip_local_reserved_ports = 8080,49152-49215\n"));
	g_autofree char *added = herd_sysctl_file_added(text);
	g_assert_cmpstr(added, ==, "49152-49215");
	g_autofree char *none = herd_sysctl_file_render("8080", "");
	g_autofree char *empty = herd_sysctl_file_added(none);
	g_assert_cmpstr(empty, ==, "");
	g_assert_null(herd_sysctl_file_added(NULL));
	g_assert_null(herd_sysctl_file_added("net.ipv4.ip_local_reserved_ports = 1\n"));
	/* Every line but the setting is a comment, as sysctl.d wants. */
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (char **l = lines; *l; l++)
		g_assert_true(!**l || **l == '#' || g_str_has_prefix(*l, "net.ipv4."));
}

static const herd_conf_key ports[] = {
	{ "migration_port_min", "50000" },
	{ "migration_port_max", "50063" },
};

/* Debian's qemu.conf in small: the keys commented out, other settings. */
static const char debian_conf[] =
	"# Master configuration file for the QEMU driver.\n"
	"#migration_port_min = 49152\n"
	"#migration_port_max = 49215\n"
	"\n"
	"user = \"root\"\n"
	"cgroup_controllers = [ \"cpu\",\n"
	"    \"memory\" ]\n";

static void test_conf_keys(void)
{
	/* Set nowhere: added at the end, after the mark; the rest as it was. */
	g_autofree char *a = herd_conf_set_keys(debian_conf, ports, 2);
	g_assert_cmpstr(a, ==,
			"# Master configuration file for the QEMU driver.\n"
			"#migration_port_min = 49152\n"
			"#migration_port_max = 49215\n"
			"\n"
			"user = \"root\"\n"
			"cgroup_controllers = [ \"cpu\",\n"
			"    \"memory\" ]\n"
			"\n" HERD_CONF_MARK "\n"
			"migration_port_min = 50000\n"
			"migration_port_max = 50063\n");
	/* Its own result: nothing changes. */
	g_autofree char *again = herd_conf_set_keys(a, ports, 2);
	g_assert_cmpstr(again, ==, a);
	/* A later key joins the block without a second mark. */
	herd_conf_key more[] = { ports[0], ports[1], { "migrate_tls_x509_verify", "1" } };
	g_autofree char *b = herd_conf_set_keys(a, more, 3);
	g_assert_true(g_str_has_suffix(b, "migration_port_max = 50063\nmigrate_tls_x509_verify = 1\n"));
	g_assert_true(strstr(b, HERD_CONF_MARK) == g_strrstr(b, HERD_CONF_MARK));
	/* New values, in place. */
	herd_conf_key moved[] = { { "migration_port_min", "60000" }, { "migration_port_max", "60001" } };
	g_autofree char *c = herd_conf_set_keys(a, moved, 2);
	g_assert_true(g_str_has_suffix(c, HERD_CONF_MARK "\nmigration_port_min = 60000\nmigration_port_max = 60001\n"));
	g_assert_cmpuint(strlen(c), ==, strlen(a));

	/* Set by the operator: changed where it is, whatever its spacing;
	 * a longer key that begins alike, and comments, are not it. */
	const char *own = "migration_port_min=1000\n"
			  "  migration_port_max\t =  2000 \n"
			  "migration_port_min_other = 5\n"
			  "# migration_port_min = 3\n"
			  "max_files = 10";
	g_autofree char *d = herd_conf_set_keys(own, ports, 2);
	g_assert_cmpstr(d, ==,
			"migration_port_min = 50000\n"
			"migration_port_max = 50063\n"
			"migration_port_min_other = 5\n"
			"# migration_port_min = 3\n"
			"max_files = 10");
	/* Without a final newline, a key is added on a line of its own. */
	g_autofree char *e = herd_conf_set_keys("max_files = 10", ports, 1);
	g_assert_cmpstr(e, ==, "max_files = 10\n\n" HERD_CONF_MARK "\nmigration_port_min = 50000\n");
	/* A missing file. */
	g_autofree char *f = herd_conf_set_keys(NULL, ports, 2);
	g_assert_cmpstr(f, ==, HERD_CONF_MARK "\nmigration_port_min = 50000\nmigration_port_max = 50063\n");
	g_autofree char *g = herd_conf_set_keys("", ports, 0);
	g_assert_cmpstr(g, ==, "");
}

/* ------------------------------------------------------------------ */
/* The plan, against a disk kept in a table                            */

static const herd_host_paths paths = {
	.qemu_conf = "/etc/libvirt/qemu.conf",
	.ca_file = "/etc/pki/CA/cacert.pem",
	.libvirt_pki_dir = "/etc/pki/libvirt",
	.qemu_pki_dir = "/etc/pki/qemu",
	.sysctl_file = "/etc/sysctl.d/90-herd.conf",
	.reserved_ports = "/proc/sys/net/ipv4/ip_local_reserved_ports",
};

static GHashTable *disk_new(void)
{
	return g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
				     (GDestroyNotify)herd_host_file_free);
}

static void disk_put(GHashTable *disk, const char *path, const char *text, unsigned mode, int gid)
{
	herd_host_file *f = g_new0(herd_host_file, 1);
	f->path = g_strdup(path);
	f->text = g_strdup(text);
	f->mode = mode;
	f->gid = gid;
	g_hash_table_replace(disk, f->path, f);
}

/* Carry @plan out on @disk, as the shell would. */
static void disk_apply(GHashTable *disk, const herd_host_plan *plan)
{
	for (guint i = 0; i < plan->write->len; i++) {
		const herd_host_file *f = plan->write->pdata[i];
		disk_put(disk, f->path, f->text, f->mode, f->gid < 0 ? 0 : f->gid);
	}
	if (plan->reserved_ports)
		disk_put(disk, paths.reserved_ports, plan->reserved_ports, 0644, 0);
}

static const herd_host_file *planned(const herd_host_plan *plan, const char *path)
{
	for (guint i = 0; i < plan->write->len; i++) {
		const herd_host_file *f = plan->write->pdata[i];
		if (strcmp(f->path, path) == 0)
			return f;
	}
	return NULL;
}

/* The file the plan writes at @path (it must). */
__attribute__((returns_nonnull)) static const herd_host_file *
plan_file(const herd_host_plan *plan, const char *path)
{
	const herd_host_file *f = planned(plan, path);
	if (!f)
		g_error("the plan does not write %s", path);
	return f;
}

static void test_plan(void)
{
	g_autoptr(GHashTable) disk = disk_new();
	disk_put(disk, paths.qemu_conf, debian_conf, 0600, 0);
	disk_put(disk, paths.reserved_ports, "\n", 0644, 0);
	herd_host_want want = { "CA\n", "CERT\n", "KEY\n", 49152, 49215, 64055 };

	/* Every file paths_to_read names is one the plan may look at. */
	g_autoptr(GPtrArray) to_read = herd_host_paths_to_read(&paths, &want);
	g_assert_cmpuint(to_read->len, ==, 1 + 4 + 5 + 3);

	g_autoptr(herd_host_plan) first = herd_host_plan_make(&paths, &want, disk);
	g_assert_null(first->problem);
	g_assert_cmpuint(first->write->len, ==, 10 + 2);
	for (guint i = 0; i < first->write->len; i++) {
		const herd_host_file *f = first->write->pdata[i];
		g_assert_true(g_ptr_array_find_with_equal_func(to_read, f->path, g_str_equal, NULL));
	}
	g_assert_true(first->libvirt_tls_changed);
	g_assert_true(first->qemu_conf_changed);
	g_assert_cmpstr(first->reserved_ports, ==, "49152-49215");
	const herd_host_file *f = plan_file(first, "/etc/pki/libvirt/private/serverkey.pem");
	g_assert_cmpstr(f->text, ==, "KEY\n");
	g_assert_cmpuint(f->mode, ==, 0600);
	g_assert_cmpuint(f->dir_mode, ==, 0700);
	f = plan_file(first, "/etc/pki/libvirt/clientcert.pem");
	g_assert_cmpstr(f->text, ==, "CERT\n");
	g_assert_cmpuint(f->mode, ==, 0644);
	f = plan_file(first, "/etc/pki/CA/cacert.pem");
	g_assert_cmpstr(f->text, ==, "CA\n");
	f = plan_file(first, "/etc/pki/qemu/ca-cert.pem");
	g_assert_cmpstr(f->text, ==, "CA\n");
	/* QEMU's key: readable by QEMU's group. */
	f = plan_file(first, "/etc/pki/qemu/client-key.pem");
	g_assert_cmpstr(f->text, ==, "KEY\n");
	g_assert_cmpuint(f->mode, ==, 0640);
	g_assert_cmpint(f->gid, ==, 64055);
	f = plan_file(first, paths.qemu_conf);
	g_assert_cmpuint(f->mode, ==, 0600); /* as it was */
	g_assert_nonnull(strstr(f->text, "\nmigration_port_min = 49152\nmigration_port_max = 49215\n"
					 "migrate_tls_x509_cert_dir = \"/etc/pki/qemu\"\n"
					 "migrate_tls_x509_verify = 1\n"));
	g_assert_true(g_str_has_prefix(f->text, debian_conf));
	f = plan_file(first, paths.sysctl_file);
	g_assert_nonnull(strstr(f->text, "ip_local_reserved_ports = 49152-49215\n"));

	/* Done: nothing more to do. */
	disk_apply(disk, first);
	g_autoptr(herd_host_plan) done = herd_host_plan_make(&paths, &want, disk);
	g_assert_cmpuint(done->write->len, ==, 0);
	g_assert_false(done->libvirt_tls_changed);
	g_assert_false(done->qemu_conf_changed);
	g_assert_null(done->reserved_ports);

	/* The range moves: qemu.conf (a restart), the kernel and the record. */
	want.port_min = 50000;
	want.port_max = 50063;
	g_autoptr(herd_host_plan) moved = herd_host_plan_make(&paths, &want, disk);
	g_assert_cmpuint(moved->write->len, ==, 2);
	g_assert_nonnull(planned(moved, paths.qemu_conf));
	g_assert_nonnull(planned(moved, paths.sysctl_file));
	g_assert_true(moved->qemu_conf_changed);
	g_assert_false(moved->libvirt_tls_changed);
	g_assert_cmpstr(moved->reserved_ports, ==, "50000-50063");
	disk_apply(disk, moved);

	/* Someone else reserved a port meanwhile: kept, and recorded. */
	disk_put(disk, paths.reserved_ports, "8080,50000-50063\n", 0644, 0);
	g_autoptr(herd_host_plan) other = herd_host_plan_make(&paths, &want, disk);
	g_assert_null(other->reserved_ports);
	g_assert_cmpuint(other->write->len, ==, 1);
	g_assert_nonnull(strstr(plan_file(other, paths.sysctl_file)->text, "= 8080,50000-50063\n"));
	disk_apply(disk, other);

	/* A key whose mode drifted is written again, but libvirtd's
	 * certificates did not change. */
	disk_put(disk, "/etc/pki/libvirt/private/serverkey.pem", "KEY\n", 0644, 0);
	g_autoptr(herd_host_plan) drift = herd_host_plan_make(&paths, &want, disk);
	g_assert_cmpuint(drift->write->len, ==, 1);
	g_assert_cmpuint(((herd_host_file *)drift->write->pdata[0])->mode, ==, 0600);
	g_assert_false(drift->libvirt_tls_changed);
	disk_apply(disk, drift);

	/* A new certificate: libvirtd loads it; QEMU's files follow. */
	want.cert_pem = "CERT2\n";
	g_autoptr(herd_host_plan) renewed = herd_host_plan_make(&paths, &want, disk);
	g_assert_cmpuint(renewed->write->len, ==, 4);
	g_assert_true(renewed->libvirt_tls_changed);
	g_assert_false(renewed->qemu_conf_changed);
	disk_apply(disk, renewed);
	/* Only a client file differs: libvirtd reads it per connection. */
	disk_put(disk, "/etc/pki/libvirt/clientcert.pem", "OLD\n", 0644, 0);
	g_autoptr(herd_host_plan) client = herd_host_plan_make(&paths, &want, disk);
	g_assert_cmpuint(client->write->len, ==, 1);
	g_assert_false(client->libvirt_tls_changed);
}

static void test_plan_without_certificates(void)
{
	g_autoptr(GHashTable) disk = disk_new();
	disk_put(disk, paths.reserved_ports, "", 0644, 0);
	herd_host_want want = { NULL, NULL, NULL, 49152, 49215, -1 };
	g_autoptr(GPtrArray) to_read = herd_host_paths_to_read(&paths, &want);
	g_assert_cmpuint(to_read->len, ==, 3);
	g_autoptr(herd_host_plan) plan = herd_host_plan_make(&paths, &want, disk);
	/* No certificate directory named (libvirtd would not start without
	 * it); a missing qemu.conf is made. */
	g_assert_cmpuint(plan->write->len, ==, 2);
	const herd_host_file *conf = plan_file(plan, paths.qemu_conf);
	g_assert_cmpstr(conf->text, ==, HERD_CONF_MARK "\nmigration_port_min = 49152\nmigration_port_max = 49215\n");
	g_assert_null(planned(plan, "/etc/pki/qemu/server-key.pem"));

	/* QEMU's keys root's only when no group is given. */
	herd_host_want root = { "CA\n", "CERT\n", "KEY\n", 49152, 49215, -1 };
	g_autoptr(herd_host_plan) p = herd_host_plan_make(&paths, &root, disk);
	const herd_host_file *key = plan_file(p, "/etc/pki/qemu/server-key.pem");
	g_assert_cmpuint(key->mode, ==, 0600);
	g_assert_cmpint(key->gid, ==, -1);

	/* The kernel's list cannot be read: the rest goes on, with the reason. */
	g_hash_table_remove(disk, paths.reserved_ports);
	g_autoptr(herd_host_plan) blind = herd_host_plan_make(&paths, &want, disk);
	g_assert_nonnull(strstr(blind->problem, "cannot be read from /proc/sys/net/ipv4/ip_local_reserved_ports"));
	g_assert_cmpuint(blind->write->len, ==, 1);
	disk_put(disk, paths.reserved_ports, "1,banana", 0644, 0);
	g_autoptr(herd_host_plan) odd = herd_host_plan_make(&paths, &want, disk);
	g_assert_nonnull(strstr(odd->problem, "'banana' is not a port"));
	g_assert_null(odd->reserved_ports);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/host-config/portset", test_portset);
	g_test_add_func("/host-config/reserved-ports", test_reserved_ports);
	g_test_add_func("/host-config/sysctl-file", test_sysctl_file);
	g_test_add_func("/host-config/conf-keys", test_conf_keys);
	g_test_add_func("/host-config/plan", test_plan);
	g_test_add_func("/host-config/plan-without-certificates", test_plan_without_certificates);
	return g_test_run();
}
