/*
 * Benchmark: corosync's own floor under herd's commit (bench/scale).  A
 * change of herd's store is one CPG message (agreed order) that every member
 * applies, makes durable and acknowledges with a message of its own; the
 * sender answers its client once every member's acknowledgement is in
 * (store/replica.h).  This program does the same with nothing else: on the
 * leading node it multicasts a PING and waits for its own agreed delivery
 * (what a message alone costs), then for an answer from every member of
 * the group, itself included (what a confirmed change cannot do without);
 * one round at a time.  Every member answers each PING it is delivered,
 * after an fdatasync() of a 4 KiB write to a file in DIR with --fsync DIR
 * (one durable write per member and change: herd's SQLite commit in WAL
 * mode with synchronous=FULL is at least that).
 *
 *     cpg-floor lead MEMBERS ROUNDS [--fsync DIR]
 *     cpg-floor answer [--fsync DIR]
 *
 * Start `answer` on every other node first; `lead` waits until MEMBERS
 * processes (its own included) are in the group, runs ROUNDS rounds, tells
 * the answerers to quit and prints one line of key=value figures (ms):
 * agreed_p50/p99 (send → own delivery), all_p50/p99 (send → every
 * answer delivered).  No time is asserted; a member that leaves, or a run
 * over 10 minutes, fails it.
 */
#include <corosync/cpg.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MSG_PING = 1, MSG_PONG = 2, MSG_QUIT = 3 };

typedef struct {
	uint32_t type;
	uint32_t round;
} msg;

static cpg_handle_t handle;
static bool leading;
static unsigned want_members, rounds, members, round_no, answers;
static bool started, quit, failed;
static uint32_t my_nodeid, my_pid;
static int sync_fd = -1;
static double t_sent, *agreed_ms, *all_ms;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void send_msg(uint32_t type, uint32_t round)
{
	msg m = { .type = type, .round = round };
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	for (;;) {
		cs_error_t rc = cpg_mcast_joined(handle, CPG_TYPE_AGREED, &iov, 1);
		if (rc == CS_OK)
			return;
		if (rc != CS_ERR_TRY_AGAIN) {
			fprintf(stderr, "cpg_mcast_joined: error %d\n", rc);
			exit(1);
		}
		usleep(100); /* flow control: corosync takes it when the token comes */
	}
}

/* One durable write, as a member's commit of the change. */
static void make_durable(void)
{
	static char block[4096];
	if (sync_fd < 0)
		return;
	if (pwrite(sync_fd, block, sizeof(block), 0) != (ssize_t)sizeof(block) ||
	    fdatasync(sync_fd) != 0) {
		perror("write and fdatasync");
		exit(1);
	}
}

static void next_round(void)
{
	if (round_no == rounds) {
		send_msg(MSG_QUIT, round_no);
		return;
	}
	answers = 0;
	t_sent = now_ms();
	send_msg(MSG_PING, round_no);
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid,
		       uint32_t pid, void *data, size_t len)
{
	msg m;
	if (len != sizeof(m))
		return;
	memcpy(&m, data, sizeof(m));
	bool mine = nodeid == my_nodeid && pid == my_pid;
	switch (m.type) {
	case MSG_PING:
		if (leading && mine && m.round == round_no)
			agreed_ms[round_no] = now_ms() - t_sent;
		make_durable();
		send_msg(MSG_PONG, m.round);
		break;
	case MSG_PONG:
		if (!leading || m.round != round_no)
			break;
		if (++answers == members) {
			all_ms[round_no] = now_ms() - t_sent;
			round_no++;
			next_round();
		}
		break;
	case MSG_QUIT:
		quit = true;
		break;
	}
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *group,
		       const struct cpg_address *member_list, size_t n_members,
		       const struct cpg_address *left, size_t n_left,
		       const struct cpg_address *joined, size_t n_joined)
{
	/* The answerers leave once QUIT is delivered: the leader may see that
	 * in the same dispatch, after its own QUIT. */
	if (leading && started && !quit && n_left > 0) {
		fprintf(stderr, "a member left the group during the run\n");
		failed = true;
	}
	if (!started)
		members = (unsigned)n_members; /* who must answer, from the first round on */
	if (leading && !started && members >= want_members) {
		started = true;
		next_round();
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, unsigned n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	unsigned i = (unsigned)(p * (n - 1) + 0.5);
	return v[i];
}

static void usage(void)
{
	fprintf(stderr, "usage: cpg-floor lead MEMBERS ROUNDS [--fsync DIR]\n"
			"       cpg-floor answer [--fsync DIR]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	int argi = 2;
	if (strcmp(argv[1], "lead") == 0) {
		if (argc < 4)
			usage();
		leading = true;
		want_members = (unsigned)atoi(argv[2]);
		rounds = (unsigned)atoi(argv[3]);
		if (want_members < 1 || rounds < 1)
			usage();
		argi = 4;
	} else if (strcmp(argv[1], "answer") != 0) {
		usage();
	}
	const char *dir = NULL;
	if (argi + 1 < argc && strcmp(argv[argi], "--fsync") == 0)
		dir = argv[argi + 1];
	else if (argi < argc)
		usage();
	if (dir) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/cpg-floor.%d", dir, (int)getpid());
		sync_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (sync_fd < 0) {
			perror(path);
			return 1;
		}
		unlink(path);
	}
	agreed_ms = calloc(rounds ? rounds : 1, sizeof(double));
	all_ms = calloc(rounds ? rounds : 1, sizeof(double));
	cpg_callbacks_t cb = { .cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg };
	cs_error_t rc = cpg_initialize(&handle, &cb);
	if (rc != CS_OK) {
		fprintf(stderr, "cpg_initialize: error %d (is corosync running?)\n", rc);
		return 1;
	}
	unsigned int local;
	cpg_local_get(handle, &local);
	my_nodeid = local;
	my_pid = (uint32_t)getpid();
	struct cpg_name name;
	strcpy(name.value, "herd-cpg-floor");
	name.length = (uint32_t)strlen(name.value);
	while ((rc = cpg_join(handle, &name)) == CS_ERR_TRY_AGAIN)
		usleep(10000);
	if (rc != CS_OK) {
		fprintf(stderr, "cpg_join: error %d\n", rc);
		return 1;
	}
	int fd;
	cpg_fd_get(handle, &fd);
	double deadline = now_ms() + 600e3;
	while (!quit && !failed) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) < 0 && errno != EINTR)
			return 1;
		rc = cpg_dispatch(handle, CS_DISPATCH_ALL);
		if (rc != CS_OK && rc != CS_ERR_TRY_AGAIN) {
			fprintf(stderr, "cpg_dispatch: error %d\n", rc);
			return 1;
		}
		if (now_ms() > deadline) {
			fprintf(stderr, "no end after 10 minutes (round %u of %u, %u members)\n",
				round_no, rounds, members);
			return 1;
		}
	}
	cpg_leave(handle, &name);
	cpg_finalize(handle);
	if (failed)
		return 1;
	if (leading)
		printf("rounds=%u members=%u agreed_p50_ms=%.2f agreed_p99_ms=%.2f all_p50_ms=%.2f "
		       "all_p99_ms=%.2f\n",
		       rounds, members, pct(agreed_ms, rounds, 0.5), pct(agreed_ms, rounds, 0.99),
		       pct(all_ms, rounds, 0.5), pct(all_ms, rounds, 0.99));
	return 0;
}
