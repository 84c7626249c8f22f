#include "testvirt.h"

#include "common/error.h"

#include <string.h>

typedef struct {
	char op[16];
	char uuid[37];
	char to[64];             /* migrate: the destination node */
	int64_t began_ms;
	herd_virt_done done;
	gpointer user;
} pending_op;

struct testvirt {
	herd_virt base;          /* first: a testvirt is a herd_virt */
	char *node;
	uint64_t memory_mib;
	unsigned cpus;
	GHashTable *vms;         /* uuid -> herd_vm_fact* */
	GHashTable *fail_start;  /* uuid -> message */
	GHashTable *fail_migrate; /* uuid -> message */
	GHashTable *media;        /* uuid -> the last removable drive's XML changed live */
	GHashTable *counts;      /* "op uuid" -> count */
	GQueue ops;              /* pending_op*, in the order asked */
	guint idle;
	bool held;
	bool open;               /* between open() and close() */
	bool connected;          /* the hypervisor answers */
	bool reported;           /* open() was followed by its first report */
};

/* Every driver by its node's name: a migration reaches its destination's. */
static GHashTable *by_node;

static int64_t now_ms(void)
{
	return g_get_real_time() / 1000;
}

static bool active(const herd_vm_fact *f)
{
	return f && f->state != HERD_VM_STOPPED && f->state != HERD_VM_CRASHED;
}

static void emit(testvirt *v, const herd_vm_fact *f)
{
	if (v->open && v->connected && v->reported && v->base.cb.fact)
		v->base.cb.fact(v->base.user, f);
}

static herd_vm_fact *set_state(testvirt *v, const char *uuid, herd_vm_state state,
			       const char *reason, bool tell)
{
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	if (!f) {
		f = g_new0(herd_vm_fact, 1);
		g_strlcpy(f->uuid, uuid, sizeof(f->uuid));
		g_hash_table_insert(v->vms, f->uuid, f);
	}
	f->state = state;
	f->since_ms = now_ms();
	g_strlcpy(f->reason, reason, sizeof(f->reason));
	if (tell)
		emit(v, f);
	return f;
}

static void report_all(testvirt *v)
{
	GHashTableIter it;
	gpointer f;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, NULL, &f))
		emit(v, f);
}

/* ------------------------------------------------------------------ */
/* Operations, answered from the main loop                            */

static void finish(pending_op *o, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void finish(pending_op *o, const char *fmt, ...)
{
	g_autoptr(GError) err = NULL;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		g_autofree char *msg = g_strdup_vprintf(fmt, ap);
		va_end(ap);
		err = g_error_new_literal(HERD_ERROR, HERD_ERR_CONFLICT, msg);
	}
	o->done(err, o->user);
}

