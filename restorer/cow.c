/* SPDX-License-Identifier: MIT */
/*
 * Copy-on-write sharing between a parent and the children it forked
 * (docs/cow.md). The dump records a child's page as inherited when it was
 * the very page the parent has at the same address (PagemapEntry.inherited,
 * no data). The restore makes it shared again the way the program did: by
 * forking the child from a parent whose memory already holds it.
 *
 *   verify (P)   every inherited run lies in areas of the child that can be
 *                a fork of the parent's areas there (vma_cow_compatible),
 *                and the parent saved those pages (data or inherited);
 *   pids (P)     which areas of each task are "kept" (t->kept): those with
 *                pages inherited from the parent or by a child; P reserves
 *                their address ranges (PROT_NONE) so that nothing of the
 *                restorer lands there, and the tasks inherit the reservation
 *                (if the restorer's own layout is in the way, main.c runs
 *                the restorer again, which places it elsewhere);
 *   tree (task)  before forking its children, each task puts its kept areas
 *                in place with its saved content (cow_task_premap): the
 *                parts it got from its parent (fork) stay and lose only the
 *                pages the task does not share, the other parts are mapped
 *                fresh, then its own pages are read in. Its children then
 *                inherit all of it by fork, copy-on-write;
 *   memory (P)   keeps the kept areas (mem.c: not unmapped, not mapped
 *                again, their pages not written again: a write after the
 *                fork would unshare them), sets their protection and advice.
 */
#define LOG_PREFIX "cow: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "log.h"
#include "mm_cow.h"
#include "proc.h"
#include "restore.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define POPULATE_MIN_BYTES (2ULL << 20)
/* the task's pages are read in pieces of this size, P told after each */
#define BUSY_CHUNK (64ULL << 20)

static bool entry_inherited(const PagemapEntry *p)
{
	return p->has_inherited && p->inherited;
}

static bool entry_in_parent(const PagemapEntry *p)
{
	return p->has_in_parent && p->in_parent;
}

static uint64_t entry_end(const PagemapEntry *p)
{
	return p->vaddr + (uint64_t)p->nr_pages * RST_PAGE_SIZE;
}

