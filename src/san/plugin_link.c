#include "common/json.h"
#include "san/plugin_link.h"

#include "common/log.h"
#include "san/jsonl.h"
#include "san/listen.h"

#include <errno.h>

struct san_plugin_link {
	char *ctl_path;
	const san_plugin_link_ops *ops;
	void *data;
	bool running;
	san_jsonl *conn;
	GQueue waiting;		/* san_answer* (NULL entries for internal requests) */
	guint retry_timer, answer_timer;
	int last_errno;		/* of the last failed connect, logged once per kind */
};

static void try_connect(san_plugin_link *l);

static gboolean on_retry(void *data)
{
	san_plugin_link *l = data;
	l->retry_timer = 0;
	try_connect(l);
	return G_SOURCE_REMOVE;
}

static void fail_waiting(san_plugin_link *l, const char *why)
{
	san_answer *a;
	while (!g_queue_is_empty(&l->waiting)) {
		a = g_queue_pop_head(&l->waiting);
		if (a)
			san_answer_error(a, "The volume's nbdkit did not answer: %s.", why);
		san_answer_unref(a);
	}
	if (l->answer_timer) {
		g_source_remove(l->answer_timer);
		l->answer_timer = 0;
	}
}

static void disconnect(san_plugin_link *l, const char *why)
{
	if (l->conn) {
		log_info("%s: control connection closed (%s)", l->ctl_path, why);
		san_jsonl_free(l->conn);
		l->conn = NULL;
	}
	fail_waiting(l, why);
	if (l->running && !l->retry_timer)
		l->retry_timer = g_timeout_add(SAN_PLUGIN_RECONNECT_MS, on_retry, l);
}

static gboolean on_answer_timeout(void *data)
{
	san_plugin_link *l = data;
	l->answer_timer = 0;
	disconnect(l, "no answer within 10 s");
	return G_SOURCE_REMOVE;
}

static void arm_answer_timer(san_plugin_link *l)
{
	if (l->answer_timer) {
		g_source_remove(l->answer_timer);
		l->answer_timer = 0;
	}
	if (!g_queue_is_empty(&l->waiting))
		l->answer_timer = g_timeout_add(SAN_PLUGIN_ANSWER_MS, on_answer_timeout, l);
}

static void on_line(san_jsonl *c, const char *line, void *data)
{
	san_plugin_link *l = data;
	json_error_t jerr;
	g_autoptr(json_t) msg = json_loads(line, 0, &jerr);
	if (!json_is_object(msg)) {
		log_warn("%s: the plugin sent a line that is not a JSON object: %.200s", l->ctl_path, line);
		return;
	}
	if (json_object_get(msg, "ev")) {
		l->ops->event(msg, l->data);
		return;
	}
	if (!json_is_boolean(json_object_get(msg, "ok"))) {
		log_warn("%s: the plugin sent neither an event nor an answer: %.200s", l->ctl_path, line);
		return;
	}
	if (g_queue_is_empty(&l->waiting)) {
		log_warn("%s: the plugin answered a request it was not sent: %.200s", l->ctl_path, line);
		return;
	}
	san_answer *a = g_queue_pop_head(&l->waiting);
	san_answer_json(a, msg);
	san_answer_unref(a);
	arm_answer_timer(l);
}

static void on_closed(san_jsonl *c, const char *why, void *data)
{
	disconnect(data, why);
}

static const san_jsonl_ops link_ops = { .line = on_line, .closed = on_closed };

static void try_connect(san_plugin_link *l)
{
	if (!l->running || l->conn)
		return;
	int fd = san_connect_unix(l->ctl_path);
	if (fd < 0) {
		/* Normal while nbdkit starts: logged once per kind of failure. */
		if (errno != l->last_errno)
			log_debug("%s: cannot connect yet: %s", l->ctl_path, g_strerror(errno));
		l->last_errno = errno;
		l->retry_timer = g_timeout_add(SAN_PLUGIN_RETRY_MS, on_retry, l);
		return;
	}
	l->last_errno = 0;
	l->conn = san_jsonl_new(fd, &link_ops, l);
	log_info("%s: connected to the plugin", l->ctl_path);
	l->ops->connected(l->data);
}

san_plugin_link *san_plugin_link_new(const char *ctl_path, const san_plugin_link_ops *ops, void *data)
{
	san_plugin_link *l = g_new0(san_plugin_link, 1);
	l->ctl_path = g_strdup(ctl_path);
	l->ops = ops;
	l->data = data;
	g_queue_init(&l->waiting);
	return l;
}

void san_plugin_link_start(san_plugin_link *l)
{
	if (l->running)
		return;
	l->running = true;
	try_connect(l);
}

void san_plugin_link_stop(san_plugin_link *l)
{
	l->running = false;
	if (l->retry_timer) {
		g_source_remove(l->retry_timer);
		l->retry_timer = 0;
	}
	disconnect(l, "stopped");
}

bool san_plugin_link_is_connected(const san_plugin_link *l)
{
	return l->conn != NULL;
}

void san_plugin_link_request(san_plugin_link *l, json_t *op, san_answer *a)
{
	if (!l->conn || !san_jsonl_send(l->conn, op)) {
		san_answer_error(a, "The volume's nbdkit is not running (it is being started).");
		return;
	}
	bool was_empty = g_queue_is_empty(&l->waiting);
	g_queue_push_tail(&l->waiting, san_answer_ref(a));
	if (was_empty)
		arm_answer_timer(l);
}

void san_plugin_link_free(san_plugin_link *l)
{
	if (!l)
		return;
	san_plugin_link_stop(l);
	g_free(l->ctl_path);
	g_free(l);
}
