#include "ha/agent.h"

#include "common/error.h"
#include "common/log.h"
#include "ha/start_order.h"
#include "store/cluster.h"
#include "store/node.h"
#include "store/vm.h"
#include "virt/hardware.h"

#include <string.h>

/* Pause after the Nth failed start: 1 s, 2 s, 4 s… up to a minute. */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 60000

typedef struct {
	char uuid[37];
	bool busy;              /* an operation on it is under way */
	unsigned failures;      /* consecutive failed starts of this version here */
	uint64_t version;       /* the VM's version they count for */
	int64_t retry_at_ms;    /* no new start before this */
	uint64_t migrated;      /* the VM's version last migrated away (once per move) */
	/* Migrated away from here, successfully, to this node: it runs there
	 * until that node reports otherwise or is down, whatever the store
	 * says meanwhile ("" when not). */
	char handed_to[STORE_NAME_MAX * 4 + 1];
	/* The configuration it runs with here: the VM as it was when this
	 * agent started it, or first saw it running (started by an earlier
	 * herdd, or migrated in); NULL while it does not run here.  And the
	 * CD-ROM changed live since. */
	store_object *started;
	bool cdrom_live;        /* the drive holds @cdrom, not @started's */
	char cdrom[37];         /* the ISO's UUID, "" for an empty drive */
	uint64_t media_failed;  /* the version whose live CD-ROM change failed (not retried) */
	unsigned pending;       /* the configuration's changes it does not run with
				 * (store_vm_hw_changes), as last reported */
	uint64_t pending_version; /* the VM's version @pending was found for (an XML
				   * is compared once per version, not at every
				   * reconcile), 0: to be found again */
} vm_track;

static void track_free(gpointer p)
{
	vm_track *t = p;
	if (t->started)
		store_object_unref(t->started);
	g_free(t);
}

struct herd_agent {
	char *node;
	herd_virt *virt;
	herd_agent_io io;
	gpointer user;
	GHashTable *facts;      /* uuid -> herd_vm_fact* (the hypervisor's view) */
	GHashTable *track;      /* uuid -> vm_track* */
	GHashTable *ops;        /* op_ctx* under way (the driver's close() drops them) */
	herd_start_order *order; /* restart priorities and start-after waits */
	json_t *errors;
	bool virt_ok;           /* connected, its facts known (not before the first connection) */
	bool virt_seen;         /* it was connected once: a return is news */
	/* what the last reconcile saw, for completions that need it again */
	store_state *st;
	bool may_act;
	int64_t now_ms;
};

typedef struct {
	herd_agent *a;
	char uuid[37];
	char name[STORE_NAME_MAX * 4 + 1]; /* for the log (UTF-8) */
	char what[16];
	char to[STORE_NAME_MAX * 4 + 1]; /* a migration's destination */
	unsigned timeout_s;     /* a migration's timeout */
	store_object *cfg;      /* a start: the configuration started; a media
				 * change: the VM whose CD-ROM it puts in */
	herd_virt_done done;    /* an operator's request: its caller's callback */
	gpointer user;
} op_ctx;

static const char *const op_names[] = { "reboot", "reset", "suspend", "resume" };

const char *herd_vm_op_name(herd_vm_op op)
{
	return (unsigned)op < G_N_ELEMENTS(op_names) ? op_names[op] : "?";
}

bool herd_vm_op_parse(const char *name, herd_vm_op *out)
{
	for (unsigned i = 0; name && i < G_N_ELEMENTS(op_names); i++) {
		if (strcmp(op_names[i], name) == 0) {
			*out = (herd_vm_op)i;
			return true;
		}
	}
	return false;
}

static void op_free(gpointer p)
{
	op_ctx *o = p;
	if (o->cfg)
		store_object_unref(o->cfg);
	g_free(o);
}

herd_agent *herd_agent_new(const char *node_name, herd_virt *virt, const herd_agent_io *io,
			   gpointer user)
{
	herd_agent *a = g_new0(herd_agent, 1);
	a->node = g_strdup(node_name);
	a->virt = virt;
	a->io = *io;
	a->user = user;
	a->facts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	a->track = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, track_free);
	a->ops = g_hash_table_new_full(g_direct_hash, g_direct_equal, op_free, NULL);
	a->order = herd_start_order_new();
	a->errors = json_object();
	/* Nothing is known of this node's VMs until the driver has connected
	 * and listed them: after a restart of herdd, acting before that would
	 * start, again, VMs that run here. */
	a->virt_ok = false;
	return a;
}

