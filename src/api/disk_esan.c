#define G_LOG_DOMAIN "api"
#include "api/disk_esan.h"

#include "api/disk.h"
#include "api/routes.h"

#include "common/error.h"
#include "common/json.h"
#include "common/size.h"
#include "common/tls.h"
#include "ha/esan.h"
#include "store/disk.h"
#include "store/node.h"
#include "store/refs.h"
#include "store/vm.h"

#include <string.h>

/* The two node names of field "esan": a list or "n1,n2". */
static bool esan_nodes(json_t *v, char *names[2], GError **error)
{
	g_auto(GStrv) parts = NULL;
	if (json_is_string(v)) {
		parts = g_strsplit(json_string_value(v), ",", -1);
	} else if (json_is_array(v)) {
		parts = g_new0(char *, json_array_size(v) + 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			const char *s = json_string_value(json_array_get(v, i));
			parts[i] = g_strdup(s ? s : "");
		}
	}
	if (!parts || g_strv_length(parts) != 2 || !*g_strstrip(parts[0]) || !*g_strstrip(parts[1])) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field 'esan' names the two nodes of the disk's replicas, e.g. [\"n1\",\"n2\"] or \"n1,n2\".");
		return false;
	}
	if (strcmp(parts[0], parts[1]) == 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "An eSAN disk's two replicas are on two different nodes, not both on %s.", parts[0]);
		return false;
	}
	names[0] = g_strdup(parts[0]);
	names[1] = g_strdup(parts[1]);
	return true;
}

static json_t *render(api_ctx *a, json_t *result)
{
	const char *uuid = json_string_value(json_object_get(result, "uuid"));
	store_object *o = uuid ? store_state_get(api_state(a), STORE_KIND_DISK, uuid) : NULL;
	return o ? api_disk_json(a, o, NULL) : json_incref(result);
}

void api_disk_esan_create(http_request *req, api_ctx *a, json_t *body, const char *name)
{
	g_autoptr(GError) err = NULL;
	for (const char *const *f = (const char *const[]){ "storage", "format", "lun", NULL }; *f; f++)
		if (json_object_get(body, *f) &&
		    !(strcmp(*f, "format") == 0 && g_strcmp0(json_string_value(json_object_get(body, *f)), "raw") == 0)) {
			http_respond_errorf(req, HERD_ERR_INVALID,
					    "An eSAN disk is on no storage and raw: no field '%s' with 'esan'.", *f);
			return;
		}
	char *names[2] = { NULL, NULL };
	if (!esan_nodes(json_object_get(body, "esan"), names, &err)) {
		http_respond_error(req, err);
		return;
	}
	g_autofree char *n0 = names[0], *n1 = names[1];
	store_state *st = api_state(a);
	const char *uuids[2];
	for (unsigned i = 0; i < 2; i++) {
		store_object *node = store_state_get_by_name(st, STORE_KIND_NODE, names[i]);
		if (!node) {
			http_respond_errorf(req, HERD_ERR_NOT_FOUND, "Node %s is not a node of this cluster.", names[i]);
			return;
		}
		uuids[i] = node->uuid;
	}
	json_t *size_v = json_object_get(body, "size");
	g_autofree char *size_owned = json_is_integer(size_v) ?
		g_strdup_printf("%" JSON_INTEGER_FORMAT, json_integer_value(size_v)) : NULL;
	const char *size_text = size_owned ? size_owned : json_string_value(size_v);
	uint64_t size = 0;
	if (!size_text) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Field 'size' must be a size such as \"20G\" or a number of bytes.");
		return;
	}
	if (!store_disk_size_parse(size_text, &size, &err)) {
		http_respond_error(req, err);
		return;
	}
	int port = store_esan_free_port(st);
	if (port < 0) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "Every eSAN port (%d-%d) is taken: delete a disk first.",
				    STORE_ESAN_PORT_MIN, STORE_ESAN_PORT_MAX);
		return;
	}
	guint64 g = 0;
	while (g == 0 && herd_tls_random(&g, sizeof(g)))
		;
	if (g == 0) {
		http_respond_errorf(req, HERD_ERR_INTERNAL, "No random numbers for the disk's generation identifier.");
		return;
	}
	char gen[17], uuid[STORE_UUID_LEN + 1];
	g_snprintf(gen, sizeof(gen), "%016" G_GINT64_MODIFIER "x", g);
	store_uuid_generate(uuid);
	g_autoptr(json_t) cmd = store_disk_cmd_create_esan(uuid, name, size, uuids, port, gen);
	api_commit(req, a, cmd, 201, render);
}

void api_disk_esan_resize(http_request *req, api_ctx *a, store_object *o, uint64_t size)
{
	g_autoptr(json_t) cmd = store_disk_cmd_resize(o, size);
	api_commit(req, a, cmd, 200, render);
}

