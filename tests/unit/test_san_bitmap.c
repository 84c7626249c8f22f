/*
 * The eSAN dirty bitmap on an in-memory "file" that records every write and
 * sync: marking persists exactly the touched pages before it returns (also
 * when another caller set the bits first), an I/O error is passed up, dirty
 * runs are found and clipped, clearing is persisted by flush, and a file
 * read back holds the same bits.
 */
#include "san/bitmap.h"

#include <errno.h>
#include <string.h>

typedef struct {
	GByteArray *file;
	guint writes;          /* pages written (header excluded) */
	guint syncs;
	guint writes_since_sync;
	int fail;              /* -errno to return from write */
	GMutex lock;
} memfile;

static int mem_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	memfile *f = ctx;
	if (f->fail)
		return f->fail;
	g_mutex_lock(&f->lock);
	if (f->file->len < off + len)
		g_byte_array_set_size(f->file, (guint)(off + len));
	memcpy(f->file->data + off, buf, len);
	if (off >= SAN_BITMAP_HEADER)
		f->writes++;
	f->writes_since_sync++;
	g_mutex_unlock(&f->lock);
	return 0;
}

static int mem_sync(void *ctx)
{
	memfile *f = ctx;
	g_mutex_lock(&f->lock);
	f->syncs++;
	f->writes_since_sync = 0;
	g_mutex_unlock(&f->lock);
	return 0;
}

static memfile *memfile_new(void)
{
	memfile *f = g_new0(memfile, 1);
	f->file = g_byte_array_new();
	g_mutex_init(&f->lock);
	return f;
}

