#define G_LOG_DOMAIN "api"
#include "api/vm_list.h"

#include "api/common.h"
#include "api/routes.h"
#include "api/vm_json.h"

#include "common/json_writer.h"
#include "store/vm.h"

#include <string.h>

/* How long a slice may hold the main loop, and how often (in VMs) it
 * looks at the clock. */
#define SLICE_US 1000
#define CLOCK_EVERY 32

/* One list under way: its snapshot and the text written so far. */
typedef struct vm_list {
	http_request *req;
	GPtrArray *vms;            /* store_object*, held: the VMs when it was asked for */
	herd_runtime_view *view;   /* where they ran then; NULL without an engine */
	int64_t now_ms;            /* the wall clock then, for uptimes */
	guint next;                /* the next VM of @vms to write */
	GString *text;
	json_writer w;
	GHashTable *texts;         /* store_object* (held) -> vm_text*: its VMs' configuration members */
} vm_list;

/* One VM's configuration members, in a block of its own size (a GString
 * would take 512 bytes and its header), with keys of one byte
 * (json_writer_init_keyed(): ~150 bytes of the ~370 of a VM's text as
 * JSON; 2 MB less at 10,000 VMs). */
typedef struct {
	uint32_t len;
	uint32_t json_len;         /* as JSON */
	char str[];
} vm_text;

/*
 * Each VM's configuration members as text, by its object (a reference is
 * held, so no other object can take its address), kept from one list to
 * the next: a later list writes again only what changed.  A list takes the
 * texts it uses out of @texts and leaves its own when it ends.
 */
struct api_vm_lists {
	GHashTable *texts;         /* store_object* (held) -> vm_text* */
	GString *scratch;          /* where a VM's text is written before it is kept */
	json_keys keys;            /* the keys of one byte in the kept texts */
	GQueue under_way;          /* vm_list*, the oldest first */
	guint source;              /* writes the oldest's next slice; 0: none under way */
	unsigned slice_limit;      /* at most so many VMs a slice; 0: no limit */
	bool held;                 /* tests: no slice is written meanwhile */
};

static GHashTable *texts_new(void)
{
	return g_hash_table_new_full(g_direct_hash, g_direct_equal, (GDestroyNotify)store_object_unref,
				     g_free);
}

static api_vm_lists *lists_of(api_ctx *a)
{
	if (!a->vm_lists) {
		a->vm_lists = g_new0(api_vm_lists, 1);
		a->vm_lists->texts = texts_new();
		a->vm_lists->scratch = g_string_sized_new(1024);
		api_vm_config_keys_init(&a->vm_lists->keys);
		g_queue_init(&a->vm_lists->under_way);
	}
	return a->vm_lists;
}

static void list_free(vm_list *v)
{
	g_ptr_array_unref(v->vms);
	herd_runtime_view_free(v->view);
	if (v->text)
		g_string_free(v->text, TRUE);
	if (v->texts)
		g_hash_table_destroy(v->texts);
	g_free(v);
}

static void list_write_vm(api_vm_lists *l, vm_list *v, store_object *vm)
{
	gpointer key, kept;
	vm_text *config;
	if (g_hash_table_steal_extended(l->texts, vm, &key, &kept)) {
		store_object_unref(key);
		config = kept;
	} else {
		g_string_truncate(l->scratch, 0);
		json_writer c;
		json_writer_init_keyed(&c, l->scratch, &l->keys);
		api_vm_config_write(&c, vm);
		config = g_malloc(sizeof(vm_text) + l->scratch->len + 1);
		config->len = (uint32_t)l->scratch->len;
		config->json_len = (uint32_t)json_keyed_len(l->scratch->str, l->scratch->len, &l->keys);
		memcpy(config->str, l->scratch->str, l->scratch->len + 1);
	}
	g_hash_table_insert(v->texts, store_object_ref(vm), config);
	json_writer_object_begin(&v->w);
	json_writer_members_keyed(&v->w, config->str, config->len, config->json_len, &l->keys);
	api_vm_runtime_write(&v->w, v->view, vm, v->now_ms);
	json_writer_object_end(&v->w);
}

