/*
 * herd-san's connection to one volume's plugin (its control= socket): made
 * while the volume's nbdkit runs, again and again after it breaks; ops go
 * out as lines and the plugin's answers come back in order to their slots;
 * its events go to the owner.  An op the plugin does not answer within
 * SAN_PLUGIN_ANSWER_MS gets an error and the connection is made anew (so
 * that a late answer cannot land on the wrong op).
 */
#pragma once

#include "san/answer.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

#define SAN_PLUGIN_ANSWER_MS 10000
/* Connecting while nbdkit starts; connecting again after a connection broke. */
#define SAN_PLUGIN_RETRY_MS 200
#define SAN_PLUGIN_RECONNECT_MS 1000

typedef struct san_plugin_link san_plugin_link;

typedef struct {
	/* Connected (again): the owner sends what the plugin must know first. */
	void (*connected)(void *data);
	/* An event line from the plugin (it has "ev"). */
	void (*event)(json_t *ev, void *data);
} san_plugin_link_ops;

san_plugin_link *san_plugin_link_new(const char *ctl_path, const san_plugin_link_ops *ops, void *data);

/* Connect now and whenever the connection breaks, until stopped. */
void san_plugin_link_start(san_plugin_link *l);

/* Disconnect and stop trying; waiting ops get an error. */
void san_plugin_link_stop(san_plugin_link *l);

bool san_plugin_link_is_connected(const san_plugin_link *l);

/* Send @op; its answer fills @a (may be NULL).  Not connected: @a gets an
 * error at once. */
void san_plugin_link_request(san_plugin_link *l, json_t *op, san_answer *a);

void san_plugin_link_free(san_plugin_link *l);