void herd_agent_free(herd_agent *a)
{
	if (!a)
		return;
	g_hash_table_destroy(a->facts);
	g_hash_table_destroy(a->track);
	/* The driver was closed: what it had under way will not be answered. */
	GList *pending = g_hash_table_get_keys(a->ops);
	for (GList *l = pending; l; l = l->next) {
		op_ctx *o = l->data;
		if (o->done) {
			g_autoptr(GError) e = g_error_new_literal(HERD_ERROR, HERD_ERR_UNAVAILABLE,
								  "The daemon is shutting down.");
			o->done(e, o->user);
		}
	}
	g_list_free(pending);
	g_hash_table_destroy(a->ops);
	herd_start_order_free(a->order);
	json_decref(a->errors);
	g_free(a->node);
	g_free(a);
}

static vm_track *track(herd_agent *a, const char *uuid)
{
	vm_track *t = g_hash_table_lookup(a->track, uuid);
	if (!t) {
		t = g_new0(vm_track, 1);
		g_strlcpy(t->uuid, uuid, sizeof(t->uuid));
		g_hash_table_insert(a->track, t->uuid, t);
	}
	return t;
}

static void set_error(herd_agent *a, const char *uuid, const char *msg)
{
	json_t *old = json_object_get(a->errors, uuid);
	if (msg && (!old || strcmp(json_string_value(old), msg) != 0))
		json_object_set_new(a->errors, uuid, json_string(msg));
	else if (!msg && old)
		json_object_del(a->errors, uuid);
	else
		return;
	a->io.changed(a->user);
}

static void on_request_done(const GError *error, gpointer user)
{
	op_ctx *o = user;
	herd_virt_done done = o->done;
	gpointer done_user = o->user;
	g_hash_table_remove(o->a->ops, o); /* frees o */
	done(error, done_user);
}

/* It no longer runs here with the configuration it was started with (it
 * stopped, or went to another node): its next run here takes the one of
 * then. */
static void forget_started(vm_track *t)
{
	g_clear_pointer(&t->started, store_object_unref);
	t->cdrom_live = false;
	t->pending = 0;
	t->pending_version = 0;
}

/* A start of VM @uuid here failed: retried after a pause that grows, and
 * reported (the coordinator places it elsewhere after repeated failures). */
static void start_failed(herd_agent *a, vm_track *t, const char *uuid, const char *name,
			 const GError *error)
{
	t->failures++;
	int64_t pause = RETRY_FIRST_MS << MIN(t->failures - 1, 6u);
	t->retry_at_ms = a->now_ms + MIN(pause, RETRY_MAX_MS);
	log_warn("starting VM %s failed (%u time(s) in a row): %s", name, t->failures, error->message);
	g_autofree char *msg = g_strdup_printf("start failed: %s", error->message);
	set_error(a, uuid, msg);
	a->io.wakeup(a->user, MIN(pause, RETRY_MAX_MS));
}