/* Index of the first area of mm ending after addr (n_vmas if none). */
static size_t vma_after(const MmEntry *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mm->vmas[mid]->end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of the first pagemap entry of t ending after addr. */
static size_t entry_after(const struct rtask *t, uint64_t addr)
{
	size_t lo = 0, hi = t->n_pagemap;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (entry_end(t->pagemap[mid]) <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Is every page of [s, e) saved by p (as data or inherited)? */
static bool parent_has_pages(const struct rtask *p, uint64_t s, uint64_t e)
{
	for (size_t i = entry_after(p, s); s < e && i < p->n_pagemap; i++) {
		if (p->pagemap[i]->vaddr > s)
			return false;
		s = entry_end(p->pagemap[i]);
	}
	return s >= e;
}

/* Does parent p have [s, e) in areas child area c can be a fork of? */
static bool parent_areas_ok(const struct rtask *p, const Vma *c, uint64_t s, uint64_t e)
{
	for (size_t i = vma_after(p->mm, s); s < e; i++) {
		const Vma *w = i < p->mm->n_vmas ? p->mm->vmas[i] : NULL;

		if (!w || w->start > s || !vma_cow_compatible(c, w))
			return false;
		s = w->end;
	}
	return true;
}

int cow_verify(struct restore_ctx *ctx)
{
	for (size_t ti = 0; ti < ctx->ntasks; ti++) {
		const struct rtask *t = &ctx->tasks[ti];

		for (size_t i = 0; i < t->n_pagemap; i++) {
			const PagemapEntry *pe = t->pagemap[i];
			uint64_t s = pe->vaddr, e = entry_end(pe);

			if (!entry_inherited(pe))
				continue;
			/* also said by validate_pagemap, which checked it lies in t's areas */
			if (!t->parent)
				return ckpt_err(&ctx->err, -EINVAL,
						"pagemap-%d.img: entry %zu: pages %#" PRIx64
						"-%#" PRIx64
						" inherited from a parent, but pid %d is the root",
						t->pid, i, s, e, t->pid);
			for (size_t k = vma_after(t->mm, s); s < e && k < t->mm->n_vmas; k++) {
				const Vma *v = t->mm->vmas[k];
				uint64_t pe_ = e < v->end ? e : v->end;

				if (!vma_kind_has_pages(v->kind) || !(v->flags & MAP_PRIVATE) ||
				    !parent_areas_ok(t->parent, v, s, pe_))
					return ckpt_err(
					    &ctx->err, -EINVAL,
					    "pagemap-%d.img: entry %zu: pages %#" PRIx64
					    "-%#" PRIx64 " inherited from pid %d, but mm-%d.img "
					    "and mm-%d.img do not "
					    "have them in the same kind of private area there",
					    t->pid, i, s, pe_, t->parent->pid, t->pid,
					    t->parent->pid);
				s = pe_;
			}
			if (!parent_has_pages(t->parent, pe->vaddr, e))
				return ckpt_err(
				    &ctx->err, -EINVAL,
				    "pagemap-%d.img: entry %zu: pages %#" PRIx64 "-%#" PRIx64
				    " inherited from pid %d, which saved no "
				    "such pages (pagemap-%d.img)",
				    t->pid, i, pe->vaddr, e, t->parent->pid, t->parent->pid);
		}
	}
	return 0;
}

/* Mark the areas of t that [s, e) overlaps as kept. */
static void mark_kept(struct rtask *t, uint64_t s, uint64_t e)
{
	for (size_t k = vma_after(t->mm, s); k < t->mm->n_vmas && t->mm->vmas[k]->start < e; k++)
		t->kept[k] = true;
}

struct range {
	uint64_t start, end;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* A reservation refused: name the restorer's own mapping in the way. */
static int collision(struct restore_ctx *ctx, const struct range *r, int err)
{
	struct proc_vma_list self = {0};
	_cleanup_free_ char *text = NULL;
	struct ckpt_error ignore = {0};
	char what[256] = "a mapping of the restorer";
	pid_t pid = 0;

	if (proc_read_file("/proc/self/maps", &text, NULL, &ignore) >= 0 &&
	    proc_parse_maps_text(text, &self, &ignore) >= 0)
		for (size_t i = 0; i < self.n; i++)
			if (self.v[i].start < r->end && self.v[i].end > r->start) {
				snprintf(what, sizeof(what),
					 "the restorer's own mapping %#" PRIx64 "-%#" PRIx64
					 " %.128s",
					 self.v[i].start, self.v[i].end, self.v[i].path);
				break;
			}
	proc_vma_list_free(&self);
	/* only our own mappings in the way are worth another run */
	ctx->layout_collision = err == -EEXIST;
	for (size_t i = 0; i < ctx->ntasks && !pid; i++)
		for (size_t k = 0; k < ctx->tasks[i].mm->n_vmas; k++)
			if (ctx->tasks[i].kept && ctx->tasks[i].kept[k] &&
			    ctx->tasks[i].mm->vmas[k]->start < r->end &&
			    ctx->tasks[i].mm->vmas[k]->end > r->start)
				pid = ctx->tasks[i].pid;
	return ckpt_err_errno(
	    &ctx->err, err == -EEXIST ? -EADDRINUSE : err,
	    "pid %d: memory %#" PRIx64 "-%#" PRIx64
	    " shared copy-on-write with its parent or children cannot be reserved: it "
	    "overlaps %s (the restorer's layout is random: running it again places it "
	    "elsewhere)",
	    pid, r->start, r->end, what);
}

int cow_plan(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		free(t->kept);
		t->n_kept = 0;
		t->kept = calloc(t->mm->n_vmas + 1, sizeof(*t->kept));
		if (!t->kept)
			return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		for (size_t k = 0; k < t->n_pagemap; k++) {
			const PagemapEntry *pe = t->pagemap[k];

			if (!entry_inherited(pe))
				continue;
			/* the child's areas, and the parent's it forks them from */
			mark_kept(t, pe->vaddr, entry_end(pe));
			mark_kept(t->parent, pe->vaddr, entry_end(pe));
		}
	}
	for (size_t i = 0; i < ctx->ntasks; i++)
		for (size_t k = 0; k < ctx->tasks[i].mm->n_vmas; k++)
			ctx->tasks[i].n_kept += ctx->tasks[i].kept[k];
	return 0;
}

int cow_plan_reserve(struct restore_ctx *ctx)
{
	_cleanup_free_ struct range *v = NULL;
	size_t n = 0, cap = 0, m = 0;
	int r = cow_plan(ctx);

	if (r < 0)
		return r;
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		for (size_t k = 0; k < t->mm->n_vmas; k++) {
			if (!t->kept[k])
				continue;
			if (n == cap) {
				struct range *g =
				    realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));

				if (!g)
					return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
				v = g;
			}
			v[n++] = (struct range){t->mm->vmas[k]->start, t->mm->vmas[k]->end};
		}
	}
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_range);
	for (size_t i = 0; i < n; i++) {
		if (m && v[i].start <= v[m - 1].end) {
			if (v[i].end > v[m - 1].end)
				v[m - 1].end = v[i].end;
		} else {
			v[m++] = v[i];
		}
	}
	/* tests: a collision on the first try (-once), or on every try */
	if (ckpt_fault("cow-collision") ||
	    (ckpt_fault("cow-collision-once") && !getenv(RESTORE_ATTEMPT_ENV)))
		return collision(ctx, &v[0], -EEXIST);
	for (size_t i = 0; i < m; i++) {
		void *p =
		    mmap((void *)(uintptr_t)v[i].start, v[i].end - v[i].start, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);

		if (p == MAP_FAILED)
			return collision(ctx, &v[i], -errno);
		if ((uintptr_t)p != v[i].start) {
			munmap(p, v[i].end - v[i].start);
			return collision(ctx, &v[i], -EEXIST);
		}
	}
	pr_debug("%zu address ranges reserved for memory shared copy-on-write", m);
	return 0;
}

