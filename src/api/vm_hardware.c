/*
 * VMs that herd makes from their hardware, not from an operator's XML
 * (requirement C17): POST /vms with "hardware" (herd vm create), and
 * PUT /vms/{vm} with "memory", "vcpus" or "hardware" (herd vm set).  Names
 * of disks, ISOs and virtual switches become UUIDs here; the domain XML is
 * made by virt/hardware.h; every change is a new configuration version.
 * Everything is checked before anything is submitted, and apply checks the
 * references again (store/refs.h).
 *
 * The "hardware" object:
 *   disks    [{"disk": NAME|UUID, "bus": "virtio|scsi|sata|ide"}]  (set: replaces the list)
 *   nics     [{"network": NAME|UUID, "model": "virtio|e1000|rtl8139", "mac": "52:54:00:…"}]
 *   cdrom    ISO NAME|UUID, or null (empty drive)
 *   floppy   ISO NAME|UUID, or null (no floppy drive)
 *   firmware "bios|uefi";  boot "cdrom,disk"…
 * and for a set also add_disks, remove_disks [NAME|UUID], add_nics,
 * remove_nics [MAC or switch NAME|UUID].
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"
#include "api/vm_hardware.h"

#include "common/error.h"
#include "common/json.h"
#include "common/size.h"
#include "store/cluster.h"
#include "store/disk.h"
#include "store/network.h"
#include "store/refs.h"
#include "store/vm.h"
#include "virt/hardware.h"

#include <string.h>

static const char *const hardware_fields[] = { "disks", "nics", "cdrom", "floppy", "firmware", "boot",
					       "add_disks", "remove_disks", "add_nics", "remove_nics",
					       NULL };

#define invalid(error, ...) herd_refuse((error), HERD_ERR_INVALID, __VA_ARGS__)

/* An object of @kind named by @ref (name or UUID), with a sentence if not. */
static store_object *find(store_state *st, store_kind kind, json_t *ref, const char *what, GError **error)
{
	const char *s = json_string_value(ref);
	store_object *o = s ? store_state_lookup(st, kind, s) : NULL;
	if (!s)
		invalid(error, "Each %s must be named by its name or UUID.", what);
	else if (!o)
		g_set_error(error, HERD_ERROR, HERD_ERR_NOT_FOUND, "There is no %s '%s'.", what, s);
	return o;
}

/* One of "a|b|c", or @dflt when absent. */
static const char *choice(json_t *o, const char *key, const char *choices, const char *dflt, const char *what,
			  GError **error)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return dflt;
	g_auto(GStrv) list = g_strsplit(choices, "|", -1);
	const char *s = json_string_value(v);
	if (!s || !g_strv_contains((const char *const *)list, s)) {
		g_autofree char *shown = json_dumps(v, JSON_ENCODE_ANY);
		g_autofree char *or = g_strjoinv(", ", list);
		invalid(error, "The %s %s is not one of %s.", what, shown, or);
		return NULL;
	}
	return s;
}

static bool only_keys(json_t *o, const char *const *keys, const char *what, GError **error)
{
	const char *k;
	json_t *v;
	if (!json_is_object(o))
		return invalid(error, "Each %s must be an object.", what);
	json_object_foreach(o, k, v)
		if (!g_strv_contains(keys, k))
			return invalid(error, "A %s has no field '%s'.", what, k);
	return true;
}

static json_t *disk_entry(store_state *st, json_t *e, const store_object *self, GError **error)
{
	static const char *const keys[] = { "disk", "bus", NULL };
	if (json_is_string(e))
		e = json_pack("{s:O}", "disk", e);
	else
		json_incref(e);
	g_autoptr(json_t) own = e;
	if (!only_keys(e, keys, "disk of a VM", error))
		return NULL;
	store_object *d = find(st, STORE_KIND_DISK, json_object_get(e, "disk"), "disk", error);
	const char *bus = d ? choice(e, "bus", "virtio|scsi|sata|ide", "virtio", "disk bus", error) : NULL;
	if (!bus)
		return NULL;
	store_object *user = store_refs_disk_user(st, d->uuid, self ? self->uuid : NULL);
	if (user) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "Disk %s is used by VM %s already.", d->name,
			    user->name);
		return NULL;
	}
	return json_pack("{s:s,s:s}", "disk", d->uuid, "bus", bus);
}