void api_disk_esan_json(api_ctx *a, const store_object *o, json_t *j)
{
	const store_disk *d = store_disk_of(o);
	store_state *st = api_state(a);
	g_autoptr(json_t) san = herd_ha_esan(a->ha, o->uuid);
	json_t *replicas = json_array();
	for (unsigned i = 0; i < 2; i++) {
		store_object *node = store_state_get(st, STORE_KIND_NODE, d->replicas[i].node);
		const char *name = node ? node->name : d->replicas[i].node;
		json_t *live = json_object_get(san, name);
		json_array_append_new(replicas,
				      json_pack("{s:s,s:s,s:O}", "node", name, "state",
						store_replica_state_name(d->replicas[i].state), "herd_san",
						live ? live : json_null()));
	}
	json_t *esan = json_pack("{s:i,s:o}", "port", d->port, "replicas", replicas);
	const store_esan_verify *v = &d->verify;
	if (v->id) {
		store_object *vn = store_state_get(st, STORE_KIND_NODE, v->node);
		json_t *vj = json_pack("{s:I,s:s,s:b}", "id", (json_int_t)v->id, "node", vn ? vn->name : v->node,
				       "done", v->done);
		if (v->done) {
			json_object_set_new(vj, "equal", json_boolean(v->equal));
			json_object_set_new(vj, "differ", json_integer((json_int_t)v->differ));
			json_object_set_new(vj, "first", v->first >= 0 ? json_integer(v->first) : json_null());
			json_object_set_new(vj, "compared", json_integer((json_int_t)v->compared));
			json_object_set_new(vj, "time_ms", json_integer(v->time_ms));
			if (v->error)
				json_object_set_new(vj, "error", json_string(v->error));
		}
		json_object_set_new(esan, "verify", vj);
	}
	for (unsigned i = 0; i < 2; i++)
		if (d->replicas[i].discard)
			json_object_set_new(json_array_get(replicas, i), "discard", json_true());
	json_object_set_new(j, "esan", esan);
}

/* The eSAN disk of the request's {disk}, or NULL (answered). */
static store_object *esan_param(http_request *req, api_ctx *a)
{
	store_object *o = api_lookup_param(req, a, STORE_KIND_DISK, "disk");
	if (o && !store_disk_of(o)->esan) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Disk %s is not an eSAN disk.", o->name);
		return NULL;
	}
	return o;
}

/* The node the disk's VM runs on (its name: static in the store), or NULL. */
static const char *vm_node(api_ctx *a, const store_object *disk, const char **vm_name)
{
	store_object *vm = store_refs_user(api_state(a), disk);
	const char *where = NULL;
	if (vm && herd_ha_vm_active(a->ha, vm->uuid, &where)) {
		*vm_name = vm->name;
		return where ? where : "?";
	}
	return NULL;
}

void api_disk_promote(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "force", "node", NULL };
	g_autoptr(GError) err = NULL;
	store_object *o = esan_param(req, a);
	g_autoptr(json_t) body = o ? api_body(req, fields, &err) : NULL;
	const char *node = NULL;
	bool force = false;
	if (!o)
		return;
	if (!body || !api_get_bool(body, "force", &force, &err) || !api_get_string(body, "node", &node, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!force) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Promoting a replica of eSAN disk %s throws away what the other replica holds "
				    "beyond it: say so with force (herd disk promote %s --force).", o->name, o->name);
		return;
	}
	const char *vm_name = NULL;
	vm_node(a, o, &vm_name);
	g_autoptr(json_t) cmd = herd_esan_promote_cmd(api_state(a), o, node, vm_name, &err);
	if (!cmd) {
		http_respond_error(req, err);
		return;
	}
	store_disk_cmd_sync_by(cmd, api_request_owner(req));
	api_commit(req, a, cmd, 200, render);
}

void api_disk_resolve(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "keep", NULL };
	g_autoptr(GError) err = NULL;
	store_object *o = esan_param(req, a);
	g_autoptr(json_t) body = o ? api_body(req, fields, &err) : NULL;
	const char *keep = NULL;
	if (!o)
		return;
	if (!body || !api_get_string(body, "keep", &keep, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!keep) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Say which node's replica of eSAN disk %s to keep (field 'keep').",
				    o->name);
		return;
	}
	g_autoptr(json_t) san = herd_ha_esan(a->ha, o->uuid);
	bool split = false;
	const char *name;
	json_t *s;
	json_object_foreach(san, name, s)
		split = split || g_strcmp0(json_string_value(json_object_get(s, "conn")), "splitbrain") == 0;
	const char *vm_name = NULL;
	const char *where = vm_node(a, o, &vm_name);
	g_autoptr(json_t) cmd = herd_esan_resolve_cmd(api_state(a), o, keep, split, where, &err);
	if (!cmd) {
		http_respond_error(req, err);
		return;
	}
	store_disk_cmd_sync_by(cmd, api_request_owner(req));
	api_commit(req, a, cmd, 200, render);
}

