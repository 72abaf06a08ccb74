/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <sys/mman.h>

#include "thp.h"

bool thp_inner(uint64_t start, uint64_t end, uint64_t *s, uint64_t *e)
{
	*s = (start + THP_SIZE - 1) & ~(uint64_t)(THP_SIZE - 1);
	*e = end & ~(uint64_t)(THP_SIZE - 1);
	return *s < *e;
}

void thp_advise(void *p, size_t len)
{
	uint64_t s, e;

	if (thp_inner((uintptr_t)p, (uintptr_t)p + len, &s, &e))
		madvise((void *)(uintptr_t)s, e - s, MADV_HUGEPAGE);
}

void *thp_map(size_t len)
{
	/* over-allocate by one huge page, then give back what lies outside */
	size_t span = len + THP_SIZE;
	char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p, *end;

	if (m == MAP_FAILED)
		return NULL;
	p = (char *)(((uintptr_t)m + THP_SIZE - 1) & ~(uintptr_t)(THP_SIZE - 1));
	end = p + ((len + 4095) & ~(size_t)4095);
	if (p > m)
		munmap(m, (size_t)(p - m));
	if (m + span > end)
		munmap(end, (size_t)(m + span - end));
	thp_advise(p, len);
	return p;
}

void thp_unmap(void *p, size_t len)
{
	if (p)
		munmap(p, (len + 4095) & ~(size_t)4095);
}