static bool mac_format_ok(const char *m)
{
	if (!m || strlen(m) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? m[i] != ':' : !g_ascii_isxdigit(m[i]))
			return false;
	return !(g_ascii_xdigit_value(m[1]) & 1);
}

static json_t *nic_entry(store_state *st, json_t *e, const store_object *self, json_t *so_far,
			 GError **error)
{
	static const char *const keys[] = { "network", "model", "mac", NULL };
	if (json_is_string(e))
		e = json_pack("{s:O}", "network", e);
	else
		json_incref(e);
	g_autoptr(json_t) own = e;
	if (!only_keys(e, keys, "NIC of a VM", error))
		return NULL;
	store_object *n = find(st, STORE_KIND_NETWORK, json_object_get(e, "network"), "virtual switch", error);
	const char *model = n ? choice(e, "model", "virtio|e1000|rtl8139", "virtio", "NIC model", error) : NULL;
	if (!model)
		return NULL;
	json_t *m = json_object_get(e, "mac");
	g_autofree char *mac = NULL;
	if (m && !json_is_null(m)) {
		if (!mac_format_ok(json_string_value(m))) {
			g_autofree char *shown = json_dumps(m, JSON_ENCODE_ANY);
			invalid(error, "The MAC address %s is not a unicast address xx:xx:xx:xx:xx:xx.", shown);
			return NULL;
		}
		mac = g_ascii_strdown(json_string_value(m), -1);
	} else {
		mac = herd_hw_mac_new(st, g_random_int);
	}
	size_t i;
	json_t *other;
	bool twice = false;
	json_array_foreach(so_far, i, other)
		twice |= g_strcmp0(json_string_value(json_object_get(other, "mac")), mac) == 0;
	if (!mac || twice || store_refs_mac_user(st, mac, self ? self->uuid : NULL)) {
		g_set_error(error, HERD_ERROR, HERD_ERR_CONFLICT, "MAC address %s is in use already.",
			    mac ? mac : "?");
		return NULL;
	}
	return json_pack("{s:s,s:s,s:s}", "network", n->uuid, "model", model, "mac", mac);
}

/* Set or clear (null) @key, an ISO in the CD-ROM or floppy drive. */
static bool iso_slot(store_state *st, json_t *req, json_t *hw, const char *key, const char *what,
		     GError **error)
{
	json_t *v = json_object_get(req, key);
	if (!v)
		return true;
	if (json_is_null(v)) {
		json_object_del(hw, key);
		return true;
	}
	store_object *iso = find(st, STORE_KIND_ISO, v, what, error);
	if (!iso)
		return false;
	json_object_set_new(hw, key, json_string(iso->uuid));
	return true;
}

static bool list_of(json_t *v, const char *key, GError **error)
{
	return !v || json_is_array(v) || invalid(error, "Field '%s' must be a list.", key);
}

/* Remove from @list (of {key: uuid, …}) the entries that @refs name. */
static bool remove_entries(store_state *st, json_t *list, json_t *refs, store_kind kind, const char *key,
			   const char *what, GError **error)
{
	size_t i;
	json_t *r;
	json_array_foreach(refs, i, r) {
		const char *s = json_string_value(r);
		store_object *o = s ? store_state_lookup(st, kind, s) : NULL;
		bool found = false;
		for (size_t j = json_array_size(list); j-- > 0;) {
			json_t *e = json_array_get(list, j);
			bool match = (o && g_strcmp0(json_string_value(json_object_get(e, key)), o->uuid) == 0) ||
				     (s && kind == STORE_KIND_NETWORK &&
				      g_ascii_strcasecmp(json_string_value(json_object_get(e, "mac")), s) == 0);
			if (match) {
				json_array_remove(list, j);
				found = true;
			}
		}
		if (!found)
			return invalid(error, "The VM has no %s '%s'.", what, s ? s : "?");
	}
	return true;
}