static void on_op_done(const GError *error, gpointer user)
{
	op_ctx *o = user;
	herd_agent *a = o->a;
	vm_track *t = track(a, o->uuid);
	t->busy = false;
	if (strcmp(o->what, "start") == 0) {
		if (error) {
			start_failed(a, t, o->uuid, o->name, error);
		} else {
			t->failures = 0;
			set_error(a, o->uuid, NULL);
			if (t->started)
				store_object_unref(t->started);
			t->started = o->cfg ? store_object_ref(o->cfg) : NULL;
			t->cdrom_live = false;
			t->pending_version = 0;
		}
	} else if (strcmp(o->what, "media") == 0) {
		const store_vm_hardware *hw = o->cfg ? store_vm_of(o->cfg)->hw : NULL;
		if (error) {
			t->media_failed = o->cfg ? o->cfg->version : 0;
			log_warn("changing the CD-ROM of VM %s failed: %s", o->name, error->message);
			g_autofree char *msg = g_strdup_printf("CD-ROM change failed (made at the next start): %s",
							       error->message);
			set_error(a, o->uuid, msg);
		} else if (hw) {
			log_info("VM %s: CD-ROM changed live", o->name);
			t->cdrom_live = true;
			g_strlcpy(t->cdrom, hw->cdrom ? hw->cdrom : "", sizeof(t->cdrom));
			t->pending_version = 0;
			set_error(a, o->uuid, NULL);
		}
		a->io.changed(a->user);
	} else if (!error && strcmp(o->what, "migrate") == 0) {
		log_info("VM %s was migrated to node %s", o->name, o->to);
		g_strlcpy(t->handed_to, o->to, sizeof(t->handed_to));
		forget_started(t);
		set_error(a, o->uuid, NULL);
		a->io.changed(a->user);
	} else if (error) {
		log_warn("%s of VM %s failed: %s", o->what, o->name, error->message);
		g_autofree char *msg = g_strdup_printf("%s failed: %s", o->what, error->message);
		set_error(a, o->uuid, msg);
		a->io.wakeup(a->user, RETRY_FIRST_MS);
	} else {
		set_error(a, o->uuid, NULL);
		/* Stopped while its op ran (the fact came while busy). */
		if (strcmp(o->what, "shutdown") == 0 || strcmp(o->what, "destroy") == 0)
			forget_started(t);
	}
	g_hash_table_remove(a->ops, o); /* frees o */
	/* The state may be ready for the next step (e.g. stopped: gone). */
	a->io.wakeup(a->user, 0);
}

static void run(herd_agent *a, store_object *vm, const char *uuid, const char *what,
		const char *xml, unsigned timeout_s, const herd_migrate_params *migrate)
{
	vm_track *t = track(a, uuid);
	op_ctx *o = g_new0(op_ctx, 1);
	o->a = a;
	g_strlcpy(o->uuid, uuid, sizeof(o->uuid));
	g_strlcpy(o->name, vm->name, sizeof(o->name));
	g_strlcpy(o->what, what, sizeof(o->what));
	g_hash_table_add(a->ops, o);
	t->busy = true;
	log_info("%s VM %s", strcmp(what, "start") == 0 ? "starting" :
			     strcmp(what, "media") == 0 ? "changing the CD-ROM of" :
			     strcmp(what, "destroy") == 0 ? "powering off" :
			     strcmp(what, "migrate") == 0 ? "migrating" : "shutting down", vm->name);
	/* The driver gets the operation's own copy of the UUID: @uuid may point
	 * into a fact that a synchronous fact callback replaces. */
	if (strcmp(what, "start") == 0) {
		o->cfg = store_object_ref(vm);
		a->virt->ops->start(a->virt, o->uuid, xml, on_op_done, o);
	} else if (strcmp(what, "media") == 0) {
		o->cfg = store_object_ref(vm);
		a->virt->ops->change_media(a->virt, o->uuid, xml, on_op_done, o);
	}
	else if (strcmp(what, "migrate") == 0) {
		g_strlcpy(o->to, migrate->to, sizeof(o->to));
		o->timeout_s = migrate->timeout_s;
		a->virt->ops->migrate(a->virt, o->uuid, migrate, on_op_done, o);
	}
	else if (strcmp(what, "destroy") == 0)
		a->virt->ops->destroy(a->virt, o->uuid, on_op_done, o);
	else
		a->virt->ops->shutdown(a->virt, o->uuid, timeout_s, on_op_done, o);
}

/* The ISO in @t's running VM's CD-ROM drive (NULL: empty). */
static const char *cdrom_running(const vm_track *t)
{
	if (t->cdrom_live)
		return t->cdrom[0] ? t->cdrom : NULL;
	return store_vm_of(t->started)->hw ? store_vm_of(t->started)->hw->cdrom : NULL;
}

/* What of @vm's configuration its guest here does not run with. */
static unsigned pending_changes(const vm_track *t, store_object *vm)
{
	if (!t->started || !vm)
		return 0;
	unsigned c = store_vm_hw_changes(store_vm_of(t->started), store_vm_of(vm)) & ~STORE_VM_HW_CDROM;
	const store_vm_hardware *hw = store_vm_of(vm)->hw;
	if (hw && store_vm_of(t->started)->hw && g_strcmp0(cdrom_running(t), hw->cdrom) != 0)
		c |= STORE_VM_HW_CDROM;
	return c;
}

/* A running VM whose configuration now has another ISO in its CD-ROM
 * drive: put it in live, into the drive as the guest has it (its bus and
 * target from the configuration it was started with). */
