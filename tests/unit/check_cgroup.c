/* SPDX-License-Identifier: MIT */
/*
 * Cgroups (lib/cgroup.c): the checks a saved cgroup path or controllers
 * field must pass (the restorer's verifier and the dump use the same ones),
 * the /proc/PID/cgroup parser, and finding a hierarchy's directory from
 * mountinfo by its controllers (never by id).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"

static const struct {
	const char *path;
	bool ok;
} paths[] = {
    {"", true},
    {"a", true},
    {"a/b/c", true},
    {"user.slice/user-0.slice/session-1.scope", true},
    {"a.b/..c/c..", true},
    {"/a", false},
    {"/", false},
    {"a/", false},
    {"a//b", false},
    {"..", false},
    {".", false},
    {"a/../b", false},
    {"a/./b", false},
    {"a/..", false},
    {"../a", false},
    {"a\nb", false},
};

START_TEST(test_path)
{
	const char *why = cgroup_path_invalid(paths[_i].path);

	ck_assert_msg(!why == paths[_i].ok, "'%s': %s", paths[_i].path, why ? why : "accepted");
}
END_TEST

START_TEST(test_path_length)
{
	char *p = malloc(CGROUP_PATH_MAX + 2);

	ck_assert_ptr_nonnull(p);
	memset(p, 'a', CGROUP_PATH_MAX);
	p[CGROUP_PATH_MAX] = '\0';
	ck_assert_ptr_null(cgroup_path_invalid(p));
	p[CGROUP_PATH_MAX] = 'a';
	p[CGROUP_PATH_MAX + 1] = '\0';
	ck_assert_ptr_nonnull(cgroup_path_invalid(p));
	free(p);
}
END_TEST

START_TEST(test_controllers)
{
	ck_assert_ptr_null(cgroup_controllers_invalid(""));
	ck_assert_ptr_null(cgroup_controllers_invalid("cpu,cpuacct"));
	ck_assert_ptr_null(cgroup_controllers_invalid("name=systemd"));
	ck_assert_ptr_null(cgroup_controllers_invalid("net_cls,net_prio"));
	ck_assert_ptr_nonnull(cgroup_controllers_invalid("cpu,"));
	ck_assert_ptr_nonnull(cgroup_controllers_invalid(",cpu"));
	ck_assert_ptr_nonnull(cgroup_controllers_invalid("cpu/x"));
	ck_assert_ptr_nonnull(cgroup_controllers_invalid("cpu x"));
	ck_assert(cgroup_controllers_equal("cpu,cpuacct", "cpuacct,cpu"));
	ck_assert(!cgroup_controllers_equal("cpu,cpuacct", "cpu"));
	ck_assert(!cgroup_controllers_equal("cpu", "cpuacct"));
	ck_assert(cgroup_path_below("a/b", "a"));
	ck_assert(cgroup_path_below("a", "a"));
	ck_assert(cgroup_path_below("a", ""));
	ck_assert(!cgroup_path_below("ab", "a"));
	ck_assert(!cgroup_path_below("", "a"));
}
END_TEST

START_TEST(test_parse)
{
	struct cgroup_list l = {0};
	struct ckpt_error e = {0};
	const struct cgroup_line *c;

	ck_assert_int_eq(cgroup_parse_text("9:name=systemd:/\n2:cpu,cpuacct:/a/b:c\n0::/x/y\n", &l, &e),
			 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.v[0].path, "");
	ck_assert_uint_eq(l.v[1].id, 2);
	ck_assert_str_eq(l.v[1].path, "a/b:c");
	c = cgroup_list_find(&l, "cpuacct,cpu");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->path, "a/b:c");
	c = cgroup_list_find(&l, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->path, "x/y");
	ck_assert_ptr_null(cgroup_list_find(&l, "cpu"));
	cgroup_list_free(&l);
	ck_assert_int_eq(cgroup_parse_text("x:cpu:/\n", &l, &e), -EINVAL);
	ck_assert_int_eq(cgroup_parse_text("1:cpu\n", &l, &e), -EINVAL);
	ck_assert_int_eq(cgroup_parse_text("1:cpu:x\n", &l, &e), -EINVAL);
}
END_TEST

static const char mountinfo[] =
    "25 30 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
    "31 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "33 31 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    "34 31 0:29 /sub /mnt/pids\\040here rw - cgroup cgroup rw,pids,clone_children\n"
    "35 31 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n";
static const char proc_cgroups[] = "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
				   "cpu\t2\t1\t1\ncpuacct\t2\t1\t1\npids\t8\t1\t1\n";

START_TEST(test_mounts)
{
	struct cgroup_mounts m = {0};
	struct ckpt_error e = {0};
	char *dir = NULL;

	ck_assert_int_eq(cgroup_mounts_parse_text(mountinfo, proc_cgroups, &m, &e), 0);
	ck_assert_uint_eq(m.n, 4);
	ck_assert_int_eq(cgroup_dir(&m, "cpuacct,cpu", "a/b", &dir, &e), 0);
	ck_assert_str_eq(dir, "/sys/fs/cgroup/cpu,cpuacct/a/b");
	free(dir);
	ck_assert_int_eq(cgroup_dir(&m, "name=systemd", "", &dir, &e), 0);
	ck_assert_str_eq(dir, "/sys/fs/cgroup/systemd");
	free(dir);
	ck_assert_int_eq(cgroup_dir(&m, "", "x", &dir, &e), 0);
	ck_assert_str_eq(dir, "/sys/fs/cgroup/unified/x");
	free(dir);
	/* a mount of a subdirectory: only what is below it, relative to it */
	ck_assert_int_eq(cgroup_dir(&m, "pids", "sub/j", &dir, &e), 0);
	ck_assert_str_eq(dir, "/mnt/pids here/j");
	free(dir);
	ck_assert_int_eq(cgroup_dir(&m, "pids", "other", &dir, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "outside every mount"));
	/* not by a subset of its controllers */
	ck_assert_int_eq(cgroup_dir(&m, "cpu", "", &dir, &e), -ENOENT);
	ck_assert_ptr_nonnull(strstr(e.msg, "not mounted"));
	cgroup_mounts_free(&m);
}
END_TEST

static Suite *cgroup_suite(void)
{
	Suite *s = suite_create("cgroup");
	TCase *tc = tcase_create("cgroup");

	tcase_add_loop_test(tc, test_path, 0, sizeof(paths) / sizeof(paths[0]));
	tcase_add_test(tc, test_path_length);
	tcase_add_test(tc, test_controllers);
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_mounts);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cgroup_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
