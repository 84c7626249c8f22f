/*
 * nodeinit: the init of one test node (see tests/cluster/testnodes): its
 * "power supply", and the supervisor of its herdd as systemd is on a host.
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
 *
 *   nodeinit --supervise NAME --notify-socket PATH --state-file FILE
 *            [--watchdog-ms N] [--restart-ms N] [--start-timeout-ms N]
 *            [--stop-timeout-ms N] -- COMMAND [ARG...]
 *
 * Runs inside a node (node-service starts herdd this way) and does for
 * COMMAND what systemd does for a unit with Type=notify, Restart=always,
 * RestartSec= and WatchdogSec=: it listens on the datagram socket PATH and
 * runs COMMAND with NOTIFY_SOCKET=PATH, WATCHDOG_USEC and WATCHDOG_PID set;
 * it takes READY=1, WATCHDOG=1 and STOPPING=1 from COMMAND's own process only
 * (NotifyAccess=main); it starts COMMAND again --restart-ms (default 1000)
 * after it exits, however it exits (SIGKILL included); it kills it (SIGKILL,
 * where systemd sends SIGABRT) when no WATCHDOG=1 came for --watchdog-ms
 * (default 0: no watchdog) after READY=1, or when READY=1 does not come
 * within --start-timeout-ms (default 30000).  SIGTERM stops it for good:
 * COMMAND gets SIGTERM (and SIGCONT, should it be stopped), SIGKILL after
 * --stop-timeout-ms (default 15000) — or later, as COMMAND asks while it
 * stops with EXTEND_TIMEOUT_USEC=N (now + N, as systemd's TimeoutStopSec
 * is extended) — and the supervisor exits once it is gone.
 * FILE always holds one line "STATE PID" (starting, ready, stopping, exited,
 * stopped; PID the command's, or 0).  Its own lines go to stderr, stamped
 * like herdd's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
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
	fprintf(stderr, "usage: nodeinit --netns PATH --hostname NAME --pidfile FILE\n"
			"       nodeinit --supervise NAME --notify-socket PATH --state-file FILE\n"
			"                [--watchdog-ms N] [--restart-ms N] [--start-timeout-ms N]\n"
			"                [--stop-timeout-ms N] -- COMMAND [ARG...]\n");
	exit(2);
}

/* ------------------------------------------------------------------ */
/* --supervise: a service manager for one command                      */

typedef enum { SV_STARTING, SV_READY, SV_STOPPING, SV_EXITED, SV_STOPPED } sv_state;

static const char *const sv_state_names[] = { "starting", "ready", "stopping", "exited", "stopped" };

typedef struct {
	const char *name;
	char **argv;
	const char *notify_path;
	const char *state_file;
	long watchdog_ms, restart_ms, start_timeout_ms, stop_timeout_ms;
	int notify_fd, signal_fd;
	pid_t child;             /* 0: none running */
	sv_state state;
	bool stop;               /* SIGTERM: stop for good */
	int64_t started_ms;      /* when the child was forked */
	int64_t fed_ms;          /* last READY=1 or WATCHDOG=1 */
	int64_t deadline_ms;     /* the next thing to do (see sv_timeout()); 0: none */
	bool extended;           /* this stop's timeout was extended (logged once) */
} supervisor;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line on stderr, stamped and shaped like herdd's own ("HH:MM:SS.mmm
 * LEVEL supervise: ..."), so that it reads in herdd's log among herdd's. */
static void sv_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sv_log(const char *level, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	char line[1024];
	int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %s supervise: ", tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* One write: the log is shared with the command's own output. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

static void sv_die(const char *what)
{
	sv_log("error", "%s: %s", what, strerror(errno));
	exit(1);
}

/* The state file, replaced whole: a reader sees the old line or the new. */
static void sv_set_state(supervisor *sv, sv_state state)
{
	sv->state = state;
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", sv->state_file) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		sv_die(sv->state_file);
	}
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%s %d\n", sv_state_names[state], (int)sv->child) < 0 || fclose(f) != 0 ||
	    rename(tmp, sv->state_file) < 0)
		sv_die(sv->state_file);
}

static void sv_start(supervisor *sv)
{
	pid_t pid = fork();
	if (pid < 0)
		sv_die("fork");
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		char buf[32];
		setenv("NOTIFY_SOCKET", sv->notify_path, 1);
		if (sv->watchdog_ms > 0) {
			snprintf(buf, sizeof buf, "%lld", (long long)sv->watchdog_ms * 1000);
			setenv("WATCHDOG_USEC", buf, 1);
			snprintf(buf, sizeof buf, "%d", (int)getpid());
			setenv("WATCHDOG_PID", buf, 1);
		} else {
			unsetenv("WATCHDOG_USEC");
			unsetenv("WATCHDOG_PID");
		}
		execvp(sv->argv[0], sv->argv);
		sv_log("error", "cannot run %s: %s", sv->argv[0], strerror(errno));
		_exit(127);
	}
	sv->child = pid;
	sv->started_ms = mono_ms();
	sv->fed_ms = 0;
	sv->deadline_ms = sv->started_ms + sv->start_timeout_ms;
	sv_set_state(sv, SV_STARTING);
	sv_log("info", "started %s: pid %d", sv->name, (int)pid);
}

