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
/* How often the kept texts of VMs changed or gone since are dropped. */
#define SWEEP_S 60

/* A VM's configuration members as text, with its object (a reference is
 * held, so no other object can take its address); both NULL once taken
 * or dropped. */
typedef struct vm_text vm_text;
typedef struct {
	store_object *vm;
	vm_text *text;
} kept_text;

/* Those of a list's VMs, in its order: an array of its size (GArray's
 * powers of two would take 262 kB for 10,000 where 160 do). */
typedef struct {
	guint len, size;
	kept_text e[];
} kept_texts;

/* One list under way: its snapshot and the text written so far. */
typedef struct vm_list {
	http_request *req;
	GPtrArray *vms;            /* store_object*, held: the VMs when it was asked for */
	herd_runtime_view *view;   /* where they ran then; NULL without an engine */
	int64_t now_ms;            /* the wall clock then, for uptimes */
	guint next;                /* the next VM of @vms to write */
	GString *text;
	json_writer w;
	kept_texts *kept;          /* its VMs' configuration members, in its order */
	guint from;                /* the next entry of the lists' kept texts to look at */
} vm_list;

/* One VM's configuration members, in a block of its own size (a GString
 * would take 512 bytes and its header), with keys and null, true and
 * false of one byte (json_writer_init_keyed(): ~135 bytes for the ~400
 * of the test guest's as JSON; 2.5 MB less at 10,000 VMs). */
struct vm_text {
	uint32_t len;
	uint32_t json_len;         /* as JSON */
	char str[];
};

/*
 * Each VM's configuration members as text, kept from one list to the next
 * in the order of the list (by name, as store_state_list() has them): a
 * later list walks them beside its own VMs, takes those whose object it
 * has (a pointer compared, no lookup), drops those of VMs changed or gone,
 * writes again only what changed, and leaves its own when it ends.  Lists
 * are written one after the other, so one walks them at a time.
 */
struct api_vm_lists {
	api_ctx *api;
	kept_texts *kept;          /* by name */
	guint sweep;               /* drops what the store has replaced; 0: none kept */
	GString *scratch;          /* where a VM's text is written before it is kept */
	json_keys keys;            /* the keys of one byte in the kept texts */
	GQueue under_way;          /* vm_list*, the oldest first */
	guint source;              /* writes the oldest's next slice; 0: none under way */
	unsigned slice_limit;      /* at most so many VMs a slice; 0: no limit */
	bool held;                 /* tests: no slice is written meanwhile */
};

static void kept_clear(kept_text *k)
{
	if (k->vm)
		store_object_unref(k->vm);
	g_free(k->text);
	k->vm = NULL;
	k->text = NULL;
}

static kept_texts *kept_new(guint size)
{
	kept_texts *kept = g_malloc(sizeof(kept_texts) + (gsize)size * sizeof(kept_text));
	kept->len = 0;
	kept->size = size;
	return kept;
}

static void kept_free(kept_texts *kept)
{
	for (guint i = 0; i < kept->len; i++)
		kept_clear(&kept->e[i]);
	g_free(kept);
}

static api_vm_lists *lists_of(api_ctx *a)
{
	if (!a->vm_lists) {
		a->vm_lists = g_new0(api_vm_lists, 1);
		a->vm_lists->api = a;
		a->vm_lists->kept = kept_new(0);
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
	if (v->kept)
		kept_free(v->kept);
	g_free(v);
}

static void list_write_vm(api_vm_lists *l, vm_list *v, store_object *vm)
{
	vm_text *config = NULL;
	/* The last list's text of @vm if it has one for this object; on the
	 * way, those of VMs before it by name, gone since, are dropped, and
	 * that of an earlier object of @vm (a new version). */
	while (v->from < l->kept->len) {
		kept_text *k = &l->kept->e[v->from];
		if (k->vm == vm) {
			config = g_steal_pointer(&k->text);
			store_object_unref(g_steal_pointer(&k->vm));
			v->from++;
			break;
		}
		if (k->vm && strcmp(k->vm->name, vm->name) > 0)
			break;
		kept_clear(k);
		v->from++;
	}
	if (!config) {
		g_string_truncate(l->scratch, 0);
		json_writer c;
		json_writer_init_keyed(&c, l->scratch, &l->keys);
		api_vm_config_write(&c, vm);
		config = g_malloc(sizeof(vm_text) + l->scratch->len + 1);
		config->len = (uint32_t)l->scratch->len;
		config->json_len = (uint32_t)json_keyed_len(l->scratch->str, l->scratch->len, &l->keys);
		memcpy(config->str, l->scratch->str, l->scratch->len + 1);
	}
	g_assert(v->kept->len < v->kept->size);
	v->kept->e[v->kept->len++] = (kept_text){ store_object_ref(vm), config };
	json_writer_object_begin(&v->w);
	json_writer_members_keyed(&v->w, config->str, config->len, config->json_len, &l->keys);
	api_vm_runtime_write(&v->w, v->view, vm, v->now_ms);
	json_writer_object_end(&v->w);
}

/*
 * Drop the kept texts whose object the store has replaced (a change) or
 * dropped: they would never be used again, and they held the old object
 * (its packed text and typed view, ~0.7 kB a VM) until the next list.
 * One lookup in the state a kept text (1.6–2.3 ms for 10,000: bench/README.md);
 * stops once nothing is kept.
 */
static guint sweep(api_vm_lists *l)
{
	store_state *st = api_state(l->api);
	guint left = 0;
	for (guint i = 0; i < l->kept->len; i++) {
		kept_text *k = &l->kept->e[i];
		if (!k->vm)
			continue;
		if (st && store_state_get(st, STORE_KIND_VM, k->vm->uuid) == k->vm)
			left++;
		else
			kept_clear(k);
	}
	return left;
}

static gboolean on_sweep(gpointer data)
{
	api_vm_lists *l = data;
	if (sweep(l))
		return G_SOURCE_CONTINUE;
	l->sweep = 0;
	return G_SOURCE_REMOVE;
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
	/* What is left are the VMs after the last by name, gone since. */
	kept_free(l->kept);
	l->kept = g_steal_pointer(&v->kept);
	if (!l->sweep && l->kept->len)
		l->sweep = g_timeout_add_seconds(SWEEP_S, on_sweep, l);
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
	v->kept = kept_new(v->vms->len);
	g_queue_push_tail(&l->under_way, v);
	/* Alone, its first slice at once: a short list is answered now. */
	if (l->under_way.length == 1 && !l->held && list_slice(l))
		return;
	http_request_suspend(req);
	slices_start(l);
}

unsigned api_vm_lists_sweep(api_ctx *a)
{
	return a->vm_lists ? sweep(a->vm_lists) : 0;
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
	if (l->sweep)
		g_source_remove(l->sweep);
	vm_list *v;
	while ((v = g_queue_pop_head(&l->under_way))) {
		http_respond_errorf(v->req, HERD_ERR_UNAVAILABLE, "The daemon is shutting down.");
		list_free(v);
	}
	kept_free(l->kept);
	g_string_free(l->scratch, TRUE);
	g_clear_pointer(&a->vm_lists, g_free);
}
