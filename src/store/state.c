#include "store/state.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "store/cluster.h"
#include "store/guard.h"
#include "store/refs.h"
#include "store/vm.h"

#include <string.h>

/* What every operation needs besides its own fields. */
typedef struct {
	int64_t time_ms;
	const char *origin;
	const char *user;
} envelope;

store_state *store_state_new(store_db *db)
{
	store_state *s = g_new0(store_state, 1);
	s->db = db;
	for (int k = 0; k < STORE_KIND__COUNT; k++) {
		/* Keys are borrowed from the objects they map to. */
		s->by_uuid[k] = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
						      (GDestroyNotify)store_object_unref);
		s->by_name[k] = g_hash_table_new(g_str_hash, g_str_equal);
	}
	s->vms_by_node = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					       (GDestroyNotify)g_hash_table_destroy);
	s->unsettled = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	return s;
}

/* A cold text could not be read: what needed it fails with @err; the log
 * says so once (a reader may ask again every round). */
static char *cold_text_failed(store_state *s, GError *err, GError **error)
{
	if (g_strcmp0(s->read_error, err->message) != 0) {
		log_err("configuration store: %s", err->message);
		g_free(s->read_error);
		s->read_error = g_strdup(err->message);
	}
	g_propagate_error(error, err);
	return NULL;
}

char *store_state_cold_text(store_state *s, const store_object *o, GError **error)
{
	uint64_t version = 0;
	g_autoptr(GError) err = NULL;
	g_autofree char *text = store_db_get_object_text(s->db, o->kind, o->uuid, true, &version, &err);
	if (!text && err)
		return cold_text_failed(s, g_error_new(HERD_ERROR, HERD_ERR_IO,
						       "The configuration of %s %s (version %llu) cannot be read: %s",
						       store_kind_label(o->kind), o->name,
						       (unsigned long long)o->version, err->message),
					error);
	if (!text || version != o->version ||
	    store_object_text_digest(text, strlen(text)) != o->digest)
		return cold_text_failed(s, g_error_new(HERD_ERROR, HERD_ERR_IO,
						       "The configuration of %s %s (version %llu) is not in the database (%s version %llu).",
						       store_kind_label(o->kind), o->name,
						       (unsigned long long)o->version,
						       text ? "another text at" : "no row;",
						       (unsigned long long)version),
					error);
	return g_steal_pointer(&text);
}

/* Give @o (cold) its packed text back. */
static bool warm(store_state *s, store_object *o, GError **error)
{
	g_autofree char *text = store_state_cold_text(s, o, error);
	if (!text)
		return false;
	store_object_set_warm(o, text);
	/* Cold again at the next settle if it is still the current one. */
	g_hash_table_add(s->unsettled, g_strdup(o->uuid));
	return true;
}

bool store_state_warm_all(store_state *s, bool shared_only, GError **error)
{
	bool ok = true;
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, s->by_uuid[STORE_KIND_VM]);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		store_object *o = v;
		if (!o->cold || (shared_only && g_atomic_int_get(&o->refcount) == 1))
			continue;
		if (!warm(s, o, NULL)) /* logged by cold_text_failed() */
			ok = false;
	}
	if (!ok)
		g_set_error(error, HERD_ERROR, HERD_ERR_IO,
			    "The texts of VMs still in use could not be read back.");
	return ok;
}

void store_state_settle(store_state *s)
{
	if (store_db_in_transaction(s->db))
		return;
	bool rolled_back = store_db_rollbacks(s->db) != s->rollbacks_seen;
	GHashTableIter it;
	gpointer k;
	g_hash_table_iter_init(&it, s->unsettled);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		store_object *o = g_hash_table_lookup(s->by_uuid[STORE_KIND_VM], k);
		if (!o || !o->text)
			continue;
		/* After a rollback, its row as committed: the version alone
		 * (the text applied with that version, checked when read). */
		uint64_t version = o->version;
		if (rolled_back) {
			g_autoptr(GError) err = NULL;
			store_db_get_object_text(s->db, STORE_KIND_VM, o->uuid, false, &version, &err);
		}
		if (version == o->version)
			store_object_set_cold(o, s);
	}
	g_hash_table_remove_all(s->unsettled);
	s->rollbacks_seen = store_db_rollbacks(s->db);
}

