#include "ha/facts.h"

#include "common/json.h"
#include "common/json_writer.h"
#include "ha/health.h"
#include "store/node.h"

#include <string.h>

static const char *const state_names[HERD_VM__STATES] = {
	[HERD_VM_STOPPED] = "stopped",   [HERD_VM_STARTING] = "starting",
	[HERD_VM_RUNNING] = "running",   [HERD_VM_PAUSED] = "paused",
	[HERD_VM_STOPPING] = "stopping", [HERD_VM_CRASHED] = "crashed",
	[HERD_VM_MIGRATING] = "migrating", [HERD_VM_INCOMING] = "incoming",
};

const char *herd_vm_state_name(herd_vm_state s)
{
	return (unsigned)s < HERD_VM__STATES ? state_names[s] : "unknown";
}

GArray *herd_vm_facts_of_table(GHashTable *vms)
{
	GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(herd_vm_fact), g_hash_table_size(vms));
	GHashTableIter it;
	gpointer fact;
	g_hash_table_iter_init(&it, vms);
	while (g_hash_table_iter_next(&it, NULL, &fact))
		g_array_append_vals(out, fact, 1);
	return out;
}

static bool state_parse(const char *s, herd_vm_state *out)
{
	for (unsigned i = 0; s && i < HERD_VM__STATES; i++) {
		if (strcmp(state_names[i], s) == 0) {
			*out = (herd_vm_state)i;
			return true;
		}
	}
	return false;
}

/* The storages' usage: the last member of a STATUS, when there is any. */
#define USAGE_KEY "\"usage\":"
/* A node's 1-minute load average × 100, in its resources (if it knows it). */
#define LOAD_KEY "load_x100"

/* More node ids than any corosync cluster has: the rest is ignored. */
#define SEEN_MAX 1024

static gint by_id(gconstpointer a, gconstpointer b)
{
	guint x = GPOINTER_TO_UINT(a), y = GPOINTER_TO_UINT(b);
	return x < y ? -1 : x > y;
}

herd_node_facts *herd_node_facts_ref(herd_node_facts *n)
{
	g_atomic_int_inc(&n->refcount);
	return n;
}

void herd_node_facts_unref(herd_node_facts *n)
{
	if (!n || !g_atomic_int_dec_and_test(&n->refcount))
		return;
	g_free(n->name);
	g_hash_table_destroy(n->vms);
	json_decref(n->errors);
	json_decref(n->start_failures);
	json_decref(n->handed);
	json_decref(n->pending);
	if (n->alerts_by_vm)
		g_hash_table_destroy(n->alerts_by_vm);
	json_decref(n->coordinator);
	json_decref(n->migration);
	g_hash_table_destroy(n->seen);
	g_hash_table_destroy(n->reached);
	json_decref(n->reach);
	json_decref(n->usage);
	json_decref(n->fence_standby);
	json_decref(n->links);
	json_decref(n->ping);
	g_bytes_unref(n->payload);
	g_free(n);
}

herd_facts *herd_facts_new(void)
{
	herd_facts *f = g_new0(herd_facts, 1);
	f->nodes = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					 (GDestroyNotify)herd_node_facts_unref);
	f->round = 1;
	return f;
}

void herd_facts_free(herd_facts *f)
{
	if (!f)
		return;
	g_hash_table_destroy(f->nodes);
	g_free(f);
}

void herd_facts_new_round(herd_facts *f)
{
	f->round++;
}

void herd_facts_forget(herd_facts *f, uint32_t nodeid)
{
	g_hash_table_remove(f->nodes, GUINT_TO_POINTER(nodeid));
}

