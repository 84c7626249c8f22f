/* An eSAN replica's dirty bitmap, in memory and persisted page by page. */
#include "san/bitmap.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "HERDSANB"
#define VERSION 1u
#define BITS_PER_PAGE (SAN_BITMAP_PAGE * 8u)
#define WORDS_PER_PAGE (SAN_BITMAP_PAGE / 8u)

struct san_bitmap {
	san_bitmap_io io;
	GMutex lock;            /* the bits, count, seq */
	GMutex persist;         /* one writer of pages at a time */
	uint64_t size;
	uint64_t nbits;
	uint64_t npages;
	uint64_t *words;        /* npages * WORDS_PER_PAGE */
	uint64_t count;
	uint64_t seq;           /* bumped on every change */
	uint64_t *page_seq;     /* seq of the page's last change */
	uint64_t *durable_seq;  /* seq of the page's last stable copy */
};

static void alloc_bits(san_bitmap *b, uint64_t size)
{
	uint64_t nbits = (size + SAN_BITMAP_GRAIN - 1) / SAN_BITMAP_GRAIN;
	uint64_t npages = nbits ? (nbits + BITS_PER_PAGE - 1) / BITS_PER_PAGE : 1;
	b->words = g_realloc_n(b->words, npages * WORDS_PER_PAGE, sizeof(uint64_t));
	b->page_seq = g_realloc_n(b->page_seq, npages, sizeof(uint64_t));
	b->durable_seq = g_realloc_n(b->durable_seq, npages, sizeof(uint64_t));
	for (uint64_t p = b->npages; p < npages; p++) {
		memset(b->words + p * WORDS_PER_PAGE, 0, SAN_BITMAP_PAGE);
		b->page_seq[p] = 0;
		b->durable_seq[p] = 0;
	}
	b->size = size;
	b->nbits = nbits;
	b->npages = npages;
}

san_bitmap *san_bitmap_new(uint64_t size, const san_bitmap_io *io)
{
	san_bitmap *b = g_new0(san_bitmap, 1);
	b->io = *io;
	g_mutex_init(&b->lock);
	g_mutex_init(&b->persist);
	alloc_bits(b, size);
	return b;
}

void san_bitmap_free(san_bitmap *b)
{
	if (!b)
		return;
	g_mutex_clear(&b->lock);
	g_mutex_clear(&b->persist);
	g_free(b->words);
	g_free(b->page_seq);
	g_free(b->durable_seq);
	g_free(b);
}

static void header(const san_bitmap *b, uint8_t *block)
{
	uint32_t v = GUINT32_TO_LE(VERSION), g = GUINT32_TO_LE(SAN_BITMAP_GRAIN);
	uint64_t n = GUINT64_TO_LE(b->nbits);
	memset(block, 0, SAN_BITMAP_HEADER);
	memcpy(block, MAGIC, 8);
	memcpy(block + 8, &v, 4);
	memcpy(block + 12, &g, 4);
	memcpy(block + 16, &n, 8);
}

static uint64_t popcount_words(const uint64_t *w, uint64_t n)
{
	uint64_t c = 0;
	for (uint64_t i = 0; i < n; i++)
		c += (uint64_t)__builtin_popcountll(w[i]);
	return c;
}

bool san_bitmap_load(san_bitmap *b, const void *data, size_t len, GError **error)
{
	const uint8_t *d = data;
	uint8_t want[SAN_BITMAP_HEADER];
	if (len < SAN_BITMAP_HEADER || memcmp(d, MAGIC, 8) != 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "the dirty bitmap file has no bitmap header");
		return false;
	}
	header(b, want);
	if (memcmp(d, want, 24) != 0) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "the dirty bitmap file's header does not match the volume "
			    "(version, grain or number of bits)");
		return false;
	}
	g_mutex_lock(&b->lock);
	size_t have = MIN((size_t)(len - SAN_BITMAP_HEADER), (size_t)(b->npages * SAN_BITMAP_PAGE));
	memset(b->words, 0, b->npages * SAN_BITMAP_PAGE);
	memcpy(b->words, d + SAN_BITMAP_HEADER, have);
	for (uint64_t i = 0; i < b->npages * WORDS_PER_PAGE; i++)
		b->words[i] = GUINT64_FROM_LE(b->words[i]);
	/* bits beyond the volume's end are not ours */
	for (uint64_t bit = b->nbits; bit < b->npages * BITS_PER_PAGE; bit++)
		b->words[bit / 64] &= ~(1ull << (bit % 64));
	b->count = popcount_words(b->words, b->npages * WORDS_PER_PAGE);
	g_mutex_unlock(&b->lock);
	return true;
}