guint store_state_cold_count(store_state *s)
{
	guint n = 0;
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, s->by_uuid[STORE_KIND_VM]);
	while (g_hash_table_iter_next(&it, NULL, &v))
		n += ((store_object *)v)->cold != NULL;
	return n;
}

void store_state_free(store_state *s)
{
	if (!s)
		return;
	/* Objects that outlive the state keep their texts; one whose text
	 * cannot be read back (the database gone first) must not point at
	 * the state any more: a read of it fails ("lost") instead. */
	store_state_warm_all(s, true, NULL);
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, s->by_uuid[STORE_KIND_VM]);
	while (g_hash_table_iter_next(&it, NULL, &v))
		((store_object *)v)->cold = NULL;
	g_hash_table_destroy(s->unsettled);
	g_free(s->read_error);
	for (int k = 0; k < STORE_KIND__COUNT; k++) {
		g_clear_pointer(&s->sorted[k], g_ptr_array_unref);
		g_hash_table_destroy(s->by_name[k]);
		g_hash_table_destroy(s->by_uuid[k]);
	}
	g_hash_table_destroy(s->vms_by_node);
	g_free(s);
}

void store_change_free(store_change *c)
{
	if (!c)
		return;
	store_object_unref(c->before);
	store_object_unref(c->after);
	g_free(c);
}

/* In @sorted (by name), put @after where @before is; false if @before is
 * not found there. */