static void change_cdrom_live(herd_agent *a, store_state *st, store_object *vm, vm_track *t, herd_vm_fact *f)
{
	if (!(t->pending & STORE_VM_HW_CDROM) || t->busy || t->media_failed == vm->version ||
	    !a->virt->ops->change_media || (f->state != HERD_VM_RUNNING && f->state != HERD_VM_PAUSED))
		return;
	g_autoptr(GError) error = NULL;
	g_autofree char *xml = herd_hw_cdrom_change_xml(st, store_vm_of(t->started), t->started->name,
							 t->started->uuid, store_vm_of(vm)->hw->cdrom, &error);
	if (!xml) {
		t->media_failed = vm->version;
		g_autofree char *msg = g_strdup_printf("CD-ROM change failed (made at the next start): %s",
						       error->message);
		set_error(a, vm->uuid, msg);
		return;
	}
	run(a, vm, vm->uuid, "media", xml, 0, NULL);
}

/* Should @vm run here now?  Assigned here, to be running, not moving away. */
static bool wanted_here(herd_agent *a, store_object *vm)
{
	const store_vm *v = store_vm_of(vm);
	return v->node && strcmp(v->node, a->node) == 0 && v->target_running &&
	       (!v->move_to || strcmp(v->move_to, a->node) == 0);
}

/* A VM migrated away from here: may it be started here again?  Once the
 * node it went to reports in this group (its own facts say whether it
 * runs it: the gate's elsewhere), or is down (fenced, or confirmed down by
 * an operator), or is no longer a node of the cluster. */
static bool handed_back(herd_agent *a, store_state *st, const herd_agent_gate *gate, vm_track *t)
{
	store_object *n = store_state_get_by_name(st, STORE_KIND_NODE, t->handed_to);
	if (n && !store_node_of(n)->down && !g_hash_table_contains(gate->members, t->handed_to))
		return false;
	t->handed_to[0] = '\0';
	a->io.changed(a->user);
	return true;
}

/* Is node @name down (fenced or confirmed off), or no longer a node? */
static bool source_down(store_state *st, const char *name)
{
	store_object *n = name ? store_state_get_by_name(st, STORE_KIND_NODE, name) : NULL;
	return name && (!n || store_node_of(n)->down);
}

static unsigned migrations_running(herd_agent *a)
{
	unsigned n = 0;
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, a->ops);
	while (g_hash_table_iter_next(&it, &k, NULL))
		n += strcmp(((op_ctx *)k)->what, "migrate") == 0;
	return n;
}

/* Start the live migration of @vm to its destination: at most
 * migration_parallel at once from here (the next one starts when one
 * ends: its completion runs a reconcile). */
static void migrate_away(herd_agent *a, store_object *vm, vm_track *t, GHashTable *gate_members)
{
	const store_vm *cfg = store_vm_of(vm);
	const store_settings *settings = store_settings_of(a->st);
	if (migrations_running(a) >= (unsigned)settings->migration_parallel)
		return;
	t->migrated = vm->version;
	store_object *to = store_state_get_by_name(a->st, STORE_KIND_NODE, cfg->move_to);
	const store_node *tn = to ? store_node_of(to) : NULL;
	/* Only to a node that takes VMs and whose herd is with this one:
	 * the coordinator gives the move up on this node's word alone. */
	const char *why = !tn ? "the destination is not a node of the cluster"
			  : tn->down || tn->mode != STORE_NODE_ONLINE ? "the destination is not online"
			  : !gate_members || !g_hash_table_contains(gate_members, cfg->move_to)
				? "the destination's herd is not in this node's cluster"
			  : tn->n_links == 0 ? "the destination has no address"
			  : !a->virt->ops->migrate ? "this node's hypervisor driver cannot migrate"
						   : NULL;
	if (why) {
		g_autofree char *msg = g_strdup_printf("migrate failed: %s", why);
		set_error(a, vm->uuid, msg);
		return;
	}
	set_error(a, vm->uuid, NULL);
	herd_migrate_params p = {
		.to = cfg->move_to,
		.address = tn->links[0],
		.tls = settings->migration_tls,
		.timeout_s = (unsigned)store_settings_migration_timeout_s(settings, cfg->memory_mib),
		.bandwidth_mib_s = (unsigned)settings->migration_bandwidth_mibs,
		.port_min = (unsigned)settings->migration_port_min,
		.port_max = (unsigned)settings->migration_port_max,
	};
	run(a, vm, vm->uuid, "migrate", NULL, 0, &p);
}

