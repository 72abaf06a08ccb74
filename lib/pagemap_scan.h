/* SPDX-License-Identifier: MIT */
/*
 * PAGEMAP_SCAN, the ioctl of /proc/PID/pagemap since Linux 6.7 (not in
 * Debian 12's headers): the runs of pages of a range that match a mask of
 * categories, each with its categories, and with PMSCAN_WP_MATCHING the
 * pages found write-protected again in the same walk (userfaultfd's
 * asynchronous write-protect mode). Used by the dump (dump/dump_mm.c: the
 * pages to save; dump/dump_incr.c: write tracking) and ckptctl check.
 * Our names, so that a header that has the kernel's never clashes.
 */
#ifndef CKPT_PAGEMAP_SCAN_H
#define CKPT_PAGEMAP_SCAN_H

#include <stdint.h>
#include <sys/ioctl.h>

struct pmscan_region {
	uint64_t start, end, categories;
};

struct pmscan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define PMSCAN_IOCTL _IOWR('f', 16, struct pmscan_arg)

/* flags */
#define PMSCAN_WP_MATCHING (1ULL << 0)

/* categories */
#define PMSCAN_IS_WPALLOWED (1ULL << 0) /* in an area registered for write-protect */
#define PMSCAN_IS_WRITTEN (1ULL << 1)
#define PMSCAN_IS_FILE (1ULL << 2)
#define PMSCAN_IS_PRESENT (1ULL << 3)
#define PMSCAN_IS_SWAPPED (1ULL << 4)
#define PMSCAN_IS_PFNZERO (1ULL << 5)
#define PMSCAN_IS_GUARD (1ULL << 8) /* Linux 6.14 */

/*
 * Incremental dumps (docs/incremental.md): a page is clean, perhaps still
 * the parent's, if present, in an area registered for write-protect, not
 * written since it was protected, and not the zero page. The categories to
 * ask for, and the test of what came back.
 */
#define PMSCAN_CLEAN_MASK                                                                          \
	(PMSCAN_IS_WPALLOWED | PMSCAN_IS_PRESENT | PMSCAN_IS_WRITTEN | PMSCAN_IS_PFNZERO)

static inline int pmscan_is_clean(uint64_t categories)
{
	return (categories & PMSCAN_CLEAN_MASK) == (PMSCAN_IS_WPALLOWED | PMSCAN_IS_PRESENT);
}

#endif
