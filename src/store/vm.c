#include "store/vm.h"

#include "common/error.h"
#include "common/json.h"
#include "store/command.h"
#include "store/fields.h"

#include <stdarg.h>
#include <string.h>

/* A VM's typed view in one block with the strings it owns (after
 * store_vm_own()); its lists in blocks of their own, an empty one in none.
 * The view's pointers are the only ones to them (10,000 views: every
 * pointer kept twice was 80 kB a herdd). */
typedef struct {
	store_vm vm;
	char strings[];          /* the view's own copies (store_vm_own()) */
} vm_typed;

/* What an empty list points to: most VMs have no node set, no files or
 * bridges in their XML, and a block of their own for each was 3 x 32 bytes
 * of heap per VM (1 MB per herdd at 10,000 VMs).  Never freed. */
static const char *no_strings[1];
static store_vm_node_priority no_nodeset[1];

/* A JSON array of strings as a NULL-terminated array borrowing them. */
static const char **string_list(json_t *arr)
{
	if (json_array_size(arr) == 0)
		return no_strings;
	const char **out = g_new0(const char *, json_array_size(arr) + 1);
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(arr, i, e)
		if (json_is_string(e))
			out[n++] = json_string_value(e);
	return out;
}

/* The hardware, its disks and NICs in one block (only a VM that herd
 * made has one). */
static void parse_hardware(vm_typed *t, json_t *hw)
{
	json_t *disks = json_object_get(hw, "disks"), *nics = json_object_get(hw, "nics"), *e;
	size_t i, n_disks = json_array_size(disks), n_nics = json_array_size(nics);
	store_vm_hardware *h = g_malloc0(sizeof(*h) + n_disks * sizeof(store_vm_disk) +
					 n_nics * sizeof(store_vm_nic));
	store_vm_disk *d = (store_vm_disk *)(h + 1);
	store_vm_nic *nic = (store_vm_nic *)(d + n_disks);
	json_array_foreach(disks, i, e)
		d[h->n_disks++] = (store_vm_disk){ field_text(e, "disk"),
						   field_str(e, "bus") ? field_str(e, "bus") : "virtio" };
	json_array_foreach(nics, i, e)
		nic[h->n_nics++] = (store_vm_nic){ field_text(e, "network"),
						   field_str(e, "model") ? field_str(e, "model") : "virtio",
						   field_text(e, "mac") };
	h->disks = d;
	h->nics = nic;
	h->cdrom = field_str(hw, "cdrom");
	h->floppy = field_str(hw, "floppy");
	h->firmware = field_str(hw, "firmware") ? field_str(hw, "firmware") : "bios";
	h->boot = field_str(hw, "boot") ? field_str(hw, "boot") : "disk";
	t->vm.hw = h;
}

void *store_vm_parse(json_t *d)
{
	vm_typed *t = g_new0(vm_typed, 1);
	store_vm *vm = &t->vm;
	vm->type = field_text(d, "type");
	vm->memory_mib = field_uint(d, "memory_mib", 0);
	vm->vcpus = (unsigned)field_uint(d, "vcpus", 0);
	vm->ha = field_bool(d, "ha", false);
	vm->preferred = field_str(d, "preferred");
	vm->failback = field_bool(d, "failback", true);
	vm->sticky = field_str(d, "sticky");
	vm->group = field_str(d, "group");
	vm->pool = field_str(d, "pool");
	json_t *set = json_object_get(d, "nodes"), *member;
	size_t k;
	store_vm_node_priority *nodeset =
		json_array_size(set) ? g_new0(store_vm_node_priority, json_array_size(set) + 1) : no_nodeset;
	json_array_foreach(set, k, member)
		if (field_str(member, "node"))
			nodeset[vm->n_nodeset++] = (store_vm_node_priority){
				field_str(member, "node"), (unsigned)field_uint(member, "priority", 0) };
	vm->nodeset = nodeset;
	vm->restricted = vm->n_nodeset > 0 && field_bool(d, "restricted", false);
	vm->shutdown_timeout_s = (unsigned)field_uint(d, "shutdown_timeout_s",
						      STORE_VM_SHUTDOWN_TIMEOUT_DEFAULT_S);
	if (vm->shutdown_timeout_s == 0)
		vm->shutdown_timeout_s = STORE_VM_SHUTDOWN_TIMEOUT_DEFAULT_S;
	vm->restart_priority = STORE_VM_PRIORITY_MEDIUM;
	store_vm_priority_parse(field_str(d, "restart_priority"), &vm->restart_priority);
	vm->start_after = field_str(d, "start_after");
	vm->start_wait_s = (unsigned)field_uint(d, "start_wait_s", STORE_VM_START_WAIT_DEFAULT_S);
	vm->target_running = g_strcmp0(field_str(d, "target"), "running") == 0;
	vm->stop_force = g_strcmp0(field_str(d, "stop"), "force") == 0;
	vm->node = field_str(d, "node");
	vm->move_to = field_str(d, "move_to");
	vm->move_live = vm->move_to && g_strcmp0(field_str(d, "move"), "live") == 0;
	vm->move_cold_ok = vm->move_live && field_bool(d, "move_cold_ok", false);
	vm->live_failed = field_str(d, "live_failed");
	vm->return_to = field_str(d, "return_to");
	if (json_is_object(json_object_get(d, "hw")))
		parse_hardware(t, json_object_get(d, "hw"));
	vm->xml_files = string_list(json_object_get(d, "xml_files"));
	vm->xml_bridges = string_list(json_object_get(d, "xml_bridges"));
	json_t *failed = json_object_get(d, "failed");
	if (json_is_object(failed) && json_object_size(failed) > 0) {
		store_vm_failure *failures = g_new0(store_vm_failure, json_object_size(failed));
		const char *node;
		json_t *f;
		json_object_foreach(failed, node, f) {
			store_vm_failure *e = &failures[vm->n_failures++];
			e->node = node;
			e->count = (unsigned)field_uint(f, "count", 1);
			e->error = field_text(f, "error");
		}
		vm->failures = failures;
	}
	return t;
}

