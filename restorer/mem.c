/* SPDX-License-Identifier: MIT */
/*
 * Stage memory: the restorer replaces a task's address space from outside,
 * with remote syscalls (lib/ptrace.h) executed by the task itself through
 * its "gadget" (a `syscall` instruction on a page mapped where no saved area
 * lies, with a scratch page after it for arguments):
 *
 *   1. unmap everything of the restorer the task inherited by fork,
 *      except the gadget and the kernel's [vvar] [vvar_vclock] [vdso];
 *   2. move those three to their saved addresses with mremap (the kernel
 *      updates its vdso pointer because the task itself makes the call);
 *   3. map each saved area at its address: anonymous, or private file
 *      mappings from the inherited read-only fd whose identity was checked
 *      in stage verify (no path is resolved again, chroot or not), or
 *      shared memory objects (shmem.c) from the inherited fd P made for
 *      the object, MAP_SHARED at the saved offset; System V segments with
 *      a remote shmat(SHM_REMAP) at the saved address;
 *   4. write the saved pages: P reads them from the images into one buffer
 *      (in huge pages) and writes them into the task with process_vm_writev,
 *      up to BATCH_BYTES and BATCH_IOV runs at a time. Not a pread64() run
 *      by the task into its own memory: on these VMs a kernel access of a
 *      page through the task's addresses costs a first-access fault per
 *      4 KiB page, which process_vm_writev (pages pinned, written through
 *      the kernel's own mapping) does not; 512 MiB in 0.28-0.33 s instead of
 *      1.0-1.3 s;
 *   5. set the saved protection, then the mm fields, auxv and exe link with
 *      one prctl(PR_SET_MM, PR_SET_MM_MAP), and close the helper fds.
 */
#define LOG_PREFIX "memory: "

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/prctl.h>
#include <linux/io_uring.h>

#include "cleanup.h"
#include "clock.h"
#include "log.h"
#include "mm_cow.h"
#include "proc.h"
#include "restore.h"

/* Gadget search: downward from here, keeping this distance from any area. */
#define GADGET_SEARCH_TOP 0x7f0000000000ULL
#define GADGET_SEARCH_BOTTOM 0x10000000ULL
#define GADGET_MARGIN (1ULL << 20)
/* The most of a batch (P's buffer); also the step of progress lines and cancel checks. */
#define BATCH_BYTES RST_PAGE_BUF_BYTES
#define BATCH_IOV 1024

/* ---- gadget placement ------------------------------------------------------------ */

