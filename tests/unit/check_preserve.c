/* SPDX-License-Identifier: MIT */
/*
 * The registry of preserved jobs (lib/preserve.c): round trip through the
 * file, and forged or truncated files refused with an error naming what is
 * wrong (every prefix of a valid file, every single-byte change, entries
 * that break a limit even with a valid checksum).
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "crc32c.h"
#include "preserve.h"

static uint32_t groups[] = {100, 27};
static PreserveEntry e1, e2;
static PreserveEntry *ents[2];
static PreserveRegistry reg;

static void setup(void)
{
	preserve_entry__init(&e1);
	e1.id = 1;
	e1.name = "job-one";
	e1.pid = 4242;
	e1.start_ticks = 123456;
	e1.uid = 1000;
	e1.gid = 1000;
	e1.n_groups = 2;
	e1.groups = groups;
	e1.state = PRESERVE_STATE__PRESERVE_REGISTERED;
	e1.last_result = "registered";
	preserve_entry__init(&e2);
	e2.id = 3;
	e2.pid = 99;
	e2.start_ticks = 7;
	e2.state = PRESERVE_STATE__PRESERVE_SAVED;
	ents[0] = &e1;
	ents[1] = &e2;
	preserve_registry__init(&reg);
	reg.version = PRESERVE_VERSION;
	reg.next_id = 4;
	reg.n_entries = 2;
	reg.entries = ents;
}

/* pack reg, then re-checksum the message (a forger who knows the format) */
static uint8_t *pack(size_t *len)
{
	uint8_t *buf = NULL;
	struct ckpt_error e = {0};

	ck_assert_int_eq(preserve_pack(&reg, &buf, len, &e), 0);
	return buf;
}

static int parse(const uint8_t *buf, size_t len, struct ckpt_error *e)
{
	PreserveRegistry *r = NULL;
	int ret = preserve_parse(buf, len, &r, e);

	if (ret == 0)
		preserve_registry_free(r);
	else
		ck_assert_ptr_null(r);
	return ret;
}

START_TEST(test_round_trip)
{
	_cleanup_free_ uint8_t *buf = NULL;
	PreserveRegistry *r = NULL;
	struct ckpt_error e = {0};
	size_t len;

	buf = pack(&len);
	ck_assert_int_eq(preserve_parse(buf, len, &r, &e), 0);
	ck_assert_uint_eq(r->n_entries, 2);
	ck_assert_str_eq(r->entries[0]->name, "job-one");
	ck_assert_uint_eq(r->entries[0]->start_ticks, 123456);
	ck_assert_uint_eq(r->entries[0]->n_groups, 2);
	ck_assert_int_eq(r->entries[1]->state, PRESERVE_STATE__PRESERVE_SAVED);
	ck_assert_uint_eq(r->next_id, 4);
	preserve_registry_free(r);
}
END_TEST

START_TEST(test_truncated)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct ckpt_error e = {0};
	size_t len;

	buf = pack(&len);
	for (size_t n = 0; n < len; n++) {
		e.msg[0] = '\0';
		ck_assert_int_lt(parse(buf, n, &e), 0);
		ck_assert(e.msg[0]);
	}
}
END_TEST

START_TEST(test_every_byte_changed)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct ckpt_error e = {0};
	size_t len;

	buf = pack(&len);
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x5a;
		ck_assert_msg(parse(buf, len, &e) < 0, "byte %zu changed: accepted", i);
		buf[i] ^= 0x5a;
	}
	ck_assert_int_eq(parse(buf, len, &e), 0);
}
END_TEST

/* checksummed forgeries: each breaks one rule */
static void forge_dup_id(void)
{
	e2.id = 1;
}
static void forge_id_not_below_next(void)
{
	e2.id = 4;
}
static void forge_zero_id(void)
{
	e1.id = 0;
}
static void forge_bad_pid(void)
{
	e1.pid = -5;
}
static void forge_bad_state(void)
{
	e1.state = 9;
}
static void forge_name_slash(void)
{
	e1.name = "../../etc";
}
static void forge_name_ctrl(void)
{
	e1.name = "a\033[2Jb";
}
static void forge_name_long(void)
{
	static char n[PRESERVE_NAME_MAX + 2];

	memset(n, 'x', sizeof(n) - 1);
	e1.name = n;
}
static void forge_result_long(void)
{
	static char r[PRESERVE_RESULT_MAX + 2];

	memset(r, 'r', sizeof(r) - 1);
	e1.last_result = r;
}
static void forge_groups(void)
{
	static uint32_t g[PRESERVE_GROUPS_MAX + 1];

	e1.groups = g;
	e1.n_groups = PRESERVE_GROUPS_MAX + 1;
}
static void forge_version(void)
{
	reg.version = 2;
}