/* Every string of @t's view, by the address of its pointer (the lists'
 * blocks are the view's own: their const is the readers'). */
static void string_slots(vm_typed *t, GPtrArray *slots)
{
	store_vm *vm = &t->vm;
	store_vm_node_priority *nodeset = (store_vm_node_priority *)vm->nodeset;
	store_vm_failure *failures = (store_vm_failure *)vm->failures;
	store_vm_hardware *hw = (store_vm_hardware *)vm->hw;
	const char **xml_files = (const char **)vm->xml_files;
	const char **xml_bridges = (const char **)vm->xml_bridges;
	const char **one[] = { &vm->type, &vm->preferred, &vm->sticky, &vm->group, &vm->pool,
			       &vm->start_after, &vm->node, &vm->move_to, &vm->live_failed,
			       &vm->return_to };
	for (size_t i = 0; i < G_N_ELEMENTS(one); i++)
		g_ptr_array_add(slots, one[i]);
	for (size_t i = 0; i < vm->n_nodeset; i++)
		g_ptr_array_add(slots, &nodeset[i].node);
	for (size_t i = 0; i < vm->n_failures; i++) {
		g_ptr_array_add(slots, &failures[i].node);
		g_ptr_array_add(slots, &failures[i].error);
	}
	if (hw) {
		store_vm_disk *disks = (store_vm_disk *)hw->disks;
		store_vm_nic *nics = (store_vm_nic *)hw->nics;
		for (size_t i = 0; i < hw->n_disks; i++) {
			g_ptr_array_add(slots, &disks[i].disk);
			g_ptr_array_add(slots, &disks[i].bus);
		}
		for (size_t i = 0; i < hw->n_nics; i++) {
			g_ptr_array_add(slots, &nics[i].network);
			g_ptr_array_add(slots, &nics[i].model);
			g_ptr_array_add(slots, &nics[i].mac);
		}
		g_ptr_array_add(slots, &hw->cdrom);
		g_ptr_array_add(slots, &hw->floppy);
		g_ptr_array_add(slots, &hw->firmware);
		g_ptr_array_add(slots, &hw->boot);
	}
	for (size_t i = 0; xml_files[i]; i++)
		g_ptr_array_add(slots, &xml_files[i]);
	for (size_t i = 0; xml_bridges[i]; i++)
		g_ptr_array_add(slots, &xml_bridges[i]);
	g_ptr_array_add(slots, &vm->xml_macs);
}

static bool is_mac_char(char c)
{
	return g_ascii_isxdigit(c) || c == ':';
}

/* The runs of hex digits and colons of @len bytes at @p as long as a MAC
 * address or longer, space-separated; NULL if none.  @p is the XML as a
 * JSON string: a MAC in the XML is in it as it is (JSON escapes none of
 * its characters), and an escape only ends a run or adds one. */
static char *mac_runs(const char *p, size_t len)
{
	GString *runs = NULL;
	for (size_t i = 0; i < len;) {
		size_t n = 0;
		while (i + n < len && is_mac_char(p[i + n]))
			n++;
		if (n >= 17) {
			if (!runs)
				runs = g_string_new(NULL);
			else
				g_string_append_c(runs, ' ');
			g_string_append_len(runs, p + i, (gssize)n);
		}
		i += n ? n : 1;
	}
	return runs ? g_string_free(runs, FALSE) : NULL;
}

void *store_vm_own(void *typed, const char *text, const store_object *object)
{
	vm_typed *was = typed;
	store_text_member m;
	bool xml = store_text_member_get(text, "xml", &m) && m.value_len >= 2 && *m.value == '"';
	g_autofree char *macs = xml ? mac_runs(m.value, m.value_len) : NULL;
	was->vm.xml_macs = macs;
	was->vm.object = object;
	g_autoptr(GPtrArray) slots = g_ptr_array_new();
	string_slots(was, slots);
	size_t size = 0;
	for (guint i = 0; i < slots->len; i++) {
		const char **slot = slots->pdata[i];
		if (*slot)
			size += strlen(*slot) + 1;
	}
	/* The view moves into a block with room for its strings. */
	vm_typed *t = g_malloc(sizeof(*t) + size);
	memcpy(t, was, sizeof(*t));
	g_free(was);
	g_ptr_array_set_size(slots, 0);
	string_slots(t, slots);
	char *at = t->strings;
	for (guint i = 0; i < slots->len; i++) {
		const char **slot = slots->pdata[i];
		if (!*slot)
			continue;
		size_t n = strlen(*slot) + 1;
		memcpy(at, *slot, n);
		*slot = at;
		at += n;
	}
	return t;
}