struct range {
	uint64_t start, end;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Highest hole of len bytes below GADGET_SEARCH_TOP that keeps
 * GADGET_MARGIN away from every range: sort, merge the widened ranges,
 * then walk down the gaps between them.
 */
static int find_hole(struct range *v, size_t n, uint64_t len, uint64_t *ret)
{
	uint64_t top = GADGET_SEARCH_TOP;
	size_t m = 0;

	qsort(v, n, sizeof(*v), cmp_range);
	for (size_t i = 0; i < n; i++) {
		if (v[i].start >= RST_TASK_SIZE)
			continue; /* [vsyscall] */
		struct range w = {v[i].start > GADGET_MARGIN ? v[i].start - GADGET_MARGIN : 0,
				  v[i].end + GADGET_MARGIN};

		if (m && w.start <= v[m - 1].end) {
			if (w.end > v[m - 1].end)
				v[m - 1].end = w.end;
		} else {
			v[m++] = w;
		}
	}
	for (size_t i = m; i-- > 0;) {
		if (v[i].start >= top)
			continue;
		if (v[i].end <= top - len)
			break;
		top = v[i].start;
	}
	if (top < GADGET_SEARCH_BOTTOM + len)
		return -ENOMEM;
	*ret = top - len;
	return 0;
}

static int collect_ranges(struct restore_ctx *ctx, struct range **ret, size_t *ret_n)
{
	struct proc_vma_list self = {0};
	size_t n = 0, cap;
	struct range *v;
	int r;

	r = proc_parse_maps(0, &self, &ctx->err);
	if (r < 0)
		return r;
	cap = self.n + 1;
	for (size_t i = 0; i < ctx->ntasks; i++)
		cap += ctx->tasks[i].mm->n_vmas;
	v = calloc(cap, sizeof(*v));
	if (!v) {
		proc_vma_list_free(&self);
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	}
	for (size_t j = 0; j < self.n; j++)
		v[n++] = (struct range){self.v[j].start, self.v[j].end};
	for (size_t i = 0; i < ctx->ntasks; i++)
		for (size_t j = 0; j < ctx->tasks[i].mm->n_vmas; j++)
			v[n++] = (struct range){ctx->tasks[i].mm->vmas[j]->start,
						ctx->tasks[i].mm->vmas[j]->end};
	proc_vma_list_free(&self);
	*ret = v;
	*ret_n = n;
	return 0;
}

/*
 * One gadget address for the whole tree, free in every task's saved layout
 * and in ours; P reserves it (PROT_NONE) so that nothing of P lands there
 * before the tasks are forked, and each task maps the gadget over its
 * inherited reservation. The rest of the reservation is the spare spot for
 * moving the vDSO, freed with the restorer's other areas in stage memory.
 */
int gadget_choose(struct restore_ctx *ctx)
{
	_cleanup_free_ struct range *v = NULL;
	const struct vdso_layout *k = &ctx->vdso;
	uint64_t vdso_span =
	    k->present ? k->vdso + k->vdso_len - (k->vvar_len ? k->vvar : k->vdso) : 0;
	uint64_t need = GADGET_SIZE + RST_PAGE_SIZE + vdso_span, gadget;
	size_t n = 0;
	void *p;
	int r;

	r = collect_ranges(ctx, &v, &n);
	if (r < 0)
		return r;
	if (find_hole(v, n, need, &gadget) < 0)
		return ckpt_err(&ctx->err, -ENOMEM,
				"no free hole of %" PRIu64 " bytes for the restore gadget in both "
				"the saved address spaces and the restorer's",
				need);
	p = mmap((void *)(uintptr_t)gadget, need, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return ckpt_err_errno(&ctx->err, -errno, "reserving the gadget area at %#" PRIx64,
				      gadget);
	for (size_t i = 0; i < ctx->ntasks; i++) {
		ctx->tasks[i].gadget = gadget;
		ctx->tasks[i].vdso_tmp = gadget + GADGET_SIZE + RST_PAGE_SIZE;
	}
	pr_debug("gadget at %#" PRIx64, gadget);
	return 0;
}

/* ---- seize ------------------------------------------------------------------------- */

int mem_seize_all(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		int r;

		/* our own task, waiting for us in its setup (never stopped):
		 * no /proc read of its state */
		r = ptrace_seize_stop_state(t->pid, 'S', NULL, &ctx->err);
		if (r < 0)
			return r;
		t->seized = true;
		r = rsys_init(&t->rsys, t->pid, t->gadget, &ctx->err);
		if (r < 0)
			return r;
		/* the gadget's own scratch page, unmapped with it at the very end */
		t->rsys.scratch = t->gadget + RST_PAGE_SIZE;
		t->rsys.scratch_len = GADGET_SCRATCH_SIZE;
		rsys_batch_at(&t->rsys, t->gadget + GADGET_BATCH_CODE, t->gadget + GADGET_TABLE);
		r = threads_seize(ctx, t);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- 1. unmap the restorer ------------------------------------------------------------ */

static bool is_vdso_path(const char *p)
{
	return !strcmp(p, "[vvar]") || !strcmp(p, "[vvar_vclock]") || !strcmp(p, "[vdso]");
}

/*
 * Keep the gadget, the vDSO (if the task had one) and the areas the task
 * shares copy-on-write with its parent or children, put in place before it
 * forked (cow.c); unmap everything else, i.e. the restorer.
 */
static int unmap_restorer(struct restore_ctx *ctx, struct rtask *t, struct vdso_layout *cur)
{
	struct ckpt_error *e = &ctx->err;
	struct proc_vma_list l = {0};
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ struct range *keep = NULL;
	size_t n = 0;
	char path[64];
	uint64_t lo = 0;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/maps", t->pid);
	r = proc_read_tracee_file(path, &text, NULL, e);
	if (r >= 0)
		r = proc_parse_maps_text(text, &l, e);
	if (r < 0)
		return r;
	keep = calloc(l.n + t->mm->n_vmas + 1, sizeof(*keep));
	if (!keep) {
		proc_vma_list_free(&l);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	memset(cur, 0, sizeof(*cur));
	keep[n++] = (struct range){t->gadget, t->gadget + GADGET_SIZE};
	for (size_t i = 0; i < l.n; i++) {
		const struct proc_vma *m = &l.v[i];

		if (m->start >= RST_TASK_SIZE || !t->vdso.present || !is_vdso_path(m->path))
			continue; /* [vsyscall] too */
		if (!strcmp(m->path, "[vvar]"))
			cur->vvar = m->start, cur->vvar_len = m->end - m->start;
		else if (!strcmp(m->path, "[vvar_vclock]"))
			cur->vclock = m->start, cur->vclock_len = m->end - m->start;
		else
			cur->vdso = m->start, cur->vdso_len = m->end - m->start;
		keep[n++] = (struct range){m->start, m->end};
	}
	for (size_t i = 0; t->kept && i < t->mm->n_vmas; i++)
		if (t->kept[i])
			keep[n++] = (struct range){t->mm->vmas[i]->start, t->mm->vmas[i]->end};
	proc_vma_list_free(&l);
	cur->present = cur->vdso_len != 0;
	qsort(keep, n, sizeof(*keep), cmp_range);
	for (size_t i = 0; r >= 0 && i <= n; i++) {
		uint64_t hi = i < n ? keep[i].start : RST_TASK_SIZE;

		if (hi > lo)
			r = rqueue(t, e, __NR_munmap, RARGS(lo, hi - lo),
				   "munmap %#" PRIx64 "-%#" PRIx64 " of the restorer", lo, hi);
		if (i < n && keep[i].end > lo)
			lo = keep[i].end;
	}
	return r;
}

/* ---- 2. the vDSO ------------------------------------------------------------------------ */

static int mremap_part(struct rtask *t, struct ckpt_error *e, uint64_t from, uint64_t to,
		       uint64_t len, const char *name)
{
	if (!len || from == to)
		return 0;
	return rqueue(t, e, __NR_mremap, RARGS(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to),
		      "mremap of %s %#" PRIx64 " to %#" PRIx64, name, from, to);
}

static int move_vdso_to(struct rtask *t, struct ckpt_error *e, struct vdso_layout *cur,
			const struct vdso_layout *to)
{
	int r;

	r = mremap_part(t, e, cur->vvar, to->vvar, cur->vvar_len, "[vvar]");
	if (r >= 0)
		r = mremap_part(t, e, cur->vclock, to->vclock, cur->vclock_len, "[vvar_vclock]");
	if (r >= 0)
		r = mremap_part(t, e, cur->vdso, to->vdso, cur->vdso_len, "[vdso]");
	if (r >= 0)
		*cur = *to;
	return r;
}

static void vdso_span(const struct vdso_layout *l, uint64_t *s, uint64_t *e)
{
	*s = l->vvar_len ? l->vvar : l->vdso;
	*e = l->vdso + l->vdso_len;
}

static int move_vdso(struct restore_ctx *ctx, struct rtask *t, struct vdso_layout *cur)
{
	uint64_t cs, ce, ts, te;
	int r;

	if (!t->vdso.present)
		return 0;
	if (!cur->present)
		return ckpt_err(&ctx->err, -ENOTSUP, "pid %d: the new task has no [vdso] to move",
				t->pid);
	vdso_span(cur, &cs, &ce);
	vdso_span(&t->vdso, &ts, &te);
	pr_debug("pid %d: vDSO %#" PRIx64 " -> %#" PRIx64 "%s", t->pid, cs, ts,
		 cs < te && ts < ce && cs != ts ? " (overlap: via the spare spot)" : "");
	if (cs < te && ts < ce && cs != ts) {
		/* overlapping ranges: go through a free spot first */
		struct vdso_layout tmp = *cur;
		uint64_t d = t->vdso_tmp - cs;

		tmp.vvar += d, tmp.vclock += d, tmp.vdso += d;
		r = move_vdso_to(t, &ctx->err, cur, &tmp);
		if (r < 0)
			return r;
	}
	return move_vdso_to(t, &ctx->err, cur, &t->vdso);
}

/* ---- 3. areas ------------------------------------------------------------------------------ */

static bool is_special(const Vma *v)
{
	return v->kind == VMA_KIND__VMA_VDSO || v->kind == VMA_KIND__VMA_VVAR ||
	       v->kind == VMA_KIND__VMA_VVAR_VCLOCK || v->kind == VMA_KIND__VMA_VSYSCALL;
}

/* Which areas get pages (they are mapped writable until the pages are in). */
static void mark_filled(struct rtask *t, bool *filled)
{
	size_t vi = 0;

	for (size_t i = 0; i < t->n_pagemap; i++) {
		uint64_t s = t->pagemap[i]->vaddr;
		uint64_t e = s + (uint64_t)t->pagemap[i]->nr_pages * RST_PAGE_SIZE;

		while (vi < t->mm->n_vmas && t->mm->vmas[vi]->end <= s)
			vi++;
		for (size_t j = vi; j < t->mm->n_vmas && t->mm->vmas[j]->start < e; j++)
			filled[j] = true;
	}
}

#ifndef __NR_mseal
#define __NR_mseal 462
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#define ADVICE_MLOCK (-1)

/* What a process sets on an area with madvise or mlock, as VmFlags shows it. */
static const struct {
	const char *flag;
	int advice;
} vma_advice[] = {
    {"hg", MADV_HUGEPAGE}, {"nh", MADV_NOHUGEPAGE}, {"dd", MADV_DONTDUMP},
    {"dc", MADV_DONTFORK}, {"wf", MADV_WIPEONFORK}, {"mg", MADV_MERGEABLE},
    {"rr", MADV_RANDOM},   {"sr", MADV_SEQUENTIAL}, {"lo", ADVICE_MLOCK},
};

/* mlock, or mlock2(MLOCK_ONFAULT) for "lf": only the pages touched are
 * locked (the pages saved are put in the area later and locked then). The
 * memory stage runs before creds: root's CAP_IPC_LOCK lifts RLIMIT_MEMLOCK. */
static int lock_area(struct restore_ctx *ctx, struct rtask *t, const Vma *v)
{
	struct ckpt_error *e = &ctx->err;
	uint64_t len = v->end - v->start;
	int r = rtask_caps(ctx, t, true);

	if (r >= 0 && vma_vmflag(v, "lf"))
		r = rcall(t, e, __NR_mlock2, RARGS(v->start, len, MLOCK_ONFAULT), NULL,
			  "mlock2(MLOCK_ONFAULT) of area %#" PRIx64, v->start);
	else if (r >= 0)
		r = rcall(t, e, __NR_mlock, RARGS(v->start, len), NULL, "mlock of area %#" PRIx64,
			  v->start);
	if (r >= 0)
		r = rtask_caps(ctx, t, false);
	return r;
}

static int map_area(struct restore_ctx *ctx, struct rtask *t, size_t i, bool filled)
{
	struct ckpt_error *e = &ctx->err;
	const Vma *v = t->mm->vmas[i];
	uint64_t len = v->end - v->start, prot = v->prot | (filled ? PROT_WRITE : 0);
	uint64_t flags = MAP_PRIVATE | MAP_FIXED | (v->flags & (MAP_GROWSDOWN | MAP_NORESERVE));
	int64_t fd = -1;
	uint64_t off = 0;
	int r;

	if (v->kind == VMA_KIND__VMA_SYSV_SHM) {
		r = shmem_attach_sysv(ctx, t, i);
		goto advice;
	}
	if (v->kind == VMA_KIND__VMA_IOURING)
		return 0; /* last: map_iouring_area */
	if (t->kept && t->kept[i]) {
		/* in place since before the fork, its pages too (cow.c) */
		r = 0;
		goto advice;
	}
	if (v->kind == VMA_KIND__VMA_FILE_SHARED_RO || v->kind == VMA_KIND__VMA_SHMEM_SHARED) {
		/* the object holds the data: no pages to fill, the saved protection */
		flags = MAP_SHARED | MAP_FIXED | (v->flags & MAP_NORESERVE);
		prot = v->prot;
	}
	if (v->kind == VMA_KIND__VMA_FILE_PRIVATE || v->kind == VMA_KIND__VMA_FILE_SHARED_RO ||
	    v->kind == VMA_KIND__VMA_SHMEM_SHARED || v->kind == VMA_KIND__VMA_SHMEM_PRIVATE) {
		fd = file_by_id(ctx, v->file_id)->map_fd;
		off = v->pgoff;
	} else {
		flags |= MAP_ANONYMOUS;
	}
	r = rqueue(t, e, __NR_mmap, RARGS(v->start, len, prot, flags, (uint64_t)fd, off),
		   "mmap of area %#" PRIx64 "-%#" PRIx64 "%s%s", v->start, v->end,
		   fd >= 0 ? " of " : "", fd >= 0 ? file_by_id(ctx, v->file_id)->fe->path : "");
advice:
	for (size_t j = 0; r >= 0 && v->vmflags && j < ARRAY_SIZE(vma_advice); j++)
		if (vma_vmflag(v, vma_advice[j].flag) && vma_advice[j].advice == ADVICE_MLOCK) {
			/* a kept area is locked by the task before its fork (cow.c) */
			if (!(t->kept && t->kept[i] && vma_cow_lock_before_fork(v)))
				r = lock_area(ctx, t, v);
		} else if (vma_vmflag(v, vma_advice[j].flag))
			r = rqueue(t, e, __NR_madvise,
				   RARGS(v->start, len, (uint64_t)vma_advice[j].advice),
				   "madvise(%s) of area %#" PRIx64, vma_advice[j].flag, v->start);
	return r;
}

/* ---- 4. pages -------------------------------------------------------------------------------- */

struct batch {
	const struct img_pages *src; /* the pages image the batch reads: own, or a parent's */
	struct img_pages *own;	     /* the task's pages image */
	uint64_t off;
	size_t len;
	struct iovec riov[BATCH_IOV];
	int n;
	char *buf; /* ctx->page_buf */
};

/* Read the batch from its image into P's buffer, write it into the task. */
static int batch_flush(struct restore_ctx *ctx, struct rtask *t, struct batch *b)
{
	struct ckpt_error *e = &ctx->err;
	struct iovec liov = {.iov_base = b->buf, .iov_len = b->len};
	ssize_t n;
	int r = img_pages_read(b->src, b->buf, b->len, b->off, e);

	if (r < 0)
		return r;
	n = process_vm_writev(t->pid, &liov, 1, b->riov, (unsigned long)b->n, 0);
	if (n != (ssize_t)b->len) {
		/* slow path (partial write): area by area, /proc/PID/mem if needed */
		size_t pos = 0;

		for (int i = 0; i < b->n; i++) {
			int r = remote_write(t->pid, (uint64_t)(uintptr_t)b->riov[i].iov_base,
					     b->buf + pos, b->riov[i].iov_len, e);

			if (r < 0)
				return ckpt_err_wrap(e, "pid %d: writing pages", t->pid);
			pos += b->riov[i].iov_len;
		}
	}
	restore_progress_pages(ctx, b->len);
	b->off += b->len;
	b->len = 0;
	b->n = 0;
	return restore_check_cancel(ctx);
}

/* Queue [va, va + len) of the task, from data offset off of src: at most
 * BATCH_BYTES, in a batch that reads its image in one piece. */
static int batch_add(struct restore_ctx *ctx, struct rtask *t, struct batch *b,
		     const struct img_pages *src, uint64_t va, uint64_t len, uint64_t off)
{
	int r = 0;

	if (b->len && (b->src != src || b->off + b->len != off || b->len + len > BATCH_BYTES ||
		       b->n == BATCH_IOV))
		r = batch_flush(ctx, t, b);
	if (r < 0)
		return r;
	if (!b->len) {
		b->src = src;
		b->off = off;
	}
	b->riov[b->n++] = (struct iovec){(void *)(uintptr_t)va, len};
	b->len += len;
	return 0;
}

/* A run of the task's own pages, at data offset off, in pieces of a batch at most. */
static int fill_run(struct restore_ctx *ctx, struct rtask *t, struct batch *b, uint64_t va,
		    uint64_t len, uint64_t off)
{
	int r = 0;

	while (r >= 0 && len) {
		uint64_t n = len < BATCH_BYTES ? len : BATCH_BYTES;

		r = batch_add(ctx, t, b, b->own, va, n, off);
		va += n, len -= n, off += n;
	}
	return r;
}

/* Index of the pagemap entry of t holding va, or the first after it. */
static size_t pagemap_find(const struct rtask *t, uint64_t va)
{
	size_t lo = 0, hi = t->n_pagemap;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const PagemapEntry *pe = t->pagemap[mid];

		if (pe->vaddr + (uint64_t)pe->nr_pages * RST_PAGE_SIZE <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int mem_page_source(struct page_src *src, uint64_t va, const struct img_pages **pages,
		    uint64_t *off, uint64_t *run_end, struct ckpt_error *e)
{
	const struct rtask *t = src->t;
	size_t i = pagemap_find(t, va);
	const PagemapEntry *pe = i < t->n_pagemap ? t->pagemap[i] : NULL;

	if (!pe || pe->vaddr > va || (pe->has_inherited && pe->inherited))
		return -ENOENT;
	if (!src->pages) {
		int r = mem_page_src_open(src, e);

		if (r < 0)
			return r;
	}
	*pages = src->pages;
	*off = t->pagemap_off[i] + (va - pe->vaddr);
	*run_end = pe->vaddr + (uint64_t)pe->nr_pages * RST_PAGE_SIZE;
	return 0;
}

int mem_page_src_open(struct page_src *src, struct ckpt_error *e)
{
	return img_pages_open(src->ctx->dirfd, src->t->pid, &src->pages, e);
}

void mem_page_src_close(struct page_src *src)
{
	img_pages_close(src->pages);
	src->pages = NULL;
}

/*
 * Pages [va, end) of an in_parent entry: their bytes are in a parent
 * checkpoint (chain.c says where); read by P and written in batches.
 */
static int fill_from_chain(struct restore_ctx *ctx, struct rtask *t, struct batch *b,
			   struct img_pages **levels, uint64_t va, uint64_t end)
{
	struct ckpt_error *e = &ctx->err;
	int r = 0;

	while (r >= 0 && va < end) {
		uint64_t off, avail, n;
		size_t level;

		r = chain_page_src(ctx, t, va, &level, &off, &avail, e);
		if (r < 0)
			return r;
		if (!levels[level]) {
			r = chain_open_pages(ctx, level, t->pid, &levels[level], e);
			if (r < 0)
				return r;
		}
		n = end - va < avail ? end - va : avail;
		if (n > BATCH_BYTES)
			n = BATCH_BYTES;
		r = batch_add(ctx, t, b, levels[level], va, n, off);
		va += n;
	}
	return r;
}

/*
 * The pages of the pagemap, in order, but not the inherited ones (no data),
 * nor any in the areas the task put in place before it forked (cow.c): its
 * own pages there are in already, and writing them again now would unshare
 * them from its children; nor those of the areas its pager fills (--lazy).
 * The data offset of each entry is the one mem_page_source() uses.
 */
static int fill_pages(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	_cleanup_img_pages_ struct img_pages *own = NULL;
	_cleanup_free_ struct batch *b = calloc(1, sizeof(*b));
	_cleanup_free_ struct img_pages **levels = calloc(ctx->n_chain + 1, sizeof(*levels));
	uint64_t off = 0;
	int r = 0;

	if (!b || !levels)
		return ckpt_err(e, -ENOMEM, "out of memory");
	r = restore_page_buf(ctx, &b->buf, e); /* one for every task */
	if (r < 0)
		return r;
	r = img_pages_open(ctx->dirfd, t->pid, &own, e);
	if (r < 0)
		return r;
	b->src = b->own = own;
	for (size_t i = 0; r >= 0 && i < t->n_pagemap; i++) {
		const PagemapEntry *pe = t->pagemap[i];
		uint64_t va = pe->vaddr, end = va + (uint64_t)pe->nr_pages * RST_PAGE_SIZE;
		bool in_parent = pe->has_in_parent && pe->in_parent;

		if (pe->has_inherited && pe->inherited)
			continue;
		off = t->pagemap_off[i];
		while (r >= 0 && va < end) {
			uint64_t stop, stop2;
			bool kept = cow_kept_range(t, va, &stop);
			bool lazy = lazy_range(t, va, &stop2);

			if (stop2 < stop)
				stop = stop2;
			if (stop > end)
				stop = end;
			/* lazy areas hold no page of a parent (chain_load refuses --lazy
			 * for a checkpoint with parents) */
			if (!kept && !lazy && in_parent)
				r = fill_from_chain(ctx, t, b, levels, va, stop);
			else if (!kept && !lazy)
				r = fill_run(ctx, t, b, va, stop - va, off + (va - pe->vaddr));
			va = stop;
		}
	}
	if (r >= 0 && b->len)
		r = batch_flush(ctx, t, b);
	for (size_t l = 0; l < ctx->n_chain; l++)
		img_pages_close(levels[l]);
	return r;
}

/*
 * An io_uring area, once every other area is in place. The kernel refuses
 * any address a program gives for a ring (io_uring_get_unmapped_area: no
 * MAP_FIXED, no hint, no mremap there): it always picks one itself. So
 * every hole of the address space but the area's own is filled for the
 * time of the call with placeholders (PROT_NONE, no memory), and the
 * kernel's only choice is the saved address.
 */
static int map_iouring_area(struct restore_ctx *ctx, struct rtask *t, const Vma *v)
{
	struct ckpt_error *e = &ctx->err;
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ uint64_t *ph = NULL; /* placeholders: start, len pairs */
	struct proc_vma_list vl = {0};
	uint64_t lo = 0x10000, len = v->end - v->start, cur;
	int64_t ring = rtask_fd_of_file(t, v->file_id);
	size_t nph = 0;
	long got = -1;
	char path[64];
	int r;

	snprintf(path, sizeof(path), "/proc/%d/maps", t->pid);
	r = proc_read_tracee_file(path, &text, NULL, e);
	if (r >= 0)
		r = proc_parse_maps_text(text, &vl, e);
	if (r < 0)
		return r;
	ph = calloc(2 * (vl.n + 2), sizeof(*ph));
	if (!ph) {
		proc_vma_list_free(&vl);
		return ckpt_err(e, -ENOMEM, "out of memory");
	}
	cur = lo;
	for (size_t k = 0; k <= vl.n; k++) {
		uint64_t end = k < vl.n ? vl.v[k].start : RST_TASK_SIZE;

		if (end > RST_TASK_SIZE) /* [vsyscall] */
			end = RST_TASK_SIZE;
		if (k < vl.n && vl.v[k].end <= lo)
			continue;
		/* the hole [cur, end), without the area's own range */
		if (end > cur && (v->start >= end || v->end <= cur)) {
			ph[2 * nph] = cur, ph[2 * nph + 1] = end - cur, nph++;
		} else if (end > cur) {
			if (v->start > cur)
				ph[2 * nph] = cur, ph[2 * nph + 1] = v->start - cur, nph++;
			if (end > v->end)
				ph[2 * nph] = v->end, ph[2 * nph + 1] = end - v->end, nph++;
		}
		if (k < vl.n && vl.v[k].end > cur)
			cur = vl.v[k].end;
	}
	proc_vma_list_free(&vl);
	for (size_t k = 0; r >= 0 && k < nph; k++) {
		r = rcall(t, e, __NR_mmap,
			  RARGS(ph[2 * k], ph[2 * k + 1], PROT_NONE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
				(uint64_t)-1, 0),
			  NULL, "placeholder %#" PRIx64 "+%#" PRIx64 " around io_uring area",
			  ph[2 * k], ph[2 * k + 1]);
		if (r < 0)
			nph = k;
	}
	if (r >= 0)
		r = rcall(t, e, __NR_mmap,
			  RARGS(0, len, v->prot, MAP_SHARED, (uint64_t)ring, v->pgoff), &got,
			  "mmap of io_uring area %#" PRIx64 "-%#" PRIx64 " (fd %" PRId64
			  ", offset %#" PRIx64 ")",
			  v->start, v->end, ring, v->pgoff);
	for (size_t k = 0; k < nph; k++) {
		struct ckpt_error tmp = {0};
		int r2 = rcall(t, r < 0 ? &tmp : e, __NR_munmap, RARGS(ph[2 * k], ph[2 * k + 1]),
			       NULL, "munmap of a placeholder");

		if (r >= 0 && r2 < 0)
			r = r2;
	}
	if (r >= 0 && (uint64_t)got != v->start)
		r = ckpt_err(e, -EIO,
			     "pid %d: io_uring area %#" PRIx64 "-%#" PRIx64
			     ": the kernel placed it at %#lx",
			     t->pid, v->start, v->end, (unsigned long)got);
	return r;
}

/*
 * Buffers registered with the task's io_uring instances, once their memory
 * is in place: the kernel pins the pages of the task's own mm.
 */
static int iouring_buffers(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	int r = 0;

	for (size_t i = 0; r >= 0 && i < t->n_fds; i++) {
		const struct rfile *f = file_by_id(ctx, t->fds[i]->id);
		const IoUringEntry *ie = f ? f->fe->io_uring : NULL;
		_cleanup_free_ struct iovec *iov = NULL;
		size_t len;

		if (!ie || !ie->n_bufs || rtask_fd_of_file(t, t->fds[i]->id) != (int)t->fds[i]->fd)
			continue;
		len = ie->n_bufs * sizeof(*iov);
		if (len > t->rsys.scratch_len)
			return ckpt_err(e, -E2BIG, "pid %d: io_uring fd %u: %zu buffers", t->pid,
					t->fds[i]->fd, ie->n_bufs);
		iov = calloc(ie->n_bufs, sizeof(*iov));
		if (!iov)
			return ckpt_err(e, -ENOMEM, "out of memory");
		for (size_t k = 0; k < ie->n_bufs; k++)
			iov[k] = (struct iovec){(void *)(uintptr_t)ie->bufs[k]->addr,
						(size_t)ie->bufs[k]->len};
		r = remote_write(t->pid, t->rsys.scratch, iov, len, e);
		if (r >= 0)
			r = rcall(t, e, __NR_io_uring_register,
				  RARGS((uint64_t)t->fds[i]->fd, IORING_REGISTER_BUFFERS,
					t->rsys.scratch, ie->n_bufs),
				  NULL, "io_uring_register of %zu buffers on fd %u", ie->n_bufs,
				  t->fds[i]->fd);
	}
	return r;
}

/* ---- 5. protection, mm fields, helper fds ------------------------------------------------------
 */

/* queued, its struct and auxv in the scratch after the capset slots (the
 * raise and the lower around it, queued too) */
static int set_mm_map(struct restore_ctx *ctx, struct rtask *t)
{
	const MmEntry *mm = t->mm;
	const uint64_t at = t->rsys.scratch + RTASK_CAPS_SCRATCH;
	struct prctl_mm_map map = {
	    .start_code = mm->start_code,
	    .end_code = mm->end_code,
	    .start_data = mm->start_data,
	    .end_data = mm->end_data,
	    .start_brk = mm->start_brk,
	    .brk = mm->brk,
	    .start_stack = mm->start_stack,
	    .arg_start = mm->arg_start,
	    .arg_end = mm->arg_end,
	    .env_start = mm->env_start,
	    .env_end = mm->env_end,
	    .auxv = (__u64 *)(uintptr_t)(at + sizeof(map)),
	    .auxv_size = (uint32_t)(mm->n_auxv * sizeof(uint64_t)),
	    .exe_fd = mm->has_exe_file_id ? (uint32_t)file_by_id(ctx, mm->exe_file_id)->map_fd
					  : (uint32_t)-1,
	};
	char buf[sizeof(map) + 128 * sizeof(uint64_t)];
	int r;

	_Static_assert(RTASK_CAPS_SCRATCH + sizeof(buf) <= GADGET_SCRATCH_SIZE,
		       "the mm map fits the scratch after the capset slots");
	memcpy(buf, &map, sizeof(map));
	memcpy(buf + sizeof(map), mm->auxv, mm->n_auxv * sizeof(uint64_t));
	/* CAP_CHECKPOINT_RESTORE */
	r = rtask_caps_queue(ctx, t, true, 1);
	if (r >= 0)
		r = rqueue_write(t, &ctx->err, at, buf, sizeof(map) + map.auxv_size);
	if (r >= 0)
		r = rqueue(t, &ctx->err, __NR_prctl,
			   RARGS(PR_SET_MM, PR_SET_MM_MAP, at, sizeof(map)),
			   "prctl(PR_SET_MM_MAP) (brk %#" PRIx64 ", stack %#" PRIx64 ")", mm->brk,
			   mm->start_stack);
	if (r >= 0)
		r = rtask_caps_queue(ctx, t, false, 2);
	return r;
}

static int close_helpers(struct restore_ctx *ctx, struct rtask *t)
{
	struct ckpt_error *e = &ctx->err;
	int r;

	/* an fd table shared with tasks whose memory comes later: the last closes */
	if (!fds_table_last(t))
		return 0;
	r = rqueue(t, e, __NR_close, RARGS((uint64_t)ctx->status_wr), "close of the status pipe");
	if (r >= 0 && ctx->uffd_wr >= 0)
		r = rqueue(t, e, __NR_close, RARGS((uint64_t)ctx->uffd_wr),
			   "close of the userfaultfd socket (--lazy)");
	for (size_t i = 0; r >= 0 && i < ctx->nfiles; i++) {
		const struct rfile *f = &ctx->files[i];

		if (f->map_fd < 0)
			continue;
		/* EBADF: this task did not map that file */
		r = rqueue_may_fail(t, e, __NR_close, RARGS((uint64_t)f->map_fd));
	}
	return r;
}

/* The restorer's memory out, the vDSO moved, the areas mapped (queued). */
static int mem_areas(struct restore_ctx *ctx, struct rtask *t)
{
	_cleanup_free_ bool *filled = calloc(t->mm->n_vmas + 1, sizeof(bool));
	struct vdso_layout cur;
	int r;

	if (!filled)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	r = unmap_restorer(ctx, t, &cur);
	if (r >= 0 && !t->vdso.present)
		pr_debug("pid %d: no vDSO saved, none kept", t->pid);
	if (r >= 0)
		r = move_vdso(ctx, t, &cur);
	mark_filled(t, filled);
	for (size_t i = 0; r >= 0 && i < t->mm->n_vmas; i++)
		if (!is_special(t->mm->vmas[i]))
			r = map_area(ctx, t, i, filled[i]);
	return r;
}

/* Once the areas are there: their pages, then protection, seals, the mm
 * fields and the helper fds closed (queued). */
static int mem_pages(struct restore_ctx *ctx, struct rtask *t)
{
	_cleanup_free_ bool *filled = calloc(t->mm->n_vmas + 1, sizeof(bool));
	int r = 0;

	if (!filled)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	mark_filled(t, filled);
	/* --lazy: before any page is put in, the areas its pager will fill */
	if (ctx->opts->lazy)
		r = lazy_register_task(ctx, t);
	if (r >= 0)
		r = fill_pages(ctx, t);
	for (size_t i = 0; r >= 0 && i < t->mm->n_vmas; i++)
		if (t->mm->vmas[i]->kind == VMA_KIND__VMA_IOURING)
			r = map_iouring_area(ctx, t, t->mm->vmas[i]);
	if (r >= 0)
		r = iouring_buffers(ctx, t);
	for (size_t i = 0; r >= 0 && i < t->mm->n_vmas; i++) {
		const Vma *v = t->mm->vmas[i];

		/* a SysV attachment is read-write or read-only as a whole; a kept
		 * area was put in place read-write (cow.c) */
		bool kept = t->kept && t->kept[i] && v->prot != (PROT_READ | PROT_WRITE);

		if (((filled[i] && !(v->prot & PROT_WRITE)) || v->kind == VMA_KIND__VMA_SYSV_SHM ||
		     kept) &&
		    !is_special(v))
			r = rqueue(t, &ctx->err, __NR_mprotect,
				   RARGS(v->start, v->end - v->start, v->prot),
				   "mprotect of area %#" PRIx64 "-%#" PRIx64, v->start, v->end);
	}
	/* sealed ("sl"): last, nothing may change the area after mseal */
	for (size_t i = 0; r >= 0 && i < t->mm->n_vmas; i++) {
		const Vma *v = t->mm->vmas[i];

		if (v->vmflags && vma_vmflag(v, "sl") && !is_special(v))
			r = rqueue(t, &ctx->err, __NR_mseal, RARGS(v->start, v->end - v->start, 0),
				   "mseal of area %#" PRIx64 "-%#" PRIx64, v->start, v->end);
	}
	if (r >= 0)
		r = set_mm_map(ctx, t);
	if (r >= 0)
		r = close_helpers(ctx, t);
	return r;
}

static int mem_task_after(struct restore_ctx *ctx, struct rtask *t)
{
	pr_info("pid %d: %zu areas, %" PRIu64 " MiB of pages", t->pid, t->mm->n_vmas,
		t->pages_bytes >> 20);
	restore_progress_task_done(ctx, t);
	return 0;
}

/*
 * Two batches a task, the second after its pages are in; the tasks' batches
 * run several at once (tasks_batch_each): a task costs two round trips of
 * the restorer's, which would be most of this stage's time for a tree of
 * many small processes, each taking turns with P.
 */
int mem_restore_all(struct restore_ctx *ctx)
{
	static const task_step steps[] = {mem_areas, mem_pages};

	return tasks_batch_each(ctx, steps, ARRAY_SIZE(steps), mem_task_after);
}
