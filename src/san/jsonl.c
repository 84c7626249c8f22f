#include "common/json.h"
#include "san/jsonl.h"

#include "san/request.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct san_jsonl {
	int fd;
	const san_jsonl_ops *ops;
	void *data;
	guint in_watch, out_watch, close_idle;
	GString *in, *out;
	bool closed;	/* closed() has been or is about to be called */
	char *why;
};

static gboolean on_readable(int fd, GIOCondition cond, void *data);

static gboolean deliver_close(void *data)
{
	san_jsonl *c = data;
	c->close_idle = 0;
	c->ops->closed(c, c->why, c->data);
	return G_SOURCE_REMOVE;
}

/* Stop reading and writing, and tell the owner from the main loop (never
 * from inside its own line() callback). */
static void close_later(san_jsonl *c, const char *why)
{
	if (c->closed)
		return;
	c->closed = true;
	c->why = g_strdup(why);
	if (c->in_watch)
		g_source_remove(c->in_watch);
	if (c->out_watch)
		g_source_remove(c->out_watch);
	c->in_watch = c->out_watch = 0;
	c->close_idle = g_idle_add(deliver_close, c);
}

static gboolean on_writable(int fd, GIOCondition cond, void *data);

static void flush_out(san_jsonl *c)
{
	while (c->out->len > 0) {
		ssize_t n = send(c->fd, c->out->str, c->out->len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->out_watch)
				c->out_watch = g_unix_fd_add(c->fd, G_IO_OUT, on_writable, c);
			return;
		}
		if (n < 0) {
			g_autofree char *why = g_strdup_printf("write failed: %s", g_strerror(errno));
			close_later(c, why);
			return;
		}
		g_string_erase(c->out, 0, n);
	}
	if (c->out_watch) {
		g_source_remove(c->out_watch);
		c->out_watch = 0;
	}
}

static gboolean on_writable(int fd, GIOCondition cond, void *data)
{
	san_jsonl *c = data;
	c->out_watch = 0;
	flush_out(c);
	return G_SOURCE_REMOVE;
}

static gboolean on_readable(int fd, GIOCondition cond, void *data)
{
	san_jsonl *c = data;
	char buf[16384];
	ssize_t n = read(fd, buf, sizeof buf);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		c->in_watch = 0;
		g_autofree char *why = n == 0 ? g_strdup("end of connection")
					      : g_strdup_printf("read failed: %s", g_strerror(errno));
		close_later(c, why);
		return G_SOURCE_REMOVE;
	}
	g_string_append_len(c->in, buf, n);
	char *nl;
	while (!c->closed && (nl = memchr(c->in->str, '\n', c->in->len))) {
		size_t len = (size_t)(nl - c->in->str);
		g_autofree char *line = g_strndup(c->in->str, len);
		g_string_erase(c->in, 0, (gssize)len + 1);
		if (len > SAN_LINE_MAX) {
			c->in_watch = 0;
			close_later(c, "a line is longer than 64 KiB");
			return G_SOURCE_REMOVE;
		}
		if (strlen(line) != len) {
			c->in_watch = 0;
			close_later(c, "a line holds a NUL byte");
			return G_SOURCE_REMOVE;
		}
		c->ops->line(c, line, c->data);
	}
	if (!c->closed && c->in->len > SAN_LINE_MAX) {
		c->in_watch = 0;
		close_later(c, "a line is longer than 64 KiB");
		return G_SOURCE_REMOVE;
	}
	if (c->closed) {
		c->in_watch = 0;
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

san_jsonl *san_jsonl_new(int fd, const san_jsonl_ops *ops, void *data)
{
	san_jsonl *c = g_new0(san_jsonl, 1);
	c->fd = fd;
	c->ops = ops;
	c->data = data;
	c->in = g_string_new(NULL);
	c->out = g_string_new(NULL);
	g_unix_set_fd_nonblocking(fd, TRUE, NULL);
	c->in_watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_readable, c);
	return c;
}

bool san_jsonl_send(san_jsonl *c, json_t *msg)
{
	if (c->closed)
		return false;
	g_autofree char *text = json_dumps(msg, JSON_COMPACT);
	if (!text)
		return false;
	if (c->out->len + strlen(text) + 1 > SAN_JSONL_OUT_MAX) {
		close_later(c, "the peer does not read what it is sent");
		return false;
	}
	g_string_append(c->out, text);
	g_string_append_c(c->out, '\n');
	flush_out(c);
	return !c->closed;
}

void san_jsonl_shutdown(san_jsonl *c, const char *why)
{
	close_later(c, why);
}

void san_jsonl_free(san_jsonl *c)
{
	if (!c)
		return;
	if (c->in_watch)
		g_source_remove(c->in_watch);
	if (c->out_watch)
		g_source_remove(c->out_watch);
	if (c->close_idle)
		g_source_remove(c->close_idle);
	if (c->fd >= 0)
		close(c->fd);
	g_string_free(c->in, TRUE);
	g_string_free(c->out, TRUE);
	g_free(c->why);
	g_free(c);
}
