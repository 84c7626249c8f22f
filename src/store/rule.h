/*
 * An affinity rule as the replicated store holds it: a named set of VMs
 * (by UUID, two or more) that the scheduler keeps on one node (together)
 * or on different nodes (apart), strictly (never broken by a placement
 * herd chooses) or as a preference (soft).  A VM may be in several rules.
 * Apply checks that the VMs exist (store/refs.c) and refuses to delete a
 * VM that a rule names: the rule is deleted first, so that no rule ever
 * shrinks to a meaning the operator did not give it.  Read through
 * store_rule_of(); the scheduler's view is sched_rule (ha/sched.h).
 */
#pragma once

#include "store/object.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

#define STORE_RULE_VMS_MAX 64

typedef struct store_rule {
	bool apart;              /* "kind": "apart"; else "together" */
	bool strict;             /* "strict": true (the default); false: soft */
	const char **vms;        /* the VMs' UUIDs (borrowed from the data), NULL-terminated */
	size_t n_vms;
} store_rule;

const store_rule *store_rule_of(const store_object *o);
/* Does rule @r name the VM with UUID @vm? */
bool store_rule_has(const store_rule *r, const char *vm);

/* @vms: UUIDs, @n of them. */
json_t *store_rule_cmd_create(const char *uuid, const char *name, bool apart, bool strict,
			      const char *const *vms, size_t n);
json_t *store_rule_cmd_delete(const store_object *rule);

bool store_rule_validate(json_t *data, GError **error);
void *store_rule_parse(json_t *data);
void store_rule_free(void *typed);
