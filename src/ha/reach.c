#include "ha/reach.h"

#include "common/json.h"
#include "store/network.h"
#include "virt/iscsi.h"

#include <errno.h>
#include <string.h>

void herd_reach_target_free(herd_reach_target *t)
{
	if (!t)
		return;
	g_free(t->uuid);
	g_free(t->name);
	g_free(t->path);
	g_free(t->bridge);
	g_free(t->portal);
	g_free(t->target);
	g_free(t);
}

herd_reach_target *herd_reach_target_copy(const herd_reach_target *t)
{
	herd_reach_target *c = g_new0(herd_reach_target, 1);
	*c = *t;
	c->uuid = g_strdup(t->uuid);
	c->name = g_strdup(t->name);
	c->path = g_strdup(t->path);
	c->bridge = g_strdup(t->bridge);
	c->portal = g_strdup(t->portal);
	c->target = g_strdup(t->target);
	return c;
}

bool herd_reach_target_same(const herd_reach_target *a, const herd_reach_target *b)
{
	return strcmp(a->uuid, b->uuid) == 0 && a->network == b->network && a->type == b->type &&
	       g_strcmp0(a->path, b->path) == 0 && g_strcmp0(a->bridge, b->bridge) == 0 && a->vlan == b->vlan &&
	       g_strcmp0(a->portal, b->portal) == 0 && g_strcmp0(a->target, b->target) == 0;
}

void herd_reach_result_clear(herd_reach_result *r)
{
	g_free(r->problem);
	*r = (herd_reach_result){ 0 };
}

static gint by_uuid(gconstpointer a, gconstpointer b)
{
	const herd_reach_target *x = *(herd_reach_target *const *)a, *y = *(herd_reach_target *const *)b;
	return strcmp(x->uuid, y->uuid);
}

GPtrArray *herd_reach_targets(store_state *st)
{
	GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)herd_reach_target_free);
	g_autoptr(GPtrArray) storages = store_state_list(st, STORE_KIND_STORAGE);
	for (guint i = 0; i < storages->len; i++) {
		store_object *o = storages->pdata[i];
		const store_storage *s = store_storage_of(o);
		herd_reach_target *t = g_new0(herd_reach_target, 1);
		t->uuid = g_strdup(o->uuid);
		t->name = g_strdup(o->name);
		t->type = s->type;
		t->path = g_strdup(s->path);
		t->portal = g_strdup(s->portal);
		t->target = g_strdup(s->target);
		g_ptr_array_add(out, t);
	}
	g_autoptr(GPtrArray) networks = store_state_list(st, STORE_KIND_NETWORK);
	for (guint i = 0; i < networks->len; i++) {
		store_object *o = networks->pdata[i];
		herd_reach_target *t = g_new0(herd_reach_target, 1);
		t->uuid = g_strdup(o->uuid);
		t->name = g_strdup(o->name);
		t->network = true;
		t->bridge = g_strdup(store_network_of(o)->bridge);
		t->vlan = store_network_of(o)->vlan;
		g_ptr_array_add(out, t);
	}
	g_ptr_array_sort(out, by_uuid);
	return out;
}