/* ---- in the task, before it forks its children ----------------------------------- */

/* mmap of part [s, e) of area v, writable until its pages are in. */
static int map_fresh(struct restore_ctx *ctx, const Vma *v, uint64_t s, uint64_t e,
		     struct ckpt_error *err)
{
	int flags = MAP_PRIVATE | MAP_FIXED | (int)(v->flags & (MAP_GROWSDOWN | MAP_NORESERVE));
	int fd = -1;
	off_t off = 0;
	void *p;

	if (v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_SHMEM_PRIVATE) {
		fd = file_by_id(ctx, v->file_id)->map_fd;
		off = (off_t)(v->pgoff + (s - v->start));
	} else {
		flags |= MAP_ANONYMOUS;
	}
	p = mmap((void *)(uintptr_t)s, e - s, PROT_READ | PROT_WRITE, flags, fd, off);
	if (p == MAP_FAILED)
		return ckpt_err_errno(err, -errno, "mmap of area %#" PRIx64 "-%#" PRIx64, s, e);
	return 0;
}

/* Drop what [s, e) got from the parent, except t's inherited runs. */
static int drop_unshared(const struct rtask *t, uint64_t s, uint64_t e, struct ckpt_error *err)
{
	for (size_t i = entry_after(t, s); s < e; i++) {
		const PagemapEntry *pe = i < t->n_pagemap ? t->pagemap[i] : NULL;
		uint64_t stop = pe && pe->vaddr < e ? pe->vaddr : e;

		if (pe && !entry_inherited(pe) && pe->vaddr < e)
			continue; /* data: dropped below with the gap that follows */
		if (stop > s && madvise((void *)(uintptr_t)s, stop - s, MADV_DONTNEED) < 0)
			return ckpt_err_errno(err, -errno,
					      "madvise(MADV_DONTNEED) of %#" PRIx64 "-%#" PRIx64, s,
					      stop);
		if (!pe || pe->vaddr >= e)
			break;
		s = entry_end(pe); /* past an inherited run: kept */
	}
	return 0;
}

