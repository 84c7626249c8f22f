/*
 * The eSAN activity log's core: a write to an inactive extent needs a
 * transaction first, one to an active extent none; transactions group the
 * writes that wait together; the bounded set evicts the least recently used
 * clean extent (and asks for a flush, or to wait, when none is clean);
 * quiet clean extents are dropped lazily; the block reads back, a torn
 * newest block falls back to the one before, and a log that cannot be
 * trusted (missing, torn, foreign, an older session's) is refused with a
 * reason.  A random run checks the promise itself: at any crash, what the
 * file says is active covers every extent where a write was in flight or
 * not yet flushed on both replicas.
 */
#include "san/activity_log.h"

#include "san/block.h"

#include <string.h>

#define EXT (4ull << 20)
#define SEC 1000000

/* A log file in memory: two blocks. */
typedef struct {
	uint8_t data[SAN_AL_BLOCKS * SAN_AL_BLOCK];
} alfile;

/* Persist the next transaction into @f (as the shell does); its number. */
static uint64_t persist(san_al *al, alfile *f)
{
	uint8_t block[SAN_AL_BLOCK];
	uint64_t seq, off;
	san_al_encode_next(al, block, &seq, &off);
	memcpy(f->data + off, block, SAN_AL_BLOCK);
	san_al_persisted(al, seq);
	return seq;
}

/* A log of session @id whose first (empty) transaction is in @f. */
static san_al *new_log(unsigned capacity, int64_t quiet_us, uint64_t id, alfile *f)
{
	san_al *al = san_al_new(capacity, EXT, quiet_us);
	san_al_reset(al, id);
	persist(al, f);
	return al;
}

/* The extents the file says are active (session @id); false if untrusted. */
static bool recovered(const alfile *f, uint64_t id, GArray *ext, GError **error)
{
	uint64_t extent = 0;
	bool ok = san_al_read(f->data, sizeof f->data, id, ext, &extent, error);
	if (ok)
		g_assert_cmpuint(extent, ==, EXT);
	return ok;
}

static bool holds(GArray *ext, uint32_t e)
{
	for (guint i = 0; i < ext->len; i++)
		if (g_array_index(ext, uint32_t, i) == e)
			return true;
	return false;
}

/* @f (session @id) is not to be trusted, and the reason says @why. */
static void assert_untrusted(const alfile *f, size_t len, uint64_t id, const char *why)
{
	g_autoptr(GArray) ext = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_autoptr(GError) error = NULL;
	uint64_t extent = 0;
	g_assert_false(san_al_read(f->data, len, id, ext, &extent, &error));
	if (!strstr(error->message, why))
		g_error("'%s' does not say '%s'", error->message, why);
}

static void test_mark_only_new_extents(void)
{
	alfile f = { 0 };
	uint64_t need = 0;
	g_autoptr(san_al) al = new_log(8, 5 * SEC, 0xA1, &f);

	/* a new extent: a transaction first */
	g_assert_cmpint(san_al_begin(al, 100, 4096, 0, &need), ==, SAN_AL_PERSIST);
	g_assert_cmpuint(need, ==, 2);
	/* a second write that waits in the same group needs the same one */
	g_assert_cmpint(san_al_begin(al, EXT + 10, 4096, 0, &need), ==, SAN_AL_PERSIST);
	g_assert_cmpuint(need, ==, 2);
	g_assert_true(san_al_changed(al));
	g_assert_cmpuint(persist(al, &f), ==, 2);
	g_assert_false(san_al_changed(al));
	san_al_end(al, 100, 4096, 1);
	san_al_end(al, EXT + 10, 4096, 1);

	/* the same extent again, and a write spanning both: nothing to persist */
	g_assert_cmpint(san_al_begin(al, 8192, 4096, 2, &need), ==, SAN_AL_GO);
	g_assert_cmpint(san_al_begin(al, EXT - 4096, 8192, 2, &need), ==, SAN_AL_GO);
	san_al_end(al, 8192, 4096, 3);
	san_al_end(al, EXT - 4096, 8192, 3);
	g_assert_false(san_al_changed(al));

	/* one active extent, one new: a transaction */
	g_assert_cmpint(san_al_begin(al, 2 * EXT - 4096, 8192, 4, &need), ==, SAN_AL_PERSIST);
	/* encoded but not yet stable: a write added now waits for the next one */
	uint8_t block[SAN_AL_BLOCK];
	uint64_t seq, off;
	san_al_encode_next(al, block, &seq, &off);
	g_assert_cmpuint(seq, ==, 3);
	g_assert_cmpuint(off, ==, SAN_AL_BLOCK);
	g_assert_cmpint(san_al_begin(al, 5 * EXT, 1, 4, &need), ==, SAN_AL_PERSIST);
	g_assert_cmpuint(need, ==, 4);
	/* an extent of transaction 3 waits for 3 while it is not stable */
	g_assert_cmpint(san_al_begin(al, 2 * EXT, 1, 4, &need), ==, SAN_AL_PERSIST);
	g_assert_cmpuint(need, ==, 3);
	san_al_persisted(al, 3);
	g_assert_cmpint(san_al_begin(al, 2 * EXT + 5, 1, 4, &need), ==, SAN_AL_GO);
	g_assert_cmpuint(san_al_count(al), ==, 4);
	g_assert_true(san_al_active(al, 5 * EXT + 77));
	g_assert_false(san_al_active(al, 6 * EXT));
}

