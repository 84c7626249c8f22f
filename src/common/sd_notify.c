#include "common/sd_notify.h"

#include "common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct herdd_notify {
	int fd;
	struct sockaddr_un addr;
	socklen_t addr_len;
	uint64_t watchdog_usec;   /* 0: no watchdog for this process */
	guint watchdog_timer;
	bool failing;             /* the last send failed (logged once) */
};

/* @path as a unix socket address; '@' starts an abstract one (Linux). */
static bool parse_address(const char *path, struct sockaddr_un *addr, socklen_t *len)
{
	size_t n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n < 2 || n >= sizeof(addr->sun_path))
		return false;
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, path, n);
	if (path[0] == '@') {
		/* Abstract: a leading NUL, and the length says where it ends. */
		addr->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return true;
}

/* The watchdog interval for this process from $WATCHDOG_USEC and
 * $WATCHDOG_PID (a watchdog meant for another process is not ours); 0: none. */
static uint64_t parse_watchdog(const char *usec, const char *pid)
{
	if (!usec)
		return 0;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(usec, &end, 10);
	if (errno || end == usec || *end || v == 0 || usec[0] == '-') {
		log_warn("ignoring WATCHDOG_USEC='%s': not a positive number of microseconds", usec);
		return 0;
	}
	if (pid) {
		errno = 0;
		long long p = strtoll(pid, &end, 10);
		if (errno || end == pid || *end || p != (long long)getpid())
			return 0;
	}
	return v;
}

herdd_notify *herdd_notify_from_env(void)
{
	g_autofree char *path = g_strdup(g_getenv("NOTIFY_SOCKET"));
	g_autofree char *usec = g_strdup(g_getenv("WATCHDOG_USEC"));
	g_autofree char *pid = g_strdup(g_getenv("WATCHDOG_PID"));
	g_unsetenv("NOTIFY_SOCKET");
	g_unsetenv("WATCHDOG_USEC");
	g_unsetenv("WATCHDOG_PID");
	if (!path || !*path)
		return NULL;
	herdd_notify *n = g_new0(herdd_notify, 1);
	n->fd = -1;
	if (!parse_address(path, &n->addr, &n->addr_len)) {
		log_warn("ignoring NOTIFY_SOCKET='%s': not a unix socket path or '@' address", path);
		herdd_notify_free(n);
		return NULL;
	}
	/* Non-blocking: a manager that does not read must never stall the
	 * main loop (that is for the watchdog to notice, not to cause). */
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0) {
		log_warn("cannot make a socket for NOTIFY_SOCKET: %s", g_strerror(errno));
		herdd_notify_free(n);
		return NULL;
	}
	n->watchdog_usec = parse_watchdog(usec, pid);
	return n;
}

uint64_t herdd_notify_watchdog_usec(const herdd_notify *n)
{
	return n ? n->watchdog_usec : 0;
}

static void send_state(herdd_notify *n, const char *state)
{
	if (sendto(n->fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&n->addr,
		   n->addr_len) >= 0) {
		if (n->failing)
			log_info("the service manager takes notifications again");
		n->failing = false;
		return;
	}
	if (!n->failing)
		log_warn("cannot notify the service manager (%.*s): %s", (int)strcspn(state, "\n"),
			 state, g_strerror(errno));
	n->failing = true;
}

static gboolean on_watchdog(gpointer data)
{
	send_state(data, "WATCHDOG=1");
	return G_SOURCE_CONTINUE;
}

void herdd_notify_ready(herdd_notify *n, const char *status)
{
	if (!n)
		return;
	g_autofree char *msg = status ? g_strdup_printf("READY=1\nSTATUS=%s", status)
				      : g_strdup("READY=1");
	send_state(n, msg);
	if (n->watchdog_usec && !n->watchdog_timer) {
		send_state(n, "WATCHDOG=1");
		/* Half the interval, as sd_watchdog_enabled(3) advises: one late
		 * tick is no kill.  At least 1 ms: a 0 ms timer would spin. */
		guint ms = (guint)MAX(MIN(n->watchdog_usec / 2000, (uint64_t)G_MAXUINT), 1);
		n->watchdog_timer = g_timeout_add(ms, on_watchdog, n);
		log_info("feeding the service manager's watchdog every %u ms", ms);
	}
}

void herdd_notify_stopping(herdd_notify *n)
{
	if (!n)
		return;
	if (n->watchdog_timer) {
		g_source_remove(n->watchdog_timer);
		n->watchdog_timer = 0;
	}
	send_state(n, "STOPPING=1");
}

void herdd_notify_extend_timeout(herdd_notify *n, uint64_t usec, const char *status)
{
	if (!n)
		return;
	g_autofree char *msg = status ? g_strdup_printf("EXTEND_TIMEOUT_USEC=%" PRIu64 "\nSTATUS=%s", usec, status)
				      : g_strdup_printf("EXTEND_TIMEOUT_USEC=%" PRIu64, usec);
	send_state(n, msg);
}

void herdd_notify_free(herdd_notify *n)
{
	if (!n)
		return;
	if (n->watchdog_timer)
		g_source_remove(n->watchdog_timer);
	if (n->fd >= 0)
		close(n->fd);
	g_free(n);
}