static void memfile_free(memfile *f)
{
	g_byte_array_unref(f->file);
	g_mutex_clear(&f->lock);
	g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(memfile, memfile_free)

static san_bitmap *bitmap_on(memfile *f, uint64_t size)
{
	san_bitmap_io io = { .write = mem_write, .sync = mem_sync, .ctx = f };
	return san_bitmap_new(size, &io);
}

#define MiB (1ull << 20)
#define PAGE_SPAN ((uint64_t)SAN_BITMAP_PAGE * 8 * SAN_BITMAP_GRAIN)   /* 128 MiB */

static void test_mark_persists_touched_pages(void)
{
	g_autoptr(memfile) f = memfile_new();
	g_autoptr(san_bitmap) b = bitmap_on(f, 3 * PAGE_SPAN);
	g_assert_cmpint(san_bitmap_write_all(b), ==, 0);
	g_assert_cmpuint(f->file->len, ==, SAN_BITMAP_HEADER + 3 * SAN_BITMAP_PAGE);
	f->writes = f->syncs = 0;

	/* one byte: one bit, its page written and synced */
	g_assert_cmpint(san_bitmap_mark(b, 5000, 1), ==, 0);
	g_assert_cmpuint(f->writes, ==, 1);
	g_assert_cmpuint(f->syncs, ==, 1);
	g_assert_cmpuint(f->writes_since_sync, ==, 0);
	g_assert_cmpuint(san_bitmap_count(b), ==, 1);
	g_assert_true(san_bitmap_test(b, 4096, 4096));
	g_assert_false(san_bitmap_test(b, 0, 4096));

	/* the same bits again: already stable, no I/O */
	g_assert_cmpint(san_bitmap_mark(b, 4096, 4096), ==, 0);
	g_assert_cmpuint(f->writes, ==, 1);
	g_assert_cmpuint(f->syncs, ==, 1);

	/* a write across a page boundary: both pages, one sync */
	g_assert_cmpint(san_bitmap_mark(b, PAGE_SPAN - 4096, 8192), ==, 0);
	g_assert_cmpuint(f->writes, ==, 3);
	g_assert_cmpuint(f->syncs, ==, 2);
	g_assert_cmpuint(san_bitmap_count(b), ==, 3);
	g_assert_cmpuint(san_bitmap_dirty_bytes(b), ==, 3 * 4096);
}

static void test_io_error(void)
{
	g_autoptr(memfile) f = memfile_new();
	g_autoptr(san_bitmap) b = bitmap_on(f, 10 * MiB);
	f->fail = -ENOSPC;
	g_assert_cmpint(san_bitmap_mark(b, 0, 4096), ==, -ENOSPC);
	/* the bit stays set in memory and is retried: not stable yet */
	f->fail = 0;
	g_assert_cmpint(san_bitmap_mark(b, 0, 4096), ==, 0);
	g_assert_cmpuint(f->writes, ==, 1);
}

static void test_runs(void)
{
	g_autoptr(memfile) f = memfile_new();
	/* a size that is not a multiple of the grain: the last bit is partial */
	uint64_t size = 10 * MiB + 100;
	g_autoptr(san_bitmap) b = bitmap_on(f, size);
	uint64_t off, len;
	g_assert_false(san_bitmap_next_dirty(b, 0, MiB, &off, &len));
	san_bitmap_mark(b, 8192, 3 * 4096);
	san_bitmap_mark(b, 2 * MiB, 2 * MiB);
	san_bitmap_mark(b, size - 1, 1);

	g_assert_true(san_bitmap_next_dirty(b, 0, MiB, &off, &len));
	g_assert_cmpuint(off, ==, 8192);
	g_assert_cmpuint(len, ==, 3 * 4096);
	/* a long run comes in pieces of at most max_len */
	g_assert_true(san_bitmap_next_dirty(b, off + len, MiB, &off, &len));
	g_assert_cmpuint(off, ==, 2 * MiB);
	g_assert_cmpuint(len, ==, MiB);
	g_assert_true(san_bitmap_next_dirty(b, off + len, MiB, &off, &len));
	g_assert_cmpuint(off, ==, 3 * MiB);
	g_assert_cmpuint(len, ==, MiB);
	/* the last, partial grain is clipped to the volume */
	g_assert_true(san_bitmap_next_dirty(b, off + len, MiB, &off, &len));
	g_assert_cmpuint(off, ==, 10 * MiB);
	g_assert_cmpuint(len, ==, 100);
	g_assert_false(san_bitmap_next_dirty(b, off + len, MiB, &off, &len));
	g_assert_cmpuint(san_bitmap_dirty_bytes(b), ==, 3 * 4096 + 2 * MiB + 100);

	/* clear one run: gone from the runs and the count */
	san_bitmap_clear(b, 2 * MiB, 2 * MiB);
	g_assert_true(san_bitmap_next_dirty(b, 8192 + 3 * 4096, MiB, &off, &len));
	g_assert_cmpuint(off, ==, 10 * MiB);
	g_assert_cmpuint(san_bitmap_count(b), ==, 4);
	san_bitmap_clear_all(b);
	g_assert_cmpuint(san_bitmap_count(b), ==, 0);
}

/* Set and clear word by word: random ranges across word and page edges
 * against a plain array of bits, count and runs included. */
static void test_ranges_model(void)
{
	g_autoptr(memfile) f = memfile_new();
	uint64_t nbits = 3 * 64 * 1024 + 77;   /* pages and words, a partial last word */
	uint64_t size = nbits * SAN_BITMAP_GRAIN;
	g_autoptr(san_bitmap) b = bitmap_on(f, size);
	g_autofree bool *model = g_new0(bool, nbits);
	GRand *rand = g_rand_new_with_seed(11);
	for (int i = 0; i < 2000; i++) {
		uint64_t first = (uint64_t)g_rand_int_range(rand, 0, (gint32)nbits);
		uint64_t n = 1 + (uint64_t)g_rand_int_range(rand, 0, i % 7 == 0 ? 5000 : 200);
		n = MIN(n, nbits - first);
		bool set = g_rand_boolean(rand);
		if (set)
			san_bitmap_set(b, first * SAN_BITMAP_GRAIN, n * SAN_BITMAP_GRAIN);
		else
			san_bitmap_clear(b, first * SAN_BITMAP_GRAIN, n * SAN_BITMAP_GRAIN);
		for (uint64_t k = first; k < first + n; k++)
			model[k] = set;
	}
	uint64_t want = 0;
	for (uint64_t k = 0; k < nbits; k++)
		want += model[k];
	g_assert_cmpuint(san_bitmap_count(b), ==, want);
	/* the runs hold exactly the model's bits */
	uint64_t off = 0, len, seen = 0;
	while (san_bitmap_next_dirty(b, off, size, &off, &len)) {
		for (uint64_t k = off / SAN_BITMAP_GRAIN; k < (off + len) / SAN_BITMAP_GRAIN; k++)
			g_assert_true(model[k]);
		g_assert_true(off == 0 || !model[off / SAN_BITMAP_GRAIN - 1]);
		seen += len / SAN_BITMAP_GRAIN;
		off += len;
	}
	g_assert_cmpuint(seen, ==, want);
	for (uint64_t k = 0; k < nbits; k++)
		g_assert_true(san_bitmap_test(b, k * SAN_BITMAP_GRAIN, SAN_BITMAP_GRAIN) == model[k]);
	san_bitmap_clear_all(b);
	g_assert_cmpuint(san_bitmap_count(b), ==, 0);
	g_assert_false(san_bitmap_next_dirty(b, 0, size, &off, &len));
	g_rand_free(rand);
}

/* What is on "disk" after mark/clear/flush is what a new bitmap loads. */
static void test_reload(void)
{
	g_autoptr(memfile) f = memfile_new();
	g_autoptr(GError) error = NULL;
	uint64_t size = 2 * PAGE_SPAN;
	{
		g_autoptr(san_bitmap) b = bitmap_on(f, size);
		g_assert_cmpint(san_bitmap_write_all(b), ==, 0);
		san_bitmap_mark(b, 0, 64 * 4096);
		san_bitmap_mark(b, PAGE_SPAN + MiB, 4096);
		san_bitmap_clear(b, 0, 32 * 4096);
		/* clearing alone writes nothing… */
		guint w = f->writes;
		g_assert_cmpuint(f->writes, ==, w);
		/* …until flushed */
		g_assert_cmpint(san_bitmap_flush(b), ==, 0);
		g_assert_cmpuint(f->writes, ==, w + 1);
	}
	g_autoptr(san_bitmap) b2 = bitmap_on(f, size);
	g_assert_true(san_bitmap_load(b2, f->file->data, f->file->len, &error));
	g_assert_cmpuint(san_bitmap_count(b2), ==, 33);
	g_assert_false(san_bitmap_test(b2, 0, 32 * 4096));
	g_assert_true(san_bitmap_test(b2, PAGE_SPAN + MiB, 1));

	/* a file for another size, or no bitmap at all, is refused */
	g_autoptr(san_bitmap) other = bitmap_on(f, 3 * PAGE_SPAN);
	g_assert_false(san_bitmap_load(other, f->file->data, f->file->len, &error));
	g_assert_nonnull(strstr(error->message, "does not match"));
	g_clear_error(&error);
	uint8_t junk[SAN_BITMAP_HEADER] = { 0 };
	g_assert_false(san_bitmap_load(other, junk, sizeof junk, &error));
	g_assert_nonnull(strstr(error->message, "no bitmap header"));

	/* grow: old bits kept, new region clean */
	san_bitmap_resize(b2, 3 * PAGE_SPAN);
	g_assert_cmpuint(san_bitmap_count(b2), ==, 33);
	g_assert_false(san_bitmap_test(b2, 2 * PAGE_SPAN, PAGE_SPAN));
	g_assert_cmpint(san_bitmap_mark_all(b2), ==, 0);
	g_assert_cmpuint(san_bitmap_dirty_bytes(b2), ==, 3 * PAGE_SPAN);
}

/* Many threads marking bits of one page: each returns only once its bit is
 * in a synced copy of the page. */
typedef struct {
	san_bitmap *b;
	memfile *f;
	guint first;
	gboolean ok;
} marker;

static gpointer mark_many(gpointer p)
{
	marker *m = p;
	m->ok = TRUE;
	for (guint i = 0; i < 200; i++) {
		uint64_t bit = m->first + i * 4;
		if (san_bitmap_mark(m->b, bit * SAN_BITMAP_GRAIN, 1) != 0)
			m->ok = FALSE;
		g_mutex_lock(&m->f->lock);
		/* the page as last written: synced since? check the bit is in it */
		const uint8_t *page = m->f->file->data + SAN_BITMAP_HEADER;
		bool in_file = (page[bit / 8] >> (bit % 8)) & 1;
		g_mutex_unlock(&m->f->lock);
		if (!in_file)
			m->ok = FALSE;
	}
	return NULL;
}

static void test_threads(void)
{
	g_autoptr(memfile) f = memfile_new();
	g_autoptr(san_bitmap) b = bitmap_on(f, PAGE_SPAN);
	g_assert_cmpint(san_bitmap_write_all(b), ==, 0);
	marker m[4];
	GThread *t[4];
	for (guint i = 0; i < 4; i++) {
		m[i] = (marker){ .b = b, .f = f, .first = i };
		t[i] = g_thread_new("marker", mark_many, &m[i]);
	}
	for (guint i = 0; i < 4; i++) {
		g_thread_join(t[i]);
		g_assert_true(m[i].ok);
	}
	g_assert_cmpuint(san_bitmap_count(b), ==, 800);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/san_bitmap/mark-persists", test_mark_persists_touched_pages);
	g_test_add_func("/san_bitmap/io-error", test_io_error);
	g_test_add_func("/san_bitmap/runs", test_runs);
	g_test_add_func("/san_bitmap/ranges-model", test_ranges_model);
	g_test_add_func("/san_bitmap/reload", test_reload);
	g_test_add_func("/san_bitmap/threads", test_threads);
	return g_test_run();
}