/* The JSON string of @vm's XML in @text (its unpacked text): in *@json,
 * escaped and quoted; false if it has none. */
static bool xml_member(const char *text, store_text_member *json)
{
	return store_text_member_get(text, "xml", json) && json->value_len >= 2 && *json->value == '"';
}

char *store_vm_xml(const store_vm *vm, GError **error)
{
	if (!vm->object)
		return g_strdup("");
	g_autofree char *text = store_object_encode(vm->object, error);
	if (!text)
		return NULL;
	store_text_member m;
	if (!xml_member(text, &m))
		return g_strdup("");
	g_autoptr(json_t) s = json_loadb(m.value, m.value_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	return g_strdup(json_is_string(s) ? json_string_value(s) : "");
}

bool store_vm_same_xml(const store_vm *a, const store_vm *b)
{
	/* The same text (the same version, or one whose state only changed
	 * since) is the same XML: no unpacking. */
	if (a->object && a->object == b->object)
		return true;
	if (a->object && b->object && a->object->text && b->object->text &&
	    store_packed_equal(a->object->text, b->object->text))
		return true;
	/* A text that cannot be read (store_object_encode()) is taken as
	 * another XML: a change to be made, never one missed. */
	if (!a->object || !b->object) {
		g_autofree char *xa = store_vm_xml(a, NULL), *xb = store_vm_xml(b, NULL);
		return xa && xb && strcmp(xa, xb) == 0;
	}
	/* Both texts are store_db_encode()'s: the same string, the same bytes
	 * (no XML at all is "", as an empty one: compared as strings). */
	g_autofree char *ta = store_object_encode(a->object, NULL);
	g_autofree char *tb = store_object_encode(b->object, NULL);
	if (!ta || !tb)
		return false;
	store_text_member ma, mb;
	bool has_a = xml_member(ta, &ma), has_b = xml_member(tb, &mb);
	if (has_a && has_b)
		return ma.value_len == mb.value_len && memcmp(ma.value, mb.value, ma.value_len) == 0;
	/* One without XML: the same only if the other's is empty. */
	const store_text_member *one = has_a ? &ma : has_b ? &mb : NULL;
	return !one || (one->value_len == 2);
}

bool store_vm_xml_may_have_mac(const store_vm *vm, const char *mac)
{
	for (const char *c = mac; *c; c++)
		if (!is_mac_char(*c))
			return vm->object != NULL; /* not a MAC's shape: only a look tells */
	if (strlen(mac) < 17)
		return vm->object != NULL;
	return vm->xml_macs && strcasestr(vm->xml_macs, mac);
}

void store_vm_free(void *typed)
{
	vm_typed *t = typed;
	if (!t)
		return;
	/* The view's own blocks (string_slots()). */
	g_free((gpointer)t->vm.failures);
	g_free((gpointer)t->vm.hw);
	if (t->vm.xml_files != no_strings)
		g_free((gpointer)t->vm.xml_files);
	if (t->vm.xml_bridges != no_strings)
		g_free((gpointer)t->vm.xml_bridges);
	if (t->vm.nodeset != no_nodeset)
		g_free((gpointer)t->vm.nodeset);
	g_free(t);
}

const store_vm *store_vm_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_VM);
	return &((const vm_typed *)o->typed)->vm;
}

const store_vm_failure *store_vm_failure_on(const store_vm *vm, const char *node)
{
	for (size_t i = 0; node && i < vm->n_failures; i++)
		if (strcmp(vm->failures[i].node, node) == 0)
			return &vm->failures[i];
	return NULL;
}

GHashTable *store_vms_assigned_to(store_state *st, const char *node)
{
	return node ? g_hash_table_lookup(st->vms_by_node, node) : NULL;
}

static bool bad_hw(GError **error, const char *what)
{
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID, "The VM's hardware: %s.", what);
	return false;
}

static bool mac_ok(const char *m)
{
	if (!m || strlen(m) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? m[i] != ':' : !(g_ascii_isdigit(m[i]) || (m[i] >= 'a' && m[i] <= 'f')))
			return false;
	return !(g_ascii_xdigit_value(m[1]) & 1); /* not a multicast address */
}

bool store_vm_boot_ok(const char *boot)
{
	static const char *const devices[] = { "disk", "cdrom", "network", "floppy", NULL };
	if (!boot || !*boot)
		return false;
	g_auto(GStrv) parts = g_strsplit(boot, ",", -1);
	for (char **p = parts; *p; p++) {
		if (!g_strv_contains(devices, *p))
			return false;
		for (char **q = parts; q < p; q++)
			if (strcmp(*q, *p) == 0)
				return false;
	}
	return true;
}

