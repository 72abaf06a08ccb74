/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arena.h"
#include "thp.h"

#define ARENA_ALIGN 16

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static void *pb_alloc(void *data, size_t n)
{
	struct arena *a = data;
	void *p = ARENA_PB_MALLOC ? NULL : arena_alloc(a, n);

	if (p)
		return p;
	p = malloc(n ? n : 1);
	if (p)
		a->spilled += n;
	return p;
}

static void pb_free(void *data, void *p)
{
	if (!arena_owns(data, p))
		free(p);
}

int arena_init(struct arena *a, size_t size, bool forked, struct ckpt_error *e)
{
	size_t ps = page_size();
	void *m;

	memset(a, 0, sizeof(*a));
	a->pb = (ProtobufCAllocator){.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
	a->size = (size + ps - 1) / ps * ps;
	if (!a->size)
		a->size = ps;
	if (forked)
		m = mmap(NULL, a->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	else
		m = thp_map(a->size) ?: MAP_FAILED;
	if (m == MAP_FAILED) {
		a->size = 0;
		return ckpt_err_errno(e, -errno, "mmap of %zu bytes for the images", size);
	}
	/* 4 KiB pages: a huge page would be split by the first arena_inherit */
	if (forked)
		madvise(m, a->size, MADV_NOHUGEPAGE);
	a->base = m;
	return 0;
}

void arena_fini(struct arena *a)
{
	if (a->base)
		munmap(a->base, a->size);
	a->base = NULL;
	a->size = a->used = 0;
}

/*
 * The pages of what is handed out are made ahead, in one call for as many
 * as the arena has used so far (16 KiB to 256 KiB): unpacking 10,000 small
 * messages touched a fresh page every dozen of them, and a fault costs
 * these machines more than the page (DESIGN.md); a small arena stays small.
 */
#define ARENA_AHEAD_MIN (16u << 10)
#define ARENA_AHEAD_MAX (256u << 10)

static void populate_to(struct arena *a, size_t end)
{
	size_t ps = page_size(), ahead = a->populated, to;

	if (end <= a->populated)
		return;
	if (ahead < ARENA_AHEAD_MIN)
		ahead = ARENA_AHEAD_MIN;
	if (ahead > ARENA_AHEAD_MAX)
		ahead = ARENA_AHEAD_MAX;
	to = (end + ps - 1) / ps * ps + ahead;
	if (to > a->size)
		to = a->size;
	/* (a failure only leaves the faults to do it: the kernel before 5.14) */
	madvise(a->base + a->populated, to - a->populated, MADV_POPULATE_WRITE);
	a->populated = to;
}

void *arena_alloc(struct arena *a, size_t n)
{
	size_t at = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

	if (!a->base || at >= a->size || n > a->size - at)
		return NULL;
	a->used = at + n;
	populate_to(a, a->used);
	return a->base + at;
}

bool arena_owns(const struct arena *a, const void *p)
{
	uintptr_t x = (uintptr_t)p, b = (uintptr_t)a->base;

	return a->base && x >= b && x < b + a->size;
}

bool arena_holds_all(const struct arena *a)
{
	return a->base && !a->spilled;
}

size_t arena_page_break(struct arena *a)
{
	size_t ps = page_size();

	a->used = (a->used + ps - 1) / ps * ps;
	if (a->used > a->size)
		a->used = a->size;
	return a->used;
}

int arena_inherit(const struct arena *a, size_t lo, size_t hi, bool inherit, struct ckpt_error *e)
{
	if (hi > a->size)
		hi = a->size;
	if (!a->base || lo >= hi)
		return 0;
	if (madvise(a->base + lo, hi - lo, inherit ? MADV_DOFORK : MADV_DONTFORK) < 0)
		return ckpt_err_errno(e, -errno, "madvise(%s) of images at %p, %zu bytes",
				      inherit ? "MADV_DOFORK" : "MADV_DONTFORK",
				      (void *)(a->base + lo), hi - lo);
	return 0;
}
