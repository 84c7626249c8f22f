#include "san/listen.h"

#include "common/error.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static bool unix_address(const char *path, struct sockaddr_un *sa, GError **error)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa->sun_path)
		return herd_refuse(error, HERD_ERR_INVALID, "The socket path '%s' is too long (at most %zu bytes).",
				   path, sizeof sa->sun_path - 1);
	strcpy(sa->sun_path, path);
	return true;
}

int san_listen_unix(const char *path, GError **error)
{
	struct sockaddr_un sa;
	if (!unix_address(path, &sa, error))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		herd_refuse(error, HERD_ERR_IO, "Cannot make a unix socket: %s.", g_strerror(errno));
		return -1;
	}
	/* Only a socket is replaced: a regular file of that name is an error. */
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	int err = errno;
	umask(old);
	if (rc < 0 || listen(fd, 64) < 0) {
		if (rc == 0)
			err = errno;
		herd_refuse(error, HERD_ERR_IO, "Cannot listen on the unix socket '%s': %s.", path, g_strerror(err));
		close(fd);
		return -1;
	}
	return fd;
}

int san_listen_tcp(const char *address, uint16_t port, GError **error)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai = NULL;
	char service[8];
	g_snprintf(service, sizeof service, "%u", port);
	int rc = getaddrinfo(address, service, &hints, &ai);
	if (rc != 0) {
		herd_refuse(error, HERD_ERR_INVALID, "'%s' is not an IP address: %s.", address, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		int err = errno;
		herd_refuse(error, HERD_ERR_IO, "Cannot listen on %s%s%s port %u: %s.",
			    ai->ai_family == AF_INET6 ? "[" : "", address, ai->ai_family == AF_INET6 ? "]" : "", port,
			    g_strerror(err));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

int san_connect_unix(const char *path)
{
	struct sockaddr_un sa;
	if (!unix_address(path, &sa, NULL)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}
