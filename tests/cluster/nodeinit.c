/*
 * nodeinit: the "power supply" of one test node (see tests/cluster/testnodes).
 *
 *   nodeinit --netns PATH --hostname NAME --pidfile FILE
 *
 * Joins the network namespace PATH (made by `ip netns add`), creates new
 * mount, uts, ipc and pid namespaces, and forks the node's init: PID 1 of the
 * new pid namespace.  That init makes every mount private (so nothing the node
 * mounts leaks back to the host), sets the host name, mounts a /proc for its
 * pid namespace, and then does nothing but reap the zombies of the node's
 * daemons, which are reparented to it when the commands that started them
 * exit.
 *
 * The parent writes the init's host PID to FILE once the init is ready and
 * exits, so that `testnodes` can enter the node with nsenter.  SIGKILL of that
 * PID is a power cut: the kernel kills every process of a pid namespace when
 * its init dies, and the node's mounts (its private /run and /dev/shm
 * included) go away with the last of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "nodeinit: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The node's PID 1: set up the namespace, report readiness on @ready_fd, reap. */
static void node_init(const char *hostname, int ready_fd)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("making / private");
	if (sethostname(hostname, strlen(hostname)) < 0)
		die("sethostname");
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		die("mounting /proc");
	if (chdir("/") < 0)
		die("chdir /");
	setsid();

	/* Signals are taken synchronously: SIGCHLD means "reap".  Everything
	 * else sent from inside the node is ignored, as the kernel does for a
	 * namespace init without handlers; SIGKILL from the host still works. */
	sigset_t set;
	sigfillset(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (write(ready_fd, "ok", 2) != 2)
		die("reporting readiness");
	close(ready_fd);

	for (;;) {
		siginfo_t info;
		if (sigwaitinfo(&set, &info) < 0 && errno != EINTR)
			die("sigwaitinfo");
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: nodeinit --netns PATH --hostname NAME --pidfile FILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *netns = NULL, *hostname = NULL, *pidfile = NULL;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--netns"))
			netns = argv[++i];
		else if (!strcmp(argv[i], "--hostname"))
			hostname = argv[++i];
		else if (!strcmp(argv[i], "--pidfile"))
			pidfile = argv[++i];
		else
			usage();
	}
	if (!netns || !hostname || !pidfile)
		usage();

	int fd = open(netns, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(netns);
	if (setns(fd, CLONE_NEWNET) < 0)
		die("setns (network)");
	close(fd);
	if (unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID) < 0)
		die("unshare");

	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(ready[0]);
		node_init(hostname, ready[1]);
	}
	close(ready[1]);

	char buf[2];
	if (read(ready[0], buf, sizeof buf) != 2) {
		/* The init printed why; collect it so no zombie stays. */
		waitpid(pid, NULL, 0);
		fprintf(stderr, "nodeinit: the init of %s failed to start\n", hostname);
		return 1;
	}

	/* Write-then-rename: a reader never sees a half-written PID. */
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", pidfile) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		die(pidfile);
	}
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0 || rename(tmp, pidfile) < 0) {
		int saved = errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		errno = saved;
		die(pidfile);
	}
	return 0;
}
