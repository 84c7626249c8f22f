/*
 * The hardware options of herd vm create and herd vm set, made into the
 * API's fields, and a VM's hardware as herd vm info shows it.
 */
#include "cli/vm_hardware.h"

#include <stdio.h>
#include <string.h>

cli_vm_hw_opts cli_vm_hw = { .vcpus = -1 };

/* "NAME[,key=value…]" as {@first: NAME, key: value…}; only @keys allowed. */
static json_t *item(const char *option, const char *arg, const char *first, const char *const *keys)
{
	g_auto(GStrv) parts = g_strsplit(arg, ",", -1);
	if (!parts[0] || !*parts[0]) {
		fprintf(stderr, "herd vm: --%s needs a name: '%s'.\n", option, arg);
		return NULL;
	}
	json_t *o = json_pack("{s:s}", first, parts[0]);
	for (char **p = parts + 1; *p; p++) {
		char *eq = strchr(*p, '=');
		if (eq)
			*eq = '\0';
		if (!eq || !g_strv_contains(keys, *p) || !eq[1]) {
			g_autofree char *allowed = g_strjoinv("=…, ", (char **)keys);
			fprintf(stderr, "herd vm: --%s %s: '%s%s%s' is not one of %s=….\n", option, arg, *p,
				eq ? "=" : "", eq ? eq + 1 : "", allowed);
			json_decref(o);
			return NULL;
		}
		json_object_set_new(o, *p, json_string(eq + 1));
	}
	return o;
}

static bool items(json_t *hw, const char *key, const char *option, char **args, const char *first,
		  const char *const *keys)
{
	if (!args)
		return true;
	json_t *list = json_array();
	json_object_set_new(hw, key, list);
	for (char **a = args; *a; a++) {
		json_t *o = keys ? item(option, *a, first, keys) : json_string(*a);
		if (!o)
			return false;
		json_array_append_new(list, o);
	}
	return true;
}

static bool contradict(bool a, bool b, const char *what)
{
	if (a && b)
		fprintf(stderr, "herd vm: %s contradict each other.\n", what);
	return a && b;
}

bool cli_vm_hardware_body(json_t *body, bool for_set)
{
	static const char *const disk_keys[] = { "bus", NULL };
	static const char *const nic_keys[] = { "model", "mac", NULL };
	cli_vm_hw_opts *o = &cli_vm_hw;
	json_t *hw = json_object();
	json_object_set_new(body, "hardware", hw);
	if (o->memory)
		json_object_set_new(body, "memory", json_string(o->memory));
	if (o->vcpus != -1)
		json_object_set_new(body, "vcpus", json_integer(o->vcpus));
	if (contradict(o->cdrom, o->eject, "--cdrom and --eject") ||
	    contradict(o->floppy, o->no_floppy, "--floppy and --no-floppy") ||
	    contradict(o->disks, o->add_disks || o->remove_disks, "--disk (the whole list) and --add-disk/--remove-disk") ||
	    contradict(o->networks, o->add_networks || o->remove_networks,
		       "--network (the whole list) and --add-network/--remove-network"))
		return false;
	if (!items(hw, "disks", "disk", o->disks, "disk", disk_keys) ||
	    !items(hw, "nics", "network", o->networks, "network", nic_keys) ||
	    !items(hw, "add_disks", "add-disk", o->add_disks, "disk", disk_keys) ||
	    !items(hw, "add_nics", "add-network", o->add_networks, "network", nic_keys) ||
	    !items(hw, "remove_disks", "remove-disk", o->remove_disks, NULL, NULL) ||
	    !items(hw, "remove_nics", "remove-network", o->remove_networks, NULL, NULL))
		return false;
	if (o->cdrom)
		json_object_set_new(hw, "cdrom", json_string(o->cdrom));
	if (o->eject)
		json_object_set_new(hw, "cdrom", json_null());
	if (o->floppy)
		json_object_set_new(hw, "floppy", json_string(o->floppy));
	if (o->no_floppy)
		json_object_set_new(hw, "floppy", json_null());
	if (o->firmware)
		json_object_set_new(hw, "firmware", json_string(o->firmware));
	if (o->boot)
		json_object_set_new(hw, "boot", json_string(o->boot));
	if (for_set && json_object_size(hw) == 0)
		json_object_del(body, "hardware");
	return true;
}

static const char *text(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

void cli_vm_hardware_print(json_t *vm)
{
	json_t *hw = json_object_get(vm, "hardware");
	if (!json_is_object(hw))
		return;
	printf("Firmware:          %s\n", text(hw, "firmware"));
	printf("Boot order:        %s\n", text(hw, "boot"));
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(hw, "disks"), i, e)
		printf("Disk %zu:            %s (%s)\n", i + 1, text(e, "name") ?: text(e, "disk"), text(e, "bus"));
	json_array_foreach(json_object_get(hw, "nics"), i, e)
		printf("NIC %zu:             %s on %s (%s)\n", i + 1, text(e, "mac"),
		       text(e, "network_name") ?: text(e, "network"), text(e, "model"));
	printf("CD-ROM:            %s\n", text(hw, "cdrom") ?: "(empty)");
	if (text(hw, "floppy"))
		printf("Floppy:            %s\n", text(hw, "floppy"));
	json_t *pending = json_object_get(vm, "pending");
	if (json_array_size(pending) > 0) {
		GString *s = g_string_new(NULL);
		json_array_foreach(pending, i, e)
			g_string_append_printf(s, "%s%s", i ? ", " : "", json_string_value(e));
		printf("Pending:           %s (applied at the next start)\n", s->str);
		g_string_free(s, TRUE);
	}
}
