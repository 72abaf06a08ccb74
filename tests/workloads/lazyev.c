/* SPDX-License-Identifier: MIT */
/*
 * lazyev MIB LOG READY GO
 *
 * Maps five areas of MIB MiB each (A..E), fills them with a pattern that
 * depends on the area and the word, logs "start" and creates READY. Then
 * it waits (stat() every 5 ms, touching none of the areas) until the file
 * GO exists: the test creates it right after a restore --lazy, so what
 * follows runs while the areas are still missing pages. It then, in this
 * order, touching each area only through the step:
 *   fork   the child checks all of A and writes a word of each page of its
 *          copy of A's first half, then exits; the parent checks A after
 *          the child is gone (the child's writes must not show);
 *   munmap the first half of B, maps fresh memory there: must read zeros;
 *          the second half of B must hold its pattern;
 *   mremap C moved to a new address (old one freed): the pattern there;
 *   DONTNEED the first half of D: zeros; the second half: the pattern;
 *   E      untouched until the end, then checked.
 * Logs "ok <step>" or "BAD <step> ..." for each, then "done", and sleeps.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wl.h"

static uint64_t pattern(int area, size_t i)
{
	uint64_t x = ((uint64_t)area << 56) ^ (i * 0x9e3779b97f4a7c15ULL) ^ 0x5bd1e995;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 32);
}

/* Words [from, to) of area id at p: the pattern (want_zero: zeros)? */
static int check(int log, const char *step, int id, const uint64_t *p, size_t from, size_t to,
		 int want_zero)
{
	for (size_t i = from; i < to; i++) {
		uint64_t want = want_zero ? 0 : pattern(id, i);

		if (p[i - from] != want) {
			wl_log(log, "BAD %s area %c word %zu: %016" PRIx64 " want %016" PRIx64, step,
			       'A' + id, i, p[i - from], want);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum { A, B, C, D, E, N };
	uint64_t *area[N];
	size_t mib, len, words, half;
	struct stat st;
	int log, bad = 0;
	pid_t child;

	if (argc != 5)
		wl_die("usage: lazyev MIB LOG READY GO");
	wl_close_inherited();
	mib = strtoul(argv[1], NULL, 10);
	len = mib << 20;
	words = len / 8;
	half = words / 2;
	log = wl_open_log(argv[2]);
	for (int a = 0; a < N; a++) {
		area[a] = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (area[a] == MAP_FAILED)
			wl_die("mmap: %s", strerror(errno));
		/* no huge pages: the page-by-page steps below are about 4 KiB pages */
		madvise(area[a], len, MADV_NOHUGEPAGE);
		for (size_t i = 0; i < words; i++)
			area[a][i] = pattern(a, i);
	}
	wl_log(log, "start %zu", mib);
	wl_ready(argv[3]);
	while (stat(argv[4], &st) < 0)
		usleep(5000);

	/* fork */
	child = fork();
	if (child == 0) {
		int r = check(log, "fork-child", A, area[A], 0, words, 0);

		for (size_t i = 0; i < half; i += 512)
			area[A][i] = 0xdeadbeef;
		_exit(r < 0 ? 1 : 0);
	}
	if (child < 0) {
		wl_log(log, "BAD fork: %s", strerror(errno));
		bad = 1;
	} else {
		int status = 0;

		waitpid(child, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad = 1, wl_log(log, "BAD fork: child status %#x", status);
		if (check(log, "fork-parent", A, area[A], 0, words, 0) < 0)
			bad = 1;
		else
			wl_log(log, "ok fork");
	}

	/* munmap, and fresh memory at the same place */
	if (munmap(area[B], half * 8) < 0 ||
	    mmap(area[B], half * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) == MAP_FAILED) {
		wl_log(log, "BAD munmap: %s", strerror(errno));
		bad = 1;
	} else if (check(log, "munmap-fresh", B, area[B], 0, half, 1) < 0 ||
		   check(log, "munmap-rest", B, area[B] + half, half, words, 0) < 0) {
		bad = 1;
	} else {
		wl_log(log, "ok munmap");
	}

	/* mremap: moved elsewhere (a reserved spot, freed first) */
	{
		void *to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *moved = to == MAP_FAILED ? MAP_FAILED
					       : mremap(area[C], len, len,
							MREMAP_MAYMOVE | MREMAP_FIXED, to);

		if (moved == MAP_FAILED) {
			wl_log(log, "BAD mremap: %s", strerror(errno));
			bad = 1;
		} else if (check(log, "mremap", C, moved, 0, words, 0) < 0) {
			bad = 1;
		} else {
			area[C] = moved;
			wl_log(log, "ok mremap");
		}
	}

	/* madvise(DONTNEED) */
	if (madvise(area[D], half * 8, MADV_DONTNEED) < 0) {
		wl_log(log, "BAD dontneed: %s", strerror(errno));
		bad = 1;
	} else if (check(log, "dontneed-zero", D, area[D], 0, half, 1) < 0 ||
		   check(log, "dontneed-rest", D, area[D] + half, half, words, 0) < 0) {
		bad = 1;
	} else {
		wl_log(log, "ok dontneed");
	}

	if (check(log, "untouched", E, area[E], 0, words, 0) < 0)
		bad = 1;
	else
		wl_log(log, "ok untouched");
	wl_log(log, bad ? "done BAD" : "done");
	for (;;)
		pause();
}
