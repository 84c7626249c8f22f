#define G_LOG_DOMAIN "notify"
#include "daemon/notify_send.h"

#include "common/error.h"
#include "common/json.h"
#include "common/log.h"
#include "ha/notify.h"
#include "store/cluster.h"
#include "store/settings.h"

#include <curl/curl.h>
#include <gio/gio.h>
#include <string.h>

enum { CHANNEL_MAIL = 1, CHANNEL_WEBHOOK = 2 };

/* What one delivery needs, copied for its thread. */
typedef struct delivery {
	unsigned channels;        /* to try */
	uint64_t notice_id;
	char *smtp_url, *ca, *user, *password, *from;
	int tls;                  /* store_notify_tls */
	char **to;
	char *webhook;
	char *mail;               /* the RFC 5322 message */
	char *json;               /* the webhook's body */
	/* Results (the thread's). */
	unsigned done;            /* channels that took it */
	char *mail_error, *webhook_error;
} delivery;

struct herd_notifier {
	herd_cluster *cluster;
	herd_ha *ha;
	char *node_name;
	herd_notify *core;
	GCancellable *stop;       /* deliveries end into nothing once cancelled */
	bool busy;                /* a notice's delivery under way */
	bool coordinating;
	guint tick, wake;
};

static void delivery_free(delivery *d)
{
	if (!d)
		return;
	g_free(d->smtp_url);
	g_free(d->ca);
	g_free(d->user);
	if (d->password)
		memset(d->password, 0, strlen(d->password));
	g_free(d->password);
	g_free(d->from);
	g_strfreev(d->to);
	g_free(d->webhook);
	g_free(d->mail);
	g_free(d->json);
	g_free(d->mail_error);
	g_free(d->webhook_error);
	g_free(d);
}

/* ------------------------------------------------------------------ */
/* On the delivery's thread                                            */

typedef struct upload {
	const char *data;
	size_t len, off;
} upload;

static size_t read_upload(char *buf, size_t size, size_t nitems, void *user)
{
	upload *u = user;
	size_t n = MIN(size * nitems, u->len - u->off);
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

static size_t discard(char *buf, size_t size, size_t nitems, void *user)
{
	return size * nitems;
}

/* A sentence for a failed transfer: curl's words and the server's code. */
static char *curl_failure(CURL *c, CURLcode rc, const char *errbuf, const char *what)
{
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	if (code)
		return g_strdup_printf("%s failed: %s (the server answered %ld).", what, why, code);
	return g_strdup_printf("%s failed: %s.", what, why);
}

static void send_mail(delivery *d)
{
	CURL *c = curl_easy_init();
	if (!c) {
		d->mail_error = g_strdup("Sending the mail failed: libcurl could not start.");
		return;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *rcpt = NULL;
	for (char **r = d->to; *r; r++) {
		g_autofree char *a = g_strdup_printf("<%s>", *r);
		rcpt = curl_slist_append(rcpt, a);
	}
	g_autofree char *from = g_strdup_printf("<%s>", d->from);
	upload u = { d->mail, strlen(d->mail), 0 };
	curl_easy_setopt(c, CURLOPT_URL, d->smtp_url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)NOTIFY_SEND_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)NOTIFY_CONNECT_TIMEOUT_MS);
	if (d->tls == STORE_NOTIFY_TLS_STARTTLS)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	/* The relay's certificate is verified (curl's default), against
	 * notify_smtp_ca if set, else the system's CAs. */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (d->ca && *d->ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, d->ca);
	if (d->user && *d->user) {
		curl_easy_setopt(c, CURLOPT_USERNAME, d->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, d->password ? d->password : "");
	}
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		d->done |= CHANNEL_MAIL;
	else
		d->mail_error = curl_failure(c, rc, errbuf, "Sending the mail through the relay");
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
}

static void send_webhook(delivery *d)
{
	CURL *c = curl_easy_init();
	if (!c) {
		d->webhook_error = g_strdup("The webhook's POST failed: libcurl could not start.");
		return;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, d->webhook);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)NOTIFY_SEND_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)NOTIFY_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (d->ca && *d->ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, d->ca);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->json);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK)
		d->webhook_error = curl_failure(c, rc, errbuf, "The webhook's POST");
	else if (code < 200 || code > 299)
		d->webhook_error = g_strdup_printf("The webhook answered HTTP %ld.", code);
	else
		d->done |= CHANNEL_WEBHOOK;
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
}

static void deliver_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
	delivery *d = data;
	if (d->channels & CHANNEL_MAIL)
		send_mail(d);
	if (d->channels & CHANNEL_WEBHOOK)
		send_webhook(d);
	g_task_return_boolean(task, TRUE);
}

/* ------------------------------------------------------------------ */
/* On the main loop                                                    */

/* The delivery of @notice as the settings say now, or NULL with nothing
 * set up (no relay with recipients, no webhook). */
