/*
 * The local disk under an eSAN replica (san/disk_health.h): an I/O error
 * detaches it only when the peer is in sync, I/O waits until the store has
 * it outdated, then goes to the peer; a lost peer leaves nothing (EIO);
 * nothing ever returns to healthy without a restart.
 */
#include "san/disk_health.h"

#include <glib.h>

static void test_detach(void)
{
	san_disk s = SAN_DISK_HEALTHY;
	g_assert_cmpint(san_disk_route(s), ==, SAN_ROUTE_LOCAL);
	s = san_disk_on_error(s, true);
	g_assert_cmpstr(san_disk_name(s), ==, "detaching");
	g_assert_cmpint(san_disk_route(s), ==, SAN_ROUTE_WAIT);
	/* a second error (another thread's write) changes nothing */
	g_assert_cmpint(san_disk_on_error(s, false), ==, SAN_DISK_DETACHING);
	s = san_disk_on_recorded(s);
	g_assert_cmpstr(san_disk_name(s), ==, "detached");
	g_assert_cmpint(san_disk_route(s), ==, SAN_ROUTE_PEER);
	g_assert_cmpint(san_disk_on_error(s, true), ==, SAN_DISK_DETACHED);
	g_assert_cmpint(san_disk_on_recorded(s), ==, SAN_DISK_DETACHED);
	/* the peer lost while detached: no replica left */
	s = san_disk_on_peer_lost(s);
	g_assert_cmpstr(san_disk_name(s), ==, "failed");
	g_assert_cmpint(san_disk_route(s), ==, SAN_ROUTE_FAIL);
	g_assert_cmpint(san_disk_on_recorded(s), ==, SAN_DISK_FAILED);
}

static void test_no_peer(void)
{
	/* the peer away, behind or a sync target: nothing to detach to */
	san_disk s = san_disk_on_error(SAN_DISK_HEALTHY, false);
	g_assert_cmpint(s, ==, SAN_DISK_FAILED);
	g_assert_cmpint(san_disk_route(s), ==, SAN_ROUTE_FAIL);
	g_assert_cmpint(san_disk_on_error(s, true), ==, SAN_DISK_FAILED);
	/* lost while the store is being asked: failed, the held I/O fails */
	s = san_disk_on_peer_lost(san_disk_on_error(SAN_DISK_HEALTHY, true));
	g_assert_cmpint(s, ==, SAN_DISK_FAILED);
	/* a healthy disk does not care for the link */
	g_assert_cmpint(san_disk_on_peer_lost(SAN_DISK_HEALTHY), ==, SAN_DISK_HEALTHY);
	g_assert_cmpint(san_disk_on_recorded(SAN_DISK_HEALTHY), ==, SAN_DISK_HEALTHY);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/san_disk_health/detach", test_detach);
	g_test_add_func("/san_disk_health/no-peer", test_no_peer);
	return g_test_run();
}
