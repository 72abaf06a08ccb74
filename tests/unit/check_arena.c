/* SPDX-License-Identifier: MIT */
/*
 * The arena (lib/arena.c) the restorer unpacks the tasks' images into:
 * alignment and page breaks, what happens when it is full (NULL from
 * arena_alloc, malloc from its protobuf-c allocator, and that allocator's
 * free freeing only that), and what a fork gets of it after arena_inherit
 * (a child forked after MADV_DONTFORK has no mapping there at all, one
 * forked after MADV_DOFORK again has the data), and which pages it asks
 * for: small ones where forks follow, huge ones where none does.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "proc.h"
#include "thp.h"

#include "pagemap.pb-c.h"

#define PG 4096

START_TEST(test_alloc)
{
	struct ckpt_error e = {0};
	struct arena a;
	char *p, *q;

	ck_assert_int_eq(arena_init(&a, 3 * PG - 100, true, &e), 0);
	ck_assert_uint_eq(a.size, 3 * PG);
	p = arena_alloc(&a, 3);
	q = arena_alloc(&a, 1);
	ck_assert_ptr_eq(p, a.base);
	ck_assert_uint_eq((uintptr_t)q % 16, 0);
	ck_assert_ptr_eq(q, p + 16);
	ck_assert(arena_owns(&a, q));
	ck_assert(!arena_owns(&a, a.base + a.size));
	ck_assert(!arena_owns(&a, &a));
	memset(p, 0x5a, 3);
	ck_assert_uint_eq(arena_page_break(&a), PG);
	ck_assert_uint_eq(arena_page_break(&a), PG); /* already on a page */
	ck_assert_ptr_eq(arena_alloc(&a, 2 * PG), a.base + PG);
	ck_assert_ptr_null(arena_alloc(&a, 1)); /* full */
	ck_assert_uint_eq(arena_page_break(&a), 3 * PG);
	ck_assert_ptr_null(arena_alloc(&a, 0));
	arena_fini(&a);
	ck_assert_ptr_null(a.base);
	ck_assert_ptr_null(arena_alloc(&a, 1));
}
END_TEST

/* A full arena: protobuf-c's unpack still works, from malloc, and frees right
 * (under ASan everything is from malloc: arena.h). */
START_TEST(test_pb_spill)
{
	PagemapEntry pm = PAGEMAP_ENTRY__INIT;
	struct ckpt_error e = {0};
	uint8_t buf[64];
	size_t len;
	struct arena a;
	PagemapEntry *in, *out;

	pm.vaddr = 0x7f0000001000ULL;
	pm.nr_pages = 17;
	len = pagemap_entry__pack(&pm, buf);
	ck_assert_int_eq(arena_init(&a, sizeof(PagemapEntry) + 40, true, &e), 0);
	in = pagemap_entry__unpack(&a.pb, len, buf);
	ck_assert_ptr_nonnull(in);
	ck_assert(arena_owns(&a, in) == !ARENA_PB_MALLOC);
	/* fill it up: the next unpack comes from malloc */
	while (arena_alloc(&a, 64))
		;
	out = pagemap_entry__unpack(&a.pb, len, buf);
	ck_assert_ptr_nonnull(out);
	ck_assert(!arena_owns(&a, out));
	ck_assert_uint_ge(a.spilled, sizeof(PagemapEntry));
	ck_assert_uint_eq(in->vaddr, pm.vaddr);
	ck_assert_uint_eq(out->nr_pages, 17);
	/* one freed by free(), the other left to arena_fini (ASan: no leak, no bad free) */
	pagemap_entry__free_unpacked(out, &a.pb);
	pagemap_entry__free_unpacked(in, &a.pb);
	arena_fini(&a);
}
END_TEST

/* The VmFlags of our area that starts at p has flag ("hg", "nh")? */
static bool area_has_flag(const void *p, const char *flag)
{
	struct ckpt_error e = {0};
	struct proc_vma_list l = {0};
	bool has = false;

	ck_assert_int_eq(proc_parse_smaps(getpid(), &l, &e), 0);
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].start <= (uintptr_t)p && (uintptr_t)p < l.v[i].end)
			has = proc_vma_has_flag(&l.v[i], flag);
	proc_vma_list_free(&l);
	return has;
}

/* An arena forks hand down is in 4 KiB pages (arena_inherit would split a
 * huge one); one that no fork follows asks for huge pages, aligned to them. */
