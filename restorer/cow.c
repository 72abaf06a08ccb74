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
#include <sys/uio.h>
#include <unistd.h>

#include "cleanup.h"
#include "fault.h"
#include "log.h"
#include "mm_cow.h"
#include "proc.h"
#include "restore.h"
#include "thp.h"

/* P is told after each piece of this size of the task's pages */
#define BUSY_CHUNK (64ULL << 20)

static bool entry_inherited(const PagemapEntry *p)
{
	return p->has_inherited && p->inherited;
}

static bool entry_in_parent(const PagemapEntry *p)
{
	return p->has_in_parent && p->in_parent;
}

/* Inherited from a sibling's saved page, not the parent's: that sibling's pid, else 0. */
static pid_t entry_sibling(const PagemapEntry *p)
{
	return entry_inherited(p) && p->has_sibling ? (pid_t)p->sibling : 0;
}

static uint64_t entry_end(const PagemapEntry *p)
{
	return p->vaddr + (uint64_t)p->nr_pages * RST_PAGE_SIZE;
}

/* Is p's stage st in place (p holds it) while p forks t? */
static bool stage_active(const struct cow_stage *st, const struct rtask *t)
{
	return st->first <= t->child_idx && t->child_idx <= st->last;
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

/* Is every page of [s, e) saved by t as its own data (in its image or a parent checkpoint)? */
static bool own_pages(const struct rtask *t, uint64_t s, uint64_t e)
{
	for (size_t i = entry_after(t, s); s < e && i < t->n_pagemap; i++) {
		if (t->pagemap[i]->vaddr > s || entry_inherited(t->pagemap[i]))
			return false;
		s = entry_end(t->pagemap[i]);
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

/*
 * Are [s, e) of t in private areas that can be forks of other's areas there
 * (its parent's; or, where the parent has none any more, a sibling's: both
 * forks of the same)? If not, *bad is the end of the first part that is not.
 */
static bool fork_of(const struct rtask *t, const struct rtask *other, uint64_t s, uint64_t e,
		    uint64_t *bad)
{
	for (size_t k = vma_after(t->mm, s); s < e; k++) {
		const Vma *v = k < t->mm->n_vmas ? t->mm->vmas[k] : NULL;
		uint64_t pe_ = v && e > v->end ? v->end : e;

		*bad = pe_;
		if (!v || v->start > s || !vma_kind_has_pages(v->kind) ||
		    !(v->flags & MAP_PRIVATE) || !parent_areas_ok(other, v, s, pe_))
			return false;
		s = pe_;
	}
	return true;
}

/* Does t have an area overlapping [s, e)? */
static bool has_area(const struct rtask *t, uint64_t s, uint64_t e)
{
	size_t k = vma_after(t->mm, s);

	return k < t->mm->n_vmas && t->mm->vmas[k]->start < e;
}

/* Entry i of t: pages [s, bad) are not in the same kind of area in mm-A and mm-B. */
static int not_same_kind(struct restore_ctx *ctx, const struct rtask *t, size_t i, uint64_t s,
			 uint64_t bad, pid_t a, pid_t b)
{
	return ckpt_err(&ctx->err, -EINVAL,
			"pagemap-%d.img: entry %zu: pages %#" PRIx64 "-%#" PRIx64
			" inherited from pid %d, but mm-%d.img and mm-%d.img do not have them in "
			"the same kind of private area there",
			t->pid, i, s, bad, a, a == b ? t->pid : a, b);
}

/* An entry inherited from a sibling: a child of the same parent that saved those pages. */
static int verify_sibling(struct restore_ctx *ctx, const struct rtask *t, size_t i)
{
	const PagemapEntry *pe = t->pagemap[i];
	const struct rtask *src = task_by_pid(ctx, entry_sibling(pe));
	uint64_t s = pe->vaddr, e = entry_end(pe), bad;
	bool orphan;

	if (!src || src == t || src->parent != t->parent)
		return ckpt_err(&ctx->err, -EINVAL,
				"pagemap-%d.img: entry %zu: pages %#" PRIx64 "-%#" PRIx64
				" inherited from a sibling, pid %d, which is not another child "
				"of pid %d",
				t->pid, i, s, e, entry_sibling(pe), t->parent->pid);
	/* the parent has no area there: it maps one like src's for the forks */
	orphan = !has_area(t->parent, s, e);
	if (orphan && !fork_of(t, src, s, e, &bad))
		return not_same_kind(ctx, t, i, s, bad, src->pid, t->pid);
	if (!orphan && !fork_of(t, t->parent, s, e, &bad))
		return not_same_kind(ctx, t, i, s, bad, t->parent->pid, t->parent->pid);
	if (!orphan && !fork_of(src, t->parent, s, e, &bad))
		return not_same_kind(ctx, t, i, s, bad, src->pid, t->parent->pid);
	if (!own_pages(src, s, e))
		return ckpt_err(&ctx->err, -EINVAL,
				"pagemap-%d.img: entry %zu: pages %#" PRIx64 "-%#" PRIx64
				" inherited from its sibling pid %d, which saved no such pages "
				"of its own (pagemap-%d.img)",
				t->pid, i, s, e, src->pid, src->pid);
	return 0;
}

int cow_verify(struct restore_ctx *ctx)
{
	for (size_t ti = 0; ti < ctx->ntasks; ti++) {
		const struct rtask *t = &ctx->tasks[ti];

		for (size_t i = 0; i < t->n_pagemap; i++) {
			const PagemapEntry *pe = t->pagemap[i];
			uint64_t s = pe->vaddr, e = entry_end(pe), bad;
			int r;

			if (!entry_inherited(pe))
				continue;
			/* also said by validate_pagemap, which checked it lies in t's areas */
			if (!t->parent)
				return ckpt_err(&ctx->err, -EINVAL,
						"pagemap-%d.img: entry %zu: pages %#" PRIx64
						"-%#" PRIx64
						" inherited from a parent, but pid %d is the root",
						t->pid, i, s, e, t->pid);
			if (entry_sibling(pe)) {
				r = verify_sibling(ctx, t, i);
				if (r < 0)
					return r;
				continue;
			}
			if (!fork_of(t, t->parent, s, e, &bad))
				return not_same_kind(ctx, t, i, s, bad, t->parent->pid,
						     t->parent->pid);
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

static int cmp_range(const void *a, const void *b)
{
	const struct cow_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* A reservation refused: name the restorer's own mapping in the way. */
static int collision(struct restore_ctx *ctx, const struct cow_range *r, int err)
{
	struct proc_vma_list self = {0};
	struct ckpt_error ignore = {0};
	char what[256] = "a mapping of the restorer";
	pid_t pid = 0;

	if (proc_parse_maps(0, &self, &ignore) >= 0)
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

/* ---- pages shared between siblings only --------------------------------------------- */

/*
 * A child's entry inherited from a sibling (op) or from the parent (inh),
 * for the parent's plan. The parent can hold the sibling src's pages for
 * the member from before it forks src (index j) to after it forks the
 * member (index i), if at those addresses nothing else needs the parent's
 * memory in that time: no child inheriting the parent's own page forked
 * before the member (the parent's page would be written over, and a child
 * inheriting it must be forked once the parent's own page is back), no
 * other sibling's pages held at the same time. The parent's own pages
 * there must be data it can read back (not inherited itself). Entries
 * that cannot be handed down are copied from the sibling's saved pages:
 * the same content, one copy more.
 */
struct sib_item {
	uint64_t s, e;
	struct rtask *t; /* the child */
	size_t entry;	 /* its pagemap entry */
	size_t j, i;	 /* op: forks of src and of the member; inh: i, the child's */
	bool op, ok;
};

static int cmp_item(const void *a, const void *b)
{
	const struct sib_item *x = a, *y = b;

	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

/* The parent's own pages over [s, e) are data or absent (none inherited)? */
static bool parent_own_or_none(const struct rtask *p, uint64_t s, uint64_t e)
{
	for (size_t i = entry_after(p, s); i < p->n_pagemap && p->pagemap[i]->vaddr < e; i++)
		if (entry_inherited(p->pagemap[i]))
			return false;
	return true;
}

static int add_range(struct cow_range **v, size_t *n, uint64_t s, uint64_t e)
{
	struct cow_range *g = realloc(*v, (*n + 1) * sizeof(**v));

	if (!g)
		return -ENOMEM;
	*v = g;
	g[(*n)++] = (struct cow_range){s, e};
	return 0;
}

static int add_stage(struct rtask *p, const struct cow_stage *st)
{
	struct cow_stage *g = realloc(p->stages, (p->n_stages + 1) * sizeof(*g));

	if (!g)
		return -ENOMEM;
	p->stages = g;
	g[p->n_stages++] = *st;
	return 0;
}

/* Conflicts among the children's entries of parent p, address by address. */
static void sib_conflicts(const struct rtask *p, struct sib_item *v, size_t n)
{
	_cleanup_free_ size_t *act = calloc(n + 1, sizeof(*act));
	size_t na = 0;

	if (!act) { /* nothing handed down: every sibling entry copied */
		for (size_t x = 0; x < n; x++)
			v[x].ok = false;
		return;
	}
	qsort(v, n, sizeof(*v), cmp_item);
	for (size_t x = 0; x < n; x++) {
		struct sib_item *a = &v[x];
		size_t keep = 0;

		if (a->op && (a->j >= a->i || !parent_own_or_none(p, a->s, a->e)))
			a->ok = false;
		/* the items still overlapping this one (all start at or before it) */
		for (size_t y = 0; y < na; y++) {
			struct sib_item *b = &v[act[y]];

			if (b->e <= a->s)
				continue;
			act[keep++] = act[y];
			if (a->op && !b->op && b->i <= a->i)
				a->ok = false;
			else if (!a->op && b->op && b->ok && a->i <= b->i)
				b->ok = false;
			else if (a->op && b->op && a->ok && b->ok && a->j != b->j && a->j <= b->i &&
				 b->j <= a->i)
				a->ok = false;
		}
		na = keep;
		act[na++] = x;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The stages of the child forked j-th (v: the n entries handed down from
 * its pages): over each part of them, held until the last child sharing
 * that part is forked.
 */
static int stages_of(struct rtask *p, struct sib_item *const *v, size_t n, size_t j)
{
	_cleanup_free_ uint64_t *pt = malloc((2 * n + 1) * sizeof(*pt));
	_cleanup_free_ size_t *last = NULL;
	size_t np = 0, m = 0;
	struct cow_stage cur = {0};

	if (!pt)
		return -ENOMEM;
	for (size_t x = 0; x < n; x++) {
		pt[np++] = v[x]->s;
		pt[np++] = v[x]->e;
	}
	qsort(pt, np, sizeof(*pt), cmp_u64);
	for (size_t x = 0; x < np; x++)
		if (!m || pt[x] != pt[m - 1])
			pt[m++] = pt[x];
	last = calloc(m, sizeof(*last)); /* per part [pt[k], pt[k + 1]): 0 none, else i + 1 */
	if (!last)
		return -ENOMEM;
	for (size_t x = 0; x < n; x++) {
		const struct sib_item *a = v[x];
		size_t lo = 0, hi = m;

		while (lo < hi) { /* the part starting at a->s */
			size_t mid = lo + (hi - lo) / 2;

			if (pt[mid] < a->s)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t k = lo; k + 1 < m && pt[k] < a->e; k++)
			if (last[k] < a->i + 1)
				last[k] = a->i + 1;
	}
	for (size_t k = 0; k + 1 < m; k++) {
		bool orphan = !has_area(p, pt[k], pt[k + 1]);

		if (cur.end &&
		    (cur.end != pt[k] || cur.last + 1 != last[k] || cur.orphan != orphan)) {
			if (add_stage(p, &cur) < 0)
				return -ENOMEM;
			cur.end = 0;
		}
		if (!last[k])
			continue;
		if (!cur.end)
			cur = (struct cow_stage){pt[k], pt[k],	     p->children[j],
						 j,	last[k] - 1, orphan};
		cur.end = pt[k + 1];
	}
	if (cur.end && add_stage(p, &cur) < 0)
		return -ENOMEM;
	return 0;
}

static int cmp_op_src(const void *a, const void *b)
{
	const struct sib_item *x = *(struct sib_item *const *)a, *y = *(struct sib_item *const *)b;

	return (x->j > y->j) - (x->j < y->j);
}

/* Which sibling entries of p's children p hands down, and its stages. */
static int plan_siblings(struct restore_ctx *ctx, struct rtask *p)
{
	_cleanup_free_ struct sib_item *v = NULL;
	_cleanup_free_ struct sib_item **ok = NULL;
	size_t n = 0, cap = 0, nops = 0, nok = 0;

	for (size_t c = 0; c < p->n_children; c++) {
		struct rtask *t = p->children[c];

		for (size_t k = 0; k < t->n_pagemap; k++) {
			const PagemapEntry *pe = t->pagemap[k];
			pid_t sib = entry_sibling(pe);

			if (!entry_inherited(pe))
				continue;
			if (n == cap) {
				struct sib_item *g =
				    realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));

				if (!g)
					return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
				v = g;
			}
			v[n++] = (struct sib_item){
			    .s = pe->vaddr,
			    .e = entry_end(pe),
			    .t = t,
			    .entry = k,
			    .j = sib ? task_by_pid(ctx, sib)->child_idx : 0,
			    .i = c,
			    .op = sib != 0,
			    .ok = true,
			};
			nops += sib != 0;
		}
	}
	if (!nops)
		return 0;
	sib_conflicts(p, v, n);
	/* tests: nothing handed down, every such entry copied */
	if (ckpt_fault("cow-sibling-copy"))
		for (size_t x = 0; x < n; x++)
			v[x].ok = false;
	ok = calloc(nops, sizeof(*ok));
	if (!ok)
		return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	for (size_t x = 0; x < n; x++) {
		if (!v[x].op)
			continue;
		v[x].t->sib_ok[v[x].entry] = v[x].ok;
		if (v[x].ok)
			ok[nok++] = &v[x];
	}
	/* the entries handed down, by the sibling whose pages they are */
	qsort(ok, nok, sizeof(*ok), cmp_op_src);
	for (size_t x = 0, y; x < nok; x = y) {
		for (y = x + 1; y < nok && ok[y]->j == ok[x]->j; y++)
			;
		if (stages_of(p, ok + x, y - x, ok[x]->j) < 0)
			return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	}
	pr_debug("pid %d: %zu of %zu entries from siblings handed down, %zu stages", p->pid, nok,
		 nops, p->n_stages);
	return 0;
}

static int add_sib_read(struct rtask *t, struct rtask *s)
{
	struct rtask **g;

	for (size_t j = 0; j < t->n_sib_reads; j++)
		if (t->sib_reads[j] == s)
			return 0;
	g = realloc(t->sib_reads, (t->n_sib_reads + 1) * sizeof(*g));
	if (!g)
		return -ENOMEM;
	t->sib_reads = g;
	t->sib_reads[t->n_sib_reads++] = s;
	return 0;
}

/*
 * The siblings whose images t reads in the task, before it forks: those
 * whose saved pages it copies into its areas itself (fill_kept), and those
 * whose pages its parent holds for it (premap_area looks at their areas).
 * The fork that makes t must hand their images down to it (task.c, "What a
 * fork hands down").
 */
static int plan_sib_reads(struct restore_ctx *ctx, struct rtask *t)
{
	const struct rtask *p = t->parent;
	int r = 0;

	for (size_t k = 0; r >= 0 && k < t->n_pagemap; k++) {
		pid_t sib = entry_sibling(t->pagemap[k]);

		if (sib && !t->sib_ok[k])
			r = add_sib_read(t, task_by_pid(ctx, sib));
	}
	for (size_t k = 0; r >= 0 && p && k < p->n_stages; k++)
		if (stage_active(&p->stages[k], t) && p->stages[k].src != t)
			r = add_sib_read(t, p->stages[k].src);
	return r < 0 ? ckpt_err(&ctx->err, -ENOMEM, "out of memory") : 0;
}

/* What each task keeps of what it was forked with (t->held, sorted, merged). */
static int plan_held(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		for (size_t k = 0; k < t->n_pagemap; k++) {
			const PagemapEntry *pe = t->pagemap[k];

			if (entry_inherited(pe) && (!entry_sibling(pe) || t->sib_ok[k]) &&
			    add_range(&t->held, &t->n_held, pe->vaddr, entry_end(pe)) < 0)
				return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		}
		for (size_t k = 0; k < t->n_stages; k++)
			if (add_range(&t->stages[k].src->held, &t->stages[k].src->n_held,
				      t->stages[k].start, t->stages[k].end) < 0)
				return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];
		size_t m = 0;

		if (t->n_held > 1) /* (qsort wants an array, and held is NULL when empty) */
			qsort(t->held, t->n_held, sizeof(*t->held), cmp_range);
		for (size_t k = 0; k < t->n_held; k++) {
			if (m && t->held[k].start <= t->held[m - 1].end) {
				if (t->held[k].end > t->held[m - 1].end)
					t->held[m - 1].end = t->held[k].end;
			} else {
				t->held[m++] = t->held[k];
			}
		}
		t->n_held = m;
	}
	return 0;
}

int cow_plan(struct restore_ctx *ctx)
{
	int r;

	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		free(t->kept);
		free(t->sib_ok);
		free(t->held);
		free(t->stages);
		free(t->sib_reads);
		t->n_kept = t->n_held = t->n_stages = t->n_sib_reads = 0;
		t->held = NULL;
		t->stages = NULL;
		t->sib_reads = NULL;
		t->kept = calloc(t->mm->n_vmas + 1, sizeof(*t->kept));
		t->sib_ok = calloc(t->n_pagemap + 1, sizeof(*t->sib_ok));
		if (!t->kept || !t->sib_ok)
			return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
		for (size_t c = 0; c < t->n_children; c++)
			t->children[c]->child_idx = c;
	}
	for (size_t i = 0; i < ctx->ntasks; i++) {
		r = plan_siblings(ctx, &ctx->tasks[i]);
		if (r < 0)
			return r;
	}
	r = plan_held(ctx);
	for (size_t i = 0; r >= 0 && i < ctx->ntasks; i++)
		r = plan_sib_reads(ctx, &ctx->tasks[i]);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &ctx->tasks[i];

		for (size_t k = 0; k < t->n_pagemap; k++) {
			const PagemapEntry *pe = t->pagemap[k];

			if (!entry_inherited(pe))
				continue;
			/* the child's areas, and the parent's it forks them from (a
			 * sibling's pages not handed down: copied into the child's) */
			mark_kept(t, pe->vaddr, entry_end(pe));
			if (!entry_sibling(pe) || t->sib_ok[k])
				mark_kept(t->parent, pe->vaddr, entry_end(pe));
		}
		/* the parent holds a sibling's pages: its area, and the sibling's */
		for (size_t k = 0; k < t->n_stages; k++) {
			mark_kept(t, t->stages[k].start, t->stages[k].end);
			mark_kept(t->stages[k].src, t->stages[k].start, t->stages[k].end);
		}
	}
	for (size_t i = 0; i < ctx->ntasks; i++)
		for (size_t k = 0; k < ctx->tasks[i].mm->n_vmas; k++)
			ctx->tasks[i].n_kept += ctx->tasks[i].kept[k];
	return 0;
}

int cow_plan_reserve(struct restore_ctx *ctx)
{
	_cleanup_free_ struct cow_range *v = NULL;
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
				struct cow_range *g =
				    realloc(v, (cap = cap ? 2 * cap : 64) * sizeof(*v));

				if (!g)
					return ckpt_err(&ctx->err, -ENOMEM, "out of memory");
				v = g;
			}
			v[n++] = (struct cow_range){t->mm->vmas[k]->start, t->mm->vmas[k]->end};
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

/* Index of the first held range of t ending after addr. */
static size_t held_after(const struct rtask *t, uint64_t addr)
{
	size_t lo = 0, hi = t->n_held;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->held[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Drop what [s, e) got from the parent, except what t holds (t->held). */
static int drop_unshared(const struct rtask *t, uint64_t s, uint64_t e, struct ckpt_error *err)
{
	for (size_t i = held_after(t, s); s < e; i++) {
		const struct cow_range *h = i < t->n_held ? &t->held[i] : NULL;
		uint64_t stop = h && h->start < e ? h->start : e;

		if (stop > s && madvise((void *)(uintptr_t)s, stop - s, MADV_DONTNEED) < 0)
			return ckpt_err_errno(err, -errno,
					      "madvise(MADV_DONTNEED) of %#" PRIx64 "-%#" PRIx64, s,
					      stop);
		if (!h || h->start >= e)
			break;
		s = h->end; /* held: kept */
	}
	return 0;
}

/*
 * Area v of t (kept): the parts that t's parent has in kept areas v can be
 * a fork of are t's already (inherited by fork), and so are those where the
 * parent held a sibling's pages in an area of its own for the time of the
 * fork (an orphan stage); the rest is mapped fresh.
 */
static int premap_area(struct restore_ctx *ctx, const struct rtask *t, const Vma *v,
		       struct ckpt_error *err)
{
	const struct rtask *p = t->parent;
	_cleanup_free_ struct cow_range *w = NULL;
	uint64_t s = v->start;
	size_t n = 0;
	int r;

	for (size_t i = p ? vma_after(p->mm, s) : 0; p && i < p->mm->n_vmas; i++) {
		const Vma *x = p->mm->vmas[i];

		if (x->start >= v->end)
			break;
		if (p->kept[i] && vma_cow_compatible(v, x) &&
		    add_range(&w, &n, x->start > s ? x->start : s,
			      x->end < v->end ? x->end : v->end) < 0)
			return ckpt_err(err, -ENOMEM, "out of memory");
	}
	for (size_t k = 0; p && k < p->n_stages; k++) {
		const struct cow_stage *st = &p->stages[k];
		uint64_t ws = st->start > v->start ? st->start : v->start;
		uint64_t we = st->end < v->end ? st->end : v->end;

		if (st->orphan && ws < we && stage_active(st, t) &&
		    parent_areas_ok(st->src, v, ws, we) && add_range(&w, &n, ws, we) < 0)
			return ckpt_err(err, -ENOMEM, "out of memory");
	}
	if (n > 1)
		qsort(w, n, sizeof(*w), cmp_range);
	for (size_t i = 0; i < n; i++) {
		if (w[i].start > s) {
			r = map_fresh(ctx, v, s, w[i].start, err);
			if (r < 0)
				return r;
		}
		r = drop_unshared(t, w[i].start, w[i].end, err);
		if (r < 0)
			return r;
		s = w[i].end;
	}
	return s < v->end ? map_fresh(ctx, v, s, v->end, err) : 0;
}

/* [s, e) of what t inherited: t's kept areas stay, the rest is reserved again, empty. */
static int unreserve_range(const struct rtask *t, uint64_t s, uint64_t e, struct ckpt_error *err)
{
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
					      "reserving %#" PRIx64 "-%#" PRIx64 " again", s, stop);
		s = stop;
	}
	return 0;
}

/*
 * The parent's kept areas, and the areas it held a sibling's pages in for
 * the fork, where t has no kept area: reserved again, empty.
 */
static int unreserve_parent(const struct rtask *t, struct ckpt_error *err)
{
	const struct rtask *p = t->parent;
	int r = 0;

	for (size_t i = 0; r >= 0 && p && i < p->mm->n_vmas; i++)
		if (p->kept[i])
			r = unreserve_range(t, p->mm->vmas[i]->start, p->mm->vmas[i]->end, err);
	for (size_t k = 0; r >= 0 && p && k < p->n_stages; k++)
		if (p->stages[k].orphan && stage_active(&p->stages[k], t))
			r = unreserve_range(t, p->stages[k].start, p->stages[k].end, err);
	return r;
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

/*
 * Put len bytes at data offset at of pages at s, our own address. A run of a
 * huge page or more goes through ctx->page_buf and process_vm_writev to
 * ourselves, not a pread to s: on these VMs the kernel's first access of
 * each page through our addresses costs a fault of its own (docs/restore.md,
 * stage memory). A shorter one is read in place: fewer such faults than the
 * zeroing of a huge page of buffer costs. P is told after each BUSY_CHUNK:
 * it waits for the fork.
 */
static int read_kept(struct restore_ctx *ctx, struct rtask *t, const struct img_pages *pages,
		     uint64_t s, uint64_t len, uint64_t at, struct ckpt_error *err)
{
	bool direct = len < THP_SIZE;
	uint64_t done = 0;
	char *buf = NULL;
	int r;

	if (!direct) {
		r = restore_page_buf(ctx, &buf, err);
		if (r < 0)
			return r;
	}
	while (done < len) {
		uint64_t chunk = len - done < RST_PAGE_BUF_BYTES ? len - done : RST_PAGE_BUF_BYTES;
		char *dst = (char *)(uintptr_t)(s + done);

		/* all of the chunk or an error: no short read to go round again for */
		r = img_pages_read(pages, direct ? dst : buf, chunk, at + done, err);
		if (r < 0)
			return ckpt_err_wrap(err, "pages to %#" PRIx64, s + done);
		if (!direct) {
			struct iovec local = {buf, chunk}, remote = {dst, chunk};

			if (process_vm_writev(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)chunk)
				memcpy(dst, buf, chunk); /* the area is ours, read-write */
		}
		done += chunk;
		if (done < len && done / BUSY_CHUNK != (done - chunk) / BUSY_CHUNK)
			task_busy(ctx, t);
	}
	return 0;
}

/* Pages [s, e) of src unchanged since a parent checkpoint: from there (chain.c), by t. */
static int read_kept_chain(struct restore_ctx *ctx, struct rtask *t, const struct rtask *src,
			   uint64_t s, uint64_t e, struct ckpt_error *err)
{
	while (s < e) {
		_cleanup_img_pages_ struct img_pages *pages = NULL;
		uint64_t off, avail, n;
		size_t level;
		int r;

		r = chain_page_src(ctx, src, s, &level, &off, &avail, err);
		if (r < 0)
			return r;
		r = chain_open_pages(ctx, level, src->pid, &pages, err);
		if (r < 0)
			return r;
		n = e - s < avail ? e - s : avail;
		r = read_kept(ctx, t, pages, s, n, off, err);
		if (r < 0)
			return r;
		s += n;
	}
	return 0;
}

/*
 * Put the pages src saved at [s, e) in place at the same addresses of t
 * (the task running this): from src's image (*pages: opened on first use,
 * the caller closes it) or a parent checkpoint; where src saved no page, t's
 * page is dropped (zeros, or the file's own page).
 */
static int load_saved(struct restore_ctx *ctx, struct rtask *t, const struct rtask *src, uint64_t s,
		      uint64_t e, struct img_pages **pages, struct ckpt_error *err)
{
	int r = 0;

	for (size_t i = entry_after(src, s); r >= 0 && s < e; i++) {
		const PagemapEntry *pe = i < src->n_pagemap ? src->pagemap[i] : NULL;
		uint64_t gap = pe && pe->vaddr < e ? pe->vaddr : e, stop;

		if (gap > s && madvise((void *)(uintptr_t)s, gap - s, MADV_DONTNEED) < 0)
			return ckpt_err_errno(err, -errno,
					      "madvise(MADV_DONTNEED) of %#" PRIx64 "-%#" PRIx64, s,
					      gap);
		if (gap >= e)
			break;
		if (gap > s)
			s = gap;
		stop = entry_end(pe) < e ? entry_end(pe) : e;
		if (entry_inherited(pe))
			return ckpt_err(err, -EINVAL,
					"pages %#" PRIx64 "-%#" PRIx64 " of pid %d to hand down "
					"are not its own",
					s, stop, src->pid);
		if (entry_in_parent(pe)) {
			r = read_kept_chain(ctx, t, src, s, stop, err);
		} else {
			if (!*pages && (r = img_pages_open(ctx->dirfd, src->pid, pages, err)) < 0)
				return r;
			r = read_kept(ctx, t, *pages, s, stop - s,
				      src->pagemap_off[i] + (s - pe->vaddr), err);
		}
		s = stop;
	}
	return r;
}

/* In [s, e), the first part t does not hold: [*ps, *pe) (empty if none). */
static void not_held(const struct rtask *t, uint64_t s, uint64_t e, uint64_t *ps, uint64_t *pe)
{
	size_t i = held_after(t, s);

	while (i < t->n_held && t->held[i].start <= s && s < e)
		s = t->held[i++].end;
	*ps = s < e ? s : e;
	*pe = i < t->n_held && t->held[i].start < e ? t->held[i].start : e;
	if (*pe < *ps)
		*pe = *ps;
}

/*
 * t's own pages inside its kept areas, read straight into place, but not
 * what it holds from its fork; and a sibling's pages the parent could not
 * hand down, copied from that sibling's saved pages.
 */
static int fill_kept(struct restore_ctx *ctx, struct rtask *t, struct ckpt_error *err)
{
	/* t's pages image; the last sibling's */
	_cleanup_img_pages_ struct img_pages *own = NULL, *sib = NULL;
	pid_t spid = 0;
	uint64_t off = 0;
	int r = img_pages_open(ctx->dirfd, t->pid, &own, err);

	if (r < 0)
		return r;
	for (size_t i = 0; i < t->n_pagemap; i++) {
		const PagemapEntry *pe = t->pagemap[i];
		uint64_t s = pe->vaddr, e = entry_end(pe);

		if (entry_sibling(pe) && !t->sib_ok[i]) {
			if (spid != entry_sibling(pe)) {
				img_pages_close(sib);
				sib = NULL;
			}
			spid = entry_sibling(pe);
			r = load_saved(ctx, t, task_by_pid(ctx, spid), s, e, &sib, err);
			if (r < 0)
				return r;
			continue;
		}
		if (entry_inherited(pe))
			continue;
		while (s < e) {
			uint64_t stop, hs, he;
			bool kept = in_kept(t, s, &stop);

			if (stop > e)
				stop = e;
			for (uint64_t a = s; kept && a < stop; a = he) {
				not_held(t, a, stop, &hs, &he);
				if (hs >= he)
					break;
				if (entry_in_parent(pe))
					r = read_kept_chain(ctx, t, t, hs, he, err);
				else
					r = read_kept(ctx, t, own, hs, he - hs,
						      off + (hs - pe->vaddr), err);
				if (r < 0)
					return r;
			}
			s = stop;
		}
		if (!entry_in_parent(pe))
			off += e - pe->vaddr;
	}
	return 0;
}

/* [s, e) mapped fresh as src has it there (its areas can be forks of each other's). */
static int map_like(struct restore_ctx *ctx, const struct rtask *src, uint64_t s, uint64_t e,
		    struct ckpt_error *err)
{
	for (size_t k = vma_after(src->mm, s); s < e && k < src->mm->n_vmas; k++) {
		const Vma *v = src->mm->vmas[k];
		uint64_t stop = v->end < e ? v->end : e;
		int r = map_fresh(ctx, v, s > v->start ? s : v->start, stop, err);

		if (r < 0)
			return r;
		s = stop;
	}
	return 0;
}

int cow_task_fork(struct restore_ctx *ctx, struct rtask *t, size_t idx, bool before,
		  struct ckpt_error *err)
{
	/* before: every stage starting here is of children[idx]'s pages; after: ours */
	_cleanup_img_pages_ struct img_pages *pages = NULL;

	for (size_t k = 0; k < t->n_stages; k++) {
		const struct cow_stage *st = &t->stages[k];
		int r = 0;

		/* the sibling's pages, for it and the siblings forked until last
		 * (where t has no area any more, in one like the sibling's) */
		if (before && st->first == idx && st->orphan)
			r = map_like(ctx, st->src, st->start, st->end, err);
		if (r >= 0 && before && st->first == idx)
			r = load_saved(ctx, t, st->src, st->start, st->end, &pages, err);
		/* then the task's own again, or nothing */
		else if (!before && st->last == idx && !st->orphan)
			r = load_saved(ctx, t, t, st->start, st->end, &pages, err);
		else if (!before && st->last == idx &&
			 mmap((void *)(uintptr_t)st->start, st->end - st->start, PROT_NONE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
			      0) == MAP_FAILED)
			r = ckpt_err_errno(err, -errno, "reserving %#" PRIx64 "-%#" PRIx64 " again",
					   st->start, st->end);
		if (r < 0)
			return ckpt_err_wrap(err,
					     "pid %d: pages %#" PRIx64 "-%#" PRIx64
					     " shared by its children from pid %d on",
					     t->pid, st->start, st->end, st->src->pid);
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
	/* not kept for the rest of stage tree, nor inherited by the children */
	restore_page_buf_free(ctx);
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
