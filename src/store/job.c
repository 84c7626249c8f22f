#include "store/job.h"

#include "common/error.h"
#include "store/command.h"
#include "store/fields.h"

#include <string.h>

static const char *const state_names[] = { "running", "done", "failed", "cancelled" };
#define JOB_KINDS "migrate|evacuate|disk-create|disk-resize|iso-upload|esan-sync"

const char *store_job_state_name(store_job_state s)
{
	return (unsigned)s < G_N_ELEMENTS(state_names) ? state_names[s] : "?";
}

bool store_job_state_parse(const char *s, store_job_state *out)
{
	for (unsigned i = 0; s && i < G_N_ELEMENTS(state_names); i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*out = (store_job_state)i;
			return true;
		}
	}
	return false;
}

bool store_job_kind_cancellable(const char *kind)
{
	return g_strcmp0(kind, "migrate") == 0 || g_strcmp0(kind, "evacuate") == 0 ||
	       g_strcmp0(kind, "iso-upload") == 0;
}

void *store_job_parse(json_t *d)
{
	store_job *j = g_new0(store_job, 1);
	j->kind = field_text(d, "kind");
	j->target = field_text(d, "target");
	j->target_uuid = field_str(d, "target_uuid");
	j->to = field_str(d, "to");
	j->total = (unsigned)field_uint(d, "total", 0);
	j->owner = field_text(d, "owner");
	j->node = field_text(d, "node");
	if (!store_job_state_parse(field_str(d, "state"), &j->state))
		j->state = STORE_JOB_FAILED;
	j->progress = (int)field_uint(d, "progress", 0);
	j->updated_ms = (int64_t)field_uint(d, "updated_ms", 0);
	j->finished_ms = (int64_t)field_uint(d, "finished_ms", 0);
	j->error = field_str(d, "error");
	j->cancel_by = field_str(d, "cancel_by");
	j->boot = field_str(d, "boot");
	j->log = json_object_get(d, "log");
	if (!json_is_array(j->log))
		j->log = NULL;
	return j;
}

void store_job_free(void *typed)
{
	g_free(typed);
}

const store_job *store_job_of(const store_object *o)
{
	g_assert(o->kind == STORE_KIND_JOB);
	return o->typed;
}

static bool invalid(GError **error, const char *msg)
{
	g_set_error_literal(error, HERD_ERROR, HERD_ERR_INVALID, msg);
	return false;
}

static bool check_log(json_t *log, GError **error)
{
	if (!log)
		return true;
	if (!json_is_array(log) || json_array_size(log) > STORE_JOB_LOG_LINES)
		return invalid(error, "A job's log (log) is a list of at most 100 lines.");
	size_t i;
	json_t *line;
	json_array_foreach(log, i, line) {
		json_t *text = json_object_get(line, "text");
		json_t *ms = json_object_get(line, "ms");
		if (!json_is_object(line) || !json_is_string(text) || !json_is_integer(ms) ||
		    json_integer_value(ms) < 0 || !g_utf8_validate(json_string_value(text), -1, NULL) ||
		    g_utf8_strlen(json_string_value(text), -1) > STORE_JOB_LINE_CHARS)
			return invalid(error, "A job's log line is {\"ms\": time, \"text\": at most 200 characters}.");
	}
	return true;
}

bool store_job_validate(json_t *d, GError **error)
{
	static const char *const text[] = { "kind", "target", "target_uuid", "to", "owner",
					    "node", "error", "cancel_by", "boot" };
	static const char *const times[] = { "updated_ms", "finished_ms" };
	for (size_t i = 0; i < G_N_ELEMENTS(text); i++)
		if (!check_string(d, "job", text[i], error))
			return false;
	for (size_t i = 0; i < G_N_ELEMENTS(times); i++)
		if (!check_uint(d, "job", times[i], 0, INT64_MAX, error))
			return false;
	if (!check_choice(d, "job", "kind", JOB_KINDS, error) ||
	    !check_choice(d, "job", "state", "running|done|failed|cancelled", error) ||
	    !check_uint(d, "job", "progress", 0, 100, error) || !check_uint(d, "job", "total", 0, 1000000, error) || !check_log(json_object_get(d, "log"), error))
		return false;
	if (!field_str(d, "kind") || !field_str(d, "target") || !field_str(d, "owner") ||
	    !field_str(d, "node") || !field_str(d, "state"))
		return invalid(error, "A job needs a kind, a target, an owner, a node and a state.");
	bool running = strcmp(field_str(d, "state"), "running") == 0;
	if (running != !json_object_get(d, "finished_ms"))
		return invalid(error, "A job has a finishing time (finished_ms) exactly when it is no longer running.");
	return true;
}

static gint newest_first(gconstpointer a, gconstpointer b)
{
	const store_object *x = *(store_object *const *)a, *y = *(store_object *const *)b;
	if (x->created_ms != y->created_ms)
		return x->created_ms < y->created_ms ? 1 : -1;
	return strcmp(x->uuid, y->uuid);
}

GPtrArray *store_job_list(store_state *st)
{
	GPtrArray *all = store_state_list(st, STORE_KIND_JOB);
	g_ptr_array_sort(all, newest_first);
	return all;
}

/* @text as a log line: valid UTF-8, at most STORE_JOB_LINE_CHARS characters. */
static json_t *log_line(const char *text, int64_t now_ms)
{
	g_autofree char *valid = g_utf8_make_valid(text, -1);
	if (g_utf8_strlen(valid, -1) > STORE_JOB_LINE_CHARS) {
		char *cut = g_utf8_substring(valid, 0, STORE_JOB_LINE_CHARS - 1);
		g_free(valid);
		valid = g_strconcat(cut, "…", NULL);
		g_free(cut);
	}
	return json_pack("{s:I,s:s}", "ms", (json_int_t)now_ms, "text", valid);
}