/*
 * The VM's new "hw": @vm's (NULL: a new VM's defaults) with @req's changes,
 * names made UUIDs, and everything an operator can get wrong refused.
 */
static json_t *hardware_build(store_state *st, const store_object *vm, json_t *req, GError **error)
{
	if (!only_keys(req, hardware_fields, "VM's hardware", error))
		return NULL;
	if (!vm && (json_object_get(req, "add_disks") || json_object_get(req, "remove_disks") ||
		    json_object_get(req, "add_nics") || json_object_get(req, "remove_nics"))) {
		invalid(error, "A new VM takes 'disks' and 'nics', not additions or removals.");
		return NULL;
	}
	const store_vm_hardware *cur = vm ? store_vm_of(vm)->hw : NULL;
	g_autoptr(json_t) hw = cur ? store_vm_hw_json(cur) :
				     json_pack("{s:[],s:[],s:s,s:s}", "disks", "nics", "firmware", "bios", "boot",
					       "disk");
	json_t *disks = json_object_get(hw, "disks"), *nics = json_object_get(hw, "nics");
	for (unsigned pass = 0; pass < 2; pass++) {
		const char *set = pass ? "nics" : "disks", *add = pass ? "add_nics" : "add_disks",
			   *rem = pass ? "remove_nics" : "remove_disks";
		json_t *list = pass ? nics : disks;
		json_t *rs = json_object_get(req, set), *ra = json_object_get(req, add),
		       *rr = json_object_get(req, rem);
		if (!list_of(rs, set, error) || !list_of(ra, add, error) || !list_of(rr, rem, error))
			return NULL;
		if (rs && (ra || rr)) {
			invalid(error, "Give '%s' (the whole list) or '%s'/'%s', not both.", set, add, rem);
			return NULL;
		}
		if (rs)
			json_array_clear(list);
		if (rr && !remove_entries(st, list, rr, pass ? STORE_KIND_NETWORK : STORE_KIND_DISK,
					  pass ? "network" : "disk", pass ? "NIC" : "disk", error))
			return NULL;
		size_t i;
		json_t *e;
		json_array_foreach(rs ? rs : ra, i, e) {
			json_t *entry = pass ? nic_entry(st, e, vm, list, error) : disk_entry(st, e, vm, error);
			if (!entry)
				return NULL;
			json_array_append_new(list, entry);
		}
	}
	size_t n_disks = json_array_size(disks);
	for (size_t i = 0; i < n_disks; i++)
		for (size_t j = 0; j < i; j++)
			if (json_equal(json_object_get(json_array_get(disks, i), "disk"),
				       json_object_get(json_array_get(disks, j), "disk"))) {
				invalid(error, "Disk %s is given twice.",
					store_state_get(st, STORE_KIND_DISK,
							json_string_value(json_object_get(json_array_get(disks, i), "disk")))
						->name);
				return NULL;
			}
	if (n_disks > STORE_VM_DISKS_MAX || json_array_size(nics) > STORE_VM_NICS_MAX) {
		invalid(error, "A VM has at most %d disks and %d NICs.", STORE_VM_DISKS_MAX, STORE_VM_NICS_MAX);
		return NULL;
	}
	if (!iso_slot(st, req, hw, "cdrom", "ISO", error) || !iso_slot(st, req, hw, "floppy", "floppy image", error))
		return NULL;
	const char *fw = choice(req, "firmware", "bios|uefi", json_string_value(json_object_get(hw, "firmware")),
				"firmware", error);
	if (!fw)
		return NULL;
	json_object_set_new(hw, "firmware", json_string(fw));
	json_t *boot = json_object_get(req, "boot");
	if (boot) {
		if (!store_vm_boot_ok(json_string_value(boot))) {
			g_autofree char *shown = json_dumps(boot, JSON_ENCODE_ANY);
			invalid(error, "The boot order %s is not a comma-separated list of disk, cdrom, network and floppy, each at most once.",
				shown);
			return NULL;
		}
		json_object_set(hw, "boot", boot);
	}
	return g_steal_pointer(&hw);
}

