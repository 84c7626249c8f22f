/* A listening TCP socket (common/tcp_listen.h). */
#include "common/tcp_listen.h"

#include "common/error.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int herd_tcp_listen(const char *address, int port, int backlog, GError **error)
{
	bool any = !address || !*address || strcmp(address, "*") == 0;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST,
				  .ai_family = any ? AF_INET6 : AF_UNSPEC };
	struct addrinfo *res = NULL;
	g_autofree char *service = g_strdup_printf("%d", port);
	int gai = getaddrinfo(any ? NULL : address, service, &hints, &res);
	if (gai != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Cannot listen on '%s': %s.", address, gai_strerror(gai));
		return -1;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, zero = 0;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (res->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, any ? &zero : &one, sizeof(int));
	}
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_IO, "Cannot listen on %s port %d: %s.",
			    any ? "all addresses" : address, port, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	return fd;
}