static bool validate_hardware(json_t *hw, GError **error)
{
	if (!json_is_object(hw))
		return bad_hw(error, "'hw' must be an object");
	if (!check_choice(hw, "VM's hardware", "firmware", "bios|uefi", error) ||
	    !check_string(hw, "VM's hardware", "cdrom", error) ||
	    !check_string(hw, "VM's hardware", "floppy", error) ||
	    !check_string(hw, "VM's hardware", "boot", error))
		return false;
	if (json_object_get(hw, "boot") && !store_vm_boot_ok(field_str(hw, "boot")))
		return bad_hw(error, "the boot order is a list of disk, cdrom, network and floppy, each once");
	json_t *disks = json_object_get(hw, "disks"), *nics = json_object_get(hw, "nics"), *e;
	size_t i;
	if ((disks && !json_is_array(disks)) || json_array_size(disks) > STORE_VM_DISKS_MAX)
		return bad_hw(error, "'disks' must be a list of at most " G_STRINGIFY(STORE_VM_DISKS_MAX) " disks");
	if ((nics && !json_is_array(nics)) || json_array_size(nics) > STORE_VM_NICS_MAX)
		return bad_hw(error, "'nics' must be a list of at most " G_STRINGIFY(STORE_VM_NICS_MAX) " NICs");
	json_array_foreach(disks, i, e)
		if (!json_is_object(e) || !store_uuid_is_valid(field_str(e, "disk")) ||
		    !check_choice(e, "VM's disk", "bus", "virtio|scsi|sata|ide", error))
			return error && *error ? false : bad_hw(error, "each disk needs a disk's UUID");
	json_array_foreach(nics, i, e)
		if (!json_is_object(e) || !store_uuid_is_valid(field_str(e, "network")) ||
		    !check_choice(e, "VM's NIC", "model", "virtio|e1000|rtl8139", error) ||
		    !mac_ok(field_str(e, "mac")))
			return error && *error ? false :
						bad_hw(error, "each NIC needs a virtual switch's UUID and a "
							      "unicast MAC address in lower-case xx:xx:xx:xx:xx:xx");
	return true;
}

bool store_vm_validate(json_t *d, GError **error)
{
	if (json_object_get(d, "hw") && !validate_hardware(json_object_get(d, "hw"), error))
		return false;
	static const char *const strings[] = { "type", "preferred", "sticky", "group", "pool", "node", "move_to",
					       "live_failed", "return_to", "start_after" };
	if (!check_string(d, "VM", "xml", error) ||
	    !check_uint(d, "VM", "memory_mib", 0, G_MAXINT64, error) ||
	    !check_uint(d, "VM", "vcpus", 0, G_MAXUINT32, error) || !check_bool(d, "VM", "ha", error) ||
	    !check_bool(d, "VM", "failback", error) ||
	    !check_uint(d, "VM", "shutdown_timeout_s", 1, STORE_VM_SHUTDOWN_TIMEOUT_MAX_S, error) ||
	    !check_choice(d, "VM", "target", "running|stopped", error) ||
	    !check_choice(d, "VM", "restart_priority", "high|medium|low|disabled", error) ||
	    !check_uint(d, "VM", "start_wait_s", 0, STORE_VM_START_WAIT_MAX_S, error) ||
	    !check_choice(d, "VM", "stop", "graceful|force", error) ||
	    !check_choice(d, "VM", "move", "cold|live", error) ||
	    !check_bool(d, "VM", "move_cold_ok", error) || !check_bool(d, "VM", "restricted", error))
		return false;
	if (json_object_get(d, "nodes") && !store_vm_nodeset_check(json_object_get(d, "nodes"), error))
		return false;
	for (unsigned i = 0; i < G_N_ELEMENTS(strings); i++)
		if (!check_string(d, "VM", strings[i], error))
			return false;
	static const char *const lists[] = { "xml_files", "xml_bridges" };
	for (unsigned i = 0; i < G_N_ELEMENTS(lists); i++) {
		json_t *l = json_object_get(d, lists[i]), *e;
		size_t k;
		bool ok = !l || (json_is_array(l) && json_array_size(l) <= STORE_VM_XML_USES_MAX);
		json_array_foreach(l, k, e)
			ok = ok && json_is_string(e);
		if (!ok) {
			g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
				    "The VM's field '%s' must be an array of at most %d strings.", lists[i],
				    STORE_VM_XML_USES_MAX);
			return false;
		}
	}
	json_t *failed = json_object_get(d, "failed");
	const char *node;
	json_t *f;
	if (failed && !json_is_object(failed)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "The VM's field 'failed' must be an object of node: {count, error}.");
		return false;
	}
	json_object_foreach(failed, node, f)
		if (!json_is_object(f) || !check_uint(f, "VM's failure record", "count", 1, G_MAXUINT32, error) ||
		    !check_string(f, "VM's failure record", "error", error))
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* Attributes                                                          */

const char *const store_vm_attr_names[] = { "ha", "preferred", "failback", "shutdown_timeout_s",
					    "sticky", "group", "pool", "nodes", "restricted", "restart_priority",
					    "start_after", "start_wait_s", NULL };

static bool bad_nodeset(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static bool bad_nodeset(GError **error, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
		    "The node set is invalid: %s. Write it as NODE[:PRIORITY],… e.g. n2:2,n3:2,n1:1 (priorities 0 to %d, higher first).",
		    what, STORE_VM_NODESET_PRIORITY_MAX);
	return false;
}

