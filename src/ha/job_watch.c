#include "ha/job_watch.h"

#include <string.h>

void herd_job_step_clear(herd_job_step *s)
{
	g_free(s->error);
	g_free(s->line);
	memset(s, 0, sizeof(*s));
}

static json_int_t num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* How far the memory copy is, 0–99 (100 is for done): what is no longer
 * left of the guest's memory.  A later pass may send some again. */
static int copied_percent(json_t *m)
{
	json_int_t total = num(m, "memory_total"), left = num(m, "memory_remaining");
	if (total <= 0)
		return 0;
	return (int)CLAMP((total - MIN(left, total)) * 100 / total, 0, 99);
}

static char *mib(json_int_t bytes)
{
	return g_strdup_printf("%.0f MiB", (double)bytes / (1024.0 * 1024.0));
}

void herd_job_migrate_step(const store_object *job, const herd_job_migrate_facts *f, herd_job_step *out)
{
	const store_job *j = store_job_of(job);
	memset(out, 0, sizeof(*out));
	out->progress = -1;
	out->iteration = f->last_iteration;
	if (!f->vm) {
		out->end = STORE_JOB_FAILED;
		out->error = g_strdup_printf("VM %s was undefined while it migrated.", j->target);
		return;
	}
	const store_vm *v = store_vm_of(f->vm);
	const char *name = f->vm->name;
	if (v->move_to && g_strcmp0(v->move_to, j->to) == 0) {
		/* Under way. */
		if (j->cancel_by && !f->cancel_sent)
			out->cancel_now = true;
		if (!json_is_object(f->migration))
			return;
		out->progress = copied_percent(f->migration);
		int pass = (int)num(f->migration, "iteration");
		if (pass > f->last_iteration && num(f->migration, "memory_total") > 0) {
			g_autofree char *sent = mib(num(f->migration, "memory_processed"));
			g_autofree char *left = mib(num(f->migration, "memory_remaining"));
			g_autofree char *total = mib(num(f->migration, "memory_total"));
			out->line = g_strdup_printf("Memory pass %d: %s sent, %s of %s left, %.1f MiB/s.", pass, sent,
						    left, total,
						    (double)num(f->migration, "bandwidth") / (1024.0 * 1024.0));
			out->iteration = pass;
		}
		return;
	}
	if (v->move_to) {
		out->end = STORE_JOB_FAILED;
		out->error = g_strdup_printf("VM %s is being moved to node %s instead, by another request.", name,
					     v->move_to);
		return;
	}
	bool runs = f->rt_state && (strcmp(f->rt_state, "running") == 0 || strcmp(f->rt_state, "paused") == 0);
	if (g_strcmp0(v->node, j->to) == 0) {
		if (runs && g_strcmp0(f->rt_node, j->to) == 0) {
			out->end = STORE_JOB_DONE;
			out->line = g_strdup_printf("VM %s runs on node %s now.", name, j->to);
		}
		return; /* assigned there: its state follows */
	}
	const char *where = f->rt_node ? f->rt_node : v->node ? v->node : "?";
	if (j->cancel_by) {
		out->end = STORE_JOB_CANCELLED;
		out->error = g_strdup_printf("User %s cancelled the migration; VM %s runs on node %s.", j->cancel_by,
					     name, where);
		return;
	}
	out->end = STORE_JOB_FAILED;
	out->error = g_strdup_printf("VM %s was not migrated to node %s%s%s; it runs on node %s.", name, j->to,
				     f->rt_error ? ": " : "", f->rt_error ? f->rt_error : "", where);
}

void herd_job_evacuate_step(const store_object *job, const herd_job_evacuate_facts *f, int64_t now_ms,
			    herd_job_step *out)
{
	const store_job *j = store_job_of(job);
	memset(out, 0, sizeof(*out));
	out->progress = -1;
	if (!f->node) {
		out->end = STORE_JOB_FAILED;
		out->error = g_strdup_printf("Node %s was removed from the cluster while its VMs left it.", j->target);
		return;
	}
	const store_node *n = store_node_of(f->node);
	if (n->mode == STORE_NODE_ONLINE) {
		/* Put online by its owner's cancel, or by anyone's herd node
		 * online: either way the evacuation was called off. */
		out->end = STORE_JOB_CANCELLED;
		if (j->cancel_by)
			out->error = g_strdup_printf("User %s cancelled the evacuation; node %s is online again, "
						     "%u VM(s) left on it.", j->cancel_by, j->target, f->remaining);
		else
			out->error = g_strdup_printf("Node %s was put online again before it was empty; %u VM(s) "
						     "left on it.", j->target, f->remaining);
		return;
	}
	if (j->cancel_by) {
		out->cancel_now = !f->cancel_sent;
		return;
	}
	if (f->remaining == 0) {
		out->end = STORE_JOB_DONE;
		out->line = g_strdup_printf("No VM is left on node %s.", j->target);
		return;
	}
	unsigned total = MAX(j->total, f->remaining);
	int progress = (int)MIN(99u, (total - f->remaining) * 100u / total);
	if (store_job_update_due(j, progress, now_ms)) {
		out->progress = progress;
		out->line = g_strdup_printf("%u of %u VM(s) have left node %s.", total - f->remaining, total, j->target);
	}
}

