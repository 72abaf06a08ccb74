/* SPDX-License-Identifier: MIT */
/*
 * incr LOG READY [NCHILD]: memory that changes between incremental dumps
 * (tests/e2e/test_incr.sh). Each process (the root, and NCHILD children
 * forked after the memory is filled: they share it copy-on-write) keeps a
 * table of areas: a large one filled with pseudo-random bytes, one to be
 * unmapped, one to be moved with mremap, one to be partly dropped with
 * MADV_DONTNEED. SIGUSR1 runs the next round of changes in every process
 * (the root passes it on):
 *
 *   round 1: writes pages of the large area, unmaps one area, moves one
 *            (mremap MREMAP_FIXED), drops part of one (DONTNEED), reads
 *            the dropped part back and writes some of it, maps a new one;
 *   round 2: writes other pages, moves the new area, unmaps part of the
 *            moved one, drops and rewrites another part, maps another;
 *   round 3: writes again half of the pages of the large area round 1
 *            wrote, moves 8 pages round 1 wrote onto 8 others it wrote
 *            (mremap inside an area: it splits in two), drops pages round
 *            2 wrote and reads some of them back (tests/e2e/
 *            test_incr_cases: pages copied before a dump's freeze, changed
 *            before it).
 *
 * With NCHILD > 0 the root also forks one more child at the end of round 1
 * (P<NCHILD+1>: a task born after the first dump).
 *
 * After each round every process logs "P<i> sum <round> <hash>" (a hash of
 * the address, length and bytes of each of its areas) then "P<i> ready
 * <round>". SIGUSR2: every process logs "P<i> check <hash>" of what it has
 * now. A restore is exact if the check equals the last sum.
 */
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "wl.h"

#define PG 4096UL
#define MAXA 16

struct area {
	char *p;
	size_t len;
};

static struct area areas[MAXA];
static int nareas;
static volatile sig_atomic_t go_round, go_check;
static int logfd, idx;
static pid_t kids[8];
static size_t written1[8]; /* offsets of the pages of area 0 round 1 wrote */
static int nkids;
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static char *map(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	return p;
}

static void fill(char *p, size_t len)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = next();

		memcpy(p + i, &v, 8);
	}
}

static int add(char *p, size_t len)
{
	areas[nareas] = (struct area){p, len};
	return nareas++;
}

static uint64_t hash(void)
{
	uint64_t h = 1469598103934665603ULL;

	for (int i = 0; i < nareas; i++) {
		const uint64_t *w = (const uint64_t *)areas[i].p;

		if (!areas[i].p)
			continue;
		h = (h ^ (uint64_t)(uintptr_t)areas[i].p) * 1099511628211ULL;
		h = (h ^ areas[i].len) * 1099511628211ULL;
		for (size_t k = 0; k < areas[i].len / 8; k++)
			h = (h ^ w[k]) * 1099511628211ULL;
	}
	return h;
}

static void logf_(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	wl_write_all(logfd, buf, (size_t)n);
}