static bool sorted_replace(GPtrArray *sorted, store_object *before, store_object *after)
{
	guint lo = 0, hi = sorted->len;
	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;
		store_object *o = sorted->pdata[mid];
		int c = strcmp(o->name, before->name);
		if (c == 0) {
			if (o != before)
				return false;
			sorted->pdata[mid] = after;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Keep store_vms_assigned_to() current: @vm leaves or joins its node's set. */
static void vm_index(store_state *s, store_object *vm, bool add)
{
	const char *node = store_vm_of(vm)->node;
	if (!node)
		return;
	GHashTable *set = g_hash_table_lookup(s->vms_by_node, node);
	if (add) {
		if (!set) {
			set = g_hash_table_new(g_str_hash, g_str_equal);
			g_hash_table_insert(s->vms_by_node, g_strdup(node), set);
		}
		g_hash_table_replace(set, vm->uuid, vm);
	} else if (set) {
		g_hash_table_remove(set, vm->uuid);
		if (g_hash_table_size(set) == 0)
			g_hash_table_remove(s->vms_by_node, node);
	}
}

/* Make @after (or nothing) the object at @uuid, replacing @before. */
static void state_set(store_state *s, store_kind kind, const char *uuid, store_object *before,
		      store_object *after)
{
	/* A change that keeps the name keeps the order (most changes: a VM
	 * started, assigned, its settings): sorting 10,000 VMs again after
	 * each would cost every reader of the list milliseconds. */
	if (s->sorted[kind] && !(before && after && strcmp(before->name, after->name) == 0 &&
				 sorted_replace(s->sorted[kind], before, after)))
		g_clear_pointer(&s->sorted[kind], g_ptr_array_unref);
	if (kind == STORE_KIND_VM && before)
		vm_index(s, before, false);
	if (kind == STORE_KIND_VM && after)
		vm_index(s, after, true);
	if (before)
		g_hash_table_remove(s->by_name[kind], before->name);
	if (after) {
		g_hash_table_replace(s->by_uuid[kind], after->uuid, store_object_ref(after));
		g_hash_table_replace(s->by_name[kind], after->name, after);
	} else {
		g_hash_table_remove(s->by_uuid[kind], uuid);
	}
}

static void load_one(store_object *o, gpointer user_data)
{
	store_state *s = user_data;
	state_set(s, o->kind, o->uuid, NULL, o);
	/* Outside a transaction the row just read is durable: cold at once;
	 * inside one (a whole-store transfer), once it is committed. */
	if (o->kind == STORE_KIND_VM) {
		if (!store_db_in_transaction(s->db))
			store_object_set_cold(o, s);
		else
			g_hash_table_add(s->unsettled, g_strdup(o->uuid));
	}
	store_object_unref(o);
}

bool store_state_load(store_state *s, GError **error)
{
	/* Those that others hold keep their texts (the rows are still theirs
	 * unless a transfer rewrote them: it warms them all first). */
	if (!store_state_warm_all(s, true, error))
		return false;
	g_hash_table_remove_all(s->unsettled);
	s->rollbacks_seen = store_db_rollbacks(s->db);
	for (int k = 0; k < STORE_KIND__COUNT; k++) {
		g_clear_pointer(&s->sorted[k], g_ptr_array_unref);
		g_hash_table_remove_all(s->by_name[k]);
		g_hash_table_remove_all(s->by_uuid[k]);
	}
	g_hash_table_remove_all(s->vms_by_node);
	return store_db_load(s->db, &s->pos, load_one, s, error);
}

bool store_state_write_position(store_state *s, GError **error)
{
	return store_db_set_position(s->db, &s->pos, error);
}

uint64_t store_state_changed_at(store_state *s, const char *uuid)
{
	/* Kept in the object (an index beside 10,000 VMs was 80 bytes each):
	 * the current one's.  VMs are the ones asked about. */
	store_object *o = g_hash_table_lookup(s->by_uuid[STORE_KIND_VM], uuid);
	for (int k = 0; !o && k < STORE_KIND__COUNT; k++)
		o = g_hash_table_lookup(s->by_uuid[k], uuid);
	return o ? o->changed_at : 0;
}

store_object *store_state_get(store_state *s, store_kind kind, const char *uuid)
{
	return g_hash_table_lookup(s->by_uuid[kind], uuid);
}

store_object *store_state_get_by_name(store_state *s, store_kind kind, const char *name)
{
	return g_hash_table_lookup(s->by_name[kind], name);
}

store_object *store_state_lookup(store_state *s, store_kind kind, const char *ref)
{
	if (!ref)
		return NULL;
	if (store_uuid_is_valid(ref))
		return store_state_get(s, kind, ref);
	return store_state_get_by_name(s, kind, ref);
}

store_object *store_state_cluster(store_state *s)
{
	GHashTableIter it;
	gpointer v;
	g_hash_table_iter_init(&it, s->by_uuid[STORE_KIND_CLUSTER]);
	return g_hash_table_iter_next(&it, NULL, &v) ? v : NULL;
}

guint store_state_count(store_state *s, store_kind kind)
{
	return g_hash_table_size(s->by_uuid[kind]);
}

static gint by_name(gconstpointer a, gconstpointer b)
{
	return strcmp((*(store_object *const *)a)->name, (*(store_object *const *)b)->name);
}

GPtrArray *store_state_list(store_state *s, store_kind kind)
{
	/* Sorted once per change of the kind, not per call: an API list of
	 * 10,000 VMs would spend milliseconds on it. */
	if (!s->sorted[kind]) {
		GPtrArray *list = g_ptr_array_sized_new(g_hash_table_size(s->by_uuid[kind]));
		GHashTableIter it;
		gpointer v;
		g_hash_table_iter_init(&it, s->by_uuid[kind]);
		while (g_hash_table_iter_next(&it, NULL, &v))
			g_ptr_array_add(list, v);
		g_ptr_array_sort(list, by_name);
		s->sorted[kind] = list;
	}
	return g_ptr_array_copy(s->sorted[kind], NULL, NULL);
}

void store_position_hash_hex(const store_position *pos, char out[65])
{
	for (int i = 0; i < 32; i++)
		g_snprintf(out + 2 * i, 3, "%02x", pos->hash[i]);
}

int store_position_compare(const store_position *a, const store_position *b)
{
	if (a->gen != b->gen)
		return a->gen < b->gen ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

/* ------------------------------------------------------------------ */

static unsigned history_limit(store_state *s)
{
	long long limit = store_settings_of(s)->vm_history_limit;
	return limit > 0 ? (unsigned)limit : STORE_HISTORY_LIMIT_DEFAULT;
}

static bool record_history(store_state *s, const envelope *env, store_kind kind,
			   const char *uuid, const char *name, uint64_t version,
			   const char *change, json_t *data, const char *data_text,
			   GError **error)
{
	store_history_entry e = { kind, uuid, version, name, env->time_ms, env->origin, env->user,
				  change, data, data_text };
	/* The audit log says "created" and "removed" of what is not a VM
	 * (which is "defined" and "undefined", as virsh says). */
	store_history_entry audit = e;
	if (kind != STORE_KIND_VM && strcmp(change, "defined") == 0)
		audit.change = "created";
	else if (kind != STORE_KIND_VM && strcmp(change, "undefined") == 0)
		audit.change = "removed";
	/* The coordinator's alert records are a history of their own (herd
	 * alert list --all): in the audit log they would crowd out the
	 * operators' changes. */
	bool own_record = kind == STORE_KIND_ALERT && g_strcmp0(env->user, "herd") == 0;
	/* A job is its own record of who did what (and its operation's
	 * change, a VM's move, is in the audit log): its progress would
	 * crowd out everything else. */
	own_record = own_record || kind == STORE_KIND_JOB;
	if (!own_record && !store_db_add_audit(s->db, &audit, error))
		return false;
	if (kind != STORE_KIND_VM)
		return true;
	unsigned limit = history_limit(s);
	/* Versions only grow: below the limit there is nothing to prune. */
	return store_db_add_history(s->db, &e, error) &&
	       store_db_prune_history(s->db, kind, uuid, version, limit, error);
}

/* The next version for a new incarnation of @uuid: VMs continue their history. */
static uint64_t next_version(store_state *s, store_kind kind, const char *uuid)
{
	return kind == STORE_KIND_VM ? store_db_history_max_version(s->db, kind, uuid) + 1 : 1;
}

/* @old is about to be changed: read its text back once, here (the merge,
 * the comparison of its configuration and commit_object() then unpack it)
 * rather than from SQLite for each. */
static bool warm_for_change(store_state *s, store_object *old, GError **error)
{
	return !old->cold || warm(s, old, error);
}

/* Publish @after in place of @before, in memory and database; note the change. */
static bool commit_object(store_state *s, store_kind kind, const char *uuid,
			  store_object *before, store_object *after, const char *after_text,
			  GPtrArray *changes, GError **error)
{
	/* Its row is about to change: a cold object takes its text back
	 * first (others may hold it; the change record does). */
	if (before && before->cold && !warm(s, before, error))
		return false;
	if (after && after->kind == STORE_KIND_VM)
		g_hash_table_add(s->unsettled, g_strdup(after->uuid));
	if (after ? !store_db_put_object(s->db, after, after_text, error)
		  : !store_db_delete_object(s->db, kind, uuid, error))
		return false;
	store_change *c = g_new0(store_change, 1);
	c->kind = kind;
	g_strlcpy(c->uuid, uuid, sizeof(c->uuid));
	c->before = before ? store_object_ref(before) : NULL;
	c->after = after ? store_object_ref(after) : NULL;
	g_ptr_array_add(changes, c);
	state_set(s, kind, uuid, before, after);
	return true;
}

/*
 * What the cluster does with a VM rather than what the VM is: its desired
 * state (an operator's start or stop) and where the HA engine placed it.
 * A change of these alone is no new configuration: it is not kept in the
 * VM's history (a failover would otherwise push the operator's versions out
 * of it), and restoring a configuration leaves them as they are.
 */
static const char *const vm_state_keys[] = { "target", "stop", "node", "move_to", "move", "move_cold_ok",
					      "live_failed", "failed", "return_to", NULL };

static bool is_vm_state_key(const char *key, size_t len)
{
	for (const char *const *k = vm_state_keys; *k; k++)
		if (strlen(*k) == len && memcmp(*k, key, len) == 0)
			return true;
	return false;
}

/* The next member of a VM's text that is configuration, not state. */
static bool next_config_member(const char **cursor, store_text_member *m)
{
	while (store_text_next(cursor, m))
		if (!is_vm_state_key(m->key, m->key_len))
			return true;
	return false;
}

/* Do the VM objects @a and @b have the same configuration (state aside)?
 * Their texts are store_db_encode()'s (keys sorted, one encoding of each
 * value): the same configuration is the same members, byte for byte. */
static bool vm_same_config(const store_object *a, const store_object *b)
{
	if (strcmp(a->name, b->name) != 0)
		return false;
	if (a->text && b->text && store_packed_equal(a->text, b->text))
		return true;
	/* Both are warm here (warm_for_change()); one that could not be
	 * read would be another configuration. */
	g_autofree char *ta = store_object_encode(a, NULL), *tb = store_object_encode(b, NULL);
	if (!ta || !tb)
		return false;
	const char *pa = ta, *pb = tb;
	store_text_member ma, mb;
	for (;;) {
		bool more_a = next_config_member(&pa, &ma), more_b = next_config_member(&pb, &mb);
		if (more_a != more_b)
			return false;
		if (!more_a)
			return true;
		if (ma.key_len != mb.key_len || ma.value_len != mb.value_len ||
		    memcmp(ma.key, mb.key, ma.key_len) != 0 ||
		    memcmp(ma.value, mb.value, ma.value_len) != 0)
			return false;
	}
}

/*
 * Record @after (a new object, or the new version of @before) in the history
 * as @change and publish it, encoding its data once for both.
 */
static bool publish(store_state *s, const envelope *env, const char *change,
		    store_object *before, store_object *after, GPtrArray *changes, GError **error)
{
	if (!store_refs_check(s, after, error))
		return false;
	g_autofree char *text = store_object_encode(after, error);
	if (!text)
		return false;
	return record_history(s, env, after->kind, after->uuid, after->name, after->version, change,
			      after->data, text, error) &&
	       commit_object(s, after->kind, after->uuid, before, after, text, changes, error);
}

/* Publish @after, an update of @before: in the history unless only a VM's
 * state changed. */
static bool publish_update(store_state *s, const envelope *env, store_object *before,
			   store_object *after, GPtrArray *changes, GError **error)
{
	if (after->kind != STORE_KIND_VM || !vm_same_config(before, after))
		return publish(s, env, "updated", before, after, changes, error);
	g_autofree char *text = store_object_encode(after, error);
	if (!text)
		return false;
	return commit_object(s, after->kind, after->uuid, before, after, text, changes, error);
}

static json_t *object_result(const store_object *o)
{
	return json_pack("{s:s,s:s,s:s,s:I}", "kind", store_kind_name(o->kind), "uuid", o->uuid,
			 "name", o->name, "version", (json_int_t)o->version);
}

static bool parse_kind(json_t *op, store_kind *kind, GError **error)
{
	const char *name = json_string_value(json_object_get(op, "kind"));
	if (!store_kind_parse(name, kind)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Unknown object kind '%s'.",
			    name ? name : "(none)");
		return false;
	}
	return true;
}

static store_object *existing(store_state *s, store_kind kind, json_t *op, GError **error)
{
	const char *uuid = json_string_value(json_object_get(op, "uuid"));
	store_object *o = uuid ? store_state_get(s, kind, uuid) : NULL;
	if (!o)
		g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND, "There is no %s with UUID %s.",
			    store_kind_label(kind), uuid ? uuid : "(none)");
	return o;
}

static bool check_version(store_object *o, json_t *op, GError **error)
{
	json_t *want = json_object_get(op, "if_version");
	if (want && (!json_is_integer(want) || (uint64_t)json_integer_value(want) != o->version)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "%s '%s' was changed meanwhile (it is at version %" G_GUINT64_FORMAT
			    ", the change was made for version %lld); read it again and retry.",
			    store_kind_label(o->kind), o->name, o->version,
			    (long long)json_integer_value(want));
		return false;
	}
	return true;
}