static delivery *delivery_new(herd_notifier *n, const herd_notice *notice, int64_t now_ms,
			      GError **error)
{
	store_state *st = herd_cluster_state(n->cluster);
	store_object *cluster = st ? store_state_cluster(st) : NULL;
	if (!cluster) {
		g_set_error(error, HERD_ERROR, HERD_ERR_UNAVAILABLE, "This node is not part of a cluster.");
		return NULL;
	}
	json_t *s = store_cluster_stored_settings(cluster);
	delivery *d = g_new0(delivery, 1);
	const char *host = cluster_setting_string(s, "notify_smtp_host");
	d->to = herd_notify_recipients(st, cluster_setting_string(s, "notify_to"), error);
	if (!d->to) {
		delivery_free(d);
		return NULL;
	}
	if (*host && d->to[0]) {
		d->channels |= CHANNEL_MAIL;
		d->tls = (int)store_settings_of(st)->notify_smtp_tls;
		bool v6 = strchr(host, ':') != NULL;
		d->smtp_url = g_strdup_printf("%s://%s%s%s:%lld", d->tls == STORE_NOTIFY_TLS_TLS ? "smtps" : "smtp",
					      v6 ? "[" : "", host, v6 ? "]" : "",
					      store_settings_of(st)->notify_smtp_port);
		d->ca = g_strdup(cluster_setting_string(s, "notify_smtp_ca"));
		d->user = g_strdup(cluster_setting_string(s, "notify_smtp_user"));
		d->password = g_strdup(cluster_setting_string(s, "notify_smtp_password"));
		const char *from = cluster_setting_string(s, "notify_from");
		d->from = *from ? g_strdup(from) : g_strdup_printf("herd@%s", g_get_host_name());
		d->mail = herd_notice_mail(notice, d->from, d->to, now_ms);
	}
	const char *webhook = cluster_setting_string(s, "notify_webhook");
	if (*webhook) {
		d->channels |= CHANNEL_WEBHOOK;
		d->webhook = g_strdup(webhook);
		if (!d->ca)
			d->ca = g_strdup(cluster_setting_string(s, "notify_smtp_ca"));
		d->json = json_dumps(notice->json, JSON_COMPACT);
	}
	if (!d->channels) {
		g_set_error(error, HERD_ERROR, HERD_ERR_INVALID,
			    "No notifications are set up: set notify_smtp_host (herd cluster set) and give "
			    "the members of a group with the monitor role, or the admin, a mail address "
			    "(herd user set NAME --email ADDRESS), or set notify_to; or set notify_webhook.");
		delivery_free(d);
		return NULL;
	}
	return d;
}

static int64_t now_ms(void)
{
	return g_get_real_time() / 1000;
}

static void run(herd_notifier *n);

static gboolean on_wake(gpointer user)
{
	herd_notifier *n = user;
	n->wake = 0;
	run(n);
	return G_SOURCE_REMOVE;
}

static void on_marked(json_t *result, const GError *error, gpointer user)
{
	if (error)
		log_warn("the alerts' notification marks were not written: %s", error->message);
}

static void on_delivered(GObject *source, GAsyncResult *res, gpointer user)
{
	delivery *d = g_task_get_task_data(G_TASK(res));
	GCancellable *stop = g_task_get_cancellable(G_TASK(res));
	if (g_cancellable_is_cancelled(stop))
		return;
	herd_notifier *n = user;
	n->busy = false;
	store_state *st = herd_cluster_state(n->cluster);
	if (!n->coordinating || !st)
		return;
	/* The notice delivered, unless the role changed meanwhile. */
	herd_notice *notice = herd_notify_current(n->core);
	if (!notice || notice->id != d->notice_id) {
		run(n);
		return;
	}
	notice->channels_done |= d->done;
	if ((d->done & d->channels) == d->channels) {
		log_info("notification delivered: %s", notice->subject);
		g_autoptr(json_t) mark = herd_notify_delivered(n->core, st, now_ms());
		g_autoptr(GError) err = NULL;
		if (mark && !herd_cluster_submit(n->cluster, mark, "herd", on_marked, NULL, &err))
			log_warn("the alerts' notification marks were not written: %s", err->message);
	} else {
		if (d->mail_error)
			log_warn("%s Trying again later.", d->mail_error);
		if (d->webhook_error)
			log_warn("%s Trying again later.", d->webhook_error);
		herd_notify_failed(n->core, now_ms());
	}
	run(n);
}

/*
 * libcurl (and OpenSSL under it) is set up before the first delivery, not
 * at herdd's start: its global init faults in some 2 MB of libcrypto and
 * libcurl that a herdd without notifications never uses (0.5 ms, once, on
 * the main loop: before the thread that delivers runs).
 */
static void curl_ready(void)
{
	static bool done;
	if (!done)
		curl_global_init(CURL_GLOBAL_DEFAULT);
	done = true;
}