/* Under b->lock: the page in file byte order. */
static void page_copy(san_bitmap *b, uint64_t p, uint64_t *out)
{
	const uint64_t *w = b->words + p * WORDS_PER_PAGE;
	for (uint64_t i = 0; i < WORDS_PER_PAGE; i++)
		out[i] = GUINT64_TO_LE(w[i]);
}

/* Write pages [first, last] that changed since their last stable copy, then
 * sync; with persist held, so a caller that finds its bits already set
 * waits here for the thread that is writing them. */
static int persist_pages(san_bitmap *b, uint64_t first, uint64_t last)
{
	uint64_t buf[WORDS_PER_PAGE];
	uint64_t *snap_seq = g_new(uint64_t, last - first + 1);
	bool wrote = false;
	int r = 0;

	g_mutex_lock(&b->persist);
	for (uint64_t p = first; p <= last; p++) {
		g_mutex_lock(&b->lock);
		bool stale = b->page_seq[p] > b->durable_seq[p];
		snap_seq[p - first] = b->page_seq[p];
		if (stale)
			page_copy(b, p, buf);
		g_mutex_unlock(&b->lock);
		if (!stale) {
			snap_seq[p - first] = 0;
			continue;
		}
		r = b->io.write(b->io.ctx, SAN_BITMAP_HEADER + p * SAN_BITMAP_PAGE, buf, sizeof buf);
		if (r < 0)
			goto out;
		wrote = true;
	}
	if (wrote) {
		r = b->io.sync(b->io.ctx);
		if (r < 0)
			goto out;
	}
	g_mutex_lock(&b->lock);
	for (uint64_t p = first; p <= last; p++)
		if (snap_seq[p - first] > b->durable_seq[p])
			b->durable_seq[p] = snap_seq[p - first];
	g_mutex_unlock(&b->lock);
out:
	g_mutex_unlock(&b->persist);
	g_free(snap_seq);
	return r;
}

/* Bits [first, last] of [offset, offset+len), clipped; false if empty. */
static bool bit_range(san_bitmap *b, uint64_t offset, uint64_t len, uint64_t *first, uint64_t *last)
{
	if (len == 0 || offset >= b->size)
		return false;
	uint64_t end = MIN(offset + len, b->size);
	*first = offset / SAN_BITMAP_GRAIN;
	*last = (end - 1) / SAN_BITMAP_GRAIN;
	return true;
}

/* Under b->lock: set or clear bits, bump the seq of the pages they changed. */
/* Word by word: a 1 MiB write is 256 bits, and clearing a whole volume's
 * bits (every flush clears the unflushed map) must not cost a loop per bit. */
static void change_bits(san_bitmap *b, uint64_t first, uint64_t last, bool set)
{
	for (uint64_t wi = first / 64; wi <= last / 64; wi++) {
		uint64_t lo = wi == first / 64 ? first % 64 : 0;
		uint64_t hi = wi == last / 64 ? last % 64 : 63;
		uint64_t m = (hi == 63 ? ~0ull : (1ull << (hi + 1)) - 1) & ~((1ull << lo) - 1);
		uint64_t *w = &b->words[wi];
		uint64_t changed = (set ? ~*w : *w) & m;
		if (!changed)
			continue;
		*w ^= changed;
		uint64_t n = (uint64_t)__builtin_popcountll(changed);
		b->count = set ? b->count + n : b->count - n;
		b->page_seq[wi / WORDS_PER_PAGE] = ++b->seq;
	}
}

int san_bitmap_mark(san_bitmap *b, uint64_t offset, uint64_t len)
{
	uint64_t first, last;
	bool durable = true;
	g_mutex_lock(&b->lock);
	if (!bit_range(b, offset, len, &first, &last)) {
		g_mutex_unlock(&b->lock);
		return 0;
	}
	change_bits(b, first, last, true);
	for (uint64_t p = first / BITS_PER_PAGE; p <= last / BITS_PER_PAGE; p++)
		if (b->page_seq[p] > b->durable_seq[p])
			durable = false;
	g_mutex_unlock(&b->lock);
	if (durable)
		return 0;
	return persist_pages(b, first / BITS_PER_PAGE, last / BITS_PER_PAGE);
}

int san_bitmap_mark_all(san_bitmap *b)
{
	g_mutex_lock(&b->lock);
	if (b->nbits)
		change_bits(b, 0, b->nbits - 1, true);
	g_mutex_unlock(&b->lock);
	return persist_pages(b, 0, b->npages - 1);
}

