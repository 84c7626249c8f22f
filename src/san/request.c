/*
 * herd-san's control lines, checked.  Unknown keys are ignored (herdd may
 * send more than this herd-san knows); every key an op needs is checked for
 * its type and range, and a refusal names the op, the key and what it must be.
 */
#include "common/json.h"
#include "san/request.h"

#include "common/error.h"
#include "store/object.h"

#include <arpa/inet.h>
#include <string.h>

static const char *const op_names[] = {
	[SAN_OP_CONFIG] = "config",	[SAN_OP_VOLUME] = "volume",   [SAN_OP_REMOVE] = "remove",
	[SAN_OP_OUTDATED] = "outdated", [SAN_OP_PEER_DOWN] = "peer-down", [SAN_OP_RESIZE] = "resize",
	[SAN_OP_DISCARD] = "discard",	[SAN_OP_PROMOTE] = "promote", [SAN_OP_VERIFY] = "verify",
	[SAN_OP_STATUS] = "status",	[SAN_OP_DETACHED] = "detached", [SAN_OP_ATTACH] = "attach",
};

static const char *const replica_state_names[] = {
	[SAN_REPLICA_UPTODATE] = "uptodate",
	[SAN_REPLICA_OUTDATED] = "outdated",
	[SAN_REPLICA_INCONSISTENT] = "inconsistent",
};

const char *san_op_name(san_op op)
{
	return op_names[op];
}

bool san_op_is_relayed(san_op op)
{
	switch (op) {
	case SAN_OP_OUTDATED:
	case SAN_OP_PEER_DOWN:
	case SAN_OP_RESIZE:
	case SAN_OP_DISCARD:
	case SAN_OP_PROMOTE:
	case SAN_OP_VERIFY:
	case SAN_OP_DETACHED:
		return true;
	default:
		return false;
	}
}

const char *san_replica_state_name(san_replica_state s)
{
	return replica_state_names[s];
}

char *san_gen_format(uint64_t gen)
{
	return g_strdup_printf("%016" G_GINT64_MODIFIER "x", (guint64)gen);
}

static bool refuse(GError **error, const char *op, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static bool refuse(GError **error, const char *op, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	g_autofree char *what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return herd_refuse(error, HERD_ERR_INVALID, "op '%s': %s.", op, what);
}

static bool get_string(json_t *obj, const char *key, const char *op, size_t max_len, const char **out,
		       GError **error)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return refuse(error, op, "\"%s\" is missing", key);
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max_len ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return refuse(error, op, "\"%s\" must be a non-empty string of at most %zu bytes", key, max_len);
	*out = json_string_value(v);
	return true;
}

static bool get_uint(json_t *obj, const char *key, const char *op, uint64_t min, uint64_t max, uint64_t *out,
		     GError **error)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return refuse(error, op, "\"%s\" is missing", key);
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
	    (uint64_t)json_integer_value(v) > max)
		return refuse(error, op, "\"%s\" must be an integer from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
			      key, (guint64)min, (guint64)max);
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static bool get_uuid(json_t *obj, const char *op, char out[SAN_UUID_LEN + 1], GError **error)
{
	const char *uuid;
	if (!get_string(obj, "uuid", op, 256, &uuid, error))
		return false;
	if (!store_uuid_is_valid(uuid))
		return refuse(error, op, "\"uuid\" '%s' is not a UUID (36 lower-case hex digits and dashes)", uuid);
	g_strlcpy(out, uuid, SAN_UUID_LEN + 1);
	return true;
}

static bool get_endpoint(json_t *obj, const char *key, const char *op, san_endpoint *out, GError **error)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return refuse(error, op, "\"%s\" is missing", key);
	if (!json_is_object(v))
		return refuse(error, op, "\"%s\" must be an object with \"address\" and \"port\"", key);
	g_autofree char *what = g_strdup_printf("%s.address", key);
	const char *address;
	if (!get_string(v, "address", op, 64, &address, error))
		return false;
	unsigned char buf[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, address, buf) != 1 && inet_pton(AF_INET6, address, buf) != 1)
		return refuse(error, op, "\"%s\" '%s' is not an IPv4 or IPv6 address", what, address);
	uint64_t port;
	json_t *p = json_object_get(v, "port");
	if (!json_is_integer(p) || json_integer_value(p) < 1 || json_integer_value(p) > 65535)
		return refuse(error, op, "\"%s.port\" must be an integer from 1 to 65535", key);
	port = (uint64_t)json_integer_value(p);
	out->address = g_strdup(address);
	out->port = (uint16_t)port;
	return true;
}

static bool get_replica_state(json_t *obj, const char *key, const char *op, san_replica_state *out,
			      GError **error)
{
	const char *s;
	if (!get_string(obj, key, op, 32, &s, error))
		return false;
	for (unsigned i = 0; i < G_N_ELEMENTS(replica_state_names); i++) {
		if (strcmp(s, replica_state_names[i]) == 0) {
			*out = (san_replica_state)i;
			return true;
		}
	}
	return refuse(error, op, "\"%s\" '%s' must be \"uptodate\", \"outdated\" or \"inconsistent\"", key, s);
}