static void test_eviction(void)
{
	alfile f = { 0 };
	uint64_t need;
	g_autoptr(san_al) al = new_log(4, 60 * SEC, 7, &f);
	for (uint32_t e = 0; e < 4; e++) {
		g_assert_cmpint(san_al_begin(al, e * EXT, 4096, e, &need), ==, SAN_AL_PERSIST);
		persist(al, &f);
	}
	/* full, every extent with a write in flight: wait */
	g_assert_cmpint(san_al_begin(al, 9 * EXT, 4096, 10, &need), ==, SAN_AL_WAIT);
	for (uint32_t e = 0; e < 4; e++)
		san_al_end(al, e * EXT, 4096, 20 + e);
	/* idle but not flushed on both replicas: flush first, nothing taken */
	g_assert_cmpint(san_al_begin(al, 9 * EXT, 4096, 30, &need), ==, SAN_AL_FLUSH);
	g_assert_cmpuint(san_al_count(al), ==, 4);
	uint64_t t = san_al_flush_begin(al);
	/* a write that ends after the flush began is not covered by it */
	g_assert_cmpint(san_al_begin(al, 0, 4096, 31, &need), ==, SAN_AL_GO);
	san_al_end(al, 0, 4096, 32);
	san_al_flush_done(al, t);
	/* extent 1 is the least recently used clean one (0 was written after the flush began) */
	g_assert_cmpint(san_al_begin(al, 9 * EXT, 4096, 40, &need), ==, SAN_AL_PERSIST);
	g_assert_false(san_al_active(al, 1 * EXT));
	g_assert_true(san_al_active(al, 0));
	g_assert_true(san_al_active(al, 9 * EXT));
	persist(al, &f);
	g_autoptr(GArray) ext = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_assert_true(recovered(&f, 7, ext, NULL));
	g_assert_cmpuint(ext->len, ==, 4);
	g_assert_false(holds(ext, 1));
	g_assert_true(holds(ext, 0) && holds(ext, 2) && holds(ext, 3) && holds(ext, 9));
	/* a write never evicts its own extents */
	san_al_end(al, 9 * EXT, 4096, 41);
	t = san_al_flush_begin(al);
	san_al_flush_done(al, t);
	g_assert_cmpint(san_al_begin(al, 9 * EXT, 3 * EXT, 50, &need), ==, SAN_AL_PERSIST);
	for (uint32_t e = 9; e <= 11; e++)
		g_assert_true(san_al_active(al, e * EXT));
	/* room came from the least recently used clean ones (2 and 3; 0 was used last) */
	g_assert_true(san_al_active(al, 0));
	g_assert_false(san_al_active(al, 2 * EXT) || san_al_active(al, 3 * EXT));
}

