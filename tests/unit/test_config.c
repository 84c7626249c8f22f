/* herdd's config file and command-line overrides. */
#include "daemon/config.h"
#include "common/error.h"

#include <glib/gstdio.h>
#include <string.h>

static char *write_tmp(const char *content)
{
	char *path = NULL;
	int fd = g_file_open_tmp("herd-conf-XXXXXX", &path, NULL);
	g_assert_cmpint(fd, >=, 0);
	g_assert_true(g_file_set_contents(path, content, -1, NULL));
	close(fd);
	return path;
}

static herdd_config *load(GError **error, ...)
{
	va_list ap;
	GPtrArray *args = g_ptr_array_new();
	g_ptr_array_add(args, "herdd");
	va_start(ap, error);
	for (char *a = va_arg(ap, char *); a; a = va_arg(ap, char *))
		g_ptr_array_add(args, a);
	va_end(ap);
	int argc = (int)args->len;
	g_ptr_array_add(args, NULL);
	char **argv = (char **)args->pdata;
	herdd_config *cfg = herdd_config_load(&argc, &argv, error);
	g_ptr_array_free(args, TRUE);
	return cfg;
}

static void test_file_and_override(void)
{
	g_autofree char *path = write_tmp("[node]\nname=n7\n[api]\nport=9001\nsocket=/tmp/x.sock\n");
	g_autoptr(GError) error = NULL;
	herdd_config *cfg = load(&error, "--config", path, "--port", "9002", NULL);
	g_assert_no_error(error);
	g_assert_cmpstr(cfg->node_name, ==, "n7");
	g_assert_cmpint(cfg->api_port, ==, 9002);       /* command line wins */
	g_assert_cmpstr(cfg->socket_path, ==, "/tmp/x.sock");
	g_assert_cmpstr(cfg->state_dir, ==, "/var/lib/herd");
	g_assert_cmpstr(cfg->config_file, ==, path);
	/* Debian's places for live migration's files. */
	g_assert_cmpstr(cfg->qemu_conf, ==, "/etc/libvirt/qemu.conf");
	g_assert_cmpstr(cfg->libvirt_ca_file, ==, "/etc/pki/CA/cacert.pem");
	g_assert_cmpstr(cfg->libvirt_pki_dir, ==, "/etc/pki/libvirt");
	g_assert_cmpstr(cfg->qemu_pki_dir, ==, "/etc/pki/qemu");
	g_assert_cmpstr(cfg->qemu_group, ==, "libvirt-qemu");
	g_assert_cmpstr(cfg->libvirt_tls_socket, ==, "libvirtd-tls.socket");
	herdd_config_free(cfg);
	g_unlink(path);
}

static void expect_error(const char *content, const char *needle, ...)
{
	g_autofree char *path = write_tmp(content);
	g_autoptr(GError) error = NULL;
	herdd_config *cfg = load(&error, "--config", path, NULL);
	g_assert_null(cfg);
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
	g_unlink(path);
}

static void test_bad_input(void)
{
	expect_error("[api]\nprot=1\n", "[api] prot: unknown setting");
	expect_error("[api]\nport=70000\n", "not a number from 0 to 65535");
	expect_error("[api]\nport=12x\n", "'12x'");
	expect_error("[daemon]\nlog_level=loud\n", "Log level 'loud'");
	expect_error("[daemon]\nstate_dir=relative/dir\n", "absolute");
	expect_error("not a key file", "Cannot read config file");
	expect_error("[libvirt]\nqemu_conf=qemu.conf\n",
		     "[libvirt] qemu_conf 'qemu.conf' must be an absolute path");
	expect_error("[libvirt]\nqemu_pki_dir=/etc/pki/\"qemu\"\n", "qemu_pki_dir '/etc/pki/\"qemu\"'");
	expect_error("[libvirt]\ntls_socket=libvirtd-tls.socket --now\n",
		     "tls_socket 'libvirtd-tls.socket --now' is not a unit name");
	expect_error("[libvirt]\nqemu_group=kvm;true\n", "qemu_group 'kvm;true' is not a group name");

	g_autoptr(GError) error = NULL;
	g_assert_null(load(&error, "--config", "/nonexistent/herd.conf", NULL));
	g_assert_nonnull(strstr(error->message, "/nonexistent/herd.conf"));
	g_clear_error(&error);
	g_assert_null(load(&error, "--port", "-1", NULL));
	g_assert_nonnull(strstr(error->message, "--port"));
	g_clear_error(&error);
	g_assert_null(load(&error, "--no-such-option", NULL));
	g_clear_error(&error);
	g_assert_null(load(&error, "stray", NULL));
	g_assert_nonnull(strstr(error->message, "stray"));
}

/* [libvirt]: herd may be told to leave libvirtd's listener and QEMU's
 * group alone, and where the files are. */
static void test_libvirt_section(void)
{
	g_autofree char *path = write_tmp("[libvirt]\ntls_socket=\nqemu_group=\n"
					  "qemu_conf=/srv/qemu.conf\nsysctl_file=/etc/herd/ports.conf\n");
	g_autoptr(GError) error = NULL;
	herdd_config *cfg = load(&error, "--config", path, NULL);
	g_assert_no_error(error);
	g_assert_cmpstr(cfg->libvirt_tls_socket, ==, "");
	g_assert_cmpstr(cfg->qemu_group, ==, "");
	g_assert_cmpstr(cfg->qemu_conf, ==, "/srv/qemu.conf");
	g_assert_cmpstr(cfg->sysctl_file, ==, "/etc/herd/ports.conf");
	herdd_config_free(cfg);
	g_unlink(path);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/config/file-and-override", test_file_and_override);
	g_test_add_func("/config/bad-input", test_bad_input);
	g_test_add_func("/config/libvirt-section", test_libvirt_section);
	return g_test_run();
}