char *herd_job_lost(const store_job *job, const store_object *node, bool in_group)
{
	if (job->state != STORE_JOB_RUNNING)
		return NULL;
	if (!node)
		return g_strdup_printf("Node %s, which ran the job, is no longer a node of the cluster.", job->node);
	if (store_node_of(node)->down)
		return g_strdup_printf("Node %s, which ran the job, went down (fenced or confirmed off).",
				       job->node);
	if (!in_group)
		return g_strdup_printf("Node %s, which ran the job, left the cluster (its herd stopped or was "
				       "cut off) before the job ended.", job->node);
	return NULL;
}

char *herd_job_orphaned(const store_job *job, const char *boot)
{
	if (job->state != STORE_JOB_RUNNING || !job->boot || strcmp(job->boot, boot) == 0)
		return NULL;
	bool migrate = strcmp(job->kind, "migrate") == 0;
	return g_strdup_printf("herd on node %s restarted while the job ran; how far it got is not known%s",
			       job->node, migrate ? " ('herd vm info' shows where the VM runs)." : ".");
}

static json_int_t sync_num(json_t *san, const char *key)
{
	return json_integer_value(json_object_get(json_object_get(san, "sync"), key));
}

static const char *sync_role(json_t *san)
{
	return json_string_value(json_object_get(json_object_get(san, "sync"), "role"));
}

/* "12.5 MiB" */
static char *mib_of(json_int_t bytes)
{
	return g_strdup_printf("%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

char *herd_job_sync_begins(const herd_job_sync_facts *f, const char *me, const char **owner)
{
	if (!f->disk || g_strcmp0(sync_role(f->san), "source") != 0 || sync_num(f->san, "total") <= 0)
		return NULL;
	bool full = g_strcmp0(json_string_value(json_object_get(f->san, "decision")), "source-full") == 0;
	*owner = f->peer_discarded && f->sync_by ? f->sync_by : "system";
	g_autofree char *size = mib_of(sync_num(f->san, "total"));
	return g_strdup_printf("Sync of disk %s from %s to %s started: %s, %s to copy.", f->disk, me, f->peer,
			       full ? "a full sync (every block)" : "the regions that differ (dirty bitmap)", size);
}

/* Why herd-san's state @san ends a sync that ran. */
static char *interrupted(const herd_job_sync_facts *f, json_t *san)
{
	const char *conn = json_string_value(json_object_get(san, "conn"));
	const char *disk = json_string_value(json_object_get(json_object_get(san, "disk"), "state"));
	if (disk)
		return g_strdup_printf("the local disk under the source replica failed (%s)", disk);
	if (json_is_true(json_object_get(san, "peer_diskless")))
		return g_strdup_printf("the local disk under node %s's replica failed (it is detached)", f->peer);
	if (g_strcmp0(sync_role(san), "target") == 0)
		return g_strdup_printf("node %s's replica became the newer one", f->peer);
	if (g_strcmp0(conn, "splitbrain") == 0 || g_strcmp0(conn, "unrelated") == 0)
		return g_strdup_printf("the replicas refuse to connect (%s)", conn);
	return g_strdup_printf("the link to node %s was lost", f->peer);
}

void herd_job_sync_step(const store_object *job, const herd_job_sync_facts *f, int64_t now_ms,
			herd_job_step *out)
{
	const store_job *j = store_job_of(job);
	memset(out, 0, sizeof(*out));
	out->progress = -1;
	if (!f->disk) {
		out->end = STORE_JOB_FAILED;
		out->error = g_strdup_printf("Disk %s was deleted while it was synchronised.", j->target);
		return;
	}
	if (!f->san)
		return; /* herd-san has not said yet (herdd or herd-san restarted) */
	const char *conn = json_string_value(json_object_get(f->san, "conn"));
	const char *role = sync_role(f->san);
	if (g_strcmp0(role, "source") == 0) {
		json_int_t total = sync_num(f->san, "total"), done = sync_num(f->san, "done");
		if (total > 0) {
			int progress = (int)MIN(99, MIN(done, total) * 100 / total);
			if (store_job_update_due(j, progress, now_ms))
				out->progress = progress;
		}
		return;
	}
	double secs = (double)MAX(0, now_ms - job->created_ms) / 1000.0;
	if (!role && g_strcmp0(conn, "connected") == 0 &&
	    !json_object_get(json_object_get(f->san, "disk"), "state") &&
	    !json_is_true(json_object_get(f->san, "peer_diskless"))) {
		g_autofree char *copied = mib_of(json_integer_value(json_object_get(f->san, "resynced")));
		out->end = STORE_JOB_DONE;
		out->line = g_strdup_printf("Done: %s copied in %.1f s; the replicas of disk %s on %s and %s are "
					    "identical.", copied, secs, f->disk, j->node, f->peer);
		return;
	}
	g_autofree char *why = interrupted(f, f->san);
	out->end = STORE_JOB_FAILED;
	out->error = g_strdup_printf("Interrupted at %d %% after %.1f s: %s. The sync goes on, as a new job, once "
				     "the replicas connect again.", j->progress, secs, why);
}