bool store_vm_nodeset_check(json_t *set, GError **error)
{
	if (!json_is_array(set) || json_array_size(set) > STORE_VM_NODESET_MAX)
		return bad_nodeset(error, "it must be a list of at most %d nodes", STORE_VM_NODESET_MAX);
	size_t i;
	json_t *e;
	json_array_foreach(set, i, e) {
		const char *node = json_is_object(e) ? field_str(e, "node") : NULL;
		json_t *pri = json_is_object(e) ? json_object_get(e, "priority") : NULL;
		if (json_is_object(e) && json_object_size(e) != (pri ? 2u : 1u))
			return bad_nodeset(error, "entry %zu has fields other than 'node' and 'priority'", i + 1);
		g_autoptr(GError) name_error = NULL;
		if (!node || !store_name_validate(STORE_KIND_NODE, node, &name_error))
			return bad_nodeset(error, "entry %zu: %s", i + 1,
					   name_error ? name_error->message : "it needs a node name");
		if (pri && (!json_is_integer(pri) || json_integer_value(pri) < 0 ||
			    json_integer_value(pri) > STORE_VM_NODESET_PRIORITY_MAX))
			return bad_nodeset(error, "node %s's priority is not a whole number from 0 to %d", node,
					   STORE_VM_NODESET_PRIORITY_MAX);
		for (size_t k = 0; k < i; k++)
			if (strcmp(field_text(json_array_get(set, k), "node"), node) == 0)
				return bad_nodeset(error, "node %s is named twice", node);
	}
	return true;
}

/* The text form as a list, checked. */
static json_t *nodeset_from_text(const char *text, GError **error)
{
	g_auto(GStrv) parts = g_strsplit(text, ",", -1);
	g_autoptr(json_t) set = json_array();
	for (guint i = 0; parts[i]; i++) {
		char *entry = g_strstrip(parts[i]);
		if (!*entry) {
			if (parts[1] == NULL)
				break; /* "": no set */
			bad_nodeset(error, "entry %u is empty", i + 1);
			return NULL;
		}
		char *colon = strchr(entry, ':');
		long long pri = 0;
		if (colon) {
			*colon = '\0';
			char *end = NULL;
			const char *num = g_strstrip(colon + 1);
			pri = *num && g_ascii_isdigit(*num) ? g_ascii_strtoll(num, &end, 10) : -1;
			if (pri < 0 || (end && *end) || pri > STORE_VM_NODESET_PRIORITY_MAX) {
				bad_nodeset(error, "'%s' after node %s is not a priority from 0 to %d", num,
					    g_strstrip(entry), STORE_VM_NODESET_PRIORITY_MAX);
				return NULL;
			}
		}
		json_array_append_new(set, json_pack("{s:s,s:I}", "node", g_strstrip(entry), "priority",
						     (json_int_t)pri));
	}
	return store_vm_nodeset_check(set, error) ? g_steal_pointer(&set) : NULL;
}

json_t *store_vm_nodeset_parse(json_t *given, GError **error)
{
	g_autoptr(json_t) set = NULL;
	if (json_is_string(given))
		set = nodeset_from_text(json_string_value(given), error);
	else if (json_is_array(given) && store_vm_nodeset_check(given, error))
		set = json_incref(given);
	else if (!json_is_array(given))
		bad_nodeset(error, "it is neither a text nor a list");
	if (!set)
		return NULL;
	/* Highest priority first; a stable insertion keeps the given order of a tier. */
	json_t *sorted = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(set, i, e) {
		json_int_t p = json_integer_value(json_object_get(e, "priority"));
		size_t at = json_array_size(sorted);
		while (at > 0 && json_integer_value(json_object_get(json_array_get(sorted, at - 1), "priority")) < p)
			at--;
		json_array_insert(sorted, at, e);
	}
	return sorted;
}

int store_vm_nodeset_priority(const store_vm_node_priority *set, size_t n, const char *node)
{
	for (size_t i = 0; node && i < n; i++)
		if (strcmp(set[i].node, node) == 0)
			return (int)set[i].priority;
	return -1;
}


static const char *const priority_names[] = { "high", "medium", "low", "disabled" };

const char *store_vm_priority_name(store_vm_priority p)
{
	return (unsigned)p < G_N_ELEMENTS(priority_names) ? priority_names[p] : "medium";
}

bool store_vm_priority_parse(const char *name, store_vm_priority *out)
{
	for (unsigned i = 0; name && i < G_N_ELEMENTS(priority_names); i++)
		if (strcmp(name, priority_names[i]) == 0) {
			*out = (store_vm_priority)i;
			return true;
		}
	return false;
}

static bool node_exists(store_state *st, const char *field, const char *name, GError **error)
{
	if (!name || store_state_get_by_name(st, STORE_KIND_NODE, name))
		return true;
	if (strcmp(field, "preferred") == 0)
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Preferred node '%s' is not a node of this cluster.", name);
	else
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field '%s' must be a node of this cluster or null.", field);
	return false;
}