static const struct {
	void (*forge)(void);
	const char *msg;
} forgeries[] = {
    {forge_dup_id, "appears twice"},	 {forge_id_not_below_next, "not below next_id"},
    {forge_zero_id, "id is 0"},		 {forge_bad_pid, "is not a pid"},
    {forge_bad_state, "is not a state"}, {forge_name_slash, "'/'"},
    {forge_name_ctrl, "printable"},	 {forge_name_long, "1 to"},
    {forge_result_long, "last_result"},	 {forge_groups, "groups"},
    {forge_version, "version 2"},
};

START_TEST(test_forged)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct ckpt_error e = {0};
	size_t len;

	forgeries[_i].forge();
	buf = pack(&len);
	ck_assert_int_eq(parse(buf, len, &e), -EBADMSG);
	ck_assert_msg(strstr(e.msg, forgeries[_i].msg), "forgery %d: '%s' lacks '%s'", _i, e.msg,
		      forgeries[_i].msg);
}
END_TEST

START_TEST(test_too_many_entries)
{
	static PreserveEntry many[PRESERVE_ENTRIES_MAX + 1];
	static PreserveEntry *ptrs[PRESERVE_ENTRIES_MAX + 1];
	_cleanup_free_ uint8_t *buf = NULL;
	struct ckpt_error e = {0};
	size_t len;

	for (size_t i = 0; i <= PRESERVE_ENTRIES_MAX; i++) {
		preserve_entry__init(&many[i]);
		many[i].id = i + 1;
		many[i].pid = 1;
		many[i].state = PRESERVE_STATE__PRESERVE_REGISTERED;
		ptrs[i] = &many[i];
	}
	reg.entries = ptrs;
	reg.n_entries = PRESERVE_ENTRIES_MAX + 1;
	reg.next_id = PRESERVE_ENTRIES_MAX + 2;
	buf = pack(&len);
	ck_assert_int_eq(parse(buf, len, &e), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(e.msg, "entries"));
}
END_TEST

START_TEST(test_oversized)
{
	size_t len = PRESERVE_FILE_MAX + 1;
	_cleanup_free_ uint8_t *buf = calloc(1, len);
	struct ckpt_error e = {0};

	ck_assert_int_eq(parse(buf, len, &e), -EFBIG);
}
END_TEST

START_TEST(test_load_save)
{
	char dir[] = "/tmp/check_preserve.XXXXXX";
	_cleanup_close_ int dfd = -1;
	PreserveRegistry *r = NULL;
	struct ckpt_error e = {0};
	struct stat st;
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	/* missing: empty */
	ck_assert_int_eq(preserve_load(dfd, &r, &e), 0);
	ck_assert_uint_eq(r->n_entries, 0);
	ck_assert_uint_eq(r->next_id, 1);
	preserve_registry_free(r);
	ck_assert_int_eq(preserve_save(dfd, &reg, &e), 0);
	ck_assert_int_eq(fstatat(dfd, PRESERVE_FILE, &st, 0), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(preserve_load(dfd, &r, &e), 0);
	ck_assert_uint_eq(r->n_entries, 2);
	preserve_registry_free(r);
	/* truncated on disk */
	fd = openat(dfd, PRESERVE_FILE, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, st.st_size - 3), 0);
	close(fd);
	ck_assert_int_eq(preserve_load(dfd, &r, &e), -EBADMSG);
	/* not a regular file */
	unlinkat(dfd, PRESERVE_FILE, 0);
	ck_assert_int_eq(mkfifoat(dfd, PRESERVE_FILE, 0600), 0);
	ck_assert_int_eq(preserve_load(dfd, &r, &e), -EBADMSG);
	unlinkat(dfd, PRESERVE_FILE, 0);
	rmdir(dir);
}
END_TEST

static Suite *preserve_suite(void)
{
	Suite *s = suite_create("preserve");
	TCase *tc = tcase_create("registry");

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_every_byte_changed);
	tcase_add_loop_test(tc, test_forged, 0, sizeof(forgeries) / sizeof(forgeries[0]));
	tcase_add_test(tc, test_too_many_entries);
	tcase_add_test(tc, test_oversized);
	tcase_add_test(tc, test_load_save);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(preserve_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
