#include "api/routes.h"

const http_route herd_api_routes[] = {
	{ "GET", "/api/v1/node", api_node_get, HTTP_ROUTE_PUBLIC },
	{ "GET", "/api/v1/status", api_status_get, 0 },
};
const size_t herd_api_n_routes = G_N_ELEMENTS(herd_api_routes);