bool store_vm_attrs_check(store_state *st, const store_vm_attrs *a, GError **error)
{
	if ((a->set & STORE_VM_SET_SHUTDOWN_TIMEOUT) &&
	    (a->shutdown_timeout_s < 1 || a->shutdown_timeout_s > STORE_VM_SHUTDOWN_TIMEOUT_MAX_S)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field 'shutdown_timeout_s' must be a whole number from 1 to %d.",
			    STORE_VM_SHUTDOWN_TIMEOUT_MAX_S);
		return false;
	}
	if ((a->set & STORE_VM_SET_STICKY) && !node_exists(st, "sticky", a->sticky, error))
		return false;
	if ((a->set & STORE_VM_SET_GROUP) && a->group &&
	    !store_name_validate(STORE_KIND_GROUP, a->group, error))
		return false;
	if ((a->set & STORE_VM_SET_POOL) && a->pool &&
	    !store_name_validate(STORE_KIND_GROUP, a->pool, error))
		return false;
	if ((a->set & STORE_VM_SET_NODESET) && a->nodeset) {
		if (!store_vm_nodeset_check(a->nodeset, error))
			return false;
		/* Proxmox lets a group name absent nodes; herd does not: a typo
		 * in a restricted set would leave the VM nowhere to run.  A node
		 * removed later stays in the set, and counts as unavailable. */
		size_t i;
		json_t *e;
		json_array_foreach(a->nodeset, i, e) {
			const char *node = field_str(e, "node");
			if (!store_state_get_by_name(st, STORE_KIND_NODE, node)) {
				g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
					    "Node '%s' of the node set is not a node of this cluster.", node);
				return false;
			}
		}
	}
	if ((a->set & STORE_VM_SET_START_WAIT) && a->start_wait_s > STORE_VM_START_WAIT_MAX_S) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field 'start_wait_s' must be a whole number from 0 to %d.", STORE_VM_START_WAIT_MAX_S);
		return false;
	}
	if ((a->set & STORE_VM_SET_PRIORITY) && (unsigned)a->restart_priority > STORE_VM_PRIORITY_DISABLED) {
		g_set_error_literal(error, HERD_ERROR, HERD_ERR_INVALID,
				    "Field 'restart_priority' must be high, medium, low or disabled.");
		return false;
	}
	if ((a->set & STORE_VM_SET_START_AFTER) && a->start_after &&
	    !store_state_get(st, STORE_KIND_VM, a->start_after) &&
	    !store_state_get_by_name(st, STORE_KIND_VM, a->start_after)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "Field 'start_after' must be a VM of this cluster or null: there is no VM '%s'.",
			    a->start_after);
		return false;
	}
	return !(a->set & STORE_VM_SET_PREFERRED) || node_exists(st, "preferred", a->preferred, error);
}

