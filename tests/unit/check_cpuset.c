/* SPDX-License-Identifier: MIT */
/*
 * CPU lists (lib/cpuset.c): parsed from the kernel's "0-3,6" form and
 * formatted back for messages.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpuset.h"

static const struct {
	const char *in;
	int ret;
	const char *out; /* formatted back */
} cases[] = {
    {"0\n", 0, "0"},	      {"0-1\n", 0, "0-1"},     {"0-3,6,8-9\n", 0, "0-3,6,8-9"},
    {"5,1,2\n", 0, "1-2,5"},  {"", 0, "none"},	       {"x\n", -EINVAL, NULL},
    {"3-1\n", -EINVAL, NULL}, {"1-\n", -EINVAL, NULL}, {"1;2\n", -EINVAL, NULL},
};

START_TEST(test_parse_format)
{
	cpu_set_t set;
	char buf[64];
	int r = cpu_list_parse(cases[_i].in, &set);

	ck_assert_int_eq(r, cases[_i].ret);
	if (r < 0)
		return;
	cpu_list_format(&set, buf, sizeof(buf));
	ck_assert_str_eq(buf, cases[_i].out);
}
END_TEST

START_TEST(test_format_truncates)
{
	cpu_set_t set;
	char buf[6];

	CPU_ZERO(&set);
	for (int c = 0; c < 40; c += 2)
		CPU_SET(c, &set);
	cpu_list_format(&set, buf, sizeof(buf));
	ck_assert_uint_lt(strlen(buf), sizeof(buf));
}
END_TEST

START_TEST(test_online)
{
	struct ckpt_error e = {0};
	cpu_set_t set;

	ck_assert_int_eq(cpus_online(&set, &e), 0);
	ck_assert_int_gt(CPU_COUNT(&set), 0);
}
END_TEST

static Suite *cpuset_suite(void)
{
	Suite *s = suite_create("cpuset");
	TCase *tc = tcase_create("cpuset");

	tcase_add_loop_test(tc, test_parse_format, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_format_truncates);
	tcase_add_test(tc, test_online);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cpuset_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