static void problem(herd_reach_result *out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void problem(herd_reach_result *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_free(out->problem);
	out->problem = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	out->ok = false;
}

/* The directory, with this cluster's marker for this storage in it. */
static void check_dir(const herd_reach_target *t, const char *cluster_uuid,
		      const herd_reach_host *host, gpointer user, herd_reach_result *out)
{
	int r = host->dir_exists(user, t->path);
	if (r == -ENOENT) {
		problem(out, "%s does not exist", t->path);
		return;
	}
	if (r == -ENOTDIR) {
		problem(out, "%s is not a directory", t->path);
		return;
	}
	if (r < 0) {
		problem(out, "%s cannot be read: %s", t->path, g_strerror(-r));
		return;
	}
	g_autofree char *marker_path = g_build_filename(t->path, STORE_STORAGE_MARKER, NULL);
	g_autofree char *content = NULL;
	r = host->read_file(user, marker_path, HERD_REACH_MARKER_MAX, &content);
	if (r == -ENOENT) {
		/* Never written here: another node's empty mount point would
		 * become a second, unshared "storage". */
		problem(out, "%s has no marker file %s: not this storage (a mount missing?)", t->path,
			STORE_STORAGE_MARKER);
		return;
	}
	if (r < 0) {
		problem(out, "its marker file %s cannot be read: %s", marker_path, g_strerror(-r));
		return;
	}
	g_autoptr(json_t) marker = json_loads(content, 0, NULL);
	const char *cluster = json_string_value(json_object_get(marker, "cluster"));
	const char *storage = json_string_value(json_object_get(marker, "storage"));
	if (g_strcmp0(cluster, cluster_uuid) != 0) {
		problem(out, "the marker file %s is another cluster's (%s)", marker_path,
			cluster ? cluster : "unreadable");
		return;
	}
	if (g_strcmp0(storage, t->uuid) != 0) {
		problem(out, "the marker file %s is another storage's (%s)", marker_path,
			storage ? storage : "unreadable");
		return;
	}
	out->ok = true;
	out->has_usage = host->fs_usage(user, t->path, &out->size, &out->free) == 0;
}

/* The portal answers, and offers the target to this node. */
static void check_iscsi(const herd_reach_target *t, const char *cluster_uuid,
			const herd_reach_host *host, gpointer user, herd_reach_result *out)
{
	g_autofree char *output = NULL, *error = NULL;
	int r = host->iscsi_list(user, t->portal, &output, &error);
	if (r < 0) {
		problem(out, "iscsi-ls cannot run: %s", g_strerror(-r));
		return;
	}
	if (r > 0) {
		g_autofree char *why = herd_iscsi_ls_error(error, r);
		problem(out, "portal %s: %s", t->portal, why);
		return;
	}
	g_autoptr(GArray) luns = NULL;
	if (!herd_iscsi_ls_parse(output, t->target, &luns)) {
		problem(out, "portal %s does not offer target %s to this node", t->portal, t->target);
		return;
	}
	out->ok = true;
}

/* The types with a check. */
static const herd_reach_check_fn storage_checks[] = {
	[STORE_STORAGE_DIR] = check_dir,
	[STORE_STORAGE_ISCSI] = check_iscsi,
};

bool herd_reach_type_checked(store_storage_type type)
{
	return (unsigned)type < G_N_ELEMENTS(storage_checks) && storage_checks[type];
}

static void check_bridge(const herd_reach_target *t, const herd_reach_host *host, gpointer user,
			 herd_reach_result *out)
{
	bool ovs = false;
	int r = host->bridge_exists(user, t->bridge, &ovs);
	if (r == 0 && t->vlan && !ovs)
		/* libvirt tags a port only on Open vSwitch (docs/vm-hardware.md). */
		problem(out, "VLAN %u needs an Open vSwitch bridge, and %s is a Linux bridge", t->vlan,
			t->bridge);
	else if (r == 0)
		out->ok = true;
	else if (r == -ENOENT)
		problem(out, "bridge %s does not exist on this node", t->bridge);
	else if (r == -ENOTDIR)
		problem(out, "%s is an interface of this node but not a bridge", t->bridge);
	else
		problem(out, "bridge %s cannot be looked at: %s", t->bridge, g_strerror(-r));
}

void herd_reach_check(const herd_reach_target *t, const char *cluster_uuid,
		      const herd_reach_host *host, gpointer user, herd_reach_result *out)
{
	herd_reach_result_clear(out);
	if (t->network) {
		check_bridge(t, host, user, out);
		return;
	}
	if (!herd_reach_type_checked(t->type)) {
		problem(out, "not checked yet (herd does not check %s storages yet)",
			store_storage_type_name(t->type));
		return;
	}
	storage_checks[t->type](t, cluster_uuid, host, user, out);
}

static gint str_order(gconstpointer a, gconstpointer b)
{
	return strcmp(a, b);
}

void herd_reach_json(GHashTable *results, json_t **reach, json_t **usage)
{
	*reach = json_object();
	*usage = json_object();
	g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(results), str_order);
	for (GList *l = keys; l; l = l->next) {
		const herd_reach_result *r = g_hash_table_lookup(results, l->data);
		json_t *e = json_pack("{s:b}", "ok", r->ok);
		if (r->problem)
			json_object_set_new(e, "problem", json_string(r->problem));
		json_object_set_new(*reach, l->data, e);
		if (r->has_usage)
			json_object_set_new(*usage, l->data,
					    json_pack("{s:I,s:I}", "size", (json_int_t)r->size, "free",
						      (json_int_t)r->free));
	}
}
