/*
 * eSAN metadata: the decision two replicas take when they meet, through the
 * stories that lead to each outcome (new volume, peer away, resync, crash,
 * promote, discard, a crash its activity log lists), its symmetry on many
 * random pairs, and the 4 KiB block (round trip, torn or foreign blocks
 * refused).
 */
#include "san/meta.h"

#include "san/block.h"

#include <string.h>

#define G0 0x1111111111111110ull
#define SIZE (64ull << 20)

/* Two replicas of a new volume: same generation, consistent. */
static void new_pair(san_meta *a, san_meta *b)
{
	san_meta_init(a, SIZE, G0, 1);
	san_meta_init(b, SIZE, G0, 2);
}

/* Decide from both sides and check they agree (mirror). */
static san_sync decide(const san_meta *a, const san_meta *b)
{
	san_sync ab = san_meta_decide(a, b), ba = san_meta_decide(b, a);
	g_assert_cmpstr(san_sync_name(ab), ==, san_sync_name(san_sync_mirror(ba)));
	return ab;
}

#define assert_sync(a, b, want) g_assert_cmpstr(san_sync_name(decide(a, b)), ==, san_sync_name(want))

static void test_new_volume(void)
{
	san_meta a, b;
	new_pair(&a, &b);
	assert_sync(&a, &b, SAN_SYNC_NONE);
	/* a new replica without data (a reinstalled peer): full sync to it */
	san_meta_init(&b, SIZE, 0, 2);
	assert_sync(&a, &b, SAN_SYNC_SOURCE_FULL);
	/* neither has data: nothing to copy from */
	san_meta_init(&a, SIZE, 0, 1);
	assert_sync(&a, &b, SAN_SYNC_UNRELATED);
}

/* A goes on alone, B stays: A copies its dirty regions; after the sync end
 * both are in sync, and a second outage works the same way. */
static void test_peer_away_and_back(void)
{
	san_meta a, b;
	new_pair(&a, &b);
	san_meta_go_alone(&a, 0xA1);
	g_assert_cmphex(a.bitmap, ==, G0);
	/* going alone again in the same outage keeps the bitmap's base */
	san_meta_go_alone(&a, 0xA2);
	g_assert_cmphex(a.bitmap, ==, G0);
	assert_sync(&a, &b, SAN_SYNC_SOURCE_BITMAP);

	san_meta_sync_end_target(&b, &a);
	san_meta_sync_end_source(&a);
	g_assert_cmphex(a.bitmap, ==, 0);
	g_assert_cmphex(a.history[0], ==, G0);
	g_assert_cmphex(b.current, ==, 0xA2);
	assert_sync(&a, &b, SAN_SYNC_NONE);

	/* second outage, this time B is the primary */
	san_meta_go_alone(&b, 0xB1);
	assert_sync(&a, &b, SAN_SYNC_TARGET_BITMAP);
}

/* A's disk fails and is detached: B goes on in a new generation (and A's
 * plugin with it, in memory); A's metadata on its disk is older and gets a
 * full sync when it comes back, never a bitmap resync (B tracked nothing). */
static void test_detached_disk(void)
{
	san_meta a, b;
	new_pair(&a, &b);
	san_meta a_disk = a;
	san_meta_detach_generation(&b, 0xB7);
	san_meta_detach_generation(&a, 0xB7);
	assert_sync(&a, &b, SAN_SYNC_NONE);
	g_assert_cmphex(b.history[0], ==, G0);
	assert_sync(&a_disk, &b, SAN_SYNC_TARGET_FULL);
	/* the same after an outage of A's node first (B alone, a bitmap base) */
	new_pair(&a, &b);
	san_meta_go_alone(&b, 0xB1);
	a_disk = a;
	san_meta_detach_generation(&b, 0xB8);
	g_assert_cmphex(b.bitmap, ==, 0);
	assert_sync(&a_disk, &b, SAN_SYNC_TARGET_FULL);
}

/* A sync interrupted (the target inconsistent) resumes from the bitmap. */
static void test_interrupted_sync_resumes(void)
{
	san_meta a, b;
	new_pair(&a, &b);
	san_meta_go_alone(&a, 0xA1);
	b.flags &= ~(uint32_t)SAN_META_CONSISTENT;
	assert_sync(&a, &b, SAN_SYNC_SOURCE_BITMAP);
	/* an interrupted full sync (target without generation) starts again */
	san_meta_discard(&b);
	assert_sync(&a, &b, SAN_SYNC_SOURCE_FULL);
	/* two inconsistent replicas: refused */
	a.flags &= ~(uint32_t)SAN_META_CONSISTENT;
	assert_sync(&a, &b, SAN_SYNC_UNRELATED);
}

