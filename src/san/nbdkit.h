/*
 * A volume's nbdkit as a process: started by socket activation in its own
 * session (so that neither a signal to herd-san's process group nor
 * herd-san's exit reaches it), recognised again by a restarted herd-san
 * from its pid file, and watched through a pidfd (which works for a process
 * herd-san did not start, unlike waitpid).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

/*
 * Start @argv (argv[0] an absolute path) with @unix_fd as fd 3 and @tcp_fd
 * as fd 4, LISTEN_FDS=2 and LISTEN_PID its own pid, stdin /dev/null, stdout
 * and stderr herd-san's stderr, no other fds, default signal handling, in a
 * new session, and not as herd-san's child (a double fork: see nbdkit.c).
 * The pid, or -1 with @error.
 */
pid_t san_nbdkit_spawn(char *const *argv, int unix_fd, int tcp_fd, GError **error);

/* True if @pid runs nbdkit with "control=@ctl_path" on its command line: a
 * pid file's pid is that volume's nbdkit, not a recycled pid. */
bool san_nbdkit_matches(pid_t pid, const char *ctl_path);

/* The pid of a running nbdkit with "control=@ctl_path" found in /proc, or 0:
 * for a herd-san that died before it wrote the pid file. */
pid_t san_nbdkit_find(const char *ctl_path);

/* A pidfd for @pid (readable once it exits); -1 with errno. */
int san_pidfd_open(pid_t pid);
