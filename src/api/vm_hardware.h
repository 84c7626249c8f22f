/*
 * VMs that herd makes from their hardware (vm_hardware.c): create, the
 * hardware part of a set, and the hardware as the API shows it.
 */
#pragma once

#include "api/context.h"
#include "api/http.h"
#include "store/vm.h"

#include <jansson.h>
#include <stdbool.h>

/* POST /vms with "hardware": a new VM named by @body's "name", with @attrs. */
void api_vm_create(http_request *req, api_ctx *a, json_t *body, const store_vm_attrs *attrs);
/* Does a PUT /vms/{vm} @body change memory, vCPUs or hardware? */
bool api_vm_hardware_requested(json_t *body);
/* PUT /vms/{vm}: a new hardware configuration (and @attrs), one version. */
void api_vm_set_hardware(http_request *req, api_ctx *a, store_object *vm, json_t *body,
			 const store_vm_attrs *attrs);
/* @vm's hardware with names, into @out's "hardware" (nothing for a VM
 * defined from XML). */
void api_vm_hardware_json(api_ctx *a, store_object *vm, json_t *out);
