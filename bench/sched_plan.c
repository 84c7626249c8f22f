/*
 * Benchmark of the HA scheduler (src/ha/sched.c): the time of one
 * sched_plan_compute() for a large cluster, which the coordinator runs after
 * every change of facts or configuration.
 *
 *   sched-plan [NODES [VMS [ROUNDS]]]      (default 32 10000 30)
 *
 * Three states of NODES online nodes and VMS HA VMs (1 GiB, 1 vCPU; one in
 * four in an anti-affinity group of three, such as a service's replicas;
 * one in three with a preferred node).  Each node has room for a fifth more than its share after the loss
 * of one node (RAM, and CPUs at herd's default 4 vCPUs per CPU):
 *   steady    every VM runs on its node: the plan is empty (the usual round);
 *   failover  one node was lost and is fenced: its VMs are placed elsewhere;
 *   cold      the whole cluster started, nothing assigned: every VM placed;
 *   short     as steady, on nodes with no spare room: N+1 fails for every
 *             node, and the plan counts, per node, every HA VM that would
 *             find no room (unsafe_if_lost) — the N+1 check's worst case.
 * Prints, per state, the number of actions and the wall time per plan
 * (p50 and max over ROUNDS), then the target line.  DESIGN.md section 4:
 * 32 nodes x 10,000 VMs <= 20 ms per plan.  Asserts nothing about time.
 */
#include "ha/sched.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
	sched_node *nodes;
	size_t n_nodes;
	sched_vm *vms;
	size_t n_vms;
	char **strings;       /* everything the structs above point to */
	size_t n_strings;
	const char **seen;    /* seen_on arrays, one per VM */
} cluster;

static const char *keep(cluster *c, char *s)
{
	c->strings[c->n_strings++] = s;
	return s;
}

static cluster *cluster_new(size_t n_nodes, size_t n_vms)
{
	cluster *c = g_new0(cluster, 1);
	c->n_nodes = n_nodes;
	c->n_vms = n_vms;
	c->nodes = g_new0(sched_node, n_nodes);
	c->vms = g_new0(sched_vm, n_vms);
	c->strings = g_new0(char *, n_nodes + 3 * n_vms);
	c->seen = g_new0(const char *, n_vms);
	for (size_t i = 0; i < n_nodes; i++) {
		sched_node *n = &c->nodes[i];
		n->name = keep(c, g_strdup_printf("n%zu", i + 1));
		n->mode = STORE_NODE_ONLINE;
		n->in_ring = n->herd_up = n->fence_covered = true;
		/* Room for 1.2 x VMS / (NODES - 1) VMs. */
		size_t room = (n_vms * 6 / 5) / (n_nodes - 1) + 1;
		n->memory_mib = room * 1024;
		n->cpus = (unsigned)((room + 3) / 4);
	}
	for (size_t k = 0; k < n_vms; k++) {
		sched_vm *v = &c->vms[k];
		v->uuid = keep(c, g_strdup_printf("00000000-0000-4000-8000-%012zx", k));
		v->name = keep(c, g_strdup_printf("vm%zu", k));
		v->target_running = true;
		v->ha = true;
		v->failback = true;
		v->memory_mib = 1024;
		v->vcpus = 1;
		/* Preferred where state_steady() puts it: nothing fails back. */
		v->preferred = k % 3 == 0 ? c->nodes[k % n_nodes].name : NULL;
		/* VMs 0, 4, 8 in group 0; 12, 16, 20 in group 1… */
		if (k % 4 == 0)
			v->group = k % 12 == 0 ? keep(c, g_strdup_printf("group%zu", k / 12)) : c->vms[k - 4].group;
	}
	return c;
}

static void cluster_free(cluster *c)
{
	for (size_t i = 0; i < c->n_strings; i++)
		g_free(c->strings[i]);
	g_free(c->strings);
	g_free(c->seen);
	g_free(c->vms);
	g_free(c->nodes);
	g_free(c);
}

