/* Password hashes for API users. */
#include "common/error.h"
#include "common/password.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void expect_refused(const char *password, const char *needle)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *h = herd_password_hash(password, &error);
	g_assert_null(h);
	g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	if (!strstr(error->message, needle))
		g_error("'%s' does not mention '%s'", error->message, needle);
}

static void test_hash_verify(void)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *h = herd_password_hash("correct horse", &error);
	g_assert_no_error(error);
	g_assert_nonnull(h);
	g_assert_true(g_str_has_prefix(h, "$y$"));  /* yescrypt */
	g_assert_null(strstr(h, "correct"));
	g_assert_true(herd_password_verify("correct horse", h));
	g_assert_false(herd_password_verify("correct horsE", h));
	g_assert_false(herd_password_verify("correct hors", h));
	g_assert_false(herd_password_verify("correct horse ", h));
	g_assert_false(herd_password_verify("", h));
	g_assert_false(herd_password_verify(NULL, h));

	/* salted: the same password hashes differently, both verify */
	g_autofree char *h2 = herd_password_hash("correct horse", NULL);
	g_assert_cmpstr(h, !=, h2);
	g_assert_true(herd_password_verify("correct horse", h2));

	/* exactly the minimum, counted in characters, not bytes */
	g_autofree char *min = herd_password_hash("12345678", NULL);
	g_assert_nonnull(min);
	g_assert_true(herd_password_verify("12345678", min));
	g_autofree char *wide = herd_password_hash("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", NULL);
	g_assert_nonnull(wide);
	g_assert_true(herd_password_verify("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", wide));
}

static void test_refused(void)
{
	expect_refused(NULL, "at least 8 characters");
	expect_refused("", "at least 8 characters");
	expect_refused("1234567", "at least 8 characters");
	/* 7 characters in 14 bytes */
	expect_refused("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "at least 8");
	expect_refused("12345678\n", "line break");
	expect_refused("1234\n5678", "line break");
}

/* @s copied to the very end of a page followed by an inaccessible page, so
 * that reading past its NUL faults even inside uninstrumented libraries. */
static char *guarded_copy(const char *s, void **map, size_t *map_len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = strlen(s) + 1;
	*map_len = 2 * page;
	char *base = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g_assert_true(base != MAP_FAILED);
	g_assert_cmpint(mprotect(base + page, page, PROT_NONE), ==, 0);
	*map = base;
	return memcpy(base + page - n, s, n);
}

/* Invalid UTF-8 must not make the length check read past the string
 * (a lead byte at the end announces bytes that are not there). */
static void test_invalid_utf8(void)
{
	/* in a child, so that a fault fails this test only */
	if (!g_test_subprocess()) {
		g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
		g_test_trap_assert_passed();
		return;
	}
	void *map;
	size_t map_len;
	char *pw = guarded_copy("abcdefg\xf0", &map, &map_len);
	g_autoptr(GError) error = NULL;
	g_autofree char *h = herd_password_hash(pw, &error);
	/* Either refused or hashed; what matters is no overread (ASan). */
	if (h)
		g_assert_true(herd_password_verify(pw, h));
	else
		g_assert_error(error, HERD_ERROR, HERD_ERR_INVALID);
	munmap(map, map_len);
}

static void test_bad_hashes(void)
{
	g_autofree char *h = herd_password_hash("correct horse", NULL);
	g_assert_false(herd_password_verify("correct horse", NULL));
	g_assert_false(herd_password_verify("correct horse", ""));
	g_assert_false(herd_password_verify("correct horse", "garbage"));
	g_assert_false(herd_password_verify("correct horse", "*"));
	g_assert_false(herd_password_verify("correct horse", "*0"));
	g_assert_false(herd_password_verify("correct horse", "*1"));
	g_assert_false(herd_password_verify("correct horse", "$y$"));
	g_assert_false(herd_password_verify("correct horse", "$y$j9T$"));
	/* a truncated or altered hash */
	g_autofree char *cut = g_strndup(h, strlen(h) - 1);
	g_assert_false(herd_password_verify("correct horse", cut));
	g_autofree char *altered = g_strdup(h);
	altered[strlen(altered) - 1] = altered[strlen(altered) - 1] == 'A' ? 'B' : 'A';
	g_assert_false(herd_password_verify("correct horse", altered));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/password/hash-verify", test_hash_verify);
	g_test_add_func("/password/refused", test_refused);
	g_test_add_func("/password/invalid-utf8", test_invalid_utf8);
	g_test_add_func("/password/bad-hashes", test_bad_hashes);
	return g_test_run();
}