void api_disk_verify(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	store_object *o = esan_param(req, a);
	if (!o)
		return;
	/* Asked of a replica node whose herd-san is connected to its peer:
	 * it reads both replicas. */
	const store_disk *d = store_disk_of(o);
	g_autoptr(json_t) san = herd_ha_esan(a->ha, o->uuid);
	const char *node_uuid = NULL;
	for (unsigned i = 0; i < 2 && !node_uuid; i++) {
		store_object *n = store_state_get(api_state(a), STORE_KIND_NODE, d->replicas[i].node);
		json_t *s = n ? json_object_get(san, n->name) : NULL;
		if (g_strcmp0(json_string_value(json_object_get(s, "conn")), "connected") == 0)
			node_uuid = n->uuid;
	}
	if (!node_uuid) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "The replicas of eSAN disk %s are not connected: nothing can compare them now.",
				    o->name);
		return;
	}
	g_autoptr(json_t) cmd = store_disk_cmd_verify(o, node_uuid);
	api_commit(req, a, cmd, 202, render);
}

/* The local disk state herd-san reports of node @name's replica
 * ("detaching", "detached", "failed"), or NULL; *@reported: it reports
 * the replica at all. */
static const char *disk_state(json_t *san, const char *name, bool *reported)
{
	json_t *s = json_object_get(san, name);
	*reported = json_is_object(s);
	return json_string_value(json_object_get(json_object_get(s, "disk"), "state"));
}

void api_disk_attach(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	static const char *const fields[] = { "node", NULL };
	g_autoptr(GError) err = NULL;
	store_object *o = esan_param(req, a);
	g_autoptr(json_t) body = o ? api_body(req, fields, &err) : NULL;
	const char *node = NULL;
	if (!o)
		return;
	if (!body || !api_get_string(body, "node", &node, &err)) {
		http_respond_error(req, err);
		return;
	}
	store_state *st = api_state(a);
	const store_disk *d = store_disk_of(o);
	g_autoptr(json_t) san = herd_ha_esan(a->ha, o->uuid);
	store_object *target = NULL;
	bool reported = false;
	if (node) {
		target = store_state_get_by_name(st, STORE_KIND_NODE, node);
		if (!target) {
			http_respond_errorf(req, HERD_ERR_NOT_FOUND, "Node %s is not a node of this cluster.", node);
			return;
		}
		if (!store_disk_replica(d, target->uuid)) {
			http_respond_errorf(req, HERD_ERR_INVALID, "Node %s holds no replica of eSAN disk %s.", node,
					    o->name);
			return;
		}
	} else {
		for (unsigned i = 0; i < 2 && !target; i++) {
			store_object *n = store_state_get(st, STORE_KIND_NODE, d->replicas[i].node);
			if (n && disk_state(san, n->name, &reported))
				target = n;
		}
		if (!target) {
			http_respond_errorf(req, HERD_ERR_CONFLICT,
					    "No replica of eSAN disk %s is detached (no herd-san reports a failed local "
					    "disk under it): there is nothing to attach.", o->name);
			return;
		}
	}
	const char *ds = disk_state(san, target->name, &reported);
	if (!reported) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "Node %s's herd-san reports nothing of eSAN disk %s now (is the node up, its "
				    "herd-san running?): its replica cannot be attached now.", target->name, o->name);
		return;
	}
	if (!ds) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "The replica of eSAN disk %s on node %s is not detached (its local disk has not "
				    "failed): there is nothing to attach.", o->name, target->name);
		return;
	}
	if (strcmp(ds, "detaching") == 0) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "The replica of eSAN disk %s on node %s is being detached (the store does not "
				    "record it outdated yet): attach it once it is detached.", o->name, target->name);
		return;
	}
	const char *vm_name = NULL;
	const char *where = vm_node(a, o, &vm_name);
	if (where && strcmp(where, target->name) == 0) {
		const store_replica *peer = store_disk_peer(d, target->uuid);
		store_object *pn = store_state_get(st, STORE_KIND_NODE, peer->node);
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s runs on node %s with eSAN disk %s, through the peer's replica; attaching "
				    "starts the replica's server on %s again, which would cut the guest's disk. "
				    "Migrate VM %s to node %s first ('herd vm migrate %s %s': the guest goes on there, "
				    "on the only up-to-date replica), or stop it.", vm_name, where, o->name, where,
				    vm_name, pn ? pn->name : "?", vm_name, pn ? pn->name : "?");
		return;
	}
	g_autoptr(json_t) cmd = store_disk_cmd_attach(o, target->uuid,
						      api_request_owner(req));
	api_commit(req, a, cmd, 202, render);
}