/* @out: the VMs of @elsewhere (uuids) and those running here by @facts. */
static void union_running(GHashTable *out, GHashTable *elsewhere, GHashTable *facts)
{
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, elsewhere);
	while (g_hash_table_iter_next(&it, &k, NULL))
		g_hash_table_add(out, k);
	g_hash_table_iter_init(&it, facts);
	while (g_hash_table_iter_next(&it, &k, &v))
		if (((herd_vm_fact *)v)->state == HERD_VM_RUNNING)
			g_hash_table_add(out, k);
}

void herd_agent_reconcile(herd_agent *a, store_state *st, const herd_agent_gate *gate,
			  int64_t now_ms)
{
	a->st = st;
	a->may_act = gate->may_act;
	a->now_ms = now_ms;
	if (!gate->may_act || !a->virt_ok)
		return;
	/* A node that was fenced runs nothing until the cluster has cleared its
	 * down mark: then no partition can still take it for dead while it
	 * runs VMs. */
	store_object *me = store_state_get_by_name(st, STORE_KIND_NODE, a->node);
	if (me && store_node_of(me)->down)
		return;
	GHashTableIter it;
	gpointer k, v;
	/* Failed starts of a VM gone from here (or from the cluster): a later
	 * assignment starts afresh. */
	g_hash_table_iter_init(&it, a->track);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		vm_track *t = v;
		/* A VM migrated away: forgotten here once its destination's
		 * own facts speak for it. */
		if (t->handed_to[0] && gate->members)
			handed_back(a, st, gate, t);
		store_object *vm = t->failures ? store_state_get(st, STORE_KIND_VM, t->uuid) : NULL;
		if (t->failures && !(vm && wanted_here(a, vm))) {
			t->failures = 0;
			t->retry_at_ms = 0;
			a->io.changed(a->user);
		}
	}
	/* Start what should run here: of the VMs assigned here, not of every
	 * VM of the cluster (this runs at every change; 10,000 VMs looked at
	 * cost milliseconds). */
	GHashTable *mine = store_vms_assigned_to(st, a->node);
	g_autoptr(GPtrArray) starts = g_ptr_array_new();
	if (mine)
		g_hash_table_iter_init(&it, mine);
	while (mine && g_hash_table_iter_next(&it, &k, &v)) {
		store_object *vm = v;
		if (!wanted_here(a, vm))
			continue;
		herd_vm_fact *f = g_hash_table_lookup(a->facts, vm->uuid);
		vm_track *t = track(a, vm->uuid);
		if (t->version != vm->version) {
			/* An operator's start, stop or new XML: count anew. */
			if (t->failures)
				a->io.changed(a->user);
			t->version = vm->version;
			t->failures = 0;
			t->retry_at_ms = 0;
		}
		bool down = !f || f->state == HERD_VM_STOPPED || f->state == HERD_VM_CRASHED;
		if (!down) {
			/* Running, not started by this agent (an earlier herdd
			 * started it, or it was migrated in): taken as running
			 * its configuration as it is now, so that later changes
			 * are seen (and a CD-ROM change made live). */
			if (!t->started && !t->busy) {
				t->started = store_object_ref(vm);
				t->pending_version = 0;
			}
			if (t->pending_version != vm->version) {
				unsigned pending = pending_changes(t, vm);
				t->pending_version = vm->version;
				if (pending != t->pending) {
					t->pending = pending;
					a->io.changed(a->user);
				}
			}
			change_cdrom_live(a, st, vm, t, f);
		}
		if (!down || t->busy || !gate->may_start || !gate->elsewhere)
			continue;
		if (t->handed_to[0] && !handed_back(a, st, gate, t)) {
			g_autofree char *msg = g_strdup_printf(
				"not started here: it was migrated to node %s, which has not reported it stopped",
				t->handed_to);
			set_error(a, vm->uuid, msg);
			continue;
		}
		const char *there = g_hash_table_lookup(gate->elsewhere, vm->uuid);
		if (there) {
			g_autofree char *msg = g_strdup_printf("not started here: node %s reports it active",
							       there);
			set_error(a, vm->uuid, msg);
			continue;
		}
		if (t->retry_at_ms > now_ms) {
			a->io.wakeup(a->user, t->retry_at_ms - now_ms);
			continue;
		}
		g_ptr_array_add(starts, vm);
	}
	/* In priority order, and only those whose turn it is. */
	g_autoptr(GHashTable) running = NULL;
	if (starts->len && gate->running) {
		running = g_hash_table_new(g_str_hash, g_str_equal);
		union_running(running, gate->running, a->facts);
	}
	int64_t wait = herd_start_order_pick(a->order, st, starts, running, gate->members, now_ms);
	if (wait > 0)
		a->io.wakeup(a->user, wait);
	for (guint i = 0; i < starts->len; i++) {
		store_object *vm = starts->pdata[i];
		g_autoptr(GError) err = NULL;
		g_autofree char *xml = store_vm_xml(store_vm_of(vm), &err);
		if (!xml) {
			/* This node's copy of its configuration cannot be
			 * read: a failed start, as libvirt's would be. */
			start_failed(a, track(a, vm->uuid), vm->uuid, vm->name, err);
			continue;
		}
		run(a, vm, vm->uuid, "start", xml, 0, NULL);
	}
	/* Stop what runs here but should not. */
	g_hash_table_iter_init(&it, a->facts);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		herd_vm_fact *f = v;
		if (f->state == HERD_VM_STOPPED)
			continue;
		store_object *vm = store_state_get(st, STORE_KIND_VM, f->uuid);
		if (!vm) {
			/* Not herd's (or undefined meanwhile): left alone. */
			continue;
		}
		vm_track *t = track(a, f->uuid);
		if (wanted_here(a, vm) || t->busy)
			continue;
		const store_vm *cfg = store_vm_of(vm);
		/* A live migration arriving here, or arrived and waiting for
		 * the coordinator to assign it here: kept.  But an arriving
		 * copy whose source is down (fenced, or confirmed off) can no
		 * longer arrive (the source's hypervisor completes a
		 * migration): it is powered off, and the VM is started
		 * cleanly (C6).  Not when only the source's herd has left:
		 * its hypervisor may still complete it. */
		if (f->state == HERD_VM_INCOMING && source_down(st, cfg->node)) {
			log_warn("VM %s was arriving from node %s, which is down: its arriving copy is powered off",
				 vm->name, cfg->node);
			run(a, vm, f->uuid, "destroy", NULL, 0, NULL);
			continue;
		}
		if (f->state == HERD_VM_INCOMING ||
		    (cfg->move_live && g_strcmp0(cfg->move_to, a->node) == 0))
			continue;
		if (cfg->move_live && cfg->target_running && g_strcmp0(cfg->node, a->node) == 0 &&
		    f->state != HERD_VM_CRASHED) {
			/* Moving away live: migrated once per version of the
			 * move.  If that fails it keeps running here, and the
			 * coordinator gives the move up (the error says why).
			 * A crashed guest cannot be migrated: it is powered
			 * off here (below) and started at its destination.
			 * Never away from the node it is bound to (sticky):
			 * the coordinator refuses such a move (sched.c). */
			if (cfg->sticky && strcmp(cfg->sticky, cfg->move_to) != 0)
				continue;
			if (t->migrated != vm->version &&
			    (f->state == HERD_VM_RUNNING || f->state == HERD_VM_PAUSED))
				migrate_away(a, vm, t, gate->members);
			continue;
		}
		if (cfg->stop_force || f->state == HERD_VM_CRASHED || f->state == HERD_VM_PAUSED)
			run(a, vm, f->uuid, "destroy", NULL, 0, NULL);
		else
			run(a, vm, f->uuid, "shutdown", NULL, cfg->shutdown_timeout_s, NULL);
	}
}