static void run_op(testvirt *v, pending_op *o)
{
	herd_vm_fact *f = g_hash_table_lookup(v->vms, o->uuid);
	const char *op = o->op;
	if (!v->connected) {
		finish(o, "Cannot reach the hypervisor of node %s.", v->node);
	} else if (strcmp(op, "start") == 0) {
		g_autofree char *key = NULL, *failure = NULL;
		g_hash_table_steal_extended(v->fail_start, o->uuid, (gpointer *)&key, (gpointer *)&failure);
		if (active(f)) {
			finish(o, NULL); /* idempotent, as the libvirt driver's */
		} else if (failure) {
			g_autoptr(GError) err = g_error_new_literal(HERD_ERROR, HERD_ERR_IO, failure);
			o->done(err, o->user);
		} else {
			set_state(v, o->uuid, HERD_VM_STARTING, "starting", true);
			set_state(v, o->uuid, HERD_VM_RUNNING, "booted", true);
			finish(o, NULL);
		}
	} else if (strcmp(op, "shutdown") == 0 || strcmp(op, "destroy") == 0) {
		bool shutdown = strcmp(op, "shutdown") == 0;
		if (f && f->state != HERD_VM_STOPPED) {
			if (shutdown)
				set_state(v, o->uuid, HERD_VM_STOPPING, "shutting down", true);
			set_state(v, o->uuid, HERD_VM_STOPPED, shutdown ? "shut down" : "destroyed", true);
		}
		finish(o, NULL);
	} else if (strcmp(op, "migrate") == 0) {
		testvirt *to = by_node ? g_hash_table_lookup(by_node, o->to) : NULL;
		g_autofree char *key = NULL, *failure = NULL;
		g_hash_table_steal_extended(v->fail_migrate, o->uuid, (gpointer *)&key, (gpointer *)&failure);
		if (!to || !to->connected || !to->open || failure) {
			if (to)
				set_state(to, o->uuid, HERD_VM_STOPPED, "migration failed", true);
			if (f && f->state == HERD_VM_MIGRATING)
				set_state(v, o->uuid, HERD_VM_RUNNING, "migration failed", true);
			finish(o, "%s", failure ? failure : "Cannot reach the destination's hypervisor.");
			return;
		}
		set_state(to, o->uuid, HERD_VM_RUNNING, "migrated in", true);
		set_state(v, o->uuid, HERD_VM_STOPPED, "migrated away", true);
		finish(o, NULL);
	} else if (!active(f)) {
		finish(o, "Requested operation is not valid: domain %s is not running.", o->uuid);
	} else if (strcmp(op, "suspend") == 0) {
		if (f->state != HERD_VM_PAUSED)
			set_state(v, o->uuid, HERD_VM_PAUSED, "paused by an operator", true);
		finish(o, NULL);
	} else if (strcmp(op, "resume") == 0) {
		if (f->state != HERD_VM_PAUSED) {
			finish(o, "Requested operation is not valid: domain %s is not paused.", o->uuid);
			return;
		}
		set_state(v, o->uuid, HERD_VM_RUNNING, "resumed", true);
		finish(o, NULL);
	} else if (strcmp(op, "change_media") == 0) {
		finish(o, NULL); /* the drive's new XML was kept when it was asked */
	} else {
		/* reboot, reset: it runs on */
		set_state(v, o->uuid, f->state, strcmp(op, "reboot") == 0 ? "rebooted" : "reset", true);
		finish(o, NULL);
	}
}

static gboolean on_idle(gpointer data)
{
	testvirt *v = data;
	v->idle = 0;
	if (v->open && !v->reported) {
		/* Connected: say so, then every VM's fact (as the libvirt driver
		 * does after a connection). */
		v->reported = true;
		if (v->connected && v->base.cb.connection)
			v->base.cb.connection(v->base.user, false);
		report_all(v);
	}
	/* Only what was asked before this round: an answer may ask again. */
	for (guint n = g_queue_get_length(&v->ops); n > 0 && !v->held && v->open; n--) {
		pending_op *o = g_queue_pop_head(&v->ops);
		run_op(v, o);
		g_free(o);
	}
	if (!v->held && v->open && !g_queue_is_empty(&v->ops))
		v->idle = g_idle_add(on_idle, v);
	return G_SOURCE_REMOVE;
}

static void kick(testvirt *v)
{
	if (!v->idle && v->open && !v->held)
		v->idle = g_idle_add(on_idle, v);
}

static pending_op *ask(herd_virt *base, const char *op, const char *uuid, herd_virt_done done,
		       gpointer user)
{
	testvirt *v = (testvirt *)base;
	g_autofree char *key = g_strdup_printf("%s %s", op, uuid);
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(v->counts, key));
	g_hash_table_insert(v->counts, g_steal_pointer(&key), GUINT_TO_POINTER(n + 1));
	pending_op *o = g_new0(pending_op, 1);
	g_strlcpy(o->op, op, sizeof(o->op));
	g_strlcpy(o->uuid, uuid, sizeof(o->uuid));
	o->done = done;
	o->user = user;
	o->began_ms = now_ms();
	g_queue_push_tail(&v->ops, o);
	kick(v);
	return o;
}