char *herd_facts_encode(const herd_node_report *r, size_t *len)
{
	/* Written as text, not as a jansson tree: a node re-sends its facts
	 * every 30 s, and with thousands of VMs the tree cost milliseconds of
	 * the main loop each time (bench/vm-list). */
	const herd_node_resources *res = &r->resources;
	GString *out = g_string_sized_new(256 + 112 * (r->vm_facts ? r->vm_facts->len : 0));
	json_writer w;
	json_writer_init(&w, out);
	json_writer_object_begin(&w);
	json_writer_member_string(&w, "name", r->name);
	json_writer_member_int(&w, "index", (int64_t)r->index);
	json_writer_key(&w, "vms");
	json_writer_array_begin(&w);
	for (guint i = 0; r->vm_facts && i < r->vm_facts->len; i++) {
		const herd_vm_fact *v = &g_array_index(r->vm_facts, herd_vm_fact, i);
		json_writer_object_begin(&w);
		json_writer_member_string(&w, "uuid", v->uuid);
		json_writer_member_string(&w, "state", herd_vm_state_name(v->state));
		json_writer_member_int(&w, "since_ms", v->since_ms);
		json_writer_member_string(&w, "reason", v->reason);
		json_writer_object_end(&w);
	}
	json_writer_array_end(&w);
	json_writer_key(&w, "resources");
	json_writer_object_begin(&w);
	json_writer_member_int(&w, "memory_mib", (int64_t)res->memory_mib);
	json_writer_member_int(&w, "free_mib", (int64_t)res->free_mib);
	/* Right after the free memory: it moves as often, and is skipped
	 * with it (differs_beyond_free_memory). */
	if (res->load_known)
		json_writer_member_int(&w, LOAD_KEY, res->load_x100);
	json_writer_member_int(&w, "cpus", res->cpus);
	json_writer_object_end(&w);
	json_writer_member_bool(&w, "virt_ok", r->virt_ok);
	/* The rest is small: jansson's, added as members. */
	g_autoptr(json_t) rest = json_object();
	if (r->errors && json_object_size(r->errors))
		json_object_set(rest, "errors", r->errors);
	if (r->start_failures && json_object_size(r->start_failures))
		json_object_set(rest, "start_failures", r->start_failures);
	if (r->handed && json_object_size(r->handed))
		json_object_set(rest, "handed", r->handed);
	if (r->pending && json_object_size(r->pending))
		json_object_set(rest, "pending", r->pending);
	if (r->coordinator)
		json_object_set(rest, "coordinator", r->coordinator);
	if (r->migration)
		json_object_set(rest, "migration", r->migration);
	if (r->seen) {
		/* Sorted: the same set gives the same bytes. */
		g_autoptr(GList) ids = g_list_sort(g_hash_table_get_keys(r->seen), by_id);
		json_t *arr = json_array();
		for (GList *l = ids; l; l = l->next)
			json_array_append_new(arr, json_integer(GPOINTER_TO_UINT(l->data)));
		json_object_set_new(rest, "seen", arr);
	}
	if (r->reach && json_object_size(r->reach))
		json_object_set(rest, "reach", r->reach);
	if (r->fence_standby && json_object_size(r->fence_standby))
		json_object_set(rest, "fence_standby", r->fence_standby);
	if (r->links && json_object_size(r->links))
		json_object_set(rest, "links", r->links);
	if (r->ping)
		json_object_set(rest, "ping", r->ping);
	g_autofree char *text = json_dumps(rest, JSON_COMPACT);
	size_t n = strlen(text);
	json_writer_members_text(&w, text + 1, n - 2); /* without its braces */
	/* Last, where differs_beyond_usage() looks for it. */
	if (r->usage && json_object_size(r->usage)) {
		g_autofree char *usage = json_dumps(r->usage, JSON_COMPACT | JSON_SORT_KEYS);
		g_autofree char *member = g_strconcat(USAGE_KEY, usage, NULL);
		json_writer_members_text(&w, member, strlen(member));
	}
	json_writer_object_end(&w);
	*len = out->len;
	return g_string_free(out, FALSE);
}

static const char *skip_number(const char *p, const char *end)
{
	while (p < end && g_ascii_isdigit(*p))
		p++;
	return p;
}

/* Do the STATUS payloads @old and @new differ in more than the free
 * memory (and the load average)?  A node reads its free memory again
 * every few seconds: the number moves at every refresh of the facts, and
 * nothing the engine decides depends on it (it is shown only).  Compared
 * as bytes with the numbers left out, rather than by parsing @old again
 * (milliseconds with thousands of VMs): the keys can only be those that
 * herd_facts_encode() writes, since a quote inside a JSON string is
 * escaped.  Anything else that differs, also in a node's encoding of
 * another release, counts. */