static void test_quiet_extents_go(void)
{
	alfile f = { 0 };
	uint64_t need;
	g_autoptr(san_al) al = new_log(8, 5 * SEC, 3, &f);
	san_al_begin(al, 0, 4096, 0, &need);
	san_al_begin(al, EXT, 4096, 0, &need);
	persist(al, &f);
	san_al_end(al, 0, 4096, 1 * SEC);
	/* not flushed: stays however long it is quiet */
	g_assert_false(san_al_tick(al, 100 * SEC));
	uint64_t t = san_al_flush_begin(al);
	san_al_flush_done(al, t);
	/* flushed, but quiet for less than 5 s */
	g_assert_false(san_al_tick(al, 5 * SEC));
	/* quiet long enough: extent 0 goes; extent 1 has a write in flight */
	g_assert_true(san_al_tick(al, 6 * SEC));
	g_assert_false(san_al_active(al, 0));
	g_assert_true(san_al_active(al, EXT));
	g_assert_true(san_al_changed(al));
	persist(al, &f);
	g_autoptr(GArray) ext = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	g_assert_true(recovered(&f, 3, ext, NULL));
	g_assert_cmpuint(ext->len, ==, 1);
	g_assert_cmpuint(g_array_index(ext, uint32_t, 0), ==, 1);
}

static void test_untrusted_logs(void)
{
	g_autoptr(GArray) ext = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	alfile f = { 0 };
	uint64_t need;
	g_autoptr(san_al) al = new_log(8, 5 * SEC, 0x51, &f);   /* 1: empty, block 1 */
	san_al_begin(al, 3 * EXT, 1, 0, &need);
	persist(al, &f);                           /* 2: {3}, block 0 */
	san_al_begin(al, 4 * EXT, 1, 0, &need);
	persist(al, &f);                           /* 3: {3, 4}, block 1 */
	g_assert_true(recovered(&f, 0x51, ext, NULL));
	g_assert_cmpuint(ext->len, ==, 2);

	/* the newest block torn: the one before stands */
	alfile torn = f;
	torn.data[SAN_AL_BLOCK + 100] ^= 0x40;
	g_assert_true(recovered(&torn, 0x51, ext, NULL));
	g_assert_cmpuint(ext->len, ==, 1);
	g_assert_cmpuint(g_array_index(ext, uint32_t, 0), ==, 3);

	/* both torn: not to be trusted */
	torn.data[10] ^= 1;
	assert_untrusted(&torn, sizeof torn.data, 0x51, "no valid block");
	/* another session's log (the metadata names a newer one) */
	assert_untrusted(&f, sizeof f.data, 0x52, "older session");
	/* missing or short, zeros, no session */
	assert_untrusted(&f, 0, 0x51, "missing");
	assert_untrusted(&f, SAN_AL_BLOCK - 1, 0x51, "missing");
	alfile zeros = { 0 };
	assert_untrusted(&zeros, sizeof zeros.data, 0x51, "no valid block");
	assert_untrusted(&f, sizeof f.data, 0, "names no activity log");

	/* a block with a valid checksum but an absurd count is not a log */
	alfile bad = f;
	memset(bad.data + SAN_AL_BLOCK + 12, 0xff, 4);
	san_block_sum(bad.data + SAN_AL_BLOCK, SAN_AL_BLOCK - 32, bad.data + 2 * SAN_AL_BLOCK - 32);
	g_assert_true(recovered(&bad, 0x51, ext, NULL));   /* the newest refused: block 0 */
	g_assert_cmpuint(ext->len, ==, 1);

	/* a reset starts a new session; its first transaction is the newest */
	san_al_reset(al, 0x52);
	persist(al, &f);
	g_assert_true(recovered(&f, 0x52, ext, NULL));
	g_assert_cmpuint(ext->len, ==, 0);
}

/*
 * Random writes, ends, flushes, ticks and evictions; after every step a
 * crash (sometimes tearing the transaction being written): the extents read
 * back cover every extent where a write was issued and not yet covered by
 * a flush of both replicas that began after it ended.
 */
typedef struct {
	uint64_t off, len;
	bool issued;
	uint64_t end_epoch;     /* the flush epoch it ended in (ended only) */
} wr;