static bool parse_gen(json_t *obj, const char *op, uint64_t *out, GError **error)
{
	const char *s;
	if (!get_string(obj, "initial_gen", op, 16, &s, error))
		return false;
	if (strlen(s) != 16 || strspn(s, "0123456789abcdefABCDEF") != 16)
		return refuse(error, op, "\"initial_gen\" '%s' must be 16 hex digits", s);
	*out = g_ascii_strtoull(s, NULL, 16);
	return true;
}

static bool parse_volume(json_t *obj, san_request *req, GError **error)
{
	const char *op = "volume", *name, *node;
	san_volume_spec *v = &req->volume;
	if (!get_string(obj, "name", op, 255, &name, error) ||
	    !get_uint(obj, "size", op, 1, SAN_SIZE_MAX, &v->size, error))
		return false;
	if (v->size % 512 != 0)
		return refuse(error, op, "\"size\" %" G_GUINT64_FORMAT " is not a multiple of 512 bytes",
			      (guint64)v->size);
	v->name = g_strdup(name);
	if (!get_endpoint(obj, "listen", op, &v->listen, error) || !get_endpoint(obj, "peer", op, &v->peer, error))
		return false;
	if (!get_string(json_object_get(obj, "peer"), "node", op, 255, &node, error))
		return false;
	v->peer_node = g_strdup(node);
	return get_replica_state(obj, "local", op, &v->local, error) &&
	       get_replica_state(obj, "peer_state", op, &v->peer_state, error) &&
	       parse_gen(obj, op, &v->initial_gen, error);
}

static bool parse_config(json_t *obj, san_request *req, GError **error)
{
	const char *op = "config", *dir;
	if (!get_string(obj, "tls_dir", op, 4096, &dir, error))
		return false;
	if (dir[0] != '/')
		return refuse(error, op, "\"tls_dir\" '%s' must be an absolute path", dir);
	req->config.tls_dir = g_strdup(dir);
	/* resync_rate 0: no limit (the setting esan_resync_mibs=0). */
	return get_uint(obj, "resync_rate", op, 0, UINT64_C(1) << 40, &req->config.resync_rate, error) &&
	       get_uint(obj, "timeout_ms", op, 1, 3600 * 1000, &req->config.timeout_ms, error);
}

san_request *san_request_from_json(json_t *obj, GError **error)
{
	if (!json_is_object(obj)) {
		herd_refuse(error, HERD_ERR_INVALID, "A control line must be a JSON object.");
		return NULL;
	}
	json_t *opv = json_object_get(obj, "op");
	if (!json_is_string(opv)) {
		herd_refuse(error, HERD_ERR_INVALID, "A control line needs \"op\", a string.");
		return NULL;
	}
	g_autoptr(san_request) req = g_new0(san_request, 1);
	unsigned i;
	for (i = 0; i < G_N_ELEMENTS(op_names); i++)
		if (strcmp(json_string_value(opv), op_names[i]) == 0)
			break;
	if (i == G_N_ELEMENTS(op_names)) {
		herd_refuse(error, HERD_ERR_INVALID, "Unknown op '%s'.", json_string_value(opv));
		return NULL;
	}
	req->op = (san_op)i;
	req->json = json_incref(obj);
	const char *op = op_names[i];
	bool ok = true;
	switch (req->op) {
	case SAN_OP_CONFIG:
		ok = parse_config(obj, req, error);
		break;
	case SAN_OP_STATUS:
		break;
	case SAN_OP_VOLUME:
		ok = get_uuid(obj, op, req->uuid, error) && parse_volume(obj, req, error);
		break;
	case SAN_OP_RESIZE:
		ok = get_uuid(obj, op, req->uuid, error) &&
		     get_uint(obj, "size", op, 1, SAN_SIZE_MAX, &req->size, error);
		if (ok && req->size % 512 != 0)
			ok = refuse(error, op, "\"size\" %" G_GUINT64_FORMAT " is not a multiple of 512 bytes",
				    (guint64)req->size);
		break;
	default:
		ok = get_uuid(obj, op, req->uuid, error);
		break;
	}
	return ok ? g_steal_pointer(&req) : NULL;
}

san_request *san_request_parse(const char *line, GError **error)
{
	json_error_t jerr;
	g_autoptr(json_t) obj = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj) {
		herd_refuse(error, HERD_ERR_INVALID, "A control line is not JSON: %s (column %d).", jerr.text,
			    jerr.column);
		return NULL;
	}
	return san_request_from_json(obj, error);
}

static void endpoint_clear(san_endpoint *e)
{
	g_free(e->address);
	e->address = NULL;
}

void san_request_free(san_request *req)
{
	if (!req)
		return;
	g_free(req->config.tls_dir);
	g_free(req->volume.name);
	g_free(req->volume.peer_node);
	endpoint_clear(&req->volume.listen);
	endpoint_clear(&req->volume.peer);
	if (req->json)
		json_decref(req->json);
	g_free(req);
}