/* Set or clear a range in memory. */
static void change_range(san_bitmap *b, uint64_t offset, uint64_t len, bool set)
{
	uint64_t first, last;
	g_mutex_lock(&b->lock);
	if (bit_range(b, offset, len, &first, &last))
		change_bits(b, first, last, set);
	g_mutex_unlock(&b->lock);
}

void san_bitmap_set(san_bitmap *b, uint64_t offset, uint64_t len)
{
	change_range(b, offset, len, true);
}

void san_bitmap_clear(san_bitmap *b, uint64_t offset, uint64_t len)
{
	change_range(b, offset, len, false);
}

void san_bitmap_clear_all(san_bitmap *b)
{
	g_mutex_lock(&b->lock);
	if (b->count)
		change_bits(b, 0, b->nbits - 1, false);
	g_mutex_unlock(&b->lock);
}

int san_bitmap_flush(san_bitmap *b)
{
	return persist_pages(b, 0, b->npages - 1);
}

int san_bitmap_write_all(san_bitmap *b)
{
	uint8_t h[SAN_BITMAP_HEADER];
	int r;
	g_mutex_lock(&b->persist);
	g_mutex_lock(&b->lock);
	header(b, h);
	uint64_t npages = b->npages;
	for (uint64_t p = 0; p < npages; p++)
		b->page_seq[p] = ++b->seq;
	g_mutex_unlock(&b->lock);
	r = b->io.write(b->io.ctx, 0, h, sizeof h);
	g_mutex_unlock(&b->persist);
	if (r < 0)
		return r;
	return persist_pages(b, 0, npages - 1);
}

bool san_bitmap_test(san_bitmap *b, uint64_t offset, uint64_t len)
{
	uint64_t first, last;
	bool any = false;
	g_mutex_lock(&b->lock);
	if (bit_range(b, offset, len, &first, &last))
		for (uint64_t bit = first; bit <= last && !any; bit++)
			any = (b->words[bit / 64] >> (bit % 64)) & 1;
	g_mutex_unlock(&b->lock);
	return any;
}

uint64_t san_bitmap_count(san_bitmap *b)
{
	g_mutex_lock(&b->lock);
	uint64_t c = b->count;
	g_mutex_unlock(&b->lock);
	return c;
}

uint64_t san_bitmap_dirty_bytes(san_bitmap *b)
{
	g_mutex_lock(&b->lock);
	uint64_t bytes = b->count * SAN_BITMAP_GRAIN;
	/* the last bit may cover less than a grain */
	if (b->nbits && (b->words[(b->nbits - 1) / 64] >> ((b->nbits - 1) % 64)) & 1)
		bytes -= b->nbits * SAN_BITMAP_GRAIN - b->size;
	g_mutex_unlock(&b->lock);
	return bytes;
}

bool san_bitmap_next_dirty(san_bitmap *b, uint64_t from, uint64_t max_len, uint64_t *offset,
			   uint64_t *len)
{
	uint64_t max_bits = MAX(max_len / SAN_BITMAP_GRAIN, 1);
	bool found = false;
	g_mutex_lock(&b->lock);
	uint64_t bit = (from + SAN_BITMAP_GRAIN - 1) / SAN_BITMAP_GRAIN;   /* after a clipped run too */
	while (bit < b->nbits) {
		uint64_t w = b->words[bit / 64] >> (bit % 64);
		if (w == 0) {
			bit = (bit / 64 + 1) * 64;
			continue;
		}
		bit += (uint64_t)__builtin_ctzll(w);
		found = bit < b->nbits;
		break;
	}
	if (found) {
		uint64_t end = bit;
		while (end < b->nbits && end - bit < max_bits && ((b->words[end / 64] >> (end % 64)) & 1))
			end++;
		*offset = bit * SAN_BITMAP_GRAIN;
		*len = MIN(end * SAN_BITMAP_GRAIN, b->size) - *offset;
	}
	g_mutex_unlock(&b->lock);
	return found;
}

void san_bitmap_resize(san_bitmap *b, uint64_t size)
{
	g_mutex_lock(&b->persist);
	g_mutex_lock(&b->lock);
	if (size > b->size)
		alloc_bits(b, size);
	g_mutex_unlock(&b->lock);
	g_mutex_unlock(&b->persist);
}

uint64_t san_bitmap_size(san_bitmap *b)
{
	return b->size;
}

static int fd_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	int fd = *(int *)ctx;
	const char *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_sync(void *ctx)
{
	return fdatasync(*(int *)ctx) < 0 ? -errno : 0;
}

san_bitmap_io san_bitmap_io_fd(int *fd_ptr)
{
	return (san_bitmap_io){ .write = fd_write, .sync = fd_sync, .ctx = fd_ptr };
}
