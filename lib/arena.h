/* SPDX-License-Identifier: MIT */
/*
 * An arena: one anonymous mapping handed out from its start, nothing freed
 * before the whole. The restorer unpacks each task's images into it, one
 * task after another, each from a page boundary: a fork can then leave out
 * the images of the tasks the child has nothing to do with (MADV_DONTFORK
 * over their pages), which a malloc heap mixing every task's allocations
 * could not (docs/restore.md, "What a fork hands down").
 *
 * Its protobuf-c allocator (arena->pb) falls back to malloc once the
 * mapping is full: a message unpacked there is still whole, it is only
 * inherited by every fork. Its free frees only what malloc gave.
 */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/*
 * Under AddressSanitizer (the ASan build, the fuzzers) the allocator gives
 * malloc's memory only: its red zones catch a read past an unpacked array,
 * which the arena's would not.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_PB_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_PB_MALLOC 1
#endif
#endif
#ifndef ARENA_PB_MALLOC
#define ARENA_PB_MALLOC 0
#endif

struct arena {
	unsigned char *base;
	size_t size; /* mapped, a multiple of the page size */
	size_t used;
	size_t populated; /* [0, populated) has its pages (arena_alloc) */
	size_t spilled; /* bytes malloc gave once it was full */
	ProtobufCAllocator pb;
};

/*
 * Map size bytes (rounded up to pages; untouched pages cost nothing). forked:
 * forks will hand parts of it down (arena_inherit), so 4 KiB pages; else
 * huge pages where the kernel gives them, whose first touch costs a
 * fraction of 512 small ones' (lib/thp.h): the dump's own check of its
 * images, in the freeze, unpacks them into fresh memory.
 */
int arena_init(struct arena *a, size_t size, bool forked, struct ckpt_error *e);
void arena_fini(struct arena *a);
/* n bytes aligned for any type, or NULL if the arena is full. */
void *arena_alloc(struct arena *a, size_t n);
bool arena_owns(const struct arena *a, const void *p);
/* Everything unpacked is in the mapping: arena_fini frees it all, no message needs walking. */
bool arena_holds_all(const struct arena *a);
/* Start what comes next on a page of its own; the offset it starts at. */
size_t arena_page_break(struct arena *a);
/*
 * Whether a fork copies the pages of [lo, hi) (offsets, page-aligned, as
 * arena_page_break gives them): MADV_DOFORK or MADV_DONTFORK.
 */
int arena_inherit(const struct arena *a, size_t lo, size_t hi, bool inherit, struct ckpt_error *e);
