/* SPDX-License-Identifier: MIT */
/*
 * Transparent huge pages for ckpt's own buffers. On these machines each
 * 4 KiB page of fresh memory costs about 7 us on its first access through
 * its address, from user mode or from the kernel (copy_from_user), even
 * after MADV_POPULATE_WRITE; a 2 MiB huge page costs that once.
 * docs/architecture.md, "Fresh memory".
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define THP_SIZE ((size_t)2 << 20)

/* Anonymous private memory of len bytes, at an address aligned to THP_SIZE,
 * huge pages asked for (MADV_HUGEPAGE; a hint: where the kernel gives none,
 * 4 KiB pages). NULL with errno set on failure. Freed with thp_unmap. */
void *thp_map(size_t len);
void thp_unmap(void *p, size_t len);
/* Ask for huge pages in the THP_SIZE-aligned part of [p, p + len). */
void thp_advise(void *p, size_t len);
/* The THP_SIZE-aligned part [*s, *e) of [start, end): false if none. */
bool thp_inner(uint64_t start, uint64_t end, uint64_t *s, uint64_t *e);
