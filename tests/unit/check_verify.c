/* SPDX-License-Identifier: MIT */
/*
 * The restorer's verdict on whole checkpoint directories
 * (restore_check_images(): stages verify and plan, nothing created), on the
 * checkpoints of the fuzz corpus (tests/fuzz/corpus/dir: real dumps, written
 * out by the fuzz harness's own code, tests/fuzz/fuzz_common.c, with the
 * inventory's sums recomputed) and on what the fuzzer found wrong with it,
 * one test per finding (docs/testing.md, "Fuzzing"). Run under ASan + UBSan
 * in build-asan/, where undefined behaviour aborts the test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "image.h"
#include "restore_check.h"

#define CORPUS CKPT_FUZZ_CORPUS "/dir/"

static const char *const seeds[] = {"sleeper", "pipeline", "evfd", "unixsk"};

struct checkpoint {
	uint8_t *data;
	struct fuzz_file files[FUZZ_MAX_FILES];
	size_t n;
};

static void load(struct checkpoint *c, const char *name)
{
	char path[512];
	FILE *f;
	long len;

	snprintf(path, sizeof(path), CORPUS "%s", name);
	f = fopen(path, "rb");
	ck_assert_msg(f, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	ck_assert_int_gt(len, 0);
	rewind(f);
	c->data = malloc(len);
	ck_assert_ptr_nonnull(c->data);
	ck_assert_uint_eq(fread(c->data, 1, len, f), (size_t)len);
	fclose(f);
	c->n = fuzz_container_parse(c->data, len, c->files, FUZZ_MAX_FILES);
	ck_assert_uint_gt(c->n, 0);
}

/*
 * Write c into d, the file named like `replace` (if any) replaced by
 * data/len, and return the verdict.
 */
static int check(struct fuzz_dir *d, const struct checkpoint *c, const char *replace,
		 const uint8_t *data, size_t len, struct ckpt_error *e)
{
	const struct fuzz_file *inv = NULL;
	bool replaced = false;

	fuzz_dir_clean(d);
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->files[i].name, "inventory.img")) {
			inv = &c->files[i];
		} else if (replace && !strcmp(c->files[i].name, replace)) {
			ck_assert(fuzz_write_image(d, replace, data, len));
			replaced = true;
		} else {
			ck_assert(fuzz_write_image(d, c->files[i].name, c->files[i].data,
						   c->files[i].len));
		}
	}
	ck_assert_msg(!replace || replaced, "%s is not in the checkpoint", replace);
	ck_assert_ptr_nonnull(inv);
	fuzz_write_inventory(d, inv->data, inv->len);
	return restore_check_images(d->path, false, e);
}

/* One scratch directory per process (fuzz_dir_init removes it at exit). */
static struct fuzz_dir *scratch(void)
{
	static struct fuzz_dir d;
	static bool made;

	if (!made)
		fuzz_dir_init(&d, "check");
	made = true;
	return &d;
}

static const char *first_of_kind(const struct checkpoint *c, enum img_kind kind)
{
	for (size_t i = 0; i < c->n; i++) {
		enum img_kind k;

		if (img_kind_from_name(c->files[i].name, &k, NULL) == 0 && k == kind)
			return c->files[i].name;
	}
	ck_abort_msg("no image of kind %d", (int)kind);
	return NULL;
}

/* Every seed of the fuzz corpus is a good checkpoint (else regenerate: mkcorpus.py). */
START_TEST(test_seed_passes)
{
	struct checkpoint c;
	struct ckpt_error e = {0};

	load(&c, seeds[_i]);
	ck_assert_msg(check(scratch(), &c, NULL, NULL, 0, &e) == 0, "%s: %s", seeds[_i], e.msg);
	free(c.data);
}
END_TEST

/*
 * Fuzz finding: a task without any fd (an fds image of only its header)
 * made validate_fds() qsort() a NULL array (undefined behaviour, reported by
 * UBSan). A task may well have closed every fd: that is a good checkpoint.
 */
START_TEST(test_task_without_fds)
{
	struct checkpoint c;
	struct ckpt_error e = {0};
	uint8_t header[IMG_HEADER_SIZE];
	const char *fds;

	load(&c, "sleeper");
	fds = first_of_kind(&c, IMG_FDS);
	for (size_t i = 0; i < c.n; i++)
		if (!strcmp(c.files[i].name, fds))
			memcpy(header, c.files[i].data, sizeof(header));
	ck_assert_msg(check(scratch(), &c, fds, header, sizeof(header), &e) == 0, "%s", e.msg);
	free(c.data);
}
END_TEST

static Suite *verify_suite(void)
{
	Suite *s = suite_create("verify");
	TCase *tc = tcase_create("verify");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_seed_passes, 0, sizeof(seeds) / sizeof(seeds[0]));
	tcase_add_test(tc, test_task_without_fds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(verify_suite());
	int failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