static bool differs_beyond_free_memory(GBytes *old, const char *new, size_t new_len)
{
	static const char key[] = "\"free_mib\":";
	gsize old_len;
	const char *was = g_bytes_get_data(old, &old_len);
	const char *a = memmem(was, old_len, key, sizeof(key) - 1);
	const char *b = memmem(new, new_len, key, sizeof(key) - 1);
	if (!a || !b || a - was != b - new || memcmp(was, new, (size_t)(a - was)) != 0)
		return true;
	const char *a_end = was + old_len, *b_end = new + new_len;
	a = skip_number(a + sizeof(key) - 1, a_end);
	b = skip_number(b + sizeof(key) - 1, b_end);
	/* The load average, which herd_facts_encode() writes right after it
	 * if it knows it, moves as often: skipped too. */
	static const char load[] = ",\"" LOAD_KEY "\":";
	if ((size_t)(a_end - a) >= sizeof(load) - 1 && memcmp(a, load, sizeof(load) - 1) == 0)
		a = skip_number(a + sizeof(load) - 1, a_end);
	if ((size_t)(b_end - b) >= sizeof(load) - 1 && memcmp(b, load, sizeof(load) - 1) == 0)
		b = skip_number(b + sizeof(load) - 1, b_end);
	return a_end - a != b_end - b || memcmp(a, b, (size_t)(a_end - a)) != 0;
}

/* A storage's usage as the alerts see it (ha/health.h): 0 below the
 * warning, 1 from it, 2 from the critical level. */
static int usage_band(json_t *u)
{
	json_t *size = json_object_get(u, "size"), *free_ = json_object_get(u, "free");
	if (!json_is_integer(size) || !json_is_integer(free_) || json_integer_value(size) <= 0)
		return 0;
	double pct = 100.0 * (double)(json_integer_value(size) - json_integer_value(free_)) /
		     (double)json_integer_value(size);
	return pct >= HEALTH_STORAGE_CRITICAL_PCT ? 2 : pct >= HEALTH_STORAGE_WARNING_PCT ? 1 : 0;
}

/* Has a storage crossed an alert level between usages @a and @b?  That
 * counts as a change (a storage filling up on a quiet cluster raises its
 * alert); other usage changes do not. */
static bool usage_bands_differ(json_t *a, json_t *b)
{
	const char *uuid;
	json_t *u;
	json_object_foreach(a, uuid, u)
		if (usage_band(u) != usage_band(json_object_get(b, uuid)))
			return true;
	json_object_foreach(b, uuid, u)
		if (usage_band(u) != usage_band(json_object_get(a, uuid)))
			return true;
	return false;
}

/*
 * Do the STATUS payloads differ in more than the free memory and the
 * storages' usage?  The usage moves at every check (every few seconds) as
 * guests write, and nothing is decided on it: the payloads are compared
 * without it.  herd_facts_encode() writes it last, after the other members
 * (keys can only be herd's: a quote inside a string is escaped, and the
 * usage holds only uuids and numbers), so its last occurrence is it.
 */
static bool differs_beyond_usage(GBytes *old, const char *new, size_t new_len)
{
	gsize old_len;
	const char *was = g_bytes_get_data(old, &old_len);
	size_t key_len = strlen("," USAGE_KEY);
	/* Without it, up to the closing brace: as with it, up to its comma. */
	size_t cut_old = old_len ? old_len - 1 : 0, cut_new = new_len ? new_len - 1 : 0;
	for (size_t i = old_len >= key_len ? old_len - key_len + 1 : 0; i-- > 0;)
		if (memcmp(was + i, "," USAGE_KEY, key_len) == 0) {
			cut_old = i;
			break;
		}
	for (size_t i = new_len >= key_len ? new_len - key_len + 1 : 0; i-- > 0;)
		if (memcmp(new + i, "," USAGE_KEY, key_len) == 0) {
			cut_new = i;
			break;
		}
	g_autoptr(GBytes) old_cut = g_bytes_new_from_bytes(old, 0, cut_old);
	return differs_beyond_free_memory(old_cut, new, cut_new);
}

