/*
 * GET /api/v1/events: what changes, as server-sent events, so that the web
 * UI refetches what changed instead of polling.
 *
 *   event: change      one per object of the store applied here (every
 *                      kind: VMs, nodes, storage, users; the coordinator's
 *                      alerts and events are alert records):
 *                      {"kind","id","name","op":"create"|"update"|"delete"},
 *                      or {"kind":"*","op":"reload"} when the whole store
 *                      was replaced (a sync)
 *   event: membership  corosync's ring, quorum or herd's group changed
 *                      (a node lost or back): {"group":bool}
 *   event: facts       what a node says of itself changed — a VM of it
 *                      started, stopped, failed, moved — beyond the
 *                      figures that move all the time (free memory, load,
 *                      storage usage), or its eSAN replicas' states
 *                      (connected, syncing N %, outdated; vms empty):
 *                      {"node":NAME,"vms":[UUID…]}, vms
 *                      the VMs whose state, node, error or alert (as GET
 *                      /api/v1/vms shows them) it may change, none if it
 *                      changes no VM's; without vms when that is not known
 *                      VM by VM (the node's hypervisor connection came or
 *                      went, its first facts of a membership round, too
 *                      many VMs at once): a page refetches its whole list
 *   : keepalive        a comment every EVENTS_KEEPALIVE_S, so that a
 *                      client that left is noticed and proxies keep the
 *                      connection
 *
 * Each stream is an http_feed: at most EVENTS_QUEUE_BYTES wait for a
 * client, one that falls further behind is cut off (its browser reconnects
 * and reloads); at most EVENTS_MAX_STREAMS streams per node.  All of it
 * runs on the main loop, a few bytes per stream per change.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/events.h"
#include "api/routes.h"

#include "common/log.h"
#include "ha/ha.h"

struct api_events {
	api_ctx *a;
	GPtrArray *feeds;   /* http_feed* */
	guint keepalive;
};

static void feed_drop(gpointer f)
{
	http_feed_close(f);
	http_feed_unref(f);
}

/* @text to every stream; those that left or fell behind are dropped. */
static void events_send(api_events *ev, const char *text, size_t len)
{
	for (guint i = ev->feeds->len; i-- > 0;)
		if (!http_feed_push(ev->feeds->pdata[i], text, len))
			g_ptr_array_remove_index_fast(ev->feeds, i);
}

static void append_event(GString *out, const char *event, json_t *data)
{
	g_autofree char *text = json_dumps(data, JSON_COMPACT);
	g_string_append_printf(out, "event: %s\ndata: %s\n\n", event, text ? text : "{}");
	json_decref(data);
}

static void on_change(gpointer user, GPtrArray *changes)
{
	api_events *ev = user;
	if (ev->feeds->len == 0)
		return;
	g_autoptr(GString) out = g_string_new(NULL);
	if (!changes) {
		append_event(out, "change", json_pack("{s:s,s:s}", "kind", "*", "op", "reload"));
	} else {
		for (guint i = 0; i < changes->len; i++) {
			const store_change *c = changes->pdata[i];
			const store_object *o = c->after ? c->after : c->before;
			const char *op = !c->before ? "create" : !c->after ? "delete" : "update";
			append_event(out, "change",
				     json_pack("{s:s,s:s,s:s?,s:s}", "kind", store_kind_name(c->kind),
					       "id", c->uuid, "name", o ? o->name : NULL, "op", op));
		}
	}
	events_send(ev, out->str, out->len);
}

static void on_membership(gpointer user, bool group)
{
	api_events *ev = user;
	if (ev->feeds->len == 0)
		return;
	g_autoptr(GString) out = g_string_new(NULL);
	append_event(out, "membership", json_pack("{s:b}", "group", group));
	events_send(ev, out->str, out->len);
}

static void on_facts(const char *node, GPtrArray *vms, gpointer user)
{
	api_events *ev = user;
	if (ev->feeds->len == 0)
		return;
	g_autoptr(GString) out = g_string_new(NULL);
	json_t *data = json_pack("{s:s}", "node", node);
	if (vms) {
		json_t *list = json_array();
		for (guint i = 0; i < vms->len; i++)
			json_array_append_new(list, json_string(vms->pdata[i]));
		json_object_set_new(data, "vms", list);
	}
	append_event(out, "facts", data);
	events_send(ev, out->str, out->len);
}

static gboolean on_keepalive(gpointer user)
{
	static const char comment[] = ": keepalive\n\n";
	events_send(user, comment, sizeof(comment) - 1);
	return G_SOURCE_CONTINUE;
}

static api_events *events_of(api_ctx *a)
{
	if (!a->events) {
		api_events *ev = g_new0(api_events, 1);
		ev->a = a;
		ev->feeds = g_ptr_array_new_with_free_func(feed_drop);
		herd_cluster_listen(a->cluster, on_change, ev);
		herd_cluster_on_membership(a->cluster, on_membership, ev);
		if (a->ha)
			herd_ha_on_facts(a->ha, on_facts, ev);
		ev->keepalive = g_timeout_add_seconds(EVENTS_KEEPALIVE_S, on_keepalive, ev);
		a->events = ev;
	}
	return a->events;
}

void api_events_get(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	api_events *ev = events_of(a);
	/* Streams whose clients left since the last message don't count. */
	on_keepalive(ev);
	if (ev->feeds->len >= EVENTS_MAX_STREAMS) {
		http_respond_errorf(req, HERD_ERR_UNAVAILABLE,
				    "Node %s serves %u event streams already, the most it allows; "
				    "close a page of the web UI or use another node.",
				    a->node->name, EVENTS_MAX_STREAMS);
		return;
	}
	http_feed *f = http_respond_feed(req, "text/event-stream", EVENTS_QUEUE_BYTES);
	g_autoptr(GString) hello = g_string_new("retry: 3000\n");
	append_event(hello, "hello", json_pack("{s:s}", "node", a->node->name));
	http_feed_push(f, hello->str, hello->len);
	g_ptr_array_add(ev->feeds, f);
}

guint api_events_streams(api_ctx *a)
{
	return a->events ? a->events->feeds->len : 0;
}

void api_events_clear(api_ctx *a)
{
	api_events *ev = a->events;
	if (!ev)
		return;
	herd_cluster_unlisten(a->cluster, ev);
	g_clear_handle_id(&ev->keepalive, g_source_remove);
	g_ptr_array_unref(ev->feeds);
	g_free(ev);
	a->events = NULL;
}
