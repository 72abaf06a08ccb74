/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of copy-on-write sharing at restore (restorer/cow.c,
 * lib/mm_cow.h): trees of tasks with their areas and pagemaps as
 * images_load() leaves them, given as tables. Checked: which inherited
 * pages the verifier accepts and the error it gives for the others (in the
 * root, outside a compatible area of the parent, in pages the parent did
 * not save, shared areas), and which areas of each task are kept (put in
 * place before the fork); pages shared between siblings only: which of
 * them the parent hands down (no child inheriting the parent's own page
 * forked before the last sibling sharing them, no other sibling's pages
 * held at the same time, the parent's own pages there its own) and what
 * the parent holds while it forks which children (its stages).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mm_cow.h"
#include "restore.h"

#define MAX_TASKS 6
#define MAX_STAGES 3
#define MAX_VMAS 6
#define MAX_PM 6
#define PG 4096ULL
#define A 0x10000000ULL /* a shared area: A .. A + 64 pages */

struct t_vma {
	uint64_t start, end;
	VmaKind kind; /* 0 ends the table */
	uint32_t flags, file_id;
	uint64_t pgoff;
};

struct t_pm {
	uint64_t vaddr;
	uint32_t nr; /* 0 ends the table */
	bool inh;
	pid_t sib;
};

struct t_stage {
	uint64_t start, end; /* 0 ends the table */
	pid_t src;
	size_t first, last;
	bool orphan;
};

struct t_task {
	pid_t pid, ppid; /* 0 ends the table; parents first */
	struct t_vma vmas[MAX_VMAS];
	struct t_pm pm[MAX_PM];
	const char *kept; /* one '1' or '0' per area after cow_plan (NULL: not checked) */
	const char *sib_ok; /* one per entry from a sibling: '1' handed down, '0' copied */
	struct t_stage stages[MAX_STAGES];
};

struct cow_case {
	const char *name;
	struct t_task tasks[MAX_TASKS];
	const char *err; /* substring of cow_verify's error, NULL: accepted */
};

#define ANON(s, e)                                                                                 \
	{                                                                                          \
		(s), (e), VMA_KIND__VMA_ANON_PRIVATE, MAP_PRIVATE, 0, 0                            \
	}
#define FILEV(s, e, id, off)                                                                       \
	{                                                                                          \
		(s), (e), VMA_KIND__VMA_FILE_PRIVATE, MAP_PRIVATE, (id), (off)                     \
	}
#define D(v, n)                                                                                    \
	{                                                                                          \
		(v), (n), false                                                                    \
	} /* pages with data */
#define I(v, n)                                                                                    \
	{                                                                                          \
		(v), (n), true                                                                     \
	} /* pages inherited */

#define S(v, n, pid)                                                                               \
	{                                                                                          \
		(v), (n), true, (pid)                                                              \
	} /* pages inherited from sibling pid */

#define NR(s, e)                                                                                   \
	{                                                                                          \
		(s), (e), VMA_KIND__VMA_ANON_PRIVATE, MAP_PRIVATE | MAP_NORESERVE, 0, 0            \
	}
#define SHM(s, e)                                                                                  \
	{                                                                                          \
		(s), (e), VMA_KIND__VMA_SHMEM_SHARED, MAP_SHARED, 3, 0                             \
	}

/* rows name only the fields they check: the rest are zero */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const struct cow_case cases[] = {
    {"child and grandchild share with their parents",
     {{1,
       0,
       {ANON(A, A + 64 * PG), ANON(A + 128 * PG, A + 130 * PG)},
       {D(A, 64), D(A + 128 * PG, 2)},
       "10"},
      {2, 1, {ANON(A, A + 64 * PG)}, {I(A, 10), D(A + 10 * PG, 1), I(A + 11 * PG, 53)}, "1"},
      {3,
       2,
       {ANON(A, A + 32 * PG), ANON(A + 200 * PG, A + 201 * PG)},
       {I(A, 12), D(A + 200 * PG, 1)},
       "10"},
      {4, 1, {ANON(A + 128 * PG, A + 130 * PG)}, {D(A + 128 * PG, 2)}, "0"}},
     NULL},
    {"a child's area larger than the parent's (brk grew)",
     {{1, 0, {ANON(A, A + 4 * PG)}, {D(A, 4)}, "1"},
      {2, 1, {ANON(A, A + 8 * PG)}, {I(A, 4), D(A + 4 * PG, 4)}, "1"}},
     NULL},
    {"the same file at the same offset",
     {{1, 0, {FILEV(A, A + 4 * PG, 7, 0x3000)}, {D(A, 2)}, "1"},
      {2, 1, {FILEV(A + PG, A + 4 * PG, 7, 0x4000)}, {I(A + PG, 1)}, "1"}},
     NULL},
    {"inherited in the root",
     {{1, 0, {ANON(A, A + 4 * PG)}, {I(A, 4)}, NULL}},
     "inherited from a parent, but pid 1 is the root"},
    {"inherited where the parent has no area",
     {{1, 0, {ANON(A, A + 4 * PG)}, {D(A, 4)}, NULL},
      {2, 1, {ANON(A, A + 8 * PG)}, {I(A + 2 * PG, 4)}, NULL}},
     "do not have them in the same kind of private area"},
    {"inherited from a file area into an anonymous one",
     {{1, 0, {FILEV(A, A + 4 * PG, 7, 0)}, {D(A, 4)}, NULL},
      {2, 1, {ANON(A, A + 4 * PG)}, {I(A, 4)}, NULL}},
     "do not have them in the same kind of private area"},
    {"the same file at another offset",
     {{1, 0, {FILEV(A, A + 4 * PG, 7, 0)}, {D(A, 4)}, NULL},
      {2, 1, {FILEV(A, A + 4 * PG, 7, PG)}, {I(A, 4)}, NULL}},
     "do not have them in the same kind of private area"},
    {"MAP_NORESERVE in the parent only",
     {{1, 0, {NR(A, A + 4 * PG)}, {D(A, 4)}, NULL}, {2, 1, {ANON(A, A + 4 * PG)}, {I(A, 4)}, NULL}},
     "do not have them in the same kind of private area"},
    {"inherited pages the parent did not save",
     {{1, 0, {ANON(A, A + 8 * PG)}, {D(A, 2), D(A + 3 * PG, 5)}, NULL},
      {2, 1, {ANON(A, A + 8 * PG)}, {I(A + PG, 3)}, NULL}},
     "which saved no such pages"},
    {"inherited pages the parent itself inherited (grandchild)",
     {{1, 0, {ANON(A, A + 8 * PG)}, {D(A, 8)}, "1"},
      {2, 1, {ANON(A, A + 8 * PG)}, {D(A, 4), I(A + 4 * PG, 4)}, "1"},
      {3, 2, {ANON(A, A + 8 * PG)}, {I(A + 2 * PG, 6)}, "1"}},
     NULL},
    {"siblings share what the parent rewrote after forking them",
     {{1,
       0,
       {ANON(A, A + 64 * PG)},
       {D(A, 64)},
       "1",
       NULL,
       {{A, A + 32 * PG, 2, 0, 2}, {A + 32 * PG, A + 64 * PG, 2, 0, 1}}},
      {2, 1, {ANON(A, A + 64 * PG)}, {D(A, 64)}, "1"},
      {3, 1, {ANON(A, A + 64 * PG)}, {S(A, 64, 2)}, "1", "1"},
      {4, 1, {ANON(A, A + 64 * PG)}, {S(A, 32, 2), D(A + 32 * PG, 32)}, "1", "1"}},
     NULL},
    {"two generations of siblings, then children sharing the parent's page",
     {{1,
       0,
       {ANON(A, A + 8 * PG)},
       {D(A, 8)},
       "1",
       NULL,
       {{A, A + 8 * PG, 2, 0, 1}, {A, A + 8 * PG, 4, 2, 3}}},
      {2, 1, {ANON(A, A + 8 * PG)}, {D(A, 8)}, "1"},
      {3, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 2)}, "1", "1"},
      {4, 1, {ANON(A, A + 8 * PG)}, {D(A, 8)}, "1"},
      {5, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 4)}, "1", "1"},
      {6, 1, {ANON(A, A + 8 * PG)}, {I(A, 8)}, "1"}},
     NULL},
    {"a child sharing the parent's page forked between siblings",
     {{1, 0, {ANON(A, A + 8 * PG)}, {D(A, 8)}, "1"},
      {2, 1, {ANON(A, A + 8 * PG)}, {D(A, 8)}, "0"},
      {3, 1, {ANON(A, A + 8 * PG)}, {I(A + 4 * PG, 1)}, "1"},
      {4, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 2)}, "1", "0"}},
     NULL},
    {"a sibling forked after the one sharing its pages",
     {{1, 0, {ANON(A, A + 8 * PG)}, {{0}}, "0"},
      {2, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 3)}, "1", "0"},
      {3, 1, {ANON(A, A + 8 * PG)}, {D(A, 8)}, "0"}},
     NULL},
    {"siblings' pages where the parent has its own parent's",
     {{1, 0, {ANON(A, A + 8 * PG)}, {D(A, 8)}, "1"},
      {2, 1, {ANON(A, A + 8 * PG)}, {I(A, 8)}, "1"},
      {3, 2, {ANON(A, A + 8 * PG)}, {D(A, 8)}, "0"},
      {4, 2, {ANON(A, A + 8 * PG)}, {S(A, 8, 3)}, "1", "0"}},
     NULL},
    {"two siblings' pages needed at the same time",
     {{1, 0, {ANON(A, A + 16 * PG)}, {{0}}, "1", NULL, {{A, A + 8 * PG, 2, 0, 2}}},
      {2, 1, {ANON(A, A + 16 * PG)}, {D(A, 8)}, "1"},
      {3, 1, {ANON(A, A + 16 * PG)}, {D(A + 4 * PG, 8)}, "0"},
      {4, 1, {ANON(A, A + 16 * PG)}, {S(A, 8, 2)}, "1", "1"},
      {5, 1, {ANON(A, A + 16 * PG)}, {S(A + 4 * PG, 8, 3)}, "1", "0"}},
     NULL},
    {"siblings share pages where the parent has no area any more",
     {{1,
       0,
       {ANON(A + 64 * PG, A + 65 * PG)},
       {D(A + 64 * PG, 1)},
       "1",
       NULL,
       {{A, A + 8 * PG, 2, 0, 1, true}}},
      {2,
       1,
       {ANON(A, A + 8 * PG), ANON(A + 64 * PG, A + 65 * PG)},
       {D(A, 8), I(A + 64 * PG, 1)},
       "11"},
      {3, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 2)}, "1", "1"}},
     NULL},
    {"where the parent has no area, a sibling's area of another kind",
     {{1, 0, {ANON(A + 64 * PG, A + 65 * PG)}, {{0}}, NULL},
      {2, 1, {NR(A, A + 8 * PG)}, {D(A, 8)}, NULL},
      {3, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 2)}, NULL}},
     "inherited from pid 2, but mm-2.img and mm-3.img do not have them"},
    {"from a sibling that is not one",
     {{1, 0, {ANON(A, A + 8 * PG)}, {D(A, 8)}, NULL},
      {2, 1, {ANON(A, A + 8 * PG)}, {D(A, 8)}, NULL},
      {3, 2, {ANON(A, A + 8 * PG)}, {{0}}, NULL},
      {4, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 3)}, NULL}},
     "inherited from a sibling, pid 3, which is not another child of pid 1"},
    {"from a sibling that saved no such pages",
     {{1, 0, {ANON(A, A + 8 * PG)}, {D(A, 8)}, NULL},
      {2, 1, {ANON(A, A + 8 * PG)}, {D(A, 4), I(A + 4 * PG, 4)}, NULL},
      {3, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 2)}, NULL}},
     "inherited from its sibling pid 2, which saved no such pages of its own"},
    {"from a sibling whose area is not a fork of the parent's",
     {{1, 0, {ANON(A, A + 8 * PG)}, {D(A, 8)}, NULL},
      {2, 1, {NR(A, A + 8 * PG)}, {D(A, 8)}, NULL},
      {3, 1, {ANON(A, A + 8 * PG)}, {S(A, 8, 2)}, NULL}},
     "inherited from pid 2, but mm-2.img and mm-1.img do not have them"},
    {"inherited in a shared area",
     {{1, 0, {SHM(A, A + 4 * PG)}, {{0}}, NULL}, {2, 1, {SHM(A, A + 4 * PG)}, {I(A, 4)}, NULL}},
     "do not have them in the same kind of private area"},
};
#pragma GCC diagnostic pop

