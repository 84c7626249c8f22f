/*
 * A disk as the API shows it (GET /api/v1/disks, and every answer about a
 * disk): for api/disk.c and api/disk_esan.c.
 */
#pragma once

#include "api/common.h"

/* Disk @o's JSON; @used: the bytes its file takes, or NULL (unknown). */
json_t *api_disk_json(api_ctx *a, store_object *o, json_t *used);
