#include "testcall.h"

#include "common/json.h"
#include "testloop.h"

#include <curl/curl.h>
#include <string.h>

/* A call is given up after this long (the node answers far sooner). */
#define CALL_TIMEOUT_S 60

struct test_call {
	GThread *thread;
	gint answered;
	/* the request (read by the thread) */
	char *socket_path;
	char *method;
	char *url;
	char *body;
	char *user;
	char *password;
	/* the answer (written by the thread) */
	test_answer *answer;
};

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	g_string_append_len(user, data, (gssize)(size * n));
	return size * n;
}

static gpointer call_thread(gpointer p)
{
	test_call *c = p;
	g_autoptr(GString) text = g_string_new(NULL);
	struct curl_slist *headers = NULL;
	CURL *curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	curl_easy_setopt(curl, CURLOPT_URL, c->url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, text);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)CALL_TIMEOUT_S);
	if (c->user) {
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(curl, CURLOPT_USERNAME, c->user);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, c->password ? c->password : "");
	}
	/* The body goes out at once, not after a "100 Continue". */
	headers = curl_slist_append(headers, "Expect:");
	if (c->body) {
		headers = curl_slist_append(headers, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &c->answer->status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	c->answer->received_us = g_get_monotonic_time();
	c->answer->json = json_loadb(text->str, text->len, 0, NULL);
	c->answer->text = g_string_free(g_steal_pointer(&text), FALSE);
	g_atomic_int_set(&c->answered, 1);
	g_main_context_wakeup(NULL);
	return NULL;
}

test_call *test_call_start_raw(testnode *n, const char *method, const char *path,
			       const char *body, const char *user, const char *password)
{
	static gsize curl_ready;
	if (g_once_init_enter(&curl_ready)) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		g_once_init_leave(&curl_ready, 1);
	}
	test_call *c = g_new0(test_call, 1);
	c->socket_path = g_strdup(n->socket_path);
	c->method = g_strdup(method);
	c->url = g_strconcat("http://localhost", path, NULL);
	c->body = g_strdup(body);
	c->user = g_strdup(user);
	c->password = g_strdup(password);
	c->answer = g_new0(test_answer, 1);
	c->answer->what = g_strdup_printf("%s %s to %s", method, path, n->name);
	c->thread = g_thread_new("test-call", call_thread, c);
	return c;
}

test_call *test_call_start(testnode *n, const char *method, const char *path, json_t *body)
{
	g_autofree char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	return test_call_start_raw(n, method, path, text, "admin", TESTNODE_PASSWORD);
}

bool test_call_answered(test_call *c)
{
	return g_atomic_int_get(&c->answered);
}

test_answer *test_call_finish(test_call *c)
{
	TEST_WAIT(test_call_answered(c));
	g_thread_join(c->thread);
	test_answer *a = c->answer;
	g_free(c->socket_path);
	g_free(c->method);
	g_free(c->url);
	g_free(c->body);
	g_free(c->user);
	g_free(c->password);
	g_free(c);
	return a;
}

test_answer *test_request(testnode *n, const char *method, const char *path, json_t *body)
{
	return test_call_finish(test_call_start(n, method, path, body));
}

test_answer *test_requestf(testnode *n, const char *method, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_error_t jerr;
	g_autoptr(json_t) body = json_vpack_ex(&jerr, 0, fmt, ap);
	va_end(ap);
	if (!body)
		g_error("test_requestf: bad json_pack format '%s': %s", fmt, jerr.text);
	return test_request(n, method, path, body);
}

void test_answer_free(test_answer *a)
{
	if (!a)
		return;
	g_free(a->what);
	g_free(a->text);
	json_decref(a->json);
	g_free(a);
}

const char *test_answer_code(const test_answer *a)
{
	return json_string_value(json_object_get(json_object_get(a->json, "error"), "code"));
}

const char *test_answer_message(const test_answer *a)
{
	return json_string_value(json_object_get(json_object_get(a->json, "error"), "message"));
}

json_t *test_expect(const test_answer *a, long status)
{
	if (a->status != status || !a->json)
		g_error("%s: expected HTTP %ld with JSON, got %ld: %s", a->what, status, a->status, a->text);
	return a->json;
}

void test_expect_error(const test_answer *a, long status, const char *needle)
{
	const char *msg = test_answer_message(a);
	if (a->status != status || !msg || !test_answer_code(a) || !strstr(msg, needle))
		g_error("%s: expected HTTP %ld with an error saying '%s', got %ld: %s", a->what, status,
			needle, a->status, a->text);
}