/*
 * Area v of t (kept): the parts that t's parent has in kept areas v can be
 * a fork of are t's already (inherited by fork); the rest is mapped fresh.
 */
static int premap_area(struct restore_ctx *ctx, const struct rtask *t, const Vma *v,
		       struct ckpt_error *err)
{
	const struct rtask *p = t->parent;
	uint64_t s = v->start;
	int r;

	for (size_t i = p ? vma_after(p->mm, s) : 0; p && i < p->mm->n_vmas && s < v->end; i++) {
		const Vma *w = p->mm->vmas[i];
		uint64_t ws = w->start > s ? w->start : s, we = w->end < v->end ? w->end : v->end;

		if (ws >= v->end)
			break;
		if (!p->kept[i] || !vma_cow_compatible(v, w))
			continue;
		if (ws > s) {
			r = map_fresh(ctx, v, s, ws, err);
			if (r < 0)
				return r;
		}
		r = drop_unshared(t, ws, we, err);
		if (r < 0)
			return r;
		s = we;
	}
	return s < v->end ? map_fresh(ctx, v, s, v->end, err) : 0;
}

/* The parent's kept areas t has no kept area at: reserved again, empty. */
static int unreserve_parent(const struct rtask *t, struct ckpt_error *err)
{
	const struct rtask *p = t->parent;

	for (size_t i = 0; p && i < p->mm->n_vmas; i++) {
		uint64_t s = p->mm->vmas[i]->start, e = p->mm->vmas[i]->end;

		if (!p->kept[i])
			continue;
		for (size_t k = vma_after(t->mm, s); s < e;) {
			const Vma *v = k < t->mm->n_vmas ? t->mm->vmas[k] : NULL;
			uint64_t stop;
			bool keep = false;

			if (v && v->start <= s) {
				/* inside t's area k: kept as it is, or reserved */
				keep = t->kept[k];
				stop = v->end;
				k++;
			} else {
				stop = v ? v->start : e;
			}
			if (stop > e)
				stop = e;
			if (!keep && stop > s &&
			    mmap((void *)(uintptr_t)s, stop - s, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
				 0) == MAP_FAILED)
				return ckpt_err_errno(err, -errno,
						      "reserving %#" PRIx64 "-%#" PRIx64 " again",
						      s, stop);
			s = stop;
		}
	}
	return 0;
}

static bool in_kept(const struct rtask *t, uint64_t addr, uint64_t *end)
{
	size_t k = vma_after(t->mm, addr);
	const Vma *v = k < t->mm->n_vmas ? t->mm->vmas[k] : NULL;

	if (v && v->start <= addr) {
		*end = v->end;
		return t->kept[k];
	}
	*end = v ? v->start : RST_TASK_SIZE;
	return false;
}

