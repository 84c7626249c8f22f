/* The local disk's state under an eSAN replica (san/disk_health.h). */
#include "san/disk_health.h"

san_disk san_disk_on_error(san_disk s, bool peer_in_sync)
{
	if (s != SAN_DISK_HEALTHY)
		return s;
	return peer_in_sync ? SAN_DISK_DETACHING : SAN_DISK_FAILED;
}

san_disk san_disk_on_recorded(san_disk s)
{
	return s == SAN_DISK_DETACHING ? SAN_DISK_DETACHED : s;
}

san_disk san_disk_on_peer_lost(san_disk s)
{
	return s == SAN_DISK_DETACHING || s == SAN_DISK_DETACHED ? SAN_DISK_FAILED : s;
}

san_route san_disk_route(san_disk s)
{
	switch (s) {
	case SAN_DISK_HEALTHY:
		return SAN_ROUTE_LOCAL;
	case SAN_DISK_DETACHING:
		return SAN_ROUTE_WAIT;
	case SAN_DISK_DETACHED:
		return SAN_ROUTE_PEER;
	case SAN_DISK_FAILED:
		break;
	}
	return SAN_ROUTE_FAIL;
}

const char *san_disk_name(san_disk s)
{
	static const char *const names[] = {
		[SAN_DISK_HEALTHY] = "healthy",
		[SAN_DISK_DETACHING] = "detaching",
		[SAN_DISK_DETACHED] = "detached",
		[SAN_DISK_FAILED] = "failed",
	};
	return names[s];
}