void herd_agent_fact(herd_agent *a, const herd_vm_fact *fact, int64_t now_ms)
{
	herd_vm_fact *old = g_hash_table_lookup(a->facts, fact->uuid);
	if (old && old->state == fact->state && strcmp(old->reason, fact->reason) == 0)
		return;
	herd_vm_fact *copy = g_memdup2(fact, sizeof(*fact));
	g_hash_table_replace(a->facts, copy->uuid, copy);
	if (fact->state == HERD_VM_STOPPED || fact->state == HERD_VM_CRASHED) {
		/* Its next start takes the configuration as it is then. */
		vm_track *t = g_hash_table_lookup(a->track, fact->uuid);
		if (t && !t->busy)
			forget_started(t);
	}
	if (fact->state == HERD_VM_RUNNING) {
		vm_track *t = g_hash_table_lookup(a->track, fact->uuid);
		if (t) {
			t->failures = 0;
			/* Here again: whatever went elsewhere before is over. */
			t->handed_to[0] = '\0';
		}
	}
	a->io.changed(a->user);
	/* A guest that stopped by itself while it should run is started again
	 * by the next reconcile (C12). */
	a->io.wakeup(a->user, 0);
}

void herd_agent_connection(herd_agent *a, bool lost)
{
	if (a->virt_ok == !lost)
		return;
	a->virt_ok = !lost;
	if (lost || a->virt_seen)
		log_warn(lost ? "lost the connection to the hypervisor; VMs are left as they are"
			      : "the hypervisor connection is back");
	a->virt_seen |= !lost;
	a->io.changed(a->user);
	if (!lost)
		a->io.wakeup(a->user, 0);
}