/* Both written since they parted. */
static void test_split_brain(void)
{
	san_meta a, b;
	new_pair(&a, &b);
	san_meta_go_alone(&a, 0xA1);
	san_meta_go_alone(&b, 0xB1);
	assert_sync(&a, &b, SAN_SYNC_SPLIT_BRAIN);

	/* promote --force on the outdated side while the other went ahead */
	new_pair(&a, &b);
	san_meta_go_alone(&a, 0xA1);
	san_meta_promote(&b, 0xB1);
	assert_sync(&a, &b, SAN_SYNC_SPLIT_BRAIN);
	/* resolved: discard on the loser → full sync from the winner */
	san_meta_discard(&a);
	assert_sync(&a, &b, SAN_SYNC_TARGET_FULL);

	/* diverged after an earlier common sync: histories meet */
	new_pair(&a, &b);
	san_meta_go_alone(&a, 0xA1);
	san_meta_sync_end_target(&b, &a);
	san_meta_sync_end_source(&a);
	san_meta_go_alone(&a, 0xA2);
	san_meta_sync_end_source(&a);   /* as if A synced with someone else */
	san_meta_go_alone(&b, 0xB2);
	san_meta_sync_end_source(&b);
	assert_sync(&a, &b, SAN_SYNC_SPLIT_BRAIN);
}

static void test_unrelated(void)
{
	san_meta a, b;
	san_meta_init(&a, SIZE, 0xAAAA, 1);
	san_meta_init(&b, SIZE, 0xBBBB, 2);
	assert_sync(&a, &b, SAN_SYNC_UNRELATED);
	/* a copy of the same replica (same replica id) that crashed: refused */
	san_meta_init(&b, SIZE, 0xAAAA, 1);
	a.flags |= SAN_META_CRASHED;
	b.flags |= SAN_META_CRASHED;
	assert_sync(&a, &b, SAN_SYNC_UNRELATED);
}

/* Older by more than one generation: the newer one copies everything. */
static void test_far_behind(void)
{
	san_meta a, b;
	new_pair(&a, &b);
	san_meta_go_alone(&a, 0xA1);
	san_meta_promote(&a, 0xA2);      /* bitmap base stays G0 */
	san_meta_sync_end_source(&a);    /* G0 goes to history */
	g_assert_cmphex(a.history[0], ==, G0);
	assert_sync(&a, &b, SAN_SYNC_SOURCE_FULL);
}

/* A primary that crashed while connected may differ from its peer in the
 * regions of its last writes: full sync. */
static void test_crashed_primary(void)
{
	san_meta a, b;
	/* the peer went on alone (the VM restarted there): full sync from it */
	new_pair(&a, &b);
	a.flags |= SAN_META_CRASHED;
	san_meta_go_alone(&b, 0xB1);
	b.flags |= SAN_META_WRITER_NOW;
	assert_sync(&a, &b, SAN_SYNC_TARGET_FULL);

	/* nobody went ahead: the crashed side is the source… */
	new_pair(&a, &b);
	a.flags |= SAN_META_CRASHED;
	assert_sync(&a, &b, SAN_SYNC_SOURCE_FULL);
	/* …unless the other side has a running writer */
	b.flags |= SAN_META_WRITER_NOW;
	assert_sync(&a, &b, SAN_SYNC_TARGET_FULL);
	/* both crashed, no writer: the larger replica id wins */
	b.flags = SAN_META_CONSISTENT | SAN_META_CRASHED;
	assert_sync(&a, &b, SAN_SYNC_TARGET_FULL);

	/* the crashed side went alone before its crash: still a full sync */
	new_pair(&a, &b);
	san_meta_go_alone(&a, 0xA1);
	a.flags |= SAN_META_CRASHED;
	assert_sync(&a, &b, SAN_SYNC_SOURCE_FULL);
	/* the sync's end clears the crash */
	san_meta_sync_end_target(&b, &a);
	san_meta_sync_end_source(&a);
	g_assert_false(a.flags & SAN_META_CRASHED);
	assert_sync(&a, &b, SAN_SYNC_NONE);
}

#define EXT (4ull << 20)

static void collect(uint64_t off, uint64_t len, void *data)
{
	g_string_append_printf(data, "%" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT " ", off >> 20, len >> 20);
}

/* A crash its activity log covers: the decisions stay bitmap ones (never
 * "in sync"), the crash extents merge, and a sync's end clears them; a
 * crash not covered (or too many extents) stays a full sync. */