static void drop_ops(testvirt *v)
{
	g_queue_clear_full(&v->ops, g_free);
	if (v->idle) {
		g_source_remove(v->idle);
		v->idle = 0;
	}
}

static bool tv_open(herd_virt *base, GError **error)
{
	testvirt *v = (testvirt *)base;
	v->open = true;
	v->reported = false;
	kick(v);
	return true;
}

static void tv_close(herd_virt *base)
{
	testvirt *v = (testvirt *)base;
	/* As the libvirt driver's close(): nothing under way is answered. */
	v->open = false;
	drop_ops(v);
}

static void tv_start(herd_virt *v, const char *uuid, const char *xml, herd_virt_done done,
		     gpointer user)
{
	ask(v, "start", uuid, done, user);
}

static void tv_shutdown(herd_virt *v, const char *uuid, unsigned timeout_s, herd_virt_done done,
			gpointer user)
{
	ask(v, "shutdown", uuid, done, user);
}

/* A migration is under way from its start: running here as migrating,
 * arriving there as incoming; it ends (either way) when it is answered. */
static void tv_migrate(herd_virt *base, const char *uuid, const herd_migrate_params *p,
		       herd_virt_done done, gpointer user)
{
	testvirt *v = (testvirt *)base;
	pending_op *o = ask(base, "migrate", uuid, done, user);
	g_strlcpy(o->to, p->to, sizeof(o->to));
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	testvirt *to = by_node ? g_hash_table_lookup(by_node, p->to) : NULL;
	if (f && (f->state == HERD_VM_RUNNING || f->state == HERD_VM_PAUSED) && v->connected) {
		set_state(v, uuid, HERD_VM_MIGRATING, "migrating", true);
		if (to && to->connected && to->open)
			set_state(to, uuid, HERD_VM_INCOMING, "incoming migration", true);
	}
}

static bool tv_migrate_progress(herd_virt *base, const char *uuid, herd_migrate_progress *out)
{
	testvirt *v = (testvirt *)base;
	for (GList *l = v->ops.head; l; l = l->next) {
		pending_op *o = l->data;
		if (strcmp(o->op, "migrate") != 0 || strcmp(o->uuid, uuid) != 0)
			continue;
		*out = (herd_migrate_progress){
			.started_ms = o->began_ms,
			.elapsed_ms = (uint64_t)(now_ms() - o->began_ms),
			.memory_total = 64u << 20,
			.memory_processed = 40u << 20,
			.memory_remaining = 24u << 20,
			.dirty_rate = 100,
			.page_size = 4096,
			.bandwidth = 100u << 20,
			.iteration = 2,
			.expected_downtime_ms = 3,
		};
		return true;
	}
	return false;
}