/* Memory ("2G", or bytes) and vCPUs of @body, each only if given. */
static bool sizes_parse(json_t *body, uint64_t *memory_mib, unsigned *vcpus, GError **error)
{
	json_t *m = json_object_get(body, "memory");
	if (m) {
		uint64_t bytes = 0;
		if (json_is_integer(m) && json_integer_value(m) > 0) {
			bytes = (uint64_t)json_integer_value(m);
			if (bytes > ((uint64_t)HERD_HW_MEMORY_MAX_MIB << 20)) {
				g_autofree char *max = herd_size_format((uint64_t)HERD_HW_MEMORY_MAX_MIB << 20);
				return invalid(error, "Memory may be at most %s.", max);
			}
		} else if (!json_is_string(m) ||
			   !herd_size_parse(json_string_value(m), HERD_HW_MEMORY_MAX_MIB << 20, "memory", &bytes,
					    error)) {
			return error && *error ? false : invalid(error, "Field 'memory' must be a size such as \"2G\".");
		}
		if (bytes % (1 << 20) || bytes < (HERD_HW_MEMORY_MIN_MIB << 20)) {
			g_autofree char *shown = herd_size_format(bytes);
			return invalid(error, "Memory must be whole MiB and at least %d MiB, not %s.",
				       HERD_HW_MEMORY_MIN_MIB, shown);
		}
		*memory_mib = bytes >> 20;
	}
	long long n;
	if (json_object_get(body, "vcpus")) {
		if (!api_get_int(body, "vcpus", 1, HERD_HW_VCPUS_MAX, &n, error))
			return false;
		*vcpus = (unsigned)n;
	}
	return true;
}

/* The XML of a VM @name/@uuid with @hw; NULL with the error. */
static char *make_xml(store_state *st, const char *name, const char *uuid, uint64_t memory_mib, unsigned vcpus,
		      const char *type, json_t *hw, GError **error)
{
	g_autoptr(json_t) data = json_pack("{s:O}", "hw", hw);
	/* The store's own check and typed view of it, as apply will see it. */
	if (!store_object_validate(STORE_KIND_VM, data, error))
		return NULL;
	void *typed = store_vm_parse(data);
	const store_vm *v = typed;
	herd_hw_domain d;
	char *xml = NULL;
	if (herd_hw_resolve(st, name, uuid, memory_mib, vcpus, type, v->hw, &d, error))
		xml = herd_hw_domain_xml(&d, error);
	herd_hw_domain_clear(&d);
	store_vm_free(typed);
	return xml;
}

void api_vm_create(http_request *req, api_ctx *a, json_t *body, const store_vm_attrs *attrs)
{
	g_autoptr(GError) err = NULL;
	store_state *st = api_state(a);
	const char *name = NULL;
	if (!api_get_string(body, "name", &name, &err) ||
	    (!name && !invalid(&err, "Field 'name' (the new VM's name) is missing.")) ||
	    !store_name_validate(STORE_KIND_VM, name, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (json_object_get(body, "xml")) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "Give 'xml' (herd vm define) or 'hardware' (herd vm create), not both.");
		return;
	}
	if (!api_require_store(req, a))
		return;
	if (store_state_get_by_name(st, STORE_KIND_VM, name)) {
		http_respond_errorf(req, HERD_ERR_CONFLICT, "VM %s exists already.", name);
		return;
	}
	uint64_t memory_mib = 0;
	unsigned vcpus = 1;
	if (!sizes_parse(body, &memory_mib, &vcpus, &err)) {
		http_respond_error(req, err);
		return;
	}
	if (!memory_mib) {
		http_respond_errorf(req, HERD_ERR_INVALID, "Field 'memory' (the VM's RAM, such as \"2G\") is missing.");
		return;
	}
	g_autoptr(json_t) hw = hardware_build(st, NULL, json_object_get(body, "hardware"), &err);
	char uuid[STORE_UUID_LEN + 1];
	store_uuid_generate(uuid);
	const char *type = store_vm_domain_type_name(store_settings_of(st)->vm_domain_type);
	g_autofree char *xml = hw ? make_xml(st, name, uuid, memory_mib, vcpus, type, hw, &err) : NULL;
	if (!xml) {
		http_respond_error(req, err);
		return;
	}
	store_vm_domain dom = { uuid, name, xml, type, memory_mib, vcpus };
	g_autoptr(json_t) cmd = store_vm_cmd_create_hw(&dom, g_steal_pointer(&hw), attrs);
	api_commit(req, a, cmd, 201, api_render_vm);
}

