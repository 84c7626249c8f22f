/*
 * The API's live updates (events.c): GET /api/v1/events as server-sent
 * events, one message per store change applied here and per membership
 * change, so that browsers refetch what changed instead of polling.
 */
#pragma once

#include "api/context.h"
#include "api/http.h"

/* Streams one node serves at once; one more is refused (503). */
#define EVENTS_MAX_STREAMS 32u
/* Bytes waiting for one client at most; a client further behind is cut
 * off (it reconnects and reloads what it shows). */
#define EVENTS_QUEUE_BYTES (256u * 1024)
/* A comment this often keeps idle streams alive and finds clients gone. */
#define EVENTS_KEEPALIVE_S 15

/* GET /api/v1/events */
void api_events_get(http_request *req, gpointer user_data);
/* Streams open now. */
guint api_events_streams(api_ctx *a);
