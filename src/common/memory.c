#include "common/memory.h"

#include <stdlib.h> /* defines __GLIBC__ with glibc */
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define MMAP_THRESHOLD (1 << 20)

void herd_malloc_init(void)
{
#ifdef __GLIBC__
	mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
#endif
}

void herd_malloc_release(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}
