/*
 * Real HTTP requests to a test node's API (testnode.h) over its unix
 * socket, from a thread of their own while the calling thread runs the
 * main loop (where the node answers).  Every request carries HTTP Basic
 * credentials (admin, TESTNODE_PASSWORD): run as root, the server takes
 * the caller as local root instead; run as anyone else, as admin.  Either
 * way the test needs no root.
 *
 * libcurl rather than herd_client (common/client.h): a test reads the
 * HTTP status (201 or 200) and the error body as the server sent them,
 * and sends bodies herd_client cannot (not JSON, not an object).
 */
#pragma once

#include "testnode.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct test_answer {
	char *what;        /* "POST /api/v1/vms", for messages */
	long status;       /* the HTTP status; 0 if no answer came */
	char *text;        /* the body as received */
	json_t *json;      /* the body parsed, or NULL */
	gint64 received_us; /* monotonic time the last byte came, before parsing */
} test_answer;

void test_answer_free(test_answer *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(test_answer, test_answer_free)

/* An error answer's code ("not_found") and message, or NULL. */
const char *test_answer_code(const test_answer *a);
const char *test_answer_message(const test_answer *a);

/* A request under way. */
typedef struct test_call test_call;

/* Send @method @path with @body (NULL: none; not stolen) to node @n. */
test_call *test_call_start(testnode *n, const char *method, const char *path, json_t *body);
/* …with a body as given (NULL: none) and credentials @user:@password (NULL: none). */
test_call *test_call_start_raw(testnode *n, const char *method, const char *path,
			       const char *body, const char *user, const char *password);
/* Has the answer come? */
bool test_call_answered(test_call *c);
/* Wait for the answer (running the main loop; bounded by TEST_WAIT_MS). */
test_answer *test_call_finish(test_call *c);

/* Start and finish. */
test_answer *test_request(testnode *n, const char *method, const char *path, json_t *body);
/* The same with a body made by json_pack(@fmt, …) (stolen). */
test_answer *test_requestf(testnode *n, const char *method, const char *path, const char *fmt, ...);

/* Fail the test, showing the answer, unless it has @status; its JSON
 * (borrowed from @a). */
json_t *test_expect(const test_answer *a, long status);
/* Fail the test unless @a is an error with @status whose message contains
 * @needle. */
void test_expect_error(const test_answer *a, long status, const char *needle);
