/*
 * cpg-inject: put arbitrary bytes on herd's CPG group, for tests of what
 * herdd does with malformed or foreign wire messages.
 *
 *   cpg-inject [--group NAME] [--timeout-ms N] [--settle-ms N] FILE...
 *   cpg-inject --nodeid
 *
 * Run inside a test node.  Joins the CPG group NAME (default "herd") as one
 * more process of this node, multicasts the bytes of each FILE ("-" is
 * stdin) as one message in agreed order, waits until corosync has delivered
 * every one of them back to this process -- agreed order then means every
 * member got them, in that order -- and leaves the group.  --settle-ms N
 * waits N ms after joining before it sends: herd's members open a sync round
 * when the group changes, and a command queued in a round that the next
 * change (this process leaving) ends is dropped.  --nodeid prints
 * this node's corosync node id without joining (tests need it to build a
 * header that names its true sender).
 *
 * Exit status: 0 all messages delivered; 1 error; 2 usage.
 */
#include <corosync/cpg.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILE_BYTES (64u * 1024 * 1024)
#define TRY_AGAIN_LIMIT 1000 /* x 10 ms */

static uint32_t local_nodeid;
static uint32_t local_pid;
static size_t delivered; /* of our own messages */

static void on_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid,
		       uint32_t pid, void *msg, size_t len)
{
	if (nodeid == local_nodeid && pid == local_pid)
		delivered++;
}

static void on_confchg(cpg_handle_t handle, const struct cpg_name *group,
		       const struct cpg_address *members, size_t n_members,
		       const struct cpg_address *left, size_t n_left,
		       const struct cpg_address *joined, size_t n_joined)
{
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: cpg-inject [--group NAME] [--timeout-ms N] [--settle-ms N] FILE...\n"
		     "       cpg-inject --nodeid\n");
}

/* The whole of @path ("-": stdin) in a malloc()ed buffer. */
static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "cpg-inject: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 65536, n = 0;
	unsigned char *buf = malloc(cap);
	while (buf) {
		if (n == cap) {
			if (cap >= MAX_FILE_BYTES) {
				fprintf(stderr, "cpg-inject: %s is larger than %u bytes\n", path,
					MAX_FILE_BYTES);
				free(buf);
				buf = NULL;
				break;
			}
			unsigned char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = bigger;
			cap *= 2;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				fprintf(stderr, "cpg-inject: reading %s: %s\n", path, strerror(errno));
				free(buf);
				buf = NULL;
			}
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	const char *group = "herd";
	long timeout_ms = 10000, settle_ms = 0;
	bool want_nodeid = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--group") == 0 && i + 1 < argc) {
			group = argv[++i];
		} else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
			char *end;
			timeout_ms = strtol(argv[++i], &end, 10);
			if (*end || timeout_ms <= 0) {
				usage(stderr);
				return 2;
			}
		} else if (strcmp(argv[i], "--settle-ms") == 0 && i + 1 < argc) {
			char *end;
			settle_ms = strtol(argv[++i], &end, 10);
			if (*end || settle_ms < 0 || settle_ms > 60000) {
				usage(stderr);
				return 2;
			}
		} else if (strcmp(argv[i], "--nodeid") == 0) {
			want_nodeid = true;
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if ((want_nodeid && i != argc) || (!want_nodeid && i == argc) ||
	    strlen(group) >= CPG_MAX_NAME_LENGTH) {
		usage(stderr);
		return 2;
	}

	size_t n_msgs = i < argc ? (size_t)(argc - i) : 0;
	unsigned char **msgs = calloc(n_msgs + 1, sizeof(*msgs));
	size_t *lens = calloc(n_msgs + 1, sizeof(*lens));
	if (!msgs || !lens)
		return 1;
	for (size_t k = 0; k < n_msgs; k++) {
		msgs[k] = read_all(argv[i + (int)k], &lens[k]);
		if (!msgs[k])
			return 1;
	}

	cpg_handle_t handle;
	cpg_callbacks_t callbacks = { .cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg };
	cs_error_t rc = cpg_initialize(&handle, &callbacks);
	if (rc != CS_OK) {
		fprintf(stderr, "cpg-inject: cannot connect to corosync's CPG (error %d)\n", rc);
		return 1;
	}
	unsigned int nodeid = 0;
	if ((rc = cpg_local_get(handle, &nodeid)) != CS_OK) {
		fprintf(stderr, "cpg-inject: cannot get the local node id (error %d)\n", rc);
		return 1;
	}
	local_nodeid = nodeid;
	local_pid = (uint32_t)getpid();
	if (want_nodeid) {
		printf("%u\n", nodeid);
		cpg_finalize(handle);
		return 0;
	}

	struct cpg_name name = { .length = (uint32_t)strlen(group) };
	memcpy(name.value, group, name.length);
	/* CS_ERR_TRY_AGAIN while corosync syncs a membership: retry, bounded. */
	int tries = 0;
	while ((rc = cpg_join(handle, &name)) == CS_ERR_TRY_AGAIN && tries++ < TRY_AGAIN_LIMIT)
		usleep(10000);
	if (rc != CS_OK) {
		fprintf(stderr, "cpg-inject: cannot join CPG group '%s' (error %d)\n", group, rc);
		return 1;
	}
	for (int64_t until = now_ms() + settle_ms; now_ms() < until;) {
		cpg_dispatch(handle, CS_DISPATCH_ALL);
		usleep(10000);
	}
	int status = 0;
	for (size_t k = 0; k < n_msgs; k++) {
		struct iovec iov = { .iov_base = msgs[k], .iov_len = lens[k] };
		tries = 0;
		while ((rc = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN &&
		       tries++ < TRY_AGAIN_LIMIT) {
			cpg_dispatch(handle, CS_DISPATCH_ALL);
			usleep(10000);
		}
		if (rc != CS_OK) {
			fprintf(stderr, "cpg-inject: corosync refused message %zu (%zu bytes from %s): error %d\n",
				k + 1, lens[k], argv[i + (int)k], rc);
			status = 1;
			n_msgs = k; /* wait only for what was sent */
			break;
		}
	}

	int fd = -1;
	cpg_fd_get(handle, &fd);
	int64_t deadline = now_ms() + timeout_ms;
	while (delivered < n_msgs) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			fprintf(stderr, "cpg-inject: only %zu of %zu messages came back within %ld ms\n",
				delivered, n_msgs, timeout_ms);
			status = 1;
			break;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)left) > 0 && cpg_dispatch(handle, CS_DISPATCH_ALL) != CS_OK &&
		    delivered < n_msgs) {
			fprintf(stderr, "cpg-inject: lost the connection to corosync\n");
			status = 1;
			break;
		}
	}
	if (status == 0)
		printf("nodeid %u: %zu message(s) delivered to group '%s'\n", nodeid, n_msgs, group);
	cpg_leave(handle, &name);
	cpg_finalize(handle);
	for (size_t k = 0; msgs[k]; k++)
		free(msgs[k]);
	free(msgs);
	free(lens);
	return status;
}