#define SIMPLE_OP(name)                                                                    \
	static void tv_##name(herd_virt *v, const char *uuid, herd_virt_done done, gpointer user) \
	{                                                                                  \
		ask(v, #name, uuid, done, user);                                           \
	}
SIMPLE_OP(destroy)
SIMPLE_OP(reboot)
SIMPLE_OP(reset)
SIMPLE_OP(suspend)
SIMPLE_OP(resume)

static void tv_change_media(herd_virt *base, const char *uuid, const char *device_xml, herd_virt_done done,
			    gpointer user)
{
	testvirt *v = (testvirt *)base;
	g_hash_table_replace(v->media, g_strdup(uuid), g_strdup(device_xml));
	ask(base, "change_media", uuid, done, user);
}

const char *testvirt_media(testvirt *v, const char *uuid)
{
	return g_hash_table_lookup(v->media, uuid);
}

static GArray *tv_facts(herd_virt *base)
{
	return herd_vm_facts_of_table(((testvirt *)base)->vms);
}

static bool tv_resources(herd_virt *base, herd_node_resources *out)
{
	testvirt *v = (testvirt *)base;
	if (!v->connected)
		return false;
	*out = (herd_node_resources){ .memory_mib = v->memory_mib, .free_mib = v->memory_mib,
				      .cpus = v->cpus };
	return true;
}

static const herd_virt_ops testvirt_ops = {
	.open = tv_open,
	.close = tv_close,
	.start = tv_start,
	.shutdown = tv_shutdown,
	.destroy = tv_destroy,
	.reboot = tv_reboot,
	.reset = tv_reset,
	.suspend = tv_suspend,
	.resume = tv_resume,
	.change_media = tv_change_media,
	.migrate = tv_migrate,
	.migrate_progress = tv_migrate_progress,
	.facts = tv_facts,
	.resources = tv_resources,
};

/* ------------------------------------------------------------------ */

testvirt *testvirt_new(const char *node_name, uint64_t memory_mib, unsigned cpus)
{
	testvirt *v = g_new0(testvirt, 1);
	v->base.ops = &testvirt_ops;
	v->node = g_strdup(node_name);
	v->memory_mib = memory_mib;
	v->cpus = cpus;
	v->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	v->fail_start = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	v->fail_migrate = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	v->media = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	if (!by_node)
		by_node = g_hash_table_new(g_str_hash, g_str_equal);
	g_hash_table_replace(by_node, v->node, v);
	v->counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	v->connected = true;
	g_queue_init(&v->ops);
	return v;
}

void testvirt_free(testvirt *v)
{
	if (!v)
		return;
	tv_close(&v->base);
	if (by_node && g_hash_table_lookup(by_node, v->node) == v)
		g_hash_table_remove(by_node, v->node);
	g_hash_table_destroy(v->vms);
	g_hash_table_destroy(v->fail_start);
	g_hash_table_destroy(v->fail_migrate);
	g_hash_table_destroy(v->media);
	g_hash_table_destroy(v->counts);
	g_free(v->node);
	g_free(v);
}

herd_virt *testvirt_driver(testvirt *v)
{
	return &v->base;
}

void testvirt_hold(testvirt *v, bool hold)
{
	v->held = hold;
	if (!hold && !g_queue_is_empty(&v->ops))
		kick(v);
}

void testvirt_fail_start(testvirt *v, const char *uuid, const char *message)
{
	g_hash_table_replace(v->fail_start, g_strdup(uuid), g_strdup(message));
}

void testvirt_fail_migrate(testvirt *v, const char *uuid, const char *message)
{
	g_hash_table_replace(v->fail_migrate, g_strdup(uuid), g_strdup(message));
}

void testvirt_crash(testvirt *v, const char *uuid)
{
	g_assert_true(active(g_hash_table_lookup(v->vms, uuid)));
	set_state(v, uuid, HERD_VM_CRASHED, "crashed", true);
}

void testvirt_connection(testvirt *v, bool lost)
{
	if (v->connected == !lost)
		return;
	v->connected = !lost;
	if (v->open && v->reported && v->base.cb.connection)
		v->base.cb.connection(v->base.user, lost);
	if (!lost)
		report_all(v);
}

void testvirt_power_off(testvirt *v)
{
	/* What was under way fails (its caller would otherwise wait for ever):
	 * the node is off, nobody minds the words. */
	pending_op *o;
	while ((o = g_queue_pop_head(&v->ops))) {
		finish(o, "Node %s lost its power.", v->node);
		g_free(o);
	}
	GHashTableIter it;
	gpointer uuid;
	g_hash_table_iter_init(&it, v->vms);
	while (g_hash_table_iter_next(&it, &uuid, NULL))
		set_state(v, uuid, HERD_VM_STOPPED, "power cut", false);
}

herd_vm_state testvirt_state(testvirt *v, const char *uuid)
{
	herd_vm_fact *f = g_hash_table_lookup(v->vms, uuid);
	return f ? f->state : HERD_VM_STOPPED;
}

unsigned testvirt_count(testvirt *v, const char *op, const char *uuid)
{
	g_autofree char *key = g_strdup_printf("%s %s", op, uuid);
	return GPOINTER_TO_UINT(g_hash_table_lookup(v->counts, key));
}

unsigned testvirt_pending(testvirt *v)
{
	return g_queue_get_length(&v->ops);
}