static void run(herd_notifier *n)
{
	store_state *st = herd_cluster_state(n->cluster);
	bool coordinating = st && herd_ha_coordinates(n->ha);
	if (coordinating != n->coordinating) {
		n->coordinating = coordinating;
		herd_notify_reset(n->core);
	}
	if (!coordinating || n->busy)
		return;
	store_object *cluster = store_state_cluster(st);
	if (!cluster)
		return;
	json_t *s = store_cluster_stored_settings(cluster);
	g_auto(GStrv) to = herd_notify_recipients(st, cluster_setting_string(s, "notify_to"), NULL);
	bool mail = *cluster_setting_string(s, "notify_smtp_host") && to && to[0];
	if (!mail && !*cluster_setting_string(s, "notify_webhook"))
		return;
	int64_t wake_ms = 0;
	int64_t now = now_ms();
	const herd_notice *notice = herd_notify_next(n->core, st, cluster->name, now, &wake_ms);
	g_clear_handle_id(&n->wake, g_source_remove);
	if (!notice) {
		if (wake_ms > 0)
			n->wake = g_timeout_add((guint)MIN(wake_ms, G_MAXUINT), on_wake, n);
		return;
	}
	g_autoptr(GError) err = NULL;
	delivery *d = delivery_new(n, notice, now, &err);
	if (!d) {
		log_warn("notification not sent: %s", err->message);
		herd_notify_failed(n->core, now);
		return;
	}
	/* Only the channels that have not taken it yet. */
	d->channels &= ~notice->channels_done;
	d->notice_id = notice->id;
	n->busy = true;
	curl_ready();
	g_autoptr(GTask) task = g_task_new(NULL, n->stop, on_delivered, n);
	g_task_set_task_data(task, d, (GDestroyNotify)delivery_free);
	g_task_run_in_thread(task, deliver_thread);
}

static void on_change(gpointer user, GPtrArray *changes)
{
	herd_notifier *n = user;
	if (!n->busy && !n->wake)
		n->wake = g_idle_add(on_wake, n);
}

static gboolean on_tick(gpointer user)
{
	run(user);
	return G_SOURCE_CONTINUE;
}

herd_notifier *herd_notifier_new(herd_cluster *cluster, herd_ha *ha, const char *node_name)
{
	herd_notifier *n = g_new0(herd_notifier, 1);
	n->cluster = cluster;
	n->ha = ha;
	n->node_name = g_strdup(node_name);
	n->core = herd_notify_new();
	n->stop = g_cancellable_new();
	n->tick = g_timeout_add(NOTIFY_TICK_MS, on_tick, n);
	herd_cluster_listen(cluster, on_change, n);
	return n;
}

void herd_notifier_free(herd_notifier *n)
{
	if (!n)
		return;
	herd_cluster_unlisten(n->cluster, n);
	g_cancellable_cancel(n->stop);
	g_clear_object(&n->stop);
	g_clear_handle_id(&n->tick, g_source_remove);
	g_clear_handle_id(&n->wake, g_source_remove);
	herd_notify_free(n->core);
	g_free(n->node_name);
	g_free(n);
}

/* ------------------------------------------------------------------ */
/* herd notify test                                                    */

typedef struct test_call {
	void (*done)(json_t *result, gpointer user);
	gpointer user;
} test_call;

static json_t *channel_result(const delivery *d, unsigned channel, const char *error)
{
	if (!(d->channels & channel))
		return json_null();
	json_t *r = json_pack("{s:b}", "sent", (d->done & channel) != 0);
	if (error)
		json_object_set_new(r, "error", json_string(error));
	if (channel == CHANNEL_MAIL)
		json_object_set_new(r, "to", json_string(d->to ? d->to[0] : ""));
	return r;
}

static void on_tested(GObject *source, GAsyncResult *res, gpointer user)
{
	test_call *call = user;
	delivery *d = g_task_get_task_data(G_TASK(res));
	g_autoptr(json_t) out = json_object();
	json_object_set_new(out, "mail", channel_result(d, CHANNEL_MAIL, d->mail_error));
	json_object_set_new(out, "webhook", channel_result(d, CHANNEL_WEBHOOK, d->webhook_error));
	if (d->channels & CHANNEL_MAIL) {
		json_t *to = json_array();
		for (char **r = d->to; *r; r++)
			json_array_append_new(to, json_string(*r));
		json_object_set_new(json_object_get(out, "mail"), "to", to);
	}
	call->done(out, call->user);
	g_free(call);
}

void herd_notifier_test(gpointer notifier, void (*done)(json_t *result, gpointer user), gpointer user)
{
	herd_notifier *n = notifier;
	int64_t now = now_ms();
	store_state *st = herd_cluster_state(n->cluster);
	store_object *cluster = st ? store_state_cluster(st) : NULL;
	g_autoptr(herd_notice) notice = herd_notice_test(cluster ? cluster->name : "?", n->node_name, now);
	g_autoptr(GError) err = NULL;
	delivery *d = delivery_new(n, notice, now, &err);
	if (!d) {
		g_autoptr(json_t) out = json_pack("{s:s,s:i}", "error", err->message, "code", err->code);
		done(out, user);
		return;
	}
	test_call *call = g_new0(test_call, 1);
	call->done = done;
	call->user = user;
	curl_ready();
	g_autoptr(GTask) task = g_task_new(NULL, NULL, on_tested, call);
	g_task_set_task_data(task, d, (GDestroyNotify)delivery_free);
	g_task_run_in_thread(task, deliver_thread);
}
