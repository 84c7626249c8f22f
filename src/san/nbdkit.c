#include "san/nbdkit.h"

#include "common/error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The environment for the child: ours without LISTEN_*, plus LISTEN_FDS=2
 * and a LISTEN_PID= whose digits the child fills in after fork (no malloc
 * between fork and exec: herd-san has threads). */
static char **child_environment(char **pid_slot)
{
	GPtrArray *env = g_ptr_array_new();
	for (char **e = environ; *e; e++)
		if (!g_str_has_prefix(*e, "LISTEN_") && !g_str_has_prefix(*e, "NOTIFY_SOCKET="))
			g_ptr_array_add(env, g_strdup(*e));
	g_ptr_array_add(env, g_strdup("LISTEN_FDS=2"));
	char *pid = g_strnfill(strlen("LISTEN_PID=") + 20, '\0');
	memcpy(pid, "LISTEN_PID=", strlen("LISTEN_PID="));
	*pid_slot = pid + strlen("LISTEN_PID=");
	g_ptr_array_add(env, pid);
	g_ptr_array_add(env, NULL);
	return (char **)g_ptr_array_free(env, FALSE);
}

static void format_pid(char *out, pid_t pid)
{
	char digits[20];
	int n = 0;
	unsigned long v = (unsigned long)pid;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < 20);
	for (int i = 0; i < n; i++)
		out[i] = digits[n - 1 - i];
	out[n] = '\0';
}

/* Between fork and exec: async-signal-safe calls only. */
static G_NORETURN void exec_nbdkit(char *const *argv, char **envp, char *pid_slot, int null_fd, int unix_fd,
				   int tcp_fd)
{
	/* Out of the way of 0-4 first: a source may be one of the targets. */
	int u = fcntl(unix_fd, F_DUPFD, 10), t = fcntl(tcp_fd, F_DUPFD, 10), n = fcntl(null_fd, F_DUPFD, 10);
	if (u < 0 || t < 0 || n < 0 || dup2(n, 0) < 0 || dup2(2, 1) < 0 || dup2(u, 3) < 0 || dup2(t, 4) < 0)
		_exit(126);
	syscall(SYS_close_range, 5U, ~0U, 0U);
	format_pid(pid_slot, getpid());
	execve(argv[0], argv, envp);
	_exit(127);
}

/*
 * The middle process of the double fork: a new session, then nbdkit's
 * process, whose pid goes to herd-san through @report_fd.  nbdkit 1.32
 * (Debian's) sets PR_SET_PDEATHSIG to SIGTERM even without
 * --exit-with-parent: were it herd-san's child, herd-san's exit would stop
 * it.  So its parent is this process, which exits at once, and nbdkit
 * execs only once it has been handed to the reaper (its parent changed):
 * the death signal then belongs to a parent that does not die.
 */
static G_NORETURN void middle(char *const *argv, char **envp, char *pid_slot, int null_fd, int unix_fd,
			      int tcp_fd, int report_fd)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	pid_t self = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		struct timespec ms = { 0, 1000000 };
		for (int i = 0; getppid() == self; i++) {
			if (i > 10000)
				_exit(125);
			nanosleep(&ms, NULL);
		}
		exec_nbdkit(argv, envp, pid_slot, null_fd, unix_fd, tcp_fd);
	}
	ssize_t w = write(report_fd, &pid, sizeof pid);
	_exit(pid > 0 && w == (ssize_t)sizeof pid ? 0 : 1);
}

pid_t san_nbdkit_spawn(char *const *argv, int unix_fd, int tcp_fd, GError **error)
{
	int report[2];
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0 || pipe2(report, O_CLOEXEC) < 0) {
		herd_refuse(error, HERD_ERR_IO, "Cannot start %s: %s.", argv[0], g_strerror(errno));
		if (null_fd >= 0)
			close(null_fd);
		return -1;
	}
	char *pid_slot = NULL;
	g_auto(GStrv) envp = child_environment(&pid_slot);
	pid_t mid = fork();
	if (mid == 0)
		middle(argv, envp, pid_slot, null_fd, unix_fd, tcp_fd, report[1]);
	int err = errno;
	close(null_fd);
	close(report[1]);
	pid_t pid = -1;
	if (mid > 0) {
		ssize_t n;
		do
			n = read(report[0], &pid, sizeof pid);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof pid)
			pid = -1;
		waitpid(mid, NULL, 0);
	}
	close(report[0]);
	if (pid <= 0) {
		herd_refuse(error, HERD_ERR_IO, "Cannot start %s: fork failed: %s.", argv[0],
			    g_strerror(mid < 0 ? err : EAGAIN));
		return -1;
	}
	return pid;
}

bool san_nbdkit_matches(pid_t pid, const char *ctl_path)
{
	g_autofree char *comm_path = g_strdup_printf("/proc/%d/comm", (int)pid);
	g_autofree char *cmd_path = g_strdup_printf("/proc/%d/cmdline", (int)pid);
	g_autofree char *comm = NULL, *cmdline = NULL;
	gsize len = 0;
	if (!g_file_get_contents(comm_path, &comm, NULL, NULL) || strcmp(g_strchomp(comm), "nbdkit") != 0 ||
	    !g_file_get_contents(cmd_path, &cmdline, &len, NULL))
		return false;
	g_autofree char *want = g_strdup_printf("control=%s", ctl_path);
	for (gsize i = 0; i < len; i += strlen(cmdline + i) + 1)
		if (strcmp(cmdline + i, want) == 0)
			return true;
	return false;
}

pid_t san_nbdkit_find(const char *ctl_path)
{
	g_autoptr(GDir) dir = g_dir_open("/proc", 0, NULL);
	const char *name;
	while (dir && (name = g_dir_read_name(dir))) {
		char *end = NULL;
		gint64 pid = g_ascii_strtoll(name, &end, 10);
		if (pid > 1 && end && !*end && san_nbdkit_matches((pid_t)pid, ctl_path))
			return (pid_t)pid;
	}
	return 0;
}

int san_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}
