/* SPDX-License-Identifier: MIT */
/*
 * Copy-on-write sharing between a task and its parent (docs/cow.md): which
 * areas can hold pages the child inherited from the parent by fork. Used by
 * the dump (which pages it records as inherited), the verifier and the
 * restore (which parts of an area the child keeps from its parent).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "mm.pb-c.h"

/* Kinds of private areas whose pages are saved (and can be inherited). */
static inline bool vma_kind_has_pages(VmaKind k)
{
	return k == VMA_KIND__VMA_ANON_PRIVATE || k == VMA_KIND__VMA_FILE_PRIVATE ||
	       k == VMA_KIND__VMA_HEAP || k == VMA_KIND__VMA_STACK ||
	       k == VMA_KIND__VMA_SHMEM_PRIVATE;
}

/*
 * Can the part of child area c that overlaps parent area p be the parent's
 * mapping, inherited by fork? The same kind of private mapping with the
 * same mmap flags, of the same object at the same offset for file-backed
 * kinds. Protection and madvise state may differ: the restore sets the
 * child's own on the inherited mapping.
 */
static inline bool vma_cow_compatible(const Vma *c, const Vma *p)
{
	const uint32_t fl = MAP_GROWSDOWN | MAP_NORESERVE | MAP_SHARED | MAP_PRIVATE;

	if (c->kind != p->kind || !vma_kind_has_pages(c->kind) ||
	    (c->flags & fl) != (p->flags & fl) || !(c->flags & MAP_PRIVATE))
		return false;
	if (c->kind != VMA_KIND__VMA_FILE_PRIVATE && c->kind != VMA_KIND__VMA_SHMEM_PRIVATE)
		return true;
	return c->has_file_id && p->has_file_id && c->file_id == p->file_id &&
	       c->pgoff - c->start == p->pgoff - p->start;
}

/* Does the area's VmFlags (smaps) hold this two-letter flag? */
static inline bool vma_vmflag(const Vma *v, const char *f)
{
	const char *s = v->vmflags;
	size_t l = strlen(f);

	while (s && (s = strstr(s, f))) {
		if ((s == v->vmflags || s[-1] == ' ') && (s[l] == ' ' || s[l] == '\0'))
			return true;
		s += l;
	}
	return false;
}

/*
 * A kept area (restorer/cow.c) locked with mlock ("lo" without "lf"): the
 * task locks it itself before it forks. mlock faults a private writable
 * area in for writing, which would give a parent locking it after the fork
 * its own copy of every page it shares.
 */
static inline bool vma_cow_lock_before_fork(const Vma *v)
{
	return vma_vmflag(v, "lo") && !vma_vmflag(v, "lf");
}
