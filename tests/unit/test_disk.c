/*
 * Sizes as operators write them for disks: herd_size_parse() (plain byte
 * counts too), a new disk's size (whole sectors, the limit) and a disk's
 * growth (a new size or +SIZE; never smaller, never the same).
 */
#include "common/error.h"
#include "common/size.h"
#include "store/disk.h"

#include <glib.h>
#include <string.h>

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)

static void test_size_parse(void)
{
	static const struct {
		const char *in;
		uint64_t out;
	} good[] = {
		{ "4096", 4096 }, { "1", 1 }, { "20G", 20 * GiB }, { "20g", 20 * GiB }, { "20GiB", 20 * GiB },
		{ "20GB", 20 * GiB }, { "512M", 512 * MiB }, { "1.5G", 3 * GiB / 2 }, { "1T", 1024 * GiB },
		{ "64K", 65536 },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(good); i++) {
		uint64_t v = 0;
		g_autoptr(GError) err = NULL;
		g_assert_true(herd_size_parse(good[i].in, UINT64_MAX - 1, "size", &v, &err));
		g_assert_no_error(err);
		g_assert_cmpuint(v, ==, good[i].out);
	}
	static const char *const bad[] = { "", "G", "lots", "-1G", "1.5", "1.", "20X", "1T0", " 1G", "1G ", "0x10", NULL };
	for (unsigned i = 0; bad[i]; i++) {
		uint64_t v = 7;
		g_autoptr(GError) err = NULL;
		g_assert_false(herd_size_parse(bad[i], UINT64_MAX - 1, "disk size", &v, &err));
		g_assert_error(err, HERD_ERROR, HERD_ERR_INVALID);
		g_assert_nonnull(strstr(err->message, "is not a size"));
		g_assert_cmpuint(v, ==, 7);
	}
}

static void expect_refused(bool ok, GError *err, const char *message)
{
	g_assert_false(ok);
	g_assert_error(err, HERD_ERROR, HERD_ERR_INVALID);
	const char *got = err ? err->message : "";
	if (!strstr(got, message))
		g_error("'%s' does not say '%s'", got, message);
}

static void test_disk_size(void)
{
	uint64_t v = 0;
	g_autoptr(GError) err = NULL;
	g_assert_true(store_disk_size_parse("20G", &v, &err));
	g_assert_cmpuint(v, ==, 20 * GiB);
	g_assert_true(store_disk_size_parse("64T", &v, &err));
	g_assert_cmpuint(v, ==, STORE_DISK_SIZE_MAX);
	g_assert_true(store_disk_size_parse("1024", &v, &err));
	g_assert_cmpuint(v, ==, 1024);
	static const struct {
		const char *in, *message;
	} bad[] = {
		{ "0", "must be more than nothing" },
		{ "1000", "whole number of 512-byte sectors" },
		{ "1.3K", "whole number of 512-byte sectors" },
		{ "65T", "too large: at most 64 TiB" },
		{ "1P", "too large" },
		{ "abc", "is not a size" },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) e = NULL;
		v = 7;
		bool ok = store_disk_size_parse(bad[i].in, &v, &e);
		expect_refused(ok, e, bad[i].message);
		g_assert_cmpuint(v, ==, 7);
	}
}

static void test_disk_grow(void)
{
	uint64_t v = 0;
	g_autoptr(GError) err = NULL;
	g_assert_true(store_disk_grow_parse("d1", "30G", 20 * GiB, &v, &err));
	g_assert_cmpuint(v, ==, 30 * GiB);
	g_assert_true(store_disk_grow_parse("d1", "+10G", 20 * GiB, &v, &err));
	g_assert_cmpuint(v, ==, 30 * GiB);
	g_assert_true(store_disk_grow_parse("d1", "+512", 20 * GiB, &v, &err));
	g_assert_cmpuint(v, ==, 20 * GiB + 512);
	/* up to the limit exactly */
	g_assert_true(store_disk_grow_parse("d1", "+1T", STORE_DISK_SIZE_MAX - 1024 * GiB, &v, &err));
	g_assert_cmpuint(v, ==, STORE_DISK_SIZE_MAX);
	g_assert_no_error(err);
	static const struct {
		const char *in, *message;
	} bad[] = {
		{ "10G", "Disk d1 is 20 GiB; herd grows disks but never shrinks them (10 GiB asked)" },
		{ "20G", "Disk d1 is 20 GiB already." },
		{ "+0", "must be more than nothing" },
		{ "+64T", "Disk d1 cannot grow by 64T: a disk has at most 64 TiB." },
		{ "65T", "too large" },
		{ "+", "is not a size" },
		{ "++1G", "is not a size" },
		{ "-1G", "is not a size" },
		{ "+1000", "512-byte sectors" },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) e = NULL;
		v = 7;
		bool ok = store_disk_grow_parse("d1", bad[i].in, 20 * GiB, &v, &e);
		expect_refused(ok, e, bad[i].message);
		g_assert_cmpuint(v, ==, 7);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/size/parse", test_size_parse);
	g_test_add_func("/disk/size", test_disk_size);
	g_test_add_func("/disk/grow", test_disk_grow);
	return g_test_run();
}
