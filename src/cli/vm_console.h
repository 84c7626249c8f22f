/*
 * herd vm console NAME --port PORT: a local TCP port for a VNC viewer,
 * forwarded to the VM's console websocket on the API (docs/console.md).
 */
#pragma once

#include "cli/cli.h"

/* Listen on 127.0.0.1:@port and carry each viewer that connects, one at a
 * time, to VM @vm's console (a new ticket each); until interrupted, or an
 * error (the exit code). */
int cli_vm_console_forward(cli_ctx *ctx, const char *vm, int port);
