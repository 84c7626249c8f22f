/*
 * One JSON-lines connection on a non-blocking stream socket, driven by the
 * GLib main loop: herdd's connections to herd-san and herd-san's connection
 * to a plugin's control socket.  Lines are bounded (SAN_LINE_MAX); what is
 * queued for writing is bounded too, so a peer that stops reading is cut
 * off rather than growing herd-san without end.  Reading never blocks.
 */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

/* Queued output beyond this closes the connection. */
#define SAN_JSONL_OUT_MAX (4 * 1024 * 1024)

typedef struct san_jsonl san_jsonl;

typedef struct {
	/* One line (without its newline, NUL-terminated). */
	void (*line)(san_jsonl *c, const char *line, void *data);
	/* The connection ended: EOF, an error, an over-long line or a full
	 * output queue (@why says which).  Called once; the owner frees @c
	 * (here or later), never from within line(). */
	void (*closed)(san_jsonl *c, const char *why, void *data);
} san_jsonl_ops;

/* Take over @fd (made non-blocking, closed by san_jsonl_free). */
san_jsonl *san_jsonl_new(int fd, const san_jsonl_ops *ops, void *data);

/* Queue @msg as one line.  False if the connection is closed or closes now
 * (its output queue is full: closed() follows from the main loop). */
bool san_jsonl_send(san_jsonl *c, json_t *msg);

/* End the connection from the main loop (closed() is called with @why). */
void san_jsonl_shutdown(san_jsonl *c, const char *why);

void san_jsonl_free(san_jsonl *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(san_jsonl, san_jsonl_free)
