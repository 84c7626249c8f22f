/*
 * The audit log: who changed what from which node (store/db.h), newest
 * first.
 */
#define G_LOG_DOMAIN "api"
#include "api/common.h"
#include "api/routes.h"

#include "common/error.h"
#include "store/db.h"

#define AUDIT_LIMIT_DEFAULT 100

void api_audit_list(http_request *req, gpointer user_data)
{
	api_ctx *a = user_data;
	g_autoptr(GError) err = NULL;
	const char *limit_s = http_request_query(req, "limit");
	guint64 limit = AUDIT_LIMIT_DEFAULT;
	if (limit_s && (!g_ascii_string_to_unsigned(limit_s, 10, 1, STORE_AUDIT_KEEP, &limit, NULL))) {
		http_respond_errorf(req, HERD_ERR_INVALID,
				    "The limit must be a whole number from 1 to %d, not '%s'.",
				    STORE_AUDIT_KEEP, limit_s);
		return;
	}
	if (!api_require_store(req, a))
		return;
	json_t *list = store_db_audit_list(api_state(a)->db, (unsigned)limit, &err);
	if (!list)
		http_respond_error(req, err);
	else
		http_respond_json(req, 200, list);
}
