/*
 * Listening sockets: herd-san's control socket, and the two sockets of a
 * volume that herd-san makes and hands to nbdkit (socket activation).
 */
#pragma once

#include <glib.h>
#include <stdint.h>

/* A listening unix stream socket at @path (a stale socket file there is
 * replaced), mode 0600, close-on-exec; -1 with @error. */
int san_listen_unix(const char *path, GError **error);

/* A listening TCP socket on @address (an IP literal) and @port, with
 * SO_REUSEADDR, close-on-exec; -1 with @error naming the address. */
int san_listen_tcp(const char *address, uint16_t port, GError **error);

/* Connect to the unix stream socket @path, non-blocking; -1 with errno. */
int san_connect_unix(const char *path);
