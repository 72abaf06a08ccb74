/* SPDX-License-Identifier: MIT */
/*
 * Work done for the freeze before it, while the tree still runs. All of it
 * is a hint: nothing here can fail the dump, and nothing is used in the
 * freeze unless it is shown to be still true then.
 *
 * - The content checksums of the files the tree maps (file_ident.c), but
 *   not of those its inotify watches would see read (dump_watched.c; none
 *   at all if a task has too many fds to look at). Each mapped file's
 *   identity carries a CRC32C of its content, so that a restore accepts a
 *   file touched but unchanged; reading libc and the program's own files
 *   took most of a small task's collect, with the tree frozen. Here the
 *   tree is walked (the root and its descendants, as /proc shows them now,
 *   at most PREFETCH_TASKS) and each private file mapping's file is read
 *   once. Once the fds are dumped, a file takes its sum from here only if
 *   dev, inode, size, mtime and ctime are what they were (file_sum);
 *   anything else is read then (dump_mapped_sums).
 * - Where the freeze is meant to be short (--leave-running, --parent:
 *   dump.c short_freeze), the areas of the large tasks met on that walk
 *   (LAYOUT_MIN_RESIDENT), as smaps shows them: smaps walks every page
 *   table entry of an area (a 2 GiB task: 12-20 ms), maps does not, and
 *   smaps is what shows each area's VmFlags. Read just before the freeze, with the count of the
 *   task's write-locked address space sections (kread_mm_seq) before it;
 *   in the freeze, before the dump's own calls in the task, the count is
 *   read again (dump_prefetch_layout_check). Equal, and the same address
 *   space: nothing mapped, unmapped, moved or changed an area's flags in
 *   between, since each of those takes that lock for writing. The freeze
 *   then reads maps only (the dump's own areas are gone by then) and takes
 *   VmFlags and protection keys from before, if every area's range,
 *   protection, offset and file are the same. Anything else, or no kernel
 *   reader: smaps is read in the freeze, as before.
 */
#define LOG_PREFIX "dump: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "clock.h"
#include "dump_internal.h"
#include "kinds/fd_kind.h"
#include "log.h"
#include "kread.h"
#include "proc.h"

/* tasks whose mappings are looked at: a large tree's tasks map mostly the
 * same files */
#define PREFETCH_TASKS 256

/* a task with this much resident memory has its areas read before the
 * freeze: below it, smaps costs about what maps and the two counts do */
#define LAYOUT_MIN_RESIDENT ((uint64_t)64 << 20)

/* One large task's areas read before the freeze. */
struct dump_layout {
	pid_t pid;
	struct kread_mm_seq before;
	bool read;    /* vl and before hold what was read */
	bool current; /* the count in the freeze was before's */
	struct proc_vma_list vl;
};

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

/* Resident memory of pid at least LAYOUT_MIN_RESIDENT? (statm: pages) */
static bool large_task(pid_t pid)
{
	_cleanup_free_ char *text = NULL;
	struct ckpt_error e = {0};
	unsigned long long size, resident;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	if (proc_read_file(path, &text, NULL, &e) < 0 ||
	    sscanf(text, "%llu %llu", &size, &resident) != 2)
		return false;
	return resident * (uint64_t)sysconf(_SC_PAGESIZE) >= LAYOUT_MIN_RESIDENT;
}

static void add_layout(struct dump_ctx *c, pid_t pid)
{
	if (room((void **)&c->layouts, &c->layouts_cap, c->nlayouts, sizeof(*c->layouts)))
		c->layouts[c->nlayouts++] = (struct dump_layout){.pid = pid};
}

static void sum_mapped_files(struct prefetch *p, pid_t pid)
{
	struct proc_vma_list l = {0};
	struct ckpt_error e = {0};
	char path[128];

	if (proc_parse_maps_files(pid, &l, &e) < 0)
		return;
	for (size_t i = 0; i < l.n; i++) {
		const struct proc_vma *v = &l.v[i];
		_cleanup_close_ int fd = -1;
		struct file_sum s;
		struct stat st;

		/* private file mappings: what vma_file records (dump_mm.c) */
		if (!v->ino || v->shared || v->path[0] != '/' || v->deleted ||
		    seen_before(p, makedev(v->dev_major, v->dev_minor), v->ino))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid,
			 v->start, v->end);
		/* a file the tree watches is not opened (dump_watched.c) */
		if (stat(path, &st) < 0 || dump_file_watched(p->c, &st, v->path))
			continue;
		fd = file_open_noatime(path,
				       O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOATIME);
		if (fd >= 0 && file_sum_take(fd, &s, &e) == 0)
			add_sum(p->c, &s);
	}
	proc_vma_list_free(&l);
}