/* @o's log with @line appended, the oldest lines dropped beyond the bound. */
static json_t *log_with(const store_object *o, const char *line, int64_t now_ms)
{
	const store_job *j = store_job_of(o);
	json_t *log = j->log ? json_copy(j->log) : json_array();
	json_array_append_new(log, log_line(line, now_ms));
	while (json_array_size(log) > STORE_JOB_LOG_LINES)
		json_array_remove(log, 0);
	return log;
}

json_t *store_job_cmd_create(const char *kind, const char *target, const char *target_uuid,
			     const char *to, unsigned total, const char *owner, const char *node,
			     const char *line, int64_t now_ms, char *uuid_out)
{
	store_uuid_generate(uuid_out);
	json_t *d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:I}", "kind", kind, "target", target, "owner",
			      owner, "node", node, "state", "running", "progress", 0, "updated_ms",
			      (json_int_t)now_ms);
	if (target_uuid)
		json_object_set_new(d, "target_uuid", json_string(target_uuid));
	if (to)
		json_object_set_new(d, "to", json_string(to));
	if (total)
		json_object_set_new(d, "total", json_integer(total));
	json_t *log = json_array();
	json_array_append_new(log, log_line(line, now_ms));
	json_object_set_new(d, "log", log);
	char name[9];
	g_strlcpy(name, uuid_out, sizeof(name));
	return store_cmd_create(STORE_KIND_JOB, uuid_out, name, d);
}

store_object *store_job_running(store_state *st, const char *kind, const char *target_uuid)
{
	g_autoptr(GPtrArray) jobs = store_state_list(st, STORE_KIND_JOB);
	for (guint i = 0; i < jobs->len; i++) {
		const store_job *j = store_job_of(jobs->pdata[i]);
		if (j->state == STORE_JOB_RUNNING && strcmp(j->kind, kind) == 0 &&
		    g_strcmp0(j->target_uuid, target_uuid) == 0)
			return jobs->pdata[i];
	}
	return NULL;
}

json_t *store_job_cmd_update(const store_object *o, int progress, const char *line, int64_t now_ms)
{
	json_t *patch = json_pack("{s:I}", "updated_ms", (json_int_t)now_ms);
	if (progress >= 0)
		json_object_set_new(patch, "progress", json_integer(CLAMP(progress, 0, 100)));
	if (line)
		json_object_set_new(patch, "log", log_with(o, line, now_ms));
	json_t *cmd = store_cmd_patch(STORE_KIND_JOB, o->uuid, patch);
	store_cmd_if_version(cmd, o->version);
	return cmd;
}

json_t *store_job_cmd_adopt(const store_object *o, const char *boot, int64_t now_ms)
{
	json_t *cmd = store_cmd_patch(STORE_KIND_JOB, o->uuid, json_pack("{s:s}", "boot", boot));
	store_cmd_if_version(cmd, o->version);
	return cmd;
}

json_t *store_job_cmd_finish(const store_object *o, store_job_state state, const char *error,
			     int64_t now_ms)
{
	g_assert(state != STORE_JOB_RUNNING);
	const char *line = error ? error : state == STORE_JOB_DONE ? "Done." : "";
	g_autofree char *text = g_strdup_printf("%s%s", state == STORE_JOB_FAILED ? "Failed: " :
						      state == STORE_JOB_CANCELLED ? "Cancelled: " : "",
						line ? line : "");
	json_t *patch = json_pack("{s:s,s:I,s:I,s:o}", "state", store_job_state_name(state), "finished_ms",
				  (json_int_t)now_ms, "updated_ms", (json_int_t)now_ms, "log",
				  log_with(o, text, now_ms));
	if (state == STORE_JOB_DONE)
		json_object_set_new(patch, "progress", json_integer(100));
	if (error && state != STORE_JOB_DONE)
		json_object_set_new(patch, "error", json_string(error));
	json_t *cmd = store_cmd_patch(STORE_KIND_JOB, o->uuid, patch);
	store_cmd_if_version(cmd, o->version);
	return cmd;
}

json_t *store_job_cmd_cancel(const store_object *o, const char *user, int64_t now_ms)
{
	g_autofree char *line = g_strdup_printf("User %s asked to cancel it.", user);
	json_t *cmd = store_cmd_patch(STORE_KIND_JOB, o->uuid,
				      json_pack("{s:s,s:o}", "cancel_by", user, "log", log_with(o, line, now_ms)));
	store_cmd_if_version(cmd, o->version);
	return cmd;
}

bool store_job_update_due(const store_job *j, int progress, int64_t now_ms)
{
	return j->state == STORE_JOB_RUNNING && progress != j->progress &&
	       now_ms - j->updated_ms >= STORE_JOB_UPDATE_MS;
}

json_t *store_job_cmd_prune(store_state *st, int64_t now_ms)
{
	g_autoptr(GPtrArray) jobs = store_job_list(st);
	json_t *ops = json_array();
	unsigned kept = 0;
	for (guint i = 0; i < jobs->len; i++) {
		const store_object *o = jobs->pdata[i];
		const store_job *j = store_job_of(o);
		if (j->state == STORE_JOB_RUNNING)
			continue;
		if (++kept > STORE_JOB_KEEP || now_ms - j->finished_ms > STORE_JOB_KEEP_MS)
			json_array_append_new(ops, store_cmd_delete(STORE_KIND_JOB, o->uuid, o->version));
	}
	if (json_array_size(ops) == 0) {
		json_decref(ops);
		return NULL;
	}
	return store_cmd_batch(ops);
}
