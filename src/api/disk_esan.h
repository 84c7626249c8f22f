/*
 * eSAN disks in the disks resource (api/disk.c): create one with a replica
 * on each of two nodes, and what a disk's JSON shows of its replicas —
 * the store's state of each and what each node's herd-san reports
 * (connected, syncing with progress, standalone, split brain).
 */
#pragma once

#include "api/common.h"
#include "store/vm.h"

/* POST /api/v1/disks with "esan": ["n1","n2"] (or "n1,n2"): no storage,
 * raw.  Answers @req. */
void api_disk_esan_create(http_request *req, api_ctx *a, json_t *body, const char *name);
/* Grow eSAN disk @o to @size (checked by the caller); answers @req. */
void api_disk_esan_resize(http_request *req, api_ctx *a, store_object *o, uint64_t size);
/* Add its eSAN part to disk @o's JSON @j. */
void api_disk_esan_json(api_ctx *a, const store_object *o, json_t *j);
/* Why VM @vm (named @vm_name) cannot run on node @node (a name) for its
 * eSAN disks: the first of them with a replica on @node that is not up to
 * date, as a sentence that names the VM, the disk and the node, says what
 * the replica is doing (synchronised with its progress, waiting for its
 * link, detached) and what to do ("VM w1 cannot be migrated to node n1:
 * ..."); NULL if none (g_free).  @what is "be migrated" or the like. */
char *api_disk_esan_not_on(api_ctx *a, const store_vm *vm, const char *vm_name, const char *node,
			   const char *what);