static void test_random_crashes(void)
{
	for (unsigned seed = 1; seed <= 40; seed++) {
		GRand *r = g_rand_new_with_seed(seed);
		g_autoptr(GArray) ext = g_array_new(FALSE, FALSE, sizeof(uint32_t));
		g_autoptr(GPtrArray) flight = g_ptr_array_new_with_free_func(g_free);
		g_autoptr(GPtrArray) unflushed = g_ptr_array_new_with_free_func(g_free);
		alfile f = { 0 };
		uint64_t epoch = 0;
		int64_t now = 0;
		g_autoptr(san_al) al = new_log(6, 3 * SEC, 0x99, &f);
		for (int step = 0; step < 2000; step++) {
			bool torn = false;
			now += g_rand_int_range(r, 0, SEC / 2);
			int what = g_rand_int_range(r, 0, 10);
			if (what < 4 && flight->len < 5) {
				wr *w = g_new0(wr, 1);
				w->off = (uint64_t)g_rand_int_range(r, 0, 16) * EXT + g_rand_int_range(r, 0, 4) * 4096;
				w->len = g_rand_boolean(r) ? 4096 : (uint64_t)g_rand_int_range(r, 1, 3) * EXT;
				uint64_t need;
				san_al_step s = san_al_begin(al, w->off, w->len, now, &need);
				if (s == SAN_AL_FLUSH || s == SAN_AL_WAIT) {
					g_free(w);
					continue;
				}
				if (s == SAN_AL_PERSIST) {
					if (g_rand_int_range(r, 0, 64) == 0) {
						/* power cut mid-transaction: its block torn */
						uint8_t block[SAN_AL_BLOCK];
						uint64_t seq, off;
						san_al_encode_next(al, block, &seq, &off);
						memcpy(f.data + off, block, SAN_AL_BLOCK / 2);
						memset(f.data + off + SAN_AL_BLOCK / 2, 0xee, SAN_AL_BLOCK / 2);
						/* its write was never issued */
						g_free(w);
						torn = true;
						goto crash;
					}
					while (san_al_durable(al) < need)
						persist(al, &f);
				}
				w->issued = true;
				g_ptr_array_add(flight, w);
			} else if (what < 7 && flight->len) {
				guint i = g_rand_int_range(r, 0, flight->len);
				wr *w = g_ptr_array_steal_index(flight, i);
				san_al_end(al, w->off, w->len, now);
				w->end_epoch = epoch;
				g_ptr_array_add(unflushed, w);
			} else if (what == 7) {
				uint64_t t = san_al_flush_begin(al);
				epoch = t;
				san_al_flush_done(al, t);
				for (guint i = unflushed->len; i-- > 0;)
					if (((wr *)unflushed->pdata[i])->end_epoch < t)
						g_ptr_array_remove_index(unflushed, i);
			} else if (what == 8) {
				if (san_al_tick(al, now) || san_al_changed(al))
					persist(al, &f);
			}
crash:
			g_assert_true(recovered(&f, 0x99, ext, NULL));
			GPtrArray *doubt[2] = { flight, unflushed };
			for (int k = 0; k < 2; k++)
				for (guint i = 0; i < doubt[k]->len; i++) {
					wr *w = doubt[k]->pdata[i];
					for (uint64_t e = w->off / EXT; e <= (w->off + w->len - 1) / EXT; e++)
						if (!holds(ext, (uint32_t)e))
							g_error("seed %u step %d: extent %" G_GUINT64_FORMAT
								" in doubt but not in the log", seed, step, e);
				}
			if (torn)
				break;
		}
		g_rand_free(r);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/san_activity_log/mark-only-new-extents", test_mark_only_new_extents);
	g_test_add_func("/san_activity_log/eviction", test_eviction);
	g_test_add_func("/san_activity_log/quiet-extents-go", test_quiet_extents_go);
	g_test_add_func("/san_activity_log/untrusted-logs", test_untrusted_logs);
	g_test_add_func("/san_activity_log/random-crashes", test_random_crashes);
	return g_test_run();
}