/* Ask the child to stop (for good, or to be started again on exit). */
static void sv_terminate(supervisor *sv)
{
	if (!sv->child) {
		sv_set_state(sv, SV_STOPPED);
		return;
	}
	kill(sv->child, SIGTERM);
	/* A stopped process would keep SIGTERM pending forever. */
	kill(sv->child, SIGCONT);
	sv->deadline_ms = mono_ms() + sv->stop_timeout_ms;
	sv->extended = false;
	sv_set_state(sv, SV_STOPPING);
}

static void sv_child_exited(supervisor *sv, int status)
{
	double ran_s = (double)(mono_ms() - sv->started_ms) / 1000.0;
	char how[64];
	if (WIFSIGNALED(status))
		snprintf(how, sizeof how, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
	pid_t pid = sv->child;
	sv->child = 0;
	if (sv->stop) {
		sv_log("info", "%s (pid %d) %s after %.1f s; stopped", sv->name, (int)pid, how, ran_s);
		sv_set_state(sv, SV_STOPPED);
		return;
	}
	sv_log("warning", "%s (pid %d) %s after %.1f s; starting it again in %ld ms", sv->name,
	       (int)pid, how, ran_s, sv->restart_ms);
	sv->deadline_ms = mono_ms() + sv->restart_ms;
	sv_set_state(sv, SV_EXITED);
}

/* What the deadline was for has come. */
static void sv_timeout(supervisor *sv)
{
	int64_t now = mono_ms();
	sv->deadline_ms = 0;
	switch (sv->state) {
	case SV_STARTING:
		sv_log("warning", "%s (pid %d) did not say READY=1 within %ld ms: killing it", sv->name,
		       (int)sv->child, sv->start_timeout_ms);
		kill(sv->child, SIGKILL);
		break;
	case SV_READY:
		sv_log("warning", "%s (pid %d) did not feed the watchdog for %lld ms (limit %ld ms): "
		       "killing it", sv->name, (int)sv->child, (long long)(now - sv->fed_ms),
		       sv->watchdog_ms);
		kill(sv->child, SIGKILL);
		break;
	case SV_STOPPING:
		sv_log("warning", "%s (pid %d) has not stopped within %ld ms after SIGTERM%s: killing it",
		       sv->name, (int)sv->child, sv->stop_timeout_ms,
		       sv->extended ? " or the time it asked for" : "");
		kill(sv->child, SIGKILL);
		break;
	case SV_EXITED:
		sv_start(sv);
		break;
	case SV_STOPPED:
		break;
	}
}

/* One notification: newline-separated KEY=VALUE (sd_notify(3)). */
static void sv_notified(supervisor *sv, char *msg)
{
	int64_t now = mono_ms();
	const char *status = NULL;
	bool ready = false, fed = false, stopping = false, trigger = false;
	long long extend_usec = -1;
	for (char *save = NULL, *line = strtok_r(msg, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "READY=1"))
			ready = true;
		else if (!strcmp(line, "WATCHDOG=1"))
			fed = true;
		else if (!strcmp(line, "WATCHDOG=trigger"))
			trigger = true;
		else if (!strcmp(line, "STOPPING=1"))
			stopping = true;
		else if (!strncmp(line, "STATUS=", 7))
			status = line + 7;
		else if (!strncmp(line, "EXTEND_TIMEOUT_USEC=", 20)) {
			char *end = NULL;
			errno = 0;
			long long v = strtoll(line + 20, &end, 10);
			if (!errno && end != line + 20 && !*end && v >= 0)
				extend_usec = v;
		}
	}
	if (ready && sv->state == SV_STARTING) {
		sv_log("info", "%s (pid %d) is ready after %lld ms%s%s", sv->name, (int)sv->child,
		       (long long)(now - sv->started_ms), status ? ": " : "", status ? status : "");
		sv->fed_ms = now;
		sv->deadline_ms = sv->watchdog_ms > 0 ? now + sv->watchdog_ms : 0;
		sv_set_state(sv, SV_READY);
	}
	if (fed && sv->state == SV_READY && sv->watchdog_ms > 0) {
		sv->fed_ms = now;
		sv->deadline_ms = now + sv->watchdog_ms;
	}
	if (trigger && sv->state == SV_READY) {
		sv_log("warning", "%s (pid %d) asked for the watchdog to fire", sv->name, (int)sv->child);
		sv->deadline_ms = now;
	}
	if (stopping && (sv->state == SV_READY || sv->state == SV_STARTING)) {
		/* Shutting down by itself: no watchdog while it does; it is
		 * started again once it has exited. */
		sv_log("info", "%s (pid %d) is stopping", sv->name, (int)sv->child);
		sv->deadline_ms = mono_ms() + sv->stop_timeout_ms;
		sv->extended = false;
		sv_set_state(sv, SV_STOPPING);
	}
	/* As systemd: while it stops, its stop timeout is pushed out to now +
	 * the time asked for (never brought forward). */
	if (extend_usec >= 0 && sv->state == SV_STOPPING && sv->child) {
		int64_t until = now + extend_usec / 1000;
		if (until > sv->deadline_ms) {
			if (!sv->extended)
				sv_log("info", "%s (pid %d) asks for more time to stop%s%s", sv->name,
				       (int)sv->child, status ? ": " : "", status ? status : "");
			sv->extended = true;
			sv->deadline_ms = until;
		}
	}
}

