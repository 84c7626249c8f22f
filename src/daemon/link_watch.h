/*
 * herdd's watch on the heartbeat links (requirement C2): every
 * LINK_WATCH_PERIOD_MS it takes which knet links to each other node in
 * corosync's ring are connected, as corosync last said (asked about once
 * its ring has settled: cluster/corosync.c), and hands its view to the HA
 * engine, which sends it in the node's STATUS when it changed
 * (herd_ha_set_links(), at most LINKS_REPORT_DELAY_MS later): so every
 * node shows every node's view, and the coordinator alerts on a link down
 * (ha/links.h).
 */
#pragma once

#include "cluster/service.h"
#include "ha/ha.h"

#define LINK_WATCH_PERIOD_MS 1000

typedef struct herd_link_watch herd_link_watch;

herd_link_watch *herd_link_watch_new(herd_cluster *cluster, herd_ha *ha, const char *node_name);
void herd_link_watch_free(herd_link_watch *w);