/* Move area i somewhere else (a fresh reservation), keeping its pages. */
static void move(int i)
{
	char *dst = mmap(NULL, areas[i].len + 64 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			 0);
	char *p;

	if (dst == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	dst += 32 * PG; /* not adjacent to anything of ours */
	p = mremap(areas[i].p, areas[i].len, areas[i].len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (p == MAP_FAILED)
		wl_die("mremap: %s", strerror(errno));
	munmap(dst - 32 * PG, 32 * PG);
	munmap(dst + areas[i].len, 32 * PG);
	areas[i].p = p;
}

static void round_(int r)
{
	volatile uint64_t sink = 0;

	if (r == 1) {
		/* 8 pages of the large area */
		for (int k = 0; k < 8; k++) {
			written1[k] = (next() % (areas[0].len / PG)) * PG;
			areas[0].p[written1[k] + 100] ^= 0x5a;
		}
		munmap(areas[1].p, areas[1].len);
		areas[1].p = NULL;
		move(2);
		/* drop 128 pages of 512, read them back (zeros), write 16 */
		madvise(areas[3].p + 64 * PG, 128 * PG, MADV_DONTNEED);
		for (size_t k = 64; k < 192; k++)
			sink += (uint64_t)areas[3].p[k * PG];
		for (size_t k = 64; k < 80; k++)
			areas[3].p[k * PG + 7] = (char)(k + idx);
		{
			int n = add(map(128 * PG), 128 * PG);

			fill(areas[n].p, areas[n].len);
		}
	} else if (r == 2) {
		for (int k = 0; k < 16; k++)
			areas[0].p[(next() % (areas[0].len / PG)) * PG + 200] ^= 0x33;
		move(4);
		/* the first 64 pages of the moved area go */
		munmap(areas[2].p, 64 * PG);
		areas[2].p += 64 * PG;
		areas[2].len -= 64 * PG;
		madvise(areas[3].p + 300 * PG, 100 * PG, MADV_DONTNEED);
		for (size_t k = 300; k < 400; k++)
			sink += (uint64_t)areas[3].p[k * PG + 1];
		for (size_t k = 390; k < 400; k++)
			areas[3].p[k * PG] = 'x';
		/* dropped and never touched again: a hole */
		madvise(areas[3].p + 450 * PG, 20 * PG, MADV_DONTNEED);
		{
			int n = add(map(64 * PG), 64 * PG);

			fill(areas[n].p, areas[n].len);
		}
	} else if (r == 3) {
		/* pages written in rounds 1 and 2 again: half of round 1's in
		 * the large area, ... */
		for (int k = 0; k < 4; k++)
			areas[0].p[written1[k] + 300] ^= 0x77;
		/* ... round 1's 64-71 of area 3 moved onto its 72-79 (the area
		 * splits in two around the hole left at 64-71) ... */
		if (mremap(areas[3].p + 64 * PG, 8 * PG, 8 * PG, MREMAP_MAYMOVE | MREMAP_FIXED,
			   areas[3].p + 72 * PG) == MAP_FAILED)
			wl_die("mremap: %s", strerror(errno));
		add(areas[3].p + 72 * PG, areas[3].len - 72 * PG);
		areas[3].len = 64 * PG;
		/* ... and round 2's 390-394 of it dropped, 390-392 read back */
		madvise(areas[nareas - 1].p + (390 - 72) * PG, 5 * PG, MADV_DONTNEED);
		for (size_t k = 390; k < 393; k++)
			sink += (uint64_t)areas[nareas - 1].p[(k - 72) * PG + 3];
	}
	(void)sink;
	if (r == 1 && idx == 0 && nkids > 0 && nkids < 8) {
		pid_t c = fork();

		if (c < 0)
			wl_die("fork: %s", strerror(errno));
		if (c == 0) {
			idx = nkids + 1;
			nkids = 0;
			areas[0].p[5 * PG] ^= 2;
		} else {
			kids[nkids++] = c;
		}
	}
}

static void on_usr1(int s)
{
	(void)s;
	go_round = 1;
}

static void on_usr2(int s)
{
	(void)s;
	go_check = 1;
}

int main(int argc, char **argv)
{
	int nchild = argc > 3 ? atoi(argv[3]) : 0, round = 0;
	struct sigaction sa = {0};
	sigset_t block, old;

	if (argc < 3)
		wl_die("usage: incr LOG READY [NCHILD]");
	wl_close_inherited();
	logfd = wl_open_log(argv[1]);
	add(map(4096 * PG), 4096 * PG);
	add(map(256 * PG), 256 * PG);
	add(map(256 * PG), 256 * PG);
	add(map(512 * PG), 512 * PG);
	for (int i = 0; i < 4; i++)
		fill(areas[i].p, areas[i].len);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, &old);
	for (int i = 0; i < nchild && i < 8; i++) {
		pid_t c = fork();

		if (c < 0)
			wl_die("fork: %s", strerror(errno));
		if (c == 0) {
			idx = i + 1;
			nkids = 0;
			rng ^= (uint64_t)idx * 0x1234567ULL;
			/* a few pages of its own right away */
			for (int k = 0; k < 4; k++)
				areas[0].p[(next() % 4096) * PG] ^= 1;
			break;
		}
		kids[nkids++] = c;
	}
	logf_("P%d sum 0 %016llx\n", idx, (unsigned long long)hash());
	logf_("P%d ready 0\n", idx);
	if (idx == 0)
		wl_ready(argv[2]);
	for (;;) {
		sigsuspend(&old);
		if (go_round) {
			go_round = 0;
			for (int i = 0; i < nkids; i++)
				kill(kids[i], SIGUSR1);
			round_(++round);
			logf_("P%d sum %d %016llx\n", idx, round, (unsigned long long)hash());
			logf_("P%d ready %d\n", idx, round);
		}
		if (go_check) {
			go_check = 0;
			for (int i = 0; i < nkids; i++)
				kill(kids[i], SIGUSR2);
			logf_("P%d check %016llx\n", idx, (unsigned long long)hash());
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}
