/*
 * herd vm console NAME --port PORT (cli/vm_console.h): what `qm vncproxy`
 * or an SSH tunnel to a display gives a Proxmox or virsh operator, for a
 * desktop VNC viewer.  Each viewer that connects to the local port gets a
 * console of its own: a new one-time ticket, a websocket to the API (the
 * local socket, or --host's HTTPS), and its bytes carried both ways in
 * websocket frames, until either side ends.  A viewer that reconnects
 * after the VM moved reaches it on its new node.
 */
#include "cli/vm_console.h"

#include "common/json.h"
#include "common/websocket.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK_BYTES 65536
#define FRAME_MAX (1024 * 1024)

/* Send all of @data on @curl's connection. */
static bool stream_send(CURL *curl, curl_socket_t sock, const void *data, size_t len)
{
	const char *d = data;
	while (len > 0) {
		size_t sent = 0;
		CURLcode rc = curl_easy_send(curl, d, len, &sent);
		if (rc == CURLE_AGAIN) {
			struct pollfd p = { sock, POLLOUT, 0 };
			poll(&p, 1, 1000);
			continue;
		}
		if (rc != CURLE_OK)
			return false;
		d += sent;
		len -= sent;
	}
	return true;
}

static bool ws_send_frame(CURL *curl, curl_socket_t sock, ws_opcode op, const uint8_t *payload,
			  size_t len)
{
	uint8_t mask[4];
	g_autofree uint8_t *frame = g_malloc(WS_MAX_HEADER + len);
	for (int i = 0; i < 4; i++)
		mask[i] = (uint8_t)g_random_int();
	size_t h = ws_client_frame_header(frame, op, len, mask);
	memcpy(frame + h, payload, len);
	ws_mask(frame + h, len, mask);
	return stream_send(curl, sock, frame, h + len);
}

/* The websocket handshake on @curl's connection: true once upgraded;
 * false with @error (the API's refusal, in its words). */
static bool ws_open(CURL *curl, curl_socket_t sock, const char *host, const char *path,
		    GByteArray *rest, GError **error)
{
	guint8 raw[16];
	for (int i = 0; i < 16; i++)
		raw[i] = (guint8)g_random_int();
	g_autofree char *key = g_base64_encode(raw, sizeof(raw));
	g_autofree char *req = g_strdup_printf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
					       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
					       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n",
					       path, host, key);
	if (!stream_send(curl, sock, req, strlen(req))) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "The API closed the connection.");
		return false;
	}
	/* The answer's head, then (a refusal) its JSON body. */
	g_autoptr(GString) in = g_string_new(NULL);
	char *end = NULL;
	gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
	for (;;) {
		end = strstr(in->str, "\r\n\r\n");
		char *len_at = end ? strcasestr(in->str, "\r\nContent-Length:") : NULL;
		size_t body = len_at && len_at < end ? strtoul(len_at + 17, NULL, 10) : 0;
		if (end && (size_t)(in->str + in->len - (end + 4)) >= body)
			break;
		char buf[4096];
		size_t n = 0;
		CURLcode rc = curl_easy_recv(curl, buf, sizeof(buf), &n);
		if (rc == CURLE_AGAIN) {
			struct pollfd p = { sock, POLLIN, 0 };
			if (g_get_monotonic_time() > deadline || poll(&p, 1, 1000) < 0)
				break;
			continue;
		}
		if (rc != CURLE_OK || n == 0)
			break;
		g_string_append_len(in, buf, (gssize)n);
		if (in->len > 1024 * 1024)
			break;
	}
	if (!end) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "The API did not answer the websocket's request.");
		return false;
	}
	if (!g_str_has_prefix(in->str, "HTTP/1.1 101")) {
		g_autoptr(json_t) body = json_loads(end + 4, JSON_DISABLE_EOF_CHECK, NULL);
		const char *msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "%s",
			    msg ? msg : "The API refused the console's websocket.");
		return false;
	}
	g_byte_array_append(rest, (const guint8 *)end + 4, (guint)(in->str + in->len - (end + 4)));
	return true;
}