bool herd_facts_update(herd_facts *f, uint32_t nodeid, const void *payload, size_t len,
		       int64_t now_ms, bool *changed)
{
	/* Every node re-sends its facts every 30 s, mostly the same: with
	 * 10,000 VMs reading them again would cost milliseconds each time. */
	herd_node_facts *before = g_hash_table_lookup(f->nodes, GUINT_TO_POINTER(nodeid));
	if (before && g_bytes_get_size(before->payload) == len &&
	    memcmp(g_bytes_get_data(before->payload, NULL), payload, len) == 0) {
		if (changed)
			*changed = before->round != f->round;
		before->round = f->round;
		before->received_ms = now_ms;
		return true;
	}
	json_t *j = json_loadb(payload, len, 0, NULL);
	const char *name = json_string_value(json_object_get(j, "name"));
	json_t *vms = json_object_get(j, "vms");
	json_t *res = json_object_get(j, "resources");
	if (!name || !json_is_array(vms) || !json_is_object(res)) {
		json_decref(j);
		return false;
	}
	herd_node_facts *n = g_new0(herd_node_facts, 1);
	n->refcount = 1;
	n->name = g_strdup(name);
	n->nodeid = nodeid;
	n->round = f->round;
	n->received_ms = now_ms;
	/* Absent (a node one release older): as old as can be. */
	n->index = (uint64_t)json_integer_value(json_object_get(j, "index"));
	n->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	n->resources.memory_mib = (uint64_t)json_integer_value(json_object_get(res, "memory_mib"));
	n->resources.free_mib = (uint64_t)json_integer_value(json_object_get(res, "free_mib"));
	n->resources.cpus = (unsigned)json_integer_value(json_object_get(res, "cpus"));
	/* Absent (a node one release older, or it could not read it): unknown. */
	json_t *load = json_object_get(res, LOAD_KEY);
	n->resources.load_known = json_is_integer(load) && json_integer_value(load) >= 0;
	n->resources.load_x100 = n->resources.load_known ? (unsigned)json_integer_value(load) : 0;
	n->virt_ok = json_is_true(json_object_get(j, "virt_ok"));
	size_t i;
	json_t *v;
	json_array_foreach(vms, i, v) {
		const char *uuid = json_string_value(json_object_get(v, "uuid"));
		herd_vm_state st;
		if (!uuid || strlen(uuid) != 36 ||
		    !state_parse(json_string_value(json_object_get(v, "state")), &st))
			continue;
		herd_vm_fact *fact = g_new0(herd_vm_fact, 1);
		g_strlcpy(fact->uuid, uuid, sizeof(fact->uuid));
		fact->state = st;
		fact->since_ms = json_integer_value(json_object_get(v, "since_ms"));
		g_strlcpy(fact->reason, json_string_value(json_object_get(v, "reason")) ?: "",
			  sizeof(fact->reason));
		g_hash_table_replace(n->vms, fact->uuid, fact);
	}
	json_t *errors = json_object_get(j, "errors");
	n->errors = json_is_object(errors) ? json_incref(errors) : json_object();
	/* Absent (a node one release older, or nothing failed): none. */
	json_t *failures = json_object_get(j, "start_failures");
	n->start_failures = json_is_object(failures) ? json_incref(failures) : json_object();
	json_t *handed = json_object_get(j, "handed");
	n->handed = json_is_object(handed) ? json_incref(handed) : json_object();
	json_t *pending = json_object_get(j, "pending");
	n->pending = json_is_object(pending) ? json_incref(pending) : json_object();
	json_t *coord = json_object_get(j, "coordinator");
	n->coordinator = json_is_object(coord) ? json_incref(coord) : NULL;
	/* Absent (a node one release older, or not looked at yet): unknown. */
	json_t *migration = json_object_get(j, "migration");
	n->migration = json_is_boolean(json_object_get(migration, "ready")) ? json_incref(migration) : NULL;
	json_t *a;
	json_array_foreach(json_object_get(n->coordinator, "alerts"), i, a) {
		const char *vm = json_string_value(json_object_get(a, "vm"));
		const char *message = json_string_value(json_object_get(a, "message"));
		if (!vm || !message)
			continue;
		if (!n->alerts_by_vm)
			n->alerts_by_vm = g_hash_table_new(g_str_hash, g_str_equal);
		g_hash_table_insert(n->alerts_by_vm, (gpointer)vm, (gpointer)message);
	}
	/* Absent (a node one release older): it has seen nobody, as far as
	 * the others know.  Node ids are corosync's: 1 to 2^32 - 1. */
	n->seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	json_array_foreach(json_object_get(j, "seen"), i, v) {
		json_int_t id = json_integer_value(v);
		if (i >= SEEN_MAX)
			break;
		if (json_is_integer(v) && id > 0 && id <= (json_int_t)UINT32_MAX)
			g_hash_table_add(n->seen, GUINT_TO_POINTER((guint)id));
	}
	/* Absent (a node one release older, or nothing to check): it reaches
	 * nothing that a VM may need. */
	json_t *reach = json_object_get(j, "reach");
	n->reach = json_is_object(reach) ? json_incref(reach) : json_object();
	json_t *usage = json_object_get(j, "usage");
	n->usage = json_is_object(usage) ? json_incref(usage) : json_object();
	json_t *standby = json_object_get(j, "fence_standby");
	n->fence_standby = json_is_object(standby) ? json_incref(standby) : json_object();
	json_t *links = json_object_get(j, "links");
	n->links = json_is_object(links) ? json_incref(links) : json_object();
	/* Absent (a node one release older, or no ping node set): it is not
	 * taken for cut off. */
	json_t *ping = json_object_get(j, "ping");
	if (json_is_object(json_object_get(ping, "targets"))) {
		n->ping = json_incref(ping);
		n->ping_lost = json_is_true(json_object_get(ping, "lost"));
	}
	n->reached = g_hash_table_new(g_str_hash, g_str_equal);
	const char *key;
	json_object_foreach(n->reach, key, v)
		if (json_is_true(json_object_get(v, "ok")))
			g_hash_table_add(n->reached, (gpointer)key);
	if (changed)
		*changed = !before || before->round != f->round ||
			   differs_beyond_usage(before->payload, payload, len) ||
			   usage_bands_differ(before->usage, n->usage);
	json_decref(j);
	n->payload = g_bytes_new(payload, len);
	g_hash_table_replace(f->nodes, GUINT_TO_POINTER(nodeid), n);
	return true;
}