/* Read len bytes at data offset at of fd straight to s (in pieces, P told after each). */
static int read_kept(struct restore_ctx *ctx, struct rtask *t, int fd, const char *name,
		     uint64_t s, uint64_t len, uint64_t at, struct ckpt_error *err)
{
	uint64_t done = 0;

	while (done < len) {
		/* in pieces: P waits for the fork, told after each */
		uint64_t chunk = len - done < BUSY_CHUNK ? len - done : BUSY_CHUNK;
		ssize_t n;

		if (len >= POPULATE_MIN_BYTES && !(done % BUSY_CHUNK))
			madvise((void *)(uintptr_t)(s + done), chunk, MADV_POPULATE_WRITE);
		n = pread(fd, (void *)(uintptr_t)(s + done), chunk,
			  (off_t)(IMG_PAGES_DATA_OFFSET + at + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ckpt_err_errno(err, n < 0 ? -errno : -EIO,
					      "%s: reading %" PRIu64 " bytes to %#" PRIx64, name,
					      len - done, s + done);
		done += (uint64_t)n;
		if (done < len)
			task_busy(ctx, t);
	}
	return 0;
}

/* Pages [s, e) of t unchanged since a parent checkpoint: from there (chain.c). */
static int read_kept_chain(struct restore_ctx *ctx, struct rtask *t, uint64_t s, uint64_t e,
			   struct ckpt_error *err)
{
	while (s < e) {
		uint64_t off, avail, n;
		size_t level;
		int fd, r;

		r = chain_page_src(ctx, t, s, &level, &off, &avail, err);
		if (r < 0)
			return r;
		fd = chain_open_pages(ctx, level, t->pid, err);
		if (fd < 0)
			return fd;
		n = e - s < avail ? e - s : avail;
		r = read_kept(ctx, t, fd, ctx->chain[level].name, s, n, off, err);
		close(fd);
		if (r < 0)
			return r;
		s += n;
	}
	return 0;
}

/* t's own pages (not inherited) inside its kept areas, read straight into place. */
static int fill_kept(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *err)
{
	_cleanup_close_ int fd = -1;
	char name[64];
	uint64_t off = 0;
	int r = 0;

	img_file_name(IMG_PAGES, t->pid, name, sizeof(name));
	fd = openat(ctx->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ckpt_err_errno(err, -errno, "opening %s", name);
	for (size_t i = 0; i < t->n_pagemap; i++) {
		const PagemapEntry *pe = t->pagemap[i];
		uint64_t s = pe->vaddr, e = entry_end(pe);

		if (entry_inherited(pe))
			continue;
		while (s < e) {
			uint64_t stop;
			bool kept = in_kept(t, s, &stop);

			if (stop > e)
				stop = e;
			if (kept && entry_in_parent(pe))
				r = read_kept_chain(ctx, t, s, stop, err);
			else if (kept)
				r = read_kept(ctx, t, fd, name, s, stop - s, off + (s - pe->vaddr), err);
			if (r < 0)
				return r;
			s = stop;
		}
		if (!entry_in_parent(pe))
			off += e - pe->vaddr;
	}
	return 0;
}

int cow_task_premap(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *err)
{
	int r = 0;

	if (!t->kept)
		return 0;
	for (size_t k = 0; r >= 0 && k < t->mm->n_vmas; k++)
		if (t->kept[k])
			r = premap_area(ctx, t, t->mm->vmas[k], err);
	if (r >= 0)
		r = unreserve_parent(t, err);
	if (r >= 0 && t->n_kept)
		r = fill_kept(ctx, t, err);
	/* before the fork: a parent's mlock afterwards would unshare its pages */
	for (size_t k = 0; r >= 0 && k < t->mm->n_vmas; k++) {
		const Vma *v = t->mm->vmas[k];
		uint64_t saved;

		if (!t->kept[k] || !vma_cow_lock_before_fork(v))
			continue;
		/* root's CAP_IPC_LOCK lifts RLIMIT_MEMLOCK, as in stage memory */
		saved = caps_raise(CAPS_BIT(CAP_IPC_LOCK));
		if (mlock((void *)(uintptr_t)v->start, v->end - v->start) < 0)
			r = ckpt_err_errno(err, -errno, "mlock of area %#" PRIx64 "-%#" PRIx64,
					   v->start, v->end);
		caps_restore(saved);
	}
	return r;
}

bool cow_kept_range(const struct rtask *t, uint64_t addr, uint64_t *end)
{
	if (!t->kept) {
		*end = RST_TASK_SIZE;
		return false;
	}
	return in_kept(t, addr, end);
}