/* Carry @viewer's bytes to VM @vm's console and back; the reason it ended. */
static char *serve_viewer(cli_ctx *ctx, const char *vm, int viewer)
{
	g_autoptr(GError) error = NULL;
	g_autofree char *api_path = cli_api_path("vms", vm, "console");
	g_autoptr(json_t) t = cli_call(ctx, "POST", api_path, NULL, &error);
	if (!t)
		return g_strdup(error->message);
	const char *path = json_string_value(json_object_get(t, "path"));
	CURL *curl = herd_client_connect_raw(cli_client(ctx), &error);
	if (!curl)
		return g_strdup(error->message);
	curl_socket_t sock = CURL_SOCKET_BAD;
	curl_easy_getinfo(curl, CURLINFO_ACTIVESOCKET, &sock);
	const char *target = herd_client_target(cli_client(ctx));
	g_autoptr(GByteArray) in = g_byte_array_new();
	char *why = NULL;
	bool upgraded = false;
	if (!ws_open(curl, sock, ctx->client_opts.host ? target : "localhost", path, in, &error)) {
		why = g_strdup(error->message);
		goto out;
	}
	upgraded = true;
	fprintf(stderr, "herd: a viewer on VM %s's console (node %s)\n", vm,
		json_string_value(json_object_get(t, "node")));
	ws_decoder dec = { .max_payload = FRAME_MAX, .from_server = true };
	uint8_t buf[CHUNK_BYTES];
	for (;;) {
		/* the frames in: to the viewer */
		size_t off = 0;
		for (;;) {
			ws_frame f;
			size_t used;
			uint16_t code;
			g_autoptr(GError) bad = NULL;
			ws_decode_result r = ws_decode(&dec, in->data + off, in->len - off, &f, &used, &code, &bad);
			if (r == WS_DECODE_MORE)
				break;
			if (r == WS_DECODE_ERROR) {
				why = g_strdup(bad->message);
				goto out;
			}
			off += used;
			if (f.opcode == WS_OP_CLOSE) {
				why = f.len > 2 ? g_strndup((const char *)f.payload + 2, f.len - 2)
						: g_strdup("the console closed");
				goto out;
			}
			if (f.opcode == WS_OP_PING)
				ws_send_frame(curl, sock, WS_OP_PONG, f.payload, f.len);
			if ((f.opcode == WS_OP_BINARY || f.opcode == WS_OP_CONTINUATION) && f.len &&
			    send(viewer, f.payload, f.len, MSG_NOSIGNAL) != (ssize_t)f.len) {
				why = g_strdup("the viewer left");
				goto out;
			}
		}
		g_byte_array_remove_range(in, 0, (guint)off);
		/* drain what libcurl has (TLS may hold decrypted bytes) */
		size_t n = 0;
		CURLcode rc = curl_easy_recv(curl, buf, sizeof(buf), &n);
		if (rc == CURLE_OK && n == 0) {
			why = g_strdup("the API closed the console");
			goto out;
		}
		if (rc == CURLE_OK) {
			if (in->len + n > FRAME_MAX + WS_MAX_HEADER) {
				why = g_strdup("a frame larger than the CLI takes");
				goto out;
			}
			g_byte_array_append(in, buf, (guint)n);
			continue;
		}
		if (rc != CURLE_AGAIN) {
			why = g_strdup(curl_easy_strerror(rc));
			goto out;
		}
		struct pollfd p[2] = { { viewer, POLLIN, 0 }, { sock, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			why = g_strdup(g_strerror(errno));
			goto out;
		}
		if (p[0].revents) {
			ssize_t got = recv(viewer, buf, sizeof(buf), 0);
			if (got <= 0) {
				why = g_strdup("the viewer left");
				goto out;
			}
			if (!ws_send_frame(curl, sock, WS_OP_BINARY, buf, (size_t)got)) {
				why = g_strdup("the API closed the console");
				goto out;
			}
		}
	}
out:
	if (upgraded) {
		static const uint8_t normal[2] = { 0x03, 0xe8 };
		ws_send_frame(curl, sock, WS_OP_CLOSE, normal, sizeof(normal));
	}
	curl_easy_cleanup(curl);
	return why;
}

int cli_vm_console_forward(cli_ctx *ctx, const char *vm, int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		fprintf(stderr, "herd: cannot listen on 127.0.0.1 port %d: %s\n", port, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return CLI_ERROR;
	}
	printf("Forwarding 127.0.0.1:%d to the console of VM %s", port, vm);
	if (port >= 5900 && port < 6000)
		printf(" (VNC display 127.0.0.1:%d)", port - 5900);
	printf("; one viewer at a time, each with a ticket of its own. Ctrl-C ends it.\n");
	fflush(stdout);
	for (;;) {
		int viewer = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (viewer < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "herd: accept: %s\n", g_strerror(errno));
			close(fd);
			return CLI_ERROR;
		}
		g_autofree char *why = serve_viewer(ctx, vm, viewer);
		close(viewer);
		fprintf(stderr, "herd: the viewer's console ended: %s\n", why ? why : "?");
	}
}