static gint by_string(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add to @out the keys whose values differ between @a and @b (JSON objects
 * of uuids, either may be NULL). */
static void json_keys_changed(json_t *a, json_t *b, GHashTable *out)
{
	const char *key;
	json_t *v;
	json_object_foreach(a, key, v)
		if (!json_equal(v, json_object_get(b, key)))
			g_hash_table_add(out, g_strdup(key));
	json_object_foreach(b, key, v)
		if (!json_object_get(a, key))
			g_hash_table_add(out, g_strdup(key));
}

/* The same for tables of uuid -> string (either may be NULL). */
static void strings_changed(GHashTable *a, GHashTable *b, GHashTable *out)
{
	GHashTableIter it;
	gpointer key, v;
	if (a) {
		g_hash_table_iter_init(&it, a);
		while (g_hash_table_iter_next(&it, &key, &v))
			if (g_strcmp0(v, b ? g_hash_table_lookup(b, key) : NULL) != 0)
				g_hash_table_add(out, g_strdup(key));
	}
	if (b) {
		g_hash_table_iter_init(&it, b);
		while (g_hash_table_iter_next(&it, &key, &v))
			if (!a || !g_hash_table_contains(a, key))
				g_hash_table_add(out, g_strdup(key));
	}
}

GPtrArray *herd_node_facts_vms_changed(const herd_node_facts *before, const herd_node_facts *after,
				       guint max)
{
	if (!before || !after || before->round != after->round || before->virt_ok != after->virt_ok)
		return NULL;
	g_autoptr(GHashTable) changed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter it;
	gpointer key, v;
	g_hash_table_iter_init(&it, after->vms);
	while (g_hash_table_iter_next(&it, &key, &v)) {
		const herd_vm_fact *a = v, *b = g_hash_table_lookup(before->vms, key);
		if (!b || a->state != b->state || a->since_ms != b->since_ms || strcmp(a->reason, b->reason) != 0)
			g_hash_table_add(changed, g_strdup(key));
	}
	g_hash_table_iter_init(&it, before->vms);
	while (g_hash_table_iter_next(&it, &key, NULL))
		if (!g_hash_table_contains(after->vms, key))
			g_hash_table_add(changed, g_strdup(key));
	json_keys_changed(before->errors, after->errors, changed);
	strings_changed(before->alerts_by_vm, after->alerts_by_vm, changed);
	if (g_hash_table_size(changed) > max)
		return NULL;
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	g_hash_table_iter_init(&it, changed);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		g_hash_table_iter_steal(&it);
		g_ptr_array_add(out, key);
	}
	g_ptr_array_sort(out, by_string);
	return out;
}

