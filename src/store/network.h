/*
 * A virtual switch as the replicated store holds it: the Linux bridge that
 * every node has for it (made by the operator, as on Proxmox: vmbr0…), and
 * optionally the VLAN its VMs' ports are in.  A VM's NIC names the switch,
 * never the bridge; every node reports whether it has the bridge, and a VM
 * is placed only where all of its switches are.  Read through
 * store_network_of().
 */
#pragma once

#include "store/object.h"
#include "store/state.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

#define STORE_VLAN_MAX 4094

typedef struct store_network {
	const char *bridge;
	unsigned vlan;            /* 1–4094, or 0: untagged */
} store_network;

const store_network *store_network_of(const store_object *o);

/* A Linux interface name: 1–15 of letters, digits, '-', '_' and '.'. */
bool store_bridge_name_ok(const char *name);

json_t *store_network_cmd_create(const char *uuid, const char *name, const char *bridge, unsigned vlan);
json_t *store_network_cmd_delete(const store_object *net);

bool store_network_validate(json_t *data, GError **error);
void *store_network_parse(json_t *data);
void store_network_free(void *typed);
