/*
 * herdd's pinger (requirement C3): every ping_interval_ms it sends each of
 * the cluster's ping nodes (the ping_nodes setting) one ICMP echo request
 * from this node, and at the end of the round tells ha/ping.h which
 * answered; the dampened verdict goes to the HA engine, which sends it in
 * the node's STATUS when it changes (herd_ha_set_ping()), so that the
 * scheduler gives the HA VMs of a node that reaches none of them to nodes
 * that reach one.
 *
 * Raw ICMP sockets (herdd runs as root, with CAP_NET_RAW), one for IPv4
 * and one for IPv6, non-blocking on the main loop: a round costs one
 * datagram out and at most one in per ping node, and never waits.  An
 * echo that cannot even be sent (no route) is a ping node not reached; a
 * socket that cannot be opened is this node's fault, not the network's:
 * the node then says nothing about the ping nodes (logged), and is not
 * taken for cut off.
 */
#pragma once

#include "cluster/service.h"
#include "ha/ha.h"

typedef struct herd_ping_watch herd_ping_watch;

herd_ping_watch *herd_ping_watch_new(herd_cluster *cluster, herd_ha *ha);
void herd_ping_watch_free(herd_ping_watch *w);
