#define G_LOG_DOMAIN "api"
#include "api/vm_wait.h"

#include "api/routes.h"
#include "common/error.h"
#include "store/cluster.h"
#include "store/vm.h"

#include <string.h>

typedef struct {
	http_request *req;
	api_ctx *a;
	char uuid[37];
	api_vm_condition cond;
	char *arg;
	const char *what;
	unsigned timeout_s;
	gint64 deadline_us;     /* once committed */
	bool want_running;      /* what the VM was to be once the command was committed */
	guint source;           /* the poll */
	char job[STORE_UUID_LEN + 1]; /* the job the command made, or "" */
} vm_wait;

/* The VM as the answer shows it, with the job the request made. */
static json_t *answer_json(vm_wait *w, store_object *vm)
{
	json_t *j = api_vm_json(w->a, vm, NULL);
	store_object *job = w->job[0] ? store_state_get(api_state(w->a), STORE_KIND_JOB, w->job) : NULL;
	if (job)
		json_object_set_new(j, "job", api_job_json(w->a, job, false));
	return j;
}

/* @w is answered (or let go of): no more polls. */
static void wait_free(vm_wait *w)
{
	g_free(w->arg);
	g_free(w);
}

static void wait_done(vm_wait *w)
{
	g_hash_table_remove(w->a->vm_waits, w);
	wait_free(w);
}

void api_vm_waits_clear(api_ctx *a)
{
	if (!a->vm_waits)
		return;
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, a->vm_waits);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		vm_wait *w = key;
		g_source_remove(w->source);
		http_respond_errorf(w->req, HERD_ERR_UNAVAILABLE, "The daemon is shutting down.");
		g_hash_table_iter_remove(&it);
		wait_free(w);
	}
	g_clear_pointer(&a->vm_waits, g_hash_table_destroy);
}

static gboolean on_vm_wait(gpointer data)
{
	vm_wait *w = data;
	api_ctx *a = w->a;
	store_object *vm = store_state_get(api_state(a), STORE_KIND_VM, w->uuid);
	g_autofree char *failure = NULL;
	api_vm_outcome got = API_VM_WAITING;
	if (!vm) {
		http_respond_errorf(w->req, HERD_ERR_NOT_FOUND, "VM %s was undefined meanwhile.", w->uuid);
	} else if (store_vm_of(vm)->target_running != w->want_running) {
		/* Overtaken: nothing will get it there now. */
		http_respond_errorf(w->req, HERD_ERR_CONFLICT,
				    "VM %s is no longer to be %s: another command %s it meanwhile.",
				    vm->name, w->what, w->want_running ? "stopped" : "started");
	} else if ((got = w->cond(a, vm, w->arg, &failure)) == API_VM_THERE) {
		http_respond_json(w->req, 200, answer_json(w, vm));
	} else if (got == API_VM_FAILED) {
		http_respond_errorf(w->req, HERD_ERR_CONFLICT, "%s", failure);
	} else if (g_get_monotonic_time() >= w->deadline_us) {
		herd_vm_runtime rt;
		herd_ha_vm_runtime(a->ha, vm, &rt);
		const char *why = rt.alert ? rt.alert : rt.error;
		http_respond_errorf(w->req, HERD_ERR_TIMEOUT, "VM %s is not %s yet%s%s", vm->name, w->what,
				    why ? ": " : ".", why ? why : "");
	} else {
		return G_SOURCE_CONTINUE;
	}
	wait_done(w);
	return G_SOURCE_REMOVE;
}

/* Answer the (suspended) request of @w once its condition holds, or after
 * its timeout, or as soon as another command changed what @vm is to be. */
static void wait_for(vm_wait *w, store_object *vm)
{
	w->want_running = store_vm_of(vm)->target_running;
	w->deadline_us = g_get_monotonic_time() + (gint64)w->timeout_s * G_USEC_PER_SEC;
	w->source = g_timeout_add(20, on_vm_wait, w);
	if (!w->a->vm_waits)
		w->a->vm_waits = g_hash_table_new(g_direct_hash, g_direct_equal);
	g_hash_table_add(w->a->vm_waits, w);
}

api_vm_outcome api_vm_is_running(api_ctx *a, store_object *vm, const char *arg, char **failure)
{
	herd_vm_runtime rt;
	herd_ha_vm_runtime(a->ha, vm, &rt);
	return rt.node && g_strcmp0(rt.node, store_vm_of(vm)->node) == 0 &&
			       (strcmp(rt.state, "running") == 0 || strcmp(rt.state, "paused") == 0)
		       ? API_VM_THERE
		       : API_VM_WAITING;
}

api_vm_outcome api_vm_is_stopped(api_ctx *a, store_object *vm, const char *arg, char **failure)
{
	return herd_ha_vm_active(a->ha, vm->uuid, NULL) ? API_VM_WAITING : API_VM_THERE;
}

static void on_committed(json_t *result, const GError *error, gpointer user)
{
	vm_wait *w = user;
	store_object *vm = store_state_get(herd_cluster_state(w->a->cluster), STORE_KIND_VM, w->uuid);
	if (error) {
		http_respond_error(w->req, error);
	} else if (!w->cond || !vm) {
		http_respond_json(w->req, 200, vm ? answer_json(w, vm) : json_incref(result));
	} else {
		herd_ha_kick(w->a->ha);
		wait_for(w, vm);
		return;
	}
	wait_free(w);
}

void api_vm_commit_and_wait(http_request *req, api_ctx *a, store_object *vm, json_t *cmd,
			    api_vm_condition cond, const char *arg, const char *what, unsigned timeout_s)
{
	api_vm_commit_job_and_wait(req, a, vm, cmd, NULL, cond, arg, what, timeout_s);
}

void api_vm_commit_job_and_wait(http_request *req, api_ctx *a, store_object *vm, json_t *cmd,
				const char *job, api_vm_condition cond, const char *arg, const char *what,
				unsigned timeout_s)
{
	g_autoptr(GError) err = NULL;
	vm_wait *w = g_new0(vm_wait, 1);
	w->req = req;
	w->a = a;
	g_strlcpy(w->uuid, vm->uuid, sizeof(w->uuid));
	w->cond = cond;
	w->arg = g_strdup(arg);
	w->what = what;
	w->timeout_s = timeout_s;
	g_strlcpy(w->job, job ? job : "", sizeof(w->job));
	if (!herd_cluster_submit(a->cluster, cmd, http_request_user(req), on_committed, w, &err)) {
		wait_free(w);
		http_respond_error(req, err);
		return;
	}
	http_request_suspend(req);
}
