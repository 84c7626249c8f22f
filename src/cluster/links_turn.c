#include "cluster/links_turn.h"

#include <stdbool.h>

size_t links_turn(const uint32_t *ids, size_t n, uint32_t *next, size_t max, uint32_t *out)
{
	size_t taken = 0;
	uint32_t from = *next;
	bool wrapped = false;
	while (taken < max && taken < n) {
		/* the lowest id from @from on */
		bool found = false;
		uint32_t best = 0;
		for (size_t i = 0; i < n; i++)
			if (ids[i] >= from && (!found || ids[i] < best)) {
				best = ids[i];
				found = true;
			}
		if (!found) {
			if (wrapped)
				break;
			wrapped = true;
			from = 0;
			continue;
		}
		out[taken++] = best;
		from = best + 1; /* 0 after UINT32_MAX: the turn starts again */
	}
	*next = from;
	return taken;
}
