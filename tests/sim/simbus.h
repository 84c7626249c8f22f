/*
 * The simulated CPG bus of the deterministic simulators: configurations
 * (groups of members in one partition), agreed delivery order inside each,
 * and virtual synchrony when configurations change — members that move on
 * together into a new configuration deliver the same prefix of what was in
 * flight in the old one, then the configuration change, then the new
 * configuration's messages.  Members learn of a change when they reach it
 * in the delivery order and send with their old view until then, as with
 * corosync.
 *
 * A simulator embeds a simbus_member in each of its nodes and says which
 * are up and in which partition; simbus_recompute() forms the
 * configurations; the simulator delivers at its own pace.
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define SIMBUS_MAX_MEMBERS 8

typedef struct simbus_group simbus_group;

typedef struct simbus_member {
	unsigned id;
	int partition;
	simbus_group *grp;      /* its current configuration, NULL while down */
} simbus_member;

/* An item of a configuration's delivery order: a message, or the
 * configuration change that opens it (bytes NULL, members set). */
typedef struct simbus_msg {
	unsigned sender;
	GBytes *bytes;
	uint32_t members[SIMBUS_MAX_MEMBERS];
	unsigned n_members;
	unsigned cfg_id;
} simbus_msg;

struct simbus_group {
	unsigned id;
	GPtrArray *members;     /* simbus_member*, sorted by id */
	GQueue *inflight;       /* simbus_msg* */
};

typedef struct simbus {
	GRand *rng;             /* the simulator's */
	GPtrArray *groups;      /* simbus_group* */
	unsigned cfg_counter;
	/* Deliver @msg to @m (also a configuration change). */
	void (*deliver)(simbus_member *m, const simbus_msg *msg, gpointer user);
	/* A new configuration @g was formed (for traces and counts). */
	void (*formed)(simbus_group *g, gpointer user);
	gpointer user;
} simbus;

void simbus_init(simbus *b, GRand *rng, gpointer user);
void simbus_clear(simbus *b);

/* Multicast from @m in its configuration; false while it is in none. */
bool simbus_send(simbus_member *m, const void *msg, size_t len);

/* Form the configurations of the members that are up (@up, @n of them,
 * sorted by id) by partition; members not in @up leave theirs. */
void simbus_recompute(simbus *b, simbus_member **up, unsigned n);

/* A random configuration with something in flight, or NULL. */
simbus_group *simbus_busy_group(simbus *b);
/* Deliver the next item of @g's order to all its members. */
void simbus_deliver_next(simbus *b, simbus_group *g);
/* Nothing in flight anywhere. */
bool simbus_quiet(simbus *b);

/*
 * The simulators' command line: --seed N (one seed), --seeds N (N seeds
 * from --first, default 1), --steps N, --verbose; @run runs one seed and
 * returns its exit status.  Logs at @verbose_level with --verbose, not at
 * all otherwise.  Ends with a line "N seeds in T s (R seeds/s)".
 */
/* Should a run print its one line per seed?  (Not for thousands of seeds.) */
extern bool sim_print_each;

int sim_main(int argc, char **argv, const char *name, const char *what,
	     int (*run)(guint64 seed, unsigned steps, bool verbose), int verbose_level);
