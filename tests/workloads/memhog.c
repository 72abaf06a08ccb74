/* SPDX-License-Identifier: MIT */
/*
 * memhog MIB LOG READY [--interval MS] [--seed N] [--rewrite]
 *
 * Fills MIB MiB of anonymous memory with xorshift64 data, logs
 * "start <mib> <seed> <checksum>" and creates READY (holding its pid). Then,
 * every interval (100 ms), it regenerates the stream from the seed, compares
 * every word of the area and logs either "ok <iteration> <checksum>" or
 * "CORRUPT <iteration> ..." naming the first bad offset. The iteration
 * counter lives in memory and must only grow by one per line, across a
 * dump and restore too.
 *
 * --rewrite: after each check, the whole area is written again from a new
 * seed (seed and checksum live in memory), so the program writes to its
 * memory all the time, right after a --leave-running dump resumes it too.
 * A dump that saved any page as it was after the freeze rather than at it
 * restores an area that mixes two generations: the next check reports
 * CORRUPT. The "ok" lines then carry each generation's checksum.
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "wl.h"

struct memhog {
	uint64_t *area;
	size_t words;
	uint64_t seed;
	uint64_t checksum; /* recorded at fill time */
	uint64_t iteration;
	int log;
};

static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
	return ((h << 1) | (h >> 63)) ^ w;
}

static void fill(struct memhog *m)
{
	uint64_t s = m->seed, h = 0;

	for (size_t i = 0; i < m->words; i++) {
		m->area[i] = xorshift64(&s);
		h = mix(h, m->area[i]);
	}
	m->checksum = h;
}

/* Compare the area to the regenerated stream; log the result. */
static void verify(struct memhog *m)
{
	uint64_t s = m->seed, h = 0;
	size_t bad = 0, first_bad = 0;
	uint64_t want_first = 0, got_first = 0;

	for (size_t i = 0; i < m->words; i++) {
		uint64_t want = xorshift64(&s), got = m->area[i];

		h = mix(h, got);
		if (got != want) {
			if (!bad++) {
				first_bad = i;
				want_first = want;
				got_first = got;
			}
		}
	}
	m->iteration++;
	if (bad || h != m->checksum)
		wl_log(m->log,
		       "CORRUPT %" PRIu64 " bad_words %zu first_offset 0x%zx want %016" PRIx64
		       " got %016" PRIx64 " checksum %016" PRIx64 " expected %016" PRIx64,
		       m->iteration, bad, first_bad * 8, want_first, got_first, h, m->checksum);
	else
		wl_log(m->log, "ok %" PRIu64 " %016" PRIx64, m->iteration, h);
}

int main(int argc, char **argv)
{
	struct memhog m = {.seed = 0x9e3779b97f4a7c15ULL};
	long interval_ms = 100;
	bool rewrite = false;
	size_t mib;

	if (argc < 4)
		wl_die("usage: memhog MIB LOG READY [--interval MS] [--seed N] [--rewrite]");
	for (int i = 4; i < argc; i += 2) {
		if (!strcmp(argv[i], "--rewrite")) {
			rewrite = true;
			i--;
		} else if (i + 1 == argc)
			wl_die("memhog: %s needs a value", argv[i]);
		else if (!strcmp(argv[i], "--interval"))
			interval_ms = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--seed"))
			m.seed = strtoull(argv[i + 1], NULL, 0) | 1;
		else
			wl_die("memhog: unknown option %s", argv[i]);
	}
	wl_close_inherited();
	mib = strtoul(argv[1], NULL, 10);
	if (mib == 0 || mib > (1 << 20))
		wl_die("memhog: bad size %s", argv[1]);
	m.log = wl_open_log(argv[2]);
	m.words = mib * (1024 * 1024 / sizeof(uint64_t));
	m.area = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m.area == MAP_FAILED)
		wl_die("memhog: mmap %zu MiB: %s", mib, strerror(errno));

	fill(&m);
	wl_log(m.log, "start %zu %" PRIu64 " %016" PRIx64, mib, m.seed, m.checksum);
	wl_ready(argv[3]);
	for (;;) {
		if (interval_ms)
			wl_sleep(interval_ms / 1000.0);
		verify(&m);
		if (rewrite) {
			m.seed = (m.seed * 0x9e3779b97f4a7c15ULL + 1) | 1;
			fill(&m);
		}
	}
}