static void test_crash_listed(void)
{
	san_meta a, b;
	const uint32_t e1[] = { 5, 2 }, e2[] = { 2, 15, 16 };
	new_pair(&a, &b);
	g_assert_true(san_meta_crash_add(&a, EXT, e1, 2));
	g_assert_true(san_meta_crash_listed(&a));
	g_assert_true(san_meta_crash_add(&a, EXT, e2, 3));
	g_assert_cmpuint(a.crash_count, ==, 4);
	g_autoptr(GString) regions = g_string_new(NULL);
	san_meta_crash_regions(&a, SIZE, collect, regions);
	/* in MiB; extent 15 ends at the volume's end, 16 is beyond it */
	g_assert_cmpstr(regions->str, ==, "8+4 20+4 60+4 ");
	/* the peer went on alone (the VM restarted there): bitmap from it */
	san_meta_go_alone(&b, 0xB1);
	b.flags |= SAN_META_WRITER_NOW;
	assert_sync(&a, &b, SAN_SYNC_TARGET_BITMAP);

	/* nobody went ahead: the crashed side is the source, unless the other has a writer */
	new_pair(&a, &b);
	san_meta_crash_add(&a, EXT, e1, 2);
	assert_sync(&a, &b, SAN_SYNC_SOURCE_BITMAP);
	b.flags |= SAN_META_WRITER_NOW;
	assert_sync(&a, &b, SAN_SYNC_TARGET_BITMAP);
	/* both crashed, both listed: still bitmap, the larger replica id the source */
	b.flags &= ~(uint32_t)SAN_META_WRITER_NOW;
	san_meta_crash_add(&b, EXT, e2, 3);
	assert_sync(&a, &b, SAN_SYNC_TARGET_BITMAP);
	/* one of them not listed: full */
	san_meta_crash_full(&b);
	assert_sync(&a, &b, SAN_SYNC_TARGET_FULL);

	/* the crashed side went alone before its crash */
	new_pair(&a, &b);
	san_meta_go_alone(&a, 0xA1);
	san_meta_crash_add(&a, EXT, e1, 2);
	assert_sync(&a, &b, SAN_SYNC_SOURCE_BITMAP);
	/* the sync's end clears the crash and its extents */
	san_meta_sync_end_target(&b, &a);
	san_meta_sync_end_source(&a);
	g_assert_false(a.flags & (SAN_META_CRASHED | SAN_META_CRASH_LISTED));
	g_assert_cmpuint(a.crash_count, ==, 0);
	assert_sync(&a, &b, SAN_SYNC_NONE);

	/* an earlier crash that was not listed stays a full sync */
	new_pair(&a, &b);
	san_meta_crash_full(&a);
	g_assert_false(san_meta_crash_add(&a, EXT, e1, 2));
	g_assert_false(san_meta_crash_listed(&a));
	g_assert_true(a.flags & SAN_META_CRASHED);
	assert_sync(&a, &b, SAN_SYNC_SOURCE_FULL);
	/* too many extents to list: full */
	new_pair(&a, &b);
	g_autofree uint32_t *many = g_new(uint32_t, SAN_META_CRASH_MAX + 1);
	for (uint32_t i = 0; i <= SAN_META_CRASH_MAX; i++)
		many[i] = i;
	g_assert_true(san_meta_crash_add(&a, EXT, many, SAN_META_CRASH_MAX));
	g_assert_false(san_meta_crash_add(&a, EXT, many + 1, SAN_META_CRASH_MAX));
	g_assert_false(san_meta_crash_listed(&a));
	g_assert_cmpuint(a.crash_count, ==, 0);
	/* a discard forgets a crash */
	new_pair(&a, &b);
	san_meta_crash_add(&a, EXT, e1, 2);
	san_meta_discard(&a);
	g_assert_false(a.flags & (SAN_META_CRASHED | SAN_META_CRASH_LISTED));
}

/* Random pairs built from a few identifiers: the decision is always the
 * mirror of the peer's (both sides act on it without talking). */
static void test_symmetry(void)
{
	const uint64_t ids[] = { 0, 0x10, 0x20, 0x30, 0x40 };
	GRand *r = g_rand_new_with_seed(11);
	for (int i = 0; i < 20000; i++) {
		san_meta m[2];
		for (int k = 0; k < 2; k++) {
			m[k].size = SIZE;
			m[k].current = ids[g_rand_int_range(r, 0, 5)];
			m[k].bitmap = ids[g_rand_int_range(r, 0, 5)];
			m[k].history[0] = ids[g_rand_int_range(r, 0, 5)];
			m[k].history[1] = ids[g_rand_int_range(r, 0, 5)];
			m[k].replica_id = (uint64_t)g_rand_int_range(r, 1, 3);
			m[k].flags = g_rand_int(r) & (SAN_META_DISK_FLAGS | SAN_META_WRITER_NOW);
		}
		decide(&m[0], &m[1]);
	}
	g_rand_free(r);
}

