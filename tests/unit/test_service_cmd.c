/*
 * herdd's questions to the service manager (herdd_service_ask(), as
 * "systemctl is-system-running" on SIGTERM): the one line it prints is the
 * answer whatever its exit status; no line, a command that cannot run, or
 * one that hangs past its timeout is an error that names the command.
 * Stand-in service managers are sh -c scripts (the question is their $0).
 */
#include "common/error.h"
#include "daemon/herdd.h"

#include <string.h>

typedef struct {
	bool done;
	char *answer;
	GError *error;
} reply;

static void on_answer(const char *answer, const GError *error, gpointer user)
{
	reply *r = user;
	r->done = true;
	r->answer = g_strdup(answer);
	r->error = error ? g_error_copy(error) : NULL;
}

/* Ask @question of service_command @cmd; wait for the reply. */
static reply ask(const char *cmd, const char *question, unsigned timeout_s)
{
	herdd_config cfg = { .service_command = (char *)cmd };
	herdd d = { .cfg = &cfg };
	reply r = { 0 };
	herdd_service_ask(&d, question, timeout_s, on_answer, &r);
	while (!r.done)
		g_main_context_iteration(NULL, TRUE);
	return r;
}

static void reply_clear(reply *r)
{
	g_free(r->answer);
	g_clear_error(&r->error);
}

static void test_answers(void)
{
	/* is-system-running prints its state and fails for all but "running". */
	reply r = ask("sh -c 'echo stopping; exit 1'", "is-system-running", 10);
	g_assert_no_error(r.error);
	g_assert_cmpstr(r.answer, ==, "stopping");
	reply_clear(&r);
	r = ask("sh -c 'echo \"  running  \"'", "is-system-running", 10);
	g_assert_cmpstr(r.answer, ==, "running");
	reply_clear(&r);
	/* The question comes as the command's last argument. */
	r = ask("echo", "is-system-running", 10);
	g_assert_cmpstr(r.answer, ==, "is-system-running");
	reply_clear(&r);
}

static void test_errors(void)
{
	reply r = ask("sh -c 'exit 1'", "is-system-running", 10);
	g_assert_null(r.answer);
	g_assert_error(r.error, HERD_ERROR, HERD_ERR_IO);
	g_assert_cmpstr(r.error->message, ==, "'sh -c 'exit 1' is-system-running' gave no one-line answer.");
	reply_clear(&r);
	r = ask("sh -c 'printf \"a\\nb\\n\"'", "is-system-running", 10);
	g_assert_nonnull(strstr(r.error->message, "gave no one-line answer: a\nb"));
	reply_clear(&r);
	r = ask("/nonexistent/systemctl", "is-system-running", 10);
	g_assert_error(r.error, HERD_ERROR, HERD_ERR_IO);
	g_assert_nonnull(strstr(r.error->message, "Cannot run '/nonexistent/systemctl is-system-running'"));
	reply_clear(&r);
	r = ask("sh -c 'echo \"unclosed", "is-system-running", 10);
	g_assert_nonnull(strstr(r.error->message, "Cannot run"));
	reply_clear(&r);
	r = ask("sh -c 'exec sleep 30'", "is-system-running", 1);
	g_assert_error(r.error, HERD_ERROR, HERD_ERR_TIMEOUT);
	g_assert_cmpstr(r.error->message, ==,
			"'sh -c 'exec sleep 30' is-system-running' did not finish within 1 s.");
	reply_clear(&r);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/service-cmd/answers", test_answers);
	g_test_add_func("/service-cmd/errors", test_errors);
	return g_test_run();
}
