/* The catch-up log (store/change_log.h): what it keeps as it comes round
 * its ring, what it sends, and what starts it anew. */
#include "store/change_log.h"
#include "store/wire.h"

#include <string.h>

/* Change @i's command: a text of a length that varies with @i, so that
 * records of many sizes meet the ring's end. */
static char *command(uint64_t i)
{
	GString *s = g_string_new(NULL);
	g_string_append_printf(s, "{\"op\":\"update\",\"n\":%" G_GUINT64_FORMAT ",\"pad\":\"", i);
	/* Random-looking, so that deflate does not shrink it to nothing. */
	guint32 x = (guint32)i * 2654435761u + 1;
	for (unsigned k = 0; k < 20 + (i * 37) % 400; k++) {
		x = x * 1103515245u + 12345u;
		g_string_append_c(s, "abcdefghijklmnopqrstuvwxyz0123456789"[(x >> 16) % 36]);
	}
	g_string_append(s, "\"}");
	return g_string_free(s, FALSE);
}

static void prev_of(uint64_t i, uint8_t prev[32])
{
	memset(prev, (int)(i & 0xff), 32);
	herd_put_le64(prev, i - 1);
}

static void add(change_log *l, uint64_t gen, uint64_t i)
{
	g_autofree char *cmd = command(i);
	uint8_t prev[32];
	prev_of(i, prev);
	change_log_add(l, gen, i, prev, (const uint8_t *)cmd, strlen(cmd));
}

/* The oldest change kept, given that @newest is the newest; 0: none. */
static uint64_t oldest_kept(const change_log *l, uint64_t newest)
{
	uint64_t oldest = 0;
	for (uint64_t i = newest; i >= 1; i--) {
		uint8_t prev[32];
		prev_of(i, prev);
		if (change_log_after(l, i - 1, prev) != i)
			break;
		oldest = i;
	}
	return oldest;
}

/* What @l sends from @from on is changes @from..@newest, as added. */
static void check_encoded(const change_log *l, uint64_t gen, uint64_t from, uint64_t newest)
{
	unsigned n = 0;
	g_autoptr(GByteArray) out = change_log_encode(l, from, &n);
	g_assert_cmpuint(n, ==, newest - from + 1);
	size_t at = 0;
	for (uint64_t i = from; i <= newest; i++) {
		g_assert_cmpuint(at + 20, <=, out->len);
		g_assert_cmpuint(herd_get_le64(out->data + at), ==, gen);
		g_assert_cmpuint(herd_get_le64(out->data + at + 8), ==, i);
		uint32_t len = herd_get_le32(out->data + at + 16);
		g_autofree char *want = command(i);
		g_assert_cmpuint(len, ==, strlen(want));
		g_assert_true(memcmp(out->data + at + 20, want, len) == 0);
		at += 20 + len;
	}
	g_assert_cmpuint(at, ==, out->len);
}

static void test_ring(void)
{
	/* 8 kB: a few dozen records, so the ring comes round many times. */
	change_log *l = change_log_new(1000, 8192);
	uint64_t last_oldest = 0;
	for (uint64_t i = 1; i <= 2000; i++) {
		add(l, 3, i);
		uint64_t oldest = oldest_kept(l, i);
		/* The newest is always kept, the oldest only ever moves on, and
		 * nothing before the oldest is answered. */
		g_assert_cmpuint(oldest, >=, 1);
		g_assert_cmpuint(oldest, >=, last_oldest);
		last_oldest = oldest;
		if (oldest > 1) {
			uint8_t prev[32];
			prev_of(oldest - 1, prev);
			g_assert_cmpuint(change_log_after(l, oldest - 2, prev), ==, 0);
		}
		/* At 8 kB, with records of ~100-400 bytes, more than one fits. */
		if (i > 100)
			g_assert_cmpuint(i - oldest + 1, >=, 10);
		if (i % 97 == 0 || i < 50)
			check_encoded(l, 3, oldest, i);
	}
	/* A position on another history (a different hash) is not followed. */
	uint8_t other[32] = { 0 };
	g_assert_cmpuint(change_log_after(l, 1999, other), ==, 0);
	change_log_free(l);
}

static void test_bounds(void)
{
	/* At most 5 entries, however small. */
	change_log *l = change_log_new(5, 1 << 20);
	for (uint64_t i = 1; i <= 12; i++)
		add(l, 1, i);
	g_assert_cmpuint(oldest_kept(l, 12), ==, 8);
	check_encoded(l, 1, 8, 12);
	change_log_set_max(l, 2);
	g_assert_cmpuint(oldest_kept(l, 12), ==, 11);
	add(l, 1, 13);
	g_assert_cmpuint(oldest_kept(l, 13), ==, 12);
	/* A gap starts the log anew. */
	add(l, 1, 20);
	g_assert_cmpuint(oldest_kept(l, 20), ==, 20);
	check_encoded(l, 1, 20, 20);
	/* Nothing from before the oldest, nothing beyond the newest. */
	unsigned n = 7;
	g_autoptr(GByteArray) none = change_log_encode(l, 3, &n);
	g_assert_cmpuint(n, ==, 0);
	g_assert_cmpuint(none->len, ==, 0);
	change_log_clear(l);
	g_assert_cmpuint(oldest_kept(l, 20), ==, 0);
	change_log_set_max(l, 0);
	add(l, 1, 21);
	g_assert_cmpuint(oldest_kept(l, 21), ==, 0);
	change_log_free(l);

	/* A change larger than the ring is not kept, and empties it. */
	l = change_log_new(100, 256);
	add(l, 1, 1);   /* ~100 bytes packed: kept */
	g_assert_cmpuint(oldest_kept(l, 1), ==, 1);
	GString *s = g_string_new("{\"pad\":\"");
	for (unsigned k = 0; k < 600; k++)
		g_string_append_printf(s, "%u,", k * 7919u);
	g_string_append(s, "\"}");
	uint8_t prev[32];
	prev_of(2, prev);
	change_log_add(l, 1, 2, prev, (const uint8_t *)s->str, s->len);
	g_string_free(s, TRUE);
	g_assert_cmpuint(oldest_kept(l, 2), ==, 0);
	/* The next one that fits is kept, alone. */
	add(l, 1, 3);
	g_assert_cmpuint(oldest_kept(l, 3), ==, 3);
	change_log_free(l);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/change-log/ring", test_ring);
	g_test_add_func("/change-log/bounds", test_bounds);
	return g_test_run();
}