static void test_block(void)
{
	san_meta a, back;
	uint8_t block[SAN_META_BLOCK];
	g_autoptr(GError) error = NULL;
	san_meta_init(&a, SIZE, G0, 0x77);
	san_meta_go_alone(&a, 0xA1);
	a.flags |= SAN_META_WRITER | SAN_META_WRITER_NOW;

	san_meta_encode(&a, false, block);
	g_assert_true(san_meta_decode(block, sizeof block, &back, &error));
	g_assert_cmphex(back.current, ==, 0xA1);
	g_assert_cmphex(back.bitmap, ==, G0);
	g_assert_cmphex(back.replica_id, ==, 0x77);
	g_assert_cmpuint(back.size, ==, SIZE);
	g_assert_cmphex(back.flags, ==, SAN_META_CONSISTENT | SAN_META_WRITER);

	san_meta_encode(&a, true, block);
	g_assert_true(san_meta_decode(block, sizeof block, &back, &error));
	g_assert_true(back.flags & SAN_META_WRITER_NOW);

	block[30] ^= 1;
	g_assert_false(san_meta_decode(block, sizeof block, &back, &error));
	g_assert_nonnull(strstr(error->message, "checksum"));
	g_clear_error(&error);

	g_assert_false(san_meta_decode(block, 512, &back, &error));
	g_assert_nonnull(strstr(error->message, "512 bytes"));
	g_clear_error(&error);

	memset(block, 0, sizeof block);
	g_assert_false(san_meta_decode(block, sizeof block, &back, &error));
	g_assert_nonnull(strstr(error->message, "magic"));
	g_clear_error(&error);

	g_autofree char *d = san_meta_describe(&a);
	g_assert_nonnull(strstr(d, "00000000000000A1:1111111111111110"));

	/* the activity log's session and the crash extents travel in the block */
	const uint32_t ext[] = { 7, 3 };
	a.al_id = 0xA10;
	g_assert_true(san_meta_crash_add(&a, EXT, ext, 2));
	san_meta_encode(&a, false, block);
	g_assert_true(san_meta_decode(block, sizeof block, &back, &error));
	g_assert_cmphex(back.al_id, ==, 0xA10);
	g_assert_true(san_meta_crash_listed(&back));
	g_assert_cmpuint(back.crash_extent, ==, EXT);
	g_assert_cmpuint(back.crash_count, ==, 2);
	g_assert_cmpuint(back.crash[0], ==, 3);
	g_assert_cmpuint(back.crash[1], ==, 7);
	/* a count beyond what a block holds, checksum right: refused */
	uint32_t n = GUINT32_TO_LE(SAN_META_CRASH_MAX + 1);
	memcpy(block + 80, &n, 4);
	san_block_sum(block, SAN_META_BLOCK - 32, block + SAN_META_BLOCK - 32);
	g_assert_false(san_meta_decode(block, sizeof block, &back, &error));
	g_assert_nonnull(strstr(error->message, "crash extents"));
	g_clear_error(&error);
	/* a herd without the log (a zero area, the flag unknown to it and dropped): a full sync */
	san_meta_init(&back, SIZE, G0, 1);
	back.flags |= SAN_META_CRASHED;
	g_assert_false(san_meta_crash_listed(&back));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/san_meta/new-volume", test_new_volume);
	g_test_add_func("/san_meta/peer-away-and-back", test_peer_away_and_back);
	g_test_add_func("/san_meta/detached-disk", test_detached_disk);
	g_test_add_func("/san_meta/interrupted-sync", test_interrupted_sync_resumes);
	g_test_add_func("/san_meta/split-brain", test_split_brain);
	g_test_add_func("/san_meta/unrelated", test_unrelated);
	g_test_add_func("/san_meta/far-behind", test_far_behind);
	g_test_add_func("/san_meta/crashed-primary", test_crashed_primary);
	g_test_add_func("/san_meta/crash-listed", test_crash_listed);
	g_test_add_func("/san_meta/symmetry", test_symmetry);
	g_test_add_func("/san_meta/block", test_block);
	return g_test_run();
}