static bool name_free(store_state *s, store_kind kind, const char *name, const char *uuid,
		      GError **error)
{
	store_object *other = store_state_get_by_name(s, kind, name);
	if (other && strcmp(other->uuid, uuid) != 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "A %s named '%s' already exists.",
			    store_kind_label(kind), name);
		return false;
	}
	return true;
}

static json_t *op_create(store_state *s, const envelope *env, json_t *op, GPtrArray *changes,
			 GError **error)
{
	store_kind kind;
	const char *uuid = json_string_value(json_object_get(op, "uuid"));
	const char *name = json_string_value(json_object_get(op, "name"));
	json_t *data = json_object_get(op, "data");
	if (!parse_kind(op, &kind, error) || !store_name_validate(kind, name, error))
		return NULL;
	if (!store_uuid_is_valid(uuid) || !json_is_object(data)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A new %s needs a valid UUID and a data object.", store_kind_label(kind));
		return NULL;
	}
	if (store_state_get(s, kind, uuid)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "A %s with UUID %s already exists.",
			    store_kind_label(kind), uuid);
		return NULL;
	}
	if (!name_free(s, kind, name, uuid, error))
		return NULL;
	if (kind == STORE_KIND_CLUSTER && store_state_cluster(s)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "The cluster exists already.");
		return NULL;
	}
	if (!store_object_validate(kind, data, error))
		return NULL;
	uint64_t version = next_version(s, kind, uuid);
	g_autoptr(store_object) o = store_object_new(kind, uuid, name, version, env->time_ms,
						     env->time_ms, data);
	if (!publish(s, env, "defined", NULL, o, changes, error))
		return NULL;
	return object_result(o);
}

