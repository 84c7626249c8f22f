/*
 * Load generator for the replicated store: C connections to a herdd's unix
 * socket, each sending configuration changes (PUT /api/v1/vms/<vm> with a new
 * shutdown timeout) back to back over HTTP/1.1 keep-alive, for a number of
 * changes or seconds.  Prints latency percentiles and changes per second.
 *
 *   commit-load SOCKET VM-PREFIX CONNECTIONS SECONDS
 *
 * Every answer is checked: a change that is not acknowledged with 200 counts
 * as an error, and the run fails.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct {
	const char *socket_path;
	char vm[64];
	double seconds;
	double *lat_ms;
	size_t n, cap;
	unsigned errors;
} worker;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

/* Read one HTTP response; return its status, or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *body = NULL;
	long clen = -1;
	for (;;) {
		ssize_t r = read(fd, buf + have, cap - have - 1);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		if (!body && (body = strstr(buf, "\r\n\r\n"))) {
			body += 4;
			char *cl = strcasestr(buf, "Content-Length:");
			clen = cl ? strtol(cl + 15, NULL, 10) : 0;
		}
		if (body && (long)(have - (size_t)(body - buf)) >= clen)
			break;
		if (have >= cap - 1)
			return -1;
	}
	return (int)strtol(buf + 9, NULL, 10);
}

static void *run_worker(void *arg)
{
	worker *w = arg;
	int fd = connect_unix(w->socket_path);
	char req[512], buf[65536];
	double end = now_s() + w->seconds;
	unsigned i = 0;
	while (now_s() < end) {
		char body[64];
		int blen = snprintf(body, sizeof(body), "{\"shutdown_timeout_s\":%u}", 60 + (i++ % 1000));
		int len = snprintf(req, sizeof(req),
				   "PUT /api/v1/vms/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
				   "Content-Length: %d\r\n\r\n%s",
				   w->vm, blen, body);
		double t0 = now_s();
		if (write(fd, req, (size_t)len) != len) {
			w->errors++;
			break;
		}
		int status = read_response(fd, buf, sizeof(buf));
		double t1 = now_s();
		if (status != 200) {
			if (w->errors++ < 3)
				fprintf(stderr, "commit-load: %s: HTTP %d: %.200s\n", w->vm, status,
					strstr(buf, "\r\n\r\n") ? strstr(buf, "\r\n\r\n") + 4 : buf);
			if (status < 0)
				break;
			continue;
		}
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 4096;
			w->lat_ms = realloc(w->lat_ms, w->cap * sizeof(double));
		}
		w->lat_ms[w->n++] = (t1 - t0) * 1000.0;
	}
	close(fd);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: commit-load SOCKET VM-PREFIX CONNECTIONS SECONDS\n");
		return 2;
	}
	int conns = atoi(argv[3]);
	double seconds = atof(argv[4]);
	if (conns < 1 || conns > 1024 || seconds <= 0) {
		fprintf(stderr, "commit-load: CONNECTIONS 1..1024, SECONDS > 0\n");
		return 2;
	}
	worker *w = calloc((size_t)conns, sizeof(worker));
	pthread_t *t = calloc((size_t)conns, sizeof(pthread_t));
	double t0 = now_s();
	for (int i = 0; i < conns; i++) {
		w[i].socket_path = argv[1];
		w[i].seconds = seconds;
		snprintf(w[i].vm, sizeof(w[i].vm), "%s%d", argv[2], i);
		pthread_create(&t[i], NULL, run_worker, &w[i]);
	}
	size_t total = 0;
	unsigned errors = 0;
	for (int i = 0; i < conns; i++) {
		pthread_join(t[i], NULL);
		total += w[i].n;
		errors += w[i].errors;
	}
	double elapsed = now_s() - t0;
	double *all = malloc((total ? total : 1) * sizeof(double));
	size_t k = 0;
	for (int i = 0; i < conns; i++)
		for (size_t j = 0; j < w[i].n; j++)
			all[k++] = w[i].lat_ms[j];
	qsort(all, total, sizeof(double), cmp_double);
	double p50 = total ? all[total / 2] : 0, p99 = total ? all[(size_t)((double)total * 0.99)] : 0;
	printf("connections=%d changes=%zu errors=%u seconds=%.2f changes_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
	       conns, total, errors, elapsed, (double)total / elapsed, p50, p99,
	       total ? all[total - 1] : 0);
	return errors ? 1 : 0;
}
