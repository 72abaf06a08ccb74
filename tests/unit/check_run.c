/* SPDX-License-Identifier: MIT */
/* Unit tests of `ckptctl run`'s options (client/run_args.c). */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

/* Parse a NULL-terminated list of words after "run". */
/*
 * run_parse_args over "run" ARGS...: o->cmd points into the word array, so
 * the words are copied into one that outlives the assertion macros'
 * blocks (the string literals themselves are static).
 */
static char *words_[64];

static int parse_words(char **w, struct run_opts *o, char *err, size_t errlen)
{
	int n = 0;

	for (; w[n] && n < 63; n++)
		words_[n] = w[n];
	words_[n] = NULL;
	return run_parse_args(n, words_, o, err, errlen);
}
#define PARSE(o, err, ...) parse_words((char *[]){"run", __VA_ARGS__, NULL}, (o), (err), sizeof(err))

START_TEST(signal_names)
{
	ck_assert_int_eq(run_parse_signal("USR1"), SIGUSR1);
	ck_assert_int_eq(run_parse_signal("SIGUSR1"), SIGUSR1);
	ck_assert_int_eq(run_parse_signal("sigusr2"), SIGUSR2);
	ck_assert_int_eq(run_parse_signal("term"), SIGTERM);
	ck_assert_int_eq(run_parse_signal("10"), 10);
	ck_assert_int_eq(run_parse_signal("RTMIN"), SIGRTMIN);
	ck_assert_int_eq(run_parse_signal("SIGRTMIN+3"), SIGRTMIN + 3);
	ck_assert_int_eq(run_parse_signal("RTMIN+99"), -1);
	/* not catchable, or the job's own business */
	ck_assert_int_eq(run_parse_signal("KILL"), -1);
	ck_assert_int_eq(run_parse_signal("9"), -1);
	ck_assert_int_eq(run_parse_signal("STOP"), -1);
	ck_assert_int_eq(run_parse_signal("CHLD"), -1);
	ck_assert_int_eq(run_parse_signal("SEGV"), -1);
	ck_assert_int_eq(run_parse_signal("0"), -1);
	ck_assert_int_eq(run_parse_signal("65"), -1);
	ck_assert_int_eq(run_parse_signal("-10"), -1);
	ck_assert_int_eq(run_parse_signal("10x"), -1);
	ck_assert_int_eq(run_parse_signal(""), -1);
	ck_assert_int_eq(run_parse_signal("SIG"), -1);
	ck_assert_int_eq(run_parse_signal("USR3"), -1);
}
END_TEST

START_TEST(defaults)
{
	struct run_opts o;
	char err[256];

	ck_assert_int_eq(PARSE(&o, err, "--dir", "/ckpt/j1", "--", "python3", "-u", "x.py"), 0);
	ck_assert_str_eq(o.dir, "/ckpt/j1");
	ck_assert_int_eq(o.n_signals, 2);
	ck_assert_int_eq(o.signals[0], SIGUSR1);
	ck_assert_int_eq(o.signals[1], SIGTERM);
	ck_assert_int_eq(o.exit_code, 85);
	ck_assert_uint_eq(o.interval, 0);
	ck_assert(!o.json);
	/* the command keeps its own options */
	ck_assert_str_eq(o.cmd[0], "python3");
	ck_assert_str_eq(o.cmd[1], "-u");
	ck_assert_str_eq(o.cmd[2], "x.py");
	ck_assert_ptr_null(o.cmd[3]);
	/* DIR.new and DIR.pre1 go beside DIR, not in it */
	ck_assert_int_eq(PARSE(&o, err, "--dir", "/ckpt/j1//", "--", "x"), 0);
	ck_assert_str_eq(o.dir, "/ckpt/j1");
	ck_assert_int_eq(PARSE(&o, err, "--dir", "//", "--", "x"), -1);
}
END_TEST

START_TEST(all_options)
{
	struct run_opts o;
	char err[256];

	ck_assert_int_eq(PARSE(&o, err, "-D", "d", "--signal", "USR2", "-s", "SIGHUP",
			       "--exit-code=99", "--interval", "600", "--json", "-v", "--", "a"),
			 0);
	ck_assert_int_eq(o.n_signals, 2);
	ck_assert_int_eq(o.signals[0], SIGUSR2);
	ck_assert_int_eq(o.signals[1], SIGHUP);
	ck_assert_int_eq(o.exit_code, 99);
	ck_assert_uint_eq(o.interval, 600);
	ck_assert(o.json);
	ck_assert_int_eq(o.verbose, 1);
	ck_assert_str_eq(o.cmd[0], "a");
	/* without "--": the first word that is not an option starts the command */
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "sleep", "--help"), 0);
	ck_assert_str_eq(o.cmd[0], "sleep");
	ck_assert_str_eq(o.cmd[1], "--help");
	ck_assert_int_eq(PARSE(&o, err, "--exit-code", "0", "--dir", "d", "--", "x"), 0);
	ck_assert_int_eq(o.exit_code, 0);
}
END_TEST

START_TEST(usage_errors)
{
	struct run_opts o;
	char err[256];

	ck_assert_int_eq(PARSE(&o, err, "--", "sleep", "1"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--dir"));
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d"), -1);
	ck_assert_ptr_nonnull(strstr(err, "command"));
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--"), -1);
	ck_assert_int_eq(PARSE(&o, err, "--dir", "", "--", "x"), -1);
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--signal", "KILL", "--", "x"), -1);
	ck_assert_ptr_nonnull(strstr(err, "KILL"));
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--exit-code", "256", "--", "x"), -1);
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--exit-code", "-1", "--", "x"), -1);
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--exit-code", "8a", "--", "x"), -1);
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--interval", "0", "--", "x"), -1);
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--interval", "1e3", "--", "x"), -1);
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--interval", "99999999", "--", "x"), -1);
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "--bogus", "--", "x"), -1);
	ck_assert_ptr_nonnull(strstr(err, "--bogus"));
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "-q", "--", "x"), -1);
	ck_assert_ptr_nonnull(strstr(err, "-q"));
	ck_assert_int_eq(PARSE(&o, err, "--dir"), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs an argument"));
	ck_assert_int_eq(PARSE(&o, err, "--help"), 1);
	/* at most RUN_MAX_SIGNALS */
	ck_assert_int_eq(PARSE(&o, err, "--dir", "d", "-s1", "-s2", "-s3", "-s10", "-s12", "-s14",
			       "-s15", "-s16", "-s18", "-s20", "-s21", "-s22", "-s23", "-s24",
			       "-s25", "-s26", "-s27", "--", "x"),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "too many"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("run");
	TCase *tc = tcase_create("args");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, signal_names);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, all_options);
	tcase_add_test(tc, usage_errors);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