struct fixture {
	struct restore_opts opts;
	struct restore_ctx ctx;
	struct rtask tasks[MAX_TASKS];
	struct rtask *by_pid[MAX_TASKS];
	struct rtask *kids[MAX_TASKS][MAX_TASKS];
	MmEntry mm[MAX_TASKS];
	Vma vma[MAX_TASKS][MAX_VMAS];
	Vma *vmap[MAX_TASKS][MAX_VMAS];
	PagemapEntry pe[MAX_TASKS][MAX_PM];
	PagemapEntry *pep[MAX_TASKS][MAX_PM];
};

static int cmp_task_pid(const void *a, const void *b)
{
	const struct rtask *x = *(struct rtask *const *)a, *y = *(struct rtask *const *)b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

static void fixture_init(struct fixture *fx, const struct cow_case *c)
{
	struct restore_ctx *ctx = &fx->ctx;

	memset(fx, 0, sizeof(*fx));
	fx->opts = (struct restore_opts){RESTORE_OPTS_NO_FDS, .dir = "/img"};
	restore_ctx_init(ctx, &fx->opts);
	ctx->tasks = fx->tasks;
	ctx->by_pid = fx->by_pid;
	for (size_t i = 0; i < MAX_TASKS && c->tasks[i].pid; i++) {
		const struct t_task *tt = &c->tasks[i];
		struct rtask *t = &fx->tasks[i];

		mm_entry__init(&fx->mm[i]);
		for (size_t k = 0; k < MAX_VMAS && tt->vmas[k].kind; k++) {
			Vma *v = &fx->vma[i][k];

			vma__init(v);
			v->start = tt->vmas[k].start;
			v->end = tt->vmas[k].end;
			v->kind = tt->vmas[k].kind;
			v->flags = tt->vmas[k].flags;
			v->prot = PROT_READ | PROT_WRITE;
			if (v->kind == VMA_KIND__VMA_FILE_PRIVATE ||
			    v->kind == VMA_KIND__VMA_SHMEM_SHARED) {
				v->has_file_id = v->has_pgoff = true;
				v->file_id = tt->vmas[k].file_id;
				v->pgoff = tt->vmas[k].pgoff;
			}
			fx->vmap[i][k] = v;
			fx->mm[i].n_vmas++;
		}
		fx->mm[i].vmas = fx->vmap[i];
		for (size_t k = 0; k < MAX_PM && tt->pm[k].nr; k++) {
			PagemapEntry *p = &fx->pe[i][k];

			pagemap_entry__init(p);
			p->vaddr = tt->pm[k].vaddr;
			p->nr_pages = tt->pm[k].nr;
			p->has_inherited = p->inherited = tt->pm[k].inh;
			p->has_sibling = tt->pm[k].sib != 0;
			p->sibling = (uint32_t)tt->pm[k].sib;
			fx->pep[i][k] = p;
			t->n_pagemap++;
		}
		t->pagemap = fx->pep[i];
		t->pid = tt->pid;
		t->ppid = tt->ppid;
		t->mm = &fx->mm[i];
		fx->by_pid[i] = t;
		ctx->ntasks++;
	}
	qsort(fx->by_pid, ctx->ntasks, sizeof(*fx->by_pid), cmp_task_pid);
	for (size_t i = 0; i < ctx->ntasks; i++) {
		struct rtask *t = &fx->tasks[i];

		if (t->ppid == 0)
			ctx->root = t;
		else
			t->parent = task_by_pid(ctx, t->ppid);
		t->children = fx->kids[i];
	}
	/* forked in the order of the table */
	for (size_t i = 0; i < ctx->ntasks; i++)
		if (fx->tasks[i].parent)
			fx->tasks[i].parent->children[fx->tasks[i].parent->n_children++] =
			    &fx->tasks[i];
}

static void fixture_free(struct fixture *fx)
{
	for (size_t i = 0; i < fx->ctx.ntasks; i++) {
		free(fx->tasks[i].kept);
		free(fx->tasks[i].sib_ok);
		free(fx->tasks[i].held);
		free(fx->tasks[i].stages);
		free(fx->tasks[i].sib_reads);
	}
}

/* Is s among the siblings whose images t reads before it forks (sib_reads)? */
static bool reads_sib(const struct rtask *t, pid_t s)
{
	for (size_t j = 0; j < t->n_sib_reads; j++)
		if (t->sib_reads[j]->pid == s)
			return true;
	return false;
}

/* The sibling entries handed down, and the parent's stages, as the case says. */
static void check_siblings(const struct cow_case *c, const struct t_task *tt, const struct rtask *t)
{
	char got[MAX_PM + 1] = {0};
	size_t n = 0, ns = 0;

	for (size_t k = 0; k < t->n_pagemap; k++)
		if (t->pagemap[k]->has_sibling)
			got[n++] = t->sib_ok[k] ? '1' : '0';
	ck_assert_msg(!strcmp(got, tt->sib_ok ? tt->sib_ok : ""),
		      "%s: pid %d handed down %s, want %s", c->name, t->pid, got,
		      tt->sib_ok ? tt->sib_ok : "");
	/* the images a fork must hand down with t's (task.c): each sibling it
	 * copies pages from, each whose pages its parent holds while forking it */
	for (size_t k = 0; k < t->n_pagemap; k++)
		if (t->pagemap[k]->has_sibling && !t->sib_ok[k])
			ck_assert_msg(reads_sib(t, (pid_t)t->pagemap[k]->sibling),
				      "%s: pid %d copies pages of pid %d, not in sib_reads",
				      c->name, t->pid, (pid_t)t->pagemap[k]->sibling);
	for (size_t k = 0; t->parent && k < t->parent->n_stages; k++) {
		const struct cow_stage *st = &t->parent->stages[k];

		if (st->first <= t->child_idx && t->child_idx <= st->last && st->src != t)
			ck_assert_msg(
			    reads_sib(t, st->src->pid),
			    "%s: pid %d is forked while its parent holds pages of pid %d, "
			    "not in sib_reads",
			    c->name, t->pid, st->src->pid);
	}
	for (size_t j = 0; j < t->n_sib_reads; j++)
		ck_assert_msg(t->sib_reads[j]->parent == t->parent && t->sib_reads[j] != t,
			      "%s: pid %d reads pid %d, not a sibling", c->name, t->pid,
			      t->sib_reads[j]->pid);
	while (ns < MAX_STAGES && tt->stages[ns].end)
		ns++;
	ck_assert_msg(t->n_stages == ns, "%s: pid %d has %zu stages, want %zu", c->name, t->pid,
		      t->n_stages, ns);
	for (size_t k = 0; k < ns; k++) {
		const struct t_stage *w = &tt->stages[k];
		const struct cow_stage *g = &t->stages[k];

		ck_assert_msg(g->start == w->start && g->end == w->end && g->src->pid == w->src &&
				  g->first == w->first && g->last == w->last &&
				  g->orphan == w->orphan,
			      "%s: pid %d stage %zu: %#lx-%#lx of %d, forks %zu-%zu%s", c->name,
			      t->pid, k, (unsigned long)g->start, (unsigned long)g->end,
			      g->src->pid, g->first, g->last, g->orphan ? ", orphan" : "");
	}
}

START_TEST(test_cow)
{
	const struct cow_case *c = &cases[_i];
	struct fixture *fx = calloc(1, sizeof(*fx));
	int r;

	ck_assert_ptr_nonnull(fx);
	fixture_init(fx, c);
	r = cow_verify(&fx->ctx);
	if (c->err) {
		ck_assert_msg(r < 0, "%s: accepted", c->name);
		ck_assert_msg(strstr(fx->ctx.err.msg, c->err), "%s: error '%s'", c->name,
			      fx->ctx.err.msg);
	} else {
		ck_assert_msg(r == 0, "%s: %s", c->name, fx->ctx.err.msg);
		ck_assert_int_eq(cow_plan(&fx->ctx), 0);
		for (size_t i = 0; i < fx->ctx.ntasks; i++) {
			const char *want = c->tasks[i].kept;
			char got[MAX_VMAS + 1] = {0};

			for (size_t k = 0; k < fx->tasks[i].mm->n_vmas; k++)
				got[k] = fx->tasks[i].kept[k] ? '1' : '0';
			if (want)
				ck_assert_msg(!strcmp(got, want), "%s: pid %d kept %s, want %s",
					      c->name, fx->tasks[i].pid, got, want);
			check_siblings(c, &c->tasks[i], &fx->tasks[i]);
		}
	}
	fixture_free(fx);
	free(fx);
}
END_TEST

START_TEST(test_compatible)
{
	Vma a, b;

	vma__init(&a);
	a.start = A, a.end = A + 4 * PG, a.kind = VMA_KIND__VMA_STACK,
	a.flags = MAP_PRIVATE | MAP_GROWSDOWN;
	b = a;
	ck_assert(vma_cow_compatible(&a, &b));
	b.prot = PROT_READ; /* protection may differ */
	ck_assert(vma_cow_compatible(&a, &b));
	b.flags = MAP_PRIVATE;
	ck_assert(!vma_cow_compatible(&a, &b));
	b = a;
	b.kind = VMA_KIND__VMA_HEAP;
	ck_assert(!vma_cow_compatible(&a, &b));
	a.kind = b.kind = VMA_KIND__VMA_VDSO;
	ck_assert(!vma_cow_compatible(&a, &b));
}
END_TEST

static Suite *cow_suite(void)
{
	Suite *s = suite_create("cow");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_cow, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_compatible);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cow_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
