/*
 * How a VM looks in the API, and GET /api/v1/vms, the list of all of them.
 * A VM's JSON is its configuration (a function of its store object, which
 * never changes: a change makes a new object) and its runtime (where it
 * runs, from the HA engine's facts).  The list writes its text at once
 * (common/json_writer.h) and keeps each VM's configuration part as text
 * until its object is replaced: with 10,000 VMs, walking every object's
 * fields and the engine's facts VM by VM cost 25 ms of the main loop, the
 * cached text and one look at the facts about 5 (bench/vm-list).
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/json.h"
#include "common/json_writer.h"
#include "store/vm.h"

#include <string.h>

/* The members of @vm's JSON that its object alone decides. */
static void config_write(json_writer *w, store_object *vm)
{
	const store_vm *v = store_vm_of(vm);
	json_writer_member_string(w, "name", vm->name);
	json_writer_member_string(w, "uuid", vm->uuid);
	json_writer_member_int(w, "version", (int64_t)vm->version);
	json_writer_member_bool(w, "ha", v->ha);
	json_writer_member_string(w, "preferred", v->preferred);
	json_writer_member_bool(w, "failback", v->failback);
	json_writer_member_int(w, "shutdown_timeout_s", v->shutdown_timeout_s);
	json_writer_member_int(w, "memory_mib", (int64_t)v->memory_mib);
	json_writer_member_int(w, "vcpus", v->vcpus);
	json_writer_member_string(w, "type", v->type);
	json_writer_member_int(w, "modified_ms", vm->modified_ms);
	json_writer_member_string(w, "target", v->target_running ? "running" : "stopped");
	json_writer_member_string(w, "sticky", v->sticky);
	json_writer_member_string(w, "group", v->group);
	json_writer_member_string(w, "assigned", v->node);
	json_writer_key(w, "failed");
	json_writer_array_begin(w);
	for (size_t i = 0; i < v->n_failures; i++) {
		json_writer_object_begin(w);
		json_writer_member_string(w, "node", v->failures[i].node);
		json_writer_member_int(w, "count", v->failures[i].count);
		json_writer_member_string(w, "error", v->failures[i].error);
		json_writer_object_end(w);
	}
	json_writer_array_end(w);
}

/* The members the HA engine's facts decide (none without an engine). */
static void runtime_write(json_writer *w, const herd_runtime_view *view, store_object *vm)
{
	herd_vm_runtime rt = { .state = "shut off" };
	if (view)
		herd_runtime_view_get(view, vm, &rt);
	json_writer_member_string(w, "state", rt.state);
	json_writer_member_string(w, "node", rt.node);
	if (!view)
		return;
	json_writer_member_int(w, "since_ms", rt.since_ms);
	if (rt.error)
		json_writer_member_string(w, "error", rt.error);
	if (rt.alert)
		json_writer_member_string(w, "alert", rt.alert);
	if (rt.node && rt.since_ms > 0)
		json_writer_member_int(w, "uptime_s", (g_get_real_time() / 1000 - rt.since_ms) / 1000);
}

json_t *api_vm_json(api_ctx *a, store_object *vm, bool with_xml)
{
	g_autoptr(GString) text = g_string_sized_new(with_xml ? 4096 : 512);
	g_autoptr(herd_runtime_view) view = a->ha ? herd_ha_runtime_view(a->ha) : NULL;
	json_writer w;
	json_writer_init(&w, text);
	json_writer_object_begin(&w);
	config_write(&w, vm);
	runtime_write(&w, view, vm);
	if (with_xml)
		json_writer_member_string(&w, "xml", store_vm_of(vm)->xml);
	json_writer_object_end(&w);
	return json_loads(text->str, 0, NULL);
}

/* ------------------------------------------------------------------ */
/* The list                                                            */

/* Each VM's configuration members as text, by its object (a reference
 * is held, so no other object can take its address). */
struct api_vm_cache {
	GHashTable *text;   /* store_object* -> GString* */
};

static void text_free(gpointer text)
{
	g_string_free(text, TRUE);
}

static GHashTable *cache_table_new(void)
{
	return g_hash_table_new_full(g_direct_hash, g_direct_equal, (GDestroyNotify)store_object_unref,
				     text_free);
}

void api_ctx_clear(api_ctx *a)
{
	if (a->vm_cache) {
		g_hash_table_destroy(a->vm_cache->text);
		g_clear_pointer(&a->vm_cache, g_free);
	}
}

void api_vms_list(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	if (!a->vm_cache) {
		a->vm_cache = g_new0(api_vm_cache, 1);
		a->vm_cache->text = cache_table_new();
	}
	GHashTable *before = a->vm_cache->text;
	GHashTable *now = cache_table_new();
	g_autoptr(GPtrArray) vms = store_state_list(api_state(a), STORE_KIND_VM);
	g_autoptr(herd_runtime_view) view = a->ha ? herd_ha_runtime_view(a->ha) : NULL;
	GString *text = g_string_sized_new(1024 + 400 * (gsize)vms->len);
	json_writer w;
	json_writer_init(&w, text);
	json_writer_array_begin(&w);
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		gpointer key, config;
		if (g_hash_table_steal_extended(before, vm, &key, &config)) {
			store_object_unref(key);
		} else {
			config = g_string_sized_new(384);
			json_writer c;
			json_writer_init_members(&c, config);
			config_write(&c, vm);
		}
		g_hash_table_insert(now, store_object_ref(vm), config);
		json_writer_object_begin(&w);
		json_writer_members_text(&w, ((GString *)config)->str, ((GString *)config)->len);
		runtime_write(&w, view, vm);
		json_writer_object_end(&w);
	}
	json_writer_array_end(&w);
	/* What is left are VMs changed or gone since the last list. */
	g_hash_table_destroy(before);
	a->vm_cache->text = now;
	http_respond_json_text(req, 200, text);
}