static bool assigned_here(herd_agent *a, store_object *vm)
{
	return vm && g_strcmp0(store_vm_of(vm)->node, a->node) == 0;
}

bool herd_agent_concerned(herd_agent *a, GPtrArray *changes)
{
	for (guint i = 0; changes && i < changes->len; i++) {
		store_change *c = changes->pdata[i];
		if (c->kind == STORE_KIND_VM && (assigned_here(a, c->before) || assigned_here(a, c->after)))
			return true;
	}
	return changes == NULL;
}

GArray *herd_agent_facts(herd_agent *a)
{
	GArray *out = herd_vm_facts_of_table(a->facts);
	GHashTableIter it;
	gpointer v;
	/* A start under way counts as starting before the hypervisor says so:
	 * nobody may conclude from this report that the VM is not here. */
	g_hash_table_iter_init(&it, a->ops);
	while (g_hash_table_iter_next(&it, &v, NULL)) {
		op_ctx *o = v;
		herd_vm_fact *f = g_hash_table_lookup(a->facts, o->uuid);
		if (o->done || strcmp(o->what, "start") != 0 ||
		    (f && f->state != HERD_VM_STOPPED && f->state != HERD_VM_CRASHED))
			continue;
		herd_vm_fact starting = { .state = HERD_VM_STARTING, .since_ms = a->now_ms };
		g_strlcpy(starting.uuid, o->uuid, sizeof(starting.uuid));
		g_strlcpy(starting.reason, "start requested", sizeof(starting.reason));
		bool replaced = false;
		for (guint i = 0; i < out->len && !replaced; i++) {
			herd_vm_fact *e = &g_array_index(out, herd_vm_fact, i);
			if (strcmp(e->uuid, o->uuid) == 0) {
				*e = starting;
				replaced = true;
			}
		}
		if (!replaced)
			g_array_append_val(out, starting);
	}
	return out;
}

json_t *herd_agent_errors(herd_agent *a)
{
	return a->errors;
}

/* {uuid: @value(t)} of every tracked VM for which @value gives one. */
static json_t *per_vm(herd_agent *a, json_t *(*value)(herd_agent *a, const vm_track *t))
{
	json_t *out = json_object();
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, a->track);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const vm_track *t = v;
		json_t *j = value(a, t);
		if (j)
			json_object_set_new(out, t->uuid, j);
	}
	return out;
}

static json_t *failures_of(herd_agent *a, const vm_track *t)
{
	return t->failures ? json_integer(t->failures) : NULL;
}

static json_t *handed_of(herd_agent *a, const vm_track *t)
{
	return t->handed_to[0] ? json_string(t->handed_to) : NULL;
}

static json_t *pending_of(herd_agent *a, const vm_track *t)
{
	herd_vm_fact *f = g_hash_table_lookup(a->facts, t->uuid);
	if (!t->pending || !f || f->state == HERD_VM_STOPPED)
		return NULL;
	json_t *names = json_array();
	for (unsigned i = 0; i < STORE_VM_HW__COUNT; i++)
		if (t->pending & (1u << i))
			json_array_append_new(names, json_string(store_vm_hw_change_name(1u << i)));
	return names;
}

