/* SPDX-License-Identifier: MIT */
/*
 * Work done for the freeze before it, while the tree still runs: the content
 * checksums of the files the tree maps (file_ident.c). Each mapped file's
 * identity carries a CRC32C of its content, so that a restore accepts a file
 * touched but unchanged; reading libc and the program's own files took most
 * of a small task's collect, with the tree frozen. Here the tree is walked
 * (the root and its descendants, as /proc shows them now, at most
 * PREFETCH_TASKS) and each private file mapping's file is read once. In the
 * freeze a file takes its sum from here only if dev, inode, size, mtime and
 * ctime are what they were (file_sum); anything else is read then, as before.
 * All of it is a hint: nothing here can fail the dump.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "dump_internal.h"
#include "kinds/fd_kind.h"
#include "log.h"
#include "proc.h"

/* tasks whose mappings are looked at: a large tree's tasks map mostly the
 * same files */
#define PREFETCH_TASKS 256

/* a file seen in maps, summed or not: (dev, ino) as maps shows them */
struct seen {
	uint64_t dev, ino;
};

struct prefetch {
	struct dump_ctx *c;
	struct seen *seen;
	size_t nseen, seen_cap;
	pid_t *pids;
	size_t npids, pids_cap;
};

/* Room for one more of n items in *arr (cap of them); false: out of memory
 * (then no more of them: the freeze reads what was not summed). */
static bool room(void **arr, size_t *cap, size_t n, size_t size)
{
	size_t want = *cap ? 2 * *cap : 16;
	void *p;

	if (n < *cap)
		return true;
	p = realloc(*arr, want * size);
	if (!p)
		return false;
	*arr = p;
	*cap = want;
	return true;
}

static bool seen_before(struct prefetch *p, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; i < p->nseen; i++)
		if (p->seen[i].dev == dev && p->seen[i].ino == ino)
			return true;
	if (!room((void **)&p->seen, &p->seen_cap, p->nseen, sizeof(*p->seen)))
		return true;
	p->seen[p->nseen++] = (struct seen){dev, ino};
	return false;
}

static void add_sum(struct dump_ctx *c, const struct file_sum *s)
{
	if (room((void **)&c->sums, &c->sums_cap, c->nsums, sizeof(*c->sums)))
		c->sums[c->nsums++] = *s;
}

static void add_pid(struct prefetch *p, pid_t pid)
{
	if (p->npids < PREFETCH_TASKS &&
	    room((void **)&p->pids, &p->pids_cap, p->npids, sizeof(*p->pids)))
		p->pids[p->npids++] = pid;
}

/* The children of every thread of pid, appended to the walk. */
static void add_children(struct prefetch *p, pid_t pid)
{
	_cleanup_free_ pid_t *tids = NULL;
	struct ckpt_error e = {0};
	size_t ntids = 0;

	/* io_uring workers too (they have no children): no stat file read per thread */
	if (proc_list_tids(pid, &tids, &ntids, &e) < 0)
		return;
	for (size_t i = 0; i < ntids; i++) {
		_cleanup_free_ pid_t *kids = NULL;
		size_t nkids = 0;

		if (proc_list_children(pid, tids[i], &kids, &nkids, &e) < 0)
			continue;
		for (size_t k = 0; k < nkids; k++)
			add_pid(p, kids[k]);
	}
}

static void sum_mapped_files(struct prefetch *p, pid_t pid)
{
	struct proc_vma_list l = {0};
	struct ckpt_error e = {0};
	char path[128];

	if (proc_parse_maps(pid, &l, &e) < 0)
		return;
	for (size_t i = 0; i < l.n; i++) {
		const struct proc_vma *v = &l.v[i];
		_cleanup_close_ int fd = -1;
		struct file_sum s;

		/* private file mappings: what vma_file records (dump_mm.c) */
		if (!v->ino || v->shared || v->path[0] != '/' || v->deleted ||
		    seen_before(p, makedev(v->dev_major, v->dev_minor), v->ino))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid,
			 v->start, v->end);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd >= 0 && file_sum_take(fd, &s, &e) == 0)
			add_sum(p->c, &s);
	}
	proc_vma_list_free(&l);
}

void dump_prefetch_sums(struct dump_ctx *c)
{
	struct prefetch p = {.c = c};
	double t0 = ckpt_monotonic_seconds();

	add_pid(&p, c->opts->pid);
	for (size_t i = 0; i < p.npids; i++) {
		sum_mapped_files(&p, p.pids[i]);
		add_children(&p, p.pids[i]);
	}
	pr_debug("%zu mapped files of %zu tasks checksummed before the freeze in %.1f ms", c->nsums,
		 p.npids, (ckpt_monotonic_seconds() - t0) * 1e3);
	free(p.seen);
	free(p.pids);
}
