/* SPDX-License-Identifier: MIT */
/*
 * A pre-forked server: the parent fills MIB MiB of pseudo-random data, locks
 * its first MiB (mlock), then forks NCHILD workers that share it all
 * copy-on-write. Workers differ in what
 * they do to the shared data after the fork (by index % 4):
 *   0: nothing;
 *   1: rewrites 32 pages of it with their own pattern;
 *   2: drops 1 MiB of it (MADV_DONTNEED: reads as zeros from then on);
 *   3: writes one word in every 16th page of 4 MiB of it;
 * and each has a private 256 KiB buffer of its own pattern. Worker 1 forks
 * a worker of its own (index 100, role 2), which shares with it what it
 * shares with the parent, its own pages and its private buffer.
 *
 * Every process checks, once a second, a checksum of the whole shared area
 * and of its private buffer against the values it computed right after its
 * changes, plus the change itself (pattern present, dropped range zero),
 * and logs "ok PID ITER" or "CORRUPT PID ...". SIGUSR1 makes a process
 * write a new pattern into the first 16 pages of the area (shared with all
 * the others until then) and take the new checksum: "wrote PID GEN". Its
 * own view changes; nobody else's may.
 *
 * With "gc" after READY, the parent rewrites parts of the data while it
 * forks, as a garbage collector touching its objects does, so that workers
 * share pages with each other that the parent no longer has: it forks the
 * first half of the workers, rewrites the second quarter of the area,
 * forks the other half, then rewrites the second quarter again and the
 * third, and unmaps the fourth (it checks the first three quarters from
 * then on). The second quarter is then shared by the first half of the
 * workers (the first data) and by the second half (the parent's first
 * rewrite), the third and fourth quarters by every worker, and only the
 * first by the parent too.
 * SIGUSR1 then writes the first 16 pages of each of the first three
 * quarters.
 *
 * usage: prefork NCHILD MIB LOG READY [gc] (READY is made once every worker
 * made its changes and logged once)
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "wl.h"

#define PAGE 4096UL
#define PRIV_BYTES (256UL << 10)

static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Fletcher-like: position matters, cheap enough for 64 MiB a second. */
static uint64_t csum(const uint64_t *w, size_t n)
{
	uint64_t a = 1, b = 0;

	for (size_t i = 0; i < n; i++) {
		a += w[i];
		b += a;
	}
	return a ^ (b * 0x9e3779b97f4a7c15ULL);
}

struct view {
	uint64_t *area;
	size_t words, pages;
	uint64_t *priv;
	int role; /* -1: the parent */
	bool gc;  /* "gc": SIGUSR1 writes pages shared between workers only, too */
	size_t mod_page, mod_pages;
	uint64_t mod_seed;
	uint64_t area_sum, priv_sum;
	int gen;
};

static void fill(uint64_t *w, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		w[i] = xorshift(&seed);
}

static const char *check_mod(const struct view *v)
{
	const size_t wpp = PAGE / 8;

	switch (v->role) {
	case 1: {
		uint64_t seed = v->mod_seed;

		for (size_t i = 0; i < v->mod_pages * wpp; i++)
			if (v->area[v->mod_page * wpp + i] != xorshift(&seed))
				return "its pattern is gone";
		return NULL;
	}
	case 2:
		for (size_t i = 0; i < v->mod_pages * wpp; i++)
			if (v->area[v->mod_page * wpp + i])
				return "the range it dropped is not zero";
		return NULL;
	case 3:
		for (size_t p = 0; p < v->mod_pages; p += 16)
			if (v->area[(v->mod_page + p) * wpp] != v->mod_seed + p)
				return "a word it wrote is gone";
		return NULL;
	default:
		return NULL;
	}
}

static void modify(struct view *v, int idx)
{
	const size_t wpp = PAGE / 8;

	v->mod_seed = 0xc0ffee00ULL + (uint64_t)idx;
	switch (v->role) {
	case 1:
		v->mod_pages = 32;
		v->mod_page = (size_t)idx * 97 % (v->pages - 64) + 64;
		fill(v->area + v->mod_page * wpp, v->mod_pages * wpp, v->mod_seed);
		break;
	case 2:
		v->mod_pages = 256;
		v->mod_page = (size_t)idx * 331 % (v->pages - 512) + 64;
		if (madvise(v->area + v->mod_page * wpp, v->mod_pages * PAGE, MADV_DONTNEED) < 0)
			wl_die("madvise: %s", strerror(errno));
		break;
	case 3:
		v->mod_pages = 1024;
		v->mod_page = (size_t)idx * 53 % (v->pages - 1088) + 64;
		for (size_t p = 0; p < v->mod_pages; p += 16)
			v->area[(v->mod_page + p) * wpp] = v->mod_seed + p;
		break;
	}
}