static json_t *op_update(store_state *s, const envelope *env, json_t *op, GPtrArray *changes,
			 GError **error)
{
	store_kind kind;
	if (!parse_kind(op, &kind, error))
		return NULL;
	store_object *old = existing(s, kind, op, error);
	if (!old || !check_version(old, op, error) || !warm_for_change(s, old, error))
		return NULL;
	json_t *name_j = json_object_get(op, "name");
	json_t *data = json_object_get(op, "data");
	const char *name = name_j ? json_string_value(name_j) : old->name;
	if ((name_j && !store_name_validate(kind, name, error)) ||
	    !name_free(s, kind, name, old->uuid, error))
		return NULL;
	if (data && !json_is_object(data)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The %s's data must be an object.",
			    store_kind_label(kind));
		return NULL;
	}
	if (data && (!store_object_validate(kind, data, error) || !store_guard_admins(s, old, data, error)))
		return NULL;
	g_autoptr(json_t) old_data = data ? NULL : store_object_data(old, error);
	if (!data && !old_data)
		return NULL;
	g_autoptr(store_object) o = store_object_new(kind, old->uuid, name, old->version + 1,
						     old->created_ms, env->time_ms,
						     data ? data : old_data);
	if (!publish_update(s, env, old, o, changes, error))
		return NULL;
	return object_result(o);
}

