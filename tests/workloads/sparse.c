/* SPDX-License-Identifier: MIT */
/*
 * sparse LOG READY RUNS...
 *
 * One private anonymous area per RUNS argument, each touched in exactly that
 * many runs of pages (1..7 pages long, gaps of 1..30 pages, from a fixed
 * seed), the way an allocator leaves a heap: the page-finding walk of a dump
 * has to return many separate regions of one area. Every touched page holds
 * a stamp of its area and page number; the pages between runs are never
 * touched. Each area's last page (never touched) is made read-only: two
 * areas of the kernel's each, side by side, which the dump walks in one
 * PAGEMAP_SCAN (dump/dump_mm.c, scan_group). Logs "start <areas> <pages>" and creates READY; then,
 * every 100 ms, checks every page of every area (stamped pages intact, untouched pages still not
 * resident: mincore) and logs "ok <iteration> <pages>" or "CORRUPT ..." naming the first bad page.
 */
#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>

#include "wl.h"

#define PG 4096UL
#define MAX_AREAS 16

struct area {
	uint64_t *base;
	size_t npages;
	uint8_t *touched; /* per page: stamped by us */
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint64_t stamp(size_t a, size_t pg, size_t word)
{
	return 0x5350415253450000ULL ^ ((uint64_t)a << 40) ^ ((uint64_t)pg << 8) ^ word;
}

static void area_make(struct area *ar, size_t idx, long runs, uint64_t *seed)
{
	size_t len = 0;
	uint64_t s = *seed;

	for (long r = 0; r < runs; r++)
		len += 1 + rnd(&s) % 7 + 1 + rnd(&s) % 30;
	ar->npages = len + 1;
	ar->base = mmap(NULL, ar->npages * PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ar->base == MAP_FAILED)
		wl_die("sparse: mmap %zu pages: %s", ar->npages, strerror(errno));
	/* whole pages only: no transparent huge page fills the gaps */
	madvise(ar->base, ar->npages * PG, MADV_NOHUGEPAGE);
	ar->touched = calloc(ar->npages, 1);
	if (!ar->touched)
		wl_die("sparse: out of memory");
	for (long r = 0, pg = 0; r < runs; r++) {
		long n = 1 + rnd(seed) % 7, gap = 1 + rnd(seed) % 30;

		for (long k = 0; k < n; k++, pg++) {
			uint64_t *w = ar->base + pg * (PG / 8);

			ar->touched[pg] = 1;
			for (size_t i = 0; i < PG / 8; i += 64)
				w[i] = stamp(idx, pg, i);
		}
		pg += gap;
	}
	if (mprotect(ar->base + (ar->npages - 1) * (PG / 8), PG, PROT_READ) < 0)
		wl_die("sparse: mprotect: %s", strerror(errno));
}

/* 0 if every page of the area is as made; else the first bad page + 1. */
static size_t area_check(const struct area *ar, size_t idx, const char **why)
{
	static unsigned char vec[1 << 20];

	if (ar->npages > sizeof(vec))
		wl_die("sparse: area too large");
	if (mincore(ar->base, ar->npages * PG, vec) < 0)
		wl_die("sparse: mincore: %s", strerror(errno));
	for (size_t pg = 0; pg < ar->npages; pg++) {
		const uint64_t *w = ar->base + pg * (PG / 8);

		if (!ar->touched[pg]) {
			/* an untouched page must not have come into being */
			if (vec[pg] & 1) {
				*why = "untouched page is present";
				return pg + 1;
			}
			continue;
		}
		for (size_t i = 0; i < PG / 8; i += 64)
			if (w[i] != stamp(idx, pg, i)) {
				*why = "stamp differs";
				return pg + 1;
			}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct area areas[MAX_AREAS];
	size_t nareas = 0, pages = 0;
	uint64_t seed = 0x2545f4914f6cdd1dULL, iteration = 0;
	int log;

	if (argc < 4 || argc - 3 > MAX_AREAS)
		wl_die("usage: sparse LOG READY RUNS... (1 to %d areas)", MAX_AREAS);
	wl_close_inherited();
	log = wl_open_log(argv[1]);
	for (int i = 3; i < argc; i++, nareas++) {
		long runs = atol(argv[i]);

		if (runs <= 0 || runs > 1000000)
			wl_die("sparse: bad run count %s", argv[i]);
		area_make(&areas[nareas], nareas, runs, &seed);
		for (size_t pg = 0; pg < areas[nareas].npages; pg++)
			pages += areas[nareas].touched[pg];
	}
	wl_log(log, "start %zu %zu", nareas, pages);
	wl_ready(argv[2]);
	for (;;) {
		wl_sleep(0.1);
		iteration++;
		for (size_t a = 0; a < nareas; a++) {
			const char *why = NULL;
			size_t bad = area_check(&areas[a], a, &why);

			if (bad) {
				wl_log(log, "CORRUPT %" PRIu64 " area %zu page %zu: %s", iteration, a,
				       bad - 1, why);
				break;
			}
			if (a + 1 == nareas)
				wl_log(log, "ok %" PRIu64 " %zu", iteration, pages);
		}
	}
}
