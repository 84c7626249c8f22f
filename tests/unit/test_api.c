#include "common/json.h"
#include "testcall.h"
#include "testloop.h"
#include "testnode.h"

#include <string.h>

static void test_smoke(void)
{
	g_autoptr(testcluster) tc = testcluster_new(3, NULL);
	testnode *n1 = testcluster_node(tc, 1);
	g_autoptr(test_answer) a = test_request(n1, "GET", "/api/v1/nodes", NULL);
	json_t *j = test_expect(a, 200);
	g_assert_cmpuint(json_array_size(j), ==, 3);
	g_printerr("%s\n", a->text);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	test_log_init();
	g_test_add_func("/api/smoke", test_smoke);
	return g_test_run();
}
