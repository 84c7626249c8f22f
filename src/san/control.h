/*
 * herd-san's control socket (/run/herd/san.sock): herdd's connections, one
 * JSON line per op, answered in order (answer.h), events to all of them.
 * Bad input is refused with a sentence that names the problem and changes
 * nothing.
 */
#pragma once

#include "san/daemon.h"

#include <glib.h>
#include <stdbool.h>

/* Listen on d->socket_path. */
bool san_control_start(san_daemon *d, GError **error);

/* Close the socket and every connection. */
void san_control_stop(san_daemon *d);

/* Apply a config op's request at start-up (the saved one) or from herdd. */
bool san_control_apply_config(san_daemon *d, const san_request *req, GError **error);