/* Every VM runs, steady, where it is assigned: VM k on node k mod N. */
static void state_steady(cluster *c)
{
	for (size_t i = 0; i < c->n_nodes; i++) {
		c->nodes[i].in_ring = c->nodes[i].herd_up = true;
		c->nodes[i].down = false;
	}
	for (size_t k = 0; k < c->n_vms; k++) {
		sched_vm *v = &c->vms[k];
		v->node = c->nodes[k % c->n_nodes].name;
		c->seen[k] = v->node;
		v->seen_on = &c->seen[k];
		v->n_seen = 1;
		v->steady = true;
	}
}

/* Node n1 was lost and is fenced: its VMs are to be placed elsewhere. */
static void state_failover(cluster *c)
{
	state_steady(c);
	sched_node *lost = &c->nodes[0];
	lost->in_ring = lost->herd_up = false;
	lost->down = true;
	for (size_t k = 0; k < c->n_vms; k++) {
		sched_vm *v = &c->vms[k];
		if (v->node == lost->name) {
			v->seen_on = NULL;
			v->n_seen = 0;
			v->steady = false;
		}
	}
}

/* The whole cluster has just started: no VM is assigned or seen. */
static void state_cold(cluster *c)
{
	state_steady(c);
	for (size_t k = 0; k < c->n_vms; k++) {
		sched_vm *v = &c->vms[k];
		v->node = NULL;
		v->seen_on = NULL;
		v->n_seen = 0;
		v->steady = false;
	}
}

/* Steady, but each node has just the room for its own VMs. */
static void state_short(cluster *c)
{
	state_steady(c);
	size_t share = (c->n_vms + c->n_nodes - 1) / c->n_nodes;
	for (size_t i = 0; i < c->n_nodes; i++) {
		c->nodes[i].memory_mib = share * 1024;
		c->nodes[i].cpus = (unsigned)((share + 3) / 4);
	}
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Plan @rounds times; prints the figures; returns the p50 in ms. */
static double measure(cluster *c, const char *what, unsigned rounds)
{
	sched_input in = {
		.nodes = c->nodes, .n_nodes = c->n_nodes, .vms = c->vms, .n_vms = c->n_vms,
		.admission = SCHED_ADMISSION_WARN, .vcpu_overcommit = 4,
	};
	double *ms = g_new(double, rounds);
	unsigned actions = 0, alerts = 0;
	for (unsigned r = 0; r < rounds; r++) {
		double t0 = now_ms();
		sched_plan *p = sched_plan_compute(&in);
		ms[r] = now_ms() - t0;
		actions = p->actions->len;
		alerts = p->alerts->len;
		sched_plan_free(p);
	}
	qsort(ms, rounds, sizeof(double), by_value);
	double p50 = ms[rounds / 2], max = ms[rounds - 1];
	printf("  %-9s %6u actions %5u alerts   p50 %7.2f ms   max %7.2f ms\n", what, actions, alerts,
	       p50, max);
	g_free(ms);
	return p50;
}

int main(int argc, char **argv)
{
	long nodes = argc > 1 ? strtol(argv[1], NULL, 10) : 32;
	long vms = argc > 2 ? strtol(argv[2], NULL, 10) : 10000;
	long rounds = argc > 3 ? strtol(argv[3], NULL, 10) : 30;
	if (argc > 4 || nodes < 2 || nodes > 1000 || vms < 1 || vms > 1000000 || rounds < 1 ||
	    rounds > 100000) {
		fprintf(stderr, "usage: sched-plan [NODES (2-1000) [VMS (1-1000000) [ROUNDS]]]\n");
		return 2;
	}
	cluster *c = cluster_new((size_t)nodes, (size_t)vms);
	printf("scheduler: one plan for %ld nodes x %ld HA VMs, %ld rounds\n", nodes, vms, rounds);
	state_steady(c);
	double worst = measure(c, "steady", (unsigned)rounds);
	state_failover(c);
	double p = measure(c, "failover", (unsigned)rounds);
	worst = p > worst ? p : worst;
	state_cold(c);
	p = measure(c, "cold", (unsigned)rounds);
	worst = p > worst ? p : worst;
	state_short(c); /* last: it shrinks the nodes */
	p = measure(c, "short", (unsigned)rounds);
	worst = p > worst ? p : worst;
	printf("slowest state p50 %.2f ms per plan (target <= 20 ms at 32 nodes x 10,000 VMs: %s)\n",
	       worst, worst <= 20 ? "met" : "NOT met");
	cluster_free(c);
	return 0;
}