/*
 * Merge @data's fields into the object's data (a null value removes the
 * field), one level deep; a field that is itself an object ("settings") is
 * merged the same way.  Done here rather than by the client so concurrent
 * changes of different fields do not overwrite each other.
 */
static void merge_patch_into(json_t *out, json_t *patch, unsigned depth)
{
	const char *key;
	json_t *v;
	json_object_foreach(patch, key, v) {
		json_t *cur = json_object_get(out, key);
		if (json_is_null(v))
			json_object_del(out, key);
		else if (depth == 0 && json_is_object(v) && json_is_object(cur))
			merge_patch_into(cur, v, depth + 1);
		else
			json_object_set(out, key, v);
	}
}

/* @old's data with @patch merged: a tree of its own (a VM's is parsed from
 * its text: that parse is the copy). */
static json_t *merge_patch(const store_object *old, json_t *patch, GError **error)
{
	json_t *out = old->data ? json_deep_copy(old->data) : store_object_data(old, error);
	if (!out)
		return NULL;
	merge_patch_into(out, patch, 0);
	return out;
}

static json_t *op_patch(store_state *s, const envelope *env, json_t *op, GPtrArray *changes,
			GError **error)
{
	store_kind kind;
	if (!parse_kind(op, &kind, error))
		return NULL;
	store_object *old = existing(s, kind, op, error);
	json_t *patch = json_object_get(op, "data");
	if (!old || !check_version(old, op, error) || !warm_for_change(s, old, error))
		return NULL;
	if (!json_is_object(patch)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "A patch needs a data object.");
		return NULL;
	}
	if (!store_guard_apply(s, op, error))
		return NULL;
	g_autoptr(json_t) data = merge_patch(old, patch, error);
	if (!data || !store_object_validate(kind, data, error) || !store_guard_admins(s, old, data, error))
		return NULL;
	g_autoptr(store_object) o = store_object_new(kind, old->uuid, old->name, old->version + 1,
						     old->created_ms, env->time_ms, data);
	if (!publish_update(s, env, old, o, changes, error))
		return NULL;
	return object_result(o);
}