/* What the replica on @node does, as herd-san reports it, for a refusal:
 * "being synchronised from n2, 40 %", or NULL.  @san: {node: state}. */
static char *replica_doing(json_t *san, const char *node, const char *peer)
{
	json_t *mine = json_object_get(san, node), *theirs = json_object_get(san, peer);
	json_t *disk = json_object_get(mine, "disk");
	if (json_is_object(disk))
		return g_strdup_printf("its local disk failed and is %s",
				       json_string_value(json_object_get(disk, "state")) ?: "detached");
	/* the source counts the progress; the target's figures may lag */
	json_int_t done = -1, total = 0;
	json_t *reports[2] = { theirs, mine };
	for (int i = 0; i < 2; i++) {
		json_t *sync = json_object_get(reports[i], "sync");
		json_int_t t = json_integer_value(json_object_get(sync, "total"));
		if (json_is_object(sync) && t > 0 && done < 0) {
			done = json_integer_value(json_object_get(sync, "done"));
			total = t;
		} else if (json_is_object(sync) && done < 0 && i == 1) {
			done = 0;
		}
	}
	if (done >= 0)
		return total > 0 ? g_strdup_printf("being synchronised from %s, %d %%", peer,
						   (int)(MIN(done, total) * 100 / total))
				 : g_strdup_printf("being synchronised from %s", peer);
	const char *conn = json_string_value(json_object_get(mine, "conn"));
	if (!mine || json_is_null(mine))
		return g_strdup_printf("its herd-san reports nothing of it");
	if (conn && strcmp(conn, "connected") != 0)
		return g_strdup_printf("not connected to %s's (%s)", peer, conn);
	return NULL;
}

char *api_disk_esan_not_on(api_ctx *a, const store_vm *vm, const char *vm_name, const char *node,
			   const char *what)
{
	store_state *st = api_state(a);
	store_object *n = store_state_get_by_name(st, STORE_KIND_NODE, node);
	if (!n || !vm->hw)
		return NULL;
	for (size_t i = 0; i < vm->hw->n_disks; i++) {
		store_object *o = store_state_get(st, STORE_KIND_DISK, vm->hw->disks[i].disk);
		const store_disk *d = o ? store_disk_of(o) : NULL;
		const store_replica *r = d && d->esan ? store_disk_replica(d, n->uuid) : NULL;
		if (!r)
			continue;
		g_autoptr(json_t) san = herd_ha_esan(a->ha, o->uuid);
		/* up to date in the store, but a sync target or detached as its
		 * herd-san says (a resync after both crashed; a detach under way):
		 * its server refuses the destination's QEMU */
		json_t *live = json_object_get(san, node);
		bool busy = g_strcmp0(json_string_value(json_object_get(json_object_get(live, "sync"), "role")),
				      "target") == 0 || json_is_object(json_object_get(live, "disk"));
		if (r->state == STORE_REPLICA_UPTODATE && !busy)
			continue;
		const store_replica *p = store_disk_peer(d, n->uuid);
		store_object *pn = store_state_get(st, STORE_KIND_NODE, p->node);
		const char *peer = pn ? pn->name : p->node;
		g_autofree char *doing = replica_doing(san, node, peer);
		bool syncing = doing && g_str_has_prefix(doing, "being synchronised");
		bool detached = doing && g_str_has_prefix(doing, "its local disk");
		g_autofree char *advice =
			detached ? g_strdup_printf("Once that disk is replaced, 'herd disk attach %s --node %s' "
						   "synchronises it from %s; migrate the VM after that sync.",
						   o->name, node, peer)
			: syncing ? g_strdup_printf("Wait until the sync has ended ('herd disk list' shows %s's "
						    "replica uptodate), then migrate it.", node)
				  : g_strdup_printf("It is synchronised from %s once both replicas are connected "
						    "('herd disk list' shows the progress); migrate the VM after that.",
						    peer);
		bool uptodate = r->state == STORE_REPLICA_UPTODATE;
		return g_strdup_printf(
			"VM %s cannot %s to node %s: its eSAN disk %s is not up to date there (the replica on %s is "
			"%s%s%s%s), and a VM runs only on an up-to-date replica. %s",
			vm_name, what, node, o->name, node, uptodate ? "" : store_replica_state_name(r->state),
			r->discard ? ", discarded" : "", doing && !uptodate ? ", " : "", doing ? doing : "", advice);
	}
	return NULL;
}