json_t *herd_agent_start_failures(herd_agent *a)
{
	return per_vm(a, failures_of);
}

json_t *herd_agent_handed(herd_agent *a)
{
	return per_vm(a, handed_of);
}

json_t *herd_agent_pending(herd_agent *a)
{
	return per_vm(a, pending_of);
}

json_t *herd_agent_migrations(herd_agent *a)
{
	json_t *out = json_object();
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, a->ops);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		op_ctx *o = k;
		if (strcmp(o->what, "migrate") != 0)
			continue;
		herd_migrate_progress p = { 0 };
		if (a->virt->ops->migrate_progress)
			a->virt->ops->migrate_progress(a->virt, o->uuid, &p);
		json_object_set_new(
			out, o->uuid,
			json_pack("{s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i}", "to", o->to,
				  "timeout_s", (int)o->timeout_s,
				  "started_ms", (json_int_t)p.started_ms, "elapsed_ms", (json_int_t)p.elapsed_ms,
				  "memory_total", (json_int_t)p.memory_total, "memory_processed",
				  (json_int_t)p.memory_processed, "memory_remaining", (json_int_t)p.memory_remaining,
				  "dirty_rate", (json_int_t)p.dirty_rate, "page_size", (json_int_t)p.page_size,
				  "bandwidth", (json_int_t)p.bandwidth, "iteration", (json_int_t)p.iteration,
				  "expected_downtime_ms", (json_int_t)p.expected_downtime_ms,
				  "autoconverge_throttle", (int)p.autoconverge_throttle));
	}
	return out;
}

bool herd_agent_migrate_cancel(herd_agent *a, const char *uuid, const char **why)
{
	if (!a->virt->ops->migrate_cancel) {
		*why = "this node's hypervisor driver cannot cancel a migration";
		return false;
	}
	if (!a->virt->ops->migrate_cancel(a->virt, uuid)) {
		*why = "no migration of it runs on this node";
		return false;
	}
	return true;
}

bool herd_agent_virt_ok(herd_agent *a)
{
	return a->virt_ok;
}

/* An operator's request @what on VM @uuid, if it runs here; else NULL,
 * @done told why. */
static op_ctx *request_begin(herd_agent *a, const char *uuid, const char *what, herd_virt_done done,
			     gpointer user)
{
	herd_vm_fact *f = g_hash_table_lookup(a->facts, uuid);
	if (!f || f->state == HERD_VM_STOPPED) {
		g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_CONFLICT,
						    "VM %s is not running on node %s.", uuid, a->node);
		done(err, user);
		return NULL;
	}
	op_ctx *o = g_new0(op_ctx, 1);
	o->a = a;
	g_strlcpy(o->uuid, uuid, sizeof(o->uuid));
	g_strlcpy(o->what, what, sizeof(o->what));
	o->done = done;
	o->user = user;
	g_hash_table_add(a->ops, o);
	return o;
}

void herd_agent_block_resize(herd_agent *a, const char *uuid, const char *path, uint64_t size,
			     herd_virt_done done, gpointer user)
{
	if (!a->virt->ops->block_resize) {
		g_autoptr(GError) err = g_error_new(HERD_ERROR, HERD_ERR_UNAVAILABLE,
						    "The VM driver of node %s cannot grow a disk live.", a->node);
		done(err, user);
		return;
	}
	op_ctx *o = request_begin(a, uuid, "grow a disk", done, user);
	if (o)
		a->virt->ops->block_resize(a->virt, o->uuid, path, size, on_request_done, o);
}

void herd_agent_request(herd_agent *a, const char *uuid, herd_vm_op op, herd_virt_done done,
			gpointer user)
{
	op_ctx *o = request_begin(a, uuid, herd_vm_op_name(op), done, user);
	if (!o)
		return;
	switch (op) {
	case HERD_VM_OP_REBOOT:
		a->virt->ops->reboot(a->virt, o->uuid, on_request_done, o);
		break;
	case HERD_VM_OP_RESET:
		a->virt->ops->reset(a->virt, o->uuid, on_request_done, o);
		break;
	case HERD_VM_OP_SUSPEND:
		a->virt->ops->suspend(a->virt, o->uuid, on_request_done, o);
		break;
	case HERD_VM_OP_RESUME:
		a->virt->ops->resume(a->virt, o->uuid, on_request_done, o);
		break;
	}
}
