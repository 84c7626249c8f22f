/*
 * A VM request that waits until the cluster got the VM there: commit a
 * change, then answer once a condition holds (the VM runs where assigned,
 * is stopped, arrived at a live migration's destination), or fails, or
 * the time is up, or another command changed what the VM is to be.
 */
#pragma once

#include "api/common.h"

typedef enum {
	API_VM_WAITING = 0,
	API_VM_THERE,           /* answered with the VM */
	API_VM_FAILED,          /* answered with *failure (CONFLICT) */
} api_vm_outcome;

/* Has @vm got there (@arg: the caller's, e.g. a destination)?  *@failure
 * (g_free) with API_VM_FAILED. */
typedef api_vm_outcome (*api_vm_condition)(api_ctx *a, store_object *vm, const char *arg,
					   char **failure);

/* Runs on its assigned node (running or paused). */
api_vm_outcome api_vm_is_running(api_ctx *a, store_object *vm, const char *arg, char **failure);
/* Runs nowhere. */
api_vm_outcome api_vm_is_stopped(api_ctx *a, store_object *vm, const char *arg, char **failure);

/* Commit @cmd for @vm, then wait until @cond holds (asked with a copy of
 * @arg, may be NULL), at most @timeout_s (answer at once with the VM if
 * @cond is NULL); @what names the goal in messages ("running").  @req is
 * suspended meanwhile. */
void api_vm_commit_and_wait(http_request *req, api_ctx *a, store_object *vm, json_t *cmd,
			    api_vm_condition cond, const char *arg, const char *what, unsigned timeout_s);
/* The same for a @cmd that also creates job @job (a UUID): the answer
 * shows it ("job"). */
void api_vm_commit_job_and_wait(http_request *req, api_ctx *a, store_object *vm, json_t *cmd,
				const char *job, api_vm_condition cond, const char *arg, const char *what,
				unsigned timeout_s);