/* Remove @old, leaving a tombstone in its history. */
static bool remove_object(store_state *s, const envelope *env, store_object *old,
			  GPtrArray *changes, GError **error)
{
	return record_history(s, env, old->kind, old->uuid, old->name, old->version + 1,
			      "undefined", NULL, NULL, error) &&
	       commit_object(s, old->kind, old->uuid, old, NULL, NULL, changes, error);
}

static json_t *op_delete(store_state *s, const envelope *env, json_t *op, GPtrArray *changes,
			 GError **error)
{
	store_kind kind;
	if (!parse_kind(op, &kind, error))
		return NULL;
	store_object *old = existing(s, kind, op, error);
	if (!old || !check_version(old, op, error))
		return NULL;
	if (kind == STORE_KIND_CLUSTER) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The cluster object cannot be deleted.");
		return NULL;
	}
	if (kind == STORE_KIND_NODE && store_state_count(s, kind) == 1) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "Node '%s' is the cluster's last node and cannot be removed.", old->name);
		return NULL;
	}
	if (!store_refs_check_delete(s, old, error) || !store_guard_admins(s, old, NULL, error))
		return NULL;
	json_t *result = json_pack("{s:s,s:s,s:s,s:I,s:b}", "kind", store_kind_name(kind), "uuid",
				   old->uuid, "name", old->name, "version",
				   (json_int_t)(old->version + 1), "deleted", 1);
	if (!remove_object(s, env, old, changes, error)) {
		json_decref(result);
		return NULL;
	}
	return result;
}

static json_t *op_restore(store_state *s, const envelope *env, json_t *op, GPtrArray *changes,
			  GError **error)
{
	store_kind kind;
	const char *uuid = json_string_value(json_object_get(op, "uuid"));
	json_int_t version = json_integer_value(json_object_get(op, "version"));
	bool force = json_is_true(json_object_get(op, "force"));
	if (!parse_kind(op, &kind, error))
		return NULL;
	if (kind != STORE_KIND_VM || !store_uuid_is_valid(uuid) || version < 1) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Restore needs a VM's UUID and a version number.");
		return NULL;
	}
	g_autoptr(json_t) entry = store_db_history_get(s->db, kind, uuid, (uint64_t)version);
	json_t *data = json_object_get(entry, "data");
	if (!entry || !json_is_object(data)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND,
			    "VM %s has no stored configuration version %lld.", uuid, (long long)version);
		return NULL;
	}
	const char *name = json_string_value(json_object_get(entry, "name"));
	store_object *same = store_state_get(s, kind, uuid);
	store_object *named = store_state_get_by_name(s, kind, name);
	if (same && !force) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
			    "VM '%s' exists; restoring version %lld would overwrite it (use force).",
			    same->name, (long long)version);
		return NULL;
	}
	if (named && named != same) {
		if (!force) {
			g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT,
				    "Another VM named '%s' exists (%s); restoring would overwrite it (use force).",
				    name, named->uuid);
			return NULL;
		}
		if (!remove_object(s, env, named, changes, error))
			return NULL;
	}
	/* The configuration of then, with the state of now: a VM that runs
	 * stays where it runs; one that is not defined comes back stopped. */
	g_autoptr(json_t) config = json_deep_copy(data);
	if (same && !warm_for_change(s, same, error))
		return NULL;
	g_autoptr(json_t) same_data = same ? store_object_data(same, error) : NULL;
	if (same && !same_data)
		return NULL;
	for (const char *const *k = vm_state_keys; *k; k++) {
		json_object_del(config, *k);
		json_t *now = same ? json_object_get(same_data, *k) : NULL;
		if (now)
			json_object_set(config, *k, now);
	}
	uint64_t new_version = same ? same->version + 1 : next_version(s, kind, uuid);
	g_autoptr(store_object) o = store_object_new(kind, uuid, name, new_version,
						     same ? same->created_ms : env->time_ms,
						     env->time_ms, config);
	g_autofree char *change = g_strdup_printf("restored from version %lld", (long long)version);
	if (!publish(s, env, change, same, o, changes, error))
		return NULL;
	return object_result(o);
}

