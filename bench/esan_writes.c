/*
 * 4 KiB writes at random aligned offsets, each followed by a flush, at
 * queue depth 1, for bench/esan: through an NBD server (libnbd, an NBD URI
 * such as nbd+unix:///EXPORT?socket=PATH) or on a local file (pwrite and
 * fdatasync, what an NBD file server does underneath).  Prints one line:
 *
 *   writes N p50_us P p90_us P p99_us P max_us P mean_us P
 *
 * The latency of one write is from the write's start to its flush's
 * answer.  Offsets are distinct (a random sample of the 4 KiB blocks of the
 * first SIZE bytes, seeded), so N writes change exactly N * 4 KiB; the data
 * is random as well (no block of zeros a server could treat specially).
 *
 *   esan-writes (nbd URI | file PATH) SIZE COUNT SEED
 */
#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096u

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* xorshift64*: seeded, so a run can be repeated */
static uint64_t rnd_state;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ull;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
	if (argc != 6 || (strcmp(argv[1], "nbd") != 0 && strcmp(argv[1], "file") != 0)) {
		fprintf(stderr, "usage: esan-writes (nbd URI | file PATH) SIZE COUNT SEED\n");
		return 2;
	}
	bool nbd = strcmp(argv[1], "nbd") == 0;
	uint64_t size = strtoull(argv[3], NULL, 10);
	uint64_t count = strtoull(argv[4], NULL, 10);
	rnd_state = strtoull(argv[5], NULL, 10) * 0x9E3779B97F4A7C15ull | 1;
	uint64_t blocks = size / BLOCK;
	if (blocks == 0 || count == 0 || count > blocks) {
		fprintf(stderr, "esan-writes: COUNT must be 1..%llu (the 4 KiB blocks of SIZE)\n",
			(unsigned long long)blocks);
		return 2;
	}

	/* the first COUNT of a partial Fisher-Yates shuffle of the blocks */
	uint32_t *order = malloc(blocks * sizeof *order);
	double *lat = malloc(count * sizeof *lat);
	char *buf = aligned_alloc(BLOCK, BLOCK);
	if (!order || !lat || !buf) {
		fprintf(stderr, "esan-writes: out of memory\n");
		return 1;
	}
	for (uint64_t i = 0; i < blocks; i++)
		order[i] = (uint32_t)i;
	for (uint64_t i = 0; i < count; i++) {
		uint64_t j = i + rnd() % (blocks - i);
		uint32_t t = order[i];
		order[i] = order[j];
		order[j] = t;
	}

	struct nbd_handle *h = NULL;
	int fd = -1;
	if (nbd) {
		h = nbd_create();
		if (!h || nbd_connect_uri(h, argv[2]) < 0) {
			fprintf(stderr, "esan-writes: %s: %s\n", argv[2], nbd_get_error());
			return 1;
		}
		if (nbd_get_size(h) < (int64_t)size) {
			fprintf(stderr, "esan-writes: %s is smaller than %llu bytes\n", argv[2],
				(unsigned long long)size);
			return 1;
		}
	} else {
		fd = open(argv[2], O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "esan-writes: %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
	}

	for (uint64_t i = 0; i < count; i++) {
		for (unsigned k = 0; k < BLOCK; k += 8) {
			uint64_t r = rnd();
			memcpy(buf + k, &r, 8);
		}
		uint64_t off = (uint64_t)order[i] * BLOCK;
		double t0 = now_us();
		if (nbd) {
			if (nbd_pwrite(h, buf, BLOCK, off, 0) < 0 || nbd_flush(h, 0) < 0) {
				fprintf(stderr, "esan-writes: write at %llu: %s\n", (unsigned long long)off,
					nbd_get_error());
				return 1;
			}
		} else if (pwrite(fd, buf, BLOCK, (off_t)off) != BLOCK || fdatasync(fd) < 0) {
			fprintf(stderr, "esan-writes: write at %llu: %s\n", (unsigned long long)off, strerror(errno));
			return 1;
		}
		lat[i] = now_us() - t0;
	}
	if (nbd) {
		nbd_shutdown(h, 0);
		nbd_close(h);
	} else {
		close(fd);
	}

	double sum = 0;
	for (uint64_t i = 0; i < count; i++)
		sum += lat[i];
	qsort(lat, count, sizeof *lat, cmp_double);
	printf("writes %llu p50_us %.1f p90_us %.1f p99_us %.1f max_us %.1f mean_us %.1f\n",
	       (unsigned long long)count, pct(lat, count, 0.50), pct(lat, count, 0.90), pct(lat, count, 0.99),
	       lat[count - 1], sum / (double)count);
	free(order);
	free(lat);
	free(buf);
	return 0;
}