const char *store_vm_attrs_start_after(store_state *st, const char *vm)
{
	store_object *o = vm ? store_state_get(st, STORE_KIND_VM, vm) : NULL;
	if (!o && vm)
		o = store_state_get_by_name(st, STORE_KIND_VM, vm);
	return o ? o->uuid : NULL;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* @a's fields as data; with @omit_null, cleared fields are left out (a new VM). */
static json_t *attrs_data(const store_vm_attrs *a, bool omit_null)
{
	json_t *d = json_object();
	if (a->set & STORE_VM_SET_HA)
		json_object_set_new(d, "ha", json_boolean(a->ha));
	if (a->set & STORE_VM_SET_FAILBACK)
		json_object_set_new(d, "failback", json_boolean(a->failback));
	if (a->set & STORE_VM_SET_SHUTDOWN_TIMEOUT)
		json_object_set_new(d, "shutdown_timeout_s", json_integer(a->shutdown_timeout_s));
	if (a->set & STORE_VM_SET_RESTRICTED)
		json_object_set_new(d, "restricted", json_boolean(a->restricted));
	/* An empty set is no set. */
	if ((a->set & STORE_VM_SET_NODESET) && json_array_size(a->nodeset))
		json_object_set_new(d, "nodes", json_incref(a->nodeset));
	else if ((a->set & STORE_VM_SET_NODESET) && !omit_null)
		json_object_set_new(d, "nodes", json_null());
	if (a->set & STORE_VM_SET_PRIORITY)
		json_object_set_new(d, "restart_priority",
				    json_string(store_vm_priority_name(a->restart_priority)));
	if (a->set & STORE_VM_SET_START_WAIT)
		json_object_set_new(d, "start_wait_s", json_integer(a->start_wait_s));
	const struct {
		unsigned bit;
		const char *key, *value;
	} strings[] = {
		{ STORE_VM_SET_PREFERRED, "preferred", a->preferred },
		{ STORE_VM_SET_STICKY, "sticky", a->sticky },
		{ STORE_VM_SET_GROUP, "group", a->group },
		{ STORE_VM_SET_POOL, "pool", a->pool },
		{ STORE_VM_SET_START_AFTER, "start_after", a->start_after },
	};
	for (unsigned i = 0; i < G_N_ELEMENTS(strings); i++)
		if ((a->set & strings[i].bit) && (strings[i].value || !omit_null))
			json_object_set_new(d, strings[i].key, string_or_null(strings[i].value));
	return d;
}

/* ------------------------------------------------------------------ */
/* Commands                                                            */

json_t *store_vm_cmd_define(const store_object *existing, const store_vm_domain *dom,
			    const store_vm_attrs *a, GError **error)
{
	json_t *data = attrs_data(a, existing == NULL);
	json_object_set_new(data, "xml", json_string(dom->xml));
	json_object_set_new(data, "memory_mib", json_integer((json_int_t)dom->memory_mib));
	json_object_set_new(data, "vcpus", json_integer(dom->vcpus));
	json_object_set_new(data, "type", json_string(dom->type));
	json_t *files = json_array(), *bridges = json_array();
	for (size_t i = 0; dom->files && dom->files[i]; i++)
		json_array_append_new(files, json_string(dom->files[i]));
	for (size_t i = 0; dom->bridges && dom->bridges[i]; i++)
		json_array_append_new(bridges, json_string(dom->bridges[i]));
	/* Absent when empty (null removes an earlier list on a redefine). */
	json_object_set_new(data, "xml_files", json_array_size(files) ? json_incref(files) :
					       existing ? json_null() : NULL);
	json_object_set_new(data, "xml_bridges", json_array_size(bridges) ? json_incref(bridges) :
						 existing ? json_null() : NULL);
	json_decref(files);
	json_decref(bridges);
	if (!existing)
		return store_cmd_create(STORE_KIND_VM, dom->uuid, dom->name, data);
	/* A new configuration: earlier failed starts may not apply to it. */
	json_object_set_new(data, "failed", json_null());
	/* An operator's XML over a VM that herd made: the XML is the VM's
	 * hardware from now on (herd vm set then refers to herd vm define). */
	json_object_set_new(data, "hw", json_null());
	if (strcmp(existing->name, dom->name) == 0) {
		json_t *cmd = store_cmd_patch(STORE_KIND_VM, dom->uuid, data);
		store_cmd_if_version(cmd, existing->version);
		return cmd;
	}
	/* A rename: the whole data under the new name. */
	json_t *merged = store_object_data(existing, error); /* a VM's: a tree of its own */
	if (!merged) {
		json_decref(data);
		return NULL;
	}
	json_object_update(merged, data);
	json_decref(data);
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(merged, tmp, key, v)
		if (json_is_null(v))
			json_object_del(merged, key);
	return store_cmd_update(STORE_KIND_VM, dom->uuid, dom->name, merged, existing->version);
}

json_t *store_vm_cmd_create_hw(const store_vm_domain *dom, json_t *hw, const store_vm_attrs *a)
{
	json_t *data = attrs_data(a, true);
	json_object_set_new(data, "xml", json_string(dom->xml));
	json_object_set_new(data, "memory_mib", json_integer((json_int_t)dom->memory_mib));
	json_object_set_new(data, "vcpus", json_integer(dom->vcpus));
	json_object_set_new(data, "type", json_string(dom->type));
	json_object_set_new(data, "hw", hw);
	return store_cmd_create(STORE_KIND_VM, dom->uuid, dom->name, data);
}

json_t *store_vm_cmd_set_hw(const store_object *vm, const store_vm_domain *dom, json_t *hw,
			    const store_vm_attrs *a)
{
	json_t *data = attrs_data(a, false);
	json_object_set_new(data, "xml", json_string(dom->xml));
	json_object_set_new(data, "memory_mib", json_integer((json_int_t)dom->memory_mib));
	json_object_set_new(data, "vcpus", json_integer(dom->vcpus));
	json_object_set_new(data, "type", json_string(dom->type));
	/* A patch merges objects member by member (null removes one): a drive
	 * emptied is a null, not an absent member. */
	if (!json_object_get(hw, "cdrom"))
		json_object_set_new(hw, "cdrom", json_null());
	if (!json_object_get(hw, "floppy"))
		json_object_set_new(hw, "floppy", json_null());
	json_object_set_new(data, "hw", hw);
	/* A new configuration: earlier failed starts may not apply to it. */
	json_object_set_new(data, "failed", json_null());
	json_t *cmd = store_cmd_patch(STORE_KIND_VM, vm->uuid, data);
	store_cmd_if_version(cmd, vm->version);
	return cmd;
}

json_t *store_vm_hw_json(const store_vm_hardware *hw)
{
	json_t *disks = json_array(), *nics = json_array();
	for (size_t i = 0; i < hw->n_disks; i++)
		json_array_append_new(disks, json_pack("{s:s,s:s}", "disk", hw->disks[i].disk, "bus",
						       hw->disks[i].bus));
	for (size_t i = 0; i < hw->n_nics; i++)
		json_array_append_new(nics, json_pack("{s:s,s:s,s:s}", "network", hw->nics[i].network,
						      "model", hw->nics[i].model, "mac", hw->nics[i].mac));
	json_t *o = json_pack("{s:o,s:o,s:s,s:s}", "disks", disks, "nics", nics, "firmware",
			      hw->firmware, "boot", hw->boot);
	if (hw->cdrom)
		json_object_set_new(o, "cdrom", json_string(hw->cdrom));
	if (hw->floppy)
		json_object_set_new(o, "floppy", json_string(hw->floppy));
	return o;
}

unsigned store_vm_hw_changes(const store_vm *a, const store_vm *b)
{
	unsigned c = 0;
	if (a->memory_mib != b->memory_mib)
		c |= STORE_VM_HW_MEMORY;
	if (a->vcpus != b->vcpus)
		c |= STORE_VM_HW_VCPUS;
	if (!a->hw || !b->hw)
		return c | (!store_vm_same_xml(a, b) ? STORE_VM_HW_XML : 0);
	const store_vm_hardware *x = a->hw, *y = b->hw;
	bool disks = x->n_disks != y->n_disks, nics = x->n_nics != y->n_nics;
	for (size_t i = 0; !disks && i < x->n_disks; i++)
		disks = strcmp(x->disks[i].disk, y->disks[i].disk) != 0 ||
			strcmp(x->disks[i].bus, y->disks[i].bus) != 0;
	for (size_t i = 0; !nics && i < x->n_nics; i++)
		nics = strcmp(x->nics[i].network, y->nics[i].network) != 0 ||
		       strcmp(x->nics[i].model, y->nics[i].model) != 0 ||
		       strcmp(x->nics[i].mac, y->nics[i].mac) != 0;
	c |= (disks ? STORE_VM_HW_DISKS : 0) | (nics ? STORE_VM_HW_NICS : 0);
	if (g_strcmp0(x->cdrom, y->cdrom) != 0)
		c |= STORE_VM_HW_CDROM;
	if (g_strcmp0(x->floppy, y->floppy) != 0)
		c |= STORE_VM_HW_FLOPPY;
	if (strcmp(x->firmware, y->firmware) != 0)
		c |= STORE_VM_HW_FIRMWARE;
	if (strcmp(x->boot, y->boot) != 0)
		c |= STORE_VM_HW_BOOT;
	return c;
}

const char *store_vm_hw_change_name(unsigned bit)
{
	static const char *const names[STORE_VM_HW__COUNT] = { "memory", "vcpus",    "disks",
							       "network",  "cdrom",  "floppy",
							       "firmware", "boot", "xml" };
	for (unsigned i = 0; i < STORE_VM_HW__COUNT; i++)
		if (bit == 1u << i)
			return names[i];
	return "?";
}

json_t *store_vm_cmd_set(const store_object *vm, const store_vm_attrs *a)
{
	return store_cmd_patch(STORE_KIND_VM, vm->uuid, attrs_data(a, false));
}

json_t *store_vm_cmd_undefine(const store_object *vm)
{
	return store_cmd_delete(STORE_KIND_VM, vm->uuid, vm->version);
}

json_t *store_vm_cmd_restore(const char *uuid, uint64_t version, bool force)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:b}", "op", "restore", "kind", "vm", "uuid", uuid,
			 "version", (json_int_t)version, "force", force);
}