START_TEST(test_pages)
{
	struct ckpt_error e = {0};
	struct arena a;

	ck_assert_int_eq(arena_init(&a, 3 * THP_SIZE, true, &e), 0);
	ck_assert(area_has_flag(a.base, "nh"));
	ck_assert(!area_has_flag(a.base, "hg"));
	arena_fini(&a);
	ck_assert_int_eq(arena_init(&a, 3 * THP_SIZE - 100, false, &e), 0);
	ck_assert_uint_eq(a.size, 3 * THP_SIZE);
	ck_assert_uint_eq((uintptr_t)a.base % THP_SIZE, 0);
	ck_assert(area_has_flag(a.base, "hg"));
	ck_assert(!area_has_flag(a.base, "nh"));
	memset(arena_alloc(&a, 3 * THP_SIZE), 1, 3 * THP_SIZE);
	ck_assert_ptr_null(arena_alloc(&a, 1));
	arena_fini(&a);
	ck_assert_ptr_null(a.base);
}
END_TEST

/* Pages of [p, p + n) the process has (mincore). */
static size_t resident(const unsigned char *p, size_t n)
{
	unsigned char vec[256];
	size_t k = 0;

	ck_assert_uint_le(n / PG, sizeof(vec));
	ck_assert_int_eq(mincore((void *)p, n, vec), 0);
	for (size_t i = 0; i < n / PG; i++)
		k += vec[i] & 1;
	return k;
}

/* What is handed out has its pages, and some ahead (16 KiB, up to 256 KiB
 * once the arena is that big), without a fault each (arena.c populate_to);
 * the rest of the mapping has none yet. */
START_TEST(test_populated)
{
	struct ckpt_error e = {0};
	struct arena a;

	ck_assert_int_eq(arena_init(&a, 192 * PG, true, &e), 0);
	ck_assert_uint_eq(resident(a.base, 192 * PG), 0);
	ck_assert_ptr_nonnull(arena_alloc(&a, 100));
	ck_assert_uint_eq(resident(a.base, 192 * PG), 1 + 4);
	ck_assert_ptr_nonnull(arena_alloc(&a, (256u << 10) + PG));
	/* up to 66 pages handed out, 5 ahead (as many as were used) */
	ck_assert_uint_eq(resident(a.base, 192 * PG), 66 + 5);
	ck_assert_ptr_nonnull(arena_alloc(&a, 100 * PG));
	/* 166 pages handed out, 71 ahead: the mapping ends before */
	ck_assert_uint_eq(resident(a.base, 192 * PG), 192);
	arena_fini(&a);
}
END_TEST

/* In a forked child: is the page at p mapped, and does it hold c? */
static int child_sees(const char *p, char c)
{
	unsigned char vec;
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (mincore((void *)((uintptr_t)p & ~(uintptr_t)(PG - 1)), 1, &vec) < 0)
			_exit(errno == ENOMEM ? 2 : 3);
		_exit(*p == c ? 0 : 1);
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_inherit)
{
	struct ckpt_error e = {0};
	struct arena a;
	char *p;

	ck_assert_int_eq(arena_init(&a, 4 * PG, true, &e), 0);
	p = arena_alloc(&a, 4 * PG);
	memset(p, 'x', 4 * PG);
	ck_assert_int_eq(arena_inherit(&a, PG, 3 * PG, false, &e), 0);
	ck_assert_int_eq(child_sees(p, 'x'), 0);
	ck_assert_int_eq(child_sees(p + PG, 'x'), 2); /* not mapped at all */
	ck_assert_int_eq(child_sees(p + 3 * PG - 1, 'x'), 2);
	ck_assert_int_eq(child_sees(p + 3 * PG, 'x'), 0);
	ck_assert_int_eq(*(p + PG), 'x'); /* ours unchanged */
	ck_assert_int_eq(arena_inherit(&a, 2 * PG, 3 * PG, true, &e), 0);
	ck_assert_int_eq(child_sees(p + PG, 'x'), 2);
	ck_assert_int_eq(child_sees(p + 2 * PG, 'x'), 0);
	/* offsets past the end are cut, an empty range is nothing */
	ck_assert_int_eq(arena_inherit(&a, 0, 100 * PG, true, &e), 0);
	ck_assert_int_eq(arena_inherit(&a, 2 * PG, 2 * PG, false, &e), 0);
	ck_assert_int_eq(child_sees(p + PG, 'x'), 0);
	arena_fini(&a);
}
END_TEST

static Suite *arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_alloc);
	tcase_add_test(tc, test_pb_spill);
	tcase_add_test(tc, test_inherit);
	tcase_add_test(tc, test_pages);
	tcase_add_test(tc, test_populated);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(arena_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