/* The oldest list's next slice; true when it is answered. */
static bool list_slice(api_vm_lists *l)
{
	vm_list *v = g_queue_peek_head(&l->under_way);
	gint64 until_us = g_get_monotonic_time() + SLICE_US;
	for (unsigned n = 1; v->next < v->vms->len; n++) {
		list_write_vm(l, v, v->vms->pdata[v->next++]);
		if (n == l->slice_limit ||
		    (n % CLOCK_EVERY == 0 && g_get_monotonic_time() >= until_us))
			return false;
	}
	g_queue_pop_head(&l->under_way);
	json_writer_array_end(&v->w);
	/* What is left are the VMs changed or gone since the last list. */
	g_hash_table_destroy(l->texts);
	l->texts = g_steal_pointer(&v->texts);
	http_respond_json_text(v->req, 200, g_steal_pointer(&v->text));
	list_free(v);
	return true;
}

static gboolean on_slice(gpointer data)
{
	api_vm_lists *l = data;
	list_slice(l);
	if (!g_queue_is_empty(&l->under_way))
		return G_SOURCE_CONTINUE;
	l->source = 0;
	return G_SOURCE_REMOVE;
}

static void slices_start(api_vm_lists *l)
{
	if (!l->source && !l->held && !g_queue_is_empty(&l->under_way))
		l->source = g_idle_add_full(G_PRIORITY_DEFAULT_IDLE, on_slice, l, NULL);
}

void api_vms_list(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	if (!api_require_store(req, a))
		return;
	api_vm_lists *l = lists_of(a);
	vm_list *v = g_new0(vm_list, 1);
	v->req = req;
	v->vms = store_state_list(api_state(a), STORE_KIND_VM);
	for (guint i = 0; i < v->vms->len; i++)
		store_object_ref(v->vms->pdata[i]);
	g_ptr_array_set_free_func(v->vms, (GDestroyNotify)store_object_unref);
	v->view = a->ha ? herd_ha_runtime_view(a->ha) : NULL;
	v->now_ms = g_get_real_time() / 1000;
	v->text = g_string_sized_new(1024 + 400 * (gsize)v->vms->len);
	json_writer_init(&v->w, v->text);
	json_writer_array_begin(&v->w);
	v->texts = texts_new();
	g_queue_push_tail(&l->under_way, v);
	/* Alone, its first slice at once: a short list is answered now. */
	if (l->under_way.length == 1 && !l->held && list_slice(l))
		return;
	http_request_suspend(req);
	slices_start(l);
}

unsigned api_vm_lists_under_way(api_ctx *a)
{
	return a->vm_lists ? a->vm_lists->under_way.length : 0;
}

void api_vm_lists_set_slice_limit(api_ctx *a, unsigned vms)
{
	lists_of(a)->slice_limit = vms;
}

void api_vm_lists_hold(api_ctx *a, bool hold)
{
	api_vm_lists *l = lists_of(a);
	l->held = hold;
	if (hold && l->source)
		g_clear_handle_id(&l->source, g_source_remove);
	slices_start(l);
}

void api_vm_lists_clear(api_ctx *a)
{
	api_vm_lists *l = a->vm_lists;
	if (!l)
		return;
	if (l->source)
		g_source_remove(l->source);
	vm_list *v;
	while ((v = g_queue_pop_head(&l->under_way))) {
		http_respond_errorf(v->req, HERD_ERR_UNAVAILABLE, "The daemon is shutting down.");
		list_free(v);
	}
	g_hash_table_destroy(l->texts);
	g_string_free(l->scratch, TRUE);
	g_clear_pointer(&a->vm_lists, g_free);
}