static json_t *apply_op(store_state *s, const envelope *env, json_t *op, GPtrArray *changes,
			unsigned depth, GError **error);

static json_t *op_batch(store_state *s, const envelope *env, json_t *op, GPtrArray *changes,
			unsigned depth, GError **error)
{
	json_t *ops = json_object_get(op, "ops");
	if (!json_is_array(ops) || json_array_size(ops) == 0 || depth > 0) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A batch needs a non-empty list of operations and cannot be nested.");
		return NULL;
	}
	json_t *results = json_array();
	size_t i;
	json_t *sub;
	json_array_foreach(ops, i, sub) {
		json_t *r = apply_op(s, env, sub, changes, depth + 1, error);
		if (!r) {
			json_decref(results);
			return NULL;
		}
		json_array_append_new(results, r);
	}
	return json_pack("{s:o}", "results", results);
}

static json_t *apply_op(store_state *s, const envelope *env, json_t *op, GPtrArray *changes,
			unsigned depth, GError **error)
{
	const char *name = json_string_value(json_object_get(op, "op"));
	if (!json_is_object(op) || !name) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "A command needs an 'op'.");
		return NULL;
	}
	if (strcmp(name, "create") == 0)
		return op_create(s, env, op, changes, error);
	if (strcmp(name, "update") == 0)
		return op_update(s, env, op, changes, error);
	if (strcmp(name, "patch") == 0)
		return op_patch(s, env, op, changes, error);
	if (strcmp(name, "delete") == 0)
		return op_delete(s, env, op, changes, error);
	if (strcmp(name, "restore") == 0)
		return op_restore(s, env, op, changes, error);
	if (strcmp(name, "batch") == 0)
		return op_batch(s, env, op, changes, depth, error);
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "Unknown operation '%s'.", name);
	return NULL;
}

/* Put the in-memory maps back as they were before the failed command. */
static void undo(store_state *s, GPtrArray *done)
{
	for (guint i = done->len; i-- > 0;) {
		store_change *c = done->pdata[i];
		state_set(s, c->kind, c->uuid, c->after, c->before);
	}
}

static void chain_hash(store_position *pos, const void *bytes, size_t len)
{
	GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
	gsize n = sizeof(pos->hash);
	g_checksum_update(ck, pos->hash, sizeof(pos->hash));
	g_checksum_update(ck, bytes, (gssize)len);
	g_checksum_get_digest(ck, pos->hash, &n);
	g_checksum_free(ck);
}

json_t *store_state_apply(store_state *s, json_t *cmd, const void *cmd_bytes, size_t cmd_len,
			  GPtrArray *changes, GError **error)
{
	envelope env = {
		.time_ms = json_integer_value(json_object_get(cmd, "time_ms")),
		.origin = json_string_value(json_object_get(cmd, "origin")),
		.user = json_string_value(json_object_get(cmd, "user")),
	};
	if (!json_is_object(cmd) || env.time_ms <= 0 || !env.origin || !env.user) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "A command needs time_ms, origin and user.");
		return NULL;
	}
	if (!store_db_savepoint(s->db, error))
		return NULL;
	g_autoptr(GPtrArray) done = g_ptr_array_new_with_free_func((GDestroyNotify)store_change_free);
	json_t *result = apply_op(s, &env, cmd, done, 0, error);
	store_position next = s->pos;
	next.gen = s->pos.current_gen;
	next.index++;
	chain_hash(&next, cmd_bytes, cmd_len);
	if (!result || !store_db_release(s->db, error)) {
		undo(s, done);
		store_db_rollback_savepoint(s->db);
		json_decref(result);
		return NULL;
	}
	s->pos = next;
	/* Set as the change is published, before any reader sees it. */
	for (guint i = 0; i < done->len; i++) {
		store_change *c = done->pdata[i];
		if (c->after)
			c->after->changed_at = next.index;
	}
	if (changes) {
		for (guint i = 0; i < done->len; i++)
			g_ptr_array_add(changes, done->pdata[i]);
		/* ownership moved */
		g_ptr_array_set_free_func(done, NULL);
	}
	return result;
}