/* Read every waiting datagram; only the child's own count (NotifyAccess=main). */
static void sv_read_notifications(supervisor *sv)
{
	for (;;) {
		char buf[4097];
		union {
			struct cmsghdr h;
			char space[CMSG_SPACE(sizeof(struct ucred))];
		} ctl;
		struct iovec iov = { buf, sizeof buf - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl,
				     .msg_controllen = sizeof ctl };
		ssize_t n = recvmsg(sv->notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				sv_log("warning", "reading %s: %s", sv->notify_path, strerror(errno));
			return;
		}
		buf[n] = '\0';
		pid_t from = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cred;
				memcpy(&cred, CMSG_DATA(c), sizeof cred);
				from = cred.pid;
			}
		if (from == 0 || from != sv->child || (mh.msg_flags & MSG_TRUNC))
			continue;
		sv_notified(sv, buf);
	}
}

static int sv_listen(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (path[0] != '/' || strlen(path) >= sizeof addr.sun_path) {
		errno = EINVAL;
		sv_die(path);
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int on = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
		sv_die("notify socket");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		sv_die(path);
	return fd;
}

static long sv_number(const char *opt, const char *value)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < 0) {
		fprintf(stderr, "nodeinit: %s wants a number of milliseconds, not '%s'\n", opt, value);
		exit(2);
	}
	return v;
}

static int supervise_main(int argc, char **argv)
{
	supervisor sv = { .restart_ms = 1000, .start_timeout_ms = 30000, .stop_timeout_ms = 15000,
			  .notify_fd = -1, .signal_fd = -1 };
	int i = 1;
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (i + 1 >= argc)
			usage();
		const char *opt = argv[i], *val = argv[++i];
		if (!strcmp(opt, "--supervise"))
			sv.name = val;
		else if (!strcmp(opt, "--notify-socket"))
			sv.notify_path = val;
		else if (!strcmp(opt, "--state-file"))
			sv.state_file = val;
		else if (!strcmp(opt, "--watchdog-ms"))
			sv.watchdog_ms = sv_number(opt, val);
		else if (!strcmp(opt, "--restart-ms"))
			sv.restart_ms = sv_number(opt, val);
		else if (!strcmp(opt, "--start-timeout-ms"))
			sv.start_timeout_ms = sv_number(opt, val);
		else if (!strcmp(opt, "--stop-timeout-ms"))
			sv.stop_timeout_ms = sv_number(opt, val);
		else
			usage();
	}
	if (!sv.name || !sv.notify_path || !sv.state_file || i + 1 >= argc)
		usage();
	sv.argv = argv + i + 1;

	/* Signals are read from a descriptor, between notifications. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sv.signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sv.signal_fd < 0)
		sv_die("signalfd");
	sv.notify_fd = sv_listen(sv.notify_path);
	sv_start(&sv);

	while (sv.state != SV_STOPPED) {
		int timeout = -1;
		if (sv.deadline_ms) {
			int64_t left = sv.deadline_ms - mono_ms();
			timeout = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
		}
		struct pollfd fds[2] = { { sv.signal_fd, POLLIN, 0 }, { sv.notify_fd, POLLIN, 0 } };
		if (poll(fds, 2, timeout) < 0 && errno != EINTR)
			sv_die("poll");
		/* Notifications first: a READY=1 sent just before an exit
		 * belongs to the child that sent it. */
		if (fds[1].revents)
			sv_read_notifications(&sv);
		struct signalfd_siginfo si;
		while (read(sv.signal_fd, &si, sizeof si) == sizeof si) {
			if (si.ssi_signo != SIGCHLD) {
				if (!sv.stop)
					sv_log("info", "stopping %s for good (signal %d)", sv.name,
					       (int)si.ssi_signo);
				sv.stop = true;
				if (sv.state != SV_STOPPING)
					sv_terminate(&sv);
			}
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			if (pid == sv.child)
				sv_child_exited(&sv, status);
		if (sv.deadline_ms && mono_ms() >= sv.deadline_ms)
			sv_timeout(&sv);
	}
	unlink(sv.notify_path);
	return 0;
}


int main(int argc, char **argv)
{
	const char *netns = NULL, *hostname = NULL, *pidfile = NULL;

	if (argc > 1 && !strcmp(argv[1], "--supervise"))
		return supervise_main(argc, argv);
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