herd_node_facts *herd_facts_fresh(herd_facts *f, uint32_t nodeid)
{
	herd_node_facts *n = g_hash_table_lookup(f->nodes, GUINT_TO_POINTER(nodeid));
	return n && n->round == f->round ? n : NULL;
}

json_t *herd_facts_links(herd_facts *f)
{
	json_t *out = json_object();
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, f->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		if (n->round == f->round && json_object_size(n->links))
			json_object_set(out, n->name, n->links);
	}
	return out;
}

json_t *herd_facts_esan(herd_facts *f, store_state *st)
{
	json_t *out = json_object();
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, f->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		store_object *node = n->round == f->round ? store_node_by_id(st, n->nodeid) : NULL;
		const char *disk;
		json_t *s;
		json_object_foreach(node ? json_object_get(n->usage, "esan") : NULL, disk, s) {
			if (!json_is_object(s))
				continue;
			if (!json_object_get(out, disk))
				json_object_set_new(out, disk, json_object());
			json_object_set(json_object_get(out, disk), node->name, s);
		}
	}
	return out;
}

const herd_vm_fact *herd_facts_vm(herd_facts *f, const char *uuid, uint32_t *nodeid)
{
	const herd_vm_fact *best = NULL;
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, f->nodes);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		herd_node_facts *n = v;
		if (n->round != f->round)
			continue;
		herd_vm_fact *fact = g_hash_table_lookup(n->vms, uuid);
		if (fact && (!best || (!herd_vm_state_runs(best->state) && herd_vm_state_runs(fact->state)))) {
			best = fact;
			if (nodeid)
				*nodeid = n->nodeid;
		}
	}
	return best;
}

GHashTable *herd_facts_active(herd_facts *f)
{
	GHashTable *out = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	guint n_nodes = g_hash_table_size(f->nodes);
	GHashTableIter it, vms;
	gpointer v, fact;
	/* In the order herd_facts_vm() goes: its fact is the first active one. */
	g_hash_table_iter_init(&it, f->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		herd_node_facts *n = v;
		if (n->round != f->round)
			continue;
		g_hash_table_iter_init(&vms, n->vms);
		while (g_hash_table_iter_next(&vms, NULL, &fact)) {
			const herd_vm_fact *vf = fact;
			if (vf->state == HERD_VM_STOPPED)
				continue;
			herd_active_vm *a = g_hash_table_lookup(out, vf->uuid);
			if (!a) {
				a = g_malloc0(sizeof(*a) + n_nodes * sizeof(a->where[0]));
				g_hash_table_insert(out, (gpointer)vf->uuid, a);
			}
			if (vf->state == HERD_VM_INCOMING) {
				a->incoming_on = n->nodeid;
				continue;
			}
			if (!a->fact) {
				a->fact = vf;
				a->on = n->nodeid;
			}
			a->where[a->n_where++] = n->nodeid;
		}
	}
	return out;
}