json_t *store_vm_cmd_start(const store_object *vm)
{
	return store_cmd_patch(STORE_KIND_VM, vm->uuid,
			       json_pack("{s:s,s:n,s:n,s:n}", "target", "running", "stop", "failed",
					 "live_failed"));
}

json_t *store_vm_cmd_stop(const store_object *vm, bool force)
{
	return store_cmd_patch(STORE_KIND_VM, vm->uuid,
			       json_pack("{s:s,s:s,s:n,s:n}", "target", "stopped", "stop",
					 force ? "force" : "graceful", "failed", "live_failed"));
}

json_t *store_vm_cmd_release_sticky(const store_object *vm)
{
	return store_cmd_patch(STORE_KIND_VM, vm->uuid, json_pack("{s:n}", "sticky"));
}

json_t *store_vm_cmd_assign(const char *uuid, const char *node, const store_vm_failure *failed)
{
	/* Not "stop": a VM assigned while it is to be stopped (it ran on,
	 * or arrived at, another node) is stopped there as the operator
	 * asked — powered off, not shut down, after a destroy.  A start
	 * clears it. */
	json_t *data = json_pack("{s:s,s:n,s:n,s:n}", "node", node, "move_to", "move", "move_cold_ok");
	if (failed)
		json_object_set_new(data, "failed",
				    json_pack("{s:{s:i,s:s}}", failed->node, "count", (int)failed->count,
					      "error", failed->error && *failed->error ? failed->error : "?"));
	return store_cmd_patch(STORE_KIND_VM, uuid, data);
}

json_t *store_vm_cmd_move(const char *uuid, const char *to)
{
	return store_cmd_patch(STORE_KIND_VM, uuid,
			       json_pack("{s:s,s:n,s:n,s:n}", "move_to", to, "move", "move_cold_ok", "return_to"));
}

json_t *store_vm_cmd_migrate(const char *uuid, const char *to, bool cold_ok)
{
	return store_cmd_patch(STORE_KIND_VM, uuid,
			       json_pack("{s:s,s:s,s:b,s:n,s:n}", "move_to", to, "move", "live", "move_cold_ok",
					 cold_ok, "live_failed", "return_to"));
}

json_t *store_vm_cmd_live_given_up(const char *uuid, const char *node, const char *error)
{
	return store_cmd_patch(STORE_KIND_VM, uuid,
			       json_pack("{s:s,s:n,s:n,s:n,s:s}", "node", node, "move_to", "move",
					 "move_cold_ok", "live_failed", error && *error ? error : "?"));
}

json_t *store_vm_cmd_release(const char *uuid)
{
	return store_cmd_patch(STORE_KIND_VM, uuid,
			       json_pack("{s:n,s:n,s:n,s:n}", "node", "move_to", "move", "move_cold_ok"));
}

void store_vm_cmd_set_return_to(json_t *cmd, const char *node)
{
	json_t *data = json_object_get(cmd, "data");
	if (data)
		json_object_set_new(data, "return_to", node ? json_string(node) : json_null());
}

json_t *store_vm_cmd_switchover(store_state *st, const char *from, const char *to, bool allow_cold,
				GPtrArray *refused)
{
	json_t *ops = json_array();
	g_autoptr(GPtrArray) vms = store_state_list(st, STORE_KIND_VM);
	for (guint i = 0; i < vms->len; i++) {
		store_object *vm = vms->pdata[i];
		const store_vm *v = store_vm_of(vm);
		if (g_strcmp0(v->node, from) != 0)
			continue;
		if (v->sticky && strcmp(v->sticky, to) != 0) {
			if (refused)
				g_ptr_array_add(refused, vm);
			continue;
		}
		json_array_append_new(ops, store_vm_cmd_migrate(vm->uuid, to, allow_cold));
	}
	if (json_array_size(ops) == 0) {
		json_decref(ops);
		return NULL;
	}
	return store_cmd_batch(ops);
}
