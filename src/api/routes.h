/*
 * The REST API's route table and its handlers, one file per resource
 * (api/node.c, …).  Handlers get the daemon context as user data.
 */
#pragma once

#include "api/http.h"
#include "daemon/herdd.h"

extern const http_route herd_api_routes[];
extern const size_t herd_api_n_routes;

/* GET /api/v1/node: this node's identity and versions. */
void api_node_get(http_request *req, gpointer user_data);
/* GET /api/v1/status: the summary `herd status` prints. */
void api_status_get(http_request *req, gpointer user_data);
