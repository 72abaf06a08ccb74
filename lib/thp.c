/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <sys/mman.h>

#include "thp.h"

void thp_advise(void *p, size_t len)
{
	uintptr_t s = ((uintptr_t)p + THP_SIZE - 1) & ~(uintptr_t)(THP_SIZE - 1);
	uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)(THP_SIZE - 1);

	if (s < e)
		madvise((void *)s, e - s, MADV_HUGEPAGE);
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