void dump_prefetch_sums(struct dump_ctx *c)
{
	struct prefetch p = {.c = c};
	double t0 = ckpt_monotonic_seconds();
	bool watches = true;

	dump_prefetch_free(c); /* (a second try of the dump walks again) */
	dump_watched_reset(c);
	add_pid(&p, c->opts->pid);
	/* the tree first, with its watches: no file it watches is opened */
	for (size_t i = 0; i < p.npids; i++) {
		watches = watches && dump_watched_scan(c, p.pids[i]);
		if (large_task(p.pids[i]))
			add_layout(c, p.pids[i]);
		add_children(&p, p.pids[i]);
	}
	for (size_t i = 0; watches && i < p.npids; i++)
		sum_mapped_files(&p, p.pids[i]);
	pr_debug("%zu mapped files of %zu tasks checksummed before the freeze in %.1f ms", c->nsums,
		 p.npids, (ckpt_monotonic_seconds() - t0) * 1e3);
	free(p.seen);
	free(p.pids);
}

void dump_prefetch_layouts(struct dump_ctx *c)
{
	double t0 = ckpt_monotonic_seconds();
	size_t n = 0;

	for (size_t i = 0; i < c->nlayouts; i++) {
		struct dump_layout *l = &c->layouts[i];
		struct ckpt_error e = {0};

		/* the count first: a change while smaps is read makes it differ */
		if (kread_mm_seq(&c->kread, l->pid, &l->before, &e) < 0 ||
		    proc_parse_smaps(l->pid, &l->vl, &e) < 0) {
			pr_debug("pid %d: areas not read before the freeze: %s", l->pid, e.msg);
			continue;
		}
		l->read = true;
		n++;
	}
	if (c->nlayouts)
		pr_debug("areas of %zu large tasks read before the freeze in %.1f ms", n,
			 (ckpt_monotonic_seconds() - t0) * 1e3);
}

static struct dump_layout *find_layout(struct dump_ctx *c, pid_t pid)
{
	for (size_t i = 0; i < c->nlayouts; i++)
		if (c->layouts[i].pid == pid && c->layouts[i].read)
			return &c->layouts[i];
	return NULL;
}

void dump_prefetch_layout_check(struct dump_ctx *c, struct dump_task *t)
{
	struct dump_layout *l = find_layout(c, t->pid);
	struct kread_mm_seq now;
	struct ckpt_error e = {0};

	if (!l)
		return;
	l->current = kread_mm_seq(&c->kread, t->pid, &now, &e) == 0 && now.mm == l->before.mm &&
		     now.seq == l->before.seq;
	if (!l->current)
		pr_debug("pid %d: its areas may have changed since they were read before the "
			 "freeze%s%s: smaps is read again",
			 t->pid, e.code ? ": " : "", e.code ? e.msg : "");
}

/* The same area, as maps shows it (the path may differ: a rename). */
static bool same_area(const struct proc_vma *a, const struct proc_vma *b)
{
	return a->start == b->start && a->end == b->end && a->prot == b->prot &&
	       a->shared == b->shared && a->pgoff == b->pgoff && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && a->ino == b->ino;
}

int dump_layout(struct dump_ctx *c, struct dump_task *t, struct proc_vma_list *vl,
		struct ckpt_error *e)
{
	struct dump_layout *l = find_layout(c, t->pid);
	struct proc_vma_list now = {0};
	size_t i;
	int r;

	if (!l || !l->current)
		return proc_parse_smaps(t->pid, vl, e);
	r = proc_parse_maps(t->pid, &now, e);
	if (r < 0)
		return r;
	for (i = 0; now.n == l->vl.n && i < now.n; i++) {
		if (!same_area(&now.v[i], &l->vl.v[i]))
			break;
		memcpy(now.v[i].vmflags, l->vl.v[i].vmflags, sizeof(now.v[i].vmflags));
		now.v[i].has_vmflags = l->vl.v[i].has_vmflags;
		now.v[i].pkey = l->vl.v[i].pkey;
	}
	if (now.n != l->vl.n || i < now.n) {
		/* (not expected: the count said nothing changed) */
		pr_debug("pid %d: its areas differ from those read before the freeze: smaps is "
			 "read again",
			 t->pid);
		proc_vma_list_free(&now);
		return proc_parse_smaps(t->pid, vl, e);
	}
	pr_debug("pid %d: its %zu areas unchanged since they were read before the freeze", t->pid,
		 now.n);
	*vl = now;
	return 0;
}

void dump_prefetch_free(struct dump_ctx *c)
{
	free(c->sums);
	c->sums = NULL;
	c->nsums = c->sums_cap = 0;
	for (size_t i = 0; i < c->nlayouts; i++)
		proc_vma_list_free(&c->layouts[i].vl);
	free(c->layouts);
	c->layouts = NULL;
	c->nlayouts = c->layouts_cap = 0;
}
