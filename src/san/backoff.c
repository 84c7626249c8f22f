#include "san/backoff.h"

uint64_t san_backoff_exit(san_backoff *b, uint64_t ran_ms)
{
	if (ran_ms >= SAN_BACKOFF_STABLE_MS)
		b->quick_exits = 0;
	if (b->quick_exits < 64)
		b->quick_exits++;
	uint64_t delay = SAN_BACKOFF_FIRST_MS;
	for (unsigned i = 1; i < b->quick_exits && delay < SAN_BACKOFF_MAX_MS; i++)
		delay *= 2;
	return delay < SAN_BACKOFF_MAX_MS ? delay : SAN_BACKOFF_MAX_MS;
}

bool san_backoff_alarming(const san_backoff *b)
{
	return b->quick_exits >= SAN_BACKOFF_ALARM_EXITS;
}

unsigned san_link_retry_ms(unsigned failures)
{
	unsigned ms = SAN_LINK_RETRY_FIRST_MS;
	for (unsigned i = 1; i < failures && ms < SAN_LINK_RETRY_MAX_MS; i++)
		ms *= 2;
	return ms < SAN_LINK_RETRY_MAX_MS ? ms : SAN_LINK_RETRY_MAX_MS;
}
