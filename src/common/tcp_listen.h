/*
 * A listening TCP socket, as herdd's API and its console relay open theirs.
 */
#pragma once

#include <glib.h>

/* A non-blocking, close-on-exec socket listening on @port of @address (NULL,
 * "" or "*": every address, IPv4 and IPv6) with @backlog; -1 with @error
 * (INVALID for an address that is none, IO if it cannot listen). */
int herd_tcp_listen(const char *address, int port, int backlog, GError **error);