static void run(struct view *v, int logfd, int idx)
{
	for (unsigned long iter = 1;; iter++) {
		const char *bad = NULL;

		if (usr1) {
			usr1 = 0;
			v->gen++;
			/* the first 16 pages: shared with every other process until now
			 * ("gc": and the first 16 of the second and third quarters) */
			for (int q = 0; q < (v->gc ? 3 : 1); q++)
				fill(v->area + q * v->words / 4, 16 * PAGE / 8,
				     0xfeed0000ULL + (uint64_t)getpid() * 100 + v->gen);
			v->area_sum = csum(v->area, v->words);
			wl_log(logfd, "wrote %d %d", getpid(), v->gen);
		}
		if (csum(v->area, v->words) != v->area_sum)
			bad = "the shared area's checksum changed";
		else if (csum(v->priv, PRIV_BYTES / 8) != v->priv_sum)
			bad = "the private buffer's checksum changed";
		else
			bad = check_mod(v);
		if (bad)
			wl_log(logfd, "CORRUPT %d %lu worker %d: %s", getpid(), iter, idx, bad);
		else
			wl_log(logfd, "ok %d %lu", getpid(), iter);
		wl_sleep(1.0);
	}
}

int main(int argc, char **argv)
{
	struct view v = {0};
	int nchild, mib, logfd, sync[2];
	struct sigaction sa = {.sa_handler = on_usr1};
	char c;

	if (argc != 5 && !(argc == 6 && !strcmp(argv[5], "gc")))
		wl_die("usage: prefork NCHILD MIB LOG READY [gc]");
	wl_close_inherited();
	nchild = atoi(argv[1]);
	mib = atoi(argv[2]);
	if (nchild < 1 || mib < 8)
		wl_die("prefork: NCHILD >= 1, MIB >= 8");
	logfd = wl_open_log(argv[3]);
	sigaction(SIGUSR1, &sa, NULL);
	v.words = (size_t)mib << 17;
	v.pages = v.words * 8 / PAGE;
	v.area =
	    mmap(NULL, v.words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v.area == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	fill(v.area, v.words, 0x1234567ULL);
	/* locked before the fork, shared with the workers all the same */
	if (mlock(v.area, 1UL << 20) < 0)
		wl_die("mlock: %s", strerror(errno));
	v.role = -1;
	v.gc = argc == 6;
	if (pipe(sync) < 0)
		wl_die("pipe: %s", strerror(errno));
	for (int i = 0; i < nchild; i++) {
		pid_t pid;

		if (v.gc && i == nchild / 2)
			fill(v.area + v.words / 4, v.words / 4, 0x5a5a0001ULL);
		pid = fork();

		if (pid < 0)
			wl_die("fork: %s", strerror(errno));
		if (pid)
			continue;
		close(sync[0]);
		v.role = i % 4;
		modify(&v, i);
		v.priv = malloc(PRIV_BYTES);
		if (!v.priv)
			wl_die("malloc");
		fill(v.priv, PRIV_BYTES / 8, 0xabc000ULL + (uint64_t)i);
		v.area_sum = csum(v.area, v.words);
		v.priv_sum = csum(v.priv, PRIV_BYTES / 8);
		wl_log(logfd, "worker %d pid %d role %d", i, getpid(), v.role);
		if (i == 1 && fork() == 0) {
			/* a worker of worker 1: shares what 1 shares with the parent,
			 * 1's own pages and private buffer, and drops a range */
			i = 100;
			v.role = 2;
			modify(&v, i);
			v.area_sum = csum(v.area, v.words);
			wl_log(logfd, "worker %d pid %d role %d", i, getpid(), v.role);
		}
		if (write(sync[1], "x", 1) != 1)
			wl_die("write: %s", strerror(errno));
		close(sync[1]);
		run(&v, logfd, i);
	}
	close(sync[1]);
	if (v.gc) {
		fill(v.area + v.words / 4, v.words / 4, 0x5a5a0002ULL);
		fill(v.area + v.words / 2, v.words / 4, 0x5a5a0003ULL);
		if (munmap(v.area + v.words / 4 * 3, v.words / 4 * 8) < 0)
			wl_die("munmap: %s", strerror(errno));
		v.words = v.words / 4 * 3;
	}
	/* every worker, and the worker of worker 1 */
	for (int i = 0; i < nchild + (nchild > 1); i++)
		if (read(sync[0], &c, 1) != 1)
			wl_die("a worker died while starting");
	close(sync[0]);
	v.priv = malloc(PRIV_BYTES);
	if (!v.priv)
		wl_die("malloc");
	fill(v.priv, PRIV_BYTES / 8, 0xabcfffULL);
	v.area_sum = csum(v.area, v.words);
	v.priv_sum = csum(v.priv, PRIV_BYTES / 8);
	wl_ready(argv[4]);
	run(&v, logfd, -1);
	return 0;
}