bool api_vm_hardware_requested(json_t *body)
{
	return json_object_get(body, "memory") || json_object_get(body, "vcpus") ||
	       json_object_get(body, "hardware");
}

void api_vm_set_hardware(http_request *req, api_ctx *a, store_object *vm, json_t *body,
			 const store_vm_attrs *attrs)
{
	g_autoptr(GError) err = NULL;
	store_state *st = api_state(a);
	const store_vm *v = store_vm_of(vm);
	if (!v->hw) {
		http_respond_errorf(req, HERD_ERR_CONFLICT,
				    "VM %s was defined from libvirt domain XML: change its memory, vCPUs and devices in its XML with 'herd vm dumpxml' and 'herd vm define'.",
				    vm->name);
		return;
	}
	uint64_t memory_mib = v->memory_mib;
	unsigned vcpus = v->vcpus;
	json_t *req_hw = json_object_get(body, "hardware");
	g_autoptr(json_t) empty = json_object();
	if (!sizes_parse(body, &memory_mib, &vcpus, &err)) {
		http_respond_error(req, err);
		return;
	}
	g_autoptr(json_t) hw = hardware_build(st, vm, req_hw ? req_hw : empty, &err);
	const char *type = v->type && *v->type ? v->type :
						 store_vm_domain_type_name(store_settings_of(st)->vm_domain_type);
	g_autofree char *xml = hw ? make_xml(st, vm->name, vm->uuid, memory_mib, vcpus, type, hw, &err) : NULL;
	if (!xml) {
		http_respond_error(req, err);
		return;
	}
	store_vm_domain dom = { vm->uuid, vm->name, xml, type, memory_mib, vcpus };
	g_autoptr(json_t) cmd = store_vm_cmd_set_hw(vm, &dom, g_steal_pointer(&hw), attrs);
	api_commit(req, a, cmd, 200, api_render_vm);
}

void api_vm_hardware_json(api_ctx *a, store_object *vm, json_t *out)
{
	const store_vm_hardware *hw = store_vm_of(vm)->hw;
	if (!hw)
		return;
	store_state *st = api_state(a);
	json_t *disks = json_array(), *nics = json_array();
	for (size_t i = 0; i < hw->n_disks; i++) {
		store_object *d = store_state_get(st, STORE_KIND_DISK, hw->disks[i].disk);
		json_array_append_new(disks, json_pack("{s:s,s:s?,s:s}", "disk", hw->disks[i].disk, "name",
						       d ? d->name : NULL, "bus", hw->disks[i].bus));
	}
	for (size_t i = 0; i < hw->n_nics; i++) {
		store_object *n = store_state_get(st, STORE_KIND_NETWORK, hw->nics[i].network);
		json_array_append_new(nics, json_pack("{s:s,s:s?,s:s,s:s}", "network", hw->nics[i].network,
						      "network_name", n ? n->name : NULL, "model",
						      hw->nics[i].model, "mac", hw->nics[i].mac));
	}
	store_object *cd = hw->cdrom ? store_state_get(st, STORE_KIND_ISO, hw->cdrom) : NULL;
	store_object *fl = hw->floppy ? store_state_get(st, STORE_KIND_ISO, hw->floppy) : NULL;
	json_object_set_new(out, "hardware",
			    json_pack("{s:o,s:o,s:s?,s:s?,s:s,s:s}", "disks", disks, "nics", nics, "cdrom",
				      cd ? cd->name : NULL, "floppy", fl ? fl->name : NULL, "firmware",
				      hw->firmware, "boot", hw->boot));
}
